//! ACL checks and the authentication schemes behind them (`world`, `auth`, `digest`, `ip`,
//! `super`), as Apache ZooKeeper 3.8's `ZooKeeperServer.checkACL`,
//! `PrepRequestProcessor.fixupACL` and the digest/ip authentication providers decide them.
//!
//! Owns pure logic only: no session state, no ACL interning (the tree interns ACL lists).
//! In: ACL lists from requests or the tree, the ids a session holds, auth packets.
//! Out: yes/no permission answers, validated ACL lists, ids to add to a session.
//! Invariant: every ACL list [`fixup_acl`] returns is non-empty and holds only ids that
//! [`check_perm`] can match (`world:anyone`, well-formed `digest` and `ip` ids); `auth`
//! entries never survive it.

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use thiserror::Error;

use crate::proto::{perms, Acl, Id};

/// The scheme of `world:anyone`.
pub const SCHEME_WORLD: &str = "world";
/// The only id of the `world` scheme.
pub const ANYONE: &str = "anyone";
/// Placeholder scheme in create/setACL requests: "every authenticated id of this session".
pub const SCHEME_AUTH: &str = "auth";
/// `user:base64(sha1(user:password))` ids.
pub const SCHEME_DIGEST: &str = "digest";
/// Client address ids; ACL entries may carry a `/bits` prefix length.
pub const SCHEME_IP: &str = "ip";
/// Held by sessions that authenticated with the configured super digest: passes every check.
pub const SCHEME_SUPER: &str = "super";
/// A TLS client certificate's subject DN (RFC 2253), when the X509 provider is on.
pub const SCHEME_X509: &str = "x509";

/// The authentication providers a server has on beyond the built-in `ip` and `digest`
/// (Apache's `authProvider.N` keys): their schemes are valid in ACLs, and their ids count as
/// authenticated for `auth` entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Providers {
    /// `org.apache.zookeeper.server.auth.X509AuthenticationProvider`.
    pub x509: bool,
    /// `org.apache.zookeeper.server.auth.SASLAuthenticationProvider` (`sasl` ids).
    pub sasl: bool,
}

/// An `auth` packet was refused (`AUTHFAILED`, -115).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("authentication failed")]
pub struct AuthFailed;

/// A create/setACL request carried an ACL list the server refuses (`INVALIDACL`, -114).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("invalid ACL")]
pub struct InvalidAcl;

/// `world:anyone`.
pub fn anyone_id() -> Id {
    Id { scheme: SCHEME_WORLD.to_owned(), id: ANYONE.to_owned() }
}

/// `ZooDefs.Ids.OPEN_ACL_UNSAFE`: world:anyone may do everything.
pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl { perms: perms::ALL, id: anyone_id() }]
}

/// `ZooDefs.Ids.READ_ACL_UNSAFE`: world:anyone may read.
pub fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl { perms: perms::READ, id: anyone_id() }]
}

/// `ZooDefs.Ids.CREATOR_ALL_ACL`: everything for the creator's authenticated ids (`auth:`).
pub fn creator_all_acl() -> Vec<Acl> {
    vec![Acl { perms: perms::ALL, id: Id { scheme: SCHEME_AUTH.to_owned(), id: String::new() } }]
}

/// The user part of a digest id or credential: the text before the first `:` (Apache's
/// `DigestAuthenticationProvider.getUserName`).
pub fn digest_user(id: &str) -> &str {
    id.split(':').next().unwrap_or("")
}

