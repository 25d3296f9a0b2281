//! Tests of zoo.cfg parsing and validation.

use super::*;

fn parse(text: &str) -> Config {
    Config::parse(text).expect("config parses").0
}

fn err(text: &str) -> String {
    Config::parse(text).expect_err("config must be rejected").to_string()
}

const MINIMAL: &str = "dataDir=/var/lib/zk\n";

#[test]
fn peer_timeout_is_tick_time_times_sync_limit_unless_set() {
    let ensemble = "tickTime=300\ninitLimit=10\nsyncLimit=4\ndataDir=/d\nserver.1=a:1:2\nserver.2=b:1:2\n";
    assert_eq!(Config::parse(ensemble).unwrap().0.zab_peer_timeout_ms, 1200);
    let fast = format!("{ensemble}ringkeeper.zab.peerTimeoutMs=800\n");
    assert_eq!(Config::parse(&fast).unwrap().0.zab_peer_timeout_ms, 800);
    assert_eq!(Config::parse(MINIMAL).unwrap().0.zab_peer_timeout_ms, FAST_FAILOVER_PEER_TIMEOUT_MS);
}

#[test]
fn inline_log_writes_unless_an_ensemble_member_shares_its_executor_or_it_is_set() {
    let standalone = parse(MINIMAL);
    assert_eq!(standalone.log_inline_max_records_for(true), DEFAULT_LOG_INLINE_MAX_RECORDS);
    let ensemble = parse("dataDir=/d\ninitLimit=5\nsyncLimit=2\nserver.1=a:1:2\nserver.2=b:1:2\n");
    assert_eq!(ensemble.log_inline_max_records_for(true), 0, "heartbeats share that thread");
    assert_eq!(ensemble.log_inline_max_records_for(false), DEFAULT_LOG_INLINE_MAX_RECORDS);
    let set = parse("dataDir=/d\ninitLimit=5\nsyncLimit=2\nserver.1=a:1:2\nserver.2=b:1:2\nringkeeper.log.inlineMaxRecords=3\n");
    assert_eq!(set.log_inline_max_records_for(true), 3);
    let off = parse("dataDir=/d\nringkeeper.log.inlineMaxRecords=0\n");
    assert_eq!(off.log_inline_max_records_for(false), 0);
}

#[test]
fn heartbeat_is_derived_from_the_peer_timeout_unless_set() {
    let ensemble = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/d\nserver.1=a:1:2\nserver.2=b:1:2\n";
    // 10 s peer timeout: pings every half tick, as Apache's leader.
    assert_eq!(Config::parse(ensemble).unwrap().0.zab_heartbeat_ms, 1000);
    let fast = format!("{ensemble}ringkeeper.zab.peerTimeoutMs=800\n");
    assert_eq!(Config::parse(&fast).unwrap().0.zab_heartbeat_ms, 800 / HEARTBEATS_PER_PEER_TIMEOUT);
    let tiny = format!("{ensemble}ringkeeper.zab.peerTimeoutMs=40\n");
    assert_eq!(Config::parse(&tiny).unwrap().0.zab_heartbeat_ms, 10);
    let set = format!("{fast}ringkeeper.zab.heartbeatMs=50\n");
    assert_eq!(Config::parse(&set).unwrap().0.zab_heartbeat_ms, 50);
}

#[test]
fn auth_enforcement_and_sasl_keys_from_zoo_cfg_and_server_jvmflags() {
    let sasl = format!("dataDir=/a\nauthProvider.1={SASL_AUTH_PROVIDER}\n");
    let (mut cfg, warnings) = Config::parse(&format!(
        "{sasl}enforce.auth.enabled=true\nzookeeper.enforce.auth.schemes=sasl, digest\n"
    ))
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(cfg.enforcement().schemes, ["sasl", "digest"]);
    cfg.apply_jvm_flags(&format!(
        "-D{JAAS_CONFIG_KEY}=/etc/jaas.conf -D{KRB5_CONFIG_KEY}=/etc/realm.conf \
         -Dzookeeper.sessionRequireClientSASLAuth=true \
         -Dzookeeper.allowSaslFailedClients=true -Dzookeeper.kerberos.removeRealmFromPrincipal=true"
    ))
    .unwrap();
    assert_eq!(cfg.jaas_config.as_deref(), Some(Path::new("/etc/jaas.conf")));
    assert_eq!(cfg.krb5_config_path(), Path::new("/etc/realm.conf"));
    let (from_file, _) = Config::parse(&format!("dataDir=/a\n{KRB5_CONFIG_KEY}=/etc/other.conf\n")).unwrap();
    assert_eq!(from_file.krb5_config_path(), Path::new("/etc/other.conf"));
    let enforcement = cfg.enforcement();
    assert_eq!(enforcement.schemes, ["sasl"], "sessionRequireClientSASLAuth wins");
    assert!(enforcement.allow_sasl_failed_clients && cfg.kerberos_remove_realm_from_principal);
    // Apache refuses to start without a scheme, or with one no provider serves.
    assert!(Config::parse("dataDir=/a\nenforce.auth.enabled=true\n").is_err());
    assert!(Config::parse("dataDir=/a\nenforce.auth.enabled=true\nenforce.auth.schemes=sasl\n").is_err());
    assert!(Config::parse("dataDir=/a\nsessionRequireClientSASLAuth=true\n").is_err());
    assert!(Config::parse("dataDir=/a\nenforce.auth.enabled=true\nenforce.auth.schemes=kerberos\n").is_err());
    assert!(Config::parse("dataDir=/a\nenforce.auth.schemes=sasl\n")
        .unwrap()
        .0
        .enforcement()
        .schemes
        .is_empty());
}

