//! Rolling 24-hour tickers, computed from the minute candles the projector writes (kept here
//! for the last 24 hours per market) and the last trade price. Integer arithmetic only: the
//! change percentage is truncated toward zero to two decimals.

use crate::mirror::Mirror;
use crate::views::{TickerView, signed_units, units};
use bourse_core::MarketId;
use bourse_store::CandleRow;
use std::collections::{HashMap, VecDeque};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Default)]
pub struct Tickers {
    markets: HashMap<MarketId, MarketTicker>,
}

#[derive(Debug, Default)]
struct MarketTicker {
    last: Option<u128>,
    /// Minute candles, oldest first, at most a day old (relative to the newest).
    minutes: VecDeque<CandleRow>,
}

impl Tickers {
    /// Records a committed minute candle (new or updated) and the market's last price.
    pub fn record(&mut self, candle: &CandleRow) {
        let t = self.markets.entry(candle.market).or_default();
        match t.minutes.back_mut() {
            Some(last) if last.open_ms == candle.open_ms => *last = candle.clone(),
            Some(last) if last.open_ms > candle.open_ms => return,
            _ => t.minutes.push_back(candle.clone()),
        }
        t.last = Some(candle.close);
        while t.minutes.front().is_some_and(|c| c.open_ms <= candle.open_ms - DAY_MS) {
            t.minutes.pop_front();
        }
    }

    /// Sets the last price of a market whose newest candle is older than a day.
    pub fn set_last(&mut self, market: MarketId, price: u128) {
        self.markets.entry(market).or_default().last = Some(price);
    }

    pub fn view(&self, market: MarketId, now_ms: i64, mirror: &Mirror) -> Option<TickerView> {
        let info = mirror.markets.get(&market)?;
        let (b, q) = (info.base.scale, info.quote.scale);
        let t = self.markets.get(&market);
        let window: Vec<&CandleRow> = t
            .map(|t| t.minutes.iter().filter(|c| c.open_ms > now_ms - DAY_MS).collect())
            .unwrap_or_default();
        let open = window.first().map(|c| c.open);
        let high = window.iter().map(|c| c.high).max();
        let low = window.iter().map(|c| c.low).min();
        let volume: u128 = window.iter().map(|c| c.volume).fold(0, u128::saturating_add);
        let quote_volume: u128 =
            window.iter().map(|c| c.quote_volume).fold(0, u128::saturating_add);
        let trades: u64 = window.iter().map(|c| c.trades).fold(0, u64::saturating_add);
        let last = t.and_then(|t| t.last);
        let (change, change_percent) = match (last, open) {
            (Some(last), Some(open)) if open > 0 => {
                let diff = i128::try_from(last).unwrap_or(i128::MAX)
                    - i128::try_from(open).unwrap_or(i128::MAX);
                let basis_points =
                    diff.saturating_mul(10_000) / i128::try_from(open).unwrap_or(i128::MAX);
                (
                    Some(signed_units(diff, q)),
                    Some(bourse_core::decimal::format_signed_units(basis_points, 2)),
                )
            }
            _ => (None, None),
        };
        let book = mirror.books.get(&market);
        Some(TickerView {
            market: info.symbol.clone(),
            last: last.map(|p| units(p, q)),
            open: open.map(|p| units(p, q)),
            high: high.map(|p| units(p, q)),
            low: low.map(|p| units(p, q)),
            change,
            change_percent,
            volume: units(volume, b),
            quote_volume: units(quote_volume, q),
            trades,
            best_bid: book.and_then(|b| b.best_bid()).map(|(p, _)| units(p, q)),
            best_ask: book.and_then(|b| b.best_ask()).map(|(p, _)| units(p, q)),
        })
    }
}
