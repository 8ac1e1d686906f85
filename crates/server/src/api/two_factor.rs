//! Two-factor authentication: a TOTP secret per account (sealed at rest under its own key
//! derived from the configured secret), set up by scanning a QR code and confirmed with a first
//! code; ten single-use recovery codes, stored hashed; turned off with the password and a code.
//! Once on, a code is needed to log in, to withdraw (from a session), to create an API key and
//! to change the withdrawal-address settings. Each code works once (the store keeps the last
//! step used), and wrong codes count towards the account's lockout like wrong passwords.

use super::ApiJson;
use super::account::{Message, verify_password_of};
use crate::auth::Principal;
use crate::crypto;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::security::{self, Client};
use crate::state::Shared;
use crate::totp;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bourse_core::UserId;
use bourse_store::{SecurityEventKind, UserRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn wrong_code() -> ApiError {
    ApiError::forbidden("bad_two_factor_code", "the code is wrong, expired or already used")
}

async fn user_row(state: &Shared, user: UserId) -> ApiResult<UserRow> {
    state
        .store
        .user(user)
        .await?
        .ok_or_else(|| ApiError::unauthorized("unauthenticated", "no such user"))
}

/// The account's lockout, as for wrong passwords.
fn locked(state: &Shared, user: &UserRow) -> ApiResult<()> {
    state.throttles.account.check(&user.email, crate::now_ms()).map_err(|wait| {
        ApiError::too_many("too_many_attempts", "too many failed attempts; try again later", wait)
    })
}

/// A failed code: counted towards the account's lockout.
fn failed(state: &Shared, user: &UserRow) -> ApiError {
    state.throttles.account.fail(&user.email, crate::now_ms());
    wrong_code()
}

/// Checks the second factor of `user` when they have turned it on (nothing to check when
/// not): a six-digit code of the authenticator (the current step or one either side, never one
/// used before) or one of the recovery codes (each works once).
pub async fn verify_second_factor(
    state: &Shared,
    user: &UserRow,
    code: Option<&str>,
) -> ApiResult<()> {
    let Some(sealed) = &user.totp_sealed else { return Ok(()) };
    let code = code.map(str::trim).unwrap_or("");
    if code.is_empty() {
        return Err(ApiError::forbidden(
            "two_factor_required",
            "enter the code from your authenticator app (or a recovery code)",
        ));
    }
    locked(state, user)?;
    if code.len() > 64 {
        return Err(failed(state, user));
    }
    if code.bytes().all(|b| b.is_ascii_digit()) {
        let secret =
            state.keys.open_totp(sealed).map_err(|e| ApiError::internal("TOTP secret", e))?;
        let step = totp::matching_step(&secret, code, crate::now_ms().div_euclid(1000));
        return match step {
            Some(step) if state.store.use_totp_step(user.id, step).await? => {
                state.throttles.account.succeed(&user.email);
                Ok(())
            }
            _ => Err(failed(state, user)),
        };
    }
    let normalized = totp::normalize_recovery_code(code);
    let hash = crypto::token_hash(&normalized);
    if !state.store.use_recovery_code(user.id, &hash, crate::now_ms()).await? {
        return Err(failed(state, user));
    }
    state.throttles.account.succeed(&user.email);
    let left = state.store.recovery_codes_left(user.id).await?;
    let body = format!(
        "A recovery code was used to pass the two-factor check of your bourse account. {left} unused recovery code(s) are left.\n\nIf it was not you, sign out every session on your security page and reset your password: {}/account/security",
        state.config.public_url().trim_end_matches('/')
    );
    state.mail(&user.email, "A recovery code was used", &body).await;
    Ok(())
}

/// [`verify_second_factor`] for a signed-in user.
pub async fn require(state: &Shared, user: UserId, code: Option<&str>) -> ApiResult<()> {
    let row = user_row(state, user).await?;
    verify_second_factor(state, &row, code).await
}

/// What an authenticator app is given: the secret by hand, or the URI as a QR code.
#[derive(Debug, Serialize, ToSchema)]
pub struct Setup {
    /// The secret in base32.
    pub secret: String,
    /// The `otpauth://` URI (what the QR code holds).
    pub otpauth_uri: String,
}

/// The issuer an authenticator app shows: the host of the public URL.
fn issuer(state: &Shared) -> String {
    let url = state.config.public_url();
    let host = url.split("://").nth(1).unwrap_or(&url);
    host.split('/').next().unwrap_or(host).to_string()
}

/// Starts (or shows again) a setup: a new secret, kept sealed and pending until a code of it
/// confirms it. The REST endpoint and the setup page.
pub async fn begin_setup(state: &Shared, user: UserId) -> ApiResult<Setup> {
    let row = user_row(state, user).await?;
    if row.totp_sealed.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "two_factor_enabled",
            "two-factor authentication is already on",
        ));
    }
    let pending = row.totp_pending_sealed.as_deref().and_then(|s| state.keys.open_totp(s).ok());
    let secret = match pending {
        Some(secret) => secret,
        None => {
            let secret = crypto::random_bytes::<{ totp::SECRET_LEN }>()
                .map_err(|e| ApiError::internal("random", e))?
                .to_vec();
            let sealed =
                state.keys.seal_totp(&secret).map_err(|e| ApiError::internal("seal", e))?;
            state.store.set_totp_pending(user, Some(&sealed)).await?;
            secret
        }
    };
    Ok(Setup {
        secret: totp::secret_base32(&secret),
        otpauth_uri: totp::otpauth_uri(&secret, &issuer(state), &row.email),
    })
}

