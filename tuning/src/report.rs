//! Human-readable output: a probe as text, a recommendation as text, and two hand-written SVG
//! plots (the write-latency-vs-batch-size curve and the fdatasync latency histogram).
//!
//! In: a [`Probe`] / [`Recommendation`]. Out: strings; the caller writes them. The SVGs are
//! self-contained (no scripts, no external fonts) and scale their axes to the data.

use std::fmt::Write;

use crate::probe::topology::format_cpu_list;
use crate::probe::Probe;
use crate::recommend::Recommendation;

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// The probe as text.
pub fn probe_text(probe: &Probe) -> String {
    let mut out = String::new();
    let cpu = &probe.cpu;
    let _ = writeln!(
        out,
        "host {} (kernel {}), probe taken at {} (unix s)",
        probe.hostname, probe.kernel, probe.taken_at_unix_s
    );
    let _ = writeln!(
        out,
        "cpus: {} online ({}), SMT {}, NUMA nodes {:?}, isolated [{}], governor {}",
        cpu.cpus.len(),
        format_cpu_list(&cpu.cpu_ids()),
        if cpu.has_smt() { "on" } else { "off" },
        cpu.nodes,
        format_cpu_list(&cpu.isolated),
        cpu.governor.as_deref().unwrap_or("none (no cpufreq)")
    );
    for nic in &probe.nics {
        let busiest: Vec<String> = nic.busiest_cpus().iter().map(|(c, n)| format!("cpu{c}:{n}")).collect();
        let _ = writeln!(
            out,
            "nic {}: node {}, {} IRQs, interrupts by CPU [{}]",
            nic.name,
            nic.numa_node.map_or("-".into(), |n| n.to_string()),
            nic.irqs.len(),
            busiest.join(" ")
        );
    }
    for d in &probe.disks {
        let _ = writeln!(
            out,
            "{} {}: {} on {} (device {}, scheduler {}, rotational {}, write cache {}), {} free of {}",
            d.role,
            d.path.display(),
            d.fs_type,
            d.mount_point.display(),
            d.device.as_deref().unwrap_or("-"),
            d.scheduler.as_deref().unwrap_or("-"),
            d.rotational.map_or("-".into(), |r| r.to_string()),
            d.write_cache.as_deref().unwrap_or("-"),
            gib(d.free_bytes),
            gib(d.total_bytes)
        );
    }
    if let Some(m) = &probe.log_disk {
        let f = &m.fdatasync;
        let _ = writeln!(
            out,
            "durable after 4 KiB write (writeMode={}{}, {} samples): p50 {} µs, p90 {}, p99 {}, max {}",
            if m.write_mode.is_empty() { "direct" } else { &m.write_mode },
            if m.direct_io { ", O_DIRECT" } else { "" },
            f.samples,
            f.p50_us,
            f.p90_us,
            f.p99_us,
            f.max_us
        );
        let _ = writeln!(out, "batch bytes   samples   p50 µs   p99 µs   MB/s");
        for p in &m.batch_curve {
            let _ = writeln!(
                out,
                "{:>11}   {:>7}   {:>6}   {:>6}   {:.1}",
                p.batch_bytes,
                p.latency.samples,
                p.latency.p50_us,
                p.latency.p99_us,
                p.throughput_bytes_per_s / 1e6
            );
        }
    }
    for p in &probe.core_latency {
        let _ = writeln!(
            out,
            "cpu {} <-> cpu {} ({:?}): round trip p50 {} µs, p99 {} µs ({} samples)",
            p.cpu_a, p.cpu_b, p.relation, p.round_trip.p50_us, p.round_trip.p99_us, p.round_trip.samples
        );
    }
    out
}

