//! Ether leaving an address of the wallet: sweeps (a deposit address's balance, less the gas,
//! into the hot wallet) and withdrawals (one transaction each from the hot wallet).
//!
//! Never twice: a transaction is signed with the sender's next nonce and recorded in the
//! store's `chain_sends` before it is broadcast; a withdrawal is marked `sending` before its
//! transaction is signed. After a crash or a lost answer, the recorded bytes are broadcast
//! again — the same transaction, which the chain mines at most once (one per nonce) — and a
//! withdrawal left `sending` without a recorded transaction was never broadcast, so it is held
//! again and signed anew.

use super::{EthCoin, TRANSFER_GAS, eth_error};
use crate::deposits::{OnChange, WalletError};
use crate::task::Worker;
use crate::withdrawals::{
    ProcessReport, complete, fail, frozen_users, judge, liabilities, mark_sent,
};
use bourse_engine::EngineHandle;
use bourse_eth::{Address, BlockTag, Eip1559Tx, ReceiptStatus, SendRefusal, SigningKey, TxHash};
use bourse_store::{
    ChainSendKind, ChainSendRow, ChainSendStatus, NewChainSend, Store, WithdrawalRow,
    WithdrawalStatus,
};
use std::time::Duration;

/// Deposit addresses looked at per pass for sweeping, at most.
const SWEEPS_PER_PASS: usize = 50;

/// The fees per gas a transaction offers now: (max fee, tip), within the configured cap.
async fn fees(coin: &EthCoin) -> Result<(u128, u128), WalletError> {
    let tip = coin.rpc.max_priority_fee().await.map_err(eth_error)?;
    let base = coin.rpc.latest_base_fee().await.map_err(eth_error)?.unwrap_or(0);
    // Room for the base fee to double before the transaction is mined.
    let max_fee = base.saturating_mul(2).saturating_add(tip).min(coin.max_fee_per_gas_wei);
    Ok((max_fee, tip.min(max_fee)))
}

/// The sender's next nonce: past what the node has seen (pending included) and what the store
/// recorded (signed, perhaps not yet broadcast).
async fn next_nonce(coin: &EthCoin, store: &dyn Store, from: &Address) -> Result<u64, WalletError> {
    let node = coin.rpc.transaction_count(from, BlockTag::Pending).await.map_err(eth_error)?;
    let recorded = store.next_chain_nonce(coin.asset, &from.checksummed()).await?.unwrap_or(0);
    Ok(node.max(recorded))
}

/// Signs a transfer and records it; nothing is broadcast yet.
#[allow(clippy::too_many_arguments)]
async fn sign_and_record(
    coin: &EthCoin,
    store: &dyn Store,
    key: &SigningKey,
    kind: ChainSendKind,
    withdrawal: Option<i64>,
    to: Address,
    value_wei: u128,
    fees: (u128, u128),
    now_ms: i64,
) -> Result<ChainSendRow, WalletError> {
    let from = bourse_eth::address_of(key);
    let nonce = next_nonce(coin, store, &from).await?;
    let tx = Eip1559Tx {
        chain_id: coin.config.chain_id,
        nonce,
        max_priority_fee_per_gas_wei: fees.1,
        max_fee_per_gas_wei: fees.0,
        gas_limit: TRANSFER_GAS,
        to,
        value_wei,
        data: Vec::new(),
    };
    let signed = tx.sign(key).map_err(|e| WalletError::Limit(format!("signing: {e}")))?;
    let new = NewChainSend {
        asset: coin.asset,
        kind,
        withdrawal,
        from_address: from.checksummed(),
        to_address: to.checksummed(),
        nonce,
        txid: signed.hash.to_string(),
        raw: signed.raw,
        value: value_wei,
        created_ms: now_ms,
    };
    let id = store.insert_chain_send(&new).await?;
    Ok(ChainSendRow {
        id,
        asset: new.asset,
        kind,
        withdrawal,
        from_address: new.from_address,
        to_address: new.to_address,
        nonce,
        txid: new.txid,
        raw: new.raw,
        value: value_wei,
        status: ChainSendStatus::Signed,
        fee: None,
        created_ms: now_ms,
        updated_ms: now_ms,
    })
}

