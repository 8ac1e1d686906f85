//! Ether deposits and withdrawals through the real server and a real Ethereum node: `anvil`
//! (Foundry's dev node, from npm; `scripts/test` installs it — these tests fail, never skip,
//! without it). Deposits are credited after their confirmations, swept into the hot wallet
//! (gas paid from the sweep), and withdrawals are signed by bourse, sent once and completed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use bourse_eth::testing::{ANVIL_CHAIN_ID, Anvil};
use bourse_eth::{Address, BlockTag, Phrase, Seed};
use bourse_wallet::testing::{Relay, until};
use common::{App, Backend, register};
use serde_json::{Value, json};
use std::time::Duration;

const ETHER: u128 = 1_000_000_000_000_000_000;

/// Anvil, and bourse with an ETH asset (18 decimals) whose wallet's keys come from a fresh
/// seed phrase.
struct World {
    anvil: Anvil,
    phrase: Phrase,
    app: App,
}

impl World {
    async fn start() -> World {
        let anvil = Anvil::start().await;
        let mut app = App::spawn(Backend::Sqlite).await;
        add_eth(&app).await;
        app.stop().await;
        let phrase = Phrase::generate().unwrap();
        app.extra_env.extend(eth_env(&anvil, &phrase));
        app.start().await;
        World { anvil, phrase, app }
    }

    /// The hot wallet: index 0 of the seed.
    fn hot(&self) -> Address {
        hot_of(&self.phrase)
    }

    async fn balance(&self, address: &Address) -> u128 {
        self.anvil.rpc().balance(address, BlockTag::Latest).await.unwrap()
    }
}

/// Adds the ETH asset (18 decimals) through `app`'s engine.
async fn add_eth(app: &App) {
    let spec =
        bourse_core::AssetSpec { symbol: bourse_core::Symbol::new("ETH").unwrap(), scale: 18 };
    let out = app.server().engine().execute(bourse_core::Command::AddAsset(spec)).await.unwrap();
    assert!(matches!(out.events[0], bourse_core::Event::AssetAdded { .. }), "{:?}", out.events);
}

/// The ETH wallet's settings on `anvil` with keys from `phrase` (`BOURSE_*` variables).
fn eth_env(anvil: &Anvil, phrase: &Phrase) -> Vec<(String, String)> {
    let url = anvil.url();
    let chain_id = ANVIL_CHAIN_ID.to_string();
    let mut env: Vec<(String, String)> = [
        ("CHAIN", "ethereum"),
        ("RPC_URL", url.as_str()),
        ("CHAIN_ID", chain_id.as_str()),
        ("SEED", phrase.expose()),
        ("CONFIRMATIONS", "3"),
        ("MIN_DEPOSIT", "0.001"),
        ("WITHDRAWAL_FEE", "0.001"),
        ("WITHDRAWAL_MIN", "0.01"),
        ("RECONCILE_TOLERANCE", "0.01"),
        ("SCAN_INTERVAL_MS", "100"),
        ("WITHDRAWAL_INTERVAL_MS", "200"),
    ]
    .into_iter()
    .map(|(key, value)| (format!("BOURSE_WALLETS__ETH__{key}"), value.to_string()))
    .collect();
    // Withdrawals go out without the mailed link (tests/wallet.rs follows one).
    env.push(("BOURSE_WITHDRAWALS__EMAIL_CONFIRMATION".into(), "false".into()));
    env
}

fn hot_of(phrase: &Phrase) -> Address {
    let seed = Seed::from_phrase(phrase.expose(), "").unwrap();
    bourse_eth::address_of(&seed.derive(0).unwrap())
}

/// The user's ETH (available, held).
async fn eth(user: &common::User) -> (String, String) {
    let (_, all) = user.get("/api/v1/balances").await;
    let b = all.as_array().unwrap().iter().find(|b| b["asset"] == "ETH").cloned();
    let b = b.unwrap_or(json!({"available": "0", "held": "0"}));
    (b["available"].as_str().unwrap().to_string(), b["held"].as_str().unwrap().to_string())
}

