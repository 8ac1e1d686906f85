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
    let mail = app.last_mail(email);
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
