//! Shared helpers for the `client_*` and ensemble integration tests.
//!
//! Two ways to talk to the server under test (started by [`ringkeeper_tests::TestServer`]):
//! - the independent `zookeeper-client` crate (tokio), through [`connect`] and the small
//!   wrappers here, every await bounded by [`within`];
//! - a raw blocking socket, [`RawSession`], for what that crate does not expose or validates
//!   away on the client side (session password, checkWatches/removeWatches, whoAmI, unknown
//!   opcodes, bad paths, malformed frames). Frames are a 4-byte big-endian length and a jute
//!   payload built from `ringkeeper_engine::proto` records; every read has a socket timeout.
#![allow(dead_code)]

pub mod disk;

use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringkeeper_engine::proto::codes::OpCode;
use ringkeeper_engine::proto::records::{
    Acl, ConnectRequest, ConnectResponse, CreateRequest, Id, PathWatchRequest, ReplyHeader, RequestHeader,
    WatcherEvent,
};
use ringkeeper_engine::proto::Jute;
use ringkeeper_tests::sim::Rng;
use ringkeeper_tests::wire;
use ringkeeper_tests::TestServer;
use zookeeper_client as zk;

/// Upper bound for any single step of a test (one request, one awaited event).
pub const STEP: Duration = Duration::from_secs(10);

/// Awaits `fut` for at most [`STEP`]; panics naming `what` when it takes longer.
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(STEP, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {STEP:?}: {what}"),
    }
}

/// Like [`within`] with an explicit bound, for steps that wait on server timers.
pub async fn within_for<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Asserts that `fut` does NOT complete within `wait` (e.g. a watch that must not fire).
pub async fn never<F: Future>(what: &str, wait: Duration, fut: F)
where
    F::Output: std::fmt::Debug,
{
    if let Ok(out) = tokio::time::timeout(wait, fut).await {
        panic!("expected nothing within {wait:?} for {what}, got {out:?}");
    }
}

/// Polls `check` every 100 ms until it returns true, for at most `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if within(what, check()).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("condition not met within {limit:?}: {what}");
}

/// A connected `zookeeper-client` session to `server` (session timeout 6 s, the crate default).
pub async fn connect(server: &TestServer) -> zk::Client {
    connect_via(server, zk::Client::connector()).await
}

/// Connects with a caller-configured [`zk::Connector`] (auth, session timeout, ...).
pub async fn connect_via(server: &TestServer, connector: zk::Connector) -> zk::Client {
    within("connect", connector.with_connection_timeout(STEP).connect(&server.connect_string()))
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", server.connect_string()))
}

/// World-readable-and-writable options for `mode`.
pub fn open(mode: zk::CreateMode) -> zk::CreateOptions<'static> {
    mode.with_acls(zk::Acls::anyone_all())
}

/// Creates `path` with `data` in `mode` (open ACL); returns the Stat and the created path
/// (which differs from `path` for sequential modes).
pub async fn create(
    client: &zk::Client,
    path: &str,
    data: &[u8],
    mode: zk::CreateMode,
) -> (zk::Stat, String) {
    let (stat, seq) = within(path, client.create(path, data, &open(mode)))
        .await
        .unwrap_or_else(|e| panic!("create {path} ({mode:?}): {e}"));
    let created = if seq.into_i64() >= 0 { format!("{path}{seq}") } else { path.to_string() };
    (stat, created)
}

/// Creates a persistent node with open ACL; returns its Stat.
pub async fn mk(client: &zk::Client, path: &str, data: &[u8]) -> zk::Stat {
    create(client, path, data, zk::CreateMode::Persistent).await.0
}

/// The Stat of `path`, `None` when it does not exist.
pub async fn stat_of(client: &zk::Client, path: &str) -> Option<zk::Stat> {
    within(path, client.check_stat(path)).await.unwrap_or_else(|e| panic!("exists {path}: {e}"))
}

/// The error a create of `path` fails with (panics when it succeeds).
pub async fn create_err(client: &zk::Client, path: &str, options: &zk::CreateOptions<'_>) -> zk::Error {
    match within(path, client.create(path, b"", options)).await {
        Ok(_) => panic!("create {path} unexpectedly succeeded"),
        Err(e) => e,
    }
}

