//! Binance's market streams over WebSocket. Connections: `/ws/<stream>` (raw payloads; any
//! other last segment, such as ccxt.pro's `/ws/0`, starts with none), then `SUBSCRIBE`,
//! `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`/`GET_PROPERTY` `combined`; and
//! `/stream?streams=a/b` (combined: each payload wrapped as `{"stream": name, "data": ...}`).
//! Streams: `<symbol>@trade`, `@aggTrade`, `@depth` and `@depth@100ms`, `@depth5|10|20`,
//! `@kline_<interval>`, `@miniTicker`, `@ticker`, `@bookTicker`, and `!miniTicker@arr`.
//!
//! The feed publishes trades, depth diffs, partial books and book tickers after each engine
//! batch ([`publish_batch`]); the projector publishes klines and tickers after each commit
//! ([`publish_candles`]). Depth diffs carry the engine's per-market update ids: `U..u` of one
//! message follows the previous message's `u` with no gap, and `lastUpdateId` of
//! `GET /api/v3/depth` is on the same sequence. Messages are built only for streams somebody
//! listens to, raw and wrapped each once.

use super::{fixed, symbol_of};
use crate::hub::{Hub, Message, Topic};
use crate::mirror::{MarketInfo, Mirror};
use crate::state::Shared;
use crate::ticker::Tickers;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use bourse_core::{MarketId, Side};
use bourse_store::{CandleRow, Interval};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// How often Binance would send a depth stream; bourse sends each batch's diff either way, so
/// the two differ only in name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Speed {
    Second,
    Fast,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Trade(MarketId),
    AggTrade(MarketId),
    Depth(MarketId, Speed),
    /// The best 5, 10 or 20 levels of each side.
    Partial(MarketId, u8, Speed),
    Kline(MarketId, Interval),
    MiniTicker(MarketId),
    Ticker(MarketId),
    BookTicker(MarketId),
    AllMiniTickers,
}

impl Stream {
    /// The stream a Binance stream name means (symbols in lower case, as Binance's).
    pub fn parse(name: &str, mirror: &Mirror) -> Option<Stream> {
        if name == "!miniTicker@arr" {
            return Some(Stream::AllMiniTickers);
        }
        let (symbol, kind) = name.split_once('@')?;
        let m = mirror.markets.values().find(|m| symbol_of(m).to_ascii_lowercase() == symbol)?.id;
        let (kind, speed) = match kind.split_once('@') {
            Some((kind, "100ms")) => (kind, Speed::Fast),
            Some((kind, "1000ms")) => (kind, Speed::Second),
            Some(_) => return None,
            None => (kind, Speed::Second),
        };
        // Only depth streams come in two speeds.
        let plain = |s: Stream| (speed == Speed::Second).then_some(s);
        match kind {
            "trade" => plain(Stream::Trade(m)),
            "aggTrade" => plain(Stream::AggTrade(m)),
            "depth" => Some(Stream::Depth(m, speed)),
            "depth5" => Some(Stream::Partial(m, 5, speed)),
            "depth10" => Some(Stream::Partial(m, 10, speed)),
            "depth20" => Some(Stream::Partial(m, 20, speed)),
            "miniTicker" => plain(Stream::MiniTicker(m)),
            "ticker" => plain(Stream::Ticker(m)),
            "bookTicker" => plain(Stream::BookTicker(m)),
            _ => {
                let interval = Interval::parse(kind.strip_prefix("kline_")?)?;
                plain(Stream::Kline(m, interval))
            }
        }
    }

