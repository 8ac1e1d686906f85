//! Real coin nodes for tests: `litecoind -regtest` processes on free loopback ports, killed
//! when dropped. Behind the `testing` feature; the tests fail, never skip, without `litecoind`
//! (`scripts/test` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::rpc::{BitcoinRpc, RpcAuth, RpcConfig};
use bourse_core::Secret;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One `litecoind -regtest`, stopped (killed) when dropped.
#[derive(Debug)]
pub struct Node {
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
    pub rpc_port: u16,
    pub p2p_port: u16,
}

impl Node {
    pub async fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let (rpc_port, p2p_port) = (free_port(), free_port());
        let child = tokio::process::Command::new("litecoind")
            // litecoind creates `$HOME/.litecoin` even with `-datadir`; nodes started at once
            // race to make it. Each gets its own home.
            .env("HOME", dir.path())
            .args([
                "-regtest",
                &format!("-datadir={}", dir.path().display()),
                "-daemon=0",
                "-server=1",
                "-rpcuser=test",
                "-rpcpassword=test",
                "-rpcbind=127.0.0.1",
                "-rpcallowip=127.0.0.1",
                &format!("-rpcport={rpc_port}"),
                "-bind=127.0.0.1",
                &format!("-port={p2p_port}"),
                "-listen=1",
                "-dnsseed=0",
                "-upnp=0",
                "-discover=0",
                "-listenonion=0",
                "-fallbackfee=0.0002",
                "-printtoconsole=0",
                "-whitelist=noban@127.0.0.1",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("litecoind is not installed: `apt-get install litecoind` (scripts/test does)");
        let mut node = Node { child, _dir: dir, rpc_port, p2p_port };
        let rpc = node.rpc(None);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rpc.chain_info().await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline && e.is_transient() => {
                    if let Ok(Some(status)) = node.child.try_wait() {
                        let mut stderr = String::new();
                        if let Some(mut out) = node.child.stderr.take() {
                            let _ = out.read_to_string(&mut stderr).await;
                        }
                        panic!("litecoind exited ({status}): {stderr}");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("litecoind did not start: {e}"),
            }
        }
        node
    }

    /// A client of this node (and of `wallet`), user `test`, password `test`.
    pub fn rpc(&self, wallet: Option<&str>) -> BitcoinRpc {
        let mut config = RpcConfig::new(
            format!("http://127.0.0.1:{}", self.rpc_port),
            RpcAuth::UserPass { user: "test".into(), password: Secret::new("test") },
        );
        config.wallet = wallet.map(str::to_string);
        config.timeout = Duration::from_secs(10);
        BitcoinRpc::new(config).unwrap()
    }

    /// Mines `blocks` blocks paying `to`.
    pub async fn mine(&self, blocks: u64, to: &str) {
        let _: serde_json::Value = self
            .rpc(None)
            .call(false, "generatetoaddress", serde_json::json!([blocks, to]))
            .await
            .unwrap();
    }
}

/// Waits until both nodes have the same best block.
pub async fn synced(a: &BitcoinRpc, b: &BitcoinRpc) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (x, y) = (a.chain_info().await.unwrap(), b.chain_info().await.unwrap());
        if x.bestblockhash == y.bestblockhash {
            return;
        }
        assert!(Instant::now() < deadline, "the nodes did not sync: {} vs {}", x.blocks, y.blocks);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls a check every 100 ms until it gives a value; panics after 20 s naming what it waited for.
pub use bourse_eth::testing::until;

/// Reads one HTTP/1.1 message (headers and a `Content-Length` body); `None` at end of stream.
async fn read_message(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        bytes.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    bytes.extend_from_slice(&body);
    Some(bytes)
}

/// A relay in front of a node's RPC port, to lose answers: while `hold` is set, a request
/// that contains `needle` goes through to the node, its answer is kept back forever, and
/// `forwarded` is notified — the node did what was asked, the caller never hears of it (as if
/// the caller died, or the network failed, just then).
#[derive(Debug)]
pub struct Relay {
    pub url: String,
    pub hold: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub forwarded: std::sync::Arc<tokio::sync::Notify>,
}

impl Relay {
    pub async fn start(node_port: u16, needle: &'static str) -> Relay {
        use std::sync::atomic::Ordering;
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hold = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let forwarded = std::sync::Arc::new(tokio::sync::Notify::new());
        let (h, f) = (hold.clone(), forwarded.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                let (hold, forwarded) = (h.clone(), f.clone());
                tokio::spawn(async move {
                    let Ok(mut node) =
                        tokio::net::TcpStream::connect(("127.0.0.1", node_port)).await
                    else {
                        return;
                    };
                    while let Some(request) = read_message(&mut client).await {
                        let matches = request.windows(needle.len()).any(|w| w == needle.as_bytes());
                        if node.write_all(&request).await.is_err() {
                            return;
                        }
                        let Some(answer) = read_message(&mut node).await else { return };
                        if matches && hold.load(Ordering::SeqCst) {
                            forwarded.notify_one();
                            std::future::pending::<()>().await;
                        }
                        if client.write_all(&answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Relay { url, hold, forwarded }
    }
}
