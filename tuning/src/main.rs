//! `ringkeeper-tune`: the command line over the library (probe, recommend, apply, check,
//! report). Text goes to stdout, progress to stderr; `--json` prints JSON instead of text.
//! Exit status: 0 on success, 1 when `check` finds a `fail` item, 2 on an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use ringkeeper_server::config::Config;
use ringkeeper_tune::check::{run_checks, worst, CheckInputs, Verdict};
use ringkeeper_tune::measure::cores::CoreBounds;
use ringkeeper_tune::measure::disk::DiskBounds;
use ringkeeper_tune::probe::topology::read_topology;
use ringkeeper_tune::probe::{run_probe, Probe, ProbeOptions};
use ringkeeper_tune::recommend::{recommend, RecommendOptions};
use ringkeeper_tune::{apply, report};

#[derive(Parser)]
#[command(name = "ringkeeper-tune", about = "Measure a host and size ringkeeper's zoo.cfg to it")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read the host (CPUs, NICs, disks) and measure it; write a probe file.
    Probe(ProbeArgs),
    /// Print the zoo.cfg lines a probe calls for, each with its reason.
    Recommend(RecommendArgs),
    /// Write the recommended lines into a zoo.cfg (PATH.bak keeps the old file).
    Apply {
        #[command(flatten)]
        recommend: RecommendArgs,
        /// The zoo.cfg to change.
        config: PathBuf,
    },
    /// Production checklist: a verdict (ok/warn/fail) and why for each item.
    Check(CheckArgs),
    /// Print a probe file as text and draw its curves as SVG.
    Report {
        #[arg(long)]
        probe: PathBuf,
        /// Write batch-curve.svg and fsync-histogram.svg here.
        #[arg(long)]
        svg_dir: Option<PathBuf>,
    },
}

#[derive(Args)]
struct Dirs {
    /// Take dataDir and dataLogDir from this zoo.cfg.
    #[arg(long, conflicts_with_all = ["data_dir", "data_log_dir"])]
    config: Option<PathBuf>,
    /// The snapshot directory (dataDir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The transaction log directory (dataLogDir); dataDir when not given.
    #[arg(long)]
    data_log_dir: Option<PathBuf>,
}

impl Dirs {
    /// The config these flags describe (a minimal one when only directories are given).
    fn config(&self) -> anyhow::Result<Config> {
        if let Some(path) = &self.config {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let (config, _) = Config::parse(&text).with_context(|| format!("{}", path.display()))?;
            return Ok(config);
        }
        let Some(data_dir) = &self.data_dir else { bail!("give --config zoo.cfg or --data-dir DIR") };
        let mut text = format!("dataDir={}\n", data_dir.display());
        if let Some(log) = &self.data_log_dir {
            text.push_str(&format!("dataLogDir={}\n", log.display()));
        }
        Ok(Config::parse(&text)?.0)
    }
}

#[derive(Args)]
struct ProbeArgs {
    #[command(flatten)]
    dirs: Dirs,
    /// Where to write the probe (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Also draw batch-curve.svg and fsync-histogram.svg here.
    #[arg(long)]
    svg_dir: Option<PathBuf>,
    /// Read facts only: no disk or cross-core measurement.
    #[arg(long)]
    no_measure: bool,
    /// fdatasync samples (each after a 4 KiB write).
    #[arg(long, default_value_t = 200)]
    fsyncs: usize,
    /// Batch sizes of the latency curve (K/M suffixes; rounded up to 4 KiB).
    #[arg(long, value_delimiter = ',', default_value = "4K,16K,64K,256K,1M")]
    batch_sizes: Vec<String>,
    /// Samples per batch size.
    #[arg(long, default_value_t = 50)]
    writes_per_size: usize,
    /// Wall-clock budget of each disk series and each CPU pair, seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds_per_series: f64,
    /// Largest measurement file, MiB (writes wrap around inside it).
    #[arg(long, default_value_t = 64)]
    file_mib: u64,
    /// Ping-pong round trips per CPU pair.
    #[arg(long, default_value_t = 20000)]
    round_trips: usize,
    /// Most CPU pairs to ping-pong.
    #[arg(long, default_value_t = 6)]
    pairs: usize,
    /// No progress on stderr.
    #[arg(long)]
    quiet: bool,
    /// Print the probe as JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RecommendArgs {
    /// A probe file from `ringkeeper-tune probe`.
    #[arg(long)]
    probe: PathBuf,
    /// Servers sharing this host (more than one: roles float, pin=false).
    #[arg(long, default_value_t = 1)]
    servers_per_host: usize,
    /// Print JSON instead of zoo.cfg lines.
    #[arg(long)]
    json: bool,
}

