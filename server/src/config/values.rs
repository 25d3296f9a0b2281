//! Value parsers of `zoo.cfg`: integers, ports, booleans, lists, core lists, executor layouts
//! and log write modes. Each rejection is a [`super::ConfigError`] naming the key, the value
//! and what would have been accepted.

use super::*;

pub(super) fn parse_int(
    key: &str,
    value: &str,
    min: i64,
    max: i64,
    expected: &str,
) -> Result<i64, ConfigError> {
    let v: i64 = value
        .strip_prefix('+')
        .unwrap_or(value)
        .parse()
        .map_err(|_| bad(key, value, format!("is not an integer (expected {expected})")))?;
    if v < min || v > max {
        return Err(bad(key, value, format!("is out of range (expected {expected})")));
    }
    Ok(v)
}

/// Java's `Integer.decode` subset Apache uses for `jute.maxbuffer`: decimal or `0x` hex.
pub(super) fn parse_java_int_decode(key: &str, value: &str) -> Result<u32, ConfigError> {
    const EXPECTED: &str = "(expected a positive integer number of bytes, decimal or 0x hex)";
    let parsed = if let Some(hex) = value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()
    } else {
        value.parse::<i64>().ok()
    };
    match parsed {
        Some(v) if v > 0 && v <= i32::MAX as i64 => Ok(v as u32),
        Some(_) => Err(bad(key, value, format!("is out of range {EXPECTED}"))),
        None => Err(bad(key, value, format!("is not an integer {EXPECTED}"))),
    }
}

pub(super) fn parse_port(key: &str, value: &str, zero_ok: bool) -> Result<u16, ConfigError> {
    let expected = if zero_ok {
        "expected an integer 1..=65535, or 0 for any free port"
    } else {
        "expected an integer 1..=65535"
    };
    let v: i64 = value.parse().map_err(|_| bad(key, value, format!("is not a port ({expected})")))?;
    let min = if zero_ok { 0 } else { 1 };
    if v < min || v > 65535 {
        return Err(bad(key, value, format!("is not a port ({expected})")));
    }
    Ok(v as u16)
}

pub(super) fn parse_client_auth(key: &str, value: &str) -> Result<ClientAuth, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "need" => Ok(ClientAuth::Need),
        "want" => Ok(ClientAuth::Want),
        "none" => Ok(ClientAuth::None),
        _ => Err(bad(key, value, "is not a client auth mode (expected need, want or none)")),
    }
}

/// A comma-separated list (`ssl.enabledProtocols`, `ssl.ciphersuites`): items trimmed, empty ones dropped.
pub(super) fn parse_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

pub(super) fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(bad(key, value, "is not a boolean (expected true or false)"))
    }
}

pub(super) fn parse_executors(key: &str, value: &str) -> Result<Executors, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "auto" => Ok(Executors::Auto),
        "one" => Ok(Executors::One),
        "per-role" => Ok(Executors::PerRole),
        _ => Err(bad(key, value, "is not an executor layout (expected auto, one or per-role)")),
    }
}

pub(super) fn parse_quorum_protocol(key: &str, value: &str) -> Result<QuorumProtocol, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "ringkeeper" => Ok(QuorumProtocol::Ringkeeper),
        "apache" => Ok(QuorumProtocol::Apache),
        _ => Err(bad(key, value, "is not a quorum protocol (expected ringkeeper or apache)")),
    }
}

impl LogWriteMode {
    const ALL: [LogWriteMode; 3] = [LogWriteMode::Dsync, LogWriteMode::Fdatasync, LogWriteMode::Direct];

    /// The `ringkeeper.log.writeMode` value naming this mode.
    pub fn name(self) -> &'static str {
        match self {
            LogWriteMode::Dsync => "dsync",
            LogWriteMode::Fdatasync => "fdatasync",
            LogWriteMode::Direct => "direct",
        }
    }
}

pub(super) fn parse_log_write_mode(key: &str, value: &str) -> Result<LogWriteMode, ConfigError> {
    let value_lower = value.to_ascii_lowercase();
    LogWriteMode::ALL
        .into_iter()
        .find(|mode| mode.name() == value_lower)
        .ok_or_else(|| bad(key, value, "is not a log write mode (expected dsync, fdatasync or direct)"))
}

pub(super) fn parse_role(key: &str, value: &str) -> Result<PeerRole, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "participant" => Ok(PeerRole::Participant),
        "observer" => Ok(PeerRole::Observer),
        _ => Err(bad(key, value, "is not a peer type (expected participant or observer)")),
    }
}

pub(super) const MAX_CORE_ID: usize = 4095;

pub(super) fn parse_core(key: &str, value: &str) -> Result<usize, ConfigError> {
    let expected = format!("expected a core id 0..={MAX_CORE_ID}");
    let v: usize = value.parse().map_err(|_| bad(key, value, format!("is not a core id ({expected})")))?;
    if v > MAX_CORE_ID {
        return Err(bad(key, value, format!("is not a core id ({expected})")));
    }
    Ok(v)
}

/// `0,1`, `0-3`, `0-1,4`: ascending order of first appearance is kept; duplicates rejected.
/// A positive duration in milliseconds (the `ringkeeper.zab.*` timers).
pub(super) fn parse_millis(key: &str, value: &str) -> Result<u32, ConfigError> {
    Ok(parse_int(key, value, 1, 3_600_000, "a positive integer (milliseconds)")? as u32)
}

pub(super) fn parse_core_list(key: &str, value: &str) -> Result<Vec<usize>, ConfigError> {
    const EXPECTED: &str = "expected core ids like 0,1 or 0-3";
    let mut cores = Vec::new();
    let mut seen = BTreeSet::new();
    for part in value.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(bad(key, value, format!("has an empty entry ({EXPECTED})")));
        }
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (parse_core(key, a.trim())?, parse_core(key, b.trim())?),
            None => {
                let c = parse_core(key, part)?;
                (c, c)
            }
        };
        if lo > hi {
            return Err(bad(key, value, format!("has a descending range {part} ({EXPECTED})")));
        }
        for c in lo..=hi {
            if !seen.insert(c) {
                return Err(bad(key, value, format!("names core {c} twice ({EXPECTED})")));
            }
            cores.push(c);
        }
    }
    Ok(cores)
}
