//! The Ethereum client against a real node (Foundry's anvil, installed by `scripts/test`), and
//! against fake nodes that misbehave on purpose (unreachable, silent, garbage, oversized).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bourse_eth::rpc::{RpcConfig, codes};
use bourse_eth::testing::{ANVIL_CHAIN_ID, Anvil, AnvilOptions, free_port, until};
use bourse_eth::{
    Address, BlockTag, Eip1559Tx, EthRpc, Phrase, Receipt, ReceiptStatus, RpcError, Seed,
    SendRefusal, SigningKey, TxHash, address_of,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ETHER: u128 = 1_000_000_000_000_000_000;

/// A key of our own: index 0 of a fresh random phrase (nothing anvil knows).
fn fresh_keys() -> (SigningKey, Address, Address) {
    let phrase = Phrase::generate().unwrap();
    let seed = Seed::from_phrase(phrase.expose(), "").unwrap();
    let key = seed.derive(0).unwrap();
    let ours = address_of(&key);
    let other = address_of(&seed.derive(1).unwrap());
    (key, ours, other)
}

async fn mined(rpc: &EthRpc, hash: &TxHash) -> Receipt {
    until(&format!("the receipt of {hash}"), async || rpc.receipt(hash).await.unwrap()).await
}

/// A transfer of `value_wei` from `key`, with fees the node suggests.
async fn transfer(rpc: &EthRpc, key: &SigningKey, to: Address, value_wei: u128) -> Eip1559Tx {
    let tip = rpc.max_priority_fee().await.unwrap();
    let base_fee = rpc.latest_base_fee().await.unwrap().expect("anvil is past London");
    Eip1559Tx {
        chain_id: rpc.chain_id().await.unwrap(),
        nonce: rpc.transaction_count(&address_of(key), BlockTag::Pending).await.unwrap(),
        max_priority_fee_per_gas_wei: tip,
        max_fee_per_gas_wei: 2 * base_fee + tip,
        gas_limit: bourse_eth::tx::TRANSFER_GAS,
        to,
        value_wei,
        data: vec![],
    }
}

#[tokio::test]
async fn reads_the_chain() {
    let anvil = Anvil::start().await;
    let rpc = anvil.rpc();
    assert_eq!(rpc.chain_id().await.unwrap(), ANVIL_CHAIN_ID);
    assert_eq!(rpc.block_number().await.unwrap(), 0);
    let genesis = rpc.block(0).await.unwrap().unwrap();
    assert_eq!((genesis.number, genesis.transactions.len()), (0, 0));
    assert!(genesis.base_fee_per_gas_wei.is_some());
    assert_eq!(rpc.block(1).await.unwrap(), None);
    anvil.mine(3).await;
    assert_eq!(rpc.block_number().await.unwrap(), 3);
    let three = rpc.block(3).await.unwrap().unwrap();
    assert_eq!(three.parent_hash, rpc.block(2).await.unwrap().unwrap().hash);
    // The dev accounts hold 10 000 ether, exactly.
    let dev = Anvil::dev_address(0);
    assert_eq!(rpc.balance(&dev, BlockTag::Latest).await.unwrap(), 10_000 * ETHER);
    assert_eq!(rpc.balance(&dev, BlockTag::Number(0)).await.unwrap(), 10_000 * ETHER);
    assert_eq!(rpc.transaction_count(&dev, BlockTag::Latest).await.unwrap(), 0);
    let unknown: TxHash = format!("0x{}", "ab".repeat(32)).parse().unwrap();
    assert_eq!(rpc.transaction(&unknown).await.unwrap(), None);
    assert_eq!(rpc.receipt(&unknown).await.unwrap(), None);
    // A tip is suggested, and it is within what a legacy gas price would pay.
    let tip = rpc.max_priority_fee().await.unwrap();
    assert!(tip > 0 && tip <= rpc.gas_price().await.unwrap());
    // A method the node lacks is a typed node error.
    let e = rpc.call::<Value>("eth_noSuchMethod", json!([])).await.unwrap_err();
    assert!(e.is_method_not_found(), "{e:?}");
    assert!(!e.is_transient());
}

#[tokio::test]
async fn a_signed_transfer_moves_exactly_its_value_and_is_sent_once() {
    let anvil = Anvil::start().await;
    let rpc = anvil.rpc();
    let (key, ours, recipient) = fresh_keys();

    // Fund our key from a dev account.
    let funding = anvil.fund(&ours, 5 * ETHER).await;
    assert_eq!(mined(&rpc, &funding).await.status, ReceiptStatus::Succeeded);
    assert_eq!(rpc.balance(&ours, BlockTag::Latest).await.unwrap(), 5 * ETHER);
    assert_eq!(rpc.balance(&recipient, BlockTag::Latest).await.unwrap(), 0);

    // An amount that no float holds exactly.
    let value = ETHER + 234_567_890_123_456_789;
    let tx = transfer(&rpc, &key, recipient, value).await;
    assert_eq!(tx.nonce, 0);
    let signed = tx.sign(&key).unwrap();
    assert_eq!(signed.from, ours);
    // The node names the transaction by the hash we computed before sending.
    assert_eq!(rpc.send_raw_transaction(&signed.raw).await.unwrap(), signed.hash);
    let receipt = mined(&rpc, &signed.hash).await;
    assert_eq!(receipt.status, ReceiptStatus::Succeeded);
    assert_eq!((receipt.from, receipt.to), (ours, Some(recipient)));
    assert_eq!(receipt.gas_used, 21_000);
    let fee = receipt.fee_wei().unwrap();
    assert!(fee > 0);
    assert!(receipt.effective_gas_price_wei <= tx.max_fee_per_gas_wei);

    let after_recipient = rpc.balance(&recipient, BlockTag::Latest).await.unwrap();
    let after_ours = rpc.balance(&ours, BlockTag::Latest).await.unwrap();
    assert_eq!(after_recipient, value);
    assert_eq!(after_ours, 5 * ETHER - value - fee);

    // The node's view of the transaction, and the block it is in. anvil may answer the
    // transaction as still pending for a moment after its receipt exists: ask until it is
    // placed (bounded).
    let mut seen = rpc.transaction(&signed.hash).await.unwrap().unwrap();
    for _ in 0..100 {
        if seen.block_number.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        seen = rpc.transaction(&signed.hash).await.unwrap().unwrap();
    }
    assert_eq!((seen.from, seen.to, seen.value_wei, seen.nonce), (ours, Some(recipient), value, 0));
    assert!(seen.input_is_empty);
    assert_eq!(
        (seen.block_number, seen.block_hash),
        (Some(receipt.block_number), Some(receipt.block_hash))
    );
    let block = rpc.block(receipt.block_number).await.unwrap().unwrap();
    assert_eq!(block.hash, receipt.block_hash);
    let found: Vec<_> = block.transactions.iter().filter(|t| t.hash == signed.hash).collect();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].from, found[0].to, found[0].value_wei), (ours, Some(recipient), value));
    let parent = rpc.block(receipt.block_number - 1).await.unwrap().unwrap();
    assert_eq!(block.parent_hash, parent.hash);

    // The same bytes again: refused as already sent, and nothing moves.
    let e = rpc.send_raw_transaction(&signed.raw).await.unwrap_err();
    let refusal = e.send_refusal();
    assert!(matches!(refusal, Some(SendRefusal::AlreadyKnown | SendRefusal::NonceTooLow)), "{e:?}");
    anvil.mine(1).await;
    assert_eq!(rpc.balance(&recipient, BlockTag::Latest).await.unwrap(), value);
    assert_eq!(rpc.balance(&ours, BlockTag::Latest).await.unwrap(), after_ours);
    assert_eq!(rpc.transaction_count(&ours, BlockTag::Latest).await.unwrap(), 1);
}

