//! The admin app: its own listener (`[admin] listen`, 127.0.0.1:8081 by default), for
//! operators only. Its rule: no admin action without an authenticated, authorised,
//! second-factor-confirmed admin, and every action recorded.
//!
//! - A request from an address outside `allowed_ips` is refused before anything else.
//! - Admins are separate from users (`bourse admin create`); TOTP is mandatory at login.
//! - Each route declares the role it needs where it is defined ([`ROUTES`]); a test walks the
//!   table. Roles: viewer < operator < superadmin.
//! - Sessions end after `session_idle_s` without a request; state changes must come from the
//!   admin app's own pages (same-origin rule) and need a TOTP code entered within
//!   `fresh_totp_s` (the action's form asks for one otherwise).
//! - Every action goes to the append-only admin audit log (`audit.rs`).

mod adjustments;
mod audit;
mod deposits;
mod markets;
mod pages;
mod reports;
mod session;
mod users;
mod withdrawals;

pub use session::{AdminPrincipal, CreatedAdmin, create_admin};

use crate::state::Shared;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use bourse_store::AdminRole;
use serde::Deserialize;
use std::net::SocketAddr;

/// `[admin]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Where the admin app listens; loopback unless you say otherwise.
    pub listen: SocketAddr,
    /// Addresses or CIDR ranges the admin app answers (a list, or a comma-separated string);
    /// everything else is refused first.
    #[serde(deserialize_with = "crate::config::address_list")]
    pub allowed_ips: Vec<String>,
    /// The URL admins reach it at (default `http://<listen>`); `https://` makes its cookie
    /// `Secure`.
    pub public_url: Option<String>,
    /// A session ends after this long without a request.
    pub session_idle_s: u64,
    /// A state change needs a TOTP code entered within this long (else its form asks for one).
    pub fresh_totp_s: u64,
}

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            allowed_ips: vec!["127.0.0.1".into(), "::1".into()],
            public_url: None,
            session_idle_s: 15 * 60,
            fresh_totp_s: 5 * 60,
        }
    }
}

impl AdminConfig {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(bad) = self.allowed_ips.iter().find(|p| crate::auth::parse_cidr(p).is_none()) {
            return Err(format!("admin.allowed_ips: {bad:?} is not an address or CIDR range"));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err("admin.public_url must start with http:// or https://".into());
        }
        if self.session_idle_s == 0 {
            return Err("admin.session_idle_s must be positive".into());
        }
        Ok(())
    }

    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// Whether the admin app is reached over TLS.
    pub fn secure(&self) -> bool {
        self.public_url().starts_with("https://")
    }
}

/// One admin route: its path, method, the role it needs, and its handler.
pub struct AdminRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub role: AdminRole,
    /// Whether it changes anything (then it needs a fresh TOTP code and is audited).
    pub changes: bool,
    handler: fn() -> MethodRouter<Shared>,
}

impl std::fmt::Debug for AdminRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRoute")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("role", &self.role)
            .field("changes", &self.changes)
            .finish_non_exhaustive()
    }
}

use AdminRole::{Operator, Superadmin, Viewer};

/// Every route behind the admin login, with the role it needs.
pub const ROUTES: &[AdminRoute] = &[
    AdminRoute {
        method: "GET",
        path: "/",
        role: Viewer,
        changes: false,
        handler: || get(pages::dashboard),
    },
    AdminRoute {
        method: "GET",
        path: "/withdrawals",
        role: Viewer,
        changes: false,
        handler: || get(withdrawals::queue),
    },
    AdminRoute {
        method: "POST",
        path: "/withdrawals/{id}/approve",
        role: Operator,
        changes: true,
        handler: || post(withdrawals::approve),
    },
    AdminRoute {
        method: "POST",
        path: "/withdrawals/{id}/reject",
        role: Operator,
        changes: true,
        handler: || post(withdrawals::reject),
    },
    AdminRoute {
        method: "GET",
        path: "/users",
        role: Viewer,
        changes: false,
        handler: || get(users::search),
    },
    AdminRoute {
        method: "GET",
        path: "/users/{id}",
        role: Viewer,
        changes: false,
        handler: || get(users::detail),
    },
    AdminRoute {
        method: "POST",
        path: "/users/{id}/lock",
        role: Operator,
        changes: true,
        handler: || post(users::lock),
    },
    AdminRoute {
        method: "POST",
        path: "/users/{id}/unlock",
        role: Operator,
        changes: true,
        handler: || post(users::unlock),
    },
    AdminRoute {
        method: "POST",
        path: "/users/{id}/sign-out",
        role: Operator,
        changes: true,
        handler: || post(users::sign_out),
    },
    AdminRoute {
        method: "POST",
        path: "/users/{id}/reset-two-factor",
        role: Operator,
        changes: true,
        handler: || post(users::reset_two_factor),
    },
    AdminRoute {
        method: "GET",
        path: "/deposits",
        role: Viewer,
        changes: false,
        handler: || get(deposits::list),
    },
    AdminRoute {
        method: "POST",
        path: "/deposits/credit",
        role: Operator,
        changes: true,
        handler: || post(deposits::credit),
    },
    AdminRoute {
        method: "GET",
        path: "/wallets",
        role: Viewer,
        changes: false,
        handler: || get(pages::wallets),
    },
    AdminRoute {
        method: "GET",
        path: "/markets",
        role: Viewer,
        changes: false,
        handler: || get(markets::list),
    },
    AdminRoute {
        method: "POST",
        path: "/markets/{symbol}/status",
        role: Operator,
        changes: true,
        handler: || post(markets::set_status),
    },
    AdminRoute {
        method: "POST",
        path: "/markets",
        role: Superadmin,
        changes: true,
        handler: || post(markets::add_market),
    },
    AdminRoute {
        method: "POST",
        path: "/markets/{symbol}/edit",
        role: Superadmin,
        changes: true,
        handler: || post(markets::edit),
    },
    AdminRoute {
        method: "POST",
        path: "/markets/{symbol}/cancel-orders",
        role: Superadmin,
        changes: true,
        handler: || post(markets::cancel_orders),
    },
    AdminRoute {
        method: "POST",
        path: "/assets",
        role: Superadmin,
        changes: true,
        handler: || post(markets::add_asset),
    },
    AdminRoute {
        method: "GET",
        path: "/adjustments",
        role: Viewer,
        changes: false,
        handler: || get(adjustments::list),
    },
    AdminRoute {
        method: "POST",
        path: "/adjustments",
        role: Operator,
        changes: true,
        handler: || post(adjustments::propose),
    },
    AdminRoute {
        method: "POST",
        path: "/adjustments/{id}/approve",
        role: Superadmin,
        changes: true,
        handler: || post(adjustments::approve),
    },
    AdminRoute {
        method: "POST",
        path: "/adjustments/{id}/reject",
        role: Operator,
        changes: true,
        handler: || post(adjustments::reject),
    },
    AdminRoute {
        method: "GET",
        path: "/reports",
        role: Viewer,
        changes: false,
        handler: || get(reports::page),
    },
    AdminRoute {
        method: "GET",
        path: "/reports/fees.csv",
        role: Viewer,
        changes: false,
        handler: || get(reports::csv),
    },
    AdminRoute {
        method: "GET",
        path: "/audit",
        role: Viewer,
        changes: false,
        handler: || get(audit::page),
    },
    AdminRoute {
        method: "POST",
        path: "/logout",
        role: Viewer,
        changes: false,
        handler: || post(session::logout),
    },
];

