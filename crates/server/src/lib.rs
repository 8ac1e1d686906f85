//! `bourse serve`: every role of the exchange in one process — the engine (its own threads),
//! the gateway (REST `/api/v1` and WebSocket `/ws` on axum), the worker's projector (engine
//! events → read models in SQLite or PostgreSQL) and, for `bourse demo`, a liquidity bot.
//!
//! Roles talk only through engine commands, engine events and the store: the gateway submits
//! commands and reads the mirror (`mirror.rs`, fed by `feed.rs`) and the read models; the
//! projector (`projector.rs`) is the only writer of read models.

pub mod admin;
pub mod alerts;
pub(crate) mod api;
pub mod auth;
pub mod backups;
pub mod binance;
pub mod captcha;
pub mod config;
pub mod control;
pub mod crypto;
pub mod demo;
pub mod error;
pub mod feed;
pub mod hub;
pub mod mail;
pub mod market_setup;
pub mod metrics;
pub mod mirror;
pub mod observe;
pub mod orders;
pub mod projector;
pub mod relay;
pub mod roles;
pub mod security;
pub mod state;
pub mod throttle;
pub mod ticker;
pub mod totp;
pub mod views;
pub mod wallets;
pub mod web;
pub mod withdrawal_safety;
pub mod ws;

