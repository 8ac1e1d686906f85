//! Deposits of a Bitcoin-family coin: addresses handed to users, and the scan that follows
//! payments to them from the node's wallet (`listsinceblock` from a stored cursor) until they
//! have the configured confirmations, then credits each exactly once — by an engine `Deposit`
//! keyed by coin, txid and vout, which the engine refuses to apply twice whatever crashed in
//! between.

use crate::coin::Coin;
use crate::rpc::{RpcError, WalletEntry};
use crate::task::Worker;
use bourse_core::{Command, Event, ExternalKey, Reason, Reject, UserId};
use bourse_engine::{EngineError, EngineHandle};
use bourse_store::{
    DepositAddressRow, DepositRow, DepositStatus, NewDepositAddress, Store, StoreError,
};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Eth(bourse_eth::RpcError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the engine refused {what}: {reason:?}")]
    Refused { what: String, reason: Reject },
    #[error("{0}")]
    Limit(String),
}

/// What one scan did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Deposits seen for the first time.
    pub seen: usize,
    pub credited: usize,
    /// Left the chain before they were credited.
    pub dropped: usize,
    /// Left the chain after they were credited; the credit was taken back.
    pub reversed: usize,
}

/// A new deposit address for `user`, labelled in the node's wallet so it can be traced there.
pub async fn new_address(
    coin: &Coin,
    store: &dyn Store,
    user: UserId,
    now_ms: i64,
) -> Result<DepositAddressRow, WalletError> {
    let max = coin.config.addresses_per_user_max;
    if store.deposit_addresses(user, coin.asset, max).await?.len() >= max as usize {
        return Err(WalletError::Limit(format!(
            "at most {max} {} deposit addresses per account",
            coin.symbol
        )));
    }
    let label = Coin::label(user);
    let address = coin.rpc.new_address(&label, coin.config.address_type.as_deref()).await?;
    let row = NewDepositAddress { user, asset: coin.asset, address, label, created_ms: now_ms };
    let id = store.insert_deposit_address(&row).await?;
    Ok(DepositAddressRow {
        id,
        user,
        asset: coin.asset,
        address: row.address,
        label: row.label,
        created_ms: now_ms,
    })
}

/// Who is told of each balance change a scan makes (user, engine seq), before the deposit's new
/// status is written: a user who sees it credited reads the credit in their balance.
pub type OnChange = dyn Fn(UserId, u64) + Send + Sync;

/// One pass: every wallet entry since the cursor, then the cursor moves on. Safe to repeat or
/// to interrupt anywhere: the cursor moves only after the pass, and a credit is keyed.
pub async fn scan(
    coin: &Coin,
    store: &dyn Store,
    engine: &EngineHandle,
    on_change: &OnChange,
    now_ms: i64,
) -> Result<ScanReport, WalletError> {
    let policy = coin.deposit_policy();
    let ctx = Ctx { policy: &policy, store, engine, on_change, now_ms };
    let cursor = store.wallet_cursor(coin.asset).await?;
    let since = coin.rpc.list_since_block(cursor.as_deref(), coin.config.confirmations).await?;
    let mut report = ScanReport::default();
    let mut seen = std::collections::HashSet::new();
    for entry in since.transactions.iter().filter(|e| e.category == "receive") {
        seen.insert((entry.txid.clone(), entry.vout));
        observe(&ctx, &Payment::of(entry), entry.confirmations, &mut report).await?;
    }
    // Entries whose block left the best chain: where they stand now is the node's answer.
    for entry in since.removed.iter().filter(|e| e.category == "receive") {
        seen.insert((entry.txid.clone(), entry.vout));
        let now = coin.rpc.transaction(&entry.txid).await?.confirmations;
        observe(&ctx, &Payment::of(entry), now, &mut report).await?;
    }
    // Deposits the listing left out: a transaction that conflicts with the best chain is not
    // listed at all (and `removed` stays empty while the cursor's block is still on it), so
    // each pending one is asked about directly — and, whenever the chain moved, each credited
    // one still short of `reorg_watch_confirmations`, which a reorg could yet take away.
    let moved = cursor.as_deref() != Some(since.lastblock.as_str());
    let watch = i64::from(coin.config.reorg_watch_confirmations);
    for d in store.watched_deposits(coin.asset, watch).await? {
        if seen.contains(&(d.txid.clone(), d.vout))
            || (d.status == DepositStatus::Credited && !moved)
        {
            continue;
        }
        let now = coin.rpc.transaction(&d.txid).await?.confirmations;
        let payment =
            Payment { txid: &d.txid, vout: d.vout, address: &d.address, amount: d.amount };
        observe(&ctx, &Some(payment), now, &mut report).await?;
    }
    store.set_wallet_cursor(coin.asset, &since.lastblock, now_ms).await?;
    Ok(report)
}

