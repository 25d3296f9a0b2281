//! Network partitions between the members of a harness-started ensemble, made with the test
//! harness's TCP proxies ([`ringkeeper_tests::proxy`]): every member reaches every other
//! member's peer and election ports through its own proxy link (`from` → `to`), so cutting the
//! links of one member isolates it from its peers while its clients still reach it.
//!
//! In: the ensemble's members; out: [`Routes`] (the port member `from` must use to reach
//! member `to`, written into `from`'s zoo.cfg) and a running [`Partitioner`].
//! A cut link is a black hole, not a reset: connections stay open and nothing is forwarded,
//! new connections are accepted and not forwarded, so the peers see silence (as with lost
//! packets) and must notice by their own timeouts. Healing closes every connection that was
//! held, so the peers reconnect cleanly. Apache's election initial message, which names the
//! sender's own election address, is rewritten to name the proxy link leading back.

use ringkeeper_tests::proxy::Proxy;

use crate::servers::MemberSpec;
use crate::BenchError;

/// The port member `from` uses to reach member `to`'s peer and election ports, by index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// `ports[from][to]` = (peer, election); `from == to` holds the member's own ports.
    pub ports: Vec<Vec<(u16, u16)>>,
}

/// The two proxies of one direction between two members.
struct Link {
    from: usize,
    to: usize,
    peer: Proxy,
    election: Proxy,
}

/// The running proxies of an ensemble.
pub struct Partitioner {
    links: Vec<Link>,
}

impl Partitioner {
    /// Binds and starts a proxy for every ordered pair of members and port kind.
    pub fn start(members: &[MemberSpec]) -> Result<(Partitioner, Routes), BenchError> {
        let n = members.len();
        let mut routes = Routes {
            ports: (0..n).map(|i| vec![(members[i].peer_port, members[i].election_port); n]).collect(),
        };
        let mut links = Vec::new();
        for from in 0..n {
            for to in (0..n).filter(|&to| to != from) {
                let link = Link { from, to, peer: Proxy::bind(), election: Proxy::bind() };
                routes.ports[from][to] = (link.peer.port, link.election.port);
                links.push(link);
            }
        }
        let local = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
        for link in &mut links {
            let target = &members[link.to];
            // The election port of the link leading back, for the initial-message rewrite.
            let back_port = routes.ports[link.to][link.from].1;
            link.peer.forward_to(local(target.peer_port), None);
            link.election.forward_to(local(target.election_port), Some(back_port));
        }
        Ok((Partitioner { links }, routes))
    }

    /// Cuts every link to and from member `index`.
    pub fn isolate(&self, index: usize) {
        for link in self.links.iter().filter(|l| l.from == index || l.to == index) {
            link.peer.set_blocked(true);
            link.election.set_blocked(true);
        }
    }

    /// Restores every link and closes the connections held while cut.
    pub fn heal(&self) {
        for link in &self.links {
            for proxy in [&link.peer, &link.election] {
                if proxy.is_blocked() {
                    proxy.set_blocked(false);
                    proxy.close_connections();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_lead_through_distinct_proxies() {
        let members: Vec<MemberSpec> = (1..=3)
            .map(|id| MemberSpec {
                id,
                client_port: 1,
                peer_port: 100 + id as u16,
                election_port: 200 + id as u16,
            })
            .collect();
        let (_partitioner, routes) = Partitioner::start(&members).unwrap();
        assert_eq!(routes.ports[1][1], (102, 202), "a member's own ports stay its own");
        let mut proxied: Vec<u16> = (0..3)
            .flat_map(|f| (0..3).filter(move |t| *t != f).map(move |t| (f, t)))
            .flat_map(|(f, t)| [routes.ports[f][t].0, routes.ports[f][t].1])
            .collect();
        proxied.sort();
        proxied.dedup();
        assert_eq!(proxied.len(), 12);
        assert!(proxied.iter().all(|p| *p > 1024));
    }
}
