//! Binance's user data stream: `executionReport` for every change of an order,
//! `outboundAccountPosition` for the balances a command changed, `balanceUpdate` for deposits,
//! withdrawals and adjustments. Two ways in:
//!
//! - the WebSocket API `/ws-api/v3` (current clients): `userDataStream.subscribe.signature`
//!   with `apiKey`, `timestamp`, `recvWindow` and `signature` (HMAC-SHA256 of the other params
//!   sorted by name, `k=v&...`), events pushed as `{"subscriptionId": N, "event": {...}}`;
//!   `userDataStream.unsubscribe` ends it (answered `{}`; no `eventStreamTerminated` event);
//! - the legacy listen key: `POST /api/v3/userDataStream` (API key header only) gives the
//!   user's key (the live one if there is one), whose events `/ws/<listenKey>` streams raw;
//!   `PUT` keeps it alive for 60 minutes, `DELETE` drops it. Keys live in memory: after a
//!   restart a client asks for a new one (`-1125`).
//!
//! The projector builds the events from the order rows it keeps ([`Collector`]) for users with
//! a listener (every user when it relays them to other processes), renders them ([`render`])
//! and publishes them after its commit ([`publish_rendered`], through `relay::publish`).

use super::error::{BinanceError, BinanceResult};
use super::{fixed, symbol_of};
use crate::hub::{Hub, Message, Topic};
use crate::mirror::Mirror;
use crate::state::Shared;
use axum::Json;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bourse_core::{AssetId, EndReason, Event, OrderId, Side, UserId, WithdrawalState};
use bourse_store::{OrderRow, Scopes};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// What a user hears about, before it is written with symbols and scales.
#[derive(Debug)]
pub enum UserEvent {
    /// An order changed: `exec` is Binance's execution type; `fill` the trade that did it.
    Execution { row: Box<OrderRow>, exec: &'static str, fill: Option<Fill>, time_ms: i64 },
    /// Balances a command changed: asset → (available, locked + held).
    Position { user: UserId, assets: BTreeMap<AssetId, (i128, i128)>, time_ms: i64 },
    /// Money in or out of the account (deposit, withdrawal, adjustment).
    Balance { user: UserId, asset: AssetId, delta: i128, time_ms: i64 },
}

/// One fill of an order: price, quantity, the owner's fee, trade id, whether it was the maker.
#[derive(Clone, Copy, Debug)]
pub struct Fill {
    pub price: u128,
    pub quantity: u128,
    pub fee: u128,
    pub trade: u64,
    pub maker: bool,
}

/// Gathers the user events of a projector step, for users somebody listens for (in this
/// process, or for every user when the step is relayed to gateways in other processes).
#[derive(Debug)]
pub struct Collector<'a> {
    hub: &'a Hub,
    everyone: bool,
    fills: HashMap<OrderId, Fill>,
    positions: HashMap<UserId, BTreeMap<AssetId, (i128, i128)>>,
    pub events: Vec<UserEvent>,
}