/// `DigestAuthenticationProvider.generateDigest`: `"user:password"` ->
/// `"user:" + base64(sha1("user:password"))`. The user is the text before the first `:`
/// (the whole input when there is none); the hash covers the whole input.
pub fn digest_of(user_colon_password: &str) -> String {
    let user = digest_user(user_colon_password);
    let hash = Sha1::digest(user_colon_password.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(hash);
    let mut out = String::with_capacity(user.len() + 1 + b64.len());
    out.push_str(user);
    out.push(':');
    out.push_str(&b64);
    out
}

/// Outcome of an `auth` packet (`addAuthInfo`): the ids to add to the session.
///
/// - `digest`: the bytes are `user:password` (decoded as UTF-8, invalid sequences replaced);
///   yields `digest:<digest_of(..)>`, preceded by `super:` when that digest equals the
///   configured `super_digest` (`super:<base64>`, as `zookeeper.DigestAuthenticationProvider.superDigest`).
/// - `ip`: the bytes are ignored; yields `ip:<client_ip>` (already held from connect).
/// - anything else (`world`, unknown schemes): no provider, [`AuthFailed`].
///
/// The session should skip ids it already holds (Apache's `addAuthInfo` does).
pub fn authenticate(
    scheme: &str,
    auth: Option<&[u8]>,
    client_ip: &str,
    super_digest: Option<&str>,
) -> Result<Vec<Id>, AuthFailed> {
    match scheme {
        SCHEME_DIGEST => {
            // Null auth data fails (Apache's digest provider throws on it: AUTHFAILED).
            let auth = auth.ok_or(AuthFailed)?;
            let digest = digest_of(&String::from_utf8_lossy(auth));
            let mut ids = Vec::with_capacity(2);
            if super_digest == Some(digest.as_str()) {
                ids.push(Id { scheme: SCHEME_SUPER.to_owned(), id: String::new() });
            }
            ids.push(Id { scheme: SCHEME_DIGEST.to_owned(), id: digest });
            Ok(ids)
        }
        SCHEME_IP => Ok(connection_ids(client_ip)),
        _ => Err(AuthFailed),
    }
}

/// Ids a fresh connection from `client_ip` starts with: `ip:<client_ip>`.
pub fn connection_ids(client_ip: &str) -> Vec<Id> {
    vec![Id { scheme: SCHEME_IP.to_owned(), id: client_ip.to_owned() }]
}

/// Does any entry of `acl` grant `perm` (one of `perms::READ..=ADMIN`) to a session holding
/// `ids`? An empty list grants everything, a `super` id passes everything, `world:anyone`
/// matches everybody, `ip` entries match by address prefix, other schemes by exact equality
/// with a session id of the same scheme.
pub fn check_perm(acl: &[Acl], perm: i32, ids: &[Id]) -> bool {
    if acl.is_empty() || ids.iter().any(|i| i.scheme == SCHEME_SUPER) {
        return true;
    }
    acl.iter().filter(|a| a.perms & perm != 0).any(|a| match a.id.scheme.as_str() {
        // No provider for `world`: only `anyone` means anything.
        SCHEME_WORLD => a.id.id == ANYONE,
        SCHEME_IP => ids.iter().any(|i| i.scheme == SCHEME_IP && ip_matches(&i.id, &a.id.id)),
        scheme => ids.iter().any(|i| i.scheme == scheme && i.id == a.id.id),
    })
}

/// `PrepRequestProcessor.fixupACL`: validate the ACL list of a create/setACL request and
/// expand `auth` entries into the session's authenticated ids (only `digest` ids: `ip` ids
/// are not "authenticated" and `super` has no provider).
///
/// Exact duplicates are dropped first (order kept). [`InvalidAcl`] for: an empty list; a
/// `world` id other than `anyone`; an `auth` entry when the session has no authenticated id;
/// a malformed `digest` id (it must split on `:` into exactly two parts, trailing empty parts
/// ignored, as Java's `String.split`); a malformed `ip` id; an `x509` id that is not a
/// distinguished name, or any `x509` id when `providers` does not have it on; any other
/// scheme. Permission bits are not validated (Apache does not either).
pub fn fixup_acl(acl: &[Acl], session_ids: &[Id], providers: Providers) -> Result<Vec<Acl>, InvalidAcl> {
    let mut uniq: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !uniq.contains(&a) {
            uniq.push(a);
        }
    }
    if uniq.is_empty() {
        return Err(InvalidAcl);
    }
    let mut out = Vec::with_capacity(uniq.len());
    for a in uniq {
        match a.id.scheme.as_str() {
            SCHEME_WORLD if a.id.id == ANYONE => out.push(a.clone()),
            SCHEME_AUTH => {
                let before = out.len();
                out.extend(
                    session_ids
                        .iter()
                        .filter(|i| is_authenticated_scheme(&i.scheme, providers))
                        .map(|i| Acl { perms: a.perms, id: i.clone() }),
                );
                if out.len() == before {
                    return Err(InvalidAcl);
                }
            }
            SCHEME_DIGEST if is_valid_digest_id(&a.id.id) => out.push(a.clone()),
            SCHEME_IP if is_valid_ip_id(&a.id.id) => out.push(a.clone()),
            SCHEME_X509 if providers.x509 && is_valid_distinguished_name(&a.id.id) => out.push(a.clone()),
            crate::auth::SCHEME_SASL if providers.sasl && crate::auth::is_valid_sasl_id(&a.id.id) => {
                out.push(a.clone())
            }
            _ => return Err(InvalidAcl),
        }
    }
    Ok(out)
}

