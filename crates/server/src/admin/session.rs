//! Admin accounts and sessions: `bourse admin create` ([`create_admin`]), the login (password
//! and a TOTP code, always), the guard every admin route runs (session, idle timeout, role,
//! same-origin rule), the fresh-code check of state changes, and logout.

use super::pages::{AdminChrome, message, render, unavailable};
use crate::crypto;
use crate::security::Client;
use crate::state::Shared;
use crate::totp;
use askama::Template;
use axum::Form;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use bourse_store::{AdminRole, AdminRow, AdminSessionRow, NewAdmin, NewAdminSession, Store};
use serde::Deserialize;

/// The admin session cookie (its own name: the admin app may share a host with the site).
const COOKIE: &str = "bourse_admin";

/// A new admin, as `bourse admin create` reports it.
#[derive(Clone, Debug)]
pub struct CreatedAdmin {
    pub id: i64,
    /// As stored (normalised).
    pub email: String,
    /// The TOTP secret for an authenticator app.
    pub otpauth_uri: String,
}

/// Creates an admin with a fresh TOTP secret. `bourse admin create`.
pub async fn create_admin(
    store: &dyn Store,
    keys: &crypto::Keys,
    email: &str,
    password: &str,
    role: AdminRole,
    issuer: &str,
) -> Result<CreatedAdmin, String> {
    let email = crate::api::account::normalize_email(email).map_err(|e| e.message)?;
    crate::api::account::check_password_policy(password, &email).map_err(|e| e.message)?;
    let secret = crypto::random_bytes::<{ totp::SECRET_LEN }>().map_err(|e| e.to_string())?;
    let sealed = keys.seal_totp(&secret).map_err(|e| e.to_string())?;
    let password_hash = crypto::hash_password(password).map_err(|e| e.to_string())?;
    let new = NewAdmin {
        email: email.clone(),
        password_hash,
        role,
        totp_sealed: sealed,
        created_ms: crate::now_ms(),
    };
    let id = store.create_admin(&new).await.map_err(|e| match e {
        bourse_store::StoreError::Conflict(_) => format!("an admin {email} exists already"),
        other => other.to_string(),
    })?;
    let otpauth_uri = totp::otpauth_uri(&secret, &format!("{issuer} admin"), &email);
    Ok(CreatedAdmin { id, email, otpauth_uri })
}

/// The admin behind a request, as the guard found them.
#[derive(Clone, Debug)]
pub struct AdminPrincipal {
    pub admin: AdminRow,
    pub session: AdminSessionRow,
    pub client: Client,
}

impl AdminPrincipal {
    pub fn chrome(&self) -> AdminChrome {
        AdminChrome { email: self.admin.email.clone(), role: self.admin.role.as_str() }
    }

    /// Whether a TOTP code was entered in this session within `fresh_totp_s` (forms then ask
    /// for none). The guard read the session at the start of this request.
    pub fn is_fresh(&self, state: &Shared) -> bool {
        let window =
            i64::try_from(state.config.admin.fresh_totp_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.session.totp_ms.saturating_add(window) >= crate::now_ms()
    }

    /// A state change goes ahead only with a TOTP code entered in this session within
    /// `fresh_totp_s`, or a valid one given now (`code`, which then counts as the fresh one).
    pub async fn fresh_totp(&self, state: &Shared, code: Option<&str>) -> Result<(), String> {
        let code = code.map(str::trim).unwrap_or("");
        if code.is_empty() {
            return if self.is_fresh(state) {
                Ok(())
            } else {
                Err("enter a code from your authenticator app to confirm this".into())
            };
        }
        if !verify_code(state, &self.admin, code).await {
            return Err("the code is wrong, expired or already used".into());
        }
        let now = crate::now_ms();
        let _ = state.store.touch_admin_session(self.session.id, now, Some(now)).await;
        Ok(())
    }
}

/// Whether `code` is the admin's current TOTP code (a step not used before, which it uses).
async fn verify_code(state: &Shared, admin: &AdminRow, code: &str) -> bool {
    let Ok(secret) = state.keys.open_totp(&admin.totp_sealed) else {
        tracing::error!(admin = admin.id, "cannot open an admin's TOTP secret");
        return false;
    };
    match totp::matching_step(&secret, code, crate::now_ms().div_euclid(1000)) {
        Some(step) => state.store.use_admin_totp_step(admin.id, step).await.unwrap_or(false),
        None => false,
    }
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|cookies| {
        cookies.split(';').find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty() && value.len() <= 128).then(|| value.to_string())
        })
    })
}

fn cookie(state: &Shared, token: &str, max_age_s: u64) -> String {
    let secure = if state.config.admin.secure() { "; Secure" } else { "" };
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}

/// To the login page (and back after it), or, for a form post, a page saying to log in.
fn to_login(request: &Request) -> Response {
    if request.method() == Method::GET {
        let next = crate::web::format::encode(request.uri().path());
        Redirect::to(&format!("/login?next={next}")).into_response()
    } else {
        let page = message(
            None,
            StatusCode::UNAUTHORIZED,
            "Log in again",
            "Your admin session ended. Log in again and repeat the action.",
        );
        page.into_response()
    }
}

