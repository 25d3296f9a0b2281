//! Four-letter-word answers for the data role: fills a [`ServerStatus`] from the engine's
//! processor and hands it to [`crate::four_letter::respond`] for Apache's exact layout.
//! Runs on the data role's core (it reads the processor directly).

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ringkeeper_engine::request::{ConnId, Processor};

use crate::config::Config;
use crate::four_letter::{self, ConfStatus, ConnectionStatus, ServerMode, ServerStatus, Whitelist};

/// What the data role keeps to answer four-letter words.
pub struct StatusSource {
    whitelist: Whitelist,
    conf: ConfStatus,
    env: Vec<(String, String)>,
    data_dir: PathBuf,
    log_dir: PathBuf,
    started: Instant,
    /// Ensemble role and whether clients are served (standalone: always serving).
    role: Cell<(ServerMode, bool)>,
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn fd_counts() -> (Option<u64>, Option<u64>) {
    let open = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    let max = (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_cur);
    (open, max)
}

impl StatusSource {
    pub fn new(config: &Config) -> StatusSource {
        let env = four_letter::host_environment();
        StatusSource {
            whitelist: config.four_letter_whitelist.clone(),
            conf: ConfStatus::from_config(config, config.effective_client_port()),
            env,
            data_dir: config.data_dir.clone(),
            log_dir: config.log_dir().to_path_buf(),
            started: Instant::now(),
            role: Cell::new((ServerMode::Standalone, true)),
        }
    }

    /// The ensemble role changed (`Mode:` in srvr/stat, `zk_server_state` in mntr).
    pub fn set_role(&self, mode: ServerMode, serving: bool) {
        self.role.set((mode, serving));
    }

    /// The reply to a four-letter word, or None when it is not one.
    pub fn respond(&self, processor: &Processor, word: &[u8; 4]) -> Option<String> {
        let status = self.snapshot(processor, word);
        four_letter::respond(word, &self.whitelist, &status)
    }

    /// Everything `word` prints. The filesystem reads (directory sizes, open descriptors) are
    /// done only for the words that print them: this runs on the data role's core, and tools
    /// poll `srvr` and `ruok` often.
    fn snapshot(&self, p: &Processor, word: &[u8; 4]) -> ServerStatus {
        let mut s = ServerStatus::new(self.conf.clone());
        (s.mode, s.serving) = self.role.get();
        s.env = self.env.clone();
        s.packets_received = p.stats.packets_received;
        s.packets_sent = p.stats.packets_sent;
        s.last_zxid = p.tree.last_processed_zxid;
        s.node_count = p.tree.node_count() as u64;
        s.approximate_data_size = p.tree.approximate_data_size().max(0) as u64;
        s.uptime_ms = self.started.elapsed().as_millis() as u64;
        let mut conns: Vec<_> = p.connections().collect();
        conns.sort_by_key(|(id, _)| **id);
        s.num_alive_connections = conns.len() as u64;
        s.connections = conns
            .iter()
            .map(|(_, c)| ConnectionStatus {
                remote: c.remote.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
                interest_ops: 1,
                outstanding: 0,
                received: c.received,
                sent: c.sent,
                session_id: c.session_id,
                last_op: c.last_op.map_or("NA", |op| four_letter::last_op_name(op as i32)).to_string(),
                established_unix_ms: c.connected_at_ms,
                session_timeout_ms: p.sessions.get(c.session_id).map(|x| x.timeout_ms as u32).unwrap_or(0),
                last_cxid: c.last_cxid as i64,
                last_zxid: c.last_zxid,
                last_response_ms: 0,
                last_latency_ms: 0,
                latency: Default::default(),
            })
            .collect();
        let session_of = |w: ConnId| p.connection(w).map_or(0, |c| c.session_id);
        s.watches_by_session =
            p.watches.by_watcher().into_iter().map(|(w, paths)| (session_of(w.0), paths)).collect();
        s.watches_by_path = p
            .watches
            .by_path()
            .into_iter()
            .map(|(path, ws)| (path, ws.into_iter().map(|w| session_of(w.0)).collect()))
            .collect();
        s.watch_count = p.watches.watch_count() as u64;
        // wchs counts data watches only, as Apache.
        s.watch_total = p.watches.data_table().watch_count() as u64;
        s.watched_paths = p.watches.path_count() as u64;
        s.watching_connections = p.watches.watcher_count() as u64;
        s.ephemerals_by_session = p
            .tree
            .all_ephemerals()
            .map(|(id, paths)| (id, paths.iter().map(|x| x.to_string()).collect()))
            .collect();
        s.ephemerals_count = p.tree.ephemeral_count() as u64;
        s.global_sessions = p.sessions.len() as u64;
        if matches!(word, b"dirs" | b"conf") {
            s.data_dir_size = dir_size(&self.data_dir);
            s.log_dir_size = dir_size(&self.log_dir);
        }
        if word == b"mntr" {
            (s.open_file_descriptor_count, s.max_file_descriptor_count) = fd_counts();
        }
        s
    }
}
