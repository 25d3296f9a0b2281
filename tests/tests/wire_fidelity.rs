//! Differential wire fidelity: one script of raw requests is sent to Apache ZooKeeper 3.8 and
//! to ringkeeper (both started here, whatever `RINGKEEPER_TEST_TARGET` says), and every reply
//! is compared field by field. Bodies are rendered from their jute layout with null (length
//! -1) and empty kept apart, so a server answering `[]` where Apache answers null (or an
//! empty buffer where Apache answers null) fails. Only what must differ is masked: ctime and
//! mtime, and session ids (shown as `self`).
//!
//! The script covers null znode data (create, create2, createContainer, createTTL, setData,
//! getData, multiRead), multi result types per sub-op (create, create2, createContainer,
//! createTTL, a create with the container flag, setData, check, delete) and failed multis,
//! ACL lists (getACL, null and empty ACLs on create and setACL), children of a leaf and of a
//! missing node, exists/getData/delete/setData on a missing node, getEphemerals,
//! getAllChildrenNumber, whoAmI before and after addAuth, sync, and the system nodes.
//! Then ringkeeper alone is restarted (log replay, then a snapshot) and must answer null
//! data as before, and in a 3-member ensemble null data written through a follower (relayed
//! to the leader, proposed, committed) reads back as null on every member.

mod common;

use common::*;
use ringkeeper_engine::proto::codes::OpCode;
use ringkeeper_engine::proto::records::{Acl, Id};
use ringkeeper_engine::proto::{JuteReader, JuteWriter};
use ringkeeper_tests::ensemble::Ensemble;
use ringkeeper_tests::four_letter::Mode;
use ringkeeper_tests::{Target, TestServer};

/// zoo.cfg lines both servers run with (TTL nodes need extended types).
const CONFIG: &str = "extendedTypesEnabled=true";

/// The jute layout of a reply body.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// No body expected.
    Empty,
    /// CreateResponse / SyncResponse.
    Path,
    /// Create2Response.
    PathStat,
    /// ExistsResponse, SetDataResponse, SetACLResponse.
    Stat,
    /// GetDataResponse.
    DataStat,
    /// GetACLResponse.
    AclStat,
    /// GetChildrenResponse, GetEphemeralsResponse.
    Names,
    /// GetChildren2Response.
    NamesStat,
    /// GetAllChildrenNumberResponse.
    Count,
    /// WhoAmIResponse.
    ClientInfos,
    /// MultiResponse (and the multiRead reply).
    Results,
}

/// Renders jute values one by one, keeping null apart from empty.
struct Render<'a> {
    r: JuteReader<'a>,
    session_id: i64,
    out: Vec<String>,
}

