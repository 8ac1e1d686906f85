//! WebSocket `/ws`. Client → server (JSON text):
//! `{"op":"subscribe","channels":["depth:BTC-USDT","trades:BTC-USDT","ticker:BTC-USDT",
//! "candles:BTC-USDT:1m","orders","fills","balances"]}`, `{"op":"unsubscribe",...}`,
//! `{"op":"auth","api_key":K,"timestamp":T,"signature":S}` (S = hex HMAC-SHA256 of
//! `api_key=K&timestamp=T` under the key's secret; a session cookie on the upgrade request
//! authenticates too), `{"op":"ping"}`.
//! Server → client: `{"op":"subscribed"|"unsubscribed"|"authenticated"|"pong"|"error",...}`
//! and channel messages `{"channel":...}` (see `feed.rs` and `projector.rs`).
//!
//! Limits: connections per server, subscriptions and message size per connection, a bounded
//! outgoing queue (a slow reader is disconnected), a ping every 20 s and a 60 s idle timeout.

use crate::auth::{check_timestamp, session_token};
use crate::crypto;
use crate::hub::Topic;
use crate::state::Shared;
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bourse_core::UserId;
use bourse_store::{Interval, Scopes};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

const PING_EVERY: Duration = Duration::from_secs(20);
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn upgrade(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    client: Option<axum::Extension<crate::security::Client>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let ip = client.map_or(peer.ip(), |c| c.addr);
    if full(&state) {
        return too_many();
    }
    // A browser session on the upgrade request authenticates the private channels — only from
    // this site (the same-origin rule of every cookie-authenticated route): a page elsewhere that
    // gets the browser to send the cookie reads no one's orders.
    let mut user = None;
    if crate::auth::same_origin(&headers, &state.config.public_url())
        && let Some(token) = session_token(&headers)
        && let Ok(Some(session)) =
            state.store.live_session(&crypto::token_hash(&token), crate::now_ms()).await
    {
        user = Some(session.user);
    }
    accept(state, ws, Either::V1(V1 { topics: HashSet::new(), user, ip }))
}

/// `/ws` speaks this API's protocol, or — when its first message is a Binance control message
/// (`{"method":"SUBSCRIBE",...}`, as Binance clients send on a bare `/ws`) — Binance's streams.
enum Either {
    V1(V1),
    Binance(crate::binance::streams::Connection),
}

impl Session for Either {
    async fn handle(
        &mut self,
        state: &Shared,
        client: &crate::hub::Client,
        text: &str,
    ) -> Option<String> {
        if let Either::V1(v1) = self
            && v1.topics.is_empty()
            && crate::binance::streams::is_control(text)
        {
            *self = Either::Binance(crate::binance::streams::Connection::empty());
        }
        match self {
            Either::V1(v1) => v1.handle(state, client, text).await,
            Either::Binance(b) => b.handle(state, client, text).await,
        }
    }

    fn outgoing(&self, message: crate::hub::Message) -> crate::hub::Message {
        match self {
            Either::V1(v1) => v1.outgoing(message),
            Either::Binance(b) => b.outgoing(message),
        }
    }

    fn topics(&self) -> Vec<Topic> {
        match self {
            Either::V1(v1) => v1.topics(),
            Either::Binance(b) => b.topics(),
        }
    }
}

/// Whether the server holds as many WebSocket connections as it takes.
fn full(state: &Shared) -> bool {
    state.hub.connections.load(Ordering::Relaxed) >= state.config.limits.ws_connections_max
}

fn too_many() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "too many WebSocket connections").into_response()
}

/// Upgrades to a WebSocket with the server's limits (connections, message size), then
/// [`run`]s `session`.
pub fn accept<S: Session + 'static>(state: Shared, ws: WebSocketUpgrade, session: S) -> Response {
    if full(&state) {
        return too_many();
    }
    let max = state.config.limits.ws_message_bytes_max;
    // Small read buffers: the default (128 KiB, zeroed on each read) costs ~170 KB per client.
    ws.read_buffer_size(4096)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| run(state, socket, session))
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Request {
    Subscribe { channels: Vec<String> },
    Unsubscribe { channels: Vec<String> },
    Auth { api_key: String, timestamp: u64, signature: String },
    Ping,
}