    /// The stream's Binance name.
    pub fn name(&self, mirror: &Mirror) -> String {
        let symbol = |m: &MarketId| {
            mirror.markets.get(m).map(|m| symbol_of(m).to_ascii_lowercase()).unwrap_or_default()
        };
        let speed = |s: &Speed| if *s == Speed::Fast { "@100ms" } else { "" };
        match self {
            Stream::Trade(m) => format!("{}@trade", symbol(m)),
            Stream::AggTrade(m) => format!("{}@aggTrade", symbol(m)),
            Stream::Depth(m, s) => format!("{}@depth{}", symbol(m), speed(s)),
            Stream::Partial(m, n, s) => format!("{}@depth{n}{}", symbol(m), speed(s)),
            Stream::Kline(m, i) => format!("{}@kline_{}", symbol(m), i.as_str()),
            Stream::MiniTicker(m) => format!("{}@miniTicker", symbol(m)),
            Stream::Ticker(m) => format!("{}@ticker", symbol(m)),
            Stream::BookTicker(m) => format!("{}@bookTicker", symbol(m)),
            Stream::AllMiniTickers => "!miniTicker@arr".into(),
        }
    }
}

/// Publishes `data()` to the raw and the wrapped subscribers of `stream`, building it only if
/// somebody listens.
fn emit(hub: &Hub, mirror: &Mirror, stream: Stream, data: impl FnOnce() -> Option<Value>) {
    let (raw, wrapped) = (Topic::Binance(stream, false), Topic::Binance(stream, true));
    let (to_raw, to_wrapped) = (hub.has_subscribers(raw), hub.has_subscribers(wrapped));
    if !to_raw && !to_wrapped {
        return;
    }
    let Some(data) = data() else { return };
    if to_raw {
        hub.publish(raw, &Message::from(data.to_string()));
    }
    if to_wrapped {
        let message = json!({"stream": stream.name(mirror), "data": data});
        hub.publish(wrapped, &Message::from(message.to_string()));
    }
}

/// One market's book changes in a batch: the first and last update id, and each changed
/// level's new quantity (0: gone).
#[derive(Debug, Default)]
pub struct DepthDiff {
    pub first_update_id: u64,
    pub update_id: u64,
    pub bids: BTreeMap<u128, u128>,
    pub asks: BTreeMap<u128, u128>,
}

/// A trade as the feed saw it: id, price, quantity, taker side, time (ns).
pub type TradeTick = (u64, u128, u128, Side, u64);

/// Whether anybody listens to a market's trades on a Binance stream.
pub fn wants_trades(hub: &Hub, market: MarketId) -> bool {
    [Stream::Trade(market), Stream::AggTrade(market)].into_iter().any(|s| {
        hub.has_subscribers(Topic::Binance(s, false))
            || hub.has_subscribers(Topic::Binance(s, true))
    })
}

fn levels(side: impl Iterator<Item = (u128, u128)>, m: &MarketInfo) -> Vec<Value> {
    side.map(|(p, q)| json!([fixed(p, m.quote.scale), fixed(q, m.base.scale)])).collect()
}

