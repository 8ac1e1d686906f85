//! Private trading routes: balances, orders (place, cancel, cancel all, get, list), fills and
//! ledger entries. Every command goes to the engine with the caller's own user id, so another
//! user's order ids are unknown to it; reads filter by the caller in SQL.

use super::{ApiJson, ApiPath, ApiQuery};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody, reject};
use crate::mirror::MarketInfo;
use crate::orders;
use crate::state::Shared;
use crate::views::{BalanceView, FillView, LedgerView, OrderView};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bourse_core::decimal::{DecimalError, parse_units};
use bourse_core::{
    ClientOrderId, Command, Event, MarketId, OrderId, OrderRef, OrderType, PlaceOrder, Reject,
    Side, StpMode, TimeInForce, TradeId, UserId,
};
use bourse_store::{FillFilter, LIST_LIMIT_MAX, LedgerFilter, OrderFilter, OrderRow, TradeRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

fn mirror_err<T>(_: T) -> ApiError {
    ApiError::internal("mirror", "poisoned lock")
}

#[utoipa::path(get, path = "/balances", tag = "trading", security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The caller's balances", body = Vec<BalanceView>),
        (status = 400, description = "signature errors: `missing_signature`, `missing_timestamp`, `bad_recv_window`, `timestamp_ahead`, `timestamp_outside_recv_window`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`, `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable` (database or engine), `busy` (retry shortly)", body = ErrorBody)))]
pub async fn balances(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<BalanceView>>> {
    state.wait_projected(p.user).await;
    let rows = state.store.balances(p.user).await?;
    let mirror = state.mirror.read().map_err(mirror_err)?;
    Ok(Json(rows.iter().map(|b| BalanceView::new(b, &mirror)).collect()))
}

/// A new order. A limit order takes `price` and `quantity` (and optionally `time_in_force`);
/// a market order takes exactly one of `quantity` (base) and `quote_amount` (quote to spend).
/// Amounts are decimal strings.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceRequest {
    /// Market symbol, e.g. `BTC-USDT`.
    pub market: String,
    #[schema(value_type = crate::views::names::Side)]
    pub side: String,
    #[serde(rename = "type")]
    #[schema(value_type = crate::views::names::OrderType)]
    pub kind: String,
    pub price: Option<String>,
    pub quantity: Option<String>,
    pub quote_amount: Option<String>,
    /// Limit orders only; default `gtc`.
    #[schema(value_type = Option<crate::views::names::TimeInForce>)]
    pub time_in_force: Option<String>,
    /// Your own id for the order, unique among your open orders in the market.
    pub client_order_id: Option<String>,
    /// Self-trade prevention; default `expire_taker`.
    #[schema(value_type = Option<crate::views::names::StpMode>)]
    pub stp: Option<String>,
}

/// The order as placed, with the trades it made immediately.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaceResponse {
    pub order: OrderView,
    pub fills: Vec<FillView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CancelResponse {
    pub order_id: u64,
    pub market: String,
    /// Always `canceled`.
    #[schema(value_type = crate::views::names::OrderStatus)]
    pub status: &'static str,
    pub filled_quantity: String,
    pub canceled_quantity: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CancelAllResponse {
    /// The ids of the canceled orders.
    pub canceled: Vec<u64>,
}

/// A page of orders, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrdersPage {
    pub orders: Vec<OrderView>,
    /// The `before` cursor of the next page; null at the end.
    pub next: Option<u64>,
}

/// A page of fills, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FillsPage {
    pub fills: Vec<FillView>,
    /// The `before` cursor of the next page (`seq:market_id:trade_id`); null at the end.
    pub next: Option<String>,
}

/// A page of ledger entries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerPage {
    pub entries: Vec<LedgerView>,
    /// The `before` cursor of the next page; null at the end.
    pub next: Option<i64>,
}

fn amount(field: &'static str, text: &str, scale: u8) -> ApiResult<u128> {
    parse_units(text, scale).map_err(|e| {
        let code = match e {
            DecimalError::TooPrecise { .. } => "too_precise",
            DecimalError::Negative => "negative_amount",
            DecimalError::Overflow => "amount_too_large",
            _ => "bad_amount",
        };
        ApiError::bad_request(code, format!("{field}: {e}"))
    })
}

