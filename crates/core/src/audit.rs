//! Checks of the exchange's invariants. `audit` (cheap enough for release builds and the
//! operator's `bourse audit`) proves conservation per asset; `check_invariants` (tests, debug
//! builds, snapshot restore) walks the whole state.

use crate::book::crosses;
use crate::command::Side;
use crate::event::WithdrawalState;
use crate::exchange::Exchange;
use crate::ids::{AssetId, UserId};
use crate::matching::resting_need;
use rustc_hash::FxHashMap;

/// One asset's totals. Conservation: `accounts + fees == deposited - withdrawn + adjusted`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AssetTotals {
    pub asset: AssetId,
    /// Every user's available + locked + held.
    pub accounts: i128,
    /// The fee account.
    pub fees: i128,
    pub deposited: u128,
    pub withdrawn: u128,
    pub adjusted: i128,
}

impl AssetTotals {
    /// What the accounts and the fee account must add up to.
    pub fn expected(&self) -> Option<i128> {
        let deposited = i128::try_from(self.deposited).ok()?;
        let withdrawn = i128::try_from(self.withdrawn).ok()?;
        deposited.checked_sub(withdrawn)?.checked_add(self.adjusted)
    }

    pub fn balanced(&self) -> bool {
        self.accounts.checked_add(self.fees) == self.expected()
    }
}

/// A broken invariant: the state is corrupt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invariant broken: {0}")]
pub struct InvariantError(pub String);

fn fail<T>(message: String) -> Result<T, InvariantError> {
    Err(InvariantError(message))
}

impl Exchange {
    /// Conservation totals per asset.
    pub fn audit(&self) -> Vec<AssetTotals> {
        let mut totals: Vec<AssetTotals> = self
            .assets()
            .map(|(asset, state)| AssetTotals {
                asset,
                accounts: 0,
                fees: state.fees,
                deposited: state.deposited,
                withdrawn: state.withdrawn,
                adjusted: state.adjusted,
            })
            .collect();
        for record in self.users.values() {
            for (asset, account) in record.balances() {
                if let Some(t) = totals.get_mut(asset.0 as usize - 1) {
                    t.accounts += account.total();
                }
            }
        }
        totals
    }

    /// Walks the whole state: conservation, every lock equal to what its orders and
    /// withdrawals need, book structure, books not crossed.
    pub fn check_invariants(&self) -> Result<(), InvariantError> {
        for t in self.audit() {
            if !t.balanced() {
                return fail(format!("asset {} does not balance: {t:?}", t.asset));
            }
        }

        let mut need: FxHashMap<(UserId, AssetId), (i128, i128)> = FxHashMap::default();
        let mut resting = 0usize;
        for market_id in self.market_ids() {
            let Some(m) = self.market(market_id) else { return fail("market list".into()) };
            for side in [Side::Buy, Side::Sell] {
                for (&price, level) in m.book.side(side) {
                    let mut lots = 0u64;
                    for idx in self.orders.level_iter(level) {
                        let o = self.orders.get(idx);
                        if o.market != market_id || o.side != side || o.price != price {
                            return fail(format!("order {} sits in the wrong level", o.id));
                        }
                        if o.remaining == 0 || o.remaining > o.quantity {
                            return fail(format!("order {} has remaining {}", o.id, o.remaining));
                        }
                        if self.orders.by_id.get(&o.id) != Some(&idx) {
                            return fail(format!("order {} is not indexed", o.id));
                        }
                        lots += o.remaining;
                        resting += 1;
                        let spend = if side == Side::Buy { m.spec.quote } else { m.spec.base };
                        let amount = resting_need(m, side, price, o.remaining, o.fee_ppm);
                        need.entry((o.user, spend)).or_default().0 += amount as i128;
                    }
                    if lots != level.lots || lots == 0 {
                        return fail(format!(
                            "level {price} of market {market_id} says {} lots, holds {lots}",
                            level.lots
                        ));
                    }
                }
            }
            if let (Some(bid), Some(ask)) =
                (m.book.bids.keys().next_back(), m.book.asks.keys().next())
                && crosses(Side::Buy, *bid, *ask)
            {
                return fail(format!("market {market_id} is crossed: bid {bid} >= ask {ask}"));
            }
        }
        if resting != self.orders.by_id.len() {
            return fail(format!("{} orders indexed, {resting} resting", self.orders.by_id.len()));
        }
        let mut listed = 0usize;
        for (user, record) in &self.users {
            let mut count = 0u32;
            for idx in self.orders.user_iter(&record.open) {
                if self.orders.get(idx).user != *user {
                    return fail(format!("user {user} lists another user's order"));
                }
                count += 1;
            }
            if count != record.open.count {
                return fail(format!(
                    "user {user} counts {} open orders, lists {count}",
                    record.open.count
                ));
            }
            listed += count as usize;
        }
        if listed != resting {
            return fail(format!("{listed} orders in user lists, {resting} resting"));
        }
        for ((user, client), id) in &self.orders.by_client {
            let ok = self.orders.by_id.get(id).is_some_and(|&idx| {
                let o = self.orders.get(idx);
                o.user == *user && self.orders.client_order_id(o) == Some(*client)
            });
            if !ok {
                return fail(format!("client order id {client} of user {user} points nowhere"));
            }
        }

        for w in self.withdrawals.values() {
            if matches!(w.state, WithdrawalState::Held | WithdrawalState::Sent { .. }) {
                need.entry((w.user, w.asset)).or_default().1 += (w.amount + w.fee) as i128;
            }
        }
        for (user, record) in &self.users {
            for (asset, account) in record.balances() {
                let (locked, held) = need.remove(&(*user, asset)).unwrap_or_default();
                if account.locked != locked || account.held != held {
                    return fail(format!(
                        "user {user} asset {asset}: locked {} held {}, orders need {locked}, withdrawals {held}",
                        account.locked, account.held
                    ));
                }
                // Only a reversed deposit the user had already spent takes a balance below zero.
                if account.available < 0 && self.reversals.is_empty() {
                    return fail(format!(
                        "user {user} asset {asset}: available {}",
                        account.available
                    ));
                }
            }
        }
        if let Some(((user, asset), _)) = need.into_iter().find(|(_, (l, h))| *l != 0 || *h != 0) {
            return fail(format!("user {user} asset {asset} has orders or holds but no account"));
        }
        Ok(())
    }
}
