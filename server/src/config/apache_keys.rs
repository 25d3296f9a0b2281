//! The keys of `zoo.cfg` that are not in [`super::Config::parse`]'s table: Apache's
//! `zookeeper.`-prefixed system-property spellings ([`canonical_key`]), the keys Apache knows
//! and ringkeeper accepts without acting on them, those whose omission needs a warning, and
//! unknown keys ([`classify_other`]).

/// Strip the `zookeeper.` prefix Apache adds when it turns a key into a system property.
pub(super) fn canonical_key(key: &str) -> &str {
    match key.strip_prefix("zookeeper.") {
        Some(rest)
            if PASSTHROUGH_KEYS.contains(&rest)
                || rest.starts_with("ssl.")
                || rest.starts_with("authProvider.") =>
        {
            rest
        }
        _ => key,
    }
}

/// Keys Apache reads as `zookeeper.<key>` system properties (so both spellings work).
pub(super) const PASSTHROUGH_KEYS: &[&str] = &[
    "4lw.commands.whitelist",
    "extendedTypesEnabled",
    "enforceQuota",
    "jute.maxbuffer",
    "DigestAuthenticationProvider.superDigest",
    "snapCount",
    "znode.container.checkIntervalMs",
    "forceSync",
    "globalOutstandingLimit",
    "preAllocSize",
    "skipACL",
    "maxCnxns",
    "serverCnxnFactory",
    "traceFile",
    "fsync.warningthresholdms",
    "cnxTimeout",
    "snapSizeLimitInKb",
    "commitLogCount",
    "txnLogSizeLimitInKb",
    "digest.enabled",
    "admin.enableServer",
    "admin.serverPort",
    "admin.serverAddress",
    "admin.idleTimeout",
    "admin.commandURL",
    "watchManagerName",
    "maxResponseCacheSize",
    "maxGetChildrenResponseCacheSize",
    "leaderServes",
    "electionPortBindRetry",
    "tcpKeepAlive",
    "clientTcpKeepAlive",
    "snapshot.trust.empty",
    "audit.enable",
    "request.throttle.maxRequests",
    "client.portUnification",
    "client.certReload",
    "X509AuthenticationProvider.superUser",
    "nio.sessionlessCnxnTimeout",
    "enforce.auth.enabled",
    "enforce.auth.schemes",
    "sessionRequireClientSASLAuth",
    "allowSaslFailedClients",
    "kerberos.removeHostFromPrincipal",
    "kerberos.removeRealmFromPrincipal",
    "superUser",
];

pub(super) enum Other {
    Ignored,
    IgnoredWithWarning(String),
    Unknown,
}

/// Keys Apache parses itself that ringkeeper accepts but does not act on.
pub(super) const IGNORED_KEYS: &[&str] = &[
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "observerMasterPort",
    "clientPortListenBacklog",
    "connectToLearnerMasterLimit",
    "syncEnabled",
    "quorum.cnxn.threads.size",
    "jvm.pause.info-threshold.ms",
    "jvm.pause.warn-threshold.ms",
    "jvm.pause.sleep.time.ms",
    "jvm.pause.monitor",
    "oraclePath",
    "quorum.auth.kerberos.servicePrincipal",
];

pub(super) fn classify_other(key: &str, short: &str, value: &str) -> Other {
    let on = value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("yes");
    if PASSTHROUGH_KEYS.contains(&short) || IGNORED_KEYS.contains(&short) {
        return Other::Ignored;
    }
    match short {
        "portUnification" => {
            if on {
                Other::IgnoredWithWarning(format!(
                    "{key}={value}: not supported yet; peers connect without it"
                ))
            } else {
                Other::Ignored
            }
        }
        _ if key.starts_with("group.") || key.starts_with("weight.") => Other::IgnoredWithWarning(format!(
            "{key}: hierarchical quorums are not supported; every participant has one vote (majority quorum)"
        )),
        _ if key.starts_with("metricsProvider.")
            || key.starts_with("multiAddress.")
            || key.starts_with("admin.")
            || key.starts_with("ssl.")
            || key.starts_with("authProvider.") =>
        {
            Other::Ignored
        }
        _ if key.starts_with("zookeeper.") => Other::IgnoredWithWarning(format!(
            "{key}: a ZooKeeper setting ringkeeper does not act on; ignored"
        )),
        _ => Other::Unknown,
    }
}

// ---------------------------------------------------------------------------------------
// Value parsers
