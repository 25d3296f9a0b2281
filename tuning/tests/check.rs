//! The production checklist: each verdict rule on the values that decide it, and a run on
//! this machine (a tmpfs data directory must fail; every item appears once, in order).

mod common;

use std::path::PathBuf;

use common::{fixture, fixture_path};
use ringkeeper_server::config::Config;
use ringkeeper_tune::check::*;
use ringkeeper_tune::probe::disk::DiskInfo;

fn disk(fs_type: &str, dev: &str, device: Option<&str>) -> DiskInfo {
    DiskInfo {
        role: "dataDir".into(),
        path: PathBuf::from("/var/lib/zk"),
        dev: dev.into(),
        mount_point: PathBuf::from("/var/lib"),
        fs_type: fs_type.into(),
        mount_source: "src".into(),
        device: device.map(str::to_owned),
        scheduler: None,
        rotational: None,
        write_cache: None,
        numa_node: None,
        free_bytes: 1,
        total_bytes: 2,
    }
}

#[test]
fn filesystems() {
    assert_eq!(check_filesystem("dataDir filesystem", &disk("tmpfs", "0:27", None)).verdict, Verdict::Fail);
    assert_eq!(check_filesystem("dataDir filesystem", &disk("nfs4", "0:50", None)).verdict, Verdict::Warn);
    let ok = check_filesystem("dataDir filesystem", &disk("xfs", "259:1", Some("nvme0n1")));
    assert_eq!(
        (ok.verdict, ok.why.as_str()),
        (Verdict::Ok, "/var/lib/zk is on xfs (/var/lib), device nvme0n1")
    );
}

#[test]
fn log_and_snapshots() {
    let data = disk("xfs", "259:1", Some("nvme0n1"));
    assert_eq!(check_log_and_snapshot_disks(&data, None).verdict, Verdict::Warn);
    assert_eq!(
        check_log_and_snapshot_disks(&data, Some(&disk("xfs", "259:1", Some("nvme0n1")))).verdict,
        Verdict::Warn
    );
    // Two partitions of one disk are still one disk.
    assert_eq!(
        check_log_and_snapshot_disks(&data, Some(&disk("xfs", "259:2", Some("nvme0n1")))).verdict,
        Verdict::Warn
    );
    assert_eq!(
        check_log_and_snapshot_disks(&data, Some(&disk("xfs", "259:3", Some("nvme1n1")))).verdict,
        Verdict::Ok
    );
}

#[test]
fn host_settings() {
    assert_eq!(check_swap(0, Some(60)).verdict, Verdict::Ok);
    assert_eq!(check_swap(1, Some(1)).verdict, Verdict::Ok);
    assert_eq!(check_swap(1, Some(60)).verdict, Verdict::Warn);
    assert_eq!(check_transparent_huge_pages(Some("[always] madvise never")).verdict, Verdict::Warn);
    assert_eq!(check_transparent_huge_pages(Some("always [madvise] never")).verdict, Verdict::Ok);
    assert_eq!(check_governor(Some("powersave")).verdict, Verdict::Warn);
    assert_eq!(check_governor(Some("performance")).verdict, Verdict::Ok);
    assert_eq!(check_governor(None).verdict, Verdict::Ok);
    assert_eq!(check_open_files(Some(1024)).verdict, Verdict::Warn);
    assert_eq!(check_open_files(Some(1 << 20)).verdict, Verdict::Ok);
    assert_eq!(check_clocksource(Some("hpet")).verdict, Verdict::Warn);
    assert_eq!(check_clocksource(Some("tsc")).verdict, Verdict::Ok);
}

#[test]
fn memlock_against_what_the_server_registers() {
    let (cfg, _) =
        Config::parse("dataDir=/x\nringkeeper.network.cores=0-3\nringkeeper.log.batchBytesMax=4194304\n")
            .unwrap();
    // Log executor 2 x 4 MiB, plus 1 MiB for each of 4 network executors and the data executor.
    assert_eq!(io_uring_memory_needed(&cfg), (8 + 5) << 20);
    assert_eq!(check_memlock(Some(8 << 20), 13 << 20, false).verdict, Verdict::Warn);
    assert_eq!(check_memlock(Some(8 << 20), 13 << 20, true).verdict, Verdict::Ok);
    assert_eq!(check_memlock(Some(16 << 20), 13 << 20, false).verdict, Verdict::Ok);
    assert_eq!(check_memlock(None, 13 << 20, false).verdict, Verdict::Ok);
}

#[test]
fn probe_age_and_host_match() {
    let probe = fixture("2cpu-vm-virtio.json");
    let path = fixture_path("2cpu-vm-virtio.json");
    assert_eq!(check_probe_age(None, 2, &probe.kernel).verdict, Verdict::Warn);
    let other_host = check_probe_age(Some((&path, &probe)), 64, &probe.kernel);
    assert!(other_host.why.contains("lists 2 CPUs; this host has 64"), "{}", other_host.why);
    let mut fresh = probe.clone();
    fresh.taken_at_unix_s =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(check_probe_age(Some((&path, &fresh)), 2, &probe.kernel).verdict, Verdict::Ok);
    let mut old = fresh.clone();
    old.taken_at_unix_s -= 40 * 24 * 3600;
    let stale = check_probe_age(Some((&path, &old)), 2, &probe.kernel);
    assert!(stale.verdict == Verdict::Warn && stale.why.contains("40 day(s) old"), "{}", stale.why);
    assert_eq!(check_probe_age(Some((&path, &fresh)), 2, "other-kernel").verdict, Verdict::Warn);
}

#[test]
fn checklist_on_this_machine_fails_a_tmpfs_data_dir() {
    if !std::path::Path::new("/dev/shm").is_dir() {
        eprintln!("no /dev/shm on this machine; the tmpfs case is covered by `filesystems`");
        return;
    }
    let log = tempfile::tempdir().unwrap();
    let text = format!(
        "dataDir=/dev/shm/ringkeeper-tune-check-{}\ndataLogDir={}\n",
        std::process::id(),
        log.path().display()
    );
    let (config, _) = Config::parse(&text).unwrap();
    let items = run_checks(&CheckInputs { config, probe: None });
    let names: Vec<&str> = items.iter().map(|i| i.item.as_str()).collect();
    assert_eq!(
        names,
        [
            "dataDir filesystem",
            "dataLogDir filesystem",
            "log and snapshot disks",
            "swap",
            "transparent huge pages",
            "CPU frequency governor",
            "memlock limit (io_uring)",
            "open-file limit",
            "clock source",
            "time since last probe",
        ]
    );
    assert_eq!(items[0].verdict, Verdict::Fail, "{}", items[0].why);
    assert!(items[0].why.contains("tmpfs"), "{}", items[0].why);
    assert_eq!(worst(&items), Verdict::Fail);
    assert!(!std::path::Path::new(&format!("/dev/shm/ringkeeper-tune-check-{}", std::process::id())).exists());
}
