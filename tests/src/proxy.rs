//! A TCP proxy a test controls, to partition servers without touching the host's network:
//! it forwards every connection made to its port on to `upstream`, until the test blocks it.
//!
//! Blocked means silent, like a cable pulled: nothing is forwarded in either direction and no
//! connection is reset (bytes wait in the kernel buffers), so peers only notice through their
//! own timeouts; unblocked, the streams carry on intact. Threads end when the proxy drops.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a pump waits for bytes before checking the flags again.
const POLL: Duration = Duration::from_millis(5);

/// One proxy: `127.0.0.1:port` -> `upstream`.
pub struct Proxy {
    pub port: u16,
    blocked: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let blocked = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let (b, s) = (blocked.clone(), stopped.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(server) = TcpStream::connect(upstream) else { continue };
                        for (from, to) in
                            [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                        {
                            let (b, s) = (b.clone(), s.clone());
                            std::thread::spawn(move || pump(from, to, b, s));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
                    Err(_) => std::thread::sleep(POLL),
                }
            }
        });
        Proxy { port, blocked, stopped }
    }

    /// Stops (or resumes) forwarding, silently.
    pub fn set_blocked(&self, blocked: bool) {
        self.blocked.store(blocked, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, blocked: Arc<AtomicBool>, stopped: Arc<AtomicBool>) {
    from.set_read_timeout(Some(POLL)).ok();
    let mut buf = vec![0u8; 64 * 1024];
    while !stopped.load(Ordering::Relaxed) {
        if blocked.load(Ordering::Relaxed) {
            std::thread::sleep(POLL);
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