#[tokio::test]
async fn a_pending_transaction_resent_is_already_known() {
    let anvil =
        Anvil::start_with(AnvilOptions { no_mining: true, ..AnvilOptions::default() }).await;
    let rpc = anvil.rpc();
    let (_, _, recipient) = fresh_keys();
    // Dev account 1's key is derived here like any other; anvil knows it, we sign with it.
    let key = Anvil::dev_key(1);
    let sender = address_of(&key);
    let before = rpc.balance(&sender, BlockTag::Latest).await.unwrap();

    let signed = transfer(&rpc, &key, recipient, 7).await.sign(&key).unwrap();
    assert_eq!(rpc.send_raw_transaction(&signed.raw).await.unwrap(), signed.hash);
    // Pending: counted in the pending nonce only, no receipt, no block yet.
    assert_eq!(rpc.transaction_count(&sender, BlockTag::Latest).await.unwrap(), 0);
    assert_eq!(rpc.transaction_count(&sender, BlockTag::Pending).await.unwrap(), 1);
    assert_eq!(rpc.receipt(&signed.hash).await.unwrap(), None);
    let pending = rpc.transaction(&signed.hash).await.unwrap().unwrap();
    assert_eq!((pending.block_number, pending.value_wei), (None, 7));

    let e = rpc.send_raw_transaction(&signed.raw).await.unwrap_err();
    assert_eq!(e.send_refusal(), Some(SendRefusal::AlreadyKnown), "{e:?}");

    anvil.mine(1).await;
    let receipt = mined(&rpc, &signed.hash).await;
    assert_eq!(receipt.status, ReceiptStatus::Succeeded);
    assert_eq!(rpc.balance(&recipient, BlockTag::Latest).await.unwrap(), 7);
    assert_eq!(
        rpc.balance(&sender, BlockTag::Latest).await.unwrap(),
        before - 7 - receipt.fee_wei().unwrap()
    );
    // Mined, the same bytes are refused for their nonce.
    let e = rpc.send_raw_transaction(&signed.raw).await.unwrap_err();
    assert!(
        matches!(e.send_refusal(), Some(SendRefusal::AlreadyKnown | SendRefusal::NonceTooLow)),
        "{e:?}"
    );
    anvil.mine(1).await;
    assert_eq!(rpc.balance(&recipient, BlockTag::Latest).await.unwrap(), 7);
}

