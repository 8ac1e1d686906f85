//! The web UI: server-rendered pages (askama templates in `templates/`, checked at compile
//! time) and the embedded static files they use (`assets/`). Pages read the same mirror, tickers
//! and store as the REST API; live data comes from the same WebSocket channels, in `app.js`.
//! Every form posts to a handler here that works without JavaScript and shares its logic with
//! the REST endpoint (`api::account`).
//!
//! Every response from here carries a strict Content-Security-Policy: scripts and styles only
//! from this origin, no inline code, no framing. Behind TLS every response of the server also
//! carries HSTS ([`strict_transport`]).

mod account;
pub(crate) mod assets;
pub mod format;
mod history;
mod info;
pub(crate) mod pages;
mod trading;
mod wallet;
mod whitelist;

use crate::error::ApiError;
use crate::state::Shared;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::middleware::{Next, from_fn};
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::{get, post};

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(pages::home))
        .route("/markets/{market}", get(pages::market))
        .route("/markets/{market}/orders", post(trading::place))
        .route("/fees", get(info::fees))
        .route("/status", get(info::status))
        .route("/api", get(info::api))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/signup", get(pages::signup_page).post(pages::signup))
        .route("/verify", get(pages::verify_page).post(pages::verify))
        .route(
            "/sign-out-everywhere",
            get(pages::sign_out_everywhere_page).post(pages::sign_out_everywhere),
        )
        .route(
            "/confirm-withdrawal",
            get(pages::confirm_withdrawal_page).post(pages::confirm_withdrawal),
        )
        .route("/confirm-address", get(pages::confirm_address_page).post(pages::confirm_address))
        .route("/reset", get(pages::reset_page).post(pages::reset_request))
        .route("/reset/confirm", post(pages::reset_confirm))
        .route("/logout", post(pages::logout))
        .route("/account/funds", get(history::funds))
        .route("/account/funds/{asset}/{action}", get(wallet::page))
        .route("/account/funds/{asset}/deposit/address", post(wallet::create_address))
        .route("/account/funds/{asset}/withdraw", get(wallet::withdraw_form).post(wallet::withdraw))
        .route("/account/orders", get(history::orders))
        .route("/account/orders/{id}/cancel", post(trading::cancel))
        .route("/account/orders/cancel-all", post(trading::cancel_all))
        .route("/account/trades", get(history::trades))
        .route("/account/{file}", get(history::csv))
        .route("/account/security", get(account::security))
        .route("/account/api-keys", post(account::create_key))
        .route("/account/two-factor/setup", post(account::two_factor_setup))
        .route("/account/two-factor/enable", post(account::two_factor_enable))
        .route("/account/two-factor/disable", post(account::two_factor_disable))
        .route("/account/withdrawal-addresses", get(whitelist::page).post(whitelist::add))
        .route("/account/withdrawal-addresses/enabled", post(whitelist::switch))
        .route("/account/withdrawal-addresses/{id}/remove", post(whitelist::remove))
        .route("/account/{kind}/{id}/revoke", post(account::revoke))
        .route("/static/{file}", get(assets::serve))
        .route("/static/vendor/{file}", get(assets::serve_vendor))
        .layer(from_fn(security_headers))
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    secure(response.headers_mut());
    response
}

/// How long a browser that saw the exchange over TLS keeps to HTTPS: a year.
const HSTS: &str = "max-age=31536000";

/// Middleware: behind TLS (an `https://` public URL), every response, API and pages alike,
/// tells browsers to use only HTTPS from now on.
pub async fn strict_transport(
    State(state): State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    // Read in place: `Config::public_url` builds a String, and this runs on every response.
    if state.config.public_url.as_deref().is_some_and(|u| u.starts_with("https://")) {
        response
            .headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    response
}

/// Any route nobody serves: `{code, message}` under `/api/` and at `/ws`, a page elsewhere.
pub async fn fallback(state: State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if path.starts_with("/api/")
        || path.starts_with("/internal/")
        || path == "/api"
        || path == "/ws"
    {
        return ApiError::not_found("not_found", "no such route").into_response();
    }
    let mut response = pages::not_found(state, headers).await;
    secure(response.headers_mut());
    response
}

fn secure(headers: &mut HeaderMap) {
    // A page with a CAPTCHA widget set its own, wider policy.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}
