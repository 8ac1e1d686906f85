//! The web UI and the admin app in a real browser: starts the server, makes funded users (and
//! an admin), then runs `tests/browser/e2e.mjs` and `tests/browser/admin.mjs` (playwright-core
//! driving Debian's headless Chromium). It needs
//! `chromium` and `npm ci` in `tests/browser/` — `scripts/test` installs both — and fails,
//! never skips, without them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{App, Backend, deposit, register};
use std::path::PathBuf;
use std::time::Duration;

/// The browser scripts' directory (with playwright-core installed) and Chromium's path.
fn browser_kit() -> (PathBuf, String) {
    // At run time: a build cache filled from another checkout keeps that checkout's path in
    // `env!`.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let dir =
        manifest.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR"))).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci --prefix {}` (scripts/test does)",
        dir.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no Chromium at {chromium}: `apt-get install chromium` (scripts/test does)"
    );
    (dir, chromium)
}

fn shots_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir())
        .join("browser-shots")
}

/// Runs `node SCRIPT` with `env`, for at most three minutes; fails the test if it fails.
async fn run_script(dir: &std::path::Path, script: &str, env: &[(&str, String)]) {
    let mut command = tokio::process::Command::new("node");
    command.arg(dir.join(script)).kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("the browser test took over 3 minutes")
        .expect("cannot run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\nscreenshots in {}", shots_dir().display());
    assert!(output.status.success(), "browser test failed:\n{stdout}\n{stderr}");
}

#[tokio::test]
async fn an_operator_approves_a_withdrawal_in_the_admin_app() {
    let (dir, chromium) = browser_kit();
    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let carol = register(&app, "carol@example.com").await;
    deposit(&app, carol.id, "BTC", "1").await;
    let state = &app.server().state;
    // A withdrawal held and waiting in review, as the wallet records one above the threshold.
    let asset = state.mirror.read().unwrap().asset_by_symbol("BTC").unwrap().id;
    let policy = bourse_wallet::withdrawals::WithdrawalPolicy { asset, scale: 8, fee: 0, min: 1 };
    let request = bourse_wallet::withdrawals::Request {
        user: bourse_core::UserId(carol.id),
        address: "bc1qbrowsertest",
        amount: 70_000_000,
        after_hold: bourse_store::WithdrawalStatus::Review,
        now_ms: bourse_server::now_ms(),
    };
    let w = bourse_wallet::withdrawals::record_and_hold(
        &policy,
        state.store.as_ref(),
        &state.engine,
        &request,
    )
    .await
    .unwrap();
    let password = "operator passphrase 7";
    let created = bourse_server::admin::create_admin(
        state.store.as_ref(),
        &state.keys,
        "ops@example.com",
        password,
        bourse_store::AdminRole::Operator,
        "test",
    )
    .await
    .unwrap();
    let secret = created.otpauth_uri.split("secret=").nth(1).unwrap().split('&').next().unwrap();
    let admin = serde_json::json!({"email": created.email, "password": password, "secret": secret});
    run_script(
        &dir,
        "admin.mjs",
        &[
            ("BOURSE_ADMIN_URL", app.server().admin_url()),
            ("BOURSE_ADMIN", admin.to_string()),
            ("BOURSE_WITHDRAWAL", w.id.to_string()),
            ("BOURSE_SHOTS", shots_dir().display().to_string()),
            ("CHROMIUM", chromium),
        ],
    )
    .await;
    let status = state.store.withdrawal_by_id(w.id).await.unwrap().unwrap().status;
    assert_eq!(status, bourse_store::WithdrawalStatus::Held, "approved: on to the wallet");
    let actions = state.store.admin_actions(None, 10).await.unwrap();
    assert!(actions.iter().any(|a| a.action == "withdrawal.approve"), "{actions:?}");
}

#[tokio::test]
async fn trading_through_the_web_ui() {
    let (dir, chromium) = browser_kit();

    let app = App::spawn(Backend::Sqlite).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    let alice = register(&app, "alice@example.com").await;
    let bob = register(&app, "bob@example.com").await;
    deposit(&app, alice.id, "USDT", "100000").await;
    deposit(&app, bob.id, "BTC", "1").await;
    let password = common::PASSWORD;
    let users = serde_json::json!([
        {"email": alice.email, "password": password},
        {"email": bob.email, "password": password},
    ]);
    run_script(
        &dir,
        "e2e.mjs",
        &[
            ("BOURSE_URL", app.url.clone()),
            ("BOURSE_MAILBOX", app.data_dir.path().join("mailbox").display().to_string()),
            ("BOURSE_USERS", users.to_string()),
            ("BOURSE_SHOTS", shots_dir().display().to_string()),
            ("CHROMIUM", chromium),
        ],
    )
    .await;
}
