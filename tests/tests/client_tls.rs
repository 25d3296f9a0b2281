//! Client TLS with real clients: `secureClientPort` and `client.portUnification` configured
//! with Apache's `ssl.*` keys, mutual TLS, and the `x509` ACL scheme.
//!
//! Every test makes its own short-lived PKI with Debian's `openssl` ([`ringkeeper_tests::pki`]:
//! nothing checked in that could expire): a CA, the server's certificate (SAN 127.0.0.1), a client whose subject has
//! characters RFC 2253 escapes and a multi-valued RDN, a second client of the same CA, and a
//! client of a CA the server does not trust. The expected `x509` id of a certificate comes
//! from Java itself (`tests/compat/SubjectDn.java`: `X500Principal.getName()`, what Apache's
//! X509AuthenticationProvider uses). Stores: PKCS12 made by `openssl pkcs12` (key store) and
//! Java's `keytool` (trust store), and PEM. Clients: kazoo (`kazoo_tls.py`) and Apache's
//! zkCli.sh over Netty (`zkcli_tls.sh`). With `client.certReload`, a renewed server
//! certificate is served to new connections without a restart (Python's `ssl` reads it).

use std::path::Path;
use std::process::Command;

use ringkeeper_tests::compat::run_script_at;
use ringkeeper_tests::pki::{Pki, STORE_PASSWORD};
use ringkeeper_tests::{free_port, ringkeeper_binary, Target, TestServer};

/// The client certificate's subject, in `openssl -subj` form (`+` joins a multi-valued RDN).
const CLIENT_SUBJECT: &str =
    "/C=DE/O=Ringkeeper Tests/OU=ops+UID=u42/CN=client, one \"quoted\" #1 <x>;/emailAddress=c@example.com";
/// The PKI of these tests: a CA, the server's certificate (SAN 127.0.0.1), a client whose
/// subject RFC 2253 escapes, a second client of the same CA, and a client of a CA the server
/// does not trust.
fn client_pki() -> Pki {
    let pki = Pki::empty();
    pki.ca("ca", "/CN=ringkeeper test CA");
    pki.ca("stranger-ca", "/CN=a CA nobody trusts");
    pki.leaf(
        "server",
        "ca",
        "/CN=ringkeeper test server",
        "serverAuth",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
    );
    pki.leaf("client", "ca", CLIENT_SUBJECT, "clientAuth", "");
    pki.leaf("other", "ca", "/CN=other client", "clientAuth", "");
    pki.leaf("stranger", "stranger-ca", "/CN=stranger", "clientAuth", "");
    pki.pkcs12_key_store("server", "ca");
    pki
}

/// zoo.cfg lines for a TLS port with these stores (Apache needs Netty for TLS; ringkeeper
/// ignores `serverCnxnFactory`). Passwords go only with PKCS12 stores: with a password,
/// Apache reads a PEM key as encrypted.
fn tls_config(pki: &Pki, key_store: &str, trust_store: &str, extra: &str) -> String {
    let store = |key: &str, file: &str| {
        let password = if file.ends_with(".p12") {
            format!("ssl.{key}.password={STORE_PASSWORD}\n")
        } else {
            String::new()
        };
        format!("ssl.{key}.location={}\n{password}", pki.path(file).display())
    };
    format!(
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
         authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n{}{}{extra}",
        store("keyStore", key_store),
        store("trustStore", trust_store),
    )
}

/// What ringkeeper logs for the clients `kazoo_tls.py need` must see refused: no client
/// certificate, an untrusted one, a plain client.
const REFUSALS: [&str; 3] = [
    "TLS handshake failed: peer sent no certificates",
    "TLS handshake failed: invalid peer certificate: UnknownIssuer",
    "the client did not start a TLS handshake",
];

