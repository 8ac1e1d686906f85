//! The account pages that need a login: security (two-factor authentication, sessions and API
//! keys). Their forms post here, work without JavaScript and share their logic with the REST
//! endpoints.

use super::format::utc;
use super::pages::{Chrome, render, user_post};
use crate::api::account::{end_session, new_api_key, revoke_key, scope_names, start_session};
use crate::api::two_factor;
use crate::state::Shared;
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bourse_core::UserId;
use serde::Deserialize;

/// To the login page, and back to `path` after it.
pub fn login_first(path: &str) -> Response {
    Redirect::to(&format!("/login?next={}", super::format::encode(path))).into_response()
}

pub struct SessionLine {
    id: i64,
    created: String,
    last_seen: String,
    ip: String,
    user_agent: String,
    current: bool,
}

pub struct KeyLine {
    id: i64,
    label: String,
    key_start: String,
    scopes: String,
    ips: String,
    created: String,
}

pub struct CreatedKey {
    label: String,
    key: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    chrome: Chrome,
    events: Vec<EventLine>,
    sessions: Vec<SessionLine>,
    keys: Vec<KeyLine>,
    created: Option<CreatedKey>,
    error: String,
    form_label: String,
    form_ips: String,
    two_factor: bool,
    recovery_left: u64,
    two_factor_error: String,
    whitelist: bool,
}

impl SecurityPage {
    async fn load(state: &Shared, chrome: Chrome, user: UserId) -> Result<SecurityPage, Response> {
        let internal =
            |e: bourse_store::StoreError| crate::error::ApiError::from(e).into_response();
        let sessions = state.store.sessions(user, crate::now_ms()).await.map_err(internal)?;
        let keys = state.store.api_keys(user).await.map_err(internal)?;
        let filter = bourse_store::SecurityEventFilter { before: None, limit: EVENTS_SHOWN };
        let events = state.store.security_events(user, &filter).await.map_err(internal)?;
        let current = chrome.session_id;
        let row = state.store.user(user).await.map_err(internal)?;
        let two_factor = row.as_ref().is_some_and(|u| u.totp_sealed.is_some());
        let whitelist = row.as_ref().is_some_and(|u| u.address_whitelist);
        let recovery_left = if two_factor {
            state.store.recovery_codes_left(user).await.map_err(internal)?
        } else {
            0
        };
        Ok(SecurityPage {
            two_factor,
            whitelist,
            recovery_left,
            two_factor_error: String::new(),
            events: events
                .into_iter()
                .map(|e| EventLine {
                    time: utc(e.at_ms),
                    kind: e.kind.as_str().replace('_', " "),
                    ip: e.ip,
                    user_agent: e.user_agent,
                    detail: e.detail,
                })
                .collect(),
            sessions: sessions
                .into_iter()
                .map(|s| SessionLine {
                    id: s.id,
                    created: utc(s.created_ms),
                    last_seen: utc(s.last_seen_ms),
                    ip: s.ip,
                    user_agent: s.user_agent,
                    current: Some(s.id) == current,
                })
                .collect(),
            keys: keys
                .into_iter()
                .map(|k| KeyLine {
                    id: k.id,
                    label: k.label,
                    key_start: k.key.chars().take(12).collect(),
                    scopes: scope_names(k.scopes).join(", "),
                    ips: if k.ip_allowlist.is_empty() {
                        "any".into()
                    } else {
                        k.ip_allowlist.join(", ")
                    },
                    created: utc(k.created_ms),
                })
                .collect(),
            chrome,
            created: None,
            error: String::new(),
            form_label: String::new(),
            form_ips: String::new(),
        })
    }
}

const PATH: &str = "/account/security";

/// Security events the page lists (the newest).
const EVENTS_SHOWN: u32 = 50;

struct EventLine {
    time: String,
    kind: String,
    ip: String,
    user_agent: String,
    detail: String,
}

