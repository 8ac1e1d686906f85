//! `bourse bench api`: measures the whole server from the outside — signed REST orders over real
//! HTTP (place, then cancel what rested) from many concurrent clients, while thousands of
//! WebSocket clients listen to the market's trades. Prints figures; it is not a test and asserts
//! nothing about them.
//!
//! Without `--url` it starts a server in this process (temporary data directory, SQLite, a
//! random port and secret), creates the demo markets, funds benchmark users with deposits and
//! gives each an API key. With `--url` it drives an existing server whose users' API keys are
//! given in `BOURSE_BENCH_KEYS` (`key:secret,key:secret`); those users need funds of their own.
//!
//! Order latency is measured per request by the client (send to complete response). WebSocket
//! delivery latency is the client's wall clock on receipt minus the trade's `time_ns` (the
//! engine's timestamp, taken before the journal's fsync), for every trade every client receives.
// Floats only compute and print timing statistics (rates, milliseconds); no money goes near them.
#![allow(clippy::float_arithmetic)]

use anyhow::{Context, Result, bail};
use bourse_core::{Command, Event, ExternalKey};
use bourse_server::Server;
use bourse_server::config::Config;
use bourse_store::{NewApiKey, Scopes};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, StatusCode, header};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct ApiBenchArgs {
    /// How long the order load runs.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent REST clients, each placing and canceling orders back to back.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// WebSocket clients subscribed to the market's trades during the load.
    #[arg(long, default_value_t = 1000)]
    pub ws_clients: usize,
    /// Benchmark users (each with one API key) the clients share round-robin (in-process only).
    #[arg(long, default_value_t = 16)]
    pub users: usize,
    /// Target an existing server (e.g. `http://127.0.0.1:8080`); API keys from
    /// `BOURSE_BENCH_KEYS=key:secret,key:secret`. Default: start one in this process.
    #[arg(long)]
    pub url: Option<String>,
    /// The market to trade; prices are on a 0.01 grid around `--price`.
    #[arg(long, default_value = "BTC-USDT")]
    pub market: String,
    /// The mid price, whole quote units.
    #[arg(long, default_value_t = 65_000)]
    pub price: u64,
    /// The quantity of each order (decimal string).
    #[arg(long, default_value = "0.001")]
    pub quantity: String,
    /// Where the in-process server's temporary data directory goes (journal and SQLite
    /// database; their fsyncs are on the order path). Default: the system's temporary directory.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// The in-process server's database (e.g. `postgres://...` for an empty database, or
    /// `sqlite:///other/disk/bench.db`). Default: SQLite inside the data directory.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// The variable that holds the API keys for `--url`.
const KEYS_VAR: &str = "BOURSE_BENCH_KEYS";
/// Prices are drawn uniformly within this many ticks (0.01) of the mid, for both sides, so a
/// buy above a resting sell trades and the rest rests.
const PRICE_SPREAD_TICKS: u64 = 20;
/// A request without an answer for this long is an error (and its connection is replaced).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// WebSocket handshakes in flight at once (the listener's accept backlog is finite).
const WS_CONNECTS_PARALLEL: usize = 100;
/// Attempts per WebSocket connection before it counts as failed.
const WS_CONNECT_ATTEMPTS: u32 = 3;
/// At most this share (per mille) of WebSocket connections may fail before the bench gives up.
const WS_FAILURES_MAX_PERMILLE: usize = 10;
/// How long WebSocket clients keep listening after the load for trades still on their way.
const WS_DRAIN: Duration = Duration::from_millis(500);

#[derive(Debug, Serialize)]
struct Figures {
    /// Successful (2xx) place and cancel requests per second.
    orders_per_s: f64,
    order_p50_ms: f64,
    order_p99_ms: f64,
    order_p999_ms: f64,
    order_max_ms: f64,
    places: u64,
    cancels: u64,
    /// Cancels answered 404 unknown_order because the order had filled meanwhile (expected,
    /// neither a success nor an error).
    cancels_too_late: u64,
    /// Fills reported in place responses (a taker's view of trades).
    taker_fills: u64,
    clients: usize,
    ws_clients: usize,
    ws_connect_failures: usize,
    ws_clients_with_trades: usize,
    /// Connections that ended before the bench closed them (e.g. cut off as slow consumers).
    ws_disconnected: usize,
    ws_trades_received: u64,
    /// Trades messages received (one message may carry several trades).
    ws_messages_received: u64,
    ws_delivery_p50_ms: f64,
    ws_delivery_p99_ms: f64,
    ws_delivery_max_ms: f64,
    /// Failed requests (not 2xx, not the expected 404 of a late cancel), transport errors
    /// included.
    errors: u64,
    error_kinds: BTreeMap<String, u64>,
    /// Seconds the load actually ran (until the last request in flight at the deadline ended).
    seconds: f64,
    /// Resident memory of this process at the end (includes the server when in-process).
    rss_bytes: u64,
}

/// A log-linear histogram of non-negative integers (nanoseconds here) with about 1.6 %
/// precision: exact below 128, then 64 buckets per power of two. Lock-free, so thousands of
/// tasks record into one.
struct Histogram {
    counts: Box<[AtomicU64]>,
}

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
const EXACT: u64 = 2 * SUB;
const BUCKETS: usize = (EXACT + (64 - SUB_BITS as u64 - 1) * SUB) as usize;

impl Histogram {
    fn new() -> Histogram {
        Histogram { counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }

    fn index(v: u64) -> usize {
        if v < EXACT {
            return usize::try_from(v).unwrap_or(0);
        }
        let magnitude = u64::from(63 - v.leading_zeros());
        let shift = magnitude - u64::from(SUB_BITS);
        let sub = (v >> shift) - SUB;
        usize::try_from(EXACT + (magnitude - u64::from(SUB_BITS) - 1) * SUB + sub)
            .unwrap_or(BUCKETS - 1)
    }

    /// The middle of bucket `i`.
    fn value(i: usize) -> u64 {
        let i = i as u64;
        if i < EXACT {
            return i;
        }
        let k = i - EXACT;
        let shift = k / SUB + 1;
        let lower = (SUB + k % SUB) << shift;
        lower + (1u64 << shift) / 2
    }

    fn record(&self, v: u64) {
        if let Some(c) = self.counts.get(Self::index(v)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The value at `permille` (500 = median), or 0 for an empty histogram.
    fn quantile(&self, permille: u64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = (total * permille).div_ceil(1000).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= rank {
                return Self::value(i);
            }
        }
        0
    }

    fn max(&self) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .rev()
            .find(|(_, c)| c.load(Ordering::Relaxed) > 0)
            .map_or(0, |(i, _)| Self::value(i))
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Wall-clock nanoseconds since the Unix epoch (the engine's clock).
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The resident set size of this process, from /proc.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Raises the soft limit of open files to the hard limit; returns the limit now in force.
#[allow(unsafe_code)]
fn raise_fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct it is given, which lives on this stack frame.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Some(raised.rlim_cur);
        }
    }
    Some(limit.rlim_cur)
}

/// A small deterministic generator (prices need variety, not secrecy).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[derive(Clone, Debug)]
struct Credentials {
    key: String,
    secret: String,
}

/// `key:secret,key:secret` from `BOURSE_BENCH_KEYS`.
fn keys_from_env() -> Result<Vec<Credentials>> {
    let text = std::env::var(KEYS_VAR).map_err(|_| {
        anyhow::anyhow!(
            "--url needs API keys with the trade scope of funded users: set {KEYS_VAR}=key:secret,key:secret"
        )
    })?;
    let keys: Vec<Credentials> = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, secret) = pair
                .split_once(':')
                .with_context(|| format!("{KEYS_VAR}: {pair:?} is not key:secret"))?;
            Ok(Credentials { key: key.to_string(), secret: secret.to_string() })
        })
        .collect::<Result<_>>()?;
    if keys.is_empty() {
        bail!("{KEYS_VAR} holds no key:secret pair");
    }
    Ok(keys)
}

