//! Brute force through the real server: wrong passwords lock the account out (from any
//! address) and the client's address out (for any account), with `429` and `Retry-After`, the
//! same whether or not the account exists; signups per address and the REST API are rate
//! limited the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{App, Backend, PASSWORD, register};
use serde_json::{Value, json};
use std::net::IpAddr;

/// A client whose connections come from `ip` (any 127.x.y.z reaches the server on 127.0.0.1).
fn from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip.parse::<IpAddr>().unwrap()).build().unwrap()
}

async fn login(
    http: &reqwest::Client,
    app: &App,
    email: &str,
    password: &str,
) -> (u16, Value, Option<String>) {
    let r = http
        .post(format!("{}/api/v1/auth/login", app.url))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), r.json().await.unwrap(), retry)
}

#[tokio::test]
async fn wrong_passwords_lock_out_the_account_and_the_address() {
    let app = App::spawn_with(
        Backend::Sqlite,
        &[
            ("BOURSE_LIMITS__LOGIN_FAILURES_PER_ACCOUNT", "3"),
            ("BOURSE_LIMITS__LOGIN_FAILURES_PER_IP", "6"),
            ("BOURSE_LIMITS__LOCKOUT_S", "60"),
        ],
    )
    .await;
    register(&app, "alice@example.com").await;
    register(&app, "bob@example.com").await;
    let (a, b, c) = (from("127.0.0.2"), from("127.0.0.3"), from("127.0.0.4"));

    // Per account: three wrong passwords are free, the fourth locks Alice out for a minute...
    for _ in 0..3 {
        let (status, e, _) = login(&a, &app, "alice@example.com", "wrong password here").await;
        assert_eq!((status, e["code"].as_str()), (401, Some("invalid_credentials")));
    }
    let (status, e, retry) = login(&a, &app, "alice@example.com", "wrong password here").await;
    assert_eq!((status, e["code"].as_str()), (401, Some("invalid_credentials")), "{e}");
    let (status, e, retry2) = login(&a, &app, "alice@example.com", PASSWORD).await;
    assert_eq!((status, e["code"].as_str()), (429, Some("too_many_attempts")), "{e} {retry:?}");
    let wait: i64 = retry2.unwrap().parse().unwrap();
    assert!((50..=60).contains(&wait), "Retry-After {wait}");
    // ...even with the right password, from another address.
    let (status, _, _) = login(&b, &app, "alice@example.com", PASSWORD).await;
    assert_eq!(status, 429, "the lock is on the account, whatever the address");
    // Bob, from that other address, is not locked.
    let (status, _, _) = login(&b, &app, "bob@example.com", PASSWORD).await;
    assert_eq!(status, 200);

    // An address with no account is locked out just the same (no account enumeration).
    for _ in 0..4 {
        login(&c, &app, "nobody@example.com", "wrong password here").await;
    }
    let (status, e, retry) = login(&c, &app, "nobody@example.com", "wrong password here").await;
    assert_eq!(
        (status, e["code"].as_str(), retry.is_some()),
        (429, Some("too_many_attempts"), true)
    );

    // Per address: six failures across many accounts are free, the seventh locks the address
    // out for every account.
    let d = from("127.0.0.5");
    for i in 0..7 {
        let email = format!("guess{i}@example.com");
        let (status, _, _) = login(&d, &app, &email, "wrong password here").await;
        assert_eq!(status, 401);
    }
    let (status, e, retry) = login(&d, &app, "bob@example.com", PASSWORD).await;
    assert_eq!((status, e["code"].as_str()), (429, Some("too_many_attempts")), "{e}");
    assert!(retry.is_some());
    // Bob from elsewhere is fine.
    let (status, _, _) = login(&from("127.0.0.6"), &app, "bob@example.com", PASSWORD).await;
    assert_eq!(status, 200);

    // The web login says the same, with Retry-After.
    let r = d
        .post(format!("{}/login", app.url))
        .header("origin", &app.url)
        .form(&[("email", "bob@example.com"), ("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.unwrap().contains("too many failed logins"));
}

#[tokio::test]
async fn signups_and_the_api_are_rate_limited_per_address() {
    let app = App::spawn_with(
        Backend::Sqlite,
        &[
            ("BOURSE_LIMITS__SIGNUPS_PER_IP_HOUR", "2"),
            ("BOURSE_LIMITS__API_REQUESTS_PER_S", "5"),
            ("BOURSE_LIMITS__API_BURST", "10"),
        ],
    )
    .await;
    let a = from("127.0.0.7");
    let signup = |email: String| {
        a.post(format!("{}/api/v1/auth/signup", app.url))
            .json(&json!({"email": email, "password": "a fine long password"}))
            .send()
    };
    // The API limit counts these too: spread them under it.
    assert_eq!(signup("s1@example.com".into()).await.unwrap().status(), 202);
    assert_eq!(signup("s2@example.com".into()).await.unwrap().status(), 202);
    let r = signup("s3@example.com".into()).await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: i64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 60, "about half an hour: {wait}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "too_many_requests");

    // The API: a burst of 10 from one address, then 429 with Retry-After; another address is
    // not affected.
    let b = from("127.0.0.8");
    let mut codes = Vec::new();
    for _ in 0..30 {
        codes.push(
            b.get(format!("{}/api/v1/time", app.url)).send().await.unwrap().status().as_u16(),
        );
    }
    let ok = codes.iter().filter(|c| **c == 200).count();
    assert!((10..=13).contains(&ok), "{codes:?}");
    assert_eq!(codes.last(), Some(&429));
    let r = b.get(format!("{}/api/v1/time", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let r = from("127.0.0.9").get(format!("{}/api/v1/time", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // After a second the address may call again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = b.get(format!("{}/api/v1/time", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_limits_apply_to_the_forwarded_address() {
    let app = App::spawn_with(
        Backend::Sqlite,
        &[
            ("BOURSE_LIMITS__LOGIN_FAILURES_PER_IP", "2"),
            ("BOURSE_LIMITS__LOGIN_FAILURES_PER_ACCOUNT", "50"),
            ("BOURSE_TRUSTED_PROXIES", "127.0.0.10, 127.0.0.11/32"),
        ],
    )
    .await;
    let alice = register(&app, "alice@example.com").await;
    let proxy = from("127.0.0.10");
    let via_proxy = |client: &'static str, password: &'static str| {
        proxy
            .post(format!("{}/api/v1/auth/login", app.url))
            // A client-written entry, then the one the proxy appended.
            .header("x-forwarded-for", format!("198.51.100.1, {client}"))
            .json(&json!({"email": "alice@example.com", "password": password}))
            .send()
    };
    // One client behind the proxy fails until it is locked out...
    for _ in 0..3 {
        via_proxy("203.0.113.5", "wrong password here").await.unwrap();
    }
    let r = via_proxy("203.0.113.5", PASSWORD).await.unwrap();
    assert_eq!(r.status(), 429);
    // ...and another one behind the same proxy is not.
    let r = via_proxy("203.0.113.6", PASSWORD).await.unwrap();
    assert_eq!(r.status(), 200);
    // The security log shows the client's address, not the proxy's.
    let (_, events) = alice.get("/api/v1/security-events").await;
    let ips: Vec<&str> =
        events["events"].as_array().unwrap().iter().filter_map(|e| e["ip"].as_str()).collect();
    assert_eq!(ips.first(), Some(&"203.0.113.6"), "{ips:?}");
    assert!(ips.contains(&"203.0.113.5") && !ips.contains(&"198.51.100.1"), "{ips:?}");

    // From an address that is not a trusted proxy the header is ignored: a client cannot
    // escape its lockout by writing its own.
    let direct = from("127.0.0.12");
    for i in 0..4 {
        direct
            .post(format!("{}/api/v1/auth/login", app.url))
            .header("x-forwarded-for", format!("192.0.2.{i}"))
            .json(&json!({"email": "alice@example.com", "password": "wrong password here"}))
            .send()
            .await
            .unwrap();
    }
    let r = direct
        .post(format!("{}/api/v1/auth/login", app.url))
        .header("x-forwarded-for", "192.0.2.200")
        .json(&json!({"email": "alice@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
}