#[test]
fn kazoo_mutual_tls_with_x509_acls_and_refusals() {
    let pki = client_pki();
    let dn = pki.java_subject("client.crt");
    assert!(dn.contains("\\,") && dn.contains("1.2.840.113549.1.9.1=#"), "unexpected Java DN {dn}");
    let secure_port = free_port();
    // PKCS12 key store from openssl, PKCS12 trust store from keytool, ssl.clientAuth defaulting to need.
    let trust_store = pki.keytool_trust_store();
    let server = TestServer::start_with(&tls_config(
        &pki,
        "server.p12",
        trust_store,
        &format!("secureClientPort={secure_port}\n4lw.commands.whitelist=*\n"),
    ));
    let counted = |key: &str| -> u64 {
        let mntr = server.four_letter("mntr");
        let line = mntr.lines().find_map(|l| l.strip_prefix(&format!("{key}\t")));
        line.unwrap_or_else(|| panic!("no {key} in mntr:\n{mntr}")).parse().unwrap()
    };
    assert_eq!(counted("zk_auth_failed_count"), 0);
    let hosts = format!("127.0.0.1:{secure_port}");
    let out = run_script_at(&server, &hosts, "python3", "kazoo_tls.py", &[&pki.dir(), &dn, "need"]);
    assert!(out.trim_end().ends_with("OK"), "kazoo_tls.py did not finish:\n{out}");
    // Every refused handshake counts (kazoo retries, so at least one per refusal), as
    // Apache's NettyServerCnxnFactory counts them; plain connections (the four-letter words
    // on the plain port) count as non-mTLS, local since they come from 127.0.0.1.
    assert!(counted("zk_auth_failed_count") >= 3, "{}", server.four_letter("mntr"));
    assert!(counted("zk_non_mtls_local_conn_count") >= 2, "{}", server.four_letter("mntr"));
    assert_eq!(counted("zk_non_mtls_remote_conn_count"), 0);
    // Each refusal was the server's, for the reason the script meant to provoke.
    let log = server.log();
    let reasons = if server.target == Target::Ringkeeper { &REFUSALS[..] } else { &[] };
    for reason in reasons {
        assert!(log.contains(reason), "no refusal '{reason}' in the server log:\n{log}");
    }
    // The plain port kept serving throughout.
    assert!(server.four_letter("srvr").contains("Mode:"), "the plain port serves four-letter words");
}

#[test]
fn zkcli_over_netty_tls_is_named_by_its_certificate_subject() {
    let pki = client_pki();
    let dn = pki.java_subject("client.crt");
    let secure_port = free_port();
    // PEM key store (certificate and key in one file) and PEM trust store.
    let server = TestServer::start_with(&tls_config(
        &pki,
        "server.pem",
        "ca.pem",
        &format!("secureClientPort={secure_port}\nssl.clientAuth=need\n"),
    ));
    let hosts = format!("127.0.0.1:{secure_port}");
    let out = run_script_at(&server, &hosts, "bash", "zkcli_tls.sh", &[&pki.dir(), &dn]);
    assert!(out.trim_end().ends_with("OK"), "zkcli_tls.sh did not finish:\n{out}");
}

#[test]
fn port_unification_serves_tls_and_plain_clients_on_one_port() {
    let pki = client_pki();
    let server = TestServer::start_with(&tls_config(
        &pki,
        "server.p12",
        "ca.pem",
        "client.portUnification=true\nssl.clientAuth=want\n",
    ));
    let out = run_script_at(
        &server,
        &server.connect_string(),
        "python3",
        "kazoo_tls.py",
        &[&pki.dir(), "-", "unified"],
    );
    assert!(out.trim_end().ends_with("OK"), "kazoo_tls.py did not finish:\n{out}");
    assert!(server.four_letter("srvr").contains("Mode:"), "four-letter words on the unified port");
}

/// Runs the ringkeeper binary on `config` and returns what it printed, expecting it to exit
/// with an error.
fn refused_start(dir: &Path, config: &str) -> String {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dataDir={}\nclientPort={}\nadmin.enableServer=false\n{config}",
            dir.join("data").display(),
            free_port()
        ),
    )
    .unwrap();
    let mut child = Command::new(ringkeeper_binary())
        .arg(&cfg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = ringkeeper_tests::wait_exit(&mut child, std::time::Duration::from_secs(30));
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(matches!(status, Some(s) if !s.success()), "the server started with {config}:\n{text}");
    text
}

#[test]
fn bad_tls_stores_are_refused_at_start_naming_the_key() {
    if Target::from_env() == Target::Apache {
        return; // ringkeeper's own start-up messages
    }
    let pki = client_pki();
    let secure = format!("secureClientPort={}\n", free_port());
    let wrong_password = tls_config(&pki, "server.p12", "ca.pem", &secure)
        .replace(&format!("ssl.keyStore.password={STORE_PASSWORD}"), "ssl.keyStore.password=wrong");
    let text = refused_start(pki.root(), &wrong_password);
    assert!(text.contains("ssl.keyStore") && text.contains("password"), "{text}");
    std::fs::copy(pki.path("server.p12"), pki.path("server.jks")).unwrap();
    let text = refused_start(pki.root(), &tls_config(&pki, "server.jks", "ca.pem", &secure));
    assert!(
        text.contains("JKS stores are not supported") && text.contains("keytool -importkeystore"),
        "{text}"
    );
    let no_trust = format!(
        "ssl.keyStore.location={}\nssl.keyStore.password={STORE_PASSWORD}\n{secure}",
        pki.path("server.p12").display()
    );
    let text = refused_start(pki.root(), &no_trust);
    assert!(text.contains("ssl.trustStore.location is not set"), "{text}");
}

