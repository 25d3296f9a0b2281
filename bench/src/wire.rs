//! Async framing over tokio (reading a 4-byte big-endian length + payload), the session
//! handshake, and [`Session`]: a small pipelined client used to set up and clean up before
//! and after the load. Building request frames and splitting replies is the test harness's
//! [`ringkeeper_tests::wire`], shared with the tests' raw client.
//!
//! In: a `host:port`, and optionally [`ClientTls`] (rustls, as a client of `secureClientPort`
//! or of a `client.portUnification` port; the server's name or IP address is checked against
//! its certificate). Out: a connected session whose read and write halves the load
//! generator takes over ([`Session::into_parts`]). Requests and replies are encoded with the
//! engine's jute records (`ringkeeper_engine::proto`); replies come back in request order,
//! except pings (xid -2) and watch notifications (xid -1), which are skipped here.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ringkeeper_engine::proto::{self, ConnectRequest, ConnectResponse, Jute, OpCode, ReplyHeader};
use ringkeeper_engine::request::record_frame;
use ringkeeper_tests::wire;
pub use ringkeeper_tests::wire::{is_unsolicited, next_xid, push_request, push_request_with};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::BenchError;

/// Largest reply frame accepted: the default `jute.maxbuffer` plus room for headers.
pub const FRAME_BYTES_MAX: usize = proto::JUTE_MAX_BUFFER_DEFAULT + 1024;
/// How long connecting and the handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one setup request may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests a setup [`Session::pipeline`] keeps in flight at once.
const PIPELINE_DEPTH_MAX: usize = 256;

/// The read half of a session's connection (plain TCP or TLS), buffered.
pub type SessionReader = BufReader<Box<dyn AsyncRead + Unpin + Send>>;
/// The write half of a session's connection (plain TCP or TLS).
pub type SessionWriter = Box<dyn AsyncWrite + Unpin + Send>;

/// TLS for client connections: the CAs the server's certificate must chain to, and the
/// client's own certificate (Apache's default `ssl.clientAuth=need` asks for one).
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

impl ClientTls {
    /// From PEM files: `ca` (one or more CA certificates), and the client's certificate
    /// chain and key, if it presents one.
    pub fn from_pem_files(ca: &Path, client: Option<(&Path, &Path)>) -> Result<ClientTls, BenchError> {
        let pem_error = |path: &Path, e: &dyn std::fmt::Display| {
            BenchError::Config(format!("{}: not usable as PEM: {e}", path.display()))
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).map_err(|e| pem_error(ca, &e))? {
            roots.add(cert.map_err(|e| pem_error(ca, &e))?).map_err(|e| pem_error(ca, &e))?;
        }
        let builder = ClientConfig::builder().with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| pem_error(cert, &e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| pem_error(cert, &e))?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, &e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| BenchError::Config(format!("client certificate: {e}")))?
            }
        };
        Ok(ClientTls { connector: TlsConnector::from(Arc::new(config)) })
    }

    /// The TLS session over `stream` to `host` (`name:port`; the name is checked against the
    /// server's certificate), split into halves.
    async fn handshake(
        &self,
        host: &str,
        stream: TcpStream,
    ) -> Result<(SessionReader, SessionWriter), BenchError> {
        let name = host.rsplit_once(':').map_or(host, |(name, _)| name).trim_matches(['[', ']']);
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|e| BenchError::Config(format!("{host}: not a TLS server name: {e}")))?;
        let tls = self
            .connector
            .connect(server_name, stream)
            .await
            .map_err(BenchError::io_at(format!("TLS handshake with {host}")))?;
        let (read_half, write_half) = tokio::io::split(tls);
        Ok((BufReader::with_capacity(64 * 1024, Box::new(read_half)), Box::new(write_half)))
    }
}

/// Reads one frame's payload into `buf` (replacing its contents).
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut Vec<u8>) -> Result<(), BenchError> {
    let mut length = [0u8; 4];
    reader.read_exact(&mut length).await?;
    let length = u32::from_be_bytes(length) as usize;
    if length > FRAME_BYTES_MAX {
        return Err(BenchError::Protocol(format!("reply frame of {length} bytes exceeds {FRAME_BYTES_MAX}")));
    }
    buf.resize(length, 0);
    reader.read_exact(buf).await?;
    Ok(())
}

/// Splits a reply payload into its header and body.
pub fn split_reply(frame: &[u8]) -> Result<(ReplyHeader, &[u8]), BenchError> {
    wire::split_reply(frame).map_err(|e| BenchError::Protocol(format!("reply header: {e}")))
}

