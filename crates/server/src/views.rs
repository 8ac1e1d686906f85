//! The JSON shapes of `/api/v1` and `/ws`: amounts and prices as exact decimal strings in each
//! asset's precision (never JSON numbers), ids as numbers, times as Unix milliseconds.

use crate::mirror::{MarketInfo, Mirror};
use bourse_core::decimal::{format_signed_units, format_units_trimmed};
use bourse_core::{EndReason, MarketStatus, Side, StpMode, TimeInForce};
use bourse_store::{
    BalanceRow, CandleRow, LedgerKind, LedgerRow, OrderKind, OrderRow, OrderStatus, TradeRow,
};
use serde::Serialize;
use utoipa::ToSchema;

/// The closed sets of words the API uses, for the OpenAPI document only (the views hold the
/// words as `&'static str` from the `*_str` functions below; a test keeps the two in step).
pub mod names {
    use serde::Serialize;
    use utoipa::ToSchema;

    #[derive(Debug, Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum Side {
        Buy,
        Sell,
    }

    #[derive(Debug, Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum OrderType {
        Limit,
        Market,
    }

    #[derive(Debug, Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum TimeInForce {
        Gtc,
        Ioc,
        Fok,
        PostOnly,
    }

    /// Self-trade prevention.
    #[derive(Debug, Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum StpMode {
        None,
        ExpireTaker,
        ExpireMaker,
        ExpireBoth,
    }

    #[derive(Debug, Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum OrderStatus {
        Open,
        PartiallyFilled,
        Filled,
        Canceled,
        Expired,
    }

    /// Why an order left the book.
    #[derive(Debug, Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum EndReason {
        Canceled,
        Unfilled,
        SelfTrade,
        InsufficientFunds,
    }

    #[derive(Debug, Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum MarketStatus {
        Trading,
        Halted,
    }

    #[derive(Debug, Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum LedgerKind {
        Order,
        Trade,
        Deposit,
        Withdrawal,
        Adjustment,
        Reversal,
    }

    #[derive(Debug, Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum Role {
        Maker,
        Taker,
    }

    /// What an API key may do (`trade` and `withdraw` imply `read`).
    #[derive(Debug, Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum Scope {
        Read,
        Trade,
        Withdraw,
    }

    /// One side of the book, best level first; a level is `[price, quantity]`.
    pub fn levels() -> utoipa::openapi::Array {
        use utoipa::openapi::{ArrayBuilder, ObjectBuilder, Type};
        let level = ArrayBuilder::new()
            .items(ObjectBuilder::new().schema_type(Type::String))
            .min_items(Some(2))
            .max_items(Some(2))
            .description(Some("`[price, quantity]` as decimal strings"));
        ArrayBuilder::new().items(level).description(Some("Best first.")).build()
    }
}

pub fn units(value: u128, scale: u8) -> String {
    format_units_trimmed(value, scale)
}

pub fn signed_units(value: i128, scale: u8) -> String {
    let text = format_signed_units(value, scale);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

pub fn side_str(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

pub fn tif_str(tif: TimeInForce) -> &'static str {
    match tif {
        TimeInForce::Gtc => "gtc",
        TimeInForce::Ioc => "ioc",
        TimeInForce::Fok => "fok",
        TimeInForce::PostOnly => "post_only",
    }
}

pub fn stp_str(stp: StpMode) -> &'static str {
    match stp {
        StpMode::None => "none",
        StpMode::ExpireTaker => "expire_taker",
        StpMode::ExpireMaker => "expire_maker",
        StpMode::ExpireBoth => "expire_both",
    }
}

pub fn status_str(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Open => "open",
        OrderStatus::PartiallyFilled => "partially_filled",
        OrderStatus::Filled => "filled",
        OrderStatus::Canceled => "canceled",
        OrderStatus::Expired => "expired",
    }
}

pub fn end_reason_str(reason: EndReason) -> &'static str {
    match reason {
        EndReason::Canceled => "canceled",
        EndReason::Unfilled => "unfilled",
        EndReason::SelfTrade => "self_trade",
        EndReason::Funds => "insufficient_funds",
    }
}

pub fn kind_str(kind: OrderKind) -> &'static str {
    match kind {
        OrderKind::Limit => "limit",
        OrderKind::Market | OrderKind::MarketQuote => "market",
    }
}

