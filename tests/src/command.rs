//! What runs a server, for the tests and the bench alike: a [`ServerKind`] (ringkeeper from a
//! binary, or Apache ZooKeeper 3.8 from the Debian package with a [`ApacheJvm`] profile) and
//! the one command line each kind is started with ([`ServerKind::command`]).
//!
//! This is the only place that knows Apache's class path, main classes, JVM flags and the
//! `zoo.cfg` keys Apache reads only as system properties. The tests run Apache with
//! [`ApacheJvm::QuickStart`] (a quick start on a small shared machine), the bench with
//! [`ApacheJvm::FullJit`] (no start-up shortcut that would slow it).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{ringkeeper_binary, Target};

/// How the JVM running Apache ZooKeeper is tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApacheJvm {
    /// Serial GC, C1 only, a small heap: starts fast on a small shared machine (the tests).
    QuickStart,
    /// A fixed 512 MiB..1 GiB heap and the full JIT: as Apache runs in production (the bench).
    FullJit,
}

impl ApacheJvm {
    fn flags(self) -> &'static [&'static str] {
        match self {
            ApacheJvm::QuickStart => &["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss1m"],
            ApacheJvm::FullJit => &["-Xms512m", "-Xmx1g"],
        }
    }
}

/// Which server to start, and from what.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerKind {
    Ringkeeper { binary: PathBuf },
    Apache { java: PathBuf, jvm: ApacheJvm },
}

/// How much a started server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// What the server logs by default (the tests read the logs).
    Default,
    /// Warnings and errors only (the bench: logging must not cost CPU in a measurement).
    Warnings,
}

/// Apache ZooKeeper's standalone server.
pub const APACHE_STANDALONE_MAIN: &str = "org.apache.zookeeper.server.ZooKeeperServerMain";
/// Apache ZooKeeper's ensemble member.
pub const APACHE_QUORUM_MAIN: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// Jars for Apache ZooKeeper's server from the Debian package. `zookeeper.jar` names its own
/// dependencies (netty, commons-*, jute, slf4j-api, ...) in its manifest `Class-Path`; only an
/// slf4j binding is added (slf4j-simple: logs go to stderr, which the harness captures in
/// `server.log`). Putting every jar of `/usr/share/java` on the class path instead makes slf4j
/// pick an arbitrary binding and slows start-up. netty-resolver and netty-codec are missing
/// from that `Class-Path` and needed by the Netty server factory (TLS tests set
/// `serverCnxnFactory` to it).
const APACHE_CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar:\
/usr/share/java/netty-resolver.jar:/usr/share/java/netty-codec.jar";

/// `zoo.cfg` keys that Apache reads only as JVM system properties (under exactly this name;
/// unknown zoo.cfg keys become `zookeeper.<key>` properties, which these are not). ringkeeper
/// reads them from zoo.cfg; for Apache they are passed on as `-D` flags as well.
const APACHE_SYSTEM_PROPERTY_KEYS: &[&str] = &[
    "znode.container.checkIntervalMs",
    "znode.container.maxNeverUsedIntervalMs",
    "readonlymode.enabled",
    "zookeeper.nio.sessionlessCnxnTimeout",
    "java.security.auth.login.config",
    "java.security.krb5.conf",
];

impl Target {
    /// How the tests run this target: the workspace's debug `ringkeeper` ([`ringkeeper_binary`]),
    /// or Apache with `java` from the `PATH` and [`ApacheJvm::QuickStart`].
    pub fn kind(self) -> ServerKind {
        match self {
            Target::Ringkeeper => ServerKind::Ringkeeper { binary: ringkeeper_binary() },
            Target::Apache => ServerKind::Apache { java: "java".into(), jvm: ApacheJvm::QuickStart },
        }
    }

    /// `ringkeeper` or `apache`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Ringkeeper => "ringkeeper",
            Target::Apache => "apache",
        }
    }
}

impl ServerKind {
    /// Which implementation this runs.
    pub fn target(&self) -> Target {
        match self {
            ServerKind::Ringkeeper { .. } => Target::Ringkeeper,
            ServerKind::Apache { .. } => Target::Apache,
        }
    }

