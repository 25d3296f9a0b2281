//! Four-letter words, shared by the tests and the bench: asking one over a fresh TCP
//! connection to a server's client port ([`ask`]; the tests' [`crate::four_letter_at`] and
//! the bench's `ringkeeper_bench::four_letter::ask` are thin wrappers), and the `srvr`
//! answer's `Mode:` line: which role a server reports ([`Mode`]) and whether an ensemble has
//! settled on one leader ([`settled_leader`]).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest answer read (a `cons` of 10,000 connections is about 1 MiB).
const ANSWER_BYTES_MAX: u64 = 16 << 20;

/// Sends the four-letter `word` to the server at `address` and returns everything it wrote
/// before closing. `timeout` bounds the connect, the write and each read; an error when the
/// server cannot be reached or does not close in time.
pub fn ask(address: SocketAddr, word: &str, timeout: Duration) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(word.as_bytes())?;
    let mut answer = String::new();
    stream.take(ANSWER_BYTES_MAX).read_to_string(&mut answer)?;
    Ok(answer)
}

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

/// The leader's index when the ensemble has settled: exactly one `leader` and every other
/// member a `follower` or `observer`.
pub fn settled_leader(modes: &[Option<Mode>]) -> Option<usize> {
    let mut leaders = modes.iter().enumerate().filter(|(_, m)| **m == Some(Mode::Leader)).map(|(i, _)| i);
    let leader = leaders.next()?;
    let others_follow =
        modes.iter().all(|m| matches!(m, Some(Mode::Leader) | Some(Mode::Follower) | Some(Mode::Observer)));
    (leaders.next().is_none() && others_follow).then_some(leader)
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