#[tokio::test]
async fn a_transaction_for_another_chain_is_refused() {
    let anvil = Anvil::start().await;
    let rpc = anvil.rpc();
    let key = Anvil::dev_key(2);
    let sender = address_of(&key);
    let (_, _, recipient) = fresh_keys();
    let before = rpc.balance(&sender, BlockTag::Latest).await.unwrap();
    let mut tx = transfer(&rpc, &key, recipient, ETHER).await;
    tx.chain_id = 1;
    let signed = tx.sign(&key).unwrap();
    let e = rpc.send_raw_transaction(&signed.raw).await.unwrap_err();
    assert!(matches!(e, RpcError::Node { .. }), "{e:?}");
    assert_eq!(e.send_refusal(), Some(SendRefusal::InvalidSender), "{e:?}");
    anvil.mine(1).await;
    assert_eq!(rpc.balance(&recipient, BlockTag::Latest).await.unwrap(), 0);
    assert_eq!(rpc.balance(&sender, BlockTag::Latest).await.unwrap(), before);
    assert_eq!(rpc.transaction_count(&sender, BlockTag::Pending).await.unwrap(), 0);
    assert_eq!(rpc.transaction(&signed.hash).await.unwrap(), None);
}

#[tokio::test]
async fn a_transfer_over_the_balance_is_refused() {
    let anvil = Anvil::start().await;
    let rpc = anvil.rpc();
    let (key, ours, recipient) = fresh_keys();
    let funding = anvil.fund(&ours, ETHER).await;
    assert_eq!(mined(&rpc, &funding).await.status, ReceiptStatus::Succeeded);
    // The whole balance leaves nothing for the fee.
    let signed = transfer(&rpc, &key, recipient, ETHER).await.sign(&key).unwrap();
    let e = rpc.send_raw_transaction(&signed.raw).await.unwrap_err();
    assert_eq!(e.send_refusal(), Some(SendRefusal::InsufficientFunds), "{e:?}");
    assert_eq!(e.code(), Some(codes::TRANSACTION_REJECTED));
    anvil.mine(1).await;
    assert_eq!(rpc.balance(&ours, BlockTag::Latest).await.unwrap(), ETHER);
    assert_eq!(rpc.balance(&recipient, BlockTag::Latest).await.unwrap(), 0);
}

