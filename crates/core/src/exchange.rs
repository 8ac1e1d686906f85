//! The exchange state and the one function that changes it: [`Exchange::apply`]. It owns every
//! balance, order book and market; it is deterministic (time and sequence numbers come in with the
//! command) and does no I/O. Order placement and matching live in `matching.rs`; the invariant
//! checks in `audit.rs`; the canonical encoding in `snapshot.rs`.

use crate::book::{Book, Orders, UserList};
use crate::command::{Command, MarketChange, Side};
use crate::decimal::SCALE_MAX;
use crate::event::{Event, Reject, WithdrawalState};
use crate::ids::{AssetId, ExternalKey, MarketId, Reason, UserId, WithdrawalId};
use crate::market::{AssetSpec, FEE_PPM_MAX, Grid, MarketSpec, MarketStatus};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::collections::BTreeMap;

/// The most orders one user may have resting at once, over all markets.
pub const OPEN_ORDERS_PER_USER_MAX: u32 = 5_000;

/// One user's balance in one asset, in minor units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Free to trade or withdraw.
    pub available: i128,
    /// Reserved by resting orders.
    pub locked: i128,
    /// Reserved by withdrawals in flight.
    pub held: i128,
}

impl Account {
    pub fn total(&self) -> i128 {
        self.available + self.locked + self.held
    }
}

/// A user's balances and open-order list. The asset ids sit apart from the accounts, next to
/// the list head, so finding an account reads one cache line of ids and then the one account:
/// with thousands of users these records are rarely in cache, and every line counts.
#[derive(Clone, Debug, Default)]
#[repr(C)]
pub(crate) struct UserRecord {
    pub open: UserList,
    assets: SmallVec<[AssetId; 6]>,
    accounts: SmallVec<[Account; 6]>,
}

impl UserRecord {
    pub fn from_balances(balances: impl IntoIterator<Item = (AssetId, Account)>) -> UserRecord {
        let (assets, accounts) = balances.into_iter().unzip();
        UserRecord { open: UserList::default(), assets, accounts }
    }

    pub fn account(&mut self, asset: AssetId) -> &mut Account {
        let pos = match self.assets.iter().position(|a| *a == asset) {
            Some(pos) => pos,
            None => {
                self.assets.push(asset);
                self.accounts.push(Account::default());
                self.accounts.len() - 1
            }
        };
        match self.accounts.get_mut(pos) {
            Some(account) => account,
            None => unreachable!("balance slot just found"),
        }
    }

    pub fn get(&self, asset: AssetId) -> Account {
        self.assets
            .iter()
            .position(|a| *a == asset)
            .and_then(|pos| self.accounts.get(pos))
            .copied()
            .unwrap_or_default()
    }

    /// Every (asset, account) pair, in the order the accounts were opened.
    pub fn balances(&self) -> impl Iterator<Item = (AssetId, &Account)> {
        self.assets.iter().copied().zip(self.accounts.iter())
    }
}

/// Per-asset totals that conservation is checked against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetState {
    pub spec: AssetSpec,
    /// Everything ever credited by deposits.
    pub deposited: u128,
    /// Everything that left by completed withdrawals (fees excluded).
    pub withdrawn: u128,
    /// The sum of audited adjustments.
    pub adjusted: i128,
    /// The exchange's fee account in this asset.
    pub fees: i128,
}

#[derive(Clone, Debug)]
pub(crate) struct Market {
    pub spec: MarketSpec,
    pub grid: Grid,
    pub status: MarketStatus,
    pub book: Book,
    pub update_id: u64,
    pub next_trade: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    pub user: UserId,
    pub asset: AssetId,
    pub amount: u128,
    pub fee: u128,
    pub state: WithdrawalState,
}

/// The whole exchange. One thread owns it; see `bourse-engine` for the runner around it.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub(crate) seq: u64,
    pub(crate) time_ns: u64,
    pub(crate) next_order: u64,
    pub(crate) assets: Vec<AssetState>,
    pub(crate) markets: Vec<Market>,
    pub(crate) users: FxHashMap<UserId, UserRecord>,
    pub(crate) orders: Orders,
    pub(crate) deposits: FxHashSet<ExternalKey>,
    /// Keys of credited deposits that were taken back (a subset of `deposits`).
    pub(crate) reversals: FxHashSet<ExternalKey>,
    pub(crate) withdrawals: BTreeMap<WithdrawalId, Withdrawal>,
    /// Reused between commands so cancel-all allocates nothing in steady state.
    pub(crate) scratch: Vec<u32>,
}

