//! Accounts: signup (argon2id, password policy, no account enumeration), e-mail verification,
//! login/logout with server-side sessions, the session list, and API keys (secret shown once,
//! stored sealed).

use super::{ApiJson, ApiPath};
use crate::auth::{Principal, SESSION_COOKIE, Via, parse_cidr};
use crate::crypto;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::security::{self, Client};
use crate::state::Shared;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bourse_core::UserId;
use bourse_store::{
    NewApiKey, NewSession, NewToken, Scopes, SecurityEventKind, StoreError, TokenPurpose,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const PASSWORD_LEN_MIN: usize = 10;
const PASSWORD_LEN_MAX: usize = 128;
const EMAIL_LEN_MAX: usize = 254;
const VERIFY_TOKEN_TTL_MS: i64 = 48 * 3_600_000;
const RESET_TOKEN_TTL_MS: i64 = 3_600_000;
const API_KEYS_PER_USER_MAX: usize = 30;
const LABEL_LEN_MAX: usize = 64;
const IP_ALLOWLIST_MAX: usize = 32;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    email: String,
    /// 10 to 128 characters, not too easy to guess.
    password: String,
    /// With a CAPTCHA configured: the widget's answer.
    #[serde(default)]
    captcha: Option<String>,
}

/// A confirmation with nothing else to say.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub message: &'static str,
}

/// Lower-cases and checks the shape of an e-mail address (one `@`, a dot in the domain, no
/// spaces, bounded length).
pub fn normalize_email(email: &str) -> ApiResult<String> {
    let email = email.trim().to_ascii_lowercase();
    let bad = || ApiError::bad_request("bad_email", "enter a valid e-mail address");
    if email.len() > EMAIL_LEN_MAX || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(bad());
    }
    Ok(email)
}

pub fn check_password_policy(password: &str, email: &str) -> ApiResult<()> {
    let n = password.chars().count();
    if !(PASSWORD_LEN_MIN..=PASSWORD_LEN_MAX).contains(&n) {
        return Err(ApiError::bad_request(
            "weak_password",
            format!("the password must have {PASSWORD_LEN_MIN} to {PASSWORD_LEN_MAX} characters"),
        ));
    }
    let distinct = password.chars().collect::<std::collections::BTreeSet<_>>().len();
    if distinct < 4
        || password.eq_ignore_ascii_case(email)
        || email.split('@').next() == Some(password)
    {
        return Err(ApiError::bad_request("weak_password", "the password is too easy to guess"));
    }
    Ok(())
}

async fn hash(state: &Shared, password: String) -> ApiResult<String> {
    let _slot = state
        .password_slots
        .acquire()
        .await
        .map_err(|e| ApiError::internal("password slots", e))?;
    tokio::task::spawn_blocking(move || crypto::hash_password(&password))
        .await
        .map_err(|e| ApiError::internal("password hashing task", e))?
        .map_err(|e| ApiError::internal("password hashing", e))
}

/// Whether `password` is `user`'s.
pub async fn verify_password_of(
    state: &Shared,
    password: String,
    user: &bourse_store::UserRow,
) -> ApiResult<bool> {
    verify_password_hash(state, password, user.password_hash.clone()).await
}

/// Whether `password` matches `hash` (argon2id, in the bounded pool of password checks).
pub(crate) async fn verify_password_hash(
    state: &Shared,
    password: String,
    hash: String,
) -> ApiResult<bool> {
    let _slot = state
        .password_slots
        .acquire()
        .await
        .map_err(|e| ApiError::internal("password slots", e))?;
    tokio::task::spawn_blocking(move || crypto::verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::internal("password check task", e))
}

/// A single-use link to `path` for `user`, valid for `ttl_ms`: a fresh token, stored hashed.
pub(crate) async fn mailed_link(
    state: &Shared,
    user: UserId,
    purpose: TokenPurpose,
    ttl_ms: i64,
    subject: Option<i64>,
    path: &str,
) -> ApiResult<String> {
    let token = crypto::random_token().map_err(|e| ApiError::internal("random", e))?;
    let now = crate::now_ms();
    state
        .store
        .insert_token(&NewToken {
            token_hash: crypto::token_hash(&token),
            user,
            purpose,
            created_ms: now,
            expires_ms: now + ttl_ms,
            subject,
        })
        .await?;
    Ok(format!("{}{path}?token={token}", state.config.public_url().trim_end_matches('/')))
}

