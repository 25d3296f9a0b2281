//! One server's replica of leader election and ZAB ([`Peer`]).
//!
//! In: [`Event`]s with the current time. Out: [`Action`]s, to be carried out in order.
//!
//! Phases, as in Apache's QuorumPeer / Leader / Learner and the Zab paper:
//! - **Looking** (FastLeaderElection): notifications carry `(round, state, vote)`; a server
//!   adopts any better vote, and decides once a quorum of its round agrees. Unlike Apache's
//!   fixed 200 ms finalize wait, it decides at once when every reachable voter agrees, and
//!   waits `finalize_wait_ms` only while some reachable voter has not voted yet. A server
//!   that hears a quorum following an established leader joins it. Notifications also carry
//!   the sender's committed configuration (whole to a peer that reported an older one); a
//!   looking server takes up a newer one and elects again under it (Apache's
//!   `processReconfig` from the election), so a member a reconfig added or removed while it
//!   was cut off learns whether it votes.
//! - **Discovery**: learners send their accepted epoch; with a quorum the leader picks
//!   `max + 1`, each learner accepts it and answers with its history summary.
//! - **Synchronisation**: from the learner's per-epoch last zxids the leader finds the longest
//!   common prefix and sends DIFF (proposals after it, from its in-memory history), TRUNC
//!   first when the learner holds txns past it, or SNAP (a state image) when its history does
//!   not reach back that far. NEWLEADER closes the sync; the learner acks it once durable.
//! - **Broadcast**: established once a quorum (the leader's own durable log included) acked
//!   NEWLEADER; then many proposals in flight, cumulative acks, commit at the quorum's
//!   durable point, cumulative commits delivered in zxid order. A voting follower is also
//!   told, as soon as the leader knows it, the point that would be committed were the
//!   follower itself durable ([`Msg::CommitOnceDurable`]): it then commits up to the lower of
//!   that and its own durable point the moment its log reports, without waiting for its ack
//!   to reach the leader and the commit to come back (one round trip less for a write whose
//!   client is connected to it; the leader's own fsync and the follower's overlap). A commit
//!   point such a follower reached this way is not sent to it again.
//!
//! Failure detection runs on its own timers: pings every `heartbeat_ms`, and a link silent
//! for `peer_timeout_ms` (or reported down) counts as lost: a learner then looks for a new
//! leader, and a leader without a live quorum steps down.
//!
//! Deterministic: ordered maps only, so a seed replays the same run in the simulator.
//!
//! Invariants kept here (and checked by the simulator): a learner's log is a prefix of its
//! leader's history once synced (proposals must follow the previous zxid, else it resyncs);
//! a leader commits only what a quorum has durably; messages of another epoch are dropped.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::membership::{reconfig_in_txn, Member, Membership};
use super::msg::{CarriedConfig, Msg, ServerState, Vote};
use super::{counter_of, epoch_of, make_zxid, quorum_size, ServerId, SharedTxn};

/// Timing and membership (zoo.cfg `server.N` lines and ringkeeper's election keys).
#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub my_id: ServerId,
    /// Voting members (participants), this server included if it votes.
    pub voters: Vec<ServerId>,
    /// Non-voting members.
    pub observers: Vec<ServerId>,
    /// Leader ping period.
    pub heartbeat_ms: i64,
    /// A link silent this long is lost.
    pub peer_timeout_ms: i64,
    /// Wait for missing votes once a quorum agrees but not every reachable voter.
    pub finalize_wait_ms: i64,
    /// Resend notifications this often while undecided.
    pub election_retry_ms: i64,
    /// Discovery plus synchronisation must finish within this.
    pub sync_timeout_ms: i64,
    /// Recent txns kept in memory for DIFF.
    pub history_max: usize,
    /// Bytes of txns kept in memory for DIFF: the oldest go first once the history holds more
    /// (the newest txn always stays), so large znode values cannot make `history_max` txns a
    /// multi-gigabyte history.
    pub history_bytes_max: usize,
    /// Highest zxid counter a leader uses before forcing a new epoch.
    pub counter_limit: u32,
    /// A voter that never leads: its vote for itself loses to every other vote, so it adopts
    /// and passes on the best other voter's, and no other server adopts its own. (Members of
    /// an Apache ensemble used it before they could lead Apache followers; only tests set it
    /// now.)
    pub never_leads: bool,
    /// Learners speak Apache's learner protocol (`ringkeeper.quorum.protocol=apache`): a sync
    /// tells the commit point with a [`Msg::Commit`] before NEWLEADER (Apache's learner
    /// applies the diff's committed txns before NEWLEADER and the rest only after UPTODATE),
    /// and an ACKEPOCH without epoch ends (Apache's carries only the last zxid) is read as
    /// agreeing with the leader's history up to that zxid's epoch (`LearnerHandler.syncFollower`
    /// assumes the same).
    pub apache_learners: bool,
    /// Version of the configuration `voters` and `observers` come from (the zxid of the
    /// reconfig that made it; 0 for one no reconfig made and no leader versioned yet).
    pub config_version: i64,
    /// The first leader gives a configuration still at version 0 its epoch's first zxid as
    /// version, with no txn (Apache with `reconfigEnabled`: `Leader.lead` sets the
    /// `lastSeenQuorumVerifier`'s version to the NEWLEADER zxid; it is committed at
    /// UPTODATE), so `/zookeeper/config` says `version=100000000` once an ensemble formed.
    pub versions_initial_config: bool,
    /// The members with their addresses (reconfigEnabled: the configuration `voters`,
    /// `observers` and `config_version` come from, set with [`PeerConfig::adopt`]). Empty when
    /// only the ids are known: then no configuration is passed to peers or taken from them.
    pub members: BTreeMap<ServerId, Member>,
}

impl PeerConfig {
    /// Defaults for a config with these members.
    pub fn new(my_id: ServerId, voters: Vec<ServerId>, observers: Vec<ServerId>) -> Self {
        PeerConfig {
            my_id,
            voters,
            observers,
            heartbeat_ms: 50,
            peer_timeout_ms: 250,
            finalize_wait_ms: 30,
            election_retry_ms: 100,
            sync_timeout_ms: 5_000,
            history_max: 100_000,
            history_bytes_max: DEFAULT_HISTORY_BYTES_MAX,
            counter_limit: u32::MAX - 1,
            never_leads: false,
            apache_learners: false,
            config_version: 0,
            versions_initial_config: false,
            members: BTreeMap::new(),
        }
    }

    /// Takes `membership` as the configuration: its voters, observers, version and addresses.
    pub fn adopt(&mut self, membership: &Membership) {
        self.voters = membership.voters();
        self.observers = membership.observers();
        self.config_version = membership.version;
        self.members = membership.members.clone();
    }

    /// The whole configuration, if its addresses are known.
    fn membership(&self) -> Option<Membership> {
        (!self.members.is_empty())
            .then(|| Membership { members: self.members.clone(), version: self.config_version })
    }

    fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id)
    }

    /// Whether this server joins a leader as an observer (OBSERVERINFO): only if the
    /// configuration lists it as one. One it does not list (joining, or removed) follows
    /// without a vote, as Apache's "non-voting participant".
    fn declares_observer(&self) -> bool {
        self.observers.contains(&self.my_id)
    }
}

/// What a server recovered from disk at start-up.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    /// zxid the recent history starts after (the snapshot's zxid, or 0).
    pub history_base: i64,
    /// The most recent txns in zxid order (the whole log after `history_base`, or its tail).
    pub history: Vec<(i64, SharedTxn)>,
    /// Per epoch held, the last zxid held in it (see [`Msg::AckEpoch`]).
    pub epoch_ends: Vec<i64>,
}

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// Time passed (call at least every few milliseconds).
    Tick,
    /// A message arrived from a peer.
    Message { from: ServerId, msg: Msg },
    /// The transport lost its link to a peer (connection reset or closed).
    LinkDown { peer: ServerId },
    /// The local log (or an installed snapshot) is durable up to this zxid.
    Durable { zxid: i64 },
    /// Leader only: the server made, applied and queued for its log this txn.
    Proposed { zxid: i64, txn: SharedTxn },
}

/// How the server currently serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleView {
    pub state: ServerState,
    /// The leader followed or being, once known.
    pub leader: Option<ServerId>,
    pub epoch: u32,
    /// True once the server may serve clients (leader established / learner up to date).
    pub serving: bool,
}

/// A leader's learners, as Apache's `mntr` counts them (`zk_learners`, `zk_synced_followers`,
/// `zk_synced_observers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LearnerCounts {
    /// Learners connected, in any stage of joining (Apache: its LearnerHandlers).
    pub learners: usize,
    /// Followers synced and receiving updates, non-voting ones included (Apache's
    /// `forwardingFollowers`).
    pub synced_followers: usize,
    /// Of those, the ones the configuration gives no vote: a server joining before the
    /// reconfig that adds it, or one a reconfig removed (Apache's `getNonVotingFollowers`).
    pub synced_non_voting_followers: usize,
    /// Observers synced and receiving commits.
    pub synced_observers: usize,
}

/// Something the server must do, in order.
#[derive(Debug, Clone)]
pub enum Action {
    Send {
        to: ServerId,
        msg: Msg,
    },
    /// Learner: append this txn to the local log (report `Durable` when flushed).
    Append {
        zxid: i64,
        txn: SharedTxn,
    },
    /// Learner: apply this committed txn to the tree (in zxid order).
    Apply {
        zxid: i64,
        txn: SharedTxn,
    },
    /// Everything up to `zxid` is committed: release held replies.
    Committed {
        zxid: i64,
    },
    /// Learner: drop every logged txn after `zxid` and rebuild state from what remains.
    Truncate {
        zxid: i64,
    },
    /// Learner: replace log and state with this image of the leader at `zxid`; report
    /// `Durable { zxid }` once it is on disk.
    InstallSnapshot {
        zxid: i64,
        image: Arc<Vec<u8>>,
    },
    /// Leader: send `to` a [`Msg::Snapshot`] of the state right now (at `zxid`), carrying
    /// these epoch ends.
    SendSnapshot {
        to: ServerId,
        epoch: u32,
        zxid: i64,
        epoch_ends: Vec<i64>,
    },
    /// Persist these epochs before carrying out later actions (Apache's acceptedEpoch and
    /// currentEpoch files).
    PersistEpochs {
        accepted: u32,
        current: u32,
    },
    /// The role changed.
    Role(RoleView),
    /// This is the ensemble's committed configuration from now on (the server puts it in
    /// `/zookeeper/config` unless a committed reconfig txn already did, reaches new members,
    /// writes the dynamic config file): a reconfig committed, a leader's NEWLEADER or a peer's
    /// election notification brought a newer one, or the first leader versioned the
    /// configuration no reconfig made ([`PeerConfig::versions_initial_config`]). A server no
    /// longer listed keeps following as a non-voting follower, as Apache's does, until it is
    /// shut down.
    ConfigChanged(Membership),
}

