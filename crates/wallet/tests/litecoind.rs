//! The RPC client against real nodes: Debian's `litecoind` in regtest, two of them connected (a
//! "user" node paying the exchange's node). Needs `litecoind` on the PATH — `scripts/test`
//! installs it — and fails, never skips, without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bourse_core::Secret;
use bourse_wallet::rpc::{BitcoinRpc, RpcAuth, RpcError, codes};
use bourse_wallet::testing::{Node, free_port, synced};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn deposits_are_seen_exactly_and_a_batch_is_one_transaction() {
    let (user_node, exchange_node) = tokio::join!(Node::start(), Node::start());
    let _: serde_json::Value = user_node
        .rpc(None)
        .call(
            false,
            "addnode",
            serde_json::json!([format!("127.0.0.1:{}", exchange_node.p2p_port), "add"]),
        )
        .await
        .unwrap();
    user_node.rpc(None).create_wallet("user").await.unwrap();
    exchange_node.rpc(None).create_wallet("hot").await.unwrap();
    let user = user_node.rpc(Some("user"));
    let hot = exchange_node.rpc(Some("hot"));
    let chain = hot.chain_info().await.unwrap();
    assert_eq!(chain.chain, "regtest");

    let mined = user.new_address("mining", None).await.unwrap();
    user_node.mine(101, &mined).await;
    synced(&user, &hot).await;
    assert_eq!(user.balance(1).await.unwrap(), 50 * 100_000_000, "one mature coinbase");

    // A deposit address per user, labelled; the user node pays it an amount with 8 decimals.
    let deposit = hot.new_address("user:7", Some("bech32")).await.unwrap();
    assert!(deposit.starts_with("rltc1"), "{deposit}");
    assert!(hot.address_is_valid(&deposit).await.unwrap());
    assert!(!hot.address_is_valid("LTC-not-an-address").await.unwrap());
    let before = hot.list_since_block(None, 1).await.unwrap();
    let txid = user.send_many(&[(deposit.clone(), 12_345_678)], "a deposit", 10_000).await.unwrap();

    // Seen unconfirmed, then with its confirmations; the amount is exact.
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let since = hot.list_since_block(Some(&before.lastblock), 1).await.unwrap();
        if let Some(e) = since.transactions.into_iter().find(|e| e.txid == txid) {
            break e;
        }
        assert!(Instant::now() < deadline, "the deposit never reached the exchange's node");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (seen.category.as_str(), seen.amount.0, seen.confirmations),
        ("receive", 12_345_678, 0)
    );
    assert_eq!(seen.label.as_deref(), Some("user:7"));
    assert_eq!(seen.address.as_deref(), Some(deposit.as_str()));
    user_node.mine(3, &mined).await;
    synced(&user, &hot).await;
    let since = hot.list_since_block(Some(&before.lastblock), 3).await.unwrap();
    let entry = since.transactions.iter().find(|e| e.txid == txid).unwrap();
    assert_eq!(entry.confirmations, 3);
    let tip = hot.chain_info().await.unwrap();
    assert_eq!(entry.blockheight, Some(tip.blocks - 2));
    // `lastblock` with a target of 3 is the block the deposit is in: scanning from it again
    // still lists what is not yet 3-deep, nothing older.
    assert_eq!(since.lastblock, hot.block_hash(tip.blocks - 2).await.unwrap());

    // A batch: two withdrawals in one transaction, tagged with their ids.
    let fund = hot.new_address("hot", None).await.unwrap();
    user.send_many(&[(fund, 300_000_000)], "", 10_000).await.unwrap();
    user_node.mine(1, &mined).await;
    synced(&user, &hot).await;
    let (a, b) =
        (user.new_address("w1", None).await.unwrap(), user.new_address("w2", None).await.unwrap());
    let batch = hot
        .send_many(
            &[(a.clone(), 10_000_000), (b.clone(), 25_000_001)],
            "bourse withdrawals 1,2",
            12_345,
        )
        .await
        .unwrap();
    let sent = hot.transaction(&batch).await.unwrap();
    assert_eq!(sent.comment.as_deref(), Some("bourse withdrawals 1,2"));
    assert_eq!(sent.amount.0, -35_000_001, "the outputs, without the fee");
    // Paid at the rate asked for: 12.345 units per virtual byte (the node sizes the
    // transaction before signing, so within a couple of percent).
    let fee = -sent.fee.unwrap().0;
    let raw: String =
        hot.call(false, "getrawtransaction", serde_json::json!([batch])).await.unwrap();
    let decoded: serde_json::Value =
        hot.call(false, "decoderawtransaction", serde_json::json!([raw])).await.unwrap();
    let vsize = i128::from(decoded["vsize"].as_i64().unwrap());
    let rate = fee * 1000 / vsize;
    assert!((12_100..=12_600).contains(&rate), "fee {fee} for {vsize} vB: {rate} per kvB");
    // Mined where it was sent, so the block surely holds it.
    exchange_node.mine(1, &mined).await;
    synced(&user, &hot).await;
    let received = user.transaction(&batch).await.unwrap();
    let mut got: Vec<(String, i128)> = received
        .details
        .iter()
        .filter(|d| d.category == "receive")
        .map(|d| (d.address.clone().unwrap(), d.amount.0))
        .collect();
    got.sort();
    let mut want = vec![(a, 10_000_000), (b, 25_000_001)];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(received.confirmations, 1);
}

