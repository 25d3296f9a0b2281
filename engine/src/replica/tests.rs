//! Unit tests of [`Node`]: each ordering rule of the hold gate and the learner relay, with the
//! exact effects of every step (the way openraft tests its engine). Ensembles here are real
//! nodes wired in memory: messages arrive instantly, the log is durable as soon as asked,
//! unless a test steps a node by hand to put something in between.

use std::collections::VecDeque;

use super::gate::Limits;
use super::*;
use crate::proto::{
    ConnectRequest, ConnectResponse, GetDataResponse, Jute, JuteReader, PathWatchRequest, ReplyHeader,
    RequestHeader, SetDataRequest,
};
use crate::request::{framed, Jute2, ProcessorConfig};
use crate::zab::{PeerConfig, Recovered};

const NOW: i64 = 1_000;
/// A client of network core 0, and one of core 1.
const C1: ClientConn = ClientConn { core: 0, local: 1 };
const C2: ClientConn = ClientConn { core: 1, local: 1 };
const LEADER: ServerId = 2;
const FOLLOWER: ServerId = 1;

fn processor(id: ServerId) -> Processor {
    let cfg = ProcessorConfig { server_id: id as i64, ..Default::default() };
    Processor::new(cfg, NOW, b"7")
}

/// A request frame (payload after the length prefix).
fn request(xid: i32, op: OpCode, body: Option<&dyn Jute2>) -> Vec<u8> {
    let frame = framed(|w| {
        RequestHeader { xid, op: op as i32 }.encode(w);
        if let Some(body) = body {
            body.encode_into(w);
        }
    });
    frame[4..].to_vec()
}

fn set_data(xid: i32, path: &str, data: &[u8]) -> Vec<u8> {
    let body = SetDataRequest { path: path.into(), data: Some(data.to_vec()), version: -1 };
    request(xid, OpCode::SetData, Some(&body))
}

fn get_data(xid: i32, path: &str) -> Vec<u8> {
    request(xid, OpCode::GetData, Some(&PathWatchRequest { path: path.into(), watch: false }))
}

fn create(xid: i32, path: &str) -> Vec<u8> {
    let acl = vec![crate::proto::Acl {
        perms: 31,
        id: crate::proto::Id { scheme: "world".into(), id: "anyone".into() },
    }];
    let body = crate::proto::CreateRequest { path: path.into(), data: Some(b"old".to_vec()), acl, flags: 0 };
    request(xid, OpCode::Create, Some(&body))
}

fn connect(conn: ClientConn) -> Input {
    let request = ConnectRequest { timeout_ms: 30_000, passwd: vec![0; 16], ..Default::default() };
    Input::Connect {
        conn,
        client_ip: "10.0.0.1".into(),
        remote: "10.0.0.1:5000".into(),
        authenticated: Vec::new(),
        request,
    }
}

/// A reply frame's header (frames keep their length prefix).
fn header(frame: &[u8]) -> ReplyHeader {
    ReplyHeader::decode(&mut JuteReader::new(&frame[4..])).expect("reply header")
}

fn get_data_reply(frame: &[u8]) -> Vec<u8> {
    let mut r = JuteReader::new(&frame[4..]);
    ReplyHeader::decode(&mut r).expect("header");
    GetDataResponse::decode(&mut r).expect("body").data.expect("data, not null")
}

/// Only the effects that reach clients, per node, in order.
fn deliveries(effects: &[Effect]) -> Vec<(u32, Delivery)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver { core, batch } => {
                Some(batch.iter().map(|d| (*core, d.clone())).collect::<Vec<_>>())
            }
            _ => None,
        })
        .flatten()
        .collect()
}

fn sent(conn: ClientConn, d: &(u32, Delivery)) -> Vec<u8> {
    match d {
        (core, Delivery::Send { conn: c, frame }) if *c == conn && *core == conn.core => frame.clone(),
        other => panic!("expected a frame for {conn}, got {other:?}"),
    }
}

/// Voters 1..=n wired in memory.
struct Cluster {
    nodes: Vec<Node>,
    now: i64,
}

impl Cluster {
    /// Voters 1 and 2, elected (2 leads) and serving.
    fn two() -> Cluster {
        Cluster::two_with(|_| {})
    }

    /// As [`Cluster::two`], with `tune` applied to each peer's configuration.
    fn two_with(tune: impl Fn(&mut PeerConfig)) -> Cluster {
        let voters: Vec<ServerId> = vec![1, 2];
        let nodes = voters
            .iter()
            .map(|&id| {
                let mut cfg = PeerConfig::new(id, voters.clone(), vec![]);
                tune(&mut cfg);
                let peer = Peer::new(cfg, Recovered::default(), NOW);
                Node::ensemble(processor(id), peer, 0, Limits::default())
            })
            .collect();
        let c = Cluster::started(nodes);
        assert!(c.nodes[(LEADER - 1) as usize].role().state == ServerState::Leading);
        assert!(c.nodes[(FOLLOWER - 1) as usize].role().leader == Some(LEADER));
        c
    }

    /// Nodes 1..=n started and ticked until every one serves.
    fn started(nodes: Vec<Node>) -> Cluster {
        let ids: Vec<ServerId> = (1..=nodes.len() as ServerId).collect();
        let mut c = Cluster { nodes, now: NOW };
        let mut started = Vec::new();
        for &id in &ids {
            let mut out = Vec::new();
            c.node(id).start(NOW, &mut out);
            started.push((id, out));
        }
        for (id, out) in started {
            c.settle(id, out);
        }
        // Elections wait a little for late votes: let time pass until both serve.
        for _ in 0..1_000 {
            if c.nodes.iter().all(|n| n.role().serving) {
                break;
            }
            c.now += 5;
            for &id in &ids {
                let fx = c.step(id, Input::PeerTick);
                c.settle(id, fx);
            }
        }
        assert!(c.nodes.iter().all(|n| n.role().serving), "every node serves");
        c
    }

