//! Watches of every kind: one-shot data, exists (on a missing node) and child watches,
//! persistent and persistent-recursive watches (addWatch), their event types and paths,
//! one-shot semantics, the ordering guarantee (an event reaches the client before the reply
//! of a later read that observes the change), and checkWatches/removeWatches.

mod common;

use common::*;
use ringkeeper_engine::proto::codes::{add_watch_mode, watcher_type, ErrorCode, EventType as Ev, OpCode};
use ringkeeper_engine::proto::records::{AddWatchRequest, GetDataResponse, WatchTypeRequest};
use ringkeeper_tests::TestServer;
use zookeeper_client::{AddWatchMode, CreateMode, EventType};

fn watch_type(path: &str, watcher_type: i32) -> WatchTypeRequest {
    WatchTypeRequest { path: path.into(), watcher_type }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_exists_and_child_watches_report_type_and_path() {
    let server = TestServer::start();
    let watcher = connect(&server).await;
    let writer = connect(&server).await;

    // exists on a missing node fires NodeCreated.
    let (stat, created) = within("exists", watcher.check_and_watch_stat("/n")).await.unwrap();
    assert_eq!(stat, None);
    mk(&writer, "/n", b"").await;
    assert_event(&next_oneshot(created).await, EventType::NodeCreated, "/n");

    // getData watch fires NodeDataChanged; a child create does not touch it.
    let (_, _, data) = within("get", watcher.get_and_watch_data("/n")).await.unwrap();
    let (_, _, data_again) = within("get", watcher.get_and_watch_data("/n")).await.unwrap();
    let (_, children) = within("ls", watcher.list_and_watch_children("/n")).await.unwrap();
    mk(&writer, "/n/c", b"").await;
    assert_event(&next_oneshot(children).await, EventType::NodeChildrenChanged, "/n");
    set_data(&writer, "/n", b"x").await;
    assert_event(&next_oneshot(data).await, EventType::NodeDataChanged, "/n");
    // The client crate shares one server watch between both data watchers: the second also
    // saw the change.
    assert_event(&next_oneshot(data_again).await, EventType::NodeDataChanged, "/n");

    // Deleting a node fires NodeDeleted on its data, exists and child watches.
    let (_, _, data) = within("get", watcher.get_and_watch_data("/n/c")).await.unwrap();
    let (_, exists) = within("exists", watcher.check_and_watch_stat("/n/c")).await.unwrap();
    let (_, children) = within("ls", watcher.list_and_watch_children("/n/c")).await.unwrap();
    let (_, parent_children) = within("ls", watcher.list_and_watch_children("/n")).await.unwrap();
    delete(&writer, "/n/c").await;
    assert_event(&next_oneshot(data).await, EventType::NodeDeleted, "/n/c");
    assert_event(&next_oneshot(exists).await, EventType::NodeDeleted, "/n/c");
    assert_event(&next_oneshot(children).await, EventType::NodeDeleted, "/n/c");
    assert_event(&next_oneshot(parent_children).await, EventType::NodeChildrenChanged, "/n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_watch_fires_exactly_once() {
    let server = TestServer::start();
    let writer = connect(&server).await;
    mk(&writer, "/once", b"").await;
    let mut raw = RawSession::connect(&server, 10_000);
    assert_eq!(raw.code(OpCode::GetData, &watch_on("/once")), 0);
    set_data(&writer, "/once", b"1").await;
    set_data(&writer, "/once", b"2").await;
    let event = raw.next_event();
    assert_eq!((event.event_type, event.path.as_str()), (Ev::NodeDataChanged as i32, "/once"));
    assert_eq!(event.state, 3, "SyncConnected");
    raw.ping();
    assert!(raw.events.is_empty(), "second change must not fire again: {:?}", raw.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_arrives_before_the_reply_of_a_read_that_sees_the_change() {
    let server = TestServer::start();
    let writer = connect(&server).await;
    mk(&writer, "/ord", b"old").await;
    let mut raw = RawSession::connect(&server, 10_000);
    assert_eq!(raw.code(OpCode::GetData, &watch_on("/ord")), 0);
    set_data(&writer, "/ord", b"new").await;
    let reply = raw.call(OpCode::GetData, &no_watch("/ord"));
    assert_eq!(reply.decode::<GetDataResponse>().data.as_deref(), Some(b"new".as_slice()));
    assert_eq!(raw.events.len(), 1, "the notification precedes the reply on the wire");
    assert_eq!(raw.events[0].path, "/ord");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_watch_sees_node_and_child_list_changes_and_stays() {
    let server = TestServer::start();
    let watcher = connect(&server).await;
    let writer = connect(&server).await;
    let mut events = within("addWatch", watcher.watch("/w", AddWatchMode::Persistent)).await.unwrap();
    mk(&writer, "/w", b"").await;
    set_data(&writer, "/w", b"1").await;
    set_data(&writer, "/w", b"2").await;
    mk(&writer, "/w/c", b"").await;
    set_data(&writer, "/w/c", b"x").await; // not watched
    delete(&writer, "/w/c").await;
    delete(&writer, "/w").await;
    let expected = [
        (EventType::NodeCreated, "/w"),
        (EventType::NodeDataChanged, "/w"),
        (EventType::NodeDataChanged, "/w"),
        (EventType::NodeChildrenChanged, "/w"),
        (EventType::NodeChildrenChanged, "/w"),
        (EventType::NodeDeleted, "/w"),
    ];
    assert_events(&mut events, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_watch_sees_descendants_without_child_events() {
    let server = TestServer::start();
    let watcher = connect(&server).await;
    let writer = connect(&server).await;
    mk(&writer, "/r", b"").await;
    let mut events =
        within("addWatch", watcher.watch("/r", AddWatchMode::PersistentRecursive)).await.unwrap();
    mk(&writer, "/r/a", b"").await;
    mk(&writer, "/r/a/b", b"").await;
    set_data(&writer, "/r/a/b", b"x").await;
    let (_, seq) = create(&writer, "/r/a/s-", b"", CreateMode::EphemeralSequential).await;
    mk(&writer, "/rx", b"").await; // a sibling with a common prefix is not below /r
    delete(&writer, "/r/a/b").await;
    set_data(&writer, "/r", b"top").await;
    let expected = [
        (EventType::NodeCreated, "/r/a"),
        (EventType::NodeCreated, "/r/a/b"),
        (EventType::NodeDataChanged, "/r/a/b"),
        (EventType::NodeCreated, seq.as_str()),
        (EventType::NodeDeleted, "/r/a/b"),
        (EventType::NodeDataChanged, "/r"),
    ];
    assert_events(&mut events, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_remove_watches_then_no_event() {
    let server = TestServer::start();
    let writer = connect(&server).await;
    mk(&writer, "/rm", b"").await;
    let mut raw = RawSession::connect(&server, 10_000);
    let no_watcher = ErrorCode::NoWatcher.code();
    assert_eq!(raw.code(OpCode::CheckWatches, &watch_type("/rm", watcher_type::DATA)), no_watcher);

    assert_eq!(raw.code(OpCode::GetData, &watch_on("/rm")), 0);
    assert_eq!(raw.code(OpCode::GetChildren, &watch_on("/rm")), 0);
    assert_eq!(raw.code(OpCode::CheckWatches, &watch_type("/rm", watcher_type::DATA)), 0);
    assert_eq!(raw.code(OpCode::CheckWatches, &watch_type("/rm", watcher_type::CHILDREN)), 0);
    assert_eq!(raw.code(OpCode::CheckWatches, &watch_type("/rm", watcher_type::ANY)), 0);

    assert_eq!(raw.code(OpCode::RemoveWatches, &watch_type("/rm", watcher_type::DATA)), 0);
    assert_eq!(raw.code(OpCode::CheckWatches, &watch_type("/rm", watcher_type::DATA)), no_watcher);
    assert_eq!(raw.code(OpCode::CheckWatches, &watch_type("/rm", watcher_type::CHILDREN)), 0);
    assert_eq!(raw.code(OpCode::RemoveWatches, &watch_type("/rm", watcher_type::DATA)), no_watcher);
    assert_eq!(raw.code(OpCode::RemoveWatches, &watch_type("/rm", watcher_type::ANY)), 0);
    assert_eq!(raw.code(OpCode::CheckWatches, &watch_type("/rm", watcher_type::ANY)), no_watcher);

    set_data(&writer, "/rm", b"x").await;
    mk(&writer, "/rm/c", b"").await;
    raw.ping();
    assert!(raw.events.is_empty(), "removed watches fired: {:?}", raw.events);
    // Apache: removeWatches sends no DataWatchRemoved/ChildWatchRemoved event over the wire;
    // those are synthesised by the Java client.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_watches_on_the_wire_and_their_removal() {
    let server = TestServer::start();
    let writer = connect(&server).await;
    mk(&writer, "/pw", b"").await;
    let mut raw = RawSession::connect(&server, 10_000);
    let add = |mode| AddWatchRequest { path: "/pw".into(), mode };
    assert_eq!(raw.code(OpCode::AddWatch, &add(add_watch_mode::PERSISTENT)), 0);
    assert_eq!(raw.code(OpCode::AddWatch, &add(add_watch_mode::PERSISTENT_RECURSIVE)), 0);
    // Apache keeps one mode per (connection, path): the recursive watch replaced the plain
    // persistent one, so a child create yields NodeCreated for the child and no
    // NodeChildrenChanged for /pw.
    mk(&writer, "/pw/c", b"").await;
    raw.ping();
    let events: Vec<_> = raw.events.drain(..).map(|e| (e.event_type, e.path)).collect();
    assert_eq!(events, [(Ev::NodeCreated as i32, "/pw/c".to_string())]);

    // checkWatches sees a persistent watch under every classic type; the 3.8 WatcherType
    // enum has no 4/5 (persistent kinds), which Apache answers with MarshallingError.
    for kind in [watcher_type::CHILDREN, watcher_type::DATA, watcher_type::ANY] {
        assert_eq!(raw.code(OpCode::CheckWatches, &watch_type("/pw", kind)), 0, "type {kind}");
    }
    for kind in [4, 5] {
        let code = raw.code(OpCode::CheckWatches, &watch_type("/pw", kind));
        assert_eq!(code, ErrorCode::MarshallingError.code(), "type {kind}");
    }
    assert_eq!(raw.code(OpCode::RemoveWatches, &watch_type("/pw", watcher_type::ANY)), 0);
    let no_watcher = ErrorCode::NoWatcher.code();
    assert_eq!(raw.code(OpCode::CheckWatches, &watch_type("/pw", watcher_type::ANY)), no_watcher);
    set_data(&writer, "/pw/c", b"x").await;
    set_data(&writer, "/pw", b"x").await;
    raw.ping();
    assert!(raw.events.is_empty(), "removed persistent watch fired: {:?}", raw.events);
}
