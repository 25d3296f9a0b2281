//! `--plot PATH`: one SVG a person can look at after a run, written by hand (no plotting
//! crate): on the left the latency over time (p50 and p99 of each second, warm-up shaded),
//! on the right the latency CDF of the measured ops.
//!
//! In: a [`LoadReport`] (its `timeline` and `cdf`). Out: SVG text. Latency axes are
//! logarithmic (1 µs .. the largest value rounded up to a decade); nothing is read back.

use std::fmt::Write as _;

use crate::report::LoadReport;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 420.0;
const PANEL_WIDTH: f64 = 400.0;
const PANEL_HEIGHT: f64 = 300.0;
const TOP: f64 = 64.0;
const LEFT_PANEL_X: f64 = 80.0;
const RIGHT_PANEL_X: f64 = 570.0;
const P50_COLOUR: &str = "#1f77b4";
const P99_COLOUR: &str = "#d62728";

/// A logarithmic latency axis from `low_us` to `high_us` (both powers of ten).
struct LogAxis {
    low_us: f64,
    high_us: f64,
}

impl LogAxis {
    fn covering(values_us: impl Iterator<Item = u64>) -> LogAxis {
        let max = values_us.max().unwrap_or(1).max(10) as f64;
        let min = 1.0;
        LogAxis { low_us: min, high_us: 10f64.powf(max.log10().ceil()) }
    }

    /// 0 at `low_us`, 1 at `high_us`.
    fn fraction(&self, us: u64) -> f64 {
        let us = (us as f64).clamp(self.low_us, self.high_us);
        (us.log10() - self.low_us.log10()) / (self.high_us.log10() - self.low_us.log10())
    }

    /// The decades with their labels.
    fn decades(&self) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        let mut us = self.low_us as u64;
        while us as f64 <= self.high_us {
            out.push((us, label_us(us)));
            us *= 10;
        }
        out
    }
}

fn label_us(us: u64) -> String {
    match us {
        0..=999 => format!("{us} µs"),
        1_000..=999_999 => format!("{} ms", us / 1_000),
        _ => format!("{} s", us / 1_000_000),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn polyline(out: &mut String, points: &[(f64, f64)], colour: &str) {
    let coordinates: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let _ = writeln!(
        out,
        r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
        coordinates.join(" ")
    );
}

fn text(out: &mut String, x: f64, y: f64, anchor: &str, content: &str) {
    let _ = writeln!(out, r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}">{}</text>"#, escape(content));
}

fn line(out: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64), stroke: &str) {
    let _ = writeln!(out, r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}"/>"#);
}

/// A panel's frame, title and axis names.
fn frame(out: &mut String, x0: f64, title: &str, x_name: &str, y_name: &str) {
    let _ = writeln!(
        out,
        r##"<rect x="{x0}" y="{TOP}" width="{PANEL_WIDTH}" height="{PANEL_HEIGHT}" fill="none" stroke="#333"/>"##
    );
    text(out, x0 + PANEL_WIDTH / 2.0, TOP - 10.0, "middle", title);
    text(out, x0 + PANEL_WIDTH / 2.0, TOP + PANEL_HEIGHT + 38.0, "middle", x_name);
    let (yx, yy) = (x0 - 62.0, TOP + PANEL_HEIGHT / 2.0);
    let _ = writeln!(
        out,
        r#"<text x="{yx}" y="{yy}" text-anchor="middle" transform="rotate(-90 {yx} {yy})">{}</text>"#,
        escape(y_name)
    );
}

/// The SVG of one run.
pub fn svg(report: &LoadReport) -> String {
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
"#
    );
    text(&mut out, WIDTH / 2.0, 16.0, "middle", &report.workload);
    let figures = format!(
        "{} B, {} sessions x {} in flight on {}: {:.0} ops/s, p50 {} µs, p99 {} µs, errors {}",
        report.size_bytes,
        report.clients,
        report.inflight,
        report.hosts,
        report.ops_per_s,
        report.latency.p50_us,
        report.latency.p99_us,
        report.errors
    );
    text(&mut out, WIDTH / 2.0, 32.0, "middle", &figures);
    let axis = LogAxis::covering(
        report.timeline.iter().map(|s| s.p99_us).chain(report.cdf.iter().map(|p| p.latency_us)),
    );
    let y_of = |us: u64| TOP + PANEL_HEIGHT * (1.0 - axis.fraction(us));
    timeline_panel(&mut out, report, &axis, &y_of);
    cdf_panel(&mut out, report, &axis);
    out += "</svg>\n";
    out
}

