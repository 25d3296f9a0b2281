//! A throw-away MIT Kerberos realm for the SASL GSSAPI tests: Debian's `krb5kdc` (packages
//! krb5-kdc, krb5-admin-server) on a free port of 127.0.0.1, its database, stash and logs in
//! a temporary directory, principals made with `kadmin.local`, tickets with `kinit`.
//!
//! The realm's `krb5.conf` turns DNS off (no realm or KDC lookups, no reverse lookups, host
//! names taken as written), so a service principal `zookeeper/localhost` is what a client
//! that connects to `localhost` asks a ticket for. Point a process at the realm with
//! [`Kdc::env`] (`KRB5_CONFIG`, and `KRB5_KDC_PROFILE` for the admin tools). The KDC is
//! killed when the [`Kdc`] drops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;
use crate::pki::run;

/// The realm of every test KDC.
pub const REALM: &str = "RINGKEEPER.TEST";

/// A running KDC and its realm's files.
pub struct Kdc {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Kdc {
    /// Creates the realm's database and starts `krb5kdc` in the foreground; returns once it
    /// issues tickets.
    pub fn start() -> Kdc {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let root = dir.path().display().to_string();
        std::fs::write(
            dir.path().join("krb5.conf"),
            format!(
                "[libdefaults]\n default_realm = {REALM}\n dns_lookup_realm = false\n dns_lookup_kdc = false\n \
                 rdns = false\n dns_canonicalize_hostname = false\n udp_preference_limit = 1\n\
                 [realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{port}\n }}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("kdc.conf"),
            format!(
                "[kdcdefaults]\n kdc_ports = {port}\n kdc_tcp_ports = {port}\n\
                 [realms]\n {REALM} = {{\n  database_name = {root}/principal\n  key_stash_file = {root}/stash\n  \
                 acl_file = {root}/kadm5.acl\n }}\n[logging]\n kdc = FILE:{root}/kdc.log\n"
            ),
        )
        .unwrap();
        let tool = |name: &str| {
            let mut c = Command::new(name);
            for (k, v) in Self::env_of(dir.path()) {
                c.env(k, v);
            }
            c
        };
        run(tool("kdb5_util").args(["create", "-s", "-r", REALM, "-P", "master-pw"]).stdout(Stdio::null()));
        let child = tool("krb5kdc")
            .args(["-n", "-r", REALM])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start krb5kdc: {e} (Debian package krb5-kdc, see .ci/run)"));
        let kdc = Kdc { dir, port, child };
        // Issues tickets once a kinit works.
        kdc.add_principal("probe", Some("probe-pw"));
        let deadline = Instant::now() + Duration::from_secs(20);
        let probe = kdc.path("probe.ccache");
        while kdc.try_kinit_password("probe", "probe-pw", &probe).is_err() {
            assert!(Instant::now() < deadline, "the KDC does not issue tickets:\n{}", kdc.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        kdc
    }

    fn env_of(dir: &Path) -> [(&'static str, PathBuf); 2] {
        [("KRB5_CONFIG", dir.join("krb5.conf")), ("KRB5_KDC_PROFILE", dir.join("kdc.conf"))]
    }

    /// The variables that point Kerberos tools and libraries at this realm.
    pub fn env(&self) -> [(&'static str, PathBuf); 2] {
        Self::env_of(self.dir.path())
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn kadmin(&self, query: &str) {
        let mut c = Command::new("kadmin.local");
        c.envs(self.env()).args(["-r", REALM, "-q", query]).stdout(Stdio::null());
        run(&mut c);
    }

    /// Adds `principal` (`name` or `service/host`, in [`REALM`]) with `password`, or a random
    /// key when `None`.
    pub fn add_principal(&self, principal: &str, password: Option<&str>) {
        match password {
            Some(pw) => self.kadmin(&format!("addprinc -pw {pw} {principal}")),
            None => self.kadmin(&format!("addprinc -randkey {principal}")),
        }
    }

    /// Writes the current keys of `principal` into the key table `file` (made if missing;
    /// the keys stay as they are, `-norandkey`); its path.
    pub fn key_table(&self, principal: &str, file: &str) -> PathBuf {
        let path = self.path(file);
        self.kadmin(&format!("ktadd -norandkey -k {} {principal}", path.display()));
        path
    }

    /// Gives `principal` a new random key (key tables written before no longer hold it).
    pub fn new_key(&self, principal: &str) {
        self.kadmin(&format!("cpw -randkey {principal}"));
    }

    /// `kinit` of `principal` with `password` into the credential cache `ccache`.
    pub fn try_kinit_password(&self, principal: &str, password: &str, ccache: &Path) -> Result<(), String> {
        use std::io::Write;
        let mut child = Command::new("kinit")
            .envs(self.env())
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
            .arg(principal)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run kinit: {e} (Debian package krb5-user, see .ci/run)"));
        let _ = writeln!(child.stdin.take().unwrap(), "{password}");
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The KDC's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("kdc.log")).unwrap_or_default()
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
