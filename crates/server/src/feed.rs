//! The gateway's market-data feed: one task follows the engine's events, keeps the [`Mirror`]
//! current and turns each batch into WebSocket messages — depth diffs and trades per market,
//! orders, fills and balances per user — published through the [`Hub`]. Messages are built once
//! per batch and topic and only for topics somebody listens to.
//!
//! If the feed itself falls behind and is cut off, it rebuilds the mirror from the engine and
//! closes every WebSocket connection: their books may have missed diffs, and a client that
//! reconnects resyncs from a fresh snapshot.

use crate::hub::{Hub, Message, Topic};
use crate::mirror::Mirror;
use crate::orders;
use crate::views::{FillView, end_reason_str, side_str, signed_units, units};
use bourse_core::{Event, MarketId, Side, UserId};
use bourse_engine::EngineHandle;
use bourse_store::TradeRow;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// Reads the engine's public state into `mirror`; returns the seq to subscribe from.
pub async fn bootstrap(engine: &EngineHandle, mirror: &RwLock<Mirror>) -> Option<u64> {
    let (seq, fresh) = engine.read(Mirror::from_exchange).await.ok()?;
    if let Ok(mut m) = mirror.write() {
        *m = fresh;
    }
    Some(seq + 1)
}

/// The most engine batches merged into one round of messages.
const MERGE_BATCHES_MAX: usize = 256;

