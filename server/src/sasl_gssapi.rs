//! SASL GSSAPI (Kerberos v5, RFC 4752) for client sessions, as Apache ZooKeeper 3.8's server
//! speaks it when the JAAS `Server` section logs in with
//! `com.sun.security.auth.module.Krb5LoginModule` (`principal="zookeeper/host@REALM"`,
//! `useKeyTab=true keyTab="..."`).
//!
//! In: the [`KerberosLogin`] of the config, the client's SASL tokens. Out: the engine's
//! [`SaslMechanism`] (one [`SaslExchange`] per connection), whose completed exchange names
//! the client's principal (`alice@REALM`); the engine turns it into the `sasl` ACL id with
//! `kerberos.removeHostFromPrincipal` / `removeRealmFromPrincipal`.
//!
//! The Kerberos work is the system's MIT Kerberos library through `libgssapi`: the key table
//! is the JAAS `keyTab` (registered as the acceptor identity at start), the accepted
//! principal the JAAS `principal`, the realm configuration Apache's `java.security.krb5.conf`
//! (zoo.cfg or `-D` in `SERVER_JVMFLAGS`; handed to the library as `$KRB5_CONFIG` at start),
//! else `$KRB5_CONFIG`, else `/etc/krb5.conf`. Start-up fails when the
//! principal's key cannot be had from the key table.
//!
//! An exchange, as Java's `GssKrb5Server`: the client's tokens go to `gss_accept_sec_context`
//! until the context is established (its last token, the mutual-authentication reply, goes
//! back; the client answers it with an empty token); then the server offers, wrapped, "no
//! security layer" and its receive buffer size, and the client's wrapped answer (the layer it
//! chose and its authorization id) ends it. Only "no security layer" is offered, as
//! ZooKeeper's clients use: integrity and privacy come from TLS.

use std::ffi::CString;
use std::fmt;
use std::os::raw::c_char;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use libgssapi::context::{SecurityContext, ServerCtx};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_NT_KRB5_PRINCIPAL};
use ringkeeper_engine::auth::{KerberosLogin, SaslExchange, SaslMechanism, SaslStep};

use crate::config::Config;

/// The security layers the server offers: "no security layer" only (RFC 4752 bit 1).
const NO_SECURITY_LAYER: u8 = 1;
/// The largest message the server says it receives (Java's default `javax.security.sasl.maxbuffer`).
const RECEIVE_BUFFER_BYTES: u32 = 65536;

#[link(name = "gssapi_krb5")]
extern "C" {
    /// MIT Kerberos: the key table acceptor credentials are read from (process-wide).
    fn krb5_gss_register_acceptor_identity(keytab: *const c_char) -> u32;
}

/// The GSSAPI mechanism of `config`: `None` unless the SASL provider is on and the JAAS
/// `Server` section logs in with Kerberos. Err when the principal's key cannot be had.
pub fn from_config(config: &Config) -> anyhow::Result<Option<Arc<dyn SaslMechanism>>> {
    if !config.has_auth_provider(crate::config::SASL_AUTH_PROVIDER) {
        return Ok(None);
    }
    let Some(login) = &config.sasl_kerberos else { return Ok(None) };
    if let Some(path) = &config.krb5_config {
        // Read by MIT Kerberos when it makes its first context (below); start-up runs this
        // before any thread that could read the environment concurrently.
        std::env::set_var(crate::config::KRB5_CONFIG_ENV, path);
    }
    let mechanism = Gssapi::new(login)?;
    log::info!("SASL clients authenticate with GSSAPI (Kerberos) as {}", login.principal);
    Ok(Some(Arc::new(mechanism)))
}

/// The server side of SASL GSSAPI for one service principal.
pub struct Gssapi {
    principal: String,
}

impl fmt::Debug for Gssapi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GSSAPI as {}", self.principal)
    }
}

impl Gssapi {
    /// Registers the login's key table and checks that the principal's key is in it.
    fn new(login: &KerberosLogin) -> anyhow::Result<Gssapi> {
        if let Some(key_tab) = &login.key_tab {
            let path =
                CString::new(key_tab.as_str()).map_err(|_| anyhow!("keyTab {key_tab:?} holds a NUL"))?;
            // SAFETY: a NUL-terminated string that outlives the call (the library copies it).
            let major = unsafe { krb5_gss_register_acceptor_identity(path.as_ptr()) };
            if major != 0 {
                bail!("JAAS Server section: keyTab {key_tab}: cannot be used (GSS major status {major:#x})");
            }
        }
        let gssapi = Gssapi { principal: login.principal.clone() };
        gssapi.credentials().map_err(|e| {
            anyhow!(
                "JAAS Server section: no key for principal {} in {}: {e}",
                login.principal,
                login.key_tab.as_deref().unwrap_or("the default key table")
            )
        })?;
        Ok(gssapi)
    }