/// After an engine batch (the mirror already applied it): trades, depth diffs, partial books
/// and book tickers of the markets it changed.
pub fn publish_batch(
    hub: &Hub,
    mirror: &Mirror,
    depth: &HashMap<MarketId, DepthDiff>,
    trades: &HashMap<MarketId, Vec<TradeTick>>,
) {
    let now = crate::now_ms();
    for (market, ticks) in trades {
        let Some(m) = mirror.markets.get(market) else { continue };
        let (b, q) = (m.base.scale, m.quote.scale);
        for (id, price, quantity, side, time_ns) in ticks {
            let time = i64::try_from(time_ns / 1_000_000).unwrap_or(i64::MAX);
            let buyer_maker = *side == Side::Sell;
            emit(hub, mirror, Stream::Trade(*market), || {
                Some(json!({"e": "trade", "E": now, "s": symbol_of(m), "t": id,
                    "p": fixed(*price, q), "q": fixed(*quantity, b), "T": time,
                    "m": buyer_maker, "M": true}))
            });
            emit(hub, mirror, Stream::AggTrade(*market), || {
                Some(json!({"e": "aggTrade", "E": now, "s": symbol_of(m), "a": id,
                    "p": fixed(*price, q), "q": fixed(*quantity, b), "f": id, "l": id,
                    "T": time, "m": buyer_maker, "M": true}))
            });
        }
    }
    for (market, d) in depth {
        let Some(m) = mirror.markets.get(market) else { continue };
        let diff = || {
            Some(json!({"e": "depthUpdate", "E": now, "s": symbol_of(m),
                "U": d.first_update_id, "u": d.update_id,
                "b": levels(d.bids.iter().rev().map(|(p, q)| (*p, *q)), m),
                "a": levels(d.asks.iter().map(|(p, q)| (*p, *q)), m)}))
        };
        emit(hub, mirror, Stream::Depth(*market, Speed::Second), diff);
        emit(hub, mirror, Stream::Depth(*market, Speed::Fast), diff);
        let Some(book) = mirror.books.get(market) else { continue };
        for n in [5u8, 10, 20] {
            let partial = || {
                let (bids, asks) = book.levels(usize::from(n));
                Some(json!({"lastUpdateId": book.update_id,
                    "bids": levels(bids.into_iter(), m), "asks": levels(asks.into_iter(), m)}))
            };
            emit(hub, mirror, Stream::Partial(*market, n, Speed::Second), partial);
            emit(hub, mirror, Stream::Partial(*market, n, Speed::Fast), partial);
        }
        emit(hub, mirror, Stream::BookTicker(*market), || {
            let (bid, ask) = (book.best_bid().unwrap_or((0, 0)), book.best_ask().unwrap_or((0, 0)));
            let (b, q) = (m.base.scale, m.quote.scale);
            Some(json!({"u": book.update_id, "s": symbol_of(m),
                "b": fixed(bid.0, q), "B": fixed(bid.1, b), "a": fixed(ask.0, q), "A": fixed(ask.1, b)}))
        });
    }
}

fn mini_ticker(m: &MarketInfo, tickers: &Tickers, now: i64) -> Value {
    let s = tickers.stats(m.id, now);
    let (b, q) = (m.base.scale, m.quote.scale);
    let price = |v: Option<u128>| fixed(v.or(s.last).unwrap_or(0), q);
    json!({"e": "24hrMiniTicker", "E": now, "s": symbol_of(m), "c": price(s.last),
        "o": price(s.open), "h": price(s.high), "l": price(s.low),
        "v": fixed(s.volume, b), "q": fixed(s.quote_volume, q)})
}

