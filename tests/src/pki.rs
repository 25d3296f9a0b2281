//! Throw-away PKIs for the TLS tests, made with Debian's `openssl` (and Java's `keytool` for a
//! PKCS12 trust store as Java writes it) in a temporary directory: nothing checked in that
//! could expire. Keys are unencrypted P-256; certificates are valid for two days.
//!
//! Files are named after what they hold: `NAME.key` (the key), `NAME.crt` (a leaf
//! certificate), `NAME.pem` (a CA's certificate, or a leaf's certificate and key in one file,
//! the PEM key store Apache reads), `NAME.p12` (a PKCS12 key store with the chain), `NAME.crl`
//! (a CA's certificate revocation list).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::compat::compat_dir;

/// `openssl req` arguments for a new unencrypted P-256 key.
const NEW_EC_KEY: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
/// The extended key usage of a quorum member's certificate: it both dials and accepts.
pub const QUORUM_MEMBER_USAGE: &str = "serverAuth,clientAuth";
/// The password of the PKCS12 stores.
pub const STORE_PASSWORD: &str = "store-pw";

/// A throw-away PKI in a temporary directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

/// Runs `cmd`, panicking with its output unless it succeeds; its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Pki {
    /// An empty PKI directory.
    pub fn empty() -> Pki {
        Pki { dir: tempfile::tempdir().unwrap() }
    }

    fn openssl(&self, args: &[&str]) {
        run(Command::new("openssl").args(args).current_dir(self.dir.path()));
    }

    /// A self-signed CA: `NAME.key`, `NAME.pem`.
    pub fn ca(&self, name: &str, subject: &str) {
        let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
        let mut args = vec!["req", "-x509"];
        args.extend(NEW_EC_KEY);
        args.extend(["-keyout", &key, "-out", &cert, "-days", "2", "-subj", subject]);
        args.extend([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        self.openssl(&args);
    }

    /// A leaf certificate signed by CA `ca`: `NAME.key`, `NAME.crt`, and the PEM key store
    /// `NAME.pem`. `usage` is its extended key usage (`serverAuth`, `clientAuth`, or both
    /// comma separated), `extra` more extension lines (`subjectAltName=IP:127.0.0.1`).
    pub fn leaf(&self, name: &str, ca: &str, subject: &str, usage: &str, extra: &str) {
        let dir = self.dir.path();
        let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
        let mut args = vec!["req", "-new"];
        args.extend(NEW_EC_KEY);
        args.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
        self.openssl(&args);
        let ext = dir.join(format!("{name}.ext"));
        std::fs::write(&ext, format!("basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n{extra}\n"))
            .unwrap();
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.crt"),
            "-extfile",
            ext.to_str().unwrap(),
        ]);
        // A PEM key store as Apache reads it: the certificate and the key in one file.
        let pem = std::fs::read_to_string(dir.join(format!("{name}.crt"))).unwrap()
            + &std::fs::read_to_string(dir.join(&key)).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), pem).unwrap();
    }

    /// `NAME.p12`: a PKCS12 key store (password [`STORE_PASSWORD`]) with leaf `name`'s key,
    /// its certificate and that of CA `ca`.
    pub fn pkcs12_key_store(&self, name: &str, ca: &str) {
        self.openssl(&[
            "pkcs12",
            "-export",
            "-in",
            &format!("{name}.crt"),
            "-inkey",
            &format!("{name}.key"),
            "-certfile",
            &format!("{ca}.pem"),
            "-name",
            name,
            "-out",
            &format!("{name}.p12"),
            "-passout",
            &format!("pass:{STORE_PASSWORD}"),
        ]);
    }

    /// `trust.p12`: a PKCS12 trust store holding the CA `ca.pem`, made by Java's `keytool` (a
    /// JVM start, so only for the tests that use it).
    pub fn keytool_trust_store(&self) -> &'static str {
        run(Command::new("keytool").current_dir(self.dir.path()).args([
            "-importcert",
            "-noprompt",
            "-alias",
            "ca",
            "-file",
            "ca.pem",
            "-storetype",
            "PKCS12",
            "-keystore",
            "trust.p12",
            "-storepass",
            STORE_PASSWORD,
        ]));
        "trust.p12"
    }

    /// `CA.crl`: a certificate revocation list of CA `ca` (PEM, valid two days) revoking the
    /// leaf certificates `revoked` (`NAME.crt`), made with `openssl ca`; and the PEM trust
    /// store `CA-with-crl.pem` holding the CA's certificate and that list, whose name it returns.
    pub fn revocation_list(&self, ca: &str, revoked: &[&str]) -> String {
        let dir = self.dir.path();
        let config = self.openssl_ca_config(ca);
        let (cert, key) = (format!("{ca}.pem"), format!("{ca}.key"));
        let signed_by = ["-config", &config, "-cert", &cert, "-keyfile", &key];
        for name in revoked {
            let revoked_cert = format!("{name}.crt");
            let mut args = vec!["ca"];
            args.extend(signed_by);
            args.extend(["-revoke", &revoked_cert]);
            self.openssl(&args);
        }
        let crl = format!("{ca}.crl");
        let mut args = vec!["ca"];
        args.extend(signed_by);
        args.extend(["-gencrl", "-out", &crl]);
        self.openssl(&args);
        let trust_store = format!("{ca}-with-crl.pem");
        let with_crl = std::fs::read_to_string(dir.join(&cert)).unwrap()
            + &std::fs::read_to_string(dir.join(&crl)).unwrap();
        std::fs::write(dir.join(&trust_store), with_crl).unwrap();
        trust_store
    }

    /// An `openssl ca` configuration for CA `ca` (its database, serial and CRL number files
    /// made once, next to it); its file name.
    fn openssl_ca_config(&self, ca: &str) -> String {
        let dir = self.dir.path();
        let config = format!("{ca}.ca.cnf");
        if dir.join(&config).exists() {
            return config;
        }
        let (database, serial, number) =
            (format!("{ca}.index"), format!("{ca}.serial"), format!("{ca}.crlnumber"));
        std::fs::write(dir.join(&database), "").unwrap();
        std::fs::write(dir.join(&serial), "1000\n").unwrap();
        std::fs::write(dir.join(&number), "01\n").unwrap();
        std::fs::write(
            dir.join(&config),
            format!(
                "[ca]\ndefault_ca = this_ca\n[this_ca]\ndatabase = {database}\nserial = {serial}\n\
                 crlnumber = {number}\nnew_certs_dir = .\ndefault_md = sha256\ndefault_crl_days = 2\n\
                 policy = any_subject\n[any_subject]\ncommonName = supplied\n"
            ),
        )
        .unwrap();
        config
    }

    /// A leaf certificate of CA `ca` as [`Pki::leaf`] makes, but valid only on 1 January 2020
    /// (expired): `NAME.key`, `NAME.crt`.
    pub fn expired_leaf(&self, name: &str, ca: &str, subject: &str, usage: &str) {
        let config = self.openssl_ca_config(ca);
        let (key, csr, ext) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.ext"));
        let mut args = vec!["req", "-new"];
        args.extend(NEW_EC_KEY);
        args.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
        self.openssl(&args);
        std::fs::write(
            self.dir.path().join(&ext),
            format!("basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n"),
        )
        .unwrap();
        let (cert, ca_key, out) = (format!("{ca}.pem"), format!("{ca}.key"), format!("{name}.crt"));
        self.openssl(&[
            "ca",
            "-batch",
            "-notext",
            "-config",
            &config,
            "-cert",
            &cert,
            "-keyfile",
            &ca_key,
            "-in",
            &csr,
            "-out",
            &out,
            "-extfile",
            &ext,
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
        ]);
    }

    /// The PKI of an ensemble with quorum TLS: a CA `ca` and the members' certificate
    /// `member` (server and client use, SAN 127.0.0.1 and localhost), also as the PKCS12 key
    /// store `member.p12`.
    pub fn quorum() -> Pki {
        let pki = Pki::empty();
        pki.ca("ca", "/CN=ringkeeper quorum CA");
        pki.leaf(
            "member",
            "ca",
            "/CN=ringkeeper member",
            QUORUM_MEMBER_USAGE,
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        );
        pki.pkcs12_key_store("member", "ca");
        pki
    }

    /// The zoo.cfg lines of quorum TLS with member certificate `key_store` (`.p12` or `.pem`)
    /// and the trust store `ca.pem`.
    pub fn quorum_tls_config(&self, key_store: &str) -> String {
        let password = if key_store.ends_with(".p12") {
            format!("ssl.quorum.keyStore.password={STORE_PASSWORD}\n")
        } else {
            String::new()
        };
        format!(
            "sslQuorum=true\nssl.quorum.keyStore.location={}\n{password}ssl.quorum.trustStore.location={}\n",
            self.path(key_store).display(),
            self.path("ca.pem").display()
        )
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// The subject of `cert` as Java's `X500Principal.getName()` prints it.
    pub fn java_subject(&self, cert: &str) -> String {
        let out = run(Command::new("java").arg(compat_dir().join("SubjectDn.java")).arg(self.path(cert)));
        out.trim_end().to_owned()
    }

    pub fn dir(&self) -> String {
        self.dir.path().display().to_string()
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}
