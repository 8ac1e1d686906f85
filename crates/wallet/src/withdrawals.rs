//! Withdrawals of a Bitcoin-family coin: a request holds the funds (engine `WithdrawalHold`,
//! keyed by the store's withdrawal id), a processor sends held withdrawals in batches with one
//! `sendmany` whose comment names them, then records the txid (`WithdrawalSent`) and, once
//! confirmed, completes them (`WithdrawalComplete`). A withdrawal is never sent twice: the batch
//! is marked `sending` before the send, and a batch left `sending` (a crash, a timeout) is looked
//! for in the node's wallet by its comment before anything is sent again.

use crate::coin::Coin;
use crate::deposits::{OnChange, WalletError};
use crate::rpc::RpcError;
use crate::task::Worker;
use bourse_core::{
    AssetId, Command, Event, Exchange, ExternalKey, Reason, Reject, UserId, WithdrawalId,
};
use bourse_engine::EngineHandle;
use bourse_store::{NewWithdrawal, Store, WithdrawalRow, WithdrawalStatus};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::time::Duration;

/// The comment a batch's transaction carries: `bourse:w:<id>,<id>,...`.
pub fn batch_comment(ids: &[i64]) -> String {
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("bourse:w:{}", ids.join(","))
}

/// The withdrawal ids a comment names (none for another comment).
pub fn batch_ids(comment: &str) -> BTreeSet<i64> {
    comment
        .strip_prefix("bourse:w:")
        .map(|ids| ids.split(',').filter_map(|id| id.parse().ok()).collect())
        .unwrap_or_default()
}

/// Why a withdrawal request is refused before anything is held.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{0} is not a valid address on this coin's network")]
    BadAddress(String),
    #[error("the smallest withdrawal is {0}")]
    BelowMinimum(String),
    #[error("the engine refused the hold: {0:?}")]
    Refused(Reject),
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

impl From<RpcError> for RequestError {
    fn from(e: RpcError) -> RequestError {
        RequestError::Wallet(WalletError::Rpc(e))
    }
}

impl From<bourse_store::StoreError> for RequestError {
    fn from(e: bourse_store::StoreError) -> RequestError {
        RequestError::Wallet(WalletError::Store(e))
    }
}

/// What withdrawal bookkeeping needs of a coin, whatever its chain.
#[derive(Clone, Debug)]
pub struct WithdrawalPolicy {
    pub asset: AssetId,
    /// The asset's decimals.
    pub scale: u8,
    /// Held with the amount; the exchange's.
    pub fee: u128,
    /// The smallest amount.
    pub min: u128,
}

/// A user's withdrawal request.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub user: UserId,
    pub address: &'a str,
    pub amount: u128,
    /// The status it takes once its funds are held: `Held` (the processor sends it), or a gate
    /// it waits at first (`Unconfirmed`, `Review`).
    pub after_hold: WithdrawalStatus,
    pub now_ms: i64,
}

/// `text` as an address the coin's node takes (trimmed), or `BadAddress`.
pub async fn check_address(coin: &Coin, text: &str) -> Result<String, RequestError> {
    let address = text.trim();
    if address.is_empty() || address.len() > 128 || !coin.rpc.address_is_valid(address).await? {
        return Err(RequestError::BadAddress(address.to_string()));
    }
    Ok(address.to_string())
}

/// Records a withdrawal and holds its amount plus the coin's fee. Refused with nothing held
/// for an address the node does not take, an amount under the minimum or over the balance.
pub async fn request(
    coin: &Coin,
    store: &dyn Store,
    engine: &EngineHandle,
    r: &Request<'_>,
) -> Result<WithdrawalRow, RequestError> {
    let address = check_address(coin, r.address).await?;
    let r = Request { address: &address, ..*r };
    record_and_hold(&coin.withdrawal_policy(), store, engine, &r).await
}

