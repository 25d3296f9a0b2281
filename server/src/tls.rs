//! Client TLS: `secureClientPort` and `client.portUnification` with rustls, configured by
//! Apache's own `ssl.*` keys, and the `x509` authentication scheme of the certificates it
//! verifies.
//!
//! In: the [`Config`] (`ssl.keyStore.*`, `ssl.trustStore.*`, `ssl.clientAuth`, `ssl.protocol`,
//! `ssl.enabledProtocols`, `ssl.ciphersuites`, `authProvider.N`,
//! `X509AuthenticationProvider.superUser`) and accepted TCP connections. Out: a
//! [`ClientStream`] the network role reads and writes like the plain socket, and the ACL ids
//! the handshake authenticated (`x509:<subject DN>`, and `super:` for the configured super
//! user). The network role's only hook is [`Transport::accept`].
//!
//! As Apache ZooKeeper 3.8 (`X509Util`, `NettyServerCnxnFactory.CertificateVerifier`,
//! `X509AuthenticationProvider`):
//! - stores are `PEM` or `PKCS12` (type from `.type`, else from the file name: `.pem`,
//!   `.p12`/`.pfx`); a PEM key store holds an unencrypted private key and its certificate
//!   chain. `JKS` and `BCFKS` are refused with a clear message (no well-kept Rust crate reads
//!   them; `keytool -importkeystore -deststoretype PKCS12` converts);
//! - `ssl.clientAuth` is `need` by default; with `need` or `want`, a client certificate must
//!   chain to the trust store, and its subject (`X500Principal.getName()`, RFC 2253: last RDN
//!   first, keywords CN, C, L, ST, O, OU, STREET, DC, UID, other attributes as
//!   `OID=#hex-of-DER`) becomes the session's `x509` id; when no `authProvider.N` names
//!   [`X509_AUTH_PROVIDER`], such a connection is closed ("X509 Auth provider not found"), as
//!   Apache does;
//! - `ssl.enabledProtocols` defaults to `ssl.protocol` alone, and `TLSv1.3` (or no
//!   `ssl.protocol`) to TLS 1.3 and 1.2, as Apache 3.8.1+; TLS 1.0/1.1 are not offered by
//!   rustls and are named as unsupported;
//! - `ssl.ciphersuites` takes Java's (IANA) names; the ones rustls does not implement (CBC,
//!   static RSA key exchange, ...) are named in a warning and skipped.
//!
//! - `ssl.crl=true` checks every certificate of a chain against the certificate revocation
//!   lists (`X509 CRL` PEM blocks) in the PEM trust store: a revoked certificate is refused,
//!   and so is one whose issuer has no CRL there (Java's revocation checking fails the same
//!   way when it cannot tell). Apache fetches CRLs from the certificates' distribution points
//!   instead; ringkeeper fetches nothing, so `ssl.crl=true` without a CRL in the trust store
//!   is refused at start. `ssl.ocsp=true` is warned about and not checked (rustls asks no
//!   responder).
//!
//! With `client.certReload` the stores are loaded again when their files change
//! ([`crate::cert_reload`]): new connections get the new certificate and trust store.
//!
//! Differences: CRLs are read from the trust store, not fetched; no OCSP;
//! `ssl.context.supplier.class` does not apply.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use ringkeeper_engine::proto::Id;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::cert_reload::Reloadable;
use crate::config::{ClientAuth, Config, SslConfig, StoreConfig, X509_AUTH_PROVIDER};

/// The first byte of a TLS record carrying a handshake (a ClientHello opens every TLS
/// connection); a ZooKeeper frame starts with a length whose first byte is 0, a four-letter
/// word with a letter.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The prefix of the client ports' TLS keys (`ssl.keyStore.location`, ...).
const CLIENT_KEYS: &str = "ssl";

