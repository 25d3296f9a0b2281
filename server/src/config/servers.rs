//! The `server.N` grammar: `server.N=host:peerPort:electionPort[:participant|observer][;[clientHost:]clientPort]`,
//! with IPv6 literals in brackets, checked for unique ids and addresses.

use super::*;

pub(super) const SERVER_FORMAT: &str =
    "expected host:peerPort:electionPort[:participant|observer][;[clientAddress:]clientPort]";

/// Split `host:rest` where host may be a bracketed IPv6 literal; returns (host, rest parts).
pub(super) fn split_host(key: &str, whole: &str, s: &str) -> Result<(String, Vec<String>), ConfigError> {
    if let Some(inner) = s.strip_prefix('[') {
        let Some(end) = inner.find("]:") else {
            return Err(bad(
                key,
                whole,
                format!("starts an IPv6 address with '[' but has no matching ']:' ({SERVER_FORMAT})"),
            ));
        };
        let host = inner[..end].to_owned();
        let rest = inner[end + 2..].split(':').map(str::to_owned).collect();
        Ok((host, rest))
    } else {
        let mut parts = s.split(':');
        let host = parts.next().unwrap_or("").to_owned();
        Ok((host, parts.map(str::to_owned).collect()))
    }
}

pub(super) fn parse_server(key: &str, value: &str, extended_types: bool) -> Result<ServerEntry, ConfigError> {
    let max_id: u64 = if extended_types { 254 } else { 255 };
    let id_text = &key["server.".len()..];
    let id: u64 = id_text.parse().map_err(|_| {
        bad(key, id_text, format!("is not a server id (expected server.N with N in 1..={max_id})"))
    })?;
    if id == 0 || id > max_id {
        let why = if extended_types { " because extendedTypesEnabled=true" } else { "" };
        return Err(bad(
            key,
            id_text,
            format!("is out of range (expected a server id in 1..={max_id}{why})"),
        ));
    }
    if value.contains('|') {
        return Err(ConfigError::Unsupported {
            key: key.to_owned(),
            reason: "several addresses per server (a|b) are not supported yet; give one host".into(),
        });
    }
    let (server_part, client_part) = match value.split(';').collect::<Vec<_>>().as_slice() {
        [s] => (*s, None),
        [s, c] => (*s, Some(*c)),
        _ => return Err(bad(key, value, format!("has more than one ';' ({SERVER_FORMAT})"))),
    };
    let (host, rest) = split_host(key, value, server_part.trim())?;
    if host.is_empty() || !(2..=3).contains(&rest.len()) {
        return Err(bad(key, value, format!("is not a server address ({SERVER_FORMAT})")));
    }
    let port_of = |what: &str, p: &str| -> Result<u16, ConfigError> {
        let v: i64 = p.trim().parse().map_err(|_| {
            bad(key, value, format!("has {what} \"{p}\" which is not a port (expected an integer 1..=65535)"))
        })?;
        if !(1..=65535).contains(&v) {
            return Err(bad(
                key,
                value,
                format!("has {what} {v} which is not a port (expected an integer 1..=65535)"),
            ));
        }
        Ok(v as u16)
    };
    let peer_port = port_of("peer port", &rest[0])?;
    let election_port = port_of("election port", &rest[1])?;
    if peer_port == election_port {
        return Err(bad(
            key,
            value,
            format!("uses port {peer_port} for both peer and election traffic (they must differ)"),
        ));
    }
    let role = match rest.get(2) {
        None => PeerRole::Participant,
        Some(r) => match r.trim().to_ascii_lowercase().as_str() {
            "participant" => PeerRole::Participant,
            "observer" => PeerRole::Observer,
            _ => {
                return Err(bad(
                    key,
                    value,
                    format!("has peer type \"{r}\" (expected participant or observer)"),
                ))
            }
        },
    };
    let (client_address, client_port) = match client_part.map(str::trim) {
        None => (None, None),
        Some("") => {
            return Err(bad(key, value, format!("has an empty client part after ';' ({SERVER_FORMAT})")))
        }
        Some(c) => {
            if c.starts_with('[') || c.contains(':') {
                let (h, rest) = split_host(key, value, c)?;
                if h.is_empty() || rest.len() != 1 {
                    return Err(bad(
                        key,
                        value,
                        format!("has a bad client address \"{c}\" ({SERVER_FORMAT})"),
                    ));
                }
                (Some(h), Some(port_of("client port", &rest[0])?))
            } else {
                (None, Some(port_of("client port", c)?))
            }
        }
    };
    Ok(ServerEntry { id, host, peer_port, election_port, role, client_address, client_port })
}

pub(super) fn parse_servers(
    lines: &[(String, String)],
    extended_types: bool,
) -> Result<Vec<ServerEntry>, ConfigError> {
    let mut servers: Vec<ServerEntry> = Vec::with_capacity(lines.len());
    for (key, value) in lines {
        let entry = parse_server(key, value, extended_types)?;
        if let Some(other) = servers.iter().find(|s| s.id == entry.id) {
            return Err(ConfigError::Inconsistent(format!(
                "server id {} is listed twice ({} and {})",
                entry.id,
                describe(other),
                key
            )));
        }
        for other in &servers {
            for (a, what_a) in [(entry.peer_port, "peer"), (entry.election_port, "election")] {
                for (b, what_b) in [(other.peer_port, "peer"), (other.election_port, "election")] {
                    if a == b && other.host.eq_ignore_ascii_case(&entry.host) {
                        return Err(ConfigError::Inconsistent(format!(
                            "{key} {what_a} address {}:{a} is already used as the {what_b} address of server.{}",
                            entry.host, other.id
                        )));
                    }
                }
            }
        }
        servers.push(entry);
    }
    servers.sort_by_key(|s| s.id);
    Ok(servers)
}

pub(super) fn describe(s: &ServerEntry) -> String {
    format!("server.{}", s.id)
}

/// The `server.N` lines of a dynamic config file, and its version: the `version=<hex>` line,
/// else the hex suffix of the file name (`zoo.cfg.dynamic.100000000`), else 0. Any other
/// key is an error (Apache accepts only these there).
pub(super) fn dynamic_config_lines(path: &Path, text: &str) -> Result<(String, i64), ConfigError> {
    let file = path.display().to_string();
    let mut version = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit_once('.'))
        .and_then(|(_, hex)| i64::from_str_radix(hex, 16).ok())
        .unwrap_or(0);
    let mut lines = String::new();
    for e in parse_properties(text) {
        if e.key == "version" {
            version = i64::from_str_radix(&e.value, 16)
                .map_err(|_| bad(&format!("{file}: version"), &e.value, "is not a hex version"))?;
        } else if e.key.starts_with("server.") {
            lines.push_str(&format!("{}={}\n", e.key, e.value));
        } else {
            return Err(bad(
                &format!("{file}: {}", e.key),
                &e.value,
                "does not belong in a dynamic config file (only server.N and version lines do)",
            ));
        }
    }
    Ok((lines, version))
}
