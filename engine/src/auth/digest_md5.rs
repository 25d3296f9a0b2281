//! SASL DIGEST-MD5 (RFC 2831) as Apache ZooKeeper runs it (Java's `DigestMD5Server` made by
//! `ZooKeeperSaslServer`): for clients protocol `zookeeper`, server name and realm
//! `zk-sasl-md5` ([`CLIENT_NAMES`]); between ensemble members (`quorum.auth.enableSasl`)
//! protocol `zookeeper-quorum`, server name and realm `zk-quorum-sasl-md5`
//! ([`QUORUM_NAMES`]); quality of protection `auth` only (no integrity or confidentiality
//! layer), algorithm `md5-sess`, charset `utf-8`.
//!
//! A [`DigestMd5Server`] is one connection's exchange: [`DigestMd5Server::step`] takes each
//! client token and answers the next server token. First step (the client's empty initial
//! token): the challenge. Second step (the client's digest-response): checked against the
//! user's password; on success the answer is `rspauth=...` and the exchange is complete with
//! the authenticated user name. Anything else fails the exchange for good. The nonce comes
//! from the caller (no randomness here); MD5 is the `md-5` crate.
//!
//! The client side ([`DigestMd5Client`]) is what a member joining with
//! `quorum.auth.enableSasl` runs against another member's server side: it answers the
//! challenge with the JAAS `QuorumLearner` credentials and checks the server's `rspauth`
//! (proof that the server knows the password too).

use md5::{Digest as _, Md5};

/// `ZooKeeperSaslServer`'s server name, which Java's DIGEST-MD5 server also uses as realm.
pub const REALM: &str = "zk-sasl-md5";
/// The `digest-uri` a client must name: `<protocol>/<server name>`.
pub const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

/// The realm and `digest-uri` of one use of DIGEST-MD5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslNames {
    /// The server name, also the realm.
    pub realm: &'static str,
    /// `<protocol>/<server name>`.
    pub digest_uri: &'static str,
}

/// Client sessions (`ZooKeeperSaslServer`).
pub const CLIENT_NAMES: SaslNames = SaslNames { realm: REALM, digest_uri: DIGEST_URI };
/// Ensemble members (`QuorumAuth.QUORUM_SERVER_SASL_DIGEST`, protocol `zookeeper-quorum`).
pub const QUORUM_NAMES: SaslNames =
    SaslNames { realm: "zk-quorum-sasl-md5", digest_uri: "zookeeper-quorum/zk-quorum-sasl-md5" };
/// Longest client response accepted (RFC 2831: 4096 bytes).
const MAX_RESPONSE_BYTES: usize = 4096;

/// Why an exchange failed (Apache answers AuthFailed, or keeps the client with
/// `zookeeper.allowSaslFailedClients=true`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestMd5Error {
    #[error("DIGEST-MD5: malformed client response: {0}")]
    Malformed(&'static str),
    #[error("DIGEST-MD5: {0} does not match what the server sent or expects")]
    Mismatch(&'static str),
    #[error("DIGEST-MD5: unknown user {0:?}")]
    UnknownUser(String),
    #[error("DIGEST-MD5: wrong password for user {0:?}")]
    WrongPassword(String),
    #[error("DIGEST-MD5: the exchange is already over")]
    Over,
    #[error("DIGEST-MD5: malformed server challenge: {0}")]
    MalformedChallenge(&'static str),
    #[error("DIGEST-MD5: the server's rspauth is wrong (it does not know the password)")]
    WrongServerProof,
}

/// What one step answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this token; the exchange goes on.
    Continue(Vec<u8>),
    /// Send this token (`rspauth=...`); `user` (the client's `username`) is authenticated,
    /// `authzid` is the authorization id it asked for, if any.
    Complete { token: Vec<u8>, user: String, authzid: Option<String> },
}

#[derive(Debug, Clone)]
enum State {
    /// Nothing sent yet.
    Start,
    /// The challenge went out with this nonce.
    Challenged { nonce: String },
    /// Succeeded or failed: nothing more is accepted.
    Over,
}

/// One connection's DIGEST-MD5 exchange.
#[derive(Debug, Clone)]
pub struct DigestMd5Server {
    state: State,
    nonce: String,
    names: SaslNames,
}

impl DigestMd5Server {
    /// A client session's exchange ([`CLIENT_NAMES`]). `nonce`: a fresh unpredictable value
    /// for this exchange (sent as is, so printable characters without `"` or `\`; the caller
    /// base64-encodes random bytes).
    pub fn new(nonce: String) -> Self {
        Self::with_names(nonce, CLIENT_NAMES)
    }

    /// An exchange under `names` (e.g. [`QUORUM_NAMES`]).
    pub fn with_names(nonce: String, names: SaslNames) -> Self {
        DigestMd5Server { state: State::Start, nonce, names }
    }

    /// Whether the exchange succeeded or failed already.
    pub fn is_over(&self) -> bool {
        matches!(self.state, State::Over)
    }

    /// Answers the client's `token`; `password_of` looks a user name up (the JAAS
    /// `user_NAME="password"` entries).
    pub fn step<'p>(
        &mut self,
        token: &[u8],
        password_of: impl Fn(&str) -> Option<&'p str>,
    ) -> Result<Step, DigestMd5Error> {
        match std::mem::replace(&mut self.state, State::Over) {
            State::Start => {
                // DIGEST-MD5 has no initial response: whatever came, the challenge goes out.
                let nonce = std::mem::take(&mut self.nonce);
                let challenge = format!(
                    "realm=\"{}\",nonce=\"{nonce}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess",
                    self.names.realm
                );
                self.state = State::Challenged { nonce };
                Ok(Step::Continue(challenge.into_bytes()))
            }
            State::Challenged { nonce } => verify(token, &nonce, self.names, password_of),
            State::Over => Err(DigestMd5Error::Over),
        }
    }
}

