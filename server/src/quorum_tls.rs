//! Quorum TLS: mutual TLS on the peer links between ringkeeper members (`sslQuorum=true`),
//! configured by Apache's `ssl.quorum.*` keys.
//!
//! In: the [`Config`] (`ssl.quorum.keyStore.*`, `ssl.quorum.trustStore.*`,
//! `ssl.quorum.protocol`, `ssl.quorum.enabledProtocols`, `ssl.quorum.ciphersuites`,
//! `ssl.quorum.hostnameVerification`, `ssl.quorum.handshakeDetectionTimeoutMillis`) and the
//! TCP connections [`crate::peer_net`] dials and accepts. Out: the same connections wrapped in
//! TLS, or the reason one is refused (the peer links log it and close the connection).
//!
//! As Apache ZooKeeper 3.8 (`QuorumX509Util`, `UnifiedServerSocket` with `sslQuorum`): every
//! member presents the certificate of its key store, both when it dials and when it accepts,
//! and each side requires the other's to chain to its trust store; a connection without one
//! (a member without TLS, an untrusted or expired certificate) is refused before a byte of
//! the peer protocol is read. Stores, protocols and cipher suites are read as for the client
//! ports ([`crate::tls`]). With `ssl.quorum.hostnameVerification` (default true) the dialling
//! member checks that the certificate it is shown names the host of the `server.N` line it
//! dialled (an IP SAN for an IP literal, a DNS SAN for a name), and the accepting member, as
//! Apache's `ZKTrustManager.checkClientTrusted`, that the dialler's certificate names the
//! address it dialled from or, failing that, the name a reverse lookup of that address gives.
//!
//! With `sslQuorumReloadCertFiles` the stores are loaded again when their files change
//! ([`crate::cert_reload`]); links already up keep their session.
//!
//! With `ssl.quorum.crl=true` both ends check the other's certificate chain against the CRLs
//! of the PEM trust store ([`crate::tls`] says how).
//!
//! Differences: CRLs are read from the trust store, not fetched; no OCSP; `ssl.quorum.clientAuth` does not apply (a certificate is always
//! required).
//!
//! When `sslQuorum` is off none of this is built and the peer links write to the socket
//! directly: no TLS code in the path of a replicated write.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures_rustls::{client, server, TlsAcceptor, TlsConnector};
use glommio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};

use crate::cert_reload::Reloadable;
use crate::config::{Config, SslConfig};
use crate::tls::{
    crypto_provider, load_key_store, load_revocation_lists, load_trust_store, protocol_versions, store_files,
    with_timeout,
};

/// The prefix of the quorum TLS keys.
const QUORUM_KEYS: &str = "ssl.quorum";

/// What both ends of a member's peer links use: its certificate, the trust store, the limits.
pub struct QuorumTls {
    contexts: Reloadable<Contexts>,
    handshake_timeout: Duration,
    /// `ssl.quorum.hostnameVerification`.
    hostname_verification: bool,
}

/// The rustls settings of both ends of a link, from the stores as last loaded.
#[derive(Clone)]
struct Contexts {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl QuorumTls {
    /// The quorum TLS of `config`: `None` unless `sslQuorum=true`. Errors name the key at
    /// fault (a store that cannot be read, a key that does not fit its certificate, ...).
    pub fn from_config(config: &Config) -> anyhow::Result<Option<Arc<QuorumTls>>> {
        if !config.ssl_quorum {
            return Ok(None);
        }
        let ssl = &config.quorum_ssl;
        let initial = Contexts::load(ssl)?;
        let contexts = if config.ssl_quorum_reload_cert_files {
            let reloaded = ssl.clone();
            Reloadable::watching(
                initial,
                "quorum TLS (sslQuorumReloadCertFiles)",
                store_files(ssl),
                move || Contexts::load(&reloaded),
            )
            .context("sslQuorumReloadCertFiles: cannot start watching the stores")?
        } else {
            Reloadable::fixed(initial)
        };
        Ok(Some(Arc::new(QuorumTls {
            contexts,
            handshake_timeout: Duration::from_millis(ssl.handshake_timeout_ms),
            hostname_verification: ssl.hostname_verification,
        })))
    }

