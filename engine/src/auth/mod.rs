//! Client authentication beyond the `auth` packet: SASL (opcode 102) as Apache ZooKeeper
//! 3.8's `SASLAuthenticationProvider`, `ZooKeeperSaslServer` and `SaslServerCallbackHandler`
//! run it, and auth enforcement (`AuthenticationHelper`).
//!
//! Pure logic: the JAAS file's text comes in (the server reads the file), per-connection
//! exchanges are [`digest_md5::DigestMd5Server`]s, or the exchanges of a [`SaslMechanism`]
//! the server provides (GSSAPI/Kerberos, which needs the system's Kerberos library), and the
//! authenticated name comes out as the `sasl` ACL id after the Kerberos-name rules Apache
//! applies (`kerberos.removeHostFromPrincipal` / `removeRealmFromPrincipal`).

pub mod digest_md5;

use std::collections::BTreeMap;

/// A SASL mechanism other than DIGEST-MD5 that the server provides (GSSAPI, as Apache's
/// server uses when its JAAS `Server` section logs in with Kerberos): the processor starts
/// one [`SaslExchange`] per connection and feeds it the client's tokens.
pub trait SaslMechanism: Send + Sync + std::fmt::Debug {
    /// A new exchange for one connection. Err says why none can start.
    fn start(&self) -> Result<Box<dyn SaslExchange>, String>;
}

/// One connection's exchange of a [`SaslMechanism`].
pub trait SaslExchange: Send + std::fmt::Debug {
    /// Answers the client's `token`. Err: authentication failed (the reason, for the log).
    fn step(&mut self, token: &[u8]) -> Result<SaslStep, String>;
}

/// What one step of a SASL exchange answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send this token; the exchange goes on.
    Continue(Vec<u8>),
    /// `user` is authenticated (`authzid`: the authorization id it asked for, if any); send
    /// `token` (`None`: Java's null, as a GSSAPI server's last answer).
    Complete { token: Option<Vec<u8>>, user: String, authzid: Option<String> },
}

/// The ACL scheme of SASL-authenticated ids.
pub const SCHEME_SASL: &str = "sasl";
/// The JAAS section Apache's server reads its SASL credentials from.
pub const JAAS_SERVER_SECTION: &str = "Server";
/// The JAAS section of the users a member admits with `quorum.auth.enableSasl` (default of
/// `quorum.auth.server.saslLoginContext`).
pub const JAAS_QUORUM_SERVER_SECTION: &str = "QuorumServer";
/// The JAAS section of the credentials a member joins others with (default of
/// `quorum.auth.learner.saslLoginContext`).
pub const JAAS_QUORUM_LEARNER_SECTION: &str = "QuorumLearner";
/// The login module whose `user_NAME="password"` options are DIGEST-MD5 credentials.
pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

/// SASL as the server was configured (`authProvider.N=...SASLAuthenticationProvider` and a
/// JAAS `Server` section).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslConfig {
    /// DIGEST-MD5 users and their passwords (`user_NAME="password"`).
    pub digest_users: BTreeMap<String, String>,
    /// `kerberos.removeHostFromPrincipal`: `a/host@R` becomes `a@R`.
    pub remove_host_from_principal: bool,
    /// `kerberos.removeRealmFromPrincipal`: `a/host@R` becomes `a/host`.
    pub remove_realm_from_principal: bool,
    /// The Kerberos default realm (`default_realm` of krb5.conf), if any: a principal of this
    /// realm has a short name; one of another realm keeps its whole name.
    pub default_realm: Option<String>,
    /// `zookeeper.superUser`: the SASL id that also gets `super`.
    pub super_user: Option<String>,
}

/// Auth enforcement (`enforce.auth.enabled` + `enforce.auth.schemes`, or
/// `sessionRequireClientSASLAuth`): with a non-empty scheme list, a connection holding no id
/// of these schemes is closed on its first request other than `auth` and `sasl`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enforcement {
    pub schemes: Vec<String>,
    /// `allowSaslFailedClients`: a failed SASL exchange keeps the connection (unless SASL
    /// is a required scheme).
    pub allow_sasl_failed_clients: bool,
}

impl Enforcement {
    pub fn is_on(&self) -> bool {
        !self.schemes.is_empty()
    }

    /// `AuthenticationHelper.isSaslAuthRequired`.
    pub fn sasl_required(&self) -> bool {
        self.schemes.iter().any(|s| s == SCHEME_SASL)
    }