    fn node(&mut self, id: ServerId) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    fn step(&mut self, id: ServerId, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        let now = self.now;
        self.node(id).step(now, input, &mut out);
        out
    }

    /// Carries out `effects` of node `id` and everything they cause (messages delivered at
    /// once, appends durable at once); returns what reached clients, per node, in order.
    fn settle(&mut self, id: ServerId, effects: Vec<Effect>) -> Vec<(ServerId, u32, Delivery)> {
        self.settle_dropping(id, effects, |_, _| false)
    }

    /// As [`Cluster::settle`], losing the peer messages `lost(to, msg)` picks.
    fn settle_dropping(
        &mut self,
        id: ServerId,
        effects: Vec<Effect>,
        lost: impl Fn(ServerId, &Msg) -> bool,
    ) -> Vec<(ServerId, u32, Delivery)> {
        let mut queue: VecDeque<(ServerId, Effect)> = effects.into_iter().map(|e| (id, e)).collect();
        let mut reached = Vec::new();
        let mut steps = 0;
        while let Some((from, effect)) = queue.pop_front() {
            steps += 1;
            assert!(steps < 10_000, "no quiescence");
            let (at, input) = match effect {
                Effect::PeerSend { to, msg } if lost(to, &msg) => continue,
                Effect::PeerSend { to, msg } => (to, Input::PeerMessage { from, msg }),
                Effect::RelaySend { to, relay } => (to, Input::RelayMessage { from, relay }),
                Effect::Append { zxid, .. } => (from, Input::Durable { zxid }),
                Effect::Deliver { core, batch } => {
                    reached.extend(batch.into_iter().map(|d| (from, core, d)));
                    continue;
                }
                _ => continue,
            };
            queue.extend(self.step(at, input).into_iter().map(|e| (at, e)));
        }
        reached
    }

    /// Opens a session for `conn` on `id` and returns its id.
    fn session(&mut self, id: ServerId, conn: ClientConn) -> i64 {
        let fx = self.step(id, connect(conn));
        let reached = self.settle(id, fx);
        let [(at, _, Delivery::Send { conn: c, frame })] = &reached[..] else {
            panic!("expected one connect response, got {reached:?}")
        };
        assert_eq!((*at, *c), (id, conn));
        let resp = ConnectResponse::from_bytes(&frame[4..]).expect("connect response");
        assert_ne!(resp.session_id, 0);
        resp.session_id
    }

    /// Runs a request on `id` to completion; returns what reached clients.
    fn run(&mut self, id: ServerId, conn: ClientConn, frame: Vec<u8>) -> Vec<(ServerId, u32, Delivery)> {
        let fx = self.step(id, Input::Request { conn, frame });
        self.settle(id, fx)
    }
}

#[test]
fn standalone_output_is_held_until_its_txn_is_durable() {
    let mut node = Node::standalone(processor(0), 0, Limits::default());
    let mut out = Vec::new();
    node.step(NOW, connect(C1), &mut out);
    // The session's txn goes to the log; the connect response waits for it.
    let [Effect::Append { zxid: 1, .. }] = &out[..] else { panic!("{out:?}") };
    assert_eq!(node.held(), 1);
    out.clear();
    node.step(NOW, Input::Durable { zxid: 1 }, &mut out);
    let reached = deliveries(&out);
    assert_eq!(reached.len(), 1, "{out:?}");
    let resp = ConnectResponse::from_bytes(&sent(C1, &reached[0])[4..]).expect("connect response");
    assert_ne!(resp.session_id, 0);
    assert_eq!(node.held(), 0);
}

#[test]
fn standalone_read_waits_behind_a_pending_write_on_its_core_and_keeps_order() {
    let mut node = Node::standalone(processor(0), 0, Limits::default());
    let mut out = Vec::new();
    node.step(NOW, connect(C1), &mut out);
    node.step(NOW, Input::Durable { zxid: 1 }, &mut out);
    out.clear();
    node.step(NOW, Input::Request { conn: C1, frame: create(1, "/k") }, &mut out);
    let [Effect::Append { zxid: 2, .. }] = &out[..] else { panic!("{out:?}") };
    out.clear();
    // A read behind it, on the same connection: it saw the write, so it waits for it.
    node.step(NOW, Input::Request { conn: C1, frame: get_data(2, "/k") }, &mut out);
    assert!(out.is_empty(), "{out:?}");
    node.step(NOW, Input::Durable { zxid: 2 }, &mut out);
    // The commit point is reported before the outputs it releases.
    let [Effect::Committed { zxid: 2 }, Effect::Deliver { core: 0, batch }] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(batch.len(), 2);
    assert_eq!(header(&sent(C1, &(0, batch[0].clone()))).xid, 1);
    let read = sent(C1, &(0, batch[1].clone()));
    assert_eq!((header(&read).xid, header(&read).zxid), (2, 2));
    assert_eq!(get_data_reply(&read), b"old");
}

#[test]
fn standalone_four_letter_answer_goes_out_then_closes() {
    let mut node = Node::standalone(processor(0), 0, Limits::default());
    let mut out = Vec::new();
    node.step(NOW, Input::AnswerAndClose { conn: C2, bytes: Some(b"imok".to_vec()) }, &mut out);
    assert_eq!(
        deliveries(&out),
        vec![(1, Delivery::Send { conn: C2, frame: b"imok".to_vec() }), (1, Delivery::Close { conn: C2 })]
    );
}

#[test]
fn room_runs_out_while_txns_await_durability_and_comes_back() {
    let limits = Limits { in_flight_max: 1, held_max: 100 };
    let mut node = Node::standalone(processor(0), 0, limits);
    let mut out = Vec::new();
    assert!(node.has_room());
    node.step(NOW, connect(C1), &mut out);
    assert!(!node.has_room(), "one txn in flight is the bound");
    node.step(NOW, Input::Durable { zxid: 1 }, &mut out);
    assert!(node.has_room());
}

