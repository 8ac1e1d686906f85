//! The withdrawal-address whitelist: a user who turns it on withdraws only to addresses they
//! added, confirmed with the link mailed for each, and waited `address_delay_s` for. Adding an
//! address and turning the whitelist on or off need the second factor (when it is on); turning
//! it off locks withdrawals for 24 hours, like a password change, and every change is mailed
//! and recorded in the security log. `withdrawal_safety::check_request` enforces it.
//! Session-only (an API key cannot change where its own withdrawals may go).

use super::{ApiJson, ApiPath};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::security::{self, Client};
use crate::state::Shared;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bourse_core::UserId;
use bourse_store::{
    NewWithdrawalAddress, SecurityEventKind, StoreError, TokenPurpose, WithdrawalAddressRow,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most addresses a user's whitelist holds.
pub const ADDRESSES_MAX: usize = 100;
/// The longest label.
const LABEL_MAX: usize = 64;

#[derive(Debug, Serialize, ToSchema)]
pub struct WithdrawalAddressView {
    pub id: i64,
    pub asset: String,
    pub address: String,
    pub label: String,
    /// `unconfirmed` (the mailed link was not opened yet), `waiting` (confirmed; usable from
    /// `usable_from_ms`) or `usable`.
    pub status: &'static str,
    pub created_ms: i64,
    pub confirmed_ms: Option<i64>,
    pub usable_from_ms: Option<i64>,
}

impl WithdrawalAddressView {
    fn new(a: &WithdrawalAddressRow, symbol: &str, now_ms: i64) -> WithdrawalAddressView {
        WithdrawalAddressView {
            id: a.id,
            asset: symbol.to_string(),
            address: a.address.clone(),
            label: a.label.clone(),
            status: match a.usable_from_ms {
                None => "unconfirmed",
                Some(from) if from > now_ms => "waiting",
                Some(_) => "usable",
            },
            created_ms: a.created_ms,
            confirmed_ms: a.confirmed_ms,
            usable_from_ms: a.usable_from_ms,
        }
    }
}

/// Whether the whitelist is on, and its addresses (newest first).
#[derive(Debug, Serialize, ToSchema)]
pub struct Whitelist {
    pub enabled: bool,
    pub addresses: Vec<WithdrawalAddressView>,
}

fn symbol_of(state: &Shared, asset: bourse_core::AssetId) -> ApiResult<String> {
    let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
    Ok(mirror.assets.get(&asset).map(|a| a.symbol.clone()).unwrap_or_default())
}

/// `user`'s whitelist. The REST endpoint and the addresses page.
pub async fn whitelist_of(state: &Shared, user: UserId) -> ApiResult<Whitelist> {
    let enabled = state.store.user(user).await?.is_some_and(|u| u.address_whitelist);
    let rows = state.store.withdrawal_addresses(user).await?;
    let now = crate::now_ms();
    let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
    let addresses = rows
        .iter()
        .map(|a| {
            let symbol = mirror.assets.get(&a.asset).map(|x| x.symbol.as_str()).unwrap_or("");
            WithdrawalAddressView::new(a, symbol, now)
        })
        .collect();
    Ok(Whitelist { enabled, addresses })
}

fn site(state: &Shared) -> String {
    state.config.public_url().trim_end_matches('/').to_string()
}

/// Adds an address (the second factor checked first), unconfirmed, and mails its confirmation
/// link. The REST endpoint and the addresses page.
pub async fn add(
    state: &Shared,
    user: UserId,
    symbol: &str,
    address: &str,
    label: &str,
    code: Option<&str>,
    client: &Client,
) -> ApiResult<WithdrawalAddressView> {
    super::two_factor::require(state, user, code).await?;
    let label = label.trim();
    if label.chars().count() > LABEL_MAX || label.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "bad_label",
            format!("a label is at most {LABEL_MAX} characters, without control characters"),
        ));
    }
    let w = super::wallet::wallet(state, symbol)?;
    let address = w
        .chain
        .check_address(state.store.as_ref(), address)
        .await
        .map_err(|e| super::wallet::request_error(e, w.chain.symbol()))?;
    if state.store.withdrawal_addresses(user).await?.len() >= ADDRESSES_MAX {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_addresses",
            format!("a whitelist holds at most {ADDRESSES_MAX} addresses; remove one first"),
        ));
    }
    let now = crate::now_ms();
    let new = NewWithdrawalAddress {
        user,
        asset: w.chain.asset(),
        address: address.clone(),
        label: label.to_string(),
        created_ms: now,
    };
    let id = match state.store.insert_withdrawal_address(&new).await {
        Ok(id) => id,
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "address_exists",
                "this address is already on your whitelist",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let ttl_ms = state.config.withdrawals.confirmation_ttl_ms();
    let purpose = TokenPurpose::ConfirmAddress;
    let link =
        super::account::mailed_link(state, user, purpose, ttl_ms, Some(id), "/confirm-address")
            .await?;
    let symbol = w.chain.symbol();
    let detail = format!("{symbol} address {address}");
    security::record(state, user, SecurityEventKind::WithdrawalAddressAdded, client, detail).await;
    if let Some(row) = state.store.user(user).await? {
        let body = format!(
            "The {symbol} address\n\n{address}\n\nwas added to the withdrawal whitelist of your bourse account. To confirm it, open this link within {} minutes:\n\n{link}\n\nWithdrawals may go to it {} after you confirm it.\n\nIf you did not add it, do not open the link: sign out every session and reset your password at once ({}/account/security).",
            ttl_ms / 60_000,
            delay_text(state.config.withdrawals.address_delay_s),
            site(state),
        );
        state.mail(&row.email, &format!("Confirm a new {symbol} withdrawal address"), &body).await;
    }
    let row = WithdrawalAddressRow {
        id,
        user,
        asset: new.asset,
        address,
        label: new.label,
        created_ms: now,
        confirmed_ms: None,
        usable_from_ms: None,
    };
    Ok(WithdrawalAddressView::new(&row, symbol, now))
}

