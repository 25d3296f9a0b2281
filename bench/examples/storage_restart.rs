//! Restart-time measurement for `bench/results/storage.md`, against any ZooKeeper server.
//!
//! - `populate HOST:PORT COUNT VALUE_BYTES`: creates `/t/<i/1000>/<i%1000>` for `i < COUNT`
//!   (1000 parents of up to 1000 children) with values of VALUE_BYTES, pipelined 1000 deep.
//! - `first-read HOST:PORT PATH -- COMMAND ARGS...`: starts COMMAND, then connects and sends
//!   getData(PATH) in a loop until it succeeds (each probe on a new connection, given 250 ms
//!   to answer); prints the time from spawn to that first
//!   successful read and the process's resident set size (VmRSS) at that moment, then kills
//!   the process (SIGKILL) and waits for it. Bounded: gives up after 600 s.
//!
//! Raw ZooKeeper protocol over std sockets (no client library), so both servers are measured
//! with the same client doing the same thing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringkeeper_engine::proto::{
    Acl, ConnectRequest, CreateRequest, Id, Jute, PathWatchRequest, ReplyHeader, RequestHeader,
};

const OP_CREATE: i32 = 1;
const OP_GET_DATA: i32 = 4;
const PIPELINE_DEPTH: usize = 1000;
const FIRST_READ_LIMIT: Duration = Duration::from_secs(600);
/// How long one start-up probe waits for an answer before trying again on a new connection
/// (a server may accept a connection while still loading and never answer it).
const ATTEMPT_READ_TIMEOUT: Duration = Duration::from_millis(250);

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut payload)?;
    Ok(payload)
}

fn connect(addr: &str, read_timeout: Duration) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(read_timeout))?;
    let request = ConnectRequest {
        timeout_ms: 30_000,
        passwd: vec![0; 16],
        read_only: Some(false),
        ..Default::default()
    };
    stream.write_all(&frame(&request.to_bytes()))?;
    read_frame(&mut stream)?;
    Ok(stream)
}

fn request(xid: i32, op: i32, body: &impl Jute) -> Vec<u8> {
    let mut payload = RequestHeader { xid, op }.to_bytes();
    payload.extend_from_slice(&body.to_bytes());
    frame(&payload)
}

fn reply_err(payload: &[u8]) -> i32 {
    ReplyHeader::from_bytes(&payload[..16]).map(|h| h.err).unwrap_or(i32::MIN)
}

fn populate(addr: &str, count: usize, value_bytes: usize) -> anyhow::Result<()> {
    let mut stream = connect(addr, Duration::from_secs(30))?;
    let acl = vec![Acl { perms: 31, id: Id { scheme: "world".into(), id: "anyone".into() } }];
    let create =
        |path: String, data: Vec<u8>| CreateRequest { path, data: Some(data), acl: acl.clone(), flags: 0 };
    let mut paths: Vec<(String, usize)> = vec![("/t".into(), 0)];
    paths.extend((0..count.div_ceil(1000)).map(|p| (format!("/t/{p}"), 0)));
    paths.extend((0..count).map(|i| (format!("/t/{}/{}", i / 1000, i % 1000), value_bytes)));
    let started = Instant::now();
    let mut xid = 0;
    for chunk in paths.chunks(PIPELINE_DEPTH) {
        let mut batch = Vec::new();
        for (path, size) in chunk {
            xid += 1;
            batch.extend_from_slice(&request(xid, OP_CREATE, &create(path.clone(), vec![b'v'; *size])));
        }
        stream.write_all(&batch)?;
        for (path, _) in chunk {
            let err = reply_err(&read_frame(&mut stream)?);
            anyhow::ensure!(err == 0 || err == -110, "create {path}: error {err}");
        }
    }
    println!("created {} znodes in {:?}", paths.len(), started.elapsed());
    Ok(())
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn try_read(addr: &str, path: &str) -> bool {
    let Ok(mut stream) = connect(addr, ATTEMPT_READ_TIMEOUT) else { return false };
    let get = request(1, OP_GET_DATA, &PathWatchRequest { path: path.into(), watch: false });
    stream.write_all(&get).is_ok() && read_frame(&mut stream).is_ok_and(|r| reply_err(&r) == 0)
}

fn first_read(addr: &str, path: &str, command: &[String]) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = loop {
        if try_read(addr, path) {
            break Ok((started.elapsed(), rss_kib(child.id())));
        }
        if let Some(status) = child.try_wait()? {
            break Err(anyhow::anyhow!("server exited during start-up: {status}"));
        }
        if started.elapsed() > FIRST_READ_LIMIT {
            break Err(anyhow::anyhow!("no successful read within {FIRST_READ_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = child.kill();
    let _ = child.wait();
    let (elapsed, rss) = result?;
    println!("first read after {:.3} s, VmRSS {} KiB", elapsed.as_secs_f64(), rss.unwrap_or(0));
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["populate", addr, count, size] => populate(addr, count.parse()?, size.parse()?),
        ["first-read", addr, path, "--", ..] if args.len() > 4 => first_read(addr, path, &args[4..]),
        _ => anyhow::bail!(
            "usage: storage_restart populate HOST:PORT COUNT VALUE_BYTES\n       storage_restart first-read HOST:PORT PATH -- COMMAND ARGS..."
        ),
    }
}
