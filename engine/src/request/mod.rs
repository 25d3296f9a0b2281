//! The request processor: what a ZooKeeper server does with each client packet.
//!
//! Owned by the data role. In: connection events and request frames (payload after the
//! length prefix), each with `now_ms` from outside. Out: [`Output`]s — reply and
//! notification frames for connections, connections to close, and the encoded txn of every
//! write for the log. Writes are validated ([`prep`]), become one [`Txn`], are encoded once and
//! applied through [`txn::apply`]; replies are built from what apply returned ([`reply`]).
//! Invariant: outputs for one connection are emitted in the order the client must see them
//! (a watch event before the reply of the request whose change fired it), and every output
//! carries the zxid it depends on so the server can hold it until that zxid is durable.

pub mod prep;
pub mod reconfig;
pub mod replica;
pub mod reply;
#[cfg(test)]
mod tests;

use crate::FastMap;

use crate::acl;
use crate::auth;
use crate::proto::*;
use crate::session::SessionTable;
use crate::tree::{self, owner_kind, DataTree, OwnerKind, TreeChange};
use crate::txn::{self, ArchivedTxn, ArchivedTxnBody, Txn, TxnBody, TxnBytes, TxnOp};
use crate::watch::{WatchManager, WatcherId};
use prep::{PendingView, Requester, WriteOp};
pub use reconfig::EnsembleView;

pub use crate::conn::ConnId;

/// What the processor asks the server to do.
#[derive(Debug)]
pub enum Output {
    /// Send a whole frame (length prefix included) once `zxid` is durable.
    Send { conn: ConnId, frame: Vec<u8>, zxid: i64 },
    /// Close the connection after everything sent before it.
    Close { conn: ConnId, zxid: i64 },
    /// Append this txn to the log.
    Log { zxid: i64, bytes: TxnBytes },
}

/// Settings the processor needs (from zoo.cfg).
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub tick_ms: i64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub extended_types_enabled: bool,
    /// `zookeeper.enforceQuota`: hard quota limits refuse writes (QuotaExceeded).
    pub enforce_quota: bool,
    pub super_digest: Option<String>,
    pub server_id: i64,
    /// Container/TTL reaper period (`znode.container.checkIntervalMs`).
    pub container_check_interval_ms: i64,
    /// `readonlymode.enabled`: an ensemble member cut off from its quorum serves read-only
    /// clients (the decision is [`crate::replica::Node`]'s; see [`Processor::set_read_only`]).
    pub read_only_mode_enabled: bool,
    /// Authentication providers on beyond `ip` and `digest` (`authProvider.N`).
    pub auth_providers: acl::Providers,
    /// `reconfigEnabled`: the reconfig request is served (else ReconfigDisabled).
    pub reconfig_enabled: bool,
    /// `zookeeper.skipACL=yes`: no ACL is checked, for any request (reconfig included, which
    /// then needs no super user) nor for watch events.
    pub skip_acl: bool,
    /// SASL (opcode 102) when the SASL provider is on and a JAAS `Server` section was found.
    pub sasl: Option<auth::SaslConfig>,
    /// The mechanism SASL exchanges use instead of DIGEST-MD5 (GSSAPI, when the JAAS
    /// `Server` section logs in with Kerberos; provided by the server).
    pub sasl_mechanism: Option<std::sync::Arc<dyn auth::SaslMechanism>>,
    /// `enforce.auth.*`, `sessionRequireClientSASLAuth`, `allowSaslFailedClients`.
    pub enforcement: auth::Enforcement,
    /// Key of the DIGEST-MD5 nonces (random, from the server at start-up): each nonce is
    /// HMAC-SHA256(key, a per-processor counter).
    pub sasl_nonce_key: Vec<u8>,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            tick_ms: 2000,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            extended_types_enabled: false,
            enforce_quota: false,
            super_digest: None,
            server_id: 0,
            container_check_interval_ms: 60_000,
            read_only_mode_enabled: false,
            auth_providers: acl::Providers::default(),
            reconfig_enabled: false,
            skip_acl: false,
            sasl: None,
            sasl_mechanism: None,
            enforcement: auth::Enforcement::default(),
            sasl_nonce_key: Vec::new(),
        }
    }
}

/// Per-connection state.
#[derive(Debug)]
pub struct Connection {
    pub session_id: i64,
    pub ids: Vec<Id>,
    pub client_ip: String,
    pub remote: String,
    pub received: u64,
    pub sent: u64,
    pub last_cxid: i32,
    pub last_zxid: i64,
    /// The last request's opcode (`cons` prints it as `lop=`).
    pub last_op: Option<OpCode>,
    pub connected_at_ms: i64,
    /// The connection's SASL exchange, once it sent a SASL request.
    pub sasl: Option<SaslExchange>,
}

/// A connection's SASL exchange.
#[derive(Debug)]
pub enum SaslExchange {
    DigestMd5(auth::digest_md5::DigestMd5Server),
    /// An exchange of [`ProcessorConfig::sasl_mechanism`].
    Mechanism(Box<dyn auth::SaslExchange>),
    /// The mechanism could not start an exchange (why).
    NotStarted(String),
}

/// Counters for the four-letter words.
#[derive(Debug, Clone, Default)]
pub struct ProcessorStats {
    pub packets_received: u64,
    pub packets_sent: u64,
}

