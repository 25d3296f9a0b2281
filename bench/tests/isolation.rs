//! `equal` isolation against real ringkeeper processes: each member of a 3-server ensemble
//! runs in its own cgroup with the asked CPU quota, a saturating load reports every member's
//! CPU per op (and how long its quota held it) and cannot push a member past its quota, and the cgroups are gone once the
//! ensemble is dropped. Needs root (or a delegated cgroup subtree); where no cgroup with a
//! CPU quota can be made, the harness must say so ("not supported") instead of running.

use std::path::PathBuf;
use std::time::Duration;

use ringkeeper_bench::servers::{self, server_processes};
use ringkeeper_bench::{run_load, BenchError, Isolation, LoadConfig, Op, OpMix, Shape};
use ringkeeper_tests::ensemble::EnsemblePlan;
use ringkeeper_tests::ringkeeper_binary;

/// The cgroup directory of `pid` in the hierarchy holding `file` (v1 `cpu` or v2).
fn cgroup_dir_of(pid: u32) -> Option<PathBuf> {
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    membership.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let group = path.trim_start_matches('/');
        mounts.lines().find_map(|m| {
            let fields: Vec<&str> = m.split_whitespace().collect();
            let dir = PathBuf::from(fields.get(1)?).join(group);
            let v1_cpu = fields.get(2) == Some(&"cgroup")
                && controllers.split(',').any(|c| c == "cpu")
                && fields.get(3)?.split(',').any(|o| o == "cpu");
            let v2 = fields.get(2) == Some(&"cgroup2") && controllers.is_empty();
            ((v1_cpu || v2) && group.contains("rk-harness-") && dir.is_dir()).then_some(dir)
        })
    })
}

#[test]
fn equal_isolation_puts_each_member_in_its_own_quota_and_reports_its_cpu() {
    let root = tempfile::tempdir().unwrap();
    let plan = servers::plan(servers::ringkeeper(ringkeeper_binary()), 3, root.path()).unwrap();
    let isolation = Isolation::Equal { cpus: 0.3, period: Duration::from_millis(10) };
    let ensemble = match servers::start(&EnsemblePlan { isolation, ..plan }) {
        Err(BenchError::NotSupported(why)) => {
            assert!(why.contains("cgroup"), "{why}");
            eprintln!("skipped: {why}");
            return;
        }
        other => other.expect("ensemble with equal isolation"),
    };
    let processes = server_processes(&ensemble);
    assert_eq!(processes.len(), 3);
    let mut groups = Vec::new();
    for process in &processes {
        let dir =
            cgroup_dir_of(process.pid).unwrap_or_else(|| panic!("{process:?} is in no rk-harness cgroup"));
        let quota = std::fs::read_to_string(dir.join("cpu.max"))
            .or_else(|_| std::fs::read_to_string(dir.join("cpu.cfs_quota_us")))
            .unwrap();
        assert!(quota.starts_with("3000"), "{}: quota {quota:?}", dir.display());
        groups.push(dir);
    }
    groups.sort();
    groups.dedup();
    assert_eq!(groups.len(), 3, "each member needs its own cgroup: {groups:?}");

    let config = LoadConfig {
        hosts: ensemble.connect_string(),
        clients: 8,
        inflight: 16,
        mix: OpMix::only(Op::SetData),
        shape: Shape {
            warmup: Duration::from_millis(300),
            measure: Duration::from_millis(2000),
            keys: 50,
            progress: false,
            ..Shape::default()
        },
        server_processes: processes,
        tls: None,
    };
    let report = run_load(&config).expect("load run");
    let table = report.table();
    assert!(report.ops > 0 && report.errors == 0, "{table}");
    assert_eq!(report.cpu.servers.len(), 3, "{table}");
    let total = report.cpu.servers_total.as_ref().expect("summed server cpu");
    assert_eq!(total.cpu_us, report.cpu.servers.iter().map(|s| s.cpu_us).sum::<u64>());
    assert!(total.us_per_op > 0.0, "{table}");
    for member in &report.cpu.servers {
        // 30% of a core is the quota; a tick (10 ms over 2 s) and the window edges add a little.
        assert!(member.core_percent <= 36.0, "{} ran past its quota: {table}", member.name);
        assert!(member.throttled_percent.is_some(), "{}: no quota statistics: {table}", member.name);
    }
    drop(ensemble);
    for dir in &groups {
        assert!(!dir.exists(), "cgroup {} left behind", dir.display());
    }
}
