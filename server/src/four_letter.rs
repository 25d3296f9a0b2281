//! Four-letter words (`ruok`, `srvr`, `mntr`, ...): the text replies, byte for byte as
//! Apache ZooKeeper 3.8 writes them.
//!
//! Pure formatting. The network core that receives the four bytes fills a [`ServerStatus`]
//! snapshot (from its own connections plus whatever the data core reported), calls
//! [`respond`], writes the text and closes the connection. Nothing here does I/O except
//! [`host_environment`], which reads a few host facts once for `envi`.
//!
//! Invariants: output never depends on `HashMap` order (listings are sorted here: sessions
//! by id, paths lexicographically, expiry buckets by time); `srvr` is always allowed (as in
//! Apache, because `zkServer.sh status` relies on it).
//!
//! What the caller must do the way Apache does: count the 4 bytes as one received packet
//! (`Received:` includes the four-letter word itself), and report connections including
//! the one asking.
//!
//! Intentional differences from Apache:
//! - version: `3.8.4-ringkeeper-<ver>, built on <build date>`; `envi` adds `ringkeeper.version`
//!   and reports host facts instead of `java.*` properties and JVM memory.
//! - dates in `dump` are printed in UTC (Apache uses the JVM's time zone).
//! - `wchc`/`wchp`/`dump` listings are sorted (Apache prints hash order).
//! - `mntr` prints the commonly scraped gauges in a fixed order plus whatever the caller
//!   adds in [`ServerStatus::extra_monitor`], not Apache's ~400 internal metrics.
//! - `gtmk`, `stmk` and `hash` are not implemented: [`respond`] returns `None` for them.
//! - latency is measured in microseconds ([`crate::request_stats`]): the average keeps its
//!   sub-millisecond part where Apache's whole-millisecond samples average to 0; min and max
//!   are whole milliseconds as in Apache.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Apache ZooKeeper release whose protocol and 4lw output ringkeeper implements.
pub const ZOOKEEPER_VERSION: &str = "3.8.4";
/// ringkeeper's own version.
pub const RINGKEEPER_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit this binary was built from (short id; empty when built outside git).
pub const GIT_COMMIT: &str = env!("RINGKEEPER_GIT_COMMIT");
/// When this binary was built, Unix seconds (`SOURCE_DATE_EPOCH` when the build set it).
const BUILT_UNIX_SECS: &str = env!("RINGKEEPER_BUILT_UNIX_SECS");

/// The build date as Apache prints it: `2026-11-26 04:05 UTC`.
pub fn built_on() -> String {
    let secs: i64 = BUILT_UNIX_SECS.parse().unwrap_or(0);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let minute_of_day = secs.rem_euclid(86_400) / 60;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", minute_of_day / 60, minute_of_day % 60)
}

/// What Apache prints when the server is not (yet) serving, e.g. during an election.
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// Every four-letter word [`respond`] understands.
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "isro", "mntr", "ruok", "snap", "srst", "srvr", "stat",
    "wchc", "wchp", "wchs",
];

/// The answer to `snap` (ringkeeper's own word: take a snapshot now, like the `snapshot`
/// command of Apache 3.9's admin server); the data role starts the snapshot when it sees it.
pub const SNAPSHOT_REQUESTED: &str = "Snapshot requested\n";

/// The full version string, as `Version.getFullVersion()` formats it:
/// `3.8.4-ringkeeper-0.1.0, built on 2026-11-26 04:05 UTC`. Tools that split on `-` get
/// `3.8.4`; tools that split on `,` get the version without the build date.
pub fn full_version() -> String {
    format!("{ZOOKEEPER_VERSION}-ringkeeper-{RINGKEEPER_VERSION}, built on {}", built_on())
}

/// `4lw.commands.whitelist`: `*` for all, else a comma separated list. `srvr` is always on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whitelist {
    /// `*`: every known word.
    All,
    /// These words plus `srvr`. The default is the empty set: only `srvr` (Apache's default).
    Words(BTreeSet<String>),
}

impl Default for Whitelist {
    fn default() -> Self {
        Whitelist::Words(BTreeSet::new())
    }
}

impl Whitelist {
    /// Parse Apache's list syntax (comma separated, whitespace trimmed, empty items skipped,
    /// `*` anywhere means all). Returns the list and the items that are not known words.
    pub fn parse(list: &str) -> (Whitelist, Vec<String>) {
        let mut words = BTreeSet::new();
        let mut unknown = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                return (Whitelist::All, Vec::new());
            }
            if FOUR_LETTER_WORDS.contains(&item) || APACHE_ONLY_WORDS.contains(&item) {
                words.insert(item.to_owned());
            } else {
                unknown.push(item.to_owned());
            }
        }
        (Whitelist::Words(words), unknown)
    }

    /// Whether `word` may run.
    pub fn allows(&self, word: &str) -> bool {
        word == "srvr"
            || match self {
                Whitelist::All => true,
                Whitelist::Words(w) => w.contains(word),
            }
    }
}

/// Words Apache knows that ringkeeper does not answer (accepted in a whitelist silently).
const APACHE_ONLY_WORDS: &[&str] = &["gtmk", "stmk", "hash"];

/// The server's role, printed as `Mode:` / `zk_server_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerMode {
    /// Single server.
    #[default]
    Standalone,
    /// Ensemble leader.
    Leader,
    /// Ensemble follower.
    Follower,
    /// Non-voting observer.
    Observer,
    /// Partitioned server answering reads only.
    ReadOnly,
}

impl ServerMode {
    /// Apache's spelling (`ServerStats.Provider.getState`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServerMode::Standalone => "standalone",
            ServerMode::Leader => "leader",
            ServerMode::Follower => "follower",
            ServerMode::Observer => "observer",
            ServerMode::ReadOnly => "read-only",
        }
    }
}

/// Request latency, ms, accumulated like Apache's `AvgMinMaxCounter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    /// Smallest sample (ignored while `count == 0`).
    pub min_ms: u64,
    /// Largest sample.
    pub max_ms: u64,
    /// Sum of all samples.
    pub total_ms: u64,
    /// Number of samples.
    pub count: u64,
}

