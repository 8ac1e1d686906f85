//! Authorization through the real server over HTTP (and the WebSocket), on SQLite. What it
//! proves:
//!
//! 1. **Another user's ids are unknown everywhere.** Alice owns a resting order, an API key, two
//!    sessions. Bob — with his session cookie, with his own signed API key, and through the web
//!    forms — tries each of her ids on every route that takes one (`GET`/`DELETE
//!    /api/v1/orders/{id}`, `DELETE /api/v1/orders/by-client-id/{cid}`, the client-order-id
//!    lookup, `DELETE /api/v1/api-keys/{id}`, `DELETE /api/v1/sessions/{id}`, `POST
//!    /account/orders/{id}/cancel`, `POST /account/{api-keys|sessions}/{id}/revoke`). Each
//!    answers exactly what an id that exists nowhere answers (`unknown_order`,
//!    `unknown_api_key`, `unknown_session` — 404, or `session_required` for an API key on the
//!    session-only routes): no existence oracle, and nothing changes — her order stays open,
//!    her key and both her sessions still work, her security log records no revocation. Bob's
//!    lists (REST, web pages, CSV export, WebSocket private channels) never show her rows, and
//!    his cancel-alls cancel only his orders. This test server runs no coin wallet, so the
//!    wallet routes answer `no_wallet` and the deposit/withdrawal lists are empty for both.
//! 2. **Cross-site requests with a session cookie are refused.** The server's CSRF rule
//!    (`auth::same_origin`) is origin-based, not token-based: a cookie-authenticated request with
//!    an unsafe method (and every web form post) is refused when `Sec-Fetch-Site` is anything but
//!    `same-origin`/`none`, or, without `Sec-Fetch-Site`, when `Origin` is not this site; a
//!    request with neither header (not a browser) passes; the forms carry no CSRF token and none
//!    is asked for. Every state-changing REST route answers 403 `csrf` and every form the
//!    "Request refused" page (with or without a made-up token field) — orders, cancels, API
//!    keys, sessions, logout, deposit addresses, withdrawals, two-factor setup, the withdrawal
//!    whitelist (on/off, add, remove) — for `Origin:
//!    https://evil.example`, `Origin: null`, `Sec-Fetch-Site: cross-site` and `same-site` —
//!    and nothing changed afterwards. The same requests from this origin (`Origin` of the site,
//!    `Sec-Fetch-Site: same-origin`, or no such header), with no token, are accepted. Cross-site
//!    reads are answered but without CORS headers, so a browser never hands them to the page;
//!    the session cookie is `HttpOnly; SameSite=Lax`.
//! 3. A WebSocket opened from another site with the victim's cookie does not get her private
//!    channels.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{App, Backend, User, deposit, register, signed_request, ws_next, ws_send};
use reqwest::Method;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

const EVIL: &str = "https://evil.example";

async fn exchange() -> App {
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    app
}

/// A request body.
enum Body {
    Empty,
    Json(Value),
    Form(Vec<(&'static str, String)>),
}

/// An answer: status, body text and headers.
struct Answer {
    status: u16,
    text: String,
    headers: reqwest::header::HeaderMap,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or("").to_string()
    }

    fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text: String = self.text.chars().take(600).collect();
        write!(f, "{} {:?} {text}", self.status, self.location())
    }
}

/// One browser session, handled by hand: the request carries exactly the cookie and headers
/// the test gives it, and redirects are not followed (a form's success is a 303).
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
    session: i64,
}

