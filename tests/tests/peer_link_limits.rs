//! Peer links under a hostile connection. The peer port accepts anyone who sends the
//! constant handshake (magic "RKZD", a known server id and optionally its address), so what such a connection can
//! cost is bounded: a frame header claiming a large frame costs memory only as its bytes
//! arrive, and a ZAB control message (anything but a state image or a proposal) longer than
//! 1 MiB closes the link. The member keeps serving throughout. Before the handshake is
//! through, a connection claiming a long address, or sending nothing within the peer timeout,
//! is closed; a dialler refused over and over is logged once.
//!
//! ringkeeper only (Apache's quorum protocol is another one; skipped with a message).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use ringkeeper_engine::zab::{Msg, Vote};
use ringkeeper_tests::ensemble::Ensemble;
use ringkeeper_tests::Target;

/// The handshake magic of ringkeeper's peer links ("RKZD").
const HANDSHAKE_MAGIC: u32 = 0x524b_5a44;
/// The magic of the previous peer protocol ("RKZC"), refused by name.
const OLDER_HANDSHAKE_MAGIC: u32 = 0x524b_5a43;
/// Frame kind byte of a ZAB message.
const FRAME_KIND_ZAB: u8 = 0;
/// Connections claiming a frame of [`CLAIMED_FRAME_BYTES`] each.
const HOSTILE_CONNECTIONS: usize = 8;
/// The largest frame a peer may send (a state image).
const CLAIMED_FRAME_BYTES: u32 = 1 << 30;
/// What the claims may add to the member's address space, all together (today: a few MiB;
/// a buffer allocated at the claimed size would add 1 GiB per connection).
const VIRTUAL_GROWTH_BOUND: u64 = 512 << 20;

/// A connection to member `i`'s peer port that passed the handshake as server `as_id`.
fn peer_connection(ensemble: &Ensemble, i: usize, as_id: u64) -> TcpStream {
    let mut stream =
        TcpStream::connect(("127.0.0.1", ensemble.members[i].peer_port)).expect("connect to peer port");
    // The sender's own address (`u16` length, then `host:port`): none, as a known member may.
    stream.write_all(&hello(HANDSHAKE_MAGIC, as_id, 0)).unwrap();
    stream
}

/// A handshake: `magic`, the sender's id, and the length of the address that follows.
fn hello(magic: u32, as_id: u64, address_len: u16) -> Vec<u8> {
    let mut hello = magic.to_le_bytes().to_vec();
    hello.extend_from_slice(&as_id.to_le_bytes());
    hello.extend_from_slice(&address_len.to_le_bytes());
    hello
}

/// Whether the server closed `stream` (end of stream or reset) within `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Result<(), String> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 1];
    match stream.read(&mut buf) {
        Ok(0) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
        other => Err(format!("still open after {limit:?}: {other:?}")),
    }
}

/// A frame header (`u32` little-endian length counting the kind byte, kind) and the first
/// byte of `msg`'s encoding (its tag), claiming `length` bytes.
fn claim(length: u32, msg: &Msg) -> Vec<u8> {
    let mut encoded = Vec::new();
    msg.encode(&mut encoded);
    let mut out = length.to_le_bytes().to_vec();
    out.push(FRAME_KIND_ZAB);
    out.push(encoded[0]);
    out
}

/// `VmSize` of process `pid`, bytes.
fn virtual_size(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmSize in /proc/<pid>/status");
    kb * 1024
}

