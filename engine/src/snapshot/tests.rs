//! Snapshot format round trips, corruption detection, and the fuzzy-snapshot replay property.

use super::*;
use crate::txn::{self, Txn, TxnBody, TxnOp};

/// xorshift64*: a seeded generator for the random txn sequences.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn acl_list(variant: usize) -> Vec<TxnAcl> {
    let lists = [crate::acl::open_acl_unsafe(), crate::acl::read_acl_unsafe()];
    lists[variant % lists.len()].iter().map(TxnAcl::from).collect()
}

/// Node data: sometimes null, sometimes empty, mostly a few bytes.
fn random_data(rng: &mut Rng) -> Option<Vec<u8>> {
    match rng.below(4) {
        0 => None,
        _ => Some(vec![rng.below(256) as u8; rng.below(8)]),
    }
}

/// A valid txn for the current state of `tree`, as validation would make it: creates carry
/// the parent's next cversion, sets the node's next version.
fn random_txn(rng: &mut Rng, tree: &DataTree, zxid: i64, sessions: &[i64]) -> Txn {
    let mut paths: Vec<&str> = tree.iter().map(|(p, _)| p).filter(|p| !p.starts_with("/zookeeper")).collect();
    paths.sort_unstable();
    let pick = |rng: &mut Rng| paths[rng.below(paths.len())];
    let body = match rng.below(10) {
        0..=3 => {
            let parent = pick(rng);
            let name = format!("n{}", rng.below(6));
            let path = tree::path::join(parent, &name);
            if tree.contains(&path) || tree.get(parent).unwrap().stat.ephemeral_owner != 0 {
                // NodeExists, or NoChildrenForEphemerals.
                TxnBody::Op(TxnOp::Error { code: -110 })
            } else {
                let owner = if rng.below(4) == 0 { sessions[rng.below(sessions.len())] } else { 0 };
                let parent_cversion = tree.get(parent).unwrap().stat.cversion + 1;
                TxnBody::Op(TxnOp::create(
                    path,
                    random_data(rng),
                    acl_list(rng.below(2)),
                    owner,
                    parent_cversion,
                ))
            }
        }
        4..=5 => {
            let path = pick(rng);
            let node = tree.get(path).unwrap();
            if path == "/" || !node.children.is_empty() {
                TxnBody::Op(TxnOp::Error { code: -111 })
            } else {
                TxnBody::Op(TxnOp::Delete { path: path.to_string() })
            }
        }
        6..=7 => {
            let path = pick(rng).to_string();
            let version = tree.get(&path).unwrap().stat.version + 1;
            TxnBody::Op(TxnOp::set_data(path, random_data(rng), version))
        }
        8 => {
            let path = pick(rng).to_string();
            let version = tree.get(&path).unwrap().stat.aversion + 1;
            TxnBody::Op(TxnOp::SetAcl { path, acl: acl_list(rng.below(2)), version })
        }
        _ => {
            let owner = sessions[rng.below(sessions.len())];
            TxnBody::CloseSession { ephemerals: tree.ephemerals_of(owner) }
        }
    };
    Txn { session_id: 1, cxid: 0, zxid, time_ms: zxid * 10, body }
}

fn sessions() -> SessionTable {
    let mut table = SessionTable::new(0, 0, b"9", 2000);
    for id in [11, 12, 13] {
        table.add(id, 6000, 0);
    }
    table
}

#[test]
fn fuzzy_snapshot_plus_replay_equals_live_tree() {
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let owners = [11, 12, 13];
        let table = sessions();
        let mut live = DataTree::new();
        let mut log: Vec<txn::TxnBytes> = Vec::new();
        let mut zxid = 0;
        let mut apply_next = |live: &mut DataTree, rng: &mut Rng, log: &mut Vec<txn::TxnBytes>| {
            zxid += 1;
            let bytes = txn::encode(&random_txn(rng, live, zxid, &owners));
            txn::apply(live, txn::access(&bytes).unwrap());
            log.push(bytes);
        };
        let before = 100 + rng.below(200);
        for _ in 0..before {
            apply_next(&mut live, &mut rng, &mut log);
        }
        // Capture a few nodes at a time with writes in between.
        let mut capture = SnapshotCapture::start(&live, &table);
        let budget = 1 + rng.below(4);
        while !capture.step(&live, budget) {
            for _ in 0..rng.below(4) {
                apply_next(&mut live, &mut rng, &mut log);
            }
        }
        let image = capture.finish(&live);
        for _ in 0..rng.below(50) {
            apply_next(&mut live, &mut rng, &mut log);
        }
        assert_eq!(image.zxid, before as i64);

        let encoded = encode(&image).to_bytes();
        let (header, archived) = decode(&encoded).expect("valid snapshot");
        assert_eq!(header.zxid, image.zxid);
        let mut restored_sessions = SessionTable::new(0, 0, b"9", 2000);
        let mut restored = restore(archived, &mut restored_sessions, 0).expect("restores");
        assert_eq!(restored_sessions.len(), 3);
        for bytes in &log[image.zxid as usize..] {
            txn::apply(&mut restored, txn::access(bytes).unwrap());
        }
        assert_eq!(restored.last_processed_zxid, live.last_processed_zxid);
        assert_eq!(restored.node_count(), live.node_count(), "seed {seed}");
        for (path, node) in live.iter() {
            let other = restored.get(path).unwrap_or_else(|| panic!("seed {seed}: {path} missing"));
            assert_eq!(other.stat(), node.stat(), "seed {seed}: stat of {path}");
            assert_eq!(other.data, node.data, "seed {seed}: data of {path}");
            assert_eq!(restored.acl_of(other), live.acl_of(node), "seed {seed}: acl of {path}");
        }
        assert_eq!(tree_digest(&restored), tree_digest(&live), "seed {seed}");
        assert_eq!(restored.ephemeral_count(), live.ephemeral_count(), "seed {seed}");
        assert_eq!(restored.approximate_data_size(), live.approximate_data_size(), "seed {seed}");
    }
}