impl Render<'_> {
    fn int(&mut self) -> Option<i32> {
        self.r.read_i32().ok()
    }

    fn long(&mut self) -> Option<i64> {
        self.r.read_i64().ok()
    }

    /// A buffer or ustring: `null`, or its bytes.
    fn buffer(&mut self) -> String {
        match self.int() {
            None => "<truncated>".into(),
            Some(-1) => "null".into(),
            Some(n) if n < 0 || n as usize > self.r.remaining() => format!("<bad length {n}>"),
            Some(n) => {
                let bytes = self.r.read_raw(n as usize).unwrap_or_default();
                format!("{:?}", String::from_utf8_lossy(bytes))
            }
        }
    }

    /// A vector: `null`, or its items (sorted when `sorted`: Apache keeps children in a hash set).
    fn vector(&mut self, mut item: impl FnMut(&mut Self) -> String, sorted: bool) -> String {
        match self.int() {
            None => "<truncated>".into(),
            Some(-1) => "null".into(),
            Some(n) if n < 0 => format!("<bad count {n}>"),
            Some(n) => {
                let mut items: Vec<String> = (0..n).map(|_| item(self)).collect();
                if sorted {
                    items.sort();
                }
                format!("[{}]", items.join(", "))
            }
        }
    }

    fn stat(&mut self) -> String {
        let czxid = self.long();
        let mzxid = self.long();
        let (_ctime, _mtime) = (self.long(), self.long());
        let (version, cversion, aversion) = (self.int(), self.int(), self.int());
        let owner = match self.long() {
            Some(id) if id == self.session_id && id != 0 => "self".to_string(),
            other => format!("{other:?}"),
        };
        let (data_length, num_children, pzxid) = (self.int(), self.int(), self.long());
        format!(
            "Stat(czxid {czxid:?} mzxid {mzxid:?} v {version:?} cv {cversion:?} av {aversion:?} \
             owner {owner} len {data_length:?} children {num_children:?} pzxid {pzxid:?})"
        )
    }

    fn acl(&mut self) -> String {
        let perms = self.int();
        format!("{perms:?} {}:{}", self.buffer(), self.buffer())
    }

    fn shape(&mut self, shape: Shape) {
        let rendered = match shape {
            Shape::Empty => return,
            Shape::Path => self.buffer(),
            Shape::PathStat => format!("{} {}", self.buffer(), self.stat()),
            Shape::Stat => self.stat(),
            Shape::DataStat => format!("{} {}", self.buffer(), self.stat()),
            Shape::AclStat => format!("{} {}", self.vector(Self::acl, false), self.stat()),
            Shape::Names => self.vector(Self::buffer, true),
            Shape::NamesStat => format!("{} {}", self.vector(Self::buffer, true), self.stat()),
            Shape::Count => format!("{:?}", self.int()),
            Shape::ClientInfos => self.vector(|r| format!("{}:{}", r.buffer(), r.buffer()), false),
            Shape::Results => return self.multi(),
        };
        self.out.push(rendered);
    }

    /// MultiHeader {type, done, err} and a body per result until the done marker.
    fn multi(&mut self) {
        loop {
            let (op, done, err) = (self.int(), self.r.read_bool().ok(), self.int());
            self.out.push(format!("| header op {op:?} done {done:?} err {err:?}"));
            if done != Some(false) {
                return;
            }
            let body = match op {
                Some(1) => Shape::Path,
                Some(15) => Shape::PathStat,
                Some(5) => Shape::Stat,
                Some(4) => Shape::DataStat,
                Some(8) => Shape::Names,
                Some(-1) => Shape::Count,
                Some(2 | 13) => Shape::Empty,
                _ => return self.out.push("<unknown result type>".into()),
            };
            self.shape(body);
        }
    }
}

/// The rendered reply: error code and zxid of the header, then the body, then any bytes left.
fn render(reply: &Reply, shape: Shape, session_id: i64) -> String {
    let mut render = Render { r: JuteReader::new(&reply.body), session_id, out: Vec::new() };
    if reply.header.err == 0 {
        render.shape(shape);
    }
    let left = render.r.remaining();
    if left > 0 {
        render.out.push(format!("<{left} bytes left>"));
    }
    format!("err {} zxid {} {}", reply.header.err, reply.header.zxid, render.out.join(" "))
}

/// Jute request bodies built by hand, so that null buffers and vectors can be sent.
#[derive(Default)]
struct Body(Vec<u8>);

impl Body {
    fn w(&mut self) -> JuteWriter<'_> {
        JuteWriter::new(&mut self.0)
    }
    fn string(mut self, s: &str) -> Self {
        self.w().write_string(s);
        self
    }
    fn data(mut self, data: Option<&[u8]>) -> Self {
        self.w().write_nullable_buffer(data);
        self
    }
    fn int(mut self, v: i32) -> Self {
        self.w().write_i32(v);
        self
    }
    fn long(mut self, v: i64) -> Self {
        self.w().write_i64(v);
        self
    }
    fn boolean(mut self, v: bool) -> Self {
        self.w().write_bool(v);
        self
    }
    /// An ACL vector; `None` writes a null vector.
    fn acl(mut self, acl: Option<&[Acl]>) -> Self {
        match acl {
            None => self.w().write_null(),
            Some(list) => self.w().write_vec(list, |w, a| {
                w.write_i32(a.perms);
                w.write_string(&a.id.scheme);
                w.write_string(&a.id.id);
            }),
        }
        self
    }
}

fn open() -> Vec<Acl> {
    open_acl()
}

fn create(path: &str, data: Option<&[u8]>, flags: i32) -> Vec<u8> {
    Body::default().string(path).data(data).acl(Some(&open())).int(flags).0
}

fn create_ttl(path: &str, data: Option<&[u8]>, ttl: i64) -> Vec<u8> {
    Body::default().string(path).data(data).acl(Some(&open())).int(5).long(ttl).0
}

