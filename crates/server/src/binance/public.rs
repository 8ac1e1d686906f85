//! Binance's public market data: ping, time, exchangeInfo, depth, trades (recent, historical,
//! aggregated), klines, avgPrice and the tickers, read from the mirror (markets, books), the
//! tickers and the read models. Every trade is its own aggregate trade (the engine does not
//! aggregate), and the book's `lastUpdateId` is the engine's per-market update id, the one the
//! depth streams carry.

use super::error::{BinanceError, BinanceResult};
use super::params::Params;
use super::{fixed, market, markets, symbol_of};
use crate::mirror::MarketInfo;
use crate::state::Shared;
use axum::Json;
use axum::extract::{RawQuery, State};
use bourse_core::Side;
use bourse_store::{Interval, RangeFilter, TradeRow};
use serde_json::{Value, json};

type Answer = BinanceResult<Json<Value>>;

fn params(q: &Option<String>) -> Params {
    Params::parse(q.as_deref(), b"")
}

pub async fn ping() -> Json<Value> {
    Json(json!({}))
}

pub async fn time() -> Json<Value> {
    Json(json!({ "serverTime": crate::now_ms() }))
}

/// The most quantity or price a filter advertises: what a `u64` count of lots or ticks reaches.
fn ceiling(step: u128) -> u128 {
    step.saturating_mul(u128::from(u64::MAX))
}

fn symbol_info(m: &MarketInfo) -> Value {
    let (b, q) = (m.base.scale, m.quote.scale);
    let s = &m.spec;
    let status = match m.status {
        bourse_core::MarketStatus::Trading => "TRADING",
        bourse_core::MarketStatus::Halted => "HALT",
    };
    json!({
        "symbol": symbol_of(m),
        "status": status,
        "baseAsset": m.base.symbol,
        "baseAssetPrecision": b,
        "quoteAsset": m.quote.symbol,
        "quotePrecision": q,
        "quoteAssetPrecision": q,
        "baseCommissionPrecision": b,
        "quoteCommissionPrecision": q,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": false,
        "ocoAllowed": false,
        "otoAllowed": false,
        "quoteOrderQtyMarketAllowed": true,
        "allowTrailingStop": false,
        "cancelReplaceAllowed": false,
        "amendAllowed": false,
        "isSpotTradingAllowed": true,
        "isMarginTradingAllowed": false,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": fixed(s.tick, q),
             "maxPrice": fixed(ceiling(s.tick), q), "tickSize": fixed(s.tick, q)},
            {"filterType": "LOT_SIZE", "minQty": fixed(s.min_qty, b),
             "maxQty": fixed(s.max_qty, b), "stepSize": fixed(s.lot, b)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": fixed(s.min_qty, b),
             "maxQty": fixed(s.max_qty, b), "stepSize": fixed(s.lot, b)},
            {"filterType": "NOTIONAL", "minNotional": fixed(s.min_notional, q),
             "applyMinToMarket": false, "maxNotional": fixed(ceiling(s.tick), q),
             "applyMaxToMarket": false, "avgPriceMins": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_TAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    })
}

pub async fn exchange_info(State(state): State<Shared>, RawQuery(q): RawQuery) -> Answer {
    let p = params(&q);
    let list = markets(&state, &p)?;
    let limits = &state.config.limits;
    let per_minute = limits.api_requests_per_s.saturating_mul(60);
    Ok(Json(json!({
        "timezone": "UTC",
        "serverTime": crate::now_ms(),
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": per_minute},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 1, "limit": per_minute},
        ],
        "exchangeFilters": [],
        "symbols": list.iter().map(symbol_info).collect::<Vec<_>>(),
    })))
}

pub async fn depth(State(state): State<Shared>, RawQuery(q): RawQuery) -> Answer {
    let p = params(&q);
    let m = market(&state, p.required("symbol")?)?;
    let limit = usize::try_from(p.limit(100, 5000)?).unwrap_or(100);
    let mirror = state.mirror.read().map_err(|_| BinanceError::bad(-1000, "busy"))?;
    let book = mirror.books.get(&m.id).cloned().unwrap_or_default();
    drop(mirror);
    let (bids, asks) = book.levels(limit);
    let side = |levels: Vec<(u128, u128)>| {
        levels
            .into_iter()
            .map(|(p, q)| json!([fixed(p, m.quote.scale), fixed(q, m.base.scale)]))
            .collect::<Vec<_>>()
    };
    Ok(Json(json!({ "lastUpdateId": book.update_id, "bids": side(bids), "asks": side(asks) })))
}

/// A trade as `/trades` and `/historicalTrades` answer it.
fn trade_json(t: &TradeRow, m: &MarketInfo) -> Value {
    json!({
        "id": t.id.0,
        "price": fixed(t.price, m.quote.scale),
        "qty": fixed(t.quantity, m.base.scale),
        "quoteQty": fixed(t.notional, m.quote.scale),
        "time": t.time_ms,
        "isBuyerMaker": t.taker_side == Side::Sell,
        "isBestMatch": true,
    })
}