/// Every guarded admin route: a live session whose admin has at least `role`, not idle past
/// `session_idle_s`; a state change must come from the admin app's own pages.
pub async fn guard(
    State((state, role)): State<(Shared, AdminRole)>,
    mut request: Request,
    next: Next,
) -> Response {
    let now = crate::now_ms();
    let Some(token) = session_token(request.headers()) else { return to_login(&request) };
    let unavailable = |e: bourse_store::StoreError| unavailable(None, "session lookup", &e);
    let session = match state.store.live_admin_session(&crypto::token_hash(&token)).await {
        Ok(Some(s)) => s,
        Ok(None) => return to_login(&request),
        Err(e) => return unavailable(e),
    };
    let idle_ms =
        i64::try_from(state.config.admin.session_idle_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    if session.last_seen_ms.saturating_add(idle_ms) < now {
        let _ = state.store.end_admin_session(session.id, now).await;
        return to_login(&request);
    }
    let admin = match state.store.admin(session.admin).await {
        Ok(Some(a)) if a.disabled_ms.is_none() => a,
        Ok(_) => return to_login(&request),
        Err(e) => return unavailable(e),
    };
    let client = request.extensions().get::<Client>().cloned().unwrap_or_else(|| Client {
        ip: String::new(),
        addr: std::net::Ipv4Addr::UNSPECIFIED.into(),
        user_agent: String::new(),
    });
    let chrome = Some(AdminChrome { email: admin.email.clone(), role: admin.role.as_str() });
    if admin.role < role {
        return message(
            chrome,
            StatusCode::FORBIDDEN,
            "Not allowed",
            &format!("This needs the {} role; yours is {}.", role.as_str(), admin.role.as_str()),
        );
    }
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    if !safe && !crate::auth::same_origin(request.headers(), &state.config.admin.public_url()) {
        return message(
            chrome,
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form was sent from another site.",
        );
    }
    match state.store.touch_admin_session(session.id, now, None).await {
        Ok(true) => {}
        Ok(false) => return to_login(&request),
        Err(e) => return unavailable(e),
    }
    request.extensions_mut().insert(AdminPrincipal { admin, session, client });
    next.run(request).await
}

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    chrome: Option<AdminChrome>,
    error: String,
    email: String,
    next: String,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_page(Query(q): Query<NextQuery>) -> Response {
    let next = crate::web::pages::safe_next(q.next.as_deref());
    render(
        StatusCode::OK,
        &LoginPage { chrome: None, error: String::new(), email: String::new(), next },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    code: String,
    next: Option<String>,
}

/// Checks the password and a TOTP code (always), then opens a session. Wrong answers count
/// towards the same lockouts as the site's logins (per address, and per admin e-mail).
pub async fn login(
    State(state): State<Shared>,
    axum::Extension(client): axum::Extension<Client>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = crate::web::pages::safe_next(f.next.as_deref());
    let page = |status, error: &str| {
        let error = error.to_string();
        render(
            status,
            &LoginPage { chrome: None, error, email: f.email.clone(), next: next.clone() },
        )
    };
    if !crate::auth::same_origin(&headers, &state.config.admin.public_url()) {
        return page(StatusCode::FORBIDDEN, "This form was sent from another site.");
    }
    let now = crate::now_ms();
    let email = f.email.trim().to_lowercase();
    let key = format!("admin:{email}");
    let locked = state.throttles.ip.check(&client.ip, now).is_err()
        || state.throttles.account.check(&key, now).is_err();
    if locked {
        return page(StatusCode::TOO_MANY_REQUESTS, "Too many failed logins; try again later.");
    }
    let admin = state.store.admin_by_email(&email).await.ok().flatten();
    let hash =
        admin.as_ref().map(|a| a.password_hash.clone()).unwrap_or_else(|| state.dummy_hash.clone());
    let password_ok = f.password.len() <= 512
        && crate::api::account::verify_password_hash(&state, f.password.clone(), hash)
            .await
            .unwrap_or(false);
    let admin = match admin {
        Some(a)
            if a.disabled_ms.is_none() && password_ok && verify_code(&state, &a, &f.code).await =>
        {
            a
        }
        other => {
            state.throttles.ip.fail(&client.ip, now);
            state.throttles.account.fail(&key, now);
            if let Some(a) = other {
                let why = if password_ok { "wrong code" } else { "wrong password" };
                super::audit::record_for(&state, a.id, &client, "login_failed", "", "", why).await;
            }
            return page(StatusCode::UNAUTHORIZED, "Wrong e-mail, password or code.");
        }
    };
    state.throttles.account.succeed(&key);
    let Ok(token) = crypto::random_token() else {
        return page(StatusCode::INTERNAL_SERVER_ERROR, "Try again.");
    };
    let new = NewAdminSession {
        admin: admin.id,
        token_hash: crypto::token_hash(&token),
        created_ms: now,
        totp_ms: now,
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
    };
    if let Err(e) = state.store.insert_admin_session(&new).await {
        tracing::error!(error = %e, "cannot open an admin session");
        return page(StatusCode::SERVICE_UNAVAILABLE, "The database does not answer.");
    }
    super::audit::record_for(&state, admin.id, &client, "login", "", "", "").await;
    let max_age = state.config.admin.session_idle_s.saturating_mul(8);
    ([(header::SET_COOKIE, cookie(&state, &token, max_age))], Redirect::to(&next)).into_response()
}

pub async fn logout(
    State(state): State<Shared>,
    axum::Extension(p): axum::Extension<AdminPrincipal>,
) -> Response {
    let _ = state.store.end_admin_session(p.session.id, crate::now_ms()).await;
    super::audit::record(&state, &p, "logout", "", "", "").await;
    ([(header::SET_COOKIE, cookie(&state, "", 0))], Redirect::to("/login")).into_response()
}