/// The ZooKeeper request processor for one replica.
pub struct Processor {
    pub tree: DataTree,
    pub sessions: SessionTable,
    pub watches: WatchManager,
    pub config: ProcessorConfig,
    pub stats: ProcessorStats,
    pub(crate) conns: FastMap<ConnId, Connection>,
    pub(crate) session_conn: FastMap<i64, ConnId>,
    next_reap_ms: i64,
    /// Only the leader (or a standalone server) expires sessions and reaps containers.
    pub(crate) owns_expiry: bool,
    /// The last zxid this processor may assign (see [`Processor::set_zxid_limit`]).
    zxid_limit: i64,
    /// Serving read-only (Apache's `ReadOnlyZooKeeperServer`): see [`Processor::set_read_only`].
    read_only: bool,
    /// Sessions made while read-only: local to this server, never in the log.
    local_sessions: Vec<i64>,
    /// The ensemble as a reconfig needs it ([`Processor::set_ensemble_view`]); `None`
    /// standalone.
    ensemble: Option<EnsembleView>,
    /// SASL exchanges started (the DIGEST-MD5 nonce counter).
    sasl_exchanges: u64,
}

/// A decoded client request.
enum Request {
    /// One write op, or the ops of a multi (`is_multi`).
    Write { ops: Vec<WriteOp>, is_multi: bool },
    /// The reads of a multiRead (getData and getChildren only).
    MultiRead(Vec<(OpCode, String)>),
    /// A single read; its body is decoded when answered.
    Read,
}

/// Room a frame is built in before it grows: a reply header with a Stat and ~150 bytes of
/// data fits, so most replies are encoded with one allocation (growing from 4 bytes took
/// six reallocations and copies for a 100-byte getData reply).
const FRAME_CAPACITY_BYTES: usize = 256;

