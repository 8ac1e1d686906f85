//! The WebSocket fan-out registry: which connection listens to which topic. Publishers (the
//! feed task for engine events, the projector for candles and tickers) hand it a serialized
//! message once; it is offered to every subscriber's bounded queue with `try_send`. A queue that
//! is full means a slow consumer: that connection is told to close, and nobody waits for it —
//! neither the engine, nor the publisher, nor the other clients.

use bourse_core::{MarketId, UserId};
use bourse_store::Interval;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

/// A serialized JSON text message, shared by every recipient (a clone is a reference count,
/// and the WebSocket writes it without copying).
pub type Message = axum::extract::ws::Utf8Bytes;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    Depth(MarketId),
    Trades(MarketId),
    Ticker(MarketId),
    Candles(MarketId, Interval),
    Orders(UserId),
    Fills(UserId),
    Balances(UserId),
    /// A Binance stream (`binance/streams.rs`); `true`: payloads wrapped with the stream's name.
    Binance(crate::binance::streams::Stream, bool),
    /// A user's Binance user data events (`binance/user_data.rs`), unwrapped.
    BinanceUser(UserId),
}

/// One connection's side of the hub.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: u64,
    tx: mpsc::Sender<Message>,
    /// Notified when the connection must close (slow consumer, server shutdown).
    pub kill: Arc<Notify>,
}

#[derive(Debug, Default)]
pub struct Hub {
    topics: Mutex<HashMap<Topic, HashMap<u64, Client>>>,
    next_id: AtomicU64,
    pub connections: AtomicUsize,
    pub slow_consumers_dropped: AtomicU64,
    pub messages_sent: AtomicU64,
}

impl Hub {
    /// Registers a connection with a queue of `capacity` messages.
    pub fn connect(&self, capacity: usize) -> (Client, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.connections.fetch_add(1, Ordering::Relaxed);
        (Client { id, tx, kill: Arc::new(Notify::new()) }, rx)
    }

    pub fn disconnect(&self, client: &Client, topics: impl IntoIterator<Item = Topic>) {
        if let Ok(mut map) = self.topics.lock() {
            for topic in topics {
                if let Some(subs) = map.get_mut(&topic) {
                    subs.remove(&client.id);
                    if subs.is_empty() {
                        map.remove(&topic);
                    }
                }
            }
        }
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn subscribe(&self, topic: Topic, client: &Client) {
        if let Ok(mut map) = self.topics.lock() {
            map.entry(topic).or_default().insert(client.id, client.clone());
        }
    }

    pub fn unsubscribe(&self, topic: Topic, client: &Client) {
        if let Ok(mut map) = self.topics.lock()
            && let Some(subs) = map.get_mut(&topic)
        {
            subs.remove(&client.id);
            if subs.is_empty() {
                map.remove(&topic);
            }
        }
    }

    /// True if anybody listens (publishers skip building messages nobody reads).
    pub fn has_subscribers(&self, topic: Topic) -> bool {
        self.topics.lock().map(|map| map.contains_key(&topic)).unwrap_or(false)
    }

    /// Offers `message` to every subscriber of `topic`; a full queue gets its connection
    /// closed and removed from the topic.
    pub fn publish(&self, topic: Topic, message: &Message) {
        let Ok(mut map) = self.topics.lock() else { return };
        let Some(subs) = map.get_mut(&topic) else { return };
        let mut slow = Vec::new();
        for (id, client) in subs.iter() {
            match client.tx.try_send(message.clone()) {
                Ok(()) => {
                    self.messages_sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    client.kill.notify_one();
                    slow.push(*id);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => slow.push(*id),
            }
        }
        for id in slow {
            if subs.remove(&id).is_some() {
                self.slow_consumers_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if subs.is_empty() {
            map.remove(&topic);
        }
    }

    /// Tells every connection to close (shutdown, or a gap in the feed that invalidates
    /// every client's book).
    pub fn close_all(&self) {
        if let Ok(mut map) = self.topics.lock() {
            for subs in map.values() {
                for client in subs.values() {
                    client.kill.notify_one();
                }
            }
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bourse_core::MarketId;

    #[test]
    fn a_full_queue_disconnects_only_that_client() {
        let hub = Hub::default();
        let topic = Topic::Trades(MarketId(1));
        let (slow, _slow_rx) = hub.connect(2);
        let (fast, mut fast_rx) = hub.connect(2);
        hub.subscribe(topic, &slow);
        hub.subscribe(topic, &fast);
        let message = Message::from_static("m");
        for _ in 0..5 {
            hub.publish(topic, &message);
            // The fast client keeps up; the slow one never reads.
            while fast_rx.try_recv().is_ok() {}
        }
        assert_eq!(hub.slow_consumers_dropped.load(Ordering::Relaxed), 1);
        assert!(hub.has_subscribers(topic), "the fast client is still subscribed");
        hub.publish(topic, &message);
        assert_eq!(fast_rx.try_recv().ok().as_deref(), Some("m"));
        // The slow client was told to close (a permit is stored for its connection task).
        let notified = slow.kill.notified();
        tokio::pin!(notified);
        assert!(futures_util::FutureExt::now_or_never(notified).is_some());
    }
}
