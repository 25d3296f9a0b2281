//! criterion benches of the storage formats, on the engine alone (no file I/O):
//! - `txn_encode_append`: one setData txn encoded with rkyv and framed into a log buffer (the
//!   work the data role and log role do per write, short of the DMA write and fdatasync);
//! - `snapshot_capture_encode/N`: copying an N-znode tree into an image (the data-core side,
//!   done in slices in the server) plus rkyv encoding and crc32c (the writer thread's side);
//! - `snapshot_validate_restore/N`: validating a snapshot image once and rebuilding the live
//!   tree from the archived form (start-up, minus the mmap).
//!
//! N is 1,000,000 znodes of 100 bytes (1000 parents x 1000 children); `cargo bench -- --test`
//! (CI) uses 1000 so it stays fast.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use ringkeeper_engine::acl::open_acl_unsafe;
use ringkeeper_engine::log as txlog;
use ringkeeper_engine::session::SessionTable;
use ringkeeper_engine::snapshot;
use ringkeeper_engine::tree::DataTree;
use ringkeeper_engine::txn::{self, Txn, TxnBody, TxnOp};

fn tree_size() -> usize {
    if std::env::args().any(|a| a == "--test") {
        1000
    } else {
        1_000_000
    }
}

/// A tree of `count` znodes with 100-byte values under `/t/<i/1000>/<i%1000>`.
fn tree_of(count: usize) -> DataTree {
    let mut tree = DataTree::new();
    let acl = open_acl_unsafe();
    let mut zxid = 0;
    let mut create = |tree: &mut DataTree, path: &str, data: &[u8]| {
        zxid += 1;
        tree.create_node(path, Some(data), &acl, 0, -1, zxid, zxid).expect("fresh path");
    };
    create(&mut tree, "/t", b"");
    for parent in 0..count.div_ceil(1000) {
        create(&mut tree, &format!("/t/{parent}"), b"");
    }
    let value = [b'v'; 100];
    for i in 0..count {
        create(&mut tree, &format!("/t/{}/{}", i / 1000, i % 1000), &value);
    }
    tree.last_processed_zxid = zxid;
    tree
}

fn sessions() -> SessionTable {
    let mut table = SessionTable::new(0, 0, b"1", 2000);
    for id in 1..=100 {
        table.add(id, 30_000, 0);
    }
    table
}

fn txn_encode_append(c: &mut Criterion) {
    let mut log = Vec::with_capacity(64 << 20);
    let mut zxid = 0;
    c.bench_function("txn_encode_append", |b| {
        b.iter(|| {
            zxid += 1;
            let txn = Txn {
                session_id: 1,
                cxid: 1,
                zxid,
                time_ms: 1000,
                body: TxnBody::Op(TxnOp::SetData {
                    path: "/t/1/1".into(),
                    data: vec![b'y'; 100],
                    version: 1,
                }),
            };
            let bytes = txn::encode(&txn);
            if log.len() > (60 << 20) {
                log.clear();
            }
            txlog::append_record(&mut log, zxid, &bytes);
            black_box(log.len())
        })
    });
}

fn snapshot_write_and_load(c: &mut Criterion) {
    let count = tree_size();
    let tree = tree_of(count);
    let table = sessions();
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.bench_function(format!("capture_encode/{count}"), |b| {
        b.iter(|| {
            let encoded = snapshot::encode(&snapshot::capture(&tree, &table));
            black_box(encoded.payload.len())
        })
    });
    let file = snapshot::encode(&snapshot::capture(&tree, &table)).to_bytes();
    group.bench_function(format!("validate_restore/{count}"), |b| {
        b.iter_batched(
            sessions,
            |mut restored_sessions| {
                let (_, image) = snapshot::decode(&file).expect("valid");
                let restored = snapshot::restore(image, &mut restored_sessions, 0).expect("restores");
                black_box(restored.node_count())
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, txn_encode_append, snapshot_write_and_load);
criterion_main!(benches);