/// A length-prefixed frame whose payload `write` appends.
pub fn framed(write: impl FnOnce(&mut JuteWriter<'_>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_CAPACITY_BYTES);
    out.extend_from_slice(&[0u8; 4]);
    write(&mut JuteWriter::new(&mut out));
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// A frame holding a reply header and an optional jute body.
pub fn reply_frame(xid: i32, zxid: i64, err: ErrorCode, body: Option<&dyn Jute2>) -> Vec<u8> {
    framed(|w| {
        ReplyHeader { xid, zxid, err: err.code() }.encode(w);
        if let Some(body) = body {
            body.encode_into(w);
        }
    })
}

/// Object-safe encoding of a jute record.
pub trait Jute2 {
    fn encode_into(&self, w: &mut JuteWriter<'_>);
}

impl<T: Jute> Jute2 for T {
    fn encode_into(&self, w: &mut JuteWriter<'_>) {
        self.encode(w)
    }
}

/// A length-prefixed frame of one jute record (connect responses).
pub fn record_frame(record: &dyn Jute2) -> Vec<u8> {
    framed(|w| record.encode_into(w))
}

impl Processor {
    /// `secret` keys session passwords ([`SessionTable::new`]).
    pub fn new(config: ProcessorConfig, now_ms: i64, secret: &[u8]) -> Self {
        Processor {
            tree: DataTree::new(),
            sessions: SessionTable::new(config.server_id, now_ms, secret, config.tick_ms),
            watches: WatchManager::new(),
            next_reap_ms: now_ms + config.container_check_interval_ms,
            config,
            stats: ProcessorStats::default(),
            conns: FastMap::default(),
            session_conn: FastMap::default(),
            owns_expiry: true,
            zxid_limit: i64::MAX,
            read_only: false,
            local_sessions: Vec::new(),
            ensemble: None,
            sasl_exchanges: 0,
        }
    }

    /// zxid of the last txn (every txn is applied as soon as it is made).
    pub fn last_zxid(&self) -> i64 {
        self.tree.last_processed_zxid
    }

    pub fn connections(&self) -> impl Iterator<Item = (&ConnId, &Connection)> {
        self.conns.iter()
    }

    pub fn connection(&self, conn: ConnId) -> Option<&Connection> {
        self.conns.get(&conn)
    }

    /// The zxid of the next txn; it becomes the last one when that txn is committed. The one
    /// place zxids are assigned: an ensemble leader's ZAB peer takes them as proposed.
    fn next_zxid(&self) -> i64 {
        self.tree.last_processed_zxid + 1
    }

    /// How many more txns may be made before the zxid limit.
    fn txns_allowed(&self) -> usize {
        usize::try_from(self.zxid_limit.saturating_sub(self.tree.last_processed_zxid)).unwrap_or(0)
    }

    /// Sets the last zxid this processor may assign: unlimited standalone; an ensemble
    /// leader's epoch ends at its counter limit (then a new election starts a new epoch); a
    /// learner or a server not serving assigns none. A request that would need a later zxid
    /// closes its connection (the client reconnects to whoever leads next); expiry and the
    /// reaper wait.
    pub fn set_zxid_limit(&mut self, limit: i64) {
        self.zxid_limit = limit;
    }

    /// Enters or leaves read-only serving (Apache's `ReadOnlyZooKeeperServer`): only clients
    /// whose ConnectRequest says readOnly are taken (others are closed unanswered), and told
    /// readOnly=true; new sessions are local (no txn, never logged), as Apache's with
    /// `localSessionsEnabled=true` (without it Apache 3.8 answers a new session's
    /// ConnectRequest with a bare NotReadOnly reply header no client can read); writes, sync
    /// and closing a global session are answered NotReadOnly; reads run on the tree as it is.
    /// Leaving drops the local sessions (the caller closes their connections).
    pub fn set_read_only(&mut self, on: bool) {
        self.read_only = on;
        if !on {
            for id in std::mem::take(&mut self.local_sessions) {
                self.sessions.remove(id);
            }
        }
    }

    /// Read-only (local) sessions open now; they are in [`Self::sessions`] too.
    pub fn local_session_count(&self) -> usize {
        self.local_sessions.len()
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn send(&mut self, out: &mut Vec<Output>, conn: ConnId, frame: Vec<u8>, zxid: i64) {
        self.stats.packets_sent += 1;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.sent += 1;
        }
        out.push(Output::Send { conn, frame, zxid });
    }

    /// Encodes and applies one txn, emitting the log record and the watch notifications.
    fn commit(&mut self, txn: &Txn, now_ms: i64, out: &mut Vec<Output>) -> txn::Applied {
        let bytes = txn::encode(txn);
        let applied = self.apply_archived(txn::access_trusted(&bytes), now_ms);
        out.push(Output::Log { zxid: txn.zxid, bytes });
        self.notify(&applied.changes, txn.zxid, out);
        applied
    }

    /// Applies one txn to the tree and the session table: the state change shared by
    /// [`Self::commit`] (new writes) and [`Self::replay`] (recovery).
    pub(crate) fn apply_archived(&mut self, txn: &ArchivedTxn, now_ms: i64) -> txn::Applied {
        let applied = txn::apply(&mut self.tree, txn);
        let session_id = txn.session_id.to_native();
        match &txn.body {
            ArchivedTxnBody::CreateSession { timeout_ms } => {
                self.sessions.add(session_id, timeout_ms.to_native(), now_ms)
            }
            ArchivedTxnBody::CloseSession { .. } => {
                self.sessions.remove(session_id);
            }
            _ => {}
        }
        applied
    }

    /// Applies a txn read back from the log at start-up: the tree through [`txn::apply`], a
    /// CreateSession adds its session with a fresh deadline from `now_ms`, a CloseSession
    /// removes it, and new zxids continue after this one. Emits nothing (no client waits).
    pub fn replay(&mut self, txn: &ArchivedTxn, now_ms: i64) {
        self.apply_archived(txn, now_ms);
    }

    /// Fires the watches `changes` trigger. An event goes only to a connection holding READ
    /// on the ACL of the node the event names (for `NodeChildrenChanged` the parent), as
    /// the change found it (Apache 3.8.4+, CVE-2024-23944: a recursive watch on a parent
    /// must not reveal children its owner cannot read). One-shot watches of a connection
    /// filtered out are still consumed, as in Apache.
    pub(crate) fn notify(&mut self, changes: &[TreeChange], zxid: i64, out: &mut Vec<Output>) {
        for change in changes {
            let (notes, acl, parent_acl) = match change {
                TreeChange::Created { path, acl, parent_acl } => {
                    (self.watches.node_created(path, tree::path::parent(path)), acl, Some(parent_acl))
                }
                TreeChange::Deleted { path, acl, parent_acl } => {
                    (self.watches.node_deleted(path, tree::path::parent(path)), acl, Some(parent_acl))
                }
                TreeChange::DataChanged { path, acl } => (self.watches.data_changed(path), acl, None),
            };
            for n in notes {
                let event_acl = match (n.event_type, parent_acl) {
                    (EventType::NodeChildrenChanged, Some(parent_acl)) => parent_acl,
                    _ => acl,
                };
                let ids = self.conns.get(&n.watcher.0).map_or(&[][..], |c| &c.ids);
                if !self.config.skip_acl && !acl::check_perm(event_acl, perms::READ, ids) {
                    log::trace!(
                        "Not delivering {:?} on {} to {:?} (filtered by ACL)",
                        n.event_type,
                        n.path,
                        n.watcher
                    );
                    continue;
                }
                self.send_event(out, n.watcher.0, n.event_type, &n.path, zxid);
            }
        }
    }

    fn send_event(
        &mut self,
        out: &mut Vec<Output>,
        conn: ConnId,
        event_type: EventType,
        path: &str,
        zxid: i64,
    ) {
        let event = WatcherEvent {
            event_type: event_type as i32,
            state: KeeperState::SyncConnected as i32,
            path: path.to_string(),
        };
        let frame = reply_frame(xid::NOTIFICATION, -1, ErrorCode::Ok, Some(&event));
        self.send(out, conn, frame, zxid);
    }

    /// A new connection's ConnectRequest (`processConnectRequest`).
    pub fn connect(
        &mut self,
        conn: ConnId,
        client_ip: &str,
        remote: &str,
        req: &ConnectRequest,
        now_ms: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        self.stats.packets_received += 1;
        if self.read_only && req.read_only != Some(true) {
            log::info!("Refusing session request for not-read-only client {remote}");
            out.push(Output::Close { conn, zxid: 0 });
            return out;
        }
        if req.last_zxid_seen > self.tree.last_processed_zxid {
            // The client has seen a newer state than ours: refuse (it will try another server).
            out.push(Output::Close { conn, zxid: 0 });
            return out;
        }
        if req.session_id == 0 && self.txns_allowed() == 0 && !self.read_only {
            // No zxid left for the session's txn on this server.
            out.push(Output::Close { conn, zxid: 0 });
            return out;
        }
        let timeout_ms =
            req.timeout_ms.clamp(self.config.min_session_timeout_ms, self.config.max_session_timeout_ms);
        self.conns.insert(
            conn,
            Connection {
                session_id: 0,
                ids: acl::connection_ids(client_ip),
                client_ip: client_ip.to_string(),
                remote: remote.to_string(),
                received: 1,
                sent: 0,
                last_cxid: 0,
                last_zxid: 0,
                last_op: None,
                connected_at_ms: now_ms,
                sasl: None,
            },
        );
        // The readOnly byte goes back only to clients that sent one.
        let read_only = req.read_only.map(|_| self.read_only);
        if req.session_id == 0 {
            let session_id = self.sessions.allocate_id();
            let zxid = if self.read_only {
                // A local session: no txn, gone when read-only serving ends.
                self.sessions.add(session_id, timeout_ms, now_ms);
                self.local_sessions.push(session_id);
                self.last_zxid()
            } else {
                let zxid = self.next_zxid();
                let body = TxnBody::CreateSession { timeout_ms };
                let txn = Txn { session_id, cxid: 0, zxid, time_ms: now_ms, body };
                self.commit(&txn, now_ms, &mut out);
                zxid
            };
            self.bind(conn, session_id, &mut out);
            tracing::info!(
                session_id = %format_args!("0x{session_id:x}"),
                timeout_ms,
                client = %remote,
                read_only = self.read_only,
                "Established session"
            );
            let resp = ConnectResponse {
                protocol_version: 0,
                timeout_ms,
                session_id,
                passwd: self.sessions.password_for(session_id).to_vec(),
                read_only,
            };
            self.send(&mut out, conn, record_frame(&resp), zxid);
            return out;
        }
        let valid = self.sessions.get(req.session_id).is_some_and(|s| s.passwd[..] == req.passwd[..])
            && self.sessions.touch(req.session_id, now_ms);
        if valid {
            let session = self.sessions.get(req.session_id).expect("checked");
            let resp = ConnectResponse {
                protocol_version: 0,
                timeout_ms: session.timeout_ms,
                session_id: req.session_id,
                passwd: session.passwd.to_vec(),
                read_only,
            };
            // The client renews a session it had on this or another server.
            tracing::info!(
                session_id = %format_args!("0x{:x}", req.session_id),
                timeout_ms = resp.timeout_ms,
                client = %remote,
                "Re-established session"
            );
            self.bind(conn, req.session_id, &mut out);
            let zxid = self.last_zxid();
            self.send(&mut out, conn, record_frame(&resp), zxid);
        } else {
            tracing::info!(
                session_id = %format_args!("0x{:x}", req.session_id),
                client = %remote,
                "Invalid session, probably expired"
            );
            let resp = ConnectResponse::invalid_session(read_only);
            let zxid = self.last_zxid();
            self.send(&mut out, conn, record_frame(&resp), zxid);
            self.close_conn(conn, &mut out);
        }
        out
    }

    /// Makes `conn` the owner of `session_id`, closing a previous owner connection.
    fn bind(&mut self, conn: ConnId, session_id: i64, out: &mut Vec<Output>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session_id = session_id;
            self.sessions.set_last_client(session_id, &c.remote);
        }
        if let Some(old) = self.session_conn.insert(session_id, conn) {
            if old != conn {
                self.close_conn(old, out);
            }
        }
    }

    /// The client address a session was last held from here, for log lines.
    fn last_client_of(&self, session_id: i64) -> &str {
        match self.sessions.get(session_id) {
            Some(s) if !s.last_client.is_empty() => &s.last_client,
            _ => "unknown",
        }
    }

    pub(crate) fn close_conn(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        self.forget_conn(conn);
        out.push(Output::Close { conn, zxid: self.last_zxid() });
    }

    fn forget_conn(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            if self.session_conn.get(&c.session_id) == Some(&conn) {
                self.session_conn.remove(&c.session_id);
            }
        }
        self.watches.remove_watcher(WatcherId(conn));
    }

    /// Adds ids a connection authenticated as (an `auth` packet, or its TLS certificate before
    /// the ConnectRequest), skipping the ones it holds (Apache's `addAuthInfo`). Nothing
    /// happens for a connection the processor does not know (refused at connect).
    pub fn add_auth_ids(&mut self, conn: ConnId, ids: Vec<Id>) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        for id in ids {
            if !c.ids.contains(&id) {
                c.ids.push(id);
            }
        }
    }

    /// The network role saw the connection close (or closed it).
    pub fn disconnected(&mut self, conn: ConnId) {
        self.forget_conn(conn);
    }

    /// Periodic work: session expiry and the container/TTL reaper.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Output> {
        let mut out = Vec::new();
        if self.read_only {
            self.expire_local_sessions(now_ms, &mut out);
        }
        if !self.owns_expiry {
            return out;
        }
        for session_id in self.sessions.expired(now_ms, self.txns_allowed()) {
            let timeout_ms = self.sessions.get(session_id).map_or(0, |s| s.timeout_ms);
            tracing::info!(
                session_id = %format_args!("0x{session_id:x}"),
                timeout_ms,
                client = %self.last_client_of(session_id),
                "Expiring session, timeout exceeded"
            );
            self.close_session(session_id, 0, now_ms, &mut out);
            if let Some(conn) = self.session_conn.get(&session_id).copied() {
                self.close_conn(conn, &mut out);
            }
        }
        if now_ms >= self.next_reap_ms {
            self.next_reap_ms = now_ms + self.config.container_check_interval_ms;
            self.reap(now_ms, &mut out);
        }
        out
    }

    /// Ends the read-only (local) sessions whose deadline passed: no txn, the session is
    /// forgotten and its connection closed (Apache's local session tracker).
    fn expire_local_sessions(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let sessions = &self.sessions;
        let (expired, live): (Vec<i64>, Vec<i64>) = self
            .local_sessions
            .iter()
            .partition(|&&id| sessions.get(id).is_none_or(|s| s.expires_at_ms <= now_ms));
        self.local_sessions = live;
        for session_id in expired {
            tracing::info!(
                session_id = %format_args!("0x{session_id:x}"),
                timeout_ms = self.sessions.get(session_id).map_or(0, |s| s.timeout_ms),
                client = %self.last_client_of(session_id),
                read_only = true,
                "Expiring session, timeout exceeded"
            );
            self.sessions.remove(session_id);
            if let Some(conn) = self.session_conn.get(&session_id).copied() {
                self.close_conn(conn, out);
            }
        }
    }

    /// Deletes empty containers that once had children, and expired empty TTL nodes
    /// (Apache's `ContainerManager`).
    fn reap(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let mut doomed: Vec<String> = Vec::new();
        for p in self.tree.container_paths().chain(self.tree.ttl_paths()) {
            let Some(node) = self.tree.get(p) else { continue };
            if !node.children.is_empty() {
                continue;
            }
            let due = match owner_kind(node.stat.ephemeral_owner) {
                OwnerKind::Container => node.stat.cversion > 0,
                OwnerKind::Ttl(ttl) => now_ms - node.stat.mtime > ttl,
                _ => false,
            };
            if due {
                doomed.push(p.to_string());
            }
        }
        doomed.truncate(self.txns_allowed());
        for p in doomed {
            let zxid = self.next_zxid();
            let txn = Txn {
                session_id: 0,
                cxid: 0,
                zxid,
                time_ms: now_ms,
                body: TxnBody::Op(TxnOp::Delete { path: p }),
            };
            self.commit(&txn, now_ms, out);
        }
    }

    /// Closes a session: one CloseSession txn deleting its ephemerals.
    fn close_session(&mut self, session_id: i64, cxid: i32, now_ms: i64, out: &mut Vec<Output>) -> i64 {
        self.sessions.mark_closing(session_id);
        let zxid = self.next_zxid();
        let ephemerals = self.tree.ephemerals_of(session_id);
        let txn = Txn { session_id, cxid, zxid, time_ms: now_ms, body: TxnBody::CloseSession { ephemerals } };
        self.commit(&txn, now_ms, out);
        zxid
    }

    /// One request frame (payload after the length prefix) from an established connection.
    /// `Err` when even the request header does not decode (the caller closes the connection).
    pub fn request(&mut self, conn: ConnId, frame: &[u8], now_ms: i64) -> Result<Vec<Output>, DecodeError> {
        let mut out = Vec::new();
        let mut r = JuteReader::new(frame);
        let header = RequestHeader::decode(&mut r)?;
        self.stats.packets_received += 1;
        let Some(c) = self.conns.get_mut(&conn) else { return Ok(out) };
        c.received += 1;
        let session_id = c.session_id;
        let Some(op) = OpCode::from_i32(header.op) else {
            // Apache's UnimplementedRequestProcessor: answer Unimplemented, then close.
            self.refuse(&mut out, conn, header.xid, self.last_zxid(), ErrorCode::Unimplemented);
            return Ok(out);
        };
        c.last_op = Some(op);
        c.last_cxid = header.xid;
        if !self.sessions.touch(session_id, now_ms) {
            self.refuse(&mut out, conn, header.xid, self.last_zxid(), ErrorCode::SessionExpired);
            return Ok(out);
        }
        if self.read_only && refused_read_only(op) {
            self.answer(&mut out, conn, header.xid, ErrorCode::NotReadOnly);
            return Ok(out);
        }
        if self.read_only && op == OpCode::CloseSession {
            // No txn while read-only: a local session just ends here; closing a global one
            // needs the quorum (Apache answers NotReadOnly unless the session is local).
            let Some(at) = self.local_sessions.iter().position(|&id| id == session_id) else {
                self.answer(&mut out, conn, header.xid, ErrorCode::NotReadOnly);
                return Ok(out);
            };
            self.local_sessions.swap_remove(at);
            self.sessions.remove(session_id);
            self.refuse(&mut out, conn, header.xid, self.last_zxid(), ErrorCode::Ok);
            return Ok(out);
        }
        if op.is_write() && self.txns_allowed() == 0 {
            self.close_conn(conn, &mut out);
            return Ok(out);
        }
        if !matches!(op, OpCode::Auth | OpCode::Sasl) && !self.passes_enforcement(conn) {
            // `AuthenticationHelper.enforceAuthentication`: the reply, then the connection
            // closes (the session is left to expire).
            let schemes: Vec<&str> = self
                .conns
                .get(&conn)
                .map_or(Vec::new(), |c| c.ids.iter().map(|i| i.scheme.as_str()).collect());
            log::error!(
                "Client authentication scheme(s) {schemes:?} does not match with any of the expected authentication scheme {:?}, closing session.",
                self.config.enforcement.schemes
            );
            self.refuse(&mut out, conn, header.xid, 0, ErrorCode::SessionClosedRequireSasl);
            return Ok(out);
        }
        match op {
            OpCode::Ping => self.answer(&mut out, conn, header.xid, ErrorCode::Ok),
            OpCode::Auth => self.auth(conn, &header, &mut r, &mut out)?,
            OpCode::Sasl => self.sasl(conn, header.xid, &mut r, &mut out)?,
            OpCode::SetWatches | OpCode::SetWatches2 => {
                self.set_watches(conn, op, &header, &mut r, &mut out)?
            }
            OpCode::CloseSession => {
                tracing::info!(
                    session_id = %format_args!("0x{session_id:x}"),
                    timeout_ms = self.sessions.get(session_id).map_or(0, |s| s.timeout_ms),
                    client = %self.conns.get(&conn).map_or("", |c| c.remote.as_str()),
                    "Closing session at the request of the client"
                );
                let zxid = self.close_session(session_id, header.xid, now_ms, &mut out);
                self.refuse(&mut out, conn, header.xid, zxid, ErrorCode::Ok);
            }
            OpCode::Reconfig => self.reconfig(conn, session_id, header.xid, &mut r, now_ms, &mut out),
            _ => {
                let answered = match decode_request(op, &mut r) {
                    Ok(Request::Write { ops, is_multi }) => {
                        self.write(conn, session_id, header.xid, op, ops, is_multi, now_ms, &mut out);
                        Ok(())
                    }
                    Ok(Request::MultiRead(ops)) => {
                        self.multi_read(conn, header.xid, &ops, &mut out);
                        Ok(())
                    }
                    Ok(Request::Read) => self.read(conn, header.xid, op, r.rest(), &mut out),
                    Err(e) => Err(e),
                };
                if answered.is_err() {
                    // A body that does not decode: Apache answers MarshallingError and keeps
                    // the connection.
                    self.answer(&mut out, conn, header.xid, ErrorCode::MarshallingError);
                }
            }
        }
        Ok(out)
    }

    /// A reply with no body, stamped with the last zxid.
    fn answer(&mut self, out: &mut Vec<Output>, conn: ConnId, xid: i32, code: ErrorCode) {
        let zxid = self.last_zxid();
        self.send(out, conn, reply_frame(xid, zxid, code, None), zxid);
    }

    /// A reply with no body (header zxid `header_zxid`), then the connection is closed.
    fn refuse(&mut self, out: &mut Vec<Output>, conn: ConnId, xid: i32, header_zxid: i64, code: ErrorCode) {
        let zxid = self.last_zxid();
        self.send(out, conn, reply_frame(xid, header_zxid, code, None), zxid);
        self.close_conn(conn, out);
    }

    fn auth(
        &mut self,
        conn: ConnId,
        header: &RequestHeader,
        r: &mut JuteReader<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), DecodeError> {
        let packet = AuthPacket::decode(r)?;
        let c = self.conns.get(&conn).expect("connection exists");
        let zxid = self.last_zxid();
        match acl::authenticate(
            &packet.scheme,
            packet.auth.as_deref(),
            &c.client_ip,
            self.config.super_digest.as_deref(),
        ) {
            Ok(ids) => {
                self.add_auth_ids(conn, ids);
                self.send(out, conn, reply_frame(header.xid, 0, ErrorCode::Ok, None), zxid);
            }
            Err(_) => self.refuse(out, conn, header.xid, 0, ErrorCode::AuthFailed),
        }
        Ok(())
    }

    /// Does `conn` hold an id of a scheme auth enforcement requires (or is enforcement off)?
    fn passes_enforcement(&self, conn: ConnId) -> bool {
        let enforcement = &self.config.enforcement;
        !enforcement.is_on()
            || self
                .conns
                .get(&conn)
                .is_some_and(|c| enforcement.admits(c.ids.iter().map(|i| i.scheme.as_str())))
    }

    /// A SASL token (`ZooKeeperServer.processSasl`). Without SASL configured the connection
    /// is refused with AuthFailed. A failed exchange answers AuthFailed (or
    /// SessionClosedRequireSasl when SASL is required) and closes, unless
    /// `allowSaslFailedClients` keeps the client (then an Ok with no token).
    fn sasl(
        &mut self,
        conn: ConnId,
        xid: i32,
        r: &mut JuteReader<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), DecodeError> {
        let request = SaslToken::decode(r)?;
        let Some(config) = self.config.sasl.as_ref() else {
            self.refuse(out, conn, xid, 0, ErrorCode::AuthFailed);
            return Ok(());
        };
        let Some(c) = self.conns.get_mut(&conn) else { return Ok(()) };
        let exchange = c.sasl.get_or_insert_with(|| match &self.config.sasl_mechanism {
            Some(mechanism) => match mechanism.start() {
                Ok(exchange) => SaslExchange::Mechanism(exchange),
                Err(e) => SaslExchange::NotStarted(e),
            },
            None => {
                self.sasl_exchanges += 1;
                SaslExchange::DigestMd5(auth::digest_md5::DigestMd5Server::new(sasl_nonce(
                    &self.config.sasl_nonce_key,
                    self.sasl_exchanges,
                )))
            }
        });
        let token = request.token.unwrap_or_default();
        let step = match exchange {
            SaslExchange::DigestMd5(digest) => {
                let users = &config.digest_users;
                digest
                    .step(&token, |user| users.get(user).map(String::as_str))
                    .map_err(|e| e.to_string())
                    .map(|step| match step {
                        auth::digest_md5::Step::Continue(token) => auth::SaslStep::Continue(token),
                        auth::digest_md5::Step::Complete { token, user, authzid } => {
                            auth::SaslStep::Complete { token: Some(token), user, authzid }
                        }
                    })
            }
            SaslExchange::Mechanism(exchange) => exchange.step(&token),
            SaslExchange::NotStarted(why) => Err(why.clone()),
        };
        let remote = c.remote.clone();
        let zxid = self.last_zxid();
        match step {
            Ok(auth::SaslStep::Continue(token)) => {
                let body = SaslToken { token: Some(token) };
                self.send(out, conn, reply_frame(xid, 0, ErrorCode::Ok, Some(&body)), zxid);
            }
            Ok(auth::SaslStep::Complete { token, user, authzid }) => {
                let id = auth::sasl_id(config, &user, authzid.as_deref());
                log::info!("Successfully authenticated client {remote}: authenticationID={user}; authorizationID={id}");
                let mut ids = vec![Id { scheme: auth::SCHEME_SASL.to_owned(), id: id.clone() }];
                if config.super_user.as_deref() == Some(id.as_str()) {
                    ids.push(Id { scheme: acl::SCHEME_SUPER.to_owned(), id: String::new() });
                }
                self.add_auth_ids(conn, ids);
                let body = SaslToken { token };
                self.send(out, conn, reply_frame(xid, 0, ErrorCode::Ok, Some(&body)), zxid);
            }
            Err(e) => {
                log::warn!("Client {remote} failed to SASL authenticate: {e}");
                let enforcement = &self.config.enforcement;
                let body = SaslToken { token: None };
                if enforcement.allow_sasl_failed_clients && !enforcement.sasl_required() {
                    log::warn!("Maintaining client connection despite SASL authentication failure.");
                    self.send(out, conn, reply_frame(xid, 0, ErrorCode::Ok, Some(&body)), zxid);
                } else {
                    let code = if enforcement.sasl_required() {
                        log::warn!("Closing client connection due to server requires client SASL authentication, but client SASL authentication has failed, or client is not configured with SASL authentication.");
                        ErrorCode::SessionClosedRequireSasl
                    } else {
                        log::warn!("Closing client connection due to SASL authentication failure.");
                        ErrorCode::AuthFailed
                    };
                    self.send(out, conn, reply_frame(xid, 0, code, Some(&body)), zxid);
                    self.close_conn(conn, out);
                }
            }
        }
        Ok(())
    }

    /// Re-registers watches after a reconnect, firing what changed since `relative_zxid`
    /// (`DataTree.setWatches`).
    fn set_watches(
        &mut self,
        conn: ConnId,
        op: OpCode,
        header: &RequestHeader,
        r: &mut JuteReader<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), DecodeError> {
        let sw = if op == OpCode::SetWatches2 {
            SetWatches2::decode(r)?
        } else {
            let s = SetWatches::decode(r)?;
            SetWatches2 {
                relative_zxid: s.relative_zxid,
                data_watches: s.data_watches,
                exist_watches: s.exist_watches,
                child_watches: s.child_watches,
                ..Default::default()
            }
        };
        let w = WatcherId(conn);
        let zxid = self.last_zxid();
        let rel = sw.relative_zxid;
        self.rearm(out, conn, &sw.data_watches, rel, false);
        for p in &sw.exist_watches {
            if self.tree.contains(p) {
                self.send_event(out, conn, EventType::NodeCreated, p, zxid);
            } else {
                self.watches.add_data_watch(p, w);
            }
        }
        self.rearm(out, conn, &sw.child_watches, rel, true);
        for p in &sw.persistent_watches {
            self.watches.add_persistent_watch(p, w, false);
        }
        for p in &sw.persistent_recursive_watches {
            self.watches.add_persistent_watch(p, w, true);
        }
        let frame = reply_frame(header.xid, self.tree.last_processed_zxid, ErrorCode::Ok, None);
        self.send(out, conn, frame, zxid);
        Ok(())
    }

    /// Re-sets data (or child) watches: NodeDeleted if the node is gone, a changed event if its
    /// mzxid (pzxid) passed `relative_zxid`, otherwise the watch is armed again.
    fn rearm(
        &mut self,
        out: &mut Vec<Output>,
        conn: ConnId,
        paths: &[String],
        relative_zxid: i64,
        child: bool,
    ) {
        let zxid = self.last_zxid();
        let changed = if child { EventType::NodeChildrenChanged } else { EventType::NodeDataChanged };
        for p in paths {
            match self.tree.get(p).map(|n| if child { n.stat.pzxid } else { n.stat.mzxid }) {
                None => self.send_event(out, conn, EventType::NodeDeleted, p, zxid),
                Some(stamp) if stamp > relative_zxid => self.send_event(out, conn, changed, p, zxid),
                Some(_) if child => self.watches.add_child_watch(p, WatcherId(conn)),
                Some(_) => self.watches.add_data_watch(p, WatcherId(conn)),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        conn: ConnId,
        session_id: i64,
        xid: i32,
        op: OpCode,
        ops: Vec<WriteOp>,
        is_multi: bool,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) {
        let zxid = self.next_zxid();
        let ids = self.conns.get(&conn).map_or(&[][..], |c| &c.ids);
        let who = Requester {
            session_id,
            ids,
            skip_acl: self.config.skip_acl,
            extended_types_enabled: self.config.extended_types_enabled,
            enforce_quota: self.config.enforce_quota,
            providers: self.config.auth_providers,
        };
        let mut view = PendingView::new(&self.tree);
        let mut txn_ops = Vec::with_capacity(ops.len());
        let mut failure = None;
        for (i, w) in ops.iter().enumerate() {
            match prep::prepare(&mut view, w, &who, zxid, now_ms) {
                Ok(t) => txn_ops.push(t),
                Err(code) => {
                    failure = Some((i, code));
                    break;
                }
            }
        }
        let body = match (is_multi, failure) {
            (false, None) => TxnBody::Op(txn_ops.pop().expect("one op")),
            (false, Some((_, code))) => TxnBody::Op(TxnOp::Error { code: code.code() }),
            (true, None) => TxnBody::Multi(txn_ops),
            (true, Some((i, code))) => txn::multi_failure(ops.len(), i, code),
        };
        let txn = Txn { session_id, cxid: xid, zxid, time_ms: now_ms, body };
        let applied = self.commit(&txn, now_ms, out);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_zxid = zxid;
        }
        let sub_ops: Vec<OpCode> =
            if is_multi { ops.iter().map(WriteOp::opcode).collect() } else { Vec::new() };
        let frame = reply::write_reply(xid, zxid, op, &sub_ops, &applied.results, is_multi);
        self.send(out, conn, frame, zxid);
    }

    fn read(
        &mut self,
        conn: ConnId,
        xid: i32,
        op: OpCode,
        body: &[u8],
        out: &mut Vec<Output>,
    ) -> Result<(), DecodeError> {
        let zxid = self.last_zxid();
        let Some(c) = self.conns.get(&conn) else { return Ok(()) };
        let ctx = read_context(&self.tree, c, conn, self.config.skip_acl);
        let frame = reply::read_reply(&ctx, xid, zxid, op, body, &mut self.watches)?;
        self.send(out, conn, frame, zxid);
        Ok(())
    }

    fn multi_read(&mut self, conn: ConnId, xid: i32, ops: &[(OpCode, String)], out: &mut Vec<Output>) {
        let zxid = self.last_zxid();
        let Some(c) = self.conns.get(&conn) else { return };
        let ctx = read_context(&self.tree, c, conn, self.config.skip_acl);
        let frame = reply::multi_read_reply(&ctx, xid, zxid, ops);
        self.send(out, conn, frame, zxid);
    }
}

