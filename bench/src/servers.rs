//! Starting the servers `compare` measures, on 127.0.0.1 only, each from a standalone zoo.cfg
//! in its own directory under one data root (so both write to the same filesystem).
//!
//! ringkeeper runs from its release binary; Apache ZooKeeper 3.8 from the Debian package
//! (`ZooKeeperServerMain`, with the full JIT: no start-up shortcuts that would slow it).
//! A [`ServerProcess`] is killed when dropped, so an error or a panic never leaves one behind.
//! Invariant: both kinds get the same zoo.cfg lines apart from paths and ports.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::wire::Session;
use crate::BenchError;

/// How long a server may take to open a session after start.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Apache's jars: `zookeeper.jar` names its dependencies in its manifest; slf4j-simple is
/// the logging binding (to stderr, captured in `server.log`).
const APACHE_CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";

/// Which server to start.
#[derive(Debug, Clone)]
pub enum ServerKind {
    Ringkeeper { binary: PathBuf },
    Apache { java: PathBuf },
}

impl ServerKind {
    pub fn name(&self) -> &'static str {
        match self {
            ServerKind::Ringkeeper { .. } => "ringkeeper",
            ServerKind::Apache { .. } => "apache",
        }
    }

    fn command(&self, config: &Path, dir: &Path) -> Command {
        match self {
            ServerKind::Ringkeeper { binary } => {
                let mut c = Command::new(binary);
                c.env("RUST_LOG", "warn").arg(config);
                c
            }
            ServerKind::Apache { java } => {
                let mut c = Command::new(java);
                c.args(["-Xms512m", "-Xmx1g"])
                    .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
                    .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
                    .arg("-cp")
                    .arg(APACHE_CLASSPATH)
                    .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
                    .arg(config);
                c
            }
        }
    }
}

/// The default path of the release `ringkeeper` binary of this workspace.
pub fn default_ringkeeper_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
    target.join("release").join("ringkeeper")
}

/// The zoo.cfg both kinds run with: standalone, fsync on, loopback only.
pub fn standalone_config(data_dir: &Path, port: u16) -> String {
    format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
         admin.enableServer=false\nforceSync=yes\nmaxClientCnxns=0\n",
        data_dir.display()
    )
}

/// A running server with its own directory (config, data, log).
pub struct ServerProcess {
    pub kind: ServerKind,
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl ServerProcess {
    /// Starts `servers` servers of `kind` under `data_root`; only 1 is possible for now.
    pub fn start(kind: &ServerKind, servers: usize, data_root: &Path) -> Result<ServerProcess, BenchError> {
        if servers != 1 {
            return Err(BenchError::Config(format!(
                "{servers} servers asked for, but ringkeeper has no ensemble yet (ZAB, issue 4); \
                 compare runs both sides with the same server count, so only --servers 1 works"
            )));
        }
        if let ServerKind::Ringkeeper { binary } = kind {
            if !binary.is_file() {
                return Err(BenchError::Config(format!(
                    "no ringkeeper binary at {} (build it with `cargo build --release -p ringkeeper-server`, \
                     or pass --ringkeeper-bin)",
                    binary.display()
                )));
            }
        }
        std::fs::create_dir_all(data_root)
            .map_err(BenchError::io_at(format!("creating {}", data_root.display())))?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("rk-bench-{}-", kind.name()))
            .tempdir_in(data_root)
            .map_err(BenchError::io_at("creating a server directory"))?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        let config = dir.path().join("zoo.cfg");
        std::fs::write(&config, standalone_config(&data, port))?;
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let child = kind
            .command(&config, dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(BenchError::io_at(format!("starting {}", kind.name())))?;
        let mut server = ServerProcess { kind: kind.clone(), port, dir, child };
        server.wait_ready()?;
        Ok(server)
    }

    /// Ready = a ZooKeeper session can be opened (and is closed again). The protocol itself
    /// is the probe, so no four-letter word has to be enabled or implemented.
    fn wait_ready(&mut self) -> Result<(), BenchError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let probe = |host: String| {
            runtime.block_on(async move {
                match Session::connect(&host, 10_000).await {
                    Ok(session) => session.close().await.is_ok(),
                    Err(_) => false,
                }
            })
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Err(BenchError::Server(format!(
                    "{} exited during start-up ({status}); log:\n{}",
                    self.kind.name(),
                    self.log_tail()
                )));
            }
            if probe(self.connect_string()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(BenchError::Server(format!(
            "{} opened no session within {START_TIMEOUT:?}; log:\n{}",
            self.kind.name(),
            self.log_tail()
        )))
    }

    /// `127.0.0.1:port`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The last 4 KiB of the server's log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let cut = log.len().saturating_sub(4096);
        let cut = (cut..log.len()).find(|&i| log.is_char_boundary(i)).unwrap_or(log.len());
        log[cut..].to_string()
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
