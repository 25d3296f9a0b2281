//! ringkeeper's engine: everything that decides what a ZooKeeper server answers, with no I/O.
//!
//! Pure and deterministic: no glommio, no sockets, no threads, no wall clock. The server crate
//! hands in decoded bytes, the current time and ticks, and carries out what comes back.
//!
//! - [`proto`]: ZooKeeper's wire records and their jute codec (mirrors `zookeeper.jute`).
//! - [`tree`]: the data tree of znodes with exact `Stat` bookkeeping.
//! - [`txn`]: the replicated transaction record every write produces, and its one apply path.
//! - [`acl`]: ACL checks, digest/ip/world/auth schemes.
//! - [`auth`]: SASL (DIGEST-MD5, the JAAS `Server` section, `sasl` ids) and auth enforcement.
//! - [`apache`]: Apache ZooKeeper 3.8's snapshot and log files (import and export).
//! - [`conn`]: connection ids (a client on a network core, or a learner's client on its leader).
//! - [`session`]: the session table and its tick-driven expiry.
//! - [`watch`]: one-shot, persistent and persistent-recursive watch tables.
//! - [`log`]: the transaction log's on-disk record format and segment scanner (no I/O).
//! - [`snapshot`]: the snapshot file format, fuzzy capture from a live tree, and restore.
//! - [`request`]: turns a client request into a txn (validation) and a txn result into a reply.
//! - [`replica`]: one server as a single state machine ([`replica::Node`]): the processor, the
//!   ZAB peer, the hold gate and the learner relay, stepped by inputs into effects.
//! - [`zab`]: leader election and ZAB replication as state machines (step(event) -> actions).

pub mod acl;
pub mod apache;
pub mod auth;
pub mod conn;
pub mod log;
pub mod proto;
pub mod replica;
pub mod request;
pub mod session;
pub mod snapshot;
pub mod tree;
pub mod txn;
pub mod watch;
pub mod zab;

/// The hash map of the per-request path (connections, sessions, znodes, watches): std's map
/// with ahash's hasher, keyed at random per process as std's SipHash is (paths come from
/// clients), and several times cheaper for short keys. Iteration order is as arbitrary as
/// std's: nothing that reaches an effect iterates it.
pub type FastMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
