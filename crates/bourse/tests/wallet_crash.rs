//! A withdrawal must never be sent twice, whatever dies when. The real `bourse serve` process
//! is killed with SIGKILL after its `sendmany` reached the node and before it could record the
//! txid (a relay in front of the exchange's `litecoind` passes the call on and holds back the
//! answer). After a restart the withdrawal is found in the node's wallet by its comment and
//! recorded with that txid; nothing is sent again. Needs `litecoind` (`scripts/test` installs
//! it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bourse_wallet::testing::{Node, Relay, synced, until};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn bourse(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bourse"))
        // Any free port for the admin app too: tests run side by side.
        .env("BOURSE_ADMIN__LISTEN", "127.0.0.1:0")
        .args(args)
        .env("BOURSE_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `bourse ARGS` with the LTC wallet on `rpc_url`.
fn with_wallet(args: &[&str], rpc_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bourse"));
    command
        // Any free port for the admin app too: tests run side by side.
        .env("BOURSE_ADMIN__LISTEN", "127.0.0.1:0")
        .args(args)
        .env("BOURSE_LOG", "warn")
        .env("BOURSE_WITHDRAWALS__EMAIL_CONFIRMATION", "false")
        .env("BOURSE_WALLETS__LTC__RPC_URL", rpc_url)
        .env("BOURSE_WALLETS__LTC__RPC_USER", "test")
        .env("BOURSE_WALLETS__LTC__RPC_PASSWORD", "test")
        .env("BOURSE_WALLETS__LTC__WALLET", "hot")
        .env("BOURSE_WALLETS__LTC__CONFIRMATIONS", "1")
        .env("BOURSE_WALLETS__LTC__SCAN_INTERVAL_MS", "200")
        .env("BOURSE_WALLETS__LTC__WITHDRAWAL_INTERVAL_MS", "600000")
        // Network fees come out of the hot wallet.
        .env("BOURSE_WALLETS__LTC__RECONCILE_TOLERANCE", "0.001");
    command
}

/// `bourse serve` with the LTC wallet on `rpc_url`; returns the process and its URL.
fn serve(config: &str, rpc_url: &str) -> (Child, String) {
    let mut child = with_wallet(&["serve", "--config", config, "--listen", "127.0.0.1:0"], rpc_url)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = format!(
        "http://{}",
        line.split("http://").nth(1).unwrap().split_whitespace().next().unwrap()
    );
    (child, url)
}

async fn get(http: &reqwest::Client, url: &str) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_killed_between_broadcast_and_record_is_sent_once() {
    let (user_node, exchange_node) = tokio::join!(Node::start(), Node::start());
    let peer = format!("127.0.0.1:{}", exchange_node.p2p_port);
    let _: Value = user_node.rpc(None).call(false, "addnode", json!([peer, "add"])).await.unwrap();
    user_node.rpc(None).create_wallet("user").await.unwrap();
    exchange_node.rpc(None).create_wallet("hot").await.unwrap();
    let payer = user_node.rpc(Some("user"));
    let hot = exchange_node.rpc(Some("hot"));
    let mined = payer.new_address("mining", None).await.unwrap();
    user_node.mine(101, &mined).await;
    synced(&payer, &hot).await;

    let relay = Relay::start(exchange_node.rpc_port, "\"sendmany\"").await;
    let (relay_url, hold, forwarded) =
        (relay.url.clone(), relay.hold.clone(), relay.forwarded.clone());

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bourse.toml");
    let data = dir.path().join("data");
    let c = config.to_str().unwrap();
    bourse(&["init", "--config", c, "--data-dir", data.to_str().unwrap()]);
    bourse(&["asset", "add", "LTC", "--scale", "8", "--config", c]);
    let (mut server, url) = serve(c, &relay_url);

    // A user with 1 LTC, deposited through the node.
    let http = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let (email, password) = ("carol@example.com", "a long enough passphrase");
    let signup = json!({"email": email, "password": password});
    http.post(format!("{url}/api/v1/auth/signup")).json(&signup).send().await.unwrap();
    // Mail goes out through the outbox: the verification mail lands a moment later.
    let mail = until("the verification mail", async || {
        let path = std::fs::read_dir(data.join("mailbox")).ok()?.next()?.ok()?.path();
        std::fs::read_to_string(path).ok()
    })
    .await;
    let token = mail.split("token=").nth(1).unwrap().split_whitespace().next().unwrap();
    http.post(format!("{url}/api/v1/auth/verify"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    let r = http.post(format!("{url}/api/v1/auth/login")).json(&signup).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{url}/api/v1/deposit-addresses"))
        .json(&json!({"asset": "LTC"}))
        .send()
        .await
        .unwrap();
    let deposit_address = r.json::<Value>().await.unwrap()["address"].as_str().unwrap().to_string();
    payer.send_many(&[(deposit_address, 100_000_000)], "", 10_000).await.unwrap();
    user_node.mine(1, &mined).await;
    synced(&payer, &hot).await;
    until("the deposit credited", async || {
        let balances = get(&http, &format!("{url}/api/v1/balances")).await;
        balances
            .as_array()?
            .iter()
            .find(|b| b["asset"] == "LTC" && b["available"] == "1")
            .map(|_| ())
    })
    .await;

    // The withdrawal's sendmany reaches the node; bourse is killed before it hears back.
    let to = payer.new_address("withdrawal", None).await.unwrap();
    let r = http
        .post(format!("{url}/api/v1/withdrawals"))
        .json(&json!({"asset": "LTC", "address": to, "amount": "0.3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    hold.store(true, Ordering::SeqCst);
    reqwest::Client::new().post(format!("{url}/internal/wallets/LTC/notify")).send().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), forwarded.notified()).await.expect("no sendmany");
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    let tag = format!("bourse:w:{id}");
    let tagged = async || {
        let sent: Vec<Value> =
            hot.call(true, "listtransactions", json!(["*", 1000, 0, true])).await.unwrap();
        sent.into_iter()
            .filter(|t| t["category"] == "send" && t["comment"] == tag.as_str())
            .collect::<Vec<_>>()
    };
    let broadcast = tagged().await;
    assert_eq!(broadcast.len(), 1, "the node sent it before bourse died");
    let txid = broadcast[0]["txid"].as_str().unwrap().to_string();

    // Restarted (straight to the node): the withdrawal is recorded with that txid, not sent again.
    hold.store(false, Ordering::SeqCst);
    let node_url = format!("http://127.0.0.1:{}", exchange_node.rpc_port);
    let (mut server, url) = serve(c, &node_url);
    let recorded = until("the withdrawal recorded", async || {
        let page = get(&http, &format!("{url}/api/v1/withdrawals?asset=LTC")).await;
        page["withdrawals"]
            .as_array()?
            .iter()
            .find(|w| w["id"] == id && w["txid"].is_string())
            .cloned()
    })
    .await;
    assert_eq!(recorded["txid"], txid.as_str());
    reqwest::Client::new().post(format!("{url}/internal/wallets/LTC/notify")).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tagged().await.len(), 1, "sent once");
    exchange_node.mine(1, &hot.new_address("mining", None).await.unwrap()).await;
    synced(&payer, &hot).await;
    let received = payer.transaction(&txid).await.unwrap();
    let paid: i128 =
        received.details.iter().filter(|d| d.category == "receive").map(|d| d.amount.0).sum();
    assert_eq!(paid, 30_000_000, "the user got 0.3 once");
    reqwest::Client::new().post(format!("{url}/internal/wallets/LTC/notify")).send().await.unwrap();
    until("completed", async || {
        let page = get(&http, &format!("{url}/api/v1/withdrawals?asset=LTC")).await;
        (page["withdrawals"][0]["status"] == "completed").then_some(())
    })
    .await;
    let balances = get(&http, &format!("{url}/api/v1/balances")).await;
    let ltc = balances.as_array().unwrap().iter().find(|b| b["asset"] == "LTC").unwrap().clone();
    assert_eq!((ltc["available"].as_str(), ltc["held"].as_str()), (Some("0.7"), Some("0")));

    // `bourse audit`, beside the running exchange: the ledger balances and the hot wallet
    // covers what users hold (less the network fee, within the tolerance)...
    let audit = || {
        let out = with_wallet(&["audit", "--config", c], &node_url).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (ok, report) = audit();
    assert!(ok, "{report}");
    let line = |report: &str, prefix: &str| {
        report.lines().filter(|l| l.starts_with(prefix)).map(str::to_string).collect::<Vec<_>>()
    };
    let ledger = line(&report, "LTC");
    assert_eq!(ledger.len(), 2, "{report}");
    assert!(ledger[0].ends_with("ok") && ledger[0].contains("0.7"), "{report}");
    assert!(ledger[1].ends_with("ok") && ledger[1].contains("0.7"), "{report}");
    // ... until coins leave the hot wallet behind bourse's back: exit non-zero, SHORT.
    hot.send_many(&[(payer.new_address("away", None).await.unwrap(), 50_000_000)], "", 10_000)
        .await
        .unwrap();
    let (ok, report) = audit();
    assert!(!ok, "{report}");
    assert!(line(&report, "LTC")[1].ends_with("SHORT"), "{report}");
    server.kill().unwrap();
    server.wait().unwrap();
}