/// What a read on connection `conn` (`c`) is checked and answered with.
fn read_context<'a>(
    tree: &'a DataTree,
    c: &'a Connection,
    conn: ConnId,
    skip_acl: bool,
) -> reply::ReadContext<'a> {
    reply::ReadContext { tree, ids: &c.ids, skip_acl, session_id: c.session_id, watcher: WatcherId(conn) }
}

/// The `counter`-th DIGEST-MD5 nonce: base64 of HMAC-SHA256(`key`, counter).
fn sasl_nonce(key: &[u8], counter: u64) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// What a read-only server answers NotReadOnly (Apache's `ReadOnlyRequestProcessor`).
fn refused_read_only(op: OpCode) -> bool {
    use OpCode::*;
    matches!(
        op,
        Sync | Create
            | Create2
            | CreateTtl
            | CreateContainer
            | Delete
            | DeleteContainer
            | SetData
            | Reconfig
            | SetAcl
            | Multi
            | Check
    )
}

fn decode_create(op: OpCode, r: &mut JuteReader<'_>) -> Result<WriteOp, DecodeError> {
    if op == OpCode::CreateTtl {
        let c = CreateTtlRequest::decode(r)?;
        Ok(WriteOp::Create { op, path: c.path, data: c.data, acl: c.acl, flags: c.flags, ttl_ms: c.ttl })
    } else {
        let c = CreateRequest::decode(r)?;
        Ok(WriteOp::Create { op, path: c.path, data: c.data, acl: c.acl, flags: c.flags, ttl_ms: -1 })
    }
}