use crate::config::Config;
use crate::hub::Hub;
use crate::mirror::Mirror;
use crate::state::{AppState, Shared};
use crate::ticker::Tickers;
use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use bourse_engine::{Engine, EngineConfig, EngineHandle, SystemClock};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// Wall-clock Unix milliseconds (the gateway's clock; the engine stamps its own time).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A running exchange server.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    /// The admin app's listener.
    pub admin_addr: SocketAddr,
    pub state: Shared,
    engine: Option<Engine>,
    /// The link to the engine's process, when this one runs without it.
    link: Option<bourse_link::LinkGuard>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Opens the data directory and database (migrating it), recovers the engine, starts the
    /// projector and the feed, and listens.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create the data directory {}", config.data_dir.display())
        })?;
        let probe = config.data_dir.join(".write-test");
        std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe)).with_context(
            || format!("the data directory {} is not writable", config.data_dir.display()),
        )?;
        let roles = config.roles;
        // Without the engine, the link first: the engine's process migrates the database before
        // its link listens, so this process's migration below finds nothing left to do.
        let (engine, link, handle) = if roles.engine {
            let mut engine_config = EngineConfig::new(&config.data_dir);
            engine_config.snapshot_every = config.engine.snapshot_every;
            engine_config.queue_capacity = config.engine.queue_capacity;
            let engine =
                tokio::task::spawn_blocking(move || Engine::start(engine_config, SystemClock))
                    .await
                    .context("engine start task")?
                    .context("cannot start the engine")?;
            let handle = engine.handle();
            (Some(engine), None, handle)
        } else {
            let addr = config.link.connect.clone().unwrap_or_default();
            let (handle, guard) = bourse_link::connect(
                &addr,
                link_key(&config)?,
                Duration::from_secs(config.link.connect_wait_s),
            )
            .await
            .context("cannot reach the engine")?;
            (None, Some(guard), handle)
        };

        let store = bourse_store::connect(config.database_url().expose())
            .await
            .context("cannot open the database")?;
        let applied = store.migrate().await.context("cannot migrate the database")?;
        if applied > 0 {
            tracing::info!(applied, backend = store.backend(), "database migrated");
        }

        let mirror = Arc::new(RwLock::new(Mirror::default()));
        // The engine's own process (alone) keeps no mirror: nothing there reads one.
        let from = if roles.engine_only() {
            0
        } else {
            feed::bootstrap(&handle, &mirror).await.context("the engine stopped at start")?
        };
        let hub = Arc::new(Hub::default());
        let metrics = Arc::new(metrics::Metrics::default());
        let tickers = Arc::new(Mutex::new(Tickers::default()));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (projected_tx, projected_rx) = watch::channel(0);
        // The projector's in this process, or the relay follower's (`relay.rs`).
        let mut projected_tx = Some(projected_tx);
        // A database from before the fee report: its history is counted once, from the read
        // models, before the projector adds to it.
        let quote_of: std::collections::HashMap<_, _> = mirror
            .read()
            .map(|m| m.markets.values().map(|m| (m.id, m.quote.id)).collect())
            .unwrap_or_default();
        let filled = if roles.worker {
            store.backfill_fee_revenue(&quote_of).await.context("fee revenue backfill")?
        } else {
            0
        };
        if filled > 0 {
            tracing::info!(
                hours = filled,
                "fee revenue counted from earlier trades and withdrawals"
            );
        }
        let mut projector = if roles.worker
            && let Some(projected_tx) = projected_tx.take()
        {
            let mut projector = projector::Projector::new(
                store.clone(),
                handle.clone(),
                config.data_dir.clone(),
                hub.clone(),
                mirror.clone(),
                tickers.clone(),
                projected_tx,
            )
            .await
            .context("cannot start the projector")?;
            if roles.relays() {
                projector.relay();
            }
            Some(projector)
        } else {
            None
        };
        let dummy_hash = tokio::task::spawn_blocking(|| {
            crypto::random_token().and_then(|t| crypto::hash_password(&t))
        })
        .await
        .context("hash task")??;
        let keys =
            crypto::Keys::derive(&hex::decode(config.secret_key.expose()).context("secret_key")?);
        // Bound before the state is built: with port 0 the links the server mails (and
        // `public_url` when not set) must carry the port it really got.
        let listener = if roles.gateway {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            Some(listener)
        } else {
            None
        };
        let admin_listener = tokio::net::TcpListener::bind(config.admin.listen)
            .await
            .with_context(|| format!("cannot listen on {} (the admin app)", config.admin.listen))?;
        let link_listener = match (roles.engine, config.link.listen) {
            (true, Some(addr)) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (the engine link)"))?,
            ),
            _ => None,
        };
        let mut config = config;
        if let Some(listener) = &listener {
            config.listen = listener.local_addr()?;
        }
        config.admin.listen = admin_listener.local_addr()?;
        if let Some(listener) = &link_listener {
            config.link.listen = Some(listener.local_addr()?);
        }
        let (wallets, assets) = {
            let mirror = mirror.read().map_err(|_| anyhow::anyhow!("mirror lock poisoned"))?;
            let assets: Vec<(String, u8)> =
                mirror.assets.values().map(|a| (a.symbol.clone(), a.scale)).collect();
            // The gateway hands out deposit addresses and takes withdrawal requests, the admin
            // app shows the nodes: both talk to the coin nodes too. The wallet role alone scans
            // and sends.
            let wallets = if roles.wallet || roles.gateway || roles.admin {
                wallets::open(&config.wallets, &mirror)?
            } else {
                Default::default()
            };
            (wallets, assets)
        };
        // The engine's process alone reads no mirror (so knows no assets) and no withdrawal rule.
        if !roles.engine_only() {
            config.withdrawals.validate(&assets).map_err(anyhow::Error::msg)?;
        }
        let transport =
            mail::Transport::new(&config.mail, &config.data_dir).map_err(anyhow::Error::msg)?;
        let mail_config = config.mail.clone();
        let mail_wake = Arc::new(tokio::sync::Notify::new());
        if let Some(projector) = &mut projector {
            projector.mail_users(config.public_url(), mail_wake.clone());
        }
        let state = Arc::new(AppState {
            password_slots: Semaphore::new(config.limits.password_hashes_parallel.max(1)),
            throttles: throttle::Throttles::new(&config.limits),
            listen_keys: Mutex::new(std::collections::HashMap::new()),
            metrics: metrics.clone(),
            backup_lock: tokio::sync::Mutex::new(()),
            config,
            engine: handle.clone(),
            store,
            mirror: mirror.clone(),
            hub: hub.clone(),
            tickers: tickers.clone(),
            keys,
            projected: projected_rx,
            user_seq: Mutex::new(Default::default()),
            api_keys: Mutex::new(Default::default()),
            dummy_hash,
            shutdown: shutdown_rx.clone(),
            wallets,
            mail_wake: mail_wake.clone(),
        });

        let mut tasks = Vec::new();
        if let Some(projector) = projector {
            tasks.push(tokio::spawn(projector.run(shutdown_rx.clone())));
        }
        if roles.follows_worker()
            && let Some(projected) = projected_tx.take()
        {
            let follower = relay::Follower {
                store: state.store.clone(),
                hub: hub.clone(),
                mirror: mirror.clone(),
                tickers,
                projected,
            };
            tasks.push(tokio::spawn(follower.run(shutdown_rx.clone())));
        }
        if roles.wallet {
            tasks.extend(wallets::spawn(&state));
        }
        if roles.worker {
            tasks.push(tokio::spawn(alerts::run_webhook(
                state.store.clone(),
                state.config.alerts.clone(),
                shutdown_rx.clone(),
            )));
            tasks.push(tokio::spawn(mail::run_worker(
                state.store.clone(),
                transport,
                mail_config,
                mail_wake,
                shutdown_rx.clone(),
            )));
            tasks.push(tokio::spawn(withdrawal_safety::run_sweeper(
                state.clone(),
                shutdown_rx.clone(),
            )));
        }
        if roles.engine {
            tasks.push(tokio::spawn(backups::run_schedule(state.clone(), shutdown_rx.clone())));
            tasks.push(control::bind(&state, shutdown_rx.clone()).await?);
        }
        if let Some(listener) = link_listener {
            tasks.push(tokio::spawn(bourse_link::serve(
                listener,
                handle.clone(),
                state.config.data_dir.clone(),
                link_key(&state.config)?,
                shutdown_rx.clone(),
            )));
        }
        if !roles.engine_only() {
            tasks.push(tokio::spawn(feed::run(
                handle,
                mirror,
                hub,
                metrics,
                from,
                shutdown_rx.clone(),
            )));
        }

        let addr = match listener {
            Some(listener) => serve_http(listener, router(&state), &mut tasks, &shutdown_rx)?,
            None => admin_listener.local_addr()?,
        };
        // Without the admin role the admin listener answers health, readiness and metrics
        // only.
        let admin_app =
            if roles.admin { admin::router(&state) } else { metrics::ops_router(&state) };
        let admin_addr = serve_http(admin_listener, admin_app, &mut tasks, &shutdown_rx)?;
        tracing::info!(%addr, %admin_addr, roles = roles.names(), "bourse is listening");
        Ok(Server { addr, admin_addr, state, engine, link, shutdown: shutdown_tx, tasks })
    }

    pub fn engine(&self) -> EngineHandle {
        self.state.engine.clone()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// Graceful stop: no new connections, in-flight requests finish (their commands are
    /// durable before they are answered), WebSockets close, the projector stops between
    /// transactions, and the engine writes a final snapshot.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            if tokio::time::timeout(Duration::from_secs(10), task).await.is_err() {
                tracing::warn!("a server task did not stop within 10 s");
            }
        }
        if let Some(engine) = self.engine.take() {
            let _ = tokio::task::spawn_blocking(move || engine.shutdown()).await;
        }
        if let Some(link) = self.link.take() {
            link.close();
        }
        self.state.store.close().await;
        tracing::info!("bourse stopped");
    }
}