/// Parses a place-order request into the engine command (shape only; the engine checks the
/// grid, limits and funds).
pub fn parse_place(r: &PlaceRequest, market: &MarketInfo, user: UserId) -> ApiResult<PlaceOrder> {
    let (b, q) = (market.base.scale, market.quote.scale);
    let side = match r.side.as_str() {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        _ => return Err(ApiError::bad_request("bad_side", "side must be buy or sell")),
    };
    let order_type = match r.kind.as_str() {
        "limit" => {
            let price = r.price.as_deref().ok_or_else(|| {
                ApiError::bad_request("missing_price", "a limit order needs a price")
            })?;
            let quantity = r.quantity.as_deref().ok_or_else(|| {
                ApiError::bad_request("missing_quantity", "a limit order needs a quantity")
            })?;
            if r.quote_amount.is_some() {
                return Err(ApiError::bad_request(
                    "bad_order",
                    "quote_amount is for market orders",
                ));
            }
            let time_in_force = match r.time_in_force.as_deref().unwrap_or("gtc") {
                "gtc" => TimeInForce::Gtc,
                "ioc" => TimeInForce::Ioc,
                "fok" => TimeInForce::Fok,
                "post_only" => TimeInForce::PostOnly,
                _ => {
                    return Err(ApiError::bad_request(
                        "bad_time_in_force",
                        "time_in_force must be gtc, ioc, fok or post_only",
                    ));
                }
            };
            OrderType::Limit {
                price: amount("price", price, q)?,
                quantity: amount("quantity", quantity, b)?,
                time_in_force,
            }
        }
        "market" => {
            if r.price.is_some() || r.time_in_force.is_some() {
                return Err(ApiError::bad_request(
                    "bad_order",
                    "a market order takes no price or time_in_force",
                ));
            }
            match (r.quantity.as_deref(), r.quote_amount.as_deref()) {
                (Some(qty), None) => OrderType::Market { quantity: amount("quantity", qty, b)? },
                (None, Some(a)) => OrderType::MarketQuote { amount: amount("quote_amount", a, q)? },
                _ => {
                    return Err(ApiError::bad_request(
                        "bad_order",
                        "a market order needs exactly one of quantity and quote_amount",
                    ));
                }
            }
        }
        _ => return Err(ApiError::bad_request("bad_type", "type must be limit or market")),
    };
    let client_order_id = match r.client_order_id.as_deref() {
        Some(c) => Some(ClientOrderId::new(c).map_err(|e| {
            ApiError::bad_request("bad_client_order_id", format!("client_order_id {e}"))
        })?),
        None => None,
    };
    let stp = match r.stp.as_deref() {
        None | Some("expire_taker") => StpMode::ExpireTaker,
        Some("expire_maker") => StpMode::ExpireMaker,
        Some("expire_both") => StpMode::ExpireBoth,
        Some("none") => StpMode::None,
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_stp",
                "stp must be expire_taker, expire_maker, expire_both or none",
            ));
        }
    };
    Ok(PlaceOrder { user, market: market.id, side, order_type, client_order_id, stp })
}

#[utoipa::path(post, path = "/orders", tag = "trading", security(("api_key" = []), ("session" = [])), request_body = PlaceRequest,
    responses(
        (status = 201, description = "The order was accepted (it may already be filled or expired)", body = PlaceResponse),
        (status = 400, description = "`bad_json`, `bad_side`, `bad_type`, `missing_price`, `bad_amount`, `too_precise`, engine rejections such as `insufficient_funds`, `price_off_tick`, ...; signature errors: `missing_signature`, `missing_timestamp`, `bad_recv_window`, `timestamp_ahead`, `timestamp_outside_recv_window`", body = ErrorBody),
        (status = 404, description = "`unknown_market`", body = ErrorBody),
        (status = 409, description = "`duplicate_client_order_id`, `market_halted`, `too_many_open_orders`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`, `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable` (database or engine), `busy` (retry shortly)", body = ErrorBody)))]
