//! Four-letter words, each asked over a fresh TCP connection to a server's client port
//! ([`ask`]); mainly `srvr`: which role a server has right now (`Mode: leader`,
//! `Mode: follower`, ...).
//!
//! In: `host:port`. Out: the parsed [`Mode`], or an error when the server does not answer
//! within [`SRVR_TIMEOUT`] or is not serving (Apache answers "This ZooKeeper instance is not
//! currently serving requests" while it elects).

use std::net::ToSocketAddrs;
use std::time::Duration;

use crate::BenchError;

/// How long one four-letter word may take (connect, and the whole answer).
pub const SRVR_TIMEOUT: Duration = Duration::from_millis(500);

pub use ringkeeper_tests::four_letter::{settled_leader, Mode};

/// Sends `srvr` to `address` and returns the whole answer.
pub fn srvr(address: &str) -> Result<String, BenchError> {
    ask(address, "srvr")
}

/// Sends the four-letter `word` to `address` and returns the whole answer
/// ([`ringkeeper_tests::four_letter::ask`] within [`SRVR_TIMEOUT`]).
pub fn ask(address: &str, word: &str) -> Result<String, BenchError> {
    let socket = address
        .to_socket_addrs()
        .map_err(BenchError::io_at(format!("resolving {address}")))?
        .next()
        .ok_or_else(|| BenchError::Config(format!("{address} resolves to nothing")))?;
    ringkeeper_tests::four_letter::ask(socket, word, SRVR_TIMEOUT)
        .map_err(BenchError::io_at(format!("{word} to {address}")))
}

/// The role `address` reports now; an error when it answers with no `Mode:` line.
pub fn srvr_mode(address: &str) -> Result<Mode, BenchError> {
    let answer = srvr(address)?;
    Mode::parse_srvr(&answer)
        .ok_or_else(|| BenchError::Server(format!("{address} is not serving: {}", answer.trim())))
}

/// The modes of `addresses` now (`None` where a server does not answer or serve).
pub fn modes_of(addresses: &[String]) -> Vec<Option<Mode>> {
    addresses.iter().map(|a| srvr_mode(a).ok()).collect()
}
