//! The web UI in a real browser: starts the server, makes two funded users, then runs
//! `tests/browser/e2e.mjs` (playwright-core driving Debian's headless Chromium). It needs
//! `chromium` and `npm ci` in `tests/browser/` — `scripts/test` installs both — and fails,
//! never skips, without them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{App, Backend, deposit, register};
use std::path::PathBuf;
use std::time::Duration;

#[tokio::test]
async fn trading_through_the_web_ui() {
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
    let shots = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir())
        .join("browser-shots");

    let run = tokio::process::Command::new("node")
        .arg(dir.join("e2e.mjs"))
        .env("BOURSE_URL", &app.url)
        .env("BOURSE_MAILBOX", app.data_dir.path().join("mailbox"))
        .env("BOURSE_USERS", users.to_string())
        .env("BOURSE_SHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser test took over 3 minutes")
        .expect("cannot run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\nscreenshots in {}", shots.display());
    assert!(output.status.success(), "browser test failed:\n{stdout}\n{stderr}");
}