impl Latency {
    /// Add one sample.
    pub fn record(&mut self, ms: u64) {
        self.min_ms = if self.count == 0 { ms } else { self.min_ms.min(ms) };
        self.max_ms = self.max_ms.max(ms);
        self.total_ms += ms;
        self.count += 1;
    }

    /// The average in milliseconds (0 without samples): what `avg_java` prints, unrounded.
    pub fn avg_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms as f64 / self.count as f64
        }
    }

    /// The smallest sample (0 without samples).
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min_ms
        }
    }

    /// Server-wide average: rounded half-up to 4 decimals, printed like Java's `double`
    /// (`0.0`, `4.4286`, `12.5`).
    fn avg_java(&self) -> String {
        if self.count == 0 {
            return "0.0".into();
        }
        // Half-up rounding in integers: ceil(floor(2 * avg * 10^4) / 2) = round(avg * 10^4).
        let scaled = (self.total_ms as u128 * 20_000 / self.count as u128).div_ceil(2);
        java_double(scaled as f64 / 10_000.0)
    }

    /// Per-connection average: integer division, as `ServerCnxn.getAvgLatency`.
    pub fn avg_int(&self) -> u64 {
        self.total_ms.checked_div(self.count).unwrap_or(0)
    }
}

/// Format like Java's `Double.toString` for non-negative values.
fn java_double(v: f64) -> String {
    if v == 0.0 {
        return "0.0".into();
    }
    if (1e-3..1e7).contains(&v) {
        return format!("{v:?}");
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = if mantissa.contains('.') { mantissa.to_owned() } else { format!("{mantissa}.0") };
    format!("{mantissa}E{exp}")
}

/// One client connection, as `cons` and `stat` print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionStatus {
    /// Peer address.
    pub remote: SocketAddr,
    /// Apache prints NIO interest ops (1 = read, 4 = write, 5 = both, 0 = none) in hex.
    pub interest_ops: u32,
    /// Requests received but not answered yet (`queued=`).
    pub outstanding: u64,
    /// Packets received on this connection (`recved=`).
    pub received: u64,
    /// Packets sent on this connection (`sent=`).
    pub sent: u64,
    /// Session id, 0 while no session is established (then only the brief form prints).
    pub session_id: i64,
    /// Last operation, Apache's four-letter abbreviation (see [`last_op_name`]); `NA` at first.
    pub last_op: String,
    /// When the connection was established, Unix ms (`est=`).
    pub established_unix_ms: i64,
    /// Negotiated session timeout, ms (`to=`).
    pub session_timeout_ms: u32,
    /// Last client xid; negative = none yet (then `lcxid` is omitted).
    pub last_cxid: i64,
    /// Zxid of the last reply (`lzxid=`); -1 = none (printed `0xffffffffffffffff` like Apache).
    pub last_zxid: i64,
    /// When the last reply was sent, ms on the server's monotonic clock (`lresp=`).
    pub last_response_ms: i64,
    /// Latency of the last request, ms (`llat=`).
    pub last_latency_ms: u64,
    /// Latency over this connection's requests.
    pub latency: Latency,
}

/// A connection as `dump` lists it in the connection expiry buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionRef {
    /// Peer address.
    pub remote: SocketAddr,
    /// Session id, 0 if none.
    pub session_id: i64,
}

/// Items that expire at the same time (one bucket of Apache's `ExpiryQueue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryBucket<T> {
    /// Expiry time, Unix ms.
    pub expire_at_unix_ms: i64,
    /// What expires then.
    pub items: Vec<T>,
}

/// What `conf` prints (`ZooKeeperServer.dumpConf`), in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfStatus {
    /// Bound client port.
    pub client_port: u16,
    /// -1: no TLS port.
    pub secure_client_port: i32,
    /// Snapshot directory (absolute).
    pub data_dir: PathBuf,
    /// Log directory (absolute).
    pub data_log_dir: PathBuf,
    /// tickTime, ms.
    pub tick_time_ms: u32,
    /// maxClientCnxns.
    pub max_client_cnxns: u32,
    /// minSessionTimeout, ms.
    pub min_session_timeout_ms: u32,
    /// maxSessionTimeout, ms.
    pub max_session_timeout_ms: u32,
    /// -1: the OS default backlog.
    pub client_port_listen_backlog: i32,
    /// myid; 0 when standalone without a myid.
    pub server_id: u64,
    /// Extra `key=value` lines after `serverId`: an ensemble member's initLimit, syncLimit,
    /// electionAlg, electionPort, quorumPort and peerType (`QuorumZooKeeperServer.dumpConf`).
    pub extra: Vec<(String, String)>,
    /// An ensemble member's current configuration (the `/zookeeper/config` text, `version=`
    /// last), printed after a `membership: ` line; `None` standalone.
    pub membership: Option<String>,
}

impl ConfStatus {
    /// Build from the config and the port actually bound. Relative dirs are made absolute
    /// against the current directory, as Java's `getAbsolutePath` does.
    pub fn from_config(cfg: &crate::config::Config, bound_client_port: u16) -> ConfStatus {
        let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        ConfStatus {
            client_port: bound_client_port,
            secure_client_port: -1,
            data_dir: abs(&cfg.data_dir),
            data_log_dir: abs(cfg.log_dir()),
            tick_time_ms: cfg.tick_time_ms,
            max_client_cnxns: cfg.max_client_cnxns,
            min_session_timeout_ms: cfg.min_session_timeout_ms,
            max_session_timeout_ms: cfg.max_session_timeout_ms,
            client_port_listen_backlog: -1,
            server_id: cfg.my_id.unwrap_or(0),
            extra: quorum_conf_lines(cfg),
            membership: None,
        }
    }
}

/// `electionAlg`: Apache 3.8 has only FastLeaderElection, type 3.
const ELECTION_ALGORITHM: u32 = 3;