/// "24 hour(s)", "90 second(s)": how long a confirmed address waits.
pub fn delay_text(seconds: u64) -> String {
    match seconds {
        0 => "at once".into(),
        s if s % 3600 == 0 => format!("{} hour(s)", s / 3600),
        s if s % 60 == 0 => format!("{} minute(s)", s / 60),
        s => format!("{s} second(s)"),
    }
}

/// Confirms an address with its mailed link: usable after the delay.
pub async fn confirm(
    state: &Shared,
    token: &str,
    client: &Client,
) -> ApiResult<WithdrawalAddressView> {
    use super::account::bad_token;
    let used = super::account::use_mailed_link(state, token, TokenPurpose::ConfirmAddress).await?;
    let now = crate::now_ms();
    let id = used.subject.ok_or_else(bad_token)?;
    let delay_ms = i64::try_from(state.config.withdrawals.address_delay_s.saturating_mul(1000))
        .unwrap_or(i64::MAX);
    let usable_from = now.saturating_add(delay_ms);
    if !state.store.confirm_withdrawal_address(used.user, id, now, usable_from).await? {
        // Removed since the link was mailed.
        return Err(bad_token());
    }
    let row = state
        .store
        .withdrawal_addresses(used.user)
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(bad_token)?;
    let symbol = symbol_of(state, row.asset)?;
    let detail = format!("{symbol} address {}", row.address);
    let kind = SecurityEventKind::WithdrawalAddressConfirmed;
    security::record(state, used.user, kind, client, detail).await;
    Ok(WithdrawalAddressView::new(&row, &symbol, now))
}

/// Removes an address of `user`'s (not another user's: `not_found`).
pub async fn remove(state: &Shared, user: UserId, id: i64, client: &Client) -> ApiResult<()> {
    let not_found = || ApiError::not_found("not_found", "no such address on your whitelist");
    let rows = state.store.withdrawal_addresses(user).await?;
    let row = rows.iter().find(|a| a.id == id).ok_or_else(not_found)?;
    if !state.store.remove_withdrawal_address(user, id, crate::now_ms()).await? {
        return Err(not_found());
    }
    let detail = format!("{} address {}", symbol_of(state, row.asset)?, row.address);
    let kind = SecurityEventKind::WithdrawalAddressRemoved;
    security::record(state, user, kind, client, detail).await;
    Ok(())
}

/// Turns the whitelist on or off (the second factor checked first). Off locks withdrawals for
/// 24 hours. Both are mailed.
pub async fn set_enabled(
    state: &Shared,
    user: UserId,
    on: bool,
    code: Option<&str>,
    client: &Client,
) -> ApiResult<()> {
    super::two_factor::require(state, user, code).await?;
    let row = state
        .store
        .user(user)
        .await?
        .ok_or_else(|| ApiError::unauthorized("unauthenticated", "no such user"))?;
    if row.address_whitelist == on {
        return Ok(());
    }
    state.store.set_address_whitelist(user, on).await?;
    let (kind, subject, body) = if on {
        (
            SecurityEventKind::AddressWhitelistOn,
            "Withdrawal whitelist turned on",
            "The withdrawal whitelist of your bourse account is now on: withdrawals go only to the addresses on it, once each is confirmed and its waiting time has passed.".to_string(),
        )
    } else {
        (
            SecurityEventKind::AddressWhitelistOff,
            "Withdrawal whitelist turned off",
            format!(
                "The withdrawal whitelist of your bourse account was turned off: withdrawals may go to any address. Withdrawals are locked for 24 hours after this change.\n\nIf it was not you, sign out every session and reset your password at once: {}/account/security",
                site(state)
            ),
        )
    };
    security::record(state, user, kind, client, String::new()).await;
    state.mail(&row.email, subject, &body).await;
    Ok(())
}

