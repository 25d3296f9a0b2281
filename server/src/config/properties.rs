//! The `java.util.Properties` syntax of `zoo.cfg`: `key=value`, `key: value` and
//! `key value` lines, `#`/`!` comments, backslash escapes and line continuations; keys and
//! values trimmed as `QuorumPeerConfig` does.

/// One `key`/`value` of the file.
pub(super) struct Entry {
    pub(super) key: String,
    pub(super) value: String,
    /// 1-based line where the logical line starts.
    pub(super) line: usize,
}

/// Split text into `key`/`value` entries following `java.util.Properties.load` rules, then trim
/// both (as `QuorumPeerConfig` does).
pub(super) fn parse_properties(text: &str) -> Vec<Entry> {
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start_line = i + 1;
        let first = lines[i].trim_start_matches([' ', '\t', '\x0c']);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines: an odd number of trailing backslashes continues the line.
        let mut logical = String::from(first);
        while ends_with_odd_backslashes(&logical) && i < lines.len() {
            logical.pop();
            logical.push_str(lines[i].trim_start_matches([' ', '\t', '\x0c']));
            i += 1;
        }
        if ends_with_odd_backslashes(&logical) {
            logical.pop();
        }
        let (raw_key, raw_value) = split_key_value(&logical);
        out.push(Entry {
            key: unescape(raw_key).trim().to_owned(),
            value: unescape(raw_value).trim().to_owned(),
            line: start_line,
        });
    }
    out
}

pub(super) fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// The key ends at the first unescaped `=`, `:` or whitespace; then whitespace and at most
/// one `=`/`:` separate it from the value.
pub(super) fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut k = 0;
    let mut escaped = false;
    while k < bytes.len() {
        let c = bytes[k];
        if escaped {
            escaped = false;
        } else if c == b'\\' {
            escaped = true;
        } else if c == b'=' || c == b':' || c == b' ' || c == b'\t' || c == b'\x0c' {
            break;
        }
        k += 1;
    }
    let key = &line[..k];
    let mut v = k;
    while v < bytes.len() && matches!(bytes[v], b' ' | b'\t' | b'\x0c') {
        v += 1;
    }
    if v < bytes.len() && (bytes[v] == b'=' || bytes[v] == b':') {
        v += 1;
        while v < bytes.len() && matches!(bytes[v], b' ' | b'\t' | b'\x0c') {
            v += 1;
        }
    }
    (key, &line[v..])
}

pub(super) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().filter(|_| hex.len() == 4).and_then(char::from_u32) {
                    Some(ch) => {
                        out.push(ch);
                        for _ in 0..4 {
                            chars.next();
                        }
                    }
                    None => out.push('u'),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The static `zoo.cfg` text Apache 3.8 writes once a configuration is versioned
/// (`QuorumPeerConfig.editStaticConfig`): every `key=value` of `text` (last value of a
/// repeated key) except the keys starting `server.`, `group`, `weight`, `dynamicConfigFile`,
/// `peerType` and, with `erase_client_port` (this member's `server.N` line names its client
/// address), `clientPort`; then `dynamicConfigFile=<dynamic_file>`. Comments and blank lines
/// go, as Apache's; keys keep the file's order (Apache's is a hash table's).
pub fn static_config_text(text: &str, dynamic_file: &str, erase_client_port: bool) -> String {
    let dropped = ["server.", "group", "weight", "dynamicConfigFile", "peerType"];
    let mut kept: Vec<(String, String)> = Vec::new();
    for e in parse_properties(text) {
        if dropped.iter().any(|p| e.key.starts_with(p))
            || (erase_client_port && e.key.starts_with("clientPort"))
        {
            continue;
        }
        match kept.iter_mut().find(|(k, _)| *k == e.key) {
            Some((_, value)) => *value = e.value,
            None => kept.push((e.key, e.value)),
        }
    }
    let mut out: String = kept.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    out.push_str(&format!("dynamicConfigFile={dynamic_file}\n"));
    out
}
