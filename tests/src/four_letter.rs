//! The `srvr` four-letter word's `Mode:` line, shared by the tests and the bench: which role a
//! server reports ([`Mode`]) and whether an ensemble has settled on one leader
//! ([`settled_leader`]). Pure parsing; asking a server is [`crate::four_letter_at`] (tests)
//! or `ringkeeper_bench::four_letter::srvr` (bench).

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
