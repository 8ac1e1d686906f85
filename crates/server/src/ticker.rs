//! Rolling 24-hour tickers, computed from the minute candles the projector writes (kept here
//! for the last 24 hours per market) and the last trade price. Integer arithmetic only: the
//! change percentage is truncated toward zero to two decimals.

use crate::mirror::Mirror;
use crate::views::{TickerView, signed_units, units};
use bourse_core::MarketId;
use bourse_store::{CandleRow, Interval, Store, StoreError};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

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

    /// A market's rolling 24 hours at `now_ms`, in minor units.
    pub fn stats(&self, market: MarketId, now_ms: i64) -> Stats {
        let t = self.markets.get(&market);
        let window: Vec<&CandleRow> = t
            .map(|t| t.minutes.iter().filter(|c| c.open_ms > now_ms - DAY_MS).collect())
            .unwrap_or_default();
        Stats {
            last: t.and_then(|t| t.last),
            open: window.first().map(|c| c.open),
            high: window.iter().map(|c| c.high).max(),
            low: window.iter().map(|c| c.low).min(),
            volume: window.iter().map(|c| c.volume).fold(0, u128::saturating_add),
            quote_volume: window.iter().map(|c| c.quote_volume).fold(0, u128::saturating_add),
            trades: window.iter().map(|c| c.trades).fold(0, u64::saturating_add),
        }
    }

    pub fn view(&self, market: MarketId, now_ms: i64, mirror: &Mirror) -> Option<TickerView> {
        let info = mirror.markets.get(&market)?;
        let (b, q) = (info.base.scale, info.quote.scale);
        let s = self.stats(market, now_ms);
        let (change, change_percent) = match s.change(2) {
            Some((diff, percent)) => (Some(signed_units(diff, q)), Some(percent)),
            None => (None, None),
        };
        let book = mirror.books.get(&market);
        Some(TickerView {
            market: info.symbol.clone(),
            last: s.last.map(|p| units(p, q)),
            open: s.open.map(|p| units(p, q)),
            high: s.high.map(|p| units(p, q)),
            low: s.low.map(|p| units(p, q)),
            change,
            change_percent,
            volume: units(s.volume, b),
            quote_volume: units(s.quote_volume, q),
            trades: s.trades,
            best_bid: book.and_then(|b| b.best_bid()).map(|(p, _)| units(p, q)),
            best_ask: book.and_then(|b| b.best_ask()).map(|(p, _)| units(p, q)),
        })
    }
}

/// Rebuilds `tickers` from the read models: each market's last price (from `latest`, the
/// newest candle of every market and interval) and its minute candles of the last day.
pub async fn load(
    store: &dyn Store,
    latest: &[CandleRow],
    tickers: &Mutex<Tickers>,
) -> Result<(), StoreError> {
    let now = crate::now_ms();
    let mut recent = Vec::new();
    for c in latest.iter().filter(|c| c.interval == Interval::M1) {
        recent.extend(store.candles(c.market, Interval::M1, Some(now - DAY_MS), None, 1440).await?);
    }
    if let Ok(mut t) = tickers.lock() {
        *t = Tickers::default();
        for c in latest.iter().filter(|c| c.interval == Interval::M1) {
            t.set_last(c.market, c.close);
        }
        for c in &recent {
            t.record(c);
        }
    }
    Ok(())
}

/// A market's rolling 24 hours, in minor units (prices in quote units per whole base unit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// The last trade price (any time).
    pub last: Option<u128>,
    pub open: Option<u128>,
    pub high: Option<u128>,
    pub low: Option<u128>,
    pub volume: u128,
    pub quote_volume: u128,
    pub trades: u64,
}

impl Stats {
    /// `last - open`, and its percentage of `open` with `decimals` decimals (exact, truncated
    /// toward zero) as text; `None` before a trade in the window.
    pub fn change(&self, decimals: u8) -> Option<(i128, String)> {
        let (last, open) = (self.last?, self.open?);
        if open == 0 {
            return None;
        }
        let diff =
            i128::try_from(last).unwrap_or(i128::MAX) - i128::try_from(open).unwrap_or(i128::MAX);
        let scale = 100 * i128::try_from(bourse_core::decimal::pow10(decimals)?).ok()?;
        let percent = diff.saturating_mul(scale) / i128::try_from(open).unwrap_or(i128::MAX);
        Some((diff, bourse_core::decimal::format_signed_units(percent, decimals)))
    }
}
