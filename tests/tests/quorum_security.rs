//! The peer links of an ensemble secured as Apache users configure them, with real
//! processes and kazoo:
//! - quorum TLS (`sslQuorum=true` with Apache's `ssl.quorum.*` keys): a 3-member ensemble
//!   whose peer links are mutual TLS forms and serves writes; a member whose certificate the
//!   others do not trust, and one without TLS at all, are refused (the members log why) and
//!   never serve while the other two keep serving; with its certificate back the member
//!   rejoins and catches up. A member whose certificate the others trust but that names
//!   another host is refused by the accepting members too (hostname verification, as Apache's
//!   `ZKTrustManager`). A refused member keeps redialling; each accepting member logs the
//!   refusal once. The PKI is made per test with `openssl`
//!   ([`ringkeeper_tests::pki`]): one CA, the members' certificate (server and client use,
//!   SAN 127.0.0.1) in a PKCS12 key store, the CA as a PEM trust store, a certificate of the
//!   same CA for another host, and an impostor's certificate of a CA nobody trusts.
//! - quorum SASL (`quorum.auth.enableSasl`, `learnerRequireSasl`, `serverRequireSasl`, the
//!   JAAS `QuorumServer`/`QuorumLearner` sections): the same story with a member whose
//!   `QuorumLearner` password is wrong.
//!
//! Both stories pass against an Apache 3.8 ensemble too (`RINGKEEPER_TEST_TARGET=apache`), so
//! the tests are known to judge right: there each refusal is also waited for in the members'
//! logs, by the lines Apache writes for it ([`Refusal::apache`]).

use std::time::{Duration, Instant};

use ringkeeper_tests::compat::kazoo_reconfig as kazoo;
use ringkeeper_tests::ensemble::Ensemble;
use ringkeeper_tests::pki::{Pki, QUORUM_MEMBER_USAGE, STORE_PASSWORD};
use ringkeeper_tests::Target;

/// The znode the tests write.
const PATH: &str = "/quorum-security";
/// How long a refused member is given to (wrongly) join before the test looks.
const REFUSAL_WAIT: Duration = Duration::from_secs(30);

fn quorum_pki() -> Pki {
    let pki = Pki::quorum();
    pki.ca("stranger-ca", "/CN=a CA nobody trusts");
    let both = QUORUM_MEMBER_USAGE;
    pki.leaf("impostor", "stranger-ca", "/CN=ringkeeper member", both, "subjectAltName=IP:127.0.0.1");
    pki.leaf(
        "elsewhere",
        "ca",
        "/CN=ringkeeper member elsewhere",
        both,
        "subjectAltName=DNS:elsewhere.invalid",
    );
    pki
}

/// How each implementation logs one refusal: lines with all of `ringkeeper`'s needles in a
/// member other than the refused one; with all of `apache`'s in any member's log (Apache logs
/// an untrusted certificate only on the refused member's side, as the alert it received).
struct Refusal<'a> {
    ringkeeper: &'a [&'a str],
    apache: &'a [&'a str],
}