/// The directives of a digest-response (RFC 2831 2.1.2) that the server looks at.
#[derive(Debug, Default)]
struct Response {
    username: Option<String>,
    realm: Option<String>,
    nonce: Option<String>,
    cnonce: Option<String>,
    nc: Option<String>,
    qop: Option<String>,
    digest_uri: Option<String>,
    response: Option<String>,
    charset: Option<String>,
    authzid: Option<String>,
}

fn verify<'p>(
    token: &[u8],
    nonce: &str,
    names: SaslNames,
    password_of: impl Fn(&str) -> Option<&'p str>,
) -> Result<Step, DigestMd5Error> {
    if token.len() > MAX_RESPONSE_BYTES {
        return Err(DigestMd5Error::Malformed("longer than 4096 bytes"));
    }
    let text = std::str::from_utf8(token).map_err(|_| DigestMd5Error::Malformed("not UTF-8"))?;
    let r = parse_response(text)?;
    let username = r.username.ok_or(DigestMd5Error::Malformed("no username"))?;
    if r.nonce.as_deref() != Some(nonce) {
        return Err(DigestMd5Error::Mismatch("nonce"));
    }
    let cnonce = r.cnonce.ok_or(DigestMd5Error::Malformed("no cnonce"))?;
    let nc = r.nc.ok_or(DigestMd5Error::Malformed("no nc"))?;
    if u32::from_str_radix(&nc, 16) != Ok(1) || nc.len() != 8 {
        return Err(DigestMd5Error::Mismatch("nc (the first response must count 00000001)"));
    }
    let qop = r.qop.unwrap_or_else(|| "auth".to_owned());
    if qop != "auth" {
        return Err(DigestMd5Error::Mismatch("qop (only auth is offered)"));
    }
    let realm = r.realm.unwrap_or_default();
    if !realm.is_empty() && realm != names.realm {
        return Err(DigestMd5Error::Mismatch("realm"));
    }
    let digest_uri = r.digest_uri.ok_or(DigestMd5Error::Malformed("no digest-uri"))?;
    if digest_uri != names.digest_uri {
        return Err(DigestMd5Error::Mismatch("digest-uri"));
    }
    if r.charset.as_deref().is_some_and(|c| !c.eq_ignore_ascii_case("utf-8")) {
        return Err(DigestMd5Error::Mismatch("charset"));
    }
    let response = r.response.ok_or(DigestMd5Error::Malformed("no response"))?;
    let password = password_of(&username).ok_or_else(|| DigestMd5Error::UnknownUser(username.clone()))?;

    let ha1 = session_key_hex(&username, &realm, password, nonce, &cnonce, r.authzid.as_deref());
    let expected = request_digest(&ha1, nonce, &nc, &cnonce, &qop, &format!("AUTHENTICATE:{digest_uri}"));
    if !expected.eq_ignore_ascii_case(&response) {
        return Err(DigestMd5Error::WrongPassword(username));
    }
    let rspauth = request_digest(&ha1, nonce, &nc, &cnonce, &qop, &format!(":{digest_uri}"));
    Ok(Step::Complete {
        token: format!("rspauth={rspauth}").into_bytes(),
        user: username,
        authzid: r.authzid,
    })
}

