//! Where a write's time goes inside the servers: ringkeeper's per-hop latency of sampled
//! writes (`mntr` lines `zk_ringkeeper_hop_<hop>_us_{p50,p99,count}`, each hop in µs from
//! the moment the request was read off the client socket; see the server's `hops` module).
//!
//! A load run starts the servers' figures over with `srst` when its measure window opens
//! ([`reset`]) and reads `mntr` when it closes ([`read`]), so the breakdown covers the same
//! window as the client's latency. Servers that print no hop lines (Apache ZooKeeper, or a
//! ringkeeper whose `4lw.commands.whitelist` leaves out `mntr`/`srst`) are left out.

use std::fmt::Write as _;

use serde::Serialize;

use crate::four_letter::ask;

/// One hop's figures on one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HopFigures {
    pub hop: String,
    pub p50_us: u64,
    pub p99_us: u64,
    pub count: u64,
}

/// The breakdown one member reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberHops {
    /// `host:port`.
    pub member: String,
    /// `zk_server_state` (leader, follower, standalone).
    pub mode: String,
    /// In the order `mntr` printed them: path order.
    pub hops: Vec<HopFigures>,
}

/// The hops in `mntr` text, in the order printed, and the server state.
pub fn parse_mntr(member: &str, mntr: &str) -> MemberHops {
    let mut hops: Vec<HopFigures> = Vec::new();
    let mut mode = String::new();
    for (key, value) in mntr.lines().filter_map(|l| l.split_once('\t')) {
        if key == "zk_server_state" {
            mode = value.trim().to_string();
        }
        let Some((hop, figure)) = key.strip_prefix("zk_ringkeeper_hop_").and_then(|k| k.rsplit_once("_us_"))
        else {
            continue;
        };
        let Ok(value) = value.trim().parse::<u64>() else { continue };
        if hops.last().is_none_or(|h| h.hop != hop) {
            hops.push(HopFigures { hop: hop.to_string(), p50_us: 0, p99_us: 0, count: 0 });
        }
        let last = hops.last_mut().expect("pushed above");
        match figure {
            "p50" => last.p50_us = value,
            "p99" => last.p99_us = value,
            "count" => last.count = value,
            _ => {}
        }
    }
    MemberHops { member: member.to_string(), mode, hops }
}

/// Starts the figures of every member over (`srst`); members that do not answer are skipped.
pub fn reset(members: &[String]) {
    for member in members {
        let _ = ask(member, "srst");
    }
}

/// The breakdown of every member that reports hops.
pub fn read(members: &[String]) -> Vec<MemberHops> {
    members
        .iter()
        .filter_map(|member| ask(member, "mntr").ok().map(|text| parse_mntr(member, &text)))
        .filter(|m| !m.hops.is_empty())
        .collect()
}

/// A table per member: p50 and p99 of each hop, the p50 step from the hop before, samples.
pub fn table(members: &[MemberHops]) -> String {
    let mut out = String::new();
    for m in members {
        let _ = writeln!(
            out,
            "  server breakdown, {} ({}): µs since the request was read, sampled writes",
            m.member, m.mode
        );
        let _ =
            writeln!(out, "    {:<14} {:>9} {:>9} {:>9} {:>8}", "hop", "p50", "p50 step", "p99", "samples");
        let mut before = 0;
        for h in &m.hops {
            let step = h.p50_us as i64 - before as i64;
            let _ = writeln!(
                out,
                "    {:<14} {:>9} {:>+9} {:>9} {:>8}",
                h.hop, h.p50_us, step, h.p99_us, h.count
            );
            before = h.p50_us;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hop_lines_in_order_and_skips_the_rest() {
        let mntr = "zk_version\t3.8.4\nzk_server_state\tleader\nzk_ringkeeper_hop_data_in_us_p50\t12\n\
                    zk_ringkeeper_hop_data_in_us_p99\t40\nzk_ringkeeper_hop_data_in_us_count\t9\n\
                    zk_ringkeeper_hop_reply_written_us_p50\t800\nzk_ringkeeper_hop_reply_written_us_p99\t2000\n\
                    zk_ringkeeper_hop_reply_written_us_count\t9\nzk_followers\t2\n";
        let m = parse_mntr("a:1", mntr);
        assert_eq!(m.mode, "leader");
        assert_eq!(
            m.hops,
            vec![
                HopFigures { hop: "data_in".into(), p50_us: 12, p99_us: 40, count: 9 },
                HopFigures { hop: "reply_written".into(), p50_us: 800, p99_us: 2000, count: 9 },
            ]
        );
        let text = table(&[m]);
        assert!(text.contains("a:1 (leader)"), "{text}");
        assert!(text.contains("+788"), "{text}");
        assert!(parse_mntr("b:2", "zk_server_state\tstandalone\n").hops.is_empty());
    }
}
