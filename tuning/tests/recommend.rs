//! Recommendation logic on probe files of hosts of other shapes (tests/fixtures/): the exact
//! layout and batching each shape gets, and the invariants every recommendation keeps.

mod common;

use common::{all_fixtures, fixture};
use ringkeeper_tune::measure::cores::CoreRelation;
use ringkeeper_tune::recommend::{recommend, RecommendOptions, OWNED_KEYS};

fn one_server() -> RecommendOptions {
    RecommendOptions { servers_per_host: 1 }
}

/// (network.cores, data.core, log.core, pin, batchBytesMax, batchCountMax, batchDelayMicros, queue.depth, executors,
/// zab.heartbeatMs, zab.peerTimeoutMs)
fn values(name: &str, options: RecommendOptions) -> Vec<String> {
    let rec = recommend(&fixture(name), options);
    OWNED_KEYS.iter().map(|k| rec.value(k).unwrap().to_owned()).collect()
}

#[test]
fn one_cpu_hdd_shares_the_cpu_and_waits_for_slow_flushes() {
    assert_eq!(
        values("1cpu-hdd.json", one_server()),
        ["0", "0", "0", "false", "1048576", "2048", "800", "1024", "one", "100", "800"]
    );
    let rec = recommend(&fixture("1cpu-hdd.json"), one_server());
    let delay = rec.settings.iter().find(|s| s.key == "ringkeeper.log.batchDelayMicros").unwrap();
    assert!(
        delay.reason.starts_with("sda spins and a flush is slow (durable 4 KiB write p50 8000 µs"),
        "{}",
        delay.reason
    );
}

#[test]
fn two_cpu_vm_puts_network_on_the_interrupt_cpu_and_data_with_log() {
    // Recorded on the development VM: NIC interrupts mostly on CPU 1, flush p50 ~100 µs.
    let v = values("2cpu-vm-virtio.json", one_server());
    assert_eq!(&v[..4], ["1", "0", "0", "true"]);
    assert_eq!(&v[4..], ["524288", "2048", "0", "1024", "one", "100", "800"]);
    let rec = recommend(&fixture("2cpu-vm-virtio.json"), one_server());
    assert_eq!(rec.layout.os_cores, Vec::<usize>::new());
    // virtio claims rotational=1: no batching delay on its word, however slow a flush looked.
    let mut slow = fixture("2cpu-vm-virtio.json");
    slow.log_disk.as_mut().unwrap().fdatasync.p50_us = 3850.0;
    let delay = recommend(&slow, one_server())
        .settings
        .into_iter()
        .find(|s| s.key == "ringkeeper.log.batchDelayMicros")
        .unwrap();
    assert_eq!(delay.value, "0");
    assert!(delay.reason.starts_with("vda is a virtual disk"), "{}", delay.reason);
}

#[test]
fn servers_sharing_a_host_float() {
    let shared = RecommendOptions { servers_per_host: 3 };
    let rec = recommend(&fixture("8cpu-nvme.json"), shared);
    assert!(!rec.layout.pin);
    let pin = rec.settings.iter().find(|s| s.key == "ringkeeper.pin").unwrap();
    assert!(pin.reason.starts_with("3 servers share this host"), "{}", pin.reason);
    // The same cores as for one server: only pinning changes.
    assert_eq!(values("8cpu-nvme.json", shared)[..3], values("8cpu-nvme.json", one_server())[..3]);
    assert_eq!(values("2cpu-vm-virtio.json", RecommendOptions { servers_per_host: 2 })[3], "false");
    assert_eq!(values("8cpu-nvme.json", shared)[8], "one", "servers sharing a host: one executor each");
}

#[test]
fn eight_cpus_nvme_leave_the_interrupt_cpu_to_the_os() {
    // NIC interrupts land on CPU 3: it goes to the OS; data and log on neighbouring cores.
    assert_eq!(
        values("8cpu-nvme.json", one_server()),
        ["2,4-7", "0", "1", "true", "524288", "2048", "0", "1024", "per-role", "100", "800"]
    );
    let rec = recommend(&fixture("8cpu-nvme.json"), one_server());
    assert_eq!(rec.layout.os_cores, vec![3]);
}

#[test]
fn smt_keeps_data_and_log_off_each_others_siblings() {
    // 4 physical cores x 2 threads (siblings i, i+4), interrupts on CPU 0, HDD.
    assert_eq!(
        values("8cpu-smt-hdd.json", one_server()),
        ["0,3,4,7", "1", "2", "true", "1048576", "2048", "600", "1024", "per-role", "100", "800"]
    );
    let probe = fixture("8cpu-smt-hdd.json");
    let rec = recommend(&probe, one_server());
    // The siblings of the data and log CPUs run nothing.
    assert_eq!(rec.layout.os_cores, vec![5, 6]);
    assert!(!probe.cpu.are_siblings(rec.layout.data_core, rec.layout.log_core));
}

