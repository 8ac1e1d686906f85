//! Deposits: a user's deposit addresses for a coin (a new one on request) and their deposits
//! with confirmations and status. Only for assets the exchange runs a wallet for.

use super::{ApiJson, ApiQuery};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::Shared;
use crate::views::units;
use crate::wallets::Wallet;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bourse_store::{DepositFilter, DepositRow, LIST_LIMIT_MAX};
use bourse_wallet::deposits::WalletError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The id of the asset `symbol`.
fn asset_id(state: &Shared, symbol: &str) -> ApiResult<bourse_core::AssetId> {
    let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
    mirror
        .asset_by_symbol(symbol)
        .map(|a| a.id)
        .ok_or_else(|| ApiError::not_found("unknown_asset", format!("no asset {symbol:?}")))
}

/// The wallet of `symbol`, or why there is none.
pub fn wallet(state: &Shared, symbol: &str) -> ApiResult<Wallet> {
    let asset = asset_id(state, symbol)?;
    state.wallets.get(&asset).cloned().ok_or_else(|| {
        ApiError::not_found(
            "no_wallet",
            format!("deposits and withdrawals of {symbol} are not open"),
        )
    })
}

fn node_unavailable(e: &dyn std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "coin node unavailable");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "node_unavailable",
        "the coin's node does not answer; try again shortly",
    )
}