/// How a listener's connections are secured.
#[derive(Clone)]
pub enum Transport {
    /// Plain TCP (`clientPort`).
    Plain,
    /// TLS only (`secureClientPort`).
    Tls(Arc<ClientTls>),
    /// Plain or TLS, decided by the first byte (`clientPort` with `client.portUnification`).
    Unified(Arc<ClientTls>),
}

/// A client connection as the network role reads and writes it.
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<futures_rustls::server::TlsStream<TcpStream>>),
}

/// What the TLS listeners share: the rustls configuration and the x509 scheme's settings.
pub struct ClientTls {
    /// The rustls settings of the stores as last loaded.
    acceptor: Reloadable<futures_rustls::TlsAcceptor>,
    /// `ssl.clientAuth` is need or want: a verified certificate yields an `x509` id.
    asks_certificate: bool,
    /// An `authProvider.N` names the X509AuthenticationProvider.
    x509_provider: bool,
    /// `X509AuthenticationProvider.superUser`.
    super_user: Option<String>,
    handshake_timeout: Duration,
}

/// The transports of the plain and secure client ports, from the config; `None` for the
/// secure one when `secureClientPort` is not set. Errors name the key at fault.
pub fn transports(config: &Config) -> anyhow::Result<(Transport, Option<Transport>)> {
    if config.secure_client_port.is_none() && !config.client_port_unification {
        return Ok((Transport::Plain, None));
    }
    let tls = Arc::new(ClientTls::from_config(config)?);
    let plain =
        if config.client_port_unification { Transport::Unified(tls.clone()) } else { Transport::Plain };
    let secure = config.secure_client_port.map(|_| Transport::Tls(tls));
    Ok((plain, secure))
}

impl Transport {
    /// Secures a freshly accepted connection: the stream to serve, and the ACL ids its TLS
    /// handshake authenticated. Err says why the connection is to be closed. Waiting for the
    /// first byte and the TLS handshake share one deadline, `ssl.handshakeDetectionTimeoutMillis`:
    /// a client that stalls anywhere before its handshake completes is closed then.
    pub async fn accept(&self, stream: TcpStream) -> Result<(ClientStream, Vec<Id>), String> {
        let (tls, plain_allowed) = match self {
            Transport::Plain => return Ok((ClientStream::Plain(stream), Vec::new())),
            Transport::Tls(tls) => (tls, false),
            Transport::Unified(tls) => (tls, true),
        };
        let detect_and_handshake = async {
            let mut first = [0u8; 1];
            let peeked = stream.peek(&mut first).await.map_err(|e| format!("first byte failed: {e}"))?;
            if peeked == 0 || first[0] != TLS_HANDSHAKE_RECORD {
                if plain_allowed {
                    return Ok((ClientStream::Plain(stream), Vec::new()));
                }
                return Err(
                    "the client did not start a TLS handshake (a plain client on secureClientPort?)".into()
                );
            }
            let stream = tls
                .acceptor
                .current()
                .accept(stream)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            let ids = tls.authenticate(stream.get_ref().1.peer_certificates())?;
            Ok((ClientStream::Tls(Box::new(stream)), ids))
        };
        let limit = tls.handshake_timeout;
        futures_lite::future::or(detect_and_handshake, async {
            glommio::timer::sleep(limit).await;
            Err(format!(
                "TLS handshake failed: not completed within {limit:?} (ssl.handshakeDetectionTimeoutMillis)"
            ))
        })
        .await
    }
}

pub(crate) async fn with_timeout<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> Result<T, String> {
    let timed = async {
        glommio::timer::sleep(limit).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, format!("no {what} within {limit:?}")))
    };
    futures_lite::future::or(fut, timed).await.map_err(|e| format!("{what} failed: {e}"))
}

