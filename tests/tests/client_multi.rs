//! multi and multiRead: all-or-nothing commits, one zxid per multi, the check op, the
//! per-op result layout of a failed multi on the wire, and per-op results of multiRead.

mod common;

use common::*;
use ringkeeper_engine::proto::codes::{ErrorCode, OpCode};
use ringkeeper_engine::proto::records::{CheckVersionRequest, ErrorResponse, MultiHeader, SetDataRequest};
use ringkeeper_engine::proto::{Jute, JuteReader};
use ringkeeper_tests::TestServer;
use zookeeper_client::{self as zk, CreateMode, MultiReadResult, MultiWriteError, MultiWriteResult};

/// Encodes a multi request body: each op behind a MultiHeader, then the `done` marker.
fn multi_body(ops: &[(OpCode, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (op, record) in ops {
        body.extend(MultiHeader { op: *op as i32, done: false, err: -1 }.to_bytes());
        body.extend_from_slice(record);
    }
    body.extend(MultiHeader { op: -1, done: true, err: -1 }.to_bytes());
    body
}

/// Decodes the reply of a multi that failed: every result is an error (type -1) result;
/// returns their codes.
fn failed_multi_codes(body: &[u8]) -> Vec<i32> {
    let mut reader = JuteReader::new(body);
    let mut codes = Vec::new();
    loop {
        let header = MultiHeader::decode(&mut reader).expect("MultiHeader");
        if header.done {
            assert_eq!(reader.remaining(), 0, "nothing after the done marker");
            return codes;
        }
        assert_eq!(header.op, -1, "a failed multi has only error results: {header:?}");
        let result = ErrorResponse::decode(&mut reader).expect("ErrorResponse");
        assert_eq!(result.err, header.err, "header and body carry the same code");
        codes.push(result.err);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_applies_every_op_under_one_zxid() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let before = mk(&client, "/before", b"").await;
    let mut multi = client.new_multi_writer();
    multi.add_create("/m", b"", &open(CreateMode::Persistent)).unwrap();
    multi.add_create("/m/s-", b"", &open(CreateMode::PersistentSequential)).unwrap();
    multi.add_set_data("/m", b"data", Some(0)).unwrap();
    multi.add_check_version("/m", 1).unwrap();
    multi.add_create("/m/gone", b"", &open(CreateMode::Persistent)).unwrap();
    multi.add_delete("/m/gone", Some(0)).unwrap();
    let results = within("multi", multi.commit()).await.unwrap();
    assert_eq!(results.len(), 6);
    let zxid = before.czxid + 1;
    match &results[..] {
        [MultiWriteResult::Create { path: m, stat: m_stat }, MultiWriteResult::Create { path: seq, .. }, MultiWriteResult::SetData { stat }, MultiWriteResult::Check, MultiWriteResult::Create { .. }, MultiWriteResult::Delete] =>
        {
            assert_eq!((m.as_str(), seq.as_str()), ("/m", "/m/s-0000000000"));
            // Apache 3.8 answers a create2 inside a multi with a plain create result (path
            // only, ZOOKEEPER-4026); the crate reports that as an invalid Stat.
            assert!(m_stat.is_invalid(), "{m_stat:?}");
            assert_eq!((stat.czxid, stat.mzxid, stat.version, stat.data_length), (zxid, zxid, 1, 4));
        }
        other => panic!("unexpected results {other:?}"),
    }
    let m = stat_of(&client, "/m").await.unwrap();
    assert_eq!(m.czxid, zxid, "the whole multi is one transaction");
    assert_eq!((m.num_children, m.cversion, m.pzxid), (1, 3, zxid));
    assert_eq!(mk(&client, "/after", b"").await.czxid, zxid + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_multi_changes_nothing_and_names_the_failing_op() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let before = mk(&client, "/before", b"v0").await;
    let mut multi = client.new_multi_writer();
    multi.add_create("/x", b"", &open(CreateMode::Persistent)).unwrap();
    multi.add_set_data("/before", b"v1", None).unwrap();
    multi.add_set_data("/missing", b"", None).unwrap();
    multi.add_create("/y", b"", &open(CreateMode::Persistent)).unwrap();
    let err = within("multi", multi.commit()).await.unwrap_err();
    assert_eq!(err, MultiWriteError::OperationFailed { index: 2, source: zk::Error::NoNode });
    assert_eq!(stat_of(&client, "/x").await, None);
    assert_eq!(stat_of(&client, "/y").await, None);
    let (data, stat) = within("get", client.get_data("/before")).await.unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"v0"[..], 0));
    // Apache logs a failed multi as an error transaction: it still consumes a zxid.
    assert_eq!(mk(&client, "/after", b"").await.czxid, before.czxid + 2);

    let mut check = client.new_check_writer("/before", Some(3)).unwrap();
    check.add_create("/z", b"", &open(CreateMode::Persistent)).unwrap();
    let err = within("check multi", check.commit()).await.unwrap_err();
    assert_eq!(err, zk::CheckWriteError::CheckFailed { source: zk::Error::BadVersion });
    assert_eq!(stat_of(&client, "/z").await, None);
}

#[test]
fn failed_multi_result_layout_on_the_wire() {
    let server = TestServer::start();
    let mut raw = RawSession::connect(&server, 10_000);
    assert_eq!(raw.code(OpCode::Create, &create_request("/a", 0)), 0);
    let ops = [
        (OpCode::Create, create_request("/a/1", 0).to_bytes()),
        (OpCode::Check, CheckVersionRequest { path: "/a".into(), version: 1 }.to_bytes()),
        (OpCode::SetData, SetDataRequest { path: "/a".into(), data: Some(vec![1]), version: -1 }.to_bytes()),
        (OpCode::Create, create_request("/a/2", 0).to_bytes()),
    ];
    let xid = raw.send_raw_op(OpCode::Multi as i32, &multi_body(&ops));
    let reply = raw.reply_to(xid).unwrap();
    // Apache: the reply header carries Ok; ops before the failing one report Ok (0), the
    // failing op its own code, the ops after it RuntimeInconsistency (-2).
    assert_eq!(reply.header.err, 0);
    let codes = failed_multi_codes(&reply.body);
    let (bad_version, inconsistent) = (ErrorCode::BadVersion.code(), ErrorCode::RuntimeInconsistency.code());
    assert_eq!(codes, [0, bad_version, inconsistent, inconsistent]);

    // An empty multi succeeds with an empty result list.
    let xid = raw.send_raw_op(OpCode::Multi as i32, &multi_body(&[]));
    let reply = raw.reply_to(xid).unwrap();
    assert_eq!(reply.header.err, 0);
    assert_eq!(failed_multi_codes(&reply.body), Vec::<i32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_read_reports_each_op_separately() {
    let server = TestServer::start();
    let client = connect(&server).await;
    mk(&client, "/r", b"root").await;
    mk(&client, "/r/a", b"").await;
    mk(&client, "/r/b", b"").await;
    let mut reader = client.new_multi_reader();
    reader.add_get_data("/r").unwrap();
    reader.add_get_children("/r").unwrap();
    reader.add_get_data("/missing").unwrap();
    reader.add_get_children("/missing").unwrap();
    let results = within("multiRead", reader.commit()).await.unwrap();
    match &results[..] {
        [MultiReadResult::Data { data, stat }, MultiReadResult::Children { children }, MultiReadResult::Error { err: e1 }, MultiReadResult::Error { err: e2 }] =>
        {
            assert_eq!((data.as_slice(), stat.num_children), (&b"root"[..], 2));
            assert_eq!(sorted(children.clone()), ["a", "b"]);
            assert_eq!((e1, e2), (&zk::Error::NoNode, &zk::Error::NoNode));
        }
        other => panic!("unexpected results {other:?}"),
    }
}
