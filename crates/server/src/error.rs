//! The one mapping from failures to HTTP: every error leaves as `{"code", "message"}` with the
//! right status. Client mistakes are 4xx with a stable `code`; internal failures are logged here
//! and leave as a bare 500/503 without details.

use crate::throttle::RetryAfter;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bourse_core::Reject;
use bourse_engine::EngineError;
use bourse_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (a rate limit or lockout).
    pub retry_after_s: Option<i64>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code such as `unknown_order` or `bad_json`.
    pub code: String,
    /// A human-readable explanation; may change between versions.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after_s: None }
    }
    /// `429` with `Retry-After`.
    pub fn too_many(code: &'static str, message: impl Into<String>, wait: RetryAfter) -> ApiError {
        ApiError {
            retry_after_s: Some(wait.seconds()),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }
    pub fn internal(what: &str, error: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %error, "{what}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { code: self.code.to_string(), message: self.message };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after_s {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, s.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Database(_) => {
                tracing::error!(error = %e, "database error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "database unavailable",
                )
            }
            other => ApiError::internal("store error", other),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the exchange is busy, retry shortly",
            ),
            other => {
                tracing::error!(error = %other, "engine unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the engine is not running",
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let status = r.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(status, "body_too_large", "request body too large");
        }
        if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            return ApiError::new(
                status,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            );
        }
        ApiError::bad_request("bad_json", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::bad_request("bad_query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::bad_request("bad_path", r.body_text())
    }
}

/// The engine's reasons for refusing a command, as API errors.
pub fn reject(reason: Reject) -> ApiError {
    let code = match reason {
        Reject::InsufficientFunds => "insufficient_funds",
        Reject::UnknownAsset => "unknown_asset",
        Reject::UnknownMarket => "unknown_market",
        Reject::MarketHalted => "market_halted",
        Reject::DuplicateAsset => "duplicate_asset",
        Reject::DuplicateMarket => "duplicate_market",
        Reject::BadScale => "bad_scale",
        Reject::BadMarketSpec(_) => "bad_market_spec",
        Reject::MarketNotEmpty => "market_not_empty",
        Reject::PriceZero => "price_zero",
        Reject::QuantityZero => "quantity_zero",
        Reject::PriceOffTick => "price_off_tick",
        Reject::QuantityOffLot => "quantity_off_lot",
        Reject::QuantityBelowMin => "quantity_below_min",
        Reject::QuantityAboveMax => "quantity_above_max",
        Reject::NotionalBelowMin => "notional_below_min",
        Reject::Overflow => "amount_too_large",
        Reject::PostOnlyWouldTake => "post_only_would_take",
        Reject::FokNotFillable => "fok_not_fillable",
        Reject::DuplicateClientOrderId => "duplicate_client_order_id",
        Reject::TooManyOpenOrders => "too_many_open_orders",
        Reject::UnknownOrder => "unknown_order",
        Reject::AmountZero => "amount_zero",
        Reject::DuplicateDeposit => "duplicate_deposit",
        Reject::DuplicateWithdrawal => "duplicate_withdrawal",
        Reject::UnknownWithdrawal => "unknown_withdrawal",
        Reject::WithdrawalState => "withdrawal_state",
        Reject::FeeTooHigh => "fee_too_high",
        Reject::UnknownDeposit => "unknown_deposit",
        Reject::DuplicateReversal => "duplicate_reversal",
        Reject::AccountFrozen => "withdrawals_frozen",
    };
    let status = match reason {
        Reject::UnknownOrder | Reject::UnknownMarket => StatusCode::NOT_FOUND,
        Reject::DuplicateClientOrderId => StatusCode::CONFLICT,
        Reject::MarketHalted | Reject::TooManyOpenOrders => StatusCode::CONFLICT,
        Reject::AccountFrozen => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, code, reason.to_string())
}

pub type ApiResult<T> = Result<T, ApiError>;
