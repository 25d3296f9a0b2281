//! The ringkeeper daemon: adapts the sans-IO engine to glommio executors, sockets and files.
//!
//! The roles run either as tasks of one glommio `LocalExecutor` (`ringkeeper.executors=one`,
//! the default unless roles are pinned on a larger host) or each on an executor (thread) of
//! its own, placed on the cores the config names (`ringkeeper.network.cores`,
//! `ringkeeper.data.core`; pinned only when `ringkeeper.pin=true`, so several servers can
//! share a 2-core machine). Roles talk only through bounded [`link`]s: local channels on one
//! executor, cross-core glommio `shared_channel`s between executors.
//!
//! ```text
//!  clients ─TCP─▶ [network role × N]  frames, jute connect decode, 4lw, per-connection writers
//!                      │ ToData (bounded)                          ▲ Vec<ToNet> (bounded)
//!                      ▼                                           │ replies, watch events,
//!                 [data role]  engine::request::Processor: sessions, validation, txn encode,
//!                      │       apply to the DataTree, watches, expiry and container reaper;
//!                      │       holds every output until its zxid is durable (standalone) or
//!                      │       committed (ensemble: engine::zab::Peer on this core, peers ◀─TCP─▶
//!                      │       through [`peer_net`], learner relaying in [`replica`])
//!                      │ LogRecord (txn bytes, bounded)        ▲ "durable up to zxid Z" (bounded)
//!                      ▼                                       │
//!                 [log role]   segment files, ONE durable (O_DSYNC) write per batch
//! ```
//! Start-up loads the newest snapshot and replays the log after it ([`recovery`]) before any
//! executor runs; snapshots are captured on the data core in bounded slices and written by a
//! helper thread ([`snapshotter`], [`snapshot_store`]). In an ensemble the txn bytes the
//! processor encoded once (`Output::Log`) are the bytes logged, proposed to followers and
//! applied by them; TRUNC and SNAP restart the process from disk ([`replica`], [`log_sync`]).

pub mod admin;
pub mod apache_migration;
pub mod apache_quorum;
pub mod cert_reload;
pub mod coalesce;
pub mod config;
pub mod data_files;
pub mod data_role;
pub mod four_letter;
pub mod hops;
pub mod http;
pub mod link;
pub mod listen;
pub mod log_role;
pub mod log_sync;
pub mod logging;
pub mod messages;
pub mod metrics;
pub mod network;
pub mod peer_net;
pub mod quorum_sasl;
pub mod quorum_tls;
pub mod recovery;
pub mod replica;
pub mod request_stats;
pub mod role_stats;
pub mod runtime;
#[cfg(feature = "gssapi")]
pub mod sasl_gssapi;
pub mod send_queue;
pub mod snapshot_store;
pub mod snapshotter;
pub mod status;
pub mod stop;
pub mod tls;
