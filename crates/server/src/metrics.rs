//! Prometheus metrics, in the text exposition format, at `/metrics` on the admin listener
//! (behind its IP allowlist, without a login: for a scraper on the same machine or network).
//!
//! What the server counts itself lives here in memory: HTTP requests by route and status with
//! their latency (reported by `observe.rs`), engine commands submitted by the APIs with the
//! time to their durable outcome, and orders, rejections and trades per market (counted by the
//! feed). The rest is read when scraped: the engine's sequence, batches and snapshot, its own
//! histograms (commands per group commit, journal commit time) and commands applied, projector
//! lag, WebSocket clients and dropped slow consumers, the mail outbox, and each coin node's
//! height, hot wallet, what users are owed and the last reconciliation. Latencies are kept in
//! integer microseconds (the engine's in nanoseconds); amounts are written as the decimal text
//! they are.

use crate::state::Shared;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bourse_core::MarketId;
use bourse_core::decimal::{format_units, format_units_trimmed};
use bourse_engine::HistogramSnapshot;
use std::collections::BTreeMap;
use std::fmt::{Display, Write};
use std::sync::Mutex;
use std::time::Instant;

/// Histogram bucket bounds in microseconds, and the same as Prometheus `le` labels (seconds).
const BUCKETS: [(u64, &str); 12] = [
    (100, "0.0001"),
    (250, "0.00025"),
    (500, "0.0005"),
    (1_000, "0.001"),
    (2_500, "0.0025"),
    (5_000, "0.005"),
    (10_000, "0.01"),
    (25_000, "0.025"),
    (100_000, "0.1"),
    (250_000, "0.25"),
    (1_000_000, "1"),
    (5_000_000, "5"),
];

/// A latency histogram: observations, their sum and cumulative-ready bucket counts.
#[derive(Clone, Debug, Default)]
struct Histogram {
    count: u64,
    sum_us: u64,
    buckets: [u64; BUCKETS.len()],
}

impl Histogram {
    fn observe(&mut self, us: u64) {
        self.count = self.count.saturating_add(1);
        self.sum_us = self.sum_us.saturating_add(us);
        if let Some(i) = BUCKETS.iter().position(|(bound, _)| us <= *bound)
            && let Some(b) = self.buckets.get_mut(i)
        {
            *b = b.saturating_add(1);
        }
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let cumulative = BUCKETS.iter().zip(self.buckets).scan(0u64, |total, ((_, le), n)| {
            *total = total.saturating_add(n);
            Some((*le, *total))
        });
        let sum = format_units(u128::from(self.sum_us), 6);
        write_histogram(out, name, labels, cumulative, self.count, &sum);
    }
}

/// One histogram series: `buckets` are `(le, observations ≤ le)`, already cumulative, then the
/// `+Inf` bucket, the sum and the count. `labels` is `k="v",…` or empty.
fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    buckets: impl IntoIterator<Item = (impl Display, u64)>,
    count: u64,
    sum: &str,
) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (le, n) in buckets {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
    let braced = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{braced} {sum}");
    let _ = writeln!(out, "{name}_count{braced} {count}");
}

/// An engine histogram without labels, its integer values scaled down by `10^scale` (9 turns
/// nanoseconds into seconds, 0 leaves counts as they are).
fn write_engine_histogram<const N: usize>(
    out: &mut String,
    name: &str,
    h: &HistogramSnapshot<N>,
    scale: u8,
) {
    let buckets =
        h.cumulative().map(|(bound, n)| (format_units_trimmed(u128::from(bound), scale), n));
    let sum = format_units(u128::from(h.sum), scale);
    write_histogram(out, name, "", buckets, h.count, &sum);
}

/// Orders and trades of one market since the server started.
#[derive(Clone, Copy, Debug, Default)]
struct MarketCounts {
    orders: u64,
    rejected: u64,
    trades: u64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// (method, route, status) → requests and their latency.
    http: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    /// Command kind → submissions and the time to their outcome.
    commands: Mutex<BTreeMap<&'static str, Histogram>>,
    markets: Mutex<BTreeMap<MarketId, MarketCounts>>,
    /// The feed follows the engine's events (false while it rebuilds the mirror, e.g. after
    /// the link to a remote engine was lost).
    pub feed_live: std::sync::atomic::AtomicBool,
}