pub async fn place(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    ApiJson(r): ApiJson<PlaceRequest>,
) -> ApiResult<Response> {
    let body = place_order(&state, p.user, &r).await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// What the engine did with a `Place`.
#[derive(Debug)]
pub enum Placed {
    /// The order as it stands after its command (it may already be filled or expired) and
    /// its immediate trades.
    Accepted {
        row: Box<OrderRow>,
        fills: Vec<TradeRow>,
    },
    Rejected(Reject),
}

/// Submits `order` and waits for the engine's answer. Every API's order entry (`/api/v1`, the
/// web forms, `/api/v3`) goes through here.
pub async fn submit_place(state: &Shared, order: PlaceOrder) -> ApiResult<Placed> {
    let user = order.user;
    let started = std::time::Instant::now();
    let outcome = state.engine.execute(Command::Place(order)).await?;
    state.metrics.command("place", started);
    state.note_user_seq(user, outcome.seq);
    let time_ms = orders::ms(outcome.time_ns);
    let mut row = None;
    let mut fills = Vec::new();
    for event in &outcome.events {
        if let Event::OrderRejected { reason, .. } = event {
            return Ok(Placed::Rejected(*reason));
        }
        if let Some(r) = orders::accepted(event, outcome.seq, time_ms) {
            row = Some(r);
        }
        if let Some(r) = row.as_mut() {
            orders::apply(r, event, time_ms);
        }
        fills.extend(orders::trade_row(event, outcome.seq, time_ms));
    }
    let row = row.ok_or_else(|| {
        ApiError::internal("place", "the engine neither accepted nor rejected the order")
    })?;
    Ok(Placed::Accepted { row: Box::new(row), fills })
}

/// Places an order for `user` and waits for the engine's answer: the order as placed and its
/// immediate fills, or the rejection as an error. The REST and web order forms.
pub async fn place_order(
    state: &Shared,
    user: UserId,
    r: &PlaceRequest,
) -> ApiResult<PlaceResponse> {
    let market = super::public::market(state, &r.market)?;
    let order = parse_place(r, &market, user)?;
    let (row, fills) = match submit_place(state, order).await? {
        Placed::Accepted { row, fills } => (row, fills),
        Placed::Rejected(reason) => return Err(reject(reason)),
    };
    let mirror = state.mirror.read().map_err(mirror_err)?;
    let fills: Vec<FillView> =
        fills.iter().filter_map(|t| FillView::new(t, user, &mirror)).collect();
    Ok(PlaceResponse { order: OrderView::new(&row, &mirror), fills })
}

/// What a cancel ended: the order, its market, what it filled and what was canceled.
#[derive(Clone, Copy, Debug)]
pub struct Ended {
    pub order: OrderId,
    pub market: MarketId,
    pub filled: u128,
    pub remaining: u128,
}

/// Submits a cancel of one open order of `user`: what it ended, or the engine's refusal.
pub async fn submit_cancel(
    state: &Shared,
    user: UserId,
    market: Option<MarketId>,
    order: OrderRef,
) -> ApiResult<Result<Ended, Reject>> {
    let started = std::time::Instant::now();
    let outcome = state.engine.execute(Command::Cancel { user, market, order }).await?;
    state.metrics.command("cancel", started);
    state.note_user_seq(user, outcome.seq);
    for event in &outcome.events {
        match event {
            Event::Rejected { reason, .. } => return Ok(Err(*reason)),
            Event::OrderEnded { order, market, filled, remaining, .. } => {
                let ended = Ended {
                    order: *order,
                    market: *market,
                    filled: *filled,
                    remaining: *remaining,
                };
                return Ok(Ok(ended));
            }
            _ => {}
        }
    }
    Ok(Err(Reject::UnknownOrder))
}

/// Cancels one open order of `user`. The REST and web cancels.
pub async fn cancel_ref(
    state: &Shared,
    user: UserId,
    market: Option<MarketId>,
    order: OrderRef,
) -> ApiResult<Json<CancelResponse>> {
    let ended = submit_cancel(state, user, market, order).await?.map_err(reject)?;
    let mirror = state.mirror.read().map_err(mirror_err)?;
    let (b, market) = mirror
        .markets
        .get(&ended.market)
        .map(|m| (m.base.scale, m.symbol.clone()))
        .unwrap_or((0, String::new()));
    Ok(Json(CancelResponse {
        order_id: ended.order.0,
        market,
        status: "canceled",
        filled_quantity: crate::views::units(ended.filled, b),
        canceled_quantity: crate::views::units(ended.remaining, b),
    }))
}

#[utoipa::path(delete, path = "/orders/{id}", tag = "trading", security(("api_key" = []), ("session" = [])),
    params(("id" = u64, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order is canceled", body = CancelResponse),
        (status = 400, description = "`bad_path`; signature errors: `missing_signature`, `missing_timestamp`, `bad_recv_window`, `timestamp_ahead`, `timestamp_outside_recv_window`", body = ErrorBody),
        (status = 404, description = "`unknown_order` (also for orders that are no longer open)", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`, `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable` (database or engine), `busy` (retry shortly)", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<CancelResponse>> {
    cancel_ref(&state, p.user, None, OrderRef::Id(OrderId(id))).await
}

/// Unknown parameters are ignored: signed requests carry `timestamp`, `recvWindow`, `signature`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientIdQuery {
    /// Market symbol (client order ids are unique per market).
    market: String,
}

#[utoipa::path(delete, path = "/orders/by-client-id/{client_order_id}", tag = "trading", security(("api_key" = []), ("session" = [])),
    params(("client_order_id" = String, Path, description = "The order's `client_order_id`"), ClientIdQuery),
    responses(
        (status = 200, description = "The order is canceled", body = CancelResponse),
        (status = 400, description = "`bad_query`, `bad_client_order_id`; signature errors: `missing_signature`, `missing_timestamp`, `bad_recv_window`, `timestamp_ahead`, `timestamp_outside_recv_window`", body = ErrorBody),
        (status = 404, description = "`unknown_order`, `unknown_market`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`, `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable` (database or engine), `busy` (retry shortly)", body = ErrorBody)))]
pub async fn cancel_by_client_id(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    ApiPath(client_order_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ClientIdQuery>,
) -> ApiResult<Json<CancelResponse>> {
    let market = super::public::market(&state, &q.market)?;
    let cid = ClientOrderId::new(&client_order_id).map_err(|e| {
        ApiError::bad_request("bad_client_order_id", format!("client_order_id {e}"))
    })?;
    cancel_ref(&state, p.user, Some(market.id), OrderRef::Client(cid)).await
}

/// Unknown parameters are ignored: signed requests carry `timestamp`, `recvWindow`, `signature`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MarketQuery {
    /// Only this market's orders (default: every market).
    market: Option<String>,
}

#[utoipa::path(delete, path = "/orders", tag = "trading", security(("api_key" = []), ("session" = [])), params(MarketQuery),
    responses(
        (status = 200, description = "The caller's open orders are canceled", body = CancelAllResponse),
        (status = 400, description = "`bad_query`; signature errors: `missing_signature`, `missing_timestamp`, `bad_recv_window`, `timestamp_ahead`, `timestamp_outside_recv_window`", body = ErrorBody),
        (status = 404, description = "`unknown_market`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`, `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable` (database or engine), `busy` (retry shortly)", body = ErrorBody)))]
pub async fn cancel_all(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<MarketQuery>,
) -> ApiResult<Json<CancelAllResponse>> {
    let market = match q.market.as_deref() {
        Some(m) => Some(super::public::market(&state, m)?.id),
        None => None,
    };
    let canceled = cancel_all_orders(&state, p.user, market).await?;
    Ok(Json(CancelAllResponse { canceled }))
}

/// Cancels every open order of `user` (in one market, or all); returns their ids. The REST and
/// web cancel-alls.
pub async fn cancel_all_orders(
    state: &Shared,
    user: UserId,
    market: Option<MarketId>,
) -> ApiResult<Vec<u64>> {
    let started = std::time::Instant::now();
    let outcome = state.engine.execute(Command::CancelAll { user, market }).await?;
    state.metrics.command("cancel_all", started);
    state.note_user_seq(user, outcome.seq);
    if let Some(Event::Rejected { reason, .. }) =
        outcome.events.iter().find(|e| matches!(e, Event::Rejected { .. }))
    {
        return Err(reject(*reason));
    }
    Ok(outcome
        .events
        .iter()
        .filter_map(|e| match e {
            Event::OrderEnded { order, .. } => Some(order.0),
            _ => None,
        })
        .collect())
}

#[utoipa::path(get, path = "/orders/{id}", tag = "trading", security(("api_key" = []), ("session" = [])),
    params(("id" = u64, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 400, description = "`bad_path`; signature errors: `missing_signature`, `missing_timestamp`, `bad_recv_window`, `timestamp_ahead`, `timestamp_outside_recv_window`", body = ErrorBody),
        (status = 404, description = "`unknown_order`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`, `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable` (database or engine), `busy` (retry shortly)", body = ErrorBody)))]
