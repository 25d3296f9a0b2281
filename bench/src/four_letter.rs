//! Four-letter words, each asked over a fresh TCP connection to a server's client port
//! ([`ask`]); mainly `srvr`: which role a server has right now (`Mode: leader`,
//! `Mode: follower`, ...).
//!
//! In: `host:port`. Out: the parsed [`Mode`], or an error when the server does not answer
//! within [`SRVR_TIMEOUT`] or is not serving (Apache answers "This ZooKeeper instance is not
//! currently serving requests" while it elects).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::BenchError;

/// How long one four-letter word may take (connect, and the whole answer).
pub const SRVR_TIMEOUT: Duration = Duration::from_millis(500);
/// Largest answer read.
const ANSWER_BYTES_MAX: u64 = 64 * 1024;

/// A server's role as `srvr` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Leader,
    Follower,
    Observer,
    Standalone,
    ReadOnly,
    Other(String),
}

impl Mode {
    /// The `Mode:` line of a `srvr` answer, if there is one.
    pub fn parse_srvr(answer: &str) -> Option<Mode> {
        let value = answer.lines().find_map(|l| l.strip_prefix("Mode:"))?.trim();
        Some(match value {
            "leader" => Mode::Leader,
            "follower" => Mode::Follower,
            "observer" => Mode::Observer,
            "standalone" => Mode::Standalone,
            "read-only" => Mode::ReadOnly,
            other => Mode::Other(other.to_string()),
        })
    }
}

/// Sends `srvr` to `address` and returns the whole answer.
pub fn srvr(address: &str) -> Result<String, BenchError> {
    ask(address, "srvr")
}

/// Sends the four-letter `word` to `address` and returns the whole answer.
pub fn ask(address: &str, word: &str) -> Result<String, BenchError> {
    let socket = address
        .to_socket_addrs()
        .map_err(BenchError::io_at(format!("resolving {address}")))?
        .next()
        .ok_or_else(|| BenchError::Config(format!("{address} resolves to nothing")))?;
    let context = || format!("{word} to {address}");
    let mut stream =
        TcpStream::connect_timeout(&socket, SRVR_TIMEOUT).map_err(BenchError::io_at(context()))?;
    stream.set_read_timeout(Some(SRVR_TIMEOUT))?;
    stream.set_write_timeout(Some(SRVR_TIMEOUT))?;
    stream.write_all(word.as_bytes()).map_err(BenchError::io_at(context()))?;
    let mut answer = String::new();
    stream.take(ANSWER_BYTES_MAX).read_to_string(&mut answer).map_err(BenchError::io_at(context()))?;
    Ok(answer)
}

/// The role `address` reports now; an error when it answers with no `Mode:` line.
pub fn srvr_mode(address: &str) -> Result<Mode, BenchError> {
    let answer = srvr(address)?;
    Mode::parse_srvr(&answer)
        .ok_or_else(|| BenchError::Server(format!("{address} is not serving: {}", answer.trim())))
}

/// The leader's index when the ensemble has settled: exactly one `leader` and every other
/// member a `follower` or `observer`.
pub fn settled_leader(modes: &[Option<Mode>]) -> Option<usize> {
    let mut leaders = modes.iter().enumerate().filter(|(_, m)| **m == Some(Mode::Leader)).map(|(i, _)| i);
    let leader = leaders.next()?;
    let others_follow =
        modes.iter().all(|m| matches!(m, Some(Mode::Leader) | Some(Mode::Follower) | Some(Mode::Observer)));
    (leaders.next().is_none() && others_follow).then_some(leader)
}

/// The modes of `addresses` now (`None` where a server does not answer or serve).
pub fn modes_of(addresses: &[String]) -> Vec<Option<Mode>> {
    addresses.iter().map(|a| srvr_mode(a).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_line_is_parsed() {
        let answer =
            "Zookeeper version: 3.8.4\nLatency min/avg/max: 0/0.0/0\nMode: follower\nNode count: 5\n";
        assert_eq!(Mode::parse_srvr(answer), Some(Mode::Follower));
        assert_eq!(Mode::parse_srvr("Mode: leader\n"), Some(Mode::Leader));
        assert_eq!(Mode::parse_srvr("Mode: odd"), Some(Mode::Other("odd".into())));
        assert_eq!(Mode::parse_srvr("This ZooKeeper instance is not currently serving requests\n"), None);
    }

    #[test]
    fn settled_means_one_leader_and_the_rest_following() {
        let (l, f) = (Some(Mode::Leader), Some(Mode::Follower));
        assert_eq!(settled_leader(&[f.clone(), l.clone(), f.clone()]), Some(1));
        assert_eq!(settled_leader(&[f.clone(), l.clone(), None]), None);
        assert_eq!(settled_leader(&[l.clone(), l.clone(), f.clone()]), None);
        assert_eq!(settled_leader(&[f.clone(), f]), None);
        assert_eq!(settled_leader(&[Some(Mode::Standalone)]), None);
    }
}
