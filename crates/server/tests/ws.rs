//! WebSocket limits and protocol errors against the real server: unknown channels, private
//! channels without auth, the subscription limit, oversized messages, bad JSON, ping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_and_limits() {
    let app =
        App::spawn_with(Backend::Sqlite, &[("BOURSE_LIMITS__WS_SUBSCRIPTIONS_MAX", "30")]).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let mut ws = ws_connect(&app).await;

    ws_send(&mut ws, json!({"op": "ping"})).await;
    assert_eq!(ws_next(&mut ws).await["op"], "pong");
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(ws_next(&mut ws).await["code"], "bad_request");
    ws_send(&mut ws, json!({"op": "subscribe", "channels": ["depth:NOPE-USDT"]})).await;
    assert_eq!(ws_next(&mut ws).await["code"], "unknown_market");
    ws_send(&mut ws, json!({"op": "subscribe", "channels": ["weather:BTC-USDT"]})).await;
    assert_eq!(ws_next(&mut ws).await["code"], "bad_channel");
    ws_send(&mut ws, json!({"op": "subscribe", "channels": ["orders"]})).await;
    assert_eq!(ws_next(&mut ws).await["code"], "unauthenticated");
    ws_send(&mut ws, json!({"op": "auth", "api_key": "nope", "timestamp": bourse_server::now_ms(), "signature": "00"})).await;
    assert_eq!(ws_next(&mut ws).await["code"], "invalid_api_key");

    // 30 subscriptions at most per connection here: 4 markets × (3 + 6 candle intervals) = 36.
    let mut channels = Vec::new();
    for m in ["BTC-USDT", "ETH-USDT", "LTC-USDT", "ETH-BTC"] {
        for c in ["depth", "trades", "ticker"] {
            channels.push(format!("{c}:{m}"));
        }
        for i in ["1m", "5m", "15m", "1h", "4h", "1d"] {
            channels.push(format!("candles:{m}:{i}"));
        }
    }
    ws_send(&mut ws, json!({"op": "subscribe", "channels": channels})).await;
    assert_eq!(ws_next(&mut ws).await["code"], "too_many_subscriptions");
    ws_send(&mut ws, json!({"op": "subscribe", "channels": channels[..30]})).await;
    assert_eq!(ws_next(&mut ws).await["op"], "subscribed");
    let again: Vec<&String> = std::iter::repeat_n(&channels[0], 40).collect();
    ws_send(&mut ws, json!({"op": "subscribe", "channels": again})).await;
    assert_eq!(ws_next(&mut ws).await["op"], "subscribed", "re-subscribing counts once");
    ws_send(&mut ws, json!({"op": "subscribe", "channels": [channels[30]]})).await;
    assert_eq!(ws_next(&mut ws).await["code"], "too_many_subscriptions");
    ws_send(&mut ws, json!({"op": "unsubscribe", "channels": ["depth:BTC-USDT"]})).await;
    assert_eq!(ws_next(&mut ws).await["op"], "unsubscribed");

    // A message above the size limit closes the connection.
    let huge = "x".repeat(64 * 1024);
    let _ = ws.send(Message::Text(huge.into())).await;
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .unwrap();
    assert!(closed);
    // The server is fine: another client works.
    let mut other = ws_connect(&app).await;
    ws_send(&mut other, json!({"op": "ping"})).await;
    assert_eq!(ws_next(&mut other).await["op"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_authenticates_the_upgrade() {
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let user = register(&app, "ws@example.com").await;
    // Log in again to read the session cookie value for the upgrade request.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.url))
        .json(&json!({"email": "ws@example.com", "password": "a long enough passphrase"}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            app.ws_url(),
        )
        .unwrap();
    request.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws_send(&mut ws, json!({"op": "subscribe", "channels": ["balances", "orders", "fills"]})).await;
    assert_eq!(ws_next(&mut ws).await["op"], "subscribed");

    // A key limited to another address cannot authenticate a WebSocket from here.
    let r = user
        .http
        .post(format!("{}/api/v1/api-keys", app.url))
        .json(&json!({"label": "elsewhere", "scopes": ["read"], "ip_allowlist": ["10.9.8.7"]}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    let (key, secret) = (body["api_key"].as_str().unwrap(), body["secret"].as_str().unwrap());
    let ts = bourse_server::now_ms();
    let sig = bourse_server::crypto::hmac_hex(
        secret.as_bytes(),
        format!("api_key={key}&timestamp={ts}").as_bytes(),
    );
    let mut other = ws_connect(&app).await;
    ws_send(&mut other, json!({"op": "auth", "api_key": key, "timestamp": ts, "signature": sig}))
        .await;
    assert_eq!(ws_next(&mut other).await["code"], "ip_not_allowed");
}
