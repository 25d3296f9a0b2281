//! The ZooKeeper connect string: `host:port[,host:port...][/chroot]`.
//!
//! Sessions are spread over the hosts round-robin; a chroot prefixes every path the
//! benchmark sends (as the Java client does on its side).

use crate::BenchError;

/// A parsed connect string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    pub hosts: Vec<String>,
    /// Empty, or `/something` without a trailing slash.
    pub chroot: String,
}

impl ConnectString {
    pub fn parse(text: &str) -> Result<ConnectString, BenchError> {
        let (list, chroot) = match text.find('/') {
            Some(at) => (&text[..at], text[at..].trim_end_matches('/').to_string()),
            None => (text, String::new()),
        };
        let hosts: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| if h.contains(':') { h.to_string() } else { format!("{h}:2181") })
            .collect();
        if hosts.is_empty() {
            return Err(BenchError::Config(format!("connect string {text:?} names no host")));
        }
        Ok(ConnectString { hosts, chroot })
    }

    /// The host session number `index` connects to.
    pub fn host_for(&self, index: usize) -> &str {
        &self.hosts[index % self.hosts.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_default_port_and_chroot() {
        let cs = ConnectString::parse("a:1,b/app/").unwrap();
        assert_eq!(cs.hosts, vec!["a:1".to_string(), "b:2181".to_string()]);
        assert_eq!(cs.chroot, "/app");
        assert_eq!(cs.host_for(3), "b:2181");
        assert!(ConnectString::parse(",").is_err());
    }
}