/// A connected ZooKeeper session.
pub struct Session {
    reader: SessionReader,
    writer: SessionWriter,
    pub session_id: i64,
    pub timeout_ms: i32,
    next_xid: i32,
    frame: Vec<u8>,
}

impl Session {
    /// Connects to `host` and opens a new session asking for `timeout_ms`.
    pub async fn connect(host: &str, timeout_ms: i32) -> Result<Session, BenchError> {
        Self::connect_with(host, timeout_ms, None).await
    }

    /// [`Session::connect`] over TLS when `tls` is given.
    pub async fn connect_with(
        host: &str,
        timeout_ms: i32,
        tls: Option<&ClientTls>,
    ) -> Result<Session, BenchError> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::connect_inner(host, timeout_ms, tls))
            .await
            .map_err(|_| BenchError::Timeout(format!("connecting to {host}")))?
    }

    async fn connect_inner(
        host: &str,
        timeout_ms: i32,
        tls: Option<&ClientTls>,
    ) -> Result<Session, BenchError> {
        let stream =
            TcpStream::connect(host).await.map_err(BenchError::io_at(format!("connecting to {host}")))?;
        stream.set_nodelay(true)?;
        let (mut reader, mut writer): (SessionReader, SessionWriter) = match tls {
            Some(tls) => tls.handshake(host, stream).await?,
            None => {
                let (read_half, write_half) = stream.into_split();
                (BufReader::with_capacity(64 * 1024, Box::new(read_half)), Box::new(write_half))
            }
        };
        let request =
            ConnectRequest { timeout_ms, passwd: vec![0; 16], read_only: Some(false), ..Default::default() };
        writer.write_all(&record_frame(&request)).await?;
        let mut frame = Vec::new();
        read_frame(&mut reader, &mut frame).await?;
        let response = ConnectResponse::from_bytes(&frame)
            .map_err(|e| BenchError::Protocol(format!("connect response: {e}")))?;
        if response.session_id == 0 {
            return Err(BenchError::Server(format!("{host} refused the session")));
        }
        Ok(Session {
            reader,
            writer,
            session_id: response.session_id,
            timeout_ms: response.timeout_ms,
            next_xid: 1,
            frame,
        })
    }

    /// Sends `requests` (opcode, encoded body) pipelined, at most [`PIPELINE_DEPTH_MAX`] in
    /// flight, and returns each reply's error code and body in request order.
    pub async fn pipeline(
        &mut self,
        requests: &[(OpCode, Vec<u8>)],
    ) -> Result<Vec<(i32, Vec<u8>)>, BenchError> {
        tokio::time::timeout(CALL_TIMEOUT, self.pipeline_inner(requests))
            .await
            .map_err(|_| BenchError::Timeout(format!("{} setup requests", requests.len())))?
    }

    async fn pipeline_inner(
        &mut self,
        requests: &[(OpCode, Vec<u8>)],
    ) -> Result<Vec<(i32, Vec<u8>)>, BenchError> {
        let mut replies = Vec::with_capacity(requests.len());
        let mut out = Vec::new();
        for chunk in requests.chunks(PIPELINE_DEPTH_MAX) {
            out.clear();
            let first_xid = self.next_xid;
            for (op, body) in chunk {
                push_request(&mut out, self.next_xid, *op as i32, body);
                self.next_xid = next_xid(self.next_xid);
            }
            self.writer.write_all(&out).await?;
            let mut expected = first_xid;
            while expected != self.next_xid {
                read_frame(&mut self.reader, &mut self.frame).await?;
                let (header, body) = split_reply(&self.frame)?;
                if is_unsolicited(header.xid) {
                    continue;
                }
                if header.xid != expected {
                    return Err(BenchError::Protocol(format!(
                        "reply xid {} where {expected} was due",
                        header.xid
                    )));
                }
                replies.push((header.err, body.to_vec()));
                expected = next_xid(expected);
            }
        }
        Ok(replies)
    }

    /// One request, one reply: (error code, body).
    pub async fn call(&mut self, op: OpCode, body: Vec<u8>) -> Result<(i32, Vec<u8>), BenchError> {
        let mut replies = self.pipeline(&[(op, body)]).await?;
        Ok(replies.remove(0))
    }

    /// Closes the session (its ephemerals go with it) and waits for the server's answer.
    pub async fn close(mut self) -> Result<(), BenchError> {
        self.call(OpCode::CloseSession, Vec::new()).await.map(|_| ())
    }

    /// Hands the connection to the load generator: read half, write half, next xid.
    pub fn into_parts(self) -> (SessionReader, SessionWriter, i32) {
        (self.reader, self.writer, self.next_xid)
    }
}
