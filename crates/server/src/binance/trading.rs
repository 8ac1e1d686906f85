//! Binance's signed account and trading endpoints: account, order (new, test, query, cancel),
//! openOrders (query, cancel all), allOrders and myTrades. Orders go to the engine through the
//! same `Place`/`Cancel`/`CancelAll` submissions `/api/v1` uses (`api::trading`); reads come
//! from the read models after the read-your-writes wait. The engine takes every trade fee in
//! the quote asset, so a fill's `commissionAsset` is the market's quote asset.

use super::error::{BinanceError, BinanceResult, reject};
use super::params::Params;
use super::{fixed, market, symbol_of};
use crate::api::trading::{Placed, submit_cancel, submit_place};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::mirror::MarketInfo;
use crate::state::Shared;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::{Extension, Json};
use bourse_core::decimal::{DecimalError, parse_units};
use bourse_core::{
    ClientOrderId, EndReason, OrderId, OrderRef, OrderType, PlaceOrder, Side, StpMode, TimeInForce,
    UserId,
};
use bourse_store::{OrderFilter, OrderKind, OrderRow, OrderStatus, RangeFilter, TradeRow};
use serde_json::{Map, Value, json};

type Answer = BinanceResult<Json<Value>>;

fn params(q: &Option<String>, body: &[u8]) -> Params {
    Params::parse(q.as_deref(), body)
}

fn store_err(e: bourse_store::StoreError) -> BinanceError {
    BinanceError::from(ApiError::from(e))
}

// ---- shapes ---------------------------------------------------------------------------------

pub(super) fn status_of(o: &OrderRow) -> &'static str {
    match o.status {
        OrderStatus::Open => "NEW",
        OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
        OrderStatus::Filled => "FILLED",
        OrderStatus::Canceled => "CANCELED",
        OrderStatus::Expired if o.end_reason == Some(EndReason::SelfTrade) => "EXPIRED_IN_MATCH",
        OrderStatus::Expired => "EXPIRED",
    }
}

pub(super) fn type_of(o: &OrderRow) -> &'static str {
    match (o.kind, o.time_in_force) {
        (OrderKind::Limit, Some(TimeInForce::PostOnly)) => "LIMIT_MAKER",
        (OrderKind::Limit, _) => "LIMIT",
        (OrderKind::Market | OrderKind::MarketQuote, _) => "MARKET",
    }
}

pub(super) fn time_in_force_of(o: &OrderRow) -> &'static str {
    match o.time_in_force {
        Some(TimeInForce::Ioc) => "IOC",
        Some(TimeInForce::Fok) => "FOK",
        _ => "GTC",
    }
}

pub(super) fn stp_name(stp: StpMode) -> &'static str {
    match stp {
        StpMode::None => "NONE",
        StpMode::ExpireTaker => "EXPIRE_TAKER",
        StpMode::ExpireMaker => "EXPIRE_MAKER",
        StpMode::ExpireBoth => "EXPIRE_BOTH",
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

/// The fields every order answer starts with (Binance's ACK).
fn ack(o: &OrderRow, m: &MarketInfo) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("symbol".into(), json!(symbol_of(m)));
    out.insert("orderId".into(), json!(o.id.0));
    out.insert("orderListId".into(), json!(-1));
    out.insert("clientOrderId".into(), json!(o.client_order_id.clone().unwrap_or_default()));
    out.insert("transactTime".into(), json!(o.updated_ms));
    out
}

/// The order's state (Binance's RESULT fields, shared by queries and cancels).
fn state_fields(out: &mut Map<String, Value>, o: &OrderRow, m: &MarketInfo) {
    let (b, q) = (m.base.scale, m.quote.scale);
    let orig = o.quantity.unwrap_or(o.filled);
    for (k, v) in [
        ("price", json!(fixed(o.price.unwrap_or(0), q))),
        ("origQty", json!(fixed(orig, b))),
        ("executedQty", json!(fixed(o.filled, b))),
        ("origQuoteOrderQty", json!(fixed(o.quote_amount.unwrap_or(0), q))),
        ("cummulativeQuoteQty", json!(fixed(o.filled_quote, q))),
        ("status", json!(status_of(o))),
        ("timeInForce", json!(time_in_force_of(o))),
        ("type", json!(type_of(o))),
        ("side", json!(side_name(o.side))),
        ("workingTime", json!(o.created_ms)),
        ("selfTradePreventionMode", json!(stp_name(o.stp))),
    ] {
        out.insert(k.into(), v);
    }
}

