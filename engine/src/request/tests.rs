//! Unit tests of [`Processor`] driven by request frames: who hears which watch event when
//! ACLs keep a session out (Apache 3.8.4+, CVE-2024-23944).

use super::*;

const NOW: i64 = 1_000;
const OWNER: ConnId = ConnId::client(0, 1);
const WATCHER: ConnId = ConnId::client(0, 2);

fn frame(xid: i32, op: OpCode, body: &dyn Jute2) -> Vec<u8> {
    framed(|w| {
        RequestHeader { xid, op: op as i32 }.encode(w);
        body.encode_into(w);
    })[4..]
        .to_vec()
}

fn connected() -> Processor {
    let mut p = Processor::new(ProcessorConfig::default(), NOW, b"k");
    let req = ConnectRequest { timeout_ms: 30_000, passwd: vec![0; 16], ..Default::default() };
    for conn in [OWNER, WATCHER] {
        p.connect(conn, "10.0.0.1", "10.0.0.1:1", &req, NOW);
    }
    p
}

fn run(p: &mut Processor, conn: ConnId, xid: i32, op: OpCode, body: &dyn Jute2) -> Vec<Output> {
    p.request(conn, &frame(xid, op, body), NOW).expect("request decodes")
}

fn secret_acl() -> Vec<Acl> {
    vec![Acl { perms: perms::ALL, id: Id { scheme: "digest".into(), id: acl::digest_of("owner:pw") } }]
}

fn create(p: &mut Processor, xid: i32, path: &str, acl: Vec<Acl>) {
    let body = CreateRequest { path: path.into(), data: Some(Vec::new()), acl, flags: 0 };
    run(p, OWNER, xid, OpCode::Create, &body);
}

/// (event type, path) of every notification sent to `conn`.
fn events_to(out: &[Output], conn: ConnId) -> Vec<(i32, String)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { conn: c, frame, .. } if *c == conn => {
                let mut r = JuteReader::new(&frame[4..]);
                let header = ReplyHeader::decode(&mut r).unwrap();
                (header.xid == xid::NOTIFICATION).then(|| {
                    let e = WatcherEvent::decode(&mut r).unwrap();
                    (e.event_type, e.path)
                })
            }
            _ => None,
        })
        .collect()
}

#[test]
fn watch_events_reach_only_sessions_that_may_read_the_node() {
    let mut p = connected();
    let auth = AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(b"owner:pw".to_vec()) };
    run(&mut p, OWNER, -4, OpCode::Auth, &auth);
    create(&mut p, 1, "/w", acl::open_acl_unsafe());
    for conn in [OWNER, WATCHER] {
        let body = AddWatchRequest { path: "/w".into(), mode: add_watch_mode::PERSISTENT_RECURSIVE };
        run(&mut p, conn, 2, OpCode::AddWatch, &body);
    }
    // A one-shot child watch on /w: NodeChildrenChanged is decided by /w's (open) ACL.
    run(&mut p, WATCHER, 3, OpCode::GetChildren, &PathWatchRequest { path: "/w".into(), watch: true });

    let mut out = Vec::new();
    let body = CreateRequest { path: "/w/s".into(), data: Some(Vec::new()), acl: secret_acl(), flags: 0 };
    out.extend(run(&mut p, OWNER, 4, OpCode::Create, &body));
    let body = SetDataRequest { path: "/w/s".into(), data: Some(b"x".to_vec()), version: -1 };
    out.extend(run(&mut p, OWNER, 5, OpCode::SetData, &body));
    out.extend(run(&mut p, OWNER, 6, OpCode::Delete, &DeleteRequest { path: "/w/s".into(), version: -1 }));
    create(&mut p, 7, "/w/open", acl::open_acl_unsafe());

    let ev = |t: EventType, path: &str| (t as i32, path.to_owned());
    assert_eq!(
        events_to(&out, OWNER),
        vec![
            ev(EventType::NodeCreated, "/w/s"),
            ev(EventType::NodeDataChanged, "/w/s"),
            ev(EventType::NodeDeleted, "/w/s")
        ]
    );
    assert_eq!(events_to(&out, WATCHER), vec![ev(EventType::NodeChildrenChanged, "/w")]);
}

#[test]
fn an_unknown_node_acl_fails_closed_except_for_super() {
    let unknown = tree::unknown_node_acl();
    assert!(!acl::check_perm(&unknown, perms::READ, &acl::connection_ids("10.0.0.1")));
    assert!(acl::check_perm(&unknown, perms::READ, &[Id { scheme: "super".into(), id: String::new() }]));
}
