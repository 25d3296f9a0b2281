//! Compatibility with real third-party ZooKeeper clients: each test starts a fresh
//! [`TestServer`] (ringkeeper, or Apache with `RINGKEEPER_TEST_TARGET=apache`) and runs one
//! script from `tests/compat/` against its `connect_string()`:
//!
//! - `kazoo_basic.py`   kazoo (Python): CRUD + Stat, ephemeral/sequential, multi, watches,
//!   digest ACLs, `server_version()` (the `envi` four-letter word), session expiry;
//! - `kazoo_recipes.py` kazoo's Lock, Election, Counter, Queue and Barrier, two sessions each;
//! - `zkcli.sh`         Apache's `zkCli.sh` (Java) fed command batches on stdin;
//! - `cli_mt.sh`        the C client's `cli_mt`, driven one command at a time through a FIFO.
//!
//! The scripts check values (Stat fields, data, error codes, event counts), not only that
//! calls return, and exit non-zero on the first mismatch. Each runs in its own process
//! group under a wall-clock limit; on failure or timeout the test panics with the script's
//! output and the server log. Requirements (installed by `.ci/run`): `python3` with
//! `tests/compat/requirements.txt`, Debian's `zookeeper` (zkCli.sh, Java) and
//! `zookeeper-bin` (cli_mt).

use ringkeeper_tests::compat::run_script;
use ringkeeper_tests::{Target, TestServer};

#[test]
fn kazoo_basic_api() {
    // kazoo's server_version() sends `envi`, which only whitelisted servers answer.
    let server = TestServer::start_with("4lw.commands.whitelist=*");
    let out = run_script(&server, "python3", "kazoo_basic.py", &["envi-whitelisted"]);
    assert!(out.trim_end().ends_with("OK"), "kazoo_basic.py did not finish:\n{out}");
}

#[test]
fn kazoo_server_version_needs_envi_whitelisted() {
    // Default whitelist (srvr only): server_version() must fail rather than invent a version.
    let server = TestServer::start();
    let out = run_script(&server, "python3", "kazoo_basic.py", &["envi-blocked"]);
    assert!(out.contains("server_version() failed as expected"), "{out}");
}

#[test]
fn kazoo_recipes() {
    let server = TestServer::start();
    let out = run_script(&server, "python3", "kazoo_recipes.py", &[]);
    assert!(out.trim_end().ends_with("OK"), "kazoo_recipes.py did not finish:\n{out}");
}

#[test]
fn zkcli_batch_sessions() {
    let server = TestServer::start();
    let out = run_script(&server, "bash", "zkcli.sh", &[]);
    assert!(out.trim_end().ends_with("OK"), "zkcli.sh did not finish:\n{out}");
}

#[test]
fn cli_mt_interactive_session() {
    let server = TestServer::start();
    let out = run_script(&server, "bash", "cli_mt.sh", &[]);
    assert!(out.trim_end().ends_with("OK"), "cli_mt.sh did not finish:\n{out}");
}

/// zkCli's setquota/listquota/delquota and the usage in `zookeeper_stats` read with kazoo; the
/// server's log names the limit each over-quota write passed (Apache 3.8 checks, and so logs,
/// only when it enforces quotas; ringkeeper logs either way).
fn quota_run(config: &str, mode: &str) {
    let server = TestServer::start_with(config);
    let out = run_script(&server, "python3", "kazoo_quota.py", &[mode]);
    assert!(out.trim_end().ends_with("OK"), "kazoo_quota.py did not finish:\n{out}");
    if mode == "enforced" || server.target == Target::Ringkeeper {
        let log = server.log();
        assert!(log.contains("Quota exceeded: /app [current count="), "no quota warning logged:\n{log}");
        assert!(log.contains("Quota exceeded: /blob [current bytes=11, hardByteLimit=10]"), "{log}");
    }
}

#[test]
fn quotas_set_listed_and_counted_with_zkcli_and_kazoo() {
    quota_run("", "soft");
}

#[test]
fn quotas_enforced_refuse_writes_past_hard_limits() {
    quota_run("enforceQuota=true", "enforced");
}