/// The admin app's router.
pub fn router(state: &Shared) -> Router {
    let mut guarded = Router::new();
    for route in ROUTES {
        let guard = from_fn_with_state((state.clone(), route.role), session::guard);
        guarded = guarded.route(route.path, (route.handler)().route_layer(guard));
    }
    Router::new()
        .route("/login", get(session::login_page).post(session::login))
        .route("/static/{file}", get(crate::web::assets::serve))
        // For a scraper and a supervisor: behind the allowlist, without a login.
        .route("/metrics", get(crate::metrics::exposition))
        .route("/health", get(crate::metrics::alive))
        .route("/ready", get(crate::metrics::ready))
        .merge(guarded)
        .fallback(not_found)
        .layer(from_fn(headers))
        .layer(from_fn_with_state(state.clone(), allowlist))
        .layer(from_fn_with_state(state.clone(), crate::security::client))
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .with_state(state.clone())
}

/// Refuses every request from outside `allowed_ips`, before anything else looks at it.
async fn allowlist(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let allowed = request.extensions().get::<crate::security::Client>().is_some_and(|c| {
        let list = &state.config.admin.allowed_ips;
        !list.is_empty() && crate::auth::ip_allowed(list, c.addr)
    });
    if !allowed {
        return (StatusCode::FORBIDDEN, "the admin app is not open to this address")
            .into_response();
    }
    next.run(request).await
}

/// The web UI's security headers, and no caching of admin pages.
async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::web::CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `text` (an `otpauth://` URI) as a QR code of Unicode half blocks, for a terminal.
pub fn terminal_qr(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(e) => format!("(no QR code: {e})"),
    }
}

/// Why an admin action did not happen: the status of the page that says so, and what it says.
pub(crate) type Failure = (StatusCode, String);

/// The reason an action must give (the audit log and, for some, the user's mail say it).
pub(crate) fn required_reason(reason: &str) -> Result<&str, Failure> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err((StatusCode::BAD_REQUEST, "give a reason (at most 200 characters)".into()));
    }
    Ok(reason)
}

/// A user id typed into an admin form.
pub(crate) fn user_id(text: &str) -> Result<bourse_core::UserId, Failure> {
    text.trim()
        .parse::<u64>()
        .map(bourse_core::UserId)
        .map_err(|_| (StatusCode::BAD_REQUEST, "the user is a user id".to_string()))
}

/// The asset an admin form names: its id, scale and symbol.
pub(crate) fn asset(
    state: &Shared,
    symbol: &str,
) -> Result<(bourse_core::AssetId, u8, String), Failure> {
    state
        .mirror
        .read()
        .ok()
        .and_then(|m| m.asset_by_symbol(symbol.trim()).map(|a| (a.id, a.scale, a.symbol.clone())))
        .ok_or_else(|| (StatusCode::BAD_REQUEST, format!("there is no asset {}", symbol.trim())))
}

/// The engine's refusal among a command's events.
pub(crate) fn refusal(events: &[bourse_core::Event]) -> Option<bourse_core::Reject> {
    events.iter().find_map(|e| match e {
        bourse_core::Event::Rejected { reason, .. } => Some(*reason),
        _ => None,
    })
}

/// Runs an admin action's engine command; the engine's refusal is the action's error (409,
/// with the engine's reason). Returns the command's seq.
pub(crate) async fn execute(state: &Shared, command: bourse_core::Command) -> Result<u64, Failure> {
    let outcome = state
        .engine
        .execute(command)
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    match refusal(&outcome.events) {
        Some(reason) => Err((StatusCode::CONFLICT, format!("the engine refused: {reason}"))),
        None => Ok(outcome.seq),
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such page").into_response()
}
