//! Test harness: starts a real `ringkeeper` process (or, for differential runs, Apache
//! ZooKeeper's own server) on 127.0.0.1 and hands its address to the tests.
//!
//! Set `RINGKEEPER_TEST_TARGET=apache` to run the same tests against Apache ZooKeeper 3.8 from
//! the Debian package; by default they run against the `ringkeeper` binary of this workspace,
//! which the harness builds once per test process ([`ringkeeper_binary`]).
//! Every server is killed when its [`TestServer`] drops.

pub mod cgroup;
pub mod command;
pub mod compat;
pub mod cpu_time;
pub mod ensemble;
pub mod four_letter;
pub mod kdc;
pub mod lazyfs;
pub mod linearizability;
pub mod pki;
pub mod process;
pub mod proxy;
pub mod sim;
pub mod wire;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};

use crate::command::LogLevel;
use crate::process::ServerChild;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Why the harness could not do what it was asked (start an ensemble, make a cgroup, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HarnessError {
    /// A setting that cannot work (e.g. a CPU quota of 0, a zoo.cfg the harness cannot lay out).
    Config(String),
    /// What this machine or build cannot do (no cgroup with a CPU quota can be made here).
    NotSupported(String),
    /// A server that did not start or serve (with its log), or a file that could not be
    /// written: what and why.
    Failed(String),
}

impl HarnessError {
    /// Wraps an I/O error with what was being done.
    pub fn io_at(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
        let context = context.into();
        move |source| HarnessError::Failed(format!("{context}: {source}"))
    }
}

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HarnessError::Config(why) => write!(f, "invalid option: {why}"),
            HarnessError::NotSupported(why) => write!(f, "not supported: {why}"),
            HarnessError::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for HarnessError {}

/// Which server implementation a test run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Ringkeeper,
    Apache,
}

impl Target {
    pub fn from_env() -> Target {
        match std::env::var("RINGKEEPER_TEST_TARGET").as_deref() {
            Ok("apache") => Target::Apache,
            _ => Target::Ringkeeper,
        }
    }
}

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Variables cargo sets for a test process that build scripts (`ring`'s, `cc`'s) watch with
/// `rerun-if-env-changed`: passed on to the harness's own `cargo build`, they would rebuild
/// `ring`, `rustls` and everything above them, and the next `cargo nextest run` would rebuild
/// them back.
fn set_by_cargo_for_this_test(name: &str) -> bool {
    const PREFIXES: [&str; 5] =
        ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CFG_", "CARGO_BIN_EXE_", "CARGO_CRATE_"];
    const NAMES: [&str; 4] =
        ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "CARGO_RUSTC_CURRENT_DIR", "OUT_DIR"];
    PREFIXES.iter().any(|p| name.starts_with(p)) || NAMES.contains(&name)
}

/// The `--features` this test build was made with (`.ci/run` passes them to nextest), handed
/// to the harness's own build so that it is the same build.
pub const CARGO_FEATURES: Option<&str> =
    if cfg!(feature = "gssapi") { Some("ringkeeper-server/gssapi,ringkeeper-tests/gssapi") } else { None };

/// Path of the `ringkeeper` binary, built on first use in this process with the feature set
/// `cargo nextest run --workspace` builds (all bins and tests of the workspace), so the build
/// is a no-op after nextest's own and nothing is compiled twice.
pub fn ringkeeper_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.current_dir(workspace_root()).args(["build", "-q", "--workspace", "--bins", "--tests"]);
            if let Some(features) = CARGO_FEATURES {
                build.args(["--features", features]);
            }
            for (name, _) in std::env::vars_os() {
                if name.to_str().is_some_and(set_by_cargo_for_this_test) {
                    build.env_remove(name);
                }
            }
            let status = build.status().expect("run cargo build for the ringkeeper binary");
            assert!(status.success(), "building ringkeeper failed");
            let target_dir = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target"));
            target_dir.join("debug").join("ringkeeper")
        })
        .clone()
}

/// Ports handed out by [`free_port`]: below the kernel's ephemeral range (32768+), so no
/// `bind(port 0)` of a proxy, client or other test process can take one between the check
/// and the server's own bind (a server refuses a port another socket listens on).
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Where test processes claim ports: one lock file per port, `flock`ed by the process that
/// handed the port out until it exits (the kernel drops the lock with the process).
const PORT_CLAIMS_DIR: &str = "/tmp/ringkeeper-test-ports";

/// Claims `port` for this process's lifetime; false if another live test process holds it.
/// A port found free by `bind` is not yet taken by the server it is meant for, so without a
/// claim two test processes (nextest runs each test in its own) could hand out the same one.
fn claim_port(port: u16) -> bool {
    use std::os::fd::AsRawFd;
    use std::sync::Mutex;
    static CLAIMS: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());
    let _ = std::fs::create_dir_all(PORT_CLAIMS_DIR);
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(format!("{PORT_CLAIMS_DIR}/{port}"))
    else {
        return true; // no claims possible here: fall back to the bind check alone
    };
    // SAFETY: flock on a file descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return false;
    }
    CLAIMS.lock().unwrap_or_else(|e| e.into_inner()).push(file);
    true
}