    /// Acceptor credentials for the principal (its key from the key table).
    fn credentials(&self) -> Result<Cred, libgssapi::error::Error> {
        let name = Name::new(self.principal.as_bytes(), Some(&GSS_NT_KRB5_PRINCIPAL))?;
        let mut mechanisms = OidSet::new()?;
        mechanisms.add(&GSS_MECH_KRB5)?;
        Cred::acquire(Some(&name), None, CredUsage::Accept, Some(&mechanisms))
    }
}

impl SaslMechanism for Gssapi {
    fn start(&self) -> Result<Box<dyn SaslExchange>, String> {
        let credentials = self.credentials().map_err(|e| format!("GSSAPI: no acceptor credentials: {e}"))?;
        Ok(Box::new(GssapiExchange { stage: Stage::Context(ServerCtx::new(Some(credentials))) }))
    }
}

/// One connection's GSSAPI exchange.
struct GssapiExchange {
    stage: Stage,
}

enum Stage {
    /// Establishing the security context.
    Context(ServerCtx),
    /// Established; the last context token went out, the client's (empty) answer is next.
    Established(ServerCtx),
    /// The security layer offer went out; the client's choice is next.
    Offered(ServerCtx),
    /// Succeeded or failed.
    Over,
}

impl fmt::Debug for GssapiExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            Stage::Context(_) => "establishing the context",
            Stage::Established(_) => "context established",
            Stage::Offered(_) => "security layer offered",
            Stage::Over => "over",
        };
        write!(f, "GSSAPI exchange ({stage})")
    }
}

impl SaslExchange for GssapiExchange {
    fn step(&mut self, token: &[u8]) -> Result<SaslStep, String> {
        match std::mem::replace(&mut self.stage, Stage::Over) {
            Stage::Context(mut context) => {
                let reply = context.step(token).map_err(|e| format!("GSSAPI: {e}"))?;
                match reply {
                    Some(reply) if !context.is_complete() => {
                        self.stage = Stage::Context(context);
                        Ok(SaslStep::Continue(reply.to_vec()))
                    }
                    Some(reply) => {
                        self.stage = Stage::Established(context);
                        Ok(SaslStep::Continue(reply.to_vec()))
                    }
                    None => self.offer(context),
                }
            }
            Stage::Established(context) => self.offer(context),
            Stage::Offered(mut context) => {
                let answer =
                    context.unwrap(token).map_err(|e| format!("GSSAPI: the security layer answer: {e}"))?;
                let (layer, authzid) = parse_layer_answer(&answer)?;
                if layer != NO_SECURITY_LAYER {
                    return Err(format!(
                        "GSSAPI: the client chose security layer {layer:#x}; only none is offered"
                    ));
                }
                let user =
                    context.source_name().map_err(|e| format!("GSSAPI: the client's name: {e}"))?.to_string();
                Ok(SaslStep::Complete { token: None, user, authzid })
            }
            Stage::Over => Err("GSSAPI: the exchange is over".into()),
        }
    }
}

impl GssapiExchange {
    /// The wrapped offer of the security layers and receive buffer size.
    fn offer(&mut self, mut context: ServerCtx) -> Result<SaslStep, String> {
        let mut offer = RECEIVE_BUFFER_BYTES.to_be_bytes();
        offer[0] = NO_SECURITY_LAYER;
        let wrapped = context.wrap(false, &offer).map_err(|e| format!("GSSAPI: wrapping the offer: {e}"))?;
        self.stage = Stage::Offered(context);
        Ok(SaslStep::Continue(wrapped.to_vec()))
    }
}

/// The client's unwrapped answer to the offer: the layer it chose (first byte), its receive
/// buffer size (3 bytes, unused with no layer) and its authorization id (the rest, UTF-8;
/// none when empty).
fn parse_layer_answer(answer: &[u8]) -> Result<(u8, Option<String>), String> {
    if answer.len() < 4 {
        return Err(format!("GSSAPI: a security layer answer of {} bytes", answer.len()));
    }
    let authzid = std::str::from_utf8(&answer[4..])
        .map_err(|_| "GSSAPI: the authorization id is not UTF-8".to_string())?;
    Ok((answer[0], (!authzid.is_empty()).then(|| authzid.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_answers_parse_as_rfc_4752() {
        assert_eq!(parse_layer_answer(&[1, 0, 0x10, 0]), Ok((1, None)));
        assert_eq!(parse_layer_answer(b"\x01\x00\x10\x00alice@R"), Ok((1, Some("alice@R".into()))));
        assert!(parse_layer_answer(&[1, 0]).is_err());
        assert!(parse_layer_answer(b"\x01\x00\x00\x00\xff").is_err());
    }
}