/// A new ETH deposit address of `user`'s, as the API gives it.
async fn deposit_address(user: &common::User) -> String {
    let r = user
        .http
        .post(format!("{}/api/v1/deposit-addresses", user.base))
        .json(&json!({"asset": "ETH"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["address"].as_str().unwrap().to_string()
}

async fn withdraw(user: &common::User, address: &str, amount: &str) -> (u16, Value) {
    let r = user
        .http
        .post(format!("{}/api/v1/withdrawals", user.base))
        .json(&json!({"asset": "ETH", "address": address, "amount": amount}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json::<Value>().await.unwrap())
}

async fn withdrawals(user: &common::User) -> Vec<Value> {
    let (_, page) = user.get("/api/v1/withdrawals?asset=ETH").await;
    page["withdrawals"].as_array().unwrap().clone()
}

#[tokio::test]
async fn ether_is_deposited_swept_and_withdrawn() {
    let world = World::start().await;
    let World { anvil, app, .. } = &world;
    let alice = register(app, "alice@example.com").await;
    let text = deposit_address(&alice).await;
    let address = Address::parse(&text).unwrap();
    assert_eq!(text, address.checksummed(), "an EIP-55 address");
    assert_ne!(address, world.hot(), "deposit addresses are not the hot wallet");

    // 1.5 ether from a dev account: mined at once (1 confirmation), credited at 3.
    let tx = anvil.fund(&address, 3 * ETHER / 2).await.to_string();
    let deposit = async || {
        let (_, page) = alice.get("/api/v1/deposits?asset=ETH").await;
        page["deposits"].as_array()?.iter().find(|d| d["txid"] == tx.as_str()).cloned()
    };
    let pending = until("pending", async || deposit().await).await;
    assert_eq!(
        (pending["status"].as_str(), pending["amount"].as_str()),
        (Some("pending"), Some("1.5"))
    );
    assert_eq!(eth(&alice).await.0, "0", "not yet");
    anvil.mine(2).await;
    until("credited", async || deposit().await.filter(|d| d["status"] == "credited")).await;
    assert_eq!(eth(&alice).await, ("1.5".to_string(), "0".to_string()));

    // Swept: the hot wallet gets the deposit less the sweep's gas, paid by the deposit address.
    let hot = world.hot();
    let swept = until("swept", async || {
        let h = world.balance(&hot).await;
        (h > 0).then_some(h)
    })
    .await;
    let left = world.balance(&address).await;
    let rpc = anvil.rpc();
    let head = rpc.block_number().await.unwrap();
    let mut sweep = None;
    for n in (0..=head).rev().take(10) {
        let block = rpc.block(n).await.unwrap().unwrap();
        sweep = sweep.or(block.transactions.into_iter().find(|t| t.from == address));
    }
    let sweep = sweep.expect("the sweep transaction");
    let receipt = rpc.receipt(&sweep.hash).await.unwrap().unwrap();
    assert_eq!((sweep.to, sweep.value_wei), (Some(hot), swept));
    assert_eq!(swept + receipt.fee_wei().unwrap() + left, 3 * ETHER / 2, "no wei lost");
    assert!(left < 21_000 * 1_000_000_000_000, "only dust left behind: {left}");
    assert_eq!(eth(&alice).await.0, "1.5", "sweeping changes no balance");

    // The pages: the address with its QR code and the deposit; the fee and minimum to withdraw.
    let page = common::text(&alice.http, &format!("{}/account/funds/ETH/deposit", app.url)).await;
    assert!(page.contains(&text) && page.contains("<svg") && page.contains(&tx), "{page}");
    let page = common::text(&alice.http, &format!("{}/account/funds/ETH/withdraw", app.url)).await;
    assert!(page.contains("0.001") && page.contains("0.01"), "{page}");

    // Refused, nothing held: a bad checksum, the wallet's own address, off precision, too much.
    let recipient = Address([0xab; 20]);
    let mut bad_checksum = recipient.checksummed();
    let flip = bad_checksum.char_indices().skip(2).find(|(_, c)| c.is_ascii_alphabetic()).unwrap();
    let flipped = if flip.1.is_ascii_uppercase() {
        flip.1.to_ascii_lowercase()
    } else {
        flip.1.to_ascii_uppercase()
    };
    bad_checksum.replace_range(flip.0..flip.0 + 1, &flipped.to_string());
    for (to, amount, code) in [
        (bad_checksum.as_str(), "0.1", "bad_address"),
        ("0x1234", "0.1", "bad_address"),
        (text.as_str(), "0.1", "bad_address"),
        (&recipient.checksummed(), "0.0000000000000000001", "too_precise"),
        (&recipient.checksummed(), "0.001", "below_minimum"),
        (&recipient.checksummed(), "2", "insufficient_funds"),
    ] {
        let (status, answer) = withdraw(&alice, to, amount).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some(code)), "{to} {amount}: {answer}");
    }
    assert_eq!(eth(&alice).await, ("1.5".to_string(), "0".to_string()), "nothing held");

    // 0.4 to another address: held with the fee, sent by the processor, received exactly.
    let (status, w) = withdraw(&alice, &recipient.checksummed(), "0.4").await;
    assert_eq!((status, w["status"].as_str()), (201, Some("held")), "{w}");
    let sent = until("sent", async || {
        let list = withdrawals(&alice).await;
        list.first().filter(|w| w["status"] == "sent").cloned()
    })
    .await;
    let txid: bourse_eth::TxHash = sent["txid"].as_str().unwrap().parse().unwrap();
    let paid = rpc.transaction(&txid).await.unwrap().unwrap();
    assert_eq!((paid.from, paid.to, paid.value_wei), (hot, Some(recipient), 2 * ETHER / 5));
    assert_eq!(world.balance(&recipient).await, 2 * ETHER / 5);
    anvil.mine(3).await;
    until("completed", async || {
        withdrawals(&alice).await.first().filter(|w| w["status"] == "completed").cloned()
    })
    .await;
    assert_eq!(eth(&alice).await, ("1.099".to_string(), "0".to_string()));
    assert_eq!(world.balance(&recipient).await, 2 * ETHER / 5, "sent once");

    // The node on the status API: reachable, on its chain, withdrawals not paused.
    let (_, health) = alice.get("/api/v1/health").await;
    let node = health["nodes"].as_array().unwrap().iter().find(|n| n["asset"] == "ETH").unwrap();
    assert_eq!(
        (node["reachable"].as_bool(), node["chain"].as_str()),
        (Some(true), Some("ethereum:31337")),
        "{node}"
    );
    assert_eq!(node["withdrawals_paused"], false, "{node}");
}

#[tokio::test]
async fn a_withdrawal_whose_answer_was_lost_is_sent_once() {
    // A relay in front of anvil passes eth_sendRawTransaction on and, while held, loses the
    // answer. Withdrawals go out only when the hook wakes the processor.
    let World { anvil, phrase, mut app } = World::start().await;
    let port: u16 = anvil.url().rsplit(':').next().unwrap().parse().unwrap();
    let relay = Relay::start(port, "eth_sendRawTransaction").await;
    app.stop().await;
    for (key, value) in app.extra_env.iter_mut() {
        match key.as_str() {
            "BOURSE_WALLETS__ETH__RPC_URL" => *value = relay.url.clone(),
            "BOURSE_WALLETS__ETH__WITHDRAWAL_INTERVAL_MS" => *value = "600000".into(),
            _ => {}
        }
    }
    app.start().await;
    let mut alice = register(&app, "alice@example.com").await;
    common::deposit(&app, alice.id, "ETH", "1").await;
    let hot = hot_of(&phrase);
    anvil.fund(&hot, 2 * ETHER).await;
    let recipient = Address([0x37; 20]);
    let (status, _) = withdraw(&alice, &recipient.checksummed(), "0.3").await;
    assert_eq!(status, 201);

    relay.hold.store(true, std::sync::atomic::Ordering::SeqCst);
    let hook = reqwest::Client::new();
    hook.post(format!("{}/internal/wallets/ETH/notify", app.url)).send().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), relay.forwarded.notified())
        .await
        .expect("no send");
    // The node has it (mined at once); bourse never heard back.
    until("received", async || {
        let rpc = anvil.rpc();
        (rpc.balance(&recipient, BlockTag::Latest).await.unwrap() == 3 * ETHER / 10).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(withdrawals(&alice).await[0]["status"], "sending");

    // Restarted: the recorded transaction is sent again — the same one — and recorded as sent.
    app.stop().await;
    relay.hold.store(false, std::sync::atomic::Ordering::SeqCst);
    app.start().await;
    alice.base = app.url.clone();
    let sent = until("sent", async || {
        withdrawals(&alice).await.first().filter(|w| w["status"] == "sent").cloned()
    })
    .await;
    let nonce = anvil.rpc().transaction_count(&hot, BlockTag::Latest).await.unwrap();
    assert_eq!(nonce, 1, "one transaction from the hot wallet");
    assert_eq!(anvil.rpc().balance(&recipient, BlockTag::Latest).await.unwrap(), 3 * ETHER / 10);
    let txid: bourse_eth::TxHash = sent["txid"].as_str().unwrap().parse().unwrap();
    assert_eq!(anvil.rpc().transaction(&txid).await.unwrap().unwrap().to, Some(recipient));
    anvil.mine(3).await;
    hook.post(format!("{}/internal/wallets/ETH/notify", app.url)).send().await.unwrap();
    until("completed", async || {
        withdrawals(&alice).await.first().filter(|w| w["status"] == "completed").cloned()
    })
    .await;
    assert_eq!(eth(&alice).await, ("0.699".to_string(), "0".to_string()));
}

#[tokio::test]
async fn an_ether_deposit_reorganised_away_is_never_credited() {
    let World { anvil, app, .. } = World::start().await;
    let alice = register(&app, "alice@example.com").await;
    let address = Address::parse(&deposit_address(&alice).await).unwrap();
    let rpc = anvil.rpc();
    // The chain as it was; then the deposit is mined and seen with one confirmation.
    let before: String = rpc.call("evm_snapshot", json!([])).await.unwrap();
    let tx = anvil.fund(&address, ETHER).await.to_string();
    let deposit = async || {
        let (_, page) = alice.get("/api/v1/deposits?asset=ETH").await;
        page["deposits"].as_array()?.iter().find(|d| d["txid"] == tx.as_str()).cloned()
    };
    until("pending", async || deposit().await.filter(|d| d["confirmations"] == 1)).await;
    // A reorganisation: the block is replaced by a longer chain without the transaction.
    let reverted: bool = rpc.call("evm_revert", json!([before])).await.unwrap();
    assert!(reverted);
    anvil.mine(6).await;
    assert!(rpc.transaction(&tx.parse().unwrap()).await.unwrap().is_none(), "gone");
    let dropped =
        until("dropped", async || deposit().await.filter(|d| d["status"] == "dropped")).await;
    assert!(dropped["confirmations"].as_i64().unwrap() < 0, "{dropped}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(deposit().await.unwrap()["status"], "dropped", "never credited");
    assert_eq!(eth(&alice).await.0, "0");
    // The scan follows the new chain: a deposit after the reorganisation is credited.
    let again = anvil.fund(&address, ETHER / 2).await.to_string();
    anvil.mine(2).await;
    until("the next deposit credited", async || {
        let (_, page) = alice.get("/api/v1/deposits?asset=ETH").await;
        page["deposits"]
            .as_array()?
            .iter()
            .find(|d| d["txid"] == again.as_str() && d["status"] == "credited")
            .cloned()
    })
    .await;
    assert_eq!(eth(&alice).await.0, "0.5");
}

#[tokio::test]
async fn the_wallet_of_another_process_credits_a_deposit_to_an_address_the_gateway_made() {
    // Process A: the engine, the gateway (which hands out deposit addresses), the worker and
    // the admin app. Process B: the wallet alone, whose scanner credits deposits.
    let anvil = Anvil::start().await;
    let phrase = Phrase::generate().unwrap();
    let mut a = App::spawn_engine(Backend::Sqlite, "engine,gateway,worker,admin", &[]).await;
    add_eth(&a).await;
    a.stop().await;
    let env = eth_env(&anvil, &phrase);
    a.extra_env.extend(env.iter().cloned());
    a.start().await;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut b = App::join(&a, "wallet", &env).await;

    // B's scanner has read the chain (and the store's addresses: none) before the address is
    // made: it has to learn of it at a later scan.
    let store = a.server().state.store.clone();
    let asset = a.server().state.mirror.read().unwrap().asset_by_symbol("ETH").unwrap().id;
    until("B's first scan", async || store.wallet_cursor(asset).await.unwrap()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.asset_deposit_addresses(asset, 0).await.unwrap().is_empty());

    let alice = register(&a, "alice@example.com").await;
    let address = Address::parse(&deposit_address(&alice).await).unwrap();
    assert_ne!(address, hot_of(&phrase));
    let tx = anvil.fund(&address, ETHER / 4).await.to_string();
    anvil.mine(2).await;
    let deposit = async || {
        let (_, page) = alice.get("/api/v1/deposits?asset=ETH").await;
        page["deposits"].as_array()?.iter().find(|d| d["txid"] == tx.as_str()).cloned()
    };
    let credited =
        until("credited", async || deposit().await.filter(|d| d["status"] == "credited")).await;
    assert_eq!(credited["amount"], "0.25", "{credited}");
    until("the balance on A", async || (eth(&alice).await.0 == "0.25").then_some(())).await;
    assert_eq!(eth(&alice).await, ("0.25".to_string(), "0".to_string()));
    b.stop().await;
}
