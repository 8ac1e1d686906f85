//! Two-factor authentication through the real server: setup with a QR code and a first code,
//! codes required at login and for API keys, wrong, reused and stale codes refused, recovery
//! codes working once, turning it off with the password and a code — with the mails and the
//! security log entries each step leaves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use bourse_server::totp;
use common::{App, Backend, PASSWORD, cookie_client, register};
use serde_json::{Value, json};

fn now_s() -> i64 {
    i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
    )
    .unwrap()
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = http.post(url).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn two_factor_codes_guard_login_and_keys_and_work_once() {
    let app = App::spawn(Backend::Sqlite).await;
    let alice = register(&app, "alice@example.com").await;
    let url = |path: &str| format!("{}{path}", app.url);

    // Setup: a secret and its otpauth URI; the same one until it is confirmed.
    let (status, setup) = post(&alice.http, url("/api/v1/two-factor/setup"), json!({})).await;
    assert_eq!(status, 200, "{setup}");
    let secret_b32 = setup["secret"].as_str().unwrap().to_string();
    assert!(setup["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/"));
    assert!(setup["otpauth_uri"].as_str().unwrap().contains(&format!("secret={secret_b32}")));
    let (_, again) = post(&alice.http, url("/api/v1/two-factor/setup"), json!({})).await;
    assert_eq!(again["secret"], secret_b32.as_str());
    let secret = data_encoding::BASE32_NOPAD.decode(secret_b32.as_bytes()).unwrap();
    // The setup page shows the QR code and the secret.
    let r = alice
        .http
        .post(url("/account/two-factor/setup"))
        .header("origin", &app.url)
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("<svg") && html.contains(&secret_b32), "{html}");

    // Every code below is of the step now or one either side: start early in a step so the
    // test stays within it.
    if now_s().rem_euclid(totp::STEP_S) > totp::STEP_S - 8 {
        tokio::time::sleep(std::time::Duration::from_secs(9)).await;
    }
    let step = totp::step_of(now_s());
    let code = |s: i64| totp::code_at(&secret, s);

    // A wrong code does not turn it on.
    let wrong = if code(step) == "000000" { "111111" } else { "000000" };
    let (status, e) =
        post(&alice.http, url("/api/v1/two-factor/enable"), json!({"code": wrong})).await;
    assert_eq!((status, e["code"].as_str()), (403, Some("bad_two_factor_code")), "{e}");
    let (status, enabled) =
        post(&alice.http, url("/api/v1/two-factor/enable"), json!({"code": code(step - 1)})).await;
    assert_eq!(status, 200, "{enabled}");
    let recovery: Vec<String> = enabled["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    assert_eq!(recovery.iter().collect::<std::collections::HashSet<_>>().len(), 10);
    // The session rotated: the caller's new cookie works, and /me says it is on.
    let (status, me) = alice.get("/api/v1/me").await;
    assert_eq!((status, me["two_factor"].as_bool()), (200, Some(true)), "{me}");
    app.mail_with(&alice.email, "Two-factor authentication turned on").await;

    // Login: the password alone is not enough; wrong, stale and reused codes are refused.
    let login = |code: Option<String>| {
        let http = cookie_client();
        let mut body = json!({"email": "alice@example.com", "password": PASSWORD});
        if let Some(c) = code {
            body["two_factor_code"] = json!(c);
        }
        let url = url("/api/v1/auth/login");
        async move {
            let (status, answer) = post(&http, url, body).await;
            (status, answer, http)
        }
    };
    let (status, e, _) = login(None).await;
    assert_eq!((status, e["code"].as_str()), (403, Some("two_factor_required")), "{e}");
    let (status, e, _) = login(Some(wrong.to_string())).await;
    assert_eq!((status, e["code"].as_str()), (403, Some("bad_two_factor_code")), "{e}");
    let (status, e, _) = login(Some(code(step - 2))).await;
    assert_eq!((status, e["code"].as_str()), (403, Some("bad_two_factor_code")), "stale: {e}");
    let (status, e, _) = login(Some(code(step - 1))).await;
    assert_eq!(status, 403, "the code that turned it on is used: {e}");
    let (status, ok, phone) = login(Some(code(step))).await;
    assert_eq!(status, 200, "{ok}");
    let (status, e, _) = login(Some(code(step))).await;
    assert_eq!((status, e["code"].as_str()), (403, Some("bad_two_factor_code")), "reused: {e}");

    // An API key needs a code too.
    let key = |code: Option<String>| {
        let mut body = json!({"label": "bot", "scopes": ["read"]});
        if let Some(c) = code {
            body["two_factor_code"] = json!(c);
        }
        post(&phone, url("/api/v1/api-keys"), body)
    };
    let (status, e) = key(None).await;
    assert_eq!((status, e["code"].as_str()), (403, Some("two_factor_required")), "{e}");
    let (status, created) = key(Some(code(step + 1))).await;
    assert_eq!(status, 201, "{created}");

    // Recovery codes: each works once, in any case and with or without dashes.
    let (status, _, _) = login(Some(recovery[0].to_uppercase())).await;
    assert_eq!(status, 200);
    let (status, e, _) = login(Some(recovery[0].replace('-', ""))).await;
    assert_eq!((status, e["code"].as_str()), (403, Some("bad_two_factor_code")), "{e}");
    app.mail_with(&alice.email, "9 unused recovery code(s) are left").await;

    // Turning it off needs the password and a code.
    let off = |password: &str, code: &str| {
        post(&phone, url("/api/v1/two-factor/disable"), json!({"password": password, "code": code}))
    };
    let (status, e) = off("not the password at all", &recovery[1]).await;
    assert_eq!((status, e["code"].as_str()), (403, Some("bad_password")), "{e}");
    let (status, e) = off(PASSWORD, "123-not-a-code").await;
    assert_eq!((status, e["code"].as_str()), (403, Some("bad_two_factor_code")), "{e}");
    let (status, e) = off(PASSWORD, &recovery[1]).await;
    assert_eq!(status, 200, "{e}");
    app.mail_with(&alice.email, "Two-factor authentication turned off").await;
    // Every other session ended with the change (the browser that enabled it included).
    let (status, _) = alice.get("/api/v1/me").await;
    assert_eq!(status, 401, "sessions end when two-factor changes");
    let (status, _, _) = login(None).await;
    assert_eq!(status, 200, "off: the password is enough again");

    // The security log has both changes, and the failed login with a wrong code.
    let (_, page) = {
        let r = phone.get(url("/api/v1/security-events")).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let kinds: Vec<&str> =
        page["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"two_factor_enabled") && kinds.contains(&"two_factor_disabled"));
    assert!(
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "login_failed" && e["detail"] == "wrong two-factor code"),
        "{page}"
    );
}

#[tokio::test]
async fn the_web_login_asks_for_the_code() {
    let app = App::spawn(Backend::Sqlite).await;
    let alice = register(&app, "alice@example.com").await;
    let url = |path: &str| format!("{}{path}", app.url);
    let (_, setup) = post(&alice.http, url("/api/v1/two-factor/setup"), json!({})).await;
    let secret =
        data_encoding::BASE32_NOPAD.decode(setup["secret"].as_str().unwrap().as_bytes()).unwrap();
    if now_s().rem_euclid(totp::STEP_S) > totp::STEP_S - 5 {
        tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    }
    let step = totp::step_of(now_s());
    let r = alice
        .http
        .post(url("/account/two-factor/enable"))
        .header("origin", &app.url)
        .form(&[("code", totp::code_at(&secret, step - 1))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"id="recovery-codes""#), "{html}");

    let browser = cookie_client();
    let form = |code: &str| {
        browser
            .post(url("/login"))
            .header("origin", &app.url)
            .form(&[
                ("email", "alice@example.com"),
                ("password", PASSWORD),
                ("two_factor_code", code),
                ("next", "/account/security"),
            ])
            .send()
    };
    let r = form("").await.unwrap();
    assert_eq!(r.status(), 403);
    let html = r.text().await.unwrap();
    assert!(html.contains("f-two_factor_code-error"), "{html}");
    let r = form(&totp::code_at(&secret, step)).await.unwrap();
    assert_eq!(r.status(), 200, "followed the redirect");
    let html = r.text().await.unwrap();
    assert!(html.contains("unused recovery code(s) left"), "{html}");
}