#[test]
fn learner_relays_session_creation_and_attaches_the_connection_on_the_reply() {
    let mut c = Cluster::two();
    let fx = c.step(FOLLOWER, connect(C1));
    let [Effect::RelaySend { to: LEADER, relay: Relay::CreateSession { token: C1, .. } }] = &fx[..] else {
        panic!("{fx:?}")
    };
    let reached = c.settle(FOLLOWER, fx);
    assert_eq!(reached.len(), 1, "{reached:?}");
    // The learner's processor knows the session now: its next write is forwarded with it.
    let session = c.node(FOLLOWER).processor().session_of(ConnId::Client(C1));
    assert_ne!(session, 0);
    let fx = c.step(FOLLOWER, Input::Request { conn: C1, frame: create(1, "/k") });
    let [Effect::RelaySend { to: LEADER, relay: Relay::Forward { token: C1, session_id, .. } }] = &fx[..]
    else {
        panic!("{fx:?}")
    };
    assert_eq!(*session_id, session);
}

#[test]
fn learner_asks_the_leader_about_a_session_it_has_not_applied_yet() {
    let mut c = Cluster::two();
    // A session made on the leader whose commit has not reached the follower yet.
    let fx = c.step(LEADER, connect(C1));
    let reached = c.settle_dropping(LEADER, fx, |to, msg| {
        to == FOLLOWER && matches!(msg, Msg::Commit { .. } | Msg::CommitOnceDurable { .. })
    });
    let [(LEADER, _, Delivery::Send { frame, .. })] = &reached[..] else { panic!("{reached:?}") };
    let made = ConnectResponse::from_bytes(&frame[4..]).expect("connect response");
    assert!(c.node(FOLLOWER).processor().sessions.get(made.session_id).is_none());

    // The client brings it to the follower, which asks the leader instead of refusing it.
    let request = ConnectRequest {
        timeout_ms: 30_000,
        session_id: made.session_id,
        passwd: made.passwd.clone(),
        ..Default::default()
    };
    let bring = Input::Connect {
        conn: C2,
        client_ip: "10.0.0.2".into(),
        remote: "10.0.0.2:5000".into(),
        authenticated: Vec::new(),
        request,
    };
    let fx = c.step(FOLLOWER, bring);
    let [Effect::RelaySend { to: LEADER, relay: Relay::CreateSession { token: C2, .. } }] = &fx[..] else {
        panic!("{fx:?}")
    };
    let mut reached = c.settle(FOLLOWER, fx);
    // The session moved: the leader closes its old connection.
    assert_eq!(reached, vec![(LEADER, 0, Delivery::Close { conn: C1 })]);
    reached.clear();
    // The answer waits for the session's commit, which the next heartbeat carries.
    for _ in 0..1_000 {
        if !reached.is_empty() {
            break;
        }
        c.now += 5;
        let fx = c.step(LEADER, Input::PeerTick);
        reached.extend(c.settle(LEADER, fx));
    }
    let [(FOLLOWER, _, Delivery::Send { conn: C2, frame })] = &reached[..] else { panic!("{reached:?}") };
    let resumed = ConnectResponse::from_bytes(&frame[4..]).expect("connect response");
    assert_eq!((resumed.session_id, resumed.passwd), (made.session_id, made.passwd));
    assert_eq!(c.node(FOLLOWER).processor().session_of(ConnId::Client(C2)), made.session_id);
}

#[test]
fn learner_read_waits_behind_a_pending_relayed_write_even_when_the_reply_beats_the_commit() {
    let mut c = Cluster::two();
    c.session(FOLLOWER, C1);
    let reached = c.run(FOLLOWER, C1, create(1, "/k"));
    assert_eq!(reached.len(), 1);

    // The write goes to the leader; a read behind it on the same connection waits.
    let write = set_data(2, "/k", b"new");
    let fx = c.step(FOLLOWER, Input::Request { conn: C1, frame: write.clone() });
    let [Effect::RelaySend { to: LEADER, relay: forward @ Relay::Forward { token: C1, frame, .. } }] =
        &fx[..]
    else {
        panic!("{fx:?}")
    };
    assert_eq!(frame, &write);
    let forward = forward.clone();
    assert!(c.step(FOLLOWER, Input::Request { conn: C1, frame: get_data(3, "/k") }).is_empty());

    // The leader runs it on a stand-in: log, the reply back to the learner, the proposal.
    let fx = c.step(LEADER, Input::RelayMessage { from: FOLLOWER, relay: forward });
    let [Effect::Append { zxid, .. }, Effect::RelaySend { to: FOLLOWER, relay: reply @ Relay::Reply { token: C1, zxid: reply_zxid, .. } }, Effect::PeerSend { to: FOLLOWER, msg: Msg::Proposal { zxid: proposed, .. } }] =
        &fx[..]
    else {
        panic!("{fx:?}")
    };
    assert_eq!((zxid, reply_zxid), (proposed, proposed));
    let zxid = *zxid;
    let reply = reply.clone();
    let rest: Vec<Effect> = fx.into_iter().filter(|e| !matches!(e, Effect::RelaySend { .. })).collect();

    // The reply arrives before the learner has the txn: nothing is released.
    assert!(c.step(FOLLOWER, Input::RelayMessage { from: LEADER, relay: reply }).is_empty());
    assert!(c.node(FOLLOWER).processor().last_zxid() < zxid);

    // Proposal, acks, commit: the learner applies the txn, then releases the write's reply and
    // runs the read behind it, which sees the write.
    let reached = c.settle(LEADER, rest);
    assert_eq!(reached.len(), 2, "{reached:?}");
    assert!(reached.iter().all(|(at, core, _)| (*at, *core) == (FOLLOWER, 0)));
    let write_reply = sent(C1, &(0, reached[0].2.clone()));
    assert_eq!((header(&write_reply).xid, header(&write_reply).zxid), (2, zxid));
    let read_reply = sent(C1, &(0, reached[1].2.clone()));
    assert_eq!(header(&read_reply).xid, 3);
    assert_eq!(get_data_reply(&read_reply), b"new");
}