/// Schemes whose provider says `isAuthenticated()`: only those expand `auth` ACL entries.
fn is_authenticated_scheme(scheme: &str, providers: Providers) -> bool {
    scheme == SCHEME_DIGEST
        || (scheme == SCHEME_X509 && providers.x509)
        || (scheme == crate::auth::SCHEME_SASL && providers.sasl)
}

/// `X509AuthenticationProvider.isValid` (`new X500Principal(id)` parses), approximated: every
/// RDN component (split at `,` and `+` not escaped by `\`) is `type=value` with a non-empty type.
pub fn is_valid_distinguished_name(id: &str) -> bool {
    let mut components = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in id.chars() {
        match c {
            _ if escaped => {
                current.push(c);
                escaped = false;
            }
            '\\' => {
                current.push(c);
                escaped = true;
            }
            ',' | '+' => components.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    components.push(current);
    components.iter().all(|c| matches!(c.split_once('='), Some((t, _)) if !t.trim().is_empty()))
}

/// `DigestAuthenticationProvider.isValid`: `id.split(":").length == 2` with Java's split,
/// which drops trailing empty parts (so `"u:h:"` is valid and `"u:"` is not).
pub fn is_valid_digest_id(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

/// `IPAuthenticationProvider.isValid`: an address, optionally `/bits` with
/// `0 <= bits <= address bits`.
pub fn is_valid_ip_id(id: &str) -> bool {
    parse_ip_expr(id).is_some()
}

/// `IPAuthenticationProvider.matches`: does the session address `client` fall inside the
/// ACL expression `expr` (`a.b.c.d` or `a.b.c.d/bits`; IPv6 the same way)?
pub fn ip_matches(client: &str, expr: &str) -> bool {
    let Some((mut acl_addr, bits)) = parse_ip_expr(expr) else {
        return false;
    };
    let Some(mut remote) = parse_ip(client) else {
        return false;
    };
    if remote.len != acl_addr.len {
        return false;
    }
    mask(&mut acl_addr, bits);
    mask(&mut remote, bits);
    acl_addr == remote
}

/// `addr[/bits]` -> (address bytes, prefix bits); `None` when malformed.
fn parse_ip_expr(expr: &str) -> Option<(IpBytes, u32)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (expr, None),
    };
    let addr = parse_ip(addr)?;
    let max = (addr.len * 8) as u32;
    let bits = match bits {
        None => max,
        Some(b) => u32::try_from(parse_java_int(b)?).ok().filter(|b| *b <= max)?,
    };
    Some((addr, bits))
}

/// Address bytes: 4 for IPv4, 16 for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IpBytes {
    bytes: [u8; 16],
    len: usize,
}

/// IPv4 as Apache's `v4addr2Bytes` (exactly four `Integer.parseInt` parts in 0..=255, so
/// `010.0.0.1` and `+1.2.3.4` are accepted); anything holding a `:` as an IPv6 address
/// (an extension: Apache 3.8 knows only IPv4).
fn parse_ip(s: &str) -> Option<IpBytes> {
    let mut bytes = [0u8; 16];
    if s.contains(':') {
        let v6: std::net::Ipv6Addr = s.parse().ok()?;
        bytes.copy_from_slice(&v6.octets());
        return Some(IpBytes { bytes, len: 16 });
    }
    let mut n = 0;
    for part in s.split('.') {
        if n == 4 {
            return None;
        }
        let v = parse_java_int(part)?;
        bytes[n] = u8::try_from(v).ok()?;
        n += 1;
    }
    (n == 4).then_some(IpBytes { bytes, len: 4 })
}

