//! What an operator sees, checked on real `ringkeeper` processes: `--version`/`--help`,
//! a clean stop on SIGTERM under write load with no acknowledged write lost, true
//! `srvr`/`mntr` numbers (request latency, outstanding requests, a leader's followers),
//! session lifecycle lines in the log, unknown `zookeeper.*` keys named at start-up, the
//! Prometheus endpoint scraped over HTTP and the AdminServer's JSON commands, a second server
//! on a member's quorum ports refused.
//!
//! These check ringkeeper's own operability surface; with `RINGKEEPER_TEST_TARGET=apache`
//! the tests that exercise only what Apache does the same way still run (the others say
//! that they are skipped).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringkeeper_engine::proto::codes::OpCode;
use ringkeeper_engine::proto::records::PathWatchRequest;
use ringkeeper_server::logging::LogFormat;
use ringkeeper_tests::command::LogLevel;
use ringkeeper_tests::ensemble::{lay_out_member, Ensemble};
use ringkeeper_tests::process::ServerChild;
use ringkeeper_tests::{free_port, ringkeeper_binary, Target, TestServer};

mod common;
use common::{create_request, RawSession};

fn ringkeeper_only(test: &str) -> bool {
    if Target::from_env() == Target::Ringkeeper {
        return true;
    }
    eprintln!("{test}: skipped against Apache (checks ringkeeper's own surface)");
    false
}

