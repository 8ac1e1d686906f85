//! `bourse status` against a running `bourse serve` with a real litecoind in regtest: every
//! line OK while the node runs; when the node stops, its line turns FAIL and the command exits 1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use bourse_wallet::testing::Node;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bourse(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bourse"));
    command.env("BOURSE_ADMIN__LISTEN", "127.0.0.1:0").env("BOURSE_LOG", "warn").args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn status_turns_red_when_a_coin_node_stops() {
    let node = Node::start().await;
    let rpc = node.rpc(None);
    rpc.create_wallet("hot").await.unwrap();
    let address = node.rpc(Some("hot")).new_address("mining", None).await.unwrap();
    // A fresh block, so the node is not "stalled" on its genesis block.
    node.mine(1, &address).await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bourse.toml");
    let c = config.to_str().unwrap();
    let data = dir.path().join("data");
    assert!(
        bourse(&["init", "--config", c, "--data-dir", data.to_str().unwrap()], &[])
            .status
            .success()
    );
    assert!(bourse(&["asset", "add", "LTC", "--scale", "8", "--config", c], &[]).status.success());
    let node_url = format!("http://127.0.0.1:{}", node.rpc_port);
    let wallet = [
        ("BOURSE_WALLETS__LTC__RPC_URL", node_url.as_str()),
        ("BOURSE_WALLETS__LTC__RPC_USER", "test"),
        ("BOURSE_WALLETS__LTC__RPC_PASSWORD", "test"),
        ("BOURSE_WALLETS__LTC__WALLET", "hot"),
    ];
    let mut serve = Command::new(env!("CARGO_BIN_EXE_bourse"));
    serve
        .env("BOURSE_ADMIN__LISTEN", "127.0.0.1:0")
        .env("BOURSE_LOG", "warn")
        .args(["serve", "--config", c, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped());
    for (k, v) in wallet {
        serve.env(k, v);
    }
    let mut child = serve.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let _server = KillOnDrop(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).unwrap().split_whitespace().next().unwrap();
    let url = format!("http://{addr}");

    let out = bourse(&["status", "--url", &url], &[]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{said}");
    assert!(said.contains("OK    node LTC     normal, 1 blocks"), "{said}");

    // The node stops: within the health cache's few seconds, its line fails and so does the
    // command.
    drop(node);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = bourse(&["status", "--url", &url], &[]);
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.code() == Some(1) {
            assert!(said.contains("FAIL  node LTC     unreachable"), "{said}");
            assert!(said.contains("OK    engine"), "{said}");
            break;
        }
        assert!(Instant::now() < deadline, "status never turned red:\n{said}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