/// Records a withdrawal to an address the chain takes and holds its amount plus the fee;
/// refused, with nothing held, under the minimum or over the balance.
pub async fn record_and_hold(
    coin: &WithdrawalPolicy,
    store: &dyn Store,
    engine: &EngineHandle,
    r: &Request<'_>,
) -> Result<WithdrawalRow, RequestError> {
    let Request { user, address, amount, after_hold, now_ms } = *r;
    if amount < coin.min || amount == 0 {
        return Err(RequestError::BelowMinimum(bourse_core::decimal::format_units_trimmed(
            coin.min.max(1),
            coin.scale,
        )));
    }
    let fee = coin.fee;
    let new = NewWithdrawal {
        user,
        asset: coin.asset,
        address: address.to_string(),
        amount,
        fee,
        created_ms: now_ms,
        after_hold,
    };
    let id = store.insert_withdrawal(&new).await?;
    let row = WithdrawalRow {
        id,
        user,
        asset: coin.asset,
        address: new.address,
        amount,
        fee,
        status: after_hold,
        txid: None,
        reason: None,
        created_ms: now_ms,
        updated_ms: now_ms,
        after_hold,
    };
    match hold(store, engine, &row, now_ms).await? {
        Ok(()) => Ok(row),
        Err(reject) => {
            // Refused (no funds): it never was.
            store.discard_withdrawal(id).await?;
            Err(RequestError::Refused(reject))
        }
    }
}

/// Holds the funds of a recorded withdrawal, which then takes its `after_hold` status: `Ok(Ok)`
/// held (or already held), `Ok(Err)` refused (nothing held; the caller decides what becomes of
/// the row).
pub(crate) async fn hold(
    store: &dyn Store,
    engine: &EngineHandle,
    w: &WithdrawalRow,
    now_ms: i64,
) -> Result<Result<(), Reject>, WalletError> {
    let withdrawal = engine_id(w.id)?;
    let (user, asset, amount, fee) = (w.user, w.asset, w.amount, w.fee);
    let outcome =
        engine.execute(Command::WithdrawalHold { withdrawal, user, asset, amount, fee }).await?;
    match outcome.events.iter().find_map(|e| match e {
        Event::Rejected { reason, .. } => Some(*reason),
        _ => None,
    }) {
        None | Some(Reject::DuplicateWithdrawal) => {
            store.set_withdrawal_status(w.id, w.after_hold, None, None, now_ms).await?;
            Ok(Ok(()))
        }
        Some(reject) => Ok(Err(reject)),
    }
}

/// What one processor pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessReport {
    pub held: usize,
    pub sent: usize,
    /// Found in the node's wallet after a crash or a timeout, not sent again.
    pub recovered: usize,
    pub completed: usize,
    pub failed: usize,
}

#[derive(Deserialize)]
struct ListedTx {
    txid: String,
    category: String,
    #[serde(default)]
    comment: Option<String>,
}

/// Transactions the wallet sent with a bourse batch comment, by withdrawal id.
async fn sent_batches(coin: &Coin) -> Result<std::collections::HashMap<i64, String>, RpcError> {
    let listed: Vec<ListedTx> =
        coin.rpc.call(true, "listtransactions", serde_json::json!(["*", 1000, 0, true])).await?;
    let mut found = std::collections::HashMap::new();
    for tx in listed.iter().filter(|t| t.category == "send") {
        for id in batch_ids(tx.comment.as_deref().unwrap_or("")) {
            found.insert(id, tx.txid.clone());
        }
    }
    Ok(found)
}

/// What users hold in the asset by the ledger's totals (deposits − withdrawals + adjustments −
/// the fee account), less withdrawals already sent (their coins left the wallet); `open` is the
/// asset's open withdrawals as the store has them.
pub fn liabilities_of(exchange: &Exchange, asset: AssetId, open: &[WithdrawalRow]) -> i128 {
    let owed = exchange.asset(asset).map_or(0, |a| {
        i128::try_from(a.deposited)
            .unwrap_or(i128::MAX)
            .saturating_sub(i128::try_from(a.withdrawn).unwrap_or(i128::MAX))
            .saturating_add(a.adjusted)
            .saturating_sub(a.fees)
    });
    let in_flight: i128 = open
        .iter()
        .filter(|w| w.status == WithdrawalStatus::Sent)
        .map(|w| i128::try_from(w.amount.saturating_add(w.fee)).unwrap_or(i128::MAX))
        .fold(0, i128::saturating_add);
    owed.saturating_sub(in_flight)
}