pub async fn get_order(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<Json<OrderView>> {
    state.wait_projected(p.user).await;
    let row = state
        .store
        .order(p.user, OrderId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_order", "no such order"))?;
    let mirror = state.mirror.read().map_err(mirror_err)?;
    Ok(Json(OrderView::new(&row, &mirror)))
}

/// Unknown parameters are ignored: signed requests carry `timestamp`, `recvWindow`, `signature`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// Only this market's orders.
    market: Option<String>,
    /// `open` for open orders only.
    status: Option<String>,
    /// The `next` cursor of the previous page.
    before: Option<u64>,
    /// 1 to the list maximum (default 100).
    limit: Option<u32>,
    /// The one order with this client order id (other filters but `market` are ignored).
    client_order_id: Option<String>,
}

/// Orders, newest first; `next` is the cursor for the following page (absent at the end).
#[utoipa::path(get, path = "/orders", tag = "trading", security(("api_key" = []), ("session" = [])), params(OrdersQuery),
    responses(
        (status = 200, description = "A page of orders", body = OrdersPage),
        (status = 400, description = "`bad_query`, `bad_status`; signature errors: `missing_signature`, `missing_timestamp`, `bad_recv_window`, `timestamp_ahead`, `timestamp_outside_recv_window`", body = ErrorBody),
        (status = 404, description = "`unknown_market`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`, `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable` (database or engine), `busy` (retry shortly)", body = ErrorBody)))]