async fn trades_of(
    state: &Shared,
    p: &Params,
    range: RangeFilter,
) -> BinanceResult<(MarketInfo, Vec<TradeRow>)> {
    let m = market(state, p.required("symbol")?)?;
    let rows =
        state.store.trades_range(m.id, &range).await.map_err(crate::error::ApiError::from)?;
    Ok((m, rows))
}

pub async fn trades(State(state): State<Shared>, RawQuery(q): RawQuery) -> Answer {
    let p = params(&q);
    let range = RangeFilter { limit: p.limit(500, 1000)?, ..RangeFilter::default() };
    let (m, rows) = trades_of(&state, &p, range).await?;
    Ok(Json(Value::Array(rows.iter().map(|t| trade_json(t, &m)).collect())))
}

pub async fn historical_trades(State(state): State<Shared>, RawQuery(q): RawQuery) -> Answer {
    let p = params(&q);
    let range = RangeFilter {
        from_id: p.u64("fromId")?,
        limit: p.limit(500, 1000)?,
        ..RangeFilter::default()
    };
    let (m, rows) = trades_of(&state, &p, range).await?;
    Ok(Json(Value::Array(rows.iter().map(|t| trade_json(t, &m)).collect())))
}

pub async fn agg_trades(State(state): State<Shared>, RawQuery(q): RawQuery) -> Answer {
    let p = params(&q);
    let range = RangeFilter {
        from_id: p.u64("fromId")?,
        start_ms: p.time("startTime")?,
        end_ms: p.time("endTime")?,
        limit: p.limit(500, 1000)?,
    };
    let (m, rows) = trades_of(&state, &p, range).await?;
    Ok(Json(Value::Array(
        rows.iter()
            .map(|t| {
                json!({
                    "a": t.id.0,
                    "p": fixed(t.price, m.quote.scale),
                    "q": fixed(t.quantity, m.base.scale),
                    "f": t.id.0,
                    "l": t.id.0,
                    "T": t.time_ms,
                    "m": t.taker_side == Side::Sell,
                    "M": true,
                })
            })
            .collect(),
    )))
}

/// Binance's interval names the read models keep.
fn interval(name: &str) -> BinanceResult<Interval> {
    Interval::parse(name).ok_or_else(|| BinanceError::bad(-1120, "Invalid interval."))
}

pub async fn klines(State(state): State<Shared>, RawQuery(q): RawQuery) -> Answer {
    let p = params(&q);
    let m = market(&state, p.required("symbol")?)?;
    let iv = interval(p.required("interval")?)?;
    let limit = p.limit(500, 1000)?;
    let (start, end) = (p.time("startTime")?, p.time("endTime")?);
    // The store answers the newest `limit` candles of a window: from a start, the window ends
    // `limit` intervals later, so the answer is the first `limit` from there, as on Binance.
    let reach = start.map(|s| s.saturating_add(iv.millis().saturating_mul(i64::from(limit))));
    let to = match (end.map(|e| e.saturating_add(1)), reach) {
        (Some(e), Some(r)) => Some(e.min(r)),
        (e, r) => e.or(r),
    };
    let rows = state
        .store
        .candles(m.id, iv, start, to, limit)
        .await
        .map_err(crate::error::ApiError::from)?;
    let (b, q) = (m.base.scale, m.quote.scale);
    Ok(Json(Value::Array(
        rows.iter()
            .map(|c| {
                json!([
                    c.open_ms,
                    fixed(c.open, q),
                    fixed(c.high, q),
                    fixed(c.low, q),
                    fixed(c.close, q),
                    fixed(c.volume, b),
                    c.open_ms + iv.millis() - 1,
                    fixed(c.quote_volume, q),
                    c.trades,
                    "0",
                    "0",
                    "0",
                ])
            })
            .collect(),
    )))
}

/// Quote minor units per whole base unit of `quote_volume` over `volume`, rounded down.
pub(super) fn average(quote_volume: u128, volume: u128, base_scale: u8) -> Option<u128> {
    let unit = bourse_core::decimal::pow10(base_scale)?;
    quote_volume.checked_mul(unit)?.checked_div(volume)
}

