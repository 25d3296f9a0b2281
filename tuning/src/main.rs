//! `ringkeeper-tune`: host probe and config tuning (filled in by the tuning issue).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("ringkeeper-tune: no subcommands yet; see issue 'Host tuning tool'")
}