pub fn market_status_str(status: MarketStatus) -> &'static str {
    match status {
        MarketStatus::Trading => "trading",
        MarketStatus::Halted => "halted",
    }
}

pub fn ledger_kind_str(kind: LedgerKind) -> &'static str {
    match kind {
        LedgerKind::Order => "order",
        LedgerKind::Trade => "trade",
        LedgerKind::Deposit => "deposit",
        LedgerKind::Withdrawal => "withdrawal",
        LedgerKind::Adjustment => "adjustment",
        LedgerKind::Reversal => "reversal",
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct AssetView {
    pub symbol: String,
    pub scale: u8,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct MarketView {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    #[schema(value_type = names::MarketStatus)]
    pub status: &'static str,
    /// Price step (quote per whole base unit).
    pub tick_size: String,
    /// Quantity step (base).
    pub lot_size: String,
    pub min_quantity: String,
    pub max_quantity: String,
    /// Smallest limit-order notional (quote).
    pub min_notional: String,
    /// Fee rates as decimal fractions of the notional ("0.001" = 0.1 %).
    pub maker_fee: String,
    pub taker_fee: String,
    pub price_scale: u8,
    pub quantity_scale: u8,
}

impl MarketView {
    pub fn new(m: &MarketInfo) -> MarketView {
        let (b, q) = (m.base.scale, m.quote.scale);
        MarketView {
            symbol: m.symbol.clone(),
            base: m.base.symbol.clone(),
            quote: m.quote.symbol.clone(),
            status: market_status_str(m.status),
            tick_size: units(m.spec.tick, q),
            lot_size: units(m.spec.lot, b),
            min_quantity: units(m.spec.min_qty, b),
            max_quantity: units(m.spec.max_qty, b),
            min_notional: units(m.spec.min_notional, q),
            maker_fee: units(u128::from(m.spec.maker_fee_ppm), 6),
            taker_fee: units(u128::from(m.spec.taker_fee_ppm), 6),
            price_scale: q,
            quantity_scale: b,
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct OrderView {
    pub id: u64,
    pub market: String,
    #[schema(value_type = names::Side)]
    pub side: &'static str,
    #[serde(rename = "type")]
    #[schema(value_type = names::OrderType)]
    pub kind: &'static str,
    /// Limit orders only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<names::TimeInForce>)]
    pub time_in_force: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote_amount: Option<String>,
    pub client_order_id: Option<String>,
    #[schema(value_type = names::StpMode)]
    pub stp: &'static str,
    #[schema(value_type = names::OrderStatus)]
    pub status: &'static str,
    /// Set once the order is no longer open.
    #[schema(value_type = Option<names::EndReason>)]
    pub end_reason: Option<&'static str>,
    pub filled_quantity: String,
    pub filled_quote: String,
    /// Fees are charged in the quote asset.
    pub fee: String,
    pub fee_asset: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl OrderView {
    pub fn new(row: &OrderRow, mirror: &Mirror) -> OrderView {
        let market = mirror.markets.get(&row.market);
        let (b, q) = market.map(|m| (m.base.scale, m.quote.scale)).unwrap_or((0, 0));
        OrderView {
            id: row.id.0,
            market: market.map(|m| m.symbol.clone()).unwrap_or_default(),
            side: side_str(row.side),
            kind: kind_str(row.kind),
            time_in_force: row.time_in_force.map(tif_str),
            price: row.price.map(|p| units(p, q)),
            quantity: row.quantity.map(|v| units(v, b)),
            quote_amount: row.quote_amount.map(|v| units(v, q)),
            client_order_id: row.client_order_id.clone(),
            stp: stp_str(row.stp),
            status: status_str(row.status),
            end_reason: row.end_reason.map(end_reason_str),
            filled_quantity: units(row.filled, b),
            filled_quote: units(row.filled_quote, q),
            fee: units(row.fee, q),
            fee_asset: market.map(|m| m.quote.symbol.clone()).unwrap_or_default(),
            created_ms: row.created_ms,
            updated_ms: row.updated_ms,
        }
    }
}

/// A trade seen by one of its two parties.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct FillView {
    pub market: String,
    pub trade_id: u64,
    pub order_id: u64,
    #[schema(value_type = names::Side)]
    pub side: &'static str,
    #[schema(value_type = names::Role)]
    pub role: &'static str,
    pub price: String,
    pub quantity: String,
    pub notional: String,
    pub fee: String,
    pub fee_asset: String,
    pub seq: u64,
    pub time_ms: i64,
}

impl FillView {
    /// `None` if `user` is not a party (cannot happen for rows read by user).
    pub fn new(t: &TradeRow, user: bourse_core::UserId, mirror: &Mirror) -> Option<FillView> {
        let market = mirror.markets.get(&t.market);
        let (b, q) = market.map(|m| (m.base.scale, m.quote.scale)).unwrap_or((0, 0));
        // A self-trade shows as the taker side.
        let (order, side, role, fee) = if t.taker_user == user {
            (t.taker_order, t.taker_side, "taker", t.taker_fee)
        } else if t.maker_user == user {
            (t.maker_order, t.taker_side.opposite(), "maker", t.maker_fee)
        } else {
            return None;
        };
        Some(FillView {
            market: market.map(|m| m.symbol.clone()).unwrap_or_default(),
            trade_id: t.id.0,
            order_id: order.0,
            side: side_str(side),
            role,
            price: units(t.price, q),
            quantity: units(t.quantity, b),
            notional: units(t.notional, q),
            fee: units(fee, q),
            fee_asset: market.map(|m| m.quote.symbol.clone()).unwrap_or_default(),
            seq: t.seq,
            time_ms: t.time_ms,
        })
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct TradeView {
    pub id: u64,
    pub price: String,
    pub quantity: String,
    #[schema(value_type = names::Side)]
    pub taker_side: &'static str,
    pub time_ms: i64,
}

impl TradeView {
    pub fn new(t: &TradeRow, m: &MarketInfo) -> TradeView {
        TradeView {
            id: t.id.0,
            price: units(t.price, m.quote.scale),
            quantity: units(t.quantity, m.base.scale),
            taker_side: side_str(t.taker_side),
            time_ms: t.time_ms,
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct BalanceView {
    pub asset: String,
    pub available: String,
    pub locked: String,
    /// Held for withdrawals in progress.
    pub held: String,
}

impl BalanceView {
    pub fn new(b: &BalanceRow, mirror: &Mirror) -> BalanceView {
        let asset = mirror.assets.get(&b.asset);
        let scale = asset.map(|a| a.scale).unwrap_or(0);
        BalanceView {
            asset: asset.map(|a| a.symbol.clone()).unwrap_or_default(),
            available: signed_units(b.available, scale),
            locked: signed_units(b.locked, scale),
            held: signed_units(b.held, scale),
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct LedgerView {
    pub id: i64,
    pub asset: String,
    #[schema(value_type = names::LedgerKind)]
    pub kind: &'static str,
    pub reference: String,
    pub delta_available: String,
    pub delta_locked: String,
    pub delta_held: String,
    pub available: String,
    pub locked: String,
    pub held: String,
    pub seq: u64,
    pub time_ms: i64,
}

impl LedgerView {
    pub fn new(row: &LedgerRow, mirror: &Mirror) -> LedgerView {
        let e = &row.entry;
        let asset = mirror.assets.get(&e.asset);
        let s = asset.map(|a| a.scale).unwrap_or(0);
        LedgerView {
            id: row.id,
            asset: asset.map(|a| a.symbol.clone()).unwrap_or_default(),
            kind: ledger_kind_str(e.kind),
            reference: e.reference.clone(),
            delta_available: signed_units(e.delta_available, s),
            delta_locked: signed_units(e.delta_locked, s),
            delta_held: signed_units(e.delta_held, s),
            available: signed_units(e.available, s),
            locked: signed_units(e.locked, s),
            held: signed_units(e.held, s),
            seq: e.seq,
            time_ms: e.time_ms,
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct CandleView {
    pub open_ms: i64,
    pub open: String,
    pub high: String,
    pub low: String,
    pub close: String,
    pub volume: String,
    pub quote_volume: String,
    pub trades: u64,
}

impl CandleView {
    pub fn new(c: &CandleRow, m: &MarketInfo) -> CandleView {
        let (b, q) = (m.base.scale, m.quote.scale);
        CandleView {
            open_ms: c.open_ms,
            open: units(c.open, q),
            high: units(c.high, q),
            low: units(c.low, q),
            close: units(c.close, q),
            volume: units(c.volume, b),
            quote_volume: units(c.quote_volume, q),
            trades: c.trades,
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct TickerView {
    pub market: String,
    /// Last trade price (any time); absent before the first trade.
    pub last: Option<String>,
    /// The rolling 24 h window: first price, extremes, volumes, trade count.
    pub open: Option<String>,
    pub high: Option<String>,
    pub low: Option<String>,
    /// `last - open` and its percentage with two decimals (exact, truncated toward zero).
    pub change: Option<String>,
    pub change_percent: Option<String>,
    pub volume: String,
    pub quote_volume: String,
    pub trades: u64,
    pub best_bid: Option<String>,
    pub best_ask: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeSet;

    fn words<T: Serialize>(values: &[T]) -> BTreeSet<String> {
        values
            .iter()
            .map(|v| serde_json::to_value(v).unwrap().as_str().unwrap().to_string())
            .collect()
    }

    fn set(words: &[&str]) -> BTreeSet<String> {
        words.iter().map(|w| (*w).to_string()).collect()
    }

    /// The documented enumerations are exactly the words the views emit.
    #[test]
    fn documented_names_match_the_views() {
        use names as n;
        assert_eq!(
            words(&[n::Side::Buy, n::Side::Sell]),
            set(&[side_str(Side::Buy), side_str(Side::Sell)])
        );
        assert_eq!(
            words(&[n::OrderType::Limit, n::OrderType::Market]),
            set(&[OrderKind::Limit, OrderKind::Market, OrderKind::MarketQuote].map(kind_str))
        );
        assert_eq!(
            words(&[
                n::TimeInForce::Gtc,
                n::TimeInForce::Ioc,
                n::TimeInForce::Fok,
                n::TimeInForce::PostOnly
            ]),
            set(&[TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok, TimeInForce::PostOnly]
                .map(tif_str))
        );
        assert_eq!(
            words(&[
                n::StpMode::None,
                n::StpMode::ExpireTaker,
                n::StpMode::ExpireMaker,
                n::StpMode::ExpireBoth
            ]),
            set(&[StpMode::None, StpMode::ExpireTaker, StpMode::ExpireMaker, StpMode::ExpireBoth]
                .map(stp_str))
        );
        assert_eq!(
            words(&[
                n::OrderStatus::Open,
                n::OrderStatus::PartiallyFilled,
                n::OrderStatus::Filled,
                n::OrderStatus::Canceled,
                n::OrderStatus::Expired
            ]),
            set(&[
                OrderStatus::Open,
                OrderStatus::PartiallyFilled,
                OrderStatus::Filled,
                OrderStatus::Canceled,
                OrderStatus::Expired
            ]
            .map(status_str))
        );
        assert_eq!(
            words(&[
                n::EndReason::Canceled,
                n::EndReason::Unfilled,
                n::EndReason::SelfTrade,
                n::EndReason::InsufficientFunds
            ]),
            set(&[
                EndReason::Canceled,
                EndReason::Unfilled,
                EndReason::SelfTrade,
                EndReason::Funds
            ]
            .map(end_reason_str))
        );
        assert_eq!(
            words(&[n::MarketStatus::Trading, n::MarketStatus::Halted]),
            set(&[MarketStatus::Trading, MarketStatus::Halted].map(market_status_str))
        );
        assert_eq!(
            words(&[
                n::LedgerKind::Order,
                n::LedgerKind::Trade,
                n::LedgerKind::Deposit,
                n::LedgerKind::Withdrawal,
                n::LedgerKind::Adjustment,
                n::LedgerKind::Reversal
            ]),
            set(&[
                LedgerKind::Order,
                LedgerKind::Trade,
                LedgerKind::Deposit,
                LedgerKind::Withdrawal,
                LedgerKind::Adjustment,
                LedgerKind::Reversal
            ]
            .map(ledger_kind_str))
        );
    }
}
