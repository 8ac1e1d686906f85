//! Binance's error answers: `{"code": -1013, "msg": "Filter failure: LOT_SIZE"}` with Binance's
//! HTTP status, code and message text, because clients match on them (ccxt maps `-2010` with
//! "Account has insufficient balance for requested action." to `InsufficientFunds`, hummingbot
//! looks for "Unknown order sent."). Errors of the layers `/api/v1` shares with `/api/v3`
//! (authentication, rate limits, the engine) arrive as [`ApiError`]s and are translated here,
//! once: by [`From`] inside handlers, by [`translate`] for what a shared middleware answered.

use crate::error::ApiError;
use axum::Json;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bourse_core::Reject;
use serde::Serialize;

#[derive(Debug)]
pub struct BinanceError {
    pub status: StatusCode,
    pub code: i32,
    pub msg: String,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after_s: Option<i64>,
}

pub type BinanceResult<T> = Result<T, BinanceError>;

#[derive(Serialize)]
struct Body<'a> {
    code: i32,
    msg: &'a str,
}

impl IntoResponse for BinanceError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, Json(Body { code: self.code, msg: &self.msg })).into_response();
        if let Some(s) = self.retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, s.into());
        }
        response
    }
}

impl BinanceError {
    pub fn new(status: StatusCode, code: i32, msg: impl Into<String>) -> BinanceError {
        BinanceError { status, code, msg: msg.into(), retry_after_s: None }
    }

    /// A 400 with `code`.
    pub fn bad(code: i32, msg: impl Into<String>) -> BinanceError {
        BinanceError::new(StatusCode::BAD_REQUEST, code, msg)
    }

    /// `-1102`: a mandatory parameter is missing or empty.
    pub fn mandatory(name: &str) -> BinanceError {
        BinanceError::bad(
            -1102,
            format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
        )
    }

    /// `-1100`: a parameter that does not parse.
    pub fn illegal(name: &str, legal: &str) -> BinanceError {
        BinanceError::bad(
            -1100,
            format!("Illegal characters found in parameter '{name}'; legal range is '{legal}'."),
        )
    }

    /// `-1121`.
    pub fn bad_symbol() -> BinanceError {
        BinanceError::bad(-1121, "Invalid symbol.")
    }

    /// `-2013`: an order lookup found nothing.
    pub fn no_such_order() -> BinanceError {
        BinanceError::bad(-2013, "Order does not exist.")
    }

    /// `-2011`: a cancel found nothing open to cancel.
    pub fn unknown_order_sent() -> BinanceError {
        BinanceError::bad(-2011, "Unknown order sent.")
    }

    fn filter(name: &str) -> BinanceError {
        BinanceError::bad(-1013, format!("Filter failure: {name}"))
    }

    fn rejected(msg: &str) -> BinanceError {
        BinanceError::bad(-2010, msg)
    }
}

const INVALID_KEY: &str = "Invalid API-key, IP, or permissions for action.";

/// The engine's refusal of an order or cancel, as Binance words it.
pub fn reject(reason: Reject) -> BinanceError {
    match reason {
        Reject::InsufficientFunds => {
            BinanceError::rejected("Account has insufficient balance for requested action.")
        }
        Reject::MarketHalted => BinanceError::rejected("Market is closed."),
        Reject::DuplicateClientOrderId => BinanceError::rejected("Duplicate order sent."),
        Reject::PostOnlyWouldTake => {
            BinanceError::rejected("Order would immediately match and take.")
        }
        Reject::FokNotFillable => {
            BinanceError::rejected("Order would not be filled completely (FOK).")
        }
        Reject::PriceZero | Reject::PriceOffTick => BinanceError::filter("PRICE_FILTER"),
        Reject::QuantityZero
        | Reject::QuantityOffLot
        | Reject::QuantityBelowMin
        | Reject::QuantityAboveMax
        | Reject::Overflow => BinanceError::filter("LOT_SIZE"),
        Reject::NotionalBelowMin | Reject::AmountZero => BinanceError::filter("NOTIONAL"),
        Reject::TooManyOpenOrders => BinanceError::filter("MAX_NUM_ORDERS"),
        Reject::UnknownOrder => BinanceError::unknown_order_sent(),
        Reject::UnknownMarket => BinanceError::bad_symbol(),
        other => BinanceError::bad(-1000, other.to_string()),
    }
}