    /// Does a connection holding ids of `schemes` pass?
    pub fn admits<'a>(&self, mut schemes: impl Iterator<Item = &'a str>) -> bool {
        !self.is_on() || schemes.any(|s| self.schemes.iter().any(|e| e == s))
    }
}

/// A JAAS configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JAAS configuration: {0}")]
pub struct JaasError(pub String);

/// One login module entry of a JAAS section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    pub class: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

/// The login module of a JAAS section that logs in with Kerberos (Apache's server then
/// speaks GSSAPI).
pub const KERBEROS_LOGIN_MODULE: &str = "com.sun.security.auth.module.Krb5LoginModule";

/// What a JAAS section's Kerberos login module says: the principal and where its key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosLogin {
    /// `principal` (`zookeeper/host@REALM`).
    pub principal: String,
    /// `keyTab` (with `useKeyTab=true`); `None`: the Kerberos library's default keytab.
    pub key_tab: Option<String>,
}

/// The Kerberos login of a JAAS section (`Server`): its `Krb5LoginModule`'s `principal` and
/// `keyTab`. `None` when the section has no such module; Err when it has one without a
/// principal.
pub fn kerberos_login(
    sections: &BTreeMap<String, Vec<LoginModule>>,
    section: &str,
) -> Result<Option<KerberosLogin>, JaasError> {
    let Some(module) =
        sections.get(section).and_then(|m| m.iter().find(|m| m.class == KERBEROS_LOGIN_MODULE))
    else {
        return Ok(None);
    };
    let principal = module.options.get("principal").cloned().ok_or_else(|| {
        JaasError(format!("section {section}: {KERBEROS_LOGIN_MODULE} has no principal=\"...\""))
    })?;
    let uses_key_tab = module.options.get("useKeyTab").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let key_tab = module.options.get("keyTab").filter(|_| uses_key_tab).cloned();
    Ok(Some(KerberosLogin { principal, key_tab }))
}

/// Parses a JAAS login configuration (`Name { class flag key="value" ...; ... };`, with
/// `//` and `/* */` comments) into its sections.
pub fn parse_jaas(text: &str) -> Result<BTreeMap<String, Vec<LoginModule>>, JaasError> {
    let tokens = jaas_tokens(text)?;
    let mut sections = BTreeMap::new();
    let mut i = 0;
    let next = |i: &mut usize, what: &str| -> Result<String, JaasError> {
        let t =
            tokens.get(*i).cloned().ok_or_else(|| JaasError(format!("ends where {what} was expected")))?;
        *i += 1;
        Ok(t)
    };
    while i < tokens.len() {
        let name = next(&mut i, "a section name")?;
        if next(&mut i, "{")? != "{" {
            return Err(JaasError(format!("section {name} does not open with {{")));
        }
        let mut modules = Vec::new();
        loop {
            let class = next(&mut i, "a login module or }")?;
            if class == "}" {
                break;
            }
            let flag = next(&mut i, "a control flag")?;
            let mut options = BTreeMap::new();
            loop {
                let key = next(&mut i, "an option or ;")?;
                if key == ";" {
                    break;
                }
                if next(&mut i, "=")? != "=" {
                    return Err(JaasError(format!("option {key} of {class} has no =")));
                }
                let value = next(&mut i, "an option value")?;
                options.insert(key, value.trim_matches('"').to_owned());
            }
            modules.push(LoginModule { class, flag, options });
        }
        if tokens.get(i).map(String::as_str) == Some(";") {
            i += 1;
        }
        sections.insert(name, modules);
    }
    Ok(sections)
}

