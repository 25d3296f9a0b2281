//! Smoke test: the load generator against a real `ringkeeper` process on 127.0.0.1
//! (started by `ringkeeper_tests::TestServer`). Each op alone, then a mix of all of them with
//! watches, runs for 1.2 s (so the per-second timeline has a point) from 2 sessions with 4 requests in flight each:
//! every run must complete operations of exactly the ops it was given, see no error, and the
//! watch run must receive watch events, and every run reports the client's own CPU per op.
//! A load over TLS to a `secureClientPort` (the PKI and zoo.cfg lines of `compare --tls`)
//! runs as well: only TLS sessions are served there. Nothing here measures speed.

use std::time::Duration;

use ringkeeper_bench::compare::ClientTlsSetup;
use ringkeeper_bench::wire::ClientTls;
use ringkeeper_bench::{run_load, CreateKind, LoadConfig, LoadReport, Op, OpMix, Shape};
use ringkeeper_tests::{free_port, TestServer};

fn run(server: &TestServer, mix: OpMix) -> LoadReport {
    run_at(server, server.connect_string(), None, mix)
}

/// A short load on `hosts` of `server` (over `tls` if given), checked for errors.
fn run_at(server: &TestServer, hosts: String, tls: Option<ClientTls>, mix: OpMix) -> LoadReport {
    let config = LoadConfig {
        hosts,
        clients: 2,
        inflight: 4,
        mix,
        shape: Shape {
            warmup: Duration::ZERO,
            measure: Duration::from_millis(1200),
            keys: 10,
            progress: false,
            ..Shape::default()
        },
        server_processes: Vec::new(),
        tls,
    };
    let report = run_load(&config).expect("load run");
    let context = format!("{}\nserver log:\n{}", report.table(), server.log());
    assert!(report.ops > 0, "no op completed: {context}");
    assert_eq!(report.errors, 0, "errors: {context}");
    assert!(report.notes.is_empty(), "notes: {context}");
    assert!(report.latency.p50_us > 0 && report.latency.p50_us <= report.latency.max_us, "{context}");
    assert_eq!(report.cdf.last().map(|p| p.latency_us), Some(report.latency.max_us), "{context}");
    assert!(report.timeline.first().is_some_and(|s| s.ops > 0), "timeline: {context}");
    let client_cpu = report.cpu.client.as_ref().expect("the client's own CPU is always measured");
    assert!(client_cpu.cpu_us > 0 && client_cpu.us_per_op > 0.0, "client cpu: {context}");
    report
}

#[test]
fn each_op_and_a_mix_with_watches_run_against_a_real_server_without_errors() {
    let server = TestServer::start();
    for (_, op) in Op::ALL {
        let report = run(&server, OpMix::only(op));
        let ops: Vec<&String> = report.ops_by_op.keys().collect();
        assert_eq!(ops, [op.name()], "{}", report.table());
        assert_eq!(report.ops_by_op[op.name()], report.ops);
    }
    for kind in [CreateKind::Persistent, CreateKind::PersistentSequential, CreateKind::Ephemeral] {
        run(&server, OpMix { create_kind: kind, ..OpMix::only(Op::Create) });
    }
    let mix = OpMix {
        percents: OpMix::parse_percents("getData=30,exists=20,getChildren=10,setData=30,create=5,multi=5")
            .unwrap(),
        watch_probability: 1.0,
        ..OpMix::only(Op::SetData)
    };
    let report = run(&server, mix);
    assert_eq!(report.ops_by_op.len(), Op::ALL.len(), "{}", report.table());
    assert!(report.watch_events > 0, "setData on watched keys fired no watch:\n{}", report.table());
}

#[test]
fn a_load_over_tls_runs_against_a_secure_client_port() {
    let tls = ClientTlsSetup::new().unwrap();
    let secure_port = free_port();
    let server = TestServer::start_with(&format!("{}secureClientPort={secure_port}\n", tls.zoo_cfg()));
    let report = run_at(
        &server,
        format!("127.0.0.1:{secure_port}"),
        Some(tls.client.clone()),
        OpMix::only(Op::SetData),
    );
    assert_eq!(report.ops_by_op.keys().collect::<Vec<_>>(), ["setData"], "{}", report.table());
}