pub async fn avg_price(State(state): State<Shared>, RawQuery(q): RawQuery) -> Answer {
    let p = params(&q);
    let m = market(&state, p.required("symbol")?)?;
    let now = crate::now_ms();
    let rows = state
        .store
        .candles(m.id, Interval::M1, Some(now - 5 * 60_000), None, 5)
        .await
        .map_err(crate::error::ApiError::from)?;
    let volume = rows.iter().map(|c| c.volume).fold(0, u128::saturating_add);
    let quote = rows.iter().map(|c| c.quote_volume).fold(0, u128::saturating_add);
    let last = state.tickers.lock().ok().and_then(|t| t.stats(m.id, now).last);
    let price = average(quote, volume, m.base.scale).or(last).unwrap_or(0);
    let close = rows.last().map_or(now, |c| c.open_ms + 60_000 - 1);
    Ok(Json(json!({ "mins": 5, "price": fixed(price, m.quote.scale), "closeTime": close })))
}

/// A price level: `(price, quantity)`.
type Level = Option<(u128, u128)>;

/// A market's best bid and ask.
fn best(state: &Shared, m: &MarketInfo) -> (Level, Level) {
    state
        .mirror
        .read()
        .ok()
        .and_then(|mirror| mirror.books.get(&m.id).map(|b| (b.best_bid(), b.best_ask())))
        .unwrap_or((None, None))
}

/// One symbol, or a list, the way Binance answers: an object for `symbol=`, an array otherwise.
fn one_or_many(p: &Params, items: Vec<Value>) -> Value {
    match (p.get("symbol"), items.len()) {
        (Some(_), 1) => items.into_iter().next().unwrap_or(Value::Null),
        _ => Value::Array(items),
    }
}

pub async fn ticker_24hr(State(state): State<Shared>, RawQuery(q): RawQuery) -> Answer {
    let p = params(&q);
    let list = markets(&state, &p)?;
    let mini = p.get("type") == Some("MINI");
    let now = crate::now_ms();
    let mut items = Vec::with_capacity(list.len());
    for m in &list {
        let s = state.tickers.lock().map(|t| t.stats(m.id, now)).unwrap_or_default();
        let (b, q) = (m.base.scale, m.quote.scale);
        let zero = fixed(0, q);
        let price = |v: Option<u128>| v.map_or_else(|| zero.clone(), |v| fixed(v, q));
        let open = s.open.or(s.last);
        let (change, percent) = match s.change(3) {
            Some((diff, percent)) => (bourse_core::decimal::format_signed_units(diff, q), percent),
            None => (zero.clone(), "0.000".into()),
        };
        let mut item = json!({
            "symbol": symbol_of(m),
            "openPrice": price(open),
            "highPrice": price(s.high.or(s.last)),
            "lowPrice": price(s.low.or(s.last)),
            "lastPrice": price(s.last),
            "volume": fixed(s.volume, b),
            "quoteVolume": fixed(s.quote_volume, q),
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": -1,
            "lastId": -1,
            "count": s.trades,
        });
        if !mini {
            let (bid, ask) = best(&state, m);
            let weighted = average(s.quote_volume, s.volume, b).or(s.last);
            if let Some(o) = item.as_object_mut() {
                for (k, v) in [
                    ("priceChange", json!(change)),
                    ("priceChangePercent", json!(percent)),
                    ("weightedAvgPrice", json!(price(weighted))),
                    ("prevClosePrice", json!(price(open))),
                    ("lastQty", json!(fixed(0, b))),
                    ("bidPrice", json!(price(bid.map(|x| x.0)))),
                    ("bidQty", json!(fixed(bid.map_or(0, |x| x.1), b))),
                    ("askPrice", json!(price(ask.map(|x| x.0)))),
                    ("askQty", json!(fixed(ask.map_or(0, |x| x.1), b))),
                ] {
                    o.insert(k.into(), v);
                }
            }
        }
        items.push(item);
    }
    Ok(Json(one_or_many(&p, items)))
}

pub async fn ticker_price(State(state): State<Shared>, RawQuery(q): RawQuery) -> Answer {
    let p = params(&q);
    let now = crate::now_ms();
    let items = markets(&state, &p)?
        .iter()
        .map(|m| {
            let last = state.tickers.lock().ok().and_then(|t| t.stats(m.id, now).last);
            json!({ "symbol": symbol_of(m), "price": fixed(last.unwrap_or(0), m.quote.scale) })
        })
        .collect();
    Ok(Json(one_or_many(&p, items)))
}

pub async fn book_ticker(State(state): State<Shared>, RawQuery(q): RawQuery) -> Answer {
    let p = params(&q);
    let items = markets(&state, &p)?
        .iter()
        .map(|m| {
            let (bid, ask) = best(&state, m);
            let (b, q) = (m.base.scale, m.quote.scale);
            json!({
                "symbol": symbol_of(m),
                "bidPrice": fixed(bid.map_or(0, |x| x.0), q),
                "bidQty": fixed(bid.map_or(0, |x| x.1), b),
                "askPrice": fixed(ask.map_or(0, |x| x.0), q),
                "askQty": fixed(ask.map_or(0, |x| x.1), b),
            })
        })
        .collect();
    Ok(Json(one_or_many(&p, items)))
}