/// A create inside a multi takes its opcode from its flags, as Apache's
/// `MultiOperationRecord` rebuilds it (`Op.create`): create2 becomes create, and a create with
/// the container flag becomes createContainer, whatever opcode the client sent.
fn multi_create_opcode(op: WriteOp) -> WriteOp {
    match op {
        WriteOp::Create {
            op: OpCode::Create | OpCode::Create2 | OpCode::CreateContainer,
            path,
            data,
            acl,
            flags,
            ttl_ms,
        } => {
            let container = CreateMode::from_flag(flags).is_some_and(CreateMode::is_container);
            let op = if container { OpCode::CreateContainer } else { OpCode::Create };
            WriteOp::Create { op, path, data, acl, flags, ttl_ms }
        }
        other => other,
    }
}

fn decode_write(op: OpCode, r: &mut JuteReader<'_>) -> Result<Option<WriteOp>, DecodeError> {
    Ok(Some(match op {
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            decode_create(op, r)?
        }
        OpCode::Delete | OpCode::DeleteContainer => {
            let d = DeleteRequest::decode(r)?;
            WriteOp::Delete { path: d.path, version: d.version }
        }
        OpCode::SetData => {
            let s = SetDataRequest::decode(r)?;
            WriteOp::SetData { path: s.path, data: s.data, version: s.version }
        }
        OpCode::SetAcl => {
            let s = SetAclRequest::decode(r)?;
            WriteOp::SetAcl { path: s.path, acl: s.acl, version: s.version }
        }
        OpCode::Check => {
            let c = CheckVersionRequest::decode(r)?;
            WriteOp::Check { path: c.path, version: c.version }
        }
        _ => return Ok(None),
    }))
}

