//! The security audit log through the real server: what happened to an account, with the IP
//! address and browser, newest first, for its owner only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{App, Backend, register};
use serde_json::{Value, json};

fn kinds(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_security_log_records_what_happened_to_an_account() {
    let app = App::spawn(Backend::Sqlite).await;
    let mut alice = register(&app, "alice@example.com").await;
    let bob = register(&app, "bob@example.com").await;

    // A wrong password from another browser, then an API key and a withdrawal-less sign-out.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.url))
        .header("user-agent", "curious-bot/1.0")
        .json(&json!({"email": "alice@example.com", "password": "not her password at all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    alice.create_key(&["read"]).await;
    let (_, sessions) = alice.get("/api/v1/sessions").await;
    assert_eq!(sessions.as_array().unwrap().len(), 1);

    let (status, page) = alice.get("/api/v1/security-events").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        kinds(&page),
        ["api_key_created", "login_failed", "login_succeeded", "email_verified"],
        "newest first: {page}"
    );
    let failed = &page["events"][1];
    assert_eq!(
        (failed["ip"].as_str(), failed["user_agent"].as_str()),
        (Some("127.0.0.1"), Some("curious-bot/1.0"))
    );
    assert!(page["events"][0]["detail"].as_str().unwrap().contains("\"test\""), "{page}");

    // Paging with the cursor.
    let (_, first) = alice.get("/api/v1/security-events?limit=2").await;
    assert_eq!(kinds(&first), ["api_key_created", "login_failed"]);
    let next = first["next"].as_i64().unwrap();
    let (_, rest) = alice.get(&format!("/api/v1/security-events?before={next}")).await;
    assert_eq!(kinds(&rest), ["login_succeeded", "email_verified"]);
    assert_eq!(rest["next"], Value::Null);

    // Only the owner's: Bob sees his own; an API key cannot read the log.
    let (_, theirs) = bob.get("/api/v1/security-events").await;
    assert_eq!(kinds(&theirs), ["login_succeeded", "email_verified"]);
    let (status, refused) =
        alice.signed(reqwest::Method::GET, "/api/v1/security-events", "", None).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("session_required")), "{refused}");

    // On the security page too.
    let html = common::text(&alice.http, &format!("{}/account/security", app.url)).await;
    assert!(html.contains("Security activity") && html.contains("login failed"), "{html}");
    assert!(html.contains("curious-bot/1.0"), "{html}");
    // Signing out from the page is recorded too (a second browser session of Alice's).
    let web = common::cookie_client();
    let r = web
        .post(format!("{}/api/v1/auth/login", app.url))
        .json(&json!({"email": "alice@example.com", "password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r =
        web.post(format!("{}/logout", app.url)).header("origin", &app.url).send().await.unwrap();
    assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());
    let (_, page) = alice.get("/api/v1/security-events?limit=2").await;
    assert_eq!(kinds(&page), ["logout", "login_succeeded"], "{page}");

    // Signing out is recorded (and the log survives it).
    let r = alice.http.post(format!("{}/api/v1/auth/logout", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let store = bourse_store::connect(&app.database_url).await.unwrap();
    let filter = bourse_store::SecurityEventFilter { before: None, limit: 10 };
    let events = store.security_events(bourse_core::UserId(alice.id), &filter).await.unwrap();
    assert_eq!(events[0].kind, bourse_store::SecurityEventKind::Logout);
    store.close().await;
}

#[tokio::test]
async fn a_login_from_a_new_device_is_mailed_with_a_link_that_signs_out_everywhere() {
    let app = App::spawn(Backend::Sqlite).await;
    let mut alice = register(&app, "alice@example.com").await;
    // The welcome mail after the address was confirmed; the API key mail.
    app.mail_with(&alice.email, "Subject: Welcome to bourse").await;
    alice.create_key(&["read"]).await;
    let mail = app.mail_with(&alice.email, "Subject: API key created").await;
    assert!(mail.contains("Label: test") && mail.contains("Scopes: read"), "{mail}");

    // The same browser again: no mail. Another browser: a mail with its IP, browser and link.
    let login = async |agent: &str| {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/login", app.url))
            .header("user-agent", agent)
            .json(&json!({"email": alice.email, "password": common::PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    login("").await;
    login("stranger-browser/9").await;
    let mail = app.mail_with(&alice.email, "Subject: New login to your account").await;
    assert!(
        mail.contains("IP address: 127.0.0.1") && mail.contains("stranger-browser/9"),
        "{mail}"
    );
    let new_logins = std::fs::read_dir(app.data_dir.path().join("mailbox"))
        .unwrap()
        .filter(|f| {
            std::fs::read_to_string(f.as_ref().unwrap().path()).unwrap().contains("New login")
        })
        .count();
    assert_eq!(new_logins, 1, "only the unknown browser is mailed about");

    // The link opens a page whose button signs out every session.
    let link = mail.lines().find(|l| l.contains("/sign-out-everywhere?token=")).unwrap().trim();
    let token = link.split("token=").nth(1).unwrap();
    let page = common::text(&reqwest::Client::new(), link).await;
    assert!(page.contains("Sign out everywhere"), "{page}");
    assert_eq!(alice.get("/api/v1/me").await.0, 200);
    let r = reqwest::Client::new()
        .post(format!("{}/sign-out-everywhere", app.url))
        .header("origin", &app.url)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Signed out everywhere"));
    assert_eq!(alice.get("/api/v1/me").await.0, 401, "the session ended");
    // Once only.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/sign-out-everywhere", app.url))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
