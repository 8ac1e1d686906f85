//! What every handler shares: the engine handle, the store, the mirror, the WebSocket hub, the
//! tickers, the derived keys, limits, and the read-your-writes bookkeeping.

use crate::config::Config;
use crate::crypto::Keys;
use crate::hub::Hub;
use crate::mirror::Mirror;
use crate::ticker::Tickers;
use bourse_core::UserId;
use bourse_engine::EngineHandle;
use bourse_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// How long a private read waits for the projector to reach the user's own last command.
const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub engine: EngineHandle,
    pub store: Arc<dyn Store>,
    pub mirror: Arc<RwLock<Mirror>>,
    pub hub: Arc<Hub>,
    pub tickers: Arc<Mutex<Tickers>>,
    pub keys: Keys,
    /// The last seq in the read models.
    pub projected: watch::Receiver<u64>,
    /// The last seq of a command each user submitted (bounded by the number of users).
    pub user_seq: Mutex<HashMap<UserId, u64>>,
    /// Bounds concurrent argon2 hashes (memory-hard: ~19 MiB each).
    pub password_slots: Semaphore,
    /// Opened API keys by public key, so a signed request costs no database read and no
    /// decryption (entries expire after a minute; revoking in this process removes at once).
    pub api_keys: Mutex<HashMap<String, CachedKey>>,
    /// The hash of a random password: a login for an unknown e-mail checks against it, so it
    /// takes as long as one with a wrong password (no account enumeration by timing).
    pub dummy_hash: String,
    /// Turns true when the server is shutting down (WebSocket connections close).
    pub shutdown: watch::Receiver<bool>,
    /// The coin wallets, by asset.
    pub wallets: HashMap<bourse_core::AssetId, crate::wallets::Wallet>,
    /// Wakes the mail worker (a mail was queued).
    pub mail_wake: Arc<tokio::sync::Notify>,
    /// Rate limits and login lockouts.
    pub throttles: crate::throttle::Throttles,
    /// Binance's legacy user-stream listen keys: key → (user, expiry ms). In memory only.
    pub listen_keys: Mutex<HashMap<String, (UserId, i64)>>,
    /// What `/metrics` reports that the server counts itself.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Held while a backup runs: one at a time.
    pub backup_lock: tokio::sync::Mutex<()>,
}

impl AppState {
    /// Queues a mail to `to`; a failure to queue is logged (the caller's action stands).
    pub async fn mail(&self, to: &str, subject: &str, text: &str) {
        if let Err(e) =
            crate::mail::queue(self.store.as_ref(), &self.mail_wake, to, subject, text).await
        {
            tracing::error!(error = %e, subject, "cannot queue a mail");
        }
    }
}

pub type Shared = Arc<AppState>;

/// The most API keys kept opened in memory.
pub const API_KEY_CACHE_MAX: usize = 100_000;
/// How long a cached key is trusted before it is read again (a revocation by another process
/// takes at most this long).
pub const API_KEY_CACHE_TTL_MS: i64 = 60_000;
/// The same in a process without the admin app: the admin app that locks an account runs in
/// another process, and cannot drop this one's cache.
pub const API_KEY_CACHE_TTL_APART_MS: i64 = 5_000;

impl AppState {
    /// How long this process trusts a cached API key.
    pub fn api_key_ttl_ms(&self) -> i64 {
        if self.config.roles.admin { API_KEY_CACHE_TTL_MS } else { API_KEY_CACHE_TTL_APART_MS }
    }
}

#[derive(Clone)]
pub struct CachedKey {
    pub id: i64,
    pub user: UserId,
    pub scopes: bourse_store::Scopes,
    pub ip_allowlist: Vec<String>,
    pub secret: Vec<u8>,
    pub loaded_ms: i64,
}

impl std::fmt::Debug for CachedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedKey")
            .field("id", &self.id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn note_user_seq(&self, user: UserId, seq: u64) {
        if let Ok(mut map) = self.user_seq.lock() {
            let e = map.entry(user).or_insert(0);
            *e = (*e).max(seq);
        }
    }

    /// Waits (bounded, polling) until the mirror has applied command `seq`, so the page an
    /// operator is sent to after a command shows it.
    pub async fn wait_mirror(&self, seq: u64) {
        let deadline = tokio::time::Instant::now() + READ_YOUR_WRITES_WAIT;
        while self.mirror.read().map(|m| m.seq < seq).unwrap_or(false)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Waits (bounded) until the read models include the user's last command, so a client
    /// that placed an order sees it in its next read.
    pub async fn wait_projected(&self, user: UserId) {
        let target = self.user_seq.lock().ok().and_then(|m| m.get(&user).copied()).unwrap_or(0);
        if *self.projected.borrow() >= target {
            return;
        }
        let mut rx = self.projected.clone();
        let _ = tokio::time::timeout(READ_YOUR_WRITES_WAIT, rx.wait_for(|s| *s >= target)).await;
    }
}
