//! What the projector publishes after each commit, and how processes without the worker hear
//! it. In its own process the projector publishes straight to the hub ([`publish`]). When the
//! worker runs apart from the gateway or the admin app (a split deployment), each projector
//! step also commits a relay row with its read models (`Store::apply_projection`): the step's
//! candles and every user's Binance events, rendered. A gateway or admin app in another
//! process follows those rows ([`follow`]): it advances its `projected` seq (private reads
//! wait on it), keeps its tickers and publishes to its own WebSocket subscribers, in commit
//! order. Rows are pruned after [`KEEP_MS`]; a follower that finds a gap reloads its tickers
//! from the read models and goes on.

use crate::hub::{Hub, Message, Topic};
use crate::mirror::Mirror;
use crate::ticker::Tickers;
use crate::views::CandleView;
use bourse_core::{MarketId, UserId};
use bourse_store::{CandleRow, Interval, NewRelay, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Relay rows are kept this long.
pub const KEEP_MS: i64 = 120_000;
/// The worker prunes older rows this often.
pub const PRUNE_EVERY_MS: i64 = 10_000;
/// Rows read per poll.
const READ_MAX: u32 = 256;
/// The pause between polls while the engine is ahead of the read models: a client that placed
/// an order waits about this long for its next private read.
const POLL_FAST: Duration = Duration::from_millis(5);
/// The pause otherwise (and once the read models have not moved for [`FAST_FOR`]: the worker
/// may be down).
const POLL_SLOW: Duration = Duration::from_millis(250);
const FAST_FOR: Duration = Duration::from_secs(2);

/// A relay row's body as written.
#[derive(Serialize)]
struct BodyRef<'a> {
    candles: &'a [CandleRow],
    users: &'a [(UserId, String)],
}

/// A relay row's body as read.
#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    candles: Vec<CandleRow>,
    #[serde(default)]
    users: Vec<(UserId, String)>,
}

/// The relay row of a step: its candles and its users' rendered events.
pub fn encode(candles: &[CandleRow], users: &[(UserId, String)], now_ms: i64) -> NewRelay {
    let body = serde_json::to_string(&BodyRef { candles, users }).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode a relay row; its publications are lost");
        String::from("{}")
    });
    NewRelay { created_ms: now_ms, body }
}

/// After a step's commit: its minute candles into the tickers, then candle and ticker updates
/// and the users' events to this process's WebSocket subscribers.
pub fn publish(
    hub: &Hub,
    mirror: &RwLock<Mirror>,
    tickers: &Mutex<Tickers>,
    candles: &[CandleRow],
    users: Vec<(UserId, String)>,
) {
    crate::binance::user_data::publish_rendered(hub, users);
    if candles.is_empty() {
        return;
    }
    if let Ok(mut t) = tickers.lock() {
        for c in candles.iter().filter(|c| c.interval == Interval::M1) {
            t.record(c);
        }
    }
    let Ok(mirror) = mirror.read() else { return };
    let now = crate::now_ms();
    let mut markets: Vec<MarketId> = candles.iter().map(|c| c.market).collect();
    markets.sort_unstable();
    markets.dedup();
    for c in candles {
        let topic = Topic::Candles(c.market, c.interval);
        if !hub.has_subscribers(topic) {
            continue;
        }
        let Some(info) = mirror.markets.get(&c.market) else { continue };
        let message = serde_json::json!({
            "channel": "candles",
            "market": info.symbol,
            "interval": c.interval.as_str(),
            "candle": CandleView::new(c, info),
        });
        hub.publish(topic, &Message::from(message.to_string()));
    }
    let Ok(tickers) = tickers.lock() else { return };
    crate::binance::streams::publish_candles(hub, &mirror, &tickers, candles);
    for market in markets {
        let topic = Topic::Ticker(market);
        if !hub.has_subscribers(topic) {
            continue;
        }
        if let Some(view) = tickers.view(market, now, &mirror) {
            let message = serde_json::json!({ "channel": "ticker", "ticker": view });
            hub.publish(topic, &Message::from(message.to_string()));
        }
    }
}