impl Browser {
    /// Logs `email` in through the API: a new session.
    async fn login(app: &App, email: &str) -> Browser {
        let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
        let r = http
            .post(format!("{}/api/v1/auth/login", app.url))
            .json(&json!({"email": email, "password": common::PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
            "{set_cookie}"
        );
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        let body: Value = r.json().await.unwrap();
        let session = body["session_id"].as_i64().unwrap();
        Browser { http, base: app.url.clone(), cookie, session }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req = match body {
            Body::Empty => req,
            Body::Json(v) => req.json(&v),
            Body::Form(f) => req.form(&f),
        };
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        Answer { status, text: r.text().await.unwrap(), headers }
    }

    /// A GET as a program would send it (no `Origin`), the body as JSON.
    async fn get(&self, path: &str) -> (u16, Value) {
        let a = self.send(Method::GET, path, &[], Body::Empty).await;
        (a.status, a.json())
    }

    async fn text(&self, path: &str) -> String {
        let a = self.send(Method::GET, path, &[], Body::Empty).await;
        assert_eq!(a.status, 200, "{path}: {a}");
        a.text
    }
}

/// Places a resting limit order with the user's key; its id.
async fn place(user: &User, side: &str, price: &str, quantity: &str, cid: &str) -> u64 {
    let order = json!({"market": "BTC-USDT", "side": side, "type": "limit", "price": price,
        "quantity": quantity, "client_order_id": cid});
    let (status, body) = user.signed(Method::POST, "/api/v1/orders", "", Some(order)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["order"]["status"], "open", "{body}");
    body["order"]["id"].as_u64().unwrap()
}

/// The values of `field` in a JSON array (or in the array under `key`).
fn column(list: &Value, key: Option<&str>, field: &str) -> Vec<Value> {
    let list = key.map_or(list, |k| &list[k]);
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|row| row[field].clone())
        .collect()
}

/// A REST route that takes an id: the path with the victim's id, the same path with an id that
/// exists nowhere, and what another user must be answered by session cookie and by API key.
struct Probe {
    method: Method,
    theirs: String,
    ghost: String,
    by_cookie: (u16, &'static str),
    by_key: (u16, &'static str),
}

/// The id of the user's API key `api_key`.
async fn key_id(user: &User, api_key: &str) -> i64 {
    let (status, keys) = user.get("/api/v1/api-keys").await;
    assert_eq!(status, 200, "{keys}");
    let key = keys.as_array().unwrap().iter().find(|k| k["api_key"] == api_key).unwrap();
    key["id"].as_i64().unwrap()
}

/// The user's order `id` as its owner sees it (with the owner's key).
async fn order_of(user: &User, id: u64) -> Value {
    let (status, order) = user.signed(Method::GET, &format!("/api/v1/orders/{id}"), "", None).await;
    assert_eq!(status, 200, "{order}");
    order
}

/// The kinds of the user's security events, newest first.
async fn security_kinds(user: &User) -> Vec<String> {
    let (status, page) = user.get("/api/v1/security-events").await;
    assert_eq!(status, 200, "{page}");
    column(&page, Some("events"), "kind").iter().map(|k| k.as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_ids_are_unknown_on_every_route() {
    let app = exchange().await;
    let mut alice = register(&app, "alice@example.com").await;
    let mut bob = register(&app, "bob@example.com").await;
    let (alice_key, alice_secret) = alice.create_key(&["trade"]).await;
    bob.create_key(&["trade"]).await;
    let bob_key = bob.key.clone().unwrap().0;
    let alice_key_id = key_id(&alice, &alice_key).await;
    let bob_key_id = key_id(&bob, &bob_key).await;
    // Alice's sessions: the one `register` opened, and a second browser.
    let (_, sessions) = alice.get("/api/v1/sessions").await;
    let first = sessions.as_array().unwrap().iter().find(|s| s["current"] == true).unwrap();
    let alice_first_session = first["id"].as_i64().unwrap();
    let alice_second = Browser::login(&app, &alice.email).await;
    let bob_web = Browser::login(&app, &bob.email).await;

    deposit(&app, alice.id, "BTC", "1").await;
    deposit(&app, bob.id, "USDT", "10000").await;
    let alice_order = place(&alice, "sell", "90000", "0.5", "alice-1").await;
    let bob_order = place(&bob, "buy", "10000", "0.1", "bob-1").await;

    // Ids that exist nowhere: Bob must get the same answer for Alice's ids as for these.
    let ghost_order = alice_order + 1_000_000;
    let ghost_key = alice_key_id + 1_000_000;
    let ghost_session = alice_second.session + 1_000_000;
    let same_origin = [("origin", app.url.as_str())];

    // REST with Bob's session cookie (a same-origin browser request) and with his signed key.
    let probe = |method: Method, theirs: String, ghost: String, by_cookie, by_key| Probe {
        method,
        theirs,
        ghost,
        by_cookie,
        by_key,
    };
    let id_routes = vec![
        probe(
            Method::GET,
            format!("/api/v1/orders/{alice_order}"),
            format!("/api/v1/orders/{ghost_order}"),
            (404, "unknown_order"),
            (404, "unknown_order"),
        ),
        probe(
            Method::DELETE,
            format!("/api/v1/orders/{alice_order}"),
            format!("/api/v1/orders/{ghost_order}"),
            (404, "unknown_order"),
            (404, "unknown_order"),
        ),
        probe(
            Method::DELETE,
            "/api/v1/orders/by-client-id/alice-1?market=BTC-USDT".into(),
            "/api/v1/orders/by-client-id/ghost-1?market=BTC-USDT".into(),
            (404, "unknown_order"),
            (404, "unknown_order"),
        ),
        probe(
            Method::DELETE,
            format!("/api/v1/api-keys/{alice_key_id}"),
            format!("/api/v1/api-keys/{ghost_key}"),
            (404, "unknown_api_key"),
            (403, "session_required"),
        ),
        probe(
            Method::DELETE,
            format!("/api/v1/sessions/{}", alice_second.session),
            format!("/api/v1/sessions/{ghost_session}"),
            (404, "unknown_session"),
            (403, "session_required"),
        ),
        probe(
            Method::DELETE,
            format!("/api/v1/sessions/{alice_first_session}"),
            format!("/api/v1/sessions/{ghost_session}"),
            (404, "unknown_session"),
            (403, "session_required"),
        ),
    ];
    for Probe { method, theirs: path, ghost, by_cookie, by_key } in &id_routes {
        let a = bob_web.send(method.clone(), path, &same_origin, Body::Empty).await;
        assert_eq!((a.status, a.code().as_str()), *by_cookie, "Bob's cookie: {method} {path}: {a}");
        let g = bob_web.send(method.clone(), ghost, &same_origin, Body::Empty).await;
        assert_eq!((g.status, g.json()), (a.status, a.json()), "{method} {path} vs {ghost}");

        let (p, q) = path.split_once('?').unwrap_or((path, ""));
        let (status, body) = bob.signed(method.clone(), p, q, None).await;
        assert_eq!(
            (status, body["code"].as_str().unwrap_or("")),
            *by_key,
            "Bob's key: {method} {path}: {body}"
        );
        let (gp, gq) = ghost.split_once('?').unwrap_or((ghost, ""));
        assert_eq!(bob.signed(method.clone(), gp, gq, None).await, (status, body), "{ghost}");
    }

    // The client-order-id lookup finds nothing of Alice's, by cookie or by key.
    for query in ["client_order_id=alice-1", "client_order_id=alice-1&market=BTC-USDT"] {
        let (status, page) = bob_web.get(&format!("/api/v1/orders?{query}")).await;
        assert_eq!((status, &page["orders"]), (200, &json!([])), "{query}: {page}");
        let (status, page) = bob.signed(Method::GET, "/api/v1/orders", query, None).await;
        assert_eq!((status, &page["orders"]), (200, &json!([])), "{query}: {page}");
    }

    // The web forms that take ids, with Bob's cookie from this site: the error page, no redirect.
    // (path with Alice's id, the same with a ghost id, whether the form has a `next` field)
    let web_routes = [
        (
            format!("/account/orders/{alice_order}/cancel"),
            format!("/account/orders/{ghost_order}/cancel"),
            true,
        ),
        (
            format!("/account/api-keys/{alice_key_id}/revoke"),
            format!("/account/api-keys/{ghost_key}/revoke"),
            false,
        ),
        (
            format!("/account/sessions/{}/revoke", alice_second.session),
            format!("/account/sessions/{ghost_session}/revoke"),
            false,
        ),
        (
            format!("/account/sessions/{alice_first_session}/revoke"),
            format!("/account/sessions/{ghost_session}/revoke"),
            false,
        ),
    ];
    for (path, ghost, with_next) in &web_routes {
        let body = || {
            if *with_next {
                Body::Form(vec![("next", "/account/orders".to_string())])
            } else {
                Body::Empty
            }
        };
        let a = bob_web.send(Method::POST, path, &same_origin, body()).await;
        assert_eq!(a.status, 404, "Bob's form: {path}: {a}");
        assert!(a.location().is_none() && a.text.contains("This did not work"), "{path}: {a}");
        let g = bob_web.send(Method::POST, ghost, &same_origin, body()).await;
        assert_eq!((g.status, &g.text), (a.status, &a.text), "{path} vs {ghost}");
    }

    // Bob's lists never hold Alice's rows (by cookie and by key where the route takes keys).
    for (status, page) in [
        bob_web.get("/api/v1/orders").await,
        bob.signed(Method::GET, "/api/v1/orders", "", None).await,
        bob_web.get("/api/v1/orders?status=open").await,
        bob.signed(Method::GET, "/api/v1/orders", "status=open&market=BTC-USDT", None).await,
    ] {
        assert_eq!(status, 200, "{page}");
        assert_eq!(column(&page, Some("orders"), "id"), [json!(bob_order)], "{page}");
    }
    let (status, keys) = bob_web.get("/api/v1/api-keys").await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(column(&keys, None, "id"), [json!(bob_key_id)], "{keys}");
    assert!(!keys.to_string().contains(&alice_key), "{keys}");
    let (status, sessions) = bob_web.get("/api/v1/sessions").await;
    assert_eq!(status, 200, "{sessions}");
    let ids = column(&sessions, None, "id");
    assert!(ids.contains(&json!(bob_web.session)), "{sessions}");
    for theirs in [alice_first_session, alice_second.session] {
        assert!(
            !ids.contains(&json!(theirs)),
            "Alice's session {theirs} in Bob's list: {sessions}"
        );
    }
    for (status, fills) in [
        bob_web.get("/api/v1/fills").await,
        bob.signed(Method::GET, "/api/v1/fills", "", None).await,
    ] {
        assert_eq!((status, &fills["fills"]), (200, &json!([])), "{fills}");
    }
    let (status, ledger) = bob.signed(Method::GET, "/api/v1/ledger", "", None).await;
    assert_eq!(status, 200, "{ledger}");
    let assets = column(&ledger, Some("entries"), "asset");
    assert!(!assets.is_empty() && assets.iter().all(|a| a == "USDT"), "{ledger}");
    let (status, balances) = bob_web.get("/api/v1/balances").await;
    assert_eq!(status, 200, "{balances}");
    for b in balances.as_array().unwrap() {
        if b["asset"] == "BTC" {
            assert_eq!((&b["available"], &b["locked"]), (&json!("0"), &json!("0")), "{balances}");
        }
    }

    // No wallet on this server: the wallet routes say so, and the lists are empty for both.
    let (status, e) = bob_web.get("/api/v1/deposit-addresses?asset=BTC").await;
    assert_eq!((status, e["code"].as_str()), (404, Some("no_wallet")), "{e}");
    let (status, e) = bob.signed(Method::GET, "/api/v1/deposit-addresses", "asset=BTC", None).await;
    assert_eq!((status, e["code"].as_str()), (404, Some("no_wallet")), "{e}");
    let a = bob_web
        .send(
            Method::POST,
            "/api/v1/deposit-addresses",
            &same_origin,
            Body::Json(json!({"asset": "BTC"})),
        )
        .await;
    assert_eq!((a.status, a.code().as_str()), (404, "no_wallet"), "{a}");
    let withdrawal = json!({"asset": "BTC", "address": "bc1qexample", "amount": "0.1"});
    let a = bob_web
        .send(Method::POST, "/api/v1/withdrawals", &same_origin, Body::Json(withdrawal))
        .await;
    assert_eq!((a.status, a.code().as_str()), (404, "no_wallet"), "{a}");
    for who in [&bob, &alice] {
        let (status, page) = who.signed(Method::GET, "/api/v1/withdrawals", "", None).await;
        assert_eq!((status, &page["withdrawals"]), (200, &json!([])), "{page}");
        let (status, page) = who.signed(Method::GET, "/api/v1/deposits", "", None).await;
        assert_eq!((status, &page["deposits"]), (200, &json!([])), "{page}");
    }
    let a = bob_web
        .send(Method::POST, "/account/funds/BTC/deposit/address", &same_origin, Body::Empty)
        .await;
    assert_eq!(a.status, 404, "{a}");
    let form = Body::Form(vec![("address", "bc1qexample".into()), ("amount", "0.1".into())]);
    let a = bob_web.send(Method::POST, "/account/funds/BTC/withdraw", &same_origin, form).await;
    assert_eq!(a.status, 404, "{a}");
    let page = bob_web.text("/account/funds/BTC/deposit").await;
    assert!(page.contains("are not open on this exchange"), "{page}");

    // Bob's web pages and CSV export: his rows, never hers.
    let orders = bob_web.text("/account/orders").await;
    assert!(orders.contains(&format!("/account/orders/{bob_order}/cancel")), "{orders}");
    assert!(!orders.contains(&format!("/account/orders/{alice_order}/cancel")), "{orders}");
    assert!(!orders.contains("90000") && !orders.contains("90,000"), "Alice's price: {orders}");
    let csv = bob_web.text("/account/orders.csv").await;
    let ids: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(ids, [bob_order.to_string()], "{csv}");
    let security = bob_web.text("/account/security").await;
    assert!(security.contains(&format!("/account/api-keys/{bob_key_id}/revoke")), "{security}");
    assert!(!security.contains(&format!("/account/api-keys/{alice_key_id}/revoke")), "{security}");
    for theirs in [alice_first_session, alice_second.session] {
        assert!(!security.contains(&format!("/account/sessions/{theirs}/revoke")), "{security}");
    }
    assert!(!security.contains("alice@example.com"), "{security}");
    let events = bob_web.text("/api/v1/security-events").await;
    assert!(!events.contains("alice"), "{events}");

    // Bob's cancel-alls cancel his orders only.
    let (status, canceled) = bob.signed(Method::DELETE, "/api/v1/orders", "", None).await;
    assert_eq!((status, &canceled["canceled"]), (200, &json!([bob_order])), "{canceled}");
    let form = Body::Form(vec![("market", "BTC-USDT".into()), ("next", "/account/orders".into())]);
    let a = bob_web.send(Method::POST, "/account/orders/cancel-all", &same_origin, form).await;
    assert_eq!((a.status, a.location()), (303, Some("/account/orders")), "{a}");
    let a = bob_web.send(Method::DELETE, "/api/v1/orders", &same_origin, Body::Empty).await;
    assert_eq!((a.status, &a.json()["canceled"]), (200, &json!([])), "{a}");

    // Nothing of Alice's changed: her order is open and untouched, her key and both sessions
    // work, her log records no revocation.
    let order = order_of(&alice, alice_order).await;
    assert_eq!(
        (&order["status"], &order["filled_quantity"]),
        (&json!("open"), &json!("0")),
        "{order}"
    );
    let (status, me) =
        signed_request(&app.url, &alice_key, &alice_secret, Method::GET, "/api/v1/me", "", None)
            .await;
    assert_eq!((status, me["user_id"].as_u64()), (200, Some(alice.id)), "{me}");
    let (status, me) = alice_second.get("/api/v1/me").await;
    assert_eq!((status, me["user_id"].as_u64()), (200, Some(alice.id)), "{me}");
    let (status, me) = alice.get("/api/v1/me").await;
    assert_eq!((status, me["user_id"].as_u64()), (200, Some(alice.id)), "{me}");
    let (_, sessions) = alice.get("/api/v1/sessions").await;
    let ids = column(&sessions, None, "id");
    assert!(
        ids.contains(&json!(alice_first_session)) && ids.contains(&json!(alice_second.session))
    );
    assert_eq!(key_id(&alice, &alice_key).await, alice_key_id);
    let kinds = security_kinds(&alice).await;
    for kind in ["api_key_revoked", "session_revoked", "logout"] {
        assert!(!kinds.iter().any(|k| k == kind), "{kinds:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_websocket_channels_carry_only_the_callers_events() {
    let app = exchange().await;
    let mut alice = register(&app, "alice@example.com").await;
    let mut bob = register(&app, "bob@example.com").await;
    alice.create_key(&["trade"]).await;
    let (bob_key, bob_secret) = bob.create_key(&["trade"]).await;
    deposit(&app, alice.id, "BTC", "1").await;
    deposit(&app, bob.id, "USDT", "10000").await;

    let mut ws = common::ws_connect(&app).await;
    let ts = bourse_server::now_ms();
    let signature = bourse_server::crypto::hmac_hex(
        bob_secret.as_bytes(),
        format!("api_key={bob_key}&timestamp={ts}").as_bytes(),
    );
    ws_send(
        &mut ws,
        json!({"op": "auth", "api_key": bob_key, "timestamp": ts, "signature": signature}),
    )
    .await;
    assert_eq!(ws_next(&mut ws).await["user_id"].as_u64(), Some(bob.id));
    ws_send(&mut ws, json!({"op": "subscribe", "channels": ["orders", "fills", "balances"]})).await;
    assert_eq!(ws_next(&mut ws).await["op"], "subscribed");

    // Alice's order first, then Bob's: everything before Bob's own order event is checked.
    let alice_order = place(&alice, "sell", "90000", "0.5", "alice-ws").await;
    let bob_order = place(&bob, "buy", "10000", "0.1", "bob-ws").await;
    loop {
        let m = ws_next(&mut ws).await;
        let data = &m["data"];
        assert_ne!(data["order_id"].as_u64(), Some(alice_order), "Alice's order reached Bob: {m}");
        assert_ne!(data["client_order_id"], "alice-ws", "{m}");
        assert_ne!(m["channel"], "fills", "no trade happened: {m}");
        if m["channel"] == "balances" {
            assert_eq!(data["asset"], "USDT", "Alice's balance reached Bob: {m}");
        }
        if m["channel"] == "orders" && data["order_id"].as_u64() == Some(bob_order) {
            break;
        }
    }
}

/// What a browser on another site sends with a request it was made to send: each must be
/// refused by the server's rule (`auth::same_origin`).
fn hostile(app: &App) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    vec![
        ("Origin: evil.example", vec![("origin", EVIL.to_string())]),
        ("Origin: null", vec![("origin", "null".to_string())]),
        ("Sec-Fetch-Site: cross-site", vec![("sec-fetch-site", "cross-site".to_string())]),
        (
            "Sec-Fetch-Site: same-site (a sibling subdomain)",
            vec![
                ("sec-fetch-site", "same-site".to_string()),
                ("origin", "https://other.bourse.example".to_string()),
            ],
        ),
        (
            "Sec-Fetch-Site: cross-site with this site's Origin",
            vec![("sec-fetch-site", "cross-site".to_string()), ("origin", app.url.clone())],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_with_a_session_cookie_are_refused() {
    let app = exchange().await;
    let mut alice = register(&app, "alice@example.com").await;
    let (alice_key, _) = alice.create_key(&["trade"]).await;
    let alice_key_id = key_id(&alice, &alice_key).await;
    deposit(&app, alice.id, "BTC", "1").await;
    let order = place(&alice, "sell", "90000", "0.5", "a-1").await;
    let browser = Browser::login(&app, &alice.email).await;
    let other = Browser::login(&app, &alice.email).await;

    let snapshot = async || {
        let (_, keys) = browser.get("/api/v1/api-keys").await;
        let (_, sessions) = browser.get("/api/v1/sessions").await;
        let (_, open) = alice.signed(Method::GET, "/api/v1/orders", "status=open", None).await;
        let (_, balances) = alice.signed(Method::GET, "/api/v1/balances", "", None).await;
        let kinds = security_kinds(&alice).await;
        let (_, whitelist) = browser.get("/api/v1/withdrawal-addresses").await;
        (
            column(&keys, None, "id"),
            column(&sessions, None, "id"),
            column(&open, Some("orders"), "id"),
            balances,
            kinds,
            whitelist,
        )
    };
    let before = snapshot().await;
    assert_eq!(before.0, [json!(alice_key_id)]);
    assert_eq!(before.2, [json!(order)]);
    assert_eq!(before.5, json!({"enabled": false, "addresses": []}));

    let place_json = json!({"market": "BTC-USDT", "side": "sell", "type": "limit",
        "price": "95000", "quantity": "0.1"});
    let rest: Vec<(Method, String, Option<Value>)> = vec![
        (Method::DELETE, format!("/api/v1/orders/{order}"), None),
        (Method::DELETE, "/api/v1/orders/by-client-id/a-1?market=BTC-USDT".into(), None),
        (Method::DELETE, "/api/v1/orders".into(), None),
        (Method::DELETE, "/api/v1/orders?market=BTC-USDT".into(), None),
        (Method::POST, "/api/v1/orders".into(), Some(place_json)),
        (
            Method::POST,
            "/api/v1/api-keys".into(),
            Some(json!({"label": "evil", "scopes": ["withdraw"]})),
        ),
        (Method::DELETE, format!("/api/v1/api-keys/{alice_key_id}"), None),
        (Method::DELETE, format!("/api/v1/sessions/{}", other.session), None),
        (Method::POST, "/api/v1/auth/logout".into(), None),
        (Method::POST, "/api/v1/deposit-addresses".into(), Some(json!({"asset": "BTC"}))),
        (
            Method::POST,
            "/api/v1/withdrawals".into(),
            Some(json!({"asset": "BTC", "address": "bc1qevil", "amount": "0.5"})),
        ),
        (Method::POST, "/api/v1/two-factor/setup".into(), None),
        (Method::POST, "/api/v1/two-factor/enable".into(), Some(json!({"code": "123456"}))),
        (
            Method::POST,
            "/api/v1/two-factor/disable".into(),
            Some(json!({"password": common::PASSWORD, "code": "123456"})),
        ),
        (
            Method::POST,
            "/api/v1/withdrawal-addresses".into(),
            Some(json!({"asset": "BTC", "address": "bc1qevil"})),
        ),
        (
            Method::PUT,
            "/api/v1/withdrawal-addresses/enabled".into(),
            Some(json!({"enabled": true})),
        ),
        (Method::DELETE, "/api/v1/withdrawal-addresses/1".into(), None),
    ];
    type Form = fn() -> Vec<(&'static str, String)>;
    let forms: Vec<(String, Form)> = vec![
        (format!("/account/orders/{order}/cancel"), || vec![("next", "/account/orders".into())]),
        ("/account/orders/cancel-all".into(), || {
            vec![("market", "BTC-USDT".into()), ("next", "/account/orders".into())]
        }),
        ("/markets/BTC-USDT/orders".into(), || {
            vec![
                ("side", "sell".into()),
                ("type", "limit".into()),
                ("price", "95000".into()),
                ("quantity", "0.1".into()),
            ]
        }),
        ("/account/api-keys".into(), || {
            vec![("label", "evil".into()), ("read", "on".into()), ("withdraw", "on".into())]
        }),
        (format!("/account/api-keys/{alice_key_id}/revoke"), Vec::new),
        (format!("/account/sessions/{}/revoke", other.session), Vec::new),
        ("/logout".into(), Vec::new),
        ("/account/funds/BTC/deposit/address".into(), Vec::new),
        ("/account/funds/BTC/withdraw".into(), || {
            vec![("address", "bc1qevil".into()), ("amount", "0.5".into())]
        }),
        ("/account/two-factor/setup".into(), Vec::new),
        ("/account/two-factor/enable".into(), || vec![("code", "123456".into())]),
        ("/account/two-factor/disable".into(), || {
            vec![("password", common::PASSWORD.into()), ("code", "123456".into())]
        }),
        ("/account/withdrawal-addresses".into(), || {
            vec![("asset", "BTC".into()), ("address", "bc1qevil".into())]
        }),
        ("/account/withdrawal-addresses/enabled".into(), || vec![("enabled", "on".into())]),
        ("/account/withdrawal-addresses/1/remove".into(), Vec::new),
    ];

    for (what, headers) in hostile(&app) {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for (method, path, body) in &rest {
            let body = body.clone().map_or(Body::Empty, Body::Json);
            let a = browser.send(method.clone(), path, &headers, body).await;
            assert_eq!(
                (a.status, a.code().as_str()),
                (403, "csrf"),
                "{what}: {method} {path}: {a}"
            );
        }
        for (path, fields) in &forms {
            // Without a token, and with a made-up one: the server's rule ignores tokens.
            let mut with_token = fields();
            with_token.push(("csrf_token", "0123456789abcdef".into()));
            for form in [fields(), with_token] {
                let body = if form.is_empty() { Body::Empty } else { Body::Form(form) };
                let a = browser.send(Method::POST, path, &headers, body).await;
                assert_eq!(a.status, 403, "{what}: POST {path}: {a}");
                assert!(a.text.contains("Request refused"), "{what}: POST {path}: {a}");
                assert!(a.location().is_none() && !a.headers.contains_key("set-cookie"), "{a}");
            }
        }
        // Reads are answered (the safe methods are exempt), but with no CORS header a browser
        // never lets the other site's page see them; a preflight grants nothing either.
        let a = browser
            .send(Method::GET, &format!("/api/v1/orders/{order}"), &headers, Body::Empty)
            .await;
        assert_eq!(a.status, 200, "{what}: {a}");
        assert!(!a.headers.contains_key("access-control-allow-origin"), "{what}: {:?}", a.headers);
        let mut preflight = headers.clone();
        preflight.push(("access-control-request-method", "DELETE"));
        let a = browser
            .send(Method::OPTIONS, &format!("/api/v1/orders/{order}"), &preflight, Body::Empty)
            .await;
        assert!(
            !a.headers.contains_key("access-control-allow-origin")
                && !a.headers.contains_key("access-control-allow-methods"),
            "{what}: {a} {:?}",
            a.headers
        );
    }

    // Nothing changed: the same keys, sessions, open order, balances and security log.
    assert_eq!(snapshot().await, before, "a refused request changed something");
    assert_eq!(order_of(&alice, order).await["status"], "open");
    assert_eq!(other.get("/api/v1/me").await.0, 200);
    assert_eq!(alice.signed(Method::GET, "/api/v1/me", "", None).await.0, 200);

    // The accepting side of the same rule: from this site — its Origin, `Sec-Fetch-Site:
    // same-origin`, or a program sending neither header — and with no token at all.
    let here = [("origin", app.url.as_str())];
    let a = browser
        .send(
            Method::POST,
            "/api/v1/api-keys",
            &[("sec-fetch-site", "same-origin")],
            Body::Json(json!({"label": "mine", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(a.status, 201, "{a}");
    let new_key = a.json()["key"].as_i64().unwrap();
    let a = browser
        .send(Method::DELETE, &format!("/api/v1/api-keys/{new_key}"), &here, Body::Empty)
        .await;
    assert_eq!(a.status, 200, "{a}");
    let form = Body::Form(vec![("label", "from the page".into()), ("read", "on".into())]);
    let a = browser.send(Method::POST, "/account/api-keys", &here, form).await;
    assert_eq!(a.status, 200, "{a}");
    assert!(a.text.contains("from the page"), "{a}");
    let a = browser
        .send(
            Method::POST,
            &format!("/account/sessions/{}/revoke", other.session),
            &here,
            Body::Empty,
        )
        .await;
    assert_eq!((a.status, a.location()), (303, Some("/account/security")), "{a}");
    assert_eq!(other.get("/api/v1/me").await.0, 401, "the other session ended");
    let form = Body::Form(vec![("next", "/account/orders".into())]);
    let a = browser.send(Method::POST, &format!("/account/orders/{order}/cancel"), &[], form).await;
    assert_eq!((a.status, a.location()), (303, Some("/account/orders")), "{a}");
    assert_eq!(order_of(&alice, order).await["status"], "canceled");
}

/// The WebSocket upgrade authenticates the private channels with the session cookie only under
/// the same-origin rule of every other cookie-authenticated route: a page on another site (or a
/// same-site sibling, where `SameSite=Lax` does not hold the cookie back) that gets the browser
/// to send the cookie with its `new WebSocket(...)` reads nothing of the victim's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_opened_from_another_site_gets_no_private_channels() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = exchange().await;
    let alice = register(&app, "alice@example.com").await;
    let browser = Browser::login(&app, &alice.email).await;
    for (what, headers) in hostile(&app) {
        let mut request = app.ws_url().into_client_request().unwrap();
        request.headers_mut().insert("cookie", browser.cookie.parse().unwrap());
        for (name, value) in &headers {
            request.headers_mut().insert(*name, value.parse().unwrap());
        }
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(request).await else {
            continue; // refused at the upgrade: fine
        };
        ws_send(&mut ws, json!({"op": "subscribe", "channels": ["orders", "balances"]})).await;
        let answer = ws_next(&mut ws).await;
        assert_eq!(answer["code"], "unauthenticated", "{what}: the cookie opened {answer}");
    }
}