/// A server started in this process, with its temporary data directory.
struct Local {
    server: Server,
    _dir: tempfile::TempDir,
}

/// Starts a server on a fresh data directory, creates the demo markets and `users` funded users
/// with one trade-scope API key each.
async fn start_local(
    users: usize,
    parent: Option<&std::path::Path>,
    database_url: Option<&str>,
) -> Result<(Local, Vec<Credentials>)> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("bourse-bench-api-");
    let dir = match parent {
        Some(parent) => builder.tempdir_in(parent),
        None => builder.tempdir(),
    }
    .context("cannot create the data directory")?;
    let mut env = vec![
        ("BOURSE_SECRET_KEY".to_string(), bourse_server::crypto::random_token()?),
        ("BOURSE_DATA_DIR".to_string(), dir.path().display().to_string()),
        ("BOURSE_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        ("BOURSE_ADMIN__LISTEN".to_string(), "127.0.0.1:0".to_string()),
        // Every simulated trader calls from 127.0.0.1: the per-address API limit would
        // measure itself.
        ("BOURSE_LIMITS__API_REQUESTS_PER_S".to_string(), "1000000000".to_string()),
        ("BOURSE_LIMITS__API_BURST".to_string(), "1000000000".to_string()),
    ];
    if let Some(url) = database_url {
        env.push(("BOURSE_DATABASE_URL".to_string(), url.to_string()));
    }
    let config = Config::load(None, env)?;
    let server = Server::start(config).await.context("cannot start the server")?;
    bourse_server::demo::setup(&server.state).await.context("demo setup")?;
    let state = &server.state;
    let assets: Vec<(String, bourse_core::AssetId, u128)> = {
        let mirror = state.mirror.read().map_err(|_| anyhow::anyhow!("mirror poisoned"))?;
        // Whole units per user: far more than ten seconds of trading can move.
        [("BTC", 100_000u128), ("USDT", 10_000_000_000)]
            .iter()
            .map(|(symbol, units)| {
                let a =
                    mirror.asset_by_symbol(symbol).with_context(|| format!("no asset {symbol}"))?;
                let unit = bourse_core::decimal::pow10(a.scale).unwrap_or(1);
                Ok((symbol.to_string(), a.id, units * unit))
            })
            .collect::<Result<_>>()?
    };
    let now = bourse_server::now_ms();
    let mut credentials = Vec::with_capacity(users);
    for i in 0..users {
        // Not a password hash: these users never log in, and no password verifies against it.
        let user = state.store.create_user(&format!("bench-{i}@bourse.local"), "!", now).await?;
        state.store.set_email_verified(user).await?;
        for (symbol, asset, amount) in &assets {
            let key = ExternalKey::new(&format!("bench:{}:{symbol}", user.0))?;
            let outcome = state
                .engine
                .execute(Command::Deposit { user, asset: *asset, amount: *amount, key })
                .await?;
            if !outcome.events.iter().any(|e| matches!(e, Event::DepositCredited { .. })) {
                bail!("deposit for user {} not credited: {:?}", user.0, outcome.events);
            }
        }
        let key = bourse_server::crypto::random_token()?;
        let secret = bourse_server::crypto::random_token()?;
        let secret_sealed = state.keys.seal(secret.as_bytes())?;
        state
            .store
            .insert_api_key(&NewApiKey {
                user,
                key: key.clone(),
                secret_sealed,
                label: "bench".to_string(),
                scopes: Scopes::TRADE.union(Scopes::READ),
                ip_allowlist: Vec::new(),
                created_ms: now,
            })
            .await?;
        credentials.push(Credentials { key, secret });
    }
    Ok((Local { server, _dir: dir }, credentials))
}