fn timeline_panel(out: &mut String, report: &LoadReport, axis: &LogAxis, y_of: &dyn Fn(u64) -> f64) {
    let x0 = LEFT_PANEL_X;
    frame(out, x0, "latency per second", "seconds since start", "latency (log)");
    let last_s = report.timeline.iter().map(|s| s.t_s).max().unwrap_or(1).max(1) as f64;
    let x_of = |t: f64| x0 + PANEL_WIDTH * t / last_s;
    if report.warmup_s > 0.0 {
        let _ = writeln!(
            out,
            r##"<rect x="{x0}" y="{TOP}" width="{:.1}" height="{PANEL_HEIGHT}" fill="#eee"/>"##,
            x_of(report.warmup_s.min(last_s)) - x0
        );
        text(out, x0 + 4.0, TOP + 14.0, "start", "warm-up");
    }
    for (us, label) in axis.decades() {
        let y = y_of(us);
        line(out, (x0, y), (x0 + PANEL_WIDTH, y), "#ddd");
        text(out, x0 - 6.0, y + 4.0, "end", &label);
    }
    let step = (last_s / 10.0).ceil().max(1.0);
    let mut t = 0.0;
    while t <= last_s {
        text(out, x_of(t), TOP + PANEL_HEIGHT + 16.0, "middle", &format!("{t:.0}"));
        t += step;
    }
    let series = |pick: &dyn Fn(&crate::report::Second) -> u64| -> Vec<(f64, f64)> {
        report.timeline.iter().filter(|s| s.ops > 0).map(|s| (x_of(s.t_s as f64), y_of(pick(s)))).collect()
    };
    polyline(out, &series(&|s| s.p50_us), P50_COLOUR);
    polyline(out, &series(&|s| s.p99_us), P99_COLOUR);
    legend(out, x0 + PANEL_WIDTH - 70.0, TOP + 16.0);
}

fn legend(out: &mut String, x: f64, y: f64) {
    for (i, (name, colour)) in [("p50", P50_COLOUR), ("p99", P99_COLOUR)].iter().enumerate() {
        let y = y + 16.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{x}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2"/>"#,
            y - 4.0,
            x + 20.0,
            y - 4.0
        );
        text(out, x + 26.0, y, "start", name);
    }
}

fn cdf_panel(out: &mut String, report: &LoadReport, axis: &LogAxis) {
    let x0 = RIGHT_PANEL_X;
    frame(out, x0, "latency CDF (measured ops)", "latency (log)", "fraction of ops at or below");
    let x_of = |us: u64| x0 + PANEL_WIDTH * axis.fraction(us);
    let y_of = |q: f64| TOP + PANEL_HEIGHT * (1.0 - q);
    for (us, label) in axis.decades() {
        let x = x_of(us);
        line(out, (x, TOP), (x, TOP + PANEL_HEIGHT), "#ddd");
        text(out, x, TOP + PANEL_HEIGHT + 16.0, "middle", &label);
    }
    for q in [0.0, 0.25, 0.5, 0.75, 0.9, 1.0] {
        let y = y_of(q);
        line(out, (x0, y), (x0 + PANEL_WIDTH, y), "#eee");
        text(out, x0 - 6.0, y + 4.0, "end", &format!("{q}"));
    }
    let points: Vec<(f64, f64)> = report.cdf.iter().map(|p| (x_of(p.latency_us), y_of(p.quantile))).collect();
    polyline(out, &points, P50_COLOUR);
    for (i, (name, us)) in
        [("p50", report.latency.p50_us), ("p99", report.latency.p99_us)].into_iter().enumerate()
    {
        let x = x_of(us);
        line(out, (x, TOP), (x, TOP + PANEL_HEIGHT), P99_COLOUR);
        let y = TOP + PANEL_HEIGHT - 6.0 - 14.0 * i as f64;
        text(out, x + 3.0, y, "start", &format!("{name} {}", label_us_exact(us)));
    }
}

fn label_us_exact(us: u64) -> String {
    if us < 10_000 {
        format!("{us} µs")
    } else {
        format!("{:.1} ms", us as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_spans_decades_and_clamps() {
        let axis = LogAxis::covering([5, 2_500].into_iter());
        assert_eq!(axis.high_us, 10_000.0);
        assert_eq!(axis.fraction(1), 0.0);
        assert_eq!(axis.fraction(100), 0.5);
        assert_eq!(axis.fraction(1_000_000), 1.0);
        let labels: Vec<String> = axis.decades().into_iter().map(|(_, l)| l).collect();
        assert_eq!(labels, ["1 µs", "10 µs", "100 µs", "1 ms", "10 ms"]);
        assert_eq!(escape("a<b & c>"), "a&lt;b &amp; c&gt;");
    }
}
