//! Property tests (proptest, stable Rust) of everything that decodes bytes from the network:
//! arbitrary and mutated input never panics; it decodes or gives an error.
//!
//! - `connect_request_decoding_never_panics`: a client's first frame ([`ConnectRequest`]).
//! - `request_frames_into_a_node_never_panic`: random request frames, and valid ones with
//!   bytes flipped, cut or appended, stepped into a standalone [`Node`] with an open session
//!   (the path every client request takes: header, body decode, validation, txn, reply).
//!   Every frame gets an answer or a close of its connection; the logged txns are made
//!   durable, so writes go all the way to the tree.
//! - `peer_frames_never_panic`: ZAB messages ([`Msg::decode`]) and learner relay traffic
//!   ([`Relay::decode`]) from a peer, random and mutated from valid encodings.
//! - `log_segment_header_decoding_never_panics`: the header recovery reads from disk.
//!
//! The four-letter words and the whole server under garbage are tested over real sockets
//! (`hostile_clients.rs`). CI runs [`CASES_DEFAULT`] cases per property;
//! `RINGKEEPER_FUZZ_CASES=100000` (or proptest's own `PROPTEST_CASES`) runs longer. A failure
//! prints the minimal input proptest shrank it to.

use proptest::prelude::*;
use ringkeeper_engine::conn::ClientConn;
use ringkeeper_engine::log::decode_segment_header;
use ringkeeper_engine::proto::codes::OpCode;
use ringkeeper_engine::proto::records::{
    Acl, ConnectRequest, CreateRequest, Id, PathWatchRequest, RequestHeader, SetDataRequest,
};
use ringkeeper_engine::proto::Jute;
use ringkeeper_engine::replica::gate::Limits;
use ringkeeper_engine::replica::{Delivery, Effect, Input, Node};
use ringkeeper_engine::request::{Processor, ProcessorConfig};
use ringkeeper_engine::zab::{Msg, Relay};

/// Cases per property in a normal run.
const CASES_DEFAULT: u32 = 256;
const NOW: i64 = 1_000;
const CLIENT: ClientConn = ClientConn { core: 0, local: 1 };

fn config() -> ProptestConfig {
    let cases =
        std::env::var("RINGKEEPER_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(CASES_DEFAULT);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

/// A request frame's payload (after the length prefix): header, then `body`.
fn request(xid: i32, op: OpCode, body: &impl Jute) -> Vec<u8> {
    let mut frame = RequestHeader { xid, op: op as i32 }.to_bytes();
    frame.extend_from_slice(&body.to_bytes());
    frame
}

/// Valid request frames to mutate: the common reads and writes.
fn valid_requests() -> Vec<Vec<u8>> {
    let acl = vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }];
    let create = CreateRequest { path: "/a".into(), data: Some(b"x".to_vec()), acl, flags: 0 };
    vec![
        request(1, OpCode::Create, &create),
        request(2, OpCode::GetData, &PathWatchRequest { path: "/a".into(), watch: true }),
        request(
            3,
            OpCode::SetData,
            &SetDataRequest { path: "/a".into(), data: Some(vec![1, 2]), version: -1 },
        ),
        request(4, OpCode::GetChildren2, &PathWatchRequest { path: "/".into(), watch: false }),
        request(5, OpCode::Exists, &PathWatchRequest { path: "/a/b".into(), watch: true }),
    ]
}

/// A change to a valid encoding: flip bytes, cut it short, or append garbage.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, xor: u8 },
    Truncate { keep: usize },
    Append(Vec<u8>),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
        proptest::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Append),
    ];
    proptest::collection::vec(one, 1..4)
}

fn mutate(mut bytes: Vec<u8>, changes: &[Mutation]) -> Vec<u8> {
    for change in changes {
        match change {
            Mutation::Flip { at, xor } if !bytes.is_empty() => {
                let at = at % bytes.len();
                bytes[at] ^= xor;
            }
            Mutation::Flip { .. } => {}
            Mutation::Truncate { keep } => bytes.truncate(keep % (bytes.len() + 1)),
            Mutation::Append(tail) => bytes.extend_from_slice(tail),
        }
    }
    bytes
}

/// A standalone node with one open session on [`CLIENT`].
fn node_with_session() -> Node {
    let processor = Processor::new(ProcessorConfig::default(), NOW, b"fuzz");
    let mut node = Node::standalone(processor, 0, Limits::default());
    let mut out = Vec::new();
    node.start(NOW, &mut out);
    let request = ConnectRequest { timeout_ms: 30_000, passwd: vec![0; 16], ..Default::default() };
    let connect = Input::Connect {
        conn: CLIENT,
        client_ip: "10.0.0.1".into(),
        remote: "10.0.0.1:5000".into(),
        authenticated: Vec::new(),
        request,
    };
    step_to_completion(&mut node, connect);
    node
}

/// Steps `input`, then makes every txn it logged durable (as the log role would); returns
/// what was delivered to clients.
fn step_to_completion(node: &mut Node, input: Input) -> Vec<Delivery> {
    let mut out = Vec::new();
    node.step(NOW, input, &mut out);
    let mut delivered = Vec::new();
    while !out.is_empty() {
        let mut durable = None;
        for effect in out.drain(..) {
            match effect {
                Effect::Append { zxid, .. } => durable = Some(zxid),
                Effect::Deliver { batch, .. } => delivered.extend(batch),
                _ => {}
            }
        }
        if let Some(zxid) = durable {
            node.step(NOW, Input::Durable { zxid }, &mut out);
        }
    }
    delivered
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn connect_request_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = ConnectRequest::from_bytes(&bytes);
    }

    #[test]
    fn request_frames_into_a_node_never_panic(
        random in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..4),
        which in proptest::collection::vec((0..5usize, mutations()), 1..6),
    ) {
        let mut node = node_with_session();
        let valid = valid_requests();
        let frames = random.into_iter().chain(which.iter().map(|(i, changes)| mutate(valid[*i].clone(), changes)));
        for frame in frames {
            let delivered = step_to_completion(&mut node, Input::Request { conn: CLIENT, frame });
            let answered = delivered.iter().any(|d| matches!(d, Delivery::Send { conn, .. } | Delivery::Close { conn } if *conn == CLIENT));
            prop_assert!(answered, "a request frame got neither a reply nor a close");
            if delivered.iter().any(|d| matches!(d, Delivery::Close { .. })) {
                // The connection is gone; a client would open a new one.
                node = node_with_session();
            }
        }
    }

    #[test]
    fn peer_frames_never_panic(
        random in proptest::collection::vec(any::<u8>(), 0..512),
        changes in mutations(),
    ) {
        let _ = Msg::decode(&random);
        let _ = Relay::decode(&random);
        let valid = [
            Msg::Ping { epoch: 1, committed: 0x1_0000_0005, last_zxid: 0x1_0000_0007 },
            Msg::AckEpoch { epoch: 2, current_epoch: 1, last_zxid: 0x1_0000_0007, epoch_ends: vec![5, 0x1_0000_0007] },
            Msg::Commit { epoch: 1, zxid: 0x1_0000_0005 },
        ];
        for msg in valid {
            let mut bytes = Vec::new();
            msg.encode(&mut bytes);
            let _ = Msg::decode(&mutate(bytes, &changes));
        }
    }

    #[test]
    fn log_segment_header_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = decode_segment_header(&bytes);
    }
}