/// Most distinct (method, route, status) series kept (routes are a fixed set; this bounds
/// what odd methods and statuses can add).
const HTTP_SERIES_MAX: usize = 2_000;

impl Metrics {
    /// An engine command the API submitted, and how long its durable outcome took.
    pub fn command(&self, kind: &'static str, started: Instant) {
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut c) = self.commands.lock() {
            c.entry(kind).or_default().observe(us);
        }
    }

    /// One HTTP request (`observe.rs`): its method, matched route, status and latency.
    pub fn http(&self, method: String, route: String, status: u16, us: u64) {
        if let Ok(mut http) = self.http.lock() {
            let key = (method, route, status);
            if http.len() < HTTP_SERIES_MAX || http.contains_key(&key) {
                http.entry(key).or_default().observe(us);
            }
        }
    }

    /// What one batch of engine events did to a market's counts.
    pub fn count_events(&self, events: &[bourse_core::Event]) {
        use bourse_core::Event;
        let Ok(mut markets) = self.markets.lock() else { return };
        for event in events {
            match event {
                Event::OrderAccepted { market, .. } => {
                    markets.entry(*market).or_default().orders += 1
                }
                Event::OrderRejected { market, .. } => {
                    markets.entry(*market).or_default().rejected += 1;
                }
                Event::Trade { market, .. } => markets.entry(*market).or_default().trades += 1,
                _ => {}
            }
        }
    }
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

