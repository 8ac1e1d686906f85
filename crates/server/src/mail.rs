//! Outgoing mail. Every mail is queued in the store's outbox (`mail_outbox`) by [`queue`] and
//! sent by one worker ([`run_worker`]) with retries and exponential backoff, so a mail server
//! that is down delays mail and loses none. A mail is marked sent once the server took it; a
//! crash between the two sends it again (at least once, never lost).
//!
//! Where it goes: an SMTP server (`mail.smtp_url`: `smtps://` TLS, `smtp://…?tls=required`
//! STARTTLS, plain `smtp://` for a local relay), or without one the local mailbox
//! `<data_dir>/mailbox/` — one plain-text file a mail, for the demo and tests.

use askama::Template;
use bourse_core::Secret;
use bourse_store::{MailRow, NewMail, Store, StoreError};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// `[mail]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// `smtps://user:password@mail.example.com` (TLS), `smtp://…:587?tls=required`
    /// (STARTTLS) or `smtp://127.0.0.1:25` (a local relay, plain). None: the local mailbox.
    #[serde(default)]
    pub smtp_url: Option<Secret>,
    /// The sender.
    #[serde(default = "default_from")]
    pub from: String,
    /// The first retry waits this long; each next one twice as long, up to `retry_max_ms`.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// How often the outbox is looked at (a queued mail wakes the worker at once).
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// One SMTP conversation at most.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_from() -> String {
    "bourse <noreply@localhost>".into()
}
fn default_retry_base_ms() -> u64 {
    1_000
}
fn default_retry_max_ms() -> u64 {
    600_000
}
fn default_interval_ms() -> u64 {
    1_000
}
fn default_timeout_ms() -> u64 {
    10_000
}

impl Default for MailConfig {
    fn default() -> MailConfig {
        MailConfig {
            smtp_url: None,
            from: default_from(),
            retry_base_ms: default_retry_base_ms(),
            retry_max_ms: default_retry_max_ms(),
            interval_ms: default_interval_ms(),
            timeout_ms: default_timeout_ms(),
        }
    }
}

/// Mails sent per worker pass at most.
const BATCH: u32 = 50;

/// The HTML part: the text's paragraphs, its links clickable.
#[derive(Template)]
#[template(path = "mail.html")]
struct MailHtml<'a> {
    subject: &'a str,
    paragraphs: Vec<Vec<Line>>,
}

struct Line {
    text: String,
    link: bool,
}

/// The HTML part of a plain-text mail.
fn html(subject: &str, text: &str) -> String {
    let paragraphs = text
        .split("\n\n")
        .map(|p| {
            p.lines()
                .map(|l| Line {
                    text: l.trim().to_string(),
                    link: l.trim().starts_with("https://") || l.trim().starts_with("http://"),
                })
                .collect()
        })
        .collect();
    MailHtml { subject, paragraphs }.render().unwrap_or_else(|_| String::new())
}

/// Queues a mail (plain text and its HTML part) and wakes the worker.
pub async fn queue(
    store: &dyn Store,
    wake: &tokio::sync::Notify,
    to: &str,
    subject: &str,
    text: &str,
) -> Result<(), StoreError> {
    store.enqueue_mail(&compose(to, subject, text)).await?;
    wake.notify_one();
    Ok(())
}

/// A mail with its plain-text part and the HTML part rendered from it.
pub fn compose(to: &str, subject: &str, text: &str) -> NewMail {
    NewMail {
        to: to.to_string(),
        subject: subject.to_string(),
        text: text.to_string(),
        html: html(subject, text),
        created_ms: crate::now_ms(),
    }
}

/// Where mail goes.
pub enum Transport {
    Mailbox(PathBuf),
    Smtp { smtp: Box<AsyncSmtpTransport<Tokio1Executor>>, from: Mailbox },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Mailbox(dir) => f.debug_tuple("Mailbox").field(dir).finish(),
            Transport::Smtp { from, .. } => f.debug_struct("Smtp").field("from", from).finish(),
        }
    }
}

