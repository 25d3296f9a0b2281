//! Smoke test: the load generator against a real `ringkeeper` process on 127.0.0.1
//! (started by `ringkeeper_tests::TestServer`): one second of setData from 2 sessions with
//! 4 requests in flight each must complete operations and see no error.

use std::time::Duration;

use ringkeeper_bench::{run_load, LoadConfig, OpMix, Shape, WriteOp};
use ringkeeper_tests::TestServer;

#[test]
fn write_runs_against_a_real_server_without_errors() {
    let server = TestServer::start();
    let config = LoadConfig {
        hosts: server.connect_string(),
        clients: 2,
        inflight: 4,
        mix: OpMix { read_percent: 0, write: WriteOp::SetData },
        shape: Shape {
            warmup: Duration::ZERO,
            measure: Duration::from_secs(1),
            keys: 10,
            progress: false,
            ..Shape::default()
        },
    };
    let report = run_load(&config).expect("load run");
    assert!(report.ops > 0, "no op completed:\n{}", report.table());
    assert_eq!(report.errors, 0, "errors:\n{}\nserver log:\n{}", report.table(), server.log());
    assert!(report.latency.p50_us > 0 && report.latency.p50_us <= report.latency.max_us);
}