/// After a projector commit: klines of the candles it wrote, and the tickers of their markets.
pub fn publish_candles(hub: &Hub, mirror: &Mirror, tickers: &Tickers, candles: &[CandleRow]) {
    let now = crate::now_ms();
    for c in candles {
        let Some(m) = mirror.markets.get(&c.market) else { continue };
        emit(hub, mirror, Stream::Kline(c.market, c.interval), || {
            let (b, q) = (m.base.scale, m.quote.scale);
            let close = c.open_ms + c.interval.millis() - 1;
            Some(json!({"e": "kline", "E": now, "s": symbol_of(m), "k": {
                "t": c.open_ms, "T": close, "s": symbol_of(m), "i": c.interval.as_str(),
                "f": -1, "L": -1, "o": fixed(c.open, q), "c": fixed(c.close, q),
                "h": fixed(c.high, q), "l": fixed(c.low, q), "v": fixed(c.volume, b),
                "n": c.trades, "x": close < now, "q": fixed(c.quote_volume, q),
                "V": fixed(0, b), "Q": fixed(0, q), "B": "0"}}))
        });
    }
    let mut markets: Vec<MarketId> = candles.iter().map(|c| c.market).collect();
    markets.sort();
    markets.dedup();
    let mut minis = Vec::new();
    for market in &markets {
        let Some(m) = mirror.markets.get(market) else { continue };
        let mini = mini_ticker(m, tickers, now);
        minis.push(mini.clone());
        emit(hub, mirror, Stream::MiniTicker(*market), || Some(mini));
        emit(hub, mirror, Stream::Ticker(*market), || {
            let s = tickers.stats(*market, now);
            let (b, q) = (m.base.scale, m.quote.scale);
            let price = |v: Option<u128>| fixed(v.or(s.last).unwrap_or(0), q);
            let book = mirror.books.get(market);
            let bid = book.and_then(|b| b.best_bid()).unwrap_or((0, 0));
            let ask = book.and_then(|b| b.best_ask()).unwrap_or((0, 0));
            let (change, percent) = match s.change(3) {
                Some((diff, percent)) => {
                    (bourse_core::decimal::format_signed_units(diff, q), percent)
                }
                None => (fixed(0, q), "0.000".into()),
            };
            let weighted = super::public::average(s.quote_volume, s.volume, b).or(s.last);
            Some(json!({"e": "24hrTicker", "E": now, "s": symbol_of(m), "p": change, "P": percent,
                "w": price(weighted), "x": price(s.open), "c": price(s.last), "Q": fixed(0, b),
                "b": fixed(bid.0, q), "B": fixed(bid.1, b), "a": fixed(ask.0, q), "A": fixed(ask.1, b),
                "o": price(s.open), "h": price(s.high), "l": price(s.low),
                "v": fixed(s.volume, b), "q": fixed(s.quote_volume, q),
                "O": now - 86_400_000, "C": now, "F": -1, "L": -1, "n": s.trades}))
        });
    }
    if !minis.is_empty() {
        emit(hub, mirror, Stream::AllMiniTickers, || Some(Value::Array(minis)));
    }
}

// ---- connections ------------------------------------------------------------------------------

/// One connection's subscriptions, and whether payloads are wrapped.
#[derive(Debug)]
struct Session {
    streams: Vec<Stream>,
    combined: bool,
}

impl Session {
    fn add(&mut self, state: &Shared, client: &crate::hub::Client, stream: Stream) -> bool {
        if self.streams.contains(&stream) {
            return true;
        }
        if self.streams.len() >= state.config.limits.ws_subscriptions_max {
            return false;
        }
        state.hub.subscribe(Topic::Binance(stream, self.combined), client);
        self.streams.push(stream);
        true
    }

    fn answer(&mut self, state: &Shared, client: &crate::hub::Client, text: &str) -> Value {
        let Ok(request) = serde_json::from_str::<Value>(text) else {
            return json!({"error": {"code": 3, "msg": "Invalid JSON: expected value"}, "id": null});
        };
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let invalid = |msg: &str| json!({"error": {"code": 2, "msg": format!("Invalid request: {msg}")}, "id": id});
        let params: Vec<Value> =
            request.get("params").and_then(Value::as_array).cloned().unwrap_or_default();
        let names = || {
            params.iter().map(|p| p.as_str().unwrap_or_default().to_string()).collect::<Vec<_>>()
        };
        let parse = |names: &[String]| -> Result<Vec<Stream>, String> {
            let mirror = state.mirror.read().map_err(|_| "busy".to_string())?;
            names
                .iter()
                .map(|n| Stream::parse(n, &mirror).ok_or_else(|| format!("unknown stream '{n}'")))
                .collect()
        };
        match request.get("method").and_then(Value::as_str) {
            Some("SUBSCRIBE") => match parse(&names()) {
                Ok(streams) => {
                    for s in streams {
                        if !self.add(state, client, s) {
                            return invalid("too many subscriptions");
                        }
                    }
                    json!({"result": null, "id": id})
                }
                Err(e) => invalid(&e),
            },
            Some("UNSUBSCRIBE") => match parse(&names()) {
                Ok(streams) => {
                    for s in streams {
                        state.hub.unsubscribe(Topic::Binance(s, self.combined), client);
                        self.streams.retain(|x| *x != s);
                    }
                    json!({"result": null, "id": id})
                }
                Err(e) => invalid(&e),
            },
            Some("LIST_SUBSCRIPTIONS") => {
                let names: Vec<String> = match state.mirror.read() {
                    Ok(mirror) => self.streams.iter().map(|s| s.name(&mirror)).collect(),
                    Err(_) => Vec::new(),
                };
                json!({"result": names, "id": id})
            }
            Some("SET_PROPERTY") => match (
                params.first().and_then(Value::as_str),
                params.get(1).and_then(Value::as_bool),
            ) {
                (Some("combined"), Some(combined)) => {
                    for s in &self.streams {
                        state.hub.unsubscribe(Topic::Binance(*s, self.combined), client);
                        state.hub.subscribe(Topic::Binance(*s, combined), client);
                    }
                    self.combined = combined;
                    json!({"result": null, "id": id})
                }
                _ => invalid("SET_PROPERTY takes [\"combined\", true|false]"),
            },
            Some("GET_PROPERTY") => match params.first().and_then(Value::as_str) {
                Some("combined") => json!({"result": self.combined, "id": id}),
                _ => invalid("unknown property"),
            },
            _ => invalid("unknown method"),
        }
    }
}

