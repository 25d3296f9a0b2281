//! `ringkeeper-bench`: load generator and election harness (filled in by the benchmark issue).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("ringkeeper-bench: no subcommands yet; see issue 'Benchmark harnesses'")
}
