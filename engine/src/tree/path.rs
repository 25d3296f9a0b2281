//! Znode path rules: validation exactly as Apache's `PathUtils.validatePath`, and the
//! parent/child split used by every mutation.

/// Why a path is not a valid znode path (answered as BadArguments).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path {path:?}: {reason}")]
pub struct InvalidPath {
    pub path: String,
    pub reason: &'static str,
}

/// Checks a client-supplied path.
pub fn validate(path: &str) -> Result<(), InvalidPath> {
    let fail = |reason| Err(InvalidPath { path: path.to_string(), reason });
    if path.is_empty() {
        return fail("path length must be > 0");
    }
    if !path.starts_with('/') {
        return fail("path must start with / character");
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return fail("path must not end with / character");
    }
    let chars: Vec<char> = path.chars().collect();
    for i in 1..chars.len() {
        let c = chars[i];
        let last = chars[i - 1];
        let next_is_boundary = i + 1 == chars.len() || chars[i + 1] == '/';
        if c == '\0' {
            return fail("null character not allowed");
        } else if c == '/' && last == '/' {
            return fail("empty node name specified");
        } else if c == '.' && last == '.' {
            if chars[i - 2] == '/' && next_is_boundary {
                return fail("relative paths not allowed");
            }
        } else if c == '.' {
            if last == '/' && next_is_boundary {
                return fail("relative paths not allowed");
            }
        } else if ('\u{1}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
        {
            return fail("invalid character");
        }
    }
    Ok(())
}

/// Splits a valid non-root path into (parent, child name); the root's parent is itself.
pub fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

/// Parent path of a valid non-root path.
pub fn parent(path: &str) -> &str {
    split(path).0
}

/// `parent` + "/" + `child`.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Whether `path` is `base` or below it.
pub fn is_within(path: &str, base: &str) -> bool {
    base == "/" || path == base || (path.starts_with(base) && path.as_bytes().get(base.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_matches_apache_rules() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/.a", "/a/..b", "/zookeeper/x"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "/a/", "//a", "/a//b", "/.", "/a/.", "/..", "/a/../b", "/a\0b", "/a\u{1}"] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn split_and_join() {
        assert_eq!(split("/a"), ("/", "a"));
        assert_eq!(split("/a/b/c"), ("/a/b", "c"));
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert!(is_within("/a/b", "/a") && !is_within("/ab", "/a") && is_within("/x", "/"));
    }
}