/// What one REST client did.
#[derive(Debug, Default)]
struct ClientTally {
    places: u64,
    cancels: u64,
    cancels_too_late: u64,
    taker_fills: u64,
    errors: BTreeMap<String, u64>,
}

impl ClientTally {
    fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }
}

#[derive(serde::Deserialize)]
struct Placed {
    order: PlacedOrder,
    #[serde(default)]
    fills: Vec<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct PlacedOrder {
    id: u64,
    status: String,
}

/// The `code` of an error body, or the start of the body.
fn error_code(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        code: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.code,
        Err(_) => String::from_utf8_lossy(body).chars().take(60).collect(),
    }
}

/// Everything a REST client needs.
struct Load {
    /// `host:port` of the server.
    authority: String,
    market: String,
    quantity: String,
    mid_ticks: u64,
    deadline: Instant,
    latency: Histogram,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One keep-alive HTTP/1.1 connection (a client's own: no pool to share or lock).
async fn http_connect(authority: &str) -> Result<Sender> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("cannot connect to {authority}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends one signed request on `sender`: `timestamp` in the query, the hex HMAC-SHA256 of
/// query + body under the key's secret as `signature`. Returns the status and the body.
async fn signed(
    sender: &mut Sender,
    load: &Load,
    credentials: &Credentials,
    method: Method,
    path: &str,
    body: String,
) -> Result<(StatusCode, Bytes)> {
    let query = format!("timestamp={}", bourse_server::now_ms());
    let mut payload = Vec::with_capacity(query.len() + body.len());
    payload.extend_from_slice(query.as_bytes());
    payload.extend_from_slice(body.as_bytes());
    let signature = bourse_server::crypto::hmac_hex(credentials.secret.as_bytes(), &payload);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(format!("{path}?{query}&signature={signature}"))
        .header(header::HOST, &load.authority)
        .header("x-api-key", &credentials.key);
    if !body.is_empty() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request.body(Full::new(Bytes::from(body)))?;
    let exchange = async {
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, body))
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(result) => Ok(result?),
        Err(_) => bail!("no answer within {} s", REQUEST_TIMEOUT.as_secs()),
    }
}

/// One REST client: places a limit order (sides alternate, prices around the mid), and if it
/// rests, cancels it with the next request; until the deadline. A broken connection is counted
/// as an error and opened again.
async fn client(load: Arc<Load>, credentials: Credentials, seed: u64) -> ClientTally {
    let mut tally = ClientTally::default();
    let mut rng = Rng(seed);
    let mut buy = seed.is_multiple_of(2);
    let mut resting: Option<u64> = None;
    let mut connection: Option<Sender> = None;
    while Instant::now() < load.deadline {
        let sender = match connection.as_mut() {
            Some(sender) => sender,
            None => match http_connect(&load.authority).await {
                Ok(sender) => connection.insert(sender),
                Err(e) => {
                    tally.error(format!("connect: {e:#}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let started = Instant::now();
        if let Some(id) = resting.take() {
            let path = format!("/api/v1/orders/{id}");
            match signed(sender, &load, &credentials, Method::DELETE, &path, String::new()).await {
                Ok((status, _)) if status.is_success() => {
                    load.latency.record(elapsed_ns(started));
                    tally.cancels += 1;
                }
                Ok((status, body))
                    if status == StatusCode::NOT_FOUND && error_code(&body) == "unknown_order" =>
                {
                    tally.cancels_too_late += 1;
                }
                Ok((status, body)) => {
                    tally.error(format!("cancel {}: {}", status.as_u16(), error_code(&body)));
                }
                Err(e) => {
                    tally.error(format!("cancel: {e:#}"));
                    connection = None;
                }
            }
            continue;
        }
        let offset = rng.next() % (2 * PRICE_SPREAD_TICKS + 1);
        let ticks = (load.mid_ticks + offset).saturating_sub(PRICE_SPREAD_TICKS).max(1);
        let side = if buy { "buy" } else { "sell" };
        buy = !buy;
        let body = format!(
            r#"{{"market":"{}","side":"{side}","type":"limit","price":"{}.{:02}","quantity":"{}"}}"#,
            load.market,
            ticks / 100,
            ticks % 100,
            load.quantity
        );
        match signed(sender, &load, &credentials, Method::POST, "/api/v1/orders", body).await {
            Ok((status, body)) if status.is_success() => {
                load.latency.record(elapsed_ns(started));
                tally.places += 1;
                match serde_json::from_slice::<Placed>(&body) {
                    Ok(placed) => {
                        tally.taker_fills += placed.fills.len() as u64;
                        if matches!(placed.order.status.as_str(), "open" | "partially_filled") {
                            resting = Some(placed.order.id);
                        }
                    }
                    Err(e) => tally.error(format!("place: unreadable answer: {e}")),
                }
            }
            Ok((status, body)) => {
                tally.error(format!("place {}: {}", status.as_u16(), error_code(&body)));
            }
            Err(e) => {
                tally.error(format!("place: {e:#}"));
                connection = None;
            }
        }
    }
    tally
}

/// What the WebSocket clients saw.
struct WsTally {
    latency: Histogram,
    trades: AtomicU64,
    messages: AtomicU64,
    with_trades: AtomicUsize,
    disconnected: AtomicUsize,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects and subscribes to the market's trades; waits for the server's confirmation.
async fn ws_connect(url: &str, subscribe: &str) -> Result<Ws> {
    // Small buffers: thousands of connections with tungstenite's default 128 KiB each would
    // measure the client's memory, not the server.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
    ws.send(Message::Text(subscribe.into())).await?;
    let confirmed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = ws.next().await {
            if let Message::Text(text) = message? {
                if text.contains("\"subscribed\"") {
                    return Ok(());
                }
                if text.contains("\"error\"") {
                    bail!("subscription refused: {text}");
                }
            }
        }
        bail!("closed before the subscription was confirmed")
    })
    .await;
    match confirmed {
        Ok(result) => result.map(|()| ws),
        Err(_) => bail!("no subscription confirmation within 10 s"),
    }
}

async fn ws_connect_retrying(url: &str, subscribe: &str) -> Result<Ws> {
    let mut attempt = 1;
    loop {
        match ws_connect(url, subscribe).await {
            Ok(ws) => return Ok(ws),
            Err(e) if attempt >= WS_CONNECT_ATTEMPTS => return Err(e),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                attempt += 1;
            }
        }
    }
}

/// The `time_ns` values of a trades message, read without a full JSON parse (5,000 clients
/// parsing every message would take the CPU the server needs).
fn trade_times(text: &str) -> impl Iterator<Item = u64> + '_ {
    const FIELD: &str = "\"time_ns\":";
    let is_trades = text.contains("\"channel\":\"trades\"");
    text.match_indices(FIELD).filter(move |_| is_trades).filter_map(move |(at, _)| {
        let rest = text.get(at + FIELD.len()..)?;
        let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        rest.get(..end)?.parse().ok()
    })
}

/// Reads one connection until `stop`: every trade's delivery latency goes to the tally.
async fn ws_listen(mut ws: Ws, tally: Arc<WsTally>, mut stop: watch::Receiver<bool>) {
    let mut trades = 0u64;
    let mut messages = 0u64;
    loop {
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let now = now_ns();
                    let before = trades;
                    for time_ns in trade_times(&text) {
                        tally.latency.record(now.saturating_sub(time_ns));
                        trades += 1;
                    }
                    if trades > before {
                        messages += 1;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    tally.disconnected.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Some(Ok(_)) => {}
            },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    tally.trades.fetch_add(trades, Ordering::Relaxed);
    tally.messages.fetch_add(messages, Ordering::Relaxed);
    if trades > 0 {
        tally.with_trades.fetch_add(1, Ordering::Relaxed);
    }
}

pub fn run(args: &ApiBenchArgs) -> Result<()> {
    if args.clients == 0 || args.seconds == 0 {
        bail!("--clients and --seconds must be positive");
    }
    let say = |s: &str| {
        if !args.json {
            eprintln!("{s}");
        }
    };
    let fd_limit = raise_fd_limit().unwrap_or(1024);
    // Each connection is a socket here, and another in the server when it runs in-process.
    let sockets = (args.ws_clients + args.clients) as u64;
    let needed = if args.url.is_some() { sockets } else { 2 * sockets } + 200;
    if needed > fd_limit {
        bail!(
            "{} WebSocket and {} REST clients need about {needed} open files; the limit is \
             {fd_limit} (raise it with `ulimit -n`)",
            args.ws_clients,
            args.clients
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let figures = runtime.block_on(bench(args, &say))?;
    if args.json {
        println!("{}", serde_json::to_string(&figures)?);
        return Ok(());
    }
    println!(
        "orders                   {:.0} orders/s ({} places + {} cancels in {:.2} s, {} clients)",
        figures.orders_per_s, figures.places, figures.cancels, figures.seconds, figures.clients
    );
    println!(
        "order latency p50 / p99 / p99.9 / max  {:.3} / {:.3} / {:.3} / {:.3} ms",
        figures.order_p50_ms, figures.order_p99_ms, figures.order_p999_ms, figures.order_max_ms
    );
    println!(
        "late cancels (filled)    {}    taker fills {}",
        figures.cancels_too_late, figures.taker_fills
    );
    println!(
        "ws clients               {} connected ({} failed), {} got trades, {} disconnected early",
        figures.ws_clients - figures.ws_connect_failures,
        figures.ws_connect_failures,
        figures.ws_clients_with_trades,
        figures.ws_disconnected
    );
    println!(
        "ws delivery p50 / p99 / max  {:.3} / {:.3} / {:.3} ms ({} trades in {} messages)",
        figures.ws_delivery_p50_ms,
        figures.ws_delivery_p99_ms,
        figures.ws_delivery_max_ms,
        figures.ws_trades_received,
        figures.ws_messages_received
    );
    println!("errors                   {}", figures.errors);
    for (kind, count) in &figures.error_kinds {
        println!("  {count:>8}  {kind}");
    }
    println!("RSS                      {} MB", figures.rss_bytes / 1_000_000);
    Ok(())
}

async fn bench(args: &ApiBenchArgs, say: &dyn Fn(&str)) -> Result<Figures> {
    let (local, credentials, authority) = match &args.url {
        Some(url) => {
            let rest = url.strip_prefix("http://").with_context(|| {
                format!("--url {url:?}: only plain http://HOST:PORT is supported")
            })?;
            let authority = rest.split('/').next().unwrap_or(rest).to_string();
            (None, keys_from_env()?, authority)
        }
        None => {
            say(&format!("starting a server with {} funded users", args.users.max(1)));
            let (local, credentials) = start_local(
                args.users.max(1),
                args.data_dir.as_deref(),
                args.database_url.as_deref(),
            )
            .await?;
            let authority = local.server.addr.to_string();
            (Some(local), credentials, authority)
        }
    };

    // WebSocket clients first, so they hear every trade of the load.
    let ws_url = format!("ws://{authority}/ws");
    let subscribe = format!(r#"{{"op":"subscribe","channels":["trades:{}"]}}"#, args.market);
    say(&format!("connecting {} WebSocket clients", args.ws_clients));
    let connecting = Instant::now();
    let results: Vec<Result<Ws>> = futures_util::stream::iter(0..args.ws_clients)
        .map(|_| ws_connect_retrying(&ws_url, &subscribe))
        .buffer_unordered(WS_CONNECTS_PARALLEL)
        .collect()
        .await;
    let mut sockets = Vec::with_capacity(results.len());
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(ws) => sockets.push(ws),
            Err(e) => failures.push(e),
        }
    }
    let ws_connect_failures = failures.len();
    if let Some(first) = failures.first() {
        let message = format!(
            "{ws_connect_failures} of {} WebSocket clients failed to connect; the first: {first:#}",
            args.ws_clients
        );
        if ws_connect_failures * 1000 > args.ws_clients * WS_FAILURES_MAX_PERMILLE {
            bail!(message);
        }
        say(&message);
    }
    say(&format!(
        "{} WebSocket clients subscribed in {:.2} s",
        sockets.len(),
        connecting.elapsed().as_secs_f64()
    ));
    let ws_tally = Arc::new(WsTally {
        latency: Histogram::new(),
        trades: AtomicU64::new(0),
        messages: AtomicU64::new(0),
        with_trades: AtomicUsize::new(0),
        disconnected: AtomicUsize::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let listeners: Vec<_> = sockets
        .into_iter()
        .map(|ws| tokio::spawn(ws_listen(ws, ws_tally.clone(), stop_rx.clone())))
        .collect();

    // The order load.
    let load = Arc::new(Load {
        authority,
        market: args.market.clone(),
        quantity: args.quantity.clone(),
        mid_ticks: args.price.saturating_mul(100),
        deadline: Instant::now() + Duration::from_secs(args.seconds),
        latency: Histogram::new(),
    });
    say(&format!(
        "placing and canceling orders for {} s with {} clients",
        args.seconds, args.clients
    ));
    let started = Instant::now();
    let clients: Vec<_> = (0..args.clients)
        .filter_map(|i| {
            let credentials = credentials.get(i % credentials.len())?.clone();
            Some(tokio::spawn(client(load.clone(), credentials, i as u64)))
        })
        .collect();
    let mut tally = ClientTally::default();
    for handle in clients {
        let t = handle.await.context("a client task failed")?;
        tally.places += t.places;
        tally.cancels += t.cancels;
        tally.cancels_too_late += t.cancels_too_late;
        tally.taker_fills += t.taker_fills;
        for (kind, count) in t.errors {
            *tally.errors.entry(kind).or_default() += count;
        }
    }
    let elapsed = started.elapsed();

    tokio::time::sleep(WS_DRAIN).await;
    let _ = stop_tx.send(true);
    for handle in listeners {
        let _ = handle.await;
    }
    let rss = rss_bytes();
    if let Some(local) = local {
        local.server.stop().await;
    }

    let successes = tally.places + tally.cancels;
    let seconds = elapsed.as_secs_f64();
    Ok(Figures {
        orders_per_s: successes as f64 / seconds.max(1e-9),
        order_p50_ms: ms(load.latency.quantile(500)),
        order_p99_ms: ms(load.latency.quantile(990)),
        order_p999_ms: ms(load.latency.quantile(999)),
        order_max_ms: ms(load.latency.max()),
        places: tally.places,
        cancels: tally.cancels,
        cancels_too_late: tally.cancels_too_late,
        taker_fills: tally.taker_fills,
        clients: args.clients,
        ws_clients: args.ws_clients,
        ws_connect_failures,
        ws_clients_with_trades: ws_tally.with_trades.load(Ordering::Relaxed),
        ws_disconnected: ws_tally.disconnected.load(Ordering::Relaxed),
        ws_trades_received: ws_tally.trades.load(Ordering::Relaxed),
        ws_messages_received: ws_tally.messages.load(Ordering::Relaxed),
        ws_delivery_p50_ms: ms(ws_tally.latency.quantile(500)),
        ws_delivery_p99_ms: ms(ws_tally.latency.quantile(990)),
        ws_delivery_max_ms: ms(ws_tally.latency.max()),
        errors: tally.errors.values().sum(),
        error_kinds: tally.errors,
        seconds,
        rss_bytes: rss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_ordered_and_precise() {
        let mut last = 0;
        for v in (0..200).chain([1_000, 65_535, 1_000_000, 123_456_789, u64::MAX / 2, u64::MAX]) {
            let i = Histogram::index(v);
            assert!(i < BUCKETS, "{v}");
            assert!(i >= last, "{v}");
            last = i;
            let mid = Histogram::value(i);
            assert!(mid.abs_diff(v) <= v / 60 + 1, "{v} -> {mid}");
        }
        let h = Histogram::new();
        for v in 1..=1000 {
            h.record(v * 1000);
        }
        assert_eq!(h.count(), 1000);
        assert!(h.quantile(500).abs_diff(500_000) < 10_000);
        assert!(h.quantile(990).abs_diff(990_000) < 20_000);
        assert!(h.max().abs_diff(1_000_000) < 20_000);
    }

    #[test]
    fn trade_times_are_read() {
        let text = r#"{"channel":"trades","market":"BTC-USDT","trades":[{"id":1,"time_ns":17},{"id":2,"time_ns":42}]}"#;
        assert_eq!(trade_times(text).collect::<Vec<_>>(), vec![17, 42]);
        assert_eq!(trade_times(r#"{"channel":"depth","time_ns":3}"#).count(), 0);
    }
}
