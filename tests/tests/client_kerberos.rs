//! SASL GSSAPI (Kerberos) with a real MIT KDC ([`ringkeeper_tests::kdc`], started by the
//! test) and kazoo (`sasl_options={"mechanism": "GSSAPI"}`: pure-sasl over the `kerberos`
//! Python package), configured as Apache users configure it: the SASL provider and a JAAS
//! `Server` section whose `Krb5LoginModule` names the service principal and its key table.
//!
//! A client holding a ticket of `alice` authenticates as `sasl:alice@REALM` (or `sasl:alice`
//! with `kerberos.removeRealmFromPrincipal`), owns a znode under a `sasl:` ACL that an
//! unauthenticated client cannot read; a wrong password gets no ticket from the KDC; a
//! ticket for a key the server's key table no longer holds is refused by the server, which
//! keeps serving the others.
//!
//! The realm's configuration is named in zoo.cfg by Apache's `java.security.krb5.conf` (the
//! harness passes it to Apache as the JVM property); the test passes against Apache 3.8 too
//! (`RINGKEEPER_TEST_TARGET=apache`), where the log lines checked are ringkeeper's own.
//!
//! Runs only when built with the `gssapi` features (`.ci/run` does: see
//! `ringkeeper_tests::CARGO_FEATURES`).
#![cfg(feature = "gssapi")]

use std::path::{Path, PathBuf};

use ringkeeper_tests::compat::run_script_at;
use ringkeeper_tests::kdc::{Kdc, REALM};
use ringkeeper_tests::{Target, TestServer};

/// The service principal of the server, for clients that connect to `localhost`.
const SERVICE: &str = "zookeeper/localhost";
const USER: &str = "alice";
const USER_PASSWORD: &str = "alice-pw";

/// A JAAS file `name` in the KDC's directory whose `Server` section logs in as [`SERVICE`]
/// with the key table `key_tab`.
fn server_jaas(kdc: &Kdc, name: &str, key_tab: &Path) -> PathBuf {
    let path = kdc.path(name);
    std::fs::write(
        &path,
        format!(
            "Server {{\n  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n  \
             keyTab=\"{}\"\n  storeKey=true\n  useTicketCache=false\n  principal=\"{SERVICE}@{REALM}\";\n}};\n",
            key_tab.display()
        ),
    )
    .unwrap();
    path
}

fn sasl_config(kdc: &Kdc, jaas: &Path, extra: &str) -> String {
    format!(
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
         java.security.auth.login.config={}\njava.security.krb5.conf={}\n{extra}",
        jaas.display(),
        kdc.path("krb5.conf").display()
    )
}

/// Points this test process (and so the servers and scripts it starts) at the realm, with
/// the credential cache `ccache`. One test per process (nextest): nothing else reads them.
fn use_realm(kdc: &Kdc, ccache: &Path) {
    for (key, value) in kdc.env() {
        std::env::set_var(key, value);
    }
    std::env::set_var("KRB5CCNAME", format!("FILE:{}", ccache.display()));
}

/// Whether the server logged a SASL login of `authentication_id` as `authorization_id`
/// (Apache's `SaslServerCallbackHandler` line: `authenticationID=alice@REALM;
/// authorizationID=alice@REALM.` with two spaces; ringkeeper's has one and no full stop).
fn authenticated(log: &str, authentication_id: &str, authorization_id: &str) -> bool {
    log.lines().filter_map(|line| line.split_once("authenticationID=")).any(|(_, rest)| {
        rest.split_once(';').is_some_and(|(authn, authz)| {
            let authz = authz.trim_start().strip_prefix("authorizationID=").unwrap_or_default();
            authn == authentication_id && authz.trim_end().trim_end_matches('.') == authorization_id
        })
    })
}

/// Runs `kazoo_security.py MODE ARGS` against `server` connecting to `localhost` (the host of
/// the service principal); panics unless it ends with OK.
fn kazoo(server: &TestServer, args: &[&str]) {
    let hosts = format!("localhost:{}", server.port);
    let out = run_script_at(server, &hosts, "python3", "kazoo_security.py", args);
    assert!(
        out.trim_end().ends_with("OK"),
        "kazoo_security.py {args:?} did not finish:\n{out}\n{}",
        server.log()
    );
}

#[test]
fn kazoo_gssapi_with_a_real_kdc_ids_acls_and_refusals() {
    let kdc = Kdc::start();
    kdc.add_principal(SERVICE, None);
    let key_tab = kdc.key_table(SERVICE, "zookeeper.keytab");
    kdc.add_principal(USER, Some(USER_PASSWORD));
    let ticket = kdc.path("alice.ccache");
    kdc.try_kinit_password(USER, USER_PASSWORD, &ticket).unwrap();
    let refusal = kdc.try_kinit_password(USER, "wrong-pw", &kdc.path("wrong.ccache")).unwrap_err();
    assert!(refusal.contains("Password incorrect"), "kinit with a wrong password: {refusal}");
    use_realm(&kdc, &ticket);

    let jaas = server_jaas(&kdc, "server.jaas", &key_tab);
    let server = TestServer::start_with(&sasl_config(&kdc, &jaas, ""));
    let ringkeeper = server.target == Target::Ringkeeper;
    if ringkeeper {
        let log = server.log();
        assert!(log.contains(&format!("GSSAPI (Kerberos) as {SERVICE}@{REALM}")), "{log}");
    }
    let id = format!("{USER}@{REALM}");
    kazoo(&server, &["gssapi", &id]);
    let log = server.log();
    assert!(authenticated(&log, &id, &id), "{log}");

    // The service gets a new key: tickets for it no longer open the server's key table.
    kdc.new_key(SERVICE);
    let new_ticket = kdc.path("alice-new.ccache");
    kdc.try_kinit_password(USER, USER_PASSWORD, &new_ticket).unwrap();
    use_realm(&kdc, &new_ticket);
    kazoo(&server, &["gssapi-refused"]);
    if ringkeeper {
        let log = server.log();
        assert!(log.contains("failed to SASL authenticate: GSSAPI"), "{log}");
    }

    // A server with the new key table, naming sessions without the realm.
    let new_key_tab = kdc.key_table(SERVICE, "zookeeper-new.keytab");
    let new_jaas = server_jaas(&kdc, "server-new.jaas", &new_key_tab);
    let short =
        TestServer::start_with(&sasl_config(&kdc, &new_jaas, "kerberos.removeRealmFromPrincipal=true\n"));
    kazoo(&short, &["gssapi", USER]);
    let log = short.log();
    let named = if ringkeeper {
        authenticated(&log, &id, USER)
    } else {
        // Apache logs the full principal there, then the id it keeps.
        log.lines().any(|l| {
            l.trim_end().ends_with(&format!("adding SASL authorization for authorizationID: {USER}"))
        })
    };
    assert!(named, "{log}");
}
