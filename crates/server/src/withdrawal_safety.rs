//! What stands between a withdrawal request and the coins leaving: the checks made before any
//! funds are held (withdrawals locked for 24 h after a password or two-factor change, the
//! address whitelist, per-asset daily limits) and the gates a held withdrawal may wait at
//! before the wallet's processor may send it — the link mailed to the user (`unconfirmed`,
//! expiring) and an operator's approval above a per-asset threshold (`review`).
//!
//! A gated withdrawal's funds are held in the engine from the start. The processor sends only
//! `held` withdrawals, so a gate is a status, and every move out of one is a compare-and-set in
//! the store: a confirmation and an expiry can never both win. A withdrawal that expires (or an
//! operator rejects) goes `cancelling` first, then its hold is released and it is `failed`; a
//! crash in between is finished by the next sweep.

use crate::error::{ApiError, ApiResult};
use crate::state::Shared;
use bourse_core::{AssetId, UserId};
use bourse_store::{SecurityEventKind, TokenPurpose, WithdrawalRow, WithdrawalStatus};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long withdrawals stay locked after a password or two-factor change.
pub const LOCK_AFTER_CHANGE_MS: i64 = 24 * 3_600_000;
/// A day, for the daily limits (rolling).
const DAY_MS: i64 = 24 * 3_600_000;
/// An expired confirmation link is left this long (or half its lifetime, if shorter) before its
/// withdrawal is cancelled, so a click that used the link just before it expired finishes
/// first.
const EXPIRY_GRACE_MS: i64 = 60_000;

/// `[withdrawals]`: the user-facing withdrawal safety settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WithdrawalSafety {
    /// Every withdrawal waits for the link mailed to its user (default on).
    pub email_confirmation: bool,
    /// How long the link works; an unconfirmed withdrawal is then cancelled and its funds
    /// released.
    pub confirmation_ttl_s: u64,
    /// The most each user may withdraw of an asset in 24 hours (rolling), by symbol, as a
    /// decimal string: `{ LTC = "100" }`. No entry: no limit.
    #[serde(deserialize_with = "bourse_core::decimal::deserialize_text_map")]
    pub daily_limits: BTreeMap<String, String>,
    /// Withdrawals of more than this wait for an operator's approval, by symbol. No entry:
    /// none wait.
    #[serde(deserialize_with = "bourse_core::decimal::deserialize_text_map")]
    pub review_above: BTreeMap<String, String>,
    /// Withdrawals in review of more than this need the approvals of two different admins, by
    /// symbol. No entry: one approval.
    #[serde(deserialize_with = "bourse_core::decimal::deserialize_text_map")]
    pub two_admins_above: BTreeMap<String, String>,
    /// How long after its confirmation an address added to a user's whitelist becomes usable.
    pub address_delay_s: u64,
    /// How often expired confirmations and cancellations are swept.
    pub sweep_interval_ms: u64,
}

impl Default for WithdrawalSafety {
    fn default() -> WithdrawalSafety {
        WithdrawalSafety {
            email_confirmation: true,
            confirmation_ttl_s: 30 * 60,
            daily_limits: BTreeMap::new(),
            review_above: BTreeMap::new(),
            two_admins_above: BTreeMap::new(),
            address_delay_s: 24 * 3600,
            sweep_interval_ms: 10_000,
        }
    }
}

impl WithdrawalSafety {
    /// How long a mailed confirmation link works, in milliseconds.
    pub fn confirmation_ttl_ms(&self) -> i64 {
        i64::try_from(self.confirmation_ttl_s).unwrap_or(i64::MAX / 1000).saturating_mul(1000)
    }

    /// Each limit and threshold names an asset and is an amount in its precision.
    pub fn validate(&self, assets: &[(String, u8)]) -> Result<(), String> {
        for (what, map) in [
            ("daily_limits", &self.daily_limits),
            ("review_above", &self.review_above),
            ("two_admins_above", &self.two_admins_above),
        ] {
            for (symbol, amount) in map {
                let scale = assets
                    .iter()
                    .find(|(s, _)| s.eq_ignore_ascii_case(symbol))
                    .map(|(_, scale)| *scale)
                    .ok_or_else(|| {
                        format!("withdrawals.{what}.{symbol}: there is no asset {symbol}")
                    })?;
                bourse_core::decimal::parse_units(amount, scale)
                    .map_err(|e| format!("withdrawals.{what}.{symbol}: {e}"))?;
            }
        }
        Ok(())
    }

