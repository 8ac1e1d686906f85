//! The shipped systemd unit (`deploy/systemd/bourse.service`): `systemd-analyze verify` accepts
//! it without a word (it only warns about unknown keys, so any output fails the test), with
//! ExecStart pointing at the binary this build made; and its sandboxing rates OK.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    // At run time: a build cache filled from another checkout keeps that checkout's path in
    // `env!`.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("../..")
}

#[test]
fn the_systemd_unit_verifies_silently_and_is_sandboxed() {
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/bourse.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/bourse serve"), "{unit}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bourse.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/bourse", env!("CARGO_BIN_EXE_bourse")))
        .unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(verify.status.success() && said.trim().is_empty(), "{said}");
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout).into_owned();
    let overall = report.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_default();
    assert!(overall.contains(" OK"), "{report}");
}
