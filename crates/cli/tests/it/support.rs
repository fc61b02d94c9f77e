//! What the binary's suites share: running `consentric` on a data directory.

use std::path::Path;
use std::process::{Command, Output};

/// `consentric --data-dir <data_dir>`, never reaching for a PostgreSQL URL from the environment.
pub fn command(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_consentric"));
    c.arg("--data-dir")
        .arg(data_dir)
        .env_remove("CONSENTRIC_DATABASE_URL");
    c
}

/// Runs `consentric --data-dir <data_dir> <args…>` to its end.
pub fn consentric(data_dir: &Path, args: &[&str]) -> Output {
    command(data_dir)
        .args(args)
        .output()
        .expect("run consentric")
}

/// The standard output of a run that must have succeeded.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}
