//! `zoo.cfg`: the daemon's configuration, read once at start-up on the main thread.
//!
//! In: the text of an Apache ZooKeeper `zoo.cfg` (a Java properties file), plus
//! ringkeeper's own keys under `ringkeeper.`. Out: a validated [`Config`] and a list of
//! human-readable warnings for the caller to log. Nothing here touches a socket or a core;
//! only [`Config::load`] reads files (the config itself and `<dataDir>/myid`).
//!
//! Invariant: a `Config` that comes out of [`Config::parse`] is internally consistent
//! (ports in range, `minSessionTimeout <= maxSessionTimeout`, unique server ids and
//! addresses, ...). Every rejected value produces a [`ConfigError`] whose text names the
//! key, the value and what would have been accepted.
//!
//! Compatibility with Apache ZooKeeper 3.8 (`QuorumPeerConfig`):
//! - Properties syntax as `java.util.Properties`: `key=value`, `key: value`, `key value`,
//!   `#`/`!` comments, backslash escapes and line continuation. Keys and values are trimmed.
//! - A key given twice: the last value wins (as in Apache); ringkeeper warns about it.
//! - Apache hands every key it does not parse itself to a JVM system property named
//!   `zookeeper.<key>` (that is how `snapCount`, `forceSync`, `4lw.commands.whitelist`,
//!   `DigestAuthenticationProvider.superDigest`, ... work). For those keys ringkeeper accepts
//!   both the short form and the `zookeeper.`-prefixed form.
//! - Keys Apache knows but ringkeeper does not implement (yet) are accepted without a warning
//!   and listed in [`Config::ignored_keys`], so the daemon can log them once at info level.
//!   Keys whose silent omission would change behaviour the user relies on (TLS ports,
//!   hierarchical quorums, SASL) produce a warning.
//! - `dynamicConfigFile` (Apache 3.5+): its `server.N` lines are read as if they were in
//!   zoo.cfg ([`Config::load`]); the config version is its `version=` line, else the hex
//!   suffix of its name (`zoo.cfg.dynamic.100000000`), else 0.
//! - Unknown keys produce a warning that names the key.
//!
//! Layout: this file holds [`Config`], its defaults and the one table of keys
//! ([`Config::parse`]: each key is read in exactly one place); the properties lexer
//! (`properties`), the value parsers (`values`), the `server.N` grammar (`servers`) and the
//! keys outside the table (Apache's `zookeeper.` spellings, accepted-but-ignored and unknown
//! keys: `apache_keys`) are submodules.
//!
//! Deliberate differences: `clientPort=0` means "listen on any free port" (Apache: "no client
//! port"); `tickTime` defaults to 3000 as in Apache when a file is given, while the embedded
//! default (no file) uses 2000; server ids must be in 1..=255 (1..=254 with
//! `extendedTypesEnabled`), which Apache documents but does not check.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::four_letter::Whitelist;

mod apache_keys;
mod properties;
mod servers;
#[cfg(test)]
mod tests;
mod values;

use apache_keys::*;
pub use properties::static_config_text;
use properties::*;
use servers::*;
use values::*;

/// Apache's default `tickTime` when a file does not set it (`ZooKeeperServer.DEFAULT_TICK_TIME`).
pub const APACHE_DEFAULT_TICK_TIME_MS: u32 = 3000;
/// Default `jute.maxbuffer`: the largest packet (request or znode data) accepted, in bytes.
pub const DEFAULT_JUTE_MAX_BUFFER: u32 = 0xfffff;
/// Apache's floor for `autopurge.snapRetainCount`.
pub const MIN_SNAP_RETAIN_COUNT: u32 = 3;
/// The one `skipACL` value that turns ACL checks off (`ZooKeeperServer.skipACL`: "yes").
const SKIP_ACL_ON: &str = "yes";

/// A server's role in the ensemble (`server.N=...:participant|observer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// Votes in elections and counts towards the write quorum.
    Participant,
    /// Receives the committed stream but never votes.
    Observer,
}

impl fmt::Display for PeerRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerRole::Participant => "participant",
            PeerRole::Observer => "observer",
        })
    }
}

/// How the roles of a server are laid out on glommio executors (`ringkeeper.executors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executors {
    /// Decided at start-up from the host and the other keys ([`Executors::resolve`]).
    Auto,
    /// Every role a task on one executor (one thread): role links are local channels, no
    /// cross-thread wake-up per message. Cheapest per request; one core's worth of work.
    One,
    /// Network, data and log roles each on an executor (thread) of its own, linked by shared
    /// channels: more cores for one server at the price of a thread hop per stage.
    PerRole,
}

/// The protocol spoken on the election and peer ports of `server.N` (`ringkeeper.quorum.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuorumProtocol {
    /// ringkeeper's own ZAB and election ([`crate::peer_net`]): between ringkeeper members.
    Ringkeeper,
    /// Apache ZooKeeper 3.8's FastLeaderElection and Leader/Learner protocol, to join a running
    /// Apache ensemble ([`crate::apache_quorum`]).
    Apache,
}

/// How the log role makes a group commit durable (`ringkeeper.log.writeMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogWriteMode {
    /// Segments opened `O_DSYNC` through the page cache: each batch is one write that returns
    /// once the data is on stable storage, so a group commit is one I/O and one wake-up.
    Dsync,
    /// Writes through the page cache, then one `fdatasync` per batch (Apache's way).
    Fdatasync,
    /// `O_DIRECT` writes, then one `fdatasync` per batch. glommio submits O_DIRECT I/O on its
    /// polled ring when the kernel accepts it, and an executor with polled I/O in flight spins
    /// instead of sleeping: worth it only on a core of its own with a polled NVMe queue.
    Direct,
}

impl Executors {
    /// The layout to run with on a host of `cpus` CPUs: `auto` means per-role only when the
    /// roles are pinned to cores of their own (`ringkeeper.pin=true`) on a host with more than
    /// two CPUs; otherwise (floating roles, or a small host where several servers or the
    /// clients share the cores) one executor.
    pub fn resolve(self, pin: bool, cpus: usize) -> Executors {
        match self {
            Executors::Auto if pin && cpus > 2 => Executors::PerRole,
            Executors::Auto => Executors::One,
            chosen => chosen,
        }
    }
}

impl fmt::Display for Executors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Executors::Auto => "auto",
            Executors::One => "one",
            Executors::PerRole => "per-role",
        })
    }
}

/// One `server.N=host:peerPort:electionPort[:role][;[clientAddr:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    /// `N`: the server id (`myid`), 1..=255.
    pub id: u64,
    /// Host name or IP literal (IPv6 without the brackets) for peer and election traffic.
    pub host: String,
    /// Port followers use to connect to the leader (quorum port, e.g. 2888).
    pub peer_port: u16,
    /// Port used by leader election (e.g. 3888).
    pub election_port: u16,
    /// Participant (default) or observer.
    pub role: PeerRole,
    /// Client listen address from the `;clientAddr:clientPort` part, if given.
    pub client_address: Option<String>,
    /// Client port from the `;...clientPort` part, if given.
    pub client_port: Option<u16>,
}

