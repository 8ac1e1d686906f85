//! REST `/api/v1`: the route table (each private route declares what it requires of its
//! caller, next to its path) and the extractors that turn malformed input into `{code,
//! message}` errors.

pub mod account;
pub mod openapi;
pub mod public;
pub mod trading;
pub mod two_factor;
pub mod wallet;
pub mod whitelist;

use crate::auth::{Requirement, require};
use crate::error::ApiError;
use crate::state::Shared;
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts};
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};
use bourse_store::Scopes;

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

pub fn routes(state: &Shared) -> Router<Shared> {
    let guard = |r: Requirement| from_fn_with_state((state.clone(), r), require);
    let public = Router::new()
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/time", get(public::time))
        .route("/health", get(public::health))
        .route("/assets", get(public::assets))
        .route("/markets", get(public::markets))
        .route("/tickers", get(public::tickers))
        .route("/markets/{market}/ticker", get(public::ticker))
        .route("/markets/{market}/depth", get(public::depth))
        .route("/markets/{market}/trades", get(public::trades))
        .route("/markets/{market}/candles", get(public::candles))
        .route("/auth/signup", post(account::signup))
        .route("/auth/verify", post(account::verify_email))
        .route("/auth/login", post(account::login))
        .route("/auth/password-reset", post(account::password_reset))
        .route("/auth/password-reset/confirm", post(account::password_reset_confirm))
        .route("/auth/sign-out-everywhere", post(account::sign_out_everywhere_api))
        .route("/withdrawals/confirm", post(wallet::confirm_withdrawal))
        .route("/withdrawal-addresses/confirm", post(whitelist::confirm_api));
    let session_only = Router::new()
        .route("/auth/logout", post(account::logout))
        .route("/sessions", get(account::sessions))
        .route("/sessions/{id}", delete(account::revoke_session))
        .route("/security-events", get(account::security_events))
        .route("/api-keys", get(account::api_keys).post(account::create_api_key))
        .route("/api-keys/{id}", delete(account::revoke_api_key))
        .route("/two-factor/setup", post(two_factor::setup))
        .route("/two-factor/enable", post(two_factor::enable_api))
        .route("/two-factor/disable", post(two_factor::disable_api))
        .route("/withdrawal-addresses", get(whitelist::list).post(whitelist::add_api))
        .route("/withdrawal-addresses/{id}", delete(whitelist::remove_api))
        .route("/withdrawal-addresses/enabled", put(whitelist::set_enabled_api))
        .route_layer(guard(Requirement::Session));
    let read = Router::new()
        .route("/me", get(account::me))
        .route("/balances", get(trading::balances))
        .route("/orders", get(trading::list_orders))
        .route("/orders/{id}", get(trading::get_order))
        .route("/fills", get(trading::fills))
        .route("/ledger", get(trading::ledger))
        .route("/deposit-addresses", get(wallet::addresses).post(wallet::create_address))
        .route("/deposits", get(wallet::deposits))
        .route("/withdrawals", get(wallet::withdrawals))
        .route_layer(guard(Requirement::Scope(Scopes::READ)));
    let trade = Router::new()
        .route("/orders", post(trading::place).delete(trading::cancel_all))
        .route("/orders/{id}", delete(trading::cancel))
        .route("/orders/by-client-id/{client_order_id}", delete(trading::cancel_by_client_id))
        .route_layer(guard(Requirement::Scope(Scopes::TRADE)));
    let withdraw = Router::new()
        .route("/withdrawals", post(wallet::withdraw))
        .route_layer(guard(Requirement::Scope(Scopes::WITHDRAW)));
    public.merge(session_only).merge(read).merge(trade).merge(withdraw)
}
