//! Deposits through the real server and real coin nodes: two connected `litecoind -regtest`
//! nodes (a user's and the exchange's). Needs `litecoind` — `scripts/test` installs it — and
//! fails, never skips, without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use bourse_wallet::testing::{Node, synced, until};
use common::{App, Backend, register};
use serde_json::{Value, json};
use std::time::Duration;

/// The user's deposit of `txid`, as the API lists it.
async fn deposit(user: &common::User, txid: &str) -> Option<Value> {
    let (_, page) = user.get("/api/v1/deposits?asset=LTC").await;
    page["deposits"].as_array()?.iter().find(|d| d["txid"] == txid).cloned()
}

/// Two connected nodes (the user's with mature coins, the exchange's with the `hot` wallet) and
/// bourse with a wallet for LTC on the exchange's node.
struct World {
    user_node: Node,
    exchange_node: Node,
    payer: bourse_wallet::rpc::BitcoinRpc,
    hot: bourse_wallet::rpc::BitcoinRpc,
    mined: String,
    app: App,
}

impl World {
    async fn start(scan_interval_ms: &str) -> World {
        World::start_with(scan_interval_ms, &[]).await
    }

    /// [`World::start`] with more `wallets.LTC` settings.
    async fn start_with(scan_interval_ms: &str, extra: &[(&str, &str)]) -> World {
        let (user_node, exchange_node) = tokio::join!(Node::start(), Node::start());
        let peer = format!("127.0.0.1:{}", exchange_node.p2p_port);
        let _: Value =
            user_node.rpc(None).call(false, "addnode", json!([peer, "add"])).await.unwrap();
        user_node.rpc(None).create_wallet("user").await.unwrap();
        exchange_node.rpc(None).create_wallet("hot").await.unwrap();
        let payer = user_node.rpc(Some("user"));
        let hot = exchange_node.rpc(Some("hot"));
        let mined = payer.new_address("mining", None).await.unwrap();
        user_node.mine(101, &mined).await;
        synced(&payer, &hot).await;

        // The assets exist before the wallet is configured, as `bourse asset add` makes them;
        // nobody holds any yet.
        let mut app = App::spawn(Backend::Sqlite).await;
        for symbol in ["LTC", "BTC"] {
            let spec = bourse_core::AssetSpec {
                symbol: bourse_core::Symbol::new(symbol).unwrap(),
                scale: 8,
            };
            let out =
                app.server().engine().execute(bourse_core::Command::AddAsset(spec)).await.unwrap();
            assert!(
                matches!(out.events[0], bourse_core::Event::AssetAdded { .. }),
                "{:?}",
                out.events
            );
        }
        app.stop().await;
        let node_url = format!("http://127.0.0.1:{}", exchange_node.rpc_port);
        for (key, value) in [
            ("RPC_URL", node_url.as_str()),
            ("RPC_USER", "test"),
            ("RPC_PASSWORD", "test"),
            ("WALLET", "hot"),
            ("CONFIRMATIONS", "3"),
            ("MIN_DEPOSIT", "0.001"),
            ("SCAN_INTERVAL_MS", scan_interval_ms),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        {
            app.extra_env.push((format!("BOURSE_WALLETS__LTC__{key}"), value.to_string()));
        }
        // Withdrawals go out without the mailed link, except where a test turns it on.
        app.extra_env.push(("BOURSE_WITHDRAWALS__EMAIL_CONFIRMATION".into(), "false".into()));
        app.start().await;
        World { user_node, exchange_node, payer, hot, mined, app }
    }
}

/// A double-spend in the making: the nodes apart, T1 (paying a deposit address) on the
/// exchange's node only, and T2 (the same coin back to the user) to be mined by the user's node.
struct DoubleSpend {
    /// T1's txid.
    t1: String,
    t2_hex: String,
}

impl World {
    /// A deposit address of `user`'s.
    async fn deposit_address(&self, user: &common::User) -> String {
        let r = user
            .http
            .post(format!("{}/api/v1/deposit-addresses", self.app.url))
            .json(&json!({"asset": "LTC"}))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["address"].as_str().unwrap().to_string()
    }

    /// Parts the nodes and sends T1, paying `address` 0.5 from a 50 LTC coin of the user's, to
    /// the exchange's node only; T2, spending the same coin back to the user, is signed.
    async fn double_spend(&self, address: &str) -> DoubleSpend {
        let (payer, hot) = (&self.payer, &self.hot);
        let _: Value =
            self.user_node.rpc(None).call(false, "setnetworkactive", json!([false])).await.unwrap();
        until("the nodes apart", async || {
            (hot.connection_count().await.unwrap() == 0).then_some(())
        })
        .await;
        let coins: Value = payer.call(true, "listunspent", json!([1])).await.unwrap();
        // A 50 LTC coinbase (amounts compared in minor units, read from the reply's text).
        let units = |c: &Value| bourse_wallet::rpc::parse_amount(&c["amount"].to_string()).unwrap();
        let coin = coins.as_array().unwrap().iter().find(|c| units(c) >= 5_000_000_000).unwrap();
        let input = json!([{"txid": coin["txid"], "vout": coin["vout"]}]);
        let change = payer.new_address("change", None).await.unwrap();
        let signed = async |outputs: Value| {
            let raw: String =
                payer.call(false, "createrawtransaction", json!([input, outputs])).await.unwrap();
            let signed: Value =
                payer.call(true, "signrawtransactionwithwallet", json!([raw])).await.unwrap();
            assert_eq!(signed["complete"], true, "{signed}");
            signed["hex"].as_str().unwrap().to_string()
        };
        let t1_hex = signed(json!({address: "0.5", change.clone(): "49.4999"})).await;
        let t1: String = self
            .exchange_node
            .rpc(None)
            .call(false, "sendrawtransaction", json!([t1_hex]))
            .await
            .unwrap();
        let t2_hex = signed(json!({change: "49.9999"})).await;
        DoubleSpend { t1, t2_hex }
    }