/// Decodes the ops of a multi or multiRead: each `MultiHeader` names an op whose body
/// `decode_op` reads (None: an op not allowed there), until the header marked done.
fn decode_ops<T>(
    r: &mut JuteReader<'_>,
    mut decode_op: impl FnMut(OpCode, &mut JuteReader<'_>) -> Result<Option<T>, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::decode(r)?;
        if h.done {
            return Ok(ops);
        }
        let op = OpCode::from_i32(h.op).ok_or(DecodeError::UnknownOpcode(h.op))?;
        ops.push(decode_op(op, r)?.ok_or(DecodeError::UnknownOpcode(h.op))?);
    }
}

fn decode_request(op: OpCode, r: &mut JuteReader<'_>) -> Result<Request, DecodeError> {
    match op {
        OpCode::Multi => {
            let ops = decode_ops(r, |sub, r| match sub {
                OpCode::SetAcl => Ok(None),
                _ => Ok(decode_write(sub, r)?.map(multi_create_opcode)),
            })?;
            Ok(Request::Write { ops, is_multi: true })
        }
        OpCode::MultiRead => {
            let ops = decode_ops(r, |sub, r| match sub {
                OpCode::GetChildren | OpCode::GetData => Ok(Some((sub, PathWatchRequest::decode(r)?.path))),
                _ => Ok(None),
            })?;
            Ok(Request::MultiRead(ops))
        }
        _ => Ok(match decode_write(op, r)? {
            Some(w) => Request::Write { ops: vec![w], is_multi: false },
            None => Request::Read,
        }),
    }
}