/// Turns two-factor authentication on with a code of the pending secret; returns the ten
/// recovery codes (shown once). Every session ends: the caller gets a new one.
pub async fn enable(
    state: &Shared,
    user: UserId,
    code: &str,
    client: &Client,
) -> ApiResult<Vec<String>> {
    let row = user_row(state, user).await?;
    if row.totp_sealed.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "two_factor_enabled",
            "two-factor authentication is already on",
        ));
    }
    let Some(sealed) = row.totp_pending_sealed.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_two_factor_setup",
            "start the setup first",
        ));
    };
    locked(state, &row)?;
    let secret = state.keys.open_totp(&sealed).map_err(|e| ApiError::internal("TOTP secret", e))?;
    let Some(step) = totp::matching_step(&secret, code, crate::now_ms().div_euclid(1000)) else {
        return Err(failed(state, &row));
    };
    let mut codes = Vec::with_capacity(totp::RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(totp::RECOVERY_CODES);
    for _ in 0..totp::RECOVERY_CODES {
        let code = totp::recovery_code(
            crypto::random_bytes::<8>().map_err(|e| ApiError::internal("random", e))?,
        );
        hashes.push(crypto::token_hash(&totp::normalize_recovery_code(&code)));
        codes.push(code);
    }
    state.store.enable_totp(user, &sealed, step, &hashes).await?;
    state.throttles.account.succeed(&row.email);
    let ended = state.store.revoke_sessions(user, None).await?;
    let detail = format!("{ended} session(s) signed out");
    security::record(state, user, SecurityEventKind::TwoFactorEnabled, client, detail).await;
    let body = format!(
        "Two-factor authentication is now on for your bourse account: logging in, withdrawing and creating API keys need a code from your authenticator app. Keep your recovery codes somewhere safe.\n\nWithdrawals are locked for 24 hours after this change.\n\nIf it was not you, reset your password at once and contact the exchange: {}/reset",
        state.config.public_url().trim_end_matches('/')
    );
    state.mail(&row.email, "Two-factor authentication turned on", &body).await;
    Ok(codes)
}