/// Over a new TLS connection to port `port` (a handshake by Python's `ssl` with the `client`
/// certificate, verifying the server's): the common name of the certificate the server
/// served, and then, when `word` is given, the server's answer to that four-letter word.
fn tls_session(pki: &Pki, port: u16, word: Option<&str>) -> (String, String) {
    tls_session_as(pki, "client", port, word).unwrap_or_else(|e| panic!("{e}"))
}

/// [`tls_session`] with the client certificate `cert` (`NAME.crt`, `NAME.key`); Err is what
/// the client printed when it failed (a refused certificate).
fn tls_session_as(pki: &Pki, cert: &str, port: u16, word: Option<&str>) -> Result<(String, String), String> {
    const SCRIPT: &str = r#"
import socket, ssl, sys
ca, cert, key, port, word = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        subject = dict(rdn[0] for rdn in tls.getpeercert()["subject"])
        print(subject["commonName"])
        if word != "-":
            tls.sendall(word.encode())
            answer = b""
            try:
                while chunk := tls.recv(4096):
                    answer += chunk
            except ssl.SSLEOFError:
                pass  # closed without a TLS close_notify: the answer is what came before
            sys.stdout.write(answer.decode())
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .args([
            pki.path("ca.pem").to_str().unwrap(),
            pki.path(&format!("{cert}.crt")).to_str().unwrap(),
            pki.path(&format!("{cert}.key")).to_str().unwrap(),
            &port.to_string(),
            word.unwrap_or("-"),
        ])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
    }
    let (name, answer) = stdout.split_once('\n').unwrap_or((&stdout, ""));
    Ok((name.to_owned(), answer.to_owned()))
}

/// The common name of the certificate the TLS port `port` serves to a new connection.
fn served_certificate(pki: &Pki, port: u16) -> String {
    tls_session(pki, port, None).0
}

/// A server with the `server.pem` key store and the `ca.pem` trust store on a `secureClientPort`
/// (every four-letter word allowed), and more zoo.cfg lines `extra`; that port.
fn secure_port_server(pki: &Pki, extra: &str) -> (TestServer, u16) {
    let secure_port = free_port();
    let server = TestServer::start_with(&tls_config(
        pki,
        "server.pem",
        "ca.pem",
        &format!("secureClientPort={secure_port}\n4lw.commands.whitelist=*\n{extra}"),
    ));
    (server, secure_port)
}

#[test]
fn four_letter_words_are_answered_over_tls_on_the_secure_port() {
    // Apache's NettyServerCnxn reads a four-letter word from a connection's first decrypted
    // bytes, as on the plain port (FourLetterWordMain has a `secure` flag for it).
    let pki = client_pki();
    let (server, secure_port) = secure_port_server(&pki, "");
    let (_, ruok) = tls_session(&pki, secure_port, Some("ruok"));
    assert_eq!(ruok, "imok", "{}", server.log());
    let (_, srvr) = tls_session(&pki, secure_port, Some("srvr"));
    assert!(srvr.contains("Mode: standalone"), "srvr over TLS answered {srvr:?}\n{}", server.log());
}

#[test]
fn a_renewed_certificate_is_served_to_new_connections_without_a_restart() {
    if Target::from_env() == Target::Apache {
        return; // client.certReload is new in Apache 3.8.1; Debian's may be older
    }
    let pki = client_pki();
    pki.leaf("renewed", "ca", "/CN=ringkeeper renewed server", "serverAuth", "subjectAltName=IP:127.0.0.1");
    std::fs::copy(pki.path("server.pem"), pki.path("live.pem")).unwrap();
    let secure_port = free_port();
    let server = TestServer::start_with(&tls_config(
        &pki,
        "live.pem",
        "ca.pem",
        &format!("secureClientPort={secure_port}\nclient.certReload=true\nssl.keyStore.type=PEM\n"),
    ));
    assert_eq!(served_certificate(&pki, secure_port), "ringkeeper test server");

    // The renewal replaces the key store file (written aside, then renamed over it).
    std::fs::copy(pki.path("renewed.pem"), pki.path("live.pem.new")).unwrap();
    std::fs::rename(pki.path("live.pem.new"), pki.path("live.pem")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut served = served_certificate(&pki, secure_port);
    while served != "ringkeeper renewed server" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        served = served_certificate(&pki, secure_port);
    }
    assert_eq!(served, "ringkeeper renewed server", "{}", server.log());
    assert!(server.log().contains("client TLS (client.certReload): reloaded"), "{}", server.log());
    // The server kept serving throughout.
    assert!(server.four_letter("srvr").contains("Mode:"));
}

/// `ssl.handshakeDetectionTimeoutMillis` of the stalled-client test.
const CLIENT_TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);