impl ClientTls {
    fn from_config(config: &Config) -> anyhow::Result<ClientTls> {
        let ssl = &config.ssl;
        let initial = client_acceptor(ssl)?;
        let acceptor = if config.client_cert_reload {
            let reloaded = ssl.clone();
            Reloadable::watching(initial, "client TLS (client.certReload)", store_files(ssl), move || {
                client_acceptor(&reloaded)
            })
            .context("client.certReload: cannot start watching the stores")?
        } else {
            Reloadable::fixed(initial)
        };
        let x509_provider = config.auth_providers.iter().any(|p| p == X509_AUTH_PROVIDER);
        if ssl.client_auth != ClientAuth::None && !x509_provider {
            log::warn!(
                "ssl.clientAuth asks TLS clients for a certificate but no authProvider.N={X509_AUTH_PROVIDER} is set: \
                 as Apache ZooKeeper, every TLS connection will be closed (X509 Auth provider not found: x509)"
            );
        }
        Ok(ClientTls {
            acceptor,
            asks_certificate: ssl.client_auth != ClientAuth::None,
            x509_provider,
            super_user: config.x509_super_user.clone(),
            handshake_timeout: Duration::from_millis(ssl.handshake_timeout_ms),
        })
    }

    /// The ids a verified peer certificate chain grants (Apache's `CertificateVerifier` and
    /// `X509AuthenticationProvider.handleAuthentication`).
    fn authenticate(&self, chain: Option<&[CertificateDer<'static>]>) -> Result<Vec<Id>, String> {
        if !self.asks_certificate {
            return Ok(Vec::new());
        }
        let Some(leaf) = chain.and_then(|c| c.first()) else {
            // `want` and no certificate (rustls already refused one under `need`).
            return Ok(Vec::new());
        };
        if !self.x509_provider {
            return Err("X509 Auth provider not found: x509".into());
        }
        let subject = subject_rfc2253(leaf).map_err(|e| format!("client certificate: {e:#}"))?;
        let mut ids = Vec::with_capacity(2);
        if self.super_user.as_deref() == Some(subject.as_str()) {
            log::info!("Authenticated Id '{subject}' as super user");
            ids.push(Id { scheme: "super".into(), id: subject.clone() });
        }
        log::info!("Authenticated Id '{subject}' for Scheme 'x509'");
        ids.push(Id { scheme: "x509".into(), id: subject });
        Ok(ids)
    }
}

/// The rustls settings of the client ports from the `ssl.*` stores as they are now.
fn client_acceptor(ssl: &SslConfig) -> anyhow::Result<futures_rustls::TlsAcceptor> {
    let provider = Arc::new(crypto_provider(CLIENT_KEYS, ssl.cipher_suites.as_deref())?);
    let versions =
        protocol_versions(CLIENT_KEYS, ssl.protocol.as_deref(), ssl.enabled_protocols.as_deref(), &provider)?;
    let (chain, key) = load_key_store(CLIENT_KEYS, &ssl.key_store)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .context("ssl.enabledProtocols / ssl.ciphersuites: no protocol version has a usable cipher suite")?;
    let builder = match ssl.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let roots = load_trust_store(CLIENT_KEYS, &ssl.trust_store)?;
            let crls = load_revocation_lists(CLIENT_KEYS, ssl)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .with_crls(crls);
            let verifier = if auth == ClientAuth::Want { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(
                verifier.build().context("ssl.trustStore.location: cannot verify client certificates")?,
            )
        }
    };
    let server_config = builder
        .with_single_cert(chain, key)
        .context("ssl.keyStore.location: the private key does not fit the certificate")?;
    Ok(futures_rustls::TlsAcceptor::from(Arc::new(server_config)))
}

/// The files of a key and trust store (and their password files) that a reload watches.
pub(crate) fn store_files(ssl: &SslConfig) -> Vec<PathBuf> {
    [&ssl.key_store, &ssl.trust_store]
        .into_iter()
        .flat_map(|store| [store.location.clone(), store.password_path.clone()])
        .flatten()
        .collect()
}

