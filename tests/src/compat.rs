//! Runs the third-party client scripts of `tests/compat/` (kazoo, zkCli.sh, cli_mt) against
//! a [`TestServer`]: each in its own process group under a wall-clock limit, its output
//! kept in the server's directory and shown with the server log when it fails.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{wait_exit, workspace_root, TestServer};

/// Whole-script limit; every script also bounds each client call on its own.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// The directory of the client scripts (`tests/compat`).
pub fn compat_dir() -> PathBuf {
    workspace_root().join("tests").join("compat")
}

/// Runs `kazoo_reconfig.py hosts args...` (its commands read and write znodes and drive
/// reconfig on any member of an ensemble); its output without the final "OK". Panics unless
/// it exits 0.
pub fn kazoo_reconfig(hosts: &str, args: &[&str]) -> String {
    let mut all = vec![hosts];
    all.extend_from_slice(args);
    let stdout = python_script("kazoo_reconfig.py", &all)
        .unwrap_or_else(|stdout| panic!("kazoo_reconfig.py {args:?} failed:\n{stdout}"));
    stdout.trim_end().strip_suffix("OK").unwrap_or(&stdout).trim_end().to_string()
}

/// Runs `python3 script args...` from `tests/compat` (the scripts bound their own run time):
/// its standard output, as `Err` unless it exited 0.
pub fn python_script(script: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new("python3")
        .arg(compat_dir().join(script))
        .args(args)
        .current_dir(compat_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run python3 (see .ci/run for kazoo)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr)))
    }
}

/// Runs `program script args...` against `server`, with `tests/compat` as working
/// directory; panics (showing script output and server log) unless it exits 0 in time.
pub fn run_script(server: &TestServer, program: &str, script: &str, args: &[&str]) -> String {
    run_script_at(server, &server.connect_string(), program, script, args)
}

/// [`run_script`] with the connect string `hosts` (another port of `server`, e.g. its TLS port).
pub fn run_script_at(server: &TestServer, hosts: &str, program: &str, script: &str, args: &[&str]) -> String {
    let out_path = server.dir.path().join(format!("{script}.out"));
    let out = std::fs::File::create(&out_path).expect("create script output file");
    let mut child = Command::new(program)
        .arg(compat_dir().join(script))
        .arg(hosts)
        .args(args)
        .current_dir(compat_dir())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        // Own process group, so a timeout also kills the JVMs/cli_mt the script started.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} {script}: {e} (see .ci/run)"));

    let started = Instant::now();
    let status = wait_exit(&mut child, SCRIPT_TIMEOUT);
    if status.is_none() {
        kill_group(child.id());
        let _ = child.wait();
    }
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    match status {
        Some(s) if s.success() => output,
        other => {
            let why = match other {
                Some(s) => format!("exited with {s}"),
                None => format!("timed out after {SCRIPT_TIMEOUT:?}"),
            };
            panic!(
                "{script} against {:?} at {hosts} {why} after {:.1?}\n\
                 ===== script output =====\n{output}\n\
                 ===== server log =====\n{}",
                server.target,
                started.elapsed(),
                server.log()
            );
        }
    }
}

/// SIGKILL to every process in the group led by `pid` (bash's builtin `kill`, so no
/// dependency on procps).
fn kill_group(pid: u32) {
    let _ = Command::new("bash")
        .args(["-c", &format!("kill -KILL -- -{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