pub async fn security(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let chrome = Chrome::of(&state, &headers).await;
    let Some(user) = chrome.user_id else { return login_first(PATH) };
    match SecurityPage::load(&state, chrome, user).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
pub struct NewKeyForm {
    label: String,
    read: Option<String>,
    trade: Option<String>,
    withdraw: Option<String>,
    #[serde(default)]
    ip_allowlist: String,
    #[serde(default)]
    two_factor_code: Option<String>,
}

pub async fn create_key(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Form(f): Form<NewKeyForm>,
) -> Result<Response, Response> {
    let (chrome, user) = user_post(&state, &headers, PATH).await?;
    let scopes: Vec<String> = [("read", &f.read), ("trade", &f.trade), ("withdraw", &f.withdraw)]
        .iter()
        .filter(|(_, on)| on.is_some())
        .map(|(name, _)| (*name).to_string())
        .collect();
    let ips: Vec<String> = f
        .ip_allowlist
        .split([' ', ',', '\n', '\r', '\t'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let code = f.two_factor_code.as_deref();
    let result = new_api_key(&state, user, &f.label, &scopes, &ips, code, &client).await;
    let mut page = SecurityPage::load(&state, chrome, user).await?;
    Ok(match result {
        Ok(((_, key), secret)) => {
            page.created = Some(CreatedKey { label: f.label.trim().to_string(), key, secret });
            render(StatusCode::OK, &page)
        }
        Err(e) => {
            page.error = e.message.clone();
            page.form_label = f.label;
            page.form_ips = f.ip_allowlist;
            super::pages::with_retry_after(render(e.status, &page), &e)
        }
    })
}

/// What a revoke form posts to: `/account/{sessions|api-keys}/{id}/revoke`.
pub async fn revoke(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, i64)>,
) -> Result<Response, Response> {
    let (chrome, user) = user_post(&state, &headers, PATH).await?;
    let done = match kind.as_str() {
        "sessions" => end_session(&state, user, id, &client).await,
        "api-keys" => revoke_key(&state, user, id, &client).await,
        _ => Err(crate::error::ApiError::not_found("not_found", "no such page")),
    };
    Ok(match done {
        Ok(()) => Redirect::to(PATH).into_response(),
        Err(e) => super::pages::error_page(chrome, e),
    })
}

#[derive(Template)]
#[template(path = "two_factor.html")]
struct TwoFactorPage {
    chrome: Chrome,
    qr: String,
    secret: String,
    error: String,
    recovery_codes: Vec<String>,
}

/// The security page with `e` shown in its two-factor section.
async fn two_factor_failed(
    state: &Shared,
    chrome: Chrome,
    user: UserId,
    e: crate::error::ApiError,
) -> Result<Response, Response> {
    let mut page = SecurityPage::load(state, chrome, user).await?;
    page.two_factor_error = e.message.clone();
    Ok(super::pages::with_retry_after(render(e.status, &page), &e))
}

/// The setup page: the QR code and secret of a pending setup, and the form for its first code.
async fn setup_page(
    state: &Shared,
    chrome: Chrome,
    user: UserId,
    error: Option<crate::error::ApiError>,
) -> Result<Response, Response> {
    match two_factor::begin_setup(state, user).await {
        Ok(setup) => {
            let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
            let page = TwoFactorPage {
                qr: super::wallet::qr_svg(&setup.otpauth_uri),
                secret: setup.secret,
                error: error.as_ref().map(|e| e.message.clone()).unwrap_or_default(),
                recovery_codes: Vec::new(),
                chrome,
            };
            let response = render(status, &page);
            Ok(match &error {
                Some(e) => super::pages::with_retry_after(response, e),
                None => response,
            })
        }
        Err(e) => two_factor_failed(state, chrome, user, e).await,
    }
}

/// `POST /account/two-factor/setup`: starts (or shows again) a setup.
pub async fn two_factor_setup(
    State(state): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let (chrome, user) = user_post(&state, &headers, PATH).await?;
    setup_page(&state, chrome, user, None).await
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

/// `POST /account/two-factor/enable`: turns it on with a first code; every session ends and
/// this browser gets a new one; the recovery codes are shown once.
pub async fn two_factor_enable(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Result<Response, Response> {
    let (chrome, user) = user_post(&state, &headers, PATH).await?;
    match two_factor::enable(&state, user, &f.code, &client).await {
        Ok(recovery_codes) => {
            let (cookie, id) = start_session(&state, user, &client)
                .await
                .map_err(axum::response::IntoResponse::into_response)?;
            let chrome = Chrome { session_id: Some(id), ..chrome };
            let page = TwoFactorPage {
                chrome,
                qr: String::new(),
                secret: String::new(),
                error: String::new(),
                recovery_codes,
            };
            Ok(([(header::SET_COOKIE, cookie)], render(StatusCode::OK, &page)).into_response())
        }
        Err(e) if e.code == "bad_two_factor_code" || e.code == "too_many_attempts" => {
            setup_page(&state, chrome, user, Some(e)).await
        }
        Err(e) => two_factor_failed(&state, chrome, user, e).await,
    }
}

#[derive(Deserialize)]
pub struct DisableForm {
    password: String,
    code: String,
}

/// `POST /account/two-factor/disable`: with the password and a code; every session ends and
/// this browser gets a new one.
pub async fn two_factor_disable(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<crate::security::Client>,
    headers: HeaderMap,
    Form(f): Form<DisableForm>,
) -> Result<Response, Response> {
    let (chrome, user) = user_post(&state, &headers, PATH).await?;
    match two_factor::disable(&state, user, f.password, &f.code, &client).await {
        Ok(()) => {
            let (cookie, _) = start_session(&state, user, &client)
                .await
                .map_err(axum::response::IntoResponse::into_response)?;
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to(PATH)).into_response())
        }
        Err(e) => two_factor_failed(&state, chrome, user, e).await,
    }
}