/// One WebSocket protocol's side of a connection: what it does with a client's text message,
/// and which hub topics it subscribed. [`run`] does the rest (queue, pings, limits, closing),
/// the same for `/ws` and Binance's streams.
pub trait Session: Send + Sync {
    /// Subscriptions the connection starts with (e.g. streams named in the URL).
    fn start(&mut self, _state: &Shared, _client: &crate::hub::Client) {}
    /// The answer to one text message, if any.
    fn handle<'a>(
        &'a mut self,
        state: &'a Shared,
        client: &'a crate::hub::Client,
        text: &'a str,
    ) -> impl std::future::Future<Output = Option<String>> + Send + 'a;
    /// A hub message as this protocol sends it (e.g. wrapped in an envelope).
    fn outgoing(&self, message: crate::hub::Message) -> crate::hub::Message {
        message
    }
    /// What to unsubscribe when the connection ends.
    fn topics(&self) -> Vec<Topic>;
}

/// `/ws`'s session: its channels, and the user once authenticated.
struct V1 {
    topics: HashSet<Topic>,
    user: Option<UserId>,
    ip: IpAddr,
}

impl Session for V1 {
    fn handle<'a>(
        &'a mut self,
        state: &'a Shared,
        client: &'a crate::hub::Client,
        text: &'a str,
    ) -> impl std::future::Future<Output = Option<String>> + Send + 'a {
        handle(state, client, &mut self.topics, &mut self.user, self.ip, text)
    }

    fn topics(&self) -> Vec<Topic> {
        self.topics.iter().copied().collect()
    }
}

