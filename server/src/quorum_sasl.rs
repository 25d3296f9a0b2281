//! Quorum SASL: members authenticate each other with DIGEST-MD5 on the peer links
//! (`quorum.auth.enableSasl`, `quorum.auth.learnerRequireSasl`,
//! `quorum.auth.serverRequireSasl`, credentials from the JAAS `QuorumServer` and
//! `QuorumLearner` sections), as Apache ZooKeeper 3.8's `SaslQuorumAuthServer` and
//! `SaslQuorumAuthLearner` do on its quorum connections.
//!
//! In: a peer connection right after the dialler's handshake ([`crate::peer_net`]) and the
//! [`QuorumSasl`] settings. Out: whether the link may carry the peer protocol, or why not.
//! The mechanism is [`ringkeeper_engine::auth::digest_md5`] under the quorum names
//! (`zookeeper-quorum`, realm `zk-quorum-sasl-md5`); this module only moves its tokens.
//!
//! The dialler plays Apache's learner, the acceptor its server. A dialler with
//! `enableSasl` says so in its handshake (its own magic number); the acceptor then answers
//! with one message: "SASL is off here", or a challenge. The dialler answers the challenge
//! with its `QuorumLearner` user and password; the acceptor checks them against its
//! `QuorumServer` users and answers with its proof (`rspauth`, showing it knows the password
//! too), a refusal, or "admitted unverified". Messages: acceptor to dialler
//! `kind:u8 len:u16le bytes`, dialler to acceptor `len:u16le bytes`; tokens of 4096 bytes
//! at most.
//!
//! As Apache: with `serverRequireSasl` an acceptor refuses a dialler that does not
//! authenticate or fails to; without it such a dialler is admitted and a warning logged.
//! With `learnerRequireSasl` a dialler refuses an acceptor that does not do SASL or whose
//! proof is wrong; without it, it links anyway.

use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ringkeeper_engine::auth::digest_md5::{DigestMd5Client, DigestMd5Server, Step, QUORUM_NAMES};

use crate::config::QuorumSasl;
use crate::tls::with_timeout;

/// Longest token either side sends (RFC 2831's limit for a digest-response).
const TOKEN_BYTES_MAX: usize = 4096;
/// How long the whole exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
/// Random bytes of a nonce or cnonce.
const NONCE_BYTES: usize = 16;

/// What an acceptor's message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// This member does not do quorum SASL.
    Off = 0,
    /// A DIGEST-MD5 challenge follows.
    Challenge = 1,
    /// Authenticated: the acceptor's `rspauth` follows.
    Proof = 2,
    /// Not admitted: the reason follows, then the connection closes.
    Refused = 3,
    /// The credentials failed but the acceptor does not require SASL: admitted; the reason
    /// follows.
    AdmittedUnverified = 4,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        [Kind::Off, Kind::Challenge, Kind::Proof, Kind::Refused, Kind::AdmittedUnverified]
            .into_iter()
            .find(|k| *k as u8 == byte)
    }
}

/// The acceptor's side, after the handshake of server `from`; `offered`: the handshake said
/// the dialler authenticates. Ok: serve the link; Err: why it is refused (for the log).
pub async fn admit(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    from: u64,
    offered: bool,
    sasl: Option<&QuorumSasl>,
) -> Result<(), String> {
    match (offered, sasl) {
        (false, Some(sasl)) if sasl.server_require => {
            Err("it did not authenticate (quorum.auth.serverRequireSasl=true)".into())
        }
        (false, _) => Ok(()),
        (true, None) => send(stream, Kind::Off, b"").await.map_err(|e| format!("cannot answer it: {e}")),
        (true, Some(sasl)) => {
            with_timeout(EXCHANGE_TIMEOUT, "SASL exchange", challenge_and_check(stream, from, sasl)).await?
        }
    }
}