impl From<ApiError> for BinanceError {
    fn from(e: ApiError) -> BinanceError {
        let mut out = in_binance_words(e.status, e.code, e.message);
        out.retry_after_s = e.retry_after_s;
        out
    }
}

/// An `/api/v1` error (its status, code and message) as Binance words it.
fn in_binance_words(status: StatusCode, code: &str, message: String) -> BinanceError {
    match code {
        "invalid_signature" => BinanceError::bad(-1022, "Signature for this request is not valid."),
        "timestamp_ahead" => BinanceError::bad(
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        ),
        "timestamp_outside_recv_window" => {
            BinanceError::bad(-1021, "Timestamp for this request is outside of the recvWindow.")
        }
        "bad_recv_window" => BinanceError::bad(-1131, "recvWindow must be less than 60000"),
        "missing_signature" => BinanceError::mandatory("signature"),
        "missing_timestamp" => BinanceError::mandatory("timestamp"),
        "invalid_api_key" | "unauthenticated" | "session_expired" | "ip_not_allowed"
        | "missing_scope" | "account_locked" => {
            BinanceError::new(StatusCode::UNAUTHORIZED, -2015, INVALID_KEY)
        }
        "too_many_requests" => BinanceError::new(
            StatusCode::TOO_MANY_REQUESTS,
            -1003,
            format!("Too much request weight used; {message}"),
        ),
        "unknown_market" => BinanceError::bad_symbol(),
        "unknown_order" => BinanceError::no_such_order(),
        _ if status.is_server_error() => BinanceError::new(
            status,
            -1001,
            "Internal error; unable to process your request. Please try again.",
        ),
        _ => BinanceError::new(status, -1000, message),
    }
}

/// Rewrites an error a shared middleware answered in `/api/v1`'s shape (`{"code": "...",
/// "message": "..."}`) into Binance's; every other response passes untouched.
pub async fn translate(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let (_, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct V1 {
        code: String,
        message: String,
    }
    let error = match serde_json::from_slice::<V1>(&bytes) {
        Ok(v1) => in_binance_words(status, &v1.code, v1.message),
        // Already Binance's, or no JSON at all (an axum rejection): Binance's shape anyway.
        Err(_) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) if v.get("code").is_some_and(serde_json::Value::is_i64) => {
                let code = v.get("code").and_then(serde_json::Value::as_i64).unwrap_or(-1000);
                let msg = v.get("msg").and_then(serde_json::Value::as_str).unwrap_or_default();
                BinanceError::new(status, i32::try_from(code).unwrap_or(-1000), msg)
            }
            _ => BinanceError::new(status, -1000, String::from_utf8_lossy(&bytes).into_owned()),
        },
    };
    let mut response = error.into_response();
    if let Some(v) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_refusals_read_as_binance_words_them() {
        let e = reject(Reject::InsufficientFunds);
        assert_eq!(
            (e.code, e.msg.as_str()),
            (-2010, "Account has insufficient balance for requested action.")
        );
        assert_eq!(reject(Reject::PriceOffTick).msg, "Filter failure: PRICE_FILTER");
        assert_eq!(reject(Reject::QuantityBelowMin).msg, "Filter failure: LOT_SIZE");
        assert_eq!(reject(Reject::NotionalBelowMin).msg, "Filter failure: NOTIONAL");
        assert_eq!(reject(Reject::DuplicateClientOrderId).msg, "Duplicate order sent.");
        assert_eq!(reject(Reject::UnknownOrder).code, -2011);
        let e = BinanceError::from(ApiError::unauthorized("invalid_api_key", "x"));
        assert_eq!((e.status, e.code), (StatusCode::UNAUTHORIZED, -2015));
        let e = BinanceError::from(ApiError::bad_request("timestamp_ahead", "x"));
        assert_eq!(e.code, -1021);
    }
}