fn set_data(path: &str, data: Option<&[u8]>) -> Vec<u8> {
    Body::default().string(path).data(data).int(-1).0
}

fn read(path: &str) -> Vec<u8> {
    Body::default().string(path).boolean(false).0
}

fn path_only(path: &str) -> Vec<u8> {
    Body::default().string(path).0
}

/// A multi (or multiRead) body: each op behind its MultiHeader, then the done marker.
fn multi(ops: &[(OpCode, Vec<u8>)]) -> Vec<u8> {
    let mut body = Body::default();
    for (op, bytes) in ops {
        body = body.int(*op as i32).boolean(false).int(-1);
        body.0.extend_from_slice(bytes);
    }
    body.int(-1).boolean(true).int(-1).0
}

/// One request of the script.
struct Step {
    name: &'static str,
    xid: Option<i32>,
    op: i32,
    body: Vec<u8>,
    shape: Shape,
}

fn step(name: &'static str, op: OpCode, body: Vec<u8>, shape: Shape) -> Step {
    Step { name, xid: None, op: op as i32, body, shape }
}

/// addAuth (xid -4) with the digest scheme and `auth` data.
fn add_auth(name: &'static str, auth: Option<&[u8]>) -> Step {
    let body = Body::default().int(0).string("digest").data(auth).0;
    Step { name, xid: Some(-4), op: OpCode::Auth as i32, body, shape: Shape::Empty }
}