impl<'a> Collector<'a> {
    pub fn new(hub: &'a Hub, everyone: bool) -> Collector<'a> {
        Collector {
            hub,
            everyone,
            fills: HashMap::new(),
            positions: HashMap::new(),
            events: Vec::new(),
        }
    }

    fn listened(&self, user: UserId) -> bool {
        self.everyone || self.hub.has_subscribers(Topic::BinanceUser(user))
    }

    /// An event before the order rows apply it.
    pub fn event(&mut self, event: &Event, time_ms: i64) {
        match event {
            Event::Trade {
                trade,
                price,
                quantity,
                maker_order,
                maker_user,
                maker_fee,
                taker_order,
                taker_user,
                taker_fee,
                ..
            } => {
                let fill = |fee, maker| Fill {
                    price: *price,
                    quantity: *quantity,
                    fee,
                    trade: trade.0,
                    maker,
                };
                if self.listened(*maker_user) {
                    self.fills.insert(*maker_order, fill(*maker_fee, true));
                }
                if self.listened(*taker_user) {
                    self.fills.insert(*taker_order, fill(*taker_fee, false));
                }
            }
            Event::BalanceChanged { user, asset, available, locked, held }
                if self.listened(*user) =>
            {
                let position = (*available, locked.saturating_add(*held));
                self.positions.entry(*user).or_default().insert(*asset, position);
            }
            Event::DepositCredited { user, asset, amount, .. } => {
                self.balance(*user, *asset, i128::try_from(*amount).unwrap_or(i128::MAX), time_ms);
            }
            Event::DepositReversed { user, asset, amount, .. } => {
                self.balance(*user, *asset, -i128::try_from(*amount).unwrap_or(i128::MAX), time_ms);
            }
            Event::BalanceAdjusted { user, asset, delta, .. } => {
                self.balance(*user, *asset, *delta, time_ms);
            }
            Event::WithdrawalChanged { user, asset, amount, fee, state, .. } => {
                let total = i128::try_from(amount.saturating_add(*fee)).unwrap_or(i128::MAX);
                match state {
                    WithdrawalState::Held => self.balance(*user, *asset, -total, time_ms),
                    WithdrawalState::Failed { .. } => self.balance(*user, *asset, total, time_ms),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn balance(&mut self, user: UserId, asset: AssetId, delta: i128, time_ms: i64) {
        if self.listened(user) {
            self.events.push(UserEvent::Balance { user, asset, delta, time_ms });
        }
    }

    /// An order's row after `event` applied to it.
    pub fn order(&mut self, event: &Event, row: &OrderRow, time_ms: i64) {
        if !self.listened(row.user) {
            return;
        }
        let (exec, fill) = match event {
            Event::OrderAccepted { .. } => ("NEW", None),
            Event::OrderPartiallyFilled { .. } | Event::OrderFilled { .. } => {
                ("TRADE", self.fills.get(&row.id).copied())
            }
            Event::OrderEnded { reason: EndReason::Canceled, .. } => ("CANCELED", None),
            Event::OrderEnded { .. } => ("EXPIRED", None),
            _ => return,
        };
        let row = Box::new(row.clone());
        self.events.push(UserEvent::Execution { row, exec, fill, time_ms });
    }

    /// The end of one command: the balances it changed, one message per user.
    pub fn end_command(&mut self, time_ms: i64) {
        for (user, assets) in self.positions.drain() {
            self.events.push(UserEvent::Position { user, assets, time_ms });
        }
        self.fills.clear();
    }
}

fn execution_report(
    row: &OrderRow,
    exec: &str,
    fill: Option<Fill>,
    time_ms: i64,
    mirror: &Mirror,
) -> Option<Value> {
    let m = mirror.markets.get(&row.market)?;
    let (b, q) = (m.base.scale, m.quote.scale);
    let f = fill.unwrap_or(Fill { price: 0, quantity: 0, fee: 0, trade: 0, maker: false });
    let canceled = exec == "CANCELED";
    let client_id = row.client_order_id.clone().unwrap_or_default();
    Some(json!({
        "e": "executionReport", "E": crate::now_ms(), "s": symbol_of(m),
        // On a cancel Binance puts the cancel's own id in `c` and the order's in `C`.
        "c": if canceled { String::new() } else { client_id.clone() },
        "S": if row.side == Side::Buy { "BUY" } else { "SELL" },
        "o": super::trading::type_of(row), "f": super::trading::time_in_force_of(row),
        "q": fixed(row.quantity.unwrap_or(row.filled), b), "p": fixed(row.price.unwrap_or(0), q),
        "P": fixed(0, q), "F": fixed(0, b), "g": -1,
        "C": if canceled { client_id } else { String::new() },
        "x": exec, "X": super::trading::status_of(row), "r": "NONE", "i": row.id.0,
        "l": fixed(f.quantity, b), "z": fixed(row.filled, b), "L": fixed(f.price, q),
        "n": fixed(f.fee, q), "N": if fill.is_some() { json!(m.quote.symbol) } else { Value::Null },
        "T": time_ms, "t": if fill.is_some() { json!(f.trade) } else { json!(-1) },
        "I": 0, "w": row.status.is_open(), "m": f.maker, "M": false, "O": row.created_ms,
        "Z": fixed(row.filled_quote, q), "Y": fixed(f.price.saturating_mul(f.quantity) / bourse_core::decimal::pow10(b).unwrap_or(1), q),
        "Q": fixed(row.quote_amount.unwrap_or(0), q), "W": row.created_ms,
        "V": super::trading::stp_name(row.stp),
    }))
}

/// After the projector's commit (in its process, or relayed to another): each rendered event to
/// its user's listeners in this process.
pub fn publish_rendered(hub: &Hub, rendered: Vec<(UserId, String)>) {
    for (user, text) in rendered {
        let topic = Topic::BinanceUser(user);
        if hub.has_subscribers(topic) {
            hub.publish(topic, &Message::from(text));
        }
    }
}

/// Each event as its user's JSON message.
pub fn render(mirror: &Mirror, events: Vec<UserEvent>) -> Vec<(UserId, String)> {
    let mut rendered = Vec::with_capacity(events.len());
    for event in events {
        let (user, value) = match event {
            UserEvent::Execution { row, exec, fill, time_ms } => {
                let Some(v) = execution_report(&row, exec, fill, time_ms, mirror) else { continue };
                (row.user, v)
            }
            UserEvent::Position { user, assets, time_ms } => {
                let balances: Vec<Value> = assets
                    .iter()
                    .filter_map(|(asset, (free, locked))| {
                        let a = mirror.assets.get(asset)?;
                        let units = |v: i128| fixed(u128::try_from(v.max(0)).unwrap_or(0), a.scale);
                        Some(json!({"a": a.symbol, "f": units(*free), "l": units(*locked)}))
                    })
                    .collect();
                let v = json!({"e": "outboundAccountPosition", "E": crate::now_ms(), "u": time_ms, "B": balances});
                (user, v)
            }
            UserEvent::Balance { user, asset, delta, time_ms } => {
                let Some(a) = mirror.assets.get(&asset) else { continue };
                let d = bourse_core::decimal::format_signed_units(delta, a.scale);
                (
                    user,
                    json!({"e": "balanceUpdate", "E": crate::now_ms(), "a": a.symbol, "d": d, "T": time_ms}),
                )
            }
        };
        rendered.push((user, value.to_string()));
    }
    rendered
}

// ---- the WebSocket API ---------------------------------------------------------------------------

/// A `/ws-api/v3` connection: at most one user data subscription.
struct WsApi {
    ip: std::net::IpAddr,
    subscription: Option<(u64, UserId)>,
    next_id: u64,
}

fn ws_error(id: &Value, status: u16, e: &BinanceError) -> Value {
    json!({"id": id, "status": status, "error": {"code": e.code, "msg": e.msg}})
}

impl WsApi {
    async fn answer(&mut self, state: &Shared, client: &crate::hub::Client, text: &str) -> Value {
        let Ok(request) = serde_json::from_str::<Value>(text) else {
            let e = BinanceError::bad(-1000, "Invalid JSON.");
            return ws_error(&Value::Null, 400, &e);
        };
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let params = request.get("params").cloned().unwrap_or(Value::Null);
        match request.get("method").and_then(Value::as_str) {
            Some("ping") => json!({"id": id, "status": 200, "result": {}}),
            Some("time") => {
                json!({"id": id, "status": 200, "result": {"serverTime": crate::now_ms()}})
            }
            Some("userDataStream.subscribe.signature") => {
                if self.subscription.is_some() {
                    let e = BinanceError::bad(
                        -1000,
                        "This connection already has a user data subscription.",
                    );
                    return ws_error(&id, 400, &e);
                }
                match signed_user(state, &params, self.ip).await {
                    Ok(user) => {
                        let sub = self.next_id;
                        self.next_id += 1;
                        state.hub.subscribe(Topic::BinanceUser(user), client);
                        self.subscription = Some((sub, user));
                        json!({"id": id, "status": 200, "result": {"subscriptionId": sub}})
                    }
                    Err(e) => {
                        let status = e.status.as_u16();
                        ws_error(&id, status, &e)
                    }
                }
            }
            Some("userDataStream.unsubscribe") => {
                if let Some((_, user)) = self.subscription.take() {
                    state.hub.unsubscribe(Topic::BinanceUser(user), client);
                }
                json!({"id": id, "status": 200, "result": {}})
            }
            _ => ws_error(&id, 400, &BinanceError::bad(-1000, "Unknown method.")),
        }
    }
}

/// The user of a key that may read from `ip` (Binance's `-2015` otherwise).
fn readable(row: &crate::state::CachedKey, ip: std::net::IpAddr) -> BinanceResult<UserId> {
    if !crate::auth::ip_allowed(&row.ip_allowlist, ip) || !row.scopes.contains(Scopes::READ) {
        return Err(BinanceError::new(
            StatusCode::UNAUTHORIZED,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ));
    }
    Ok(row.user)
}

/// The user of a `userDataStream.subscribe.signature` request: its key, timestamp window and
/// signature (over the other params sorted by name), the key's IP allowlist and read scope.
async fn signed_user(
    state: &Shared,
    params: &Value,
    ip: std::net::IpAddr,
) -> BinanceResult<UserId> {
    let Some(object) = params.as_object() else { return Err(BinanceError::mandatory("apiKey")) };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let sorted: BTreeMap<&str, String> = object
        .iter()
        .filter(|(k, _)| *k != "signature")
        .map(|(k, v)| (k.as_str(), text(v)))
        .collect();
    let key = sorted.get("apiKey").cloned().ok_or_else(|| BinanceError::mandatory("apiKey"))?;
    let signature = object
        .get("signature")
        .and_then(Value::as_str)
        .ok_or_else(|| BinanceError::mandatory("signature"))?;
    let timestamp = sorted
        .get("timestamp")
        .and_then(|t| t.parse::<u64>().ok())
        .ok_or_else(|| BinanceError::mandatory("timestamp"))?;
    let window = match sorted.get("recvWindow") {
        Some(w) => w
            .split('.')
            .next()
            .and_then(|w| w.parse::<u64>().ok())
            .ok_or_else(|| BinanceError::illegal("recvWindow", "0^60000"))?,
        None => state.config.limits.recv_window_default_ms,
    };
    if window > state.config.limits.recv_window_max_ms {
        return Err(BinanceError::bad(-1131, "recvWindow must be less than 60000"));
    }
    crate::auth::check_timestamp(timestamp, crate::now_ms(), window)?;
    let row = crate::auth::open_key(state, &key, crate::now_ms()).await?;
    let payload: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !crate::crypto::hmac_verify(&row.secret, payload.join("&").as_bytes(), signature) {
        return Err(BinanceError::bad(-1022, "Signature for this request is not valid."));
    }
    readable(&row, ip)
}

impl crate::ws::Session for WsApi {
    async fn handle(
        &mut self,
        state: &Shared,
        client: &crate::hub::Client,
        text: &str,
    ) -> Option<String> {
        Some(self.answer(state, client, text).await.to_string())
    }

    fn outgoing(&self, message: Message) -> Message {
        match self.subscription {
            Some((sub, _)) => {
                Message::from(format!("{{\"subscriptionId\":{sub},\"event\":{message}}}"))
            }
            None => message,
        }
    }

    fn topics(&self) -> Vec<Topic> {
        self.subscription.iter().map(|(_, user)| Topic::BinanceUser(*user)).collect()
    }
}

/// `/ws-api/v3`.
pub async fn ws_api(
    State(state): State<Shared>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    client: Option<axum::Extension<crate::security::Client>>,
    ws: WebSocketUpgrade,
) -> Response {
    let ip = client.map_or(peer.ip(), |c| c.addr);
    crate::ws::accept(state, ws, WsApi { ip, subscription: None, next_id: 0 })
}

// ---- listen keys ----------------------------------------------------------------------------------

/// How long a listen key lives without a keep-alive.
const LISTEN_KEY_TTL_MS: i64 = 60 * 60_000;
/// Listen keys kept at most (expired ones are dropped first).
const LISTEN_KEYS_MAX: usize = 10_000;

/// The user of the request's `X-MBX-APIKEY` (no signature: Binance's USER_STREAM security).
async fn key_user(
    state: &Shared,
    headers: &HeaderMap,
    ip: std::net::IpAddr,
) -> BinanceResult<UserId> {
    let key = headers.get("x-mbx-apikey").and_then(|v| v.to_str().ok()).ok_or_else(|| {
        BinanceError::new(StatusCode::UNAUTHORIZED, -2014, "API-key format invalid.")
    })?;
    let row = crate::auth::open_key(state, key, crate::now_ms()).await?;
    readable(&row, ip)
}

fn client_ip(client: Option<axum::Extension<crate::security::Client>>) -> std::net::IpAddr {
    client.map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.addr)
}

/// `POST /api/v3/userDataStream`.
pub async fn create_listen_key(
    State(state): State<Shared>,
    client: Option<axum::Extension<crate::security::Client>>,
    headers: HeaderMap,
) -> BinanceResult<Json<Value>> {
    let user = key_user(&state, &headers, client_ip(client)).await?;
    let now = crate::now_ms();
    let mut keys = state.listen_keys.lock().map_err(|_| BinanceError::bad(-1000, "busy"))?;
    // As on Binance: a user with a live key gets it back, kept alive (one key per user, so no
    // user can fill the table).
    if let Some((key, (_, expires))) =
        keys.iter_mut().find(|(_, (owner, expires))| *owner == user && *expires > now)
    {
        *expires = now + LISTEN_KEY_TTL_MS;
        return Ok(Json(json!({ "listenKey": key })));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| BinanceError::bad(-1000, "no randomness"))?;
    let key = hex::encode(bytes);
    if keys.len() >= LISTEN_KEYS_MAX {
        keys.retain(|_, (_, expires)| *expires > now);
    }
    if keys.len() >= LISTEN_KEYS_MAX {
        return Err(BinanceError::new(
            StatusCode::TOO_MANY_REQUESTS,
            -1003,
            "Too many listen keys.",
        ));
    }
    keys.insert(key.clone(), (user, now + LISTEN_KEY_TTL_MS));
    Ok(Json(json!({ "listenKey": key })))
}

/// `PUT` (keep alive) and `DELETE` `/api/v3/userDataStream?listenKey=`.
async fn touch_listen_key(
    state: &Shared,
    client: Option<axum::Extension<crate::security::Client>>,
    headers: &HeaderMap,
    query: Option<String>,
    delete: bool,
) -> BinanceResult<Json<Value>> {
    let user = key_user(state, headers, client_ip(client)).await?;
    let params = super::params::Params::parse(query.as_deref(), b"");
    let key = params.required("listenKey")?;
    let now = crate::now_ms();
    let mut keys = state.listen_keys.lock().map_err(|_| BinanceError::bad(-1000, "busy"))?;
    match keys.get_mut(key) {
        Some((owner, expires)) if *owner == user && *expires > now => {
            if delete {
                keys.remove(key);
            } else {
                *expires = now + LISTEN_KEY_TTL_MS;
            }
            Ok(Json(json!({})))
        }
        _ => Err(BinanceError::bad(-1125, "This listenKey does not exist.")),
    }
}

pub async fn keep_alive_listen_key(
    State(state): State<Shared>,
    client: Option<axum::Extension<crate::security::Client>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> BinanceResult<Json<Value>> {
    touch_listen_key(&state, client, &headers, query, false).await
}

pub async fn delete_listen_key(
    State(state): State<Shared>,
    client: Option<axum::Extension<crate::security::Client>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> BinanceResult<Json<Value>> {
    touch_listen_key(&state, client, &headers, query, true).await
}

/// The user a live listen key streams for.
pub fn listen_key_user(state: &Shared, key: &str) -> Option<UserId> {
    let keys = state.listen_keys.lock().ok()?;
    keys.get(key).filter(|(_, expires)| *expires > crate::now_ms()).map(|(user, _)| *user)
}