/// Sets the data of `path` (any version); returns the new Stat.
pub async fn set_data(client: &zk::Client, path: &str, data: &[u8]) -> zk::Stat {
    within(path, client.set_data(path, data, None)).await.unwrap_or_else(|e| panic!("set {path}: {e}"))
}

/// Deletes `path` (any version).
pub async fn delete(client: &zk::Client, path: &str) {
    within(path, client.delete(path, None)).await.unwrap_or_else(|e| panic!("delete {path}: {e}"))
}

/// Awaits the next event of a one-shot watcher, bounded.
pub async fn next_oneshot(watcher: zk::OneshotWatcher) -> zk::WatchedEvent {
    within("one-shot watch event", watcher.changed()).await
}

/// Awaits the next event of a persistent watcher, bounded.
pub async fn next_event(watcher: &mut zk::PersistentWatcher) -> zk::WatchedEvent {
    within("persistent watch event", watcher.changed()).await
}

/// Asserts an event's type and path.
pub fn assert_event(event: &zk::WatchedEvent, event_type: zk::EventType, path: &str) {
    assert_eq!((event.event_type, event.path.as_str()), (event_type, path), "event {event:?}");
}

/// Asserts that the next events of a persistent watcher are `expected` (type and path), in order.
pub async fn assert_events(watcher: &mut zk::PersistentWatcher, expected: &[(zk::EventType, &str)]) {
    for &(event_type, path) in expected {
        assert_event(&next_event(watcher).await, event_type, path);
    }
}

/// Sorted copy, to compare child lists as sets (Apache does not sort children).
pub fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

/// `world:anyone` with all permissions, as a wire record.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }]
}

/// A raw CreateRequest for `path` with `flags` (0 persistent, 1 ephemeral, 2 sequential, ...).
pub fn create_request(path: &str, flags: i32) -> CreateRequest {
    CreateRequest { path: path.into(), data: Some(Vec::new()), acl: open_acl(), flags }
}

/// A raw getData/exists/getChildren request for `path` that sets a watch.
pub fn watch_on(path: &str) -> PathWatchRequest {
    PathWatchRequest { path: path.into(), watch: true }
}

/// A raw getData/exists/getChildren request for `path` without a watch.
pub fn no_watch(path: &str) -> PathWatchRequest {
    PathWatchRequest { path: path.into(), watch: false }
}

/// What a raw read observed.
#[derive(Debug)]
pub enum Frame {
    /// A complete frame payload.
    Data(Vec<u8>),
    /// The server closed (EOF or reset).
    Closed,
}

/// A reply split into header and body.
#[derive(Debug)]
pub struct Reply {
    pub header: ReplyHeader,
    pub body: Vec<u8>,
}

impl Reply {
    /// Decodes the body as `T`.
    pub fn decode<T: Jute>(&self) -> T {
        T::from_bytes(&self.body).unwrap_or_else(|e| panic!("decode reply body: {e:?}"))
    }
}

/// A raw protocol session over a blocking socket with read/write timeouts of [`STEP`].
/// Never sends pings on its own: a test that stops calling it lets the session expire.
pub struct RawSession {
    pub stream: TcpStream,
    pub response: ConnectResponse,
    next_xid: i32,
    /// Watch notifications read while waiting for a reply, oldest first.
    pub events: Vec<WatcherEvent>,
}

/// A ConnectRequest for a new session with `timeout_ms`, as 3.5+ clients send it.
pub fn new_session_request(timeout_ms: i32) -> ConnectRequest {
    ConnectRequest { timeout_ms, passwd: vec![0; 16], read_only: Some(false), ..Default::default() }
}

/// Opens a TCP connection to `server` with [`STEP`] timeouts.
pub fn raw_stream(server: &TestServer) -> TcpStream {
    raw_stream_to(server.addr())
}