/// What a process without the worker keeps current from the relay.
#[derive(Debug)]
pub struct Follower {
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub mirror: Arc<RwLock<Mirror>>,
    pub tickers: Arc<Mutex<Tickers>>,
    pub projected: watch::Sender<u64>,
}

impl Follower {
    /// Follows the relay until `shutdown` turns true: quickly while the engine (as the mirror
    /// knows it) is ahead of the read models, slowly otherwise.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        // None: (re)load the tickers and start from the read models' cursor.
        let mut cursor: Option<u64> = None;
        let mut behind_since: Option<Instant> = None;
        let mut warned = false;
        loop {
            let progressed = match self.step(&mut cursor, &mut warned).await {
                Ok(progressed) => progressed,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot follow the worker's relay; retrying");
                    cursor = None;
                    false
                }
            };
            let engine = self.mirror.read().map(|m| m.seq).unwrap_or(0);
            let behind = cursor.is_some_and(|c| c < engine);
            behind_since = match (behind, behind_since) {
                (false, _) => None,
                (true, Some(since)) if !progressed => Some(since),
                (true, _) => Some(Instant::now()),
            };
            let fast = behind_since.is_some_and(|since| since.elapsed() < FAST_FOR);
            let pause = if fast { POLL_FAST } else { POLL_SLOW };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    /// One poll; `true` when the cursor moved.
    async fn step(&self, cursor: &mut Option<u64>, warned: &mut bool) -> Result<bool, StoreError> {
        let Some(mut at) = *cursor else {
            // The cursor first: candles committed after it are recorded again from the relay,
            // which a ticker takes as the same minute updated.
            let seq = self.store.projected_seq().await?;
            let latest = self.store.latest_candles().await?;
            crate::ticker::load(self.store.as_ref(), &latest, &self.tickers).await?;
            *cursor = Some(seq);
            self.projected.send_replace(seq);
            return Ok(true);
        };
        // The cursor before the rows: a relay row commits with the cursor it moves.
        let projected = self.store.projected_seq().await?;
        let rows = self.store.relay_after(at, READ_MAX).await?;
        if rows.is_empty() {
            if projected <= at {
                return Ok(false);
            }
            // Steps without relay rows: the worker runs in a process with the gateway and the
            // admin app, and writes none. Private reads still see their writes; this process's
            // streams miss the projector's publications.
            if !*warned {
                tracing::warn!(
                    "the worker writes no relay: run it in a process without the gateway or \
                     the admin app, or candles, tickers and Binance user data do not reach \
                     this process"
                );
                *warned = true;
            }
            *cursor = Some(projected);
            self.projected.send_replace(projected);
            return Ok(true);
        }
        for row in rows {
            if row.from_seq != at + 1 {
                tracing::warn!(
                    expected = at + 1,
                    found = row.from_seq,
                    "relay rows were pruned before this process read them; reloading tickers"
                );
                *cursor = None;
                return Ok(true);
            }
            at = row.to_seq;
            *cursor = Some(at);
            self.projected.send_replace(at);
            match serde_json::from_str::<Body>(&row.body) {
                Ok(body) => {
                    publish(&self.hub, &self.mirror, &self.tickers, &body.candles, body.users)
                }
                Err(e) => {
                    tracing::error!(error = %e, to_seq = row.to_seq, "an unreadable relay row")
                }
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_body_reads_back_what_was_written() {
        let candle = CandleRow {
            market: MarketId(3),
            interval: Interval::M5,
            open_ms: 300_000,
            open: u128::MAX,
            high: 7,
            low: 1,
            close: 2,
            volume: 10,
            quote_volume: 20,
            trades: 4,
        };
        let users = vec![(UserId(9), String::from(r#"{"e":"executionReport"}"#))];
        let row = encode(std::slice::from_ref(&candle), &users, 42);
        assert_eq!(row.created_ms, 42);
        let body: Body = serde_json::from_str(&row.body).unwrap();
        assert_eq!(body.candles, vec![candle]);
        assert_eq!(body.users, users);
        let empty: Body = serde_json::from_str("{}").unwrap();
        assert!(empty.candles.is_empty() && empty.users.is_empty());
    }
}