/// The client side of one exchange: the answer to the server's challenge, then the check
/// of its `rspauth`.
#[derive(Debug, Clone)]
pub struct DigestMd5Client {
    /// The `rspauth` the server must send once the answer went out.
    expected_rspauth: Option<String>,
}

impl DigestMd5Client {
    /// Answers `challenge` as `user` with `password` under `names`; `cnonce` is a fresh
    /// unpredictable value from the caller (printable, without `"` or `\`). Fails on a
    /// challenge without a nonce, or one that does not offer `auth` or names another realm.
    pub fn respond(
        challenge: &[u8],
        user: &str,
        password: &str,
        cnonce: &str,
        names: SaslNames,
    ) -> Result<(DigestMd5Client, Vec<u8>), DigestMd5Error> {
        if challenge.len() > MAX_RESPONSE_BYTES {
            return Err(DigestMd5Error::MalformedChallenge("longer than 4096 bytes"));
        }
        let text =
            std::str::from_utf8(challenge).map_err(|_| DigestMd5Error::MalformedChallenge("not UTF-8"))?;
        let c =
            parse_response(text).map_err(|_| DigestMd5Error::MalformedChallenge("not key=value pairs"))?;
        let nonce = c.nonce.ok_or(DigestMd5Error::MalformedChallenge("no nonce"))?;
        if !c.qop.as_deref().unwrap_or("auth").split(',').any(|q| q.trim() == "auth") {
            return Err(DigestMd5Error::MalformedChallenge("qop auth is not offered"));
        }
        let realm = c.realm.unwrap_or_else(|| names.realm.to_owned());
        if realm != names.realm {
            return Err(DigestMd5Error::MalformedChallenge("another realm"));
        }
        let nc = "00000001";
        let ha1 = session_key_hex(user, &realm, password, &nonce, cnonce, None);
        let uri = names.digest_uri;
        let response = request_digest(&ha1, &nonce, nc, cnonce, "auth", &format!("AUTHENTICATE:{uri}"));
        let rspauth = request_digest(&ha1, &nonce, nc, cnonce, "auth", &format!(":{uri}"));
        let token = format!(
            "charset=utf-8,username=\"{}\",realm=\"{realm}\",nonce=\"{nonce}\",nc={nc},cnonce=\"{cnonce}\",\
             digest-uri=\"{uri}\",maxbuf=65536,response={response},qop=auth",
            quote(user)
        );
        Ok((DigestMd5Client { expected_rspauth: Some(rspauth) }, token.into_bytes()))
    }

    /// Checks the server's last token (`rspauth=...`).
    pub fn finish(&mut self, token: &[u8]) -> Result<(), DigestMd5Error> {
        let expected = self.expected_rspauth.take().ok_or(DigestMd5Error::Over)?;
        let proof = std::str::from_utf8(token).ok().and_then(|t| t.trim().strip_prefix("rspauth="));
        if proof.is_some_and(|p| p.eq_ignore_ascii_case(&expected)) {
            Ok(())
        } else {
            Err(DigestMd5Error::WrongServerProof)
        }
    }
}