/// Waits until some member's log other than `skip`'s has a line with all of `needles`; that
/// line.
fn wait_log_line(ensemble: &Ensemble, skip: usize, needles: &[&str]) -> String {
    let deadline = Instant::now() + REFUSAL_WAIT;
    loop {
        for i in (0..ensemble.members.len()).filter(|&i| i != skip) {
            let log = ensemble.log(i);
            if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {needles:?} within {REFUSAL_WAIT:?}; member 1's log:\n{}",
            ensemble.log(0)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Restarts member `i` with `config` as its zoo.cfg and checks it does not join: the refusal
/// is logged, it never serves while the others keep taking writes (the value `write` is
/// written through them).
fn refused_member(ensemble: &mut Ensemble, i: usize, config: &str, refusal: &Refusal, write: &str) {
    std::fs::write(ensemble.members[i].dir.join("zoo.cfg"), config).unwrap();
    ensemble.relaunch(i);
    let line = match ensemble.target {
        Target::Ringkeeper => wait_log_line(ensemble, i, refusal.ringkeeper),
        Target::Apache => wait_log_line(ensemble, usize::MAX, refusal.apache),
    };
    eprintln!("refusal: {line}");
    assert_eq!(ensemble.mode(i), None, "member {} joined without a trusted certificate", i + 1);
    let others = ensemble.connect_string_of(&[(i + 1) % 3, (i + 2) % 3]);
    assert_eq!(kazoo(&others, &["write", PATH, write]), "ok");
    assert_eq!(ensemble.mode(i), None, "member {} joined without a trusted certificate", i + 1);
}

#[test]
fn an_ensemble_with_quorum_tls_serves_and_refuses_untrusted_members() {
    let pki = quorum_pki();
    let mut ensemble = Ensemble::start(3, 0, &pki.quorum_tls_config("member.p12"));
    // Writes through one member are read from the others: the TLS links carry ZAB.
    writes_replicate(&ensemble);
    if ensemble.target == Target::Ringkeeper {
        for i in 0..3 {
            assert!(
                !ensemble.log(i).contains("refused a peer connection"),
                "member {}:\n{}",
                i + 1,
                ensemble.log(i)
            );
        }
    } else {
        wait_log_line(&ensemble, usize::MAX, &["QuorumCnxManager", "SSL handshake complete with"]);
    }

    // Member 3 comes back with a certificate of a CA the others do not trust.
    let good_config = std::fs::read_to_string(ensemble.members[2].dir.join("zoo.cfg")).unwrap();
    let impostor =
        good_config.replace(&pki.quorum_tls_config("member.p12"), &pki.quorum_tls_config("impostor.pem"));
    assert_ne!(impostor, good_config);
    let untrusted = Refusal {
        ringkeeper: &["refused a peer connection from 127.0.0.1:", "(sslQuorum)", "UnknownIssuer"],
        // The alert the others answer its certificate with (certificate_unknown or
        // bad_certificate, by TLS version).
        apache: &["SSLHandshakeException: Received fatal alert:"],
    };
    refused_member(&mut ensemble, 2, &impostor, &untrusted, "v2");
    if ensemble.target == Target::Ringkeeper {
        // It redialled every 200 ms meanwhile; each member logged the refusal once (twice if
        // the phase outlasted the 30 s between two such lines).
        for i in 0..2 {
            let log = ensemble.log(i);
            let lines = log.lines().filter(|l| untrusted.ringkeeper.iter().all(|n| l.contains(n))).count();
            assert!((1..=2).contains(&lines), "member {} logged {lines} refusals:\n{log}", i + 1);
        }
    }

    // Then with a certificate the others trust, for another host: the members it dials
    // refuse it as well, having checked the name of the address it dialled from.
    ensemble.kill(2);
    let elsewhere =
        good_config.replace(&pki.quorum_tls_config("member.p12"), &pki.quorum_tls_config("elsewhere.pem"));
    let wrong_host = Refusal {
        ringkeeper: &[
            "refused a peer connection from 127.0.0.1:",
            "(sslQuorum) hostname verification",
            "names neither its address 127.0.0.1 nor",
        ],
        apache: &["ZKTrustManager", "Failed to verify host address: 127.0.0.1"],
    };
    refused_member(&mut ensemble, 2, &elsewhere, &wrong_host, "v2b");

    // Then without TLS at all: its plain handshake is no TLS handshake.
    ensemble.kill(2);
    let plain = good_config.replace("sslQuorum=true", "sslQuorum=false");
    let no_tls = Refusal {
        ringkeeper: &["refused a peer connection from 127.0.0.1:", "TLS handshake failed", "corrupt message"],
        apache: &["Blocked insecure connection attempt"],
    };
    refused_member(&mut ensemble, 2, &plain, &no_tls, "v3");

    // With its own certificate back it rejoins and has every write.
    rejoins(&mut ensemble, 2, &good_config, "v3");
}

#[test]
fn with_quorum_crl_a_member_whose_certificate_was_revoked_is_refused() {
    if Target::from_env() == Target::Apache {
        return; // Apache fetches CRLs from the certificates' distribution points (these have none)
    }
    let pki = quorum_pki();
    pki.leaf(
        "revoked",
        "ca",
        "/CN=ringkeeper member revoked",
        QUORUM_MEMBER_USAGE,
        "subjectAltName=IP:127.0.0.1",
    );
    let trust_store = pki.revocation_list("ca", &["revoked"]);
    let config = |key_store: &str| {
        pki.quorum_tls_config(key_store).replace("ca.pem", &trust_store) + "ssl.quorum.crl=true\n"
    };
    let mut ensemble = Ensemble::start(3, 0, &config("member.p12"));
    writes_replicate(&ensemble);

    // Member 3 comes back with a certificate of the trusted CA that the CA revoked.
    let good_config = std::fs::read_to_string(ensemble.members[2].dir.join("zoo.cfg")).unwrap();
    let revoked = good_config.replace(&config("member.p12"), &config("revoked.pem"));
    assert_ne!(revoked, good_config);
    let refusal = Refusal {
        ringkeeper: &["refused a peer connection from 127.0.0.1:", "(sslQuorum)", "Revoked"],
        apache: &[],
    };
    refused_member(&mut ensemble, 2, &revoked, &refusal, "v2");
    rejoins(&mut ensemble, 2, &good_config, "v2");
}

/// Restarts member `i` with `config` and checks it serves the last `value` written.
fn rejoins(ensemble: &mut Ensemble, i: usize, config: &str, value: &str) {
    std::fs::write(ensemble.members[i].dir.join("zoo.cfg"), config).unwrap();
    ensemble.restart(i);
    assert_eq!(kazoo(&ensemble.connect_string_of(&[i]), &["read", PATH]), value);
}

/// Writes `v1` through member 1 and reads it from the others.
fn writes_replicate(ensemble: &Ensemble) {
    assert_eq!(kazoo(&ensemble.connect_string_of(&[0]), &["write", PATH, "v1"]), "ok");
    for i in 1..3 {
        assert_eq!(kazoo(&ensemble.connect_string_of(&[i]), &["read", PATH]), "v1", "member {}", i + 1);
    }
}

/// A JAAS file with the quorum sections: `QuorumServer` admits `learner` with `admitted`,
/// `QuorumLearner` logs in as `learner` with `password`.
fn quorum_jaas(dir: &std::path::Path, name: &str, password: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "QuorumServer {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_learner=\"right-pw\";\n}};\n\
             QuorumLearner {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"learner\"\n  password=\"{password}\";\n}};\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn an_ensemble_with_quorum_sasl_serves_and_refuses_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let right = quorum_jaas(dir.path(), "jaas.conf", "right-pw");
    let wrong = quorum_jaas(dir.path(), "wrong-jaas.conf", "wrong-pw");
    let sasl = format!(
        "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n\
         java.security.auth.login.config={}\n",
        right.display()
    );
    let mut ensemble = Ensemble::start(3, 0, &sasl);
    writes_replicate(&ensemble);
    let admitted = match ensemble.target {
        Target::Ringkeeper => "authenticated to this member as learner",
        Target::Apache => "Successfully authenticated learner: authenticationID=learner;",
    };
    eprintln!("{}", wait_log_line(&ensemble, usize::MAX, &[admitted]));

    let good_config = std::fs::read_to_string(ensemble.members[2].dir.join("zoo.cfg")).unwrap();
    let wrong_password = good_config.replace(&right.display().to_string(), &wrong.display().to_string());
    assert_ne!(wrong_password, good_config);
    let refused = Refusal {
        ringkeeper: &[
            "refused a peer connection from",
            "server 3 (quorum SASL)",
            "wrong password for user \"learner\"",
        ],
        apache: &["DIGEST-MD5: digest response format violation. Mismatched response."],
    };
    refused_member(&mut ensemble, 2, &wrong_password, &refused, "v2");
    if ensemble.target == Target::Ringkeeper {
        let log = ensemble.log(2);
        assert!(log.contains("it refused this member's credentials (user learner)"), "member 3:\n{log}");
    }

    // Without SASL at all (the others require it).
    ensemble.kill(2);
    let no_sasl = good_config
        .replace("quorum.auth.enableSasl=true", "quorum.auth.enableSasl=false")
        .replace("quorum.auth.learnerRequireSasl=true\n", "")
        .replace("quorum.auth.serverRequireSasl=true\n", "");
    let unauthenticated = Refusal {
        ringkeeper: &["server 3 (quorum SASL)", "did not authenticate"],
        apache: &["Learner not trying to authenticate and authentication is required"],
    };
    refused_member(&mut ensemble, 2, &no_sasl, &unauthenticated, "v3");

    rejoins(&mut ensemble, 2, &good_config, "v3");
}

#[test]
fn a_member_with_an_unreadable_quorum_key_store_refuses_to_start() {
    if Target::from_env() == Target::Apache {
        return; // ringkeeper's own start-up message
    }
    let pki = quorum_pki();
    let mut ensemble = Ensemble::start(3, 0, "");
    let config = std::fs::read_to_string(ensemble.members[2].dir.join("zoo.cfg")).unwrap();
    let wrong_password =
        pki.quorum_tls_config("member.p12").replace(&format!("password={STORE_PASSWORD}"), "password=wrong");
    std::fs::write(ensemble.members[2].dir.join("zoo.cfg"), config + &wrong_password).unwrap();
    ensemble.relaunch(2);
    let status = ensemble.wait_exit(2, Duration::from_secs(30));
    assert!(matches!(status, Some(s) if !s.success()), "member 3 started:\n{}", ensemble.log(2));
    let log = ensemble.log(2);
    assert!(log.contains("ssl.quorum.keyStore") && log.contains("password"), "{log}");
}