impl Default for Exchange {
    fn default() -> Self {
        Exchange::new()
    }
}

impl Exchange {
    pub fn new() -> Exchange {
        Exchange {
            seq: 0,
            time_ns: 0,
            next_order: 1,
            assets: Vec::new(),
            markets: Vec::new(),
            users: FxHashMap::default(),
            orders: Orders::default(),
            deposits: FxHashSet::default(),
            reversals: FxHashSet::default(),
            withdrawals: BTreeMap::new(),
            scratch: Vec::new(),
        }
    }

    /// The sequence number of the last applied command.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn time_ns(&self) -> u64 {
        self.time_ns
    }

    /// Applies one command. `seq` must follow the last one. Every effect is reported in `out`
    /// (appended); a refused command appends a rejection and changes nothing else.
    pub fn apply(&mut self, seq: u64, time_ns: u64, command: &Command, out: &mut Vec<Event>) {
        assert_eq!(seq, self.seq + 1, "commands must be applied in sequence");
        self.seq = seq;
        self.time_ns = time_ns;
        match command {
            Command::Place(place) => self.place(place, out),
            Command::Cancel { user, market, order } => self.cancel(*user, *market, *order, out),
            Command::CancelAll { user, market } => self.cancel_all(*user, *market, out),
            Command::Deposit { user, asset, amount, key } => {
                self.deposit(*user, *asset, *amount, key, out)
            }
            Command::WithdrawalHold { withdrawal, user, asset, amount, fee } => {
                self.withdrawal_hold(*withdrawal, *user, *asset, *amount, *fee, out)
            }
            Command::WithdrawalSent { withdrawal, txid } => {
                self.withdrawal_sent(*withdrawal, txid, out)
            }
            Command::WithdrawalComplete { withdrawal } => {
                self.withdrawal_end(*withdrawal, None, out)
            }
            Command::WithdrawalFail { withdrawal, reason } => {
                self.withdrawal_end(*withdrawal, Some(reason), out)
            }
            Command::Adjust { user, asset, delta, reason } => {
                self.adjust(*user, *asset, *delta, reason, out)
            }
            Command::DepositReverse { user, asset, amount, key, reason } => {
                self.deposit_reverse(*user, *asset, *amount, key, reason, out)
            }
            Command::AddAsset(spec) => self.add_asset(spec, out),
            Command::AddMarket(spec) => self.add_market(spec, out),
            Command::ChangeMarket { market, change } => self.change_market(*market, change, out),
            Command::SetMarketStatus { market, status } => {
                self.set_market_status(*market, *status, out)
            }
            Command::SetFees { market, maker_fee_ppm, taker_fee_ppm } => {
                self.set_fees(*market, *maker_fee_ppm, *taker_fee_ppm, out)
            }
        }
    }

    // ---- read access -------------------------------------------------------------------

    pub fn asset(&self, asset: AssetId) -> Option<&AssetState> {
        let idx = asset.0.checked_sub(1)?;
        self.assets.get(idx as usize)
    }

    pub fn assets(&self) -> impl Iterator<Item = (AssetId, &AssetState)> {
        (1u32..).zip(self.assets.iter()).map(|(i, a)| (AssetId(i), a))
    }

    pub(crate) fn market(&self, market: MarketId) -> Option<&Market> {
        let idx = market.0.checked_sub(1)?;
        self.markets.get(idx as usize)
    }

    pub(crate) fn market_mut(&mut self, market: MarketId) -> Option<&mut Market> {
        let idx = market.0.checked_sub(1)?;
        self.markets.get_mut(idx as usize)
    }

    pub fn market_spec(&self, market: MarketId) -> Option<(&MarketSpec, MarketStatus)> {
        self.market(market).map(|m| (&m.spec, m.status))
    }

    pub fn market_ids(&self) -> impl Iterator<Item = MarketId> + use<> {
        (1u32..=u32::try_from(self.markets.len()).unwrap_or(u32::MAX)).map(MarketId)
    }

    pub fn balance(&self, user: UserId, asset: AssetId) -> Account {
        self.users.get(&user).map(|u| u.get(asset)).unwrap_or_default()
    }

    /// Whether the user's withdrawals are frozen: some balance of theirs is below zero (a
    /// reversed deposit they had already spent). Settling it (a deposit, a trade, an operator's
    /// adjustment) lifts the freeze.
    pub fn withdrawals_frozen(&self, user: UserId) -> bool {
        self.users.get(&user).is_some_and(|u| u.balances().any(|(_, a)| a.available < 0))
    }

    pub fn open_orders_count(&self) -> usize {
        self.orders.len()
    }

    /// Aggregated levels of one side, best first: (price, quantity) in minor units.
    pub fn depth(&self, market: MarketId, side: Side, levels: usize) -> Vec<(u128, u128)> {
        let Some(m) = self.market(market) else { return Vec::new() };
        let to_units = |(&price, level): (&u64, &crate::book::Level)| {
            (u128::from(price) * m.spec.tick, u128::from(level.lots) * m.spec.lot)
        };
        match side {
            Side::Buy => m.book.bids.iter().rev().take(levels).map(to_units).collect(),
            Side::Sell => m.book.asks.iter().take(levels).map(to_units).collect(),
        }
    }

    /// The market's book update id: the `update_id` of its latest `BookLevelChanged`.
    pub fn book_update_id(&self, market: MarketId) -> Option<u64> {
        self.market(market).map(|m| m.update_id)
    }

    // ---- shared helpers ----------------------------------------------------------------

    pub(crate) fn user_mut(&mut self, user: UserId) -> &mut UserRecord {
        self.users.entry(user).or_default()
    }

    pub(crate) fn balance_event(user: UserId, asset: AssetId, account: &Account) -> Event {
        Event::BalanceChanged {
            user,
            asset,
            available: account.available,
            locked: account.locked,
            held: account.held,
        }
    }

    fn reject(out: &mut Vec<Event>, user: Option<UserId>, reason: Reject) {
        out.push(Event::Rejected { user, reason });
    }

    // ---- funds in and out --------------------------------------------------------------

    /// Checks that `delta` can be added to a user's available balance (no overflow, not below
    /// zero) and returns the new available balance; changes nothing.
    fn checked_available(&self, user: UserId, asset: AssetId, delta: i128) -> Result<i128, Reject> {
        if self.asset(asset).is_none() {
            return Err(Reject::UnknownAsset);
        }
        if delta == 0 {
            return Err(Reject::AmountZero);
        }
        match self.balance(user, asset).available.checked_add(delta) {
            None => Err(Reject::Overflow),
            Some(available) if available < 0 => Err(Reject::InsufficientFunds),
            Some(available) => Ok(available),
        }
    }

    /// Sets a user's available balance to a value `checked_available` returned.
    fn set_available(&mut self, user: UserId, asset: AssetId, available: i128) -> Event {
        let account = self.user_mut(user).account(asset);
        account.available = available;
        Self::balance_event(user, asset, account)
    }

    fn deposit(
        &mut self,
        user: UserId,
        asset: AssetId,
        amount: u128,
        key: &ExternalKey,
        out: &mut Vec<Event>,
    ) {
        if self.deposits.contains(key) {
            return Self::reject(out, Some(user), Reject::DuplicateDeposit);
        }
        let checked = i128::try_from(amount).map_err(|_| Reject::Overflow).and_then(|delta| {
            let available = self.checked_available(user, asset, delta)?;
            let total = self
                .asset(asset)
                .and_then(|a| a.deposited.checked_add(amount))
                .filter(|&t| i128::try_from(t).is_ok())
                .ok_or(Reject::Overflow)?;
            Ok((available, total))
        });
        let (available, total) = match checked {
            Ok(checked) => checked,
            Err(reason) => return Self::reject(out, Some(user), reason),
        };
        let event = self.set_available(user, asset, available);
        if let Some(a) = self.assets.get_mut(asset.0 as usize - 1) {
            a.deposited = total;
        }
        self.deposits.insert(key.clone());
        out.push(Event::DepositCredited { user, asset, amount, key: key.clone() });
        out.push(event);
    }

    fn withdrawal_hold(
        &mut self,
        withdrawal: WithdrawalId,
        user: UserId,
        asset: AssetId,
        amount: u128,
        fee: u128,
        out: &mut Vec<Event>,
    ) {
        if self.withdrawals.contains_key(&withdrawal) {
            return Self::reject(out, Some(user), Reject::DuplicateWithdrawal);
        }
        if self.asset(asset).is_none() {
            return Self::reject(out, Some(user), Reject::UnknownAsset);
        }
        if amount == 0 {
            return Self::reject(out, Some(user), Reject::AmountZero);
        }
        if self.withdrawals_frozen(user) {
            return Self::reject(out, Some(user), Reject::AccountFrozen);
        }
        let Some(total) = amount.checked_add(fee).and_then(|t| i128::try_from(t).ok()) else {
            return Self::reject(out, Some(user), Reject::Overflow);
        };
        if self.balance(user, asset).available < total {
            return Self::reject(out, Some(user), Reject::InsufficientFunds);
        }
        let account = self.user_mut(user).account(asset);
        account.available -= total;
        account.held += total;
        let event = Self::balance_event(user, asset, account);
        let state = WithdrawalState::Held;
        self.withdrawals
            .insert(withdrawal, Withdrawal { user, asset, amount, fee, state: state.clone() });
        out.push(Event::WithdrawalChanged { withdrawal, user, asset, amount, fee, state });
        out.push(event);
    }

    fn withdrawal_sent(
        &mut self,
        withdrawal: WithdrawalId,
        txid: &ExternalKey,
        out: &mut Vec<Event>,
    ) {
        let Some(w) = self.withdrawals.get_mut(&withdrawal) else {
            return Self::reject(out, None, Reject::UnknownWithdrawal);
        };
        if w.state != WithdrawalState::Held {
            return Self::reject(out, Some(w.user), Reject::WithdrawalState);
        }
        w.state = WithdrawalState::Sent { txid: txid.clone() };
        out.push(Event::WithdrawalChanged {
            withdrawal,
            user: w.user,
            asset: w.asset,
            amount: w.amount,
            fee: w.fee,
            state: w.state.clone(),
        });
    }

    /// Completes (`failure: None`) or fails a withdrawal that is held or sent.
    fn withdrawal_end(
        &mut self,
        withdrawal: WithdrawalId,
        failure: Option<&Reason>,
        out: &mut Vec<Event>,
    ) {
        let Some(w) = self.withdrawals.get_mut(&withdrawal) else {
            return Self::reject(out, None, Reject::UnknownWithdrawal);
        };
        if !matches!(w.state, WithdrawalState::Held | WithdrawalState::Sent { .. }) {
            return Self::reject(out, Some(w.user), Reject::WithdrawalState);
        }
        w.state = match failure {
            None => WithdrawalState::Completed,
            Some(reason) => WithdrawalState::Failed { reason: reason.clone() },
        };
        let w = w.clone();
        // The hold was checked to fit i128 when it was taken.
        let total = (w.amount + w.fee) as i128;
        let account = self.user_mut(w.user).account(w.asset);
        account.held -= total;
        if failure.is_some() {
            account.available += total;
        }
        let event = Self::balance_event(w.user, w.asset, account);
        if failure.is_none()
            && let Some(a) = self.assets.get_mut(w.asset.0 as usize - 1)
        {
            a.withdrawn += w.amount;
            a.fees += w.fee as i128;
        }
        out.push(Event::WithdrawalChanged {
            withdrawal,
            user: w.user,
            asset: w.asset,
            amount: w.amount,
            fee: w.fee,
            state: w.state,
        });
        out.push(event);
    }

    fn adjust(
        &mut self,
        user: UserId,
        asset: AssetId,
        delta: i128,
        reason: &Reason,
        out: &mut Vec<Event>,
    ) {
        let checked = self.checked_available(user, asset, delta).and_then(|available| {
            let adjusted = self.asset(asset).and_then(|a| a.adjusted.checked_add(delta));
            Ok((available, adjusted.ok_or(Reject::Overflow)?))
        });
        let (available, adjusted) = match checked {
            Ok(checked) => checked,
            Err(reason) => return Self::reject(out, Some(user), reason),
        };
        let event = self.set_available(user, asset, available);
        if let Some(a) = self.assets.get_mut(asset.0 as usize - 1) {
            a.adjusted = adjusted;
        }
        out.push(Event::BalanceAdjusted { user, asset, delta, reason: reason.clone() });
        out.push(event);
    }

    fn deposit_reverse(
        &mut self,
        user: UserId,
        asset: AssetId,
        amount: u128,
        key: &ExternalKey,
        reason: &Reason,
        out: &mut Vec<Event>,
    ) {
        if !self.deposits.contains(key) {
            return Self::reject(out, Some(user), Reject::UnknownDeposit);
        }
        if self.reversals.contains(key) {
            return Self::reject(out, Some(user), Reject::DuplicateReversal);
        }
        if amount == 0 {
            return Self::reject(out, Some(user), Reject::AmountZero);
        }
        let Some(state) = self.asset(asset) else {
            return Self::reject(out, Some(user), Reject::UnknownAsset);
        };
        // Never more than was ever deposited, so `deposited` stays a true total.
        let deposited = state.deposited.checked_sub(amount);
        let available = i128::try_from(amount)
            .ok()
            .and_then(|a| self.balance(user, asset).available.checked_sub(a));
        let (Some(deposited), Some(available)) = (deposited, available) else {
            return Self::reject(out, Some(user), Reject::Overflow);
        };
        let event = self.set_available(user, asset, available);
        if let Some(a) = self.assets.get_mut(asset.0 as usize - 1) {
            a.deposited = deposited;
        }
        self.reversals.insert(key.clone());
        out.push(Event::DepositReversed {
            user,
            asset,
            amount,
            key: key.clone(),
            reason: reason.clone(),
        });
        out.push(event);
    }

    // ---- assets and markets ------------------------------------------------------------

    fn add_asset(&mut self, spec: &AssetSpec, out: &mut Vec<Event>) {
        if spec.scale > SCALE_MAX {
            return Self::reject(out, None, Reject::BadScale);
        }
        if self.assets.iter().any(|a| a.spec.symbol == spec.symbol) {
            return Self::reject(out, None, Reject::DuplicateAsset);
        }
        let Ok(id) = u32::try_from(self.assets.len() + 1) else {
            return Self::reject(out, None, Reject::Overflow);
        };
        self.assets.push(AssetState {
            spec: spec.clone(),
            deposited: 0,
            withdrawn: 0,
            adjusted: 0,
            fees: 0,
        });
        out.push(Event::AssetAdded { asset: AssetId(id), spec: spec.clone() });
    }

    fn add_market(&mut self, spec: &MarketSpec, out: &mut Vec<Event>) {
        let (Some(base), Some(_)) = (self.asset(spec.base), self.asset(spec.quote)) else {
            return Self::reject(out, None, Reject::UnknownAsset);
        };
        let grid = match spec.grid(base.spec.scale) {
            Ok(grid) => grid,
            Err(e) => return Self::reject(out, None, Reject::BadMarketSpec(e)),
        };
        if self.markets.iter().any(|m| m.spec.base == spec.base && m.spec.quote == spec.quote) {
            return Self::reject(out, None, Reject::DuplicateMarket);
        }
        let Ok(id) = u32::try_from(self.markets.len() + 1) else {
            return Self::reject(out, None, Reject::Overflow);
        };
        self.markets.push(Market {
            spec: spec.clone(),
            grid,
            status: MarketStatus::Trading,
            book: Book::default(),
            update_id: 0,
            next_trade: 1,
        });
        out.push(Event::MarketAdded { market: MarketId(id), spec: spec.clone() });
    }

    fn change_market(&mut self, market: MarketId, change: &MarketChange, out: &mut Vec<Event>) {
        let Some(m) = self.market(market) else {
            return Self::reject(out, None, Reject::UnknownMarket);
        };
        let grid_changes = change.tick.is_some_and(|t| t != m.spec.tick)
            || change.lot.is_some_and(|l| l != m.spec.lot);
        if grid_changes && !m.book.is_empty() {
            return Self::reject(out, None, Reject::MarketNotEmpty);
        }
        let spec = MarketSpec {
            tick: change.tick.unwrap_or(m.spec.tick),
            lot: change.lot.unwrap_or(m.spec.lot),
            min_qty: change.min_qty.unwrap_or(m.spec.min_qty),
            max_qty: change.max_qty.unwrap_or(m.spec.max_qty),
            min_notional: change.min_notional.unwrap_or(m.spec.min_notional),
            ..m.spec.clone()
        };
        let base_scale = self.asset(spec.base).map_or(0, |a| a.spec.scale);
        let grid = match spec.grid(base_scale) {
            Ok(grid) => grid,
            Err(e) => return Self::reject(out, None, Reject::BadMarketSpec(e)),
        };
        if let Some(m) = self.market_mut(market) {
            m.spec = spec.clone();
            m.grid = grid;
        }
        out.push(Event::MarketChanged { market, spec });
    }

    fn set_fees(&mut self, market: MarketId, maker: u32, taker: u32, out: &mut Vec<Event>) {
        if maker > FEE_PPM_MAX || taker > FEE_PPM_MAX {
            return Self::reject(out, None, Reject::FeeTooHigh);
        }
        let Some(m) = self.market_mut(market) else {
            return Self::reject(out, None, Reject::UnknownMarket);
        };
        m.spec.maker_fee_ppm = maker;
        m.spec.taker_fee_ppm = taker;
        out.push(Event::MarketChanged { market, spec: m.spec.clone() });
    }

    fn set_market_status(&mut self, market: MarketId, status: MarketStatus, out: &mut Vec<Event>) {
        let Some(m) = self.market_mut(market) else {
            return Self::reject(out, None, Reject::UnknownMarket);
        };
        m.status = status;
        out.push(Event::MarketStatusChanged { market, status });
    }
}