/// An order as `GET /order`, `openOrders` and `allOrders` answer it.
fn order_json(o: &OrderRow, m: &MarketInfo) -> Value {
    let mut out = ack(o, m);
    out.remove("transactTime");
    state_fields(&mut out, o, m);
    for (k, v) in [
        ("stopPrice", json!(fixed(0, m.quote.scale))),
        ("icebergQty", json!(fixed(0, m.base.scale))),
        ("time", json!(o.created_ms)),
        ("updateTime", json!(o.updated_ms)),
        ("isWorking", json!(true)),
    ] {
        out.insert(k.into(), v);
    }
    Value::Object(out)
}

/// What `user` paid on a trade, and whether they were its maker.
fn own_side(t: &TradeRow, user: UserId) -> (OrderId, u128, bool) {
    if t.taker_user == user {
        (t.taker_order, t.taker_fee, false)
    } else {
        (t.maker_order, t.maker_fee, true)
    }
}

// ---- account ---------------------------------------------------------------------------------

pub async fn account(State(state): State<Shared>, Extension(p): Extension<Principal>) -> Answer {
    state.wait_projected(p.user).await;
    let rows = state.store.balances(p.user).await.map_err(store_err)?;
    let mirror = state.mirror.read().map_err(|_| BinanceError::bad(-1000, "busy"))?;
    let balances: Vec<Value> = mirror
        .assets
        .values()
        .map(|a| {
            let row = rows.iter().find(|r| r.asset == a.id);
            let free = row.map_or(0, |r| u128::try_from(r.available.max(0)).unwrap_or(0));
            let locked = row.map_or(0, |r| {
                u128::try_from(r.locked.max(0)).unwrap_or(0)
                    + u128::try_from(r.held.max(0)).unwrap_or(0)
            });
            json!({ "asset": a.symbol, "free": fixed(free, a.scale), "locked": fixed(locked, a.scale) })
        })
        .collect();
    // One rate for the account: the highest of the markets' (fees are set per market).
    let (maker, taker) = mirror
        .markets
        .values()
        .fold((0u32, 0u32), |(m, t), x| (m.max(x.spec.maker_fee_ppm), t.max(x.spec.taker_fee_ppm)));
    drop(mirror);
    let rate = |ppm: u32| fixed(u128::from(ppm), 6);
    Ok(Json(json!({
        "makerCommission": maker / 100,
        "takerCommission": taker / 100,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {"maker": rate(maker), "taker": rate(taker), "buyer": rate(0), "seller": rate(0)},
        "canTrade": true,
        "canWithdraw": true,
        "canDeposit": true,
        "brokered": false,
        "requireSelfTradePrevention": false,
        "preventSor": false,
        "updateTime": crate::now_ms(),
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": p.user.0,
    })))
}

// ---- placing orders ----------------------------------------------------------------------------

/// How much of the answer to a new order the client asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RespType {
    Ack,
    Result,
    Full,
}

/// An amount parameter in `scale` decimals: malformed is `-1100`, finer than the asset's
/// precision is the filter's failure (as on Binance, where the step size refuses it).
fn amount(p: &Params, name: &str, scale: u8, filter: &str) -> BinanceResult<Option<u128>> {
    let Some(text) = p.get(name) else { return Ok(None) };
    match parse_units(text, scale) {
        Ok(v) => Ok(Some(v)),
        Err(DecimalError::TooPrecise { .. }) => {
            Err(BinanceError::bad(-1013, format!("Filter failure: {filter}")))
        }
        Err(_) => Err(BinanceError::illegal(name, "^([0-9]{1,20})(\\.[0-9]{1,20})?$")),
    }
}

fn not_required(name: &str) -> BinanceError {
    BinanceError::bad(-1106, format!("Parameter '{name}' sent when not required."))
}

/// A fresh client order id, like Binance gives an order sent without one.
fn generated_client_id() -> BinanceResult<ClientOrderId> {
    let mut bytes = [0u8; 11];
    getrandom::fill(&mut bytes).map_err(|_| BinanceError::bad(-1000, "no randomness"))?;
    ClientOrderId::new(&format!("bourse-{}", hex::encode(bytes)))
        .map_err(|_| BinanceError::bad(-1000, "client order id"))
}