// ---- nodes that misbehave ---------------------------------------------------------------------

fn client(port: u16, timeout: Duration) -> EthRpc {
    let mut config = RpcConfig::new(format!("http://127.0.0.1:{port}"));
    config.timeout = timeout;
    EthRpc::new(config).unwrap()
}

/// What a fake node answers to one request: an HTTP status and a body, with a Content-Length
/// (or without one: the body ends when the connection closes).
struct Answer {
    status: u16,
    body: Vec<u8>,
    content_length: bool,
}

fn answer(status: u16, body: impl Into<Vec<u8>>) -> Answer {
    Answer { status, body: body.into(), content_length: true }
}

/// A fake node on a free loopback port: `handler` answers each request (its JSON body, or
/// `Null` when it is not JSON). One request per connection.
async fn fake_node(handler: impl Fn(&Value) -> Answer + Send + Sync + 'static) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler = std::sync::Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let handler = handler.clone();
            tokio::spawn(async move {
                let Some(request) = read_request(&mut socket).await else { return };
                let a = handler(&serde_json::from_slice(&request).unwrap_or(Value::Null));
                let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", a.status);
                if a.content_length {
                    head.push_str(&format!("Content-Length: {}\r\n", a.body.len()));
                }
                head.push_str("\r\n");
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&a.body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    port
}

/// The body of one HTTP request (bounded: a test's requests are small).
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 || bytes.len() > 1 << 20 {
            return None;
        }
        bytes.extend_from_slice(&buf[..n]);
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if bytes.len() >= end + 4 + length {
            return Some(bytes[end + 4..end + 4 + length].to_vec());
        }
    }
}

fn result(request: &Value, result: Value) -> Answer {
    answer(200, json!({"jsonrpc": "2.0", "id": request["id"], "result": result}).to_string())
}

#[tokio::test]
async fn an_unreachable_node_fails_fast() {
    // Nothing listens on a port just freed.
    let rpc = client(free_port(), Duration::from_secs(10));
    let started = Instant::now();
    let e = rpc.chain_id().await.unwrap_err();
    assert!(matches!(e, RpcError::Unreachable { .. }), "{e:?}");
    assert!(e.is_transient());
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_silent_node_times_out() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let rpc = client(port, Duration::from_millis(500));
    let started = Instant::now();
    let e = rpc.block_number().await.unwrap_err();
    assert!(matches!(e, RpcError::Timeout(_)), "{e:?}");
    assert!(e.is_transient());
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    held.abort();
}

