//! Build facts for `ringkeeper --version`, `srvr` and `envi`: when this build was made
//! (`SOURCE_DATE_EPOCH` when set, for reproducible packages; else the time the build script
//! ran) and the git commit it was built from (empty outside a git checkout). Only numbers and
//! the commit id are exported; the server formats the date itself.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // Run again when the checked-out commit moves (HEAD, the branch it names, packed refs).
    // Only existing files are named: a missing one would make cargo rerun this every build.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            if std::path::Path::new(&path).is_file() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    let built_secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_default();
    println!("cargo:rustc-env=RINGKEEPER_BUILT_UNIX_SECS={built_secs}");
    println!("cargo:rustc-env=RINGKEEPER_GIT_COMMIT={commit}");
}
