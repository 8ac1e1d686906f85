//! The admin app over real HTTP on its own listener: every route in `admin::ROUTES` refuses a
//! request from outside the allowlist, without a session, with too small a role, from another
//! site, and (for changes) without a fresh TOTP code — and nothing changes; approving a
//! withdrawal in review (two admins above the threshold), rejecting one (its funds released),
//! and the audit log that records each action.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use bourse_server::admin::{ROUTES, create_admin};
use bourse_store::{AdminRole, WithdrawalStatus};
use common::{App, Backend, register};
use reqwest::redirect::Policy;
use std::net::IpAddr;

const PASSWORD: &str = "admin passphrase 42";

/// An admin of the test server: their TOTP secret and a browser.
struct Admin {
    email: String,
    role: AdminRole,
    secret: Vec<u8>,
    http: reqwest::Client,
    base: String,
    /// The last TOTP step used (each works once).
    step: i64,
}

fn browser(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

fn now_step() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    bourse_server::totp::step_of(i64::try_from(now.as_secs()).unwrap())
}

impl Admin {
    async fn create(app: &App, email: &str, role: AdminRole) -> Admin {
        let state = &app.server().state;
        let uri = create_admin(state.store.as_ref(), &state.keys, email, PASSWORD, role, "test")
            .await
            .unwrap()
            .otpauth_uri;
        let secret = uri.split("secret=").nth(1).unwrap().split('&').next().unwrap();
        let secret = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
        Admin {
            email: email.into(),
            role,
            secret,
            http: browser("127.0.0.1"),
            base: app.server().admin_url(),
            step: now_step() - 2,
        }
    }

    /// A code of a step not used yet (the current one, or the next: both are accepted).
    fn code(&mut self) -> String {
        self.step = (self.step + 1).max(now_step());
        bourse_server::totp::code_at(&self.secret, self.step)
    }

