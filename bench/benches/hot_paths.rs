//! criterion micro-benches of the server's hot paths, on the engine alone (no I/O):
//! jute encode/decode of a SetDataRequest and of a ReplyHeader + Stat, txn encode (rkyv)
//! and validated archived access, and tree apply of a create and of a setData.
//!
//! CI runs `cargo bench -p ringkeeper-bench -- --test`, which runs each once.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use ringkeeper_engine::acl::open_acl_unsafe;
use ringkeeper_engine::proto::{Jute, JuteReader, JuteWriter, ReplyHeader, SetDataRequest, Stat};
use ringkeeper_engine::tree::DataTree;
use ringkeeper_engine::txn::{self, Txn, TxnAcl, TxnBody, TxnOp};

fn set_data_request() -> SetDataRequest {
    SetDataRequest { path: "/rk-bench/run/k123".into(), data: Some(vec![b'x'; 100]), version: -1 }
}

fn stat() -> Stat {
    Stat {
        czxid: 1,
        mzxid: 2,
        ctime: 3,
        mtime: 4,
        version: 5,
        cversion: 6,
        aversion: 7,
        ephemeral_owner: 0,
        data_length: 100,
        num_children: 0,
        pzxid: 1,
    }
}

fn txn_of(zxid: i64, op: TxnOp) -> Txn {
    Txn { session_id: 1, cxid: 1, zxid, time_ms: 1000, body: TxnBody::Op(op) }
}

fn create_op(path: &str) -> TxnOp {
    TxnOp::Create {
        path: path.into(),
        data: vec![b'x'; 100],
        acl: open_acl_unsafe().iter().map(TxnAcl::from).collect(),
        ephemeral_owner: 0,
        parent_cversion: -1,
    }
}

fn set_data_op(path: &str) -> TxnOp {
    TxnOp::SetData { path: path.into(), data: vec![b'y'; 100], version: 1 }
}

fn jute(c: &mut Criterion) {
    let request = set_data_request();
    let request_bytes = request.to_bytes();
    c.bench_function("jute/encode SetDataRequest 100 B", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            black_box(&request).encode(&mut JuteWriter::new(&mut out));
            black_box(out.len())
        })
    });
    c.bench_function("jute/decode SetDataRequest 100 B", |b| {
        b.iter(|| SetDataRequest::from_bytes(black_box(&request_bytes)).expect("valid"))
    });
    let header = ReplyHeader { xid: 42, zxid: 1 << 32, err: 0 };
    let stat = stat();
    let mut reply_bytes = header.to_bytes();
    stat.encode(&mut JuteWriter::new(&mut reply_bytes));
    c.bench_function("jute/encode ReplyHeader+Stat", |b| {
        let mut out = Vec::with_capacity(128);
        b.iter(|| {
            out.clear();
            let mut w = JuteWriter::new(&mut out);
            black_box(&header).encode(&mut w);
            black_box(&stat).encode(&mut w);
            black_box(out.len())
        })
    });
    c.bench_function("jute/decode ReplyHeader+Stat", |b| {
        b.iter(|| {
            let mut r = JuteReader::new(black_box(&reply_bytes));
            (ReplyHeader::decode(&mut r).expect("valid"), Stat::decode(&mut r).expect("valid"))
        })
    });
}

fn txns(c: &mut Criterion) {
    let set = txn_of(7, set_data_op("/rk-bench/k1"));
    c.bench_function("txn/encode setData 100 B", |b| b.iter(|| txn::encode(black_box(&set))));
    let bytes = txn::encode(&set);
    c.bench_function("txn/access (validated) setData 100 B", |b| {
        b.iter(|| txn::access(black_box(&bytes)).expect("valid").zxid.to_native())
    });
}

fn tree_apply(c: &mut Criterion) {
    let create = txn::encode(&txn_of(2, create_op("/n")));
    c.bench_function("tree/apply create 100 B", |b| {
        b.iter_batched(
            DataTree::new,
            |mut tree| txn::apply(&mut tree, txn::access_trusted(&create)).results.len(),
            BatchSize::SmallInput,
        )
    });
    let mut tree = DataTree::new();
    txn::apply(&mut tree, txn::access_trusted(&create));
    let set = txn::encode(&txn_of(3, set_data_op("/n")));
    c.bench_function("tree/apply setData 100 B", |b| {
        b.iter(|| txn::apply(&mut tree, txn::access_trusted(black_box(&set))).results.len())
    });
}

criterion_group!(benches, jute, txns, tree_apply);
criterion_main!(benches);