/// A label value, escaped as the exposition format wants.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `GET /metrics`.
pub async fn exposition(State(state): State<Shared>) -> Response {
    let mut out = String::with_capacity(16 * 1024);
    let engine = state.engine.status();
    let stats = state.engine.stats();
    let projected = *state.projected.borrow();
    let hub = &state.hub;
    use std::sync::atomic::Ordering::Relaxed;
    for (name, kind, text, value) in [
        ("bourse_engine_seq", "counter", "Last engine command applied and durable.", engine.seq),
        (
            "bourse_engine_batches_total",
            "counter",
            "Engine batches (one journal commit each).",
            engine.batches,
        ),
        (
            "bourse_engine_commands_total",
            "counter",
            "Engine commands applied and durable since this process started the engine.",
            stats.commands,
        ),
        (
            "bourse_engine_snapshot_seq",
            "gauge",
            "Sequence of the latest engine snapshot.",
            engine.snapshot_seq,
        ),
        ("bourse_engine_running", "gauge", "1 while the engine runs.", u64::from(engine.running)),
        (
            "bourse_engine_subscribers_cut_off_total",
            "counter",
            "Event subscribers cut off as too slow.",
            engine.subscribers_cut_off,
        ),
        (
            "bourse_ws_clients",
            "gauge",
            "Open WebSocket connections.",
            hub.connections.load(Relaxed) as u64,
        ),
        (
            "bourse_ws_slow_consumers_dropped_total",
            "counter",
            "WebSocket clients disconnected as too slow.",
            hub.slow_consumers_dropped.load(Relaxed),
        ),
        (
            "bourse_ws_messages_sent_total",
            "counter",
            "Messages queued to WebSocket clients.",
            hub.messages_sent.load(Relaxed),
        ),
    ] {
        help(&mut out, name, kind, text);
        let _ = writeln!(out, "{name} {value}");
    }
    // Only where the projector runs: elsewhere it would read as a lag of the whole journal.
    if state.config.roles.worker {
        for (name, text, value) in [
            ("bourse_projector_seq", "Last engine command in the read models.", projected),
            (
                "bourse_projector_lag",
                "Engine commands not yet in the read models.",
                engine.seq.saturating_sub(projected),
            ),
        ] {
            help(&mut out, name, "gauge", text);
            let _ = writeln!(out, "{name} {value}");
        }
    }
    help(
        &mut out,
        "bourse_engine_batch_commands",
        "histogram",
        "Commands per engine group commit.",
    );
    write_engine_histogram(&mut out, "bourse_engine_batch_commands", &stats.batch_commands, 0);
    help(
        &mut out,
        "bourse_journal_fsync_seconds",
        "histogram",
        "Journal commit time per engine batch (write + fdatasync).",
    );
    write_engine_histogram(&mut out, "bourse_journal_fsync_seconds", &stats.journal_commit_ns, 9);
    let outbox = state.store.mail_queue_len().await;
    help(&mut out, "bourse_database_up", "gauge", "1 when the database answers.");
    let _ = writeln!(out, "bourse_database_up {}", u8::from(outbox.is_ok()));
    if let Ok(depth) = outbox {
        help(&mut out, "bourse_mail_outbox_depth", "gauge", "Mails queued and not yet sent.");
        let _ = writeln!(out, "bourse_mail_outbox_depth {depth}");
    }
    if let Ok(last) = state.store.last_good_backup().await {
        help(
            &mut out,
            "bourse_backup_last_success_timestamp_seconds",
            "gauge",
            "When the newest complete backup finished (Unix seconds; 0: none yet).",
        );
        let at_s = last.as_ref().map_or(0, |b| b.finished_at_ms / 1000);
        let _ = writeln!(out, "bourse_backup_last_success_timestamp_seconds {at_s}");
        help(
            &mut out,
            "bourse_backup_last_seq",
            "gauge",
            "The engine seq the newest backup holds.",
        );
        let _ = writeln!(out, "bourse_backup_last_seq {}", last.map_or(0, |b| b.seq));
    }
    if let Ok(http) = state.metrics.http.lock() {
        help(
            &mut out,
            "bourse_http_requests_total",
            "counter",
            "HTTP requests by method, route and status.",
        );
        for ((method, route, status), h) in http.iter() {
            let _ = writeln!(
                out,
                "bourse_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {}",
                label(method),
                label(route),
                h.count
            );
        }
        help(
            &mut out,
            "bourse_http_request_duration_seconds",
            "histogram",
            "HTTP request latency.",
        );
        for ((method, route, status), h) in http.iter() {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status=\"{status}\"",
                label(method),
                label(route)
            );
            h.write(&mut out, "bourse_http_request_duration_seconds", &labels);
        }
    }
    if let Ok(commands) = state.metrics.commands.lock() {
        help(
            &mut out,
            "bourse_engine_command_duration_seconds",
            "histogram",
            "Engine commands the APIs submitted: time to their durable outcome.",
        );
        for (kind, h) in commands.iter() {
            h.write(
                &mut out,
                "bourse_engine_command_duration_seconds",
                &format!("command=\"{kind}\""),
            );
        }
    }
    let symbols: BTreeMap<MarketId, String> = state
        .mirror
        .read()
        .map(|m| m.markets.values().map(|x| (x.id, x.symbol.clone())).collect())
        .unwrap_or_default();
    if let Ok(markets) = state.metrics.markets.lock() {
        for (name, text, pick) in [
            (
                "bourse_orders_total",
                "Orders accepted, per market.",
                (|c: &MarketCounts| c.orders) as fn(&MarketCounts) -> u64,
            ),
            (
                "bourse_orders_rejected_total",
                "Orders the engine refused, per market.",
                |c: &MarketCounts| c.rejected,
            ),
            ("bourse_trades_total", "Trades, per market.", |c: &MarketCounts| c.trades),
        ] {
            help(&mut out, name, "counter", text);
            for (market, symbol) in &symbols {
                let value = markets.get(market).map_or(0, pick);
                let _ = writeln!(out, "{name}{{market=\"{}\"}} {value}", label(symbol));
            }
        }
    }
    let health = crate::api::public::health_of(&state).await;
    if !health.nodes.is_empty() {
        help(&mut out, "bourse_node_up", "gauge", "1 when the coin's node answers.");
        help(&mut out, "bourse_node_blocks", "gauge", "The node's block height.");
        help(
            &mut out,
            "bourse_node_last_block_age_seconds",
            "gauge",
            "Seconds since the node's best block.",
        );
        help(
            &mut out,
            "bourse_wallet_hot_balance",
            "gauge",
            "The node wallet's confirmed balance, in whole coins.",
        );
        help(
            &mut out,
            "bourse_wallet_owed",
            "gauge",
            "What users are owed in the coin at the last reconciliation.",
        );
        help(
            &mut out,
            "bourse_wallet_shortfall",
            "gauge",
            "How far the hot wallet fell short of it (negative: a surplus).",
        );
        help(
            &mut out,
            "bourse_withdrawals_paused",
            "gauge",
            "1 while the coin's withdrawals wait for the wallet to cover users.",
        );
        help(
            &mut out,
            "bourse_reconciled_timestamp_seconds",
            "gauge",
            "When the coin was last reconciled (Unix seconds).",
        );
    }
    for n in &health.nodes {
        let a = label(&n.asset);
        let _ = writeln!(out, "bourse_node_up{{asset=\"{a}\"}} {}", u8::from(n.reachable));
        let _ = writeln!(out, "bourse_node_blocks{{asset=\"{a}\"}} {}", n.blocks);
        let _ = writeln!(
            out,
            "bourse_node_last_block_age_seconds{{asset=\"{a}\"}} {}",
            n.last_block_age_s
        );
        let _ = writeln!(
            out,
            "bourse_withdrawals_paused{{asset=\"{a}\"}} {}",
            u8::from(n.withdrawals_paused)
        );
        for (name, value) in [
            ("bourse_wallet_hot_balance", &n.hot_wallet_balance),
            ("bourse_wallet_owed", &n.owed),
            ("bourse_wallet_shortfall", &n.shortfall),
        ] {
            if !value.is_empty() {
                let _ = writeln!(out, "{name}{{asset=\"{a}\"}} {value}");
            }
        }
        if let Some(ms) = n.reconciled_ms {
            let _ =
                writeln!(out, "bourse_reconciled_timestamp_seconds{{asset=\"{a}\"}} {}", ms / 1000);
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

/// `GET /ready`: 200 when the engine runs, the database answers and the read models are within
/// `limits.ready_lag_max` commands of the engine; 503 with the reasons otherwise.
pub async fn ready(State(state): State<Shared>) -> Response {
    let engine = state.engine.status();
    // Read models are the worker's: a process without it has no lag of its own.
    let lag = if state.config.roles.worker {
        engine.seq.saturating_sub(*state.projected.borrow())
    } else {
        0
    };
    let mut problems = Vec::new();
    if !engine.running {
        problems.push("the engine is not running".to_string());
    }
    if state.store.ping().await.is_err() {
        problems.push("the database does not answer".to_string());
    }
    if !state.config.roles.engine_only()
        && !state.metrics.feed_live.load(std::sync::atomic::Ordering::Acquire)
    {
        problems.push("the market-data feed is resyncing with the engine".to_string());
    }
    if lag > state.config.limits.ready_lag_max {
        problems.push(format!("the read models are {lag} commands behind the engine"));
    }
    let status = if problems.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({"ready": problems.is_empty(), "engine_seq": engine.seq,
        "projector_lag": lag, "problems": problems, "roles": state.config.roles.names()});
    (status, axum::Json(body)).into_response()
}

/// The admin listener of a process without the admin role: health, readiness and metrics.
pub fn ops_router(state: &Shared) -> axum::Router {
    axum::Router::new()
        .route("/health", axum::routing::get(alive))
        .route("/ready", axum::routing::get(ready))
        .route("/metrics", axum::routing::get(exposition))
        .merge(crate::wallets::notify_routes(state))
        .with_state(state.clone())
}

/// `GET /health`: 200 while the process serves requests (liveness).
pub async fn alive() -> Response {
    (axum::http::StatusCode::OK, axum::Json(serde_json::json!({"alive": true}))).into_response()
}