/// What broadcasting a recorded transaction came to.
enum Broadcast {
    /// The node has it (now or from before).
    Accepted,
    /// The node refused it for good: its nonce went to another transaction, or it can never
    /// be valid. Nothing of it will be mined.
    Refused(String),
}

/// Broadcasts a recorded transaction (again). A transient error is an error: the send stays as
/// it is and the next pass tries again.
async fn broadcast(coin: &EthCoin, send: &ChainSendRow) -> Result<Broadcast, WalletError> {
    match coin.rpc.send_raw_transaction(&send.raw).await {
        Ok(_) => Ok(Broadcast::Accepted),
        Err(e) if e.is_transient() => Err(eth_error(e)),
        Err(e) => match e.send_refusal() {
            Some(SendRefusal::AlreadyKnown) => Ok(Broadcast::Accepted),
            Some(SendRefusal::NonceTooLow) => {
                // Its nonce is used: by this very transaction, or by another.
                let hash: TxHash = send
                    .txid
                    .parse()
                    .map_err(|_| WalletError::Limit(format!("txid {}", send.txid)))?;
                match coin.rpc.transaction(&hash).await.map_err(eth_error)? {
                    Some(_) => Ok(Broadcast::Accepted),
                    None => Ok(Broadcast::Refused(format!("nonce {} already used", send.nonce))),
                }
            }
            _ => Ok(Broadcast::Refused(e.to_string())),
        },
    }
}

/// Sweeps deposit addresses with credited deposits into the hot wallet. The gas comes out of
/// what is swept.
async fn sweep(coin: &EthCoin, store: &dyn Store, now_ms: i64) -> Result<usize, WalletError> {
    let addresses = coin.addresses(store).await?;
    let open = store.open_chain_sends(coin.asset).await?;
    let candidates: Vec<u32> = coin
        .to_sweep
        .lock()
        .map(|s| s.iter().copied().take(SWEEPS_PER_PASS).collect())
        .unwrap_or_default();
    let mut swept = 0;
    for index in candidates {
        let key = coin.key(index)?;
        let from = bourse_eth::address_of(&key);
        let done = |coin: &EthCoin| {
            if let Ok(mut s) = coin.to_sweep.lock() {
                s.remove(&index);
            }
        };
        if !addresses.values().any(|(_, i)| *i == index) {
            done(coin);
            continue;
        }
        // One sweep in flight per address.
        if open.iter().any(|s| s.from_address == from.checksummed()) {
            continue;
        }
        let balance = coin.rpc.balance(&from, BlockTag::Latest).await.map_err(eth_error)?;
        let fees = fees(coin).await?;
        let gas = u128::from(TRANSFER_GAS).saturating_mul(fees.0);
        if balance <= gas || balance - gas < coin.sweep_min_wei {
            done(coin);
            continue;
        }
        let send = sign_and_record(
            coin,
            store,
            &key,
            ChainSendKind::Sweep,
            None,
            coin.hot_address,
            balance - gas,
            fees,
            now_ms,
        )
        .await?;
        match broadcast(coin, &send).await? {
            Broadcast::Accepted => {
                store.set_chain_send_status(send.id, ChainSendStatus::Sent, None, now_ms).await?;
                tracing::info!(coin = %coin.symbol, from = %from, txid = %send.txid, wei = send.value, "deposit address swept");
                swept += 1;
            }
            Broadcast::Refused(why) => {
                store.set_chain_send_status(send.id, ChainSendStatus::Failed, None, now_ms).await?;
                tracing::warn!(coin = %coin.symbol, from = %from, why, "sweep refused; tried again after the address's next credited deposit or a restart");
            }
        }
        done(coin);
    }
    Ok(swept)
}