impl RecommendArgs {
    fn recommendation(&self) -> anyhow::Result<ringkeeper_tune::recommend::Recommendation> {
        if self.servers_per_host == 0 {
            bail!("--servers-per-host: 0 is out of range (expected 1 or more)");
        }
        let probe = Probe::load(&self.probe)?;
        Ok(recommend(&probe, RecommendOptions { servers_per_host: self.servers_per_host }))
    }
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    dirs: Dirs,
    /// The last probe file of this host (its age is checked).
    #[arg(long)]
    probe: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// `4K`, `1M`, `65536` → bytes.
fn parse_size(text: &str) -> anyhow::Result<usize> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let n: usize = digits
        .parse()
        .with_context(|| format!("--batch-sizes: {text:?} is not a size (expected e.g. 4K, 1M, 65536)"))?;
    let scale = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KIB" => 1 << 10,
        "M" | "MIB" => 1 << 20,
        _ => bail!("--batch-sizes: {text:?} has unit {unit:?} (expected K or M)"),
    };
    if n == 0 {
        bail!("--batch-sizes: {text:?} is zero");
    }
    Ok(n * scale)
}

fn write_svgs(probe: &Probe, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, svg) in [
        ("batch-curve.svg", report::batch_curve_svg(probe)),
        ("fsync-histogram.svg", report::fsync_histogram_svg(probe)),
    ] {
        if let Some(svg) = svg {
            let path = dir.join(name);
            std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("ringkeeper-tune: wrote {}", path.display());
        }
    }
    Ok(())
}

fn probe_command(args: ProbeArgs) -> anyhow::Result<()> {
    let config = args.dirs.config()?;
    let seconds = args.seconds_per_series;
    if !(seconds > 0.0 && seconds <= 3600.0) {
        bail!("--seconds-per-series: {seconds} is out of range (expected 0 < s <= 3600)");
    }
    let budget = Duration::from_secs_f64(seconds);
    let batch_sizes = args.batch_sizes.iter().map(|s| parse_size(s)).collect::<anyhow::Result<Vec<_>>>()?;
    let options = ProbeOptions {
        data_dir: config.data_dir.clone(),
        data_log_dir: config.data_log_dir.clone(),
        disk: (!args.no_measure).then_some(DiskBounds {
            fsyncs_max: args.fsyncs,
            batch_sizes,
            writes_per_size_max: args.writes_per_size,
            budget_per_series: budget,
            file_bytes_max: args.file_mib << 20,
            quiet: args.quiet,
            write_mode: config.log_write_mode,
        }),
        cores: (!args.no_measure).then_some(CoreBounds {
            round_trips_max: args.round_trips,
            budget_per_pair: budget,
            pairs_max: args.pairs,
            quiet: args.quiet,
        }),
    };
    let probe = run_probe(&options)?;
    probe.save(&args.out)?;
    eprintln!("ringkeeper-tune: wrote {}", args.out.display());
    if let Some(dir) = &args.svg_dir {
        write_svgs(&probe, dir)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&probe)?);
    } else {
        print!("{}", report::probe_text(&probe));
    }
    Ok(())
}

fn check_command(args: CheckArgs) -> anyhow::Result<bool> {
    let config = args.dirs.config()?;
    let probe = match &args.probe {
        Some(path) => Some((path.clone(), Probe::load(path)?)),
        None => None,
    };
    let items = run_checks(&CheckInputs { config, probe });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else {
        for i in &items {
            println!("{:<5} {:<26} {}", i.verdict, i.item, i.why);
        }
    }
    Ok(worst(&items) != Verdict::Fail)
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Probe(args) => probe_command(args)?,
        Command::Recommend(args) => {
            let rec = args.recommendation()?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&rec)?);
            } else {
                print!("{}", report::recommendation_text(&rec));
            }
        }
        Command::Apply { recommend, config } => {
            let rec = recommend.recommendation()?;
            let host_cpus = read_topology(Path::new("/sys"))?.cpu_ids();
            let applied = apply::apply_file(&config, &rec, &host_cpus)?;
            for line in &applied.replaced_lines {
                eprintln!("ringkeeper-tune: replaced {line}");
            }
            eprintln!("ringkeeper-tune: backup in {}", applied.backup.display());
            if applied.changed {
                println!("{}: wrote {} ringkeeper.* settings", config.display(), rec.settings.len());
            } else {
                println!("{}: already up to date", config.display());
            }
        }
        Command::Check(args) => return check_command(args),
        Command::Report { probe, svg_dir } => {
            let loaded = Probe::load(&probe)?;
            print!("{}", report::probe_text(&loaded));
            if let Some(dir) = svg_dir {
                write_svgs(&loaded, &dir)?;
            }
        }
    }
    Ok(true)
}

fn main() {
    match run(Cli::parse()) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("ringkeeper-tune: error: {e:#}");
            std::process::exit(2);
        }
    }
}
