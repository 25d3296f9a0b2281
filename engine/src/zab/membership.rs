//! Ensemble membership as dynamic reconfiguration sees it (Apache's `QuorumMaj` and
//! `QuorumServer`): the `server.N=host:peerPort:electionPort[:role][;[clientHost:]clientPort]`
//! lines and the config version, in the text form `/zookeeper/config` holds and
//! `zoo.cfg.dynamic.<version>` files carry.
//!
//! In: that text (a dynamic config file, the data of a reconfig txn, a `newMembers` list) or
//! a reconfig's joining and leaving lists. Out: a [`Membership`]: who votes, who observes,
//! where each member listens, rendered back exactly as Apache renders it
//! (`server.N=...\n` per member in id order, then `version=<hex>`).
//!
//! A reconfig is a setData of `/zookeeper/config` whose txn carries version -1 (Apache's
//! `SetDataTxn` for `OpCode.reconfig`): [`reconfig_in_txn`] finds it in encoded txn bytes, so
//! every replica of the protocol ([`crate::zab::peer`]) sees the same membership change at
//! the same zxid, from the leader's proposal, a DIFF, or its own log.

use std::collections::BTreeMap;

use super::ServerId;
use crate::txn::{ArchivedTxnBody, ArchivedTxnOp, TxnBytes};

/// The znode holding the ensemble's configuration (`ZooDefs.CONFIG_NODE`).
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// One member (`server.N=...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: ServerId,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub peer_port: u16,
    pub election_port: u16,
    pub observer: bool,
    /// `;[clientHost:]clientPort`: where it serves clients (`0.0.0.0` when only a port is given).
    pub client: Option<(String, u16)>,
}

/// The members and the config's version (the zxid of the reconfig that made it; 0 for a
/// configuration no reconfig made).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Membership {
    pub members: BTreeMap<ServerId, Member>,
    pub version: i64,
}

/// A host as written in a `host:port` pair: an IPv6 literal in brackets.
pub fn host_text(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Splits `host:port` (IPv6 in brackets) at its last colon.
fn split_host_port(text: &str) -> Option<(String, &str)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once("]:")?;
        return Some((host.to_string(), after));
    }
    let (host, port) = text.rsplit_once(':')?;
    Some((host.to_string(), port))
}

fn port(text: &str) -> Result<u16, String> {
    text.trim().parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("\"{text}\" is not a port"))
}

impl Member {
    /// Parses the value of a `server.N=` line for server `id`.
    pub fn parse(id: ServerId, value: &str) -> Result<Member, String> {
        let (server, client) = match value.split_once(';') {
            Some((s, c)) => (s.trim(), Some(c.trim())),
            None => (value.trim(), None),
        };
        let (host, rest) = if let Some(rest) = server.strip_prefix('[') {
            let (host, after) = rest.split_once("]:").ok_or_else(|| format!("bad address \"{server}\""))?;
            (host.to_string(), after)
        } else {
            let (host, after) = server.split_once(':').ok_or_else(|| format!("bad address \"{server}\""))?;
            (host.to_string(), after)
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (peer_port, election_port, observer) = match parts.as_slice() {
            [p, e] => (port(p)?, port(e)?, false),
            [p, e, role] => {
                let observer = match role.trim() {
                    "participant" => false,
                    "observer" => true,
                    other => return Err(format!("\"{other}\" is not a role (participant or observer)")),
                };
                (port(p)?, port(e)?, observer)
            }
            _ => return Err(format!("\"{value}\" is not host:peerPort:electionPort[:role]")),
        };
        let client = match client.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) if !c.contains(':') => Some(("0.0.0.0".to_string(), port(c)?)),
            Some(c) => {
                let (h, p) = split_host_port(c).ok_or_else(|| format!("bad client address \"{c}\""))?;
                Some((h, port(p)?))
            }
        };
        Ok(Member { id, host, peer_port, election_port, observer, client })
    }

    /// The value of its `server.N=` line, as Apache's `QuorumServer.toString`.
    pub fn render(&self) -> String {
        let role = if self.observer { "observer" } else { "participant" };
        let mut s = format!("{}:{}:{}:{role}", host_text(&self.host), self.peer_port, self.election_port);
        if let Some((host, port)) = &self.client {
            s.push_str(&format!(";{}:{port}", host_text(host)));
        }
        s
    }
}

/// Parses `server.N=value` into the id and the member.
fn parse_server_line(line: &str) -> Result<Member, String> {
    let (key, value) = line.split_once('=').ok_or_else(|| format!("\"{line}\" is not server.N=..."))?;
    let id_text = key.trim().strip_prefix("server.").ok_or_else(|| format!("\"{key}\" is not server.N"))?;
    let id = id_text.parse::<ServerId>().map_err(|_| format!("\"{id_text}\" is not a server id"))?;
    Member::parse(id, value)
}