#[test]
fn learner_read_with_nothing_pending_runs_at_once_on_its_committed_tree() {
    let mut c = Cluster::two();
    c.session(FOLLOWER, C1);
    c.run(FOLLOWER, C1, create(1, "/k"));
    let fx = c.step(FOLLOWER, Input::Request { conn: C1, frame: get_data(2, "/k") });
    let reached = deliveries(&fx);
    assert_eq!(fx.len(), 1, "{fx:?}");
    assert_eq!(get_data_reply(&sent(C1, &reached[0])), b"old");
}

#[test]
fn leader_close_is_queued_behind_the_reply_it_follows() {
    let mut c = Cluster::two();
    c.session(FOLLOWER, C1);
    let fx = c.step(FOLLOWER, Input::Request { conn: C1, frame: request(5, OpCode::CloseSession, None) });
    let [Effect::RelaySend { to: LEADER, relay: forward }] = &fx[..] else { panic!("{fx:?}") };
    let fx = c.step(LEADER, Input::RelayMessage { from: FOLLOWER, relay: forward.clone() });
    // The leader answers the stand-in, then closes it: both go back to the learner.
    let relays: Vec<Relay> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::RelaySend { to: FOLLOWER, relay } => Some(relay.clone()),
            _ => None,
        })
        .collect();
    let [reply @ Relay::Reply { token: C1, .. }, close @ Relay::Close { token: C1 }] = &relays[..] else {
        panic!("{fx:?}")
    };
    let (reply, close) = (reply.clone(), close.clone());
    let rest: Vec<Effect> = fx.into_iter().filter(|e| !matches!(e, Effect::RelaySend { .. })).collect();
    // Both arrive before the txn: the close waits behind the reply, which waits for the txn.
    assert!(c.step(FOLLOWER, Input::RelayMessage { from: LEADER, relay: reply }).is_empty());
    assert!(c.step(FOLLOWER, Input::RelayMessage { from: LEADER, relay: close }).is_empty());
    let reached = c.settle(LEADER, rest);
    let on_follower: Vec<Delivery> =
        reached.into_iter().filter(|(at, _, _)| *at == FOLLOWER).map(|(_, _, d)| d).collect();
    // The reply, then one close (the learner's own apply of the closeSession closes the
    // connection too: it is not closed twice).
    let [Delivery::Send { conn: C1, frame }, Delivery::Close { conn: C1 }] = &on_follower[..] else {
        panic!("{on_follower:?}")
    };
    assert_eq!(header(frame).xid, 5);
    assert_eq!(c.node(FOLLOWER).processor().connections().count(), 0);
}

#[test]
fn leader_counts_a_learners_sync_as_pending_until_the_write_before_it_commits() {
    let mut c = Cluster::two();
    c.session(FOLLOWER, C1);
    let sync = |xid| request(xid, OpCode::Sync, Some(&crate::proto::PathRequest { path: "/".into() }));
    // Nothing outstanding: the sync's reply names a committed zxid.
    c.run(FOLLOWER, C1, sync(2));
    assert_eq!(c.node(LEADER).pending_syncs(), 0);
    // A relayed write the leader proposed, then a relayed sync: the sync waits for the write.
    let relayed = |c: &mut Cluster, frame: Vec<u8>| {
        let fx = c.step(FOLLOWER, Input::Request { conn: C1, frame });
        let [Effect::RelaySend { to: LEADER, relay }] = &fx[..] else { panic!("{fx:?}") };
        c.step(LEADER, Input::RelayMessage { from: FOLLOWER, relay: relay.clone() })
    };
    let write = relayed(&mut c, create(3, "/k"));
    let sync = relayed(&mut c, sync(4));
    assert_eq!(c.node(LEADER).pending_syncs(), 1);
    assert_eq!(c.node(FOLLOWER).pending_syncs(), 0, "only a leader counts them");
    // The write commits (the follower acks it): no sync waits any more.
    c.settle(LEADER, write.into_iter().chain(sync).collect());
    assert_eq!(c.node(LEADER).pending_syncs(), 0);
}

#[test]
fn leader_losing_its_quorum_drops_held_replies_and_closes_its_clients() {
    let mut c = Cluster::two();
    c.session(LEADER, C2);
    // A write on the leader: logged and proposed, its reply held for the commit.
    let fx = c.step(LEADER, Input::Request { conn: C2, frame: create(1, "/k") });
    let [Effect::Append { .. }, Effect::PeerSend { to: FOLLOWER, msg: Msg::Proposal { .. } }] = &fx[..]
    else {
        panic!("{fx:?}")
    };
    assert_eq!(c.node(LEADER).held(), 1);
    // The follower's link goes down before it acknowledged: the leader steps down, the held
    // reply is dropped (it may never be committed) and the client is closed.
    let fx = c.step(LEADER, Input::LinkDown { peer: FOLLOWER });
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::RoleChanged(v) if !v.serving && v.state == ServerState::Looking)),
        "{fx:?}"
    );
    assert_eq!(deliveries(&fx), vec![(1, Delivery::Close { conn: C2 })]);
    assert_eq!(c.node(LEADER).held(), 0);
    assert_eq!(c.node(LEADER).processor().connections().count(), 0);
}

#[test]
fn learner_losing_its_leader_drops_queued_replies_and_closes_its_clients() {
    let mut c = Cluster::two();
    c.session(FOLLOWER, C1);
    let fx = c.step(FOLLOWER, Input::Request { conn: C1, frame: create(1, "/k") });
    assert!(matches!(&fx[..], [Effect::RelaySend { relay: Relay::Forward { .. }, .. }]));
    assert!(c.step(FOLLOWER, Input::Request { conn: C1, frame: get_data(2, "/k") }).is_empty());
    let fx = c.step(FOLLOWER, Input::LinkDown { peer: LEADER });
    assert_eq!(deliveries(&fx), vec![(0, Delivery::Close { conn: C1 })]);
    // A late reply from the old leader finds no queue: nothing reaches the closed client.
    let late = Relay::Reply { token: C1, zxid: 0, frame: vec![0, 0, 0, 0] };
    assert!(deliveries(&c.step(FOLLOWER, Input::RelayMessage { from: LEADER, relay: late })).is_empty());
}