/// Opens a TCP connection to `addr` (any member of an ensemble) with [`STEP`] timeouts.
pub fn raw_stream_to(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, STEP).expect("tcp connect");
    stream.set_read_timeout(Some(STEP)).unwrap();
    stream.set_write_timeout(Some(STEP)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// One request frame's payload: the RequestHeader, then the encoded `body` (a whole frame,
/// with its length, is [`wire::push_request`]; payloads are for tests that mangle them).
pub fn request_payload(xid: i32, op: i32, body: &[u8]) -> Vec<u8> {
    let mut payload = RequestHeader { xid, op }.to_bytes();
    payload.extend_from_slice(body);
    payload
}

/// Writes one frame: big-endian length, then `payload`.
pub fn write_frame(stream: &mut TcpStream, payload: &[u8]) -> std::io::Result<()> {
    let mut buf = (payload.len() as u32).to_be_bytes().to_vec();
    buf.extend_from_slice(payload);
    stream.write_all(&buf)
}

/// Reads one frame, or [`Frame::Closed`] on EOF/reset; panics on timeout.
pub fn read_frame(stream: &mut TcpStream) -> Frame {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("no frame from server within {STEP:?}")
        }
        Err(_) => return Frame::Closed,
    }
    let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
    match stream.read_exact(&mut payload) {
        Ok(()) => Frame::Data(payload),
        Err(_) => Frame::Closed,
    }
}

/// Reads one frame and splits it into ReplyHeader and body (a notification has xid -1);
/// `None` once the server closed.
pub fn read_reply_frame(stream: &mut TcpStream) -> Option<Reply> {
    let Frame::Data(bytes) = read_frame(stream) else { return None };
    let (header, body) = wire::split_reply(&bytes).expect("decode ReplyHeader");
    Some(Reply { header, body: body.to_vec() })
}

/// Whether the server closes `stream` within [`STEP`] (discarding any frames before that).
pub fn closes(stream: &mut TcpStream) -> bool {
    let deadline = Instant::now() + STEP;
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
            Err(_) => return true,
        }
    }
    false
}

/// Sends a ConnectRequest on a fresh connection; returns the stream and the server's answer.
pub fn raw_handshake(server: &TestServer, request: &ConnectRequest) -> (TcpStream, Frame) {
    raw_handshake_to(server.addr(), request)
}

/// [`raw_handshake`] with a server given by address.
pub fn raw_handshake_to(addr: SocketAddr, request: &ConnectRequest) -> (TcpStream, Frame) {
    let mut stream = raw_stream_to(addr);
    write_frame(&mut stream, &request.to_bytes()).expect("send ConnectRequest");
    let answer = read_frame(&mut stream);
    (stream, answer)
}

impl RawSession {
    /// A new session with `timeout_ms`.
    pub fn connect(server: &TestServer, timeout_ms: i32) -> RawSession {
        Self::connect_with(server, &new_session_request(timeout_ms))
    }

    /// A session from an explicit ConnectRequest (e.g. resuming an id with its password).
    pub fn connect_with(server: &TestServer, request: &ConnectRequest) -> RawSession {
        Self::connect_with_to(server.addr(), request)
    }

    /// A new session with `timeout_ms` on the server at `addr` (any ensemble member).
    pub fn connect_to(addr: SocketAddr, timeout_ms: i32) -> RawSession {
        Self::connect_with_to(addr, &new_session_request(timeout_ms))
    }

    /// A session from an explicit ConnectRequest on the server at `addr`.
    pub fn connect_with_to(addr: SocketAddr, request: &ConnectRequest) -> RawSession {
        let (stream, answer) = raw_handshake_to(addr, request);
        let Frame::Data(bytes) = answer else { panic!("server closed during handshake") };
        let response = ConnectResponse::from_bytes(&bytes).expect("decode ConnectResponse");
        assert!(response.timeout_ms > 0, "session refused: {response:?}");
        Self::from_handshake(stream, response)
    }

    /// A session on `stream` whose handshake the caller did (see [`raw_handshake_to`]).
    pub fn from_handshake(stream: TcpStream, response: ConnectResponse) -> RawSession {
        RawSession { stream, response, next_xid: 1, events: Vec::new() }
    }

    pub fn session_id(&self) -> i64 {
        self.response.session_id
    }

    /// The ConnectRequest that resumes this session on a new connection.
    pub fn resume_request(&self) -> ConnectRequest {
        ConnectRequest {
            timeout_ms: self.response.timeout_ms,
            session_id: self.response.session_id,
            passwd: self.response.passwd.clone(),
            read_only: Some(false),
            ..Default::default()
        }
    }

    /// Sends a request with the next xid; returns that xid.
    pub fn send(&mut self, op: OpCode, body: &impl Jute) -> i32 {
        self.send_raw_op(op as i32, &body.to_bytes())
    }