#[tokio::test]
async fn garbage_replies_are_malformed_not_panics() {
    let port = fake_node(|request| match request["method"].as_str() {
        // Not JSON at all.
        Some("eth_chainId") => answer(200, "<html>hello</html>"),
        // A quantity over u128.
        Some("eth_getBalance") => result(request, json!(format!("0x1{}", "0".repeat(32)))),
        // A quantity that is a float.
        Some("eth_blockNumber") => result(request, json!(1.5)),
        // The wrong shape: transaction hashes where full transactions were asked for.
        Some("eth_getBlockByNumber") => result(
            request,
            json!({"number": "0x1", "hash": format!("0x{}", "11".repeat(32)),
                   "parentHash": format!("0x{}", "22".repeat(32)), "timestamp": "0x0",
                   "transactions": [format!("0x{}", "33".repeat(32))]}),
        ),
        // A reply to another call.
        Some("eth_gasPrice") => {
            answer(200, json!({"jsonrpc": "2.0", "id": 999_999, "result": "0x1"}).to_string())
        }
        // Neither result nor error.
        Some("eth_getTransactionCount") => {
            answer(200, json!({"jsonrpc": "2.0", "id": request["id"]}).to_string())
        }
        // Binary noise.
        Some("eth_sendRawTransaction") => answer(200, vec![0xff, 0x00, 0xfe, 0x7b]),
        // An error status without JSON.
        Some("eth_maxPriorityFeePerGas") => answer(503, "busy"),
        // A JSON-RPC error.
        _ => answer(
            200,
            json!({"jsonrpc": "2.0", "id": request["id"],
                                "error": {"code": -32000, "message": "header not found"}})
            .to_string(),
        ),
    })
    .await;
    let rpc = client(port, Duration::from_secs(5));
    let someone = Anvil::dev_address(0);
    let malformed = |r: Result<_, RpcError>| match r {
        Err(RpcError::Malformed(_)) => {}
        other => panic!("expected Malformed, got {other:?}"),
    };
    malformed(rpc.chain_id().await.map(|_| ()));
    malformed(rpc.balance(&someone, BlockTag::Latest).await.map(|_| ()));
    malformed(rpc.block_number().await.map(|_| ()));
    malformed(rpc.block(1).await.map(|_| ()));
    malformed(rpc.gas_price().await.map(|_| ()));
    malformed(rpc.transaction_count(&someone, BlockTag::Latest).await.map(|_| ()));
    malformed(rpc.send_raw_transaction(&[0x02, 0xc0]).await.map(|_| ()));
    let e = rpc.max_priority_fee().await.unwrap_err();
    assert!(matches!(e, RpcError::Http(503)) && e.is_transient(), "{e:?}");
    let hash: TxHash = format!("0x{}", "44".repeat(32)).parse().unwrap();
    let e = rpc.receipt(&hash).await.unwrap_err();
    assert_eq!(e.code(), Some(codes::SERVER_ERROR), "{e:?}");
    assert_eq!(e.node_message(), Some("header not found"));
}

#[tokio::test]
async fn oversized_replies_are_refused() {
    let port = fake_node(|request| {
        let padding = " ".repeat(64 << 10);
        let body = format!(r#"{{"jsonrpc":"2.0","id":{},"result":"0x1"{padding}}}"#, request["id"]);
        Answer {
            status: 200,
            body: body.into_bytes(),
            // Announced for chain id, not for the block number: read until the bound.
            content_length: request["method"] == "eth_chainId",
        }
    })
    .await;
    let mut config = RpcConfig::new(format!("http://127.0.0.1:{port}"));
    config.reply_bytes_max = 16 << 10;
    let small = EthRpc::new(config).unwrap();
    assert!(matches!(small.chain_id().await, Err(RpcError::TooLarge(16_384))));
    assert!(matches!(small.block_number().await, Err(RpcError::TooLarge(16_384))));
    // The same replies within the bound read fine.
    let roomy = client(port, Duration::from_secs(5));
    assert_eq!(roomy.chain_id().await.unwrap(), 1);
    assert_eq!(roomy.block_number().await.unwrap(), 1);
}

#[tokio::test]
async fn the_tip_falls_back_to_gas_price_less_base_fee() {
    // A node without eth_maxPriorityFeePerGas (as some clients and providers are).
    let port = fake_node(|request| match request["method"].as_str() {
        Some("eth_gasPrice") => result(request, json!("0x77359400")),
        Some("eth_getBlockByNumber") => {
            assert_eq!(request["params"], json!(["latest", false]));
            result(request, json!({"baseFeePerGas": "0x3b9aca00"}))
        }
        _ => answer(200, json!({"jsonrpc": "2.0", "id": request["id"],
            "error": {"code": -32601, "message": "the method eth_maxPriorityFeePerGas does not exist/is not available"}}).to_string()),
    })
    .await;
    let rpc = client(port, Duration::from_secs(5));
    // 2 gwei gas price less 1 gwei base fee.
    assert_eq!(rpc.max_priority_fee().await.unwrap(), 1_000_000_000);
}