/// `key value` (tab separated) lines of `mntr`.
fn monitor_values(text: &str) -> BTreeMap<String, String> {
    text.lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// Polls `check` every 50 ms for at most `limit`.
fn eventually(what: &str, limit: Duration, check: impl FnMut() -> bool) {
    eventually_explained(what, limit, check, String::new)
}

/// [`eventually`], whose failure adds what `explain` says then (for a failure that does not
/// reproduce).
fn eventually_explained(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> bool,
    explain: impl FnOnce() -> String,
) {
    let deadline = Instant::now() + limit;
    while !check() {
        if Instant::now() >= deadline {
            panic!("not within {limit:?}: {what}{}", explain());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn version_and_help_name_the_real_build() {
    for flag in ["--version", "-V"] {
        let out = Command::new(ringkeeper_binary()).arg(flag).output().expect("run ringkeeper");
        assert!(out.status.success(), "{flag}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("ringkeeper 0."), "{flag}: {text}");
        assert!(text.contains("ZooKeeper 3.8.4 compatible"), "{flag}: {text}");
        let built = text.split("built on ").nth(1).expect("a build date");
        assert!(!built.starts_with("1970") && built.starts_with("20"), "{flag}: {text}");
    }
    let out = Command::new(ringkeeper_binary()).arg("--help").output().expect("run ringkeeper");
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    for tool in ["log-dump", "log-verify", "snap-dump", "snap-verify", "--version", "[CONFIG]"] {
        assert!(help.contains(tool), "--help lacks {tool}:\n{help}");
    }
}

#[test]
fn srvr_version_has_a_real_build_date() {
    let server = TestServer::start();
    let srvr = server.four_letter("srvr");
    let version = srvr.lines().next().unwrap();
    assert!(version.contains(", built on 20"), "{version}");
}

/// Creates znodes one at a time on a session of its own until the server stops answering;
/// returns the paths whose create was acknowledged. Sets `started` after 50.
fn write_until_stopped(addr: SocketAddr, started: &AtomicBool) -> Vec<String> {
    let mut session = RawSession::connect_to(addr, 30_000);
    let prefix = format!("/w-{:x}-", session.session_id());
    let mut acknowledged = Vec::new();
    for i in 0.. {
        let path = format!("{prefix}{i}");
        let xid = session.send(OpCode::Create, &create_request(&path, 0));
        match session.reply_to(xid) {
            Some(reply) if reply.header.err == 0 => acknowledged.push(path),
            Some(reply) => panic!("create {path} failed with {}", reply.header.err),
            None => break,
        }
        if i == 50 {
            started.store(true, Ordering::SeqCst);
        }
    }
    acknowledged
}

#[test]
fn sigterm_under_write_load_stops_cleanly_and_loses_no_acknowledged_write() {
    if !ringkeeper_only("sigterm_under_write_load") {
        return;
    }
    let mut server = TestServer::start();
    let started = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (addr, started, acknowledged) = (server.addr(), started.clone(), acknowledged.clone());
            std::thread::spawn(move || {
                let paths = write_until_stopped(addr, &started);
                acknowledged.lock().unwrap().extend(paths);
            })
        })
        .collect();
    eventually("writers under way", Duration::from_secs(20), || started.load(Ordering::SeqCst));
    let sent = Instant::now();
    let status =
        server.stop_with_signal("TERM", Duration::from_secs(5)).expect("exits within 5 s of SIGTERM");
    let took = sent.elapsed();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    for writer in writers {
        writer.join().unwrap();
    }
    let log = server.log();
    assert!(log.contains("stopping on SIGTERM"), "no stop line in the log:\n{log}");
    println!("SIGTERM to exit: {took:?}");

    server.restart();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 50, "only {} writes acknowledged", acknowledged.len());
    let mut reader = RawSession::connect(&server, 30_000);
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|p| reader.code(OpCode::Exists, &PathWatchRequest { path: (*p).clone(), watch: false }) != 0)
        .collect();
    assert!(missing.is_empty(), "{} acknowledged writes lost: {missing:?}", missing.len());
}

#[test]
fn sigint_stops_an_idle_server_at_once() {
    if !ringkeeper_only("sigint_stops_an_idle_server") {
        return;
    }
    let mut server = TestServer::start();
    let sent = Instant::now();
    let status = server.stop_with_signal("INT", Duration::from_secs(5)).expect("exits within 5 s of SIGINT");
    assert!(status.success(), "{status}");
    assert!(sent.elapsed() < Duration::from_secs(1), "took {:?}", sent.elapsed());
    assert!(server.log().contains("stopping on SIGINT"), "{}", server.log());
}

/// `Latency min/avg/max: a/b/c` of `srvr`.
fn srvr_latency(srvr: &str) -> (u64, f64, u64) {
    let line = srvr.lines().find_map(|l| l.strip_prefix("Latency min/avg/max: ")).expect("latency line");
    let parts: Vec<&str> = line.split('/').collect();
    (parts[0].parse().unwrap(), parts[1].parse().unwrap(), parts[2].parse().unwrap())
}

#[test]
fn srvr_and_mntr_report_measured_latency_and_outstanding_requests() {
    if !ringkeeper_only("srvr_and_mntr_report_measured_latency") {
        return;
    }
    let server = TestServer::start_with("4lw.commands.whitelist=*");
    assert_eq!(srvr_latency(&server.four_letter("srvr")), (0, 0.0, 0), "idle server");
    let mut session = RawSession::connect(&server, 30_000);
    for i in 0..200 {
        assert_eq!(session.code(OpCode::Create, &create_request(&format!("/l{i}"), 0)), 0);
    }
    let srvr = server.four_letter("srvr");
    let (min, avg, max) = srvr_latency(&srvr);
    assert!(avg > 0.0, "200 fsynced creates averaged 0 ms: {srvr}");
    assert!(min as f64 <= avg && avg <= max as f64 + 1.0, "{srvr}");
    assert!(srvr.contains("\nOutstanding: 0\n"), "everything answered: {srvr}");
    let mntr = monitor_values(&server.four_letter("mntr"));
    assert_eq!(mntr["zk_outstanding_requests"], "0");
    assert!(mntr["zk_avg_latency"].parse::<f64>().unwrap() > 0.0, "{mntr:?}");

    // A pipelined burst: requests read but not yet answered are outstanding meanwhile.
    let mut seen_outstanding = 0u64;
    for _ in 0..20 {
        let xids: Vec<i32> = (0..500)
            .map(|_| session.send(OpCode::Exists, &PathWatchRequest { path: "/l0".into(), watch: false }))
            .collect();
        let mntr = monitor_values(&server.four_letter("mntr"));
        seen_outstanding = seen_outstanding.max(mntr["zk_outstanding_requests"].parse().unwrap());
        for xid in xids {
            session.reply_to(xid).expect("reply");
        }
        if seen_outstanding > 0 {
            break;
        }
    }
    println!("outstanding during a burst of 500: up to {seen_outstanding}");
    eventually("outstanding back to 0", Duration::from_secs(5), || {
        server.four_letter("srvr").contains("\nOutstanding: 0\n")
    });

    // cons: this connection's own figures.
    let client = session.stream.local_addr().unwrap();
    let cons = server.four_letter("cons");
    let line = cons.lines().find(|l| l.contains(&format!("/{client}["))).unwrap_or_else(|| panic!("{cons}"));
    let field = |name: &str| -> i64 {
        let start =
            line.find(&format!(",{name}=")).unwrap_or_else(|| panic!("no {name} in {line}")) + name.len() + 2;
        line[start..].split([',', ')']).next().unwrap().parse().unwrap()
    };
    assert!(line.contains("(queued=0,"), "{line}");
    assert!(field("lresp") > 0, "{line}");
    assert!(field("maxlat") >= field("minlat") && field("maxlat") >= field("avglat"), "{line}");
    assert!(field("maxlat") >= 1 || field("avglat") == 0, "{line}");
    assert_eq!(server.four_letter("crst"), "Connection stats reset.\n");
    let cons = server.four_letter("cons");
    assert!(cons.contains(",minlat=0,avglat=0,maxlat=0)"), "crst resets the connection's latency: {cons}");

    // srst starts latency over, as Apache.
    assert_eq!(server.four_letter("srst"), "Server stats reset.\n");
    assert_eq!(srvr_latency(&server.four_letter("srvr")).1, 0.0);
}

/// `zk_last/min/max_client_response_size` follow the frames sent (header and body, every
/// frame but the ConnectResponse) and `srst` starts them over, as Apache 3.8's `BufferStats`.
#[test]
fn mntr_response_sizes_follow_the_responses_as_apache() {
    let server = TestServer::start_with("4lw.commands.whitelist=*");
    let sizes = |server: &TestServer| {
        let mntr = monitor_values(&server.four_letter("mntr"));
        ["last", "min", "max"].map(|k| mntr[&format!("zk_{k}_client_response_size")].parse::<i64>().unwrap())
    };
    assert_eq!(sizes(&server), [-1, -1, -1], "nothing answered yet");
    let mut session = RawSession::connect(&server, 30_000);
    assert_eq!(sizes(&server), [-1, -1, -1], "the ConnectResponse does not count");
    // create: header (16) + path "/rs" (4 + 3); getData: 16 + empty data (4) + Stat (68);
    // exists: 16 + Stat (68).
    assert_eq!(session.code(OpCode::Create, &create_request("/rs", 0)), 0);
    assert_eq!(sizes(&server), [23, 23, 23]);
    session.call(OpCode::GetData, &PathWatchRequest { path: "/rs".into(), watch: false });
    session.call(OpCode::Exists, &PathWatchRequest { path: "/rs".into(), watch: false });
    assert_eq!(sizes(&server), [84, 23, 88]);
    assert_eq!(server.four_letter("srst"), "Server stats reset.\n");
    assert_eq!(sizes(&server), [-1, -1, -1]);
}

/// The port a ringkeeper member's metrics endpoint bound (`metricsProvider.httpPort=0`).
fn metrics_port_in(log: &str) -> Option<u16> {
    let rest = log.split("serving Prometheus metrics on http://").nth(1)?;
    rest.split("/metrics").next()?.rsplit(':').next()?.parse().ok()
}

#[test]
fn leader_mntr_counts_learners_as_apache() {
    let metrics = if Target::from_env() == Target::Ringkeeper {
        "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
         metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort=0"
    } else {
        ""
    };
    let ensemble = Ensemble::start(3, 0, metrics);
    let leader = ensemble.wait_leader(Duration::from_secs(30));
    eventually("leader reports both followers synced", Duration::from_secs(10), || {
        let mntr = monitor_values(&ensemble.four_letter(leader, "mntr"));
        mntr.get("zk_synced_followers").map(String::as_str) == Some("2")
    });
    let mntr = monitor_values(&ensemble.four_letter(leader, "mntr"));
    assert_eq!(mntr["zk_server_state"], "leader");
    assert_eq!(mntr["zk_learners"], "2");
    assert_eq!(mntr["zk_synced_non_voting_followers"], "0");
    assert_eq!(mntr["zk_synced_observers"], "0");
    assert_eq!(mntr["zk_pending_syncs"], "0");
    let follower = (0..3).find(|i| *i != leader).unwrap();
    let mntr = monitor_values(&ensemble.four_letter(follower, "mntr"));
    assert_eq!(mntr["zk_server_state"], "follower");
    assert!(!mntr.contains_key("zk_learners"), "only a leader has learners: {mntr:?}");

    if let Some(port) = metrics_port_in(&ensemble.log(leader)) {
        let (samples, _) = parse_exposition(&http_get(port, "/metrics").1);
        assert_eq!(
            (samples["learners"], samples["synced_followers"], samples["pending_syncs"]),
            (2.0, 2.0, 0.0)
        );
        assert!(samples["election_time_count"] >= 1.0, "the start-up election is timed: {samples:?}");
    } else {
        assert_eq!(
            Target::from_env(),
            Target::Apache,
            "no metrics endpoint in the log:\n{}",
            ensemble.log(leader)
        );
    }
}

/// A server started with a configuration naming it a participant, joining an ensemble whose
/// configuration does not have it yet (before `reconfig -add`), follows without a vote: the
/// leader counts it among `zk_synced_followers` and in `zk_synced_non_voting_followers`, as
/// Apache's `forwardingFollowers` and `getNonVotingFollowers`.
#[test]
fn leader_mntr_counts_a_joining_server_as_a_non_voting_follower() {
    let mut ensemble = Ensemble::start_with_spares(3, 1, "reconfigEnabled=true");
    let leader = ensemble.wait_leader(Duration::from_secs(30));
    ensemble.start_member(3);
    let counts = |ensemble: &Ensemble| {
        let mntr = monitor_values(&ensemble.four_letter(leader, "mntr"));
        ["zk_learners", "zk_synced_followers", "zk_synced_non_voting_followers", "zk_synced_observers"]
            .map(|k| mntr.get(k).cloned().unwrap_or_default())
    };
    eventually("the leader counts the joining server", Duration::from_secs(20), || {
        counts(&ensemble) == ["3", "3", "1", "0"]
    });
}

/// `zk_pending_syncs` on a leader counts learners' syncs waiting for a commit, as Apache's
/// `Leader.pendingSyncs`: five members, three of them stopped (SIGSTOP), so a write relayed by
/// the one follower left cannot commit, and that client's sync waits behind it until one
/// member comes back. The failure detection is slow enough (10 s for Apache: tickTime x
/// syncLimit; 20 s here) that the leader keeps leading meanwhile.
#[test]
fn leader_mntr_counts_pending_syncs_as_apache() {
    let ensemble = Ensemble::start(5, 0, "ringkeeper.zab.peerTimeoutMs=20000");
    let leader = ensemble.wait_leader(Duration::from_secs(30));
    let followers: Vec<usize> = (0..5).filter(|i| *i != leader).collect();
    let pending_syncs = |ensemble: &Ensemble| {
        monitor_values(&ensemble.four_letter(leader, "mntr"))
            .get("zk_pending_syncs")
            .cloned()
            .unwrap_or_default()
    };
    // The leader's figures are published on its next tick after it starts leading.
    eventually("the leader reports zk_pending_syncs 0", Duration::from_secs(5), || {
        pending_syncs(&ensemble) == "0"
    });
    let follower_addr: SocketAddr = ensemble.address(followers[0]).parse().unwrap();
    let mut session = RawSession::connect_to(follower_addr, 30_000);
    for &i in &followers[1..] {
        ensemble.pause(i);
    }
    let write = session.send(OpCode::Create, &create_request("/before-the-sync", 0));
    let sync = session.send(OpCode::Sync, &ringkeeper_engine::proto::PathRequest { path: "/".into() });
    eventually_explained(
        "the leader counts the sync waiting for the write",
        Duration::from_secs(5),
        || pending_syncs(&ensemble) == "1",
        || {
            format!(
                "\nleader mntr:\n{}\nfollower log:\n{}\nleader log:\n{}",
                ensemble.four_letter(leader, "mntr"),
                ensemble.log(followers[0]),
                ensemble.log(leader)
            )
        },
    );
    ensemble.resume(followers[1]);
    assert_eq!(session.reply_to(write).expect("the write's reply").header.err, 0);
    assert_eq!(session.reply_to(sync).expect("the sync's reply").header.err, 0);
    eventually("no sync waits once the write committed", Duration::from_secs(5), || {
        pending_syncs(&ensemble) == "0"
    });
    for &i in &followers[2..] {
        ensemble.resume(i);
    }
}

#[test]
fn sigterm_of_the_leader_lets_the_others_elect_at_once() {
    let mut ensemble = Ensemble::start(3, 0, "");
    let leader = ensemble.wait_leader(Duration::from_secs(30));
    let sent = Instant::now();
    let status =
        ensemble.stop_with_signal(leader, "TERM", Duration::from_secs(10)).expect("the leader exits");
    let new_leader = ensemble.wait_leader(Duration::from_secs(20));
    let took = sent.elapsed();
    assert_ne!(new_leader, leader);
    println!("SIGTERM of the leader to a new leader serving: {took:?}");
    if Target::from_env() == Target::Ringkeeper {
        assert!(status.success(), "{status}");
        assert!(ensemble.log(leader).contains("stopping on SIGTERM"), "{}", ensemble.log(leader));
        // The peers see the links close at once: no wait for the failure-detection timeout.
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }
}

/// Whether `log` holds an event at `level` with `message` and every `(field, value)`: in JSON
/// lines the fields are keys of the object (numbers compared as text); in text lines they
/// follow the message as `field=value`.
fn logged(log: &str, format: LogFormat, level: &str, message: &str, fields: &[(&str, &str)]) -> bool {
    log.lines().any(|line| match format {
        LogFormat::Json => serde_json::from_str::<serde_json::Value>(line).is_ok_and(|r| {
            r["level"] == level
                && r["message"] == message
                && fields.iter().all(|(name, value)| match &r[*name] {
                    serde_json::Value::String(s) => s == value,
                    other => serde_json::from_str::<serde_json::Value>(value).is_ok_and(|v| &v == other),
                })
        }),
        LogFormat::Text => {
            let tokens: Vec<&str> = line.split_whitespace().collect();
            tokens.contains(&level)
                && line.contains(&format!(": {message}"))
                && fields.iter().all(|(name, value)| tokens.contains(&format!("{name}={value}").as_str()))
        }
    })
}

/// A session closed by its client, one left to expire and one renewed on a new connection, on
/// a server logging in `format`: each step is one info event with the session's id, timeout
/// and client address as fields; the Apache keys ringkeeper does not act on are named once.
fn session_lifecycle_and_ignored_keys_are_logged_in(format: LogFormat) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = format!(
        "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
         zookeeper.snapshot.compression.method=gz\nzookeeper.flushDelay=0\n",
        dir.path().join("data").display()
    );
    let env = match format {
        LogFormat::Json => vec![("RINGKEEPER_LOG_FORMAT", "json")],
        LogFormat::Text => vec![],
    };
    let server = SpawnedServer::start_with_env(dir.path().to_path_buf(), &cfg, port, &env);
    eventually("the server serves", Duration::from_secs(30), || server.srvr().contains("Mode: standalone"));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let log = server.log();
    for key in ["zookeeper.snapshot.compression.method", "zookeeper.flushDelay"] {
        let warning = format!("{key}: a ZooKeeper setting ringkeeper does not act on; ignored");
        assert!(logged(&log, format, "WARN", &warning, &[]), "{key}:\n{log}");
    }
    let ignored = [("ignored_keys", "zookeeper.snapshot.compression.method,zookeeper.flushDelay")];
    let ignored_message = "Apache keys accepted but not acted on by ringkeeper";
    assert!(logged(&log, format, "INFO", ignored_message, &ignored), "{log}");

    let hex = |id: i64| format!("0x{id:x}");
    let mut closing = RawSession::connect_to(addr, 30_000);
    let (closing_id, closing_client) =
        (closing.session_id(), closing.stream.local_addr().unwrap().to_string());
    let xid = closing.send_raw_op(OpCode::CloseSession as i32, &[]);
    assert_eq!(closing.reply_to(xid).expect("closeSession reply").header.err, 0);
    // The shortest timeout tickTime=2000 allows (4 s): renewed on a second connection, then
    // left to expire.
    let first = RawSession::connect_to(addr, 4_000);
    let (expiring_id, first_client) = (first.session_id(), first.stream.local_addr().unwrap().to_string());
    let renewed = RawSession::connect_with_to(addr, &first.resume_request());
    let renewed_client = renewed.stream.local_addr().unwrap().to_string();
    drop((first, renewed));
    let expiring_hex = hex(expiring_id);
    let deadline = Instant::now() + Duration::from_secs(15);
    let fields = [("session_id", expiring_hex.as_str()), ("timeout_ms", "4000")];
    while !logged(&server.log(), format, "INFO", "Expiring session, timeout exceeded", &fields) {
        assert!(Instant::now() < deadline, "the idle session did not expire within 15 s:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.log();
    let expected: [(&str, i64, &str, &str); 5] = [
        ("Established session", closing_id, "30000", &closing_client),
        ("Closing session at the request of the client", closing_id, "30000", &closing_client),
        ("Established session", expiring_id, "4000", &first_client),
        ("Re-established session", expiring_id, "4000", &renewed_client),
        ("Expiring session, timeout exceeded", expiring_id, "4000", &renewed_client),
    ];
    for (message, id, timeout, client) in expected {
        let fields =
            [("session_id", hex(id)), ("timeout_ms", timeout.to_owned()), ("client", client.to_owned())];
        let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert!(logged(&log, format, "INFO", message, &fields), "{message} {fields:?}:\n{log}");
    }
}

#[test]
fn session_lifecycle_and_ignored_keys_are_logged() {
    if ringkeeper_only("session_lifecycle_and_ignored_keys_are_logged") {
        session_lifecycle_and_ignored_keys_are_logged_in(LogFormat::Text);
    }
}

#[test]
fn session_lifecycle_and_ignored_keys_are_logged_as_json() {
    if ringkeeper_only("session_lifecycle_and_ignored_keys_are_logged_as_json") {
        session_lifecycle_and_ignored_keys_are_logged_in(LogFormat::Json);
    }
}

/// `srst` starts the packet counters over, as Apache's `ServerStats.reset`
/// (`resetRequestCounters`): `Received`/`Sent` in `srvr` and `zk_packets_*` in `mntr` count
/// from the reset (four-letter words are no packets).
#[test]
fn srst_resets_packet_counters_as_apache() {
    let server = TestServer::start_with("4lw.commands.whitelist=*");
    let mut session = RawSession::connect(&server, 30_000);
    for _ in 0..5 {
        session.ping();
    }
    let packets = |server: &TestServer| {
        let mntr = monitor_values(&server.four_letter("mntr"));
        let count = |k: &str| mntr[k].parse::<u64>().unwrap_or_else(|e| panic!("{k}: {e}"));
        (count("zk_packets_received"), count("zk_packets_sent"))
    };
    let (received, sent) = packets(&server);
    assert!(received >= 6 && sent >= 6, "the connect and 5 pings: {received}/{sent}");
    assert_eq!(server.four_letter("srst"), "Server stats reset.\n");
    assert_eq!(packets(&server), (0, 0));
    session.ping();
    assert_eq!(packets(&server), (1, 1));
    let srvr = server.four_letter("srvr");
    assert!(srvr.contains("Received: 1\nSent: 1\n"), "{srvr}");
}

/// `cons` prints each connection's interest ops as Apache does (Java's `SelectionKey` bits):
/// an idle connection is read-only (1); a client that sends requests without reading the
/// replies leaves output queued, so its connection shows the write bit (4).
#[test]
fn cons_interest_ops_show_queued_output() {
    let server = TestServer::start_with("4lw.commands.whitelist=*");
    let idle = RawSession::connect(&server, 30_000);
    let mut flooding = RawSession::connect(&server, 30_000);
    let data = vec![b'x'; 256 * 1024];
    let create = ringkeeper_engine::proto::records::CreateRequest {
        path: "/large".into(),
        data: Some(data),
        acl: common::open_acl(),
        flags: 0,
    };
    assert_eq!(flooding.code(OpCode::Create, &create), 0);
    for _ in 0..100 {
        flooding.send(OpCode::GetData, &PathWatchRequest { path: "/large".into(), watch: false });
    }
    let ops_of = |cons: &str, stream: &TcpStream| -> Option<u32> {
        let me = format!("/{}[", stream.local_addr().unwrap());
        let rest = cons.lines().find_map(|l| l.trim().strip_prefix(&me))?;
        u32::from_str_radix(rest.split(']').next()?, 16).ok()
    };
    eventually("the flooding connection shows queued output", Duration::from_secs(10), || {
        ops_of(&server.four_letter("cons"), &flooding.stream).is_some_and(|ops| ops & 4 != 0)
    });
    let cons = server.four_letter("cons");
    assert_eq!(ops_of(&cons, &idle.stream), Some(1), "{cons}");
}

/// A `server.N` line's client address may be a host name, as in Apache
/// (`server.1=host:2888:3888;host:2181`): a three-member ensemble written with `localhost`
/// everywhere serves clients on the addresses the names resolve to.
#[test]
fn host_names_in_server_lines_client_addresses() {
    if !ringkeeper_only("host_names_in_server_lines_client_addresses") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ports: Vec<(u16, u16, u16)> = (0..3).map(|_| (free_port(), free_port(), free_port())).collect();
    let lines: String = ports
        .iter()
        .enumerate()
        .map(|(i, (peer, election, client))| {
            format!("server.{}=localhost:{peer}:{election};localhost:{client}\n", i + 1)
        })
        .collect();
    let servers: Vec<SpawnedServer> = (0..3)
        .map(|i| {
            let (dir, data) = lay_out_member(root.path(), i as u64 + 1, None).unwrap();
            let cfg = format!(
                "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nadmin.enableServer=false\n{lines}",
                data.display()
            );
            SpawnedServer::start(dir, &cfg, ports[i].2)
        })
        .collect();
    eventually("the ensemble serves on 127.0.0.1", Duration::from_secs(60), || {
        let modes: Vec<String> = servers.iter().map(SpawnedServer::srvr).collect();
        modes.iter().filter(|m| m.contains("Mode: leader")).count() == 1
            && modes.iter().filter(|m| m.contains("Mode: follower")).count() == 2
    });
    let mut session = RawSession::connect_to(SocketAddr::from(([127, 0, 0, 1], ports[2].2)), 30_000);
    assert_eq!(session.code(OpCode::Create, &create_request("/by-host-name", 0)), 0);
}

/// `GET path` over plain HTTP/1.1; the status line and the body.
fn http_get(port: u16, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    (head.lines().next().unwrap_or("").to_owned(), body.to_owned())
}

/// Samples of a Prometheus text exposition: `name{labels}` -> value; `# TYPE` lines checked.
fn parse_exposition(text: &str) -> (BTreeMap<String, f64>, BTreeMap<String, String>) {
    let mut samples = BTreeMap::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            types.insert(name.to_owned(), kind.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (name, value) = line.rsplit_once(' ').expect("name value");
            samples.insert(
                name.to_owned(),
                value.parse::<f64>().unwrap_or_else(|_| panic!("bad sample {line}")),
            );
        }
    }
    (samples, types)
}

/// A ringkeeper server (`None` against Apache) with all four-letter words and the extra
/// config `config` makes for a free port, and that port.
fn start_with_http_port(test: &str, config: impl FnOnce(u16) -> String) -> Option<(TestServer, u16)> {
    if !ringkeeper_only(test) {
        return None;
    }
    let port = free_port();
    Some((TestServer::start_with(&format!("4lw.commands.whitelist=*\n{}", config(port))), port))
}

#[test]
fn prometheus_endpoint_serves_apache_metric_names() {
    let Some((server, port)) = start_with_http_port("prometheus_endpoint", |port| {
        format!(
            "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
             metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={port}"
        )
    }) else {
        return;
    };
    let mut session = RawSession::connect(&server, 30_000);
    for i in 0..20 {
        assert_eq!(session.code(OpCode::Create, &create_request(&format!("/m{i}"), 0)), 0);
    }
    assert_eq!(session.code(OpCode::Create, &create_request("/m-ephemeral", 1)), 0);
    // The data role publishes its gauges every tick (50 ms).
    let mntr = monitor_values(&server.four_letter("mntr"));
    let mut scraped = BTreeMap::new();
    eventually("metrics show the new znodes", Duration::from_secs(5), || {
        let (status, body) = http_get(port, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        let (samples, types) = parse_exposition(&body);
        assert_eq!(types.get("znode_count").map(String::as_str), Some("gauge"));
        assert_eq!(types.get("fsynctime").map(String::as_str), Some("histogram"));
        scraped = samples;
        scraped.get("znode_count") == Some(&mntr["zk_znode_count"].parse::<f64>().unwrap())
    });
    assert_eq!(scraped["ephemerals_count"], 1.0);
    assert_eq!(scraped["num_alive_connections"], 1.0, "{scraped:?}");
    assert_eq!(scraped["global_sessions"], 1.0);
    assert!(scraped["approximate_data_size"] > 0.0);
    assert!(scraped["packets_received"] >= 22.0, "{scraped:?}");
    assert!(scraped["packets_sent"] >= 22.0);
    assert_eq!(scraped["outstanding_requests"], 0.0);
    assert!(scraped["fsynctime_count"] >= 1.0, "every create was fsynced: {scraped:?}");
    assert!(scraped["request_latency_ms_count"] >= 22.0, "{scraped:?}");
    assert!(scraped["avg_latency"] > 0.0);
    assert!(scraped["ringkeeper_log_batch_records_sum"] >= 22.0, "{scraped:?}");
    assert!(scraped.contains_key("open_file_descriptor_count"));
    assert!(!scraped.contains_key("learners"), "a standalone server has no learners");
    // Per-hop latency of sampled writes: one series per hop, there before any sample.
    let (hop_samples, hop_types) = parse_exposition(&http_get(port, "/metrics").1);
    assert_eq!(hop_types.get("ringkeeper_hop_us").map(String::as_str), Some("histogram"));
    assert!(hop_samples.contains_key("ringkeeper_hop_us_count{hop=\"reply_written\"}"), "{hop_samples:?}");
    assert_eq!(server.four_letter("snap"), "Snapshot requested\n");
    eventually("the snapshot's write time is scraped", Duration::from_secs(10), || {
        parse_exposition(&http_get(port, "/metrics").1).0.get("snapshottime_count") == Some(&1.0)
    });
    let (status, _) = http_get(port, "/nothing-here");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

/// Per-role figures (queue depth, busy time, items) and group-commit sizes, scraped from
/// `/metrics` and read from `mntr`, under both executor layouts. A slow group commit (1 s
/// of `batchDelayMicros`) with two queue slots makes the data role stop taking requests while
/// a pipelined burst waits, so its queue depth is seen above 0, then back at 0.
#[test]
fn per_role_queue_depth_busy_time_and_batch_sizes_are_scraped() {
    for executors in ["one", "per-role"] {
        let Some((server, port)) = start_with_http_port("per_role_metrics", |port| {
            format!(
                "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
                 metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={port}\n\
                 ringkeeper.executors={executors}\nringkeeper.queue.depth=2\n\
                 ringkeeper.log.batchDelayMicros=1000000"
            )
        }) else {
            return;
        };
        let scrape = || {
            let (status, body) = http_get(port, "/metrics");
            assert_eq!(status, "HTTP/1.1 200 OK");
            let (samples, types) = parse_exposition(&body);
            assert_eq!(types.get("ringkeeper_role_queue_depth").map(String::as_str), Some("gauge"));
            assert_eq!(types.get("ringkeeper_role_busy_seconds_total").map(String::as_str), Some("counter"));
            samples
        };
        let sample = |samples: &BTreeMap<String, f64>, name: &str, role: &str| {
            samples
                .get(&format!("{name}{{role=\"{role}\"}}"))
                .copied()
                .unwrap_or_else(|| panic!("{name} {role}: {samples:?}"))
        };
        let mut session = RawSession::connect(&server, 30_000);
        let burst = 12;
        let xids: Vec<i32> =
            (0..burst).map(|i| session.send(OpCode::Create, &create_request(&format!("/r{i}"), 0))).collect();
        let mut deepest = 0.0f64;
        let deadline = Instant::now() + Duration::from_secs(3);
        while deepest < 1.0 && Instant::now() < deadline {
            deepest = deepest.max(sample(&scrape(), "ringkeeper_role_queue_depth", "data"));
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(deepest >= 1.0, "{executors}: requests waited for the data role: {deepest}");
        for xid in xids {
            assert_eq!(session.reply_to(xid).expect("a reply").header.err, 0);
        }
        // Busy time is published once a second per executor.
        let mut samples = BTreeMap::new();
        eventually("every role's busy time is published", Duration::from_secs(5), || {
            samples = scrape();
            ["network", "data", "log"]
                .iter()
                .all(|r| sample(&samples, "ringkeeper_role_busy_seconds_total", r) > 0.0)
        });
        for role in ["network", "data", "log"] {
            assert_eq!(
                sample(&samples, "ringkeeper_role_queue_depth", role),
                0.0,
                "{executors} {role}: {samples:?}"
            );
            let items = sample(&samples, "ringkeeper_role_items_total", role);
            assert!(items >= burst as f64, "{executors} {role} took {items} items: {samples:?}");
        }
        let (records, commits) =
            (samples["ringkeeper_log_batch_records_sum"], samples["ringkeeper_log_batch_records_count"]);
        assert!(
            records >= burst as f64 && commits < records,
            "{executors}: group commits batch: {records} in {commits}"
        );

        let mntr = monitor_values(&server.four_letter("mntr"));
        let value = |key: &str| -> f64 {
            mntr.get(key).unwrap_or_else(|| panic!("{key}: {mntr:?}")).parse().unwrap()
        };
        for role in ["network", "data", "log"] {
            assert_eq!(value(&format!("zk_ringkeeper_{role}_queue_depth")), 0.0);
            assert!(value(&format!("zk_ringkeeper_{role}_items")) >= burst as f64);
            assert!(value(&format!("zk_ringkeeper_{role}_busy_ms")) >= 0.0);
        }
        assert_eq!(value("zk_ringkeeper_log_batch_records_sum"), records);
        assert_eq!(value("zk_ringkeeper_log_batch_records_count"), commits);
        assert_eq!(value("zk_ringkeeper_snapshot_ms_count"), 0.0);
        assert_eq!(server.four_letter("snap"), "Snapshot requested\n");
        eventually("the snapshot's time is in mntr", Duration::from_secs(10), || {
            monitor_values(&server.four_letter("mntr"))
                .get("zk_ringkeeper_snapshot_ms_count")
                .map(String::as_str)
                == Some("1")
        });
    }
}

/// `GET /commands/<name>` of the AdminServer, parsed.
fn admin_command(port: u16, name: &str) -> serde_json::Value {
    let (status, body) = http_get(port, &format!("/commands/{name}"));
    assert_eq!(status, "HTTP/1.1 200 OK", "{name}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}: {body}"))
}

#[test]
fn admin_server_answers_apache_commands_in_json() {
    let Some((server, port)) = start_with_http_port("admin_server", |port| {
        format!("admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={port}")
    }) else {
        return;
    };
    let (status, links) = http_get(port, "/commands");
    assert_eq!(status, "HTTP/1.1 200 OK");
    for name in ["monitor", "server_stats", "stats", "connections", "configuration", "watch_summary", "dirs"]
    {
        assert!(links.contains(&format!("<a href=\"/commands/{name}\">{name}</a>")), "{links}");
    }
    assert_eq!(admin_command(port, "ruok"), serde_json::json!({"command": "ruok", "error": null}));

    let mut session = RawSession::connect(&server, 30_000);
    assert_eq!(session.code(OpCode::Create, &create_request("/admin", 0)), 0);
    assert_eq!(session.code(OpCode::Exists, &PathWatchRequest { path: "/admin".into(), watch: true }), 0);

    let monitor = admin_command(port, "monitor");
    let mntr = monitor_values(&server.four_letter("mntr"));
    assert_eq!(monitor["command"], "monitor");
    assert_eq!(monitor["error"], serde_json::Value::Null);
    assert_eq!(monitor["server_state"], "standalone");
    assert_eq!(monitor["znode_count"].to_string(), mntr["zk_znode_count"]);
    assert_eq!(monitor["watch_count"], 1);
    assert!(monitor["avg_latency"].as_f64().unwrap() > 0.0, "{monitor}");
    // Four-letter words name the same commands, as in Apache.
    assert_eq!(admin_command(port, "mntr")["command"], "monitor");

    let stats = admin_command(port, "stat");
    assert_eq!(stats["command"], "stats");
    assert_eq!(stats["server_stats"]["server_state"], "standalone");
    assert_eq!(stats["server_stats"]["num_alive_client_connections"], 1);
    assert!(stats["server_stats"]["data_dir_size"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["connections"].as_array().unwrap().len(), 1, "{stats}");
    let client = session.stream.local_addr().unwrap().to_string();
    let cons = admin_command(port, "connections");
    assert_eq!(cons["connections"][0]["remote_socket_address"], client.as_str());
    assert_eq!(cons["connections"][0]["session_id"], session.session_id());
    assert_eq!(admin_command(port, "configuration")["client_port"], server.port);
    // Apache's third name for it; a standalone server has no voting view.
    assert_eq!(admin_command(port, "config")["command"], "configuration");
    assert_eq!(
        admin_command(port, "voting_view"),
        serde_json::json!({"command": "voting_view", "error": null, "current_config": {}})
    );
    let watches = admin_command(port, "watch_summary");
    assert_eq!(
        (watches["num_connections"].as_u64(), watches["num_total_watches"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        admin_command(port, "nosuch"),
        serde_json::json!({"command": "nosuch", "error": "Unknown command: nosuch"})
    );
}

/// The top-level `properties` blocks of README.md (whole zoo.cfg files, not snippets).
fn readme_zoo_cfgs() -> Vec<String> {
    let readme = std::fs::read_to_string(ringkeeper_tests::workspace_root().join("README.md")).unwrap();
    readme
        .split("\n```properties\n")
        .skip(1)
        .map(|rest| rest.split("\n```").next().unwrap().to_owned())
        .collect()
}

/// A README zoo.cfg with only what cannot work for several servers on this machine
/// replaced: `dataDir`, `clientPort`, the `server.N` hosts and ports (`ports[N-1]` = peer,
/// election, client), and the AdminServer's port (8080 by default) is moved to a free one.
fn localized(cfg: &str, data_dir: &std::path::Path, client_port: u16, ports: &[(u16, u16, u16)]) -> String {
    let admin = format!("admin.serverAddress=127.0.0.1\nadmin.serverPort={}\n", free_port());
    let lines: String = cfg
        .lines()
        .map(|line| match line.split_once('=') {
            Some(("dataDir", _)) => format!("dataDir={}", data_dir.display()),
            Some(("clientPort", _)) => format!("clientPort={client_port}"),
            Some((key, value)) if key.starts_with("server.") => {
                let id: usize = key["server.".len()..].parse().unwrap();
                let (peer, election, client) = ports[id - 1];
                let role = if value.contains(":observer") { ":observer" } else { "" };
                format!("{key}=127.0.0.1:{peer}:{election}{role};127.0.0.1:{client}")
            }
            _ => line.to_owned(),
        })
        .map(|line| line + "\n")
        .collect();
    lines + &admin
}

/// A ringkeeper process started from a config written here, killed when dropped.
struct SpawnedServer {
    child: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl SpawnedServer {
    fn start(dir: std::path::PathBuf, cfg: &str, port: u16) -> SpawnedServer {
        Self::start_with_env(dir, cfg, port, &[])
    }

    fn start_with_env(dir: std::path::PathBuf, cfg: &str, port: u16, env: &[(&str, &str)]) -> SpawnedServer {
        std::fs::write(dir.join("zoo.cfg"), cfg).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new(ringkeeper_binary())
            .arg(dir.join("zoo.cfg"))
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn ringkeeper");
        SpawnedServer { child, dir, port }
    }

    fn srvr(&self) -> String {
        ringkeeper_tests::four_letter_at(SocketAddr::from(([127, 0, 0, 1], self.port)), "srvr")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn readme_zoo_cfgs_start_as_written() {
    if !ringkeeper_only("readme_zoo_cfgs_start_as_written") {
        return;
    }
    // Whole files (with dataDir) are started; fragments (e.g. the TLS keys) must parse with
    // no key unknown or ignored.
    let (blocks, fragments): (Vec<String>, Vec<String>) =
        readme_zoo_cfgs().into_iter().partition(|b| b.lines().any(|l| l.starts_with("dataDir=")));
    assert_eq!(blocks.len(), 2, "the standalone and the ensemble zoo.cfg");
    assert!(!fragments.is_empty(), "the TLS fragment");
    for fragment in &fragments {
        let text = format!("dataDir=/var/lib/ringkeeper\n{fragment}\n");
        match ringkeeper_server::config::Config::parse(&text) {
            Ok((_, warnings)) => assert!(warnings.is_empty(), "README fragment {fragment}:\n{warnings:?}"),
            Err(e) => panic!("README fragment does not parse: {e}\n{fragment}"),
        }
    }
    let root = tempfile::tempdir().unwrap();

    let standalone_dir = root.path().join("standalone");
    std::fs::create_dir_all(&standalone_dir).unwrap();
    let port = free_port();
    let cfg = localized(&blocks[0], &standalone_dir.join("data"), port, &[]);
    let standalone = SpawnedServer::start(standalone_dir, &cfg, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !standalone.srvr().contains("Mode: standalone") {
        assert!(
            Instant::now() < deadline,
            "the README's standalone zoo.cfg does not serve:\n{}",
            standalone.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!standalone.log().contains("WARN"), "warnings at start-up:\n{}", standalone.log());

    let members = blocks[1].lines().filter(|l| l.starts_with("server.")).count();
    let ports: Vec<(u16, u16, u16)> = (0..members).map(|_| (free_port(), free_port(), free_port())).collect();
    let servers: Vec<SpawnedServer> = (0..members)
        .map(|i| {
            let (dir, data) = lay_out_member(root.path(), i as u64 + 1, None).unwrap();
            let cfg = localized(&blocks[1], &data, ports[i].2, &ports);
            SpawnedServer::start(dir, &cfg, ports[i].2)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let modes: Vec<String> = servers.iter().map(|s| s.srvr()).collect();
        let count = |mode: &str| modes.iter().filter(|m| m.contains(&format!("Mode: {mode}\n"))).count();
        if (count("leader"), count("follower"), count("observer")) == (1, members - 2, 1) {
            break;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = servers.iter().map(SpawnedServer::log).collect();
            panic!("the README's ensemble did not serve within 60 s: {modes:?}\nlogs: {logs:#?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for server in &servers {
        assert!(!server.log().contains("WARN"), "warnings at start-up:\n{}", server.log());
    }
}

/// Every line of a JSON log is one object with the time, level, target and message; a
/// `log`-macro record (the unknown key's warning) and a `tracing` event with fields (the
/// session) land in the same stream; RUST_LOG filters both.
#[test]
fn json_logs_on_request() {
    if !ringkeeper_only("json_logs_on_request") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = format!(
        "dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nfooBar=1\n",
        dir.path().join("data").display()
    );
    let env = [("RINGKEEPER_LOG_FORMAT", "json"), ("RUST_LOG", "info,ringkeeper_server::runtime=warn")];
    let server = SpawnedServer::start_with_env(dir.path().to_path_buf(), &cfg, port, &env);
    eventually("the server serves", Duration::from_secs(30), || server.srvr().contains("Mode: standalone"));
    let session = RawSession::connect_to(SocketAddr::from(([127, 0, 0, 1], port)), 30_000);
    eventually("the session is logged", Duration::from_secs(5), || {
        server.log().contains("Established session")
    });
    let log = server.log();
    // Every line but the banner on stdout is JSON.
    let records: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.starts_with("ringkeeper listening on "))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(
        records.iter().all(|r| ["timestamp", "level", "target", "message"].iter().all(|k| r[k].is_string())),
        "{log}"
    );
    let has = |level: &str, text: &str| {
        records.iter().any(|r| r["level"] == level && r["message"].as_str().is_some_and(|m| m.contains(text)))
    };
    assert!(has("WARN", "unknown key fooBar"), "{log}");
    assert!(has("INFO", "ringkeeper 0."), "the start line:\n{log}");
    // A `log` record keeps its own target and shows none of the bridge's fields.
    let start =
        records.iter().find(|r| r["message"].as_str().is_some_and(|m| m.starts_with("ringkeeper 0.")));
    assert_eq!(start.expect("the start line")["target"], "ringkeeper", "{log}");
    assert!(records.iter().all(|r| r.as_object().unwrap().keys().all(|k| !k.starts_with("log."))), "{log}");
    let established = records.iter().find(|r| r["message"] == "Established session").expect("the session");
    assert_eq!(established["session_id"], format!("0x{:x}", session.session_id()));
    assert_eq!(established["timeout_ms"], 30_000);
    assert_eq!(established["target"], "ringkeeper_engine::request");
    // RUST_LOG=...runtime=warn left out the runtime's info lines.
    assert!(
        records.iter().all(|r| r["target"] != "ringkeeper_server::runtime" || r["level"] != "INFO"),
        "{log}"
    );
}

#[test]
fn an_unresolvable_peer_name_is_retried_and_the_others_form_a_quorum() {
    if !ringkeeper_only("an_unresolvable_peer_name_is_retried") {
        return;
    }
    // server.3's name never resolves (RFC 6761 `.invalid`), as a StatefulSet member not yet
    // in DNS; server.1 is named by a name that does resolve. Server 3 itself is started too:
    // its own name does not resolve either, so it waits for it instead of exiting; with
    // quorumListenOnAllIPs it needs no own name and listens on every address.
    let root = tempfile::tempdir().unwrap();
    let ports: Vec<(u16, u16, u16)> = (0..3).map(|_| (free_port(), free_port(), free_port())).collect();
    let hosts = ["localhost", "127.0.0.1", "ringkeeper-peer-3.invalid"];
    let server_lines: String = hosts
        .iter()
        .zip(&ports)
        .enumerate()
        .map(|(i, (host, (peer, election, client)))| {
            format!("server.{}={host}:{peer}:{election};127.0.0.1:{client}\n", i + 1)
        })
        .collect();
    let start = |i: usize, extra: &str| {
        let (dir, data) = lay_out_member(root.path(), i as u64 + 1, None).unwrap();
        let cfg = format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nadmin.enableServer=false\n{server_lines}{extra}",
            data.display()
        );
        SpawnedServer::start(dir, &cfg, ports[i].2)
    };
    let servers: Vec<SpawnedServer> = (0..2).map(|i| start(i, "")).collect();
    let mut third = start(2, "");
    let logs = || servers.iter().map(SpawnedServer::log).collect::<Vec<_>>();
    eventually("servers 1 and 2 elect a leader without server 3", Duration::from_secs(60), || {
        let modes: Vec<String> = servers.iter().map(SpawnedServer::srvr).collect();
        modes.iter().any(|m| m.contains("Mode: leader")) && modes.iter().any(|m| m.contains("Mode: follower"))
    });
    let mut session = RawSession::connect_to(SocketAddr::from(([127, 0, 0, 1], ports[1].2)), 10_000);
    let reply = session.call(OpCode::Create, &create_request("/written-without-server-3", 0));
    assert_eq!(reply.header.err, 0, "a write commits on the quorum of 1 and 2: {:#?}", logs());
    for log in logs() {
        let unresolved = format!("server 3: cannot resolve ringkeeper-peer-3.invalid:{}", ports[2].0);
        assert_eq!(log.matches(&unresolved).count(), 1, "logged once, then retried quietly:\n{log}");
        assert!(!log.contains("FATAL"), "{log}");
    }
    let own = format!(
        "server.3 (this server): cannot resolve its own address ringkeeper-peer-3.invalid:{}",
        ports[2].0
    );
    assert!(third.child.try_wait().unwrap().is_none(), "server 3 waits for its name:\n{}", third.log());
    assert_eq!(third.log().matches(&own).count(), 1, "said once:\n{}", third.log());
    drop(third);
    third = start(2, "quorumListenOnAllIPs=true\n");
    eventually("server 3 listens on every address", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", ports[2].0)).is_ok()
    });
    assert!(third.child.try_wait().unwrap().is_none(), "{}", third.log());
    assert!(!third.log().contains("cannot resolve its own address"), "{}", third.log());
}

/// A second server started by mistake on a running member's zoo.cfg (another client port and
/// dataDir, the same `server.N` ports) cannot take over the member's quorum ports: it fails
/// to bind them ("Address already in use", as Apache's) and exits, and the ensemble keeps
/// serving. ringkeeper names the `server.N` port; Apache exits from its election listener.
#[test]
fn a_second_server_on_a_members_quorum_ports_exits_and_the_ensemble_serves() {
    let ensemble = Ensemble::start(3, 0, "");
    let target = ensemble.target;
    let member = ensemble.config_path(0);
    let root = tempfile::tempdir().unwrap();
    let (dir, data) = lay_out_member(root.path(), 1, None).unwrap();
    // Its own client port, in clientPort and in its server.1 line (Apache checks they agree).
    let (own_client, client_port) = (ensemble.members[0].client_port, free_port());
    let config: String = std::fs::read_to_string(&member)
        .unwrap()
        .lines()
        .map(|line| match line.split_once('=') {
            Some(("dataDir", _)) => format!("dataDir={}\n", data.display()),
            Some(("clientPort", _)) => format!("clientPort={client_port}\n"),
            _ => {
                line.replace(&format!(";127.0.0.1:{own_client}"), &format!(";127.0.0.1:{client_port}")) + "\n"
            }
        })
        .collect();
    std::fs::write(dir.join("zoo.cfg"), &config).unwrap();
    let mut second = ServerChild::new(dir.join("server.log"));
    second.spawn(target.kind().command(&dir.join("zoo.cfg"), &dir, false, LogLevel::Default)).unwrap();
    let status = second.wait_exit(Duration::from_secs(60));
    let log = second.log();
    assert!(matches!(status, Some(s) if !s.success()), "the second server runs on ({status:?}):\n{log}");
    assert!(log.contains("Address already in use"), "{log}");
    if target == Target::Ringkeeper {
        let peer_port = ensemble.members[0].peer_port;
        let named = format!("server.1 quorum port: cannot listen on 127.0.0.1:{peer_port}");
        assert!(log.contains(&named), "{log}");
    }
    for i in 0..3 {
        assert!(ensemble.mode(i).is_some(), "member {} stopped serving:\n{}", i + 1, ensemble.log(i));
    }
    let mut session =
        RawSession::connect_to(SocketAddr::from(([127, 0, 0, 1], ensemble.members[0].client_port)), 10_000);
    assert_eq!(session.call(OpCode::Create, &create_request("/after-the-second-server", 0)).header.err, 0);
}