pub async fn list_orders(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<OrdersQuery>,
) -> ApiResult<Json<OrdersPage>> {
    state.wait_projected(p.user).await;
    let market = match q.market.as_deref() {
        Some(m) => Some(super::public::market(&state, m)?.id),
        None => None,
    };
    if let Some(cid) = q.client_order_id.as_deref() {
        let row = state.store.order_by_client_id(p.user, market, cid).await?;
        let mirror = state.mirror.read().map_err(mirror_err)?;
        let list: Vec<OrderView> = row.iter().map(|r| OrderView::new(r, &mirror)).collect();
        return Ok(Json(OrdersPage { orders: list, next: None }));
    }
    let open_only = open_only(q.status.as_deref())?;
    let limit = q.limit.unwrap_or(100).clamp(1, LIST_LIMIT_MAX);
    let rows = state
        .store
        .orders(p.user, &OrderFilter { market, open_only, before: q.before.map(OrderId), limit })
        .await?;
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.id.0)).flatten();
    let mirror = state.mirror.read().map_err(mirror_err)?;
    let list: Vec<OrderView> = rows.iter().map(|r| OrderView::new(r, &mirror)).collect();
    Ok(Json(OrdersPage { orders: list, next }))
}

/// An orders `status` filter: `open` for open orders only, `all` (or none) for every order.
/// The REST list and the orders page.
pub fn open_only(status: Option<&str>) -> ApiResult<bool> {
    match status {
        None | Some("all") => Ok(false),
        Some("open") => Ok(true),
        Some(_) => Err(ApiError::bad_request("bad_status", "status must be open or all")),
    }
}

/// The fills page cursor, `seq:market_id:trade_id` (the last row of the previous page).
pub fn fills_cursor((seq, market, trade): (u64, MarketId, TradeId)) -> String {
    format!("{seq}:{}:{}", market.0, trade.0)
}