#[test]
fn numa_host_keeps_roles_on_the_nic_node() {
    // 2 sockets x 16 cores x 2 threads; NIC and log NVMe on node 1 (CPUs 16-31, 48-63).
    let probe = fixture("64cpu-smt-numa-nvme.json");
    let rec = recommend(&probe, one_server());
    assert_eq!(
        values("64cpu-smt-numa-nvme.json", one_server()),
        ["19-26", "17", "18", "true", "524288", "2048", "0", "1024", "per-role", "100", "800"]
    );
    for cpu in rec.layout.cores_named() {
        assert_eq!(probe.cpu.cpu(cpu).unwrap().node, 1, "CPU {cpu} is off the NIC's node");
    }
    // The interrupt core (16 and its sibling 48) and the siblings of data and log stay free.
    for cpu in [16, 48, 49, 50] {
        assert!(rec.layout.os_cores.contains(&cpu), "CPU {cpu} should be left to the OS");
    }
    let net = rec.settings.iter().find(|s| s.key == "ringkeeper.network.cores").unwrap();
    assert!(net.reason.contains("NUMA node 1 holds NIC eth0"), "{}", net.reason);
    assert!(rec.notes.iter().any(|n| n.contains("network limited to 8")), "{:?}", rec.notes);
}

#[test]
fn numa_node_of_the_log_disk_when_the_nic_does_not_say() {
    let mut probe = fixture("64cpu-smt-numa-nvme.json");
    probe.nics[0].numa_node = None;
    probe.disks[1].numa_node = Some(0);
    let rec = recommend(&probe, one_server());
    for cpu in rec.layout.cores_named() {
        assert_eq!(probe.cpu.cpu(cpu).unwrap().node, 0, "CPU {cpu} is off the log disk's node");
    }
    let data = rec.settings.iter().find(|s| s.key == "ringkeeper.network.cores").unwrap();
    assert!(data.reason.contains("NUMA node 0 holds the log disk nvme1n1"), "{}", data.reason);
}

#[test]
fn isolated_cpus_are_used_pinned() {
    // isolcpus=4-15: roles run there, pinned; nothing of them is reserved for the OS.
    assert_eq!(values("16cpu-isolated-nvme.json", one_server())[..4], ["6-13", "4", "5", "true"]);
    // Several servers: isolated CPUs would need pinning, so they are left out and roles float.
    let shared = recommend(&fixture("16cpu-isolated-nvme.json"), RecommendOptions { servers_per_host: 2 });
    assert!(!shared.layout.pin);
    assert!(shared.layout.cores_named().iter().all(|c| *c < 4), "{:?}", shared.layout);
}

#[test]
fn hdd_and_nvme_differ_in_delay_and_batch_bytes() {
    let hdd = recommend(&fixture("8cpu-smt-hdd.json"), one_server());
    let nvme = recommend(&fixture("8cpu-nvme.json"), one_server());
    assert_eq!(hdd.value("ringkeeper.log.batchDelayMicros"), Some("600"));
    assert_eq!(nvme.value("ringkeeper.log.batchDelayMicros"), Some("0"));
    // HDD: ~8.2 ms fixed + ~5 ms per MiB, so a whole 1 MiB batch stays within 1.5x the fixed
    // cost; NVMe: 44 µs + 376 µs per MiB, so the in-flight window (512 KiB) decides.
    assert_eq!(hdd.value("ringkeeper.log.batchBytesMax"), Some("1048576"));
    assert_eq!(nvme.value("ringkeeper.log.batchBytesMax"), Some("524288"));
}

#[test]
fn without_measurements_the_server_defaults_stay() {
    let mut probe = fixture("8cpu-nvme.json");
    probe.log_disk = None;
    probe.core_latency.clear();
    let rec = recommend(&probe, one_server());
    assert_eq!(rec.value("ringkeeper.log.batchBytesMax"), Some("1048576"));
    assert_eq!(rec.value("ringkeeper.log.batchCountMax"), Some("1024"));
    assert_eq!(rec.value("ringkeeper.log.batchDelayMicros"), Some("0"));
    assert!(rec.notes.iter().any(|n| n.contains("no cross-core measurement")));
}

#[test]
fn every_fixture_gives_a_layout_the_host_can_run_and_the_server_parses() {
    for name in all_fixtures() {
        let probe = fixture(&name);
        for servers in [1, 2] {
            let rec = recommend(&probe, RecommendOptions { servers_per_host: servers });
            let host = probe.cpu.cpu_ids();
            assert!(rec.layout.cores_named().iter().all(|c| host.contains(c)), "{name}: {:?}", rec.layout);
            assert!(!probe.cpu.are_siblings(rec.layout.data_core, rec.layout.log_core), "{name}");
            assert_eq!(rec.settings.iter().map(|s| s.key).collect::<Vec<_>>(), OWNED_KEYS, "{name}");
            assert!(rec.settings.iter().all(|s| !s.reason.is_empty() && !s.reason.contains('\n')), "{name}");
            let lines = rec.zoo_cfg_lines().join("\n");
            let (cfg, warnings) = ringkeeper_server::config::Config::parse(&format!("dataDir=/x\n{lines}\n"))
                .expect("server parses");
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
            assert_eq!(cfg.data_core, Some(rec.layout.data_core), "{name}");
            assert_eq!(cfg.network_cores, rec.layout.network_cores, "{name}");
        }
    }
}