/// The validated configuration. Units are in the field names.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `tickTime`: the basic time unit (heartbeats, session timeouts), ms.
    pub tick_time_ms: u32,
    /// `clientPort`. `None` when the file does not set it (use the own `server.N` client port,
    /// else 2181, see [`Config::effective_client_port`]). `Some(0)`: ringkeeper extension,
    /// bind any free port (the daemon reports the one it got).
    pub client_port: Option<u16>,
    /// `clientPortAddress`: host or IP to bind the client port to; `None` = all interfaces.
    pub client_port_address: Option<String>,
    /// `dataDir`: snapshots (and the log when `dataLogDir` is unset). Kept as written.
    pub data_dir: PathBuf,
    /// `dataLogDir`: transaction log directory, if separate.
    pub data_log_dir: Option<PathBuf>,
    /// `maxClientCnxns`: connections per client IP, 0 = unlimited.
    pub max_client_cnxns: u32,
    /// `nio.sessionlessCnxnTimeout` (Apache's system property
    /// `zookeeper.nio.sessionlessCnxnTimeout`): a connection that has not sent its connect
    /// request (or a four-letter word) within this many ms is closed. Default 10000.
    pub sessionless_cnxn_timeout_ms: u32,
    /// `minSessionTimeout` (default 2 * tickTime), ms.
    pub min_session_timeout_ms: u32,
    /// `maxSessionTimeout` (default 20 * tickTime), ms.
    pub max_session_timeout_ms: u32,
    /// `4lw.commands.whitelist`: which four-letter words answer (`srvr` always does).
    pub four_letter_whitelist: Whitelist,
    /// `extendedTypesEnabled`: TTL nodes etc. (limits server ids to 1..=254).
    pub extended_types_enabled: bool,
    /// `zookeeper.enforceQuota` (default false): a create or setData over a hard quota limit
    /// fails with QuotaExceeded; exceeded limits are logged either way.
    pub enforce_quota: bool,
    /// `readonlymode.enabled` (default false): an ensemble member cut off from its quorum
    /// keeps serving clients that asked for read-only. Apache reads it only as the JVM system
    /// property; ringkeeper takes it from zoo.cfg and from `-Dreadonlymode.enabled=...` in
    /// the `SERVER_JVMFLAGS` environment variable (which wins, see [`Config::load`]).
    pub read_only_mode_enabled: bool,
    /// `quorumListenOnAllIPs`: listen for peers on every address (the wildcard) instead of
    /// this server's own `server.N` address, which then need not resolve.
    pub quorum_listen_on_all_ips: bool,
    /// `jute.maxbuffer`: largest accepted packet, bytes.
    pub jute_max_buffer: u32,
    /// `server.N` lines, sorted by id.
    pub servers: Vec<ServerEntry>,
    /// `standaloneEnabled` (default true): one participant means standalone mode.
    pub standalone_enabled: bool,
    /// `DigestAuthenticationProvider.superDigest`: `super:<base64 sha1>`.
    pub super_digest: Option<String>,
    /// `reconfigEnabled` (default false): the `reconfig` request changes the membership
    /// (else it is answered ReconfigDisabled).
    pub reconfig_enabled: bool,
    /// `skipACL` / `zookeeper.skipACL` (zoo.cfg or `-Dzookeeper.skipACL=` in
    /// SERVER_JVMFLAGS; default no): `yes` turns every ACL check off, as Apache (any other
    /// value leaves them on).
    pub skip_acl: bool,
    /// `dynamicConfigFile`: where the `server.N` lines came from (read by [`Config::load`]);
    /// new configurations are written beside it as `<name>.<hex version>`.
    pub dynamic_config_file: Option<PathBuf>,
    /// The version of the configuration the `server.N` lines are (see `dynamicConfigFile`).
    pub config_version: i64,
    /// The file this config was loaded from ([`Config::load`]); `None` when parsed from text.
    pub config_file: Option<PathBuf>,
    /// `initLimit`, ticks (0 = not set; required in an ensemble).
    pub init_limit: u32,
    /// `syncLimit`, ticks (0 = not set; required in an ensemble).
    pub sync_limit: u32,
    /// `snapCount`: transactions between snapshots.
    pub snap_count: u64,
    /// Container/TTL reaper period (`znode.container.checkIntervalMs`, default 60000).
    pub container_check_interval_ms: u64,
    /// `autopurge.snapRetainCount` (at least 3).
    pub autopurge_snap_retain_count: u32,
    /// `autopurge.purgeInterval`, hours (0 = never purge).
    pub autopurge_purge_interval_hours: u32,
    /// `forceSync` (`yes`/`no`, default yes): fdatasync before acknowledging.
    pub force_sync: bool,
    /// `globalOutstandingLimit`: requests in flight before throttling clients.
    pub global_outstanding_limit: u32,
    /// `ringkeeper.network.cores`: cores running client network executors (`0,1`, `0-3`).
    /// Empty when not configured: the daemon chooses (the tuning tool writes this key).
    pub network_cores: Vec<usize>,
    /// `ringkeeper.data.core`: core of the ZAB / data-tree executor.
    pub data_core: Option<usize>,
    /// `ringkeeper.log.core`: core of the log (fsync) executor.
    pub log_core: Option<usize>,
    /// `ringkeeper.pin` (default false): pin executors to their cores; false lets them float.
    pub pin: bool,
    /// `ringkeeper.executors` (`auto`, `one`, `per-role`; default auto): roles on one
    /// executor or one executor each.
    pub executors: Executors,
    /// `ringkeeper.quorum.protocol` (`ringkeeper`, `apache`; default ringkeeper): the
    /// server-to-server protocol on the `server.N` ports.
    pub quorum_protocol: QuorumProtocol,
    /// `ringkeeper.log.writeMode` (`dsync`, `fdatasync`, `direct`; default dsync): how a
    /// group commit is made durable.
    pub log_write_mode: LogWriteMode,
    /// `ringkeeper.log.batchBytesMax`: flush a group commit at this many bytes.
    pub log_batch_bytes_max: u64,
    /// `ringkeeper.log.batchCountMax`: flush a group commit at this many records.
    pub log_batch_count_max: u32,
    /// `ringkeeper.log.batchDelayMicros`: longest wait for more records before a flush, µs.
    pub log_batch_delay_micros: u64,
    /// `ringkeeper.log.inlineMaxRecords`: a group commit of at most this many records is
    /// written (and synced) with a plain blocking syscall on the log role's thread instead of
    /// through io_uring, which would run it on a kernel worker thread and wake the executor
    /// after; 0 never does. Page-cache modes (`dsync`, `fdatasync`) only. Unset: see
    /// [`Config::log_inline_max_records_for`].
    pub log_inline_max_records: Option<u32>,
    /// `ringkeeper.coalesceMicros`: on an ensemble member whose roles share one executor, how
    /// long the executor's thread sleeps before each reactor turn while two or more writes
    /// are in flight, so that the messages arriving meanwhile share one wake-up
    /// ([`crate::coalesce`]); 0 never does.
    pub coalesce_micros: u64,
    /// `ringkeeper.log.segmentBytes`: preallocated size of a log segment (a multiple of 4 KiB,
    /// at least [`LOG_SEGMENT_BYTES_MIN`]).
    pub log_segment_bytes: u64,
    /// `ringkeeper.client.outboxBytesMax`: reply bytes waiting for one client before the
    /// server stops reading that client's requests.
    pub client_outbox_bytes_max: u64,
    /// `ringkeeper.queue.depth`: capacity of each bounded cross-core queue.
    pub queue_depth: usize,
    /// `ringkeeper.zab.heartbeatMs`: leader ping period; unset, derived from the peer timeout
    /// ([`default_heartbeat_ms`]).
    pub zab_heartbeat_ms: u32,
    /// `ringkeeper.zab.peerTimeoutMs`: a peer link silent this long is lost (failure
    /// detection of a leader whose host vanished without a TCP reset). Unset in an ensemble:
    /// `tickTime * syncLimit`, as Apache drops a follower (and a follower its leader) that has
    /// not answered within syncLimit ticks; [`FAST_FAILOVER_PEER_TIMEOUT_MS`] is the
    /// recommendation `ringkeeper-tune` writes.
    pub zab_peer_timeout_ms: u32,
    /// `ringkeeper.zab.finalizeWaitMs`: election wait for missing votes once a quorum agrees.
    pub zab_finalize_wait_ms: u32,
    /// `ringkeeper.zab.electionRetryMs`: resend period of election notifications.
    pub zab_election_retry_ms: u32,
    /// `ringkeeper.zab.historyMax`: txns a leader keeps in memory to bring a learner up to date
    /// with DIFF; a learner further behind gets a snapshot (SNAP).
    pub zab_history_max: usize,
    /// `ringkeeper.zab.historyBytesMax`: bytes of txns kept for DIFF (the oldest go first), so
    /// large znode values do not make `historyMax` txns gigabytes.
    pub zab_history_bytes_max: usize,
    /// `metricsProvider.className=`[`PROMETHEUS_METRICS_PROVIDER`]: serve `/metrics` on
    /// `metricsProvider.httpHost` (default 0.0.0.0) : `metricsProvider.httpPort` (default 7000).
    pub metrics_endpoint: Option<HttpEndpoint>,
    /// The AdminServer: on unless `admin.enableServer=false` (as in Apache), at
    /// `admin.serverAddress` (default 0.0.0.0) : `admin.serverPort` (default 8080). Off in the
    /// embedded default (no zoo.cfg).
    pub admin_endpoint: Option<HttpEndpoint>,
    /// `secureClientPort`: TLS client port (served next to `clientPort`), see [`Config::ssl`].
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress`: address of the TLS client port; `None` = that of the client port.
    pub secure_client_port_address: Option<String>,
    /// `client.portUnification`: the plain client port also takes TLS connections (told apart
    /// by their first byte, a TLS handshake record).
    pub client_port_unification: bool,
    /// The `ssl.*` keys of the client ports.
    pub ssl: SslConfig,
    /// `client.certReload`: the client ports' key and trust stores are reloaded when their
    /// files change.
    pub client_cert_reload: bool,
    /// `sslQuorumReloadCertFiles`: the same for the peer links' `ssl.quorum.*` stores.
    pub ssl_quorum_reload_cert_files: bool,
    /// `sslQuorum`: mutual TLS on the peer links, configured by [`Config::quorum_ssl`].
    pub ssl_quorum: bool,
    /// The `ssl.quorum.*` keys (Apache's `QuorumX509Util` properties): the same fields as
    /// [`Config::ssl`] under the `ssl.quorum.` prefix.
    pub quorum_ssl: SslConfig,
    /// `authProvider.N`: class names of the authentication providers turned on (Apache's
    /// `ProviderRegistry`); `ip` and `digest` are always on.
    pub auth_providers: Vec<String>,
    /// `X509AuthenticationProvider.superUser`: a client certificate subject that is super user.
    pub x509_super_user: Option<String>,
    /// `enforce.auth.enabled`: sessions must authenticate with one of `enforce.auth.schemes`
    /// before any request other than `auth`/`sasl` (see [`Config::enforcement`]).
    pub enforce_auth_enabled: bool,
    /// `enforce.auth.schemes`, comma separated.
    pub enforce_auth_schemes: Vec<String>,
    /// `sessionRequireClientSASLAuth`: shorthand for enforcing the `sasl` scheme (wins over
    /// `enforce.auth.*`, as in Apache).
    pub session_require_client_sasl_auth: bool,
    /// `allowSaslFailedClients`: a failed SASL exchange keeps the connection (no `sasl` id).
    pub allow_sasl_failed_clients: bool,
    /// `java.security.auth.login.config`: the JAAS file whose `Server` section holds the SASL
    /// credentials (Apache reads the JVM property, set by `-D` in `SERVER_JVMFLAGS`).
    pub jaas_config: Option<PathBuf>,
    /// `java.security.krb5.conf`: the Kerberos realm configuration (Apache reads the JVM
    /// property; ringkeeper's Kerberos library reads it as `$KRB5_CONFIG`, see
    /// [`Config::krb5_config_path`]).
    pub krb5_config: Option<PathBuf>,
    /// DIGEST-MD5 users of the JAAS `Server` section, read by [`Config::load`] (never by
    /// `parse`): `None` when SASL is off or no section was found.
    pub sasl_digest_users: Option<BTreeMap<String, String>>,
    /// The Kerberos login of the JAAS `Server` section (its `Krb5LoginModule`), read by
    /// [`Config::load`]: SASL clients then authenticate with GSSAPI, as Apache's do.
    pub sasl_kerberos: Option<ringkeeper_engine::auth::KerberosLogin>,
    /// `kerberos.removeHostFromPrincipal`.
    pub kerberos_remove_host_from_principal: bool,
    /// `kerberos.removeRealmFromPrincipal`.
    pub kerberos_remove_realm_from_principal: bool,
    /// `superUser`: the SASL id that is also super user.
    pub sasl_super_user: Option<String>,
    /// `quorum.auth.enableSasl`: members authenticate to each other with DIGEST-MD5.
    pub quorum_sasl_enabled: bool,
    /// `quorum.auth.learnerRequireSasl`: a member refuses to link to one that does not
    /// authenticate itself.
    pub quorum_learner_require_sasl: bool,
    /// `quorum.auth.serverRequireSasl`: a member refuses links from members that do not
    /// authenticate.
    pub quorum_server_require_sasl: bool,
    /// `quorum.auth.server.saslLoginContext`: the JAAS section of the users admitted.
    pub quorum_server_login_context: String,
    /// `quorum.auth.learner.saslLoginContext`: the JAAS section of this member's credentials.
    pub quorum_learner_login_context: String,
    /// The credentials of quorum SASL, read from the JAAS file by [`Config::load`] (never by
    /// `parse`) when `quorum.auth.enableSasl` is on.
    pub quorum_sasl: Option<QuorumSasl>,
    /// `ringkeeper.session.secretFile`: a file with the same bytes on every ensemble member,
    /// mixed into the session-password secret (see `engine::session::ensemble_secret`).
    pub session_secret_file: Option<PathBuf>,
    /// Contents of `<dataDir>/myid`, read by [`Config::load`] (never by `parse`).
    pub my_id: Option<u64>,
    /// Every `key=value` of the file in file order, duplicates included (for `conf`).
    pub raw: Vec<(String, String)>,
    /// Apache keys accepted but not used by ringkeeper; worth one info line at start-up.
    pub ignored_keys: Vec<String>,
}

/// Quorum SASL (`quorum.auth.*`) with its credentials from the JAAS file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumSasl {
    /// `quorum.auth.learnerRequireSasl`.
    pub learner_require: bool,
    /// `quorum.auth.serverRequireSasl`.
    pub server_require: bool,
    /// The DIGEST-MD5 users other members may authenticate as (`user_NAME="password"` of the
    /// `QuorumServer` section).
    pub server_users: BTreeMap<String, String>,
    /// The user name and password this member authenticates with (`username`/`password` of
    /// the `QuorumLearner` section).
    pub learner_user: String,
    pub learner_password: String,
}

/// A key or trust store: `ssl.keyStore.*` or `ssl.trustStore.*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreConfig {
    /// `.location`: the file.
    pub location: Option<PathBuf>,
    /// `.password`.
    pub password: Option<String>,
    /// `.passwordPath`: a file holding the password (used when `.password` is not set).
    pub password_path: Option<PathBuf>,
    /// `.type` as written (`PEM`, `PKCS12`, `JKS`, `BCFKS`); `None`: from the file name.
    pub store_type: Option<String>,
}