    fn amount(map: &BTreeMap<String, String>, symbol: &str, scale: u8) -> Option<u128> {
        map.iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(symbol))
            .and_then(|(_, a)| bourse_core::decimal::parse_units(a, scale).ok())
    }

    /// Whether a withdrawal of `amount` waits for an operator.
    pub fn needs_review(&self, symbol: &str, scale: u8, amount: u128) -> bool {
        Self::amount(&self.review_above, symbol, scale).is_some_and(|limit| amount > limit)
    }

    /// How many different admins must approve a withdrawal of `amount` in review.
    pub fn approvals_needed(&self, symbol: &str, scale: u8, amount: u128) -> usize {
        if Self::amount(&self.two_admins_above, symbol, scale).is_some_and(|limit| amount > limit) {
            2
        } else {
            1
        }
    }
}

/// Checks a withdrawal request to `address` (as `Chain::check_address` returned it) before
/// anything is held; returns the status it takes once its funds are held (`unconfirmed`,
/// `review` or `held`).
pub async fn check_request(
    state: &Shared,
    user: UserId,
    asset: AssetId,
    symbol: &str,
    scale: u8,
    address: &str,
    amount: u128,
) -> ApiResult<WithdrawalStatus> {
    let rules = &state.config.withdrawals;
    let now = crate::now_ms();
    if let Some(until) = locked_until(state, user, now).await? {
        return Err(ApiError::forbidden(
            "withdrawals_locked",
            format!(
                "withdrawals are locked for 24 hours after a password or two-factor change, until {} UTC",
                crate::web::format::utc_seconds(until)
            ),
        ));
    }
    let row = state
        .store
        .user(user)
        .await?
        .ok_or_else(|| ApiError::unauthorized("unauthenticated", "no such user"))?;
    if row.locked_ms.is_some() {
        return Err(crate::auth::locked_account());
    }
    if row.address_whitelist {
        let listed = state.store.withdrawal_addresses(user).await?;
        let usable = listed.iter().any(|a| {
            a.asset == asset
                && a.address == address
                && a.usable_from_ms.is_some_and(|from| from <= now)
        });
        if !usable {
            return Err(ApiError::forbidden(
                "address_not_whitelisted",
                "this address is not on your withdrawal whitelist (or not usable yet)",
            ));
        }
    }
    if let Some(limit) = WithdrawalSafety::amount(&rules.daily_limits, symbol, scale) {
        let used = withdrawn_today(state, user, asset, now).await?;
        if used.saturating_add(amount) > limit {
            let left = limit.saturating_sub(used);
            return Err(ApiError::forbidden(
                "daily_limit",
                format!(
                    "over the daily limit of {} {symbol}: {} {symbol} left in the last 24 hours",
                    bourse_core::decimal::format_units_trimmed(limit, scale),
                    bourse_core::decimal::format_units_trimmed(left, scale),
                ),
            ));
        }
    }
    Ok(if rules.email_confirmation {
        WithdrawalStatus::Unconfirmed
    } else if rules.needs_review(symbol, scale, amount) {
        WithdrawalStatus::Review
    } else {
        WithdrawalStatus::Held
    })
}

/// When the lock after the user's last password or two-factor change (or turning the
/// whitelist off) ends, if it has not.
pub async fn locked_until(state: &Shared, user: UserId, now: i64) -> ApiResult<Option<i64>> {
    let filter =
        bourse_store::SecurityEventFilter { before: None, limit: bourse_store::LIST_LIMIT_MAX };
    let events = state.store.security_events(user, &filter).await?;
    Ok(events
        .iter()
        .take_while(|e| e.at_ms > now - LOCK_AFTER_CHANGE_MS)
        .find(|e| {
            matches!(
                e.kind,
                SecurityEventKind::PasswordChanged
                    | SecurityEventKind::TwoFactorEnabled
                    | SecurityEventKind::TwoFactorDisabled
                    | SecurityEventKind::AddressWhitelistOff
            )
        })
        .map(|e| e.at_ms + LOCK_AFTER_CHANGE_MS))
}

/// What `user` asked to withdraw of `asset` in the last 24 hours (not counting failed ones).
async fn withdrawn_today(
    state: &Shared,
    user: UserId,
    asset: AssetId,
    now: i64,
) -> ApiResult<u128> {
    let mut total = 0u128;
    let mut before = None;
    loop {
        let limit = bourse_store::LIST_LIMIT_MAX;
        let filter = bourse_store::WithdrawalFilter { asset: Some(asset), before, limit };
        let rows = state.store.withdrawals(user, &filter).await?;
        for w in &rows {
            if w.created_ms <= now - DAY_MS {
                return Ok(total);
            }
            if w.status != WithdrawalStatus::Failed {
                total = total.saturating_add(w.amount);
            }
        }
        match rows.last() {
            Some(last) if rows.len() == limit as usize => before = Some(last.id),
            _ => return Ok(total),
        }
    }
}