#[test]
fn leader_forgets_the_stand_ins_of_a_learner_whose_link_went_down() {
    let mut c = Cluster::two();
    c.session(FOLLOWER, C1);
    c.run(FOLLOWER, C1, create(1, "/k"));
    let stand_in = ConnId::StandIn { learner: FOLLOWER, client: C1 };
    assert!(c.node(LEADER).processor().connection(stand_in).is_some());
    c.step(LEADER, Input::LinkDown { peer: FOLLOWER });
    assert!(c.node(LEADER).processor().connection(stand_in).is_none());
}

#[test]
fn learner_touches_its_sessions_on_the_leader_at_each_tick() {
    let mut c = Cluster::two();
    let session = c.session(FOLLOWER, C1);
    c.step(FOLLOWER, Input::Request { conn: C1, frame: get_data(1, "/") });
    let fx = c.step(FOLLOWER, Input::Tick);
    let [Effect::RelaySend { to: LEADER, relay: Relay::Touch { sessions } }] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!(sessions, &vec![(session, 30_000)]);
    assert!(c.step(FOLLOWER, Input::Tick).is_empty(), "nothing used since");
}

#[test]
fn a_server_not_serving_refuses_clients() {
    let peer = Peer::new(PeerConfig::new(1, vec![1, 2, 3], vec![]), Recovered::default(), NOW);
    let mut node = Node::ensemble(processor(1), peer, 0, Limits::default());
    let mut out = Vec::new();
    node.start(NOW, &mut out);
    out.clear();
    node.step(NOW, connect(C1), &mut out);
    assert_eq!(deliveries(&out), vec![(0, Delivery::Close { conn: C1 })]);
}

fn logged(outputs: &[Output]) -> usize {
    outputs.iter().filter(|o| matches!(o, Output::Log { .. })).count()
}

#[test]
fn the_processor_assigns_no_zxid_past_its_limit_and_expiry_waits() {
    let mut p = processor(0);
    let req = ConnectRequest { timeout_ms: 4_000, passwd: vec![0; 16], ..Default::default() };
    for local in 1..=3 {
        assert_eq!(logged(&p.connect(ConnId::client(0, local), "10.0.0.1", "10.0.0.1:1", &req, NOW)), 1);
    }
    p.set_zxid_limit(p.last_zxid());
    // A write needing a zxid past the limit closes its connection instead.
    let out = p.request(ConnId::client(0, 2), &create(1, "/k"), NOW).expect("decodes");
    assert!(matches!(&out[..], [Output::Close { .. }]), "{out:?}");
    assert!(p.tree.get("/k").is_none());
    // Three sessions are due; one txn is allowed: one closes, the others stay due.
    p.set_zxid_limit(p.last_zxid() + 1);
    let later = NOW + 3_600_000;
    assert_eq!(logged(&p.tick(later)), 1);
    p.set_zxid_limit(i64::MAX);
    assert_eq!(logged(&p.tick(later + 1)), 2, "the rest expire once zxids are allowed again");
}

#[test]
fn a_leader_at_its_epochs_counter_limit_steps_down_instead_of_overrunning_it() {
    let mut c = Cluster::two_with(|cfg| cfg.counter_limit = 2);
    let epoch = c.node(LEADER).role().epoch;
    c.session(LEADER, C2);
    // The create is the epoch's last zxid: the leader proposes it, then looks for a new epoch.
    let fx = c.step(LEADER, Input::Request { conn: C2, frame: create(1, "/k") });
    let [Effect::Append { zxid, .. }, ..] = &fx[..] else { panic!("{fx:?}") };
    assert_eq!(*zxid, make_zxid(epoch, 2));
    assert!(fx.iter().any(|e| matches!(e, Effect::RoleChanged(v) if !v.serving)), "{fx:?}");
    // Whatever comes in before the next election makes no txn.
    let fx = c.step(LEADER, Input::Tick);
    assert!(!fx.iter().any(|e| matches!(e, Effect::Append { .. })), "{fx:?}");
}

/// A member of three voters that reaches neither peer, with read-only mode on.
fn cut_off_member() -> Node {
    let cfg = ProcessorConfig { server_id: 1, read_only_mode_enabled: true, ..Default::default() };
    let peer = Peer::new(PeerConfig::new(1, vec![1, 2, 3], vec![]), Recovered::default(), NOW);
    let mut node = Node::ensemble(Processor::new(cfg, NOW, b"read-only test"), peer, 0, Limits::default());
    node.start(NOW, &mut Vec::new());
    node
}

fn read_only_connect(conn: ClientConn, read_only: Option<bool>) -> Input {
    let request = ConnectRequest { timeout_ms: 30_000, passwd: vec![0; 16], read_only, ..Default::default() };
    Input::Connect {
        conn,
        client_ip: "10.0.0.1".into(),
        remote: "10.0.0.1:5000".into(),
        request,
        authenticated: Vec::new(),
    }
}

