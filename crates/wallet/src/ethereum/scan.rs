//! Ether deposits: each scan reads the blocks after its cursor (`height:hash` in the store) up
//! to the node's head, records every plain transfer to a deposit address, and then asks after
//! each deposit still followed (pending, or credited with fewer than
//! `reorg_watch_confirmations`) where its transaction stands now. A cursor whose block is no
//! longer on the chain (a reorganisation) sends the scan `reorg_watch_confirmations` blocks
//! back: recording is idempotent and credits are keyed, so reading blocks twice is harmless.

use super::{EthCoin, eth_error};
use crate::deposits::{Ctx, OnChange, Payment, ScanReport, WalletError, observe};
use crate::task::Worker;
use bourse_engine::EngineHandle;
use bourse_eth::{ReceiptStatus, TxHash};
use bourse_store::{DepositStatus, Store};
use std::collections::HashSet;
use std::time::Duration;

/// The cursor as stored: the last block read, by height and hash.
fn parse_cursor(text: &str) -> Option<(u64, String)> {
    let (height, hash) = text.split_once(':')?;
    Some((height.parse().ok()?, hash.to_string()))
}

/// One scan; safe to repeat or to interrupt anywhere (the cursor moves after the blocks).
pub async fn scan(
    coin: &EthCoin,
    store: &dyn Store,
    engine: &EngineHandle,
    on_change: &OnChange,
    now_ms: i64,
) -> Result<ScanReport, WalletError> {
    coin.check_chain().await?;
    let policy = coin.deposit_policy();
    let ctx = Ctx { policy: &policy, store, engine, on_change, now_ms };
    let mut report = ScanReport::default();
    let head = coin.rpc.block_number().await.map_err(eth_error)?;
    let watch = u64::from(coin.config.reorg_watch_confirmations);
    let from = match store.wallet_cursor(coin.asset).await?.as_deref().and_then(parse_cursor) {
        // The first scan starts at the head: nobody had an address before.
        None => head,
        Some((height, hash)) => {
            let still = coin.rpc.block(height).await.map_err(eth_error)?;
            if still.is_some_and(|b| b.hash.to_string() == hash) {
                height + 1
            } else {
                tracing::warn!(coin = %coin.symbol, height, "the scan's last block left the chain; reading the last blocks again");
                height.saturating_sub(watch)
            }
        }
    };
    let to = head.min(from.saturating_add(coin.config.blocks_per_scan - 1));
    // The addresses are read AFTER the head (keep this order): the gateway, maybe in another
    // process, stores an address before it hands it out, so anything paid to it is in a block
    // after the store had it. Every address a block up to `head` can pay was thus in the store
    // when `head` was read, and this read sees it. Read the other way round, an address made
    // between the two reads could be paid in a block this scan reads without knowing it, and the
    // cursor would move past the payment for good.
    let addresses = coin.addresses(store).await?;
    let mut seen = HashSet::new();
    let mut moved = false;
    for height in from..=to {
        let Some(block) = coin.rpc.block(height).await.map_err(eth_error)? else { break };
        for tx in &block.transactions {
            let Some(to_address) = tx.to else { continue };
            let Some((_, index)) = addresses.get(&to_address) else { continue };
            if tx.value_wei == 0 || !tx.input_is_empty {
                continue;
            }
            // A plain transfer to an account cannot revert, but the receipt is the word.
            let receipt = coin.rpc.receipt(&tx.hash).await.map_err(eth_error)?;
            if receipt.as_ref().is_none_or(|r| r.status != ReceiptStatus::Succeeded) {
                continue;
            }
            let txid = tx.hash.to_string();
            let address = to_address.checksummed();
            let payment = Payment {
                txid: &txid,
                vout: 0,
                address: &address,
                amount: coin.units(tx.value_wei),
            };
            let confirmations = i64::try_from(head - height + 1).unwrap_or(i64::MAX);
            let status = observe(&ctx, &Some(payment), confirmations, &mut report).await?;
            if status == Some(DepositStatus::Credited)
                && let Ok(mut to_sweep) = coin.to_sweep.lock()
            {
                to_sweep.insert(*index);
            }
            seen.insert(txid);
        }
        store.set_wallet_cursor(coin.asset, &format!("{height}:{}", block.hash), now_ms).await?;
        moved = true;
    }
    // Deposits the blocks just read did not show: where their transaction stands now.
    for d in store.watched_deposits(coin.asset, i64::try_from(watch).unwrap_or(i64::MAX)).await? {
        if seen.contains(&d.txid) || (d.status == DepositStatus::Credited && !moved) {
            continue;
        }
        let Ok(hash) = d.txid.parse::<TxHash>() else { continue };
        let confirmations = match coin.rpc.receipt(&hash).await.map_err(eth_error)? {
            Some(r) if r.status == ReceiptStatus::Succeeded => {
                i64::try_from(head.saturating_sub(r.block_number) + 1).unwrap_or(i64::MAX)
            }
            // Reverted: no value moved.
            Some(_) => -1,
            // Not mined: waiting in the node's pool, or gone (dropped or replaced).
            None => match coin.rpc.transaction(&hash).await.map_err(eth_error)? {
                Some(_) => 0,
                None => -1,
            },
        };
        let payment =
            Payment { txid: &d.txid, vout: d.vout, address: &d.address, amount: d.amount };
        let status = observe(&ctx, &Some(payment), confirmations, &mut report).await?;
        if status == Some(DepositStatus::Credited)
            && d.status != DepositStatus::Credited
            && let Some(address) = d.address.parse().ok()
            && let Some((_, index)) = addresses.get(&address)
            && let Ok(mut to_sweep) = coin.to_sweep.lock()
        {
            to_sweep.insert(*index);
        }
    }
    Ok(report)
}

/// Scans every `scan_interval_ms`, or sooner when woken, until `stop` turns true.
pub async fn run_scanner(w: Worker<EthCoin>, stop: tokio::sync::watch::Receiver<bool>) {
    let interval = Duration::from_millis(w.coin.config.scan_interval_ms);
    w.every("deposit scan", &w.coin.symbol, interval, stop, scan).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        assert_eq!(parse_cursor("12:0xab"), Some((12, "0xab".to_string())));
        assert_eq!(parse_cursor("0xab"), None);
        assert_eq!(parse_cursor("x:0xab"), None);
    }
}
