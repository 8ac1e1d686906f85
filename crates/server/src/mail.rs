//! Outgoing mail until SMTP delivery lands (issue "Account security and e-mail"): each message is
//! written as a plain-text file under `<data_dir>/mailbox/` (like a maildir's `new/`) and its
//! subject logged, so an operator — or a test — can follow a verification link.

use std::path::{Path, PathBuf};

/// Writes one message; returns the file it went to.
pub fn deliver(data_dir: &Path, to: &str, subject: &str, body: &str) -> std::io::Result<PathBuf> {
    let dir = data_dir.join("mailbox");
    std::fs::create_dir_all(&dir)?;
    let name = format!(
        "{}-{}.txt",
        crate::now_ms(),
        crate::crypto::token_hash(to).get(..12).unwrap_or("")
    );
    let path = dir.join(name);
    let text = format!("To: {to}\nSubject: {subject}\n\n{body}\n");
    std::fs::write(&path, text)?;
    tracing::info!(to, subject, file = %path.display(), "mail written to the local mailbox");
    Ok(path)
}
