//! A split deployment: the engine in one server, the gateway, wallet, worker and admin roles in
//! another that reaches it over the engine link — each on its own data directory, sharing the
//! database — on SQLite and on PostgreSQL. Trading, read models and WebSocket streams work
//! through the link; the other process survives a restart of the engine's and the reverse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The engine's server alone.
async fn engine_process(backend: Backend) -> App {
    App::spawn_engine(backend, "engine", &[]).await
}

/// The other roles' server: its own data directory, the engine's database and secret.
async fn app_process(engine: &App) -> App {
    App::join(engine, "gateway,wallet,worker,admin", &[]).await
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Polls `url` until it answers `status`, for up to 15 s.
async fn until_status(url: &str, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (s, body) = get(url).await;
        if s == status {
            return body;
        }
        assert!(Instant::now() < deadline, "{url} still answers {s}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn order(side: &str, price: &str, quantity: &str) -> Option<Value> {
    Some(
        json!({"market": "BTC-USDT", "side": side, "type": "limit", "price": price, "quantity": quantity}),
    )
}

/// Bob's WebSocket, signed in and listening to trades and his fills.
async fn listen(app: &App, bob: &User) -> Ws {
    let (key, secret) = bob.key.clone().unwrap();
    let mut ws = ws_connect(app).await;
    let ts = bourse_server::now_ms();
    let sig = bourse_server::crypto::hmac_hex(
        secret.as_bytes(),
        format!("api_key={key}&timestamp={ts}").as_bytes(),
    );
    ws_send(&mut ws, json!({"op": "auth", "api_key": key, "timestamp": ts, "signature": sig}))
        .await;
    assert_eq!(ws_next(&mut ws).await["op"], "authenticated");
    ws_send(&mut ws, json!({"op": "subscribe", "channels": ["trades:BTC-USDT", "fills"]})).await;
    assert_eq!(ws_next(&mut ws).await["op"], "subscribed");
    ws
}

/// Alice sells `quantity` at `price`, Bob buys it: one trade, seen on Bob's WebSocket and in
/// both read models.
async fn cross(alice: &User, bob: &User, ws: &mut Ws, price: &str, quantity: &str) {
    let (s, sell) =
        alice.signed(Method::POST, "/api/v1/orders", "", order("sell", price, quantity)).await;
    assert_eq!(s, 201, "{sell}");
    let (s, buy) =
        bob.signed(Method::POST, "/api/v1/orders", "", order("buy", price, quantity)).await;
    assert_eq!(s, 201, "{buy}");
    assert_eq!(buy["order"]["status"], "filled", "{buy}");
    let (mut trade, mut fill) = (None, None);
    while trade.is_none() || fill.is_none() {
        let m = ws_next(ws).await;
        match m["channel"].as_str() {
            Some("trades") => trade = Some(m),
            Some("fills") => fill = Some(m),
            _ => {}
        }
    }
    let (trade, fill) = (trade.unwrap(), fill.unwrap());
    assert_eq!(trade["trades"][0]["price"], price, "{trade}");
    assert_eq!(fill["data"]["quantity"], quantity, "{fill}");
    assert_eq!(fill["data"]["price"], price, "{fill}");
    // Bob reads his own write at once; Alice's order was filled by Bob's command, which the
    // read models take a moment to reach.
    let buy_id = buy["order"]["id"].as_u64().unwrap();
    let (s, o) = bob.get(&format!("/api/v1/orders/{buy_id}")).await;
    assert_eq!((s, o["status"].as_str()), (200, Some("filled")), "{o}");
    let sell_id = sell["order"]["id"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (s, o) = alice.get(&format!("/api/v1/orders/{sell_id}")).await;
        if (s, o["status"].as_str()) == (200, Some("filled")) {
            break;
        }
        assert!(Instant::now() < deadline, "{o}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn split(backend: Backend) {
    let mut engine = engine_process(backend).await;
    let mut app = app_process(&engine).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let mut alice = register(&app, "alice@example.com").await;
    let mut bob = register(&app, "bob@example.com").await;
    alice.create_key(&["trade"]).await;
    bob.create_key(&["trade"]).await;
    deposit(&app, alice.id, "BTC", "1").await;
    deposit(&app, bob.id, "USDT", "100000").await;

    let mut ws = listen(&app, &bob).await;
    cross(&alice, &bob, &mut ws, "60000", "0.1").await;
    let (_, b) = bob.signed(Method::GET, "/api/v1/balances", "", None).await;
    let usdt = b.as_array().unwrap().iter().find(|b| b["asset"] == "USDT").unwrap().clone();
    assert_eq!(usdt["available"], "93988", "6,000 + 12 taker fee paid: {b}");

    // Both processes hold the same state: the engine's own, and the one read over the link.
    let here = engine.server().engine().read(|x| x.state_hash()).await.unwrap();
    let there = app.server().engine().read(|x| x.state_hash()).await.unwrap();
    assert_eq!(here, there);

    // The engine's process answers health, readiness and metrics on its admin listener, with
    // the engine's series and no projector lag (it has no projector).
    let ops = engine.server().admin_url();
    assert_eq!(get(&format!("{ops}/health")).await.0, 200);
    until_status(&format!("{ops}/ready"), 200).await;
    let (s, metrics) = get(&format!("{ops}/metrics")).await;
    assert_eq!(s, 200);
    let seq_line = metrics.lines().find(|l| l.starts_with("bourse_engine_seq ")).unwrap();
    assert!(seq_line.trim_start_matches("bourse_engine_seq ").parse::<u64>().unwrap() >= here.0);
    assert!(!metrics.contains("bourse_projector_lag"), "{metrics}");
    assert!(metrics.contains("bourse_journal_fsync_seconds_count"));
    // The app's readiness sees the engine through the link and its read models caught up.
    until_status(&format!("{}/ready", app.url), 200).await;

    // The engine's process stops: the other one answers 503 and reports the engine down...
    engine.stop().await;
    let body = until_status(&format!("{}/ready", app.url), 503).await;
    assert!(body.contains("the engine is not running"), "{body}");
    let (s, e) =
        alice.signed(Method::POST, "/api/v1/orders", "", order("sell", "61000", "0.1")).await;
    assert_eq!((s, e["code"].as_str()), (503, Some("unavailable")), "{e}");
    // ...and carries on once it is back, on the same link address: trading, streams, read
    // models.
    engine.start().await;
    until_status(&format!("{}/ready", app.url), 200).await;
    let mut ws = listen(&app, &bob).await;
    cross(&alice, &bob, &mut ws, "61000", "0.1").await;

    // The other process restarts (on the same address, as behind a proxy): the read models
    // and the trading go on.
    let addr = app.server().addr.to_string();
    app.extra_env.push(("BOURSE_LISTEN".into(), addr));
    app.stop().await;
    app.start().await;
    let (_, trades) = bob.get("/api/v1/markets/BTC-USDT/trades").await;
    assert_eq!(trades.as_array().unwrap().len(), 2, "{trades}");
    let mut ws = listen(&app, &bob).await;
    cross(&alice, &bob, &mut ws, "62000", "0.1").await;

    let here = engine.server().engine().read(|x| x.state_hash()).await.unwrap();
    let there = app.server().engine().read(|x| x.state_hash()).await.unwrap();
    assert_eq!(here, there);
    app.stop().await;
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_sqlite() {
    split(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_postgres() {
    split(Backend::Postgres).await;
}

/// Every role in a process of its own: the engine; the worker; the gateway and the admin app,
/// which follow the worker's commits through the store's relay; the wallet. Private reads see
/// their writes, tickers, candles and Binance user data reach the gateway's streams, the admin
/// app's dashboard numbers move, and a restarted worker catches up.
async fn every_role_apart(backend: Backend) {
    let engine = engine_process(backend).await;
    let mut worker = App::join(&engine, "worker", &[]).await;
    let wallet = App::join(&engine, "wallet", &[]).await;
    let gateway = App::join(&engine, "gateway", &[]).await;
    let admin = App::join(&engine, "admin", &[]).await;
    bourse_server::demo::setup(&gateway.server().state).await.unwrap();
    let mut alice = register_mailed(&gateway, &worker, "alice@example.com").await;
    let mut bob = register_mailed(&gateway, &worker, "bob@example.com").await;
    alice.create_key(&["trade"]).await;
    let (bob_key, _) = bob.create_key(&["trade"]).await;
    deposit(&gateway, alice.id, "BTC", "1").await;
    deposit(&gateway, bob.id, "USDT", "100000").await;

    // Bob's Binance user data stream, and the market's ticker and minute candles.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v3/userDataStream", gateway.url))
        .header("X-MBX-APIKEY", &bob_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listen_key = r.json::<Value>().await.unwrap()["listenKey"].as_str().unwrap().to_string();
    let user_url = format!("{}/ws/{listen_key}", gateway.url.replace("http://", "ws://"));
    let mut user_data = tokio_tungstenite::connect_async(user_url).await.unwrap().0;
    let mut market = ws_connect(&gateway).await;
    ws_send(
        &mut market,
        json!({"op": "subscribe", "channels": ["ticker:BTC-USDT", "candles:BTC-USDT:1m"]}),
    )
    .await;
    assert_eq!(ws_next(&mut market).await["op"], "subscribed");

    // The cross reads Bob's order back at once: the gateway waited for the worker's commit.
    let mut ws = listen(&gateway, &bob).await;
    cross(&alice, &bob, &mut ws, "60000", "0.1").await;
    let (mut ticker, mut candle) = (Value::Null, Value::Null);
    while ticker.is_null() || candle.is_null() {
        let m = ws_next(&mut market).await;
        match m["channel"].as_str() {
            Some("ticker") => ticker = m,
            Some("candles") => candle = m,
            _ => {}
        }
    }
    assert_eq!(ticker["ticker"]["last"], "60000", "{ticker}");
    assert_eq!(candle["candle"]["close"], "60000", "{candle}");
    let report = loop {
        let event = ws_next(&mut user_data).await;
        if event["e"] == "executionReport" && event["X"] == "FILLED" {
            break event;
        }
    };
    assert_eq!((report["S"].as_str(), report["z"].as_str()), (Some("BUY"), Some("0.10000000")));
    let (s, t) = bob.get("/api/v1/markets/BTC-USDT/ticker").await;
    assert_eq!((s, t["last"].as_str()), (200, Some("60000")), "{t}");

    // The admin app's process keeps the same tickers (its dashboard reads them).
    let last = || {
        let state = &admin.server().state;
        let id = state.mirror.read().unwrap().market_by_symbol("BTC-USDT").unwrap().id;
        state.tickers.lock().unwrap().stats(id, bourse_server::now_ms()).last
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while last() != Some(60_000_000_000) {
        assert!(Instant::now() < deadline, "the admin app's ticker: {:?}", last());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Every process is ready; only the worker's has a projector lag of its own.
    for app in [&engine, &worker, &wallet, &gateway, &admin] {
        until_status(&format!("{}/ready", app.server().admin_url()), 200).await;
    }
    until_status(&format!("{}/ready", gateway.url), 200).await;
    let (_, metrics) = get(&format!("{}/metrics", worker.server().admin_url())).await;
    assert!(metrics.contains("bourse_projector_lag"), "{metrics}");

    // The worker stops: orders still trade, the read models wait; it comes back and catches
    // up, and the relay goes on.
    worker.stop().await;
    let (s, sell) =
        alice.signed(Method::POST, "/api/v1/orders", "", order("sell", "61000", "0.1")).await;
    assert_eq!(s, 201, "{sell}");
    worker.start().await;
    let sell_id = sell["order"]["id"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alice.get(&format!("/api/v1/orders/{sell_id}")).await.0 != 200 {
        assert!(Instant::now() < deadline, "the restarted worker did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, buy) =
        bob.signed(Method::POST, "/api/v1/orders", "", order("buy", "61000", "0.1")).await;
    assert_eq!((s, buy["order"]["status"].as_str()), (201, Some("filled")), "{buy}");
    let buy_id = buy["order"]["id"].as_u64().unwrap();
    let (s, o) = bob.get(&format!("/api/v1/orders/{buy_id}")).await;
    assert_eq!((s, o["status"].as_str()), (200, Some("filled")), "{o}");
    loop {
        let ticker = ws_next_on(&mut market, "ticker").await;
        if ticker["ticker"]["last"] == "61000" {
            break;
        }
    }

    let here = engine.server().engine().read(|x| x.state_hash()).await.unwrap();
    for app in [&worker, &wallet, &gateway, &admin] {
        assert_eq!(app.server().engine().read(|x| x.state_hash()).await.unwrap(), here);
    }
    for mut app in [worker, wallet, gateway, admin, engine] {
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_apart_sqlite() {
    every_role_apart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_apart_postgres() {
    every_role_apart(Backend::Postgres).await;
}

/// A process without the engine and without a link to one does not start; neither does one
/// whose link key (its secret_key) differs from the engine's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_process_refuses_a_missing_or_wrong_link() {
    let engine = engine_process(Backend::Sqlite).await;
    let mut app = App {
        server: None,
        url: String::new(),
        data_dir: tempfile::tempdir().unwrap(),
        database_url: engine.database_url.clone(),
        secret: bourse_server::crypto::random_token().unwrap(),
        extra_env: vec![("BOURSE_ROLES".into(), "gateway,wallet,worker,admin".into())],
    };
    let err = bourse_server::config::Config::load(
        None,
        [
            ("BOURSE_SECRET_KEY".to_string(), app.secret.clone()),
            ("BOURSE_ROLES".to_string(), "gateway,wallet,worker,admin".to_string()),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("[link] connect"), "{err}");
    let link = engine.link();
    app.extra_env.push(("BOURSE_LINK__CONNECT".into(), link));
    let started = Instant::now();
    let err = bourse_server::Server::start(app.config()).await.unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("holds another key"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "a wrong key fails at once");
}
