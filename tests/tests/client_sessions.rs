//! Sessions: timeout negotiation, expiry of a silent session (its ephemerals go and their
//! watches fire in another session), explicit close, resuming a session on a new connection
//! with the right password, and the refusals: wrong password, expired session, a client that
//! has seen a newer zxid than the server.

mod common;

use std::time::Duration;

use common::*;
use ringkeeper_engine::proto::codes::OpCode;
use ringkeeper_engine::proto::records::{ConnectRequest, ConnectResponse};
use ringkeeper_engine::proto::Jute;
use ringkeeper_tests::TestServer;
use zookeeper_client::EventType;

/// The smallest timeout the default config allows (2 × tickTime).
const MIN_TIMEOUT_MS: i32 = 4_000;

/// Expiry is checked on tick boundaries: allow the timeout, a tick, and slack.
const EXPIRY_BOUND: Duration = Duration::from_secs(20);

/// What the server answers to `request`: the decoded ConnectResponse (if any) and whether
/// it then closed the connection.
fn handshake(server: &TestServer, request: &ConnectRequest) -> (Option<ConnectResponse>, bool) {
    let (mut stream, answer) = raw_handshake(server, request);
    match answer {
        Frame::Data(bytes) => {
            let response = ConnectResponse::from_bytes(&bytes).expect("decode ConnectResponse");
            let closed = response.timeout_ms <= 0 && closes(&mut stream);
            (Some(response), closed)
        }
        Frame::Closed => (None, true),
    }
}

/// Asserts the answer Apache gives a session it will not (re)open: a ConnectResponse with
/// timeout 0, session id 0 and a zeroed 16-byte password, then the connection closes.
fn assert_refused(server: &TestServer, request: &ConnectRequest) {
    let (response, closed) = handshake(server, request);
    let response = response.expect("a ConnectResponse before closing");
    assert_eq!((response.timeout_ms, response.session_id), (0, 0), "{response:?}");
    assert_eq!(response.passwd, vec![0; 16]);
    assert!(closed, "connection must close after the refusal");
}

#[test]
fn session_timeout_is_clamped_to_two_and_twenty_ticks() {
    let server = TestServer::start();
    assert_eq!(RawSession::connect(&server, 1_000).response.timeout_ms, MIN_TIMEOUT_MS);
    assert_eq!(RawSession::connect(&server, 100_000).response.timeout_ms, 40_000);
    let session = RawSession::connect(&server, 7_000);
    assert_eq!(session.response.timeout_ms, 7_000);
    assert_eq!(session.response.passwd.len(), 16);
    assert_eq!(session.response.read_only, Some(false), "read-only byte echoed to 3.5+ clients");
    assert_ne!(session.session_id(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_session_expires_and_its_ephemerals_go() {
    let server = TestServer::start();
    let observer = connect(&server).await;
    let mut doomed = RawSession::connect(&server, MIN_TIMEOUT_MS);
    assert_eq!(doomed.code(OpCode::Create, &create_request("/lease", 1)), 0);
    let stat = stat_of(&observer, "/lease").await.unwrap();
    assert_eq!(stat.ephemeral_owner, doomed.session_id());
    let (_, gone) = within("exists", observer.check_and_watch_stat("/lease")).await.unwrap();

    // No pings from now on: the TCP connection stays open but the session goes silent.
    let event = within_for(EXPIRY_BOUND, "ephemeral deleted by expiry", gone.changed()).await;
    assert_event(&event, EventType::NodeDeleted, "/lease");
    assert_eq!(stat_of(&observer, "/lease").await, None);
    assert!(closes(&mut doomed.stream), "the expired session's connection is closed");

    // An expired session cannot be resumed.
    assert_refused(&server, &doomed.resume_request());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_session_deletes_its_ephemerals_at_once() {
    let server = TestServer::start();
    let observer = connect(&server).await;
    let mut owner = RawSession::connect(&server, 30_000);
    assert_eq!(owner.code(OpCode::Create, &create_request("/e1", 1)), 0);
    assert_eq!(owner.code(OpCode::Create, &create_request("/e2-", 3)), 0);
    let (_, gone) = within("exists", observer.check_and_watch_stat("/e1")).await.unwrap();
    let (_, children) = within("ls", observer.list_and_watch_children("/")).await.unwrap();

    let xid = owner.send_raw_op(OpCode::CloseSession as i32, &[]);
    let reply = owner.reply_to(xid).expect("a reply to closeSession");
    assert_eq!(reply.header.err, 0);
    assert!(closes(&mut owner.stream), "server closes the connection after closeSession");

    assert_event(&next_oneshot(gone).await, EventType::NodeDeleted, "/e1");
    assert_event(&next_oneshot(children).await, EventType::NodeChildrenChanged, "/");
    assert_eq!(sorted(within("ls", observer.list_children("/")).await.unwrap()), ["zookeeper"]);
    assert_refused(&server, &owner.resume_request());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_resumes_on_a_new_connection_with_its_password() {
    let server = TestServer::start();
    let observer = connect(&server).await;
    let mut first = RawSession::connect(&server, 10_000);
    assert_eq!(first.code(OpCode::Create, &create_request("/mine", 1)), 0);
    let resume = first.resume_request();
    first.stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(first);

    // A wrong password is refused, and does not end the session.
    let mut wrong = resume.clone();
    wrong.passwd[0] ^= 0xff;
    assert_refused(&server, &wrong);

    let mut again = RawSession::connect_with(&server, &resume);
    assert_eq!(again.session_id(), resume.session_id);
    assert_eq!(again.response.timeout_ms, 10_000);
    assert_eq!(again.response.passwd, resume.passwd, "same password handed back");
    let stat = stat_of(&observer, "/mine").await.expect("ephemeral survives the reconnect");
    assert_eq!(stat.ephemeral_owner, resume.session_id);
    // The resumed connection works and still owns the session's ephemerals.
    assert_eq!(again.code(OpCode::Exists, &no_watch("/mine")), 0);
    assert_eq!(again.code(OpCode::Create, &create_request("/mine/child", 0)), -108);
}

#[test]
fn client_ahead_of_the_server_is_refused_without_a_response() {
    let server = TestServer::start();
    let mut request = new_session_request(10_000);
    request.last_zxid_seen = 1 << 40;
    let (response, closed) = handshake(&server, &request);
    // Apache: "Refusing session request for client ... as it has seen zxid ..." and closes
    // without any ConnectResponse.
    assert_eq!(response, None);
    assert!(closed);
    // The server itself is fine.
    RawSession::connect(&server, 10_000).ping();
}