/// Turns two-factor authentication off: needs the password and a code (or a recovery code).
/// Every session ends: the caller gets a new one.
pub async fn disable(
    state: &Shared,
    user: UserId,
    password: String,
    code: &str,
    client: &Client,
) -> ApiResult<()> {
    let row = user_row(state, user).await?;
    if row.totp_sealed.is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "two_factor_off",
            "two-factor authentication is not on",
        ));
    }
    locked(state, &row)?;
    if !verify_password_of(state, password, &row).await? {
        state.throttles.account.fail(&row.email, crate::now_ms());
        return Err(ApiError::forbidden("bad_password", "the password is wrong"));
    }
    verify_second_factor(state, &row, Some(code)).await?;
    state.store.disable_totp(user).await?;
    let ended = state.store.revoke_sessions(user, None).await?;
    let detail = format!("{ended} session(s) signed out");
    security::record(state, user, SecurityEventKind::TwoFactorDisabled, client, detail).await;
    let body = format!(
        "Two-factor authentication was turned off for your bourse account.\n\nWithdrawals are locked for 24 hours after this change.\n\nIf it was not you, reset your password at once and contact the exchange: {}/reset",
        state.config.public_url().trim_end_matches('/')
    );
    state.mail(&row.email, "Two-factor authentication turned off", &body).await;
    Ok(())
}

/// Starts a two-factor setup, or shows the pending one again.
#[utoipa::path(post, path = "/two-factor/setup", tag = "account", security(("session" = [])),
    responses(
        (status = 200, description = "The secret to give the authenticator app", body = Setup),
        (status = 409, description = "`two_factor_enabled`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`", body = ErrorBody),
        (status = 403, description = "`session_required` (an API key was used), `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn setup(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Setup>> {
    Ok(Json(begin_setup(&state, p.user).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableRequest {
    /// A current code of the authenticator app.
    code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Enabled {
    /// Ten single-use codes that stand in for the authenticator; shown this once.
    pub recovery_codes: Vec<String>,
}

/// Turns two-factor authentication on. Every session ends; the response sets a new session
/// cookie for the caller.
#[utoipa::path(post, path = "/two-factor/enable", tag = "account", security(("session" = [])),
    request_body = EnableRequest,
    responses(
        (status = 200, description = "On; sets a new `bourse_session` cookie", body = Enabled),
        (status = 400, description = "`bad_json`", body = ErrorBody),
        (status = 403, description = "`bad_two_factor_code`, `session_required`, `csrf`", body = ErrorBody),
        (status = 409, description = "`two_factor_enabled`, `no_two_factor_setup`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` (with `Retry-After`)", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn enable_api(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    Extension(p): Extension<Principal>,
    ApiJson(r): ApiJson<EnableRequest>,
) -> ApiResult<Response> {
    let recovery_codes = enable(&state, p.user, &r.code, &client).await?;
    let (cookie, _) = super::account::start_session(&state, p.user, &client).await?;
    Ok(([(header::SET_COOKIE, cookie)], Json(Enabled { recovery_codes })).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    password: String,
    /// A code of the authenticator app, or a recovery code.
    code: String,
}

/// Turns two-factor authentication off. Every session ends; the response sets a new session
/// cookie for the caller.
#[utoipa::path(post, path = "/two-factor/disable", tag = "account", security(("session" = [])),
    request_body = DisableRequest,
    responses(
        (status = 200, description = "Off; sets a new `bourse_session` cookie", body = Message),
        (status = 400, description = "`bad_json`", body = ErrorBody),
        (status = 403, description = "`bad_password`, `bad_two_factor_code`, `two_factor_required`, `session_required`, `csrf`", body = ErrorBody),
        (status = 409, description = "`two_factor_off`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` (with `Retry-After`)", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn disable_api(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    Extension(p): Extension<Principal>,
    ApiJson(r): ApiJson<DisableRequest>,
) -> ApiResult<Response> {
    disable(&state, p.user, r.password, &r.code, &client).await?;
    let (cookie, _) = super::account::start_session(&state, p.user, &client).await?;
    let body = Message { message: "two-factor authentication is off" };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}