impl AsyncRead for ClientStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_close(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Protocols and cipher suites

/// The TLS versions to offer: `<prefix>.enabledProtocols`, else `<prefix>.protocol` alone
/// (`TLSv1.3`, `TLS` and no value: 1.3 and 1.2). Versions without a cipher suite left are
/// dropped. `prefix` is `ssl` or `ssl.quorum`, for messages.
pub(crate) fn protocol_versions(
    prefix: &str,
    protocol: Option<&str>,
    enabled: Option<&[String]>,
    provider: &CryptoProvider,
) -> anyhow::Result<Vec<&'static SupportedProtocolVersion>> {
    let (field, names): (&str, Vec<&str>) = match (enabled, protocol) {
        (Some(list), _) => ("enabledProtocols", list.iter().map(String::as_str).collect()),
        (None, Some("TLSv1.2")) => ("protocol", vec!["TLSv1.2"]),
        (None, Some("TLSv1.3" | "TLS")) | (None, None) => ("protocol", vec!["TLSv1.3", "TLSv1.2"]),
        (None, Some(other)) => ("protocol", vec![other]),
    };
    let key = format!("{prefix}.{field}");
    let mut versions = Vec::new();
    for name in names {
        let version = match name {
            "TLSv1.3" => &rustls::version::TLS13,
            "TLSv1.2" => &rustls::version::TLS12,
            other => {
                log::warn!("{key}: {other} is not supported (rustls offers TLSv1.2 and TLSv1.3); skipped");
                continue;
            }
        };
        if !provider.cipher_suites.iter().any(|s| s.version() == version) {
            log::warn!("{key}: {name} has no cipher suite left in {prefix}.ciphersuites; not offered");
            continue;
        }
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    if versions.is_empty() {
        bail!("{key}: no supported TLS version (expected TLSv1.2 and/or TLSv1.3)");
    }
    Ok(versions)
}

/// rustls' ring provider, its suites narrowed to `<prefix>.ciphersuites` (Java names) when set.
pub(crate) fn crypto_provider(
    prefix: &str,
    cipher_suites: Option<&[String]>,
) -> anyhow::Result<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    let Some(wanted) = cipher_suites else { return Ok(provider) };
    let mut chosen = Vec::new();
    for java_name in wanted {
        let rustls_name = rustls_suite_name(java_name);
        match provider.cipher_suites.iter().find(|s| s.suite().as_str() == Some(rustls_name.as_str())) {
            Some(suite) => chosen.push(*suite),
            None => log::warn!("{prefix}.ciphersuites: {java_name} is not implemented by rustls; skipped"),
        }
    }
    if chosen.is_empty() {
        bail!(
            "{prefix}.ciphersuites: none of {wanted:?} is implemented by rustls (it has {})",
            provider
                .cipher_suites
                .iter()
                .filter_map(|s| s.suite().as_str().map(java_suite_name))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

/// Java (IANA) names the TLS 1.3 suites `TLS_AES_128_GCM_SHA256`, rustls `TLS13_AES_128_GCM_SHA256`;
/// TLS 1.2 names are the same in both.
fn rustls_suite_name(java_name: &str) -> String {
    match java_name.strip_prefix("TLS_") {
        Some(rest) if !rest.contains("_WITH_") => format!("TLS13_{rest}"),
        _ => java_name.to_owned(),
    }
}

fn java_suite_name(rustls_name: &str) -> String {
    match rustls_name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => rustls_name.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Key and trust stores

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreType {
    Pem,
    Pkcs12,
}

/// Apache's `KeyStoreFileType.fromPropertyValueOrFileName`.
fn store_type(key: &str, store: &StoreConfig, location: &Path) -> anyhow::Result<StoreType> {
    let name = match &store.store_type {
        Some(t) => t.to_ascii_uppercase(),
        None => {
            let ext = location.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
            match ext.as_str() {
                "pem" => "PEM".into(),
                "p12" | "pfx" => "PKCS12".into(),
                "jks" => "JKS".into(),
                "bcfks" => "BCFKS".into(),
                _ => bail!(
                    "{key}.type is not set and {} has no known extension (.pem, .p12, .pfx)",
                    location.display()
                ),
            }
        }
    };
    match name.as_str() {
        "PEM" => Ok(StoreType::Pem),
        "PKCS12" => Ok(StoreType::Pkcs12),
        "JKS" | "BCFKS" => bail!(
            "{key}: {name} stores are not supported (no well-kept Rust crate reads them); convert with \
             `keytool -importkeystore -srckeystore {} -deststoretype PKCS12 -destkeystore store.p12`",
            location.display()
        ),
        other => bail!("{key}.type: {other} is not a store type (expected PEM or PKCS12)"),
    }
}

fn store_password(key: &str, store: &StoreConfig) -> anyhow::Result<String> {
    if let Some(p) = &store.password {
        return Ok(p.clone());
    }
    match &store.password_path {
        Some(path) => Ok(std::fs::read_to_string(path)
            .with_context(|| format!("{key}.passwordPath: cannot read {}", path.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_owned()),
        None => Ok(String::new()),
    }
}

fn read_store(key: &str, store: &StoreConfig) -> anyhow::Result<(PathBuf, StoreType, Vec<u8>)> {
    let location = store.location.clone().ok_or_else(|| anyhow!("{key}.location is not set"))?;
    let kind = store_type(key, store, &location)?;
    let bytes = std::fs::read(&location)
        .with_context(|| format!("{key}.location: cannot read {}", location.display()))?;
    Ok((location, kind, bytes))
}

pub(crate) type CertifiedKey = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The server's certificate chain and private key from `<prefix>.keyStore.*` (`prefix` is
/// `ssl` or `ssl.quorum`).
pub(crate) fn load_key_store(prefix: &str, store: &StoreConfig) -> anyhow::Result<CertifiedKey> {
    let key_name = format!("{prefix}.keyStore");
    let (location, kind, bytes) = read_store(&key_name, store)?;
    let shown = location.display();
    match kind {
        StoreType::Pem => {
            if bytes.windows(b"ENCRYPTED PRIVATE KEY".len()).any(|w| w == b"ENCRYPTED PRIVATE KEY") {
                bail!("{key_name}.location: {shown} holds an encrypted PEM private key, which is not supported; use an unencrypted key or PKCS12");
            }
            let chain = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{key_name}.location: {shown} is not valid PEM"))?;
            let key = PrivateKeyDer::from_pem_slice(&bytes)
                .with_context(|| format!("{key_name}.location: {shown} holds no private key"))?;
            if chain.is_empty() {
                bail!("{key_name}.location: {shown} holds no certificate");
            }
            Ok((chain, key))
        }
        StoreType::Pkcs12 => {
            let password = store_password(&key_name, store)?;
            let ks = p12_keystore::KeyStore::from_pkcs12(
                &bytes,
                &password,
                p12_keystore::Pkcs12ImportPolicy::Strict,
            )
            .map_err(|e| {
                anyhow!("{key_name}.location: cannot open PKCS12 {shown} (wrong {key_name}.password?): {e}")
            })?;
            let (_, key_chain) = ks.private_key_chain().ok_or_else(|| {
                anyhow!("{key_name}.location: {shown} holds no private key with its certificate")
            })?;
            let chain = key_chain.certs().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect();
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_chain.key().as_der().to_vec()));
            Ok((chain, key))
        }
    }
}

/// The certificates peer certificates must chain to, from `<prefix>.trustStore.*`.
pub(crate) fn load_trust_store(prefix: &str, store: &StoreConfig) -> anyhow::Result<RootCertStore> {
    let key_name = format!("{prefix}.trustStore");
    if store.location.is_none() {
        let why = if prefix == CLIENT_KEYS {
            "to verify client certificates (ssl.clientAuth is need or want)"
        } else {
            "to verify the certificates of the other members"
        };
        bail!("{key_name}.location is not set; it is needed {why}");
    }
    let (location, kind, bytes) = read_store(&key_name, store)?;
    let shown = location.display();
    let certs: Vec<CertificateDer<'static>> = match kind {
        StoreType::Pem => CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .with_context(|| format!("{key_name}.location: {shown} is not valid PEM"))?,
        StoreType::Pkcs12 => {
            let password = store_password(&key_name, store)?;
            let ks = p12_keystore::KeyStore::from_pkcs12(
                &bytes,
                &password,
                p12_keystore::Pkcs12ImportPolicy::Raw,
            )
            .map_err(|e| {
                anyhow!("{key_name}.location: cannot open PKCS12 {shown} (wrong {key_name}.password?): {e}")
            })?;
            ks.entries()
                .flat_map(|(_, entry)| match entry {
                    p12_keystore::KeyStoreEntry::Certificate(c) => vec![c.as_der().to_vec()],
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(k) => {
                        k.certs().iter().map(|c| c.as_der().to_vec()).collect()
                    }
                    _ => Vec::new(),
                })
                .map(CertificateDer::from)
                .collect()
        }
    };
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        bail!("{key_name}.location: {shown} holds no usable certificate");
    }
    Ok(roots)
}

/// With `PREFIX.crl=true`, the certificate revocation lists of the PEM trust store (`X509 CRL`
/// blocks); none without it. Errors name the key: a trust store that is not PEM, or holds no
/// CRL, cannot check revocation.
pub(crate) fn load_revocation_lists(
    prefix: &str,
    ssl: &SslConfig,
) -> anyhow::Result<Vec<CertificateRevocationListDer<'static>>> {
    if !ssl.crl {
        return Ok(Vec::new());
    }
    let key_name = format!("{prefix}.trustStore");
    let (location, kind, bytes) = read_store(&key_name, &ssl.trust_store)?;
    let shown = location.display();
    if kind != StoreType::Pem {
        bail!(
            "{prefix}.crl=true: the CRLs are read from a PEM trust store ({key_name}.location), and {shown} is not PEM \
             (ringkeeper does not fetch CRLs from distribution points)"
        );
    }
    let crls: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .with_context(|| format!("{key_name}.location: {shown} is not valid PEM"))?;
    if crls.is_empty() {
        bail!(
            "{prefix}.crl=true: {shown} ({key_name}.location) holds no CRL (an X509 CRL PEM block); \
             ringkeeper does not fetch CRLs from distribution points: append the CAs' CRLs to the trust store"
        );
    }
    Ok(crls)
}

// ---------------------------------------------------------------------------------------
// Subject names

/// `X500Principal.getName()` (RFC 2253 form) of a certificate's subject: RDNs from last to
/// first joined by `,`, the values of a multi-valued RDN by `+`; the RFC 2253 keywords for
/// their attributes and `dotted.oid=#hex` (the value's DER) for every other attribute or a
/// value that is not a string; in string values `,=+<>#;"\` are escaped with `\`, NUL as `\00`,
/// and leading and trailing spaces with `\`.
pub fn subject_rfc2253(cert: &[u8]) -> anyhow::Result<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).map_err(|e| anyhow!("cannot parse: {e}"))?;
    let rdns: Vec<String> = cert
        .subject()
        .iter()
        .map(|rdn| rdn.iter().map(attribute_rfc2253).collect::<Vec<_>>().join("+"))
        .collect();
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// The RFC 2253 keywords `X500Principal` uses, by OID.
const RFC2253_KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