fn script() -> Vec<Step> {
    use OpCode::*;
    use Shape::*;
    let digest_acl = [Acl { perms: 31, id: Id { scheme: "digest".into(), id: "u:x".into() } }];
    vec![
        step("create, null data", Create, create("/null", None, 0), Path),
        step("getData of null data", GetData, read("/null"), DataStat),
        step("exists of null data", Exists, read("/null"), Stat),
        step("create, empty data", Create, create("/empty", Some(b""), 0), Path),
        step("getData of empty data", GetData, read("/empty"), DataStat),
        step("setData null", SetData, set_data("/empty", None), Stat),
        step("getData after setData null", GetData, read("/empty"), DataStat),
        step("setData bytes over null", SetData, set_data("/null", Some(b"v")), Stat),
        step("getData after setData bytes", GetData, read("/null"), DataStat),
        step("setData null again", SetData, set_data("/null", None), Stat),
        step("create2, null data", Create2, create("/c2", None, 0), PathStat),
        step("getData of create2 null data", GetData, read("/c2"), DataStat),
        step("createContainer, null data", CreateContainer, create("/cont", None, 4), PathStat),
        step("createTTL, null data", CreateTtl, create_ttl("/ttl", None, 600_000), PathStat),
        step("getData of TTL null data", GetData, read("/ttl"), DataStat),
        step(
            "multi with every create kind",
            Multi,
            multi(&[
                (Create, create("/m1", None, 0)),
                (Create2, create("/m2", Some(b"two"), 0)),
                (CreateContainer, create("/m3", None, 4)),
                (CreateTtl, create_ttl("/m4", None, 600_000)),
                (Create, create("/m5", None, 4)),
                (Create, create("/m3/s-", Some(b""), 2)),
                (SetData, set_data("/m1", None)),
                (Check, Body::default().string("/m1").int(1).0),
                (Delete, Body::default().string("/m2").int(-1).0),
            ]),
            Results,
        ),
        step("getData of multi's null data", GetData, read("/m1"), DataStat),
        step("getData of multi's container", GetData, read("/m5"), DataStat),
        step(
            "multi failing at its first op",
            Multi,
            multi(&[(Create, create("/m1", None, 0)), (SetData, set_data("/nothing", None))]),
            Results,
        ),
        step(
            "multi failing at a later op",
            Multi,
            multi(&[
                (Create, create("/f1", None, 0)),
                (Create2, create("/f2", None, 0)),
                (Delete, Body::default().string("/missing").int(-1).0),
                (Check, Body::default().string("/m1").int(7).0),
            ]),
            Results,
        ),
        step("empty multi", Multi, multi(&[]), Results),
        step(
            "multiRead with null data and missing nodes",
            MultiRead,
            multi(&[
                (GetData, read("/null")),
                (GetChildren, read("/m3")),
                (GetData, read("/missing")),
                (GetChildren, read("/missing")),
                (GetChildren, read("/null")),
            ]),
            Results,
        ),
        step("getChildren of a leaf", GetChildren, read("/null"), Names),
        step("getChildren2 of a leaf", GetChildren2, read("/null"), NamesStat),
        step("getChildren of a missing node", GetChildren, read("/missing"), Names),
        step("getChildren2 of a missing node", GetChildren2, read("/missing"), NamesStat),
        step("exists of a missing node", Exists, read("/missing"), Stat),
        step("getData of a missing node", GetData, read("/missing"), DataStat),
        step("setData of a missing node", SetData, set_data("/missing", None), Stat),
        step("delete of a missing node", Delete, Body::default().string("/missing").int(-1).0, Empty),
        step("getACL", GetAcl, path_only("/null"), AclStat),
        step("getACL of a missing node", GetAcl, path_only("/missing"), AclStat),
        step(
            "create with a null ACL",
            Create,
            Body::default().string("/a").data(None).acl(None).int(0).0,
            Path,
        ),
        step(
            "create with an empty ACL",
            Create,
            Body::default().string("/a").data(None).acl(Some(&[])).int(0).0,
            Path,
        ),
        step("setACL empty", SetAcl, Body::default().string("/null").acl(Some(&[])).int(-1).0, Stat),
        step("setACL null", SetAcl, Body::default().string("/null").acl(None).int(-1).0, Stat),
        step("setACL digest", SetAcl, Body::default().string("/c2").acl(Some(&digest_acl)).int(-1).0, Stat),
        step("getACL of a digest ACL", GetAcl, path_only("/c2"), AclStat),
        step("getEphemerals with none", GetEphemerals, path_only("/"), Names),
        step("create ephemeral, null data", Create, create("/eph", None, 1), Path),
        step("getEphemerals", GetEphemerals, path_only("/"), Names),
        step("getEphemerals of a prefix matching none", GetEphemerals, path_only("/zz"), Names),
        step("getAllChildrenNumber /", GetAllChildrenNumber, path_only("/"), Count),
        step("getAllChildrenNumber of a leaf", GetAllChildrenNumber, path_only("/null"), Count),
        step("getAllChildrenNumber of a missing node", GetAllChildrenNumber, path_only("/missing"), Count),
        step("whoAmI", WhoAmI, Vec::new(), ClientInfos),
        add_auth("addAuth digest", Some(b"u:p")),
        step("whoAmI after addAuth", WhoAmI, Vec::new(), ClientInfos),
        step("sync", Sync, path_only("/"), Path),
        step("getData /", GetData, read("/"), DataStat),
        step("getData /zookeeper", GetData, read("/zookeeper"), DataStat),
        step("getData /zookeeper/quota", GetData, read("/zookeeper/quota"), DataStat),
        step("getChildren /zookeeper", GetChildren, read("/zookeeper"), Names),
        step("getACL /zookeeper", GetAcl, path_only("/zookeeper"), AclStat),
        step("delete of null data", Delete, Body::default().string("/null").int(-1).0, Empty),
        step("getChildren /", GetChildren, read("/"), Names),
        step("getChildren2 /", GetChildren2, read("/"), NamesStat),
        // Last: Apache may end the session here.
        add_auth("addAuth digest with null auth data", None),
        step("whoAmI after addAuth with null auth data", WhoAmI, Vec::new(), ClientInfos),
    ]
}

/// Runs the script on a fresh session of `server`; one rendered line per step.
fn run_script(server: &TestServer) -> Vec<String> {
    let mut session = RawSession::connect(server, 30_000);
    let id = session.session_id();
    script()
        .iter()
        .map(|s| {
            let xid = match s.xid {
                Some(xid) => {
                    session.send_with_xid(xid, s.op, &s.body);
                    xid
                }
                None => session.send_raw_op(s.op, &s.body),
            };
            let rendered = match session.reply_to(xid) {
                Some(reply) => render(&reply, s.shape, id),
                None => "connection closed".to_string(),
            };
            format!("{}: {rendered}", s.name)
        })
        .collect()
}

#[test]
fn replies_match_apache_field_by_field() {
    let apache = TestServer::start_target(Target::Apache, CONFIG);
    let ours = TestServer::start_target(Target::Ringkeeper, CONFIG);
    let expected = run_script(&apache);
    let actual = run_script(&ours);
    let differences: Vec<String> = expected
        .iter()
        .zip(&actual)
        .filter(|(e, a)| e != a)
        .map(|(e, a)| format!("apache:     {e}\nringkeeper: {a}"))
        .collect();
    println!("{}", expected.join("\n"));
    assert!(differences.is_empty(), "{} replies differ:\n{}", differences.len(), differences.join("\n\n"));
    assert_eq!(expected.len(), actual.len());
}