/// Java's `Integer.parseInt` for ASCII input: optional sign, at least one digit, fits i32.
fn parse_java_int(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i32>().ok()
}

/// Keep the first `bits` bits, zero the rest.
fn mask(addr: &mut IpBytes, bits: u32) {
    let bits = bits as usize;
    for (i, b) in addr.bytes[..addr.len].iter_mut().enumerate() {
        let start = i * 8;
        if start >= bits {
            *b = 0;
        } else if bits - start < 8 {
            *b &= !(0xffu8 >> (bits - start));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(scheme: &str, id: &str) -> Id {
        Id { scheme: scheme.to_owned(), id: id.to_owned() }
    }

    fn acl(perms: i32, scheme: &str, i: &str) -> Acl {
        Acl { perms, id: id(scheme, i) }
    }

    #[test]
    fn digest_matches_apache() {
        // Cross-checked with the installed Apache 3.8.0 jar:
        // `java -cp zookeeper.jar:slf4j-api.jar ...DigestAuthenticationProvider super:test u: :`
        assert_eq!(digest_of("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
        assert_eq!(digest_of("user:pa:ss"), "user:eGYxmOtrfaj/35Fq9lW7ol9psVU=");
        assert_eq!(digest_of("u:"), "u:IX23jg4I7W2/R//KoV8VL1UfuBM=");
        assert_eq!(digest_of(":"), ":BaefBs8/Z/cm2uaNGKIpD2yaUMk=");
        assert_eq!(digest_of("é:p"), "é:i2yZWwaaaqaCgqiR3D2f25743FA=");
    }

    #[test]
    fn authenticate_schemes() {
        let sup = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";
        assert_eq!(
            authenticate("digest", Some(b"super:test".as_slice()), "1.2.3.4", Some(sup)).unwrap(),
            vec![id("super", ""), id("digest", sup)]
        );
        assert_eq!(
            authenticate("digest", Some(b"bob:pw".as_slice()), "1.2.3.4", Some(sup)).unwrap(),
            vec![id("digest", &digest_of("bob:pw"))]
        );
        assert_eq!(
            authenticate("digest", Some(b"super:test".as_slice()), "1.2.3.4", None).unwrap(),
            vec![id("digest", sup)]
        );
        assert_eq!(
            authenticate("ip", Some(b"ignored".as_slice()), "10.1.2.3", None).unwrap(),
            vec![id("ip", "10.1.2.3")]
        );
        assert_eq!(authenticate("world", Some(b"anyone".as_slice()), "10.1.2.3", None), Err(AuthFailed));
        assert_eq!(authenticate("kerberos", Some(b"x".as_slice()), "10.1.2.3", None), Err(AuthFailed));
        assert_eq!(authenticate("digest", None, "10.1.2.3", None), Err(AuthFailed));
        assert_eq!(authenticate("ip", None, "10.1.2.3", None).unwrap(), vec![id("ip", "10.1.2.3")]);
        assert_eq!(connection_ids("127.0.0.1"), vec![id("ip", "127.0.0.1")]);
    }

    #[test]
    fn ip_prefix_matching() {
        assert!(ip_matches("10.1.2.3", "10.0.0.0/8"));
        assert!(!ip_matches("11.1.2.3", "10.0.0.0/8"));
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(!ip_matches("127.0.0.2", "127.0.0.1"));
        assert!(ip_matches("192.168.1.77", "192.168.1.64/26"));
        assert!(!ip_matches("192.168.1.128", "192.168.1.64/26"));
        assert!(ip_matches("1.2.3.4", "9.9.9.9/0"));
        assert!(ip_matches("10.0.0.1", "010.0.0.1"));
        assert!(!ip_matches("10.0.0.1", "10.0.0.0/33"));
        assert!(!ip_matches("10.0.0.1", "10.0.0.0/-1"));
        assert!(!ip_matches("10.0.0.1", "10.0.0.0/8/8"));
        assert!(!ip_matches("10.0.0.1", "10.0.0"));
        assert!(!ip_matches("10.0.0.1", "10.0.0.256"));
        assert!(!ip_matches("not-an-ip", "10.0.0.0/8"));
        // IPv6 (extension) and no cross-family matches.
        assert!(ip_matches("::1", "0:0:0:0:0:0:0:1"));
        assert!(ip_matches("2001:db8::17", "2001:db8::/32"));
        assert!(!ip_matches("2001:db9::17", "2001:db8::/32"));
        assert!(!ip_matches("::ffff:10.0.0.1", "10.0.0.0/8"));
        assert!(!ip_matches("10.0.0.1", "::/0"));
    }

    #[test]
    fn check_perm_cases() {
        let ip_ids = connection_ids("10.0.0.5");
        assert!(check_perm(&[], perms::ADMIN, &ip_ids));
        assert!(check_perm(&open_acl_unsafe(), perms::WRITE, &[]));
        assert!(check_perm(&read_acl_unsafe(), perms::READ, &ip_ids));
        assert!(!check_perm(&read_acl_unsafe(), perms::WRITE, &ip_ids));

        let digest = digest_of("bob:pw");
        let node =
            vec![acl(perms::READ | perms::WRITE, "digest", &digest), acl(perms::READ, "ip", "10.0.0.0/8")];
        assert!(check_perm(&node, perms::READ, &ip_ids));
        assert!(!check_perm(&node, perms::WRITE, &ip_ids));
        let mut bob = ip_ids.clone();
        bob.push(id("digest", &digest));
        assert!(check_perm(&node, perms::WRITE, &bob));
        assert!(!check_perm(&node, perms::DELETE, &bob));
        // Same id string in another scheme does not match.
        assert!(!check_perm(&node, perms::WRITE, &[id("sasl", &digest)]));
        // world with another id never matches.
        assert!(!check_perm(&[acl(perms::ALL, "world", "bob")], perms::READ, &[id("world", "bob")]));
        // super bypasses everything.
        let no_one = vec![acl(perms::READ, "digest", &digest_of("alice:x"))];
        assert!(!check_perm(&no_one, perms::ADMIN, &bob));
        assert!(check_perm(&no_one, perms::ADMIN, &[id("super", "")]));
    }

    #[test]
    fn sasl_ids_need_the_provider_and_expand_auth() {
        let sasl = Providers { sasl: true, ..Default::default() };
        let bob = acl(perms::ALL, "sasl", "bob");
        assert_eq!(fixup_acl(std::slice::from_ref(&bob), &[], Providers::default()), Err(InvalidAcl));
        assert_eq!(fixup_acl(std::slice::from_ref(&bob), &[], sasl).unwrap(), vec![bob.clone()]);
        assert_eq!(fixup_acl(&[acl(perms::READ, "sasl", "a@b@c")], &[], sasl), Err(InvalidAcl));
        let session = [id("ip", "127.0.0.1"), id("sasl", "bob")];
        assert_eq!(fixup_acl(&creator_all_acl(), &session, sasl).unwrap(), vec![bob]);
    }

    #[test]
    fn x509_ids_need_the_provider() {
        let x509 = Providers { x509: true, ..Default::default() };
        let dn = acl(perms::READ, "x509", "CN=client\\, one,O=Example+OU=Ops,C=DE");
        assert_eq!(fixup_acl(std::slice::from_ref(&dn), &[], Providers::default()), Err(InvalidAcl));
        assert_eq!(fixup_acl(std::slice::from_ref(&dn), &[], x509).unwrap(), vec![dn.clone()]);
        assert_eq!(fixup_acl(&[acl(perms::READ, "x509", "client")], &[], x509), Err(InvalidAcl));
        assert_eq!(fixup_acl(&[acl(perms::READ, "x509", "CN=a,=b")], &[], x509), Err(InvalidAcl));
        // `auth` expands a certificate's id once the provider is on.
        let session = [id("ip", "127.0.0.1"), id("x509", "CN=client")];
        assert_eq!(fixup_acl(&creator_all_acl(), &session, Providers::default()), Err(InvalidAcl));
        assert_eq!(
            fixup_acl(&creator_all_acl(), &session, x509).unwrap(),
            vec![acl(perms::ALL, "x509", "CN=client")]
        );
        assert!(check_perm(std::slice::from_ref(&dn), perms::READ, &[id("x509", &dn.id.id)]));
        assert!(!check_perm(&[dn], perms::READ, &[id("x509", "CN=other")]));
    }

    #[test]
    fn fixup_cases() {
        let digest = digest_of("bob:pw");
        let session = vec![id("ip", "10.0.0.5"), id("digest", &digest)];
        let ip_only = vec![id("ip", "10.0.0.5")];

        assert_eq!(fixup_acl(&[], &session, Providers::default()), Err(InvalidAcl));
        assert_eq!(fixup_acl(&open_acl_unsafe(), &ip_only, Providers::default()).unwrap(), open_acl_unsafe());
        assert_eq!(
            fixup_acl(&[acl(perms::ALL, "world", "bob")], &session, Providers::default()),
            Err(InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[acl(perms::ALL, "nope", "x")], &session, Providers::default()),
            Err(InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[acl(perms::ALL, "super", "")], &session, Providers::default()),
            Err(InvalidAcl)
        );

        // auth expands to digest ids only; ip and super are not authenticated providers.
        assert_eq!(
            fixup_acl(&creator_all_acl(), &session, Providers::default()).unwrap(),
            vec![acl(perms::ALL, "digest", &digest)]
        );
        assert_eq!(fixup_acl(&creator_all_acl(), &ip_only, Providers::default()), Err(InvalidAcl));
        assert_eq!(
            fixup_acl(&creator_all_acl(), &[id("super", ""), id("ip", "1.1.1.1")], Providers::default()),
            Err(InvalidAcl)
        );

        // digest validity follows Java's split(":").length == 2.
        assert!(fixup_acl(&[acl(perms::READ, "digest", "u:abc")], &[], Providers::default()).is_ok());
        assert!(fixup_acl(&[acl(perms::READ, "digest", "u:abc:")], &[], Providers::default()).is_ok());
        assert!(fixup_acl(&[acl(perms::READ, "digest", ":abc")], &[], Providers::default()).is_ok());
        assert_eq!(fixup_acl(&[acl(perms::READ, "digest", "u")], &[], Providers::default()), Err(InvalidAcl));
        assert_eq!(
            fixup_acl(&[acl(perms::READ, "digest", "u:")], &[], Providers::default()),
            Err(InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[acl(perms::READ, "digest", "a:b:c")], &[], Providers::default()),
            Err(InvalidAcl)
        );

        assert!(fixup_acl(&[acl(perms::READ, "ip", "10.0.0.0/8")], &[], Providers::default()).is_ok());
        assert!(fixup_acl(&[acl(perms::READ, "ip", "127.0.0.1")], &[], Providers::default()).is_ok());
        assert_eq!(
            fixup_acl(&[acl(perms::READ, "ip", "10.0.0.0/40")], &[], Providers::default()),
            Err(InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[acl(perms::READ, "ip", "localhost")], &[], Providers::default()),
            Err(InvalidAcl)
        );

        // Duplicates collapse before expansion, order kept; perms are not validated.
        let dup = vec![
            acl(perms::READ, "ip", "1.2.3.4"),
            acl(0x7f, "world", "anyone"),
            acl(perms::READ, "ip", "1.2.3.4"),
        ];
        assert_eq!(fixup_acl(&dup, &[], Providers::default()).unwrap(), vec![dup[0].clone(), dup[1].clone()]);
        // ...but duplicates produced by expansion stay (checked against Apache 3.8.0's fixupACL).
        let two_auth = vec![acl(perms::ALL, "auth", "x"), acl(perms::ALL, "auth", "")];
        assert_eq!(
            fixup_acl(&two_auth, &session, Providers::default()).unwrap(),
            vec![acl(perms::ALL, "digest", &digest), acl(perms::ALL, "digest", &digest)]
        );
    }
}