/// A free TCP port on 127.0.0.1 for a server to listen on: each call tries the next port of
/// [`TEST_PORTS`] (from a per-process random start, so parallel test processes rarely meet)
/// and returns the first one that no other test process has claimed and that binds.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = (TEST_PORTS.end - TEST_PORTS.start) as u32;
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let _ = NEXT.compare_exchange(
            u32::MAX,
            (nanos ^ std::process::id().wrapping_mul(7919)) % span,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
    for _ in 0..span {
        let port = TEST_PORTS.start + (NEXT.fetch_add(1, Ordering::Relaxed) % span) as u16;
        // Claim first: a bind check of a port another test process has claimed would hold
        // it for a moment, and its server, binding just then, would find it taken.
        if claim_port(port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {TEST_PORTS:?}");
}

/// How long the tests' four-letter words may take (connect, write, each read).
const FOUR_LETTER_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends a four-letter word to the server at `addr` and returns everything it wrote before
/// closing ([`four_letter::ask`]). Empty on connection failure or time-out.
pub fn four_letter_at(addr: SocketAddr, word: &str) -> String {
    four_letter::ask(addr, word, FOUR_LETTER_TIMEOUT).unwrap_or_default()
}

/// The zoo.cfg lines a server on 127.0.0.1 has to itself: its `dataDir` and client port.
pub fn own_lines(data_dir: &Path, client_port: u16) -> String {
    format!("dataDir={}\nclientPort={client_port}\nclientPortAddress=127.0.0.1\n", data_dir.display())
}

/// Polls `child` until it exits, for at most `limit`; `None` if it is still running then
/// (the caller decides how to stop it).
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for child process") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server process under test, with its own data directory.
pub struct TestServer {
    pub target: Target,
    pub port: u16,
    pub dir: tempfile::TempDir,
    extra_config: String,
    /// `dataDir` when it is not `dir/data` (e.g. on a [`lazyfs::LazyFs`] mount).
    data_dir_override: Option<PathBuf>,
    process: ServerChild,
}

impl TestServer {
    /// Starts the target from `RINGKEEPER_TEST_TARGET` with a default standalone config.
    pub fn start() -> TestServer {
        Self::start_with("")
    }

    /// Starts with extra `zoo.cfg` lines appended (e.g. `"4lw.commands.whitelist=*"`).
    pub fn start_with(extra_config: &str) -> TestServer {
        Self::start_in(extra_config, None)
    }

    /// Starts with extra `zoo.cfg` lines and `dataDir` at `data_dir` (created if missing);
    /// the config and the server log stay in a temporary directory of their own.
    pub fn start_with_data_dir(extra_config: &str, data_dir: &Path) -> TestServer {
        Self::start_in(extra_config, Some(data_dir.to_path_buf()))
    }

    /// Starts `target` whatever `RINGKEEPER_TEST_TARGET` says, with extra `zoo.cfg` lines:
    /// differential tests send the same requests to both implementations.
    pub fn start_target(target: Target, extra_config: &str) -> TestServer {
        Self::start_as(target, extra_config, None)
    }

    fn start_in(extra_config: &str, data_dir_override: Option<PathBuf>) -> TestServer {
        Self::start_as(Target::from_env(), extra_config, data_dir_override)
    }

    /// Starts `target` whatever `RINGKEEPER_TEST_TARGET` says (tests that drive both servers,
    /// e.g. moving data from Apache to ringkeeper), with `dataDir` at `data_dir_override`
    /// when given.
    pub fn start_as(target: Target, extra_config: &str, data_dir_override: Option<PathBuf>) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let process = ServerChild::new(dir.path().join("server.log"));
        let mut server = TestServer {
            target,
            port: free_port(),
            dir,
            extra_config: extra_config.to_string(),
            data_dir_override,
            process,
        };
        server.launch().unwrap_or_else(|e| panic!("{e}"));
        server
    }

    /// The zoo.cfg this server runs with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("zoo.cfg")
    }

    /// The data directory (`dataDir` of the config: where snapshots and log segments live).
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir_override.clone().unwrap_or_else(|| self.dir.path().join("data"))
    }

    fn write_config(&self) {
        let data = self.data_dir();
        std::fs::create_dir_all(&data).unwrap();
        let cfg = format!(
            "tickTime=2000\n{}admin.enableServer=false\n{}\n",
            own_lines(&data, self.port),
            self.extra_config
        );
        std::fs::write(self.config_path(), cfg).unwrap();
    }

    fn launch(&mut self) -> Result<(), String> {
        self.write_config();
        std::fs::File::create(self.process.log_path()).unwrap();
        let command =
            self.target.kind().command(&self.config_path(), self.dir.path(), true, LogLevel::Default);
        self.process.spawn(command).expect("spawn server");
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.process.exit_status() {
                return Err(format!("server exited during start-up ({status}); log:\n{}", self.log()));
            }
            if self.four_letter("srvr").contains("Mode:") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        Err(format!("server did not come up within 60 s; log:\n{}", self.log()))
    }

    /// `host:port` for a ZooKeeper connect string.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Sends a four-letter word and returns everything the server wrote before closing.
    /// Empty on connection failure.
    pub fn four_letter(&self, word: &str) -> String {
        four_letter_at(self.addr(), word)
    }

    /// The server's combined stdout/stderr so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// `kill -9` the server process.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Kills (if running) and starts again on the same port and data directory.
    pub fn restart(&mut self) {
        self.try_restart().unwrap_or_else(|e| panic!("{e}"));
    }

    /// [`TestServer::restart`] that returns, rather than panics on, a failed start-up
    /// (the error names the cause and holds the server's log).
    pub fn try_restart(&mut self) -> Result<(), String> {
        self.kill();
        self.launch()
    }

    /// Sends `signal` (a name for kill(1): `TERM`, `INT`) and waits up to `limit` for the
    /// process to exit; its exit status, or `None` if it is still running then.
    pub fn stop_with_signal(&mut self, signal: &str, limit: Duration) -> Option<ExitStatus> {
        self.process.stop_with_signal(signal, limit)
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Waits up to `limit` for the process to exit on its own; its exit status, or `None` if
    /// it is still running (or was never started or already reaped).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.process.wait_exit(limit)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}