/// Serves one WebSocket connection: the hub's messages out through a bounded queue (a slow
/// reader is disconnected), the client's messages to `session`, a ping every 20 s, a close
/// after 60 s without hearing from the client or when the server stops.
pub async fn run<S: Session>(state: Shared, socket: WebSocket, mut session: S) {
    let (client, mut outgoing) = state.hub.connect(state.config.limits.ws_queue_messages);
    session.start(&state, &client);
    let (mut sink, mut stream) = socket.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut last_heard = tokio::time::Instant::now();
    let mut shutdown = state.shutdown.clone();
    // Made once, not per turn of the loop: each registration locks a shared waiter list.
    let kill = client.kill.clone();
    let killed = kill.notified();
    tokio::pin!(killed);
    let server_stopping = stopping(&mut shutdown);
    tokio::pin!(server_stopping);
    let close = |code: u16, reason: &'static str| {
        WsMessage::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }))
    };
    loop {
        tokio::select! {
            message = outgoing.recv() => {
                let Some(message) = message else { break };
                if write_queued(&mut sink, &mut outgoing, message, &session).await.is_err() {
                    break;
                }
            }
            incoming = stream.next() => {
                let Some(Ok(incoming)) = incoming else { break };
                last_heard = tokio::time::Instant::now();
                let reply = match incoming {
                    WsMessage::Text(text) => session.handle(&state, &client, text.as_str()).await,
                    WsMessage::Binary(_) => Some(error("bad_request", "send JSON text messages")),
                    WsMessage::Close(_) => break,
                    WsMessage::Ping(_) | WsMessage::Pong(_) => None,
                };
                if let Some(reply) = reply
                    && sink.send(WsMessage::Text(Utf8Bytes::from(reply))).await.is_err()
                {
                    break;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT {
                    let _ = sink.send(close(1001, "idle")).await;
                    break;
                }
                if sink.send(WsMessage::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            () = &mut killed => {
                let _ = sink.send(close(1008, "too slow or resync needed")).await;
                break;
            }
            () = &mut server_stopping => {
                let _ = sink.send(close(1001, "server shutting down")).await;
                break;
            }
        }
    }
    state.hub.disconnect(&client, session.topics());
}

/// Messages written per flush at most: a busy connection still yields to the others.
const WRITE_BATCH_MAX: usize = 256;

/// Writes `first` and whatever else is already queued, then flushes once: one system call
/// for a burst instead of one per message.
async fn write_queued<S: Session>(
    sink: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>,
    outgoing: &mut tokio::sync::mpsc::Receiver<crate::hub::Message>,
    first: crate::hub::Message,
    session: &S,
) -> Result<(), axum::Error> {
    sink.feed(WsMessage::Text(session.outgoing(first))).await?;
    for _ in 1..WRITE_BATCH_MAX {
        match outgoing.try_recv() {
            Ok(message) => sink.feed(WsMessage::Text(session.outgoing(message))).await?,
            Err(_) => break,
        }
    }
    sink.flush().await
}

async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

fn error(code: &str, message: &str) -> String {
    json!({"op": "error", "code": code, "message": message}).to_string()
}

async fn handle(
    state: &Shared,
    client: &crate::hub::Client,
    topics: &mut HashSet<Topic>,
    user: &mut Option<UserId>,
    ip: IpAddr,
    text: &str,
) -> Option<String> {
    let request: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => return Some(error("bad_request", &e.to_string())),
    };
    match request {
        Request::Ping => Some(json!({"op": "pong", "time_ms": crate::now_ms()}).to_string()),
        Request::Auth { api_key, timestamp, signature } => {
            match ws_auth(state, &api_key, timestamp, &signature, ip).await {
                Ok(u) => {
                    *user = Some(u);
                    Some(json!({"op": "authenticated", "user_id": u.0}).to_string())
                }
                Err((code, message)) => Some(error(code, message)),
            }
        }
        Request::Subscribe { channels } => {
            let mut parsed = Vec::new();
            for name in &channels {
                match parse_topic(state, name, *user) {
                    Ok(t) => parsed.push(t),
                    Err((code, message)) => {
                        return Some(error(code, &format!("{name}: {message}")));
                    }
                }
            }
            let new: HashSet<Topic> =
                parsed.iter().copied().filter(|t| !topics.contains(t)).collect();
            if topics.len() + new.len() > state.config.limits.ws_subscriptions_max {
                return Some(error("too_many_subscriptions", "subscription limit reached"));
            }
            for topic in new {
                state.hub.subscribe(topic, client);
                topics.insert(topic);
            }
            Some(json!({"op": "subscribed", "channels": channels}).to_string())
        }
        Request::Unsubscribe { channels } => {
            for name in &channels {
                if let Ok(topic) = parse_topic(state, name, *user)
                    && topics.remove(&topic)
                {
                    state.hub.unsubscribe(topic, client);
                }
            }
            Some(json!({"op": "unsubscribed", "channels": channels}).to_string())
        }
    }
}

type WsError = (&'static str, &'static str);

fn parse_topic(state: &Shared, name: &str, user: Option<UserId>) -> Result<Topic, WsError> {
    let private = |make: fn(UserId) -> Topic| {
        user.map(make).ok_or(("unauthenticated", "private channels need auth first"))
    };
    let mut parts = name.split(':');
    let channel = parts.next().unwrap_or("");
    let market = parts.next();
    let rest = parts.next();
    if parts.next().is_some() {
        return Err(("bad_channel", "unknown channel"));
    }
    let market_id = |m: Option<&str>| {
        let m = m.ok_or(("bad_channel", "this channel needs a market"))?;
        let mirror = state.mirror.read().map_err(|_| ("internal", "internal error"))?;
        mirror.market_by_symbol(m).map(|i| i.id).ok_or(("unknown_market", "no such market"))
    };
    match (channel, rest) {
        ("depth", None) => Ok(Topic::Depth(market_id(market)?)),
        ("trades", None) => Ok(Topic::Trades(market_id(market)?)),
        ("ticker", None) => Ok(Topic::Ticker(market_id(market)?)),
        ("candles", Some(i)) => {
            let interval = Interval::parse(i)
                .ok_or(("bad_interval", "interval must be 1m, 5m, 15m, 1h, 4h or 1d"))?;
            Ok(Topic::Candles(market_id(market)?, interval))
        }
        ("orders", None) if market.is_none() => private(Topic::Orders),
        ("fills", None) if market.is_none() => private(Topic::Fills),
        ("balances", None) if market.is_none() => private(Topic::Balances),
        _ => Err(("bad_channel", "unknown channel")),
    }
}

async fn ws_auth(
    state: &Shared,
    key: &str,
    timestamp: u64,
    signature: &str,
    ip: IpAddr,
) -> Result<UserId, WsError> {
    check_timestamp(timestamp, crate::now_ms(), state.config.limits.recv_window_max_ms).map_err(
        |_| ("timestamp_outside_recv_window", "timestamp is outside the receive window"),
    )?;
    let row = crate::auth::open_key(state, key, crate::now_ms()).await.map_err(|e| {
        if e.code == "invalid_api_key" {
            ("invalid_api_key", "unknown or revoked API key")
        } else {
            ("unavailable", "try again later")
        }
    })?;
    let payload = format!("api_key={key}&timestamp={timestamp}");
    if !crypto::hmac_verify(&row.secret, payload.as_bytes(), signature) {
        return Err(("invalid_signature", "signature is not valid"));
    }
    if !crate::auth::ip_allowed(&row.ip_allowlist, ip) {
        return Err(("ip_not_allowed", "this API key may not be used from this address"));
    }
    if !row.scopes.contains(Scopes::READ) {
        return Err(("missing_scope", "this API key lacks the read scope"));
    }
    Ok(row.user)
}