/// The recommendation as text: the zoo.cfg lines, then notes.
pub fn recommendation_text(rec: &Recommendation) -> String {
    let mut out = format!("# ringkeeper-tune recommendation ({})\n", rec.source);
    for line in rec.zoo_cfg_lines() {
        out.push_str(&line);
        out.push('\n');
    }
    for note in &rec.notes {
        let _ = writeln!(out, "# note: {note}");
    }
    out
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
const MARGIN_LEFT: f64 = 70.0;
const MARGIN_RIGHT: f64 = 20.0;
const MARGIN_TOP: f64 = 40.0;
const MARGIN_BOTTOM: f64 = 60.0;

fn svg_open(title: &str, x_label: &str, y_label: &str) -> String {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        WIDTH / 2.0,
        escape(title)
    );
    let (x0, y0, x1, y1) = (MARGIN_LEFT, HEIGHT - MARGIN_BOTTOM, WIDTH - MARGIN_RIGHT, MARGIN_TOP);
    let _ = writeln!(s, "<path d=\"M{x0},{y1} L{x0},{y0} L{x1},{y0}\" stroke=\"black\" fill=\"none\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        (x0 + x1) / 2.0,
        HEIGHT - 15.0,
        escape(x_label)
    );
    let _ = writeln!(
        s,
        "<text x=\"18\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {})\">{}</text>",
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        escape(y_label)
    );
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Maps `value` in `0..=max` to a y pixel (0 at the bottom axis).
fn y_of(value: f64, max: f64) -> f64 {
    let plot = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP;
    HEIGHT - MARGIN_BOTTOM - plot * (value / max).clamp(0.0, 1.0)
}

/// Four horizontal grid lines with their labels.
fn y_grid(s: &mut String, max: f64) {
    for i in 1..=4 {
        let v = max * i as f64 / 4.0;
        let y = y_of(v, max);
        let _ = writeln!(
            s,
            "<line x1=\"{MARGIN_LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.0}</text>",
            WIDTH - MARGIN_RIGHT,
            MARGIN_LEFT - 6.0,
            y + 4.0,
            v
        );
    }
}

/// Decades `10^low..=10^high` (µs) that hold every value of `values`.
fn decades(values: impl Iterator<Item = f64>) -> (i32, i32) {
    let (min, max) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v.max(0.1)), hi.max(v)));
    let low = min.log10().floor() as i32;
    (low, (max.log10().ceil() as i32).max(low + 1))
}

/// Write + fdatasync latency (p50 and p99, log scale) against batch size, sizes evenly spaced.
pub fn batch_curve_svg(probe: &Probe) -> Option<String> {
    let m = probe.log_disk.as_ref()?;
    let curve = &m.batch_curve;
    if curve.is_empty() {
        return None;
    }
    let (low, high) = decades(curve.iter().flat_map(|p| [p.latency.p50_us, p.latency.p99_us]));
    let span = (high - low) as f64;
    // Log scale: the plot's height covers the decades low..high.
    let y_log = |us: f64| y_of(us.max(0.1).log10() - low as f64, span);
    let mut s = svg_open(
        &format!("write + fdatasync latency vs batch size ({}, {})", probe.hostname, m.dir.display()),
        "batch size (KiB)",
        "latency (µs, log scale)",
    );
    for decade in low..=high {
        let y = y_log(10f64.powi(decade));
        let _ = writeln!(
            s,
            "<line x1=\"{MARGIN_LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            WIDTH - MARGIN_RIGHT,
            MARGIN_LEFT - 6.0,
            y + 4.0,
            10f64.powi(decade)
        );
    }
    let plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let x_of = |i: usize| MARGIN_LEFT + plot_width * (i as f64 + 0.5) / curve.len() as f64;
    for (series, color, pick) in [
        ("p50", "#1f77b4", (|p: &crate::measure::disk::BatchPoint| p.latency.p50_us) as fn(&_) -> f64),
        ("p99", "#d62728", |p| p.latency.p99_us),
    ] {
        let points: Vec<String> =
            curve.iter().enumerate().map(|(i, p)| format!("{:.1},{:.1}", x_of(i), y_log(pick(p)))).collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
            points.join(" ")
        );
        for (i, p) in curve.iter().enumerate() {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{series} {} µs at {} KiB</title></circle>",
                x_of(i),
                y_log(pick(p)),
                pick(p),
                p.batch_bytes / 1024
            );
        }
        let legend_y = if series == "p50" { 50.0 } else { 66.0 };
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{legend_y}\" fill=\"{color}\">{series}</text>",
            MARGIN_LEFT + 10.0
        );
    }
    for (i, p) in curve.iter().enumerate() {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x_of(i),
            HEIGHT - MARGIN_BOTTOM + 16.0,
            p.batch_bytes / 1024
        );
    }
    s.push_str("</svg>\n");
    Some(s)
}

/// Histogram of fdatasync latencies (log2 buckets).
pub fn fsync_histogram_svg(probe: &Probe) -> Option<String> {
    let m = probe.log_disk.as_ref()?;
    let buckets = &m.fdatasync_histogram;
    if buckets.is_empty() {
        return None;
    }
    let max = buckets.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut s = svg_open(
        &format!("latency to durable after 4 KiB writes ({} samples)", m.fdatasync.samples),
        "latency bucket upper bound (µs)",
        "samples",
    );
    y_grid(&mut s, max);
    let plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let bar = plot_width / buckets.len() as f64;
    for (i, b) in buckets.iter().enumerate() {
        let x = MARGIN_LEFT + bar * i as f64;
        let y = y_of(b.count as f64, max);
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2ca02c\"><title>≤{} µs: {}</title></rect>",
            x + 2.0,
            (bar - 4.0).max(1.0),
            HEIGHT - MARGIN_BOTTOM - y,
            b.upper_us,
            b.count
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x + bar / 2.0,
            HEIGHT - MARGIN_BOTTOM + 16.0,
            b.upper_us
        );
    }
    s.push_str("</svg>\n");
    Some(s)
}