    async fn login(&mut self) {
        let code = self.code();
        let r = self
            .http
            .post(format!("{}/login", self.base))
            .header("origin", &self.base)
            .form(&[("email", self.email.as_str()), ("password", PASSWORD), ("code", &code)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// A withdrawal of `amount` BTC by a new user, held and waiting in review, as the wallet
/// records one above `review_above`.
async fn in_review(app: &App, email: &str, amount: &str) -> (i64, common::User) {
    let user = register(app, email).await;
    common::deposit(app, user.id, "BTC", "1").await;
    let state = &app.server().state;
    let asset = state.mirror.read().unwrap().asset_by_symbol("BTC").unwrap().id;
    let policy = bourse_wallet::withdrawals::WithdrawalPolicy { asset, scale: 8, fee: 0, min: 1 };
    let request = bourse_wallet::withdrawals::Request {
        user: bourse_core::UserId(user.id),
        address: "bc1qtestaddress",
        amount: bourse_core::decimal::parse_units(amount, 8).unwrap(),
        after_hold: WithdrawalStatus::Review,
        now_ms: bourse_server::now_ms(),
    };
    let row = bourse_wallet::withdrawals::record_and_hold(
        &policy,
        state.store.as_ref(),
        &state.engine,
        &request,
    )
    .await
    .unwrap();
    assert_eq!(row.status, WithdrawalStatus::Review);
    (row.id, user)
}

async fn status_of(app: &App, id: i64) -> WithdrawalStatus {
    app.server().state.store.withdrawal_by_id(id).await.unwrap().unwrap().status
}

/// The demo's markets, then the server again with the admin settings (a threshold must name
/// an asset that exists), a TOTP code staying fresh for `seconds`.
async fn spawn_fresh_for(seconds: &str) -> App {
    let mut app =
        App::spawn_with(Backend::Sqlite, &[("BOURSE_ADMIN__ALLOWED_IPS", "127.0.0.1")]).await;
    bourse_server::demo::setup(&app.server().state).await.unwrap();
    app.stop().await;
    for (key, value) in [
        ("BOURSE_ADMIN__FRESH_TOTP_S", seconds),
        ("BOURSE_WITHDRAWALS__TWO_ADMINS_ABOVE__BTC", "0.5"),
    ] {
        app.extra_env.push((key.into(), value.into()));
    }
    app.start().await;
    app
}

#[tokio::test]
async fn every_admin_route_refuses_what_it_must_and_changes_nothing() {
    // A code is fresh for a second: the test then waits it out.
    let app = spawn_fresh_for("1").await;
    let (id, carol) = in_review(&app, "carol@example.com", "0.1").await;
    let mut viewer = Admin::create(&app, "viewer@example.com", AdminRole::Viewer).await;
    viewer.login().await;
    let mut operator = Admin::create(&app, "operator@example.com", AdminRole::Operator).await;
    operator.login().await;
    let mut superadmin = Admin::create(&app, "super@example.com", AdminRole::Superadmin).await;
    superadmin.login().await;
    let base = app.server().admin_url();
    let spec_before = app
        .server()
        .state
        .mirror
        .read()
        .unwrap()
        .market_by_symbol("BTC-USDT")
        .unwrap()
        .spec
        .clone();
    let path_of =
        |template: &str| template.replace("{id}", &id.to_string()).replace("{symbol}", "BTC-USDT");
    // Every field any admin form takes, filled in: the refusals must come from the rules, not
    // from a form that does not parse.
    const FORM: [(&str, &str); 12] = [
        ("reason", "because"),
        ("action", "halt"),
        ("user", "1"),
        ("asset", "BTC"),
        ("amount", "1"),
        ("reference", "ref-1"),
        ("symbol", "XYZ"),
        ("scale", "8"),
        ("base", "BTC"),
        ("quote", "USDT"),
        ("tick", "0.02"),
        ("lot", "0.001"),
    ];
    let request = |http: &reqwest::Client, method: &str, path: &str, headers: &[(&str, &str)]| {
        let url = format!("{base}{path}");
        let mut r = match method {
            "GET" => http.get(url),
            _ => http.post(url).form(&FORM),
        };
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let here = [("origin", base.as_str())];
    // Every view is read at the end of this test (a new one must be added there).
    assert_eq!(ROUTES.iter().filter(|r| r.method == "GET").count(), 11);
    for route in ROUTES {
        let path = path_of(route.path);
        let what = format!("{} {}", route.method, route.path);
        // From an address outside the allowlist: refused first, session or not.
        let (status, body) = request(&browser("127.0.0.2"), route.method, &path, &here).await;
        assert_eq!(status, 403, "{what}");
        assert!(body.contains("not open to this address"), "{what}: {body}");
        // No session.
        let (status, _) = request(&browser("127.0.0.1"), route.method, &path, &here).await;
        assert_eq!(status, if route.method == "GET" { 303 } else { 401 }, "{what}");
        // A role below the route's.
        for below in [&viewer, &operator].into_iter().filter(|a| a.role < route.role) {
            let (status, body) = request(&below.http, route.method, &path, &here).await;
            assert_eq!(status, 403, "{what}");
            assert!(body.contains("This needs the"), "{what}: {body}");
        }
        // An admin the route lets in, for what follows.
        let allowed = if route.role > AdminRole::Operator { &superadmin } else { &operator };
        // From another site.
        if route.method != "GET" && route.path != "/logout" {
            let evil = [("origin", "https://evil.example")];
            let (status, body) = request(&allowed.http, route.method, &path, &evil).await;
            assert_eq!(status, 403, "{what}");
            assert!(body.contains("Request refused"), "{what}: {body}");
        }
        // A change without a fresh code (the login's is a second old): refused.
        if route.changes {
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            let (status, body) = allowed.post(&path, &FORM).await;
            assert_eq!(status, 403, "{what}: {body}");
            assert!(body.contains("enter a code"), "{what}: {body}");
            let mut wrong = FORM.to_vec();
            wrong.push(("code", "000000"));
            let (status, body) = allowed.post(&path, &wrong).await;
            assert_eq!(status, 403, "{what}: {body}");
        }
    }
    // Nothing changed: the withdrawal waits, the market trades, no one was credited, and the
    // audit log holds only the logins.
    assert_eq!(status_of(&app, id).await, WithdrawalStatus::Review);
    let market = app.server().state.mirror.read().unwrap().market_by_symbol("BTC-USDT").cloned();
    let market = market.unwrap();
    assert_eq!(market.status, bourse_core::MarketStatus::Trading);
    assert_eq!(market.spec, spec_before, "no edit went through");
    assert!(app.server().state.mirror.read().unwrap().asset_by_symbol("XYZ").is_none());
    let store = &app.server().state.store;
    assert!(store.adjustments(None, None, 10).await.unwrap().is_empty(), "no adjustment");
    let actions = app.server().state.store.admin_actions(None, 100).await.unwrap();
    assert!(actions.iter().all(|a| a.action == "login"), "{actions:?}");
    assert!(store.withdrawal_approvals(id).await.unwrap().is_empty());
    // The viewer reads every view.
    for (path, needle) in [
        ("/", "ETH-BTC"),
        ("/users?q=carol", "carol@example.com"),
        (&format!("/users/{}", carol.id), "0.9"),
        ("/withdrawals", "bc1qtestaddress"),
        ("/deposits", "Transfer reference"),
        ("/wallets", "No wallet is configured"),
        ("/markets", "BTC-USDT"),
        ("/adjustments", "Propose an adjustment"),
        ("/reports", "Fee revenue"),
        ("/reports/fees.csv", "period,asset,trade_fees,withdrawal_fees,total"),
        ("/audit", "login"),
    ] {
        let (status, body) = viewer.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.contains(needle), "{path}: {body}");
    }
}

#[tokio::test]
async fn operators_approve_and_reject_withdrawals_and_the_log_records_it() {
    let app = spawn_fresh_for("300").await;
    let (small, _) = in_review(&app, "dave@example.com", "0.2").await;
    let (big, _) = in_review(&app, "erin@example.com", "0.8").await;
    let (rejected, frank) = in_review(&app, "frank@example.com", "0.3").await;
    let mut alice = Admin::create(&app, "alice@example.com", AdminRole::Operator).await;
    let mut bob = Admin::create(&app, "bob@example.com", AdminRole::Superadmin).await;
    alice.login().await;
    bob.login().await;
    let (_, queue) = alice.get("/withdrawals").await;
    assert!(queue.contains(&format!("withdrawal-{big}")) && queue.contains("0 of 2"), "{queue}");

    // Under the two-admin threshold one approval sends it on.
    let code = alice.code();
    let (status, _) =
        alice.post(&format!("/withdrawals/{small}/approve"), &[("code", &code)]).await;
    assert_eq!(status, 303);
    assert_eq!(status_of(&app, small).await, WithdrawalStatus::Held);
    // Above it, the same admin twice is not enough; a second admin is.
    let (status, _) = alice.post(&format!("/withdrawals/{big}/approve"), &[]).await;
    assert_eq!(status, 303, "the code entered a moment ago is still fresh");
    assert_eq!(status_of(&app, big).await, WithdrawalStatus::Review);
    let (status, body) = alice.post(&format!("/withdrawals/{big}/approve"), &[]).await;
    assert_eq!(status, 409);
    assert!(body.contains("another admin must approve it too"), "{body}");
    assert_eq!(status_of(&app, big).await, WithdrawalStatus::Review);
    let (status, _) = bob.post(&format!("/withdrawals/{big}/approve"), &[]).await;
    assert_eq!(status, 303);
    assert_eq!(status_of(&app, big).await, WithdrawalStatus::Held);
    // A decided one cannot be decided again.
    let (status, body) =
        bob.post(&format!("/withdrawals/{small}/reject"), &[("reason", "late")]).await;
    assert_eq!(status, 409, "{body}");

    // A rejection needs a reason; its funds come back and the user is told why.
    let (status, body) = bob.post(&format!("/withdrawals/{rejected}/reject"), &[]).await;
    assert_eq!(status, 400, "{body}");
    let reason = [("reason", "the address belongs to a sanctioned service")];
    let (status, _) = bob.post(&format!("/withdrawals/{rejected}/reject"), &reason).await;
    assert_eq!(status, 303);
    assert_eq!(status_of(&app, rejected).await, WithdrawalStatus::Failed);
    let (_, balances) = frank.get("/api/v1/balances").await;
    let btc = balances.as_array().unwrap().iter().find(|b| b["asset"] == "BTC").unwrap().clone();
    assert_eq!((btc["available"].as_str(), btc["held"].as_str()), (Some("1"), Some("0")), "{btc}");
    let mail = app.mail_with("frank@example.com", "was not approved").await;
    assert!(mail.contains("sanctioned service"), "{mail}");

    // The audit log: each action, by whom, from where, with its reason.
    let (_, log) = alice.get("/audit").await;
    for needle in [
        "withdrawal.approve",
        "withdrawal.reject",
        "sanctioned service",
        "approval 2 of 2",
        "bob@example.com",
        "127.0.0.1",
        "login",
    ] {
        assert!(log.contains(needle), "{needle}: {log}");
    }
    let actions = app.server().state.store.admin_actions(None, 100).await.unwrap();
    let approvals = actions.iter().filter(|a| a.action == "withdrawal.approve").count();
    assert_eq!(approvals, 3, "three approvals, the refused fourth not recorded");

    // Logging out ends the session.
    let (status, _) = alice.post("/logout", &[]).await;
    assert_eq!(status, 303);
    let (status, _) = alice.get("/withdrawals").await;
    assert_eq!(status, 303, "to the login page");
}

#[tokio::test]
async fn the_login_needs_the_password_and_a_code_once() {
    let app = spawn_fresh_for("300").await;
    let mut admin = Admin::create(&app, "root@example.com", AdminRole::Superadmin).await;
    let base = app.server().admin_url();
    let login = |http: &reqwest::Client, password: &str, code: &str| {
        http.post(format!("{base}/login"))
            .header("origin", &base)
            .form(&[("email", "root@example.com"), ("password", password), ("code", code)])
            .send()
    };
    let http = browser("127.0.0.1");
    let code = admin.code();
    let r = login(&http, "wrong password", &code).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = login(&http, PASSWORD, "000000").await.unwrap();
    assert_eq!(r.status(), 401);
    let r = login(&http, PASSWORD, &code).await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    // The same code again: refused (each works once).
    let r = login(&browser("127.0.0.1"), PASSWORD, &code).await.unwrap();
    assert_eq!(r.status(), 401);
    // A user's account is not an admin's.
    register(&app, "user@example.com").await;
    let r = browser("127.0.0.1")
        .post(format!("{base}/login"))
        .header("origin", &base)
        .form(&[("email", "user@example.com"), ("password", common::PASSWORD), ("code", "123456")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The log has the existing admin's failures and the login, newest first.
    let actions = app.server().state.store.admin_actions(None, 100).await.unwrap();
    let kinds: Vec<(&str, &str)> =
        actions.iter().map(|a| (a.action.as_str(), a.detail.as_str())).collect();
    assert_eq!(
        kinds,
        [
            ("login_failed", "wrong code"),
            ("login", ""),
            ("login_failed", "wrong code"),
            ("login_failed", "wrong password")
        ],
        "{actions:?}"
    );
}

#[tokio::test]
async fn operators_find_lock_sign_out_and_reset_users() {
    // The login's code stays fresh for the whole test.
    let app = spawn_fresh_for("300").await;
    let mut grace = register(&app, "grace@example.com").await;
    common::deposit(&app, grace.id, "BTC", "0.25").await;
    let (key, secret) = grace.create_key(&["read"]).await;
    let mut op = Admin::create(&app, "op@example.com", AdminRole::Operator).await;
    op.login().await;

    // Found by id, by part of the e-mail (any case); the detail shows the account.
    for q in [grace.id.to_string(), "GRACE@EXAM".to_string()] {
        let (status, page) = op.get(&format!("/users?q={q}")).await;
        assert_eq!(status, 200);
        assert!(page.contains(&format!("href=\"/users/{}\"", grace.id)), "{q}: {page}");
    }
    let (_, page) = op.get("/users?q=nobody-here").await;
    assert!(page.contains("No user matches"), "{page}");
    let (status, page) = op.get(&format!("/users/{}", grace.id)).await;
    assert_eq!(status, 200);
    assert!(page.contains("grace@example.com") && page.contains("0.25"), "{page}");
    let (status, _) = op.get("/users/999999").await;
    assert_eq!(status, 404);

    // Locked: a reason is needed; then her session ends, her key and her password stop
    // working, and she is told.
    let lock = format!("/users/{}/lock", grace.id);
    let (status, page) = op.post(&lock, &[]).await;
    assert_eq!(status, 400, "{page}");
    let (status, _) = op.post(&lock, &[("reason", "a court order")]).await;
    assert_eq!(status, 303);
    assert_eq!(grace.get("/api/v1/me").await.0, 401, "her session ended");
    let (status, body) = common::signed_request(
        &app.url,
        &key,
        &secret,
        reqwest::Method::GET,
        "/api/v1/me",
        "",
        None,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("account_locked")), "{body}");
    let login = || {
        reqwest::Client::new()
            .post(format!("{}/api/v1/auth/login", app.url))
            .json(&serde_json::json!({"email": "grace@example.com", "password": common::PASSWORD}))
            .send()
    };
    let r = login().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "account_locked");
    app.mail_with("grace@example.com", "a court order").await;
    let (_, page) = op.get(&format!("/users/{}", grace.id)).await;
    assert!(page.contains("locked"), "{page}");

    // Unlocked: she logs in again.
    let (status, _) =
        op.post(&format!("/users/{}/unlock", grace.id), &[("reason", "order lifted")]).await;
    assert_eq!(status, 303);
    assert_eq!(login().await.unwrap().status(), 200);
    app.mail_with("grace@example.com", "unlocked").await;

    // Her two-factor authentication reset (she lost her phone): off, mailed, logged.
    let state = &app.server().state;
    let sealed = state.keys.seal_totp(&[7u8; 20]).unwrap();
    state.store.enable_totp(bourse_core::UserId(grace.id), &sealed, 1, &[]).await.unwrap();
    let reset = format!("/users/{}/reset-two-factor", grace.id);
    let (status, _) = op.post(&reset, &[("reason", "identity checked by video call")]).await;
    assert_eq!(status, 303);
    let row = state.store.user(bourse_core::UserId(grace.id)).await.unwrap().unwrap();
    assert!(row.totp_sealed.is_none());
    app.mail_with("grace@example.com", "identity checked by video call").await;
    let (status, page) = op.post(&reset, &[("reason", "again")]).await;
    assert_eq!(status, 409, "{page}");

    // Every session signed out.
    grace.http = common::cookie_client();
    let r = grace
        .http
        .post(format!("{}/api/v1/auth/login", app.url))
        .json(&serde_json::json!({"email": "grace@example.com", "password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(grace.get("/api/v1/me").await.0, 200);
    let (status, _) =
        op.post(&format!("/users/{}/sign-out", grace.id), &[("reason", "she asked")]).await;
    assert_eq!(status, 303);
    assert_eq!(grace.get("/api/v1/me").await.0, 401);

    // The audit log has each, with its reason; her security log too.
    let actions = state.store.admin_actions(None, 100).await.unwrap();
    for (action, reason) in [
        ("user.lock", "a court order"),
        ("user.unlock", "order lifted"),
        ("user.reset_two_factor", "identity checked by video call"),
        ("user.sign_out", "she asked"),
    ] {
        assert!(
            actions.iter().any(|a| a.action == action && a.reason == reason),
            "{action}: {actions:?}"
        );
    }
}

#[tokio::test]
async fn operators_credit_bank_deposits_once_and_halt_markets() {
    let app = spawn_fresh_for("300").await;
    let heidi = register(&app, "heidi@example.com").await;
    let mut op = Admin::create(&app, "op@example.com", AdminRole::Operator).await;
    op.login().await;
    let user = heidi.id.to_string();
    let credit = |reference: &'static str, amount: &'static str| {
        let form = [
            ("user", user.clone()),
            ("asset", "USDT".to_string()),
            ("amount", amount.to_string()),
            ("reference", reference.to_string()),
            ("reason", "SEPA transfer".to_string()),
        ];
        let http = op.http.clone();
        let url = format!("{}/deposits/credit", op.base);
        let origin = op.base.clone();
        async move {
            let r = http.post(url).header("origin", origin).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, _) = credit("SEPA-2026-0001", "1500.25").await;
    assert_eq!(status, 303);
    // The same reference again credits nothing, whatever the amount.
    let (status, body) = credit("SEPA-2026-0001", "1500.25").await;
    assert_eq!(status, 409);
    assert!(body.contains("credited already"), "{body}");
    let (status, body) = credit("SEPA-2026-0002", "-3").await;
    assert_eq!(status, 400, "{body}");
    let usdt = || async {
        let (_, balances) = heidi.get("/api/v1/balances").await;
        let b = balances.as_array().unwrap().iter().find(|b| b["asset"] == "USDT").cloned();
        b.map(|b| b["available"].as_str().unwrap().to_string())
    };
    assert_eq!(usdt().await.as_deref(), Some("1500.25"));
    app.mail_with("heidi@example.com", "1500.25 USDT").await;

    // Halting a market: it takes cancels only; resumed, it trades again.
    let (status, _) =
        op.post("/markets/BTC-USDT/status", &[("action", "halt"), ("reason", "incident")]).await;
    assert_eq!(status, 303);
    let (_, page) = op.get("/markets").await;
    assert!(page.contains("halted (cancels only)"), "{page}");
    let order = serde_json::json!({"market": "BTC-USDT", "side": "buy", "type": "limit",
        "price": "100", "quantity": "0.01"});
    let r =
        heidi.http.post(format!("{}/api/v1/orders", app.url)).json(&order).send().await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "market_halted");
    let (status, _) =
        op.post("/markets/BTC-USDT/status", &[("action", "resume"), ("reason", "fixed")]).await;
    assert_eq!(status, 303);
    let r =
        heidi.http.post(format!("{}/api/v1/orders", app.url)).json(&order).send().await.unwrap();
    assert_eq!(r.status(), 201);

    let actions = app.server().state.store.admin_actions(None, 100).await.unwrap();
    let done: Vec<(&str, &str)> = actions
        .iter()
        .filter(|a| a.action != "login")
        .map(|a| (a.action.as_str(), a.reason.as_str()))
        .collect();
    assert_eq!(
        done,
        [
            ("market.resume", "fixed"),
            ("market.halt", "incident"),
            ("deposit.credit", "SEPA transfer")
        ]
    );
}

/// Places a limit order through the user's session; returns the response's JSON.
async fn order(
    app: &App,
    user: &common::User,
    side: &str,
    price: &str,
    qty: &str,
) -> serde_json::Value {
    let order = serde_json::json!({"market": "BTC-USDT", "side": side, "type": "limit",
        "price": price, "quantity": qty});
    let r = user.http.post(format!("{}/api/v1/orders", app.url)).json(&order).send().await.unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

/// `(available, locked)` of one asset, as the user's API shows it.
async fn balance(user: &common::User, asset: &str) -> (String, String) {
    let (_, balances) = user.get("/api/v1/balances").await;
    let b = balances.as_array().unwrap().iter().find(|b| b["asset"] == asset).cloned();
    let b = b.unwrap_or_else(|| serde_json::json!({"available": "0", "locked": "0"}));
    (b["available"].as_str().unwrap().into(), b["locked"].as_str().unwrap().into())
}

#[tokio::test]
async fn superadmins_add_and_edit_markets_and_clear_a_halted_book() {
    let app = spawn_fresh_for("300").await;
    let mut root = Admin::create(&app, "root@example.com", AdminRole::Superadmin).await;
    root.login().await;
    let mirror = || app.server().state.mirror.read().unwrap().clone();

    // An asset, then a market on it; a second add of the same is the engine's refusal.
    let (status, body) =
        root.post("/assets", &[("symbol", "DOGE"), ("scale", "8"), ("reason", "listing")]).await;
    assert_eq!(status, 303, "{body}");
    let (status, body) =
        root.post("/assets", &[("symbol", "DOGE"), ("scale", "8"), ("reason", "again")]).await;
    assert_eq!(status, 409);
    assert!(body.contains("the engine refused"), "{body}");
    let (status, body) =
        root.post("/assets", &[("symbol", "doge!"), ("scale", "8"), ("reason", "bad")]).await;
    assert_eq!(status, 400, "{body}");
    let listing = [
        ("base", "DOGE"),
        ("quote", "USDT"),
        ("tick", "0.0001"),
        ("lot", "1"),
        ("maker_fee_ppm", "500"),
        ("reason", "listing"),
    ];
    let (status, body) = root.post("/markets", &listing).await;
    assert_eq!(status, 303, "{body}");
    let doge = mirror().market_by_symbol("DOGE-USDT").cloned().unwrap();
    assert_eq!((doge.spec.tick, doge.spec.lot, doge.spec.min_qty), (100, 100_000_000, 100_000_000));
    assert_eq!((doge.spec.maker_fee_ppm, doge.spec.taker_fee_ppm), (500, 2000));
    let mut too_fine = listing.to_vec();
    too_fine[2] = ("tick", "0.0000001");
    let (status, body) = root.post("/markets", &too_fine).await;
    assert_eq!(status, 400);
    assert!(body.contains("tick:"), "{body}");

    // An edit changes what it gives and nothing else; an empty one is refused.
    let edit = [("taker_fee_ppm", "1500"), ("min_notional", "5"), ("reason", "promotion")];
    let (status, body) = root.post("/markets/DOGE-USDT/edit", &edit).await;
    assert_eq!(status, 303, "{body}");
    let doge = mirror().market_by_symbol("DOGE-USDT").cloned().unwrap();
    assert_eq!((doge.spec.maker_fee_ppm, doge.spec.taker_fee_ppm), (500, 1500));
    assert_eq!((doge.spec.tick, doge.spec.min_notional), (100, 5_000_000));
    let (status, body) = root.post("/markets/DOGE-USDT/edit", &[("reason", "nothing")]).await;
    assert_eq!(status, 400);
    assert!(body.contains("nothing to change"), "{body}");

    // Two users' orders rest on BTC-USDT; cancelling them all needs the market halted.
    let ivan = register(&app, "ivan@example.com").await;
    let judy = register(&app, "judy@example.com").await;
    common::deposit(&app, ivan.id, "USDT", "1000").await;
    common::deposit(&app, judy.id, "BTC", "1").await;
    let bid = order(&app, &ivan, "buy", "100", "1").await;
    order(&app, &ivan, "buy", "90", "1").await;
    order(&app, &judy, "sell", "70000", "0.5").await;
    assert_ne!(balance(&ivan, "USDT").await.1, "0");
    let clear = [("reason", "delisting")];
    let (status, body) = root.post("/markets/BTC-USDT/cancel-orders", &clear).await;
    assert_eq!(status, 409);
    assert!(body.contains("halt BTC-USDT first"), "{body}");
    let (status, _) =
        root.post("/markets/BTC-USDT/status", &[("action", "halt"), ("reason", "delisting")]).await;
    assert_eq!(status, 303);
    let (status, _) = root.post("/markets/BTC-USDT/cancel-orders", &clear).await;
    assert_eq!(status, 303);
    let (_, page) = root.get("/markets").await;
    assert!(
        page.contains("halted (cancels only)") && page.contains("Cancel every order of BTC-USDT")
    );
    assert_eq!(balance(&ivan, "USDT").await, ("1000".into(), "0".into()));
    assert_eq!(balance(&judy, "BTC").await, ("1".into(), "0".into()));
    let (_, got) =
        ivan.get(&format!("/api/v1/orders/{}", bid["order"]["id"].as_u64().unwrap())).await;
    assert_eq!(got["status"], "canceled", "{got}");
    assert!(
        app.server()
            .state
            .mirror
            .read()
            .unwrap()
            .books
            .values()
            .all(|b| { b.bids.is_empty() && b.asks.is_empty() })
    );

    let actions = app.server().state.store.admin_actions(None, 100).await.unwrap();
    let done: Vec<&str> =
        actions.iter().rev().filter(|a| a.action != "login").map(|a| a.action.as_str()).collect();
    assert_eq!(
        done,
        ["asset.add", "market.add", "market.edit", "market.halt", "market.cancel_orders"]
    );
    let cleared = actions.iter().find(|a| a.action == "market.cancel_orders").unwrap();
    assert_eq!(cleared.detail, "3 order(s) of 2 user(s) cancelled");
}

#[tokio::test]
async fn balance_adjustments_need_a_second_admin_and_reach_the_ledger() {
    let app = spawn_fresh_for("300").await;
    let kim = register(&app, "kim@example.com").await;
    common::deposit(&app, kim.id, "BTC", "1").await;
    let mut op = Admin::create(&app, "op@example.com", AdminRole::Operator).await;
    let mut root = Admin::create(&app, "root@example.com", AdminRole::Superadmin).await;
    let mut root2 = Admin::create(&app, "root2@example.com", AdminRole::Superadmin).await;
    for a in [&mut op, &mut root, &mut root2] {
        a.login().await;
    }
    let user = kim.id.to_string();
    let propose = |amount: &'static str, reason: &'static str| {
        [("user", user.as_str()), ("asset", "BTC"), ("amount", amount), ("reason", reason)]
    };
    let store = &app.server().state.store;

    // A proposal changes nothing; bad ones are refused.
    let (status, body) = op.post("/adjustments", &propose("+0.25", "deposit credited short")).await;
    assert_eq!(status, 303, "{body}");
    let first = store.adjustments(None, None, 10).await.unwrap()[0].clone();
    assert_eq!((first.delta, first.proposed_by_email.as_str()), (25_000_000, "op@example.com"));
    assert_eq!(balance(&kim, "BTC").await.0, "1");
    for (amount, reason) in [("0", "zero"), ("1.000000001", "too fine"), ("+1", "")] {
        let (status, body) = op.post("/adjustments", &propose(amount, reason)).await;
        assert_eq!(status, 400, "{amount} {reason}: {body}");
    }
    // An operator cannot approve; the proposer cannot approve their own.
    let (status, _) = op.post(&format!("/adjustments/{}/approve", first.id), &[]).await;
    assert_eq!(status, 403);
    let (status, body) = root.post("/adjustments", &propose("-5", "fat finger")).await;
    assert_eq!(status, 303, "{body}");
    let too_much = store.adjustments(None, None, 10).await.unwrap()[0].clone();
    let (status, body) = root.post(&format!("/adjustments/{}/approve", too_much.id), &[]).await;
    assert_eq!(status, 403);
    assert!(body.contains("another admin must approve it"), "{body}");

    // A second superadmin approves: the engine applies it, and the ledger names it.
    let (status, body) = root.post(&format!("/adjustments/{}/approve", first.id), &[]).await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(balance(&kim, "BTC").await.0, "1.25");
    let applied = store.adjustment(first.id).await.unwrap().unwrap();
    assert_eq!(applied.status, bourse_store::AdjustmentStatus::Applied);
    assert_eq!(applied.decided_by_email.as_deref(), Some("root@example.com"));
    assert!(applied.outcome.starts_with("applied at engine seq"), "{}", applied.outcome);
    let (_, ledger) = kim.get("/api/v1/ledger").await;
    let text = ledger.to_string();
    assert!(text.contains(&format!("adjustment:#{} deposit credited short", first.id)), "{text}");
    let (status, _) = root2.post(&format!("/adjustments/{}/approve", first.id), &[]).await;
    assert_eq!(status, 409, "applied once");

    // Taking more than the user has is the engine's refusal: recorded, balance unchanged.
    let (status, body) = root2.post(&format!("/adjustments/{}/approve", too_much.id), &[]).await;
    assert_eq!(status, 409);
    assert!(body.contains("was not applied"), "{body}");
    let refused = store.adjustment(too_much.id).await.unwrap().unwrap();
    assert_eq!(refused.status, bourse_store::AdjustmentStatus::Refused);
    assert_eq!(balance(&kim, "BTC").await.0, "1.25");

    // A rejection needs a reason; the proposer may withdraw their own.
    let (status, _) = op.post("/adjustments", &propose("-0.1", "duplicate credit")).await;
    assert_eq!(status, 303);
    let third = store.adjustments(None, None, 10).await.unwrap()[0].clone();
    let (status, _) = op.post(&format!("/adjustments/{}/reject", third.id), &[]).await;
    assert_eq!(status, 400);
    let (status, _) = op
        .post(&format!("/adjustments/{}/reject", third.id), &[("reason", "not a duplicate")])
        .await;
    assert_eq!(status, 303);
    let (status, _) = root.post(&format!("/adjustments/{}/approve", third.id), &[]).await;
    assert_eq!(status, 409, "rejected ones stay rejected");
    assert_eq!(balance(&kim, "BTC").await.0, "1.25");

    let (_, page) = root.get("/adjustments").await;
    for needle in ["applied at engine seq", "rejected", "not a duplicate", "refused", "+0.25 BTC"] {
        assert!(page.contains(needle), "{needle}: {page}");
    }
    let actions = store.admin_actions(None, 100).await.unwrap();
    let done: Vec<(&str, &str)> = actions
        .iter()
        .rev()
        .filter(|a| a.action != "login")
        .map(|a| (a.action.as_str(), a.reason.as_str()))
        .collect();
    assert_eq!(
        done,
        [
            ("adjustment.propose", "deposit credited short"),
            ("adjustment.propose", "fat finger"),
            ("adjustment.approve", "deposit credited short"),
            ("adjustment.approve", "fat finger"),
            ("adjustment.propose", "duplicate credit"),
            ("adjustment.reject", "not a duplicate"),
        ]
    );
}

#[tokio::test]
async fn fee_revenue_is_reported_per_asset_and_period_and_exported() {
    let mut app = spawn_fresh_for("300").await;
    let lee = register(&app, "lee@example.com").await;
    let max = register(&app, "max@example.com").await;
    common::deposit(&app, lee.id, "USDT", "40000").await;
    common::deposit(&app, max.id, "BTC", "1").await;
    // 0.5 BTC at 60,000: 30,000 USDT; the maker pays 0.1 %, the taker 0.2 %, both in USDT.
    order(&app, &max, "sell", "60000", "0.5").await;
    order(&app, &lee, "buy", "60000", "0.5").await;
    let mut viewer = Admin::create(&app, "viewer@example.com", AdminRole::Viewer).await;
    viewer.login().await;
    let today = bourse_server::web::format::date(bourse_server::now_ms());
    let expected = format!("{today},USDT,90,0,90\r\n");
    let wait_for_fees = async {
        loop {
            let (_, csv) = viewer.get("/reports/fees.csv").await;
            if csv.contains(&expected) {
                break csv;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let csv =
        tokio::time::timeout(std::time::Duration::from_secs(10), wait_for_fees).await.unwrap();
    assert_eq!(csv, format!("period,asset,trade_fees,withdrawal_fees,total\r\n{expected}"));
    let (_, dashboard) = viewer.get("/").await;
    assert!(dashboard.contains("90 USDT"), "{dashboard}");
    let month = &today[..7];
    let (status, page) = viewer.get(&format!("/reports?from={today}&to={today}&by=month")).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("<td>{month}</td><td>USDT</td><td>90</td>")), "{page}");
    // A period before the trade has none; a bad one is refused.
    let (_, empty) = viewer.get("/reports/fees.csv?from=2020-01-01&to=2020-01-31").await;
    assert_eq!(empty, "period,asset,trade_fees,withdrawal_fees,total\r\n");
    for bad in [
        "from=2026-02-30",
        "from=2026-05-02&to=2026-05-01",
        "from=2020-01-01&to=2026-01-01",
        "by=week",
    ] {
        let (status, _) = viewer.get(&format!("/reports/fees.csv?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
        let (status, _) = viewer.get(&format!("/reports?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
    }
    // A restart counts nothing twice: the projector goes on from the stored hour.
    app.stop().await;
    app.start().await;
    order(&app, &max, "sell", "60000", "0.1").await;
    order(&app, &lee, "buy", "60000", "0.1").await;
    let mut viewer = Admin::create(&app, "viewer2@example.com", AdminRole::Viewer).await;
    viewer.login().await;
    // 6,000 USDT more: 6 + 12 in fees.
    let expected = format!("{today},USDT,108,0,108\r\n");
    let wait = async {
        loop {
            let (_, csv) = viewer.get("/reports/fees.csv").await;
            if csv.contains(&expected) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), wait).await.unwrap();
}

#[tokio::test]
async fn the_deposits_view_lists_chain_deposits_by_status() {
    let app = spawn_fresh_for("300").await;
    let nina = register(&app, "nina@example.com").await;
    let store = &app.server().state.store;
    let btc = app.server().state.mirror.read().unwrap().asset_by_symbol("BTC").unwrap().id;
    // As the wallet records them: one seen and waiting, one credited.
    for (vout, status, confirmations) in [
        (0, bourse_store::DepositStatus::Pending, 1),
        (1, bourse_store::DepositStatus::Credited, 6),
    ] {
        let deposit = bourse_store::DepositRow {
            id: 0,
            asset: btc,
            txid: "ab".repeat(32),
            vout,
            user: bourse_core::UserId(nina.id),
            address: "bc1qnina".into(),
            amount: 12_345_000 * u128::from(vout + 1),
            confirmations,
            status,
            seq: None,
            first_seen_ms: bourse_server::now_ms(),
            updated_ms: bourse_server::now_ms(),
        };
        store.upsert_deposit(&deposit).await.unwrap();
    }
    let mut viewer = Admin::create(&app, "viewer@example.com", AdminRole::Viewer).await;
    viewer.login().await;
    let (_, pending) = viewer.get("/deposits").await;
    assert!(pending.contains("0.12345 BTC") && !pending.contains("0.2469 BTC"), "{pending}");
    let (_, credited) = viewer.get("/deposits?status=credited").await;
    assert!(credited.contains("0.2469 BTC") && !credited.contains("0.12345 BTC"), "{credited}");
    let (_, all) = viewer.get("/deposits?status=all").await;
    assert!(all.contains("0.2469 BTC") && all.contains("0.12345 BTC"), "{all}");
    let (_, dashboard) = viewer.get("/").await;
    assert!(dashboard.contains(r#"<a href="/deposits">1</a>"#), "{dashboard}");
}