/// The raw getData reply of `path` (data rendered as above).
fn get_data(server: &TestServer, path: &str) -> String {
    let mut session = RawSession::connect(server, 30_000);
    let id = session.session_id();
    let reply = session.call(OpCode::GetData, &no_watch(path));
    render(&reply, Shape::DataStat, id)
}

#[test]
fn null_data_survives_log_replay_and_snapshots() {
    // snapCount 2: a snapshot is written every few txns, so the second restart loads one.
    let mut server = TestServer::start_target(Target::Ringkeeper, "snapCount=2");
    let mut session = RawSession::connect(&server, 30_000);
    let mut write = |op: OpCode, body: Vec<u8>| {
        let xid = session.send_raw_op(op as i32, &body);
        assert_eq!(session.reply_to(xid).expect("reply").header.err, 0, "{op:?}");
    };
    write(OpCode::Create, create("/null", None, 0));
    write(OpCode::Create, create("/empty", Some(b""), 0));
    write(OpCode::Create, create("/set-null", Some(b"x"), 0));
    write(OpCode::SetData, set_data("/set-null", None));
    let before: Vec<String> = ["/null", "/empty", "/set-null"].iter().map(|p| get_data(&server, p)).collect();
    assert!(before[0].contains(" null Stat("), "{}", before[0]);
    assert!(before[1].contains(" \"\" Stat("), "{}", before[1]);
    assert!(before[2].contains(" null Stat("), "{}", before[2]);
    drop(session);
    for round in 0..2 {
        server.restart();
        let after: Vec<String> =
            ["/null", "/empty", "/set-null"].iter().map(|p| get_data(&server, p)).collect();
        // Reply zxids move on with each session; the data and Stat must not.
        let strip = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .map(|l| l.split_once(" Stat(").map(|(_, s)| s.to_string()).unwrap_or_default())
                .collect()
        };
        let data = |lines: &[String]| -> Vec<String> {
            lines.iter().map(|l| l.split(' ').nth(4).unwrap_or_default().to_string()).collect()
        };
        assert_eq!(strip(&after), strip(&before), "round {round}");
        assert_eq!(data(&after), data(&before), "round {round}");
    }
    let snapshots = std::fs::read_dir(server.data_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(ringkeeper_server::data_files::SNAPSHOT_PREFIX)
        })
        .count();
    assert!(snapshots > 0, "a snapshot was written, so the last restart read null data from one");
}

#[test]
fn null_data_crosses_an_ensemble() {
    let ensemble = Ensemble::start(3, 0, "");
    let leader = ensemble.wait_leader(STEP);
    let follower =
        (0..3).find(|&i| i != leader && ensemble.mode(i) == Some(Mode::Follower)).expect("a follower");
    let addr = |i: usize| ensemble.address(i).parse().unwrap();
    let mut writer = RawSession::connect_to(addr(follower), 30_000);
    for (op, body) in [
        (OpCode::Create, create("/null", None, 0)),
        (OpCode::Create, create("/set-null", Some(b"x"), 0)),
        (OpCode::SetData, set_data("/set-null", None)),
        (OpCode::Create, create("/empty", Some(b""), 0)),
    ] {
        let xid = writer.send_raw_op(op as i32, &body);
        assert_eq!(writer.reply_to(xid).expect("reply").header.err, 0, "{op:?}");
    }
    for i in 0..3 {
        let mut reader = RawSession::connect_to(addr(i), 30_000);
        let id = reader.session_id();
        assert_eq!(
            reader
                .call(OpCode::Sync, &ringkeeper_engine::proto::records::PathRequest { path: "/".into() })
                .header
                .err,
            0
        );
        for (path, data) in [("/null", "null"), ("/set-null", "null"), ("/empty", "\"\"")] {
            let line = render(&reader.call(OpCode::GetData, &no_watch(path)), Shape::DataStat, id);
            assert_eq!(line.split(' ').nth(4), Some(data), "member {}: {path}: {line}", i + 1);
        }
    }
}
