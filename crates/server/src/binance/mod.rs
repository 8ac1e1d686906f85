//! The Binance-compatible spot API: the subset of Binance's `/api/v3` that trading clients
//! (ccxt's `binance` class, python-binance, freqtrade) rely on, with Binance's field spellings,
//! number formats, error codes and message texts (`shared/BINANCE-API.md` lists them). It only
//! translates: parameters become the engine commands and read-model queries `/api/v1` uses, and
//! their answers become Binance's shapes. Authentication (the same API keys and HMAC rule,
//! `auth.rs`), rate limits (`throttle.rs`) and the engine's checks are `/api/v1`'s.
//!
//! Symbols are the base and quote symbols joined (`BTCUSDT` for `BTC-USDT`); amounts are
//! strings with the asset's full precision (`"0.01000000"`); ids and times are numbers.

pub mod error;
mod params;
pub mod public;
pub mod streams;
pub mod trading;
pub mod user_data;

use crate::auth::{Requirement, require};
use crate::mirror::{MarketInfo, Mirror};
use crate::state::Shared;
use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bourse_store::Scopes;
use error::BinanceError;

/// `/api/v3`.
pub fn routes(state: &Shared) -> Router<Shared> {
    let guard =
        |scope: Scopes| from_fn_with_state((state.clone(), Requirement::Scope(scope)), require);
    let public = Router::new()
        .route("/ping", get(public::ping))
        .route("/time", get(public::time))
        .route("/exchangeInfo", get(public::exchange_info))
        .route("/depth", get(public::depth))
        .route("/trades", get(public::trades))
        .route("/historicalTrades", get(public::historical_trades))
        .route("/aggTrades", get(public::agg_trades))
        .route("/klines", get(public::klines))
        .route("/uiKlines", get(public::klines))
        .route("/avgPrice", get(public::avg_price))
        .route("/ticker/24hr", get(public::ticker_24hr))
        .route("/ticker/price", get(public::ticker_price))
        .route("/ticker/bookTicker", get(public::book_ticker));
    let read = Router::new()
        .route("/account", get(trading::account))
        .route("/order", get(trading::get_order))
        .route("/openOrders", get(trading::open_orders))
        .route("/allOrders", get(trading::all_orders))
        .route("/myTrades", get(trading::my_trades))
        .route_layer(guard(Scopes::READ))
        .route_layer(from_fn(api_key_only));
    let trade = Router::new()
        .route("/order", post(trading::place).delete(trading::cancel))
        .route("/order/test", post(trading::test_order))
        .route("/openOrders", axum::routing::delete(trading::cancel_open))
        .route_layer(guard(Scopes::TRADE))
        .route_layer(from_fn(api_key_only));
    let user_stream = Router::new().route(
        "/userDataStream",
        post(user_data::create_listen_key)
            .put(user_data::keep_alive_listen_key)
            .delete(user_data::delete_listen_key),
    );
    public
        .merge(user_stream)
        .merge(read)
        .merge(trade)
        .fallback(|| async { BinanceError::new(StatusCode::NOT_FOUND, -1000, "Unknown endpoint.") })
        .layer(from_fn_with_state(state.clone(), crate::throttle::api_limit))
        .layer(from_fn(error::translate))
}

/// Signed endpoints take an API key, never a browser session (no cookie, no CSRF question).
async fn api_key_only(request: Request, next: Next) -> Response {
    let headers = request.headers();
    if headers.get("x-mbx-apikey").is_none() && headers.get("x-api-key").is_none() {
        return BinanceError::new(
            StatusCode::UNAUTHORIZED,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        )
        .into_response();
    }
    next.run(request).await
}

/// A market's Binance symbol: `BTCUSDT`.
pub fn symbol_of(m: &MarketInfo) -> String {
    format!("{}{}", m.base.symbol, m.quote.symbol)
}

/// The market named `symbol` (`BTCUSDT`, any case), or `-1121`.
pub fn market_in(mirror: &Mirror, symbol: &str) -> Result<MarketInfo, BinanceError> {
    let wanted = symbol.to_ascii_uppercase();
    mirror
        .markets
        .values()
        .find(|m| symbol_of(m) == wanted)
        .cloned()
        .ok_or_else(BinanceError::bad_symbol)
}

/// [`market_in`] of the current mirror.
pub fn market(state: &Shared, symbol: &str) -> Result<MarketInfo, BinanceError> {
    let mirror = state.mirror.read().map_err(|_| internal())?;
    market_in(&mirror, symbol)
}

/// The markets `symbol` or `symbols=[...]` name (each must exist), or every market.
pub fn markets(state: &Shared, p: &params::Params) -> Result<Vec<MarketInfo>, BinanceError> {
    let mirror = state.mirror.read().map_err(|_| internal())?;
    if let Some(one) = p.get("symbol") {
        return Ok(vec![market_in(&mirror, one)?]);
    }
    match p.symbols()? {
        Some(list) => list.iter().map(|s| market_in(&mirror, s)).collect(),
        None => Ok(mirror.markets.values().cloned().collect()),
    }
}

fn internal() -> BinanceError {
    BinanceError::new(StatusCode::INTERNAL_SERVER_ERROR, -1000, "An unknown error occurred.")
}

/// An amount with the asset's full precision, as Binance writes them: `"0.01000000"`.
pub fn fixed(value: u128, scale: u8) -> String {
    bourse_core::decimal::format_units(value, scale)
}
