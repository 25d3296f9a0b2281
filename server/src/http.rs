//! The small HTTP servers beside the client port (Prometheus metrics, AdminServer): each is
//! a [`tiny_http`] server on a plain thread of its own, answering one request at a time with
//! what its handler returns. They read only what the roles publish for other threads.

use std::io::Cursor;
use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{anyhow, Context};

use crate::config::HttpEndpoint;

/// What a handler answers.
pub type Response = tiny_http::Response<Cursor<Vec<u8>>>;

/// A response with `status`, `content_type` and `body`.
pub fn response(status: u16, content_type: &str, body: String) -> Response {
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
        .expect("a valid content type");
    tiny_http::Response::from_string(body).with_status_code(status).with_header(header)
}

/// Binds `endpoint` (errors name the config keys `host_key` and `port_key`) and answers every
/// request with `handler(path)` on a thread named `thread`. Returns the bound address.
pub fn serve(
    endpoint: &HttpEndpoint,
    (host_key, port_key): (&str, &str),
    thread: &str,
    handler: impl Fn(&str) -> Response + Send + 'static,
) -> anyhow::Result<SocketAddr> {
    let addr = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| anyhow!("{host_key}: {:?} does not resolve", endpoint.host))?;
    let server =
        tiny_http::Server::http(addr).map_err(|e| anyhow!("{port_key}: cannot listen on {addr}: {e}"))?;
    let bound = server.server_addr().to_ip().unwrap_or(addr);
    std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let answer = if *request.method() == tiny_http::Method::Get {
                    handler(request.url().split('?').next().unwrap_or(""))
                } else {
                    response(405, "text/plain", "only GET is served\n".into())
                };
                let _ = request.respond(answer);
            }
        })
        .with_context(|| format!("starting the {thread} thread"))?;
    Ok(bound)
}