#[test]
fn log_core_is_the_closest_to_the_data_core() {
    for name in ["8cpu-nvme.json", "8cpu-smt-hdd.json", "64cpu-smt-numa-nvme.json"] {
        let probe = fixture(name);
        let rec = recommend(&probe, one_server());
        let relation = CoreRelation::of(&probe.cpu, rec.layout.data_core, rec.layout.log_core);
        assert_eq!(relation, CoreRelation::SamePackage, "{name}");
    }
}

fn point(batch_bytes: usize, p50_us: f64) -> ringkeeper_tune::measure::disk::BatchPoint {
    let mut probe = fixture("8cpu-nvme.json");
    let mut p = probe.log_disk.take().unwrap().batch_curve.remove(0);
    p.batch_bytes = batch_bytes;
    p.latency.p50_us = p50_us;
    p
}

#[test]
fn flush_cost_fit_recovers_a_line_and_survives_noise() {
    use ringkeeper_tune::recommend::FlushCostFit;
    // 100 µs fixed + 1 µs per KiB, exactly.
    let exact: Vec<_> =
        [4usize, 16, 64, 256, 1024].iter().map(|k| point(k << 10, 100.0 + *k as f64)).collect();
    let fit = FlushCostFit::of(&exact);
    assert!((fit.fixed_us - 100.0).abs() < 1e-6 && (fit.per_byte_us * 1024.0 - 1.0).abs() < 1e-9, "{fit:?}");
    // Half the fixed cost is spent moving 50 KiB.
    assert_eq!(fit.bytes_per_extra_fixed_cost(0.5).map(|b| b.round()), Some(50.0 * 1024.0));
    // A flat curve: bytes cost nothing measurable, so no size follows from it.
    let flat: Vec<_> = [4usize, 64, 1024].iter().map(|k| point(k << 10, 300.0)).collect();
    assert_eq!(FlushCostFit::of(&flat).bytes_per_extra_fixed_cost(0.5), None);
    // A falling curve (noise) is flat at its mean, never a negative cost per byte.
    let falling: Vec<_> =
        [(4usize, 4000.0), (64, 200.0), (1024, 1200.0)].iter().map(|(k, us)| point(k << 10, *us)).collect();
    let fit = FlushCostFit::of(&falling);
    assert_eq!((fit.per_byte_us, fit.fixed_us.round()), (0.0, 1800.0));
}

#[test]
fn batch_bytes_never_cut_the_in_flight_window() {
    // A noisy shared disk (the development VM under load): whatever the fit says, one batch
    // holds the 2 x 1024 records the data role may have in flight (~512 KiB).
    let mut probe = fixture("2cpu-vm-virtio.json");
    let curve = &mut probe.log_disk.as_mut().unwrap().batch_curve;
    *curve = vec![
        point(4096, 960.0),
        point(16384, 265.0),
        point(65536, 7000.0),
        point(262144, 780.0),
        point(1 << 20, 2640.0),
    ];
    let rec = recommend(&probe, one_server());
    let bytes: u64 = rec.value("ringkeeper.log.batchBytesMax").unwrap().parse().unwrap();
    assert!((524288..=1 << 20).contains(&bytes), "{bytes}: below the window or beyond the curve");
    assert_eq!(rec.value("ringkeeper.log.batchCountMax"), Some("2048"));
    // A fast disk whose fit allows only a few KiB near the floor still gets the window.
    let mut nvme = fixture("8cpu-nvme.json");
    nvme.log_disk.as_mut().unwrap().batch_curve = vec![point(4096, 20.0), point(1 << 20, 1020.0)];
    assert_eq!(recommend(&nvme, one_server()).value("ringkeeper.log.batchBytesMax"), Some("524288"));
    // Flush cost that barely grows with size: the largest measured batch, never beyond it.
    curve_truncate(&mut probe, 0);
    let curve = &mut probe.log_disk.as_mut().unwrap().batch_curve;
    curve.extend([point(4096, 10_004.0), point(2 << 20, 12_048.0)]);
    assert_eq!(recommend(&probe, one_server()).value("ringkeeper.log.batchBytesMax"), Some("2097152"));
}

fn curve_truncate(probe: &mut ringkeeper_tune::probe::Probe, len: usize) {
    probe.log_disk.as_mut().unwrap().batch_curve.truncate(len);
}