pub async fn run(
    engine: EngineHandle,
    mirror: Arc<RwLock<Mirror>>,
    hub: Arc<Hub>,
    metrics: Arc<crate::metrics::Metrics>,
    mut from: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let mut sub = match engine.subscribe(from) {
            Ok(sub) => sub,
            Err(e) => {
                tracing::info!(error = %e, "market-data feed stops");
                return;
            }
        };
        metrics.feed_live.store(true, std::sync::atomic::Ordering::Release);
        loop {
            let batch = tokio::select! {
                b = sub.recv() => b,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            let Some(batch) = batch else { break };
            let mut out = Outgoing::default();
            if let Ok(mut m) = mirror.write() {
                // Batches that queued up meanwhile make one message per topic: under load,
                // subscribers get fewer, bigger messages instead of falling behind.
                let mut next = Some(batch);
                let mut merged = 0;
                while let Some(batch) = next.take() {
                    for (seq, time_ns, events) in batch.iter() {
                        if seq <= m.seq {
                            continue;
                        }
                        m.apply(seq, events);
                        metrics.count_events(events);
                        out.collect(seq, time_ns, events, &hub);
                    }
                    merged += 1;
                    if merged < MERGE_BATCHES_MAX {
                        next = sub.try_recv();
                    }
                }
            }
            if let Ok(m) = mirror.read() {
                out.publish(&m, &hub);
            }
        }
        if engine.finished() {
            return;
        }
        metrics.feed_live.store(false, std::sync::atomic::Ordering::Release);
        tracing::warn!("market-data feed fell behind or lost the engine; rebuilding the mirror");
        hub.close_all();
        // A remote engine may be unreachable for a while: try again until it answers.
        loop {
            if let Some(next) = bootstrap(&engine, &mirror).await {
                from = next;
                // Whoever connected while the mirror was stale resyncs with the new one.
                hub.close_all();
                break;
            }
            if engine.finished() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }
}

use crate::binance::streams::{DepthDiff, TradeTick};

/// Raw material of one batch's messages, gathered under the mirror's write lock.
#[derive(Default)]
struct Outgoing {
    depth: HashMap<MarketId, DepthDiff>,
    /// Per market: (trade id, price, quantity, taker side, time ns).
    trades: HashMap<MarketId, Vec<TradeTick>>,
    /// Trades to show as fills, with the party they are for.
    fills: Vec<(UserId, TradeRow)>,
    private: Vec<(Topic, Value)>,
}

impl Outgoing {
    fn collect(&mut self, seq: u64, time_ns: u64, events: &[Event], hub: &Hub) {
        for event in events {
            match event {
                Event::BookLevelChanged { market, side, price, quantity, update_id } => {
                    let d = self.depth.entry(*market).or_default();
                    if d.first_update_id == 0 {
                        d.first_update_id = *update_id;
                    }
                    d.update_id = *update_id;
                    match side {
                        Side::Buy => d.bids.insert(*price, *quantity),
                        Side::Sell => d.asks.insert(*price, *quantity),
                    };
                }
                Event::Trade {
                    market,
                    trade,
                    price,
                    quantity,
                    taker_side,
                    maker_user,
                    taker_user,
                    ..
                } => {
                    if hub.has_subscribers(Topic::Trades(*market))
                        || crate::binance::streams::wants_trades(hub, *market)
                    {
                        self.trades.entry(*market).or_default().push((
                            trade.0,
                            *price,
                            *quantity,
                            *taker_side,
                            time_ns,
                        ));
                    }
                    // A self-trade is one fill message (shown as the taker), as in REST.
                    let parties: &[UserId] = if maker_user == taker_user {
                        &[*taker_user]
                    } else {
                        &[*maker_user, *taker_user]
                    };
                    for user in parties {
                        if hub.has_subscribers(Topic::Fills(*user))
                            && let Some(row) = orders::trade_row(event, seq, orders::ms(time_ns))
                        {
                            self.fills.push((*user, row));
                        }
                    }
                }
                Event::OrderAccepted { order, user, market, client_order_id, .. } => {
                    self.order(hub, *user, json!({"seq": seq, "order_id": order.0, "market_id": market.0,
                        "client_order_id": client_order_id.map(|c| c.to_string()), "status": "open"}));
                }
                Event::OrderPartiallyFilled { order, user, market, filled, remaining } => {
                    self.order(hub, *user, json!({"seq": seq, "order_id": order.0, "market_id": market.0,
                        "status": "partially_filled", "filled": filled.to_string(), "remaining": remaining.to_string()}));
                }
                Event::OrderFilled { order, user, market, filled } => {
                    self.order(
                        hub,
                        *user,
                        json!({"seq": seq, "order_id": order.0, "market_id": market.0,
                        "status": "filled", "filled": filled.to_string(), "remaining": "0"}),
                    );
                }
                Event::OrderEnded { order, user, market, filled, remaining, reason } => {
                    let status = if matches!(reason, bourse_core::EndReason::Canceled) {
                        "canceled"
                    } else {
                        "expired"
                    };
                    self.order(
                        hub,
                        *user,
                        json!({"seq": seq, "order_id": order.0, "market_id": market.0,
                        "status": status, "end_reason": end_reason_str(*reason),
                        "filled": filled.to_string(), "remaining": remaining.to_string()}),
                    );
                }
                Event::OrderRejected { user, market, client_order_id, reason } => {
                    self.order(hub, *user, json!({"seq": seq, "market_id": market.0,
                        "client_order_id": client_order_id.map(|c| c.to_string()), "status": "rejected",
                        "reason": reason.to_string()}));
                }
                Event::BalanceChanged { user, asset, available, locked, held }
                    if hub.has_subscribers(Topic::Balances(*user)) =>
                {
                    self.private.push((
                        Topic::Balances(*user),
                        json!({"seq": seq, "asset_id": asset.0, "available": available.to_string(),
                            "locked": locked.to_string(), "held": held.to_string()}),
                    ));
                }
                _ => {}
            }
        }
    }

    fn order(&mut self, hub: &Hub, user: UserId, value: Value) {
        if hub.has_subscribers(Topic::Orders(user)) {
            self.private.push((Topic::Orders(user), value));
        }
    }

    /// Serializes with decimal strings (the mirror knows the scales) and publishes.
    fn publish(self, mirror: &Mirror, hub: &Hub) {
        crate::binance::streams::publish_batch(hub, mirror, &self.depth, &self.trades);
        for (market, d) in self.depth {
            let topic = Topic::Depth(market);
            let Some(info) = mirror.markets.get(&market) else { continue };
            if !hub.has_subscribers(topic) {
                continue;
            }
            let (b, q) = (info.base.scale, info.quote.scale);
            let levels = |side: &BTreeMap<u128, u128>, best_first_desc: bool| -> Vec<[String; 2]> {
                let it: Box<dyn Iterator<Item = (&u128, &u128)>> = if best_first_desc {
                    Box::new(side.iter().rev())
                } else {
                    Box::new(side.iter())
                };
                it.map(|(p, v)| [units(*p, q), units(*v, b)]).collect()
            };
            let message = json!({
                "channel": "depth",
                "market": info.symbol,
                "first_update_id": d.first_update_id,
                "update_id": d.update_id,
                "bids": levels(&d.bids, true),
                "asks": levels(&d.asks, false),
            });
            hub.publish(topic, &Message::from(message.to_string()));
        }
        for (market, trades) in self.trades {
            if !hub.has_subscribers(Topic::Trades(market)) {
                continue;
            }
            let Some(info) = mirror.markets.get(&market) else { continue };
            let (b, q) = (info.base.scale, info.quote.scale);
            let list: Vec<Value> = trades
                .iter()
                .map(|(id, price, quantity, side, time_ns)| {
                    json!({"id": id, "price": units(*price, q), "quantity": units(*quantity, b),
                        "taker_side": side_str(*side), "time_ms": time_ns / 1_000_000, "time_ns": time_ns})
                })
                .collect();
            let message = json!({"channel": "trades", "market": info.symbol, "trades": list});
            hub.publish(Topic::Trades(market), &Message::from(message.to_string()));
        }
        for (user, row) in self.fills {
            if let Some(fill) = FillView::new(&row, user, mirror) {
                let message = json!({"channel": "fills", "data": fill});
                hub.publish(Topic::Fills(user), &Message::from(message.to_string()));
            }
        }
        for (topic, mut value) in self.private {
            let channel = match topic {
                Topic::Orders(_) => "orders",
                Topic::Balances(_) => "balances",
                _ => continue,
            };
            localize(&mut value, mirror);
            let message = json!({"channel": channel, "data": value});
            hub.publish(topic, &Message::from(message.to_string()));
        }
    }
}

/// Rewrites raw minor-unit strings and ids into decimal strings and symbols.
fn localize(value: &mut Value, mirror: &Mirror) {
    let Some(obj) = value.as_object_mut() else { return };
    let market = obj
        .get("market_id")
        .and_then(Value::as_u64)
        .and_then(|id| u32::try_from(id).ok())
        .and_then(|id| mirror.markets.get(&MarketId(id)));
    if let Some(m) = market {
        obj.insert("market".into(), Value::String(m.symbol.clone()));
        for key in ["filled", "remaining"] {
            if let Some(raw) =
                obj.get(key).and_then(Value::as_str).and_then(|s| s.parse::<u128>().ok())
            {
                obj.insert(key.into(), Value::String(units(raw, m.base.scale)));
            }
        }
    }
    let asset = obj
        .get("asset_id")
        .and_then(Value::as_u64)
        .and_then(|id| u32::try_from(id).ok())
        .and_then(|id| mirror.assets.get(&bourse_core::AssetId(id)));
    if let Some(a) = asset {
        obj.insert("asset".into(), Value::String(a.symbol.clone()));
        for key in ["available", "locked", "held"] {
            if let Some(raw) =
                obj.get(key).and_then(Value::as_str).and_then(|s| s.parse::<i128>().ok())
            {
                obj.insert(key.into(), Value::String(signed_units(raw, a.scale)));
            }
        }
    }
}