    /// `ssl.quorum.handshakeDetectionTimeoutMillis`: how long a TLS handshake may take.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Secures a connection this member accepted on its peer port from `dialler`. Err says
    /// why it is refused. Not bounded in time here: the peer links put one deadline around
    /// everything before a link is admitted, this included.
    pub async fn accept(
        &self,
        stream: TcpStream,
        dialler: IpAddr,
    ) -> Result<server::TlsStream<TcpStream>, String> {
        let handshake = self.contexts.current().acceptor.accept(stream);
        let stream = handshake.await.map_err(|e| format!("TLS handshake failed: {e}"))?;
        if self.hostname_verification {
            let leaf = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first());
            let leaf = leaf.ok_or("the dialler presented no certificate")?;
            verify_dialler_host(leaf, dialler).await?;
        }
        Ok(stream)
    }

    /// Secures a connection this member dialled to `host` (the host of the peer's `server.N`
    /// line). Err says why it failed.
    pub async fn connect(
        &self,
        host: &str,
        stream: TcpStream,
    ) -> Result<client::TlsStream<TcpStream>, String> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("{host} is not a name a certificate can carry: {e}"))?;
        let handshake = self.contexts.current().connector.connect(name, stream);
        with_timeout(self.handshake_timeout, "TLS handshake", handshake).await
    }
}

/// Apache's `ZKTrustManager.performHostVerification` on the accepting side: the dialler's
/// certificate `leaf` names its address `dialler` (an IP SAN), or else the name a reverse
/// lookup of that address gives (a DNS SAN). Err says which names were tried.
async fn verify_dialler_host(leaf: &CertificateDer<'_>, dialler: IpAddr) -> Result<(), String> {
    let cert = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| format!("the dialler's certificate cannot be parsed: {e:?}"))?;
    if cert.verify_is_valid_for_subject_name(&ServerName::IpAddress(dialler.into())).is_ok() {
        return Ok(());
    }
    // getnameinfo blocks: glommio's blocking pool.
    let name = glommio::executor().spawn_blocking(move || dns_lookup::lookup_addr(&dialler)).await;
    let name = match name {
        Ok(name) => name,
        Err(e) => {
            return Err(format!(
                "hostname verification: the dialler's certificate does not name {dialler}, \
                 and {dialler} has no name ({e})"
            ))
        }
    };
    let valid = ServerName::try_from(name.as_str())
        .is_ok_and(|server_name| cert.verify_is_valid_for_subject_name(&server_name).is_ok());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "hostname verification: the dialler's certificate names neither its address {dialler} \
             nor {name}, the name of that address"
        ))
    }
}

impl Contexts {
    /// Both ends' settings from the `ssl.quorum.*` stores as they are now.
    fn load(ssl: &SslConfig) -> anyhow::Result<Contexts> {
        let provider = Arc::new(crypto_provider(QUORUM_KEYS, ssl.cipher_suites.as_deref())?);
        let versions = protocol_versions(
            QUORUM_KEYS,
            ssl.protocol.as_deref(),
            ssl.enabled_protocols.as_deref(),
            &provider,
        )?;
        let (chain, key) = load_key_store(QUORUM_KEYS, &ssl.key_store)?;
        let roots = Arc::new(load_trust_store(QUORUM_KEYS, &ssl.trust_store)?);
        let crls = load_revocation_lists(QUORUM_KEYS, ssl)?;
        let no_usable_version =
            "ssl.quorum.enabledProtocols / ssl.quorum.ciphersuites: no protocol version has a usable cipher suite";

        let client_verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .with_crls(crls.clone())
            .build()
            .context("ssl.quorum.trustStore.location: cannot verify the members' certificates")?;
        let server_config = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .context(no_usable_version)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .context("ssl.quorum.keyStore.location: the private key does not fit the certificate")?;

        let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .with_crls(crls)
            .build()
            .context("ssl.quorum.trustStore.location: cannot verify the members' certificates")?;
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .context(no_usable_version)?;
        let builder = if ssl.hostname_verification {
            builder.with_webpki_verifier(server_verifier)
        } else {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(server_verifier)))
        };
        let client_config = builder
            .with_client_auth_cert(chain, key)
            .context("ssl.quorum.keyStore.location: the private key does not fit the certificate")?;
        Ok(Contexts {
            acceptor: TlsAcceptor::from(Arc::new(server_config)),
            connector: TlsConnector::from(Arc::new(client_config)),
        })
    }
}

/// `ssl.quorum.hostnameVerification=false`: a member's certificate must chain to the trust
/// store (and be valid now, for server use), whatever host it names.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain is verified before the name: a name mismatch means the chain was good.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
