//! The `reconfig` request (opcode 16) and the `/zookeeper/config` node, as Apache 3.8's
//! `PrepRequestProcessor` and `FinalRequestProcessor` handle them.
//!
//! In: a ReconfigRequest on the leader (learners forward it), the ensemble as the leader sees
//! it right now ([`EnsembleView`], set by [`crate::replica::Node`] before the request runs),
//! and the last configuration proposed (the data of `/zookeeper/config` in the leader's tree,
//! which holds every txn it made: Apache's `lastSeenQuorumVerifier`). Out: a setData txn of
//! `/zookeeper/config` with version -1 and the new configuration text (version = its zxid),
//! answered with a GetDataResponse; or an error txn and the error code. The membership change
//! itself happens when ZAB commits that txn ([`crate::zab::peer`]).
//!
//! Checks in Apache's order: reconfigEnabled (ReconfigDisabled), an ensemble
//! (Unimplemented), no reconfig in flight (ReconfigInProgress), `curConfigId` (-1 or the
//! current version, else BadVersion), the new membership parses (BadArguments), at least
//! two voters (BadArguments, with standaloneEnabled), a quorum of the new voters connected
//! and synced (NewConfigNoQuorum), then WRITE permission on `/zookeeper/config` (NoAuth:
//! only the super user, or whoever an ACL set on the node allows; nobody checked with
//! `skipACL`).

use super::*;
use crate::zab::membership::{Membership, CONFIG_NODE};
use crate::zab::{quorum_size, ServerId};

/// What a leader's processor needs to know of the ensemble to validate a reconfig.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnsembleView {
    /// Members synced with this leader right now, itself included (empty when not leading).
    pub synced: Vec<ServerId>,
    /// A reconfig is proposed and not yet committed.
    pub reconfig_pending: bool,
}

impl Processor {
    /// Sets `/zookeeper/config` to `membership` locally, without a txn, as every Apache
    /// member does when its configuration is loaded or changes (`initConfigInZKDatabase`):
    /// version -1, mzxid the config's version, mtime `now_ms` (wall clock).
    pub fn set_config_node(&mut self, membership: &Membership, now_ms: i64) {
        let text = membership.render();
        let _ = self.tree.set_data(CONFIG_NODE, Some(text.as_bytes()), -1, membership.version, now_ms);
    }

    /// The configuration `/zookeeper/config` holds (none if it holds none).
    pub fn config_node_membership(&self) -> Option<Membership> {
        let data = self.tree.get(CONFIG_NODE)?.data.as_deref()?;
        Membership::parse(std::str::from_utf8(data).ok()?).ok().filter(|m| !m.members.is_empty())
    }

    /// Sets what the processor knows of the ensemble (`None`: standalone, reconfig is
    /// Unimplemented there).
    pub fn set_ensemble_view(&mut self, view: Option<EnsembleView>) {
        self.ensemble = view;
    }

    pub(super) fn reconfig(
        &mut self,
        conn: ConnId,
        session_id: i64,
        xid: i32,
        r: &mut JuteReader<'_>,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let zxid = self.next_zxid();
        let body = match self.prepare_reconfig(conn, r, zxid) {
            Ok(text) => {
                TxnBody::Op(TxnOp::SetData { path: CONFIG_NODE.into(), data: text.into_bytes(), version: -1 })
            }
            Err(code) => TxnBody::Op(TxnOp::Error { code: code.code() }),
        };
        let failed = match &body {
            TxnBody::Op(TxnOp::Error { code }) => ErrorCode::from_i32(*code),
            _ => None,
        };
        let txn = Txn { session_id, cxid: xid, zxid, time_ms: now_ms, body };
        self.commit(&txn, now_ms, out);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_zxid = zxid;
        }
        match failed {
            Some(code) => {
                self.send(out, conn, reply_frame(xid, zxid, code, None), zxid);
            }
            None => {
                let node = self.tree.get(CONFIG_NODE).expect("a system node");
                let reply =
                    GetDataResponse { data: node.data.as_deref().map(<[u8]>::to_vec), stat: node.stat() };
                self.send(out, conn, reply_frame(xid, zxid, ErrorCode::Ok, Some(&reply)), zxid);
            }
        }
    }

    /// Validates a reconfig; the new configuration's text (version `zxid`) or the error.
    fn prepare_reconfig(&self, conn: ConnId, r: &mut JuteReader<'_>, zxid: i64) -> Result<String, ErrorCode> {
        if !self.config.reconfig_enabled {
            log::error!("Reconfig operation requested but reconfig feature is disabled.");
            return Err(ErrorCode::ReconfigDisabled);
        }
        if self.config.skip_acl {
            log::warn!("skipACL is set, reconfig operation will skip ACL checks!");
        }
        let Some(view) = &self.ensemble else { return Err(ErrorCode::Unimplemented) };
        let request = ReconfigRequest::decode(r).map_err(|_| ErrorCode::MarshallingError)?;
        if view.reconfig_pending {
            return Err(ErrorCode::ReconfigInProgress);
        }
        let last_seen = self.config_node_membership().unwrap_or_default();
        if request.cur_config_id != -1 && request.cur_config_id != last_seen.version {
            log::info!(
                "Reconfiguration from version {:x} failed -- last seen version is {:x}",
                request.cur_config_id,
                last_seen.version
            );
            return Err(ErrorCode::BadVersion);
        }
        let parsed = match &request.new_members {
            Some(members) => Membership::parse(members).and_then(|m| m.check_addresses().map(|()| m)),
            None => {
                let list = |s: &Option<String>| -> Vec<String> {
                    s.as_deref()
                        .map(|s| {
                            s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect()
                        })
                        .unwrap_or_default()
                };
                let (joining, leaving) = (list(&request.joining_servers), list(&request.leaving_servers));
                let joining: Vec<&str> = joining.iter().map(String::as_str).collect();
                let leaving: Vec<&str> = leaving.iter().map(String::as_str).collect();
                last_seen.incremental(&joining, &leaving)
            }
        };
        let mut next = parsed.map_err(|e| {
            log::warn!("Reconfiguration failed: {e}");
            ErrorCode::BadArguments
        })?;
        next.version = zxid;
        let voters = next.voters();
        if voters.len() < 2 {
            log::warn!("Reconfig failed - new configuration must include at least 2 followers");
            return Err(ErrorCode::BadArguments);
        }
        let synced = voters.iter().filter(|id| view.synced.contains(id)).count();
        if synced < quorum_size(voters.len()) {
            log::warn!("Reconfig failed - there must be a connected and synced quorum in new configuration");
            return Err(ErrorCode::NewConfigNoQuorum);
        }
        let node = self.tree.get(CONFIG_NODE).ok_or(ErrorCode::NoNode)?;
        let ids = self.conns.get(&conn).map_or(&[][..], |c| &c.ids);
        if !self.config.skip_acl && !acl::check_perm(self.tree.acl_of(node), perms::WRITE, ids) {
            return Err(ErrorCode::NoAuth);
        }
        Ok(next.render())
    }
}