/// [`liabilities_of`] the engine's current state.
pub(crate) async fn liabilities(
    engine: &EngineHandle,
    asset: AssetId,
    open: &[WithdrawalRow],
) -> Result<i128, WalletError> {
    let open = open.to_vec();
    let (_, owed) = engine.read(move |exchange| liabilities_of(exchange, asset, &open)).await?;
    Ok(owed)
}

/// Judges `holdings` (what the exchange's wallet holds, minor units) against `liabilities`: a
/// shortfall over `tolerance` raises an operator alert and pauses the coin's withdrawals until
/// it is covered. Recorded in `last` and in the store either way.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn judge(
    last: &std::sync::Mutex<Option<crate::coin::Reconciliation>>,
    policy: &crate::deposits::DepositPolicy,
    store: &dyn Store,
    liabilities: i128,
    holdings: i128,
    tolerance: u128,
    now_ms: i64,
) -> crate::coin::Reconciliation {
    // Saturating: the holdings are a node's word, and nothing a node says may overflow here.
    let shortfall = liabilities.saturating_sub(holdings);
    let paused = shortfall > i128::try_from(tolerance).unwrap_or(i128::MAX);
    let was_paused = last.lock().map(|r| r.as_ref().is_some_and(|r| r.paused)).unwrap_or(true);
    if paused && !was_paused {
        let message = format!(
            "the wallet holds {} {} less than users are owed; withdrawals are paused",
            bourse_core::decimal::format_units_trimmed(shortfall.unsigned_abs(), policy.scale),
            policy.symbol
        );
        crate::alert::raise(store, &policy.alert_source(), message, now_ms).await;
    } else if !paused && was_paused {
        tracing::warn!(coin = %policy.symbol, "the wallet covers users again; withdrawals resume");
    }
    let r = crate::coin::Reconciliation {
        liabilities,
        hot: holdings,
        shortfall,
        paused,
        at_ms: now_ms,
    };
    if let Ok(mut slot) = last.lock() {
        *slot = Some(r.clone());
    }
    // For the processes that show it without running the wallet (a split deployment).
    let row = bourse_store::ReconciliationRow {
        asset: policy.asset,
        liabilities,
        hot: holdings,
        shortfall,
        paused,
        at_ms: now_ms,
    };
    if let Err(e) = store.record_reconciliation(&row).await {
        tracing::warn!(coin = %policy.symbol, error = %e, "cannot record the reconciliation");
    }
    r
}

/// Compares the hot wallet's trusted balance with what users hold in the coin; see [`judge`].
pub async fn reconcile(
    coin: &Coin,
    store: &dyn Store,
    engine: &EngineHandle,
    open: &[WithdrawalRow],
    now_ms: i64,
) -> Result<crate::coin::Reconciliation, WalletError> {
    let liabilities = liabilities(engine, coin.asset, open).await?;
    let hot = coin.holdings().await?;
    let policy = coin.deposit_policy();
    Ok(judge(
        &coin.reconciliation,
        &policy,
        store,
        liabilities,
        hot,
        coin.reconcile_tolerance,
        now_ms,
    )
    .await)
}

/// The users among `open`'s held withdrawals whose withdrawals are frozen (a balance below
/// zero after a reversed deposit): theirs wait.
pub(crate) async fn frozen_users(
    engine: &EngineHandle,
    open: &[WithdrawalRow],
) -> Result<BTreeSet<UserId>, WalletError> {
    let held_by: BTreeSet<UserId> =
        open.iter().filter(|w| w.status == WithdrawalStatus::Held).map(|w| w.user).collect();
    let (_, frozen) = engine
        .read(move |x| {
            held_by.into_iter().filter(|u| x.withdrawals_frozen(*u)).collect::<BTreeSet<_>>()
        })
        .await?;
    Ok(frozen)
}

