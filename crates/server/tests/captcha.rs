//! `captcha::check` against a real verifier on 127.0.0.1 standing in for each provider's
//! siteverify endpoint: what it is sent, and how each kind of answer (yes, no, none, 500,
//! nonsense, too long) comes back; and the real server with the CAPTCHA on, through its REST
//! endpoints and its forms.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use bourse_core::Secret;
use bourse_server::captcha::{self, CaptchaConfig, Provider};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// A siteverify stand-in; every form posted to it is recorded, whatever the route.
struct Verifier {
    base: String,
    seen: Seen,
}

async fn siteverify(
    State(seen): State<Seen>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> impl IntoResponse {
    let good = form.get("response").is_some_and(|r| r == "good-token");
    seen.lock().unwrap().push(form);
    let body = if good {
        r#"{"success":true,"challenge_ts":"2024-01-01T00:00:00Z","hostname":"localhost"}"#
    } else {
        r#"{"success":false,"error-codes":["invalid-input-response"]}"#
    };
    ([("content-type", "application/json")], body)
}

async fn hang(State(seen): State<Seen>, axum::Form(form): axum::Form<HashMap<String, String>>) {
    seen.lock().unwrap().push(form);
    std::future::pending::<()>().await;
}

async fn broken(
    State(seen): State<Seen>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> impl IntoResponse {
    seen.lock().unwrap().push(form);
    (StatusCode::INTERNAL_SERVER_ERROR, r#"{"success":true}"#)
}

async fn not_json() -> &'static str {
    "<html>maintenance</html>"
}

/// 1 MiB of a JSON string after a `success: true`.
async fn huge() -> impl IntoResponse {
    let body = format!(r#"{{"success":true,"padding":"{}"}}"#, "x".repeat(1 << 20));
    ([("content-type", "application/json")], body)
}

async fn redirect() -> impl IntoResponse {
    (StatusCode::TEMPORARY_REDIRECT, [("location", "/siteverify")])
}

impl Verifier {
    async fn start() -> Verifier {
        let seen: Seen = Arc::default();
        let app = Router::new()
            .route("/siteverify", post(siteverify))
            .route("/hang", post(hang))
            .route("/broken", post(broken))
            .route("/not-json", post(not_json))
            .route("/huge", post(huge))
            .route("/redirect", post(redirect))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Verifier { base, seen }
    }

    fn config(&self, provider: Provider, path: &str) -> CaptchaConfig {
        CaptchaConfig {
            provider: Some(provider),
            site_key: format!("site-{}", provider.as_str()),
            secret: Secret::new(format!("secret-{}", provider.as_str())),
            verify_url: Some(format!("{}{path}", self.base)),
            timeout_ms: 300,
        }
    }

    fn take(&self) -> Vec<HashMap<String, String>> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

const PROVIDERS: [Provider; 3] = [Provider::Hcaptcha, Provider::Recaptcha, Provider::Turnstile];

fn assert_error(
    result: Result<(), bourse_server::error::ApiError>,
    status: StatusCode,
    code: &str,
) {
    let err = result.expect_err(code);
    assert_eq!((err.status, err.code), (status, code), "{}", err.message);
}

#[tokio::test]
async fn good_bad_and_missing_tokens() {
    let verifier = Verifier::start().await;
    for provider in PROVIDERS {
        let name = provider.as_str();
        let config = verifier.config(provider, "/siteverify");

        captcha::check(&config, Some("good-token"), "203.0.113.7").await.unwrap();
        let seen = verifier.take();
        assert_eq!(seen.len(), 1, "{name}");
        let form = &seen[0];
        assert_eq!(form["secret"], format!("secret-{name}"));
        assert_eq!(form["response"], "good-token");
        assert_eq!(form["remoteip"], "203.0.113.7");
        if provider == Provider::Hcaptcha {
            assert_eq!(form["sitekey"], "site-hcaptcha");
            assert_eq!(form.len(), 4, "{form:?}");
        } else {
            assert_eq!(form.len(), 3, "{name}: {form:?}");
        }

        let bad = captcha::check(&config, Some("bad-token"), "203.0.113.7").await;
        let err = bad.as_ref().unwrap_err();
        assert_eq!(err.message, "the CAPTCHA was not solved; try again");
        assert_error(bad, StatusCode::BAD_REQUEST, "captcha_failed");
        assert_eq!(verifier.take().len(), 1, "{name}");

        let long = "g".repeat(4097);
        for missing in [None, Some(""), Some(long.as_str())] {
            assert_error(
                captcha::check(&config, missing, "203.0.113.7").await,
                StatusCode::BAD_REQUEST,
                "captcha_required",
            );
        }
        assert!(verifier.take().is_empty(), "{name}: a missing token was sent");

        // Off: nothing asked, whatever the token.
        let off = CaptchaConfig { provider: None, ..config };
        captcha::check(&off, None, "203.0.113.7").await.unwrap();
        captcha::check(&off, Some("bad-token"), "203.0.113.7").await.unwrap();
        assert!(verifier.take().is_empty());
    }
}

#[tokio::test]
async fn a_verifier_that_never_answers_times_out() {
    let verifier = Verifier::start().await;
    for provider in PROVIDERS {
        let config = verifier.config(provider, "/hang");
        let started = Instant::now();
        let result = captcha::check(&config, Some("good-token"), "203.0.113.7").await;
        let took = started.elapsed();
        assert_error(result, StatusCode::SERVICE_UNAVAILABLE, "captcha_unavailable");
        assert!(took < Duration::from_millis(1_000), "{took:?}");
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert_eq!(verifier.take().len(), 1, "the verifier was asked");
    }
}

#[tokio::test]
async fn broken_verifiers_fail_closed() {
    let verifier = Verifier::start().await;
    for provider in PROVIDERS {
        for path in ["/broken", "/not-json", "/huge", "/redirect", "/no-such-route"] {
            let mut config = verifier.config(provider, path);
            config.timeout_ms = 5_000;
            let result = captcha::check(&config, Some("good-token"), "203.0.113.7").await;
            let err = result.as_ref().unwrap_err();
            assert_eq!(
                (err.status, err.code),
                (StatusCode::SERVICE_UNAVAILABLE, "captcha_unavailable"),
                "{path}"
            );
        }
        assert_eq!(verifier.take().len(), 1, "/broken was asked once");
    }
    // Nobody listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/siteverify", listener.local_addr().unwrap());
    drop(listener);
    let config =
        CaptchaConfig { verify_url: Some(closed), ..verifier.config(Provider::Turnstile, "") };
    assert_error(
        captcha::check(&config, Some("good-token"), "203.0.113.7").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "captcha_unavailable",
    );
}

#[tokio::test]
async fn the_server_asks_for_it_on_signup_login_and_reset() {
    let verifier = Verifier::start().await;
    let verify_url = format!("{}/siteverify", verifier.base);
    let app = common::App::spawn_with(
        common::Backend::Sqlite,
        &[
            ("BOURSE_CAPTCHA__PROVIDER", "hcaptcha"),
            ("BOURSE_CAPTCHA__SITE_KEY", "site-key-1"),
            ("BOURSE_CAPTCHA__SECRET", "secret-1"),
            ("BOURSE_CAPTCHA__VERIFY_URL", &verify_url),
        ],
    )
    .await;
    let http = common::cookie_client();
    let url = |path: &str| format!("{}{path}", app.url);

    // The three forms show the widget, under a policy widened for its origin only there.
    for path in ["/signup", "/login", "/reset"] {
        let r = http.get(url(path)).send().await.unwrap();
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("https://hcaptcha.com"), "{path}: {csp}");
        let html = r.text().await.unwrap();
        assert!(html.contains(r#"<div class="h-captcha" data-sitekey="site-key-1">"#), "{path}");
    }
    let r = http.get(url("/fees")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(!csp.contains("hcaptcha"), "other pages keep the strict policy: {csp}");

    // REST signup: without a token, or with one the verifier refuses: no account, no mail.
    let post = |path: &str, body: serde_json::Value| {
        let request = http.post(url(path)).json(&body).send();
        async move {
            let r = request.await.unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let signup = |captcha: Option<&str>| {
        let mut body =
            serde_json::json!({"email": "eve@example.com", "password": common::PASSWORD});
        if let Some(token) = captcha {
            body["captcha"] = token.into();
        }
        post("/api/v1/auth/signup", body)
    };
    assert_eq!(signup(None).await.1["code"], "captcha_required");
    assert_eq!(signup(Some("bad-token")).await.1["code"], "captcha_failed");
    let sent = verifier.take();
    assert_eq!(sent.len(), 1, "no token: the verifier is not asked");
    assert_eq!(sent[0]["secret"], "secret-1");
    assert_eq!(sent[0]["response"], "bad-token");
    assert_eq!(sent[0]["remoteip"], "127.0.0.1");
    assert_eq!(signup(Some("good-token")).await.0, 202);
    let mail = app.mail_with("eve@example.com", "/verify?token=").await;
    let token = mail.split("token=").nth(1).unwrap().split_whitespace().next().unwrap();
    assert_eq!(post("/api/v1/auth/verify", serde_json::json!({ "token": token })).await.0, 200);

    // Login: REST and the form, each needing a solved CAPTCHA.
    let creds = serde_json::json!({"email": "eve@example.com", "password": common::PASSWORD});
    let (status, refused) = post("/api/v1/auth/login", creds.clone()).await;
    assert_eq!((status, refused["code"].as_str()), (400, Some("captcha_required")));
    let mut solved = creds.clone();
    solved["captcha"] = "good-token".into();
    assert_eq!(post("/api/v1/auth/login", solved).await.0, 200);
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = |token: &'static str| {
        browser
            .post(url("/login"))
            .header("Origin", &app.url)
            .form(&[
                ("email", "eve@example.com"),
                ("password", common::PASSWORD),
                ("h-captcha-response", token),
            ])
            .send()
    };
    let r = form("bad-token").await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("the CAPTCHA was not solved"));
    let r = form("good-token").await.unwrap();
    assert_eq!(r.status(), 303, "logged in and sent on");
    assert!(r.headers()["set-cookie"].to_str().unwrap().starts_with("bourse_session="));

    // A reset request too.
    let email = serde_json::json!({"email": "eve@example.com"});
    let (status, refused) = post("/api/v1/auth/password-reset", email.clone()).await;
    assert_eq!((status, refused["code"].as_str()), (400, Some("captcha_required")));
    let mut solved = email;
    solved["captcha"] = "good-token".into();
    assert_eq!(post("/api/v1/auth/password-reset", solved).await.0, 202);
    app.mail_with("eve@example.com", "/reset").await;
}