/// A new order's parameters as the engine's `Place` command.
fn parse_order(p: &Params, m: &MarketInfo, user: UserId) -> BinanceResult<(PlaceOrder, RespType)> {
    let (b, q) = (m.base.scale, m.quote.scale);
    let side = match p.required("side")? {
        "BUY" => Side::Buy,
        "SELL" => Side::Sell,
        _ => return Err(BinanceError::bad(-1117, "Invalid side.")),
    };
    let kind = p.required("type")?;
    for unsupported in ["stopPrice", "trailingDelta", "icebergQty"] {
        if p.get(unsupported).is_some_and(|v| v.trim_matches(['0', '.']).is_empty()) {
            continue;
        }
        if p.get(unsupported).is_some() {
            return Err(not_required(unsupported));
        }
    }
    let quantity = amount(p, "quantity", b, "LOT_SIZE")?;
    let price = amount(p, "price", q, "PRICE_FILTER")?;
    let time_in_force = p.get("timeInForce");
    let order_type = match kind {
        "LIMIT" | "LIMIT_MAKER" => {
            let time_in_force = match (kind, time_in_force) {
                ("LIMIT_MAKER", None) => TimeInForce::PostOnly,
                ("LIMIT_MAKER", Some(_)) => return Err(not_required("timeInForce")),
                (_, None) => return Err(BinanceError::mandatory("timeInForce")),
                (_, Some("GTC")) => TimeInForce::Gtc,
                (_, Some("IOC")) => TimeInForce::Ioc,
                (_, Some("FOK")) => TimeInForce::Fok,
                (_, Some(_)) => return Err(BinanceError::bad(-1115, "Invalid timeInForce.")),
            };
            if p.get("quoteOrderQty").is_some() {
                return Err(not_required("quoteOrderQty"));
            }
            OrderType::Limit {
                price: price.ok_or_else(|| BinanceError::mandatory("price"))?,
                quantity: quantity.ok_or_else(|| BinanceError::mandatory("quantity"))?,
                time_in_force,
            }
        }
        "MARKET" => {
            if price.is_some() {
                return Err(not_required("price"));
            }
            if time_in_force.is_some_and(|t| t != "GTC") {
                return Err(not_required("timeInForce"));
            }
            let quote = amount(p, "quoteOrderQty", q, "NOTIONAL")?;
            match (quantity, quote) {
                (Some(quantity), None) => OrderType::Market { quantity },
                (None, Some(amount)) => OrderType::MarketQuote { amount },
                (None, None) => return Err(BinanceError::mandatory("quantity")),
                (Some(_), Some(_)) => return Err(not_required("quoteOrderQty")),
            }
        }
        _ => return Err(BinanceError::bad(-1116, "Invalid orderType.")),
    };
    let client_order_id = match p.get("newClientOrderId") {
        Some(c) => ClientOrderId::new(c).map_err(|_| {
            BinanceError::illegal("newClientOrderId", "^[\\.A-Z\\:/a-z0-9_-]{1,36}$")
        })?,
        None => generated_client_id()?,
    };
    let stp = match p.get("selfTradePreventionMode") {
        None | Some("EXPIRE_TAKER") => StpMode::ExpireTaker,
        Some("EXPIRE_MAKER") => StpMode::ExpireMaker,
        Some("EXPIRE_BOTH") => StpMode::ExpireBoth,
        Some("NONE") => StpMode::None,
        Some(_) => {
            return Err(BinanceError::illegal(
                "selfTradePreventionMode",
                "NONE, EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH",
            ));
        }
    };
    let resp = match (p.get("newOrderRespType"), kind) {
        (Some("ACK"), _) => RespType::Ack,
        (Some("RESULT"), _) => RespType::Result,
        (Some("FULL"), _) => RespType::Full,
        (Some(_), _) => return Err(BinanceError::illegal("newOrderRespType", "ACK, RESULT, FULL")),
        (None, "LIMIT" | "MARKET") => RespType::Full,
        (None, _) => RespType::Ack,
    };
    let order = PlaceOrder {
        user,
        market: m.id,
        side,
        order_type,
        client_order_id: Some(client_order_id),
        stp,
    };
    Ok((order, resp))
}

/// The grid and limits the engine checks, checked here for `order/test` (which places nothing).
fn check_filters(order: &PlaceOrder, m: &MarketInfo) -> BinanceResult<()> {
    let s = &m.spec;
    let lots = |qty: u128| {
        if qty == 0 || !qty.is_multiple_of(s.lot) || qty < s.min_qty || qty > s.max_qty {
            return Err(BinanceError::bad(-1013, "Filter failure: LOT_SIZE"));
        }
        Ok(())
    };
    match order.order_type {
        OrderType::Limit { price, quantity, .. } => {
            if price == 0 || !price.is_multiple_of(s.tick) {
                return Err(BinanceError::bad(-1013, "Filter failure: PRICE_FILTER"));
            }
            lots(quantity)?;
            let unit = bourse_core::decimal::pow10(m.base.scale).unwrap_or(1);
            let notional = price.saturating_mul(quantity) / unit;
            if notional < s.min_notional {
                return Err(BinanceError::bad(-1013, "Filter failure: NOTIONAL"));
            }
        }
        OrderType::Market { quantity } => lots(quantity)?,
        OrderType::MarketQuote { amount: 0 } => {
            return Err(BinanceError::bad(-1013, "Filter failure: NOTIONAL"));
        }
        OrderType::MarketQuote { .. } => {}
    }
    Ok(())
}