impl Transport {
    /// The configured transport; an invalid URL or sender is an error at start.
    pub fn new(config: &MailConfig, data_dir: &Path) -> Result<Transport, String> {
        let Some(url) = &config.smtp_url else {
            return Ok(Transport::Mailbox(data_dir.join("mailbox")));
        };
        let from: Mailbox =
            config.from.parse().map_err(|e| format!("mail.from {:?}: {e}", config.from))?;
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            .map_err(|e| format!("mail.smtp_url: {e}"))?
            .timeout(Some(Duration::from_millis(config.timeout_ms.max(1))))
            .build();
        Ok(Transport::Smtp { smtp: Box::new(smtp), from })
    }

    /// Hands one mail over; the error says why it was not taken.
    async fn send(&self, mail: &MailRow) -> Result<(), String> {
        match self {
            Transport::Mailbox(dir) => write_mailbox(dir, mail).map_err(|e| e.to_string()),
            Transport::Smtp { smtp, from } => {
                let to: Mailbox =
                    mail.to.parse().map_err(|e| format!("recipient {:?}: {e}", mail.to))?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(mail.subject.clone())
                    .multipart(MultiPart::alternative_plain_html(
                        mail.text.clone(),
                        mail.html.clone(),
                    ))
                    .map_err(|e| e.to_string())?;
                smtp.send(message).await.map(|_| ()).map_err(|e| e.to_string())
            }
        }
    }
}

/// One plain-text file a mail (like a maildir's `new/`).
fn write_mailbox(dir: &Path, mail: &MailRow) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = format!("{:013}-{:010}.txt", mail.created_ms.max(0), mail.id);
    let text = format!("To: {}\nSubject: {}\n\n{}\n", mail.to, mail.subject, mail.text);
    std::fs::write(dir.join(name), text)?;
    tracing::info!(to = %mail.to, subject = %mail.subject, "mail written to the local mailbox");
    Ok(())
}

/// When a mail that failed `attempts` times is tried again.
fn backoff(config: &MailConfig, attempts: u32) -> Duration {
    let factor = 1u64.checked_shl(attempts.min(32)).unwrap_or(u64::MAX);
    Duration::from_millis(config.retry_base_ms.saturating_mul(factor).min(config.retry_max_ms))
}

/// One pass: every due mail, oldest first; returns how many were sent.
pub async fn send_due(
    store: &dyn Store,
    transport: &Transport,
    config: &MailConfig,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let mut sent = 0;
    for mail in store.due_mails(now_ms, BATCH).await? {
        match transport.send(&mail).await {
            Ok(()) => {
                store.mail_sent(mail.id, crate::now_ms()).await?;
                sent += 1;
            }
            Err(e) => {
                let wait = backoff(config, mail.attempts);
                let error: String = e.chars().take(500).collect();
                tracing::warn!(mail = mail.id, attempts = mail.attempts + 1, error = %error, retry_in = ?wait, "mail not sent; it stays queued");
                let next = crate::now_ms()
                    .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                store.mail_failed(mail.id, &error, next).await?;
            }
        }
    }
    Ok(sent)
}

/// Sends queued mail every `interval_ms`, or at once when woken, until `stop`.
pub async fn run_worker(
    store: Arc<dyn Store>,
    transport: Transport,
    config: MailConfig,
    wake: Arc<tokio::sync::Notify>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let interval = Duration::from_millis(config.interval_ms.max(10));
    loop {
        if let Err(e) = send_due(store.as_ref(), &transport, &config, crate::now_ms()).await {
            tracing::warn!(error = %e, "the mail outbox cannot be read; trying again");
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = wake.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config =
            MailConfig { retry_base_ms: 1_000, retry_max_ms: 5_000, ..MailConfig::default() };
        let waits: Vec<u64> = (0..5).map(|a| backoff(&config, a).as_millis() as u64).collect();
        assert_eq!(waits, [1_000, 2_000, 4_000, 5_000, 5_000]);
        assert_eq!(backoff(&config, u32::MAX).as_millis(), 5_000);
    }

    #[test]
    fn the_html_part_escapes_and_links() {
        let page =
            html("Hi <you>", "Open this:\n\nhttps://x.example/verify?token=a&b=c\n\n<script>");
        assert!(page.contains("<a href=\"https://x.example/verify?token=a&#38;b=c\">"), "{page}");
        assert!(page.contains("&#60;script&#62;") && !page.contains("<script>"), "{page}");
        assert!(page.contains("Hi &#60;you&#62;"), "{page}");
    }
}