    /// `ringkeeper` or `apache`.
    pub fn name(&self) -> &'static str {
        self.target().name()
    }

    /// An error naming what is missing when this kind cannot be started here.
    pub fn check_installed(&self) -> Result<(), String> {
        match self {
            ServerKind::Ringkeeper { binary } if !binary.is_file() => Err(format!(
                "no ringkeeper binary at {} (build it with `cargo build --release -p ringkeeper-server`, \
                 or pass --ringkeeper-bin)",
                binary.display()
            )),
            _ => Ok(()),
        }
    }

    /// The command that runs a server of this kind with `config`, logging at `log_level`
    /// (Apache also under `log_dir`); `standalone` picks Apache's standalone main class
    /// rather than the ensemble member's. Apache's `zoo.cfg` keys that it reads only as system
    /// properties are read from `config` now and passed on as `-D` flags.
    pub fn command(&self, config: &Path, log_dir: &Path, standalone: bool, log_level: LogLevel) -> Command {
        match self {
            ServerKind::Ringkeeper { binary } => {
                let mut c = Command::new(binary);
                if log_level == LogLevel::Warnings {
                    c.env("RUST_LOG", "warn");
                }
                c.arg(config);
                c
            }
            ServerKind::Apache { java, jvm } => {
                let main_class = if standalone { APACHE_STANDALONE_MAIN } else { APACHE_QUORUM_MAIN };
                let cfg = std::fs::read_to_string(config).unwrap_or_default();
                let mut c = Command::new(java);
                c.args(jvm.flags())
                    .arg(format!("-Dzookeeper.log.dir={}", log_dir.display()))
                    .arg("-Dorg.slf4j.simpleLogger.showDateTime=true");
                if log_level == LogLevel::Warnings {
                    c.arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn");
                }
                for line in cfg.lines() {
                    if let Some((key, value)) = line.split_once('=') {
                        if APACHE_SYSTEM_PROPERTY_KEYS.contains(&key.trim()) {
                            c.arg(format!("-D{}={}", key.trim(), value.trim()));
                        }
                    }
                }
                c.arg("-cp").arg(APACHE_CLASSPATH).arg(main_class).arg(config);
                c
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(c: &Command) -> Vec<String> {
        c.get_args().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn apache_gets_its_profile_main_class_and_system_property_keys() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("zoo.cfg");
        std::fs::write(&config, "tickTime=2000\nreadonlymode.enabled=true\n").unwrap();
        let bench = ServerKind::Apache { java: "/opt/java".into(), jvm: ApacheJvm::FullJit };
        let c = bench.command(&config, dir.path(), false, LogLevel::Warnings);
        assert_eq!(c.get_program(), "/opt/java");
        let a = args(&c);
        assert!(a.contains(&"-Xmx1g".into()) && !a.iter().any(|f| f.contains("TieredStopAtLevel")), "{a:?}");
        assert!(a.contains(&"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn".into()), "{a:?}");
        assert!(a.contains(&"-Dreadonlymode.enabled=true".into()), "{a:?}");
        assert_eq!(a[a.len() - 2..], [APACHE_QUORUM_MAIN.to_string(), config.display().to_string()]);
        let tests = ServerKind::Apache { java: "java".into(), jvm: ApacheJvm::QuickStart };
        let a = args(&tests.command(&config, dir.path(), true, LogLevel::Default));
        assert!(a.contains(&"-XX:TieredStopAtLevel=1".into()) && a.contains(&APACHE_STANDALONE_MAIN.into()));
        assert!(!a.iter().any(|f| f.contains("defaultLogLevel")), "{a:?}");
    }

    #[test]
    fn ringkeeper_is_quieted_only_when_asked() {
        let kind = ServerKind::Ringkeeper { binary: "/bin/rk".into() };
        let quiet = kind.command(Path::new("/c"), Path::new("/d"), false, LogLevel::Warnings);
        assert!(quiet.get_envs().any(|(k, v)| k == "RUST_LOG" && v == Some("warn".as_ref())));
        let loud = kind.command(Path::new("/c"), Path::new("/d"), false, LogLevel::Default);
        assert_eq!(loud.get_envs().count(), 0);
        assert!(ServerKind::Ringkeeper { binary: "/no/such/rk".into() }.check_installed().is_err());
    }
}
