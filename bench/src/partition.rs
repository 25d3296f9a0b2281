//! Network partitions between the members of a harness-started ensemble, made with the test
//! harness's proxy mesh ([`ringkeeper_tests::proxy::ProxyMesh`]): every member reaches every
//! other member's peer and election ports through its own proxy link (`from` → `to`), so
//! cutting the links of one member isolates it from its peers while its clients still reach it.
//!
//! In: the ensemble's members; out: [`Routes`] (the port member `from` must use to reach
//! member `to`, written into `from`'s zoo.cfg) and a running [`Partitioner`].
//! A cut link is a black hole, not a reset: connections stay open and nothing is forwarded,
//! new connections are accepted and not forwarded, so the peers see silence (as with lost
//! packets) and must notice by their own timeouts. Healing closes every connection that was
//! held, so the peers reconnect cleanly.

use ringkeeper_tests::proxy::ProxyMesh;

use crate::servers::MemberSpec;
use crate::BenchError;

/// The port member `from` uses to reach member `to`'s peer and election ports, by index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// `ports[from][to]` = (peer, election); `from == to` holds the member's own ports.
    pub ports: Vec<Vec<(u16, u16)>>,
}

/// The running proxies of an ensemble.
pub struct Partitioner {
    mesh: ProxyMesh,
}

impl Partitioner {
    /// Binds and starts a proxy for every ordered pair of members and port kind.
    pub fn start(members: &[MemberSpec]) -> Result<(Partitioner, Routes), BenchError> {
        let own: Vec<(u16, u16)> = members.iter().map(|m| (m.peer_port, m.election_port)).collect();
        let mesh = ProxyMesh::start(&own);
        let ports = (0..members.len())
            .map(|from| (0..members.len()).map(|to| mesh.route(from, to).unwrap_or(own[to])).collect())
            .collect();
        Ok((Partitioner { mesh }, Routes { ports }))
    }

    /// Cuts every link to and from member `index`.
    pub fn isolate(&self, index: usize) {
        self.mesh.isolate(index);
    }

    /// Restores every link and closes the connections held while cut.
    pub fn heal(&self) {
        self.mesh.heal_and_reconnect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_proxies_except_for_a_member_itself() {
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
        assert!(routes.ports[0][1].0 > 1024 && routes.ports[0][1] != (102, 202));
    }
}
