//! The gateway's in-memory mirror of the engine's public state: assets, markets and order
//! books, kept current from engine events by the feed task (`feed.rs`). Handlers read it to
//! validate orders (scales, grid) and to answer depth snapshots whose `update_id` matches the
//! WebSocket diffs, because both come from the same event stream.

use bourse_core::{AssetId, Event, Exchange, MarketId, MarketSpec, MarketStatus, Side};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetInfo {
    pub id: AssetId,
    pub symbol: String,
    pub scale: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarketInfo {
    pub id: MarketId,
    /// `BASE-QUOTE`, e.g. `BTC-USDT`.
    pub symbol: String,
    pub base: AssetInfo,
    pub quote: AssetInfo,
    pub spec: MarketSpec,
    pub status: MarketStatus,
}

/// (price, quantity) pairs, best first.
pub type Levels = Vec<(u128, u128)>;

/// Price levels of one market: price → total quantity, in minor units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Book {
    pub bids: BTreeMap<u128, u128>,
    pub asks: BTreeMap<u128, u128>,
    pub update_id: u64,
}

impl Book {
    pub fn best_bid(&self) -> Option<(u128, u128)> {
        self.bids.iter().next_back().map(|(p, q)| (*p, *q))
    }
    pub fn best_ask(&self) -> Option<(u128, u128)> {
        self.asks.iter().next().map(|(p, q)| (*p, *q))
    }
    /// The best `limit` levels of each side, best first.
    pub fn levels(&self, limit: usize) -> (Levels, Levels) {
        let bids = self.bids.iter().rev().take(limit).map(|(p, q)| (*p, *q)).collect();
        let asks = self.asks.iter().take(limit).map(|(p, q)| (*p, *q)).collect();
        (bids, asks)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Mirror {
    /// The last engine seq applied.
    pub seq: u64,
    pub assets: BTreeMap<AssetId, AssetInfo>,
    pub markets: BTreeMap<MarketId, MarketInfo>,
    by_symbol: HashMap<String, MarketId>,
    pub books: HashMap<MarketId, Book>,
}

impl Mirror {
    /// Copies the public state of `exchange` (run on the engine thread: keep it cheap).
    pub fn from_exchange(exchange: &Exchange) -> Mirror {
        let mut mirror = Mirror { seq: exchange.seq(), ..Mirror::default() };
        for (id, asset) in exchange.assets() {
            mirror.add_asset(id, asset.spec.symbol.as_str(), asset.spec.scale);
        }
        for market in exchange.market_ids() {
            let Some((spec, status)) = exchange.market_spec(market) else { continue };
            mirror.add_market(market, spec.clone(), status);
            let book = Book {
                bids: exchange.depth(market, Side::Buy, usize::MAX).into_iter().collect(),
                asks: exchange.depth(market, Side::Sell, usize::MAX).into_iter().collect(),
                update_id: exchange.book_update_id(market).unwrap_or(0),
            };
            mirror.books.insert(market, book);
        }
        mirror
    }

    fn add_asset(&mut self, id: AssetId, symbol: &str, scale: u8) {
        self.assets.insert(id, AssetInfo { id, symbol: symbol.to_string(), scale });
    }

    fn add_market(&mut self, id: MarketId, spec: MarketSpec, status: MarketStatus) {
        let (Some(base), Some(quote)) =
            (self.assets.get(&spec.base).cloned(), self.assets.get(&spec.quote).cloned())
        else {
            return;
        };
        let symbol = format!("{}-{}", base.symbol, quote.symbol);
        self.by_symbol.insert(symbol.to_ascii_uppercase(), id);
        self.markets.insert(id, MarketInfo { id, symbol, base, quote, spec, status });
        self.books.entry(id).or_default();
    }

    /// Finds a market by `BASE-QUOTE` (also `BASE/QUOTE`, `BASE_QUOTE`; any case).
    pub fn market_by_symbol(&self, symbol: &str) -> Option<&MarketInfo> {
        let key = symbol.to_ascii_uppercase().replace(['/', '_'], "-");
        self.by_symbol.get(&key).and_then(|id| self.markets.get(id))
    }

    pub fn asset_by_symbol(&self, symbol: &str) -> Option<&AssetInfo> {
        self.assets.values().find(|a| a.symbol.eq_ignore_ascii_case(symbol))
    }

    /// Applies the events of command `seq`.
    pub fn apply(&mut self, seq: u64, events: &[Event]) {
        self.seq = seq;
        for event in events {
            match event {
                Event::AssetAdded { asset, spec } => {
                    self.add_asset(*asset, spec.symbol.as_str(), spec.scale)
                }
                Event::MarketAdded { market, spec } => {
                    self.add_market(*market, spec.clone(), MarketStatus::Trading)
                }
                Event::MarketChanged { market, spec } => {
                    if let Some(m) = self.markets.get_mut(market) {
                        m.spec = spec.clone();
                    }
                }
                Event::MarketStatusChanged { market, status } => {
                    if let Some(m) = self.markets.get_mut(market) {
                        m.status = *status;
                    }
                }
                Event::BookLevelChanged { market, side, price, quantity, update_id } => {
                    let book = self.books.entry(*market).or_default();
                    let levels = match side {
                        Side::Buy => &mut book.bids,
                        Side::Sell => &mut book.asks,
                    };
                    if *quantity == 0 {
                        levels.remove(price);
                    } else {
                        levels.insert(*price, *quantity);
                    }
                    book.update_id = *update_id;
                }
                _ => {}
            }
        }
    }
}
