//! End-to-end tests of `bourse serve` over real HTTP and WebSocket, each run on SQLite and on
//! PostgreSQL: accounts, API keys, trading, read models, market data, bad input, restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

async fn exchange(backend: Backend) -> App {
    let app = App::spawn(backend).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    app
}

fn balance(list: &Value, asset: &str) -> (String, String) {
    let b = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == asset)
        .unwrap_or_else(|| panic!("no {asset} in {list}"));
    (b["available"].as_str().unwrap().to_string(), b["locked"].as_str().unwrap().to_string())
}

async fn trading_flow(backend: Backend) {
    let app = exchange(backend).await;
    let mut alice = register(&app, "alice@example.com").await;
    let mut bob = register(&app, "bob@example.com").await;
    alice.create_key(&["trade"]).await;
    let (bob_key, bob_secret) = bob.create_key(&["trade"]).await;
    deposit(&app, alice.id, "BTC", "1").await;
    deposit(&app, bob.id, "USDT", "100000").await;

    // Bob listens: public trades and depth, his private fills, orders and balances.
    let mut ws = ws_connect(&app).await;
    let ts = bourse_server::now_ms();
    let sig = bourse_server::crypto::hmac_hex(
        bob_secret.as_bytes(),
        format!("api_key={bob_key}&timestamp={ts}").as_bytes(),
    );
    ws_send(&mut ws, json!({"op": "auth", "api_key": bob_key, "timestamp": ts, "signature": sig}))
        .await;
    assert_eq!(ws_next(&mut ws).await["op"], "authenticated");
    ws_send(&mut ws, json!({"op": "subscribe", "channels": ["trades:BTC-USDT", "depth:BTC-USDT", "fills", "orders", "balances", "ticker:BTC-USDT", "candles:BTC-USDT:1m"]})).await;
    assert_eq!(ws_next(&mut ws).await["op"], "subscribed");

    let (s, sell) = alice
        .signed(Method::POST, "/api/v1/orders", "", Some(json!({"market": "BTC-USDT", "side": "sell", "type": "limit", "price": "60000", "quantity": "0.5", "client_order_id": "a-1"})))
        .await;
    assert_eq!(s, 201, "{sell}");
    assert_eq!(sell["order"]["status"], "open");
    let sell_id = sell["order"]["id"].as_u64().unwrap();

    let (s, buy) = bob
        .signed(Method::POST, "/api/v1/orders", "", Some(json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": "60000.00", "quantity": "0.2"})))
        .await;
    assert_eq!(s, 201, "{buy}");
    assert_eq!(buy["order"]["status"], "filled");
    assert_eq!(buy["fills"][0]["price"], "60000");
    assert_eq!(buy["fills"][0]["quantity"], "0.2");
    assert_eq!(buy["fills"][0]["fee"], "24", "taker fee 0.2 % of 12,000 USDT");
    assert_eq!(buy["fills"][0]["role"], "taker");

    // Exact balances: Bob paid 12,000 + 24 fee; Alice got 12,000 - 12 maker fee and has 0.3 BTC locked.
    let (s, b) = bob.signed(Method::GET, "/api/v1/balances", "", None).await;
    assert_eq!(s, 200);
    assert_eq!(balance(&b, "USDT"), ("87976".to_string(), "0".to_string()));
    assert_eq!(balance(&b, "BTC"), ("0.2".to_string(), "0".to_string()));
    let (_, a) = alice.get("/api/v1/balances").await;
    assert_eq!(balance(&a, "BTC"), ("0.5".to_string(), "0.3".to_string()));
    assert_eq!(balance(&a, "USDT"), ("11988".to_string(), "0".to_string()));

    // Orders and fills in the read models, with read-your-writes.
    let (s, o) = alice.get(&format!("/api/v1/orders/{sell_id}")).await;
    assert_eq!(s, 200);
    assert_eq!(o["status"], "partially_filled");
    assert_eq!(o["filled_quantity"], "0.2");
    assert_eq!(o["fee"], "12");
    assert_eq!(o["client_order_id"], "a-1");
    let (_, open) = alice.get("/api/v1/orders?status=open&market=BTC-USDT").await;
    assert_eq!(open["orders"].as_array().unwrap().len(), 1);
    let (_, by_cid) = alice.get("/api/v1/orders?client_order_id=a-1").await;
    assert_eq!(by_cid["orders"][0]["id"].as_u64(), Some(sell_id), "{by_cid}");
    let (_, fills) = bob.signed(Method::GET, "/api/v1/fills", "market=BTC-USDT", None).await;
    assert_eq!(fills["fills"].as_array().unwrap().len(), 1);
    assert_eq!(fills["fills"][0]["side"], "buy");
    let (_, fills) = alice.get("/api/v1/fills").await;
    assert_eq!(fills["fills"][0]["role"], "maker");
    assert_eq!(fills["fills"][0]["side"], "sell");

    // Another user's order is unknown to Bob, whatever he tries.
    let (s, e) = bob.get(&format!("/api/v1/orders/{sell_id}")).await;
    assert_eq!((s, e["code"].as_str()), (404, Some("unknown_order")));
    let (s, e) = bob.signed(Method::DELETE, &format!("/api/v1/orders/{sell_id}"), "", None).await;
    assert_eq!((s, e["code"].as_str()), (404, Some("unknown_order")));
    let (s, e) = bob.signed(Method::GET, "/api/v1/orders", "client_order_id=a-1", None).await;
    assert_eq!(s, 200);
    assert_eq!(e["orders"].as_array().unwrap().len(), 0);

    // Public market data.
    let (_, trades) = bob.get("/api/v1/markets/BTC-USDT/trades").await;
    assert_eq!(trades[0]["price"], "60000");
    assert_eq!(trades[0]["taker_side"], "buy");
    let (_, candles) = bob.get("/api/v1/markets/btc-usdt/candles?interval=1m").await;
    assert_eq!(candles.as_array().unwrap().len(), 1);
    assert_eq!(candles[0]["volume"], "0.2");
    assert_eq!(candles[0]["quote_volume"], "12000");
    for interval in ["5m", "15m", "1h", "4h", "1d"] {
        let (_, c) =
            bob.get(&format!("/api/v1/markets/BTC-USDT/candles?interval={interval}")).await;
        assert_eq!(c[0]["close"], "60000", "{interval}");
    }
    let (_, ticker) = bob.get("/api/v1/markets/BTC-USDT/ticker").await;
    assert_eq!(ticker["last"], "60000");
    assert_eq!(ticker["volume"], "0.2");
    assert_eq!(ticker["best_ask"], "60000");
    let (_, depth) = bob.get("/api/v1/markets/BTC-USDT/depth").await;
    assert_eq!(depth["asks"][0], json!(["60000", "0.3"]));

    // The same story arrived on Bob's WebSocket.
    let mut seen = BTreeMap::new();
    while seen.len() < 6 {
        let m = ws_next(&mut ws).await;
        let channel = m["channel"].as_str().unwrap_or("").to_string();
        seen.entry(channel).or_insert(m);
    }
    assert_eq!(seen["trades"]["trades"][0]["price"], "60000");
    assert_eq!(seen["fills"]["data"]["price"], "60000");
    assert_eq!(seen["fills"]["data"]["role"], "taker");
    assert!(
        seen.contains_key("depth") && seen.contains_key("orders") && seen.contains_key("balances")
    );
    assert_eq!(seen["candles"]["candle"]["close"], "60000");

    // Cancel the rest; the lock is released.
    let (s, c) = alice.signed(Method::DELETE, &format!("/api/v1/orders/{sell_id}"), "", None).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["canceled_quantity"], "0.3");
    let (_, a) = alice.get("/api/v1/balances").await;
    assert_eq!(balance(&a, "BTC"), ("0.8".to_string(), "0".to_string()));
    let (_, o) = alice.get(&format!("/api/v1/orders/{sell_id}")).await;
    assert_eq!(o["status"], "canceled");

    // The ledger explains every change of Alice's BTC: deposit, lock, trade, release.
    let (_, ledger) = alice.get("/api/v1/ledger?asset=BTC").await;
    let kinds: Vec<&str> =
        ledger["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.last(), Some(&"deposit"));
    assert!(kinds.contains(&"trade"));
    assert_eq!(ledger["entries"][0]["available"], "0.8");

    // Sessions: list, and revoking the session logs the browser out.
    let (_, sessions) = alice.get("/api/v1/sessions").await;
    assert_eq!(sessions[0]["current"], true);
    let r = alice.http.post(format!("{}/api/v1/auth/logout", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (s, _) = alice.get("/api/v1/balances").await;
    assert_eq!(s, 401);
    // The API key still works after logout.
    let (s, _) = alice.signed(Method::GET, "/api/v1/balances", "", None).await;
    assert_eq!(s, 200);
}

async fn bad_input(backend: Backend) {
    let app = exchange(backend).await;
    let mut carol = register(&app, "carol@example.com").await;
    carol.create_key(&["trade"]).await;
    deposit(&app, carol.id, "USDT", "1000").await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": "100.001", "quantity": "0.001"}),
            400,
            "price_off_tick",
        ),
        (
            json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": "100.0000001", "quantity": "0.001"}),
            400,
            "too_precise",
        ),
        (
            json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": "100", "quantity": "0.00015"}),
            400,
            "quantity_off_lot",
        ),
        (
            json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": "-1", "quantity": "0.001"}),
            400,
            "negative_amount",
        ),
        (
            json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": "0", "quantity": "0.001"}),
            400,
            "price_zero",
        ),
        (
            json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": "100", "quantity": "0"}),
            400,
            "quantity_zero",
        ),
        (
            json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": "1e5", "quantity": "0.001"}),
            400,
            "bad_amount",
        ),
        (
            json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": 100, "quantity": "0.001"}),
            400,
            "bad_json",
        ),
        (
            json!({"market": "BTC-USDT", "side": "up", "type": "limit", "price": "100", "quantity": "0.001"}),
            400,
            "bad_side",
        ),
        (
            json!({"market": "NOPE-USDT", "side": "buy", "type": "limit", "price": "100", "quantity": "0.001"}),
            404,
            "unknown_market",
        ),
        (
            json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": "100", "quantity": "20"}),
            400,
            "insufficient_funds",
        ),
        (
            json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": "100", "quantity": "0.0001"}),
            400,
            "notional_below_min",
        ),
        (json!({"market": "BTC-USDT", "side": "buy", "type": "market"}), 400, "bad_order"),
        (
            json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": "100", "quantity": "0.001", "extra": 1}),
            400,
            "bad_json",
        ),
        (
            json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": "100", "quantity": "0.001", "client_order_id": "bad id!"}),
            400,
            "bad_client_order_id",
        ),
    ];
    for (body, status, code) in cases {
        let (s, e) = carol.signed(Method::POST, "/api/v1/orders", "", Some(body.clone())).await;
        assert_eq!((s, e["code"].as_str().unwrap_or("")), (status, code), "{body}: {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Malformed JSON and an oversized body over the cookie session.
    let r = carol
        .http
        .post(format!("{}/api/v1/orders", app.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "bad_json");
    let big = format!("{{\"market\":\"{}\"}}", "x".repeat(200_000));
    let r = carol
        .http
        .post(format!("{}/api/v1/orders", app.url))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let (key, secret) = carol.key.clone().unwrap();
    let (s, _) = signed_request(
        &app.url,
        &key,
        &secret,
        Method::POST,
        "/api/v1/orders",
        "",
        Some(json!({"pad": "x".repeat(200_000)})),
    )
    .await;
    assert_eq!(s, 413);
    // Cross-site form posts with the cookie are refused.
    let r = carol
        .http
        .post(format!("{}/api/v1/orders", app.url))
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Signatures: wrong, missing, stale, unknown key; scopes.
    let url = |q: &str| format!("{}/api/v1/balances?{q}", app.url);
    let ts = bourse_server::now_ms();
    let plain = reqwest::Client::new();
    let r = plain
        .get(url(&format!("timestamp={ts}&signature=00")))
        .header("X-API-KEY", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.json::<Value>().await.unwrap()["code"].clone()),
        (401, json!("invalid_signature"))
    );
    let r =
        plain.get(url(&format!("timestamp={ts}"))).header("X-API-KEY", &key).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "missing_signature");
    let old = ts - 120_000;
    let sig =
        bourse_server::crypto::hmac_hex(secret.as_bytes(), format!("timestamp={old}").as_bytes());
    let r = plain
        .get(url(&format!("timestamp={old}&signature={sig}")))
        .header("X-API-KEY", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "timestamp_outside_recv_window");
    let (s, e) =
        signed_request(&app.url, "nokey", &secret, Method::GET, "/api/v1/balances", "", None).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("invalid_api_key")));
    let read_only = carol.create_key(&["read"]).await;
    let (s, e) = signed_request(
        &app.url,
        &read_only.0,
        &read_only.1,
        Method::POST,
        "/api/v1/orders",
        "",
        Some(json!({})),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (403, Some("missing_scope")));
    let (s, e) = signed_request(
        &app.url,
        &read_only.0,
        &read_only.1,
        Method::GET,
        "/api/v1/api-keys",
        "",
        None,
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (403, Some("session_required")));
    // A revoked key stops working.
    let (_, keys) = carol.get("/api/v1/api-keys").await;
    let id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["api_key"] == read_only.0.as_str())
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = carol.http.delete(format!("{}/api/v1/api-keys/{id}", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (s, _) = signed_request(
        &app.url,
        &read_only.0,
        &read_only.1,
        Method::GET,
        "/api/v1/balances",
        "",
        None,
    )
    .await;
    assert_eq!(s, 401);

    // Nothing of that changed Carol's money.
    let (_, b) = carol.get("/api/v1/balances").await;
    assert_eq!(balance(&b, "USDT"), ("1000".to_string(), "0".to_string()));
    let (_, open) = carol.get("/api/v1/orders?status=open").await;
    assert_eq!(open["orders"].as_array().unwrap().len(), 0);

    // Accounts: no enumeration, weak passwords refused, wrong passwords generic.
    let http = cookie_client();
    let r = http
        .post(format!("{}/api/v1/auth/signup", app.url))
        .json(&json!({"email": "carol@example.com", "password": "another long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "an existing address answers like a new one");
    let r = http
        .post(format!("{}/api/v1/auth/signup", app.url))
        .json(&json!({"email": "dave@example.com", "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "weak_password");
    for email in ["carol@example.com", "nobody@example.com"] {
        let r = http
            .post(format!("{}/api/v1/auth/login", app.url))
            .json(&json!({"email": email, "password": "wrong password!"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_credentials");
    }
    let r = http
        .post(format!("{}/api/v1/auth/verify", app.url))
        .json(&json!({"token": "0000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http.get(format!("{}/api/v1/nope", app.url)).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.json::<Value>().await.unwrap()["code"].clone()),
        (404, json!("not_found"))
    );
}

/// A client that takes a REST snapshot and applies WebSocket diffs with a larger update id
/// ends with the server's book, after a storm of random orders from two users.
async fn book_sync(backend: Backend) {
    let app = exchange(backend).await;
    let mut u1 = register(&app, "u1@example.com").await;
    let mut u2 = register(&app, "u2@example.com").await;
    u1.create_key(&["trade"]).await;
    u2.create_key(&["trade"]).await;
    for u in [&u1, &u2] {
        deposit(&app, u.id, "LTC", "10000").await;
        deposit(&app, u.id, "USDT", "10000000").await;
    }
    let mut ws = ws_connect(&app).await;
    ws_send(&mut ws, json!({"op": "subscribe", "channels": ["depth:LTC-USDT"]})).await;
    assert_eq!(ws_next(&mut ws).await["op"], "subscribed");
    // Some orders before the snapshot, some after.
    let mut rng = 12345u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut storm = |n: usize| {
        let mut orders = Vec::new();
        for _ in 0..n {
            let side = if next() % 2 == 0 { "buy" } else { "sell" };
            let price = format!("{}.{:02}", 75 + next() % 10, next() % 100);
            let qty = format!("0.{:03}", 1 + next() % 500);
            let tif = if next() % 5 == 0 { "ioc" } else { "gtc" };
            orders.push((next() % 2, json!({"market": "LTC-USDT", "side": side, "type": "limit", "price": price, "quantity": qty, "time_in_force": tif})));
        }
        orders
    };
    for (who, body) in storm(40) {
        let u = if who == 0 { &u1 } else { &u2 };
        let (s, e) = u.signed(Method::POST, "/api/v1/orders", "", Some(body)).await;
        assert!(s == 201 || e["code"] == "notional_below_min", "{e}");
    }
    let (_, snapshot) = u1.get("/api/v1/markets/LTC-USDT/depth?limit=5000").await;
    let mut book: [BTreeMap<String, String>; 2] = Default::default();
    for (i, side) in ["bids", "asks"].iter().enumerate() {
        for level in snapshot[side].as_array().unwrap() {
            book[i].insert(
                level[0].as_str().unwrap().to_string(),
                level[1].as_str().unwrap().to_string(),
            );
        }
    }
    let mut applied = snapshot["update_id"].as_u64().unwrap();
    let orders = storm(120);
    let (a, b) = (&u1, &u2);
    let futures: Vec<_> = orders
        .into_iter()
        .map(|(who, body)| async move {
            let u = if who == 0 { a } else { b };
            u.signed(Method::POST, "/api/v1/orders", "", Some(body)).await
        })
        .collect();
    futures_util::future::join_all(futures).await;
    let (_, cancel) = u1.signed(Method::DELETE, "/api/v1/orders", "market=LTC-USDT", None).await;
    assert!(cancel["canceled"].is_array());
    let (_, server) = u1.get("/api/v1/markets/LTC-USDT/depth?limit=5000").await;
    let target = server["update_id"].as_u64().unwrap();
    while applied < target {
        let diff = ws_next_on(&mut ws, "depth").await;
        let last = diff["update_id"].as_u64().unwrap();
        if last <= applied {
            continue;
        }
        assert!(diff["first_update_id"].as_u64().unwrap() <= applied + 1, "gap before {diff}");
        for (i, side) in ["bids", "asks"].iter().enumerate() {
            for level in diff[side].as_array().unwrap() {
                let (p, q) = (
                    level[0].as_str().unwrap().to_string(),
                    level[1].as_str().unwrap().to_string(),
                );
                if q == "0" {
                    book[i].remove(&p);
                } else {
                    book[i].insert(p, q);
                }
            }
        }
        applied = last;
    }
    assert_eq!(applied, target);
    for (i, side) in ["bids", "asks"].iter().enumerate() {
        let expected: BTreeMap<String, String> = server[side]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l[0].as_str().unwrap().to_string(), l[1].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(book[i], expected, "{side}");
    }
}

/// Orders, balances and sessions survive a restart; concurrent orders never overdraw.
async fn restart_and_concurrency(backend: Backend) {
    let mut app = exchange(backend).await;
    let mut erin = register(&app, "erin@example.com").await;
    erin.create_key(&["trade"]).await;
    deposit(&app, erin.id, "USDT", "1000").await;
    // 40 concurrent buys of 100 USDT each (+ fee reserve) against 1,000 USDT: at most 9 rest.
    let futures: Vec<_> = (0..40)
        .map(|i| {
            let e = &erin;
            async move {
                let body = json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": format!("{}", 1000 + i), "quantity": "0.1"});
                e.signed(Method::POST, "/api/v1/orders", "", Some(body)).await
            }
        })
        .collect();
    let results = futures_util::future::join_all(futures).await;
    let accepted = results.iter().filter(|(s, _)| *s == 201).count();
    assert!(results.iter().all(|(s, e)| *s == 201 || e["code"] == "insufficient_funds"));
    assert!((1..=9).contains(&accepted), "{accepted}");
    let (_, before) = erin.get("/api/v1/balances").await;
    let (avail, locked) = balance(&before, "USDT");
    let total = bourse_core::decimal::parse_units(&avail, 6).unwrap()
        + bourse_core::decimal::parse_units(&locked, 6).unwrap();
    assert_eq!(total, 1_000_000_000, "available + locked is the deposit");

    app.stop().await;
    app.start().await;
    // The same cookie jar: the session survived, and so did everything else.
    erin.base = app.url.clone();
    let (s, me) = erin.get("/api/v1/me").await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["email"], "erin@example.com");
    let (_, after) = erin.get("/api/v1/balances").await;
    assert_eq!(after, before);
    let (_, open) = erin.get("/api/v1/orders?status=open").await;
    assert_eq!(open["orders"].as_array().unwrap().len(), accepted);
    let (s, _) = erin.signed(Method::DELETE, "/api/v1/orders", "", None).await;
    assert_eq!(s, 200);
    let (_, b) = erin.get("/api/v1/balances").await;
    assert_eq!(balance(&b, "USDT"), ("1000".to_string(), "0".to_string()));
}

macro_rules! on_both {
    ($($name:ident),*) => {
        mod sqlite {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(Backend::Sqlite).await })*
        }
        mod postgres {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(Backend::Postgres).await })*
        }
    };
}

on_both!(trading_flow, bad_input, book_sync, restart_and_concurrency);
