//! The shipped systemd units (`deploy/systemd/`: the exchange, its split into the engine and
//! the other roles or into one process per role, the backup service and its timer): `systemd-analyze verify` accepts each
//! without a word (it only warns about unknown keys, so any output fails the test), with
//! ExecStart pointing at the binary this build made; and the services' sandboxing rates OK.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::process::Command;

mod common;

use common::repo;

/// `systemd-analyze verify` on `path`: must succeed and print nothing.
fn verify_silently(path: &std::path::Path) {
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(path)
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(verify.status.success() && said.trim().is_empty(), "{}: {said}", path.display());
}

#[test]
fn the_systemd_units_verify_silently_and_are_sandboxed() {
    let dir = tempfile::tempdir().unwrap();
    let units = [
        ("bourse.service", "ExecStart=/usr/local/bin/bourse serve"),
        ("bourse-engine.service", "serve --config /etc/bourse/bourse.toml --roles engine"),
        ("bourse-app.service", "--roles gateway,wallet,worker,admin"),
        ("bourse-gateway.service", "--roles gateway\n"),
        ("bourse-wallet.service", "--roles wallet\n"),
        ("bourse-worker.service", "--roles worker\n"),
        ("bourse-admin.service", "--roles admin\n"),
        ("bourse-backup.service", "ExecStart=/usr/local/bin/bourse backup"),
        ("bourse-backup.timer", "OnCalendar="),
    ];
    // All in one directory first: the timer names its service.
    for (name, expected) in units {
        let unit = std::fs::read_to_string(repo().join("deploy/systemd").join(name)).unwrap();
        assert!(unit.contains(expected), "{name}: {unit}");
        let unit = unit.replace("/usr/local/bin/bourse", env!("CARGO_BIN_EXE_bourse"));
        std::fs::write(dir.path().join(name), unit).unwrap();
    }
    for (name, _) in units {
        let path = dir.path().join(name);
        verify_silently(&path);
        if !name.ends_with(".service") {
            continue;
        }
        let security = Command::new("systemd-analyze")
            .args(["security", "--offline=true"])
            .arg(&path)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&security.stdout).into_owned();
        let overall =
            report.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_default();
        assert!(overall.contains(" OK"), "{name}: {report}");
    }
}