#[test]
fn claimed_frame_lengths_cost_nothing_until_sent_and_long_control_frames_close_the_link() {
    if Target::from_env() == Target::Apache {
        eprintln!("skipped: ringkeeper's own peer protocol");
        return;
    }
    let mut ensemble = Ensemble::start(3, 0, "");
    let pid = ensemble.pid(0).expect("member 1 runs");
    let before = virtual_size(pid);
    let image = Msg::Snapshot { epoch: 1, zxid: 1, epoch_ends: vec![], image: Arc::new(vec![]) };
    let hostile: Vec<TcpStream> = (0..HOSTILE_CONNECTIONS)
        .map(|_| {
            let mut stream = peer_connection(&ensemble, 0, 2);
            stream.write_all(&claim(CLAIMED_FRAME_BYTES, &image)).unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let after = virtual_size(pid);
    let growth = after.saturating_sub(before);
    eprintln!(
        "{HOSTILE_CONNECTIONS} connections claiming {CLAIMED_FRAME_BYTES}-byte frames: VmSize {before} -> {after} \
         (+{} MiB)",
        growth >> 20
    );
    assert!(
        growth < VIRTUAL_GROWTH_BOUND,
        "claimed frames grew the address space by {} MiB (bound {} MiB)",
        growth >> 20,
        VIRTUAL_GROWTH_BOUND >> 20
    );

    // A vote claiming 2 MiB: the link is closed (end of stream), not held open for the bytes.
    let vote = Msg::Notification {
        round: 1,
        state: ringkeeper_engine::zab::ServerState::Looking,
        vote: Vote { leader: 2, zxid: 0, epoch: 0 },
        config: ringkeeper_engine::zab::CarriedConfig::Version(0),
    };
    let mut stream = peer_connection(&ensemble, 0, 2);
    stream.write_all(&claim(2 << 20, &vote)).unwrap();
    if let Err(e) = closed_within(&mut stream, Duration::from_secs(10)) {
        panic!("a 2 MiB vote did not close the link: {e}");
    }

    drop(hostile);
    ensemble.wait_serving(0, Duration::from_secs(30));
    assert!(std::fs::metadata(format!("/proc/{pid}")).is_ok(), "member 1 exited");
}

#[test]
fn handshakes_are_bounded_in_size_and_time_and_refusals_are_logged_once() {
    if Target::from_env() == Target::Apache {
        eprintln!("skipped: ringkeeper's own peer protocol");
        return;
    }
    let mut ensemble = Ensemble::start(3, 0, "");
    let connect =
        || TcpStream::connect(("127.0.0.1", ensemble.members[0].peer_port)).expect("connect to peer port");

    // An address of 60,000 bytes announced (and never sent): closed at once, not read.
    let mut stream = connect();
    stream.write_all(&hello(HANDSHAKE_MAGIC, 2, 60_000)).unwrap();
    closed_within(&mut stream, Duration::from_secs(5)).expect("a 60,000-byte address");
    // Nothing at all: closed once the peer timeout passes.
    let mut silent = connect();
    closed_within(&mut silent, Duration::from_secs(15)).expect("a silent connection");

    // A process that knows no member id, redialling 20 times: one line in the log.
    for _ in 0..20 {
        let mut stream = connect();
        stream.write_all(&hello(HANDSHAKE_MAGIC, 77, 0)).unwrap();
        closed_within(&mut stream, Duration::from_secs(5)).expect("an unknown server id");
    }
    // A member of a build with the previous peer protocol: refused, saying so.
    let mut stream = connect();
    stream.write_all(&hello(OLDER_HANDSHAKE_MAGIC, 2, 0)).unwrap();
    closed_within(&mut stream, Duration::from_secs(5)).expect("the previous peer protocol");
    let log = ensemble.log(0);
    for reason in [
        "an address of 60000 bytes (at most 2048)",
        "no handshake within",
        "speaks an older ringkeeper peer protocol",
    ] {
        assert!(log.contains(reason), "no refusal '{reason}' in member 1's log:\n{log}");
    }
    let unknown =
        log.lines().filter(|l| l.contains("bad handshake (magic 0x524b5a44, server id 77)")).count();
    assert_eq!(unknown, 1, "20 refusals of server id 77 logged {unknown} times:\n{log}");
    ensemble.wait_serving(0, Duration::from_secs(30));
}
