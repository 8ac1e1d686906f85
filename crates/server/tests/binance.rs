//! The Binance-compatible `/api/v3` over real HTTP: Binance's shapes, number formats, error
//! codes and message texts, signed requests with the parameters in the query or (as ccxt sends
//! them) in a form body; and the real `ccxt` and `python-binance` packages pointed at the
//! server (`tests/binance/*.py`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{App, Backend, User, register};
use serde_json::Value;

/// A signed `/api/v3` request: `params` (without timestamp) go in the query, or with
/// `in_body` in a form body, the signature last wherever the rest is.
async fn v3(
    app: &App,
    (key, secret): &(String, String),
    method: reqwest::Method,
    path: &str,
    params: &str,
    in_body: bool,
) -> (u16, Value) {
    let ts = bourse_server::now_ms();
    let sep = if params.is_empty() { "" } else { "&" };
    let payload = format!("{params}{sep}timestamp={ts}&recvWindow=10000");
    let signature = bourse_server::crypto::hmac_hex(secret.as_bytes(), payload.as_bytes());
    let signed = format!("{payload}&signature={signature}");
    let http = reqwest::Client::new();
    let url = format!("{}/api/v3{path}", app.url);
    let request = if in_body {
        http.request(method, url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(signed)
    } else {
        http.request(method, format!("{url}?{signed}"))
    };
    let r = request.header("X-MBX-APIKEY", key).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn public(app: &App, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{}/api/v3{path}", app.url)).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A trader with funds and a key that reads and trades.
async fn trader(app: &App, email: &str) -> (User, (String, String)) {
    let mut user = register(app, email).await;
    common::deposit(app, user.id, "USDT", "100000").await;
    common::deposit(app, user.id, "BTC", "2").await;
    let key = user.create_key(&["read", "trade"]).await;
    (user, key)
}

/// A public list once it is not empty (the read models follow the engine by a moment).
async fn eventually(app: &App, path: &str) -> Value {
    let wait = async {
        loop {
            let (_, list) = public(app, path).await;
            if list.as_array().is_some_and(|l| !l.is_empty()) {
                break list;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), wait).await.expect(path)
}

fn code(body: &Value) -> i64 {
    body["code"].as_i64().unwrap_or(0)
}

#[tokio::test]
async fn public_market_data_has_binance_shapes() {
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    assert_eq!(public(&app, "/ping").await, (200, serde_json::json!({})));
    let (_, time) = public(&app, "/time").await;
    assert!(time["serverTime"].as_i64().unwrap() > 1_700_000_000_000);

    let (status, info) = public(&app, "/exchangeInfo").await;
    assert_eq!(status, 200);
    let btc =
        info["symbols"].as_array().unwrap().iter().find(|s| s["symbol"] == "BTCUSDT").unwrap();
    assert_eq!(
        (btc["baseAsset"].as_str(), btc["quoteAsset"].as_str()),
        (Some("BTC"), Some("USDT"))
    );
    assert_eq!(btc["status"], "TRADING");
    assert_eq!(btc["permissionSets"], serde_json::json!([["SPOT"]]));
    let filters = btc["filters"].as_array().unwrap();
    let filter = |t: &str| filters.iter().find(|f| f["filterType"] == t).unwrap().clone();
    assert_eq!(filter("PRICE_FILTER")["tickSize"], "0.010000");
    assert_eq!(filter("LOT_SIZE")["stepSize"], "0.00010000");
    assert_eq!(filter("NOTIONAL")["minNotional"], "1.000000");
    let (status, one) = public(&app, "/exchangeInfo?symbol=ETHBTC").await;
    assert_eq!((status, one["symbols"].as_array().unwrap().len()), (200, 1));
    let (status, bad) = public(&app, "/exchangeInfo?symbol=NOPE").await;
    assert_eq!((status, code(&bad), bad["msg"].as_str()), (400, -1121, Some("Invalid symbol.")));
    let (status, list) =
        public(&app, "/ticker/price?symbols=%5B%22BTCUSDT%22%2C%22ETHUSDT%22%5D").await;
    assert_eq!((status, list.as_array().unwrap().len()), (200, 2));

    // A trade makes the book, trades, klines and tickers move.
    let (_, maker) = trader(&app, "maker@example.com").await;
    let (_, taker) = trader(&app, "taker@example.com").await;
    let sell = "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.5&price=60000";
    let (status, body) = v3(&app, &maker, reqwest::Method::POST, "/order", sell, true).await;
    assert_eq!(status, 200, "{body}");
    let (_, depth) = public(&app, "/depth?symbol=BTCUSDT&limit=5").await;
    assert_eq!(depth["asks"], serde_json::json!([["60000.000000", "0.50000000"]]));
    let update_id = depth["lastUpdateId"].as_u64().unwrap();
    assert!(update_id > 0);
    let buy = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.2";
    let (status, body) = v3(&app, &taker, reqwest::Method::POST, "/order", buy, false).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "FILLED");
    let (_, depth) = public(&app, "/depth?symbol=BTCUSDT").await;
    assert_eq!(depth["asks"][0][1], "0.30000000");
    assert!(depth["lastUpdateId"].as_u64().unwrap() > update_id);
    // The trade reaches the read models a moment after the order's answer.
    let trades = eventually(&app, "/trades?symbol=BTCUSDT").await;
    let t = &trades[0];
    assert_eq!(
        (t["price"].as_str(), t["qty"].as_str(), t["isBuyerMaker"].as_bool()),
        (Some("60000.000000"), Some("0.20000000"), Some(false))
    );
    let (_, agg) = public(&app, "/aggTrades?symbol=BTCUSDT&fromId=0").await;
    assert_eq!((agg[0]["p"].as_str(), agg[0]["M"].as_bool()), (Some("60000.000000"), Some(true)));
    let klines = eventually(&app, "/klines?symbol=BTCUSDT&interval=1m").await;
    let k = klines[0].as_array().unwrap();
    assert_eq!(k.len(), 12);
    assert_eq!(
        (k[1].as_str(), k[5].as_str(), k[8].as_u64()),
        (Some("60000.000000"), Some("0.20000000"), Some(1))
    );
    let (status, bad) = public(&app, "/klines?symbol=BTCUSDT&interval=7m").await;
    assert_eq!((status, code(&bad)), (400, -1120));
    let (_, ticker) = public(&app, "/ticker/24hr?symbol=BTCUSDT").await;
    assert_eq!(ticker["lastPrice"], "60000.000000");
    assert_eq!(ticker["askPrice"], "60000.000000");
    assert_eq!(ticker["volume"], "0.20000000");
    assert_eq!(ticker["count"], 1);
    let (_, book) = public(&app, "/ticker/bookTicker?symbol=BTCUSDT").await;
    assert_eq!(book["askQty"], "0.30000000");
    let (_, avg) = public(&app, "/avgPrice?symbol=BTCUSDT").await;
    assert_eq!((avg["mins"].as_u64(), avg["price"].as_str()), (Some(5), Some("60000.000000")));
}

#[tokio::test]
async fn signed_trading_answers_and_errors_as_binance_does() {
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let (_, key) = trader(&app, "trader@example.com").await;
    use reqwest::Method;

    let (status, account) = v3(&app, &key, Method::GET, "/account", "", false).await;
    assert_eq!(status, 200, "{account}");
    let usdt = account["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == "USDT")
        .unwrap()
        .clone();
    assert_eq!(
        (usdt["free"].as_str(), usdt["locked"].as_str()),
        (Some("100000.000000"), Some("0.000000"))
    );

    // ccxt's order: every parameter in the form body, the signature last.
    let limit = "symbol=BTCUSDT&side=BUY&newClientOrderId=x-TKT5PX2F91423450af72b3dc196780&newOrderRespType=FULL&type=LIMIT&quantity=0.01&price=50000&timeInForce=GTC";
    let (status, placed) = v3(&app, &key, Method::POST, "/order", limit, true).await;
    assert_eq!(status, 200, "{placed}");
    assert_eq!(placed["status"], "NEW");
    assert_eq!(placed["clientOrderId"], "x-TKT5PX2F91423450af72b3dc196780");
    assert_eq!(
        (placed["origQty"].as_str(), placed["cummulativeQuoteQty"].as_str()),
        (Some("0.01000000"), Some("0.000000"))
    );
    assert_eq!(placed["fills"], serde_json::json!([]));
    let id = placed["orderId"].as_u64().unwrap();
    let (status, again) = v3(&app, &key, Method::POST, "/order", limit, true).await;
    assert_eq!(
        (status, code(&again), again["msg"].as_str()),
        (400, -2010, Some("Duplicate order sent."))
    );
    let (_, got) =
        v3(&app, &key, Method::GET, "/order", &format!("symbol=BTCUSDT&orderId={id}"), false).await;
    assert_eq!(
        (got["orderId"].as_u64(), got["status"].as_str(), got["type"].as_str()),
        (Some(id), Some("NEW"), Some("LIMIT"))
    );
    let (_, by_cid) = v3(
        &app,
        &key,
        Method::GET,
        "/order",
        "symbol=BTCUSDT&origClientOrderId=x-TKT5PX2F91423450af72b3dc196780",
        false,
    )
    .await;
    assert_eq!(by_cid["orderId"].as_u64(), Some(id));
    let (_, open) = v3(&app, &key, Method::GET, "/openOrders", "symbol=BTCUSDT", false).await;
    assert_eq!(open.as_array().unwrap().len(), 1);
    let (_, account) = v3(&app, &key, Method::GET, "/account", "", false).await;
    let usdt = account["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == "USDT")
        .unwrap()
        .clone();
    assert_ne!(usdt["locked"], "0.000000");

    // Refusals with Binance's codes and texts.
    for (params, expect_code, expect_msg) in [
        (
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=100&price=50000",
            -2010,
            "Account has insufficient balance for requested action.",
        ),
        (
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00001&price=50000",
            -1013,
            "Filter failure: LOT_SIZE",
        ),
        (
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=50000.005",
            -1013,
            "Filter failure: PRICE_FILTER",
        ),
        (
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.0001&price=1",
            -1013,
            "Filter failure: NOTIONAL",
        ),
        (
            "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.01&price=50000",
            -1102,
            "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
        ),
        (
            "symbol=BTCUSDT&side=UP&type=LIMIT&timeInForce=GTC&quantity=0.01&price=50000",
            -1117,
            "Invalid side.",
        ),
        ("symbol=BTCUSDT&side=BUY&type=STOP_LOSS&quantity=0.01", -1116, "Invalid orderType."),
        ("symbol=NOPE&side=BUY&type=MARKET&quantity=0.01", -1121, "Invalid symbol."),
        (
            "symbol=BTCUSDT&side=SELL&type=LIMIT_MAKER&quantity=0.01&price=40000",
            -2010,
            "Order would immediately match and take.",
        ),
    ] {
        let (status, body) = v3(&app, &key, Method::POST, "/order", params, true).await;
        assert_eq!(
            (status, code(&body), body["msg"].as_str()),
            (400, expect_code, Some(expect_msg)),
            "{params}"
        );
    }
    let (status, body) = v3(
        &app,
        &key,
        Method::POST,
        "/order/test",
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00001&price=50000",
        true,
    )
    .await;
    assert_eq!((status, code(&body)), (400, -1013));
    let (status, body) = v3(
        &app,
        &key,
        Method::POST,
        "/order/test",
        "symbol=BTCUSDT&side=BUY&type=MARKET&quoteOrderQty=10",
        true,
    )
    .await;
    assert_eq!((status, body), (200, serde_json::json!({})));

    // Another user's order is unknown to this key, whichever way it is named.
    let (_, other) = trader(&app, "other@example.com").await;
    for (method, params) in [
        (Method::GET, format!("symbol=BTCUSDT&orderId={id}")),
        (
            Method::GET,
            "symbol=BTCUSDT&origClientOrderId=x-TKT5PX2F91423450af72b3dc196780".to_string(),
        ),
        (Method::DELETE, format!("symbol=BTCUSDT&orderId={id}")),
    ] {
        let (status, body) = v3(&app, &other, method.clone(), "/order", &params, false).await;
        let expected = if method == Method::GET { -2013 } else { -2011 };
        assert_eq!((status, code(&body)), (400, expected), "{params}");
    }
    let (_, theirs) = v3(&app, &other, Method::GET, "/allOrders", "symbol=BTCUSDT", false).await;
    assert_eq!(theirs, serde_json::json!([]));
    // Cancels: the cancel's own client id, the original in origClientOrderId.
    let (status, canceled) = v3(
        &app,
        &key,
        Method::DELETE,
        "/order",
        &format!("symbol=BTCUSDT&orderId={id}&newClientOrderId=cancel-1"),
        false,
    )
    .await;
    assert_eq!(status, 200, "{canceled}");
    assert_eq!(
        (
            canceled["status"].as_str(),
            canceled["clientOrderId"].as_str(),
            canceled["origClientOrderId"].as_str()
        ),
        (Some("CANCELED"), Some("cancel-1"), Some("x-TKT5PX2F91423450af72b3dc196780"))
    );
    let (status, body) =
        v3(&app, &key, Method::DELETE, "/order", &format!("symbol=BTCUSDT&orderId={id}"), false)
            .await;
    assert_eq!(
        (status, code(&body), body["msg"].as_str()),
        (400, -2011, Some("Unknown order sent."))
    );
    let (status, body) =
        v3(&app, &key, Method::GET, "/order", "symbol=BTCUSDT&orderId=999999", false).await;
    assert_eq!(
        (status, code(&body), body["msg"].as_str()),
        (400, -2013, Some("Order does not exist."))
    );
    let (status, body) =
        v3(&app, &key, Method::DELETE, "/openOrders", "symbol=BTCUSDT", false).await;
    assert_eq!((status, code(&body)), (400, -2011));
    for price in ["40000", "41000"] {
        let p = format!(
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price={price}"
        );
        assert_eq!(v3(&app, &key, Method::POST, "/order", &p, false).await.0, 200);
    }
    let (status, all) =
        v3(&app, &key, Method::DELETE, "/openOrders", "symbol=BTCUSDT", false).await;
    assert_eq!((status, all.as_array().unwrap().len()), (200, 2), "{all}");
    assert!(all.as_array().unwrap().iter().all(|o| o["status"] == "CANCELED"));
    let (_, history) = v3(&app, &key, Method::GET, "/allOrders", "symbol=BTCUSDT", false).await;
    let ids: Vec<u64> =
        history.as_array().unwrap().iter().map(|o| o["orderId"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    let (_, from) = v3(
        &app,
        &key,
        Method::GET,
        "/allOrders",
        &format!("symbol=BTCUSDT&orderId={}", ids[1]),
        false,
    )
    .await;
    assert_eq!(from.as_array().unwrap().len(), 2);

    // A market buy by quote amount against a resting sell: FULL fills with the commission.
    let (_, maker) = trader(&app, "maker@example.com").await;
    let sell = "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=60000";
    assert_eq!(v3(&app, &maker, Method::POST, "/order", sell, true).await.0, 200);
    let (status, bought) = v3(
        &app,
        &key,
        Method::POST,
        "/order",
        "symbol=BTCUSDT&side=BUY&type=MARKET&quoteOrderQty=6000",
        true,
    )
    .await;
    assert_eq!(status, 200, "{bought}");
    assert_eq!(
        (bought["status"].as_str(), bought["executedQty"].as_str()),
        (Some("FILLED"), Some("0.09980000")),
        "{bought}"
    );
    let fill = &bought["fills"][0];
    assert_eq!(
        (fill["price"].as_str(), fill["commissionAsset"].as_str()),
        (Some("60000.000000"), Some("USDT"))
    );
    let (_, mine) = v3(&app, &key, Method::GET, "/myTrades", "symbol=BTCUSDT", false).await;
    let t = &mine[0];
    assert_eq!(
        (t["isBuyer"].as_bool(), t["isMaker"].as_bool(), t["commissionAsset"].as_str()),
        (Some(true), Some(false), Some("USDT"))
    );
    assert_eq!(t["orderId"], bought["orderId"]);
    let (_, theirs) = v3(&app, &maker, Method::GET, "/myTrades", "symbol=BTCUSDT", false).await;
    assert_eq!(
        (theirs[0]["isBuyer"].as_bool(), theirs[0]["isMaker"].as_bool()),
        (Some(false), Some(true))
    );

    // Authentication: Binance's codes, nothing placed.
    let wrong = (key.0.clone(), "not the secret".to_string());
    let (status, body) = v3(&app, &wrong, Method::GET, "/account", "", false).await;
    assert_eq!(
        (status, code(&body), body["msg"].as_str()),
        (400, -1022, Some("Signature for this request is not valid."))
    );
    let unknown = ("nokey".to_string(), key.1.clone());
    let (status, body) = v3(&app, &unknown, Method::GET, "/account", "", false).await;
    assert_eq!((status, code(&body)), (401, -2015));
    let stale = reqwest::Client::new()
        .get(format!("{}/api/v3/account?timestamp=1000&signature=00", app.url))
        .header("X-MBX-APIKEY", &key.0)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 400);
    assert_eq!(code(&stale.json().await.unwrap()), -1021);
    let anonymous = reqwest::get(format!("{}/api/v3/account", app.url)).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(code(&anonymous.json().await.unwrap()), -2015);
    let (status, body) = public(&app, "/nothing").await;
    assert_eq!((status, code(&body)), (404, -1000));
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_binance_code() {
    let app = App::spawn_with(
        Backend::Sqlite,
        &[("BOURSE_LIMITS__API_REQUESTS_PER_S", "1"), ("BOURSE_LIMITS__API_BURST", "2")],
    )
    .await;
    let mut last = (0, Value::Null);
    for _ in 0..5 {
        let r = reqwest::get(format!("{}/api/v3/ping", app.url)).await.unwrap();
        let retry = r.headers().get("retry-after").is_some();
        last = (r.status().as_u16(), r.json().await.unwrap_or(Value::Null));
        if last.0 == 429 {
            assert!(retry);
            break;
        }
    }
    assert_eq!((last.0, code(&last.1)), (429, -1003), "{:?}", last.1);
}

/// Runs `python3 tests/binance/SCRIPT` against the app as the user with `key`; fails the test
/// unless the script succeeds and prints "ok" last.
async fn run_python(
    app: &App,
    script: &str,
    (key, secret): &(String, String),
    maker: Option<&(String, String)>,
) {
    // At run time: a build cache filled from another checkout keeps that checkout's path in
    // `env!`.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(manifest.join("tests/binance").join(script))
        .env("BOURSE_URL", &app.url)
        .env("KEY", key)
        .env("SECRET", secret)
        .kill_on_drop(true);
    if let Some((key, secret)) = maker {
        command.env("MAKER_KEY", key).env("MAKER_SECRET", secret);
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(180), command.output())
        .await
        .expect("the client script took over 3 minutes")
        .expect("cannot run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{script}: {stdout}");
    assert!(
        output.status.success() && stdout.trim_end().ends_with("ok"),
        "{script} failed (scripts/test installs ccxt and python-binance):\n{stdout}\n{stderr}"
    );
}

#[tokio::test]
async fn ccxt_and_python_binance_work_unchanged() {
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let (_, maker) = trader(&app, "maker@example.com").await;
    let sell = "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1.5&price=60000";
    assert_eq!(v3(&app, &maker, reqwest::Method::POST, "/order", sell, true).await.0, 200);
    let (_, ccxt_user) = trader(&app, "ccxt@example.com").await;
    run_python(&app, "ccxt_rest.py", &ccxt_user, None).await;
    let (_, python_binance_user) = trader(&app, "python-binance@example.com").await;
    run_python(&app, "python_binance.py", &python_binance_user, None).await;
    // The streams: the book stays in sync through an order storm from two users.
    let (_, ws_maker) = trader(&app, "ws-maker@example.com").await;
    let (_, ws_taker) = trader(&app, "ws-taker@example.com").await;
    run_python(&app, "ccxt_ws.py", &ws_taker, Some(&ws_maker)).await;
}

async fn connect(app: &App, path: &str) -> common::Ws {
    let url = format!("{}{path}", app.url.replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next message that is not a control answer (`result`/`error`).
async fn next_event(ws: &mut common::Ws) -> Value {
    loop {
        let v = common::ws_next(ws).await;
        if v.get("result").is_none() && v.get("error").is_none() {
            return v;
        }
    }
}

#[tokio::test]
async fn market_streams_speak_binance_and_depth_ids_have_no_gaps() {
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let (_, maker) = trader(&app, "maker@example.com").await;
    let (_, taker) = trader(&app, "taker@example.com").await;
    use reqwest::Method;

    // Raw: the stream from the path. Combined: wrapped with the stream's name.
    let mut trades = connect(&app, "/ws/btcusdt@trade").await;
    let mut combined =
        connect(&app, "/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker").await;
    // A bare `/ws` whose first message is Binance's speaks Binance (the API's own protocol
    // otherwise).
    let mut bare = connect(&app, "/ws").await;
    common::ws_send(
        &mut bare,
        serde_json::json!({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 9}),
    )
    .await;
    assert_eq!(common::ws_next(&mut bare).await, serde_json::json!({"result": null, "id": 9}));
    // ccxt.pro's way: any path, then SUBSCRIBE.
    let mut control = connect(&app, "/ws/0").await;
    common::ws_send(&mut control, serde_json::json!({"method": "SUBSCRIBE", "params": ["btcusdt@depth", "btcusdt@aggTrade"], "id": 1})).await;
    assert_eq!(common::ws_next(&mut control).await, serde_json::json!({"result": null, "id": 1}));
    common::ws_send(&mut control, serde_json::json!({"method": "LIST_SUBSCRIPTIONS", "id": "x"}))
        .await;
    assert_eq!(
        common::ws_next(&mut control).await,
        serde_json::json!({"result": ["btcusdt@depth", "btcusdt@aggTrade"], "id": "x"})
    );
    common::ws_send(
        &mut control,
        serde_json::json!({"method": "SUBSCRIBE", "params": ["nope@trade"], "id": 2}),
    )
    .await;
    let refused = common::ws_next(&mut control).await;
    assert_eq!(
        (refused["error"]["code"].as_i64(), refused["id"].as_i64()),
        (Some(2), Some(2)),
        "{refused}"
    );
    common::ws_send(
        &mut control,
        serde_json::json!({"method": "GET_PROPERTY", "params": ["combined"], "id": 3}),
    )
    .await;
    assert_eq!(common::ws_next(&mut control).await["result"], false);

    let (_, snapshot) = public(&app, "/depth?symbol=BTCUSDT&limit=1000").await;
    let mut last = snapshot["lastUpdateId"].as_u64().unwrap();
    // Orders that add, change and remove levels, and one that trades.
    for (key, params) in [
        (&maker, "side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.5&price=60000"),
        (&maker, "side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.5&price=61000"),
        (&maker, "side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.25&price=60000"),
        (&taker, "side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.1&price=59000"),
        (&taker, "side=BUY&type=MARKET&quantity=0.75"),
    ] {
        let (status, body) =
            v3(&app, key, Method::POST, "/order", &format!("symbol=BTCUSDT&{params}"), true).await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, after) = public(&app, "/depth?symbol=BTCUSDT&limit=1000").await;
    let end = after["lastUpdateId"].as_u64().unwrap();
    // Every diff follows the one before it: U == previous u + 1, up to the snapshot's id.
    let mut book_tickers = 0;
    while last < end {
        let m = next_event(&mut combined).await;
        if m["stream"] == "btcusdt@bookTicker" {
            book_tickers += 1;
            continue;
        }
        assert_eq!(m["stream"], "btcusdt@depth@100ms", "{m}");
        let d = &m["data"];
        assert_eq!((d["e"].as_str(), d["s"].as_str()), (Some("depthUpdate"), Some("BTCUSDT")));
        assert_eq!(d["U"].as_u64(), Some(last + 1), "{d}");
        last = d["u"].as_u64().unwrap();
    }
    assert_eq!(last, end);
    assert!(book_tickers > 0 || next_event(&mut combined).await["stream"] == "btcusdt@bookTicker");
    let mut last_raw = snapshot["lastUpdateId"].as_u64().unwrap();
    while last_raw < end {
        let d = next_event(&mut control).await;
        if d["e"] == "aggTrade" {
            continue;
        }
        assert_eq!(
            (d["e"].as_str(), d["U"].as_u64()),
            (Some("depthUpdate"), Some(last_raw + 1)),
            "{d}"
        );
        last_raw = d["u"].as_u64().unwrap();
    }
    // The trade: price and quantity strings, the buyer was the taker.
    assert_eq!(next_event(&mut bare).await["e"], "trade");
    let t = next_event(&mut trades).await;
    assert_eq!(
        (t["e"].as_str(), t["s"].as_str(), t["p"].as_str(), t["m"].as_bool()),
        (Some("trade"), Some("BTCUSDT"), Some("60000.000000"), Some(false)),
        "{t}"
    );
    let mut klines = connect(&app, "/ws/btcusdt@kline_1m").await;
    let mut tickers = connect(&app, "/ws/!miniTicker@arr").await;
    let (status, _) = v3(
        &app,
        &taker,
        Method::POST,
        "/order",
        "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.1",
        true,
    )
    .await;
    assert_eq!(status, 200);
    // The projector may still publish the earlier trade's candle first.
    let k = loop {
        let k = next_event(&mut klines).await;
        assert_eq!((k["e"].as_str(), k["k"]["i"].as_str()), (Some("kline"), Some("1m")), "{k}");
        if k["k"]["c"] == "61000.000000" {
            break k;
        }
    };
    assert_eq!(
        (k["k"]["h"].as_str(), k["k"]["l"].as_str()),
        (Some("61000.000000"), Some("60000.000000")),
        "{k}"
    );
    let all = loop {
        let all = next_event(&mut tickers).await;
        assert_eq!(all[0]["e"], "24hrMiniTicker", "{all}");
        if all[0]["c"] == "61000.000000" {
            break all;
        }
    };
    assert_eq!(
        (all[0]["s"].as_str(), all[0]["o"].as_str()),
        (Some("BTCUSDT"), Some("60000.000000")),
        "{all}"
    );
    common::ws_send(
        &mut control,
        serde_json::json!({"method": "UNSUBSCRIBE", "params": ["btcusdt@depth"], "id": 4}),
    )
    .await;
    loop {
        let v = common::ws_next(&mut control).await;
        if v["id"] == 4 {
            assert_eq!(v["result"], Value::Null);
            break;
        }
    }
    common::ws_send(&mut control, serde_json::json!({"method": "LIST_SUBSCRIPTIONS", "id": 5}))
        .await;
    loop {
        let v = common::ws_next(&mut control).await;
        if v["id"] == 5 {
            assert_eq!(v["result"], serde_json::json!(["btcusdt@aggTrade"]));
            break;
        }
    }
}

/// `userDataStream.subscribe.signature`'s params for `key`, signed as ccxt signs them.
fn ws_api_subscribe((key, secret): &(String, String), id: u64) -> Value {
    let ts = bourse_server::now_ms();
    let payload = format!("apiKey={key}&recvWindow=10000&timestamp={ts}");
    let signature = bourse_server::crypto::hmac_hex(secret.as_bytes(), payload.as_bytes());
    serde_json::json!({"id": id, "method": "userDataStream.subscribe.signature",
        "params": {"apiKey": key, "timestamp": ts, "recvWindow": 10000, "signature": signature}})
}

/// The next user data event of the given type (skipping others).
async fn next_of(ws: &mut common::Ws, kind: &str) -> Value {
    loop {
        let v = next_event(ws).await;
        let event = if v.get("subscriptionId").is_some() { v["event"].clone() } else { v };
        if event["e"] == kind {
            return event;
        }
    }
}

#[tokio::test]
async fn the_user_data_stream_reports_orders_fills_and_balances() {
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let (_, maker) = trader(&app, "maker@example.com").await;
    let (taker_user, taker) = trader(&app, "taker@example.com").await;
    use reqwest::Method;

    // The WebSocket API: a wrong signature is refused, a right one subscribes.
    let mut api = connect(&app, "/ws-api/v3").await;
    let mut bad = ws_api_subscribe(&maker, 1);
    bad["params"]["signature"] = Value::from("00");
    common::ws_send(&mut api, bad).await;
    let refused = common::ws_next(&mut api).await;
    assert_eq!(
        (refused["status"].as_u64(), refused["error"]["code"].as_i64()),
        (Some(400), Some(-1022)),
        "{refused}"
    );
    common::ws_send(&mut api, ws_api_subscribe(&maker, 2)).await;
    let ok = common::ws_next(&mut api).await;
    assert_eq!(ok, serde_json::json!({"id": 2, "status": 200, "result": {"subscriptionId": 0}}));

    // The legacy listen key, for the taker.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v3/userDataStream", app.url))
        .header("X-MBX-APIKEY", &taker.0)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listen_key = r.json::<Value>().await.unwrap()["listenKey"].as_str().unwrap().to_string();
    let mut legacy = connect(&app, &format!("/ws/{listen_key}")).await;
    let keep_alive = |method: Method, key: String| {
        let http = reqwest::Client::new();
        let url = format!("{}/api/v3/userDataStream?listenKey={key}", app.url);
        let api_key = taker.0.clone();
        async move {
            let r = http.request(method, url).header("X-MBX-APIKEY", api_key).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(keep_alive(Method::PUT, listen_key.clone()).await, (200, serde_json::json!({})));
    // Asking again gives the same live key, as Binance does.
    let again = reqwest::Client::new()
        .post(format!("{}/api/v3/userDataStream", app.url))
        .header("X-MBX-APIKEY", &taker.0)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(again["listenKey"].as_str(), Some(listen_key.as_str()));
    let (status, body) = keep_alive(Method::PUT, "nope".into()).await;
    assert_eq!((status, code(&body)), (400, -1125));

    // The maker's order: NEW; the taker's buy fills part of it: TRADE for both.
    let sell = "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.5&price=60000&newClientOrderId=mk-1";
    let (_, placed) = v3(&app, &maker, Method::POST, "/order", sell, true).await;
    let new = next_of(&mut api, "executionReport").await;
    assert_eq!(
        (new["x"].as_str(), new["X"].as_str(), new["c"].as_str(), new["s"].as_str()),
        (Some("NEW"), Some("NEW"), Some("mk-1"), Some("BTCUSDT")),
        "{new}"
    );
    assert_eq!(
        (new["i"].as_u64(), new["q"].as_str(), new["p"].as_str()),
        (placed["orderId"].as_u64(), Some("0.50000000"), Some("60000.000000"))
    );
    let position = next_of(&mut api, "outboundAccountPosition").await;
    let btc = position["B"].as_array().unwrap().iter().find(|b| b["a"] == "BTC").unwrap().clone();
    assert_eq!(
        (btc["f"].as_str(), btc["l"].as_str()),
        (Some("1.50000000"), Some("0.50000000")),
        "{position}"
    );
    let (status, _) = v3(
        &app,
        &taker,
        Method::POST,
        "/order",
        "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.2",
        true,
    )
    .await;
    assert_eq!(status, 200);
    let fill = next_of(&mut api, "executionReport").await;
    assert_eq!(
        (
            fill["x"].as_str(),
            fill["X"].as_str(),
            fill["l"].as_str(),
            fill["z"].as_str(),
            fill["L"].as_str()
        ),
        (
            Some("TRADE"),
            Some("PARTIALLY_FILLED"),
            Some("0.20000000"),
            Some("0.20000000"),
            Some("60000.000000")
        ),
        "{fill}"
    );
    assert_eq!(
        (fill["m"].as_bool(), fill["N"].as_str(), fill["n"].as_str()),
        (Some(true), Some("USDT"), Some("12.000000")),
        "{fill}"
    );
    let taker_new = next_of(&mut legacy, "executionReport").await;
    assert_eq!(taker_new["x"], "NEW", "{taker_new}");
    let taker_fill = next_of(&mut legacy, "executionReport").await;
    assert_eq!(
        (taker_fill["x"].as_str(), taker_fill["X"].as_str(), taker_fill["m"].as_bool()),
        (Some("TRADE"), Some("FILLED"), Some(false)),
        "{taker_fill}"
    );

    // A cancel: the order's own id in `C`.
    let (status, _) =
        v3(&app, &maker, Method::DELETE, "/order", "symbol=BTCUSDT&origClientOrderId=mk-1", false)
            .await;
    assert_eq!(status, 200);
    let canceled = next_of(&mut api, "executionReport").await;
    assert_eq!(
        (
            canceled["x"].as_str(),
            canceled["X"].as_str(),
            canceled["C"].as_str(),
            canceled["z"].as_str()
        ),
        (Some("CANCELED"), Some("CANCELED"), Some("mk-1"), Some("0.20000000")),
        "{canceled}"
    );

    // A deposit is a balanceUpdate.
    common::deposit(&app, taker_user.id, "ETH", "1.5").await;
    let update = next_of(&mut legacy, "balanceUpdate").await;
    assert_eq!(
        (update["a"].as_str(), update["d"].as_str()),
        (Some("ETH"), Some("1.500000000000000000")),
        "{update}"
    );

    // Unsubscribing ends the maker's events; deleting the listen key ends the legacy flow.
    common::ws_send(&mut api, serde_json::json!({"id": 3, "method": "userDataStream.unsubscribe"}))
        .await;
    loop {
        let v = common::ws_next(&mut api).await;
        if v["id"] == 3 {
            assert_eq!(v["status"], 200);
            break;
        }
    }
    assert_eq!(keep_alive(Method::DELETE, listen_key.clone()).await, (200, serde_json::json!({})));
    let (status, body) = keep_alive(Method::PUT, listen_key).await;
    assert_eq!((status, code(&body)), (400, -1125));
}