#[test]
fn skip_acl_is_on_only_for_yes_from_zoo_cfg_or_server_jvmflags() {
    for (text, on) in [("skipACL=yes\n", true), ("zookeeper.skipACL=yes\n", true), ("skipACL=true\n", false)]
    {
        let (cfg, warnings) = Config::parse(&format!("dataDir=/a\n{text}")).unwrap();
        assert_eq!((cfg.skip_acl, warnings.is_empty()), (on, true), "{text}: {warnings:?}");
    }
    let (mut cfg, _) = Config::parse("dataDir=/a\n").unwrap();
    cfg.apply_jvm_flags("-Dzookeeper.skipACL=yes").unwrap();
    assert!(cfg.skip_acl);
}

#[test]
fn read_only_mode_from_zoo_cfg_and_server_jvmflags() {
    let (mut cfg, warnings) = Config::parse("dataDir=/a\nreadonlymode.enabled=true\n").unwrap();
    assert!(cfg.read_only_mode_enabled && warnings.is_empty(), "{warnings:?}");
    cfg.apply_jvm_flags("-Xmx1g -Dreadonlymode.enabled=false -Dother=1").unwrap();
    assert!(!cfg.read_only_mode_enabled, "the JVM flag wins, as Apache reads only the property");
    cfg.apply_jvm_flags("-Dreadonlymode.enabled=true").unwrap();
    assert!(cfg.read_only_mode_enabled);
    assert!(cfg.apply_jvm_flags("-Dreadonlymode.enabled=yes please").is_err());
    assert!(Config::parse("dataDir=/a\nreadonlymode.enabled=maybe\n").is_err());
}