/// Follows recorded transactions: broadcasts those not yet accepted, and settles those mined
/// deep enough (a withdrawal completes, or fails if its transaction reverted).
async fn follow(
    coin: &EthCoin,
    store: &dyn Store,
    engine: &EngineHandle,
    on_change: &OnChange,
    open_withdrawals: &[WithdrawalRow],
    now_ms: i64,
    report: &mut ProcessReport,
) -> Result<(), WalletError> {
    let head = coin.rpc.block_number().await.map_err(eth_error)?;
    for send in store.open_chain_sends(coin.asset).await? {
        let hash: TxHash =
            send.txid.parse().map_err(|_| WalletError::Limit(format!("txid {}", send.txid)))?;
        let receipt = coin.rpc.receipt(&hash).await.map_err(eth_error)?;
        let Some(receipt) = receipt else {
            // Not mined: make sure the node has it (a crash before the broadcast, a dropped
            // transaction); the same bytes, so never a second transfer.
            match broadcast(coin, &send).await? {
                Broadcast::Accepted if send.status == ChainSendStatus::Signed => {
                    store
                        .set_chain_send_status(send.id, ChainSendStatus::Sent, None, now_ms)
                        .await?;
                }
                Broadcast::Accepted => {}
                Broadcast::Refused(why) => {
                    store
                        .set_chain_send_status(send.id, ChainSendStatus::Failed, None, now_ms)
                        .await?;
                    let message = format!(
                        "the {} transaction {} (nonce {}) will not be mined: {why}",
                        coin.symbol, send.txid, send.nonce
                    );
                    crate::alert::raise(store, &format!("wallet:{}", coin.symbol), message, now_ms)
                        .await;
                    // A withdrawal whose transaction was refused goes back to be signed anew.
                    if let Some(w) = send.withdrawal.and_then(|id| find(open_withdrawals, id)) {
                        store
                            .set_withdrawal_status(w.id, WithdrawalStatus::Held, None, None, now_ms)
                            .await?;
                    }
                }
            }
            continue;
        };
        let confirmations = head.saturating_sub(receipt.block_number) + 1;
        if confirmations < u64::from(coin.config.confirmations) {
            continue;
        }
        store
            .set_chain_send_status(send.id, ChainSendStatus::Confirmed, receipt.fee_wei(), now_ms)
            .await?;
        let Some(w) = send.withdrawal.and_then(|id| find(open_withdrawals, id)) else { continue };
        if receipt.status == ReceiptStatus::Succeeded {
            if w.status == WithdrawalStatus::Sending {
                mark_sent(store, engine, on_change, w, &send.txid, now_ms).await?;
            }
            complete(store, engine, on_change, w, now_ms).await?;
            report.completed += 1;
        } else {
            let message = format!(
                "the {} withdrawal {} reverted on chain ({}); its hold is released",
                coin.symbol, w.id, send.txid
            );
            crate::alert::raise(store, &format!("wallet:{}", coin.symbol), message, now_ms).await;
            fail(store, engine, on_change, w, "the transaction reverted on chain", now_ms).await?;
            report.failed += 1;
        }
    }
    Ok(())
}

fn find(open: &[WithdrawalRow], id: i64) -> Option<&WithdrawalRow> {
    open.iter().find(|w| w.id == id)
}

/// Compares what the wallet holds (hot wallet and every deposit address) with what users hold
/// in the coin; see [`judge`].
pub async fn reconcile(
    coin: &EthCoin,
    store: &dyn Store,
    engine: &EngineHandle,
    open: &[WithdrawalRow],
    now_ms: i64,
) -> Result<crate::coin::Reconciliation, WalletError> {
    let liabilities = liabilities(engine, coin.asset, open).await?;
    let holdings = coin.holdings(store).await?;
    let policy = coin.deposit_policy();
    Ok(judge(
        &coin.reconciliation,
        &policy,
        store,
        liabilities,
        holdings,
        coin.reconcile_tolerance,
        now_ms,
    )
    .await)
}

