//! Peer links under a hostile connection. The peer port accepts anyone who sends the
//! constant handshake (magic "RKZB", a known server id and optionally its address), so what such a connection can
//! cost is bounded: a frame header claiming a large frame costs memory only as its bytes
//! arrive, and a ZAB control message (anything but a state image or a proposal) longer than
//! 1 MiB closes the link. The member keeps serving throughout.
//!
//! ringkeeper only (Apache's quorum protocol is another one; skipped with a message).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use ringkeeper_engine::zab::{Msg, Vote};
use ringkeeper_tests::ensemble::Ensemble;
use ringkeeper_tests::Target;

/// The handshake magic of ringkeeper's peer links ("RKZB").
const HANDSHAKE_MAGIC: u32 = 0x524b_5a42;
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
    let mut hello = HANDSHAKE_MAGIC.to_le_bytes().to_vec();
    hello.extend_from_slice(&as_id.to_le_bytes());
    // The sender's own address (`u16` length, then `host:port`): none, as a known member may.
    hello.extend_from_slice(&0u16.to_le_bytes());
    stream.write_all(&hello).unwrap();
    stream
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
    };
    let mut stream = peer_connection(&ensemble, 0, 2);
    stream.write_all(&claim(2 << 20, &vote)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 1];
    let read = stream.read(&mut buf);
    assert!(
        matches!(read, Ok(0))
            || read.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "a 2 MiB vote did not close the link: {read:?}"
    );

    drop(hostile);
    ensemble.wait_serving(0, Duration::from_secs(30));
    assert!(std::fs::metadata(format!("/proc/{pid}")).is_ok(), "member 1 exited");
}
