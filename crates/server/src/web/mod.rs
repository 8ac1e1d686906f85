//! The web UI: server-rendered pages (askama templates in `templates/`, checked at compile
//! time) and the embedded static files they use (`assets/`). Pages read the same mirror, tickers
//! and store as the REST API; live data comes from the same WebSocket channels, in `app.js`.
//! Every form posts to a handler here that works without JavaScript and shares its logic with
//! the REST endpoint (`api::account`).
//!
//! Every response from here carries a strict Content-Security-Policy: scripts and styles only
//! from this origin, no inline code, no framing.

mod account;
mod assets;
mod pages;

use crate::state::Shared;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use axum::routing::get;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(pages::home))
        .route("/markets/{market}", get(pages::market))
        .route("/fees", get(pages::fees))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/signup", get(pages::signup_page).post(pages::signup))
        .route("/verify", get(pages::verify_page).post(pages::verify))
        .route("/logout", axum::routing::post(pages::logout))
        .route("/account/security", get(account::security))
        .route("/account/api-keys", axum::routing::post(account::create_key))
        .route("/account/{kind}/{id}/revoke", axum::routing::post(account::revoke))
        .route("/static/{file}", get(assets::serve))
        .route("/static/vendor/{file}", get(assets::serve_vendor))
        .layer(from_fn(security_headers))
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}