impl From<WalletError> for ApiError {
    fn from(e: WalletError) -> ApiError {
        match e {
            WalletError::Limit(message) => {
                ApiError::new(StatusCode::CONFLICT, "too_many_addresses", message)
            }
            WalletError::Rpc(e) if e.is_transient() => node_unavailable(&e),
            WalletError::Eth(e) if e.is_transient() => node_unavailable(&e),
            WalletError::Store(e) => e.into(),
            other => ApiError::internal("wallet", other),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DepositAddressView {
    pub asset: String,
    pub address: String,
    pub created_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DepositView {
    pub asset: String,
    pub txid: String,
    pub vout: u32,
    pub address: String,
    pub amount: String,
    /// Negative while the transaction conflicts with the best chain.
    pub confirmations: i64,
    /// Confirmations the exchange waits for before crediting.
    pub confirmations_required: u32,
    /// `pending`, `credited`, `dropped` (left the chain before it was credited), `reversed`
    /// (left it after) or `below_minimum` (never credited).
    pub status: &'static str,
    pub first_seen_ms: i64,
    pub updated_ms: i64,
}

impl DepositView {
    pub fn new(d: &DepositRow, wallet: Option<&Wallet>, symbol: &str, scale: u8) -> DepositView {
        DepositView {
            asset: symbol.to_string(),
            txid: d.txid.clone(),
            vout: d.vout,
            address: d.address.clone(),
            amount: units(d.amount, scale),
            confirmations: d.confirmations,
            confirmations_required: wallet.map(|w| w.chain.confirmations()).unwrap_or(0),
            status: d.status.as_str(),
            first_seen_ms: d.first_seen_ms,
            updated_ms: d.updated_ms,
        }
    }
}

/// A page of deposits, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepositsPage {
    pub deposits: Vec<DepositView>,
    /// The `before` cursor of the next page; null at the end.
    pub next: Option<i64>,
}

/// Unknown parameters are ignored: signed requests carry `timestamp`, `recvWindow`, `signature`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AssetQuery {
    /// Asset symbol, e.g. `LTC`.
    asset: String,
}

#[utoipa::path(get, path = "/deposit-addresses", tag = "wallet", security(("api_key" = []), ("session" = [])), params(AssetQuery),
    responses(
        (status = 200, description = "The caller's deposit addresses for the asset, newest first (empty until one is asked for)", body = Vec<DepositAddressView>),
        (status = 400, description = "`bad_query`; signature errors", body = ErrorBody),
        (status = 404, description = "`unknown_asset`, `no_wallet`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody)))]
pub async fn addresses(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<AssetQuery>,
) -> ApiResult<Json<Vec<DepositAddressView>>> {
    let w = wallet(&state, &q.asset)?;
    let rows = state
        .store
        .deposit_addresses(p.user, w.chain.asset(), w.chain.addresses_per_user_max())
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|a| DepositAddressView {
                asset: w.chain.symbol().to_string(),
                address: a.address,
                created_ms: a.created_ms,
            })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAddressRequest {
    /// Asset symbol, e.g. `LTC`.
    asset: String,
}

#[utoipa::path(post, path = "/deposit-addresses", tag = "wallet", security(("api_key" = []), ("session" = [])), request_body = NewAddressRequest,
    responses(
        (status = 201, description = "A new deposit address from the coin's node", body = DepositAddressView),
        (status = 400, description = "`bad_json`; signature errors", body = ErrorBody),
        (status = 404, description = "`unknown_asset`, `no_wallet`", body = ErrorBody),
        (status = 409, description = "`too_many_addresses`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`, `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`node_unavailable`, `unavailable`", body = ErrorBody)))]
pub async fn create_address(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    ApiJson(r): ApiJson<NewAddressRequest>,
) -> ApiResult<Response> {
    let row = new_address(&state, p.user, &r.asset).await?;
    Ok((StatusCode::CREATED, Json(row)).into_response())
}

/// A new deposit address for `user`. The REST endpoint and the deposit page.
pub async fn new_address(
    state: &Shared,
    user: bourse_core::UserId,
    symbol: &str,
) -> ApiResult<DepositAddressView> {
    let w = wallet(state, symbol)?;
    let row = w.chain.new_address(state.store.as_ref(), user, crate::now_ms()).await?;
    Ok(DepositAddressView {
        asset: w.chain.symbol().to_string(),
        address: row.address,
        created_ms: row.created_ms,
    })
}

/// Unknown parameters are ignored: signed requests carry `timestamp`, `recvWindow`, `signature`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DepositsQuery {
    /// Only this asset's deposits.
    asset: Option<String>,
    /// The `next` cursor of the previous page.
    before: Option<i64>,
    /// 1 to the list maximum (default 100).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/deposits", tag = "wallet", security(("api_key" = []), ("session" = [])), params(DepositsQuery),
    responses(
        (status = 200, description = "A page of the caller's deposits, pending ones with their confirmations", body = DepositsPage),
        (status = 400, description = "`bad_query`; signature errors", body = ErrorBody),
        (status = 404, description = "`unknown_asset`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody)))]
pub async fn deposits(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<DepositsQuery>,
) -> ApiResult<Json<DepositsPage>> {
    let page =
        deposits_of(&state, p.user, q.asset.as_deref(), q.before, q.limit.unwrap_or(100)).await?;
    Ok(Json(page))
}

/// A page of `user`'s deposits. The REST endpoint and the deposit page.
pub async fn deposits_of(
    state: &Shared,
    user: bourse_core::UserId,
    asset: Option<&str>,
    before: Option<i64>,
    limit: u32,
) -> ApiResult<DepositsPage> {
    let limit = limit.clamp(1, LIST_LIMIT_MAX);
    let asset =
        match asset {
            Some(a) => {
                let mirror =
                    state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
                Some(mirror.asset_by_symbol(a).map(|a| a.id).ok_or_else(|| {
                    ApiError::not_found("unknown_asset", format!("no asset {a:?}"))
                })?)
            }
            None => None,
        };
    let rows = state.store.deposits(user, &DepositFilter { asset, before, limit }).await?;
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|d| d.id)).flatten();
    let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
    let deposits = rows
        .iter()
        .map(|d| {
            let (symbol, scale) = mirror
                .assets
                .get(&d.asset)
                .map(|a| (a.symbol.as_str(), a.scale))
                .unwrap_or(("", 0));
            DepositView::new(d, state.wallets.get(&d.asset), symbol, scale)
        })
        .collect();
    Ok(DepositsPage { deposits, next })
}

// ---- withdrawals ---------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct WithdrawalView {
    pub id: i64,
    pub asset: String,
    pub address: String,
    pub amount: String,
    /// The network fee the exchange charges, held with the amount.
    pub fee: String,
    /// `requested`, `unconfirmed` (waits for the link mailed to the user), `review` (waits for
    /// an operator), `held`, `sending`, `sent`, `completed`, `cancelling` or `failed`.
    pub status: &'static str,
    pub txid: Option<String>,
    /// Why it failed.
    pub reason: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl WithdrawalView {
    pub fn new(w: &bourse_store::WithdrawalRow, symbol: &str, scale: u8) -> WithdrawalView {
        WithdrawalView {
            id: w.id,
            asset: symbol.to_string(),
            address: w.address.clone(),
            amount: units(w.amount, scale),
            fee: units(w.fee, scale),
            status: w.status.as_str(),
            txid: w.txid.clone(),
            reason: w.reason.clone(),
            created_ms: w.created_ms,
            updated_ms: w.updated_ms,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    /// Asset symbol, e.g. `LTC`.
    asset: String,
    /// An address of the coin's network.
    address: String,
    /// What the address receives (decimal string); the fee is held on top of it.
    amount: String,
    /// From a session with two-factor authentication on: a code of the authenticator app.
    #[serde(default)]
    two_factor_code: Option<String>,
}

#[utoipa::path(post, path = "/withdrawals", tag = "wallet", security(("api_key" = []), ("session" = [])), request_body = WithdrawRequest,
    responses(
        (status = 201, description = "The amount and fee are held; the withdrawal waits for the link mailed to the caller (`unconfirmed`, when e-mail confirmation is on), then goes out with the next batch", body = WithdrawalView),
        (status = 400, description = "`bad_json`, `bad_address`, `below_minimum`, `bad_amount`, `too_precise`, `insufficient_funds`; signature errors", body = ErrorBody),
        (status = 404, description = "`unknown_asset`, `no_wallet`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`, `csrf`, `withdrawals_frozen` (a balance of the caller's is below zero), `withdrawals_locked` (24 h after a password or two-factor change), `address_not_whitelisted`, `daily_limit`, `two_factor_required`, `bad_two_factor_code`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` (wrong two-factor codes; with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`node_unavailable`, `unavailable`", body = ErrorBody)))]
pub async fn withdraw(
    State(state): State<Shared>,
    Extension(client): Extension<crate::security::Client>,
    Extension(p): Extension<Principal>,
    ApiJson(r): ApiJson<WithdrawRequest>,
) -> ApiResult<Response> {
    if let crate::auth::Via::Session { .. } = p.via {
        super::two_factor::require(&state, p.user, r.two_factor_code.as_deref()).await?;
    }
    let view = request_withdrawal(&state, p.user, &r.asset, &r.address, &r.amount, &client).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Checks, holds and records a withdrawal (the caller checked the second factor), and mails its
/// confirmation link when it waits for one. The REST endpoint and the withdraw page.
pub async fn request_withdrawal(
    state: &Shared,
    user: bourse_core::UserId,
    symbol: &str,
    address: &str,
    amount: &str,
    client: &crate::security::Client,
) -> ApiResult<WithdrawalView> {
    let w = wallet(state, symbol)?;
    let units = bourse_core::decimal::parse_units(amount.trim(), w.chain.scale()).map_err(|e| {
        let code = match e {
            bourse_core::decimal::DecimalError::TooPrecise { .. } => "too_precise",
            _ => "bad_amount",
        };
        ApiError::bad_request(code, format!("amount: {e}"))
    })?;
    let (symbol, scale) = (w.chain.symbol(), w.chain.scale());
    let address = match w.chain.check_address(state.store.as_ref(), address).await {
        Ok(address) => address,
        Err(e) => return Err(request_error(e, symbol)),
    };
    let address = address.as_str();
    let after_hold = crate::withdrawal_safety::check_request(
        state,
        user,
        w.chain.asset(),
        symbol,
        scale,
        address,
        units,
    )
    .await?;
    let request = bourse_wallet::withdrawals::Request {
        user,
        address,
        amount: units,
        after_hold,
        now_ms: crate::now_ms(),
    };
    let requested = w.chain.request_withdrawal(state.store.as_ref(), &state.engine, &request).await;
    match requested {
        Ok(row) => {
            state.note_user_seq(user, state.engine.status().seq);
            if row.status == bourse_store::WithdrawalStatus::Unconfirmed {
                crate::withdrawal_safety::mail_confirmation(state, &row, symbol, scale).await?;
            }
            let detail =
                format!("withdrawal {}: {amount} {} to {}", row.id, w.chain.symbol(), row.address);
            let kind = bourse_store::SecurityEventKind::WithdrawalRequested;
            crate::security::record(state, user, kind, client, detail).await;
            Ok(WithdrawalView::new(&row, w.chain.symbol(), w.chain.scale()))
        }
        Err(e) => Err(request_error(e, symbol)),
    }
}

/// Why a withdrawal (or a whitelist address) of `symbol` is refused, as an API error.
pub fn request_error(e: bourse_wallet::withdrawals::RequestError, symbol: &str) -> ApiError {
    use bourse_wallet::withdrawals::RequestError;
    match e {
        RequestError::BadAddress(a) => ApiError::bad_request(
            "bad_address",
            format!("{a:?} is not a {symbol} address of this network"),
        ),
        RequestError::BelowMinimum(min) => ApiError::bad_request(
            "below_minimum",
            format!("the smallest {symbol} withdrawal is {min}"),
        ),
        RequestError::Refused(reason) => crate::error::reject(reason),
        RequestError::Wallet(e) => e.into(),
    }
}

#[utoipa::path(get, path = "/withdrawals", tag = "wallet", security(("api_key" = []), ("session" = [])), params(DepositsQuery),
    responses(
        (status = 200, description = "A page of the caller's withdrawals, newest first, with their txids", body = WithdrawalsPage),
        (status = 400, description = "`bad_query`; signature errors", body = ErrorBody),
        (status = 404, description = "`unknown_asset`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody)))]
pub async fn withdrawals(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<DepositsQuery>,
) -> ApiResult<Json<WithdrawalsPage>> {
    state.wait_projected(p.user).await;
    let limit = q.limit.unwrap_or(100).clamp(1, LIST_LIMIT_MAX);
    let asset = match q.asset.as_deref() {
        Some(a) => Some(asset_id(&state, a)?),
        None => None,
    };
    let filter = bourse_store::WithdrawalFilter { asset, before: q.before, limit };
    let rows = state.store.withdrawals(p.user, &filter).await?;
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|w| w.id)).flatten();
    let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
    let withdrawals = rows
        .iter()
        .map(|w| {
            let (symbol, scale) = mirror
                .assets
                .get(&w.asset)
                .map(|a| (a.symbol.as_str(), a.scale))
                .unwrap_or(("", 0));
            WithdrawalView::new(w, symbol, scale)
        })
        .collect();
    Ok(Json(WithdrawalsPage { withdrawals, next }))
}

/// A page of withdrawals, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WithdrawalsPage {
    pub withdrawals: Vec<WithdrawalView>,
    /// The `before` cursor of the next page; null at the end.
    pub next: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// The `token` of the link in the confirmation mail.
    token: String,
}

/// Confirms a withdrawal with the link mailed for it: it goes on to be sent (or to an operator's
/// review above the asset's threshold). The link works once and expires.
#[utoipa::path(post, path = "/withdrawals/confirm", tag = "wallet", request_body = ConfirmRequest,
    responses(
        (status = 200, description = "Confirmed: `held` (to be sent) or `review`", body = WithdrawalView),
        (status = 400, description = "`bad_json`, `bad_token`", body = ErrorBody),
        (status = 409, description = "`not_unconfirmed`: it no longer waits (cancelled after the link expired)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody)))]
pub async fn confirm_withdrawal(
    State(state): State<Shared>,
    ApiJson(r): ApiJson<ConfirmRequest>,
) -> ApiResult<Json<WithdrawalView>> {
    let row = crate::withdrawal_safety::confirm(&state, &r.token).await?;
    let mirror = state.mirror.read().map_err(|_| ApiError::internal("mirror", "poisoned"))?;
    let (symbol, scale) =
        mirror.assets.get(&row.asset).map(|a| (a.symbol.as_str(), a.scale)).unwrap_or(("", 0));
    Ok(Json(WithdrawalView::new(&row, symbol, scale)))
}