/// A payment to a deposit address, as a scan sees it.
pub(crate) struct Payment<'a> {
    pub txid: &'a str,
    /// The output's index (Bitcoin family); 0 on account-based chains.
    pub vout: u32,
    pub address: &'a str,
    /// Minor units of the asset.
    pub amount: u128,
}

/// What deposit bookkeeping needs of a coin, whatever its chain.
#[derive(Clone, Debug)]
pub struct DepositPolicy {
    pub asset: bourse_core::AssetId,
    pub symbol: String,
    /// Before the credit.
    pub confirmations: u32,
    /// Smaller deposits are recorded, never credited (minor units).
    pub min_deposit: u128,
    /// The asset's decimals.
    pub scale: u8,
}

impl DepositPolicy {
    /// Where this coin's operator alerts come from.
    pub fn alert_source(&self) -> String {
        format!("wallet:{}", self.symbol)
    }
}

impl<'a> Payment<'a> {
    /// The payment of a wallet entry; none for an entry without an address or a positive amount.
    fn of(entry: &'a WalletEntry) -> Option<Payment<'a>> {
        Some(Payment {
            txid: &entry.txid,
            vout: entry.vout,
            address: entry.address.as_deref()?,
            amount: u128::try_from(entry.amount.0).ok().filter(|a| *a > 0)?,
        })
    }
}

/// What a scan works with.
pub(crate) struct Ctx<'a> {
    pub policy: &'a DepositPolicy,
    pub store: &'a dyn Store,
    pub engine: &'a EngineHandle,
    pub on_change: &'a OnChange,
    pub now_ms: i64,
}

/// Where a payment stands now (`confirmations` negative: it conflicts with the best chain);
/// records it and credits, drops or reverses it as that requires. Returns the deposit's status.
pub(crate) async fn observe(
    ctx: &Ctx<'_>,
    payment: &Option<Payment<'_>>,
    confirmations: i64,
    report: &mut ScanReport,
) -> Result<Option<DepositStatus>, WalletError> {
    let Ctx { policy: coin, store, engine, on_change, now_ms } = *ctx;
    let Some(Payment { txid, vout, address, amount }) = *payment else { return Ok(None) };
    // Only payments to users' deposit addresses (not the hot wallet's own change).
    let Some(owner) = store.deposit_address(coin.asset, address).await? else { return Ok(None) };
    let existing = store.deposit(coin.asset, txid, vout).await?;
    if existing.is_none() {
        report.seen += 1;
    }
    let mut row = existing.unwrap_or(DepositRow {
        id: 0,
        asset: coin.asset,
        txid: txid.to_string(),
        vout,
        user: owner.user,
        address: address.to_string(),
        amount,
        confirmations,
        status: DepositStatus::Pending,
        seq: None,
        first_seen_ms: now_ms,
        updated_ms: now_ms,
    });
    row.confirmations = confirmations;
    row.updated_ms = now_ms;
    match row.status {
        DepositStatus::Pending | DepositStatus::Dropped if confirmations < 0 => {
            if row.status == DepositStatus::Pending {
                report.dropped += 1;
                tracing::warn!(coin = %coin.symbol, txid = %row.txid, vout = row.vout, "a pending deposit left the chain: not credited");
            }
            row.status = DepositStatus::Dropped;
        }
        DepositStatus::Pending | DepositStatus::Dropped if row.amount < coin.min_deposit => {
            row.status = DepositStatus::BelowMinimum;
        }
        DepositStatus::Pending | DepositStatus::Dropped
            if confirmations >= i64::from(coin.confirmations) =>
        {
            row.seq = credit(coin, engine, &row).await?;
            row.status = DepositStatus::Credited;
            report.credited += 1;
            if let Some(seq) = row.seq {
                on_change(row.user, seq);
            }
        }
        DepositStatus::Pending | DepositStatus::Dropped => row.status = DepositStatus::Pending,
        DepositStatus::Credited if confirmations < 0 => {
            // A credited deposit was double-spent away (it conflicts with the best chain): an
            // operator alert, and the credit is taken back, below zero if the user spent it.
            let message = format!(
                "the credited deposit {}:{} of user {} ({} {}) left the chain; it is reversed and \
                 the user's withdrawals are frozen while their balance is below zero",
                row.txid,
                row.vout,
                row.user.0,
                bourse_core::decimal::format_units_trimmed(row.amount, coin.scale),
                coin.symbol
            );
            crate::alert::raise(store, &coin.alert_source(), message, now_ms).await;
            row.seq = reverse(coin, engine, &row).await?;
            row.status = DepositStatus::Reversed;
            report.reversed += 1;
            if let Some(seq) = row.seq {
                on_change(row.user, seq);
            }
        }
        DepositStatus::Credited if confirmations == 0 => {
            // Back in the mempool after a reorg: it may yet confirm again; the operator hears
            // of it, and a conflict (negative confirmations) reverses it.
            let message = format!(
                "the credited deposit {}:{} of user {} is unconfirmed again after a reorg; it is \
                 reversed if it conflicts with the chain",
                row.txid, row.vout, row.user.0
            );
            crate::alert::raise(store, &coin.alert_source(), message, now_ms).await;
        }
        DepositStatus::Credited | DepositStatus::Reversed | DepositStatus::BelowMinimum => {}
    }
    store.upsert_deposit(&row).await?;
    Ok(Some(row.status))
}