/// Words, `"quoted strings"` (kept with their quotes, `\` escapes resolved) and the
/// punctuation `{ } ; =`.
fn jaas_tokens(text: &str) -> Result<Vec<String>, JaasError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                loop {
                    let c = chars.next().ok_or_else(|| JaasError("an unterminated /* comment".into()))?;
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '{' | '}' | ';' | '=' => out.push(c.to_string()),
            '"' => {
                let mut s = String::from('"');
                loop {
                    match chars.next().ok_or_else(|| JaasError("an unterminated quoted string".into()))? {
                        '\\' => s.push(chars.next().ok_or_else(|| JaasError("a dangling escape".into()))?),
                        '"' => break,
                        c => s.push(c),
                    }
                }
                s.push('"');
                out.push(s);
            }
            c => {
                let mut s = String::from(c);
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "{};=\"".contains(c) {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// The DIGEST-MD5 users of a JAAS configuration's `section` (`Server`, `QuorumServer`): the
/// `user_NAME` options of its `DigestLoginModule` (what `SaslServerCallbackHandler` reads).
/// `None` when the section is missing.
pub fn digest_users(
    sections: &BTreeMap<String, Vec<LoginModule>>,
    section: &str,
) -> Option<BTreeMap<String, String>> {
    let modules = sections.get(section)?;
    Some(
        modules
            .iter()
            .filter(|m| m.class == DIGEST_LOGIN_MODULE)
            .flat_map(|m| m.options.iter())
            .filter_map(|(k, v)| k.strip_prefix("user_").map(|user| (user.to_owned(), v.clone())))
            .collect(),
    )
}

/// The DIGEST-MD5 credentials a JAAS `section` (`QuorumLearner`) logs in with: the
/// `username` and `password` options of its `DigestLoginModule`. `None` when the section is
/// missing or has no such module with both options.
pub fn digest_login(
    sections: &BTreeMap<String, Vec<LoginModule>>,
    section: &str,
) -> Option<(String, String)> {
    sections
        .get(section)?
        .iter()
        .filter(|m| m.class == DIGEST_LOGIN_MODULE)
        .find_map(|m| Some((m.options.get("username")?.clone(), m.options.get("password")?.clone())))
}

/// A principal split as Apache's `KerberosName` splits it: `service[/host]@REALM`, or a bare
/// name (no `@`). `None` for a name with `@` that does not fit (what `isValid` refuses).
fn kerberos_parts(name: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let Some((head, realm)) = name.split_once('@') else { return Some((name, None, None)) };
    if realm.contains(['@', '/']) {
        return None;
    }
    match head.split_once('/') {
        Some((_, host)) if host.contains('/') => None,
        Some((service, host)) => Some((service, Some(host), Some(realm))),
        None => Some((head, None, Some(realm))),
    }
}

/// `SASLAuthenticationProvider.isValid`: a `sasl` ACL id must parse as a Kerberos name.
pub fn is_valid_sasl_id(id: &str) -> bool {
    kerberos_parts(id).is_some()
}

/// The `sasl` id of an authenticated `user` (`SaslServerCallbackHandler
/// .handleAuthorizeCallback`): the short name (the service part, when the name has no realm
/// or the default realm; otherwise Apache's default rule does not apply and the whole name
/// stays), then `/host` unless `removeHostFromPrincipal`, then `@realm` unless
/// `removeRealmFromPrincipal`. `authzid` is what stays when no rule applies and the client
/// asked for one (Java's `AuthorizeCallback` falls back to it).
pub fn sasl_id(config: &SaslConfig, user: &str, authzid: Option<&str>) -> String {
    let fallback = || authzid.unwrap_or(user).to_owned();
    let Some((service, host, realm)) = kerberos_parts(user) else { return fallback() };
    let short = match (host, realm) {
        (None, None) => return user.to_owned(),
        (_, Some(r)) if config.default_realm.as_deref() == Some(r) => service,
        _ => return fallback(),
    };
    let mut id = short.to_owned();
    if let Some(host) = host.filter(|_| !config.remove_host_from_principal) {
        id.push('/');
        id.push_str(host);
    }
    if let Some(realm) = realm.filter(|_| !config.remove_realm_from_principal) {
        id.push('@');
        id.push_str(realm);
    }
    id
}

/// The `default_realm` of a krb5.conf's `[libdefaults]` section, if set.
pub fn krb5_default_realm(krb5_conf: &str) -> Option<String> {
    let mut in_libdefaults = false;
    for line in krb5_conf.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_libdefaults = line == "[libdefaults]";
        } else if in_libdefaults {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == "default_realm" {
                    return Some(v.trim().to_owned());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAAS: &str = r#"
        // the server's credentials
        Server {
            org.apache.zookeeper.server.auth.DigestLoginModule required
            user_super="adminsecret"
            user_bob = "b\"ob-pw";
        };
        /* the client side */
        Client { org.apache.zookeeper.server.auth.DigestLoginModule required username="bob" password="x"; };
    "#;

    #[test]
    fn jaas_sections_and_digest_users() {
        let sections = parse_jaas(JAAS).unwrap();
        assert_eq!(sections.keys().collect::<Vec<_>>(), ["Client", "Server"]);
        let users = digest_users(&sections, JAAS_SERVER_SECTION).unwrap();
        assert_eq!(users.get("bob").map(String::as_str), Some("b\"ob-pw"));
        assert_eq!(users.get("super").map(String::as_str), Some("adminsecret"));
        assert_eq!(users.len(), 2);
        assert_eq!(sections["Client"][0].options["username"], "bob");
        assert_eq!(digest_login(&sections, "Client"), Some(("bob".into(), "x".into())));
        assert_eq!(digest_login(&sections, "Server"), None);
        assert!(digest_users(&parse_jaas("Other { a required; };").unwrap(), JAAS_SERVER_SECTION).is_none());
        assert!(parse_jaas("Server { a required x=\"1\" ").is_err());
        assert!(parse_jaas("Server a").is_err());
    }

    #[test]
    fn kerberos_login_from_a_krb5_login_module() {
        let jaas = r#"Server {
            com.sun.security.auth.module.Krb5LoginModule required
            useKeyTab=true keyTab="/etc/zk.keytab" storeKey=true useTicketCache=false
            principal="zookeeper/zk1.example.com@EXAMPLE.COM";
        };
        NoKeyTab { com.sun.security.auth.module.Krb5LoginModule required principal="zk@R"; };
        NoPrincipal { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };"#;
        let sections = parse_jaas(jaas).unwrap();
        let login = kerberos_login(&sections, JAAS_SERVER_SECTION).unwrap().unwrap();
        assert_eq!(login.principal, "zookeeper/zk1.example.com@EXAMPLE.COM");
        assert_eq!(login.key_tab.as_deref(), Some("/etc/zk.keytab"));
        let no_key_tab = kerberos_login(&sections, "NoKeyTab").unwrap().unwrap();
        assert_eq!(no_key_tab.key_tab, None);
        assert!(kerberos_login(&sections, "NoPrincipal").is_err());
        assert_eq!(kerberos_login(&parse_jaas(JAAS).unwrap(), JAAS_SERVER_SECTION), Ok(None));
    }

    #[test]
    fn sasl_ids_follow_apache_kerberos_rules() {
        let mut cfg = SaslConfig { default_realm: Some("EXAMPLE.COM".into()), ..Default::default() };
        assert_eq!(sasl_id(&cfg, "bob", None), "bob");
        assert_eq!(sasl_id(&cfg, "bob/h.example.com@EXAMPLE.COM", None), "bob/h.example.com@EXAMPLE.COM");
        cfg.remove_host_from_principal = true;
        assert_eq!(sasl_id(&cfg, "bob/h@EXAMPLE.COM", None), "bob@EXAMPLE.COM");
        cfg.remove_realm_from_principal = true;
        assert_eq!(sasl_id(&cfg, "bob/h@EXAMPLE.COM", None), "bob");
        // Another realm: no rule applies, the name stays whole.
        assert_eq!(sasl_id(&cfg, "bob/h@OTHER.ORG", None), "bob/h@OTHER.ORG");
        assert_eq!(sasl_id(&cfg, "bob/h@OTHER.ORG", Some("z")), "z");
        assert!(is_valid_sasl_id("a/b@C") && is_valid_sasl_id("plain") && is_valid_sasl_id("a/b/c"));
        assert!(!is_valid_sasl_id("a@b@c") && !is_valid_sasl_id("a/b/c@R"));
    }

    #[test]
    fn enforcement_admits_by_scheme() {
        let e = Enforcement { schemes: vec!["sasl".into(), "digest".into()], ..Default::default() };
        assert!(e.is_on() && e.sasl_required());
        assert!(e.admits(["ip", "digest"].into_iter()));
        assert!(!e.admits(["ip"].into_iter()));
        assert!(Enforcement::default().admits(std::iter::empty()));
    }

    #[test]
    fn krb5_default_realm_from_libdefaults() {
        let conf = "[realms]\n default_realm = NO\n[libdefaults]\n  default_realm = EXAMPLE.COM\n";
        assert_eq!(krb5_default_realm(conf).as_deref(), Some("EXAMPLE.COM"));
        assert_eq!(krb5_default_realm("[libdefaults]\n"), None);
    }
}