/// One processor pass over the coin's open withdrawals.
pub async fn process(
    coin: &Coin,
    store: &dyn Store,
    engine: &EngineHandle,
    on_change: &OnChange,
    now_ms: i64,
) -> Result<ProcessReport, WalletError> {
    let mut report = ProcessReport::default();
    let open = store.open_withdrawals(coin.asset).await?;
    // (1) Recorded but not held (a crash between the two): hold now.
    report.held += hold_requested(store, engine, &open, now_ms, &mut report.failed).await?;
    // (2) A batch left `sending`: sent if the node's wallet has it, else back to held.
    let sending: Vec<&WithdrawalRow> =
        open.iter().filter(|w| w.status == WithdrawalStatus::Sending).collect();
    if !sending.is_empty() {
        let found = sent_batches(coin).await?;
        for w in sending {
            match found.get(&w.id) {
                Some(txid) => {
                    mark_sent(store, engine, on_change, w, txid, now_ms).await?;
                    report.recovered += 1;
                }
                None => {
                    store
                        .set_withdrawal_status(w.id, WithdrawalStatus::Held, None, None, now_ms)
                        .await?;
                }
            }
        }
    }
    // (3) Held: one batch, one output per address (the node refuses a repeated address) —
    // unless the hot wallet falls short of what users are owed.
    // A user whose balance went below zero (a reversed deposit) has their withdrawals wait.
    let open = store.open_withdrawals(coin.asset).await?;
    let paused = reconcile(coin, store, engine, &open, now_ms).await?.paused;
    let frozen = frozen_users(engine, &open).await?;
    let mut addresses = BTreeSet::new();
    let batch: Vec<&WithdrawalRow> = open
        .iter()
        .filter(|w| w.status == WithdrawalStatus::Held && !paused && !frozen.contains(&w.user))
        .filter(|w| addresses.insert(w.address.clone()))
        .take(coin.config.withdrawal_batch_max as usize)
        .collect();
    if !batch.is_empty() {
        let ids: Vec<i64> = batch.iter().map(|w| w.id).collect();
        for id in &ids {
            store.set_withdrawal_status(*id, WithdrawalStatus::Sending, None, None, now_ms).await?;
        }
        let outputs: Vec<(String, u128)> =
            batch.iter().map(|w| (w.address.clone(), w.amount)).collect();
        let fee_rate = coin.fee_rate().await?;
        if let Some(passphrase) = &coin.config.passphrase {
            coin.rpc.unlock(passphrase, 60).await?;
        }
        let sent = coin.rpc.send_many(&outputs, &batch_comment(&ids), fee_rate).await;
        if coin.config.passphrase.is_some()
            && let Err(e) = coin.rpc.lock().await
        {
            tracing::warn!(coin = %coin.symbol, error = %e, "cannot lock the wallet again");
        }
        match sent {
            Ok(txid) => {
                for w in &batch {
                    mark_sent(store, engine, on_change, w, &txid, now_ms).await?;
                    report.sent += 1;
                }
                tracing::info!(coin = %coin.symbol, txid, withdrawals = ids.len(), fee_rate_per_kvb = %fee_rate, "withdrawal batch sent");
            }
            // The node may have sent it before the answer was lost: the batch stays `sending`
            // and the next pass looks for it.
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                let message = format!("the node refused the withdrawal batch {ids:?}: {e}");
                crate::alert::raise(store, &coin.alert_source(), message, now_ms).await;
                for w in &batch {
                    fail(
                        store,
                        engine,
                        on_change,
                        w,
                        &format!("the node refused the send: {e}"),
                        now_ms,
                    )
                    .await?;
                    report.failed += 1;
                }
            }
        }
    }
    // (4) Sent: completed once the transaction has the coin's confirmations.
    for w in open.iter().filter(|w| w.status == WithdrawalStatus::Sent) {
        let Some(txid) = &w.txid else { continue };
        let confirmations = coin.rpc.transaction(txid).await?.confirmations;
        if confirmations >= i64::from(coin.config.confirmations) {
            complete(store, engine, on_change, w, now_ms).await?;
            report.completed += 1;
        }
    }
    Ok(report)
}

/// Holds the funds of withdrawals recorded but not held (a crash between the two); one the
/// engine refuses fails. Returns how many were held.
pub(crate) async fn hold_requested(
    store: &dyn Store,
    engine: &EngineHandle,
    open: &[WithdrawalRow],
    now_ms: i64,
    failed: &mut usize,
) -> Result<usize, WalletError> {
    let mut held = 0;
    for w in open.iter().filter(|w| w.status == WithdrawalStatus::Requested) {
        match hold(store, engine, w, now_ms).await? {
            Ok(()) => held += 1,
            Err(reject) => {
                let reason = format!("the funds could not be held: {reject:?}");
                store
                    .set_withdrawal_status(
                        w.id,
                        WithdrawalStatus::Failed,
                        None,
                        Some(&reason),
                        now_ms,
                    )
                    .await?;
                *failed += 1;
            }
        }
    }
    Ok(held)
}

