//! The web UI over real HTTP: pages render with a strict CSP and no inline scripts, and the
//! account forms work without JavaScript (signup → mailed link → confirm → login → logout),
//! refusing cross-site posts and open redirects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{App, Backend};
use reqwest::redirect::Policy;

fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap()
}

/// Every `<script>` loads a file: the CSP forbids inline code, so none may be written.
fn assert_no_inline_script(html: &str) {
    for tag in html.split("<script").skip(1) {
        let open = tag.split('>').next().unwrap();
        assert!(open.contains("src="), "inline script: <script{open}>");
    }
    assert!(!html.contains(" onclick="), "inline handler");
    assert!(!html.contains("<style"), "inline style block");
}

async fn page(http: &reqwest::Client, url: &str) -> (u16, String) {
    let r = http.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    if status == 200 {
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn pages_render_with_a_strict_policy() {
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let http = browser();

    let (status, home) = page(&http, &app.url).await;
    assert_eq!(status, 200);
    for market in ["BTC/USDT", "ETH/USDT", "LTC/USDT", "ETH/BTC"] {
        assert!(home.contains(market), "home lists {market}");
    }
    assert!(home.contains(r#"href="/markets/BTC-USDT""#));
    assert_no_inline_script(&home);

    let (status, market) = page(&http, &format!("{}/markets/BTC-USDT", app.url)).await;
    assert_eq!(status, 200);
    assert!(market.contains(r#"data-market="BTC-USDT""#) && market.contains("Order book"));
    assert!(market.contains("Log in</a> or"), "a visitor is asked to log in to trade");
    assert_no_inline_script(&market);

    let (status, fees) = page(&http, &format!("{}/fees", app.url)).await;
    assert_eq!(status, 200);
    assert!(fees.contains("Maker") && fees.contains("ETH/BTC"));

    let (status, missing) = page(&http, &format!("{}/markets/NOPE-USDT", app.url)).await;
    assert_eq!(status, 404);
    assert!(missing.contains("There is no market NOPE-USDT."));

    for (file, kind) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let r = http.get(format!("{}/static/{file}", app.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(kind));
    }
    let r = http.get(format!("{}/static/../Cargo.toml", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn behind_tls_every_response_asks_for_https_only() {
    // Plain HTTP on loopback (the default): no HSTS, cookies without `Secure`.
    let app = App::spawn(Backend::Sqlite).await;
    let r = browser().get(format!("{}/api/v1/time", app.url)).send().await.unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
    drop(app);
    // Behind a TLS proxy (an https public URL): pages, the API and errors carry it, and the
    // session cookie is `Secure`.
    let app =
        App::spawn_with(Backend::Sqlite, &[("BOURSE_PUBLIC_URL", "https://exchange.example")])
            .await;
    let http = browser();
    for path in ["/", "/api/v1/time", "/api/v1/nope", "/login"] {
        let r = http.get(format!("{}{path}", app.url)).send().await.unwrap();
        assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000", "{path}");
    }
    let r = http
        .post(format!("{}/api/v1/auth/signup", app.url))
        .json(&serde_json::json!({"email": "tls@example.com", "password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mail = app.mail_with("tls@example.com", "/verify?token=").await;
    assert!(mail.contains("https://exchange.example/verify?token="), "{mail}");
    let token = mail.split("token=").nth(1).unwrap().split_whitespace().next().unwrap();
    let r = http
        .post(format!("{}/api/v1/auth/verify", app.url))
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{}/api/v1/auth/login", app.url))
        .json(&serde_json::json!({"email": "tls@example.com", "password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
}

#[tokio::test]
async fn account_forms_work_without_javascript() {
    let app = App::spawn(Backend::Sqlite).await;
    let http = browser();
    let email = "web@example.com";
    let password = "a long enough passphrase";

    // A weak password is refused next to its field, and nothing is created.
    let r = http
        .post(format!("{}/signup", app.url))
        .form(&[("email", email), ("password", "short")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"id="f-password-error""#), "{html}");
    assert!(html.contains(&format!(r#"value="{email}""#)), "the e-mail is kept");

    let r = http
        .post(format!("{}/signup", app.url))
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Check your e-mail"));

    // The mailed link opens a page that confirms with a POST (a link prefetcher confirms nothing).
    let mail = app.mail_with(email, "/verify?token=").await;
    let link = mail.lines().find(|l| l.contains("/verify?token=")).unwrap().trim().to_string();
    // Listening on port 0, the link still carries the port the server got.
    assert!(link.starts_with(&format!("{}/verify?token=", app.url)), "{link}");
    let token = link.split("token=").nth(1).unwrap();
    let (status, confirm) = page(&http, &format!("{}/verify?token={token}", app.url)).await;
    assert_eq!(status, 200);
    assert!(confirm.contains(&format!(r#"value="{token}""#)));
    let r = http
        .post(format!("{}/login", app.url))
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "not verified yet");
    let r =
        http.post(format!("{}/verify", app.url)).form(&[("token", token)]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Address confirmed"));
    let r =
        http.post(format!("{}/verify", app.url)).form(&[("token", token)]).send().await.unwrap();
    assert_eq!(r.status(), 400, "a link works once");

    // A wrong password: the form again, with the error and without the password.
    let r = http
        .post(format!("{}/login", app.url))
        .form(&[("email", email), ("password", "not the password at all")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let html = r.text().await.unwrap();
    assert!(html.contains("wrong e-mail or password"));
    assert!(!html.contains("not the password at all"));

    // A login posted from another site is refused (login CSRF).
    let r = http
        .post(format!("{}/login", app.url))
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());

    // `next` may only be a path on this site.
    let r = http
        .post(format!("{}/login", app.url))
        .form(&[("email", email), ("password", password), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    let r = http
        .post(format!("{}/login", app.url))
        .form(&[("email", email), ("password", password), ("next", "/fees")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/fees");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");

    // Logged in: the pages show who, and the session works for the JSON API too.
    let (_, home) = page(&http, &app.url).await;
    assert!(home.contains(email) && home.contains(r#"action="/logout""#));
    let me = http.get(format!("{}/api/v1/me", app.url)).send().await.unwrap();
    assert_eq!(me.status(), 200);

    // Logout ends the session on the server, not just in this browser.
    let r = http.post(format!("{}/logout", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let me = http
        .get(format!("{}/api/v1/me", app.url))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    let (_, home) = page(&http, &app.url).await;
    assert!(!home.contains(email));
}

#[tokio::test]
async fn the_security_page_manages_sessions_and_api_keys() {
    let app = App::spawn(Backend::Sqlite).await;
    let user = common::register(&app, "keys@example.com").await;
    let http = browser();

    // Not logged in: the page sends the browser to log in and come back.
    let r = http.get(format!("{}/account/security", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=/account/security");

    // Two sessions: this browser's and `register`'s.
    let r = http
        .post(format!("{}/login", app.url))
        .form(&[("email", user.email.as_str()), ("password", common::PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (status, html) = page(&http, &format!("{}/account/security", app.url)).await;
    assert_eq!(status, 200);
    assert!(html.contains("this session"));
    assert_eq!(html.matches("/revoke\" class=\"inline\"><button type=\"submit\" class=\"ghost\" aria-label=\"Sign out").count(), 1);

    // A key with a bad allowlist entry is refused with the form kept.
    let r = http
        .post(format!("{}/account/api-keys", app.url))
        .form(&[("label", "bot"), ("trade", "on"), ("ip_allowlist", "10.0.0.0/8 nonsense")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("is not an IP address or CIDR") && html.contains(r#"value="bot""#));

    // Created: key and secret shown once; the secret opens the API.
    let r = http
        .post(format!("{}/account/api-keys", app.url))
        .form(&[("label", "bot"), ("read", "on"), ("trade", "on"), ("ip_allowlist", "127.0.0.1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let code = |id: &str| {
        html.split(&format!(r#"<code id="{id}">"#))
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    let (key, secret) = (code("new-api-key"), code("new-api-secret"));
    assert_eq!((key.len(), secret.len()), (64, 64));
    let me_with_key = || async {
        let get = reqwest::Method::GET;
        common::signed_request(&app.url, &key, &secret, get, "/api/v1/me", "", None).await.0
    };
    let status = me_with_key().await;
    assert_eq!(status, 200);
    let (_, later) = page(&http, &format!("{}/account/security", app.url)).await;
    assert!(!later.contains(&secret), "the secret is never shown again");
    assert!(later.contains("read, trade") && later.contains("127.0.0.1"));

    // Revoked from the page: the key stops working at once.
    let id =
        later.split("/account/api-keys/").nth(1).unwrap().split('/').next().unwrap().to_string();
    let r = http.post(format!("{}/account/api-keys/{id}/revoke", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let status = me_with_key().await;
    assert_eq!(status, 401);

    // Signing out the other session ends it; a revoke from another site is refused.
    let (_, html) = page(&http, &format!("{}/account/security", app.url)).await;
    let other =
        html.split("/account/sessions/").nth(1).unwrap().split('/').next().unwrap().to_string();
    let r = http
        .post(format!("{}/account/sessions/{other}/revoke", app.url))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(user.http.get(format!("{}/api/v1/me", app.url)).send().await.unwrap().status(), 200);
    let r = http.post(format!("{}/account/sessions/{other}/revoke", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(user.http.get(format!("{}/api/v1/me", app.url)).send().await.unwrap().status(), 401);
}

/// A browser without JavaScript, logged in through the login form.
async fn logged_in(app: &App, email: &str, password: &str) -> reqwest::Client {
    let http = browser();
    let r = http
        .post(format!("{}/login", app.url))
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "login of {email}");
    http
}

#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_mailed_link() {
    let app = App::spawn(Backend::Sqlite).await;
    let user = common::register(&app, "forgot@example.com").await;
    let http = browser();
    let (status, login) = page(&http, &format!("{}/login", app.url)).await;
    assert_eq!(status, 200);
    assert!(login.contains(r#"href="/reset""#), "the login page links the reset");

    // The same answer for an address with and without an account; only one gets a mail.
    for email in ["nobody@example.com", user.email.as_str()] {
        let r =
            http.post(format!("{}/reset", app.url)).form(&[("email", email)]).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("If this address has an account"));
    }
    let r = http
        .post(format!("{}/reset", app.url))
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", user.email.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a reset asked from another site is refused");

    let mail = app.mail_with(&user.email, "/reset?token=").await;
    // Mail goes out in order: the one asked for the address without an account would be there.
    assert!(!app.data_dir.path().join("mailbox").read_dir().unwrap().any(|f| {
        std::fs::read_to_string(f.unwrap().path()).unwrap().contains("To: nobody@example.com")
    }));
    let link = mail.lines().find(|l| l.contains("/reset?token=")).unwrap().trim().to_string();
    assert!(link.starts_with(&format!("{}/reset?token=", app.url)), "{link}");
    let token = link.split("token=").nth(1).unwrap().to_string();
    let (status, form) = page(&http, &link).await;
    assert_eq!(status, 200);
    assert!(form.contains(&format!(r#"value="{token}""#)) && form.contains("new-password"));

    // A weak password is refused next to its field and does not spend the link.
    let r = http
        .post(format!("{}/reset/confirm", app.url))
        .form(&[("token", token.as_str()), ("password", "aaaaaaaaaaaa")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains(r#"id="f-password-error""#));

    let new_password = "another long passphrase";
    let r = http
        .post(format!("{}/reset/confirm", app.url))
        .form(&[("token", token.as_str()), ("password", new_password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Password changed"));
    app.mail_with(&user.email, "Subject: Your password was changed").await;
    // Every session ended; the old password no longer opens one, the new one does.
    assert_eq!(user.get("/api/v1/me").await.0, 401);
    let r = http
        .post(format!("{}/login", app.url))
        .form(&[("email", user.email.as_str()), ("password", common::PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    logged_in(&app, &user.email, new_password).await;
    // The link worked once.
    let r = http
        .post(format!("{}/reset/confirm", app.url))
        .form(&[("token", token.as_str()), ("password", "yet another passphrase")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("invalid, used or expired"));

    // The same through the REST API.
    let api = reqwest::Client::new();
    let r = api
        .post(format!("{}/api/v1/auth/password-reset", app.url))
        .json(&serde_json::json!({"email": user.email}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mail = app.mail_with(&user.email, "/reset?token=").await;
    let token = mail.split("token=").nth(1).unwrap().split_whitespace().next().unwrap();
    let r = api
        .post(format!("{}/api/v1/auth/password-reset/confirm", app.url))
        .json(&serde_json::json!({"token": token, "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "weak_password");
    let r = api
        .post(format!("{}/api/v1/auth/password-reset/confirm", app.url))
        .json(&serde_json::json!({"token": token, "password": "a third long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    logged_in(&app, &user.email, "a third long passphrase").await;
}

#[tokio::test]
async fn info_pages_and_missing_pages() {
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let http = browser();

    // The read model catches up with the setup's commands within moments.
    let mut html = String::new();
    for _ in 0..100 {
        let (status, text) = page(&http, &format!("{}/status", app.url)).await;
        assert_eq!(status, 200);
        html = text;
        if html.contains("up to date") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(html.contains("All systems operational") && html.contains("up to date"), "{html}");
    assert!(html.contains("ETH/BTC") && html.contains("sqlite"));
    assert_no_inline_script(&html);

    // The API page shows every operation and schema of the OpenAPI document.
    let (status, html) = page(&http, &format!("{}/api", app.url)).await;
    assert_eq!(status, 200);
    assert_no_inline_script(&html);
    let doc: serde_json::Value = http
        .get(format!("{}/api/v1/openapi.json", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let shown = format!(
                r#"<span class="method {m}">{m}</span> <code>{path}</code>"#,
                m = method.to_uppercase()
            );
            assert!(html.contains(&shown), "the API page lacks {shown}");
        }
    }
    for schema in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(html.contains(&format!(r#"id="schema-{schema}""#)), "no schema {schema}");
    }

    // An unknown page is a page; an unknown API route stays JSON.
    let (status, html) = page(&http, &format!("{}/no/such/page", app.url)).await;
    assert_eq!(status, 404);
    assert!(html.contains("Page not found") && html.contains("<!doctype html>"));
    let r = http.get(format!("{}/api/v1/nope", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "not_found");
}

#[tokio::test]
async fn history_pages_filter_page_and_export() {
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let alice = common::register(&app, "hist-a@example.com").await;
    let bob = common::register(&app, "hist-b@example.com").await;
    common::deposit(&app, alice.id, "USDT", "100000").await;
    common::deposit(&app, alice.id, "BTC", "1").await;
    common::deposit(&app, bob.id, "BTC", "1").await;
    let place = |who: &common::User, body: serde_json::Value| {
        let req = who.http.post(format!("{}/api/v1/orders", app.url)).json(&body).send();
        async move {
            let r = req.await.unwrap();
            assert_eq!(r.status(), 201);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    // 55 resting bids (more than a page), one ETH order, one fill against Bob.
    for i in 0..55 {
        let price = format!("{}.00", 50_000 + i);
        place(&alice, serde_json::json!({"market": "BTC-USDT", "side": "buy", "type": "limit", "price": price, "quantity": "0.001"})).await;
    }
    place(&alice, serde_json::json!({"market": "ETH-USDT", "side": "buy", "type": "limit", "price": "3000", "quantity": "0.01"})).await;
    let sold = place(&bob, serde_json::json!({"market": "BTC-USDT", "side": "sell", "type": "market", "quantity": "0.001"})).await;
    assert_eq!(sold["fills"][0]["price"], "50054");

    let http = logged_in(&app, &alice.email, common::PASSWORD).await;
    let orders_url = format!("{}/account/orders", app.url);
    let (status, html) = page(&http, &orders_url).await;
    assert_eq!(status, 200);
    assert_no_inline_script(&html);
    assert_eq!(html.matches("<tr><td>").count(), 50, "one page of 50");
    let older = html.split(r#"<a href=""#).find(|s| s.contains(r#"rel="next""#)).unwrap();
    let older = older.split('"').next().unwrap().replace("&#38;", "&");
    let (_, html) = page(&http, &format!("{}{older}", app.url)).await;
    assert_eq!(html.matches("<tr><td>").count(), 6, "the rest: 55 + 1 - 50");
    assert!(!html.contains(r#"rel="next""#));

    let (_, html) = page(&http, &format!("{orders_url}?market=ETH-USDT")).await;
    assert_eq!(html.matches("<tr><td>").count(), 1);
    assert!(html.contains(r#"<option value="ETH-USDT" selected>"#));
    let (_, html) = page(&http, &format!("{orders_url}?market=BTC-USDT&status=open")).await;
    assert_eq!(html.matches("<tr><td>").count(), 50, "54 still open: a full page");
    let (status, html) = page(&http, &format!("{orders_url}?market=NOPE")).await;
    assert_eq!(status, 404);
    assert!(html.contains("no market"));

    // CSV: every order matching the filter, one line each, under a header.
    let r =
        http.get(format!("{}/account/orders.csv?market=BTC-USDT", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.starts_with("attachment; filename=\"bourse-orders-"), "{disposition}");
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("order_id,created,market,side,type"));
    assert_eq!(lines.len(), 1 + 55);
    assert!(lines.iter().any(|l| l.contains(",filled,") && l.contains("50054")), "{}", lines[1]);

    let (status, html) = page(&http, &format!("{}/account/trades", app.url)).await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("<tr><td>").count(), 1);
    assert!(html.contains("50054") && html.contains("maker"));
    let csv = common::text(&http, &format!("{}/account/trades.csv", app.url)).await;
    assert_eq!(csv.lines().count(), 2);
    assert!(csv.lines().nth(1).unwrap().contains(",BTC-USDT,buy,maker,50054,0.001,50.054,"));

    // Funds: every asset with available, locked and total; the ledger matches the API's.
    let (status, html) = page(&http, &format!("{}/account/funds", app.url)).await;
    assert_eq!(status, 200);
    let (_, balances) = alice.get("/api/v1/balances").await;
    for b in balances.as_array().unwrap() {
        let row = format!(
            r#"<tr data-asset="{}"><th scope="row">{}</th><td class="num">{}</td><td class="num">{}</td>"#,
            b["asset"].as_str().unwrap(),
            b["asset"].as_str().unwrap(),
            b["available"].as_str().unwrap(),
            b["locked"].as_str().unwrap()
        );
        assert!(html.contains(&row), "{row}");
    }
    assert!(
        html.contains(r#"<tr data-asset="LTC"><th scope="row">LTC</th><td class="num">0</td>"#)
    );
    let btc = html.split(r#"<tr data-asset="BTC">"#).nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(
        btc.contains(
            r#"<td class="num">1.001</td>
        <td><a href="/account/funds/BTC/deposit""#
        ),
        "BTC total 1 + 0.001 bought: {btc}"
    );
    let csv = common::text(&http, &format!("{}/account/ledger.csv?asset=USDT", app.url)).await;
    let (_, ledger) = alice.get("/api/v1/ledger?asset=USDT&limit=1000").await;
    assert_eq!(csv.lines().count(), 1 + ledger["entries"].as_array().unwrap().len());
    assert!(csv.lines().skip(1).all(|l| l.contains(",USDT,")));
    let (status, html) = page(&http, &format!("{}/account/funds/BTC/deposit", app.url)).await;
    assert_eq!(status, 200);
    assert!(html.contains("Deposits of BTC"));
    let (status, _) = page(&http, &format!("{}/account/funds/NOPE/withdraw", app.url)).await;
    assert_eq!(status, 404);

    // Logged out, each of them sends the browser to log in and back, filters kept.
    let r =
        browser().get(format!("{orders_url}?market=ETH-USDT&status=open")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/login?next=/account/orders%3Fmarket%3DETH-USDT%26status%3Dopen"
    );
    for path in ["/account/trades", "/account/funds", "/account/orders.csv"] {
        let r = browser().get(format!("{}{path}", app.url)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
    }
}

#[tokio::test]
async fn trading_forms_work_without_javascript() {
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let alice = common::register(&app, "nojs@example.com").await;
    common::deposit(&app, alice.id, "USDT", "10000").await;
    let http = logged_in(&app, &alice.email, common::PASSWORD).await;
    let market_url = format!("{}/markets/BTC-USDT/orders", app.url);
    let open = || async {
        alice.get("/api/v1/orders?status=open").await.1["orders"].as_array().unwrap().len()
    };

    // Off the price grid: the page again, the error next to the price, the values kept.
    let r = http
        .post(&market_url)
        .form(&[("side", "buy"), ("type", "limit"), ("price", "60000.005"), ("quantity", "0.01")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    let price_error = html.split(r#"id="order-price-error" aria-live="polite">"#).nth(1).unwrap();
    assert!(!price_error.starts_with('<'), "the price error is shown: {price_error}");
    assert!(html.contains(r#"value="60000.005""#) && html.contains(r#"value="0.01""#));
    assert_eq!(open().await, 0, "nothing placed");

    // Not enough money: the error is about the amount.
    let r = http
        .post(&market_url)
        .form(&[("side", "buy"), ("type", "post_only"), ("price", "60000"), ("quantity", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<option value="post_only" selected>"#));
    let amount_error =
        html.split(r#"id="order-quantity-error" aria-live="polite">"#).nth(1).unwrap();
    assert!(!amount_error.starts_with('<'), "{amount_error}");

    // From another site: refused, nothing placed.
    let r = http
        .post(&market_url)
        .header("sec-fetch-site", "cross-site")
        .form(&[("side", "buy"), ("type", "limit"), ("price", "60000"), ("quantity", "0.01")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(open().await, 0);

    for price in ["60000", "59000"] {
        let r = http
            .post(&market_url)
            .form(&[("side", "buy"), ("type", "limit"), ("price", price), ("quantity", "0.01")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains(r#"id="order-status" role="status">Order "#));
    }
    assert_eq!(open().await, 2);

    // Cancel one from the orders page, then the rest with cancel-all; each goes back.
    let (_, orders) = alice.get("/api/v1/orders?status=open").await;
    let id = orders["orders"][0]["id"].as_u64().unwrap();
    let r = http
        .post(format!("{}/account/orders/{id}/cancel", app.url))
        .form(&[("next", "/account/orders?status=open")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/account/orders?status=open");
    assert_eq!(open().await, 1);
    let r = http
        .post(format!("{}/account/orders/{id}/cancel", app.url))
        .form(&[("next", "/account/orders")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "already canceled");
    let r = http
        .post(format!("{}/account/orders/cancel-all", app.url))
        .form(&[("market", "BTC-USDT"), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/", "no open redirect");
    assert_eq!(open().await, 0);
    let (_, balances) = alice.get("/api/v1/balances").await;
    assert_eq!(balances[0]["available"], "10000", "every lock released");
}