/// Whether the server closed `stream` within `limit`; how long that took.
fn closed_after(
    stream: &mut std::net::TcpStream,
    limit: std::time::Duration,
) -> Result<std::time::Duration, String> {
    use std::io::Read;
    let started = std::time::Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(started.elapsed()),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(started.elapsed()),
            // An alert the server sends before closing.
            Ok(_) if started.elapsed() < limit => continue,
            other => return Err(format!("still open after {:?}: {other:?}", started.elapsed())),
        }
    }
}

#[test]
fn a_client_stalling_before_its_tls_handshake_completes_is_closed_at_the_deadline() {
    if Target::from_env() == Target::Apache {
        return; // Apache's Netty port closes it on Netty's own handshake timeout, not this key's
    }
    use std::io::Write;
    let pki = client_pki();
    let timeout =
        format!("ssl.handshakeDetectionTimeoutMillis={}\n", CLIENT_TLS_HANDSHAKE_TIMEOUT.as_millis());
    let (server, secure_port) = secure_port_server(&pki, &timeout);
    let bound = CLIENT_TLS_HANDSHAKE_TIMEOUT + std::time::Duration::from_secs(3);
    let connect =
        || std::net::TcpStream::connect(("127.0.0.1", secure_port)).expect("connect to the secure port");
    // TCP only, not a byte sent.
    let silent = closed_after(&mut connect(), bound).expect("a client that never starts TLS");
    // A TLS record header announcing a ClientHello of 512 bytes, and 3 of them.
    let mut partial = connect();
    partial.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01]).unwrap();
    let partial = closed_after(&mut partial, bound).expect("a client stalled inside its TLS handshake");
    eprintln!("closed after {silent:?} (silent) and {partial:?} (partial ClientHello)");
    let log = server.log();
    let reason = format!("not completed within {CLIENT_TLS_HANDSHAKE_TIMEOUT:?}");
    assert_eq!(log.matches(&reason).count(), 2, "no two closings '{reason}' in the log:\n{log}");
    // Others are served throughout.
    let (_, ruok) = tls_session(&pki, secure_port, Some("ruok"));
    assert_eq!(ruok, "imok", "{log}");
}

#[test]
fn an_expired_client_certificate_is_refused_and_others_are_served() {
    let pki = client_pki();
    pki.expired_leaf("expired", "ca", "/CN=expired client", "clientAuth");
    let (server, secure_port) = secure_port_server(&pki, "");
    let refusal = tls_session_as(&pki, "expired", secure_port, Some("ruok"))
        .expect_err("an expired client certificate was served");
    let (_, ruok) = tls_session_as(&pki, "other", secure_port, Some("ruok")).expect("a valid certificate");
    assert_eq!(ruok, "imok", "{}", server.log());
    if server.target == Target::Ringkeeper {
        // The alert names the expiry (Java's says only certificate_unknown).
        assert!(refusal.to_lowercase().contains("expired"), "the client was told: {refusal}");
        let log = server.log();
        assert!(
            log.contains("invalid peer certificate: certificate expired"),
            "no expiry in the log:\n{log}"
        );
    }
}

#[test]
fn with_ssl_crl_a_revoked_client_certificate_is_refused_and_others_are_served() {
    if Target::from_env() == Target::Apache {
        return; // Apache fetches CRLs from the certificates' distribution points (these have none)
    }
    let pki = client_pki();
    let trust_store = pki.revocation_list("ca", &["client"]);
    let secure_port = free_port();
    let server = TestServer::start_with(&tls_config(
        &pki,
        "server.pem",
        &trust_store,
        &format!("secureClientPort={secure_port}\n4lw.commands.whitelist=*\nssl.crl=true\n"),
    ));
    let refused = tls_session_as(&pki, "client", secure_port, Some("ruok"));
    let refusal = refused.expect_err("a revoked client certificate was served");
    assert!(refusal.to_lowercase().contains("revoked"), "the client was told: {refusal}");
    let (_, ruok) = tls_session_as(&pki, "other", secure_port, Some("ruok")).expect("a valid certificate");
    assert_eq!(ruok, "imok", "{}", server.log());
    let log = server.log();
    assert!(log.contains("invalid peer certificate: Revoked"), "no revocation in the log:\n{log}");

    // ssl.crl=true and a trust store without a CRL: refused at start, naming the key.
    let no_crl = tls_config(
        &pki,
        "server.pem",
        "ca.pem",
        &format!("secureClientPort={}\nssl.crl=true\n", free_port()),
    );
    let text = refused_start(pki.root(), &no_crl);
    assert!(text.contains("ssl.crl=true") && text.contains("holds no CRL"), "{text}");
}