/// A new order's market, engine command and answer type, from the request's parameters.
fn new_order(
    state: &Shared,
    user: UserId,
    q: &Option<String>,
    body: &[u8],
) -> BinanceResult<(MarketInfo, PlaceOrder, RespType)> {
    let params = params(q, body);
    let m = market(state, params.required("symbol")?)?;
    let (order, resp) = parse_order(&params, &m, user)?;
    Ok((m, order, resp))
}

pub async fn place(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Answer {
    let (m, order, resp) = new_order(&state, p.user, &q, &body)?;
    let (row, fills) = match submit_place(&state, order).await? {
        Placed::Accepted { row, fills } => (row, fills),
        Placed::Rejected(reason) => return Err(reject(reason)),
    };
    let mut out = ack(&row, &m);
    if resp != RespType::Ack {
        state_fields(&mut out, &row, &m);
    }
    if resp == RespType::Full {
        let fills: Vec<Value> = fills
            .iter()
            .map(|t| {
                let (_, fee, _) = own_side(t, p.user);
                json!({
                    "price": fixed(t.price, m.quote.scale),
                    "qty": fixed(t.quantity, m.base.scale),
                    "commission": fixed(fee, m.quote.scale),
                    "commissionAsset": m.quote.symbol,
                    "tradeId": t.id.0,
                })
            })
            .collect();
        out.insert("fills".into(), Value::Array(fills));
    }
    Ok(Json(Value::Object(out)))
}

/// `POST /order/test`: checks a new order as `POST /order` would, and places nothing.
pub async fn test_order(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Answer {
    let (m, order, _) = new_order(&state, p.user, &q, &body)?;
    check_filters(&order, &m)?;
    if m.status != bourse_core::MarketStatus::Trading {
        return Err(reject(bourse_core::Reject::MarketHalted));
    }
    Ok(Json(json!({})))
}

// ---- queries and cancels -------------------------------------------------------------------------

/// The order `orderId` or `origClientOrderId` names.
fn order_ref(p: &Params) -> BinanceResult<OrderRef> {
    if let Some(id) = p.u64("orderId")? {
        return Ok(OrderRef::Id(OrderId(id)));
    }
    match p.get("origClientOrderId") {
        Some(c) => ClientOrderId::new(c).map(OrderRef::Client).map_err(|_| {
            BinanceError::illegal("origClientOrderId", "^[\\.A-Z\\:/a-z0-9_-]{1,36}$")
        }),
        None => Err(BinanceError::mandatory("orderId")),
    }
}

async fn find_order(
    state: &Shared,
    user: UserId,
    m: &MarketInfo,
    r: OrderRef,
) -> BinanceResult<Option<OrderRow>> {
    let row = match r {
        OrderRef::Id(id) => state.store.order(user, id).await,
        OrderRef::Client(c) => state.store.order_by_client_id(user, Some(m.id), c.as_str()).await,
    }
    .map_err(store_err)?;
    Ok(row.filter(|o| o.market == m.id))
}

pub async fn get_order(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Answer {
    let params = params(&q, b"");
    let m = market(&state, params.required("symbol")?)?;
    let r = order_ref(&params)?;
    state.wait_projected(p.user).await;
    let row = find_order(&state, p.user, &m, r).await?.ok_or_else(BinanceError::no_such_order)?;
    Ok(Json(order_json(&row, &m)))
}

/// A canceled order as Binance answers a cancel: `clientOrderId` is the cancel's own id,
/// `origClientOrderId` the order's.
fn canceled_json(o: &OrderRow, m: &MarketInfo, cancel_id: &str) -> Value {
    let mut out = ack(o, m);
    out.insert("origClientOrderId".into(), json!(o.client_order_id.clone().unwrap_or_default()));
    out.insert("clientOrderId".into(), json!(cancel_id));
    state_fields(&mut out, o, m);
    out.remove("workingTime");
    out.remove("origQuoteOrderQty");
    Value::Object(out)
}

fn cancel_id(p: &Params) -> BinanceResult<String> {
    match p.get("newClientOrderId") {
        Some(c) => Ok(ClientOrderId::new(c)
            .map_err(|_| BinanceError::illegal("newClientOrderId", "^[\\.A-Z\\:/a-z0-9_-]{1,36}$"))?
            .as_str()
            .to_string()),
        None => Ok(generated_client_id()?.as_str().to_string()),
    }
}

pub async fn cancel(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Answer {
    let params = params(&q, &body);
    let m = market(&state, params.required("symbol")?)?;
    let r = order_ref(&params)?;
    let cancel = cancel_id(&params)?;
    let id = match submit_cancel(&state, p.user, Some(m.id), r).await? {
        Ok(ended) => ended.order,
        Err(reason) => return Err(reject(reason)),
    };
    state.wait_projected(p.user).await;
    let row = state.store.order(p.user, id).await.map_err(store_err)?;
    let row = row.ok_or_else(BinanceError::unknown_order_sent)?;
    Ok(Json(canceled_json(&row, &m, &cancel)))
}

/// `DELETE /openOrders`: every open order of the symbol; with none, Binance's `-2011`.
pub async fn cancel_open(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Answer {
    let params = params(&q, &body);
    let m = market(&state, params.required("symbol")?)?;
    let ids = crate::api::trading::cancel_all_orders(&state, p.user, Some(m.id)).await?;
    if ids.is_empty() {
        return Err(BinanceError::unknown_order_sent());
    }
    state.wait_projected(p.user).await;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = state.store.order(p.user, OrderId(id)).await.map_err(store_err)? {
            out.push(canceled_json(&row, &m, generated_client_id()?.as_str()));
        }
    }
    Ok(Json(Value::Array(out)))
}

pub async fn open_orders(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Answer {
    let params = params(&q, b"");
    let only = match params.get("symbol") {
        Some(s) => Some(market(&state, s)?),
        None => None,
    };
    state.wait_projected(p.user).await;
    let filter = OrderFilter {
        market: only.as_ref().map(|m| m.id),
        open_only: true,
        before: None,
        limit: bourse_store::LIST_LIMIT_MAX,
    };
    let mut rows = state.store.orders(p.user, &filter).await.map_err(store_err)?;
    rows.reverse();
    let mirror = state.mirror.read().map_err(|_| BinanceError::bad(-1000, "busy"))?;
    Ok(Json(Value::Array(
        rows.iter()
            .filter_map(|o| mirror.markets.get(&o.market).map(|m| order_json(o, m)))
            .collect(),
    )))
}

fn range(p: &Params, id_name: &str) -> BinanceResult<RangeFilter> {
    Ok(RangeFilter {
        from_id: p.u64(id_name)?,
        start_ms: p.time("startTime")?,
        end_ms: p.time("endTime")?,
        limit: p.limit(500, 1000)?,
    })
}

pub async fn all_orders(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Answer {
    let params = params(&q, b"");
    let m = market(&state, params.required("symbol")?)?;
    let range = range(&params, "orderId")?;
    state.wait_projected(p.user).await;
    let rows = state.store.orders_range(p.user, m.id, &range).await.map_err(store_err)?;
    Ok(Json(Value::Array(rows.iter().map(|o| order_json(o, &m)).collect())))
}

pub async fn my_trades(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Answer {
    let params = params(&q, b"");
    let m = market(&state, params.required("symbol")?)?;
    let order = params.u64("orderId")?.map(OrderId);
    let range = range(&params, "fromId")?;
    state.wait_projected(p.user).await;
    let rows = state.store.fills_range(p.user, m.id, order, &range).await.map_err(store_err)?;
    let (b, q) = (m.base.scale, m.quote.scale);
    Ok(Json(Value::Array(
        rows.iter()
            .map(|t| {
                let (order, fee, maker) = own_side(t, p.user);
                let taker_bought = t.taker_side == Side::Buy;
                json!({
                    "symbol": symbol_of(&m),
                    "id": t.id.0,
                    "orderId": order.0,
                    "orderListId": -1,
                    "price": fixed(t.price, q),
                    "qty": fixed(t.quantity, b),
                    "quoteQty": fixed(t.notional, q),
                    "commission": fixed(fee, q),
                    "commissionAsset": m.quote.symbol,
                    "time": t.time_ms,
                    "isBuyer": taker_bought != maker,
                    "isMaker": maker,
                    "isBestMatch": true,
                })
            })
            .collect(),
    )))
}
