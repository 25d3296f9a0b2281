//! A real, tiny probe of this machine: real durable (O_DSYNC) writes in a temporary
//! directory, real pinned threads. Checks the bounds hold (sample counts never exceed what
//! was asked), the measurement file is gone afterwards, and the probe file round-trips.

use std::time::Duration;

use ringkeeper_server::config::LogWriteMode;
use ringkeeper_tune::measure::cores::{CoreBounds, CoreRelation};
use ringkeeper_tune::measure::disk::DiskBounds;
use ringkeeper_tune::probe::topology::read_topology;
use ringkeeper_tune::probe::{run_probe, Probe, ProbeOptions};
use ringkeeper_tune::report;

fn tiny_options(data_dir: std::path::PathBuf, data_log_dir: Option<std::path::PathBuf>) -> ProbeOptions {
    ProbeOptions {
        data_dir,
        data_log_dir,
        disk: Some(DiskBounds {
            fsyncs_max: 5,
            batch_sizes: vec![4096, 5000, 65536],
            writes_per_size_max: 3,
            budget_per_series: Duration::from_secs(20),
            file_bytes_max: 256 << 10,
            quiet: true,
            write_mode: LogWriteMode::Dsync,
        }),
        cores: Some(CoreBounds {
            round_trips_max: 300,
            budget_per_pair: Duration::from_secs(20),
            pairs_max: 3,
            quiet: true,
        }),
    }
}

#[test]
fn tiny_probe_of_this_machine_is_bounded_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("log");
    let probe = run_probe(&tiny_options(data.clone(), Some(log.clone()))).unwrap();

    assert_eq!(probe.cpu.cpu_ids(), read_topology(std::path::Path::new("/sys")).unwrap().cpu_ids());
    let roles: Vec<&str> = probe.disks.iter().map(|d| d.role.as_str()).collect();
    assert_eq!(roles, ["dataDir", "dataLogDir"]);
    assert_eq!(probe.disks[1].path, std::fs::canonicalize(&log).unwrap());

    let disk = probe.log_disk.as_ref().expect("measured");
    assert_eq!(disk.dir, std::fs::canonicalize(&log).unwrap(), "the log directory is measured");
    assert!((1..=5).contains(&disk.fdatasync.samples), "{}", disk.fdatasync.samples);
    assert_eq!(disk.fdatasync_histogram.iter().map(|b| b.count).sum::<usize>(), disk.fdatasync.samples);
    // 5000 is rounded up to 8192 (4 KiB alignment); sizes ascend.
    let sizes: Vec<usize> = disk.batch_curve.iter().map(|p| p.batch_bytes).collect();
    assert_eq!(sizes, [4096, 8192, 65536]);
    for point in &disk.batch_curve {
        assert!((1..=3).contains(&point.latency.samples));
        assert!(point.latency.min_us <= point.latency.p50_us && point.latency.p50_us <= point.latency.max_us);
        assert!(point.throughput_bytes_per_s > 0.0);
    }
    // Nothing left behind in either directory.
    assert_eq!(std::fs::read_dir(&log).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);

    let first = &probe.core_latency[0];
    let first_allowed = ringkeeper_tune::measure::cores::allowed_cpus()[0];
    assert_eq!(
        (first.relation, first.cpu_a, first.cpu_b),
        (CoreRelation::SameCpu, first_allowed, first_allowed)
    );
    assert!(probe.core_latency.len() <= 3);
    assert!(probe.core_latency.iter().all(|p| (1..=300).contains(&p.round_trip.samples)));

    let file = dir.path().join("probe.json");
    probe.save(&file).unwrap();
    assert_eq!(Probe::load(&file).unwrap(), probe);

    let curve = report::batch_curve_svg(&probe).unwrap();
    assert!(curve.starts_with("<svg") && curve.trim_end().ends_with("</svg>"));
    assert_eq!(curve.matches("<polyline").count(), 2, "p50 and p99");
    assert_eq!(curve.matches("<circle").count(), 2 * sizes.len());
    let histogram = report::fsync_histogram_svg(&probe).unwrap();
    assert_eq!(histogram.matches("<rect x=").count(), disk.fdatasync_histogram.len());
    let text = report::probe_text(&probe);
    assert!(text.contains("durable after 4 KiB write (writeMode=dsync,"), "{text}");
}

#[test]
fn facts_only_probe_measures_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = tiny_options(dir.path().join("d"), None);
    options.disk = None;
    options.cores = None;
    let probe = run_probe(&options).unwrap();
    assert!(probe.log_disk.is_none() && probe.core_latency.is_empty());
    assert_eq!(probe.disks.len(), 1);
    assert!(report::batch_curve_svg(&probe).is_none());
}

#[test]
fn bad_probe_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    std::fs::write(&path, "{\"format_version\": 1}").unwrap();
    let message = Probe::load(&path).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("probe file {}: not a probe file: missing field", path.display())),
        "{message}"
    );
    let missing = dir.path().join("none.json");
    let message = Probe::load(&missing).unwrap_err().to_string();
    assert!(message.starts_with(&format!("{}: reading the probe file: ", missing.display())), "{message}");
}

#[test]
fn ping_pong_pairs_cover_each_relation_within_the_affinity_mask() {
    use ringkeeper_tune::measure::cores::pairs_to_measure;
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/64cpu-smt-numa-nvme.json");
    let topology = Probe::load(&path).unwrap().cpu;
    let all: Vec<usize> = (0..64).collect();
    // Same CPU, same package, the other node, the SMT sibling (CPU 0's is 32).
    assert_eq!(pairs_to_measure(&topology, &all, 8), [(0, 0), (0, 1), (0, 16), (0, 32)]);
    assert_eq!(pairs_to_measure(&topology, &all, 2), [(0, 0), (0, 1)]);
    // A cpuset of node 1 only: pairs start from its first CPU and never leave the set.
    let node1: Vec<usize> = (16..32).chain(48..64).collect();
    assert_eq!(pairs_to_measure(&topology, &node1, 8), [(16, 16), (16, 17), (16, 48)]);
    assert!(pairs_to_measure(&topology, &[], 8).is_empty());
}