fn deposit_key(coin: &DepositPolicy, row: &DepositRow) -> Result<ExternalKey, WalletError> {
    ExternalKey::new(&format!("{}:{}:{}", coin.symbol, row.txid, row.vout))
        .map_err(|e| WalletError::Limit(format!("deposit key of {}:{}: {e}", row.txid, row.vout)))
}

/// Credits the deposit; a key the engine already credited (a crash after the credit and before
/// the store recorded it) counts as credited.
async fn credit(
    coin: &DepositPolicy,
    engine: &EngineHandle,
    row: &DepositRow,
) -> Result<Option<u64>, WalletError> {
    let key = deposit_key(coin, row)?;
    let outcome = engine
        .execute(Command::Deposit { user: row.user, asset: coin.asset, amount: row.amount, key })
        .await?;
    for event in &outcome.events {
        match event {
            Event::DepositCredited { .. } => {
                tracing::info!(coin = %coin.symbol, txid = %row.txid, vout = row.vout, user = row.user.0, seq = outcome.seq, "deposit credited");
                return Ok(Some(outcome.seq));
            }
            Event::Rejected { reason: Reject::DuplicateDeposit, .. } => return Ok(None),
            Event::Rejected { reason, .. } => {
                return Err(WalletError::Refused {
                    what: format!("the deposit {}:{}", row.txid, row.vout),
                    reason: *reason,
                });
            }
            _ => {}
        }
    }
    Ok(Some(outcome.seq))
}

/// Takes a credited deposit back (the engine's `DepositReverse`, keyed like the credit: a
/// reversal the engine already applied, before a crash, counts as reversed).
async fn reverse(
    coin: &DepositPolicy,
    engine: &EngineHandle,
    row: &DepositRow,
) -> Result<Option<u64>, WalletError> {
    let reason = Reason::new(&format!("{} deposit {} left the chain", coin.symbol, row.txid))
        .map_err(|e| WalletError::Limit(format!("reversal reason: {e}")))?;
    let command = Command::DepositReverse {
        user: row.user,
        asset: coin.asset,
        amount: row.amount,
        key: deposit_key(coin, row)?,
        reason,
    };
    let outcome = engine.execute(command).await?;
    match outcome.events.iter().find_map(|e| match e {
        Event::Rejected { reason, .. } => Some(*reason),
        _ => None,
    }) {
        None => Ok(Some(outcome.seq)),
        Some(Reject::DuplicateReversal) => Ok(None),
        Some(reason) => Err(WalletError::Refused {
            what: format!("the reversal of deposit {}:{}", row.txid, row.vout),
            reason,
        }),
    }
}

/// Scans every `scan_interval_ms`, or sooner when woken, until `stop` turns true.
pub async fn run_scanner(w: Worker<Coin>, stop: tokio::sync::watch::Receiver<bool>) {
    let interval = Duration::from_millis(w.coin.config.scan_interval_ms);
    w.every("deposit scan", &w.coin.symbol, interval, stop, scan).await
}