impl Membership {
    /// Parses dynamic config text: `server.N=...` lines and an optional `version=<hex>` line;
    /// lines may also be separated by commas (a reconfig's `newMembers`). Blank lines and
    /// `#` comments are skipped; any other line is an error.
    pub fn parse(text: &str) -> Result<Membership, String> {
        let mut m = Membership::default();
        for line in text.split(['\n', ',']).map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            if let Some(hex) = line.strip_prefix("version=") {
                m.version = i64::from_str_radix(hex.trim(), 16)
                    .map_err(|_| format!("\"{hex}\" is not a hex version"))?;
                continue;
            }
            let member = parse_server_line(line)?;
            m.members.insert(member.id, member);
        }
        Ok(m)
    }

    /// The text `/zookeeper/config` holds (Apache's `QuorumMaj.toString`).
    pub fn render(&self) -> String {
        let mut s = String::new();
        for m in self.members.values() {
            s.push_str(&format!("server.{}={}\n", m.id, m.render()));
        }
        s.push_str(&format!("version={:x}", self.version));
        s
    }

    pub fn voters(&self) -> Vec<ServerId> {
        self.members.values().filter(|m| !m.observer).map(|m| m.id).collect()
    }

    pub fn observers(&self) -> Vec<ServerId> {
        self.members.values().filter(|m| m.observer).map(|m| m.id).collect()
    }

    /// An incremental reconfig (Apache's `PrepRequestProcessor`): `leaving` ids removed, then
    /// each `server.N=...` of `joining` added or replacing member N. Joiners must name a client
    /// address, and no two members may share an address.
    pub fn incremental(&self, joining: &[&str], leaving: &[&str]) -> Result<Membership, String> {
        let mut next = self.members.clone();
        for id in leaving {
            let id = id.trim().parse::<ServerId>().map_err(|_| format!("\"{id}\" is not a server id"))?;
            next.remove(&id);
        }
        for line in joining {
            let joiner = parse_server_line(line)?;
            if joiner.client.is_none() {
                return Err(
                    "Wrong format of server string - each server should have 3 ports specified".into()
                );
            }
            next.insert(joiner.id, joiner);
        }
        let m = Membership { members: next, version: self.version };
        m.check_addresses()?;
        Ok(m)
    }

    /// Refuses two members sharing a peer or election address (`checkAddressDuplicate`).
    pub fn check_addresses(&self) -> Result<(), String> {
        let mut seen: BTreeMap<(String, u16), ServerId> = BTreeMap::new();
        for m in self.members.values() {
            for port in [m.peer_port, m.election_port] {
                if let Some(other) = seen.insert((m.host.clone(), port), m.id) {
                    return Err(format!(
                        "server.{} and server.{other} share the address {}:{port}",
                        m.id,
                        host_text(&m.host)
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The new configuration text if `bytes` hold a reconfig txn (a setData of [`CONFIG_NODE`]
/// with version -1), else `None`. `bytes` must be a valid archive (produced here, or
/// validated when received or read back).
pub fn reconfig_in_txn(bytes: &TxnBytes) -> Option<&[u8]> {
    let txn = crate::txn::access_trusted(bytes);
    match &txn.body {
        ArchivedTxnBody::Op(ArchivedTxnOp::SetData { path, data, version })
            if version.to_native() == -1 && path.as_str() == CONFIG_NODE =>
        {
            Some(data.as_slice())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_as_apache_and_parses_back() {
        let text = "server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n\
                    server.1=127.0.0.1:2888:3888;2181\nserver.3=[::1]:2890:3890:observer\nversion=100000003";
        let m = Membership::parse(text).unwrap();
        assert_eq!(m.version, 0x1_0000_0003);
        assert_eq!(m.voters(), vec![1, 2]);
        assert_eq!(m.observers(), vec![3]);
        assert_eq!(
            m.render(),
            "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
             server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n\
             server.3=[::1]:2890:3890:observer\nversion=100000003"
        );
        assert_eq!(Membership::parse(&m.render()).unwrap(), m);
    }

    #[test]
    fn incremental_changes_remove_then_add_and_check_addresses() {
        let m = Membership::parse("server.1=a:1:2;3\nserver.2=b:1:2;3\nserver.3=c:1:2;3").unwrap();
        let next = m.incremental(&["server.4=d:1:2:participant;d:3"], &["1"]).unwrap();
        assert_eq!(next.voters(), vec![2, 3, 4]);
        assert!(m.incremental(&["server.4=d:1:2"], &[]).unwrap_err().contains("3 ports"));
        assert!(m.incremental(&["server.4=b:1:5;3"], &[]).unwrap_err().contains("share"));
        assert!(m.incremental(&["server.x=b:1:5;3"], &[]).is_err());
        assert!(m.incremental(&[], &["y"]).is_err());
        let bulk = Membership::parse("server.1=a:1:2;3,server.5=e:1:2;3").unwrap();
        assert_eq!(bulk.voters(), vec![1, 5]);
    }
}
