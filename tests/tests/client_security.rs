//! Security configured as Apache users configure it, proven with real clients
//! (`tests/compat/kazoo_security.py`, and zkCli.sh for SASL):
//!
//! - watch events filtered by READ ACL (Apache 3.8.4+, CVE-2024-23944): a persistent
//!   recursive watch on an open parent hears nothing of children its session cannot read;
//! - `enforce.auth.enabled` / `enforce.auth.schemes`: a session that has not authenticated
//!   with a required scheme is closed on its first other request;
//! - SASL DIGEST-MD5 (`authProvider.N=...SASLAuthenticationProvider`, a JAAS `Server`
//!   section): `sasl:` ids and ACLs, wrong passwords refused.
//!
//! Debian's Apache is 3.8.0, which predates the watch fix: the watch test runs against
//! ringkeeper only; the others follow `RINGKEEPER_TEST_TARGET`.

use ringkeeper_tests::compat::run_script;
use ringkeeper_tests::{Target, TestServer};

#[test]
fn kazoo_recursive_watch_hears_nothing_of_unreadable_children() {
    let server = TestServer::start_target(Target::Ringkeeper, "");
    let out = run_script(&server, "python3", "kazoo_security.py", &["watch-acl"]);
    assert!(out.trim_end().ends_with("OK"), "kazoo_security.py watch-acl did not finish:\n{out}");
}

/// The DIGEST-MD5 user the SASL tests authenticate as.
const SASL_USER: &str = "bob";
const SASL_PASSWORD: &str = "bob-s3cret";

/// A JAAS file with the `Server` section Apache reads (`user_NAME="password"`), in its own
/// directory (the server's directory is made when it starts).
fn server_jaas() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("server.jaas"),
        format!(
            "Server {{\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    \
             user_super=\"admin-pw\"\n    user_{SASL_USER}=\"{SASL_PASSWORD}\";\n}};\n"
        ),
    )
    .unwrap();
    dir
}

/// zoo.cfg lines turning SASL on with the JAAS file in `jaas_dir`.
fn sasl_config(jaas_dir: &tempfile::TempDir) -> String {
    format!(
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
         java.security.auth.login.config={}\n",
        jaas_dir.path().join("server.jaas").display()
    )
}

#[test]
fn kazoo_sasl_digest_md5_ids_acls_and_refusals() {
    let jaas = server_jaas();
    let server = TestServer::start_with(&sasl_config(&jaas));
    let out = run_script(&server, "python3", "kazoo_security.py", &["sasl", SASL_USER, SASL_PASSWORD]);
    assert!(out.trim_end().ends_with("OK"), "kazoo_security.py sasl did not finish:\n{out}");
    if server.target == Target::Ringkeeper {
        let log = server.log();
        assert!(log.contains(&format!("authorizationID={SASL_USER}")), "{log}");
        assert!(log.contains("wrong password for user \"bob\""), "{log}");
    }
}

#[test]
fn zkcli_sasl_digest_md5_with_a_jaas_client_section() {
    let jaas = server_jaas();
    let server = TestServer::start_with(&sasl_config(&jaas));
    let out = run_script(&server, "bash", "zkcli_sasl.sh", &[SASL_USER, SASL_PASSWORD]);
    assert!(out.trim_end().ends_with("OK"), "zkcli_sasl.sh did not finish:\n{out}");
}

#[test]
fn kazoo_enforced_digest_auth_closes_unauthenticated_sessions() {
    let server = TestServer::start_with("enforce.auth.enabled=true\nenforce.auth.schemes=digest\n");
    let out = run_script(&server, "python3", "kazoo_security.py", &["enforce", "digest"]);
    assert!(out.trim_end().ends_with("OK"), "kazoo_security.py enforce did not finish:\n{out}");
    if server.target == Target::Ringkeeper {
        let log = server.log();
        assert!(log.contains("does not match with any of the expected authentication scheme"), "{log}");
    }
}

/// Apache refuses to start with enforcement on and no scheme, or a scheme no provider serves.
#[test]
fn enforcement_without_a_usable_scheme_refuses_to_start() {
    for cfg in ["enforce.auth.enabled=true\n", "enforce.auth.enabled=true\nenforce.auth.schemes=sasl\n"] {
        let out = std::process::Command::new(ringkeeper_tests::ringkeeper_binary())
            .arg(write_config(cfg).path().join("zoo.cfg"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "started with {cfg:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("enforce.auth"), "{cfg:?}: {err}");
    }
}

fn write_config(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "dataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n{extra}",
        dir.path().join("data").display(),
        ringkeeper_tests::free_port()
    );
    std::fs::write(dir.path().join("zoo.cfg"), cfg).unwrap();
    dir
}