/// The engine link's key, derived from `secret_key`: every process of a deployment shares it.
fn link_key(config: &Config) -> anyhow::Result<bourse_link::LinkKey> {
    let secret = hex::decode(config.secret_key.expose()).context("secret_key")?;
    Ok(bourse_link::LinkKey::derive(&secret))
}

/// Serves `app` on `listener` until shutdown; returns the address it listens on.
fn serve_http(
    listener: tokio::net::TcpListener,
    app: Router,
    tasks: &mut Vec<JoinHandle<()>>,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    // Every answer and WebSocket burst is one write: send it now rather than wait for the
    // peer's acknowledgement of the last one (Nagle).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let mut stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        let serve = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
        if let Err(e) = serve.await {
            tracing::error!(%addr, error = %e, "HTTP server failed");
        }
    }));
    Ok(addr)
}

pub fn router(state: &Shared) -> Router {
    let limits = &state.config.limits;
    Router::new()
        .nest(
            "/api/v1",
            api::routes(state)
                .layer(axum::middleware::from_fn_with_state(state.clone(), throttle::api_limit)),
        )
        .nest("/api/v3", binance::routes(state))
        .route("/ws", get(ws::upgrade))
        .route("/ws/{*streams}", get(binance::streams::raw))
        .route("/stream", get(binance::streams::combined))
        .route("/ws-api/v3", get(binance::user_data::ws_api))
        .route("/health", get(metrics::alive))
        .route("/ready", get(metrics::ready))
        .merge(wallets::notify_routes(state))
        .merge(web::routes())
        .fallback(web::fallback)
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed",
            )
        })
        // After routing: the middleware sees the matched route.
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe::http))
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::client))
        .layer(axum::middleware::from_fn_with_state(state.clone(), web::strict_transport))
        .layer(DefaultBodyLimit::max(limits.body_bytes_max))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(limits.request_timeout_ms),
        ))
        .with_state(state.clone())
}