/// `text` with `"` and `\` escaped for a quoted directive value.
fn quote(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// hex(MD5(A1)) with A1 = MD5(user:realm:password) ":" nonce ":" cnonce [":" authzid]
/// (RFC 2831 2.1.2.1, algorithm md5-sess). Strings are UTF-8 (charset=utf-8 was offered;
/// for all-ASCII names, the only ones an ISO 8859-1 client can send differently, it is the
/// same bytes).
fn session_key_hex(
    user: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    cnonce: &str,
    authzid: Option<&str>,
) -> String {
    let mut inner = Md5::new();
    inner.update(user.as_bytes());
    inner.update(b":");
    inner.update(realm.as_bytes());
    inner.update(b":");
    inner.update(password.as_bytes());
    let secret = inner.finalize();
    let mut parts: Vec<&[u8]> = vec![&secret, b":", nonce.as_bytes(), b":", cnonce.as_bytes()];
    if let Some(authzid) = authzid {
        parts.push(b":");
        parts.push(authzid.as_bytes());
    }
    md5_hex(&parts)
}

/// hex(MD5(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" hex(MD5(A2)))).
fn request_digest(ha1: &str, nonce: &str, nc: &str, cnonce: &str, qop: &str, a2: &str) -> String {
    let ha2 = md5_hex(&[a2.as_bytes()]);
    md5_hex(&[
        ha1.as_bytes(),
        b":",
        nonce.as_bytes(),
        b":",
        nc.as_bytes(),
        b":",
        cnonce.as_bytes(),
        b":",
        qop.as_bytes(),
        b":",
        ha2.as_bytes(),
    ])
}

/// Splits `key=value,key="quoted \" value",...` (RFC 2831 2.1.2; `\` escapes inside
/// quotes, whitespace around elements ignored). A directive given twice is malformed.
fn parse_response(text: &str) -> Result<Response, DigestMd5Error> {
    let mut r = Response::default();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or(DigestMd5Error::Malformed("a directive without ="))?;
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.push(chars.next().ok_or(DigestMd5Error::Malformed("a dangling escape"))?.1),
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let end = end.ok_or(DigestMd5Error::Malformed("an unterminated quoted value"))?;
            value = v;
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        match rest.strip_prefix(',') {
            Some(after) => rest = after.trim_start(),
            None if rest.is_empty() => {}
            None => return Err(DigestMd5Error::Malformed("text after a quoted value")),
        }
        let slot = match key.as_str() {
            "username" => &mut r.username,
            "realm" => &mut r.realm,
            "nonce" => &mut r.nonce,
            "cnonce" => &mut r.cnonce,
            "nc" => &mut r.nc,
            "qop" => &mut r.qop,
            "digest-uri" => &mut r.digest_uri,
            "response" => &mut r.response,
            "charset" => &mut r.charset,
            "authzid" => &mut r.authzid,
            // maxbuf, cipher and unknown directives: nothing to check with qop=auth.
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(DigestMd5Error::Malformed("a directive given twice"));
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831 4's example, recomputed for this realm/uri: a client response built the way
    /// pure-sasl and Java build theirs.
    fn client_response(
        user: &str,
        password: &str,
        nonce: &str,
        cnonce: &str,
        authzid: Option<&str>,
    ) -> String {
        let ha1 = session_key_hex(user, REALM, password, nonce, cnonce, authzid);
        let response =
            request_digest(&ha1, nonce, "00000001", cnonce, "auth", &format!("AUTHENTICATE:{DIGEST_URI}"));
        let mut out = format!(
            "charset=utf-8,username=\"{user}\",realm=\"{REALM}\",nonce=\"{nonce}\",nc=00000001,cnonce=\"{cnonce}\",digest-uri=\"{DIGEST_URI}\",maxbuf=65536,response={response},qop=auth"
        );
        if let Some(a) = authzid {
            out.push_str(&format!(",authzid=\"{a}\""));
        }
        out
    }

    fn users(name: &str) -> Option<&'static str> {
        (name == "bob").then_some("s3cret")
    }

    #[test]
    fn rfc2831_example_digest() {
        // RFC 2831 section 4 (chris/secret, realm elwood.innosoft.com, imap): the known value.
        let ha1 = {
            let mut inner = Md5::new();
            inner.update(b"chris:elwood.innosoft.com:secret");
            let secret = inner.finalize();
            md5_hex(&[&secret, b":", b"OA6MG9tEQGm2hh", b":", b"OA6MHXh6VqTrRk"])
        };
        let response = request_digest(
            &ha1,
            "OA6MG9tEQGm2hh",
            "00000001",
            "OA6MHXh6VqTrRk",
            "auth",
            "AUTHENTICATE:imap/elwood.innosoft.com",
        );
        assert_eq!(response, "d388dad90d4bbd760a152321f2143af7");
        let rspauth = request_digest(
            &ha1,
            "OA6MG9tEQGm2hh",
            "00000001",
            "OA6MHXh6VqTrRk",
            "auth",
            ":imap/elwood.innosoft.com",
        );
        assert_eq!(rspauth, "ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn challenge_then_success_with_rspauth() {
        let mut s = DigestMd5Server::new("n0nce".into());
        let Step::Continue(challenge) = s.step(b"", users).unwrap() else { panic!("no challenge") };
        let challenge = String::from_utf8(challenge).unwrap();
        assert!(
            challenge.contains("nonce=\"n0nce\"") && challenge.contains("realm=\"zk-sasl-md5\""),
            "{challenge}"
        );
        assert!(
            challenge.contains("algorithm=md5-sess") && challenge.contains("qop=\"auth\""),
            "{challenge}"
        );
        let token = client_response("bob", "s3cret", "n0nce", "cn", None);
        match s.step(token.as_bytes(), users).unwrap() {
            Step::Complete { token, user, authzid } => {
                assert!(token.starts_with(b"rspauth="));
                assert_eq!((user.as_str(), authzid), ("bob", None));
            }
            other => panic!("{other:?}"),
        }
        assert!(s.is_over());
        assert_eq!(s.step(b"", users), Err(DigestMd5Error::Over));
    }

    #[test]
    fn authzid_is_part_of_the_key_and_reported() {
        let mut s = DigestMd5Server::new("n".into());
        s.step(b"", users).unwrap();
        let token = client_response("bob", "s3cret", "n", "c", Some("other"));
        let Step::Complete { authzid, .. } = s.step(token.as_bytes(), users).unwrap() else { panic!() };
        assert_eq!(authzid.as_deref(), Some("other"));
    }

    #[test]
    fn refusals() {
        let attempt = |token: String| {
            let mut s = DigestMd5Server::new("n".into());
            s.step(b"", users).unwrap();
            let r = s.step(token.as_bytes(), users);
            assert!(s.is_over());
            r
        };
        assert_eq!(
            attempt(client_response("bob", "wrong", "n", "c", None)),
            Err(DigestMd5Error::WrongPassword("bob".into()))
        );
        assert_eq!(
            attempt(client_response("eve", "s3cret", "n", "c", None)),
            Err(DigestMd5Error::UnknownUser("eve".into()))
        );
        assert_eq!(
            attempt(client_response("bob", "s3cret", "other", "c", None)),
            Err(DigestMd5Error::Mismatch("nonce"))
        );
        let wrong_uri =
            client_response("bob", "s3cret", "n", "c", None).replace(DIGEST_URI, "zookeeper/elsewhere");
        assert_eq!(attempt(wrong_uri), Err(DigestMd5Error::Mismatch("digest-uri")));
        assert!(matches!(attempt("username=\"bob".into()), Err(DigestMd5Error::Malformed(_))));
        assert!(matches!(attempt("username=a,username=b".into()), Err(DigestMd5Error::Malformed(_))));
        assert!(matches!(attempt("x".repeat(5000)), Err(DigestMd5Error::Malformed(_))));
    }

    #[test]
    fn the_client_side_answers_the_server_side_under_quorum_names() {
        let quorum_users = |name: &str| (name == "learner").then_some("pw \"q\"");
        let mut server = DigestMd5Server::with_names("n0".into(), QUORUM_NAMES);
        let Step::Continue(challenge) = server.step(b"", quorum_users).unwrap() else { panic!() };
        assert!(String::from_utf8_lossy(&challenge).contains("realm=\"zk-quorum-sasl-md5\""));
        let (mut client, token) =
            DigestMd5Client::respond(&challenge, "learner", "pw \"q\"", "c0", QUORUM_NAMES).unwrap();
        let Step::Complete { token: proof, user, .. } = server.step(&token, quorum_users).unwrap() else {
            panic!()
        };
        assert_eq!(user, "learner");
        assert_eq!(client.finish(&proof), Ok(()));
        assert_eq!(client.finish(&proof), Err(DigestMd5Error::Over));

        // A wrong password is refused by the server; a server without it cannot prove itself.
        let mut server = DigestMd5Server::with_names("n1".into(), QUORUM_NAMES);
        let Step::Continue(challenge) = server.step(b"", quorum_users).unwrap() else { panic!() };
        let (mut client, token) =
            DigestMd5Client::respond(&challenge, "learner", "wrong", "c1", QUORUM_NAMES).unwrap();
        assert_eq!(server.step(&token, quorum_users), Err(DigestMd5Error::WrongPassword("learner".into())));
        assert_eq!(client.finish(b"rspauth=0123"), Err(DigestMd5Error::WrongServerProof));
        // A client session's challenge is not a quorum one.
        let Step::Continue(client_challenge) = DigestMd5Server::new("n2".into()).step(b"", users).unwrap()
        else {
            panic!()
        };
        assert!(DigestMd5Client::respond(&client_challenge, "learner", "pw", "c", QUORUM_NAMES).is_err());
    }

    #[test]
    fn quoted_values_unescape() {
        let r = parse_response(r#"username="a\"b", realm = "zk-sasl-md5" , nc=00000001"#).unwrap();
        assert_eq!(r.username.as_deref(), Some("a\"b"));
        assert_eq!(r.realm.as_deref(), Some("zk-sasl-md5"));
        assert_eq!(r.nc.as_deref(), Some("00000001"));
    }
}
