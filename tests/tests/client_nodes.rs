//! Znode operations through the `zookeeper-client` crate (and a raw socket where the crate
//! validates on the client side): every create mode, exact Stat bookkeeping, versions,
//! children, sync, getEphemerals, getAllChildrenNumber, containers, TTL nodes, and the
//! error codes of each path. Runs against ringkeeper, or Apache with
//! `RINGKEEPER_TEST_TARGET=apache`.

mod common;

use std::time::Duration;

use common::*;
use ringkeeper_engine::proto::codes::{ErrorCode, OpCode};
use ringkeeper_engine::proto::records::{DeleteRequest, GetChildrenResponse};
use ringkeeper_tests::TestServer;
use zookeeper_client::{self as zk, CreateMode};

/// Config that makes containers and TTL nodes usable and reaped quickly. Apache reads
/// `znode.container.checkIntervalMs` as a JVM property (the harness passes it on);
/// `extendedTypesEnabled` is what enables TTL nodes.
const FAST_REAPER: &str = "extendedTypesEnabled=true\nznode.container.checkIntervalMs=500";

/// The sequence suffix of a sequential node: ten digits.
fn suffix(path: &str) -> &str {
    &path[path.len() - 10..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_create_mode_and_its_stat() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let session = client.session_id().0;

    let (stat, path) = create(&client, "/persistent", b"p", CreateMode::Persistent).await;
    assert_eq!(path, "/persistent");
    assert_eq!((stat.czxid, stat.mzxid, stat.pzxid), (stat.czxid, stat.czxid, stat.czxid));
    assert_eq!((stat.version, stat.cversion, stat.aversion), (0, 0, 0));
    assert_eq!((stat.ephemeral_owner, stat.data_length, stat.num_children), (0, 1, 0));
    assert_eq!(stat.ctime, stat.mtime);

    let (stat, _) = create(&client, "/ephemeral", b"", CreateMode::Ephemeral).await;
    assert_eq!(stat.ephemeral_owner, session, "ephemeral owner is the session id");

    let (_, seq) = create(&client, "/persistent/s-", b"", CreateMode::PersistentSequential).await;
    assert_eq!(seq, "/persistent/s-0000000000");
    let (stat, eseq) = create(&client, "/persistent/e-", b"", CreateMode::EphemeralSequential).await;
    assert_eq!(eseq, "/persistent/e-0000000001");
    assert_eq!(stat.ephemeral_owner, session);

    let (stat, _) = create(&client, "/container", b"", CreateMode::Container).await;
    assert_eq!(stat.ephemeral_owner, 0, "containers have no owner");
    let got = stat_of(&client, "/container").await.unwrap();
    assert_eq!(got, stat, "exists returns the Stat create2 returned");

    let parent = stat_of(&client, "/persistent").await.unwrap();
    assert_eq!((parent.num_children, parent.cversion), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_suffix_comes_from_parent_cversion() {
    let server = TestServer::start();
    let client = connect(&server).await;
    mk(&client, "/p", b"").await;
    mk(&client, "/p/a", b"").await; // cversion 1
    let (_, first) = create(&client, "/p/s-", b"", CreateMode::PersistentSequential).await;
    assert_eq!(suffix(&first), "0000000001");
    // Apache 3.8 surprise: after a delete the parent's Stat shows cversion 3, yet the next
    // sequence suffixes are 2 and 3: the suffix is taken from the request pipeline's view of
    // the parent's cversion, where deletes do not count, while the Stat counts both.
    delete(&client, "/p/a").await;
    assert_eq!(stat_of(&client, "/p").await.unwrap().cversion, 3, "the delete did bump cversion");
    let (_, second) = create(&client, "/p/s-", b"", CreateMode::EphemeralSequential).await;
    assert_eq!(suffix(&second), "0000000002");
    let (_, third) = create(&client, "/p/s-", b"", CreateMode::PersistentSequential).await;
    assert_eq!(suffix(&third), "0000000003");
    assert_eq!(stat_of(&client, "/p").await.unwrap().cversion, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stat_bookkeeping_is_exact_and_zxids_step_by_one() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let created = mk(&client, "/s", b"abc").await;
    let z = created.czxid;

    let after_set = within("set", client.set_data("/s", b"hello", Some(0))).await.unwrap();
    assert_eq!((after_set.czxid, after_set.mzxid, after_set.pzxid), (z, z + 1, z));
    assert_eq!((after_set.version, after_set.data_length), (1, 5));
    assert!(after_set.mtime >= created.mtime);
    assert_eq!(after_set.ctime, created.ctime);

    let child = mk(&client, "/s/c", b"").await;
    assert_eq!(child.czxid, z + 2);
    let parent = stat_of(&client, "/s").await.unwrap();
    assert_eq!((parent.mzxid, parent.pzxid, parent.cversion, parent.num_children), (z + 1, z + 2, 1, 1));
    assert_eq!(parent.version, 1, "a child create does not change the data version");

    within("delete", client.delete("/s/c", Some(0))).await.unwrap();
    let parent = stat_of(&client, "/s").await.unwrap();
    assert_eq!((parent.pzxid, parent.cversion, parent.num_children), (z + 3, 2, 0));

    let acl_stat = within("setACL", client.set_acl("/s", &zk::Acls::anyone_all(), Some(0))).await.unwrap();
    assert_eq!((acl_stat.aversion, acl_stat.mzxid, acl_stat.version), (1, z + 1, 1));

    // Reads do not consume zxids: the next write is z + 5.
    within("get", client.get_data("/s")).await.unwrap();
    let next = mk(&client, "/t", b"").await;
    assert_eq!(next.czxid, z + 5);

    let (data, stat) = within("get", client.get_data("/s")).await.unwrap();
    assert_eq!((data.as_slice(), stat), (&b"hello"[..], acl_stat));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_guard_set_data_delete_and_set_acl() {
    let server = TestServer::start();
    let client = connect(&server).await;
    mk(&client, "/v", b"0").await;
    assert_eq!(within("set", client.set_data("/v", b"x", Some(7))).await.unwrap_err(), zk::Error::BadVersion);
    assert_eq!(within("set", client.set_data("/v", b"1", Some(0))).await.unwrap().version, 1);
    assert_eq!(within("set", client.set_data("/v", b"2", None)).await.unwrap().version, 2);
    assert_eq!(within("delete", client.delete("/v", Some(1))).await.unwrap_err(), zk::Error::BadVersion);
    let bad_acl = within("setACL", client.set_acl("/v", &zk::Acls::anyone_all(), Some(3))).await;
    assert_eq!(bad_acl.unwrap_err(), zk::Error::BadVersion);
    within("delete", client.delete("/v", Some(2))).await.unwrap();
    assert_eq!(stat_of(&client, "/v").await, None);
    assert_eq!(within("delete", client.delete("/v", None)).await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(within("set", client.set_data("/v", b"", None)).await.unwrap_err(), zk::Error::NoNode);
    assert_eq!(within("get", client.get_data("/v")).await.unwrap_err(), zk::Error::NoNode);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_codes_of_create_and_delete() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let persistent = open(CreateMode::Persistent);
    assert_eq!(create_err(&client, "/missing/child", &persistent).await, zk::Error::NoNode);
    mk(&client, "/a", b"").await;
    assert_eq!(create_err(&client, "/a", &persistent).await, zk::Error::NodeExists);
    mk(&client, "/a/b", b"").await;
    assert_eq!(within("delete", client.delete("/a", None)).await.unwrap_err(), zk::Error::NotEmpty);
    create(&client, "/eph", b"", CreateMode::Ephemeral).await;
    assert_eq!(create_err(&client, "/eph/child", &persistent).await, zk::Error::NoChildrenForEphemerals);
    let seq = open(CreateMode::PersistentSequential);
    assert_eq!(create_err(&client, "/eph/s-", &seq).await, zk::Error::NoChildrenForEphemerals);
    let empty_acl = CreateMode::Persistent.with_acls(zk::Acls::new(&[]));
    assert_eq!(create_err(&client, "/x", &empty_acl).await, zk::Error::InvalidAcl);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_are_a_set_and_children2_returns_parent_stat() {
    let server = TestServer::start();
    let client = connect(&server).await;
    mk(&client, "/c", b"").await;
    for name in ["zeta", "alpha", "mid", "beta"] {
        mk(&client, &format!("/c/{name}"), b"").await;
    }
    let listed = within("ls", client.list_children("/c")).await.unwrap();
    // Apache returns children in hash order, not sorted: compare as sets.
    assert_eq!(sorted(listed), ["alpha", "beta", "mid", "zeta"]);
    let (children, stat) = within("ls2", client.get_children("/c")).await.unwrap();
    assert_eq!(children.len(), 4);
    assert_eq!(stat, stat_of(&client, "/c").await.unwrap());
    assert_eq!((stat.num_children, stat.cversion), (4, 4));
    let root = sorted(within("ls /", client.list_children("/")).await.unwrap());
    assert_eq!(root, ["c", "zookeeper"], "the root holds /zookeeper");
    assert_eq!(within("ls", client.list_children("/nope")).await.unwrap_err(), zk::Error::NoNode);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_ephemerals_and_descendant_count() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let other = connect(&server).await;
    mk(&client, "/app", b"").await;
    mk(&client, "/app/x", b"").await;
    create(&client, "/app/x/e1", b"", CreateMode::Ephemeral).await;
    create(&client, "/app/e2", b"", CreateMode::Ephemeral).await;
    create(&other, "/app/theirs", b"", CreateMode::Ephemeral).await;
    create(&client, "/top", b"", CreateMode::Ephemeral).await;
    within("sync", client.sync("/app")).await.unwrap();

    let mine = sorted(within("getEphemerals", client.list_ephemerals("/")).await.unwrap());
    assert_eq!(mine, ["/app/e2", "/app/x/e1", "/top"]);
    let under = sorted(within("getEphemerals", client.list_ephemerals("/app/x")).await.unwrap());
    assert_eq!(under, ["/app/x/e1"], "prefix filter on the session's own ephemerals");

    // Descendants, excluding the node itself.
    assert_eq!(within("count", client.count_descendants_number("/app")).await.unwrap(), 4);
    assert_eq!(within("count", client.count_descendants_number("/app/x/e1")).await.unwrap(), 0);
    let missing = within("count", client.count_descendants_number("/none")).await;
    assert_eq!(missing.unwrap_err(), zk::Error::NoNode);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_nodes_are_unimplemented_without_extended_types() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let ttl = open(CreateMode::Persistent).with_ttl(Duration::from_secs(5));
    assert_eq!(create_err(&client, "/ttl", &ttl).await, zk::Error::Unimplemented);
    assert_eq!(stat_of(&client, "/ttl").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_node_expires_once_idle_and_childless() {
    let server = TestServer::start_with(FAST_REAPER);
    let client = connect(&server).await;
    let ttl = open(CreateMode::Persistent).with_ttl(Duration::from_millis(1500));
    let (stat, _) = within("create ttl", client.create("/ttl", b"t", &ttl)).await.unwrap();
    assert_eq!(stat.ephemeral_owner, 0, "a TTL node's owner field is hidden from clients");
    let seq_ttl = open(CreateMode::PersistentSequential).with_ttl(Duration::from_millis(1500));
    let (_, seq) = within("create seq ttl", client.create("/ttls-", b"", &seq_ttl)).await.unwrap();
    let seq_path = format!("/ttls-{seq}");
    assert!(stat_of(&client, "/ttl").await.is_some());
    eventually("TTL nodes reaped", Duration::from_secs(20), || async {
        stat_of(&client, "/ttl").await.is_none() && stat_of(&client, &seq_path).await.is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_is_deleted_after_its_last_child_goes() {
    let server = TestServer::start_with(FAST_REAPER);
    let client = connect(&server).await;
    create(&client, "/used", b"", CreateMode::Container).await;
    create(&client, "/never-used", b"", CreateMode::Container).await;
    mk(&client, "/used/child", b"").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(stat_of(&client, "/used").await.is_some(), "a container with children stays");
    delete(&client, "/used/child").await;
    eventually("empty container reaped", Duration::from_secs(20), || async {
        stat_of(&client, "/used").await.is_none()
    })
    .await;
    // A container that never had a child is kept (Apache: cversion 0 is never reaped unless
    // znode.container.maxNeverUsedIntervalMs is set).
    assert!(stat_of(&client, "/never-used").await.is_some());
}

/// Raw result codes of create, sequential create, exists and delete for one path.
struct PathCase {
    path: &'static str,
    create: i32,
    create_sequential: i32,
    exists: i32,
    delete: i32,
}

const NO_NODE: i32 = -101;
const BAD_ARGS: i32 = -8;

/// Apache 3.8's answers, checked in this order on a tree holding `/a` (the sequential
/// creates that succeed add `/a/0000000000` and `/a/.0000000001`). Surprises, all required
/// of ringkeeper: reads do not validate paths at all (only NUL is refused) and answer NoNode,
/// and `exists("")` finds the root; create looks the parent up before validating the path, so
/// most malformed paths are NoNode rather than BadArguments; delete does the same.
const PATH_CASES: &[PathCase] = &[
    PathCase { path: "a/b", create: NO_NODE, create_sequential: NO_NODE, exists: NO_NODE, delete: NO_NODE },
    PathCase { path: "/a/", create: BAD_ARGS, create_sequential: 0, exists: NO_NODE, delete: NO_NODE },
    PathCase { path: "/a//b", create: NO_NODE, create_sequential: NO_NODE, exists: NO_NODE, delete: NO_NODE },
    PathCase {
        path: "/a/./b",
        create: NO_NODE,
        create_sequential: NO_NODE,
        exists: NO_NODE,
        delete: NO_NODE,
    },
    PathCase {
        path: "/a/../b",
        create: NO_NODE,
        create_sequential: NO_NODE,
        exists: NO_NODE,
        delete: NO_NODE,
    },
    PathCase { path: "", create: BAD_ARGS, create_sequential: BAD_ARGS, exists: 0, delete: BAD_ARGS },
    PathCase {
        path: "/a\u{0}b",
        create: BAD_ARGS,
        create_sequential: BAD_ARGS,
        exists: BAD_ARGS,
        delete: BAD_ARGS,
    },
    PathCase { path: "/a/b/", create: NO_NODE, create_sequential: NO_NODE, exists: NO_NODE, delete: NO_NODE },
    PathCase { path: "/a//", create: NO_NODE, create_sequential: NO_NODE, exists: NO_NODE, delete: NO_NODE },
    PathCase { path: "/a/.", create: BAD_ARGS, create_sequential: 0, exists: NO_NODE, delete: NO_NODE },
    PathCase { path: "a", create: BAD_ARGS, create_sequential: BAD_ARGS, exists: NO_NODE, delete: BAD_ARGS },
];

#[test]
fn malformed_paths_get_apaches_error_codes() {
    let server = TestServer::start();
    let mut raw = RawSession::connect(&server, 10_000);
    assert_eq!(raw.code(OpCode::Create, &create_request("/a", 0)), 0);
    for case in PATH_CASES {
        let path = case.path;
        let exists = no_watch(path);
        let delete = DeleteRequest { path: path.into(), version: -1 };
        let got = [
            raw.code(OpCode::Create, &create_request(path, 0)),
            raw.code(OpCode::Create, &create_request(path, 2)),
            raw.code(OpCode::Exists, &exists),
            raw.code(OpCode::Delete, &delete),
        ];
        let want = [case.create, case.create_sequential, case.exists, case.delete];
        assert_eq!(got, want, "create/sequential/exists/delete of {path:?}");
    }
    let listed = raw.call(OpCode::GetChildren, &no_watch("/a")).decode::<GetChildrenResponse>();
    assert_eq!(sorted(listed.children), [".0000000001", "0000000000"]);
    // The root cannot be created or deleted.
    let root = raw.code(OpCode::Create, &create_request("/", 0));
    assert_eq!(root, ErrorCode::NodeExists.code(), "Apache: creating / is NodeExists");
    let delete_root = raw.code(OpCode::Delete, &DeleteRequest { path: "/".into(), version: -1 });
    assert_eq!(delete_root, BAD_ARGS, "Apache: deleting / is BadArguments");
    // /zookeeper is an ordinary node for creates below it in Apache 3.8.
    assert_eq!(raw.code(OpCode::Create, &create_request("/zookeeper/x", 0)), 0);
}