/// One processor pass: holds, follows recorded transactions, sweeps, reconciles, sends.
pub async fn process(
    coin: &EthCoin,
    store: &dyn Store,
    engine: &EngineHandle,
    on_change: &OnChange,
    now_ms: i64,
) -> Result<ProcessReport, WalletError> {
    coin.check_chain().await?;
    let mut report = ProcessReport::default();
    let open = store.open_withdrawals(coin.asset).await?;
    // (1) Recorded but not held (a crash between the two): hold now.
    report.held +=
        crate::withdrawals::hold_requested(store, engine, &open, now_ms, &mut report.failed)
            .await?;
    // (2) Left `sending`: its recorded transaction is sent; none recorded, it is held again.
    for w in open.iter().filter(|w| w.status == WithdrawalStatus::Sending) {
        match store.chain_send_of_withdrawal(w.id).await? {
            Some(send) => {
                if let Broadcast::Accepted = broadcast(coin, &send).await? {
                    if send.status == ChainSendStatus::Signed {
                        store
                            .set_chain_send_status(send.id, ChainSendStatus::Sent, None, now_ms)
                            .await?;
                    }
                    mark_sent(store, engine, on_change, w, &send.txid, now_ms).await?;
                    report.recovered += 1;
                }
            }
            None => {
                store
                    .set_withdrawal_status(w.id, WithdrawalStatus::Held, None, None, now_ms)
                    .await?;
            }
        }
    }
    let open = store.open_withdrawals(coin.asset).await?;
    // (3) Recorded transactions: sent again where needed, settled once deep enough.
    follow(coin, store, engine, on_change, &open, now_ms, &mut report).await?;
    // (4) Deposits into the hot wallet.
    sweep(coin, store, now_ms).await?;
    // (5) Held withdrawals, unless the wallet is short or the user frozen.
    let open = store.open_withdrawals(coin.asset).await?;
    let paused = reconcile(coin, store, engine, &open, now_ms).await?.paused;
    let frozen = frozen_users(engine, &open).await?;
    let batch = open
        .iter()
        .filter(|w| w.status == WithdrawalStatus::Held && !paused && !frozen.contains(&w.user))
        .take(coin.config.withdrawal_batch_max as usize);
    for w in batch {
        let Ok(to) = w.address.parse::<Address>() else {
            fail(store, engine, on_change, w, "not an address", now_ms).await?;
            report.failed += 1;
            continue;
        };
        let Some(value) = coin.wei(w.amount) else {
            fail(store, engine, on_change, w, "amount too large", now_ms).await?;
            report.failed += 1;
            continue;
        };
        let fees = fees(coin).await?;
        let hot = coin.rpc.balance(&coin.hot_address, BlockTag::Latest).await.map_err(eth_error)?;
        let gas = u128::from(TRANSFER_GAS).saturating_mul(fees.0);
        if hot < value.saturating_add(gas) {
            tracing::warn!(coin = %coin.symbol, withdrawal = w.id, "the hot wallet cannot pay this withdrawal yet; it waits");
            break;
        }
        store.set_withdrawal_status(w.id, WithdrawalStatus::Sending, None, None, now_ms).await?;
        let send = sign_and_record(
            coin,
            store,
            coin.hot_key(),
            ChainSendKind::Withdrawal,
            Some(w.id),
            to,
            value,
            fees,
            now_ms,
        )
        .await?;
        match broadcast(coin, &send).await? {
            Broadcast::Accepted => {
                store.set_chain_send_status(send.id, ChainSendStatus::Sent, None, now_ms).await?;
                mark_sent(store, engine, on_change, w, &send.txid, now_ms).await?;
                tracing::info!(coin = %coin.symbol, withdrawal = w.id, txid = %send.txid, nonce = send.nonce, "withdrawal sent");
                report.sent += 1;
            }
            Broadcast::Refused(why) => {
                store.set_chain_send_status(send.id, ChainSendStatus::Failed, None, now_ms).await?;
                let message = format!("the node refused withdrawal {}: {why}", w.id);
                crate::alert::raise(store, &format!("wallet:{}", coin.symbol), message, now_ms)
                    .await;
                fail(
                    store,
                    engine,
                    on_change,
                    w,
                    &format!("the node refused the send: {why}"),
                    now_ms,
                )
                .await?;
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// Runs [`process`] every `withdrawal_interval_ms` (sooner when woken) until `stop`.
pub async fn run_processor(w: Worker<EthCoin>, stop: tokio::sync::watch::Receiver<bool>) {
    let interval = Duration::from_millis(w.coin.config.withdrawal_interval_ms);
    w.every("withdrawals and sweeps", &w.coin.symbol, interval, stop, process).await
}
