//! Mail through a real SMTP server: aiosmtpd (from PyPI; `scripts/test` installs it — these
//! tests fail, never skip, without it) writing a Maildir. Mails go through the outbox: a server
//! that is down delays them, and once it is up each arrives exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use bourse_wallet::testing::{free_port, until};
use common::{App, Backend};
use serde_json::json;
use std::path::{Path, PathBuf};

/// `python3 -m aiosmtpd` on `port`, delivering into the Maildir `dir` (which it creates; it must
/// not exist yet); killed when dropped.
struct Smtp {
    child: std::process::Child,
}

impl Smtp {
    fn start(port: u16, dir: &Path) -> Smtp {
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox", dir.to_str().unwrap()])
            .spawn()
            .expect("python3 -m aiosmtpd (scripts/test installs it)");
        Smtp { child }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every mail in the Maildir, as text.
fn maildir(dir: &Path) -> Vec<String> {
    let new: PathBuf = dir.join("new");
    let Ok(entries) = std::fs::read_dir(new) else { return Vec::new() };
    entries.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect()
}

/// The mails to `to`.
fn mails_to(dir: &Path, to: &str) -> Vec<String> {
    maildir(dir).into_iter().filter(|m| m.contains(&format!("X-RcptTo: {to}"))).collect()
}

async fn app_with_smtp(port: u16) -> App {
    App::spawn_with(
        Backend::Sqlite,
        &[
            ("BOURSE_MAIL__SMTP_URL", &format!("smtp://127.0.0.1:{port}")),
            ("BOURSE_MAIL__FROM", "bourse <noreply@bourse.test>"),
            ("BOURSE_MAIL__RETRY_BASE_MS", "200"),
            ("BOURSE_MAIL__RETRY_MAX_MS", "400"),
            ("BOURSE_MAIL__INTERVAL_MS", "100"),
        ],
    )
    .await
}

async fn signup(app: &App, email: &str) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/signup", app.url))
        .json(&json!({"email": email, "password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

#[tokio::test]
async fn the_verification_mail_arrives_by_smtp_and_its_link_works() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("maildir");
    let port = free_port();
    let _smtp = Smtp::start(port, &dir);
    let app = app_with_smtp(port).await;
    signup(&app, "dora@example.com").await;
    let mail = until("the mail", async || mails_to(&dir, "dora@example.com").pop()).await;
    assert!(mail.contains("From: bourse <noreply@bourse.test>"), "{mail}");
    assert!(mail.contains("Subject: Confirm your e-mail address"), "{mail}");
    assert!(
        mail.contains("Content-Type: text/plain") && mail.contains("Content-Type: text/html"),
        "{mail}"
    );
    // The link, from the plain-text part (quoted-printable may wrap it: unfold first).
    let unfolded = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let token = unfolded.split("/verify?token=").nth(1).unwrap();
    let token: String =
        token.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/verify", app.url))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn mail_waits_for_a_server_that_is_down_and_arrives_once() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("maildir");
    let port = free_port();
    let app = app_with_smtp(port).await;
    for who in ["eve@example.com", "finn@example.com", "gus@example.com"] {
        signup(&app, who).await;
    }
    // Nobody listens: each attempt fails and the mails stay queued.
    let store = bourse_store::connect(&app.database_url).await.unwrap();
    until("a failed attempt", async || {
        let due = store.due_mails(i64::MAX, 10).await.unwrap();
        (due.len() == 3 && due.iter().all(|m| m.attempts >= 1)).then_some(())
    })
    .await;
    assert_eq!(store.mail_queue_len().await.unwrap(), 3);
    assert!(maildir(&dir).is_empty());

    // The server comes up: every mail arrives, once.
    let _smtp = Smtp::start(port, &dir);
    until("all delivered", async || (store.mail_queue_len().await.unwrap() == 0).then_some(()))
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    for who in ["eve@example.com", "finn@example.com", "gus@example.com"] {
        assert_eq!(mails_to(&dir, who).len(), 1, "{who}");
    }
    assert_eq!(maildir(&dir).len(), 3);
    store.close().await;
}