// ---- REST ------------------------------------------------------------------------------------

#[utoipa::path(get, path = "/withdrawal-addresses", tag = "wallet", security(("session" = [])),
    responses(
        (status = 200, description = "Whether the whitelist is on, and its addresses, newest first", body = Whitelist),
        (status = 401, description = "`unauthenticated`, `session_expired`", body = ErrorBody),
        (status = 403, description = "`session_required` (an API key was used)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody)))]
pub async fn list(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Whitelist>> {
    Ok(Json(whitelist_of(&state, p.user).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWhitelistAddress {
    /// Asset symbol, e.g. `LTC`.
    asset: String,
    /// An address of the coin's network.
    address: String,
    /// The caller's name for it (at most 64 characters).
    #[serde(default)]
    label: String,
    /// With two-factor authentication on: a code of the authenticator app.
    #[serde(default)]
    two_factor_code: Option<String>,
}

#[utoipa::path(post, path = "/withdrawal-addresses", tag = "wallet", security(("session" = [])),
    request_body = NewWhitelistAddress,
    responses(
        (status = 201, description = "Added, `unconfirmed`: the link to confirm it is mailed to the caller; withdrawals may go to it `address_delay_s` after that", body = WithdrawalAddressView),
        (status = 400, description = "`bad_json`, `bad_address`, `bad_label`", body = ErrorBody),
        (status = 404, description = "`unknown_asset`, `no_wallet`", body = ErrorBody),
        (status = 409, description = "`address_exists`, `too_many_addresses`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`", body = ErrorBody),
        (status = 403, description = "`session_required`, `csrf`, `two_factor_required`, `bad_two_factor_code`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` (wrong two-factor codes; with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`node_unavailable`, `unavailable`", body = ErrorBody)))]
pub async fn add_api(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    Extension(p): Extension<Principal>,
    ApiJson(r): ApiJson<NewWhitelistAddress>,
) -> ApiResult<Response> {
    let code = r.two_factor_code.as_deref();
    let view = add(&state, p.user, &r.asset, &r.address, &r.label, code, &client).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(delete, path = "/withdrawal-addresses/{id}", tag = "wallet", security(("session" = [])),
    params(("id" = i64, Path, description = "The address's id")),
    responses(
        (status = 200, description = "Removed: withdrawals no longer go to it", body = super::account::Revoked),
        (status = 400, description = "`bad_path`", body = ErrorBody),
        (status = 404, description = "`not_found` (none of the caller's)", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`", body = ErrorBody),
        (status = 403, description = "`session_required`, `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody)))]
pub async fn remove_api(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<super::account::Revoked>> {
    remove(&state, p.user, id, &client).await?;
    Ok(Json(super::account::Revoked { revoked: id }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhitelistSwitch {
    /// On: withdrawals go only to usable addresses of the whitelist. Off: withdrawals are
    /// locked for 24 hours.
    enabled: bool,
    /// With two-factor authentication on: a code of the authenticator app.
    #[serde(default)]
    two_factor_code: Option<String>,
}

#[utoipa::path(put, path = "/withdrawal-addresses/enabled", tag = "wallet", security(("session" = [])),
    request_body = WhitelistSwitch,
    responses(
        (status = 200, description = "The whitelist as it is now", body = Whitelist),
        (status = 400, description = "`bad_json`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`", body = ErrorBody),
        (status = 403, description = "`session_required`, `csrf`, `two_factor_required`, `bad_two_factor_code`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` (wrong two-factor codes; with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody)))]
pub async fn set_enabled_api(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    Extension(p): Extension<Principal>,
    ApiJson(r): ApiJson<WhitelistSwitch>,
) -> ApiResult<Json<Whitelist>> {
    set_enabled(&state, p.user, r.enabled, r.two_factor_code.as_deref(), &client).await?;
    Ok(Json(whitelist_of(&state, p.user).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressConfirmRequest {
    /// The `token` of the link in the confirmation mail.
    token: String,
}

/// Confirms a whitelist address with the link mailed for it (no login needed: the link is the
/// proof). It works once and expires.
#[utoipa::path(post, path = "/withdrawal-addresses/confirm", tag = "wallet", request_body = AddressConfirmRequest,
    responses(
        (status = 200, description = "Confirmed: `waiting` until `usable_from_ms`, or `usable`", body = WithdrawalAddressView),
        (status = 400, description = "`bad_json`, `bad_token`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody)))]
pub async fn confirm_api(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    ApiJson(r): ApiJson<AddressConfirmRequest>,
) -> ApiResult<Json<WithdrawalAddressView>> {
    Ok(Json(confirm(&state, &r.token, &client).await?))
}