    /// Sends a request with an arbitrary opcode number and body bytes.
    pub fn send_raw_op(&mut self, op: i32, body: &[u8]) -> i32 {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.send_with_xid(xid, op, body);
        xid
    }

    /// Sends a request under a fixed xid (the special ones: -2 ping, -4 auth, ...).
    pub fn send_with_xid(&mut self, xid: i32, op: i32, body: &[u8]) {
        let mut frame = Vec::new();
        wire::push_request(&mut frame, xid, op, body);
        self.stream.write_all(&frame).expect("send request");
    }

    /// Reads frames until the reply to `xid`, collecting watch events on the way; `None` if
    /// the server closed the connection instead.
    pub fn reply_to(&mut self, xid: i32) -> Option<Reply> {
        loop {
            let reply = read_reply_frame(&mut self.stream)?;
            if reply.header.xid == -1 {
                self.events.push(WatcherEvent::from_bytes(&reply.body).expect("decode WatcherEvent"));
                continue;
            }
            assert_eq!(reply.header.xid, xid, "reply out of order: {:?}", reply.header);
            return Some(reply);
        }
    }

    /// Sends `op` and waits for its reply (panics if the server closes instead).
    pub fn call(&mut self, op: OpCode, body: &impl Jute) -> Reply {
        let xid = self.send(op, body);
        self.reply_to(xid).unwrap_or_else(|| panic!("connection closed awaiting {op:?}"))
    }

    /// Sends `op` and returns only the reply's error code.
    pub fn code(&mut self, op: OpCode, body: &impl Jute) -> i32 {
        self.call(op, body).header.err
    }

    /// A ping (xid -2) and its reply: keeps the session alive and proves the link works.
    pub fn ping(&mut self) {
        self.send_with_xid(-2, OpCode::Ping as i32, &[]);
        assert!(self.reply_to(-2).is_some(), "connection closed awaiting ping reply");
    }

    /// Reads until a watch event arrives (or returns one already collected).
    pub fn next_event(&mut self) -> WatcherEvent {
        if !self.events.is_empty() {
            return self.events.remove(0);
        }
        let Some(reply) = read_reply_frame(&mut self.stream) else { panic!("closed awaiting event") };
        assert_eq!(reply.header.xid, -1, "expected a notification, got {:?}", reply.header);
        WatcherEvent::from_bytes(&reply.body).expect("decode WatcherEvent")
    }
}

/// Starts ringkeeper on `server`'s config (its data as it is) and expects it to refuse to
/// start: a non-zero exit within [`STEP`] without ever listening. Returns its output.
pub fn refused_start(server: &TestServer) -> String {
    let mut child = std::process::Command::new(ringkeeper_tests::ringkeeper_binary())
        .arg(server.config_path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let Some(status) = ringkeeper_tests::wait_exit(&mut child, STEP) else {
        let _ = child.kill();
        panic!("a server that should refuse to start did not stop within {STEP:?}");
    };
    let output = child.wait_with_output().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!status.success(), "must exit non-zero; output:\n{text}");
    assert!(!text.contains("listening on"), "must not serve:\n{text}");
    text
}

/// The resident memory of process `pid` in bytes (`VmRSS` of /proc/<pid>/status).
pub fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    let kb: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmRSS in kB");
    kb * 1024
}

/// Prints a server's RSS `growth` during `what`, and fails the test when it reached `bound`.
pub fn assert_rss_growth_below(growth: u64, bound: u64, what: &str) {
    eprintln!("server RSS grew by {} KiB {what}", growth >> 10);
    assert!(growth < bound, "RSS grew by {} MiB (bound {} MiB) {what}", growth >> 20, bound >> 20);
}

/// The random source of a randomized test, seeded from `RINGKEEPER_TEST_SEED` or else the
/// clock; the seed is printed so that a failing run can be replayed.
pub fn seeded_rng() -> Rng {
    let seed = std::env::var("RINGKEEPER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64);
    println!("seed {seed} (RINGKEEPER_TEST_SEED={seed} replays it)");
    Rng(seed)
}

/// Polls `check` every 100 ms until it returns true; panics naming `what` after `limit`.
pub fn poll_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Client address of ensemble member `i`.
pub fn addr(ensemble: &ringkeeper_tests::ensemble::Ensemble, i: usize) -> SocketAddr {
    ensemble.address(i).parse().unwrap()
}
