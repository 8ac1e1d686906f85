//! The worker's projector: turns engine events into the read models (orders, trades, ledger
//! entries, balances, candles, the exchange's fee income per asset and hour) and writes each
//! engine batch in one transaction that also moves the stored cursor
//! (`Store::apply_projection`), so a crash never writes twice or skips.
//!
//! It follows the engine from the cursor on: from the engine's in-memory ring when it can, by
//! rebuilding the events from the journal (`bourse_engine::replay_events`) when it fell further
//! behind (a new database, a long outage). After each commit it publishes candles and tickers to
//! WebSocket subscribers and advances `projected`, which private reads wait on.

use crate::binance::user_data::{Collector, UserEvent};
use crate::hub::Hub;
use crate::mirror::Mirror;
use crate::orders;
use crate::ticker::Tickers;
use bourse_core::{AssetId, Event, MarketId, OrderId, UserId, WithdrawalState};
use bourse_engine::{EngineHandle, SubscribeError};
use bourse_store::{
    BalanceRow, CandleRow, FeeRevenueRow, Interval, LedgerKind, NewLedgerEntry, OrderRow,
    Projection, Store, StoreError,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Commands per transaction while catching up from the journal (and the most a live
/// transaction gathers from queued batches).
const CATCH_UP_CHUNK: usize = 2_000;
/// Fee income is kept per asset and hour.
const FEE_HOUR_MS: i64 = 3_600_000;

pub struct Projector {
    store: Arc<dyn Store>,
    engine: EngineHandle,
    data_dir: PathBuf,
    hub: Arc<Hub>,
    mirror: Arc<RwLock<Mirror>>,
    tickers: Arc<Mutex<Tickers>>,
    projected: watch::Sender<u64>,
    work: WorkingSet,
    /// Mails users about their credited deposits and sent withdrawals, when set.
    notices: Option<Notices>,
    /// Set when each step also commits a relay row for processes without the worker
    /// (`relay.rs`): when the relay was last pruned (Unix ms).
    relay: Option<i64>,
}

/// What the mails about engine events need: links to the site, the mail worker to wake, and
/// the addresses of the users they go to.
struct Notices {
    public_url: String,
    wake: Arc<tokio::sync::Notify>,
    emails: HashMap<UserId, String>,
}

/// Events older than this are not mailed about (a read model rebuilt from the journal does not
/// mail its history again).
const NOTICE_AGE_MAX_MS: i64 = 3_600_000;
/// Addresses kept in memory at most (the cache starts again when full).
const EMAILS_CACHED_MAX: usize = 10_000;

/// What the projector keeps in memory to compute a batch's rows without reading them back.
#[derive(Default)]
struct WorkingSet {
    seq: u64,
    open: HashMap<OrderId, OrderRow>,
    balances: HashMap<(UserId, AssetId), (i128, i128, i128)>,
    candles: HashMap<(MarketId, Interval), CandleRow>,
    /// Each asset's newest hour of fee income.
    fees: HashMap<AssetId, FeeRevenueRow>,
    /// Each market's quote asset (trade fees are taken in it), filled from the mirror.
    quote_of: HashMap<MarketId, AssetId>,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector").field("seq", &self.work.seq).finish()
    }
}

type Commands = Vec<(u64, u64, Vec<Event>)>;

impl Projector {
    pub async fn new(
        store: Arc<dyn Store>,
        engine: EngineHandle,
        data_dir: PathBuf,
        hub: Arc<Hub>,
        mirror: Arc<RwLock<Mirror>>,
        tickers: Arc<Mutex<Tickers>>,
        projected: watch::Sender<u64>,
    ) -> Result<Projector, StoreError> {
        let mut p = Projector {
            store,
            engine,
            data_dir,
            hub,
            mirror,
            tickers,
            projected,
            work: WorkingSet::default(),
            notices: None,
            relay: None,
        };
        p.load().await?;
        Ok(p)
    }

    /// Commits each step's publications for gateways and admin apps in other processes (a
    /// split deployment), with every user's Binance events, not only those listened to here.
    pub fn relay(&mut self) {
        self.relay = Some(0);
    }

    /// Mails each user about their credited deposits and sent withdrawals (with the txid), queued
    /// in the same transaction as the events' read models: exactly once.
    pub fn mail_users(&mut self, public_url: String, wake: Arc<tokio::sync::Notify>) {
        self.notices = Some(Notices { public_url, wake, emails: HashMap::new() });
    }

    /// The users a batch mails, whose addresses are not cached yet.
    async fn prefetch_emails(&mut self, commands: &Commands) -> Result<(), StoreError> {
        let Some(notices) = &mut self.notices else { return Ok(()) };
        let oldest = crate::now_ms() - NOTICE_AGE_MAX_MS;
        for (_, time_ns, events) in commands {
            if orders::ms(*time_ns) < oldest {
                continue;
            }
            for event in events {
                let Some(user) = notice_user(event) else { continue };
                if notices.emails.contains_key(&user) {
                    continue;
                }
                if notices.emails.len() >= EMAILS_CACHED_MAX {
                    notices.emails.clear();
                }
                if let Some(row) = self.store.user(user).await? {
                    notices.emails.insert(user, row.email);
                }
            }
        }
        Ok(())
    }

    /// The mail about `event`, if it is one users hear about.
    fn notice(&self, event: &Event, time_ms: i64) -> Option<bourse_store::NewMail> {
        let notices = self.notices.as_ref()?;
        let user = notice_user(event)?;
        if time_ms < crate::now_ms() - NOTICE_AGE_MAX_MS {
            return None;
        }
        let to = notices.emails.get(&user)?;
        let mirror = self.mirror.read().ok()?;
        let site = notices.public_url.trim_end_matches('/');
        let (subject, text) = match event {
            Event::DepositCredited { asset, amount, key, .. } => {
                let a = mirror.assets.get(asset)?;
                let amount = bourse_core::decimal::format_units_trimmed(*amount, a.scale);
                (
                    format!("Deposit credited: {amount} {}", a.symbol),
                    format!(
                        "Your deposit of {amount} {} is confirmed and credited to your bourse account.\n\nTransaction: {key}\n\nYour funds: {site}/account/funds",
                        a.symbol
                    ),
                )
            }
            Event::WithdrawalChanged {
                withdrawal,
                asset,
                amount,
                state: bourse_core::WithdrawalState::Sent { txid },
                ..
            } => {
                let a = mirror.assets.get(asset)?;
                let amount = bourse_core::decimal::format_units_trimmed(*amount, a.scale);
                (
                    format!("Withdrawal sent: {amount} {}", a.symbol),
                    format!(
                        "Your withdrawal {withdrawal} of {amount} {} was sent.\n\nTransaction: {txid}\n\nIt completes once the transaction is confirmed: {site}/account/funds/{}/withdraw\n\nIf you did not ask for it, sign out every session and reset your password at once: {site}/account/security",
                        a.symbol, a.symbol
                    ),
                )
            }
            _ => return None,
        };
        Some(crate::mail::compose(to, &subject, &text))
    }

    /// (Re)loads the working set from the database.
    async fn load(&mut self) -> Result<(), StoreError> {
        let seq = self.store.projected_seq().await?;
        let open = self.store.open_orders_all().await?;
        let candles = self.store.latest_candles().await?;
        let fees = self.store.latest_fee_revenue().await?;
        crate::ticker::load(self.store.as_ref(), &candles, &self.tickers).await?;
        self.work = WorkingSet {
            seq,
            open: open.into_iter().map(|o| (o.id, o)).collect(),
            balances: HashMap::new(),
            candles: candles.into_iter().map(|c| ((c.market, c.interval), c)).collect(),
            fees: fees.into_iter().map(|f| (f.asset, f)).collect(),
            quote_of: HashMap::new(),
        };
        let _ = self.projected.send(seq);
        Ok(())
    }

    pub fn seq(&self) -> u64 {
        self.work.seq
    }

    /// Follows the engine until `shutdown` turns true; store errors are retried after a pause
    /// from the database's own cursor.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let result = tokio::select! {
                r = self.follow() => r,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            match result {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(error = %e, seq = self.work.seq, "projector failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if let Err(e) = self.load().await {
                        tracing::error!(error = %e, "projector cannot reload its state");
                    }
                }
            }
        }
    }

    /// Catches up to the live stream, then applies it. `Ok` when the engine stops.
    async fn follow(&mut self) -> Result<(), StoreError> {
        loop {
            let from = self.work.seq + 1;
            match self.engine.subscribe(from) {
                Ok(mut sub) => {
                    while let Some(batch) = sub.recv().await {
                        // Batches that queued up while the last transaction ran go into one
                        // transaction: the slower the database, the bigger its commits.
                        let mut commands: Commands = Vec::new();
                        let mut next = Some(batch);
                        while let Some(batch) = next.take() {
                            commands.extend(
                                batch
                                    .iter()
                                    .filter(|(seq, _, _)| *seq >= from && *seq > self.work.seq)
                                    .map(|(seq, time, events)| (seq, time, events.to_vec())),
                            );
                            if commands.len() < CATCH_UP_CHUNK {
                                next = sub.try_recv();
                            }
                        }
                        self.step(commands).await?;
                    }
                    if self.engine.finished() {
                        return Ok(());
                    }
                    // Cut off as a slow consumer: resume from where we are.
                    tracing::warn!(seq = self.work.seq, "projector fell behind; resuming");
                }
                Err(SubscribeError::TooOld { .. }) => self.catch_up(from).await?,
                Err(e) => {
                    tracing::info!(error = %e, "projector stops");
                    return Ok(());
                }
            }
        }
    }

    /// Rebuilds events from the journal (on a blocking thread) and applies them in chunks.
    async fn catch_up(&mut self, from: u64) -> Result<(), StoreError> {
        tracing::info!(from, "projector catching up from the journal");
        let (tx, mut rx) = mpsc::channel::<Commands>(4);
        let data_dir = self.data_dir.clone();
        let reader = tokio::task::spawn_blocking(move || {
            let mut chunk: Commands = Vec::with_capacity(CATCH_UP_CHUNK);
            let mut closed = false;
            let result = bourse_engine::replay_events(&data_dir, from, &mut |seq, time, events| {
                if closed {
                    return;
                }
                chunk.push((seq, time, events.to_vec()));
                if chunk.len() >= CATCH_UP_CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CATCH_UP_CHUNK));
                    closed = tx.blocking_send(full).is_err();
                }
            });
            if !closed && !chunk.is_empty() {
                let _ = tx.blocking_send(chunk);
            }
            result
        });
        while let Some(chunk) = rx.recv().await {
            self.step(chunk).await?;
        }
        match reader.await {
            Ok(Ok(last)) => tracing::info!(last, "projector caught up from the journal"),
            Ok(Err(e)) => tracing::error!(error = %e, "journal replay for the projector failed"),
            Err(e) => tracing::error!(error = %e, "journal replay task failed"),
        }
        Ok(())
    }

    /// Projects and commits one group of consecutive commands.
    async fn step(&mut self, commands: Commands) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (commands.first(), commands.last()) else { return Ok(()) };
        let (from_seq, to_seq) = (first.0, last.0);
        self.prefetch_balances(&commands).await?;
        self.prefetch_emails(&commands).await?;
        let (mut projection, user_events) = self.project(from_seq, to_seq, &commands);
        let rendered = match self.mirror.read() {
            Ok(mirror) => crate::binance::user_data::render(&mirror, user_events),
            Err(_) => Vec::new(),
        };
        if self.relay.is_some() {
            projection.relay =
                Some(crate::relay::encode(&projection.candles, &rendered, crate::now_ms()));
        }
        self.store.apply_projection(&projection).await?;
        if !projection.mails.is_empty()
            && let Some(notices) = &self.notices
        {
            notices.wake.notify_one();
        }
        self.work.seq = to_seq;
        let _ = self.projected.send(to_seq);
        crate::relay::publish(
            &self.hub,
            &self.mirror,
            &self.tickers,
            &projection.candles,
            rendered,
        );
        self.prune_relay().await;
        Ok(())
    }

    /// Deletes relay rows older than [`crate::relay::KEEP_MS`], every
    /// [`crate::relay::PRUNE_EVERY_MS`]; a failure only waits for the next time.
    async fn prune_relay(&mut self) {
        let Some(last) = self.relay.as_mut() else { return };
        let now = crate::now_ms();
        if now - *last < crate::relay::PRUNE_EVERY_MS {
            return;
        }
        *last = now;
        match self.store.prune_relay(now - crate::relay::KEEP_MS).await {
            Ok(n) if n > 0 => tracing::debug!(rows = n, "relay pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot prune the relay"),
        }
    }

    async fn prefetch_balances(&mut self, commands: &Commands) -> Result<(), StoreError> {
        for (_, _, events) in commands {
            for event in events {
                if let Event::BalanceChanged { user, asset, .. } = event
                    && !self.work.balances.contains_key(&(*user, *asset))
                {
                    let row = self.store.balance(*user, *asset).await?;
                    let totals = row.map(|b| (b.available, b.locked, b.held)).unwrap_or((0, 0, 0));
                    self.work.balances.insert((*user, *asset), totals);
                }
            }
        }
        Ok(())
    }

    /// The read-model rows of `commands`, and what users listening on Binance's user data
    /// stream hear of them (published once the rows are committed).
    fn project(
        &mut self,
        from_seq: u64,
        to_seq: u64,
        commands: &Commands,
    ) -> (Projection, Vec<UserEvent>) {
        let hub = self.hub.clone();
        let mut users = Collector::new(&hub, self.relay.is_some());
        let mut p = Projection { from_seq, to_seq, ..Projection::default() };
        let mut orders: HashMap<OrderId, OrderRow> = HashMap::new();
        let mut balances: HashMap<(UserId, AssetId), BalanceRow> = HashMap::new();
        let mut candles: HashMap<(MarketId, Interval, i64), CandleRow> = HashMap::new();
        let mut fees: HashMap<(AssetId, i64), FeeRevenueRow> = HashMap::new();
        for (seq, time_ns, events) in commands {
            let time_ms = orders::ms(*time_ns);
            let (mut kind, mut reference) = command_kind(events);
            for event in events {
                users.event(event, time_ms);
                if let Some(row) = orders::accepted(event, *seq, time_ms) {
                    self.work.open.insert(row.id, row);
                }
                for id in orders::touched(event).into_iter().flatten() {
                    if let Some(row) = self.work.open.get_mut(&id) {
                        orders::apply(row, event, time_ms);
                        users.order(event, row, time_ms);
                        orders.insert(id, row.clone());
                        if !row.status.is_open() {
                            self.work.open.remove(&id);
                        }
                    }
                }
                p.mails.extend(self.notice(event, time_ms));
                match event {
                    Event::OrderAccepted { order, .. } | Event::OrderEnded { order, .. }
                        if kind == LedgerKind::Order =>
                    {
                        reference = format!("order:{order}");
                    }
                    Event::Trade {
                        market,
                        trade,
                        price,
                        quantity,
                        notional,
                        maker_fee,
                        taker_fee,
                        ..
                    } => {
                        kind = LedgerKind::Trade;
                        reference = format!("trade:{market}:{trade}");
                        p.trades.extend(orders::trade_row(event, *seq, time_ms));
                        if let Some(quote) = self.quote_of(*market) {
                            let row = self.fee_hour(quote, time_ms);
                            row.trade_fees =
                                row.trade_fees.saturating_add(maker_fee.saturating_add(*taker_fee));
                            fees.insert((row.asset, row.hour_ms), row.clone());
                        }
                        for interval in Interval::ALL {
                            let candle = self.candle(*market, interval, time_ms, *price);
                            candle.high = candle.high.max(*price);
                            candle.low = candle.low.min(*price);
                            candle.close = *price;
                            candle.volume = candle.volume.saturating_add(*quantity);
                            candle.quote_volume = candle.quote_volume.saturating_add(*notional);
                            candle.trades = candle.trades.saturating_add(1);
                            let c = candle.clone();
                            candles.insert((c.market, c.interval, c.open_ms), c);
                        }
                    }
                    Event::WithdrawalChanged {
                        asset,
                        fee,
                        state: WithdrawalState::Completed,
                        ..
                    } => {
                        let row = self.fee_hour(*asset, time_ms);
                        row.withdrawal_fees = row.withdrawal_fees.saturating_add(*fee);
                        fees.insert((row.asset, row.hour_ms), row.clone());
                    }
                    Event::BalanceChanged { user, asset, available, locked, held } => {
                        let before = self
                            .work
                            .balances
                            .insert((*user, *asset), (*available, *locked, *held))
                            .unwrap_or((0, 0, 0));
                        p.ledger.push(NewLedgerEntry {
                            user: *user,
                            asset: *asset,
                            seq: *seq,
                            time_ms,
                            kind,
                            reference: reference.clone(),
                            delta_available: available.saturating_sub(before.0),
                            delta_locked: locked.saturating_sub(before.1),
                            delta_held: held.saturating_sub(before.2),
                            available: *available,
                            locked: *locked,
                            held: *held,
                        });
                        balances.insert(
                            (*user, *asset),
                            BalanceRow {
                                user: *user,
                                asset: *asset,
                                available: *available,
                                locked: *locked,
                                held: *held,
                                seq: *seq,
                            },
                        );
                    }
                    _ => {}
                }
            }
            users.end_command(time_ms);
        }
        p.orders = orders.into_values().collect();
        p.orders.sort_by_key(|o| o.id);
        p.balances = balances.into_values().collect();
        p.candles = candles.into_values().collect();
        p.candles.sort_by_key(|c| (c.market, c.interval, c.open_ms));
        p.fee_revenue = fees.into_values().collect();
        p.fee_revenue.sort_by_key(|f| (f.asset, f.hour_ms));
        (p, users.events)
    }

    /// The quote asset of `market` (markets never change their assets).
    fn quote_of(&mut self, market: MarketId) -> Option<AssetId> {
        if let Some(quote) = self.work.quote_of.get(&market) {
            return Some(*quote);
        }
        let quote = self.mirror.read().ok()?.markets.get(&market)?.quote.id;
        self.work.quote_of.insert(market, quote);
        Some(quote)
    }

    /// The fee income row of `asset` for the hour of `time_ms`.
    fn fee_hour(&mut self, asset: AssetId, time_ms: i64) -> &mut FeeRevenueRow {
        let hour_ms = time_ms.div_euclid(FEE_HOUR_MS) * FEE_HOUR_MS;
        let opened = || FeeRevenueRow { asset, hour_ms, trade_fees: 0, withdrawal_fees: 0 };
        let entry = self.work.fees.entry(asset).or_insert_with(opened);
        // Engine time never goes back: a newer event is in this hour or a later one.
        if entry.hour_ms < hour_ms {
            *entry = opened();
        }
        entry
    }

    /// The current candle of (market, interval) at `time_ms`, opened at `price` if new.
    fn candle(
        &mut self,
        market: MarketId,
        interval: Interval,
        time_ms: i64,
        price: u128,
    ) -> &mut CandleRow {
        let open_ms = interval.open_of(time_ms);
        let opened = || CandleRow {
            market,
            interval,
            open_ms,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: 0,
            quote_volume: 0,
            trades: 0,
        };
        let entry = self.work.candles.entry((market, interval)).or_insert_with(opened);
        // Engine time never goes back, so a newer trade is in this candle or a later one.
        if entry.open_ms < open_ms {
            *entry = opened();
        }
        entry
    }
}

/// The user an event is mailed to, if it is one users hear about.
fn notice_user(event: &Event) -> Option<UserId> {
    match event {
        Event::DepositCredited { user, .. } => Some(*user),
        Event::WithdrawalChanged {
            user, state: bourse_core::WithdrawalState::Sent { .. }, ..
        } => Some(*user),
        _ => None,
    }
}

/// What caused a command's balance changes, for the ledger.
fn command_kind(events: &[Event]) -> (LedgerKind, String) {
    for event in events {
        match event {
            Event::DepositCredited { key, .. } => {
                return (LedgerKind::Deposit, format!("deposit:{key}"));
            }
            Event::WithdrawalChanged { withdrawal, .. } => {
                return (LedgerKind::Withdrawal, format!("withdrawal:{withdrawal}"));
            }
            Event::BalanceAdjusted { reason, .. } => {
                return (LedgerKind::Adjustment, format!("adjustment:{reason}"));
            }
            Event::DepositReversed { key, .. } => {
                return (LedgerKind::Reversal, format!("deposit:{key}"));
            }
            _ => {}
        }
    }
    (LedgerKind::Order, String::new())
}
