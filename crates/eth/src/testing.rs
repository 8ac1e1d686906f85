//! A real Ethereum node for tests: Foundry's `anvil` on a free loopback port, killed when
//! dropped. Behind the `testing` feature. The binary comes from the npm package pinned in
//! `tests/anvil/package.json`; without it the tests fail, never skip (`scripts/test` installs
//! it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::hash::TxHash;
use crate::keys::{Address, Seed, SigningKey, address_of};
use crate::rpc::{EthRpc, RpcConfig};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// anvil's default mnemonic: its dev accounts are `m/44'/60'/0'/0/0..10` of it, each with
/// 10 000 ether, unlocked for `eth_sendTransaction`.
pub const ANVIL_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// anvil's default chain id.
pub const ANVIL_CHAIN_ID: u64 = 31_337;

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Where `npm ci --prefix crates/eth/tests/anvil` puts the anvil binary.
pub fn anvil_path() -> PathBuf {
    // The checkout the tests run in: `cargo test` sets CARGO_MANIFEST_DIR to the package under
    // test (this one, or another in `crates/`). The directory baked in at compile time is only
    // the fallback, since a build cache filled from another checkout keeps that checkout's.
    let eth = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|dir| {
            dir.ancestors()
                .map(|a| a.join("crates/eth"))
                .find(|eth| eth.join("tests/anvil").is_dir())
        })
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    eth.join("tests/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
}

/// How to start anvil.
#[derive(Clone, Debug, Default)]
pub struct AnvilOptions {
    /// Mine a block every this many seconds instead of one per transaction.
    pub block_time_secs: Option<u64>,
    /// Mine only when asked (`anvil_mine`, [`Anvil::mine`]).
    pub no_mining: bool,
    /// Another chain id than [`ANVIL_CHAIN_ID`].
    pub chain_id: Option<u64>,
}

/// One anvil process, killed when dropped.
#[derive(Debug)]
pub struct Anvil {
    child: tokio::process::Child,
    /// The loopback port its JSON-RPC listens on.
    pub port: u16,
    /// Its chain id.
    pub chain_id: u64,
}

impl Anvil {
    /// anvil mining one block per transaction, on chain [`ANVIL_CHAIN_ID`].
    pub async fn start() -> Anvil {
        Anvil::start_with(AnvilOptions::default()).await
    }

    /// anvil with `options`, answering JSON-RPC when this returns.
    pub async fn start_with(options: AnvilOptions) -> Anvil {
        let path = anvil_path();
        assert!(
            path.is_file(),
            "anvil is not installed at {}: run scripts/test, which installs it with \
             `npm ci --prefix crates/eth/tests/anvil --no-audit --no-fund`",
            path.display()
        );
        // Another process may take the free port before anvil binds it: try a few.
        let mut last_failure = String::new();
        for _ in 0..3 {
            match Anvil::try_start(&path, &options).await {
                Ok(anvil) => return anvil,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("anvil did not start: {last_failure}");
    }

    async fn try_start(path: &PathBuf, options: &AnvilOptions) -> Result<Anvil, String> {
        let port = free_port();
        let chain_id = options.chain_id.unwrap_or(ANVIL_CHAIN_ID);
        let mut command = tokio::process::Command::new(path);
        command.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--quiet"]);
        command.args(["--chain-id", &chain_id.to_string()]);
        if let Some(seconds) = options.block_time_secs {
            command.args(["--block-time", &seconds.to_string()]);
        }
        if options.no_mining {
            command.arg("--no-mining");
        }
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
        let mut anvil = Anvil { child, port, chain_id };
        let rpc = anvil.rpc();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rpc.chain_id().await {
                Ok(id) if id == chain_id => return Ok(anvil),
                Ok(id) => panic!("anvil answers chain id {id}, not {chain_id}"),
                Err(e) if Instant::now() < deadline && e.is_transient() => {
                    if let Ok(Some(status)) = anvil.child.try_wait() {
                        let mut stderr = String::new();
                        if let Some(mut out) = anvil.child.stderr.take() {
                            let _ = out.read_to_string(&mut stderr).await;
                        }
                        return Err(format!("anvil exited ({status}): {stderr}"));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(format!("anvil did not answer: {e}")),
            }
        }
    }

    /// Its JSON-RPC endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client of this node with a 10 s timeout.
    pub fn rpc(&self) -> EthRpc {
        let mut config = RpcConfig::new(self.url());
        config.timeout = Duration::from_secs(10);
        EthRpc::new(config).unwrap()
    }

    /// The process id, to stop it from a test.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The key of dev account `index` (0 to 9 hold 10 000 ether each).
    pub fn dev_key(index: u32) -> SigningKey {
        Seed::from_phrase(ANVIL_MNEMONIC, "").unwrap().derive(index).unwrap()
    }

    /// The address of dev account `index`.
    pub fn dev_address(index: u32) -> Address {
        address_of(&Anvil::dev_key(index))
    }

    /// Mines `blocks` blocks now.
    pub async fn mine(&self, blocks: u64) {
        let _: serde_json::Value =
            self.rpc().call("anvil_mine", serde_json::json!([blocks])).await.unwrap();
    }

    /// Sends `value_wei` from dev account 0 to `to` (anvil signs: its dev accounts are
    /// unlocked); the transaction's hash. It is mined as any other transaction is.
    pub async fn fund(&self, to: &Address, value_wei: u128) -> TxHash {
        let from = Anvil::dev_address(0);
        self.rpc()
            .call(
                "eth_sendTransaction",
                serde_json::json!([{
                    "from": from,
                    "to": to,
                    "value": crate::quantity::quantity(value_wei),
                }]),
            )
            .await
            .unwrap()
    }
}

/// Polls `check` every 100 ms until it gives a value; panics after 20 s naming `what`.
pub async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
