//! How engine events change an order's read-model row. One fold, used by the projector (rows
//! in the database) and by the place-order handler (the response built from the command's
//! own events), so both always agree.

use bourse_core::{EndReason, Event, OrderId, OrderType};
use bourse_store::{OrderKind, OrderRow, OrderStatus, TradeRow};

/// The row of a just-accepted order, or `None` if `event` is not an acceptance.
pub fn accepted(event: &Event, seq: u64, time_ms: i64) -> Option<OrderRow> {
    let Event::OrderAccepted { order, user, market, side, order_type, client_order_id, stp } =
        event
    else {
        return None;
    };
    let (kind, time_in_force, price, quantity, quote_amount) = match *order_type {
        OrderType::Limit { price, quantity, time_in_force } => {
            (OrderKind::Limit, Some(time_in_force), Some(price), Some(quantity), None)
        }
        OrderType::Market { quantity } => (OrderKind::Market, None, None, Some(quantity), None),
        OrderType::MarketQuote { amount } => {
            (OrderKind::MarketQuote, None, None, None, Some(amount))
        }
    };
    Some(OrderRow {
        id: *order,
        user: *user,
        market: *market,
        side: *side,
        kind,
        time_in_force,
        price,
        quantity,
        quote_amount,
        client_order_id: client_order_id.map(|c| c.as_str().to_string()),
        stp: *stp,
        status: OrderStatus::Open,
        end_reason: None,
        filled: 0,
        filled_quote: 0,
        fee: 0,
        created_seq: seq,
        created_ms: time_ms,
        updated_ms: time_ms,
    })
}

/// The order ids an event changes (a trade changes two).
pub fn touched(event: &Event) -> [Option<OrderId>; 2] {
    match event {
        Event::OrderAccepted { order, .. }
        | Event::OrderPartiallyFilled { order, .. }
        | Event::OrderFilled { order, .. }
        | Event::OrderEnded { order, .. } => [Some(*order), None],
        Event::Trade { maker_order, taker_order, .. } => [Some(*maker_order), Some(*taker_order)],
        _ => [None, None],
    }
}

/// Applies `event` to `row` if it concerns it.
pub fn apply(row: &mut OrderRow, event: &Event, time_ms: i64) {
    match event {
        Event::Trade { maker_order, taker_order, notional, maker_fee, taker_fee, .. } => {
            let fee = if *maker_order == row.id {
                *maker_fee
            } else if *taker_order == row.id {
                *taker_fee
            } else {
                return;
            };
            row.filled_quote = row.filled_quote.saturating_add(*notional);
            row.fee = row.fee.saturating_add(fee);
        }
        Event::OrderPartiallyFilled { order, filled, .. } if *order == row.id => {
            row.filled = *filled;
            row.status = OrderStatus::PartiallyFilled;
        }
        Event::OrderFilled { order, filled, .. } if *order == row.id => {
            row.filled = *filled;
            row.status = OrderStatus::Filled;
        }
        Event::OrderEnded { order, filled, reason, .. } if *order == row.id => {
            row.filled = *filled;
            row.end_reason = Some(*reason);
            row.status = match reason {
                EndReason::Canceled => OrderStatus::Canceled,
                EndReason::Unfilled | EndReason::SelfTrade | EndReason::Funds => {
                    OrderStatus::Expired
                }
            };
        }
        _ => return,
    }
    row.updated_ms = time_ms;
}

/// Engine time (ns) to read-model time (ms).
pub fn ms(time_ns: u64) -> i64 {
    i64::try_from(time_ns / 1_000_000).unwrap_or(i64::MAX)
}

/// The read-model row of a `Trade` event (`None` for any other event).
pub fn trade_row(event: &Event, seq: u64, time_ms: i64) -> Option<TradeRow> {
    let Event::Trade {
        market,
        trade,
        price,
        quantity,
        notional,
        taker_side,
        maker_order,
        maker_user,
        maker_fee,
        taker_order,
        taker_user,
        taker_fee,
    } = event
    else {
        return None;
    };
    Some(TradeRow {
        market: *market,
        id: *trade,
        price: *price,
        quantity: *quantity,
        notional: *notional,
        taker_side: *taker_side,
        maker_order: *maker_order,
        maker_user: *maker_user,
        maker_fee: *maker_fee,
        taker_order: *taker_order,
        taker_user: *taker_user,
        taker_fee: *taker_fee,
        seq,
        time_ms,
    })
}