    /// The user's node mines T2 under `blocks` blocks, then the nodes meet again: the exchange's
    /// chain reorganises onto the longer one, where T1 conflicts.
    async fn spend_again(&self, d: &DoubleSpend, blocks: u64) {
        let _: String =
            self.payer.call(false, "sendrawtransaction", json!([d.t2_hex])).await.unwrap();
        self.user_node.mine(blocks, &self.mined).await;
        let user = self.user_node.rpc(None);
        let _: Value = user.call(false, "setnetworkactive", json!([true])).await.unwrap();
        let peer = format!("127.0.0.1:{}", self.exchange_node.p2p_port);
        let _: Value = user.call(false, "addnode", json!([peer, "onetry"])).await.unwrap();
        synced(&self.payer, &self.hot).await;
    }
}

#[tokio::test]
async fn a_deposit_is_credited_once_after_its_confirmations() {
    // A minute: within this test the scanner runs at start and when the node's walletnotify
    // hook (posted by `poke` below, as litecoind would) wakes it.
    let World { user_node, exchange_node, payer, hot, mined, mut app } =
        World::start("60000").await;
    let mut alice = register(&app, "alice@example.com").await;

    // No wallet for BTC; a labelled LTC address on request.
    let post = |who: &common::User, body: Value| {
        let request =
            who.http.post(format!("{}/api/v1/deposit-addresses", who.base)).json(&body).send();
        async move {
            let r = request.await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = post(&alice, json!({"asset": "BTC"})).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("no_wallet")), "{body}");
    let (status, body) = post(&alice, json!({"asset": "DOGE"})).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("unknown_asset")), "{body}");
    let (status, body) = post(&alice, json!({"asset": "LTC"})).await;
    assert_eq!(status, 201, "{body}");
    let address = body["address"].as_str().unwrap().to_string();
    assert!(hot.address_is_valid(&address).await.unwrap());
    let (_, listed) = alice.get("/api/v1/deposit-addresses?asset=LTC").await;
    assert_eq!(listed[0]["address"], address.as_str());
    let info: Value = hot.call(true, "getaddressinfo", json!([address])).await.unwrap();
    assert_eq!(info["labels"][0], format!("bourse:user:{}", alice.id), "traceable on the node");

    let hook = reqwest::Client::new();
    let poke = |url: String| {
        let request = hook.post(format!("{url}/internal/wallets/ltc/notify")).send();
        async move { assert_eq!(request.await.unwrap().status(), 202) }
    };

    // Paid from the user's node: pending with its confirmations; a dust payment is recorded only.
    let txid = payer.send_many(&[(address.clone(), 50_000_000)], "", 10_000).await.unwrap();
    let dust = payer.send_many(&[(address.clone(), 10_000)], "", 10_000).await.unwrap();
    until("the payments at the exchange's node", async || {
        hot.transaction(&dust).await.ok().and(hot.transaction(&txid).await.ok())
    })
    .await;
    poke(app.url.clone()).await;
    let seen = until("the pending deposit", async || deposit(&alice, &txid).await).await;
    assert_eq!(seen["status"], "pending");
    assert_eq!((seen["amount"].as_str(), seen["confirmations"].as_i64()), (Some("0.5"), Some(0)));
    assert_eq!(seen["confirmations_required"], 3);
    user_node.mine(2, &mined).await;
    synced(&payer, &hot).await;
    poke(app.url.clone()).await;
    until("two confirmations", async || {
        deposit(&alice, &txid).await.filter(|d| d["confirmations"] == 2)
    })
    .await;
    let ltc = |balances: Value| {
        balances
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["asset"] == "LTC")
            .map(|b| b["available"].as_str().unwrap().to_string())
    };
    assert_eq!(ltc(alice.get("/api/v1/balances").await.1), None, "nothing credited yet");

    // A restart in between changes nothing: the scan goes on from its cursor.
    app.stop().await;
    app.start().await;
    alice.base = app.url.clone();
    user_node.mine(1, &mined).await;
    synced(&payer, &hot).await;
    poke(app.url.clone()).await;
    let r = hook.post(format!("{}/internal/wallets/BTC/notify", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 404, "no wallet for BTC");
    let credited = until("the credit", async || {
        deposit(&alice, &txid).await.filter(|d| d["status"] == "credited")
    })
    .await;
    assert_eq!(credited["confirmations"], 3);
    assert_eq!(ltc(alice.get("/api/v1/balances").await.1).as_deref(), Some("0.5"));
    let mail = app.mail_with(&alice.email, "Deposit credited: 0.5 LTC").await;
    assert!(mail.contains(&txid), "the mail names the transaction: {mail}");
    let dusty = deposit(&alice, &dust).await.unwrap();
    assert_eq!(dusty["status"], "below_minimum");

    // More blocks and scans: still credited once.
    user_node.mine(3, &mined).await;
    synced(&payer, &hot).await;
    poke(app.url.clone()).await;
    // A credited deposit is still followed (a reorg could yet take it away), and never
    // credited again.
    until("followed after its credit", async || {
        deposit(&alice, &txid).await.filter(|d| d["confirmations"] == 6)
    })
    .await;
    assert_eq!(ltc(alice.get("/api/v1/balances").await.1).as_deref(), Some("0.5"));
    let (_, ledger) = alice.get("/api/v1/ledger?asset=LTC").await;
    let credits: Vec<&Value> =
        ledger["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "deposit").collect();
    assert_eq!(credits.len(), 1, "{ledger}");
    assert_eq!(credits[0]["delta_available"], "0.5");

    // The deposit page: the address with its QR code, the deposits with their confirmations.
    let page_url = format!("{}/account/funds/LTC/deposit", app.url);
    let html = common::text(&alice.http, &page_url).await;
    assert!(html.contains(&format!(r#"<code id="deposit-address">{address}</code>"#)), "{html}");
    assert!(html.contains("<svg") && html.contains("<path"), "a QR code");
    assert!(!html.contains("<script>") && !html.contains(" style="), "nothing inline for the CSP");
    assert!(html.contains("credited") && html.contains("below minimum") && html.contains("0.5"));
    let r = alice
        .http
        .post(format!("{page_url}/address"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a new address only from this site");
    let r = alice.http.post(format!("{page_url}/address")).send().await.unwrap();
    assert_eq!(r.status(), 200, "back on the page");
    let html = r.text().await.unwrap();
    let (_, listed) = alice.get("/api/v1/deposit-addresses?asset=LTC").await;
    let newest = listed[0]["address"].as_str().unwrap();
    assert_ne!(newest, address);
    assert!(html.contains(&format!(r#"<code id="deposit-address">{newest}</code>"#)));
    assert!(html.contains(&format!("<li><code>{address}</code></li>")), "the first still listed");
    let html = common::text(&alice.http, &format!("{}/account/funds/BTC/deposit", app.url)).await;
    assert!(html.contains("not open on this exchange"));

    // Node health: on /health and the status page; a node that stops makes the exchange degraded.
    let (_, health) = alice.get("/api/v1/health").await;
    let node = &health["nodes"][0];
    assert_eq!(
        (node["asset"].as_str(), node["reachable"].as_bool()),
        (Some("LTC"), Some(true)),
        "{health}"
    );
    assert_eq!(node["blocks"], hot.chain_info().await.unwrap().blocks);
    assert_eq!((node["chain"].as_str(), node["state"].as_str()), (Some("regtest"), Some("normal")));
    assert_eq!(node["peers"], 1);
    assert_eq!(node["hot_wallet_balance"], "0.5001", "both payments, confirmed");
    assert_eq!(health["status"], "ok");
    let status = common::text(&alice.http, &format!("{}/status", app.url)).await;
    assert!(status.contains(r#"<th scope="row">LTC</th><td class="up">normal</td>"#), "{status}");
    drop(exchange_node);
    // Within the probe's reuse time (2 s).
    let health = until("degraded", async || {
        Some(alice.get("/api/v1/health").await.1).filter(|h| h["status"] == "degraded")
    })
    .await;
    assert_eq!(
        (health["nodes"][0]["reachable"].as_bool(), health["nodes"][0]["state"].as_str()),
        (Some(false), Some("unreachable"))
    );
    app.stop().await;
}

/// The user's LTC (available, held).
async fn balance(user: &common::User) -> (String, String) {
    let (_, all) = user.get("/api/v1/balances").await;
    let b = all.as_array().unwrap().iter().find(|b| b["asset"] == "LTC").cloned().unwrap();
    (b["available"].as_str().unwrap().to_string(), b["held"].as_str().unwrap().to_string())
}

/// The balance of LTC available to `user`, if any.
async fn ltc_available(user: &common::User) -> Option<String> {
    let (_, balances) = user.get("/api/v1/balances").await;
    balances
        .as_array()?
        .iter()
        .find(|b| b["asset"] == "LTC")
        .map(|b| b["available"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn a_deposit_double_spent_before_its_confirmations_is_never_credited() {
    let world = World::start("100").await;
    let World { user_node, exchange_node, payer, hot, mined, app } = &world;
    let alice = register(app, "alice@example.com").await;
    let address = world.deposit_address(&alice).await;

    // T1 pays Alice; only the exchange's node gets it, and mines it.
    let spend = world.double_spend(&address).await;
    let t1 = spend.t1.clone();
    let exchange_mining = hot.new_address("mining", None).await.unwrap();
    exchange_node.mine(1, &exchange_mining).await;
    let seen = until("T1 pending", async || {
        deposit(&alice, &t1).await.filter(|d| d["confirmations"] == 1)
    })
    .await;
    assert_eq!(seen["status"], "pending");

    // Meanwhile the user's node spends the same coin back to the user (T2) and mines a longer
    // chain; then the nodes meet again.
    world.spend_again(&spend, 2).await;

    // The exchange's chain reorganised: T1 conflicts with the best chain and is dropped; more
    // blocks never credit it.
    let dropped = until("T1 dropped", async || {
        deposit(&alice, &t1).await.filter(|d| d["status"] == "dropped")
    })
    .await;
    assert!(dropped["confirmations"].as_i64().unwrap() < 0, "{dropped}");
    user_node.mine(3, mined).await;
    synced(payer, hot).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(deposit(&alice, &t1).await.unwrap()["status"], "dropped", "still dropped");
    assert_eq!(ltc_available(&alice).await, None, "never credited");
    let (_, ledger) = alice.get("/api/v1/ledger?asset=LTC").await;
    assert!(ledger["entries"].as_array().unwrap().is_empty(), "{ledger}");
}

#[tokio::test]
async fn a_deposit_double_spent_after_its_credit_is_reversed_and_freezes_withdrawals() {
    // Withdrawals are processed at start and when the hook wakes them, no sooner.
    let world = World::start_with(
        "100",
        &[("WITHDRAWAL_INTERVAL_MS", "600000"), ("REORG_WATCH_CONFIRMATIONS", "50")],
    )
    .await;
    let World { user_node, exchange_node, payer, hot, mined, app } = &world;
    let alice = register(app, "alice@example.com").await;
    let address = world.deposit_address(&alice).await;

    // T1 pays Alice 0.5; only the exchange's node gets it, and buries it under its 3
    // confirmations: credited.
    let spend = world.double_spend(&address).await;
    let t1 = spend.t1.clone();
    exchange_node.mine(3, &hot.new_address("mining", None).await.unwrap()).await;
    until("T1 credited", async || deposit(&alice, &t1).await.filter(|d| d["status"] == "credited"))
        .await;

    // Alice withdraws 0.3 of it before anyone knows (held: the processor waits).
    let elsewhere = payer.new_address("elsewhere", None).await.unwrap();
    let withdraw = async |amount: &str| {
        let r = alice
            .http
            .post(format!("{}/api/v1/withdrawals", alice.base))
            .json(&json!({"asset": "LTC", "address": elsewhere, "amount": amount}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let (status, held) = withdraw("0.3").await;
    assert_eq!((status, held["status"].as_str()), (201, Some("held")), "{held}");
    assert_eq!(balance(&alice).await, ("0.2".to_string(), "0.3".to_string()));

    // Meanwhile the user's node spends the same coin back to the user (T2) and mines a longer
    // chain; the nodes meet again and the exchange's chain reorganises: T1 is double-spent.
    world.spend_again(&spend, 5).await;

    // The credit is taken back: Alice is 0.3 below zero, recorded in her ledger.
    let reversed = until("T1 reversed", async || {
        deposit(&alice, &t1).await.filter(|d| d["status"] == "reversed")
    })
    .await;
    assert!(reversed["confirmations"].as_i64().unwrap() < 0, "{reversed}");
    until("the balance below zero", async || {
        (balance(&alice).await == ("-0.3".to_string(), "0.3".to_string())).then_some(())
    })
    .await;
    let (_, ledger) = alice.get("/api/v1/ledger?asset=LTC").await;
    let kinds: Vec<&str> =
        ledger["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["reversal", "withdrawal", "deposit"], "{ledger}");

    // The operator is alerted (recorded, not only logged).
    let store = bourse_store::connect(&app.database_url).await.unwrap();
    let alerts = store.alerts(10).await.unwrap();
    assert!(
        alerts.iter().any(|a| a.source == "wallet:LTC"
            && a.message.contains(&t1)
            && a.message.contains("reversed")),
        "{alerts:?}"
    );
    store.close().await;

    // Frozen: no new withdrawal, and the held one is not sent while the balance is below zero.
    let (status, refused) = withdraw("0.01").await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("withdrawals_frozen")), "{refused}");
    let hook = reqwest::Client::new();
    let r = hook.post(format!("{}/internal/wallets/LTC/notify", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 202);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, page) = alice.get("/api/v1/withdrawals?asset=LTC").await;
    assert_eq!(page["withdrawals"][0]["status"], "held", "{page}");
    assert_eq!(page["withdrawals"][0]["txid"], Value::Null, "{page}");
    // More blocks change nothing: reversed once.
    user_node.mine(2, mined).await;
    synced(payer, hot).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(balance(&alice).await, ("-0.3".to_string(), "0.3".to_string()));
}

#[tokio::test]
async fn withdrawals_are_batched_sent_once_and_completed() {
    let World { user_node, exchange_node, payer, hot, mined, mut app } = World::start_with(
        "100",
        &[
            ("WITHDRAWAL_FEE", "0.001"),
            ("WITHDRAWAL_MIN", "0.01"),
            ("WITHDRAWAL_INTERVAL_MS", "60000"),
        ],
    )
    .await;
    app.stop().await;
    app.extra_env.push(("BOURSE_WITHDRAWALS__EMAIL_CONFIRMATION".into(), "true".into()));
    app.start().await;
    let mut alice = register(&app, "alice@example.com").await;
    common::deposit(&app, alice.id, "LTC", "2").await;
    // The hot wallet has coins to send.
    let hot_address = hot.new_address("hot", None).await.unwrap();
    payer.send_many(&[(hot_address, 500_000_000)], "", 10_000).await.unwrap();
    user_node.mine(1, &mined).await;
    synced(&payer, &hot).await;

    let withdraw = |alice: &common::User, body: Value| {
        let request =
            alice.http.post(format!("{}/api/v1/withdrawals", alice.base)).json(&body).send();
        async move {
            let r = request.await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (a1, a2) = (
        payer.new_address("w1", None).await.unwrap(),
        payer.new_address("w2", None).await.unwrap(),
    );
    // Refused, nothing held: a wrong-network address, under the minimum, off precision, too much.
    for (body, code) in [
        (
            json!({"asset": "LTC", "address": "LZ5v8tXFqLgEzxgD3q9zdqfdDfN1uAsvQq", "amount": "0.1"}),
            "bad_address",
        ),
        (json!({"asset": "LTC", "address": a1, "amount": "0.001"}), "below_minimum"),
        (json!({"asset": "LTC", "address": a1, "amount": "0.123456789"}), "too_precise"),
        (json!({"asset": "LTC", "address": a1, "amount": "2"}), "insufficient_funds"),
        (json!({"asset": "BTC", "address": a1, "amount": "0.1"}), "no_wallet"),
    ] {
        let (status, answer) = withdraw(&alice, body).await;
        assert_eq!(answer["code"], code, "{answer}");
        assert!(status == 400 || status == 404);
    }
    assert_eq!(balance(&alice).await, ("2".to_string(), "0".to_string()), "nothing held");
    let (_, none) = alice.get("/api/v1/withdrawals").await;
    assert_eq!(none["withdrawals"], json!([]), "and nothing recorded");

    // Two withdrawals: held with their fee; each waits for the link mailed for it.
    let (status, w1) =
        withdraw(&alice, json!({"asset": "LTC", "address": a1, "amount": "0.3"})).await;
    assert_eq!(
        (status, w1["status"].as_str(), w1["fee"].as_str()),
        (201, Some("unconfirmed"), Some("0.001")),
        "{w1}"
    );
    // Each mail is read as it arrives: `mail_with` looks at the newest one.
    let mail1 = app.mail_with(&alice.email, "withdrawal of 0.3 LTC").await;
    let (status, _) =
        withdraw(&alice, json!({"asset": "LTC", "address": a2, "amount": "0.2"})).await;
    assert_eq!(status, 201);
    assert_eq!(balance(&alice).await, ("1.498".to_string(), "0.502".to_string()));
    let hook = reqwest::Client::new();
    // Unconfirmed, they are not sent, however often the processor runs.
    hook.post(format!("{}/internal/wallets/LTC/notify", app.url)).send().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, page) = alice.get("/api/v1/withdrawals?asset=LTC").await;
    assert!(
        page["withdrawals"].as_array().unwrap().iter().all(|w| w["status"] == "unconfirmed"),
        "{page}"
    );
    let token_in = |mail: &str| {
        let at = mail.find("/confirm-withdrawal?token=").expect("a confirmation link");
        mail[at + "/confirm-withdrawal?token=".len()..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect::<String>()
    };
    assert!(mail1.contains(&a1), "{mail1}");
    let mail2 = app.mail_with(&alice.email, "withdrawal of 0.2 LTC").await;
    let (t1, t2) = (token_in(&mail1), token_in(&mail2));
    // One through the REST endpoint, once; the other through the page the link opens.
    let confirm = |url: &str, token: String| {
        hook.post(format!("{url}/api/v1/withdrawals/confirm"))
            .json(&json!({ "token": token }))
            .send()
    };
    let r = confirm(&app.url, t1.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "held");
    let again = confirm(&app.url, t1).await.unwrap();
    assert_eq!(again.status(), 400, "a link works once");
    let page = common::text(&hook, &format!("{}/confirm-withdrawal?token={t2}", app.url)).await;
    assert!(page.contains("Confirm the withdrawal"), "{page}");
    let r = hook
        .post(format!("{}/confirm-withdrawal", app.url))
        .header("Origin", &app.url)
        .form(&[("token", t2.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Withdrawal confirmed"));
    let r = hook.post(format!("{}/internal/wallets/LTC/notify", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let sent = until("the batch sent", async || {
        let (_, page) = alice.get("/api/v1/withdrawals?asset=LTC").await;
        let list = page["withdrawals"].as_array()?.clone();
        list.iter().all(|w| w["status"] == "sent").then_some(list)
    })
    .await;
    let txid = sent[0]["txid"].as_str().unwrap().to_string();
    assert_eq!(sent[1]["txid"], txid.as_str(), "one transaction for both");
    let at_exchange = hot.transaction(&txid).await.unwrap();
    assert_eq!(
        at_exchange.comment.as_deref(),
        Some(format!("bourse:w:{},{}", w1["id"], w1["id"].as_i64().unwrap() + 1).as_str())
    );

    // They arrive in the user's wallet with the recorded txid; confirmed, they complete.
    exchange_node.mine(3, &hot.new_address("mining", None).await.unwrap()).await;
    synced(&payer, &hot).await;
    let arrived = payer.transaction(&txid).await.unwrap();
    let mut got: Vec<(String, i128)> = arrived
        .details
        .iter()
        .filter(|d| d.category == "receive")
        .map(|d| (d.address.clone().unwrap(), d.amount.0))
        .collect();
    got.sort();
    let mut want = vec![(a1.clone(), 30_000_000), (a2.clone(), 20_000_000)];
    want.sort();
    assert_eq!(got, want);
    hook.post(format!("{}/internal/wallets/LTC/notify", app.url)).send().await.unwrap();
    until("completed", async || {
        let (_, page) = alice.get("/api/v1/withdrawals?asset=LTC").await;
        page["withdrawals"].as_array()?.iter().all(|w| w["status"] == "completed").then_some(())
    })
    .await;
    assert_eq!(balance(&alice).await, ("1.498".to_string(), "0".to_string()));
    let sent_mail = app.mail_with(&alice.email, "Withdrawal sent").await;
    assert!(sent_mail.contains(&txid), "the mail names the transaction: {sent_mail}");

    // A link not used in time: the withdrawal is cancelled and its funds are released.
    app.stop().await;
    app.extra_env.push(("BOURSE_WITHDRAWALS__CONFIRMATION_TTL_S".into(), "2".into()));
    app.extra_env.push(("BOURSE_WITHDRAWALS__SWEEP_INTERVAL_MS".into(), "200".into()));
    app.start().await;
    alice.base = app.url.clone();
    let (status, late) =
        withdraw(&alice, json!({"asset": "LTC", "address": a1, "amount": "0.1"})).await;
    assert_eq!((status, late["status"].as_str()), (201, Some("unconfirmed")), "{late}");
    assert_eq!(balance(&alice).await, ("1.397".to_string(), "0.101".to_string()));
    let late_mail = app.mail_with(&alice.email, "withdrawal of 0.1 LTC").await;
    let expired = until("the unconfirmed withdrawal cancelled", async || {
        let (_, page) = alice.get("/api/v1/withdrawals?asset=LTC").await;
        let w = page["withdrawals"][0].clone();
        (w["status"] == "failed").then_some(w)
    })
    .await;
    assert_eq!(expired["reason"], "not confirmed in time");
    assert_eq!(balance(&alice).await, ("1.498".to_string(), "0".to_string()), "released");
    let r = confirm(&app.url, token_in(&late_mail)).await.unwrap();
    assert_eq!(r.status(), 400, "the expired link does nothing");
    app.stop().await;
    app.extra_env.push(("BOURSE_WITHDRAWALS__EMAIL_CONFIRMATION".into(), "false".into()));
    app.start().await;
    alice.base = app.url.clone();

    // The withdraw page: balance, fee, the history with txids; the form without JavaScript.
    let page_url = format!("{}/account/funds/LTC/withdraw", app.url);
    let html = common::text(&alice.http, &page_url).await;
    assert!(html.contains("1.498 LTC") && html.contains("Fee 0.001 LTC"), "{html}");
    assert_eq!(html.matches(&format!("<code>{txid}</code>")).count(), 2, "both with the txid");
    let r = alice
        .http
        .post(&page_url)
        .form(&[("address", "not-an-address"), ("amount", "0.1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"id="withdraw-address-error""#) && html.contains(r#"value="0.1""#));
    let r = alice
        .http
        .post(&page_url)
        .header("sec-fetch-site", "cross-site")
        .form(&[("address", a2.as_str()), ("amount", "0.1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = alice
        .http
        .post(&page_url)
        .form(&[("address", a2.as_str()), ("amount", "0.1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "back on the page");
    assert!(r.text().await.unwrap().contains("<td>held</td>"));
    assert_eq!(balance(&alice).await, ("1.397".to_string(), "0.101".to_string()));
    hook.post(format!("{}/internal/wallets/LTC/notify", app.url)).send().await.unwrap();
    until("the page's withdrawal sent", async || {
        let (_, page) = alice.get("/api/v1/withdrawals?asset=LTC").await;
        (page["withdrawals"][0]["status"] == "sent").then_some(())
    })
    .await;

    // A crash after the broadcast and before the record: the batch is `sending` and its
    // transaction is in the node's wallet. After a restart it is recorded, never sent again.
    let (status, w3) =
        withdraw(&alice, json!({"asset": "LTC", "address": a1, "amount": "0.05"})).await;
    assert_eq!(status, 201);
    let id = w3["id"].as_i64().unwrap();
    app.stop().await;
    let store = bourse_store::connect(&app.database_url).await.unwrap();
    store
        .set_withdrawal_status(id, bourse_store::WithdrawalStatus::Sending, None, None, 0)
        .await
        .unwrap();
    let lost =
        hot.send_many(&[(a1.clone(), 5_000_000)], &format!("bourse:w:{id}"), 10_000).await.unwrap();
    store.close().await;
    app.start().await;
    alice.base = app.url.clone();
    let recovered = until("the lost send recorded", async || {
        let (_, page) = alice.get("/api/v1/withdrawals?asset=LTC").await;
        page["withdrawals"]
            .as_array()?
            .iter()
            .find(|w| w["id"] == id && w["status"] == "sent")
            .cloned()
    })
    .await;
    assert_eq!(recovered["txid"], lost.as_str());
    let sends: Vec<Value> =
        hot.call(true, "listtransactions", json!(["*", 1000, 0, true])).await.unwrap();
    let tagged = sends
        .iter()
        .filter(|t| t["category"] == "send" && t["comment"] == format!("bourse:w:{id}").as_str())
        .count();
    assert_eq!(tagged, 1, "sent once");
    drop(exchange_node);
}

#[tokio::test]
async fn a_hot_wallet_short_of_what_users_hold_pauses_withdrawals() {
    let World { user_node, exchange_node: _node, payer, hot, mined, app } = World::start_with(
        "200",
        &[("WITHDRAWAL_INTERVAL_MS", "200"), ("RECONCILE_TOLERANCE", "0.01")],
    )
    .await;
    let alice = register(&app, "alice@example.com").await;
    // The hot wallet holds 5 LTC; Alice is owed 1.
    let hot_address = hot.new_address("hot", None).await.unwrap();
    payer.send_many(&[(hot_address.clone(), 500_000_000)], "", 10_000).await.unwrap();
    user_node.mine(1, &mined).await;
    synced(&payer, &hot).await;
    common::deposit(&app, alice.id, "LTC", "1").await;
    let node = async || alice.get("/api/v1/health").await.1["nodes"][0].clone();
    until("reconciled", async || node().await.get("owed").filter(|o| *o == "1").map(|_| ())).await;
    let n = node().await;
    assert_eq!(
        (n["withdrawals_paused"].as_bool(), n["shortfall"].as_str()),
        (Some(false), Some("-4")),
        "{n}"
    );

    // Coins leave the hot wallet behind bourse's back: an alert, withdrawals pause, health is
    // degraded; a withdrawal is held but not sent.
    let elsewhere = payer.new_address("elsewhere", None).await.unwrap();
    hot.send_many(&[(elsewhere, 450_000_000)], "", 10_000).await.unwrap();
    let n =
        until("paused", async || Some(node().await).filter(|n| n["withdrawals_paused"] == true))
            .await;
    assert!(n["shortfall"].as_str().unwrap().starts_with("0.5"), "{n}");
    assert_eq!(alice.get("/api/v1/health").await.1["status"], "degraded");
    let to = payer.new_address("withdrawal", None).await.unwrap();
    let r = alice
        .http
        .post(format!("{}/api/v1/withdrawals", app.url))
        .json(&json!({"asset": "LTC", "address": to, "amount": "0.3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (_, page) = alice.get("/api/v1/withdrawals").await;
    assert_eq!(page["withdrawals"][0]["status"], "held", "not sent while short");
    let status = common::text(&alice.http, &format!("{}/status", app.url)).await;
    assert!(status.contains("paused (short 0.5"), "{status}");

    // Topped up again: withdrawals resume and it goes out.
    payer.send_many(&[(hot_address, 200_000_000)], "", 10_000).await.unwrap();
    user_node.mine(1, &mined).await;
    synced(&payer, &hot).await;
    until("sent", async || {
        let (_, page) = alice.get("/api/v1/withdrawals").await;
        (page["withdrawals"][0]["status"] == "sent").then_some(())
    })
    .await;
    assert_eq!(node().await["withdrawals_paused"], false);
}

#[tokio::test]
async fn whitelist_daily_limit_and_review_gate_withdrawals() {
    let World { payer, exchange_node: _node, user_node: _user_node, mut app, .. } =
        World::start_with("100", &[("WITHDRAWAL_FEE", "0.001"), ("WITHDRAWAL_MIN", "0.01")]).await;
    app.stop().await;
    for (key, value) in [
        ("BOURSE_WITHDRAWALS__DAILY_LIMITS__LTC", "1"),
        ("BOURSE_WITHDRAWALS__REVIEW_ABOVE__LTC", "0.5"),
        ("BOURSE_WITHDRAWALS__ADDRESS_DELAY_S", "2"),
    ] {
        app.extra_env.push((key.into(), value.into()));
    }
    app.start().await;
    let alice = register(&app, "alice@example.com").await;
    let bob = register(&app, "bob@example.com").await;
    common::deposit(&app, alice.id, "LTC", "3").await;
    let send = |user: &common::User, method: reqwest::Method, path: &str, body: Value| {
        let request = user.http.request(method, format!("{}{path}", user.base)).json(&body).send();
        async move {
            let r = request.await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let withdraw = |address: &str, amount: &str| {
        let body = json!({"asset": "LTC", "address": address, "amount": amount});
        send(&alice, reqwest::Method::POST, "/api/v1/withdrawals", body)
    };
    let (a1, a2) = (
        payer.new_address("w1", None).await.unwrap(),
        payer.new_address("w2", None).await.unwrap(),
    );

    // Above the review threshold: held, waiting for an operator.
    let (status, big) = withdraw(&a1, "0.6").await;
    assert_eq!((status, big["status"].as_str()), (201, Some("review")), "{big}");
    // Within the daily limit (1 LTC in 24 h): held to be sent.
    let (status, small) = withdraw(&a1, "0.3").await;
    assert_eq!((status, small["status"].as_str()), (201, Some("held")), "{small}");
    // Over it: refused, nothing held.
    let (status, over) = withdraw(&a1, "0.2").await;
    assert_eq!((status, over["code"].as_str()), (403, Some("daily_limit")), "{over}");
    assert!(over["message"].as_str().unwrap().contains("0.1 LTC left"), "{over}");
    assert_eq!(balance(&alice).await, ("2.098".to_string(), "0.902".to_string()));

    // The whitelist on: only usable addresses of it.
    let post = reqwest::Method::POST;
    let (status, list) = send(
        &alice,
        reqwest::Method::PUT,
        "/api/v1/withdrawal-addresses/enabled",
        json!({"enabled": true}),
    )
    .await;
    assert_eq!((status, &list["enabled"]), (200, &json!(true)), "{list}");
    let (status, refused) = withdraw(&a2, "0.05").await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("address_not_whitelisted")));
    let add = |address: &str| {
        let body = json!({"asset": "LTC", "address": address, "label": "cold wallet"});
        send(&alice, post.clone(), "/api/v1/withdrawal-addresses", body)
    };
    let (status, bad) = add("LZ5v8tXFqLgEzxgD3q9zdqfdDfN1uAsvQq").await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("bad_address")), "{bad}");
    let (status, added) = add(&format!("  {a2} ")).await;
    assert_eq!((status, added["status"].as_str()), (201, Some("unconfirmed")), "{added}");
    assert_eq!(added["address"], a2.as_str(), "kept as the chain writes it");
    let (status, twice) = add(&a2).await;
    assert_eq!((status, twice["code"].as_str()), (409, Some("address_exists")));
    // Unconfirmed: still refused.
    assert_eq!(withdraw(&a2, "0.05").await.1["code"], "address_not_whitelisted");

    // Another user can neither see nor remove it.
    let id = added["id"].as_i64().unwrap();
    let (_, theirs) = bob.get("/api/v1/withdrawal-addresses").await;
    assert_eq!(theirs["addresses"], json!([]), "{theirs}");
    let (status, _) = send(
        &bob,
        reqwest::Method::DELETE,
        &format!("/api/v1/withdrawal-addresses/{id}"),
        json!({}),
    )
    .await;
    assert_eq!(status, 404);

    // The mailed link confirms it (once); it is usable after the delay.
    let mail = app.mail_with(&alice.email, "/confirm-address?token=").await;
    assert!(mail.contains(&a2), "{mail}");
    let token: String = mail
        .split("/confirm-address?token=")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    let page = common::text(&bob.http, &format!("{}/confirm-address?token={token}", app.url)).await;
    assert!(page.contains("Confirm the address"), "the link opens a page: {page}");
    let r = bob
        .http
        .post(format!("{}/confirm-address", app.url))
        .header("Origin", &app.url)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("is confirmed"));
    let (status, _) =
        send(&alice, post.clone(), "/api/v1/withdrawal-addresses/confirm", json!({"token": token}))
            .await;
    assert_eq!(status, 400, "a link works once");
    let (_, list) = alice.get("/api/v1/withdrawal-addresses").await;
    assert_eq!(list["addresses"][0]["status"], "waiting", "{list}");
    assert_eq!(withdraw(&a2, "0.05").await.1["code"], "address_not_whitelisted", "not yet");
    until("usable", async || {
        let (_, list) = alice.get("/api/v1/withdrawal-addresses").await;
        (list["addresses"][0]["status"] == "usable").then_some(())
    })
    .await;
    let (status, w) = withdraw(&a2, "0.05").await;
    assert_eq!((status, w["status"].as_str()), (201, Some("held")), "{w}");
    assert_eq!(withdraw(&a1, "0.01").await.1["code"], "address_not_whitelisted");
    // The page lists it and the withdraw form offers it.
    let page =
        common::text(&alice.http, &format!("{}/account/withdrawal-addresses", app.url)).await;
    assert!(
        page.contains(&a2) && page.contains("cold wallet") && page.contains(">usable<"),
        "{page}"
    );
    let form = common::text(&alice.http, &format!("{}/account/funds/LTC/withdraw", app.url)).await;
    assert!(form.contains(&format!("<option value=\"{a2}\">")), "{form}");

    // Removed: refused again. Turning the whitelist off locks withdrawals for 24 hours.
    let (status, _) = send(
        &alice,
        reqwest::Method::DELETE,
        &format!("/api/v1/withdrawal-addresses/{id}"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(withdraw(&a2, "0.01").await.1["code"], "address_not_whitelisted");
    let (status, list) = send(
        &alice,
        reqwest::Method::PUT,
        "/api/v1/withdrawal-addresses/enabled",
        json!({"enabled": false}),
    )
    .await;
    assert_eq!((status, &list["enabled"]), (200, &json!(false)), "{list}");
    app.mail_with(&alice.email, "Withdrawals are locked for 24 hours").await;
    assert_eq!(withdraw(&a1, "0.01").await.1["code"], "withdrawals_locked");
    let (_, events) = alice.get("/api/v1/security-events").await;
    let kinds: Vec<&str> =
        events["events"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in [
        "address_whitelist_on",
        "withdrawal_address_added",
        "withdrawal_address_confirmed",
        "withdrawal_address_removed",
        "address_whitelist_off",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    // The review withdrawal still waits (an operator approves it in the admin app).
    let (_, page) = alice.get("/api/v1/withdrawals").await;
    let statuses: Vec<&str> = page["withdrawals"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["status"].as_str())
        .collect();
    assert!(statuses.contains(&"review"), "{statuses:?}");
}

/// The wallet role in a process of its own: the gateway's process hands out the address (from
/// the node), the wallet's process credits the deposit made to it, the node's hook reaches the
/// wallet's listener (not the gateway's, which scans nothing), and the gateway's health shows
/// the wallet process's reconciliation, read from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_process_apart_credits_deposits_to_the_gateways_addresses() {
    // The scanner looks when the hook says so; the processor reconciles every 200 ms.
    let World { user_node, exchange_node: _node, payer, hot, mined, mut app } =
        World::start_with("60000", &[("WITHDRAWAL_INTERVAL_MS", "200")]).await;
    app.stop().await;
    app.extra_env.push(("BOURSE_ROLES".into(), "engine,gateway,worker,admin".into()));
    app.extra_env.push(("BOURSE_LINK__LISTEN".into(), "127.0.0.1:0".into()));
    app.start().await;
    let wallet_env: Vec<(String, String)> = app
        .extra_env
        .iter()
        .filter(|(k, _)| k.starts_with("BOURSE_WALLETS__") || k.starts_with("BOURSE_WITHDRAWALS__"))
        .cloned()
        .collect();
    let env: Vec<(&str, &str)> = wallet_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let wallet = App::join(&app, "wallet", &env).await;
    let alice = register(&app, "alice@example.com").await;

    let r = alice
        .http
        .post(format!("{}/api/v1/deposit-addresses", app.url))
        .json(&json!({"asset": "LTC"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let address = r.json::<Value>().await.unwrap()["address"].as_str().unwrap().to_string();
    let txid = payer.send_many(&[(address, 50_000_000)], "", 10_000).await.unwrap();
    until("the payment at the exchange's node", async || hot.transaction(&txid).await.ok()).await;
    user_node.mine(3, &mined).await;
    synced(&payer, &hot).await;

    let hook = reqwest::Client::new();
    let notify = |url: String| {
        let request = hook.post(format!("{url}/internal/wallets/ltc/notify")).send();
        async move { request.await.unwrap().status().as_u16() }
    };
    assert_eq!(notify(app.url.clone()).await, 404, "the gateway runs no scanner");
    assert_eq!(notify(wallet.server().admin_url()).await, 202);
    let credited = until("the credit", async || {
        deposit(&alice, &txid).await.filter(|d| d["status"] == "credited")
    })
    .await;
    assert_eq!(credited["amount"], "0.5");
    let owed = async || alice.get("/api/v1/health").await.1["nodes"][0]["owed"].clone();
    until("the wallet's reconciliation, in the gateway's health", async || {
        Some(owed().await).filter(|o| *o == "0.5").map(|_| ())
    })
    .await;
    let mut wallet = wallet;
    wallet.stop().await;
    app.stop().await;
}