/// Reads a [`fills_cursor`]. The REST list and the trades page.
pub fn parse_fills_cursor(c: &str) -> ApiResult<(u64, MarketId, TradeId)> {
    let bad =
        || ApiError::bad_request("bad_cursor", "before must be a cursor from a previous page");
    let mut parts = c.split(':').map(str::parse::<u64>);
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Ok(seq)), Some(Ok(m)), Some(Ok(t)), None) => {
            Ok((seq, MarketId(u32::try_from(m).map_err(|_| bad())?), TradeId(t)))
        }
        _ => Err(bad()),
    }
}

/// Unknown parameters are ignored: signed requests carry `timestamp`, `recvWindow`, `signature`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FillsQuery {
    /// Only this market's fills.
    market: Option<String>,
    /// Only this order's fills.
    order_id: Option<u64>,
    /// The `next` cursor of the previous page: `seq:market_id:trade_id`.
    before: Option<String>,
    /// 1 to the list maximum (default 100).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/fills", tag = "trading", security(("api_key" = []), ("session" = [])), params(FillsQuery),
    responses(
        (status = 200, description = "A page of the caller's fills", body = FillsPage),
        (status = 400, description = "`bad_query`, `bad_cursor`; signature errors: `missing_signature`, `missing_timestamp`, `bad_recv_window`, `timestamp_ahead`, `timestamp_outside_recv_window`", body = ErrorBody),
        (status = 404, description = "`unknown_market`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`, `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable` (database or engine), `busy` (retry shortly)", body = ErrorBody)))]
pub async fn fills(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<FillsQuery>,
) -> ApiResult<Json<FillsPage>> {
    state.wait_projected(p.user).await;
    let market = match q.market.as_deref() {
        Some(m) => Some(super::public::market(&state, m)?.id),
        None => None,
    };
    let before = q.before.as_deref().map(parse_fills_cursor).transpose()?;
    let limit = q.limit.unwrap_or(100).clamp(1, LIST_LIMIT_MAX);
    let rows = state
        .store
        .fills(p.user, &FillFilter { market, order: q.order_id.map(OrderId), before, limit })
        .await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|t| fills_cursor((t.seq, t.market, t.id))))
        .flatten();
    let mirror = state.mirror.read().map_err(mirror_err)?;
    let list: Vec<FillView> =
        rows.iter().filter_map(|t| FillView::new(t, p.user, &mirror)).collect();
    Ok(Json(FillsPage { fills: list, next }))
}

/// Unknown parameters are ignored: signed requests carry `timestamp`, `recvWindow`, `signature`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// Only this asset's entries.
    asset: Option<String>,
    /// The `next` cursor of the previous page.
    before: Option<i64>,
    /// 1 to the list maximum (default 100).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/ledger", tag = "trading", security(("api_key" = []), ("session" = [])), params(LedgerQuery),
    responses(
        (status = 200, description = "A page of the caller's balance changes", body = LedgerPage),
        (status = 400, description = "`bad_query`; signature errors: `missing_signature`, `missing_timestamp`, `bad_recv_window`, `timestamp_ahead`, `timestamp_outside_recv_window`", body = ErrorBody),
        (status = 404, description = "`unknown_asset`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`, `session_expired`, `invalid_api_key`, `invalid_signature`", body = ErrorBody),
        (status = 403, description = "`missing_scope`, `ip_not_allowed`, `csrf`", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "`unavailable` (database or engine), `busy` (retry shortly)", body = ErrorBody)))]
pub async fn ledger(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<LedgerQuery>,
) -> ApiResult<Json<LedgerPage>> {
    state.wait_projected(p.user).await;
    let asset =
        match q.asset.as_deref() {
            Some(a) => {
                let mirror = state.mirror.read().map_err(mirror_err)?;
                Some(mirror.asset_by_symbol(a).map(|a| a.id).ok_or_else(|| {
                    ApiError::not_found("unknown_asset", format!("no asset {a:?}"))
                })?)
            }
            None => None,
        };
    let limit = q.limit.unwrap_or(100).clamp(1, LIST_LIMIT_MAX);
    let rows = state.store.ledger(p.user, &LedgerFilter { asset, before: q.before, limit }).await?;
    let next = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.id)).flatten();
    let mirror = state.mirror.read().map_err(mirror_err)?;
    let list: Vec<LedgerView> = rows.iter().map(|r| LedgerView::new(r, &mirror)).collect();
    Ok(Json(LedgerPage { entries: list, next }))
}