/// `ssl.clientAuth`: whether TLS clients must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// `need` (Apache's default): a client without a trusted certificate is refused.
    #[default]
    Need,
    /// `want`: a certificate is asked for; a client without one is served (no x509 id).
    Want,
    /// `none`: no certificate is asked for.
    None,
}

/// The `ssl.*` keys for client TLS (Apache's `ClientX509Util` properties).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SslConfig {
    pub key_store: StoreConfig,
    pub trust_store: StoreConfig,
    pub client_auth: ClientAuth,
    /// `ssl.protocol` (Apache: `TLSv1.2`, `TLSv1.3`, `TLS`).
    pub protocol: Option<String>,
    /// `ssl.enabledProtocols`, comma separated; `None`: from `ssl.protocol`.
    pub enabled_protocols: Option<Vec<String>>,
    /// `ssl.ciphersuites`, comma separated, Java (IANA) names; `None`: rustls' defaults.
    pub cipher_suites: Option<Vec<String>>,
    /// `ssl.handshakeDetectionTimeoutMillis`: how long a TLS handshake (and the first byte on
    /// a unified port) may take, ms.
    pub handshake_timeout_ms: u64,
    /// `ssl.quorum.hostnameVerification` (default true): a peer's certificate must name the
    /// host its `server.N` line gives. Only the peer links use it.
    pub hostname_verification: bool,
    /// `ssl.crl` / `ssl.quorum.crl`: certificates are checked against the CRLs of the (PEM)
    /// trust store.
    pub crl: bool,
}

impl SslConfig {
    /// Apache's defaults.
    fn defaults() -> SslConfig {
        SslConfig {
            handshake_timeout_ms: DEFAULT_SSL_HANDSHAKE_TIMEOUT_MS,
            hostname_verification: true,
            ..SslConfig::default()
        }
    }
}

/// The client (`false`) or quorum (`true`) TLS settings a key sets, and the field it names:
/// `ssl.keyStore.location` is `(false, "keyStore.location")`, `ssl.quorum.protocol` is
/// `(true, "protocol")`.
fn ssl_key_field(short: &str) -> Option<(bool, &str)> {
    let field = short.strip_prefix("ssl.")?;
    Some(match field.strip_prefix("quorum.") {
        Some(quorum_field) => (true, quorum_field),
        None => (false, field),
    })
}