fn attribute_rfc2253(attr: &x509_parser::x509::AttributeTypeAndValue<'_>) -> String {
    let oid = attr.attr_type().to_id_string();
    let keyword = RFC2253_KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
    let value = attr.attr_value();
    match (keyword, der_string(value)) {
        (Some(keyword), Some(text)) => format!("{keyword}={}", escape_rfc2253(&text)),
        _ => {
            let mut out = format!("{oid}=#");
            for b in der_encoding(value) {
                out.push_str(&format!("{b:02x}"));
            }
            out
        }
    }
}

/// The text of a DER string value (the string types Java's `AVA` prints as text).
fn der_string(value: &x509_parser::asn1_rs::Any<'_>) -> Option<String> {
    use x509_parser::asn1_rs::Tag;
    let data = value.data;
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
            std::str::from_utf8(data).ok().map(str::to_owned)
        }
        Tag::T61String | Tag::GeneralString => Some(data.iter().map(|&b| b as char).collect()),
        Tag::BmpString => {
            let units: Vec<u16> = data.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// The DER encoding (tag, length, contents) of a value that was parsed from DER.
fn der_encoding(value: &x509_parser::asn1_rs::Any<'_>) -> Vec<u8> {
    let header = &value.header;
    let class = (header.class() as u8) << 6;
    let constructed = if header.is_constructed() { 0x20 } else { 0 };
    let mut out = vec![class | constructed | (header.tag().0 as u8 & 0x1f)];
    let len = value.data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value.data);
    out
}