#[tokio::test]
async fn node_and_transport_failures_are_typed_errors() {
    let node = Node::start().await;
    node.rpc(None).create_wallet("hot").await.unwrap();
    let hot = node.rpc(Some("hot"));

    // The node refuses: bad address, unknown wallet, a fresh chain without a fee estimate.
    let e = hot.send_many(&[("not-an-address".into(), 1)], "", 10_000).await.unwrap_err();
    assert_eq!(e.code(), Some(codes::INVALID_ADDRESS), "{e}");
    let e = node.rpc(Some("nope")).wallet_info().await.unwrap_err();
    assert_eq!(e.code(), Some(codes::WALLET_NOT_FOUND), "{e}");
    assert_eq!(hot.estimate_fee_rate(6).await.unwrap(), None);

    // An encrypted wallet: sends need the passphrase; a wrong one is refused.
    let _: serde_json::Value =
        hot.call(true, "encryptwallet", serde_json::json!(["the passphrase"])).await.unwrap();
    let mined = hot.new_address("mining", None).await.unwrap();
    node.mine(101, &mined).await;
    let to = hot.new_address("x", None).await.unwrap();
    let e = hot.send_many(&[(to.clone(), 1_000_000)], "", 10_000).await.unwrap_err();
    assert_eq!(e.code(), Some(codes::WALLET_UNLOCK_NEEDED), "{e}");
    let e = hot.unlock(&Secret::new("wrong"), 5).await.unwrap_err();
    assert_eq!(e.code(), Some(codes::WALLET_PASSPHRASE_INCORRECT), "{e}");
    hot.unlock(&Secret::new("the passphrase"), 5).await.unwrap();
    assert!(hot.wallet_info().await.unwrap().unlocked_until.unwrap() > 0);
    hot.send_many(&[(to, 1_000_000)], "", 10_000).await.unwrap();
    hot.lock().await.unwrap();
    assert_eq!(hot.wallet_info().await.unwrap().unlocked_until, Some(0));

    // Wrong credentials; the secret never shows in the configuration's debug text.
    let mut config = hot.config().clone();
    config.auth =
        RpcAuth::UserPass { user: "test".into(), password: Secret::new("wrong-password") };
    assert!(!format!("{config:?}").contains("wrong-password"));
    let e = BitcoinRpc::new(config).unwrap().chain_info().await.unwrap_err();
    assert!(matches!(e, RpcError::Unauthorized), "{e}");

    // Nothing listening: unreachable, and transient.
    let mut config = hot.config().clone();
    config.url = format!("http://127.0.0.1:{}", free_port());
    let e = BitcoinRpc::new(config).unwrap().chain_info().await.unwrap_err();
    assert!(matches!(e, RpcError::Unreachable { .. }) && e.is_transient(), "{e}");

    // A server that never answers, one that answers garbage, one that answers too much.
    for (reply, want) in [
        (None, "timeout"),
        (Some(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nnot json!".to_vec()), "malformed"),
        (Some(too_large()), "too large"),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            match reply {
                Some(bytes) => socket.write_all(&bytes).await.unwrap(),
                None => tokio::time::sleep(Duration::from_secs(5)).await,
            }
        });
        let mut config = hot.config().clone();
        config.url = format!("http://127.0.0.1:{port}");
        config.timeout = Duration::from_millis(500);
        config.reply_bytes_max = 1 << 20;
        let e = BitcoinRpc::new(config).unwrap().chain_info().await.unwrap_err();
        match want {
            "timeout" => assert!(matches!(e, RpcError::Timeout(_)), "{e}"),
            "malformed" => assert!(matches!(e, RpcError::Malformed(_)), "{e}"),
            _ => assert!(matches!(e, RpcError::TooLarge(_)), "{e}"),
        }
        server.abort();
    }
}

fn too_large() -> Vec<u8> {
    let body = format!("{{\"result\": \"{}\", \"error\": null, \"id\": 1}}", "x".repeat(2 << 20));
    let mut reply =
        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
    reply.extend_from_slice(body.as_bytes());
    reply
}