/// The withdrawal's transaction is buried deep enough: its amount leaves the books.
pub(crate) async fn complete(
    store: &dyn Store,
    engine: &EngineHandle,
    on_change: &OnChange,
    w: &WithdrawalRow,
    now_ms: i64,
) -> Result<(), WalletError> {
    let withdrawal = engine_id(w.id)?;
    let outcome = engine.execute(Command::WithdrawalComplete { withdrawal }).await?;
    refused(&outcome.events, "the completion")?;
    on_change(w.user, outcome.seq);
    store.set_withdrawal_status(w.id, WithdrawalStatus::Completed, None, None, now_ms).await?;
    Ok(())
}

pub(crate) fn engine_id(id: i64) -> Result<WithdrawalId, WalletError> {
    u64::try_from(id)
        .map(WithdrawalId)
        .map_err(|_| WalletError::Limit(format!("withdrawal id {id}")))
}

pub(crate) fn refused(events: &[Event], what: &str) -> Result<(), WalletError> {
    match events.iter().find_map(|e| match e {
        Event::Rejected { reason, .. } => Some(*reason),
        _ => None,
    }) {
        // Already in that state (a repeat after a crash).
        None | Some(Reject::WithdrawalState) => Ok(()),
        Some(reason) => Err(WalletError::Refused { what: what.to_string(), reason }),
    }
}

pub(crate) async fn mark_sent(
    store: &dyn Store,
    engine: &EngineHandle,
    on_change: &OnChange,
    w: &WithdrawalRow,
    txid: &str,
    now_ms: i64,
) -> Result<(), WalletError> {
    let key =
        ExternalKey::new(txid).map_err(|e| WalletError::Limit(format!("txid {txid}: {e}")))?;
    let outcome =
        engine.execute(Command::WithdrawalSent { withdrawal: engine_id(w.id)?, txid: key }).await?;
    refused(&outcome.events, "the sent withdrawal")?;
    on_change(w.user, outcome.seq);
    store.set_withdrawal_status(w.id, WithdrawalStatus::Sent, Some(txid), None, now_ms).await?;
    Ok(())
}

/// Releases a withdrawal's hold (the engine's `WithdrawalFail`) and marks it failed with `why`.
/// Repeating it after a crash is harmless.
pub async fn fail(
    store: &dyn Store,
    engine: &EngineHandle,
    on_change: &OnChange,
    w: &WithdrawalRow,
    why: &str,
    now_ms: i64,
) -> Result<(), WalletError> {
    let text: String =
        why.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(200).collect();
    let reason = Reason::new(&text).map_err(|e| WalletError::Limit(format!("reason: {e}")))?;
    let outcome =
        engine.execute(Command::WithdrawalFail { withdrawal: engine_id(w.id)?, reason }).await?;
    refused(&outcome.events, "the failed withdrawal")?;
    on_change(w.user, outcome.seq);
    store.set_withdrawal_status(w.id, WithdrawalStatus::Failed, None, Some(&text), now_ms).await?;
    Ok(())
}

/// Runs [`process`] every `withdrawal_interval_ms` (sooner when woken) until `stop`.
pub async fn run_processor(w: Worker<Coin>, stop: tokio::sync::watch::Receiver<bool>) {
    let interval = Duration::from_millis(w.coin.config.withdrawal_interval_ms);
    w.every("withdrawals", &w.coin.symbol, interval, stop, process).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_comments_round_trip() {
        assert_eq!(batch_comment(&[3, 14, 15]), "bourse:w:3,14,15");
        assert_eq!(batch_ids("bourse:w:3,14,15"), BTreeSet::from([3, 14, 15]));
        assert!(batch_ids("a deposit").is_empty());
        assert!(batch_ids("").is_empty());
    }
}