/// The answer to a mailed link whose token is unknown, used, expired or for something else.
pub(crate) fn bad_token() -> ApiError {
    ApiError::bad_request("bad_token", "the link is invalid, used or expired")
}

/// Spends the token of a link [`mailed_link`] made for `purpose`: its user and subject, or
/// `bad_token` (nothing spent).
pub(crate) async fn use_mailed_link(
    state: &Shared,
    token: &str,
    purpose: TokenPurpose,
) -> ApiResult<bourse_store::UsedToken> {
    if token.is_empty() || token.len() > 128 {
        return Err(bad_token());
    }
    let hash = crypto::token_hash(token);
    state.store.use_token(&hash, purpose, crate::now_ms()).await?.ok_or_else(bad_token)
}

/// At most `signups_per_ip_hour` signups and reset requests from one client IP address.
fn signup_rate(state: &Shared, client: &Client) -> ApiResult<()> {
    state.throttles.signup.hit(&client.ip, crate::now_ms()).map_err(|wait| {
        ApiError::too_many(
            "too_many_requests",
            "too many requests from this address; try again later",
            wait,
        )
    })
}

/// Creates the account and mails the verification link; succeeds the same way whether or not
/// the address is already registered (no account enumeration). The REST and web signups.
pub async fn register(
    state: &Shared,
    email: &str,
    password: String,
    captcha: Option<&str>,
    client: &Client,
) -> ApiResult<()> {
    let email = normalize_email(email)?;
    check_password_policy(&password, &email)?;
    signup_rate(state, client)?;
    crate::captcha::check(&state.config.captcha, captcha, &client.ip).await?;
    let password_hash = hash(state, password).await?;
    let now = crate::now_ms();
    match state.store.create_user(&email, &password_hash, now).await {
        Ok(user) => {
            let purpose = TokenPurpose::VerifyEmail;
            let link =
                mailed_link(state, user, purpose, VERIFY_TOKEN_TTL_MS, None, "/verify").await?;
            let body = format!(
                "Welcome to bourse. Confirm your e-mail address by opening this link within 48 hours:\n\n{link}\n\nIf you did not sign up, ignore this message."
            );
            state.mail(&email, "Confirm your e-mail address", &body).await;
        }
        Err(StoreError::Conflict(_)) => {
            tracing::info!("signup for an address that is already registered");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Always answers the same way whether or not the address is registered.
#[utoipa::path(post, path = "/auth/signup", tag = "account", request_body = Credentials,
    responses(
        (status = 202, description = "A verification link was mailed (if the address is new)", body = Message),
        (status = 400, description = "`bad_json`, `bad_email`, `weak_password`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`too_many_requests` (with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn signup(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    ApiJson(c): ApiJson<Credentials>,
) -> ApiResult<Response> {
    register(&state, &c.email, c.password, c.captcha.as_deref(), &client).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Message { message: "check your e-mail for a link to verify your address" }),
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The `token` of the link in the verification mail.
    token: String,
}

#[utoipa::path(post, path = "/auth/verify", tag = "account", request_body = VerifyRequest,
    responses(
        (status = 200, description = "The address is verified", body = Message),
        (status = 400, description = "`bad_json`, `bad_token`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn verify_email(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    ApiJson(v): ApiJson<VerifyRequest>,
) -> ApiResult<Json<Message>> {
    verify_address(&state, &v.token, &client).await?;
    Ok(Json(Message { message: "e-mail verified; you can log in" }))
}

/// Uses a verification token (single use, expiring). The REST and web verifications.
pub async fn verify_address(state: &Shared, token: &str, client: &Client) -> ApiResult<()> {
    let user = use_mailed_link(state, token, TokenPurpose::VerifyEmail).await?.user;
    state.store.set_email_verified(user).await?;
    security::record(state, user, SecurityEventKind::EmailVerified, client, "").await;
    if let Some(row) = state.store.user(user).await? {
        let site = state.config.public_url();
        let body = format!(
            "Welcome to bourse: your address is confirmed and your account is ready.\n\nLog in at {site}/login to deposit and trade. Your account's security page lists every login and change: {site}/account/security"
        );
        state.mail(&row.email, "Welcome to bourse", &body).await;
    }
    Ok(())
}

/// Mails a password-reset link (single use, valid for an hour) if the address has an account;
/// answers the same way if it has none (no account enumeration). The REST and web requests.
pub async fn request_reset(
    state: &Shared,
    email: &str,
    captcha: Option<&str>,
    client: &Client,
) -> ApiResult<()> {
    let email = normalize_email(email)?;
    signup_rate(state, client)?;
    crate::captcha::check(&state.config.captcha, captcha, &client.ip).await?;
    // No address gets more reset mails than that an hour, whoever asks (same answer).
    if state.throttles.signup.hit(&format!("reset:{email}"), crate::now_ms()).is_err() {
        tracing::info!("password reset asked too often for one address; no mail");
        return Ok(());
    }
    let Some(user) = state.store.user_by_email(&email).await? else {
        tracing::info!("password reset asked for an address with no account");
        return Ok(());
    };
    let purpose = TokenPurpose::ResetPassword;
    let link = mailed_link(state, user.id, purpose, RESET_TOKEN_TTL_MS, None, "/reset").await?;
    security::record(state, user.id, SecurityEventKind::PasswordResetRequested, client, "").await;
    let body = format!(
        "Someone asked to reset the password of your bourse account. To choose a new password, open this link within an hour:\n\n{link}\n\nIf it was not you, ignore this message: your password stays as it is."
    );
    state.mail(&email, "Reset your password", &body).await;
    Ok(())
}

/// Uses a reset token: sets the new password, signs out every session (whoever had the old
/// password is out) and confirms the address (the link proved it). The REST and web resets.
pub async fn reset_password(
    state: &Shared,
    token: &str,
    password: String,
    client: &Client,
) -> ApiResult<()> {
    // The policy before the token is spent; the e-mail part of it once the user is known.
    check_password_policy(&password, "")?;
    // A token that cannot be one costs no password hash.
    if token.is_empty() || token.len() > 128 {
        return Err(bad_token());
    }
    let password_hash = hash(state, password.clone()).await?;
    let user = use_mailed_link(state, token, TokenPurpose::ResetPassword).await?.user;
    let row = state.store.user(user).await?.ok_or_else(bad_token)?;
    check_password_policy(&password, &row.email)?;
    state.store.set_password_hash(user, &password_hash).await?;
    state.store.set_email_verified(user).await?;
    let ended = state.store.revoke_sessions(user, None).await?;
    tracing::info!(user = user.0, sessions_ended = ended, "password reset");
    let detail = format!("through a reset link; {ended} session(s) signed out");
    security::record(state, user, SecurityEventKind::PasswordChanged, client, detail).await;
    let body = "The password of your bourse account was just changed through a reset link, and every session was signed out.\n\nIf it was not you, reset it again at once and contact the exchange.";
    state.mail(&row.email, "Your password was changed", body).await;
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    email: String,
    /// With a CAPTCHA configured: the widget's answer.
    #[serde(default)]
    captcha: Option<String>,
}

/// Always answers the same way whether or not the address is registered.
#[utoipa::path(post, path = "/auth/password-reset", tag = "account", request_body = ResetRequest,
    responses(
        (status = 202, description = "A reset link was mailed (if the address has an account)", body = Message),
        (status = 400, description = "`bad_json`, `bad_email`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 429, description = "`too_many_requests` (with `Retry-After`)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn password_reset(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    ApiJson(r): ApiJson<ResetRequest>,
) -> ApiResult<Response> {
    request_reset(&state, &r.email, r.captcha.as_deref(), &client).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Message { message: "if the address has an account, a reset link was mailed to it" }),
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    /// The `token` of the link in the reset mail.
    token: String,
    /// The new password: 10 to 128 characters, not too easy to guess.
    password: String,
}

/// Sets a new password and signs out every session of the account.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "account", request_body = ResetConfirm,
    responses(
        (status = 200, description = "The password is changed; every session is signed out", body = Message),
        (status = 400, description = "`bad_json`, `bad_token`, `weak_password`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn password_reset_confirm(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    ApiJson(r): ApiJson<ResetConfirm>,
) -> ApiResult<Json<Message>> {
    reset_password(&state, &r.token, r.password, &client).await?;
    Ok(Json(Message { message: "password changed; log in with the new password" }))
}

pub fn session_cookie(state: &Shared, token: &str, max_age_s: i64) -> String {
    let secure = if state.config.cookie_secure() { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}")
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
    /// With two-factor authentication on: a code of the authenticator app, or a recovery code.
    #[serde(default)]
    two_factor_code: Option<String>,
    /// With a CAPTCHA configured: the widget's answer.
    #[serde(default)]
    captcha: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub user_id: u64,
    pub session_id: i64,
}

/// Opens a session: the `bourse_session` cookie (HttpOnly, SameSite=Lax) is set. Wrong
/// passwords and codes lock the account, and the client's address, out for a while (the same
/// whether or not the account exists).
#[utoipa::path(post, path = "/auth/login", tag = "account", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; sets the `bourse_session` cookie", body = LoginResponse),
        (status = 400, description = "`bad_json`", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 403, description = "`email_not_verified`, `account_locked` (by the exchange), `two_factor_required`, `bad_two_factor_code`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` (with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn login(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    ApiJson(c): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let (code, captcha) = (c.two_factor_code.as_deref(), c.captcha.as_deref());
    let (cookie, body) = open_session(&state, &c.email, c.password, code, captcha, &client).await?;
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Checks the credentials (and the second factor when the account has it on) and opens a
/// session; returns its `Set-Cookie` value. The REST and web logins. A wrong e-mail costs the
/// same password check as a wrong password, and counts towards the same lockouts.
pub async fn open_session(
    state: &Shared,
    email: &str,
    password: String,
    two_factor_code: Option<&str>,
    captcha: Option<&str>,
    client: &Client,
) -> ApiResult<(String, LoginResponse)> {
    let invalid = || ApiError::unauthorized("invalid_credentials", "wrong e-mail or password");
    let too_many = |wait| {
        ApiError::too_many("too_many_attempts", "too many failed logins; try again later", wait)
    };
    let email = normalize_email(email).map_err(|_| invalid())?;
    let now = crate::now_ms();
    state.throttles.ip.check(&client.ip, now).map_err(too_many)?;
    state.throttles.account.check(&email, now).map_err(too_many)?;
    crate::captcha::check(&state.config.captcha, captcha, &client.ip).await?;
    if password.len() > PASSWORD_LEN_MAX * 4 {
        return Err(invalid());
    }
    let user = state.store.user_by_email(&email).await?;
    let hash_to_check =
        user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| state.dummy_hash.clone());
    let ok = verify_password_hash(state, password, hash_to_check).await?;
    let user = match user {
        Some(u) if ok => u,
        other => {
            let now = crate::now_ms();
            state.throttles.ip.fail(&client.ip, now);
            state.throttles.account.fail(&email, now);
            if let Some(u) = other {
                let kind = SecurityEventKind::LoginFailed;
                security::record(state, u.id, kind, client, "wrong password").await;
            }
            return Err(invalid());
        }
    };
    if !user.email_verified {
        return Err(ApiError::forbidden("email_not_verified", "verify your e-mail address first"));
    }
    if user.locked_ms.is_some() {
        return Err(crate::auth::locked_account());
    }
    if let Err(e) = super::two_factor::verify_second_factor(state, &user, two_factor_code).await {
        if e.code == "bad_two_factor_code" {
            let kind = SecurityEventKind::LoginFailed;
            security::record(state, user.id, kind, client, "wrong two-factor code").await;
        }
        return Err(e);
    }
    state.throttles.account.succeed(&email);
    let (cookie, id) = start_session(state, user.id, client).await?;
    new_device_mail(state, &user, client).await?;
    let detail = format!("session {id}");
    security::record(state, user.id, SecurityEventKind::LoginSucceeded, client, detail).await;
    Ok((cookie, LoginResponse { user_id: user.id.0, session_id: id }))
}

/// A new session of `user` for `client`: its `Set-Cookie` value and id. Logins, and the new
/// session a privilege change (two-factor on or off) gives its caller after ending the others.
pub async fn start_session(
    state: &Shared,
    user: UserId,
    client: &Client,
) -> ApiResult<(String, i64)> {
    let token = crypto::random_token().map_err(|e| ApiError::internal("random", e))?;
    let now = crate::now_ms();
    let idle_ms = i64::try_from(state.config.limits.session_idle_hours)
        .unwrap_or(24)
        .saturating_mul(3_600_000);
    let id = state
        .store
        .insert_session(&NewSession {
            token_hash: crypto::token_hash(&token),
            user,
            created_ms: now,
            expires_ms: now + idle_ms,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        })
        .await?;
    Ok((session_cookie(state, &token, idle_ms / 1000), id))
}

/// How long the sign-out link of a "new login" mail works.
const SIGN_OUT_TOKEN_TTL_MS: i64 = 7 * 24 * 3_600_000;

/// Mails the user about a login from an IP address and browser that never logged in to the
/// account before (not about the account's first login), with a link that signs out every
/// session.
async fn new_device_mail(
    state: &Shared,
    user: &bourse_store::UserRow,
    client: &Client,
) -> ApiResult<()> {
    let filter = bourse_store::SecurityEventFilter { before: None, limit: 500 };
    let logins: Vec<_> = state
        .store
        .security_events(user.id, &filter)
        .await?
        .into_iter()
        .filter(|e| e.kind == SecurityEventKind::LoginSucceeded)
        .collect();
    if logins.is_empty()
        || logins.iter().any(|e| e.ip == client.ip && e.user_agent == client.user_agent)
    {
        return Ok(());
    }
    let purpose = TokenPurpose::SignOutEverywhere;
    let path = "/sign-out-everywhere";
    let link = mailed_link(state, user.id, purpose, SIGN_OUT_TOKEN_TTL_MS, None, path).await?;
    let now = crate::now_ms();
    let agent = if client.user_agent.is_empty() { "unknown" } else { &client.user_agent };
    let body = format!(
        "Your bourse account was just logged in to from a device it had not seen before.\n\nIP address: {}\nBrowser: {agent}\nTime: {} UTC\n\nIf it was you, nothing needs doing. If it was not, open this link to sign out every session (it works for 7 days), then reset your password:\n\n{link}",
        client.ip,
        crate::web::format::utc_seconds(now),
    );
    state.mail(&user.email, "New login to your account", &body).await;
    Ok(())
}

/// Uses the link of a "new login" mail: every session of the account ends. The REST and web
/// sign-outs.
pub async fn sign_out_everywhere(state: &Shared, token: &str, client: &Client) -> ApiResult<u64> {
    let user = use_mailed_link(state, token, TokenPurpose::SignOutEverywhere).await?.user;
    let ended = state.store.revoke_sessions(user, None).await?;
    let detail = format!("every session ({ended}), from the new-login mail");
    security::record(state, user, SecurityEventKind::SessionRevoked, client, detail).await;
    Ok(ended)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignOutRequest {
    /// The `token` of the link in the "new login" mail.
    token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedOut {
    /// How many sessions ended.
    pub sessions_ended: u64,
}

/// Signs out every session of the account the link was mailed to.
#[utoipa::path(post, path = "/auth/sign-out-everywhere", tag = "account", request_body = SignOutRequest,
    responses(
        (status = 200, description = "Every session of the account ended", body = SignedOut),
        (status = 400, description = "`bad_json`, `bad_token`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn sign_out_everywhere_api(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    ApiJson(r): ApiJson<SignOutRequest>,
) -> ApiResult<Json<SignedOut>> {
    let sessions_ended = sign_out_everywhere(&state, &r.token, &client).await?;
    Ok(Json(SignedOut { sessions_ended }))
}

/// Ends the current session and clears the cookie.
#[utoipa::path(post, path = "/auth/logout", tag = "account", security(("session" = [])),
    responses(
        (status = 200, description = "Logged out", body = Message),
        (status = 401, description = "`unauthenticated`, `session_expired`", body = ErrorBody),
        (status = 403, description = "`session_required` (an API key was used), `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn logout(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    if let Via::Session { id } = p.via {
        state.store.revoke_session(p.user, id).await?;
        let detail = format!("session {id}");
        security::record(&state, p.user, SecurityEventKind::Logout, &client, detail).await;
    }
    let cookie = session_cookie(&state, "", 0);
    Ok(([(header::SET_COOKIE, cookie)], Json(Message { message: "logged out" })).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user_id: u64,
    pub email: String,
    pub email_verified: bool,
    pub created_ms: i64,
    /// Whether two-factor authentication is on.
    pub two_factor: bool,
}

#[utoipa::path(get, path = "/me", tag = "account", security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The caller's account", body = Me),
        (status = 400, description = "Signature errors: `missing_signature`, `missing_timestamp`, `bad_recv_window`, `timestamp_ahead`, `timestamp_outside_recv_window`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`, `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn me(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Me>> {
    let user = state
        .store
        .user(p.user)
        .await?
        .ok_or_else(|| ApiError::unauthorized("unauthenticated", "no such user"))?;
    Ok(Json(Me {
        user_id: user.id.0,
        email: user.email,
        email_verified: user.email_verified,
        created_ms: user.created_ms,
        two_factor: user.totp_sealed.is_some(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: i64,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub expires_ms: i64,
    pub ip: String,
    pub user_agent: String,
    /// Whether this is the session making the request.
    pub current: bool,
}

#[utoipa::path(get, path = "/sessions", tag = "account", security(("session" = [])),
    responses(
        (status = 200, description = "The caller's live sessions", body = Vec<SessionView>),
        (status = 401, description = "`unauthenticated`, `session_expired`", body = ErrorBody),
        (status = 403, description = "`session_required` (an API key was used), `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn sessions(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<SessionView>>> {
    let current = match p.via {
        Via::Session { id } => Some(id),
        Via::ApiKey { .. } => None,
    };
    let rows = state.store.sessions(p.user, crate::now_ms()).await?;
    let list = rows
        .into_iter()
        .map(|s| SessionView {
            id: s.id,
            created_ms: s.created_ms,
            last_seen_ms: s.last_seen_ms,
            expires_ms: s.expires_ms,
            ip: s.ip,
            user_agent: s.user_agent,
            current: Some(s.id) == current,
        })
        .collect();
    Ok(Json(list))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// The id of the revoked session or key (or the removed whitelist address).
    pub revoked: i64,
}

#[utoipa::path(delete, path = "/sessions/{id}", tag = "account", security(("session" = [])),
    params(("id" = i64, Path, description = "Session id")),
    responses(
        (status = 200, description = "The session is revoked", body = Revoked),
        (status = 400, description = "`bad_path`", body = ErrorBody),
        (status = 404, description = "`unknown_session`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`", body = ErrorBody),
        (status = 403, description = "`session_required` (an API key was used), `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn revoke_session(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Revoked>> {
    end_session(&state, p.user, id, &client).await?;
    Ok(Json(Revoked { revoked: id }))
}

/// Ends one of `user`'s sessions. The REST and web sign-outs.
pub async fn end_session(state: &Shared, user: UserId, id: i64, client: &Client) -> ApiResult<()> {
    if !state.store.revoke_session(user, id).await? {
        return Err(ApiError::not_found("unknown_session", "no such session"));
    }
    let detail = format!("session {id}");
    security::record(state, user, SecurityEventKind::SessionRevoked, client, detail).await;
    Ok(())
}

/// One entry of the caller's security log.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityEventView {
    pub id: i64,
    pub time_ms: i64,
    /// `login_succeeded`, `login_failed`, `logout`, `session_revoked`, `password_changed`,
    /// `password_reset_requested`, `email_verified`, `api_key_created`, `api_key_revoked`,
    /// `withdrawal_requested`, `two_factor_enabled`, `two_factor_disabled`,
    /// `withdrawal_address_added`, `withdrawal_address_confirmed`, `withdrawal_address_removed`,
    /// `address_whitelist_on`, `address_whitelist_off`.
    pub kind: &'static str,
    pub ip: String,
    pub user_agent: String,
    pub detail: String,
}

/// A page of security events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityEventsPage {
    pub events: Vec<SecurityEventView>,
    /// The `before` cursor of the next page; null at the end.
    pub next: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The `next` cursor of the previous page.
    before: Option<i64>,
    /// 1 to the list maximum (default 100).
    limit: Option<u32>,
}

/// The caller's security log: logins and failed logins, sign-outs, password changes, API keys,
/// withdrawals — with the IP address and browser of each.
#[utoipa::path(get, path = "/security-events", tag = "account", security(("session" = [])), params(EventsQuery),
    responses(
        (status = 200, description = "A page of the caller's security events, newest first", body = SecurityEventsPage),
        (status = 400, description = "`bad_query`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`", body = ErrorBody),
        (status = 403, description = "`session_required` (an API key was used)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn security_events(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    super::ApiQuery(q): super::ApiQuery<EventsQuery>,
) -> ApiResult<Json<SecurityEventsPage>> {
    let limit = q.limit.unwrap_or(100).clamp(1, bourse_store::LIST_LIMIT_MAX);
    let filter = bourse_store::SecurityEventFilter { before: q.before, limit };
    let rows = state.store.security_events(p.user, &filter).await?;
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|e| e.id)).flatten();
    let events = rows
        .into_iter()
        .map(|e| SecurityEventView {
            id: e.id,
            time_ms: e.at_ms,
            kind: e.kind.as_str(),
            ip: e.ip,
            user_agent: e.user_agent,
            detail: e.detail,
        })
        .collect();
    Ok(Json(SecurityEventsPage { events, next }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    /// 1 to 64 characters.
    label: String,
    #[schema(value_type = Vec<crate::views::names::Scope>)]
    scopes: Vec<String>,
    /// IP addresses or CIDR blocks the key may be used from (at most 32; empty: any).
    #[serde(default)]
    ip_allowlist: Vec<String>,
    /// With two-factor authentication on: a code of the authenticator app.
    #[serde(default)]
    two_factor_code: Option<String>,
}

/// A new key; the secret is shown in this response only.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The key's id (for `DELETE /api-keys/{id}`).
    pub key: i64,
    /// The value of the `X-API-KEY` header.
    pub api_key: String,
    /// The HMAC-SHA256 signing secret.
    pub secret: String,
    pub label: String,
    #[schema(value_type = Vec<crate::views::names::Scope>)]
    pub scopes: Vec<String>,
    pub ip_allowlist: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: i64,
    pub api_key: String,
    pub label: String,
    #[schema(value_type = Vec<crate::views::names::Scope>)]
    pub scopes: Vec<&'static str>,
    pub ip_allowlist: Vec<String>,
    pub created_ms: i64,
}

pub fn parse_scopes(names: &[String]) -> ApiResult<Scopes> {
    let mut scopes = Scopes::default();
    for name in names {
        scopes = scopes.union(match name.as_str() {
            "read" => Scopes::READ,
            "trade" => Scopes::TRADE.union(Scopes::READ),
            "withdraw" => Scopes::WITHDRAW.union(Scopes::READ),
            other => {
                return Err(ApiError::bad_request(
                    "bad_scope",
                    format!("unknown scope {other:?}; use read, trade, withdraw"),
                ));
            }
        });
    }
    if scopes == Scopes::default() {
        return Err(ApiError::bad_request("bad_scope", "give at least one scope"));
    }
    Ok(scopes)
}

pub fn scope_names(scopes: Scopes) -> Vec<&'static str> {
    [(Scopes::READ, "read"), (Scopes::TRADE, "trade"), (Scopes::WITHDRAW, "withdraw")]
        .into_iter()
        .filter(|(s, _)| scopes.contains(*s))
        .map(|(_, n)| n)
        .collect()
}

/// Creates a key; the secret is in this response only.
#[utoipa::path(post, path = "/api-keys", tag = "account", security(("session" = [])),
    request_body = NewKeyRequest,
    responses(
        (status = 201, description = "The key, with its secret (shown once)", body = CreatedApiKey),
        (status = 400, description = "`bad_json`, `bad_label`, `bad_scope`, `bad_ip_allowlist`", body = ErrorBody),
        (status = 409, description = "`too_many_api_keys`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`", body = ErrorBody),
        (status = 403, description = "`session_required` (an API key was used), `csrf`, `two_factor_required`, `bad_two_factor_code`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` (with `Retry-After`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn create_api_key(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    Extension(p): Extension<Principal>,
    ApiJson(r): ApiJson<NewKeyRequest>,
) -> ApiResult<Response> {
    let code = r.two_factor_code.as_deref();
    let (key, secret) =
        new_api_key(&state, p.user, &r.label, &r.scopes, &r.ip_allowlist, code, &client).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: key.0,
            api_key: key.1,
            secret,
            label: r.label,
            scopes: r.scopes,
            ip_allowlist: r.ip_allowlist,
        }),
    )
        .into_response())
}

/// Validates and stores a new key (after the second factor, when the user has it on); returns
/// `((id, key), secret)`.
pub async fn new_api_key(
    state: &Shared,
    user: UserId,
    label: &str,
    scopes: &[String],
    ip_allowlist: &[String],
    two_factor_code: Option<&str>,
    client: &Client,
) -> ApiResult<((i64, String), String)> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > LABEL_LEN_MAX {
        return Err(ApiError::bad_request(
            "bad_label",
            format!("the label must have 1 to {LABEL_LEN_MAX} characters"),
        ));
    }
    let scopes = parse_scopes(scopes)?;
    if ip_allowlist.len() > IP_ALLOWLIST_MAX {
        return Err(ApiError::bad_request(
            "bad_ip_allowlist",
            format!("at most {IP_ALLOWLIST_MAX} entries"),
        ));
    }
    for entry in ip_allowlist {
        if parse_cidr(entry).is_none() {
            return Err(ApiError::bad_request(
                "bad_ip_allowlist",
                format!("{entry:?} is not an IP address or CIDR"),
            ));
        }
    }
    if state.store.api_keys(user).await?.len() >= API_KEYS_PER_USER_MAX {
        return Err(ApiError::new(StatusCode::CONFLICT, "too_many_api_keys", "revoke a key first"));
    }
    super::two_factor::require(state, user, two_factor_code).await?;
    let key = crypto::random_token().map_err(|e| ApiError::internal("random", e))?;
    let secret = crypto::random_token().map_err(|e| ApiError::internal("random", e))?;
    let sealed = state.keys.seal(secret.as_bytes()).map_err(|e| ApiError::internal("seal", e))?;
    let id = state
        .store
        .insert_api_key(&NewApiKey {
            user,
            key: key.clone(),
            secret_sealed: sealed,
            label: label.to_string(),
            scopes,
            ip_allowlist: ip_allowlist.to_vec(),
            created_ms: crate::now_ms(),
        })
        .await?;
    let detail = format!("key {id} {label:?} ({})", scope_names(scopes).join(", "));
    security::record(state, user, SecurityEventKind::ApiKeyCreated, client, detail).await;
    if let Some(row) = state.store.user(user).await? {
        let ips = if ip_allowlist.is_empty() { "any".to_string() } else { ip_allowlist.join(", ") };
        let body = format!(
            "An API key was created for your bourse account.\n\nLabel: {label}\nScopes: {}\nIP allowlist: {ips}\nFrom: {}\n\nIf it was not you, revoke it at once on your security page, sign out every session and reset your password: {}/account/security",
            scope_names(scopes).join(", "),
            client.ip,
            state.config.public_url().trim_end_matches('/'),
        );
        state.mail(&row.email, "API key created", &body).await;
    }
    Ok(((id, key), secret))
}

#[utoipa::path(get, path = "/api-keys", tag = "account", security(("session" = [])),
    responses(
        (status = 200, description = "The caller's API keys (without secrets)", body = Vec<ApiKeyView>),
        (status = 401, description = "`unauthenticated`, `session_expired`", body = ErrorBody),
        (status = 403, description = "`session_required` (an API key was used), `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn api_keys(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<ApiKeyView>>> {
    let rows = state.store.api_keys(p.user).await?;
    let list = rows
        .into_iter()
        .map(|k| ApiKeyView {
            id: k.id,
            api_key: k.key,
            label: k.label,
            scopes: scope_names(k.scopes),
            ip_allowlist: k.ip_allowlist,
            created_ms: k.created_ms,
        })
        .collect();
    Ok(Json(list))
}

#[utoipa::path(delete, path = "/api-keys/{id}", tag = "account", security(("session" = [])),
    params(("id" = i64, Path, description = "API key id (`key` in the creation response)")),
    responses(
        (status = 200, description = "The key is revoked", body = Revoked),
        (status = 400, description = "`bad_path`", body = ErrorBody),
        (status = 404, description = "`unknown_api_key`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`", body = ErrorBody),
        (status = 403, description = "`session_required` (an API key was used), `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable", body = ErrorBody)))]
pub async fn revoke_api_key(
    State(state): State<Shared>,
    Extension(client): Extension<Client>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Revoked>> {
    revoke_key(&state, p.user, id, &client).await?;
    Ok(Json(Revoked { revoked: id }))
}

/// Revokes one of `user`'s keys, in the database and in this process's key cache at once. The
/// REST and web revocations.
pub async fn revoke_key(state: &Shared, user: UserId, id: i64, client: &Client) -> ApiResult<()> {
    if !state.store.revoke_api_key(user, id).await? {
        return Err(ApiError::not_found("unknown_api_key", "no such API key"));
    }
    if let Ok(mut cache) = state.api_keys.lock() {
        cache.retain(|_, k| k.id != id);
    }
    let detail = format!("key {id}");
    security::record(state, user, SecurityEventKind::ApiKeyRevoked, client, detail).await;
    Ok(())
}