#[test]
fn a_member_without_quorum_serves_read_only_clients_after_the_delay() {
    let mut node = cut_off_member();
    let mut out = Vec::new();
    node.step(NOW + read_only_delay_ms(2000) - 1, Input::PeerTick, &mut out);
    assert!(!out.iter().any(|e| matches!(e, Effect::ReadOnly(_))), "not before the delay");
    let mut out = Vec::new();
    node.step(NOW + 1, read_only_connect(C1, Some(true)), &mut out);
    assert_eq!(deliveries(&out), vec![(0, Delivery::Close { conn: C1 })], "not serving yet: closed");

    let later = NOW + read_only_delay_ms(2000);
    let mut out = Vec::new();
    node.step(later, Input::PeerTick, &mut out);
    assert!(out.iter().any(|e| matches!(e, Effect::ReadOnly(true))), "{out:?}");
    assert!(node.processor().is_read_only());

    // A client that did not ask for read-only is closed unanswered, as Apache does.
    let mut out = Vec::new();
    node.step(later, read_only_connect(C2, Some(false)), &mut out);
    assert_eq!(deliveries(&out), vec![(1, Delivery::Close { conn: C2 })]);

    // A read-only client gets a local session and readOnly=true; no txn is logged.
    let mut out = Vec::new();
    node.step(later, read_only_connect(C1, Some(true)), &mut out);
    assert!(!out.iter().any(|e| matches!(e, Effect::Append { .. })), "no CreateSession txn");
    let d = deliveries(&out);
    let resp = ConnectResponse::from_bytes(&sent(C1, &d[0])[4..]).unwrap();
    assert!(resp.session_id != 0 && resp.timeout_ms > 0, "{resp:?}");
    assert_eq!(resp.read_only, Some(true));

    // Reads are answered; writes and sync get NotReadOnly, stamped with the last zxid.
    let mut out = Vec::new();
    node.step(later, Input::Request { conn: C1, frame: get_data(1, "/zookeeper") }, &mut out);
    assert_eq!(header(&sent(C1, &deliveries(&out)[0])).err, 0);
    for (xid, frame) in [
        (2, create(2, "/a")),
        (3, set_data(3, "/zookeeper", b"x")),
        (4, request(4, OpCode::Sync, Some(&crate::proto::PathRequest { path: "/".into() }))),
    ] {
        let mut out = Vec::new();
        node.step(later, Input::Request { conn: C1, frame }, &mut out);
        let reply = header(&sent(C1, &deliveries(&out)[0]));
        assert_eq!((reply.xid, reply.err), (xid, crate::proto::ErrorCode::NotReadOnly.code()));
        assert!(!out.iter().any(|e| matches!(e, Effect::Append { .. })));
    }
}

#[test]
fn read_only_mode_stays_off_unless_enabled() {
    let peer = Peer::new(PeerConfig::new(1, vec![1, 2, 3], vec![]), Recovered::default(), NOW);
    let mut node = Node::ensemble(processor(1), peer, 0, Limits::default());
    node.start(NOW, &mut Vec::new());
    let mut out = Vec::new();
    node.step(NOW + 60_000, Input::PeerTick, &mut out);
    assert!(!node.processor().is_read_only());
    let mut out = Vec::new();
    node.step(NOW + 60_000, read_only_connect(C1, Some(true)), &mut out);
    assert_eq!(deliveries(&out), vec![(0, Delivery::Close { conn: C1 })]);
}

#[test]
fn an_idle_read_only_session_expires_without_a_txn() {
    let mut node = cut_off_member();
    let later = NOW + read_only_delay_ms(2000);
    node.step(later, Input::PeerTick, &mut Vec::new());
    let mut out = Vec::new();
    node.step(later, read_only_connect(C1, Some(true)), &mut out);
    let resp = ConnectResponse::from_bytes(&sent(C1, &deliveries(&out)[0])[4..]).unwrap();
    let mut out = Vec::new();
    node.step(later + resp.timeout_ms as i64 / 2, Input::Tick, &mut out);
    assert!(deliveries(&out).is_empty(), "not yet due");
    let mut out = Vec::new();
    node.step(later + resp.timeout_ms as i64 + 4_000, Input::Tick, &mut out);
    assert_eq!(deliveries(&out), vec![(0, Delivery::Close { conn: C1 })]);
    assert!(!out.iter().any(|e| matches!(e, Effect::Append { .. })), "no CloseSession txn");
    assert!(node.processor().sessions.get(resp.session_id).is_none());
}

/// `server.N` lines for `ids` on 127.0.0.1 (ports derived from the id).
fn membership(ids: &[ServerId]) -> Membership {
    let lines: Vec<String> = ids
        .iter()
        .map(|id| format!("server.{id}=127.0.0.1:{}:{};127.0.0.1:{}", 2000 + id, 3000 + id, 4000 + id))
        .collect();
    Membership::parse(&lines.join("\n")).expect("valid lines")
}

fn reconfig_request(xid: i32, joining: Option<&str>, leaving: Option<&str>, from: i64) -> Vec<u8> {
    let body = crate::proto::ReconfigRequest {
        joining_servers: joining.map(String::from),
        leaving_servers: leaving.map(String::from),
        new_members: None,
        cur_config_id: from,
    };
    request(xid, OpCode::Reconfig, Some(&body))
}

/// The reply to the one request run: header and, if it succeeded, the configuration text.
fn reconfig_reply(reached: &[(ServerId, u32, Delivery)]) -> (ReplyHeader, Option<String>) {
    let [(_, _, Delivery::Send { frame, .. })] = reached else { panic!("one reply expected: {reached:?}") };
    let h = header(frame);
    let text = (h.err == 0).then(|| String::from_utf8(get_data_reply(frame)).expect("text"));
    (h, text)
}

/// Voters 1 and 2 configured as such (2 leads), and server 3 started with the 3-member
/// configuration (joining: the others hold it as a non-voting learner); reconfig on (the first
/// leader versions the configuration), the super user `super:test`.
fn joining_cluster() -> Cluster {
    let nodes = (1..=3)
        .map(|id| {
            let members = if id == 3 { membership(&[1, 2, 3]) } else { membership(&[1, 2]) };
            let mut peer_config = PeerConfig::new(id, vec![], vec![]);
            peer_config.adopt(&members);
            peer_config.versions_initial_config = true;
            let cfg = ProcessorConfig {
                server_id: id as i64,
                reconfig_enabled: true,
                super_digest: Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=".into()),
                ..Default::default()
            };
            let mut processor = Processor::new(cfg, NOW, b"7");
            processor.set_config_node(&members, 0);
            let peer = Peer::new(peer_config, Recovered::default(), NOW);
            Node::ensemble(processor, peer, 0, Limits::default())
        })
        .collect();
    let mut c = Cluster::started(nodes);
    assert_eq!(c.nodes[2].role().leader, Some(LEADER), "the joining server follows the leader");
    // Until the reconfig adding it commits, the joiner holds the leader's configuration (its
    // members at its version), as Apache's learner takes up NEWLEADER's at UPTODATE.
    let leaders = c.node(LEADER).processor().config_node_membership().expect("a configuration");
    assert_eq!((leaders.voters(), leaders.version), (vec![1, 2], make_zxid(1, 0)));
    assert_eq!(c.node(3).processor().config_node_membership(), Some(leaders));
    assert_eq!(c.node(3).role().state, ServerState::Following, "a non-voting follower");
    c
}