async fn challenge_and_check(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    from: u64,
    sasl: &QuorumSasl,
) -> std::io::Result<Result<(), String>> {
    let mut server = DigestMd5Server::with_names(random_hex()?, QUORUM_NAMES);
    let password_of = |user: &str| sasl.server_users.get(user).map(String::as_str);
    let Ok(Step::Continue(challenge)) = server.step(b"", password_of) else {
        unreachable!("a DIGEST-MD5 server's first step is its challenge")
    };
    send(stream, Kind::Challenge, &challenge).await?;
    let response = receive(stream).await?;
    match server.step(&response, password_of) {
        Ok(Step::Complete { token, user, .. }) => {
            send(stream, Kind::Proof, &token).await?;
            log::info!("server {from} authenticated to this member as {user} (quorum SASL)");
            Ok(Ok(()))
        }
        Ok(Step::Continue(_)) => unreachable!("DIGEST-MD5 completes on the client's response"),
        Err(e) if sasl.server_require => {
            send(stream, Kind::Refused, e.to_string().as_bytes()).await?;
            Ok(Err(format!("SASL authentication failed: {e}")))
        }
        Err(e) => {
            send(stream, Kind::AdmittedUnverified, e.to_string().as_bytes()).await?;
            log::warn!(
                "server {from} failed to authenticate ({e}); admitted, as quorum.auth.serverRequireSasl is false"
            );
            Ok(Ok(()))
        }
    }
}

/// The dialler's side, right after its handshake went out (it offered SASL). Ok: the link
/// may carry the peer protocol; Err: why not (for the log).
pub async fn authenticate(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    sasl: &QuorumSasl,
) -> Result<(), String> {
    with_timeout(EXCHANGE_TIMEOUT, "SASL exchange", respond_and_check(stream, sasl)).await?
}

async fn respond_and_check(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    sasl: &QuorumSasl,
) -> std::io::Result<Result<(), String>> {
    let (kind, challenge) = receive_message(stream).await?;
    match kind {
        Kind::Off if sasl.learner_require => {
            return Ok(Err("it does not do quorum SASL (quorum.auth.learnerRequireSasl=true)".into()))
        }
        Kind::Off => return Ok(Ok(())),
        Kind::Challenge => {}
        other => return Ok(Err(format!("unexpected SASL message {other:?}"))),
    }
    let answer = DigestMd5Client::respond(
        &challenge,
        &sasl.learner_user,
        &sasl.learner_password,
        &random_hex()?,
        QUORUM_NAMES,
    );
    let (mut client, response) = match answer {
        Ok(answer) => answer,
        Err(e) => return Ok(Err(e.to_string())),
    };
    send_token(stream, &response).await?;
    let (kind, token) = receive_message(stream).await?;
    Ok(match kind {
        Kind::Proof => match client.finish(&token) {
            Ok(()) => Ok(()),
            Err(e) if sasl.learner_require => Err(e.to_string()),
            Err(e) => {
                log::warn!("{e}; linking anyway, as quorum.auth.learnerRequireSasl is false");
                Ok(())
            }
        },
        Kind::Refused => Err(format!(
            "it refused this member's credentials (user {}): {}",
            sasl.learner_user,
            String::from_utf8_lossy(&token)
        )),
        Kind::AdmittedUnverified => {
            log::warn!(
                "admitted without valid credentials (user {}): {}",
                sasl.learner_user,
                String::from_utf8_lossy(&token)
            );
            Ok(())
        }
        other => Err(format!("unexpected SASL message {other:?}")),
    })
}

async fn send(stream: &mut (impl AsyncWrite + Unpin), kind: Kind, token: &[u8]) -> std::io::Result<()> {
    stream.write_all(&[kind as u8]).await?;
    send_token(stream, token).await
}

async fn send_token(stream: &mut (impl AsyncWrite + Unpin), token: &[u8]) -> std::io::Result<()> {
    let token = &token[..token.len().min(TOKEN_BYTES_MAX)];
    stream.write_all(&(token.len() as u16).to_le_bytes()).await?;
    stream.write_all(token).await?;
    stream.flush().await
}

async fn receive_message(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<(Kind, Vec<u8>)> {
    let mut kind = [0u8; 1];
    stream.read_exact(&mut kind).await?;
    let kind = Kind::from_byte(kind[0]).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unknown SASL message kind {}", kind[0]))
    })?;
    Ok((kind, receive(stream).await?))
}

async fn receive(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let len = u16::from_le_bytes(len) as usize;
    if len > TOKEN_BYTES_MAX {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a SASL token of {len} bytes"),
        ));
    }
    let mut token = vec![0u8; len];
    stream.read_exact(&mut token).await?;
    Ok(token)
}

/// A fresh nonce: hex of random bytes from the system's generator (through rustls' ring).
fn random_hex() -> std::io::Result<String> {
    let mut bytes = [0u8; NONCE_BYTES];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| std::io::Error::other("the system random generator failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