/// Sets one field of `ssl.*` or (`quorum`) `ssl.quorum.*` (`key` as written, for messages);
/// false for a field ringkeeper does not act on (accepted and listed as ignored). Peer links
/// always ask for a certificate (`clientAuth` is the client ports' only), and only they verify
/// host names.
fn apply_ssl_field(
    ssl: &mut SslConfig,
    quorum: bool,
    key: &str,
    field: &str,
    value: &str,
    warnings: &mut Vec<String>,
) -> Result<bool, ConfigError> {
    match field {
        "keyStore.location" => ssl.key_store.location = Some(PathBuf::from(value)),
        "keyStore.password" => ssl.key_store.password = Some(value.to_owned()),
        "keyStore.passwordPath" => ssl.key_store.password_path = Some(PathBuf::from(value)),
        "keyStore.type" => ssl.key_store.store_type = Some(value.to_owned()),
        "trustStore.location" => ssl.trust_store.location = Some(PathBuf::from(value)),
        "trustStore.password" => ssl.trust_store.password = Some(value.to_owned()),
        "trustStore.passwordPath" => ssl.trust_store.password_path = Some(PathBuf::from(value)),
        "trustStore.type" => ssl.trust_store.store_type = Some(value.to_owned()),
        "clientAuth" if !quorum => ssl.client_auth = parse_client_auth(key, value)?,
        "protocol" => ssl.protocol = Some(value.to_owned()),
        "enabledProtocols" => ssl.enabled_protocols = Some(parse_list(value)),
        "ciphersuites" => ssl.cipher_suites = Some(parse_list(value)),
        "handshakeDetectionTimeoutMillis" => {
            ssl.handshake_timeout_ms =
                parse_int(key, value, 1, i32::MAX as i64, "a positive integer (milliseconds)")? as u64;
        }
        "hostnameVerification" if quorum => ssl.hostname_verification = parse_bool(key, value)?,
        "crl" => ssl.crl = parse_bool(key, value)?,
        "ocsp" => {
            if parse_bool(key, value)? {
                warnings.push(format!(
                    "{key}=true: OCSP is not supported (no responder is asked); certificates are checked for revocation only \
                     with {}crl=true and the CRLs in the PEM trust store",
                    key.trim_end_matches("ocsp")
                ));
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Apache's default `ssl.handshakeDetectionTimeoutMillis`.
pub const DEFAULT_SSL_HANDSHAKE_TIMEOUT_MS: u64 = 5000;

/// The `authProvider.N` class that turns the `x509` scheme on.
pub const X509_AUTH_PROVIDER: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";
/// The `authProvider.N` class that turns SASL (and the `sasl` scheme) on.
pub const SASL_AUTH_PROVIDER: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";
/// The JVM property (and zoo.cfg key) naming the JAAS file.
pub const JAAS_CONFIG_KEY: &str = "java.security.auth.login.config";
/// The JVM property (and zoo.cfg key) naming the Kerberos realm configuration.
pub const KRB5_CONFIG_KEY: &str = "java.security.krb5.conf";
/// The environment variable MIT Kerberos reads its configuration's path from.
pub const KRB5_CONFIG_ENV: &str = "KRB5_CONFIG";

/// Where an HTTP endpoint listens (`host` as written: a name or an IP literal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpEndpoint {
    pub host: String,
    pub port: u16,
}

/// The `metricsProvider.className` that turns the Prometheus endpoint on, as in Apache.
pub const PROMETHEUS_METRICS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";
/// Apache's default `metricsProvider.httpPort`.
pub const DEFAULT_METRICS_PORT: u16 = 7000;

/// Apache's default `admin.serverPort`.
pub const DEFAULT_ADMIN_PORT: u16 = 8080;

/// Default `ringkeeper.log.batchBytesMax`.
pub const DEFAULT_LOG_BATCH_BYTES_MAX: u64 = 1 << 20;
/// Default `ringkeeper.log.batchCountMax`.
pub const DEFAULT_LOG_BATCH_COUNT_MAX: u32 = 1024;
/// Default `ringkeeper.log.batchDelayMicros`: do not wait; batch whatever is queued.
pub const DEFAULT_LOG_BATCH_DELAY_MICROS: u64 = 0;
/// `ringkeeper.coalesceMicros` when unset: no naps.
pub const DEFAULT_COALESCE_MICROS: u64 = 0;
/// Longest `ringkeeper.coalesceMicros` (a nap holds every timer of the member, heartbeats included).
pub const COALESCE_MICROS_MAX: u64 = 10_000;
/// `ringkeeper.log.inlineMaxRecords` when unset and nothing else shares the log role's
/// thread with heartbeats: a lone writer's commit is written inline (README, Storage).
pub const DEFAULT_LOG_INLINE_MAX_RECORDS: u32 = 1;
/// Default `ringkeeper.log.segmentBytes`: 64 MiB, as Apache's `zookeeper.preAllocSize`.
pub const DEFAULT_LOG_SEGMENT_BYTES: u64 = 64 << 20;
/// Smallest `ringkeeper.log.segmentBytes`: room for the header and a few records.
pub const LOG_SEGMENT_BYTES_MIN: u64 = 64 << 10;
/// Default `ringkeeper.client.outboxBytesMax`: 4 MiB, four default-size (`jute.maxbuffer`) replies.
pub const DEFAULT_CLIENT_OUTBOX_BYTES_MAX: u64 = 4 << 20;
/// `ringkeeper.zab.peerTimeoutMs` when neither it nor `syncLimit` is set (a standalone
/// server, which has no peers), and the fast-failover value `ringkeeper-tune` recommends: a
/// leader whose host vanishes is replaced within about a second.
pub const FAST_FAILOVER_PEER_TIMEOUT_MS: u32 = 800;
/// `ringkeeper.zab.heartbeatMs` when unset: the peer timeout over this many (so a link is
/// judged silent only after that many pings went unanswered), at least 10 ms and at most
/// tickTime / 2 (Apache's leader pings every half tick). An idle ensemble wakes once per ping.
pub const HEARTBEATS_PER_PEER_TIMEOUT: u32 = 8;
/// The shortest default `ringkeeper.zab.heartbeatMs`.
const HEARTBEAT_MS_MIN: u32 = 10;

/// The default `ringkeeper.zab.heartbeatMs` for a peer timeout and tick.
pub fn default_heartbeat_ms(peer_timeout_ms: u32, tick_time_ms: u32) -> u32 {
    let ceiling = (tick_time_ms / 2).max(HEARTBEAT_MS_MIN);
    (peer_timeout_ms / HEARTBEATS_PER_PEER_TIMEOUT).clamp(HEARTBEAT_MS_MIN, ceiling)
}

/// Default `ringkeeper.queue.depth`.
pub const DEFAULT_QUEUE_DEPTH: usize = 1024;

/// Why a configuration was rejected. Each message names the key and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file (or `myid`) could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A value that does not parse or is out of range.
    #[error("{key}: \"{value}\" {reason}")]
    BadValue {
        /// The key as written in the file.
        key: String,
        /// The offending value.
        value: String,
        /// What is wrong and what is allowed, e.g. `is not a port (expected ...)`.
        reason: String,
    },
    /// A required key is missing (Apache's wording: `dataDir is not set`).
    #[error("{key} is not set{hint}")]
    Missing {
        /// The key that must be set.
        key: String,
        /// Extra context, starting with a separator (may be empty).
        hint: String,
    },
    /// Values that are fine alone but not together.
    #[error("{0}")]
    Inconsistent(String),
    /// An Apache feature ringkeeper refuses rather than silently ignores.
    #[error("{key}: not supported by ringkeeper: {reason}")]
    Unsupported {
        /// The key.
        key: String,
        /// Why and what to do instead.
        reason: String,
    },
}

fn bad(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    let mut reason = reason.into();
    if value.contains('#') {
        // Java properties have no inline comments: Apache reads `50 # x` as the value too.
        reason.push_str(
            "; a # after a value is part of the value in zoo.cfg, put comments on a line of their own",
        );
    }
    ConfigError::BadValue { key: key.to_owned(), value: value.to_owned(), reason }
}

impl Config {
    /// Embedded default when no file is given: single node, 127.0.0.1:2181, data under
    /// `./ringkeeper-data`, tickTime 2000.
    pub fn embedded_default() -> Config {
        Config::defaults(2000, PathBuf::from("./ringkeeper-data"), Some(2181), Some("127.0.0.1".into()))
    }

    fn defaults(
        tick_time_ms: u32,
        data_dir: PathBuf,
        client_port: Option<u16>,
        addr: Option<String>,
    ) -> Config {
        Config {
            tick_time_ms,
            client_port,
            client_port_address: addr,
            data_dir,
            data_log_dir: None,
            max_client_cnxns: 60,
            sessionless_cnxn_timeout_ms: 10_000,
            min_session_timeout_ms: tick_time_ms * 2,
            max_session_timeout_ms: tick_time_ms * 20,
            four_letter_whitelist: Whitelist::default(),
            extended_types_enabled: false,
            enforce_quota: false,
            read_only_mode_enabled: false,
            quorum_listen_on_all_ips: false,
            jute_max_buffer: DEFAULT_JUTE_MAX_BUFFER,
            servers: Vec::new(),
            standalone_enabled: true,
            super_digest: None,
            reconfig_enabled: false,
            skip_acl: false,
            dynamic_config_file: None,
            config_version: 0,
            config_file: None,
            init_limit: 0,
            sync_limit: 0,
            snap_count: 100_000,
            container_check_interval_ms: 60_000,
            autopurge_snap_retain_count: MIN_SNAP_RETAIN_COUNT,
            autopurge_purge_interval_hours: 0,
            force_sync: true,
            global_outstanding_limit: 1000,
            network_cores: Vec::new(),
            data_core: None,
            log_core: None,
            pin: false,
            executors: Executors::Auto,
            quorum_protocol: QuorumProtocol::Ringkeeper,
            log_write_mode: LogWriteMode::Dsync,
            log_batch_bytes_max: DEFAULT_LOG_BATCH_BYTES_MAX,
            log_batch_count_max: DEFAULT_LOG_BATCH_COUNT_MAX,
            log_batch_delay_micros: DEFAULT_LOG_BATCH_DELAY_MICROS,
            log_inline_max_records: None,
            coalesce_micros: DEFAULT_COALESCE_MICROS,
            log_segment_bytes: DEFAULT_LOG_SEGMENT_BYTES,
            queue_depth: DEFAULT_QUEUE_DEPTH,
            client_outbox_bytes_max: DEFAULT_CLIENT_OUTBOX_BYTES_MAX,
            zab_heartbeat_ms: default_heartbeat_ms(FAST_FAILOVER_PEER_TIMEOUT_MS, tick_time_ms),
            zab_peer_timeout_ms: FAST_FAILOVER_PEER_TIMEOUT_MS,
            zab_finalize_wait_ms: 30,
            zab_election_retry_ms: 100,
            zab_history_max: 100_000,
            zab_history_bytes_max: ringkeeper_engine::zab::DEFAULT_HISTORY_BYTES_MAX,
            metrics_endpoint: None,
            admin_endpoint: None,
            secure_client_port: None,
            secure_client_port_address: None,
            client_port_unification: false,
            ssl: SslConfig::defaults(),
            ssl_quorum: false,
            client_cert_reload: false,
            ssl_quorum_reload_cert_files: false,
            quorum_ssl: SslConfig::defaults(),
            auth_providers: Vec::new(),
            x509_super_user: None,
            enforce_auth_enabled: false,
            enforce_auth_schemes: Vec::new(),
            session_require_client_sasl_auth: false,
            allow_sasl_failed_clients: false,
            jaas_config: None,
            krb5_config: None,
            sasl_digest_users: None,
            sasl_kerberos: None,
            kerberos_remove_host_from_principal: false,
            kerberos_remove_realm_from_principal: false,
            sasl_super_user: None,
            quorum_sasl_enabled: false,
            quorum_learner_require_sasl: false,
            quorum_server_require_sasl: false,
            quorum_server_login_context: ringkeeper_engine::auth::JAAS_QUORUM_SERVER_SECTION.to_owned(),
            quorum_learner_login_context: ringkeeper_engine::auth::JAAS_QUORUM_LEARNER_SECTION.to_owned(),
            quorum_sasl: None,
            session_secret_file: None,
            my_id: None,
            raw: Vec::new(),
            ignored_keys: Vec::new(),
        }
    }

    /// Parse `zoo.cfg` text. Returns the config and warnings (unknown keys, duplicates, values
    /// adjusted as Apache adjusts them). Relative paths are kept as written, as Apache does.
    pub fn parse(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let entries = parse_properties(text);
        let mut warnings = Vec::new();

        // Last value wins, as with java.util.Properties; remember where each key was first seen.
        let mut effective: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        for e in &entries {
            if let Some((prev_line, _)) = effective.insert(e.key.as_str(), (e.line, e.value.as_str())) {
                warnings.push(format!(
                    "{} is set more than once (lines {} and {}); the last value wins",
                    e.key, prev_line, e.line
                ));
            }
        }
        // Walk keys in file order of their last occurrence so messages follow the file.
        let mut ordered: Vec<(&str, usize, &str)> =
            effective.iter().map(|(k, (line, v))| (*k, *line, *v)).collect();
        ordered.sort_by_key(|(_, line, _)| *line);

        let mut cfg = Config::defaults(APACHE_DEFAULT_TICK_TIME_MS, PathBuf::new(), None, None);
        cfg.raw = entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
        let mut data_dir: Option<PathBuf> = None;
        let mut min_session: Option<(String, i64)> = None;
        let mut max_session: Option<(String, i64)> = None;
        let mut whitelist_warnings = Vec::new();
        let mut server_lines: Vec<(String, String)> = Vec::new();
        let mut metrics_provider: Option<&str> = None;
        let mut metrics_host: Option<&str> = None;
        let mut metrics_port: Option<u16> = None;
        let mut admin_enabled = true;
        let mut admin_address = "0.0.0.0";
        let mut admin_port = DEFAULT_ADMIN_PORT;
        let mut peer_timeout_ms: Option<u32> = None;
        let mut heartbeat_ms: Option<u32> = None;

        for (key, line, value) in ordered {
            let short = canonical_key(key);
            match short {
                "dataDir" => {
                    if value.is_empty() {
                        return Err(bad(key, value, "is empty (expected a directory path)"));
                    }
                    data_dir = Some(PathBuf::from(value));
                }
                "dataLogDir" => {
                    if value.is_empty() {
                        return Err(bad(key, value, "is empty (expected a directory path)"));
                    }
                    cfg.data_log_dir = Some(PathBuf::from(value));
                }
                "clientPort" => {
                    cfg.client_port = Some(parse_port(key, value, true)?);
                }
                "clientPortAddress" => {
                    if value.is_empty() {
                        return Err(bad(key, value, "is empty (expected a host name or IP address)"));
                    }
                    cfg.client_port_address = Some(value.to_owned());
                }
                "tickTime" => {
                    cfg.tick_time_ms = parse_int(key, value, 1, i32::MAX as i64, "a positive integer (milliseconds)")? as u32;
                }
                "maxClientCnxns" => {
                    cfg.max_client_cnxns = parse_int(key, value, 0, i32::MAX as i64, "an integer >= 0 (0 = unlimited)")? as u32;
                }
                "nio.sessionlessCnxnTimeout" => {
                    let what = "a positive integer (milliseconds)";
                    cfg.sessionless_cnxn_timeout_ms = parse_int(key, value, 1, i32::MAX as i64, what)? as u32;
                }
                "minSessionTimeout" => {
                    let v = parse_int(key, value, -1, i32::MAX as i64, "an integer >= 0 in milliseconds, or -1 for 2 * tickTime")?;
                    min_session = Some((key.to_owned(), v));
                }
                "maxSessionTimeout" => {
                    let v = parse_int(key, value, -1, i32::MAX as i64, "an integer >= 0 in milliseconds, or -1 for 20 * tickTime")?;
                    max_session = Some((key.to_owned(), v));
                }
                "initLimit" => {
                    cfg.init_limit = parse_int(key, value, 0, i32::MAX as i64, "an integer >= 1 (ticks)")? as u32;
                }
                "syncLimit" => {
                    cfg.sync_limit = parse_int(key, value, 0, i32::MAX as i64, "an integer >= 1 (ticks)")? as u32;
                }
                "standaloneEnabled" => cfg.standalone_enabled = parse_bool(key, value)?,
                "4lw.commands.whitelist" => {
                    let (list, unknown) = Whitelist::parse(value);
                    cfg.four_letter_whitelist = list;
                    for word in unknown {
                        whitelist_warnings.push(format!(
                            "{key}: \"{word}\" is not a four-letter word ringkeeper knows; ignored"
                        ));
                    }
                }
                "extendedTypesEnabled" => cfg.extended_types_enabled = parse_bool(key, value)?,
                "enforceQuota" => cfg.enforce_quota = parse_bool(key, value)?,
                "skipACL" => cfg.skip_acl = value == SKIP_ACL_ON,
                "readonlymode.enabled" => cfg.read_only_mode_enabled = parse_bool(key, value)?,
                "quorumListenOnAllIPs" => cfg.quorum_listen_on_all_ips = parse_bool(key, value)?,
                "jute.maxbuffer" => {
                    cfg.jute_max_buffer = parse_java_int_decode(key, value)?;
                }
                "DigestAuthenticationProvider.superDigest" => {
                    match value.split_once(':') {
                        Some((user, hash)) if !user.is_empty() && !hash.is_empty() => {
                            cfg.super_digest = Some(value.to_owned());
                        }
                        _ => {
                            return Err(bad(key, value, "is not a digest (expected user:base64-sha1, e.g. super:D/InIHSb7yEEbrWz8b9l71RjZJU=)"))
                        }
                    }
                }
                "znode.container.checkIntervalMs" => {
                    cfg.container_check_interval_ms =
                        parse_int(key, value, 1, i64::MAX, "an integer >= 1 (milliseconds)")? as u64;
                }
                "snapCount" => {
                    cfg.snap_count = parse_int(key, value, 2, i64::MAX, "an integer >= 2 (transactions)")? as u64;
                }
                "autopurge.snapRetainCount" => {
                    let v = parse_int(key, value, i32::MIN as i64, i32::MAX as i64, "an integer (snapshots to keep, at least 3)")?;
                    if v < MIN_SNAP_RETAIN_COUNT as i64 {
                        warnings.push(format!(
                            "{key}: {v} is below the minimum; using {MIN_SNAP_RETAIN_COUNT} (as Apache does)"
                        ));
                        cfg.autopurge_snap_retain_count = MIN_SNAP_RETAIN_COUNT;
                    } else {
                        cfg.autopurge_snap_retain_count = v as u32;
                    }
                }
                "autopurge.purgeInterval" => {
                    cfg.autopurge_purge_interval_hours =
                        parse_int(key, value, 0, i32::MAX as i64, "an integer >= 0 (hours, 0 = never)")? as u32;
                }
                "forceSync" => {
                    cfg.force_sync = match value.to_ascii_lowercase().as_str() {
                        "yes" | "true" => true,
                        "no" | "false" => false,
                        _ => return Err(bad(key, value, "is not a switch (expected yes or no)")),
                    };
                }
                "globalOutstandingLimit" => {
                    cfg.global_outstanding_limit =
                        parse_int(key, value, 1, i32::MAX as i64, "a positive integer (requests)")? as u32;
                }
                "electionAlg" => {
                    if value.trim() != "3" {
                        return Err(bad(key, value, "is not supported (only 3, fast leader election, exists)"));
                    }
                    cfg.ignored_keys.push(key.to_owned());
                }
                "peerType" => {
                    parse_role(key, value)?;
                    cfg.ignored_keys.push(key.to_owned());
                }
                "dynamicConfigFile" => cfg.dynamic_config_file = Some(PathBuf::from(value)),
                "reconfigEnabled" => cfg.reconfig_enabled = parse_bool(key, value)?,
                "ringkeeper.network.cores" => cfg.network_cores = parse_core_list(key, value)?,
                "ringkeeper.data.core" => cfg.data_core = Some(parse_core(key, value)?),
                "ringkeeper.log.core" => cfg.log_core = Some(parse_core(key, value)?),
                "ringkeeper.pin" => cfg.pin = parse_bool(key, value)?,
                "ringkeeper.executors" => cfg.executors = parse_executors(key, value)?,
                "ringkeeper.quorum.protocol" => cfg.quorum_protocol = parse_quorum_protocol(key, value)?,
                "ringkeeper.log.writeMode" => cfg.log_write_mode = parse_log_write_mode(key, value)?,
                "ringkeeper.log.batchBytesMax" => {
                    cfg.log_batch_bytes_max = parse_int(key, value, 1, i64::MAX, "a positive integer (bytes)")? as u64;
                }
                "ringkeeper.log.batchCountMax" => {
                    cfg.log_batch_count_max = parse_int(key, value, 1, u32::MAX as i64, "a positive integer (records)")? as u32;
                }
                "ringkeeper.log.batchDelayMicros" => {
                    cfg.log_batch_delay_micros = parse_int(key, value, 0, i64::MAX, "an integer >= 0 (microseconds)")? as u64;
                }
                "ringkeeper.coalesceMicros" => {
                    cfg.coalesce_micros =
                        parse_int(key, value, 0, COALESCE_MICROS_MAX as i64, "an integer from 0 to 10000 (microseconds)")? as u64;
                }
                "ringkeeper.log.inlineMaxRecords" => {
                    cfg.log_inline_max_records = Some(parse_int(key, value, 0, u32::MAX as i64, "an integer >= 0 (records)")? as u32);
                }
                "ringkeeper.zab.heartbeatMs" => heartbeat_ms = Some(parse_millis(key, value)?),
                "ringkeeper.zab.peerTimeoutMs" => peer_timeout_ms = Some(parse_millis(key, value)?),
                "ringkeeper.zab.finalizeWaitMs" => cfg.zab_finalize_wait_ms = parse_millis(key, value)?,
                "ringkeeper.zab.electionRetryMs" => cfg.zab_election_retry_ms = parse_millis(key, value)?,
                "ringkeeper.zab.historyMax" => {
                    cfg.zab_history_max = parse_int(key, value, 1, 100_000_000, "a positive integer (txns)")? as usize;
                }
                "ringkeeper.zab.historyBytesMax" => {
                    cfg.zab_history_bytes_max = parse_int(key, value, 1, 1 << 40, "a positive integer (bytes)")? as usize;
                }
                "ringkeeper.log.segmentBytes" => {
                    let what = "a multiple of 4096 of at least 65536 (bytes)";
                    let bytes = parse_int(key, value, LOG_SEGMENT_BYTES_MIN as i64, 1 << 40, what)? as u64;
                    if !bytes.is_multiple_of(4096) {
                        return Err(bad(key, value, format!("is not a multiple of 4096 (expected {what})")));
                    }
                    cfg.log_segment_bytes = bytes;
                }
                "ringkeeper.client.outboxBytesMax" => {
                    cfg.client_outbox_bytes_max = parse_int(key, value, 1, i64::MAX, "a positive integer (bytes)")? as u64;
                }
                "ringkeeper.session.secretFile" => {
                    if value.is_empty() {
                        return Err(bad(key, value, "is empty (expected a file path)"));
                    }
                    cfg.session_secret_file = Some(PathBuf::from(value));
                }
                "ringkeeper.queue.depth" => {
                    cfg.queue_depth = parse_int(key, value, 1, u32::MAX as i64, "a positive integer (queue slots)")? as usize;
                }
                "secureClientPort" => cfg.secure_client_port = Some(parse_port(key, value, true)?),
                "secureClientPortAddress" => {
                    if value.is_empty() {
                        return Err(bad(key, value, "is empty (expected a host name or IP address)"));
                    }
                    cfg.secure_client_port_address = Some(value.to_owned());
                }
                "client.portUnification" => cfg.client_port_unification = parse_bool(key, value)?,
                _ if ssl_key_field(short).is_some() => {
                    let (quorum, field) = ssl_key_field(short).expect("guarded");
                    let ssl = if quorum { &mut cfg.quorum_ssl } else { &mut cfg.ssl };
                    if !apply_ssl_field(ssl, quorum, key, field, value, &mut warnings)? {
                        cfg.ignored_keys.push(key.to_owned());
                    }
                }
                "sslQuorum" => cfg.ssl_quorum = parse_bool(key, value)?,
                "client.certReload" => cfg.client_cert_reload = parse_bool(key, value)?,
                "sslQuorumReloadCertFiles" => cfg.ssl_quorum_reload_cert_files = parse_bool(key, value)?,
                "X509AuthenticationProvider.superUser" => cfg.x509_super_user = Some(value.to_owned()),
                "enforce.auth.enabled" => cfg.enforce_auth_enabled = parse_bool(key, value)?,
                "enforce.auth.schemes" => cfg.enforce_auth_schemes = parse_list(value),
                "sessionRequireClientSASLAuth" => cfg.session_require_client_sasl_auth = parse_bool(key, value)?,
                "allowSaslFailedClients" => cfg.allow_sasl_failed_clients = parse_bool(key, value)?,
                JAAS_CONFIG_KEY => cfg.jaas_config = Some(PathBuf::from(value)),
                KRB5_CONFIG_KEY => cfg.krb5_config = Some(PathBuf::from(value)),
                "kerberos.removeHostFromPrincipal" => {
                    cfg.kerberos_remove_host_from_principal = parse_bool(key, value)?
                }
                "kerberos.removeRealmFromPrincipal" => {
                    cfg.kerberos_remove_realm_from_principal = parse_bool(key, value)?
                }
                "superUser" => cfg.sasl_super_user = Some(value.to_owned()),
                "quorum.auth.enableSasl" => cfg.quorum_sasl_enabled = parse_bool(key, value)?,
                "quorum.auth.learnerRequireSasl" => cfg.quorum_learner_require_sasl = parse_bool(key, value)?,
                "quorum.auth.serverRequireSasl" => cfg.quorum_server_require_sasl = parse_bool(key, value)?,
                "quorum.auth.server.saslLoginContext" => cfg.quorum_server_login_context = value.to_owned(),
                "quorum.auth.learner.saslLoginContext" => cfg.quorum_learner_login_context = value.to_owned(),
                _ if short.starts_with("authProvider.") => cfg.auth_providers.push(value.to_owned()),
                "metricsProvider.className" => metrics_provider = Some(value),
                "metricsProvider.httpHost" => {
                    if value.is_empty() {
                        return Err(bad(key, value, "is empty (expected a host name or IP address)"));
                    }
                    metrics_host = Some(value);
                }
                "metricsProvider.httpPort" => metrics_port = Some(parse_port(key, value, true)?),
                "admin.enableServer" => admin_enabled = parse_bool(key, value)?,
                "admin.serverAddress" => {
                    if value.is_empty() {
                        return Err(bad(key, value, "is empty (expected a host name or IP address)"));
                    }
                    admin_address = value;
                }
                "admin.serverPort" => admin_port = parse_port(key, value, true)?,
                _ if key.starts_with("server.") => server_lines.push((key.to_owned(), value.to_owned())),
                _ => match classify_other(key, short, value) {
                    Other::Ignored => cfg.ignored_keys.push(key.to_owned()),
                    Other::IgnoredWithWarning(w) => {
                        cfg.ignored_keys.push(key.to_owned());
                        warnings.push(w);
                    }
                    Other::Unknown => warnings.push(format!(
                        "unknown key {key} (line {line}); ignored"
                    )),
                },
            }
        }
        warnings.extend(whitelist_warnings);
        if admin_enabled {
            cfg.admin_endpoint = Some(HttpEndpoint { host: admin_address.to_owned(), port: admin_port });
        }
        match metrics_provider {
            Some(PROMETHEUS_METRICS_PROVIDER) => {
                cfg.metrics_endpoint = Some(HttpEndpoint {
                    host: metrics_host.unwrap_or("0.0.0.0").to_owned(),
                    port: metrics_port.unwrap_or(DEFAULT_METRICS_PORT),
                });
            }
            Some(other) => warnings.push(format!(
                "metricsProvider.className: {other} is not supported (only {PROMETHEUS_METRICS_PROVIDER}); no metrics are served"
            )),
            None if metrics_host.is_some() || metrics_port.is_some() => warnings.push(format!(
                "metricsProvider.httpHost/httpPort are set but metricsProvider.className is not; set it to \
                 {PROMETHEUS_METRICS_PROVIDER} to serve /metrics"
            )),
            None => {}
        }

        cfg.check_enforcement()?;
        cfg.check_quorum_sasl()?;
        if cfg.ssl_quorum && cfg.quorum_protocol == QuorumProtocol::Apache {
            return Err(ConfigError::Unsupported {
                key: "sslQuorum".into(),
                reason:
                    "peer TLS is ringkeeper's own protocol's; with ringkeeper.quorum.protocol=apache the \
                         peer links are plain (set sslQuorum=false)"
                        .into(),
            });
        }
        cfg.data_dir =
            data_dir.ok_or_else(|| ConfigError::Missing { key: "dataDir".into(), hint: String::new() })?;
        if cfg.client_port.is_none() && cfg.client_port_address.is_some() {
            return Err(ConfigError::Inconsistent(
                "clientPortAddress is set but clientPort is not set".into(),
            ));
        }

        // Session timeouts: -1 (or unset) means the tickTime-derived default.
        cfg.min_session_timeout_ms = match min_session {
            Some((_, v)) if v >= 0 => v as u32,
            _ => cfg.tick_time_ms.saturating_mul(2),
        };
        cfg.max_session_timeout_ms = match max_session {
            Some((_, v)) if v >= 0 => v as u32,
            _ => cfg.tick_time_ms.saturating_mul(20),
        };
        if cfg.min_session_timeout_ms > cfg.max_session_timeout_ms {
            return Err(ConfigError::Inconsistent(format!(
                "minSessionTimeout must not be larger than maxSessionTimeout (minSessionTimeout={}, maxSessionTimeout={})",
                cfg.min_session_timeout_ms, cfg.max_session_timeout_ms
            )));
        }

        cfg.zab_peer_timeout_ms = match peer_timeout_ms {
            Some(ms) => ms,
            None if cfg.sync_limit > 0 => cfg.tick_time_ms.saturating_mul(cfg.sync_limit),
            None => FAST_FAILOVER_PEER_TIMEOUT_MS,
        };
        cfg.zab_heartbeat_ms =
            heartbeat_ms.unwrap_or_else(|| default_heartbeat_ms(cfg.zab_peer_timeout_ms, cfg.tick_time_ms));
        cfg.servers = parse_servers(&server_lines, cfg.extended_types_enabled)?;
        let participants = cfg.servers.iter().filter(|s| s.role == PeerRole::Participant).count();
        let observers = cfg.servers.len() - participants;
        if participants == 0 {
            if !cfg.standalone_enabled {
                return Err(ConfigError::Inconsistent(
                    "standaloneEnabled = false then number of participants should be >0".into(),
                ));
            }
            if observers > 0 {
                return Err(ConfigError::Inconsistent(
                    "Observers w/o participants is an invalid configuration".into(),
                ));
            }
        } else if participants == 1 && cfg.standalone_enabled {
            if observers > 0 {
                return Err(ConfigError::Inconsistent(
                    "Observers w/o quorum is an invalid configuration".into(),
                ));
            }
            warnings.push(
                "only one server is listed and standaloneEnabled=true: running standalone (the server.N line is ignored)".into(),
            );
        } else {
            if participants <= 2 {
                warnings.push("No server failure will be tolerated. You need at least 3 servers.".into());
            } else if participants % 2 == 0 {
                warnings.push("Non-optimal configuration, consider an odd number of servers.".into());
            }
            if cfg.init_limit == 0 {
                return Err(ConfigError::Missing {
                    key: "initLimit".into(),
                    hint: " (required with more than one server)".into(),
                });
            }
            if cfg.sync_limit == 0 {
                return Err(ConfigError::Missing {
                    key: "syncLimit".into(),
                    hint: " (required with more than one server)".into(),
                });
            }
        }

        Ok((cfg, warnings))
    }

    /// Read and parse `path`; then read `<dataDir>/myid` if it exists (as Apache does) and
    /// check it against the server list. An I/O error names the file.
    pub fn load(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let mut text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Io { path: path.to_owned(), source })?;
        let mut version = 0;
        let dynamic = parse_properties(&text).into_iter().rev().find(|e| e.key == "dynamicConfigFile");
        if let Some(entry) = dynamic {
            let dynamic_path = PathBuf::from(&entry.value);
            let dynamic_text = std::fs::read_to_string(&dynamic_path)
                .map_err(|source| ConfigError::Io { path: dynamic_path.clone(), source })?;
            let (lines, v) = dynamic_config_lines(&dynamic_path, &dynamic_text)?;
            version = v;
            text.push('\n');
            text.push_str(&lines);
        }
        let (mut cfg, mut warnings) = Config::parse(&text)?;
        cfg.config_version = version;
        cfg.config_file = Some(path.to_owned());
        if let Ok(flags) = std::env::var("SERVER_JVMFLAGS") {
            cfg.apply_jvm_flags(&flags)?;
        }
        cfg.load_jaas(&mut warnings)?;
        let myid_path = cfg.data_dir.join("myid");
        if myid_path.is_file() {
            let text = std::fs::read_to_string(&myid_path)
                .map_err(|source| ConfigError::Io { path: myid_path.clone(), source })?;
            let first = text.lines().next().unwrap_or("").trim();
            let id = first.parse::<u64>().map_err(|_| {
                bad(
                    &myid_path.display().to_string(),
                    first,
                    "is not a server id (expected an integer 1..=255)",
                )
            })?;
            cfg.my_id = Some(id);
        }
        cfg.check_my_id()?;
        Ok((cfg, warnings))
    }

    /// The Kerberos realm configuration: `java.security.krb5.conf`, else `$KRB5_CONFIG`, else
    /// `/etc/krb5.conf` (where Java and MIT Kerberos look, in that order).
    pub fn krb5_config_path(&self) -> PathBuf {
        self.krb5_config
            .clone()
            .or_else(|| std::env::var_os(KRB5_CONFIG_ENV).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/etc/krb5.conf"))
    }

    /// Applies the JVM system properties Apache users pass in `SERVER_JVMFLAGS` that
    /// ringkeeper knows (`-Dreadonlymode.enabled=true`, `-Djava.security.auth.login.config=`,
    /// `-Djava.security.krb5.conf=`,
    /// and the `-Dzookeeper.` properties of auth enforcement and SASL); other flags are left
    /// alone.
    pub fn apply_jvm_flags(&mut self, flags: &str) -> Result<(), ConfigError> {
        for flag in flags.split_whitespace() {
            let Some((property, value)) = flag.strip_prefix("-D").and_then(|p| p.split_once('=')) else {
                continue;
            };
            let key = format!("SERVER_JVMFLAGS -D{property}");
            match property {
                "readonlymode.enabled" => self.read_only_mode_enabled = parse_bool(&key, value)?,
                JAAS_CONFIG_KEY => self.jaas_config = Some(PathBuf::from(value)),
                KRB5_CONFIG_KEY => self.krb5_config = Some(PathBuf::from(value)),
                "zookeeper.enforce.auth.enabled" => self.enforce_auth_enabled = parse_bool(&key, value)?,
                "zookeeper.enforce.auth.schemes" => self.enforce_auth_schemes = parse_list(value),
                "zookeeper.sessionRequireClientSASLAuth" => {
                    self.session_require_client_sasl_auth = parse_bool(&key, value)?
                }
                "zookeeper.allowSaslFailedClients" => {
                    self.allow_sasl_failed_clients = parse_bool(&key, value)?
                }
                "zookeeper.kerberos.removeHostFromPrincipal" => {
                    self.kerberos_remove_host_from_principal = parse_bool(&key, value)?
                }
                "zookeeper.kerberos.removeRealmFromPrincipal" => {
                    self.kerberos_remove_realm_from_principal = parse_bool(&key, value)?
                }
                "zookeeper.superUser" => self.sasl_super_user = Some(value.to_owned()),
                "zookeeper.skipACL" => self.skip_acl = value == SKIP_ACL_ON,
                _ => {}
            }
        }
        self.check_enforcement()
    }

    /// The schemes sessions must hold an id of (`AuthenticationHelper`): `sasl` with
    /// `sessionRequireClientSASLAuth`, else `enforce.auth.schemes` when enabled, else none.
    pub fn enforcement(&self) -> ringkeeper_engine::auth::Enforcement {
        let schemes = if self.session_require_client_sasl_auth {
            vec![ringkeeper_engine::auth::SCHEME_SASL.to_owned()]
        } else if self.enforce_auth_enabled {
            self.enforce_auth_schemes.clone()
        } else {
            Vec::new()
        };
        ringkeeper_engine::auth::Enforcement {
            schemes,
            allow_sasl_failed_clients: self.allow_sasl_failed_clients,
        }
    }

    /// Whether `authProvider.N` turns on the provider `class`.
    pub fn has_auth_provider(&self, class: &str) -> bool {
        self.auth_providers.iter().any(|p| p == class)
    }

    /// Apache refuses to start when enforcement is on with no scheme, or names a scheme no
    /// provider serves (`ip` and `digest` always; `x509` and `sasl` with their provider).
    fn check_enforcement(&self) -> Result<(), ConfigError> {
        let enforcement = self.enforcement();
        if self.enforce_auth_enabled
            && !self.session_require_client_sasl_auth
            && enforcement.schemes.is_empty()
        {
            return Err(ConfigError::Inconsistent(
                "enforce.auth.enabled is true but enforce.auth.schemes is not set (expected e.g. sasl or digest)".into(),
            ));
        }
        for scheme in &enforcement.schemes {
            let available = match scheme.as_str() {
                "ip" | "digest" => true,
                "x509" => self.has_auth_provider(X509_AUTH_PROVIDER),
                "sasl" => self.has_auth_provider(SASL_AUTH_PROVIDER),
                _ => false,
            };
            if !available {
                return Err(ConfigError::Inconsistent(format!(
                    "enforce.auth.schemes: authentication scheme {scheme} is not available (ip and digest                      always are; x509 and sasl need their authProvider.N)"
                )));
            }
        }
        Ok(())
    }

    /// Apache (`QuorumPeerConfig`) refuses `quorum.auth.*RequireSasl` without
    /// `quorum.auth.enableSasl`; ringkeeper's own peer protocol is the only one that carries it.
    fn check_quorum_sasl(&self) -> Result<(), ConfigError> {
        for (key, on) in [
            ("quorum.auth.learnerRequireSasl", self.quorum_learner_require_sasl),
            ("quorum.auth.serverRequireSasl", self.quorum_server_require_sasl),
        ] {
            if on && !self.quorum_sasl_enabled {
                return Err(ConfigError::Inconsistent(format!(
                    "{key} is enabled, but quorum.auth.enableSasl is disabled"
                )));
            }
        }
        if self.quorum_sasl_enabled && self.quorum_protocol == QuorumProtocol::Apache {
            return Err(ConfigError::Unsupported {
                key: "quorum.auth.enableSasl".into(),
                reason:
                    "quorum SASL is ringkeeper's own protocol's; with ringkeeper.quorum.protocol=apache the \
                         peer links do not authenticate (set quorum.auth.enableSasl=false)"
                        .into(),
            });
        }
        Ok(())
    }

    /// With `quorum.auth.enableSasl`, reads the JAAS file's `QuorumServer` and `QuorumLearner`
    /// sections (or those `quorum.auth.*.saslLoginContext` name); a missing file or section
    /// is an error, as it stops Apache's member.
    fn load_quorum_jaas(&mut self) -> Result<(), ConfigError> {
        use ringkeeper_engine::auth::{digest_login, digest_users, parse_jaas};
        if !self.quorum_sasl_enabled || !self.is_distributed() {
            return Ok(());
        }
        let path = self.jaas_config.clone().ok_or_else(|| ConfigError::Missing {
            key: JAAS_CONFIG_KEY.into(),
            hint: format!(
                " (quorum.auth.enableSasl needs a JAAS file with {} and {} sections: set it in zoo.cfg or as \
                 -D{JAAS_CONFIG_KEY}= in SERVER_JVMFLAGS)",
                self.quorum_server_login_context, self.quorum_learner_login_context
            ),
        })?;
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ConfigError::Io { path: path.clone(), source })?;
        let sections = parse_jaas(&text)
            .map_err(|e| bad(JAAS_CONFIG_KEY, &path.display().to_string(), e.to_string()))?;
        let missing = |section: &str, what: &str| {
            bad(
                JAAS_CONFIG_KEY,
                &path.display().to_string(),
                format!("has no {section} section with a DigestLoginModule {what} (quorum.auth.enableSasl)"),
            )
        };
        let server_users = digest_users(&sections, &self.quorum_server_login_context).ok_or_else(|| {
            missing(&self.quorum_server_login_context, "and user_NAME=\"password\" entries")
        })?;
        let (learner_user, learner_password) = digest_login(&sections, &self.quorum_learner_login_context)
            .ok_or_else(|| missing(&self.quorum_learner_login_context, "username and password"))?;
        self.quorum_sasl = Some(QuorumSasl {
            learner_require: self.quorum_learner_require_sasl,
            server_require: self.quorum_server_require_sasl,
            server_users,
            learner_user,
            learner_password,
        });
        Ok(())
    }

    /// With the SASL provider on, reads the JAAS file's `Server` section (its DIGEST-MD5
    /// users, or its Kerberos login). No file configured, or no `Server` section: SASL
    /// clients are refused, with a warning. A file that cannot be read or parsed is an error.
    fn load_jaas(&mut self, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
        self.load_quorum_jaas()?;
        if !self.has_auth_provider(SASL_AUTH_PROVIDER) {
            return Ok(());
        }
        let Some(path) = self.jaas_config.clone() else {
            warnings.push(format!(
                "{SASL_AUTH_PROVIDER} is on but no JAAS file is configured ({JAAS_CONFIG_KEY} in zoo.cfg or \
                 -D{JAAS_CONFIG_KEY}= in SERVER_JVMFLAGS): SASL clients are refused"
            ));
            return Ok(());
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ConfigError::Io { path: path.clone(), source })?;
        let sections = ringkeeper_engine::auth::parse_jaas(&text)
            .map_err(|e| bad(JAAS_CONFIG_KEY, &path.display().to_string(), e.to_string()))?;
        self.sasl_digest_users =
            ringkeeper_engine::auth::digest_users(&sections, ringkeeper_engine::auth::JAAS_SERVER_SECTION);
        self.sasl_kerberos =
            ringkeeper_engine::auth::kerberos_login(&sections, ringkeeper_engine::auth::JAAS_SERVER_SECTION)
                .map_err(|e| bad(JAAS_CONFIG_KEY, &path.display().to_string(), e.to_string()))?;
        if self.sasl_digest_users.is_none() {
            warnings.push(format!(
                "{}: no {} section: SASL clients are refused",
                path.display(),
                ringkeeper_engine::auth::JAAS_SERVER_SECTION
            ));
        }
        Ok(())
    }

    /// In an ensemble, `my_id` must be set and listed; called by [`Config::load`].
    pub fn check_my_id(&self) -> Result<(), ConfigError> {
        if !self.is_distributed() {
            return Ok(());
        }
        match self.my_id {
            None => Err(ConfigError::Inconsistent(format!(
                "myid file is missing (expected {} containing this server's id)",
                self.data_dir.join("myid").display()
            ))),
            // Apache 3.8 does not start either (`QuorumPeer.start`).
            Some(id) if !self.servers.iter().any(|s| s.id == id) => Err(ConfigError::Inconsistent(format!(
                "myid {id} is not one of the configured servers ({}); My id {id} not in the peer list: a \
                 reconfig removed this server, or it was joining and restarted before the reconfig adding \
                 it committed (it took up the ensemble's configuration, which does not list it yet); to \
                 join, start it from a zoo.cfg listing the ensemble and itself (zoo.cfg.bak keeps the one \
                 it first started with)",
                self.servers.iter().map(|s| format!("server.{}", s.id)).collect::<Vec<_>>().join(", ")
            ))),
            Some(_) => Ok(()),
        }
    }

    /// True when this config describes an ensemble rather than a standalone server
    /// (Apache: more than one participant, or any participant with standaloneEnabled=false).
    pub fn is_distributed(&self) -> bool {
        let participants = self.servers.iter().filter(|s| s.role == PeerRole::Participant).count();
        participants > 1 || (participants == 1 && !self.standalone_enabled)
    }

    /// `ringkeeper.log.inlineMaxRecords` for a log role that shares its executor with the other
    /// roles or not. Unset, a standalone server or an own log executor gets
    /// [`DEFAULT_LOG_INLINE_MAX_RECORDS`]; an ensemble member on a shared executor gets 0: an
    /// inline write holds that thread, and a disk stalling past `ringkeeper.zab.peerTimeoutMs`
    /// would silence its heartbeats and lose it its followers (seen in CI on a FUSE disk).
    pub fn log_inline_max_records_for(&self, executor_shared: bool) -> u32 {
        match self.log_inline_max_records {
            Some(records) => records,
            None if executor_shared && self.is_distributed() => 0,
            None => DEFAULT_LOG_INLINE_MAX_RECORDS,
        }
    }

    /// The directory the transaction log goes to (`dataLogDir`, else `dataDir`).
    pub fn log_dir(&self) -> &Path {
        self.data_log_dir.as_deref().unwrap_or(&self.data_dir)
    }

    /// The client address to listen on: `clientPortAddress`, else this server's `server.N`
    /// client address, else all interfaces.
    pub fn effective_client_address(&self) -> String {
        self.client_port_address
            .clone()
            .or_else(|| self.own_server().and_then(|s| s.client_address.clone()))
            .unwrap_or_else(|| "0.0.0.0".to_owned())
    }

    /// This server's `server.N` line (by `myid`).
    fn own_server(&self) -> Option<&ServerEntry> {
        self.my_id.and_then(|id| self.servers.iter().find(|s| s.id == id))
    }

    /// The client port to listen on: `clientPort`, else this server's `server.N` client
    /// port, else 2181.
    pub fn effective_client_port(&self) -> u16 {
        if let Some(p) = self.client_port {
            return p;
        }
        self.own_server().and_then(|s| s.client_port).unwrap_or(2181)
    }
}