/// The lines an ensemble member's `conf` adds after `serverId` (none standalone).
fn quorum_conf_lines(cfg: &crate::config::Config) -> Vec<(String, String)> {
    let own = cfg.my_id.and_then(|id| cfg.servers.iter().find(|s| s.id == id));
    let Some(own) = own.filter(|_| cfg.is_distributed()) else {
        return Vec::new();
    };
    let peer_type = match own.role {
        crate::config::PeerRole::Participant => 0,
        crate::config::PeerRole::Observer => 1,
    };
    [
        ("initLimit", cfg.init_limit.to_string()),
        ("syncLimit", cfg.sync_limit.to_string()),
        ("electionAlg", ELECTION_ALGORITHM.to_string()),
        ("electionPort", own.election_port.to_string()),
        ("quorumPort", own.peer_port.to_string()),
        ("peerType", peer_type.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Everything the four-letter words print: a snapshot the server fills per request.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerStatus {
    /// False while not serving (election, start-up): most words then print [`NOT_SERVING`].
    pub serving: bool,
    /// Full version line text, normally [`full_version`].
    pub version: String,
    /// Standalone, leader, ...
    pub mode: ServerMode,
    /// Request latency over all connections.
    pub latency: Latency,
    /// Packets received (the four-letter word included).
    pub packets_received: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Live client connections (`Connections:`), the asking one included.
    pub num_alive_connections: u64,
    /// Requests in flight (`Outstanding:`).
    pub outstanding_requests: u64,
    /// Last processed zxid (`Zxid: 0x..`).
    pub last_zxid: i64,
    /// Znodes in the tree (`Node count:`).
    pub node_count: u64,
    /// Connections for `stat` (brief) and `cons` (full).
    pub connections: Vec<ConnectionStatus>,
    /// `wchs` first line: connections with watches. Apache counts data watches only
    /// (getData/exists), not child watches; fill these the same way.
    pub watching_connections: u64,
    /// `wchs`: watched paths.
    pub watched_paths: u64,
    /// `wchs`: `Total watches:`.
    pub watch_total: u64,
    /// `wchc`: session id -> watched paths (data watches, as Apache).
    pub watches_by_session: Vec<(i64, Vec<String>)>,
    /// `wchp`: path -> watching session ids (data watches, as Apache).
    pub watches_by_path: Vec<(String, Vec<i64>)>,
    /// `mntr zk_watch_count`: all watches (data + child).
    pub watch_count: u64,
    /// `dump`: session id -> its ephemeral paths.
    pub ephemerals_by_session: Vec<(i64, Vec<String>)>,
    /// `mntr zk_ephemerals_count`.
    pub ephemerals_count: u64,
    /// `dump` SessionTracker section: session ids by expiry time.
    pub session_expiry: Vec<ExpiryBucket<i64>>,
    /// `dump` Connections section: connections by idle-expiry time.
    pub connection_expiry: Vec<ExpiryBucket<ConnectionRef>>,
    /// `mntr zk_global_sessions`.
    pub global_sessions: u64,
    /// `mntr zk_local_sessions`.
    pub local_sessions: u64,
    /// `dirs` / `conf`: bytes in the snapshot directory.
    pub data_dir_size: u64,
    /// `dirs` / `conf`: bytes in the log directory.
    pub log_dir_size: u64,
    /// What `conf` prints.
    pub conf: ConfStatus,
    /// `envi` lines after `zookeeper.version` and `ringkeeper.version`, e.g. [`host_environment`].
    pub env: Vec<(String, String)>,
    /// `mntr zk_approximate_data_size`: path + data bytes over all znodes.
    pub approximate_data_size: u64,
    /// `mntr zk_open_file_descriptor_count`; `None` omits the line (as Apache off Unix).
    pub open_file_descriptor_count: Option<u64>,
    /// `mntr zk_max_file_descriptor_count`; `None` omits the line.
    pub max_file_descriptor_count: Option<u64>,
    /// `mntr zk_uptime`, ms.
    pub uptime_ms: u64,
    /// `mntr zk_auth_failed_count`.
    pub auth_failed_count: u64,
    /// `mntr zk_non_mtls_local_conn_count` / `zk_non_mtls_remote_conn_count`.
    pub non_mtls_local_conn_count: u64,
    pub non_mtls_remote_conn_count: u64,
    /// `mntr zk_last/min/max_client_response_size`; -1 = none yet (Apache's value).
    pub last_client_response_size: i64,
    /// See `last_client_response_size`.
    pub min_client_response_size: i64,
    /// See `last_client_response_size`.
    pub max_client_response_size: i64,
    /// `mntr zk_outstanding_tls_handshake`: TLS handshakes under way.
    pub outstanding_tls_handshakes: u64,
    /// Extra `mntr` lines (`zk_` is prefixed), e.g. `followers` on a leader.
    pub extra_monitor: Vec<(String, String)>,
}

impl ServerStatus {
    /// An idle standalone server with nothing connected, for `conf` as given.
    pub fn new(conf: ConfStatus) -> ServerStatus {
        ServerStatus {
            serving: true,
            version: full_version(),
            mode: ServerMode::Standalone,
            latency: Latency::default(),
            packets_received: 0,
            packets_sent: 0,
            num_alive_connections: 0,
            outstanding_requests: 0,
            last_zxid: 0,
            node_count: 0,
            connections: Vec::new(),
            watching_connections: 0,
            watched_paths: 0,
            watch_total: 0,
            watches_by_session: Vec::new(),
            watches_by_path: Vec::new(),
            watch_count: 0,
            ephemerals_by_session: Vec::new(),
            ephemerals_count: 0,
            session_expiry: Vec::new(),
            connection_expiry: Vec::new(),
            global_sessions: 0,
            local_sessions: 0,
            data_dir_size: 0,
            log_dir_size: 0,
            conf,
            env: Vec::new(),
            approximate_data_size: 0,
            open_file_descriptor_count: None,
            max_file_descriptor_count: None,
            uptime_ms: 0,
            auth_failed_count: 0,
            non_mtls_local_conn_count: 0,
            non_mtls_remote_conn_count: 0,
            last_client_response_size: -1,
            min_client_response_size: -1,
            max_client_response_size: -1,
            outstanding_tls_handshakes: 0,
            extra_monitor: Vec::new(),
        }
    }
}

/// Apache's `lop=` abbreviation for a request opcode (`FinalRequestProcessor`); `NA` if unknown.
pub fn last_op_name(opcode: i32) -> &'static str {
    match opcode {
        11 => "PING",
        -10 => "SESS",
        -11 => "CLOS",
        1 | 15 | 19 | 21 => "CREA",
        2 | 20 => "DELE",
        3 => "EXIS",
        4 => "GETD",
        5 => "SETD",
        6 => "GETA",
        7 => "SETA",
        8 | 12 => "GETC",
        9 => "SYNC",
        13 => "CHEC",
        14 => "MULT",
        22 => "MLTR",
        16 => "RECO",
        17 => "CHKW",
        18 => "REMW",
        101 | 105 => "SETW",
        103 => "GETE",
        104 => "GETACN",
        106 => "ADDW",
        107 => "HOMI",
        _ => "NA",
    }
}

/// The reply to a four-letter word. `Some(text)` for a known word (Apache's "not in the
/// whitelist" text when it is not allowed); `None` when the bytes are not a word ringkeeper
/// answers, so the caller treats them as the start of a normal ZooKeeper frame.
pub fn respond(word: &[u8; 4], whitelist: &Whitelist, status: &ServerStatus) -> Option<String> {
    let word = std::str::from_utf8(word).ok()?;
    if !FOUR_LETTER_WORDS.contains(&word) {
        return None;
    }
    if !whitelist.allows(word) {
        return Some(format!("{word} is not executed because it is not in the whitelist.\n"));
    }
    let mut out = String::new();
    match word {
        "ruok" => out.push_str("imok"),
        "snap" => out.push_str(SNAPSHOT_REQUESTED),
        // Apache: "null" while no server runs (electing, syncing), so that clients probing for a
        // read-write server (kazoo's read-only mode) do not pick this one.
        "isro" => out.push_str(match (status.mode, status.serving) {
            (ServerMode::ReadOnly, _) => "ro",
            (_, true) => "rw",
            (_, false) => "null",
        }),
        "envi" => envi(&mut out, status),
        _ if !status.serving => {
            out.push_str(NOT_SERVING);
            out.push('\n');
        }
        "srvr" => stat(&mut out, status, false),
        "stat" => stat(&mut out, status, true),
        "mntr" => mntr(&mut out, status),
        "conf" => conf(&mut out, &status.conf, status),
        "cons" => {
            for c in &status.connections {
                connection(&mut out, c, false);
                out.push('\n');
            }
            out.push('\n');
        }
        "crst" => out.push_str("Connection stats reset.\n"),
        "srst" => out.push_str("Server stats reset.\n"),
        "dirs" => {
            let _ = writeln!(out, "datadir_size: {}", status.data_dir_size);
            let _ = writeln!(out, "logdir_size: {}", status.log_dir_size);
        }
        "wchs" => {
            let _ = writeln!(
                out,
                "{} connections watching {} paths\nTotal watches:{}",
                status.watching_connections, status.watched_paths, status.watch_total
            );
        }
        "wchc" => {
            for (session, paths) in sorted_by_key(&status.watches_by_session) {
                let _ = writeln!(out, "0x{:x}", session);
                for p in sorted(paths) {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            out.push('\n');
        }
        "wchp" => {
            for (path, sessions) in sorted_by_key(&status.watches_by_path) {
                let _ = writeln!(out, "{path}");
                for s in sorted(sessions) {
                    let _ = writeln!(out, "\t0x{:x}", s);
                }
            }
            out.push('\n');
        }
        "dump" => dump(&mut out, status),
        _ => return None,
    }
    Some(out)
}

fn sorted<T: Ord>(items: &[T]) -> Vec<&T> {
    let mut v: Vec<&T> = items.iter().collect();
    v.sort();
    v
}

fn sorted_by_key<K: Ord, V>(items: &[(K, V)]) -> Vec<(&K, &V)> {
    let mut v: Vec<(&K, &V)> = items.iter().map(|(k, v)| (k, v)).collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// `srvr` and `stat` (`StatCommand`).
fn stat(out: &mut String, s: &ServerStatus, with_clients: bool) {
    let _ = writeln!(out, "Zookeeper version: {}", s.version);
    if s.mode == ServerMode::ReadOnly {
        out.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    if with_clients {
        out.push_str("Clients:\n");
        for c in &s.connections {
            connection(out, c, true);
            out.push('\n');
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{}/{}",
        s.latency.min(),
        s.latency.avg_java(),
        s.latency.max_ms
    );
    let _ = writeln!(out, "Received: {}", s.packets_received);
    let _ = writeln!(out, "Sent: {}", s.packets_sent);
    let _ = writeln!(out, "Connections: {}", s.num_alive_connections);
    let _ = writeln!(out, "Outstanding: {}", s.outstanding_requests);
    let _ = writeln!(out, "Zxid: 0x{:x}", s.last_zxid);
    let _ = writeln!(out, "Mode: {}", s.mode.as_str());
    let _ = writeln!(out, "Node count: {}", s.node_count);
}

/// Java's `InetSocketAddress.toString` for a resolved address without a host name:
/// `/127.0.0.1:2181`, `/[0:0:0:0:0:0:0:1]:2181` (IPv6 uncompressed, as Java prints it).
fn java_socket_addr(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("/{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => {
            let segs: Vec<String> = a.ip().segments().iter().map(|s| format!("{s:x}")).collect();
            format!("/[{}]:{}", segs.join(":"), a.port())
        }
    }
}

/// `ServerCnxn.dumpConnectionInfo`, without the trailing newline.
fn connection(out: &mut String, c: &ConnectionStatus, brief: bool) {
    let ops = if c.interest_ops == 0 { "0".to_owned() } else { format!("{:x}", c.interest_ops) };
    let _ = write!(
        out,
        " {}[{}](queued={},recved={},sent={}",
        java_socket_addr(&c.remote),
        ops,
        c.outstanding,
        c.received,
        c.sent
    );
    if !brief && c.session_id != 0 {
        let _ = write!(
            out,
            ",sid=0x{:x},lop={},est={},to={}",
            c.session_id, c.last_op, c.established_unix_ms, c.session_timeout_ms
        );
        if c.last_cxid >= 0 {
            let _ = write!(out, ",lcxid=0x{:x}", c.last_cxid);
        }
        let _ = write!(
            out,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            c.last_zxid,
            c.last_response_ms,
            c.last_latency_ms,
            c.latency.min(),
            c.latency.avg_int(),
            c.latency.max_ms
        );
    }
    out.push(')');
}

/// `mntr` (`MonitorCommand`): the `dumpMonitorValues` gauges in Apache's order.
fn mntr(out: &mut String, s: &ServerStatus) {
    for (k, v) in monitor_values(s) {
        let _ = writeln!(out, "zk_{k}\t{v}");
    }
}

/// The `mntr` gauges in Apache's order, names without the `zk_` prefix, values as printed
/// (the AdminServer's `monitor` returns the same pairs as JSON).
pub fn monitor_values(s: &ServerStatus) -> Vec<(String, String)> {
    let mut values = Vec::new();
    let mut line = |k: &str, v: &dyn std::fmt::Display| values.push((k.to_owned(), v.to_string()));
    line("version", &s.version);
    line("server_state", &s.mode.as_str());
    line("ephemerals_count", &s.ephemerals_count);
    line("num_alive_connections", &s.num_alive_connections);
    line("avg_latency", &s.latency.avg_java());
    line("outstanding_requests", &s.outstanding_requests);
    line("znode_count", &s.node_count);
    line("global_sessions", &s.global_sessions);
    line("non_mtls_remote_conn_count", &s.non_mtls_remote_conn_count);
    line("last_client_response_size", &s.last_client_response_size);
    line("packets_sent", &s.packets_sent);
    line("packets_received", &s.packets_received);
    line("max_client_response_size", &s.max_client_response_size);
    line("connection_drop_probability", &"0.0");
    line("watch_count", &s.watch_count);
    line("auth_failed_count", &s.auth_failed_count);
    line("min_latency", &s.latency.min());
    if let Some(n) = s.max_file_descriptor_count {
        line("max_file_descriptor_count", &n);
    }
    line("approximate_data_size", &s.approximate_data_size);
    if let Some(n) = s.open_file_descriptor_count {
        line("open_file_descriptor_count", &n);
    }
    line("local_sessions", &s.local_sessions);
    line("uptime", &s.uptime_ms);
    line("max_latency", &s.latency.max_ms);
    line("outstanding_tls_handshake", &s.outstanding_tls_handshakes);
    line("min_client_response_size", &s.min_client_response_size);
    line("non_mtls_local_conn_count", &s.non_mtls_local_conn_count);
    for (k, v) in &s.extra_monitor {
        line(k, v);
    }
    values
}

/// `conf` (`ZooKeeperServer.dumpConf`).
fn conf(out: &mut String, c: &ConfStatus, s: &ServerStatus) {
    let _ = writeln!(out, "clientPort={}", c.client_port);
    let _ = writeln!(out, "secureClientPort={}", c.secure_client_port);
    let _ = writeln!(out, "dataDir={}", c.data_dir.display());
    let _ = writeln!(out, "dataDirSize={}", s.data_dir_size);
    let _ = writeln!(out, "dataLogDir={}", c.data_log_dir.display());
    let _ = writeln!(out, "dataLogSize={}", s.log_dir_size);
    let _ = writeln!(out, "tickTime={}", c.tick_time_ms);
    let _ = writeln!(out, "maxClientCnxns={}", c.max_client_cnxns);
    let _ = writeln!(out, "minSessionTimeout={}", c.min_session_timeout_ms);
    let _ = writeln!(out, "maxSessionTimeout={}", c.max_session_timeout_ms);
    let _ = writeln!(out, "clientPortListenBacklog={}", c.client_port_listen_backlog);
    let _ = writeln!(out, "serverId={}", c.server_id);
    for (k, v) in &c.extra {
        let _ = writeln!(out, "{k}={v}");
    }
    if let Some(membership) = &c.membership {
        out.push_str("membership: \n");
        out.push_str(membership);
    }
}

/// `envi` (`EnvCommand`).
fn envi(out: &mut String, s: &ServerStatus) {
    out.push_str("Environment:\n");
    let _ = writeln!(out, "zookeeper.version={}", s.version);
    let _ = writeln!(out, "ringkeeper.version={RINGKEEPER_VERSION}");
    for (k, v) in &s.env {
        let _ = writeln!(out, "{k}={v}");
    }
}

/// `dump` (`DumpCommand`): session expiry, ephemerals, connection expiry.
fn dump(out: &mut String, s: &ServerStatus) {
    out.push_str("SessionTracker dump:\n");
    expiry(out, "Session ", &s.session_expiry, |out, id| {
        let _ = writeln!(out, "\t0x{:x}", id);
    });
    out.push_str("ephemeral nodes dump:\n");
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", s.ephemerals_by_session.len());
    for (session, paths) in sorted_by_key(&s.ephemerals_by_session) {
        let _ = writeln!(out, "0x{:x}:", session);
        for p in sorted(paths) {
            let _ = writeln!(out, "\t{p}");
        }
    }
    out.push_str("Connections dump:\n");
    expiry(out, "Connections ", &s.connection_expiry, |out, c| {
        let _ = writeln!(out, "\tip: {} sessionId: 0x{:x}", java_socket_addr(&c.remote), c.session_id);
    });
}

/// `ExpiryQueue.dump`: `Sets (buckets)/(items):` then each bucket, oldest first.
fn expiry<T>(out: &mut String, prefix: &str, buckets: &[ExpiryBucket<T>], item: impl Fn(&mut String, &T)) {
    let total: usize = buckets.iter().map(|b| b.items.len()).sum();
    let _ = writeln!(out, "{prefix}Sets ({})/({total}):", buckets.len());
    let mut order: Vec<&ExpiryBucket<T>> = buckets.iter().collect();
    order.sort_by_key(|b| b.expire_at_unix_ms);
    for b in order {
        let _ = writeln!(out, "{} expire at {}:", b.items.len(), java_date_utc(b.expire_at_unix_ms));
        for i in &b.items {
            item(out, i);
        }
    }
}

/// Java's `Date.toString` in UTC: `Sun Nov 22 15:28:13 UTC 2026`.
fn java_date_utc(unix_ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = unix_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        tod / 3600,
        tod % 3600 / 60,
        tod % 60,
        y
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Host facts for `envi`, named like Apache's (`host.name`, `os.name`, `os.arch`,
/// `os.version`, `user.name`, `user.home`, `user.dir`). Reads `/proc` and the environment;
/// call once at start-up. Missing facts are reported as `<NA>`, as Apache does.
pub fn host_environment() -> Vec<(String, String)> {
    fn proc_file(path: &str) -> String {
        std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_else(|_| "<NA>".into())
    }
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| "<NA>".into());
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        other => other,
    };
    vec![
        ("host.name".into(), proc_file("/proc/sys/kernel/hostname")),
        ("os.name".into(), proc_file("/proc/sys/kernel/ostype")),
        ("os.arch".into(), arch.into()),
        ("os.version".into(), proc_file("/proc/sys/kernel/osrelease")),
        (
            "user.name".into(),
            std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "<NA>".into()),
        ),
        ("user.home".into(), env("HOME")),
        (
            "user.dir".into(),
            std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_else(|_| "<NA>".into()),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf_status() -> ConfStatus {
        ConfStatus {
            client_port: 21810,
            secure_client_port: -1,
            data_dir: PathBuf::from("/tmp/apache-4lw/data/version-2"),
            data_log_dir: PathBuf::from("/tmp/apache-4lw/data/version-2"),
            tick_time_ms: 2000,
            max_client_cnxns: 60,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            client_port_listen_backlog: -1,
            server_id: 0,
            extra: Vec::new(),
            membership: None,
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// The state of the real Apache 3.8 server the samples below were captured from: one
    /// zkCli session (created /app, /app/eph, /app/seq0000000001, watched /app and
    /// /zookeeper) and the connection asking.
    fn sample() -> ServerStatus {
        let mut s = ServerStatus::new(conf_status());
        s.version = "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC".into();
        s.latency = Latency { min_ms: 1, max_ms: 11, total_ms: 31, count: 7 };
        s.packets_received = 10;
        s.packets_sent = 14;
        s.num_alive_connections = 2;
        s.last_zxid = 4;
        s.node_count = 8;
        s.connections = vec![
            ConnectionStatus {
                remote: addr("127.0.0.1:47604"),
                interest_ops: 1,
                outstanding: 0,
                received: 7,
                sent: 7,
                session_id: 0x10000066ec00000,
                last_op: "EXIS".into(),
                established_unix_ms: 1795361261943,
                session_timeout_ms: 30000,
                last_cxid: 6,
                last_zxid: 4,
                last_response_ms: 436080,
                last_latency_ms: 2,
                latency: Latency { min_ms: 0, max_ms: 11, total_ms: 31, count: 7 },
            },
            ConnectionStatus {
                remote: addr("127.0.0.1:47612"),
                interest_ops: 0,
                outstanding: 0,
                received: 1,
                sent: 0,
                session_id: 0,
                last_op: "NA".into(),
                established_unix_ms: 1795361270000,
                session_timeout_ms: 0,
                last_cxid: -1,
                last_zxid: -1,
                last_response_ms: 0,
                last_latency_ms: 0,
                latency: Latency::default(),
            },
        ];
        s.watching_connections = 1;
        s.watched_paths = 2;
        s.watch_total = 2;
        s.watch_count = 3;
        s.watches_by_session = vec![(0x10000066ec00000, vec!["/zookeeper".into(), "/app".into()])];
        s.watches_by_path =
            vec![("/zookeeper".into(), vec![0x10000066ec00000]), ("/app".into(), vec![0x10000066ec00000])];
        s.ephemerals_by_session =
            vec![(0x10000066ec00000, vec!["/app/seq0000000001".into(), "/app/eph".into()])];
        s.ephemerals_count = 2;
        s.session_expiry =
            vec![ExpiryBucket { expire_at_unix_ms: 1795361293000, items: vec![0x10000066ec00000] }];
        s.connection_expiry = vec![
            ExpiryBucket {
                expire_at_unix_ms: 1795361295000,
                items: vec![ConnectionRef { remote: addr("127.0.0.1:47604"), session_id: 0x10000066ec00000 }],
            },
            ExpiryBucket { expire_at_unix_ms: 1795361275000, items: vec![] },
            ExpiryBucket {
                expire_at_unix_ms: 1795361285000,
                items: vec![ConnectionRef { remote: addr("127.0.0.1:47652"), session_id: 0 }],
            },
        ];
        s.data_dir_size = 457;
        s.log_dir_size = 457;
        s.global_sessions = 1;
        s.approximate_data_size = 81;
        s.open_file_descriptor_count = Some(264);
        s.max_file_descriptor_count = Some(20000);
        s.uptime_ms = 19475;
        s.last_client_response_size = 84;
        s.min_client_response_size = 24;
        s.max_client_response_size = 112;
        s
    }

    fn all(word: &str, s: &ServerStatus) -> String {
        respond(word.as_bytes().try_into().unwrap(), &Whitelist::All, s).expect("known word")
    }

    #[test]
    fn srvr_matches_apache() {
        assert_eq!(
            all("srvr", &sample()),
            "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\n\
             Latency min/avg/max: 1/4.4286/11\nReceived: 10\nSent: 14\nConnections: 2\n\
             Outstanding: 0\nZxid: 0x4\nMode: standalone\nNode count: 8\n"
        );
    }

    #[test]
    fn srvr_idle_and_own_version() {
        let s = ServerStatus::new(conf_status());
        let text = all("srvr", &s);
        assert!(text.starts_with("Zookeeper version: 3.8.4-ringkeeper-"), "{text}");
        assert!(text.contains("\nLatency min/avg/max: 0/0.0/0\n"), "{text}");
        let version = full_version();
        assert!(version.contains(", built on 20") && !built_on().starts_with("1970"), "{version}");
        assert_eq!(version.split('-').next(), Some("3.8.4"));
        assert_eq!(
            version.split(',').next(),
            Some(format!("3.8.4-ringkeeper-{RINGKEEPER_VERSION}").as_str())
        );
    }

    #[test]
    fn stat_matches_apache() {
        assert_eq!(
            all("stat", &sample()),
            "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\nClients:\n \
             /127.0.0.1:47604[1](queued=0,recved=7,sent=7)\n /127.0.0.1:47612[0](queued=0,recved=1,sent=0)\n\n\
             Latency min/avg/max: 1/4.4286/11\nReceived: 10\nSent: 14\nConnections: 2\nOutstanding: 0\n\
             Zxid: 0x4\nMode: standalone\nNode count: 8\n"
        );
    }

    #[test]
    fn cons_matches_apache() {
        assert_eq!(
            all("cons", &sample()),
            " /127.0.0.1:47604[1](queued=0,recved=7,sent=7,sid=0x10000066ec00000,lop=EXIS,est=1795361261943,\
             to=30000,lcxid=0x6,lzxid=0x4,lresp=436080,llat=2,minlat=0,avglat=4,maxlat=11)\n \
             /127.0.0.1:47612[0](queued=0,recved=1,sent=0)\n\n"
        );
    }

    #[test]
    fn cons_without_cxid_and_ipv6() {
        let mut s = sample();
        s.connections.truncate(1);
        let c = &mut s.connections[0];
        c.remote = addr("[::1]:5000");
        c.interest_ops = 5;
        c.last_cxid = -1;
        c.last_zxid = -1;
        let text = all("cons", &s);
        assert!(text.starts_with(" /[0:0:0:0:0:0:0:1]:5000[5](queued=0,"), "{text}");
        assert!(text.contains(",to=30000,lzxid=0xffffffffffffffff,lresp="), "{text}");
    }

    #[test]
    fn mntr_matches_apache_prefix() {
        let text = all("mntr", &sample());
        let expected_start = "zk_version\t3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\n\
            zk_server_state\tstandalone\nzk_ephemerals_count\t2\nzk_num_alive_connections\t2\n\
            zk_avg_latency\t4.4286\nzk_outstanding_requests\t0\nzk_znode_count\t8\nzk_global_sessions\t1\n\
            zk_non_mtls_remote_conn_count\t0\nzk_last_client_response_size\t84\nzk_packets_sent\t14\n\
            zk_packets_received\t10\nzk_max_client_response_size\t112\nzk_connection_drop_probability\t0.0\n\
            zk_watch_count\t3\nzk_auth_failed_count\t0\nzk_min_latency\t1\nzk_max_file_descriptor_count\t20000\n\
            zk_approximate_data_size\t81\nzk_open_file_descriptor_count\t264\nzk_local_sessions\t0\n\
            zk_uptime\t19475\nzk_max_latency\t11\nzk_outstanding_tls_handshake\t0\n\
            zk_min_client_response_size\t24\nzk_non_mtls_local_conn_count\t0\n";
        assert_eq!(text, expected_start);
        let mut s = sample();
        s.mode = ServerMode::Leader;
        s.extra_monitor = vec![("followers".into(), "2".into())];
        s.open_file_descriptor_count = None;
        let text = all("mntr", &s);
        assert!(text.contains("zk_server_state\tleader\n"));
        assert!(text.ends_with("zk_followers\t2\n"));
        assert!(!text.contains("zk_open_file_descriptor_count"));
    }

    #[test]
    fn conf_matches_apache() {
        assert_eq!(
            all("conf", &sample()),
            "clientPort=21810\nsecureClientPort=-1\ndataDir=/tmp/apache-4lw/data/version-2\ndataDirSize=457\n\
             dataLogDir=/tmp/apache-4lw/data/version-2\ndataLogSize=457\ntickTime=2000\nmaxClientCnxns=60\n\
             minSessionTimeout=4000\nmaxSessionTimeout=40000\nclientPortListenBacklog=-1\nserverId=0\n"
        );
    }

    #[test]
    fn conf_from_config() {
        let (cfg, _) = crate::config::Config::parse("dataDir=/d\ndataLogDir=/l\ntickTime=1000\n").unwrap();
        let c = ConfStatus::from_config(&cfg, 2181);
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.data_log_dir, PathBuf::from("/l"));
        assert_eq!((c.min_session_timeout_ms, c.max_session_timeout_ms), (2000, 20000));
        assert_eq!(c.client_port, 2181);
    }

    #[test]
    fn conf_of_an_ensemble_member_ends_with_its_quorum_lines_and_membership() {
        let text = "dataDir=/d\ninitLimit=10\nsyncLimit=5\nserver.1=a:2888:3888\n\
                    server.2=b:2889:3889:observer\nserver.3=c:2890:3890\n";
        let (mut cfg, _) = crate::config::Config::parse(text).unwrap();
        cfg.my_id = Some(2);
        let mut c = ConfStatus::from_config(&cfg, 2181);
        c.membership = Some("server.1=a:2888:3888:participant\nversion=100000000".into());
        let out = all("conf", &ServerStatus::new(c));
        assert!(
            out.ends_with(
                "serverId=2\ninitLimit=10\nsyncLimit=5\nelectionAlg=3\nelectionPort=3889\nquorumPort=2889\n\
                 peerType=1\nmembership: \nserver.1=a:2888:3888:participant\nversion=100000000"
            ),
            "{out}"
        );
        let (standalone, _) = crate::config::Config::parse("dataDir=/d\n").unwrap();
        assert!(ConfStatus::from_config(&standalone, 2181).extra.is_empty());
    }

    #[test]
    fn watches_match_apache() {
        let s = sample();
        assert_eq!(all("wchs", &s), "1 connections watching 2 paths\nTotal watches:2\n");
        assert_eq!(all("wchc", &s), "0x10000066ec00000\n\t/app\n\t/zookeeper\n\n");
        assert_eq!(all("wchp", &s), "/app\n\t0x10000066ec00000\n/zookeeper\n\t0x10000066ec00000\n\n");
        let empty = ServerStatus::new(conf_status());
        assert_eq!(all("wchs", &empty), "0 connections watching 0 paths\nTotal watches:0\n");
        assert_eq!(all("wchc", &empty), "\n");
        assert_eq!(all("wchp", &empty), "\n");
    }

    #[test]
    fn dump_matches_apache() {
        assert_eq!(
            all("dump", &sample()),
            "SessionTracker dump:\nSession Sets (1)/(1):\n1 expire at Sun Nov 22 15:28:13 UTC 2026:\n\
             \t0x10000066ec00000\nephemeral nodes dump:\nSessions with Ephemerals (1):\n0x10000066ec00000:\n\
             \t/app/eph\n\t/app/seq0000000001\nConnections dump:\nConnections Sets (3)/(2):\n\
             0 expire at Sun Nov 22 15:27:55 UTC 2026:\n1 expire at Sun Nov 22 15:28:05 UTC 2026:\n\
             \tip: /127.0.0.1:47652 sessionId: 0x0\n1 expire at Sun Nov 22 15:28:15 UTC 2026:\n\
             \tip: /127.0.0.1:47604 sessionId: 0x10000066ec00000\n"
        );
        let empty = ServerStatus::new(conf_status());
        assert_eq!(
            all("dump", &empty),
            "SessionTracker dump:\nSession Sets (0)/(0):\nephemeral nodes dump:\nSessions with Ephemerals (0):\n\
             Connections dump:\nConnections Sets (0)/(0):\n"
        );
    }

    #[test]
    fn small_replies_match_apache() {
        let s = sample();
        assert_eq!(all("ruok", &s), "imok");
        assert_eq!(all("isro", &s), "rw");
        assert_eq!(all("dirs", &s), "datadir_size: 457\nlogdir_size: 457\n");
        assert_eq!(all("crst", &s), "Connection stats reset.\n");
        assert_eq!(all("srst", &s), "Server stats reset.\n");
        let mut ro = sample();
        ro.mode = ServerMode::ReadOnly;
        assert_eq!(all("isro", &ro), "ro");
        assert!(all("srvr", &ro).contains("\nREAD-ONLY mode; serving only read-only clients\nLatency"));
        assert!(all("srvr", &ro).contains("\nMode: read-only\n"));
    }

    #[test]
    fn envi_reports_both_versions() {
        let mut s = ServerStatus::new(conf_status());
        s.env = vec![("host.name".into(), "localhost".into()), ("os.name".into(), "Linux".into())];
        assert_eq!(
            all("envi", &s),
            format!(
                "Environment:\nzookeeper.version=3.8.4-ringkeeper-{v}, built on {b}\n\
                 ringkeeper.version={v}\nhost.name=localhost\nos.name=Linux\n",
                v = RINGKEEPER_VERSION,
                b = built_on()
            )
        );
        let host = host_environment();
        assert_eq!(host.len(), 7);
        assert_eq!(host[0].0, "host.name");
    }

    #[test]
    fn not_serving() {
        let mut s = sample();
        s.serving = false;
        for w in
            ["srvr", "stat", "mntr", "conf", "cons", "crst", "srst", "dirs", "wchs", "wchc", "wchp", "dump"]
        {
            assert_eq!(all(w, &s), format!("{NOT_SERVING}\n"), "{w}");
        }
        assert_eq!(all("ruok", &s), "imok");
        assert_eq!(all("isro", &s), "null");
        assert!(all("envi", &s).starts_with("Environment:\n"));
    }

    #[test]
    fn whitelist() {
        let s = sample();
        let default = Whitelist::default();
        assert_eq!(
            respond(b"stat", &default, &s).as_deref(),
            Some("stat is not executed because it is not in the whitelist.\n")
        );
        assert!(respond(b"srvr", &default, &s).unwrap().starts_with("Zookeeper version: "));
        let (list, unknown) = Whitelist::parse(" ruok , mntr,,gtmk, nope");
        assert_eq!(unknown, vec!["nope".to_owned()]);
        assert_eq!(respond(b"ruok", &list, &s).as_deref(), Some("imok"));
        assert_eq!(
            respond(b"isro", &list, &s).as_deref(),
            Some("isro is not executed because it is not in the whitelist.\n")
        );
        assert_eq!(Whitelist::parse("ruok, *").0, Whitelist::All);
        assert_eq!(Whitelist::parse("").0, Whitelist::default());
        for w in FOUR_LETTER_WORDS {
            assert!(respond(w.as_bytes().try_into().unwrap(), &Whitelist::All, &s).is_some(), "{w}");
        }
    }

    #[test]
    fn not_a_word() {
        let s = sample();
        assert_eq!(respond(&[0, 0, 0, 44], &Whitelist::All, &s), None);
        assert_eq!(respond(b"gtmk", &Whitelist::All, &s), None);
        assert_eq!(respond(&[0xff, 0xf4, 0xff, 0xfd], &Whitelist::All, &s), None);
    }

    #[test]
    fn java_number_and_date_formats() {
        let avg = |total, count| Latency { min_ms: 0, max_ms: 0, total_ms: total, count }.avg_java();
        assert_eq!(avg(31, 7), "4.4286");
        assert_eq!(avg(165, 2), "82.5");
        assert_eq!(avg(37, 3), "12.3333");
        assert_eq!(avg(5, 5), "1.0");
        assert_eq!(avg(1, 20000), "1.0E-4");
        assert_eq!(avg(2, 3), "0.6667");
        assert_eq!(java_double(12_345_678.5), "1.23456785E7");
        assert_eq!(java_date_utc(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date_utc(1795361261943), "Sun Nov 22 15:27:41 UTC 2026");
        assert_eq!(java_date_utc(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
        let mut l = Latency::default();
        for ms in [5, 1, 9] {
            l.record(ms);
        }
        assert_eq!((l.min(), l.max_ms, l.avg_int(), l.avg_java()), (1, 9, 5, "5.0".to_owned()));
        assert_eq!(last_op_name(3), "EXIS");
        assert_eq!(last_op_name(999), "NA");
    }
}
