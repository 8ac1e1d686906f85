//! Mail through a real SMTP server, and operator alerts through a webhook. aiosmtpd (from PyPI; `scripts/test` installs it — these
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

/// A webhook that records each JSON body it is posted; answers 503 while `down` is set.
struct Webhook {
    url: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Webhook {
    async fn start() -> Webhook {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (b, d) = (bodies.clone(), down.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then a Content-Length body.
                let body = loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break Some(body.to_string());
                        }
                    }
                };
                let Some(body) = body else { continue };
                let status = if d.load(std::sync::atomic::Ordering::SeqCst) {
                    "503 Service Unavailable"
                } else {
                    b.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                    "200 OK"
                };
                let answer =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        Webhook { url, bodies, down }
    }
}

#[tokio::test]
async fn operator_alerts_reach_the_webhook_in_order_after_it_was_down() {
    let hook = Webhook::start().await;
    hook.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let app = App::spawn_with(
        Backend::Sqlite,
        &[("BOURSE_ALERTS__WEBHOOK_URL", hook.url.as_str()), ("BOURSE_ALERTS__INTERVAL_MS", "100")],
    )
    .await;
    // Alerts as the wallet raises them (recorded in the store).
    let store = bourse_store::connect(&app.database_url).await.unwrap();
    for message in
        ["the hot wallet holds 1 LTC less than users are owed", "a deposit left the chain"]
    {
        bourse_wallet::alert::raise(store.as_ref(), "wallet:LTC", message.to_string(), 1).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(hook.bodies.lock().unwrap().is_empty(), "the webhook is down");
    hook.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let got = until("delivered", async || {
        let bodies = hook.bodies.lock().unwrap().clone();
        (bodies.len() >= 2).then_some(bodies)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(hook.bodies.lock().unwrap().len(), 2, "each once");
    assert_eq!(
        got[0]["text"],
        "bourse alert from wallet:LTC: the hot wallet holds 1 LTC less than users are owed"
    );
    assert_eq!(got[1]["text"], "bourse alert from wallet:LTC: a deposit left the chain");
    assert_eq!(
        store.alert_sink_cursor("webhook").await.unwrap(),
        store.alerts(1).await.unwrap()[0].id
    );
    store.close().await;
}