fn escape_rfc2253(text: &str) -> String {
    const ESCAPED: &str = ",=+<>#;\"\\";
    let chars: Vec<char> = text.chars().collect();
    let lead = chars.iter().take_while(|c| **c == ' ').count();
    let trail = chars.iter().rev().take_while(|c| **c == ' ').count();
    let mut out = String::with_capacity(text.len() + 4);
    for (i, c) in chars.iter().enumerate() {
        if *c == '\0' {
            out.push_str("\\00");
            continue;
        }
        if ESCAPED.contains(*c) || ((i < lead || i >= chars.len() - trail) && *c == ' ') {
            out.push('\\');
        }
        out.push(*c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_names_map_between_java_and_rustls() {
        assert_eq!(rustls_suite_name("TLS_AES_128_GCM_SHA256"), "TLS13_AES_128_GCM_SHA256");
        assert_eq!(rustls_suite_name("TLS_CHACHA20_POLY1305_SHA256"), "TLS13_CHACHA20_POLY1305_SHA256");
        assert_eq!(
            rustls_suite_name("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        );
        let p = crypto_provider(
            "ssl",
            Some(&[
                "TLS_AES_256_GCM_SHA384".into(),
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
                "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".into(),
            ]),
        )
        .unwrap();
        let names: Vec<_> = p.cipher_suites.iter().map(|s| s.suite().as_str().unwrap()).collect();
        assert_eq!(names, ["TLS13_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]);
        assert!(crypto_provider("ssl", Some(&["TLS_RSA_WITH_AES_128_CBC_SHA".into()])).is_err());
    }

    #[test]
    fn protocol_defaults_follow_apache() {
        let p = rustls::crypto::ring::default_provider();
        let v = |proto: Option<&str>, enabled: Option<&[String]>| {
            protocol_versions("ssl", proto, enabled, &p)
                .map(|v| v.iter().map(|x| x.version).collect::<Vec<_>>())
        };
        use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
        assert_eq!(v(None, None).unwrap(), [TLSv1_3, TLSv1_2]);
        assert_eq!(v(Some("TLSv1.2"), None).unwrap(), [TLSv1_2]);
        assert_eq!(v(Some("TLSv1.2"), Some(&["TLSv1.3".into(), "TLSv1.1".into()])).unwrap(), [TLSv1_3]);
        assert!(v(Some("TLSv1.1"), None).is_err());
        let only12 = crypto_provider("ssl", Some(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()])).unwrap();
        let versions = protocol_versions("ssl", None, None, &only12).unwrap();
        assert_eq!(versions.iter().map(|x| x.version).collect::<Vec<_>>(), [TLSv1_2]);
    }

    #[test]
    fn rfc2253_escaping_as_x500principal() {
        assert_eq!(escape_rfc2253("plain"), "plain");
        assert_eq!(escape_rfc2253("a,b+c=d"), "a\\,b\\+c\\=d");
        assert_eq!(escape_rfc2253("#1 \"q\" <x>;\\"), "\\#1 \\\"q\\\" \\<x\\>\\;\\\\");
        assert_eq!(escape_rfc2253("  mid dle "), "\\ \\ mid dle\\ ");
        assert_eq!(escape_rfc2253("x\0y"), "x\\00y");
    }
}