#[test]
fn realistic_ensemble_zoo_cfg() {
    let text = "\
# The number of milliseconds of each tick
tickTime=2000
initLimit=10
syncLimit=5
dataDir=/var/lib/zookeeper
dataLogDir = /fast/zk-log
clientPort=2181
clientPortAddress: 0.0.0.0
maxClientCnxns=100
! another comment style
autopurge.snapRetainCount=5
autopurge.purgeInterval=24
4lw.commands.whitelist=stat, ruok, conf, isro, mntr
admin.enableServer=false
metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
metricsProvider.httpPort=7000
forceSync=no
snapCount=50000
zookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=
server.1=zk1.example.com:2888:3888
server.2=zk2.example.com:2888:3888:participant;2181
server.3=[fe80::1]:2888:3888;0.0.0.0:2182
server.4=zk4.example.com:2888:3888:observer
ringkeeper.network.cores=0-1,3
ringkeeper.data.core=2
ringkeeper.log.core=2
ringkeeper.pin=true
ringkeeper.executors=per-role
ringkeeper.quorum.protocol=apache
ringkeeper.log.batchBytesMax=262144
ringkeeper.log.batchCountMax=256
ringkeeper.log.batchDelayMicros=200
ringkeeper.queue.depth=4096
ringkeeper.client.outboxBytesMax=8388608
ringkeeper.coalesceMicros=500
";
    let (cfg, warnings) = Config::parse(text).unwrap();
    assert_eq!(cfg.tick_time_ms, 2000);
    assert_eq!((cfg.init_limit, cfg.sync_limit), (10, 5));
    assert_eq!(cfg.zab_peer_timeout_ms, 10_000, "failure detection of tickTime x syncLimit");
    assert_eq!(cfg.data_dir, PathBuf::from("/var/lib/zookeeper"));
    assert_eq!(cfg.log_dir(), Path::new("/fast/zk-log"));
    assert_eq!(cfg.client_port, Some(2181));
    assert_eq!(cfg.client_port_address.as_deref(), Some("0.0.0.0"));
    assert_eq!(cfg.max_client_cnxns, 100);
    assert_eq!((cfg.min_session_timeout_ms, cfg.max_session_timeout_ms), (4000, 40000));
    assert_eq!(cfg.autopurge_snap_retain_count, 5);
    assert_eq!(cfg.autopurge_purge_interval_hours, 24);
    assert!(cfg.four_letter_whitelist.allows("mntr"));
    assert!(cfg.four_letter_whitelist.allows("srvr"), "srvr is always allowed");
    assert!(!cfg.four_letter_whitelist.allows("dump"));
    assert!(!cfg.force_sync);
    assert_eq!(cfg.snap_count, 50000);
    assert_eq!(cfg.super_digest.as_deref(), Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
    assert_eq!(cfg.servers.len(), 4);
    assert_eq!(
        cfg.servers[1],
        ServerEntry {
            id: 2,
            host: "zk2.example.com".into(),
            peer_port: 2888,
            election_port: 3888,
            role: PeerRole::Participant,
            client_address: None,
            client_port: Some(2181),
        }
    );
    assert_eq!(cfg.servers[2].host, "fe80::1");
    assert_eq!(cfg.servers[2].client_address.as_deref(), Some("0.0.0.0"));
    assert_eq!(cfg.servers[2].client_port, Some(2182));
    assert_eq!(cfg.servers[3].role, PeerRole::Observer);
    assert!(cfg.is_distributed());
    assert_eq!(cfg.network_cores, vec![0, 1, 3]);
    assert_eq!((cfg.data_core, cfg.log_core), (Some(2), Some(2)));
    assert!(cfg.pin);
    assert_eq!(cfg.executors, Executors::PerRole);
    assert_eq!(cfg.quorum_protocol, QuorumProtocol::Apache);
    assert_eq!(cfg.log_batch_bytes_max, 262144);
    assert_eq!(cfg.log_batch_count_max, 256);
    assert_eq!(cfg.log_batch_delay_micros, 200);
    assert_eq!(cfg.queue_depth, 4096);
    assert_eq!(cfg.client_outbox_bytes_max, 8 << 20);
    assert_eq!(cfg.raw[0], ("tickTime".to_owned(), "2000".to_owned()));
    assert_eq!(cfg.coalesce_micros, 500);
    assert_eq!(cfg.raw.len(), 33);
    assert_eq!(cfg.admin_endpoint, None);
    assert_eq!(cfg.metrics_endpoint, Some(HttpEndpoint { host: "0.0.0.0".into(), port: 7000 }));
    // 3 participants + an observer: no warnings at all.
    assert_eq!(warnings, Vec::<String>::new());
}

#[test]
fn defaults_match_apache() {
    let cfg = parse(MINIMAL);
    assert_eq!(cfg.tick_time_ms, 3000);
    assert_eq!(cfg.client_port, None);
    assert_eq!(cfg.effective_client_port(), 2181);
    assert_eq!(cfg.max_client_cnxns, 60);
    assert_eq!((cfg.min_session_timeout_ms, cfg.max_session_timeout_ms), (6000, 60000));
    assert_eq!(cfg.jute_max_buffer, 0xfffff);
    assert_eq!(cfg.snap_count, 100_000);
    assert_eq!(cfg.autopurge_snap_retain_count, 3);
    assert_eq!(cfg.autopurge_purge_interval_hours, 0);
    assert!(cfg.force_sync && cfg.standalone_enabled && !cfg.extended_types_enabled && !cfg.pin);
    assert_eq!(cfg.global_outstanding_limit, 1000);
    assert_eq!(cfg.executors, Executors::Auto);
    assert_eq!(cfg.quorum_protocol, QuorumProtocol::Ringkeeper);
    assert_eq!(cfg.queue_depth, 1024);
    assert_eq!(cfg.client_outbox_bytes_max, 4 << 20);
    assert_eq!(cfg.four_letter_whitelist, Whitelist::default());
    assert!(cfg.four_letter_whitelist.allows("srvr"));
    assert!(!cfg.four_letter_whitelist.allows("ruok"));
    assert!(!cfg.is_distributed());
    assert_eq!(cfg.admin_endpoint, Some(HttpEndpoint { host: "0.0.0.0".into(), port: 8080 }));
    assert_eq!(cfg.metrics_endpoint, None);
    let admin = parse(&format!("{MINIMAL}zookeeper.admin.serverAddress=127.0.0.1\nadmin.serverPort=9090\n"));
    assert_eq!(admin.admin_endpoint, Some(HttpEndpoint { host: "127.0.0.1".into(), port: 9090 }));
}

#[test]
fn client_address_and_port_from_own_server_line() {
    let mut cfg = parse(
        "dataDir=/a\ninitLimit=5\nsyncLimit=2\nserver.1=h1:2888:3888;127.0.0.1:2182\nserver.2=h2:2888:3888;2183\n\
         server.3=h3:2888:3888\n",
    );
    let at = |cfg: &Config| (cfg.effective_client_address(), cfg.effective_client_port());
    assert_eq!(at(&cfg), ("0.0.0.0".to_owned(), 2181), "no myid yet");
    cfg.my_id = Some(1);
    assert_eq!(at(&cfg), ("127.0.0.1".to_owned(), 2182));
    cfg.my_id = Some(2);
    assert_eq!(at(&cfg), ("0.0.0.0".to_owned(), 2183));
    cfg.my_id = Some(3);
    assert_eq!(at(&cfg), ("0.0.0.0".to_owned(), 2181));
}

#[test]
fn embedded_default() {
    let cfg = Config::embedded_default();
    assert_eq!(cfg.tick_time_ms, 2000);
    assert_eq!(cfg.client_port, Some(2181));
    assert_eq!(cfg.client_port_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(cfg.data_dir, PathBuf::from("./ringkeeper-data"));
    assert_eq!((cfg.min_session_timeout_ms, cfg.max_session_timeout_ms), (4000, 40000));
    assert!(cfg.servers.is_empty());
}

#[test]
fn properties_syntax() {
    let text =
        "  dataDir   /a/b\\\n    /c\nkey\\:with\\=escapes = v\\tx\\u0041\nclientPort : 2181  \n\r\n#x=y\n";
    let (cfg, warnings) = Config::parse(text).unwrap();
    assert_eq!(cfg.data_dir, PathBuf::from("/a/b/c"));
    assert_eq!(cfg.client_port, Some(2181));
    assert_eq!(cfg.raw[1], ("key:with=escapes".to_owned(), "v\txA".to_owned()));
    assert_eq!(warnings, vec!["unknown key key:with=escapes (line 3); ignored".to_owned()]);
}

#[test]
fn duplicate_key_last_wins_with_warning() {
    let (cfg, warnings) = Config::parse("dataDir=/a\nclientPort=1\nclientPort=2\n").unwrap();
    assert_eq!(cfg.client_port, Some(2));
    assert_eq!(
        warnings,
        vec!["clientPort is set more than once (lines 2 and 3); the last value wins".to_owned()]
    );
    assert_eq!(cfg.raw.len(), 3);
}

#[test]
fn unknown_and_ignored_keys() {
    let text = "dataDir=/a\nfooBar=1\nzookeeper.something=2\ngroup.1=1:2:3\npreAllocSize=65536\nsnapshot.trust.empty=true\n";
    let (cfg, warnings) = Config::parse(text).unwrap();
    assert_eq!(
        warnings,
        vec![
            "unknown key fooBar (line 2); ignored".to_owned(),
            "zookeeper.something: a ZooKeeper setting ringkeeper does not act on; ignored".to_owned(),
            "group.1: hierarchical quorums are not supported; every participant has one vote (majority quorum)".to_owned(),
        ]
    );
    assert_eq!(cfg.ignored_keys, ["zookeeper.something", "group.1", "preAllocSize", "snapshot.trust.empty"]);
}

#[test]
fn tls_keys_in_both_spellings() {
    let cfg = parse(
        "dataDir=/a\nsecureClientPort=2281\nclient.portUnification=true\nssl.keyStore.location=/k.p12\n\
         zookeeper.ssl.keyStore.password=pw\nssl.trustStore.location=/t.pem\nssl.clientAuth=want\n\
         ssl.enabledProtocols=TLSv1.3, TLSv1.2\nssl.ciphersuites=TLS_AES_128_GCM_SHA256\n\
         authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n\
         zookeeper.authProvider.2=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n",
    );
    assert_eq!(cfg.secure_client_port, Some(2281));
    assert!(cfg.client_port_unification);
    assert_eq!(cfg.ssl.key_store.location.as_deref(), Some(Path::new("/k.p12")));
    assert_eq!(cfg.ssl.key_store.password.as_deref(), Some("pw"));
    assert_eq!(cfg.ssl.trust_store.location.as_deref(), Some(Path::new("/t.pem")));
    assert_eq!(cfg.ssl.client_auth, ClientAuth::Want);
    assert_eq!(cfg.ssl.enabled_protocols, Some(vec!["TLSv1.3".to_owned(), "TLSv1.2".to_owned()]));
    assert_eq!(cfg.ssl.cipher_suites, Some(vec!["TLS_AES_128_GCM_SHA256".to_owned()]));
    assert_eq!(cfg.auth_providers.len(), 2);
    assert_eq!(cfg.auth_providers[0], X509_AUTH_PROVIDER);
    assert!(Config::parse("dataDir=/a\nssl.clientAuth=maybe\n").is_err());
}

#[test]
fn quorum_tls_and_sasl_keys() {
    let cfg = parse(
        "dataDir=/a\nsslQuorum=true\nssl.quorum.keyStore.location=/m.p12\nzookeeper.ssl.quorum.keyStore.password=pw\n\
         ssl.quorum.trustStore.location=/ca.pem\nssl.quorum.hostnameVerification=false\nssl.quorum.protocol=TLSv1.2\n\
         sslQuorumReloadCertFiles=true\nzookeeper.client.certReload=true\nssl.keyStore.location=/client.p12\n\
         quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n\
         quorum.auth.server.saslLoginContext=Peers\n",
    );
    assert!(cfg.ssl_quorum && cfg.ssl_quorum_reload_cert_files && cfg.client_cert_reload);
    assert_eq!(cfg.quorum_ssl.key_store.location.as_deref(), Some(Path::new("/m.p12")));
    assert_eq!(cfg.quorum_ssl.key_store.password.as_deref(), Some("pw"));
    assert_eq!(cfg.quorum_ssl.trust_store.location.as_deref(), Some(Path::new("/ca.pem")));
    assert_eq!(cfg.quorum_ssl.protocol.as_deref(), Some("TLSv1.2"));
    assert!(!cfg.quorum_ssl.hostname_verification);
    // The client and quorum settings stay apart.
    assert_eq!(cfg.ssl.key_store.location.as_deref(), Some(Path::new("/client.p12")));
    assert!(cfg.ssl.hostname_verification && cfg.quorum_ssl.protocol != cfg.ssl.protocol);
    assert!(cfg.quorum_sasl_enabled && cfg.quorum_learner_require_sasl && cfg.quorum_server_require_sasl);
    assert_eq!(
        (cfg.quorum_server_login_context.as_str(), cfg.quorum_learner_login_context.as_str()),
        ("Peers", "QuorumLearner")
    );
    // As Apache: requiring SASL without enabling it is refused; neither goes with Apache's protocol.
    let err = Config::parse("dataDir=/a\nquorum.auth.serverRequireSasl=true\n").unwrap_err().to_string();
    assert!(err.contains("quorum.auth.enableSasl is disabled"), "{err}");
    for key in ["sslQuorum", "quorum.auth.enableSasl"] {
        let text = format!("dataDir=/a\nringkeeper.quorum.protocol=apache\n{key}=true\n");
        assert!(Config::parse(&text).unwrap_err().to_string().contains(key));
    }
}

#[test]
fn zookeeper_prefixed_passthrough_keys() {
    let cfg = parse("dataDir=/a\nzookeeper.snapCount=7\nzookeeper.jute.maxbuffer=0x200000\nzookeeper.4lw.commands.whitelist=*\nzookeeper.extendedTypesEnabled=true\n");
    assert_eq!(cfg.snap_count, 7);
    assert_eq!(cfg.jute_max_buffer, 0x200000);
    assert_eq!(cfg.four_letter_whitelist, Whitelist::All);
    assert!(cfg.extended_types_enabled);
    assert!(!cfg.read_only_mode_enabled);
    assert_eq!(parse("dataDir=/a\njute.maxbuffer=4194304\n").jute_max_buffer, 4194304);
}

#[test]
fn whitelist_unknown_word_warns() {
    let (cfg, warnings) = Config::parse("dataDir=/a\n4lw.commands.whitelist=ruok,, bogus ,stat\n").unwrap();
    assert!(cfg.four_letter_whitelist.allows("ruok") && cfg.four_letter_whitelist.allows("stat"));
    assert_eq!(
        warnings,
        vec!["4lw.commands.whitelist: \"bogus\" is not a four-letter word ringkeeper knows; ignored"
            .to_owned()]
    );
}

#[test]
fn client_port_zero_means_any() {
    assert_eq!(parse("dataDir=/a\nclientPort=0\n").client_port, Some(0));
}

/// Every `properties` block of README.md parses as written, without a single warning
/// (a snippet without `dataDir`, e.g. the metrics keys, is parsed after one).
#[test]
fn readme_configs_parse_without_warnings() {
    let readme = include_str!("../../../README.md");
    let blocks: Vec<String> = readme
        .split("```properties\n")
        .skip(1)
        .map(|rest| {
            rest.split("```").next().unwrap_or("").lines().map(|l| format!("{}\n", l.trim())).collect()
        })
        .collect();
    assert!(blocks.len() >= 3, "README.md has its standalone and ensemble zoo.cfg, and the metrics keys");
    for block in blocks {
        let whole = if block.contains("dataDir=") {
            block.clone()
        } else {
            format!("dataDir=/var/lib/ringkeeper\n{block}")
        };
        let (_, warnings) = Config::parse(&whole).unwrap_or_else(|e| panic!("{e} in README block:\n{block}"));
        assert_eq!(warnings, Vec::<String>::new(), "README block:\n{block}");
    }
}

#[test]
fn error_messages() {
    let cases: &[(&str, &str)] = &[
        ("clientPort=2181\n", "dataDir is not set"),
        ("dataDir=/a\nclientPort=abc\n", "clientPort: \"abc\" is not a port (expected an integer 1..=65535, or 0 for any free port)"),
        ("dataDir=/a\nclientPort=70000\n", "clientPort: \"70000\" is not a port (expected an integer 1..=65535, or 0 for any free port)"),
        ("dataDir=/a\ntickTime=0\n", "tickTime: \"0\" is out of range (expected a positive integer (milliseconds))"),
        ("dataDir=/a\ntickTime=fast\n", "tickTime: \"fast\" is not an integer (expected a positive integer (milliseconds))"),
        ("dataDir=/a\nminSessionTimeout=5000\nmaxSessionTimeout=4000\n",
         "minSessionTimeout must not be larger than maxSessionTimeout (minSessionTimeout=5000, maxSessionTimeout=4000)"),
        ("dataDir=/a\ntickTime=1000\nminSessionTimeout=30000\n",
         "minSessionTimeout must not be larger than maxSessionTimeout (minSessionTimeout=30000, maxSessionTimeout=20000)"),
        ("dataDir=/a\nmaxClientCnxns=-3\n", "maxClientCnxns: \"-3\" is out of range (expected an integer >= 0 (0 = unlimited))"),
        ("dataDir=/a\nstandaloneEnabled=maybe\n", "standaloneEnabled: \"maybe\" is not a boolean (expected true or false)"),
        ("dataDir=/a\nforceSync=sometimes\n", "forceSync: \"sometimes\" is not a switch (expected yes or no)"),
        ("dataDir=/a\nclientPortAddress=127.0.0.1\n", "clientPortAddress is set but clientPort is not set"),
        ("dataDir=/a\nelectionAlg=1\n", "electionAlg: \"1\" is not supported (only 3, fast leader election, exists)"),
        ("dataDir=/a\npeerType=voter\n", "peerType: \"voter\" is not a peer type (expected participant or observer)"),
        ("dataDir=/a\njute.maxbuffer=big\n",
         "jute.maxbuffer: \"big\" is not an integer (expected a positive integer number of bytes, decimal or 0x hex)"),
        ("dataDir=/a\nDigestAuthenticationProvider.superDigest=nocolon\n",
         "DigestAuthenticationProvider.superDigest: \"nocolon\" is not a digest (expected user:base64-sha1, e.g. super:D/InIHSb7yEEbrWz8b9l71RjZJU=)"),
        ("dataDir=/a\nringkeeper.network.cores=3-1\n", "ringkeeper.network.cores: \"3-1\" has a descending range 3-1 (expected core ids like 0,1 or 0-3)"),
        ("dataDir=/a\nringkeeper.network.cores=0,0\n", "ringkeeper.network.cores: \"0,0\" names core 0 twice (expected core ids like 0,1 or 0-3)"),
        ("dataDir=/a\nringkeeper.network.cores=x\n", "ringkeeper.network.cores: \"x\" is not a core id (expected a core id 0..=4095)"),
        ("dataDir=/a\nringkeeper.data.core=-1\n", "ringkeeper.data.core: \"-1\" is not a core id (expected a core id 0..=4095)"),
        ("dataDir=/a\nringkeeper.pin=1\n", "ringkeeper.pin: \"1\" is not a boolean (expected true or false)"),
        ("dataDir=/a\nringkeeper.executors=two\n", "ringkeeper.executors: \"two\" is not an executor layout (expected auto, one or per-role)"),
        ("dataDir=/a\nringkeeper.quorum.protocol=zab\n", "ringkeeper.quorum.protocol: \"zab\" is not a quorum protocol (expected ringkeeper or apache)"),
        ("dataDir=/a\nringkeeper.queue.depth=0\n", "ringkeeper.queue.depth: \"0\" is out of range (expected a positive integer (queue slots))"),
        ("dataDir=/a\nringkeeper.zab.heartbeatMs=50 # leader pings\n",
         "ringkeeper.zab.heartbeatMs: \"50 # leader pings\" is not an integer (expected a positive integer \
          (milliseconds)); a # after a value is part of the value in zoo.cfg, put comments on a line of their own"),
    ];
    for (text, expected) in cases {
        assert_eq!(&err(text), expected, "for config {text:?}");
    }
}

#[test]
fn server_line_errors() {
    let ens = "dataDir=/a\ninitLimit=5\nsyncLimit=2\n";
    let cases: &[(&str, &str)] = &[
        ("server.0=a:2888:3888\n", "server.0: \"0\" is out of range (expected a server id in 1..=255)"),
        ("server.256=a:2888:3888\n", "server.256: \"256\" is out of range (expected a server id in 1..=255)"),
        ("extendedTypesEnabled=true\nserver.255=a:2888:3888\n",
         "server.255: \"255\" is out of range (expected a server id in 1..=254 because extendedTypesEnabled=true)"),
        ("server.x=a:2888:3888\n", "server.x: \"x\" is not a server id (expected server.N with N in 1..=255)"),
        ("server.1=a:2888\n",
         "server.1: \"a:2888\" is not a server address (expected host:peerPort:electionPort[:participant|observer][;[clientAddress:]clientPort])"),
        ("server.1=a:2888:3888:voter\n", "server.1: \"a:2888:3888:voter\" has peer type \"voter\" (expected participant or observer)"),
        ("server.1=a:28x8:3888\n", "server.1: \"a:28x8:3888\" has peer port \"28x8\" which is not a port (expected an integer 1..=65535)"),
        ("server.1=a:2888:0\n", "server.1: \"a:2888:0\" has election port 0 which is not a port (expected an integer 1..=65535)"),
        ("server.1=a:2888:2888\n", "server.1: \"a:2888:2888\" uses port 2888 for both peer and election traffic (they must differ)"),
        ("server.1=a:2888:3888;b:c:2181\n",
         "server.1: \"a:2888:3888;b:c:2181\" has a bad client address \"b:c:2181\" (expected host:peerPort:electionPort[:participant|observer][;[clientAddress:]clientPort])"),
        ("server.1=a:2888:3888;2181;x\n",
         "server.1: \"a:2888:3888;2181;x\" has more than one ';' (expected host:peerPort:electionPort[:participant|observer][;[clientAddress:]clientPort])"),
        ("server.1=[::1:2888:3888\n",
         "server.1: \"[::1:2888:3888\" starts an IPv6 address with '[' but has no matching ']:' (expected host:peerPort:electionPort[:participant|observer][;[clientAddress:]clientPort])"),
        ("server.1=a|b:2888:3888\n", "server.1: not supported by ringkeeper: several addresses per server (a|b) are not supported yet; give one host"),
        ("server.1=a:2888:3888\nserver.01=b:2888:3888\n", "server id 1 is listed twice (server.1 and server.01)"),
        ("server.1=a:2888:3888\nserver.2=a:3888:4888\n",
         "server.2 peer address a:3888 is already used as the election address of server.1"),
        ("server.1=a:2888:3888:observer\n", "Observers w/o participants is an invalid configuration"),
        ("server.1=a:2888:3888\nserver.2=b:2888:3888:observer\n", "Observers w/o quorum is an invalid configuration"),
    ];
    for (lines, expected) in cases {
        let text = format!("{ens}{lines}");
        assert_eq!(&err(&text), expected, "for config {text:?}");
    }
    assert_eq!(
        err("dataDir=/a\nsyncLimit=2\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n"),
        "initLimit is not set (required with more than one server)"
    );
    assert_eq!(
        err("dataDir=/a\ninitLimit=2\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n"),
        "syncLimit is not set (required with more than one server)"
    );
    assert_eq!(
        err("dataDir=/a\nstandaloneEnabled=false\n"),
        "standaloneEnabled = false then number of participants should be >0"
    );
}

#[test]
fn single_server_line_runs_standalone_with_warning() {
    let (cfg, warnings) = Config::parse("dataDir=/a\nserver.1=a:2888:3888\n").unwrap();
    assert!(!cfg.is_distributed());
    assert_eq!(warnings.len(), 1);
    let (cfg, warnings) = Config::parse(
        "dataDir=/a\nstandaloneEnabled=false\ninitLimit=5\nsyncLimit=2\nserver.1=a:2888:3888\n",
    )
    .unwrap();
    assert!(cfg.is_distributed());
    assert_eq!(
        warnings,
        vec!["No server failure will be tolerated. You need at least 3 servers.".to_owned()]
    );
}

#[test]
fn snap_retain_count_clamped_like_apache() {
    let (cfg, warnings) = Config::parse("dataDir=/a\nautopurge.snapRetainCount=1\n").unwrap();
    assert_eq!(cfg.autopurge_snap_retain_count, 3);
    assert_eq!(
        warnings,
        vec!["autopurge.snapRetainCount: 1 is below the minimum; using 3 (as Apache does)".to_owned()]
    );
}

#[test]
fn log_segment_bytes_has_a_floor_and_a_4k_granule() {
    assert_eq!(parse(MINIMAL).log_segment_bytes, 64 << 20);
    assert_eq!(parse(&format!("{MINIMAL}ringkeeper.log.segmentBytes=65536\n")).log_segment_bytes, 65536);
    let e = err(&format!("{MINIMAL}ringkeeper.log.segmentBytes=4096\n"));
    assert!(e.starts_with("ringkeeper.log.segmentBytes: \"4096\" is out of range"), "{e}");
    let e = err(&format!("{MINIMAL}ringkeeper.log.segmentBytes=100000\n"));
    assert!(e.contains("is not a multiple of 4096"), "{e}");
}

#[test]
fn load_names_the_file_and_reads_myid() {
    let missing = Path::new("/nonexistent/ringkeeper/zoo.cfg");
    let e = Config::load(missing).unwrap_err().to_string();
    assert!(e.starts_with("cannot read /nonexistent/ringkeeper/zoo.cfg: "), "{e}");

    let dir = std::env::temp_dir().join(format!("rk-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg_path = dir.join("zoo.cfg");
    let body = format!(
        "dataDir={}\ninitLimit=5\nsyncLimit=2\nserver.1=a:2888:3888;2191\nserver.2=b:2888:3888\nserver.3=c:2888:3888\n",
        dir.display()
    );
    std::fs::write(&cfg_path, &body).unwrap();
    let e = Config::load(&cfg_path).unwrap_err().to_string();
    assert!(e.starts_with("myid file is missing"), "{e}");
    std::fs::write(dir.join("myid"), "4\n").unwrap();
    let e = Config::load(&cfg_path).unwrap_err().to_string();
    assert!(
        e.starts_with("myid 4 is not one of the configured servers (server.1, server.2, server.3)"),
        "{e}"
    );
    assert!(e.contains("My id 4 not in the peer list"), "{e}");
    std::fs::write(dir.join("myid"), "1\n").unwrap();
    let (cfg, _) = Config::load(&cfg_path).unwrap();
    assert_eq!(cfg.my_id, Some(1));
    assert_eq!(cfg.effective_client_port(), 2191);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn auto_executors_split_roles_only_when_pinned_on_a_larger_host() {
    assert_eq!(Executors::Auto.resolve(false, 2), Executors::One);
    assert_eq!(Executors::Auto.resolve(false, 16), Executors::One);
    assert_eq!(Executors::Auto.resolve(true, 2), Executors::One);
    assert_eq!(Executors::Auto.resolve(true, 4), Executors::PerRole);
    assert_eq!(Executors::PerRole.resolve(false, 2), Executors::PerRole);
    assert_eq!(Executors::One.resolve(true, 16), Executors::One);
}

/// What Apache 3.8 wrote for a 3-member ensemble with reconfigEnabled (seen on a real one:
/// comments and `server.N` lines gone, `clientPort` gone since the member's line names its
/// client port, `dynamicConfigFile` appended).
#[test]
fn the_static_file_is_rewritten_as_apache_rewrites_it() {
    let original = "# a comment\ntickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=/d1\nclientPort=22901\n\
                    reconfigEnabled=true\n4lw.commands.whitelist=*\nserver.1=127.0.0.1:2380:2390;22901\n\
                    server.2=127.0.0.1:2381:2391;22902\ndynamicConfigFile=/old\npeerType=participant\n\
                    clientPortAddress=0.0.0.0\ntickTime=300\n";
    assert_eq!(
        static_config_text(original, "/d1/zoo.cfg.dynamic.100000000", true),
        "tickTime=300\ninitLimit=10\nsyncLimit=5\ndataDir=/d1\nreconfigEnabled=true\n\
         4lw.commands.whitelist=*\ndynamicConfigFile=/d1/zoo.cfg.dynamic.100000000\n"
    );
    let kept = static_config_text(original, "/x", false);
    assert!(kept.contains("clientPort=22901\n") && kept.contains("clientPortAddress=0.0.0.0\n"), "{kept}");
    let (again, _) = Config::parse(&format!(
        "{kept}server.1=127.0.0.1:2380:2390;22901\nserver.2=127.0.0.1:2381:2391;22902\n"
    ))
    .unwrap();
    assert_eq!(again.tick_time_ms, 300);
}

#[test]
fn ocsp_is_warned_about_as_not_supported_for_clients_and_members() {
    let (_, warnings) = Config::parse("dataDir=/a\nssl.ocsp=true\nzookeeper.ssl.quorum.ocsp=true\n").unwrap();
    let ocsp: Vec<&String> = warnings.iter().filter(|w| w.contains("OCSP is not supported")).collect();
    assert_eq!(ocsp.len(), 2, "{warnings:?}");
    assert!(ocsp[0].contains("ssl.crl=true") && ocsp[1].contains("ssl.quorum.crl=true"), "{warnings:?}");
}

#[test]
fn coalesce_micros_is_off_unless_set_and_bounded() {
    assert_eq!(parse(MINIMAL).coalesce_micros, DEFAULT_COALESCE_MICROS);
    assert_eq!(
        parse(&format!("{MINIMAL}ringkeeper.coalesceMicros=10000\n")).coalesce_micros,
        COALESCE_MICROS_MAX
    );
    let too_long = err(&format!("{MINIMAL}ringkeeper.coalesceMicros=10001\n"));
    assert!(too_long.contains("ringkeeper.coalesceMicros") && too_long.contains("10001"), "{too_long}");
}