/// The session and the streams it starts with.
#[derive(Debug)]
pub struct Connection {
    session: Session,
    initial: Vec<Stream>,
    /// The user whose events a legacy listen key in the URL streams.
    user: Option<bourse_core::UserId>,
}

impl Connection {
    /// A connection with no stream yet (`/ws`, whose first message was Binance's).
    pub fn empty() -> Connection {
        Connection {
            session: Session { streams: Vec::new(), combined: false },
            initial: Vec::new(),
            user: None,
        }
    }
}

/// Whether a client's message is one of Binance's control messages (`{"method": ...}`).
pub fn is_control(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .is_ok_and(|v| v.get("method").is_some() && v.get("op").is_none())
}

impl crate::ws::Session for Connection {
    fn start(&mut self, state: &Shared, client: &crate::hub::Client) {
        for stream in std::mem::take(&mut self.initial) {
            self.session.add(state, client, stream);
        }
        if let Some(user) = self.user {
            state.hub.subscribe(Topic::BinanceUser(user), client);
        }
    }

    fn handle<'a>(
        &'a mut self,
        state: &'a Shared,
        client: &'a crate::hub::Client,
        text: &'a str,
    ) -> impl std::future::Future<Output = Option<String>> + Send + 'a {
        let reply = self.session.answer(state, client, text).to_string();
        std::future::ready(Some(reply))
    }

    fn topics(&self) -> Vec<Topic> {
        let combined = self.session.combined;
        let streams = self.session.streams.iter().map(|s| Topic::Binance(*s, combined));
        streams.chain(self.user.map(Topic::BinanceUser)).collect()
    }
}

fn accept(state: Shared, ws: WebSocketUpgrade, names: &[&str], combined: bool) -> Response {
    let initial: Vec<Stream> = match state.mirror.read() {
        Ok(mirror) => names.iter().filter_map(|n| Stream::parse(n, &mirror)).collect(),
        Err(_) => Vec::new(),
    };
    // A legacy listen key streams its user's events, raw.
    let user = match names {
        [key] if !combined => super::user_data::listen_key_user(&state, key),
        _ => None,
    };
    let session = Session { streams: Vec::new(), combined };
    crate::ws::accept(state, ws, Connection { session, initial, user })
}

/// `/ws/<stream>`: raw payloads; a last segment that names no stream starts with none.
pub async fn raw(
    State(state): State<Shared>,
    Path(path): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    let names: Vec<&str> = path.split('/').collect();
    accept(state, ws, &names, false)
}

/// `/stream?streams=a/b`: payloads wrapped with their stream's name.
pub async fn combined(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let streams = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "streams")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let names: Vec<&str> = streams.split('/').filter(|s| !s.is_empty()).collect();
    accept(state, ws, &names, true)
}