#[test]
fn replayed_create_of_a_captured_child_moves_the_parent_cversion() {
    // The case the NODEEXISTS rule exists for: the capture saw the child but not the parent's
    // cversion bump (parent copied first, child created before the walk reached it).
    let mut live = DataTree::new();
    let table = sessions();
    let open = acl_list(0);
    let create = |path: &str, zxid: i64, parent_cversion: i32| Txn {
        session_id: 1,
        cxid: 0,
        zxid,
        time_ms: 0,
        body: TxnBody::Op(TxnOp::Create {
            path: path.into(),
            data: vec![],
            acl: open.clone(),
            ephemeral_owner: 0,
            parent_cversion,
        }),
    };
    let t1 = txn::encode(&create("/p", 1, 1));
    txn::apply(&mut live, txn::access(&t1).unwrap());
    let mut capture = SnapshotCapture::start(&live, &table);
    assert!(!capture.step(&live, 1), "copies /p but not yet its children");
    let t2 = txn::encode(&create("/p/c", 2, 1));
    txn::apply(&mut live, txn::access(&t2).unwrap());
    while !capture.step(&live, 1) {}
    let image = capture.finish(&live);
    assert_eq!((image.zxid, image.fuzzy_end_zxid), (1, 2));
    let bytes = encode(&image).to_bytes();
    let mut restored = restore(decode(&bytes).unwrap().1, &mut sessions(), 0).unwrap();
    assert_eq!(restored.get("/p").unwrap().stat.cversion, 0, "the image has the child, not the bump");
    txn::apply(&mut restored, txn::access(&t2).unwrap());
    assert_eq!(restored.get("/p").unwrap().stat(), live.get("/p").unwrap().stat());
}

#[test]
fn every_damaged_byte_is_caught_with_its_offset() {
    let mut tree = DataTree::new();
    tree.create_node("/a", Some(b"hello".as_slice()), &crate::acl::open_acl_unsafe(), 0, -1, 1, 5).unwrap();
    let bytes = encode(&capture(&tree, &sessions())).to_bytes();
    assert!(decode(&bytes).is_ok());
    for at in [0, 9, 20, 33, 61, SNAPSHOT_HEADER_BYTES + 3, bytes.len() - 1] {
        let mut damaged = rkyv::util::AlignedVec::<16>::new();
        damaged.extend_from_slice(&bytes);
        damaged[at] ^= 0x40;
        let Err(SnapshotError::Invalid { offset, .. }) = decode(&damaged) else {
            panic!("damage at byte {at} not detected")
        };
        assert!(offset as usize <= at.max(SNAPSHOT_HEADER_BYTES), "byte {at}: reported offset {offset}");
    }
    let mut cut = rkyv::util::AlignedVec::<16>::new();
    cut.extend_from_slice(&bytes[..bytes.len() - 8]);
    let Err(err) = decode(&cut) else { panic!("a cut file decodes") };
    assert!(err.to_string().contains("the header says"), "{err}");
}

/// A snapshot exactly as format 1 wrote it (`/a` with data "xy" at zxid 5, session 0x77):
/// still read, its data never null.
#[test]
fn format_1_snapshots_are_still_read() {
    let hex = include_str!("testdata/snapshot_v1.hex").trim();
    let mut bytes = rkyv::util::AlignedVec::<16>::new();
    let decoded: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    bytes.extend_from_slice(&decoded);
    let (header, image) = decode(&bytes).expect("a format-1 snapshot decodes");
    assert_eq!((header.version, header.zxid), (1, 5));
    let mut table = sessions();
    let tree = restore(image, &mut table, 0).unwrap();
    let a = tree.get("/a").unwrap();
    assert_eq!((a.data.as_deref(), a.stat.czxid), (Some(b"xy".as_slice()), 5));
    assert_eq!(tree.get("/zookeeper").unwrap().data.as_deref(), Some(&[][..]));
    assert!(table.all().iter().any(|s| s.id == 0x77));
}

#[test]
fn null_data_survives_a_snapshot() {
    let mut tree = DataTree::new();
    tree.create_node("/null", None, &crate::acl::open_acl_unsafe(), 0, -1, 1, 5).unwrap();
    tree.create_node("/empty", Some(&[][..]), &crate::acl::open_acl_unsafe(), 0, -1, 2, 5).unwrap();
    let bytes = encode(&capture(&tree, &sessions())).to_bytes();
    let (header, image) = decode(&bytes).unwrap();
    assert_eq!(header.version, SNAPSHOT_FORMAT_VERSION);
    let restored = restore(image, &mut sessions(), 0).unwrap();
    assert_eq!(restored.get("/null").unwrap().data, None);
    assert_eq!(restored.get("/empty").unwrap().data.as_deref(), Some(&[][..]));
}

#[test]
fn file_names_round_trip() {
    assert_eq!(snapshot_file_name(0x1_0000_002a), "snapshot.000000010000002a");
    assert_eq!(parse_snapshot_file_name("snapshot.000000010000002a"), Some(0x1_0000_002a));
    assert_eq!(parse_snapshot_file_name("snapshot.000000010000002a.tmp"), None);
    assert_eq!(parse_snapshot_file_name("log.000000010000002a"), None);
}