/// Mails the link that releases an `unconfirmed` withdrawal.
pub async fn mail_confirmation(
    state: &Shared,
    w: &WithdrawalRow,
    symbol: &str,
    scale: u8,
) -> ApiResult<()> {
    let Some(user) = state.store.user(w.user).await? else { return Ok(()) };
    let ttl_ms = state.config.withdrawals.confirmation_ttl_ms();
    let purpose = TokenPurpose::ConfirmWithdrawal;
    let path = "/confirm-withdrawal";
    let link =
        crate::api::account::mailed_link(state, w.user, purpose, ttl_ms, Some(w.id), path).await?;
    let site = state.config.public_url();
    let site = site.trim_end_matches('/');
    let body = format!(
        "Confirm your withdrawal of {} {symbol} to\n\n{}\n\nby opening this link within {} minutes:\n\n{link}\n\nUntil then it is not sent; after that it is cancelled and the funds are released. If you did not ask for this withdrawal, do not open the link: sign out every session and reset your password at once ({site}/account/security).",
        bourse_core::decimal::format_units_trimmed(w.amount, scale),
        w.address,
        ttl_ms / 60_000,
    );
    state.mail(&user.email, &format!("Confirm your {symbol} withdrawal"), &body).await;
    Ok(())
}

/// Uses a withdrawal's confirmation link: it goes on to review (above the asset's threshold) or
/// to the wallet to be sent. The REST and web confirmations.
pub async fn confirm(state: &Shared, token: &str) -> ApiResult<WithdrawalRow> {
    use crate::api::account::bad_token;
    let purpose = TokenPurpose::ConfirmWithdrawal;
    let used = crate::api::account::use_mailed_link(state, token, purpose).await?;
    let id = used.subject.ok_or_else(bad_token)?;
    let w = state.store.withdrawal(used.user, id).await?.ok_or_else(bad_token)?;
    let (symbol, scale) = {
        let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
        mirror.assets.get(&w.asset).map(|a| (a.symbol.clone(), a.scale)).unwrap_or_default()
    };
    let next = if state.config.withdrawals.needs_review(&symbol, scale, w.amount) {
        WithdrawalStatus::Review
    } else {
        WithdrawalStatus::Held
    };
    let now = crate::now_ms();
    if !state
        .store
        .transition_withdrawal(w.id, WithdrawalStatus::Unconfirmed, next, None, now)
        .await?
    {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "not_unconfirmed",
            "this withdrawal no longer waits for a confirmation",
        ));
    }
    // It leaves with the wallet's next batch.
    Ok(WithdrawalRow { status: next, updated_ms: now, ..w })
}

/// Cancels unconfirmed withdrawals whose link expired, and finishes every cancellation
/// (an expiry, an operator's rejection): the hold is released and the withdrawal fails.
pub async fn sweep(state: &Shared) -> Result<usize, bourse_wallet::deposits::WalletError> {
    let now = crate::now_ms();
    let ttl_ms = state.config.withdrawals.confirmation_ttl_ms();
    let limit = bourse_store::LIST_LIMIT_MAX;
    for w in state.store.withdrawals_in_status(WithdrawalStatus::Unconfirmed, limit).await? {
        if w.created_ms + ttl_ms + EXPIRY_GRACE_MS.min(ttl_ms / 2) < now {
            let reason = "not confirmed in time";
            let (from, to) = (WithdrawalStatus::Unconfirmed, WithdrawalStatus::Cancelling);
            state.store.transition_withdrawal(w.id, from, to, Some(reason), now).await?;
        }
    }
    let mut done = 0;
    for w in state.store.withdrawals_in_status(WithdrawalStatus::Cancelling, limit).await? {
        let why = w.reason.clone().unwrap_or_else(|| "cancelled".into());
        let seen = state.clone();
        let on_change = move |user, seq| seen.note_user_seq(user, seq);
        bourse_wallet::withdrawals::fail(
            state.store.as_ref(),
            &state.engine,
            &on_change,
            &w,
            &why,
            now,
        )
        .await?;
        done += 1;
    }
    Ok(done)
}

/// Runs [`sweep`] every `sweep_interval_ms` until the server stops.
pub async fn run_sweeper(state: Shared, mut stop: tokio::sync::watch::Receiver<bool>) {
    let interval = Duration::from_millis(state.config.withdrawals.sweep_interval_ms.max(100));
    loop {
        match sweep(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(cancelled = n, "withdrawals cancelled"),
            Err(e) => tracing::warn!(error = %e, "withdrawal sweep failed; trying again"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
