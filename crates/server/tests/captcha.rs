//! `captcha::check` against a real verifier on 127.0.0.1 standing in for each provider's
//! siteverify endpoint: what it is sent, and how each kind of answer (yes, no, none, 500,
//! nonsense, too long) comes back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

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