#[test]
fn reconfig_adds_a_joining_server_then_removes_a_member_which_stops_serving() {
    let mut c = joining_cluster();
    c.session(LEADER, C2);
    let joining = "server.3=127.0.0.1:2003:3003:participant;127.0.0.1:4003";

    // Refused: without the super user (the node's ACL is read-only), from another version.
    let (h, _) = reconfig_reply(&c.run(LEADER, C2, reconfig_request(1, Some(joining), None, -1)));
    assert_eq!(h.err, crate::proto::ErrorCode::NoAuth.code());
    let auth = crate::proto::AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Some(b"super:test".to_vec()),
    };
    c.run(LEADER, C2, request(-4, OpCode::Auth, Some(&auth)));
    let (h, _) = reconfig_reply(&c.run(LEADER, C2, reconfig_request(2, Some(joining), None, 7)));
    assert_eq!(h.err, crate::proto::ErrorCode::BadVersion.code());

    // Added: every node (the joiner included) now counts voters 1, 2 and 3.
    let from = make_zxid(1, 0);
    let (h, text) = reconfig_reply(&c.run(LEADER, C2, reconfig_request(3, Some(joining), None, from)));
    let added = Membership::parse(&text.expect("the new configuration")).unwrap();
    assert_eq!((added.voters(), added.version), (vec![1, 2, 3], h.zxid));
    for id in 1..=3 {
        assert_eq!(c.node(id).peer().unwrap().config().voters, vec![1, 2, 3], "server {id}");
        assert_eq!(c.node(id).processor().config_node_membership().as_ref(), Some(&added), "server {id}");
    }

    // Removed: server 1 follows on without a vote (as Apache's non-voting follower); the
    // leader keeps its quorum with servers 2 and 3 when server 1 goes away.
    let (_, text) = reconfig_reply(&c.run(LEADER, C2, reconfig_request(4, None, Some("1"), added.version)));
    assert_eq!(Membership::parse(&text.unwrap()).unwrap().voters(), vec![2, 3]);
    assert!((1..=3).all(|id| c.node(id).role().serving));
    assert_eq!(c.node(1).role().state, ServerState::Following);
    assert_eq!(c.node(1).peer().unwrap().config().voters, vec![2, 3]);
    let fx = c.step(LEADER, Input::LinkDown { peer: 1 });
    assert!(!fx.iter().any(|e| matches!(e, Effect::RoleChanged(_))), "{fx:?}");
    let reached = c.run(LEADER, C2, create(5, "/after"));
    assert_eq!(header(&sent(C2, &(reached[0].1, reached[0].2.clone()))).err, 0, "{reached:?}");
    assert!(c.node(3).processor().tree.contains("/after"));
}

/// A follower of an Apache leader (`follow_apache_leaders`), driven by hand: the txns the
/// Apache leader would propose for its forwarded requests are made here, since an Apache
/// leader sends no reply frames.
struct ApacheFollowerHarness {
    c: Cluster,
}

impl ApacheFollowerHarness {
    fn new() -> ApacheFollowerHarness {
        let mut c = Cluster::two();
        c.node(FOLLOWER).follow_apache_leaders();
        ApacheFollowerHarness { c }
    }

    /// Steps the follower; what it relays to its leader is returned, nothing is delivered.
    fn step(&mut self, input: Input) -> (Vec<Relay>, Vec<(u32, Delivery)>) {
        let fx = self.c.step(FOLLOWER, input);
        let relays = fx
            .iter()
            .filter_map(|e| match e {
                Effect::RelaySend { to: LEADER, relay } => Some(relay.clone()),
                _ => None,
            })
            .collect();
        (relays, deliveries(&fx))
    }

    /// The leader proposes and commits `body` for (`session_id`, `cxid`); returns what reached
    /// the follower's clients.
    fn commit(&mut self, session_id: i64, cxid: i32, body: crate::txn::TxnBody) -> Vec<(u32, Delivery)> {
        let peer = self.c.node(FOLLOWER).peer().expect("a peer");
        let (epoch, prev_zxid) = (peer.current_epoch(), peer.last_logged());
        let zxid = prev_zxid.max(make_zxid(epoch, 0)) + 1;
        let txn = crate::txn::Txn { session_id, cxid, zxid, time_ms: NOW, body };
        let txn = Arc::new(crate::txn::encode(&txn));
        let mut reached = Vec::new();
        let fx = self.c.step(
            FOLLOWER,
            Input::PeerMessage { from: LEADER, msg: Msg::Proposal { epoch, prev_zxid, zxid, txn } },
        );
        reached.extend(deliveries(&fx));
        for e in fx {
            if let Effect::Append { zxid, .. } = e {
                reached.extend(self.step(Input::Durable { zxid }).1);
            }
        }
        reached.extend(self.step(Input::PeerMessage { from: LEADER, msg: Msg::Commit { epoch, zxid } }).1);
        reached
    }
}