struct Election {
    vote: Vote,
    /// Looking voters' votes in this round.
    votes: BTreeMap<ServerId, Vote>,
    /// Votes of voters that are following or leading (any round).
    settled: BTreeMap<ServerId, (ServerState, Vote)>,
    decide_at: Option<i64>,
    next_send_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LearnerStage {
    /// Sent FOLLOWERINFO; waiting for the epoch.
    Info,
    /// Synced and NEWLEADER sent; waiting for its ack.
    Syncing,
    /// Acked NEWLEADER; receives proposals and counts for commits.
    Synced,
}

struct LearnerLink {
    /// Served as an observer: it said it observes, or it has no vote.
    observer: bool,
    /// It said it follows (FOLLOWERINFO, not OBSERVERINFO), vote or not.
    declared_follower: bool,
    stage: LearnerStage,
    acked: i64,
    last_heard: i64,
    /// The zxid NEWLEADER named; only an ack of exactly it counts (a late ack of an earlier
    /// sync of the same learner proves nothing about this one).
    sync_zxid: i64,
    /// The highest zxid it was told it may commit: at once ([`Msg::Commit`]) or once it is
    /// durable itself ([`Msg::CommitOnceDurable`]).
    commit_told: i64,
}

struct Leadership {
    /// 0 until a quorum reported its accepted epoch.
    epoch: u32,
    established: bool,
    started_at: i64,
    /// Accepted epochs reported in discovery (voters).
    infos: BTreeMap<ServerId, u32>,
    learners: BTreeMap<ServerId, LearnerLink>,
    /// zxid of the history the epoch starts from.
    start_zxid: i64,
    next_ping_at: i64,
}

impl Leadership {
    /// Still synchronising an epoch picked with a quorum of voters, but the live voting
    /// learners no longer make a quorum with the leader: the attempt cannot establish.
    fn attempt_lost_its_quorum(&self, cfg: &PeerConfig) -> bool {
        if self.established || self.epoch == 0 {
            return false;
        }
        let voters = self.learners.iter().filter(|(id, link)| !link.observer && cfg.is_voter(**id)).count();
        1 + voters < quorum_size(cfg.voters.len())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FollowStage {
    AwaitEpoch,
    Syncing,
    UpToDate,
}

struct Followership {
    leader: ServerId,
    epoch: u32,
    stage: FollowStage,
    started_at: i64,
    last_heard: i64,
    /// NEWLEADER received for this zxid and not yet acked (waiting for durability).
    new_leader: Option<i64>,
    /// When to resend FOLLOWERINFO while waiting for the epoch.
    next_info_at: i64,
    /// NEWLEADER matched our log: it is now a prefix of the leader's history, so the
    /// leader's commit points apply to it (never before: it may hold a deposed leader's txns).
    synced: bool,
    /// The configuration NEWLEADER announced, taken up at UPTODATE.
    leader_config: CarriedConfig,
    /// The leader's last [`Msg::CommitOnceDurable`]: committed up to it as soon as this
    /// server's own log is durable that far.
    commit_once_durable: i64,
}

enum Phase {
    Looking(Election),
    Leading(Leadership),
    Following(Followership),
}

/// One server's replica of the protocol.
pub struct Peer {
    cfg: PeerConfig,
    now: i64,
    phase: Phase,
    accepted_epoch: u32,
    current_epoch: u32,
    /// Election round (FastLeaderElection's logical clock).
    round: u64,
    /// Last txn logged (maybe not yet durable), durable point, commit point, applied point.
    last_logged: i64,
    durable: i64,
    committed: i64,
    applied: i64,
    history_base: i64,
    history: VecDeque<(i64, SharedTxn)>,
    /// Bytes of the txns in `history`.
    history_bytes: usize,
    /// Learner: logged, not yet applied.
    pending: VecDeque<(i64, SharedTxn)>,
    epoch_ends: BTreeMap<u32, i64>,
    /// Last time each peer was heard from (absent: link reported down).
    heard: BTreeMap<ServerId, i64>,
    /// A reconfig logged but not yet committed: its zxid and the membership it makes. Until
    /// it commits the old voters decide; a leader commits it only with a quorum of the old
    /// AND of the new voters (Apache's two ack sets).
    pending_config: Option<(i64, Membership)>,
    /// The configuration version each peer's last election notification reported: a peer
    /// behind this server's is sent the whole configuration.
    peer_config_versions: BTreeMap<ServerId, i64>,
}

/// Default [`PeerConfig::history_bytes_max`]: 64 MiB (100 B values: all of `history_max`;
/// 1 MiB values: the last 64 txns, where Apache keeps 500 proposals in memory).
pub const DEFAULT_HISTORY_BYTES_MAX: usize = 64 << 20;

impl PeerConfig {
    /// Whether a history of `txns` txns holding `bytes` bytes is over `history_max` or
    /// `history_bytes_max` (its oldest txn goes; the newest always stays).
    pub fn history_over(&self, txns: usize, bytes: usize) -> bool {
        txns > self.history_max || (bytes > self.history_bytes_max && txns > 1)
    }
}

impl Peer {
    /// A server starting from what it recovered; it begins looking for a leader (call
    /// [`Peer::start`] to get the first actions).
    pub fn new(cfg: PeerConfig, recovered: Recovered, now: i64) -> Self {
        let last_logged = recovered.history.last().map(|(z, _)| *z).unwrap_or(recovered.history_base);
        // Every peer is presumed reachable until its link is reported down or falls silent.
        let heard = cfg.voters.iter().chain(&cfg.observers).map(|&id| (id, now)).collect();
        let mut epoch_ends = BTreeMap::new();
        for z in recovered.epoch_ends {
            epoch_ends.insert(epoch_of(z), z);
        }
        // The current epoch is at least the epoch of the last logged txn: a server that
        // restarted from disk in the middle of a synchronisation (a SNAP or TRUNC is carried
        // out by a restart) holds that leader's history without having moved currentEpoch, and
        // must not rank below a server holding less, in elections or in discovery.
        let current_epoch = recovered.current_epoch.max(epoch_of(last_logged));
        let pending_config = last_seen_reconfig(&recovered.history, cfg.config_version);
        let history_bytes = recovered.history.iter().map(|(_, txn)| txn.len()).sum();
        let mut peer = Peer {
            phase: Phase::Looking(Election {
                vote: Vote { leader: cfg.my_id, zxid: last_logged, epoch: current_epoch },
                votes: BTreeMap::new(),
                settled: BTreeMap::new(),
                decide_at: None,
                next_send_at: now,
            }),
            cfg,
            now,
            accepted_epoch: recovered.accepted_epoch,
            current_epoch,
            round: 0,
            last_logged,
            durable: last_logged,
            committed: 0,
            applied: last_logged,
            history_base: recovered.history_base,
            history: recovered.history.into(),
            history_bytes,
            pending: VecDeque::new(),
            epoch_ends,
            heard,
            pending_config,
            peer_config_versions: BTreeMap::new(),
        };
        peer.trim_history();
        peer
    }

    /// The first actions: announce the start of an election.
    pub fn start(&mut self, out: &mut Vec<Action>) {
        self.look(out);
    }

    pub fn config(&self) -> &PeerConfig {
        &self.cfg
    }

    pub fn role(&self) -> RoleView {
        match &self.phase {
            Phase::Looking(_) => RoleView {
                state: ServerState::Looking,
                leader: None,
                epoch: self.current_epoch,
                serving: false,
            },
            Phase::Leading(l) => RoleView {
                state: ServerState::Leading,
                leader: Some(self.cfg.my_id),
                epoch: l.epoch,
                serving: l.established,
            },
            Phase::Following(f) => RoleView {
                // A server a reconfig removed follows without a vote (Apache's non-voting
                // follower): a follower still, not an observer.
                state: if self.cfg.observers.contains(&self.cfg.my_id) {
                    ServerState::Observing
                } else {
                    ServerState::Following
                },
                leader: Some(f.leader),
                epoch: f.epoch,
                serving: f.stage == FollowStage::UpToDate,
            },
        }
    }

    /// The earliest time (the clock [`Peer::step`] is given, ms) at which an [`Event::Tick`]
    /// can change anything, while serving: the next ping of a leader, or the moment a silent
    /// learner or leader would count as lost. A driver may sleep until then (or until the
    /// next event) instead of ticking on a fixed period. `None` while electing, discovering or
    /// syncing: several short timers interact there, tick often.
    pub fn next_timer_at(&self) -> Option<i64> {
        let timeout = self.cfg.peer_timeout_ms;
        match &self.phase {
            Phase::Following(f) if f.stage == FollowStage::UpToDate => Some(f.last_heard + timeout + 1),
            Phase::Leading(l) if l.established => {
                let first_silent = l.learners.values().map(|link| link.last_heard + timeout + 1).min();
                Some(first_silent.map_or(l.next_ping_at, |at| at.min(l.next_ping_at)))
            }
            _ => None,
        }
    }

    /// Leader only: its learners by stage; `None` on a server that is not leading.
    pub fn learner_counts(&self) -> Option<LearnerCounts> {
        let Phase::Leading(l) = &self.phase else { return None };
        let synced = || l.learners.iter().filter(|(_, k)| k.stage == LearnerStage::Synced);
        Some(LearnerCounts {
            learners: l.learners.len(),
            synced_followers: synced().filter(|(_, k)| k.declared_follower).count(),
            synced_non_voting_followers: synced()
                .filter(|(id, k)| k.declared_follower && !self.cfg.is_voter(**id))
                .count(),
            synced_observers: synced().filter(|(_, k)| !k.declared_follower).count(),
        })
    }

    /// Last zxid logged (maybe not yet durable).
    pub fn last_logged(&self) -> i64 {
        self.last_logged
    }

    pub fn committed(&self) -> i64 {
        self.committed
    }

    pub fn applied(&self) -> i64 {
        self.applied
    }

    pub fn current_epoch(&self) -> u32 {
        self.current_epoch
    }

    /// Leader only: the zxid the next proposal must carry, or `None` when this server may not
    /// propose (not an established leader, or the epoch's counter is exhausted).
    pub fn next_zxid(&self) -> Option<i64> {
        match &self.phase {
            Phase::Leading(l) if l.established => {
                if epoch_of(self.last_logged) != l.epoch {
                    Some(make_zxid(l.epoch, 1))
                } else if counter_of(self.last_logged) < self.cfg.counter_limit {
                    Some(self.last_logged + 1)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Per epoch held, the last zxid held in it.
    pub fn epoch_ends(&self) -> Vec<i64> {
        self.epoch_ends.values().copied().collect()
    }

    /// The history held in memory, in zxid order.
    pub fn history(&self) -> impl Iterator<Item = &(i64, SharedTxn)> {
        self.history.iter()
    }

    /// A reconfig is logged and not committed yet (Apache answers a second one
    /// ReconfigInProgress).
    pub fn reconfig_pending(&self) -> bool {
        self.pending_config.is_some()
    }

    /// Leader only: the members synced with it right now, itself included (Apache's
    /// `Leader.isQuorumSynced` counts these); empty on a server not leading an established
    /// epoch.
    pub fn synced_members(&self) -> Vec<ServerId> {
        let Phase::Leading(l) = &self.phase else { return Vec::new() };
        if !l.established {
            return Vec::new();
        }
        let synced = l.learners.iter().filter(|(_, k)| k.stage == LearnerStage::Synced).map(|(id, _)| *id);
        std::iter::once(self.cfg.my_id).chain(synced).collect()
    }

    /// Handles one event at time `now`, appending the actions to carry out to `out`.
    pub fn step(&mut self, now: i64, event: Event, out: &mut Vec<Action>) {
        self.now = now.max(self.now);
        match event {
            Event::Tick => self.tick(out),
            Event::Message { from, msg } => {
                self.heard.insert(from, self.now);
                self.message(from, msg, out);
            }
            Event::LinkDown { peer } => {
                self.heard.remove(&peer);
                self.link_down(peer, out);
            }
            Event::Durable { zxid } => self.durable_to(zxid, out),
            Event::Proposed { zxid, txn } => self.proposed(zxid, txn, out),
        }
    }

    // ---------------------------------------------------------------- election

    fn own_vote(&self) -> Vote {
        if self.cfg.never_leads {
            return Vote { leader: self.cfg.my_id, zxid: i64::MIN, epoch: 0 };
        }
        Vote { leader: self.cfg.my_id, zxid: self.last_logged, epoch: self.current_epoch }
    }

    fn state_name(&self) -> ServerState {
        self.role().state
    }

    /// Starts a new election round.
    fn look(&mut self, out: &mut Vec<Action>) {
        self.round += 1;
        let vote = self.own_vote();
        // An observer never proposes itself; its "vote" only asks others who leads.
        self.phase = Phase::Looking(Election {
            vote,
            votes: BTreeMap::new(),
            settled: BTreeMap::new(),
            decide_at: None,
            next_send_at: self.now + self.cfg.election_retry_ms,
        });
        out.push(Action::Role(self.role()));
        self.broadcast_vote(out);
        self.check_decision(out);
    }

    /// This server's notification to `to`: its vote, and its configuration, whole if `to`
    /// last reported an older one.
    fn notification_to(&self, to: ServerId) -> Msg {
        let vote = match &self.phase {
            Phase::Looking(e) => e.vote,
            Phase::Leading(l) => Vote { leader: self.cfg.my_id, zxid: self.last_logged, epoch: l.epoch },
            Phase::Following(f) => Vote { leader: f.leader, zxid: self.last_logged, epoch: f.epoch },
        };
        let behind = self.peer_config_versions.get(&to).is_some_and(|v| *v < self.cfg.config_version);
        let config = match self.cfg.membership() {
            Some(membership) if behind => CarriedConfig::Whole(membership),
            _ => CarriedConfig::Version(self.cfg.config_version),
        };
        Msg::Notification { round: self.round, state: self.state_name(), vote, config }
    }

    fn broadcast_vote(&mut self, out: &mut Vec<Action>) {
        for to in self.cfg.voters.iter().copied().filter(|&v| v != self.cfg.my_id) {
            out.push(Action::Send { to, msg: self.notification_to(to) });
        }
    }

    /// A looking server sent a newer committed configuration takes it up and elects again
    /// under it (Apache: `processReconfig` from the election's receiver, then a restarted
    /// election). Only a server that knows addresses (reconfig on) does.
    fn learn_config(&mut self, from: ServerId, config: CarriedConfig, out: &mut Vec<Action>) {
        self.peer_config_versions.insert(from, config.version());
        let CarriedConfig::Whole(membership) = config else { return };
        let newer = membership.version > self.cfg.config_version;
        if !newer || self.cfg.members.is_empty() || !matches!(self.phase, Phase::Looking(_)) {
            return;
        }
        log::info!(
            "configuration {:x} learned from server {from} while electing (this server had {:x})",
            membership.version,
            self.cfg.config_version
        );
        self.install_config(membership, out);
        self.look(out);
    }

    fn on_notification(
        &mut self,
        from: ServerId,
        round: u64,
        state: ServerState,
        vote: Vote,
        config: CarriedConfig,
        out: &mut Vec<Action>,
    ) {
        self.learn_config(from, config, out);
        let from_voter = self.cfg.is_voter(from);
        let i_vote = self.cfg.is_voter(self.cfg.my_id);
        let Phase::Looking(_) = &self.phase else {
            // Settled: tell a looking server who leads.
            if state == ServerState::Looking {
                out.push(Action::Send { to: from, msg: self.notification_to(from) });
            }
            // A learner of this leader's unestablished epoch that now follows or leads under
            // another leader has left it.
            let my_id = self.cfg.my_id;
            if let Phase::Leading(l) = &mut self.phase {
                if !l.established && state != ServerState::Looking && vote.leader != my_id {
                    l.learners.remove(&from);
                    if l.attempt_lost_its_quorum(&self.cfg) {
                        self.look(out);
                    }
                }
            }
            return;
        };
        if !from_voter {
            // A looking observer asks who leads; a looking voter has no answer yet beyond its vote.
            out.push(Action::Send { to: from, msg: self.notification_to(from) });
            return;
        }
        if state == ServerState::Looking {
            if !i_vote {
                return;
            }
            if round > self.round {
                self.round = round;
                let own = self.own_vote();
                let e = self.election_mut();
                e.votes.clear();
                e.decide_at = None;
                e.vote = if vote.beats(&own) { vote } else { own };
                self.broadcast_vote(out);
            } else if round < self.round {
                out.push(Action::Send { to: from, msg: self.notification_to(from) });
                return;
            } else if vote.beats(&self.election().vote) {
                let e = self.election_mut();
                e.vote = vote;
                e.decide_at = None;
                self.broadcast_vote(out);
            }
            self.election_mut().votes.insert(from, vote);
            self.check_decision(out);
        } else {
            self.election_mut().settled.insert(from, (state, vote));
            self.check_settled(out);
        }
    }

    fn election(&self) -> &Election {
        match &self.phase {
            Phase::Looking(e) => e,
            _ => unreachable!("only called while looking"),
        }
    }

    fn election_mut(&mut self) -> &mut Election {
        match &mut self.phase {
            Phase::Looking(e) => e,
            _ => unreachable!("only called while looking"),
        }
    }

    fn reachable_voters(&self) -> usize {
        let timeout = self.cfg.peer_timeout_ms;
        self.cfg
            .voters
            .iter()
            .filter(|&&v| {
                v == self.cfg.my_id || self.heard.get(&v).is_some_and(|&at| self.now - at <= timeout)
            })
            .count()
    }

    /// Decide when a quorum of this round agrees with our vote: at once when every reachable
    /// voter does, else after the finalize wait (unless the vote changes meanwhile).
    fn check_decision(&mut self, out: &mut Vec<Action>) {
        if !self.cfg.is_voter(self.cfg.my_id) {
            return;
        }
        let quorum = quorum_size(self.cfg.voters.len());
        let reachable = self.reachable_voters();
        let now = self.now;
        let finalize = self.cfg.finalize_wait_ms;
        let never_leads = self.cfg.never_leads.then_some(self.cfg.my_id);
        let e = self.election_mut();
        if never_leads == Some(e.vote.leader) {
            return; // still its own vote: waits for another voter's
        }
        let agreeing = 1 + e.votes.values().filter(|v| **v == e.vote).count();
        if agreeing < quorum {
            e.decide_at = None;
            return;
        }
        let decide_at = *e.decide_at.get_or_insert(now + finalize);
        if agreeing >= reachable || now >= decide_at {
            let leader = e.vote.leader;
            self.decided(leader, out);
        }
    }

    /// Join a leader that a quorum of settled voters follows and that says it leads.
    fn check_settled(&mut self, out: &mut Vec<Action>) {
        let quorum = quorum_size(self.cfg.voters.len());
        let e = self.election();
        let mut counts: BTreeMap<ServerId, usize> = BTreeMap::new();
        for (state, vote) in e.settled.values() {
            if matches!(state, ServerState::Following | ServerState::Leading) {
                *counts.entry(vote.leader).or_default() += 1;
            }
        }
        let found = counts.into_iter().find(|&(leader, n)| {
            n >= quorum && e.settled.get(&leader).is_some_and(|(s, _)| *s == ServerState::Leading)
        });
        if let Some((leader, _)) = found {
            self.decided(leader, out);
        }
    }

    fn decided(&mut self, leader: ServerId, out: &mut Vec<Action>) {
        if leader == self.cfg.my_id {
            self.phase = Phase::Leading(Leadership {
                epoch: 0,
                established: false,
                started_at: self.now,
                infos: BTreeMap::from([(self.cfg.my_id, self.accepted_epoch)]),
                learners: BTreeMap::new(),
                start_zxid: self.last_logged,
                next_ping_at: self.now,
            });
            // A leader's state is its whole log (as Apache's leader loads its database): txns
            // it logged as a learner and never applied are applied now, so a SNAP it sends while
            // synchronising learners is an image at its last logged zxid. (Its establishment
            // commits them; if it never establishes, the next leader's DIFF or TRUNC is planned
            // from the same log.)
            for (zxid, txn) in self.pending.drain(..) {
                self.applied = zxid;
                out.push(Action::Apply { zxid, txn });
            }
            out.push(Action::Role(self.role()));
            self.maybe_pick_epoch(out);
        } else {
            self.phase = Phase::Following(Followership {
                leader,
                epoch: 0,
                stage: FollowStage::AwaitEpoch,
                started_at: self.now,
                last_heard: self.now,
                new_leader: None,
                next_info_at: self.now + self.cfg.election_retry_ms,
                synced: false,
                leader_config: CarriedConfig::Version(0),
                commit_once_durable: i64::MIN,
            });
            out.push(Action::Role(self.role()));
            let observer = self.cfg.declares_observer();
            out.push(Action::Send {
                to: leader,
                msg: Msg::FollowerInfo { accepted_epoch: self.accepted_epoch, observer },
            });
        }
    }

    // ---------------------------------------------------------------- events

    fn tick(&mut self, out: &mut Vec<Action>) {
        let now = self.now;
        let timeout = self.cfg.peer_timeout_ms;
        match &mut self.phase {
            Phase::Looking(e) => {
                if now >= e.next_send_at {
                    e.next_send_at = now + self.cfg.election_retry_ms;
                    self.broadcast_vote(out);
                }
                self.check_decision(out);
            }
            Phase::Following(f) => {
                // Discovery (the epoch) needs only a quorum of live voters, so it gets a couple of
                // link timeouts; the sync itself (maybe a large snapshot) gets initLimit.
                let stalled = match f.stage {
                    FollowStage::AwaitEpoch => now - f.started_at > 2 * timeout,
                    FollowStage::Syncing => now - f.started_at > self.cfg.sync_timeout_ms,
                    FollowStage::UpToDate => false,
                };
                if now - f.last_heard > timeout || stalled {
                    self.look(out);
                } else if f.stage == FollowStage::AwaitEpoch && now >= f.next_info_at {
                    // The leader may have decided after our first FOLLOWERINFO reached it.
                    // Resent at the election's retry pace, not the (maybe much slower) ping's.
                    f.next_info_at = now + self.cfg.election_retry_ms;
                    let (to, observer) = (f.leader, self.cfg.declares_observer());
                    let msg = Msg::FollowerInfo { accepted_epoch: self.accepted_epoch, observer };
                    out.push(Action::Send { to, msg });
                }
            }
            Phase::Leading(l) => {
                l.learners.retain(|_, link| now - link.last_heard <= timeout);
                let discovery_stalled = l.epoch == 0 && now - l.started_at > 2 * timeout;
                if !l.established && (discovery_stalled || now - l.started_at > self.cfg.sync_timeout_ms) {
                    // No quorum came to this leader (the votes split): elect again.
                    self.look(out);
                    return;
                }
                if l.attempt_lost_its_quorum(&self.cfg) {
                    // The voters that joined this epoch left (fell silent or follow another
                    // leader): it can never establish; elect again instead of waiting out the
                    // sync timeout (initLimit) in it.
                    self.look(out);
                    return;
                }
                if now >= l.next_ping_at {
                    l.next_ping_at = now + self.cfg.heartbeat_ms;
                    let msg =
                        Msg::Ping { epoch: l.epoch, committed: self.committed, last_zxid: self.last_logged };
                    // Learners still waiting for the epoch get pings too: the leader lives.
                    for &to in l.learners.keys() {
                        out.push(Action::Send { to, msg: msg.clone() });
                    }
                }
                self.check_leader_quorum(out);
            }
        }
    }

    fn link_down(&mut self, peer: ServerId, out: &mut Vec<Action>) {
        match &mut self.phase {
            Phase::Following(f) if f.leader == peer => self.look(out),
            Phase::Leading(l) => {
                l.learners.remove(&peer);
                if l.attempt_lost_its_quorum(&self.cfg) {
                    self.look(out);
                } else {
                    self.check_leader_quorum(out);
                }
            }
            _ => {}
        }
    }

    /// An established leader without a live quorum of synced voters steps down.
    fn check_leader_quorum(&mut self, out: &mut Vec<Action>) {
        let Phase::Leading(l) = &self.phase else { return };
        if !l.established {
            return;
        }
        let live = 1 + l
            .learners
            .iter()
            .filter(|(id, link)| {
                !link.observer && link.stage == LearnerStage::Synced && self.cfg.is_voter(**id)
            })
            .count();
        if live < quorum_size(self.cfg.voters.len()) {
            self.look(out);
        }
    }

    fn message(&mut self, from: ServerId, msg: Msg, out: &mut Vec<Action>) {
        match msg {
            Msg::Notification { round, state, vote, config } => {
                self.on_notification(from, round, state, vote, config, out)
            }
            Msg::FollowerInfo { accepted_epoch, observer } => {
                self.on_follower_info(from, accepted_epoch, observer, out)
            }
            Msg::AckEpoch { epoch, current_epoch, last_zxid, epoch_ends } => {
                self.on_ack_epoch(from, epoch, current_epoch, last_zxid, &epoch_ends, out)
            }
            Msg::AckNewLeader { epoch, zxid } => self.on_ack_new_leader(from, epoch, zxid, out),
            Msg::Ack { epoch, zxid } => self.on_ack(from, epoch, zxid, out),
            leader_msg => self.on_leader_message(from, leader_msg, out),
        }
    }

    // ---------------------------------------------------------------- leader

    fn leadership(&mut self) -> Option<&mut Leadership> {
        match &mut self.phase {
            Phase::Leading(l) => Some(l),
            _ => None,
        }
    }

    fn on_follower_info(
        &mut self,
        from: ServerId,
        accepted_epoch: u32,
        observer: bool,
        out: &mut Vec<Action>,
    ) {
        let now = self.now;
        let is_voter = self.cfg.is_voter(from);
        let Some(l) = self.leadership() else { return };
        l.learners.insert(
            from,
            LearnerLink {
                observer: observer || !is_voter,
                declared_follower: !observer,
                stage: LearnerStage::Info,
                acked: 0,
                last_heard: now,
                sync_zxid: i64::MIN,
                commit_told: i64::MIN,
            },
        );
        if l.epoch == 0 {
            if is_voter && !observer {
                l.infos.insert(from, accepted_epoch);
            }
            self.maybe_pick_epoch(out);
        } else {
            let epoch = l.epoch;
            out.push(Action::Send { to: from, msg: Msg::LeaderInfo { epoch } });
        }
    }

    /// With a quorum of accepted epochs, the new epoch is one past the highest.
    fn maybe_pick_epoch(&mut self, out: &mut Vec<Action>) {
        let quorum = quorum_size(self.cfg.voters.len());
        let Some(l) = self.leadership() else { return };
        if l.epoch != 0 || l.infos.len() < quorum {
            return;
        }
        let epoch = l.infos.values().copied().max().unwrap_or(0) + 1;
        l.epoch = epoch;
        let learners: Vec<ServerId> = l.learners.keys().copied().collect();
        self.accepted_epoch = epoch;
        out.push(Action::PersistEpochs { accepted: epoch, current: self.current_epoch });
        for to in learners {
            out.push(Action::Send { to, msg: Msg::LeaderInfo { epoch } });
        }
        out.push(Action::Role(self.role()));
        // A one-voter ensemble is established at once.
        self.maybe_establish(out);
    }

    fn on_ack_epoch(
        &mut self,
        from: ServerId,
        epoch: u32,
        current_epoch: u32,
        last_zxid: i64,
        ends: &[i64],
        out: &mut Vec<Action>,
    ) {
        let mine = (self.current_epoch, self.last_logged);
        let is_voter = self.cfg.is_voter(from);
        let Some(l) = self.leadership() else { return };
        if epoch != l.epoch || !l.learners.contains_key(&from) {
            return;
        }
        if is_voter && (current_epoch, last_zxid) > mine {
            // A voter knows more than the leader: the election went wrong; start over (as
            // Apache's "Follower is ahead of the leader").
            self.look(out);
            return;
        }
        let synthesized;
        let ends = if ends.is_empty() && last_zxid > 0 && self.cfg.apache_learners {
            let learner_epoch = epoch_of(last_zxid);
            synthesized = self
                .epoch_ends
                .iter()
                .filter(|(e, _)| **e < learner_epoch)
                .map(|(_, z)| *z)
                .chain([last_zxid])
                .collect::<Vec<i64>>();
            &synthesized[..]
        } else {
            ends
        };
        self.sync_learner(from, last_zxid, ends, out);
    }

    /// Sends `to` what makes its log equal to the leader's history, then NEWLEADER.
    fn sync_learner(&mut self, to: ServerId, learner_last: i64, learner_ends: &[i64], out: &mut Vec<Action>) {
        let epoch = self.leadership().map(|l| l.epoch).unwrap_or(0);
        let common = common_prefix(&self.epoch_ends, learner_ends);
        if common < self.history_base {
            let ends: Vec<i64> = self.epoch_ends.values().copied().collect();
            out.push(Action::SendSnapshot { to, epoch, zxid: self.last_logged, epoch_ends: ends });
        } else {
            if learner_last > common {
                out.push(Action::Send { to, msg: Msg::Trunc { epoch, zxid: common } });
            }
            let mut prev = common;
            for (zxid, txn) in self.history.iter().filter(|(z, _)| *z > common) {
                out.push(Action::Send {
                    to,
                    msg: Msg::Proposal { epoch, prev_zxid: prev, zxid: *zxid, txn: txn.clone() },
                });
                prev = *zxid;
            }
        }
        let zxid = self.last_logged;
        if self.cfg.apache_learners {
            out.push(Action::Send { to, msg: Msg::Commit { epoch, zxid: self.committed } });
        }
        let config = self.announced_config(epoch);
        out.push(Action::Send { to, msg: Msg::NewLeader { epoch, zxid, config } });
        if let Some(link) = self.leadership().and_then(|l| l.learners.get_mut(&to)) {
            link.stage = LearnerStage::Syncing;
            link.sync_zxid = zxid;
        }
    }

    fn on_ack_new_leader(&mut self, from: ServerId, epoch: u32, zxid: i64, out: &mut Vec<Action>) {
        let committed = self.committed;
        let Some(l) = self.leadership() else { return };
        if epoch != l.epoch {
            return;
        }
        let established = l.established;
        let Some(link) = l.learners.get_mut(&from) else { return };
        if link.stage != LearnerStage::Syncing || zxid != link.sync_zxid {
            return;
        }
        link.stage = LearnerStage::Synced;
        link.acked = link.acked.max(zxid);
        if established {
            out.push(Action::Send { to: from, msg: Msg::UpToDate { epoch, committed } });
            self.advance_commit(out);
        } else {
            self.maybe_establish(out);
        }
    }

    /// Established once a quorum, the leader's durable log included, holds the history.
    fn maybe_establish(&mut self, out: &mut Vec<Action>) {
        let quorum = quorum_size(self.cfg.voters.len());
        let durable = self.durable;
        let last = self.last_logged;
        let Some(l) = self.leadership() else { return };
        if l.established || l.epoch == 0 || durable < last {
            return;
        }
        let synced = l.learners.values().filter(|k| !k.observer && k.stage == LearnerStage::Synced).count();
        if 1 + synced < quorum {
            return;
        }
        if let Some((_, next)) = &self.pending_config {
            // A reconfig this leader logged but never saw committed is committed with the
            // epoch's history, so a quorum of its voters must hold that history too (Apache's
            // NEWLEADER waits for acks from both the committed and the last seen verifier).
            if self.durable_point_of(&next.voters(), None) < last {
                return;
            }
        }
        let Some(l) = self.leadership() else { return };
        l.established = true;
        l.start_zxid = last;
        let epoch = l.epoch;
        let to: Vec<ServerId> =
            l.learners.iter().filter(|(_, k)| k.stage == LearnerStage::Synced).map(|(id, _)| *id).collect();
        self.current_epoch = epoch;
        out.push(Action::PersistEpochs { accepted: self.accepted_epoch, current: epoch });
        self.committed = self.committed.max(last);
        for id in to {
            out.push(Action::Send { to: id, msg: Msg::UpToDate { epoch, committed: self.committed } });
        }
        out.push(Action::Committed { zxid: self.committed });
        self.applied = self.applied.max(self.committed);
        out.push(Action::Role(self.role()));
        self.activate_committed_config(out);
        let config = self.announced_config(epoch);
        self.take_up_config(config, out);
    }

    /// The configuration a leader of `epoch` announces in NEWLEADER: its own, or, for a
    /// configuration still at version 0 with no reconfig pending, the same members versioned
    /// with the epoch's first zxid. Whole when its addresses are known.
    fn announced_config(&self, epoch: u32) -> CarriedConfig {
        let version = if self.cfg.config_version == 0
            && self.cfg.versions_initial_config
            && self.pending_config.is_none()
        {
            make_zxid(epoch, 0)
        } else {
            self.cfg.config_version
        };
        match self.cfg.membership() {
            Some(membership) => CarriedConfig::Whole(Membership { version, ..membership }),
            None => CarriedConfig::Version(version),
        }
    }

    /// Takes up the leader's configuration if it is newer (the leader its own at
    /// establishment, a learner NEWLEADER's at UPTODATE, which then announces its role).
    fn take_up_config(&mut self, config: CarriedConfig, out: &mut Vec<Action>) {
        if config.version() <= self.cfg.config_version {
            return;
        }
        match config {
            CarriedConfig::Whole(membership) => self.install_config(membership, out),
            CarriedConfig::Version(version) => {
                self.cfg.config_version = version;
                if let Some(membership) = self.cfg.membership() {
                    out.push(Action::ConfigChanged(membership));
                }
            }
        }
    }

    /// Makes `next` the configuration: voters, observers, version and addresses; peers it
    /// adds count as heard from now; a reconfig logged at or before its version is settled by
    /// it (committed, or superseded).
    fn install_config(&mut self, next: Membership, out: &mut Vec<Action>) {
        if self.pending_config.as_ref().is_some_and(|(zxid, _)| *zxid <= next.version) {
            self.pending_config = None;
        }
        self.cfg.adopt(&next);
        let now = self.now;
        for id in next.members.keys() {
            self.heard.entry(*id).or_insert(now);
        }
        out.push(Action::ConfigChanged(next));
    }

    fn on_ack(&mut self, from: ServerId, epoch: u32, zxid: i64, out: &mut Vec<Action>) {
        let now = self.now;
        match &mut self.phase {
            Phase::Leading(l) if l.epoch == epoch => {
                if let Some(link) = l.learners.get_mut(&from) {
                    link.last_heard = now;
                    if link.stage == LearnerStage::Synced {
                        link.acked = link.acked.max(zxid);
                    }
                }
                self.advance_commit(out);
            }
            _ => {}
        }
    }

    /// Commits the highest zxid a quorum of voters holds durably, then tells each voting
    /// follower what it may commit once durable itself ([`Peer::tell_commit_once_durable`]).
    fn advance_commit(&mut self, out: &mut Vec<Action>) {
        let Phase::Leading(l) = &self.phase else { return };
        if !l.established {
            return;
        }
        if let Some(point) = self.commit_point(None).filter(|point| *point > self.committed) {
            let Phase::Leading(l) = &mut self.phase else { return };
            let epoch = l.epoch;
            for (&to, link) in l.learners.iter_mut().filter(|(_, k)| k.stage != LearnerStage::Info) {
                // A follower told it may commit this far once durable commits by itself (or
                // at the next ping, whose commit point it takes whether durable or not).
                if link.commit_told >= point {
                    continue;
                }
                link.commit_told = point;
                out.push(Action::Send { to, msg: Msg::Commit { epoch, zxid: point } });
            }
            self.committed = point;
            self.applied = point;
            out.push(Action::Committed { zxid: point });
            if self.activate_committed_config(out) {
                // Later proposals count under the new voters now.
                return self.advance_commit(out);
            }
        }
        self.tell_commit_once_durable(out);
    }

    /// Leader: sends each synced voting follower whose point rose a [`Msg::CommitOnceDurable`]
    /// naming the zxid [`Peer::commit_point`] gives with that follower counted as durable up
    /// to the last proposal. Committing up to the lower of that and its own durable point is
    /// safe: the commit point only grows with each voter's durable point, so the follower's
    /// own ack would make the leader commit at least that far.
    fn tell_commit_once_durable(&mut self, out: &mut Vec<Action>) {
        let Phase::Leading(l) = &self.phase else { return };
        let epoch = l.epoch;
        let followers: Vec<(ServerId, i64)> = l
            .learners
            .iter()
            .filter(|(_, k)| !k.observer && k.stage == LearnerStage::Synced)
            .map(|(id, k)| (*id, k.commit_told))
            .collect();
        for (to, told) in followers {
            let Some(point) = self.commit_point(Some(to)).filter(|point| *point > told) else { continue };
            if let Phase::Leading(l) = &mut self.phase {
                if let Some(link) = l.learners.get_mut(&to) {
                    link.commit_told = point;
                }
            }
            out.push(Action::Send { to, msg: Msg::CommitOnceDurable { epoch, zxid: point } });
        }
    }

    /// Leader: the highest zxid a quorum of voters holds durably (the leader's own durable log
    /// and synced voting learners' acks; with a reconfig pending, the reconfig and what follows
    /// it only as far as a quorum of the new voters holds them too), counting `durable_everywhere` (a learner) as
    /// durable up to the leader's last logged zxid; `None` without a quorum.
    fn commit_point(&self, durable_everywhere: Option<ServerId>) -> Option<i64> {
        let quorum = quorum_size(self.cfg.voters.len());
        let Phase::Leading(l) = &self.phase else { return None };
        let mut points: Vec<i64> = l
            .learners
            .iter()
            .filter(|(_, k)| !k.observer && k.stage == LearnerStage::Synced)
            .map(|(id, k)| if Some(*id) == durable_everywhere { self.last_logged } else { k.acked })
            .collect();
        points.push(self.durable.min(self.last_logged));
        if points.len() < quorum {
            return None;
        }
        points.sort_unstable_by(|a, b| b.cmp(a));
        let mut point = points[quorum - 1];
        if let Some((reconfig_zxid, next)) = &self.pending_config {
            if point >= *reconfig_zxid {
                let new_point = self.durable_point_of(&next.voters(), durable_everywhere);
                point = if new_point < *reconfig_zxid {
                    // The new voters do not hold the reconfig yet: commit up to just before it.
                    reconfig_zxid - 1
                } else {
                    // The reconfig and what follows it need a quorum of the new voters as
                    // well as of the old (as Apache's leader while a reconfig is pending).
                    point.min(new_point)
                };
            }
        }
        Some(point)
    }

    /// Leader: the highest zxid a quorum of `voters` holds durably (the leader's own durable
    /// log if it is one of them, synced learners' acks, `durable_everywhere` counted as
    /// durable up to the last logged zxid); `i64::MIN` without such a quorum.
    fn durable_point_of(&self, voters: &[ServerId], durable_everywhere: Option<ServerId>) -> i64 {
        let Phase::Leading(l) = &self.phase else { return i64::MIN };
        let mut points: Vec<i64> = voters
            .iter()
            .filter_map(|&id| {
                if id == self.cfg.my_id {
                    Some(self.durable.min(self.last_logged))
                } else if Some(id) == durable_everywhere {
                    l.learners.get(&id).filter(|k| k.stage == LearnerStage::Synced).map(|_| self.last_logged)
                } else {
                    l.learners.get(&id).filter(|k| k.stage == LearnerStage::Synced).map(|k| k.acked)
                }
            })
            .collect();
        let quorum = quorum_size(voters.len());
        if voters.is_empty() || points.len() < quorum {
            return i64::MIN;
        }
        points.sort_unstable_by(|a, b| b.cmp(a));
        points[quorum - 1]
    }

    /// Once the pending reconfig is committed, its membership becomes the configuration:
    /// the voters and observers change and a leader re-labels its learners. A learner no
    /// longer listed stays connected as a non-voting follower (as Apache's: it serves until
    /// shut down, and its acks no longer count); a leader that no longer votes steps down
    /// (the remaining voters elect a new one); a learner whose role changed says so. True if
    /// the configuration changed.
    fn activate_committed_config(&mut self, out: &mut Vec<Action>) -> bool {
        if self.pending_config.as_ref().is_none_or(|(zxid, _)| *zxid > self.committed) {
            return false;
        }
        let (_, next) = self.pending_config.take().expect("checked");
        let role_before = self.role();
        self.install_config(next, out);
        let my_id = self.cfg.my_id;
        let cfg = &self.cfg;
        if let Phase::Leading(l) = &mut self.phase {
            for (id, link) in l.learners.iter_mut() {
                link.observer = !cfg.is_voter(*id);
            }
        }
        match self.phase {
            Phase::Leading(_) if !self.cfg.is_voter(my_id) => self.look(out),
            Phase::Leading(_) => self.check_leader_quorum(out),
            // A learner the reconfig made an observer (or a follower) serves in its new role,
            // as Apache's learner rejoins in it (its clients reconnect either way).
            Phase::Following(_) if self.role() != role_before => out.push(Action::Role(self.role())),
            _ => {}
        }
        true
    }

    fn proposed(&mut self, zxid: i64, txn: SharedTxn, out: &mut Vec<Action>) {
        let Some(expected) = self.next_zxid() else {
            panic!("proposal {zxid:#x} while not an established leader");
        };
        assert_eq!(zxid, expected, "proposals must use Peer::next_zxid");
        let prev = self.last_logged;
        self.record(zxid, txn.clone());
        let Some(l) = self.leadership() else { return };
        let epoch = l.epoch;
        for (&to, link) in &l.learners {
            if link.stage != LearnerStage::Info {
                let msg = Msg::Proposal { epoch, prev_zxid: prev, zxid, txn: txn.clone() };
                out.push(Action::Send { to, msg });
            }
        }
        if counter_of(zxid) >= self.cfg.counter_limit {
            // The counter is exhausted: a new election gives a new epoch (as Apache).
            self.look(out);
        }
    }

    /// Adds a logged txn to the history and the epoch ends.
    fn record(&mut self, zxid: i64, txn: SharedTxn) {
        if let Some(text) = reconfig_in_txn(&txn) {
            match std::str::from_utf8(text).map_err(|e| e.to_string()).and_then(Membership::parse) {
                Ok(next) => self.pending_config = Some((zxid, next)),
                Err(e) => log::error!("reconfig txn {zxid:#x} holds no configuration: {e}"),
            }
        }
        self.last_logged = zxid;
        self.epoch_ends.insert(epoch_of(zxid), zxid);
        self.history_bytes += txn.len();
        self.history.push_back((zxid, txn));
        self.trim_history();
    }

    /// Drops the oldest txns of the history beyond its bounds ([`PeerConfig::history_over`]);
    /// a learner behind the oldest left gets a snapshot.
    fn trim_history(&mut self) {
        while self.cfg.history_over(self.history.len(), self.history_bytes) {
            let Some((z, txn)) = self.history.pop_front() else { break };
            self.history_bytes -= txn.len();
            self.history_base = z;
        }
    }

    fn durable_to(&mut self, zxid: i64, out: &mut Vec<Action>) {
        if zxid <= self.durable {
            return;
        }
        self.durable = zxid;
        match &mut self.phase {
            Phase::Leading(_) => {
                self.maybe_establish(out);
                self.advance_commit(out);
            }
            Phase::Following(f) => {
                let (leader, epoch) = (f.leader, f.epoch);
                if let Some(target) = f.new_leader {
                    if zxid >= target {
                        f.new_leader = None;
                        self.current_epoch = epoch;
                        out.push(Action::PersistEpochs { accepted: self.accepted_epoch, current: epoch });
                        out.push(Action::Send { to: leader, msg: Msg::AckNewLeader { epoch, zxid: target } });
                        return;
                    }
                }
                if f.stage != FollowStage::AwaitEpoch && f.new_leader.is_none() {
                    let commit_once_durable = if f.synced { f.commit_once_durable } else { i64::MIN };
                    out.push(Action::Send { to: leader, msg: Msg::Ack { epoch, zxid: self.durable } });
                    self.commit_to(commit_once_durable.min(zxid), out);
                }
            }
            Phase::Looking(_) => {}
        }
    }

    // ---------------------------------------------------------------- learner

    fn on_leader_message(&mut self, from: ServerId, msg: Msg, out: &mut Vec<Action>) {
        let now = self.now;
        let Phase::Following(f) = &mut self.phase else { return };
        if from != f.leader {
            return;
        }
        f.last_heard = now;
        if let Msg::LeaderInfo { epoch } = msg {
            // Again for the same epoch: the leader lost our state (a duplicated or resent
            // FOLLOWERINFO reached it); synchronise again.
            let resync = f.stage != FollowStage::AwaitEpoch && epoch == f.epoch;
            if f.stage != FollowStage::AwaitEpoch && !resync {
                return;
            }
            let was_serving = f.stage == FollowStage::UpToDate;
            f.new_leader = None;
            f.synced = false;
            f.commit_once_durable = i64::MIN;
            if epoch < self.accepted_epoch {
                // A leader of an older epoch: look for the current one.
                self.look(out);
                return;
            }
            f.epoch = epoch;
            f.stage = FollowStage::Syncing;
            if epoch > self.accepted_epoch {
                self.accepted_epoch = epoch;
                out.push(Action::PersistEpochs { accepted: epoch, current: self.current_epoch });
            }
            let msg = Msg::AckEpoch {
                epoch,
                current_epoch: self.current_epoch,
                last_zxid: self.last_logged,
                epoch_ends: self.epoch_ends.values().copied().collect(),
            };
            out.push(Action::Send { to: from, msg });
            if was_serving {
                out.push(Action::Role(self.role()));
            }
            return;
        }
        let (epoch, synced) = (f.epoch, f.synced);
        if f.stage == FollowStage::AwaitEpoch || message_epoch(&msg) != Some(epoch) {
            return;
        }
        // TRUNC and SNAP belong before NEWLEADER of the current sync: one arriving later is a
        // leftover of an earlier sync with this leader (a new connection can overtake an old).
        let syncing =
            matches!(&self.phase, Phase::Following(f) if f.stage == FollowStage::Syncing) && !synced;
        match msg {
            Msg::Trunc { .. } | Msg::Snapshot { .. } if !syncing => {}
            Msg::Trunc { zxid, .. } => self.truncate(zxid, out),
            Msg::Snapshot { zxid, epoch_ends, image, .. } => {
                self.pending_config = None;
                self.history.clear();
                self.history_bytes = 0;
                self.pending.clear();
                self.history_base = zxid;
                self.last_logged = zxid;
                self.applied = zxid;
                self.committed = self.committed.min(zxid);
                self.durable = i64::MIN;
                self.epoch_ends =
                    epoch_ends.into_iter().filter(|z| *z <= zxid).map(|z| (epoch_of(z), z)).collect();
                self.epoch_ends.insert(epoch_of(zxid), zxid);
                out.push(Action::InstallSnapshot { zxid, image });
            }
            Msg::Proposal { prev_zxid, zxid, txn, .. } => {
                if zxid <= self.last_logged {
                    return; // a duplicate
                }
                if prev_zxid != self.last_logged {
                    // A gap (a lost message): resynchronise.
                    self.look(out);
                    return;
                }
                self.record(zxid, txn.clone());
                self.pending.push_back((zxid, txn.clone()));
                out.push(Action::Append { zxid, txn });
            }
            Msg::NewLeader { zxid, config, .. } => {
                if zxid != self.last_logged {
                    self.look(out);
                    return;
                }
                if let Phase::Following(f) = &mut self.phase {
                    f.new_leader = Some(zxid);
                    f.synced = true;
                    f.leader_config = config;
                }
                // Acks at once if already durable.
                let durable = std::mem::replace(&mut self.durable, i64::MIN);
                self.durable_to(durable, out);
            }
            Msg::UpToDate { committed, .. } => {
                let mut leader_config = CarriedConfig::Version(0);
                if let Phase::Following(f) = &mut self.phase {
                    if f.stage == FollowStage::UpToDate || f.new_leader.is_some() {
                        return;
                    }
                    f.stage = FollowStage::UpToDate;
                    leader_config = std::mem::replace(&mut f.leader_config, CarriedConfig::Version(0));
                }
                self.commit_to(committed, out);
                self.take_up_config(leader_config, out);
                out.push(Action::Role(self.role()));
            }
            Msg::Commit { zxid, .. } if synced => self.commit_to(zxid, out),
            Msg::CommitOnceDurable { zxid, .. } if synced => {
                if let Phase::Following(f) = &mut self.phase {
                    f.commit_once_durable = f.commit_once_durable.max(zxid);
                }
                self.commit_to(zxid.min(self.durable), out);
            }
            Msg::Ping { committed, last_zxid, .. } => {
                if synced && last_zxid > self.last_logged {
                    // A proposal never arrived (links are FIFO, so it was lost): resync.
                    self.look(out);
                    return;
                }
                if synced {
                    self.commit_to(committed, out);
                }
                if self.durable > i64::MIN {
                    out.push(Action::Send { to: from, msg: Msg::Ack { epoch, zxid: self.durable } });
                }
            }
            _ => {}
        }
    }

    fn truncate(&mut self, zxid: i64, out: &mut Vec<Action>) {
        if self.pending_config.as_ref().is_some_and(|(z, _)| *z > zxid) {
            self.pending_config = None;
        }
        while self.history.back().is_some_and(|(z, _)| *z > zxid) {
            if let Some((_, txn)) = self.history.pop_back() {
                self.history_bytes -= txn.len();
            }
        }
        self.pending.clear();
        self.last_logged = zxid;
        self.applied = zxid;
        self.durable = self.durable.min(zxid);
        self.committed = self.committed.min(zxid);
        self.epoch_ends.retain(|e, _| *e <= epoch_of(zxid));
        if let Some(end) = self.epoch_ends.get_mut(&epoch_of(zxid)) {
            *end = zxid;
        }
        if zxid < self.history_base {
            self.history_base = zxid;
        }
        out.push(Action::Truncate { zxid });
    }

    /// Applies logged txns up to the leader's commit point, in order. A commit point past this
    /// server's log (the proposal was lost) counts only up to the log: the rest is committed
    /// when it arrives (the resync brings it), not skipped.
    fn commit_to(&mut self, zxid: i64, out: &mut Vec<Action>) {
        let zxid = zxid.min(self.last_logged);
        if zxid <= self.committed {
            return;
        }
        self.committed = zxid;
        let mut applied_any = false;
        while self.pending.front().is_some_and(|(z, _)| *z <= zxid) {
            let (z, txn) = self.pending.pop_front().expect("checked");
            self.applied = z;
            applied_any = true;
            out.push(Action::Apply { zxid: z, txn });
        }
        if applied_any {
            out.push(Action::Committed { zxid: self.applied });
        }
        self.activate_committed_config(out);
    }
}

/// The newest reconfig in a recovered log that is newer than the configuration the server
/// starts with (`committed_version`, from its files): proposed, perhaps committed, but not
/// known to be (Apache's `lastSeenQuorumVerifier`). It counts as pending: it is gossiped to
/// no one, and it becomes the configuration only once committed (by a leader holding it,
/// with a quorum of its voters too, or at a learner's sync); a TRUNC past it drops it.
fn last_seen_reconfig(history: &[(i64, SharedTxn)], committed_version: i64) -> Option<(i64, Membership)> {
    let (zxid, text) = history
        .iter()
        .rev()
        .take_while(|(zxid, _)| *zxid > committed_version)
        .find_map(|(zxid, txn)| reconfig_in_txn(txn).map(|text| (*zxid, text)))?;
    match std::str::from_utf8(text).map_err(|e| e.to_string()).and_then(Membership::parse) {
        Ok(next) => Some((zxid, next)),
        Err(e) => {
            log::error!("reconfig txn {zxid:#x} holds no configuration: {e}");
            None
        }
    }
}

/// The epoch a leader-to-learner message belongs to.
fn message_epoch(msg: &Msg) -> Option<u32> {
    match msg {
        Msg::Trunc { epoch, .. }
        | Msg::Snapshot { epoch, .. }
        | Msg::Proposal { epoch, .. }
        | Msg::NewLeader { epoch, .. }
        | Msg::UpToDate { epoch, .. }
        | Msg::Commit { epoch, .. }
        | Msg::CommitOnceDurable { epoch, .. }
        | Msg::Ping { epoch, .. } => Some(*epoch),
        _ => None,
    }
}

/// The last zxid two histories share, from their per-epoch last zxids: an epoch's txns on
/// every server are a prefix of that epoch's leader sequence, so equal ends mean equal
/// txns; the first epoch where they differ (or one side lacks) ends the common prefix.
/// Epochs below what either side lists are unknown: the answer is then 0 (send a snapshot).
pub fn common_prefix(leader_ends: &BTreeMap<u32, i64>, learner_ends: &[i64]) -> i64 {
    let learner: BTreeMap<u32, i64> = learner_ends.iter().map(|&z| (epoch_of(z), z)).collect();
    let mut epochs: Vec<u32> = leader_ends.keys().chain(learner.keys()).copied().collect();
    epochs.sort_unstable();
    epochs.dedup();
    let mut common = 0;
    for e in epochs {
        match (leader_ends.get(&e), learner.get(&e)) {
            (Some(&a), Some(&b)) if a == b => common = a,
            (Some(&a), Some(&b)) => return a.min(b),
            _ => return common,
        }
    }
    common
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(list: &[i64]) -> BTreeMap<u32, i64> {
        list.iter().map(|&z| (epoch_of(z), z)).collect()
    }

    #[test]
    fn common_prefix_follows_epoch_ends() {
        let z = make_zxid;
        // Same history.
        assert_eq!(common_prefix(&ends(&[z(1, 5), z(2, 3)]), &[z(1, 5), z(2, 3)]), z(2, 3));
        // Learner behind within an epoch.
        assert_eq!(common_prefix(&ends(&[z(1, 5), z(2, 3)]), &[z(1, 5), z(2, 1)]), z(2, 1));
        // Learner holds a deposed leader's epoch 2 that the leader never saw.
        assert_eq!(common_prefix(&ends(&[z(1, 7), z(3, 2)]), &[z(1, 5), z(2, 4)]), z(1, 5));
        assert_eq!(common_prefix(&ends(&[z(1, 5), z(3, 2)]), &[z(1, 5), z(2, 4)]), z(1, 5));
        // Empty learner.
        assert_eq!(common_prefix(&ends(&[z(1, 5)]), &[]), 0);
        // Learner only knows a later epoch (its snapshot hides the earlier ones).
        assert_eq!(common_prefix(&ends(&[z(1, 5), z(2, 3)]), &[z(2, 3)]), 0);
    }

    fn three(id: ServerId) -> Peer {
        Peer::new(PeerConfig::new(id, vec![1, 2, 3], vec![]), Recovered::default(), 0)
    }

    /// Delivers every Send among `peers` until quiet; returns the other actions per peer.
    fn run(peers: &mut [Peer], mut queue: Vec<(ServerId, Action)>, now: i64) -> Vec<(ServerId, Action)> {
        let mut rest = Vec::new();
        let mut steps = 0;
        while let Some((from, action)) = (!queue.is_empty()).then(|| queue.remove(0)) {
            steps += 1;
            assert!(steps < 10_000, "no quiescence");
            match action {
                Action::Send { to, msg } => {
                    let peer = &mut peers[(to - 1) as usize];
                    let mut out = Vec::new();
                    peer.step(now, Event::Message { from, msg }, &mut out);
                    queue.extend(out.into_iter().map(|a| (to, a)));
                }
                other => rest.push((from, other)),
            }
        }
        rest
    }

    /// Three fresh servers started at `now`, every message delivered.
    fn three_started_at(now: i64) -> Vec<Peer> {
        start_all((1..=3).map(three).collect(), now)
    }

    /// Starts `peers` at `now` and delivers every message.
    fn start_all(mut peers: Vec<Peer>, now: i64) -> Vec<Peer> {
        let mut queue = Vec::new();
        for p in peers.iter_mut() {
            let mut out = Vec::new();
            p.start(&mut out);
            let id = p.config().my_id;
            queue.extend(out.into_iter().map(|a| (id, a)));
        }
        run(&mut peers, queue, now);
        peers
    }

    /// Server 3 of three, leading an epoch picked with server 1 alone (server 2 unheard),
    /// not yet established (server 1 has not answered LEADERINFO); the time it got there.
    fn leader_of_an_unestablished_epoch() -> (Peer, i64) {
        let mut leader = three(3);
        let mut out = Vec::new();
        leader.start(&mut out);
        leader.step(1, Event::LinkDown { peer: 2 }, &mut out);
        let vote = Vote { leader: 3, zxid: 0, epoch: 0 };
        let notification = Msg::Notification {
            round: 1,
            state: ServerState::Looking,
            vote,
            config: CarriedConfig::Version(0),
        };
        leader.step(2, Event::Message { from: 1, msg: notification }, &mut out);
        assert_eq!(leader.role().state, ServerState::Leading, "1 and 3 agree, 2 is unreachable");
        let info = Msg::FollowerInfo { accepted_epoch: 0, observer: false };
        leader.step(3, Event::Message { from: 1, msg: info }, &mut out);
        assert_eq!(leader.role().epoch, 1, "a quorum of accepted epochs picks epoch 1");
        assert!(!leader.role().serving);
        (leader, 3)
    }

    #[test]
    fn a_leader_whose_epoch_lost_its_quorum_elects_again_within_the_peer_timeout() {
        let (mut leader, at) = leader_of_an_unestablished_epoch();
        let timeout = leader.config().peer_timeout_ms;
        assert!(2 * timeout < leader.config().sync_timeout_ms, "the test must tell the two apart");
        let mut out = Vec::new();
        // Server 1 falls silent (it went to another leader, or a partition cut it off).
        for now in (at..=at + 2 * timeout).step_by(10) {
            leader.step(now, Event::Tick, &mut out);
        }
        assert_eq!(
            leader.role().state,
            ServerState::Looking,
            "an epoch that cannot gather a quorum is given up within the peer timeout, not the \
             sync timeout"
        );
    }

    #[test]
    fn a_leader_whose_learner_follows_another_leader_elects_again_at_once() {
        let (mut leader, at) = leader_of_an_unestablished_epoch();
        let mut out = Vec::new();
        let vote = Vote { leader: 2, zxid: 0, epoch: 1 };
        let notification = Msg::Notification {
            round: 2,
            state: ServerState::Following,
            vote,
            config: CarriedConfig::Version(0),
        };
        leader.step(at + 1, Event::Message { from: 1, msg: notification }, &mut out);
        assert_eq!(leader.role().state, ServerState::Looking);
    }

    #[test]
    fn a_follower_told_to_commit_once_durable_commits_when_its_log_reports_without_a_commit() {
        let mut peers = three_started_at(1);
        let zxid = peers[2].next_zxid().expect("an established leader");
        let txn = Arc::new(crate::txn::encode(&crate::txn::Txn {
            session_id: 7,
            cxid: 1,
            zxid,
            time_ms: 5,
            body: crate::txn::TxnBody::Op(crate::txn::TxnOp::Delete { path: "/a".into() }),
        }));
        let sends = |out: Vec<Action>| -> Vec<(ServerId, Msg)> {
            out.into_iter()
                .filter_map(|a| match a {
                    Action::Send { to, msg } => Some((to, msg)),
                    _ => None,
                })
                .collect()
        };
        let mut out = Vec::new();
        peers[2].step(2, Event::Proposed { zxid, txn }, &mut out);
        for (to, msg) in sends(std::mem::take(&mut out)) {
            let mut appended = Vec::new();
            peers[(to - 1) as usize].step(2, Event::Message { from: 3, msg }, &mut appended);
            assert!(matches!(appended[..], [Action::Append { .. }]), "{appended:?}");
        }
        // The leader's own log is durable first: both followers may commit once durable.
        peers[2].step(3, Event::Durable { zxid }, &mut out);
        let told = sends(std::mem::take(&mut out));
        assert_eq!(
            told,
            [1, 2].map(|to| (to, Msg::CommitOnceDurable { epoch: 1, zxid })).to_vec(),
            "no quorum yet, so no commit"
        );
        let mut follower_out = Vec::new();
        peers[0].step(3, Event::Message { from: 3, msg: told[0].1.clone() }, &mut follower_out);
        assert!(follower_out.is_empty(), "not durable itself yet: {follower_out:?}");
        peers[0].step(4, Event::Durable { zxid }, &mut follower_out);
        let ack = Msg::Ack { epoch: 1, zxid };
        assert!(matches!(&follower_out[0], Action::Send { to: 3, msg } if *msg == ack));
        assert!(matches!(follower_out[1], Action::Apply { zxid: z, .. } if z == zxid));
        assert!(matches!(follower_out[2], Action::Committed { zxid: z } if z == zxid));
        assert_eq!(peers[0].committed(), zxid, "committed before the leader heard its ack");
        // The ack commits on the leader; neither follower needs a COMMIT any more.
        peers[2].step(5, Event::Message { from: 1, msg: ack }, &mut out);
        assert!(sends(out.clone()).is_empty(), "{out:?}");
        assert!(matches!(out[..], [Action::Committed { zxid: z }] if z == zxid));
    }

    #[test]
    fn three_fresh_servers_elect_the_highest_id_and_establish() {
        let peers = three_started_at(1);
        assert_eq!(peers[2].role().state, ServerState::Leading);
        assert!(peers[2].role().serving, "empty logs are durable: established at once");
        assert_eq!(peers[0].role().leader, Some(3));
        assert_eq!(peers[2].next_zxid(), Some(make_zxid(1, 1)));
    }

    #[test]
    fn serving_peers_name_their_next_timer_and_ticks_before_it_change_nothing() {
        let mut peers = three_started_at(1);
        let (heartbeat, timeout) = (peers[0].config().heartbeat_ms, peers[0].config().peer_timeout_ms);
        let is_ping = |a: &Action| matches!(a, Action::Send { msg: Msg::Ping { .. }, .. });

        // The first ping goes out with the first tick after establishing.
        let mut out = Vec::new();
        peers[2].step(1, Event::Tick, &mut out);
        let leader_at = peers[2].next_timer_at().expect("an established leader has timers");
        assert_eq!(leader_at, 1 + heartbeat, "the next ping is due a heartbeat later");
        let mut out = Vec::new();
        peers[2].step(leader_at - 1, Event::Tick, &mut out);
        assert!(!out.iter().any(is_ping), "no ping before its time: {out:?}");
        peers[2].step(leader_at, Event::Tick, &mut out);
        assert!(out.iter().any(is_ping), "the ping goes out at its time");
        assert_eq!(peers[2].next_timer_at(), Some(leader_at + heartbeat));

        let follower_at = peers[0].next_timer_at().expect("a synced follower has a timer");
        assert_eq!(follower_at, 1 + timeout + 1, "the leader was last heard at 1");
        let mut out = Vec::new();
        peers[0].step(follower_at - 1, Event::Tick, &mut out);
        assert_eq!(peers[0].role().state, ServerState::Following);
        peers[0].step(follower_at, Event::Tick, &mut out);
        assert_eq!(peers[0].role().state, ServerState::Looking, "a silent leader is lost at the deadline");
        assert_eq!(peers[0].next_timer_at(), None, "electing: tick often");
    }

    /// The configuration of voters `ids` (at 10.0.0.<id>) with version `version` (hex).
    fn config(ids: &[ServerId], version: &str) -> Membership {
        let lines: Vec<String> =
            ids.iter().map(|id| format!("server.{id}=10.0.0.{id}:2888:3888;2181")).collect();
        Membership::parse(&format!("{}\nversion={version}", lines.join("\n"))).unwrap()
    }

    /// Servers 1 and 3 of a configuration (version 0x500000001) that re-added server 3 while
    /// it was cut off; server 3 still holds the one that removed it (0x300000001), server 2
    /// is down. Every message between 1 and 3 is delivered, ticking for 1.5 s; returns them
    /// and 3's actions.
    fn re_added_voter_and_a_peer(now: i64) -> (Vec<Peer>, Vec<Action>) {
        let peer = |id: ServerId, membership: &Membership| {
            let mut cfg = PeerConfig::new(id, vec![], vec![]);
            cfg.adopt(membership);
            Peer::new(cfg, Recovered::default(), 0)
        };
        let mut peers =
            vec![peer(1, &config(&[1, 2, 3], "500000001")), peer(3, &config(&[1, 2], "300000001"))];
        let index = |id: ServerId| if id == 1 { 0 } else { 1 };
        let mut of_3 = Vec::new();
        let mut pending: Vec<(ServerId, Action)> = Vec::new();
        for p in peers.iter_mut() {
            let mut out = Vec::new();
            p.start(&mut out);
            p.step(now, Event::LinkDown { peer: 2 }, &mut out);
            pending.extend(out.into_iter().map(|a| (p.config().my_id, a)));
        }
        // Server 1 may first follow server 3 while 3 does not vote yet, and look again when no
        // epoch comes: a couple of peer timeouts.
        for at in (now..now + 1_500).step_by(10) {
            if at > now {
                for p in peers.iter_mut() {
                    let mut out = Vec::new();
                    p.step(at, Event::Tick, &mut out);
                    pending.extend(out.into_iter().map(|a| (p.config().my_id, a)));
                }
            }
            while !pending.is_empty() {
                for (from, action) in std::mem::take(&mut pending) {
                    match action {
                        Action::Send { to, msg } if to != 2 => {
                            let mut out = Vec::new();
                            peers[index(to)].step(at, Event::Message { from, msg }, &mut out);
                            pending.extend(out.into_iter().map(|a| (to, a)));
                        }
                        Action::Send { .. } => {}
                        other if from == 3 => of_3.push(other),
                        _ => {}
                    }
                }
            }
        }
        (peers, of_3)
    }

    #[test]
    fn a_looking_voter_takes_up_a_newer_configuration_from_a_notification_and_votes_again() {
        let (peers, of_3) = re_added_voter_and_a_peer(1);
        let learned = of_3.iter().find_map(|a| match a {
            Action::ConfigChanged(m) => Some(m.clone()),
            _ => None,
        });
        let learned = learned.expect("server 3 takes up the newer configuration");
        assert_eq!((learned.version, learned.voters()), (0x5_0000_0001, vec![1, 2, 3]));
        assert_eq!(peers[1].config().voters, vec![1, 2, 3]);
        assert_eq!(peers[1].config().config_version, 0x5_0000_0001);
        // Fresh logs: the highest id wins; 1 and 3 are a quorum of 1, 2, 3.
        assert_eq!(peers[1].role().state, ServerState::Leading, "server 3 votes, and leads");
        assert!(peers[1].role().serving);
        assert_eq!(peers[0].role().leader, Some(3));
    }

    /// Server 3 restarted with a reconfig in its log (0x100000001: voters 3, 4, 5) that was
    /// never committed; its files give the committed configuration 0x100000000 (voters 1, 2,
    /// 3). It gossips only the committed one (as Apache, whose notifications carry the
    /// committed quorum verifier), and though its log makes it the leader of 1 and 2, it does
    /// not establish: the reconfig would commit with the epoch's history, and no quorum of its
    /// voters (4 and 5 are not there) holds it.
    #[test]
    fn a_logged_reconfig_never_committed_is_not_gossiped_and_a_leader_holding_it_needs_its_voters() {
        let committed = config(&[1, 2, 3], "100000000");
        let proposed = config(&[3, 4, 5], "100000001");
        let reconfig = crate::txn::Txn {
            session_id: 0,
            cxid: 0,
            zxid: 0x1_0000_0001,
            time_ms: 0,
            body: crate::txn::TxnBody::Op(crate::txn::TxnOp::SetData {
                path: super::super::membership::CONFIG_NODE.into(),
                data: proposed.render().into_bytes(),
                version: -1,
            }),
        };
        let peer = |id: ServerId, history: Vec<(i64, SharedTxn)>| {
            let mut cfg = PeerConfig::new(id, vec![], vec![]);
            cfg.adopt(&committed);
            let recovered = Recovered {
                accepted_epoch: 1,
                current_epoch: 1,
                epoch_ends: history.iter().map(|(z, _)| *z).collect(),
                history,
                ..Recovered::default()
            };
            Peer::new(cfg, recovered, 0)
        };
        let mut peers = [
            peer(1, vec![]),
            peer(2, vec![]),
            peer(3, vec![(0x1_0000_0001, Arc::new(crate::txn::encode(&reconfig)))]),
        ];
        assert!(peers[2].reconfig_pending(), "the logged reconfig is the last seen one");
        assert_eq!(peers[2].config().config_version, 0x1_0000_0000);
        let mut queue = Vec::new();
        for p in peers.iter_mut() {
            let mut out = Vec::new();
            p.start(&mut out);
            queue.extend(out.into_iter().map(|a| (p.config().my_id, a)));
        }
        for at in (0..1_000).step_by(10) {
            if at > 0 {
                for p in peers.iter_mut() {
                    let mut out = Vec::new();
                    p.step(at, Event::Tick, &mut out);
                    queue.extend(out.into_iter().map(|a| (p.config().my_id, a)));
                }
            }
            while !queue.is_empty() {
                for (from, action) in std::mem::take(&mut queue) {
                    let (to, msg) = match action {
                        Action::Send { to, msg } => (to, msg),
                        // The log makes what a follower appends durable at once.
                        Action::Append { zxid, .. } => {
                            let mut out = Vec::new();
                            peers[(from - 1) as usize].step(at, Event::Durable { zxid }, &mut out);
                            queue.extend(out.into_iter().map(|a| (from, a)));
                            continue;
                        }
                        _ => continue,
                    };
                    if let Msg::Notification { config, .. } = &msg {
                        assert_eq!(
                            config.version(),
                            0x1_0000_0000,
                            "server {from} gossips only what is committed"
                        );
                    }
                    if to > 3 {
                        continue;
                    }
                    let mut out = Vec::new();
                    peers[(to - 1) as usize].step(at, Event::Message { from, msg }, &mut out);
                    queue.extend(out.into_iter().map(|a| (to, a)));
                }
            }
            assert!(!peers[2].role().serving, "established at {at} ms without a quorum of 3, 4, 5");
        }
        assert_eq!(peers[2].role().state, ServerState::Leading, "its log is the longest");
        assert_eq!(peers[2].config().voters, vec![1, 2, 3]);
        assert!(peers.iter().all(|p| p.config().config_version == 0x1_0000_0000));
    }

    #[test]
    fn a_voter_that_never_leads_passes_on_the_best_other_vote() {
        // Three fresh servers elect 3 (the highest id); with 3 never leading they elect 2.
        let never_leading_3 = || {
            let mut cfg = PeerConfig::new(3, vec![1, 2, 3], vec![]);
            cfg.never_leads = true;
            vec![three(1), three(2), Peer::new(cfg, Recovered::default(), 0)]
        };
        let peers = start_all(never_leading_3(), 1);
        assert_eq!(peers[1].role().state, ServerState::Leading);
        assert_eq!(peers[2].role().leader, Some(2), "it follows the best other voter");

        // Alone with server 1 (server 2 silent), its vote for server 1 makes the quorum (after
        // the finalize wait: server 2 counts as reachable until the peer timeout).
        let mut peers = never_leading_3();
        let not_to_2 = |(_, a): &(ServerId, Action)| !matches!(a, Action::Send { to: 2, .. });
        let deliver = |peers: &mut [Peer], event: fn() -> Option<Event>, now: i64| {
            let mut pending = Vec::new();
            for p in [0, 2] {
                let mut out = Vec::new();
                match event() {
                    Some(event) => peers[p].step(now, event, &mut out),
                    None => peers[p].start(&mut out),
                }
                pending.extend(out.into_iter().map(|a| (p as ServerId + 1, a)).filter(not_to_2));
            }
            while !pending.is_empty() {
                let mut next = Vec::new();
                for (from, action) in pending.drain(..) {
                    if let Action::Send { to, msg } = action {
                        let mut out = Vec::new();
                        peers[(to - 1) as usize].step(now, Event::Message { from, msg }, &mut out);
                        next.extend(out.into_iter().map(|a| (to, a)).filter(not_to_2));
                    }
                }
                pending = next;
            }
        };
        deliver(&mut peers, || None, 1);
        let finalized = 1 + peers[0].config().finalize_wait_ms;
        deliver(&mut peers, || Some(Event::Tick), finalized);
        assert_eq!(peers[0].role().state, ServerState::Leading, "server 1 and the non-leader agree");
        assert_eq!(peers[2].role().leader, Some(1));
    }
}