#[test]
fn a_follower_of_an_apache_leader_answers_its_clients_from_the_committed_txns() {
    use crate::txn::{TxnBody, TxnOp};
    let mut h = ApacheFollowerHarness::new();
    // A new session: the follower picks its id (its server id in the top byte, as Apache's
    // learner) and timeout, and answers once the createSession txn is applied.
    let (relays, reached) = h.step(connect(C1));
    assert!(reached.is_empty());
    let [Relay::CreateSession { token: C1, request: connect_bytes, .. }] = &relays[..] else {
        panic!("{relays:?}")
    };
    let asked = ConnectRequest::from_bytes(connect_bytes).unwrap();
    let session = asked.session_id;
    assert_eq!(session >> 56, FOLLOWER as i64, "the follower's own session id");
    let reached = h.commit(session, 0, TxnBody::CreateSession { timeout_ms: asked.timeout_ms });
    let [(0, Delivery::Send { conn: C1, frame })] = &reached[..] else { panic!("{reached:?}") };
    let response = ConnectResponse::from_bytes(&frame[4..]).unwrap();
    assert_eq!((response.session_id, response.timeout_ms), (session, asked.timeout_ms));
    assert_eq!(response.passwd, crate::apache::apache_session_password(session), "Apache's password");

    // A create is forwarded with the session and xid; its reply is built from the txn.
    let (relays, _) = h.step(Input::Request { conn: C1, frame: create(1, "/k") });
    let [Relay::Forward { token: C1, session_id, .. }] = &relays[..] else { panic!("{relays:?}") };
    assert_eq!(*session_id, session);
    // A read behind it waits for it.
    let (relays, reached) = h.step(Input::Request { conn: C1, frame: get_data(2, "/k") });
    assert!(relays.is_empty() && reached.is_empty());
    // A txn of another session answers nobody here.
    let other = TxnBody::Op(TxnOp::create("/other".into(), Some(vec![]), vec![], 0, 0));
    assert!(h.commit(session + 1, 1, other).is_empty());
    let created = TxnBody::Op(TxnOp::create("/k".into(), Some(b"old".to_vec()), vec![], 0, 1));
    let reached = h.commit(session, 1, created);
    let [(0, Delivery::Send { frame: reply, .. }), (0, Delivery::Send { frame: read, .. })] = &reached[..]
    else {
        panic!("{reached:?}")
    };
    assert_eq!((header(reply).xid, header(reply).err), (1, 0));
    let mut r = JuteReader::new(&reply[4..]);
    ReplyHeader::decode(&mut r).unwrap();
    assert_eq!(crate::proto::CreateResponse::decode(&mut r).unwrap().path, "/k");
    assert_eq!((header(read).xid, get_data_reply(read)), (2, b"old".to_vec()));

    // A request the leader refused comes back as an error txn: the client gets the error.
    h.step(Input::Request { conn: C1, frame: create(3, "/k") });
    let reached =
        h.commit(session, 3, TxnBody::Op(TxnOp::Error { code: crate::proto::ErrorCode::NodeExists.code() }));
    let [(0, Delivery::Send { frame, .. })] = &reached[..] else { panic!("{reached:?}") };
    assert_eq!((header(frame).xid, header(frame).err), (3, crate::proto::ErrorCode::NodeExists.code()));

    // Its activity is relayed with the session's timeout (for the PING reply).
    let (relays, _) = h.step(Input::Tick);
    assert_eq!(relays, vec![Relay::Touch { sessions: vec![(session, asked.timeout_ms)] }]);

    // closeSession: the reply, then the connection closes.
    h.step(Input::Request { conn: C1, frame: request(4, OpCode::CloseSession, None) });
    let reached = h.commit(session, 4, TxnBody::CloseSession { ephemerals: vec![] });
    let [(0, Delivery::Send { frame, .. }), (0, Delivery::Close { conn: C1 })] = &reached[..] else {
        panic!("{reached:?}")
    };
    assert_eq!((header(frame).xid, header(frame).err), (4, 0));
}

#[test]
fn a_client_bringing_its_session_to_a_follower_of_an_apache_leader_is_revalidated_by_the_leader() {
    use crate::txn::TxnBody;
    let mut h = ApacheFollowerHarness::new();
    // A session the Apache leader created for a client of another member.
    let session = 0x0300_0000_0000_0001;
    assert!(h.commit(session, 0, TxnBody::CreateSession { timeout_ms: 4_000 }).is_empty());
    let reconnect = |passwd: Vec<u8>| {
        let request = ConnectRequest { timeout_ms: 4_000, session_id: session, passwd, ..Default::default() };
        Input::Connect {
            conn: C2,
            client_ip: "10.0.0.2".into(),
            remote: "10.0.0.2:5000".into(),
            authenticated: Vec::new(),
            request,
        }
    };
    // A wrong password is refused here, without asking the leader.
    let (relays, reached) = h.step(reconnect(vec![7; 16]));
    assert!(relays.is_empty());
    let [(1, Delivery::Send { frame, .. }), (1, Delivery::Close { .. })] = &reached[..] else {
        panic!("{reached:?}")
    };
    assert_eq!(ConnectResponse::from_bytes(&frame[4..]).unwrap().session_id, 0);
    // Apache's password: the leader is asked; its answer (through the transport) binds it.
    let passwd = crate::apache::apache_session_password(session).to_vec();
    let (relays, reached) = h.step(reconnect(passwd.clone()));
    assert!(reached.is_empty());
    assert_eq!(
        relays,
        vec![Relay::Revalidate { token: C2, session_id: session, timeout_ms: 4_000, read_only_byte: false }]
    );
    let response = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 4_000,
        session_id: session,
        passwd,
        read_only: None,
    };
    let frame = crate::request::record_frame(&response);
    let (_, reached) = h.step(Input::RelayMessage {
        from: LEADER,
        relay: Relay::Reply { token: C2, zxid: 0, frame: frame.clone() },
    });
    assert_eq!(reached, vec![(1, Delivery::Send { conn: C2, frame })]);
    // Its writes now go to the leader under that session.
    let (relays, _) = h.step(Input::Request { conn: C2, frame: create(1, "/moved") });
    let [Relay::Forward { token: C2, session_id, .. }] = &relays[..] else { panic!("{relays:?}") };
    assert_eq!(*session_id, session);
}
