//! The canonical encoding of the whole exchange: snapshots are this encoding, and the state hash
//! is BLAKE3 over it. Canonical means independent of history that does not matter — hash-map
//! order, slab positions, freed slots — so two replays that reach the same state produce the same
//! bytes. Resting orders are listed by id: ids grow with arrival, so re-inserting them in id order
//! rebuilds every level's time queue and every user's order list exactly.

use crate::book::Order;
use crate::command::{Side, StpMode};
use crate::exchange::{Account, AssetState, Exchange, Market, UserRecord, Withdrawal};
use crate::ids::{AssetId, ClientOrderId, ExternalKey, MarketId, OrderId, UserId, WithdrawalId};
use crate::market::{MarketSpec, MarketStatus, buy_need};
use serde::{Deserialize, Serialize};

/// 2: reversed deposit keys.
pub const SNAPSHOT_VERSION: u32 = 2;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub seq: u64,
    pub time_ns: u64,
    pub next_order: u64,
    pub assets: Vec<AssetState>,
    pub markets: Vec<MarketSnapshot>,
    /// By user id; each user's balances by asset id.
    pub users: Vec<(UserId, Vec<(AssetId, Account)>)>,
    /// By order id.
    pub orders: Vec<OrderSnapshot>,
    /// Sorted.
    pub deposits: Vec<ExternalKey>,
    /// By withdrawal id.
    pub withdrawals: Vec<(WithdrawalId, Withdrawal)>,
    /// Sorted; each also in `deposits`.
    pub reversals: Vec<ExternalKey>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketSnapshot {
    pub spec: MarketSpec,
    pub status: MarketStatus,
    pub update_id: u64,
    pub next_trade: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSnapshot {
    pub id: OrderId,
    pub user: UserId,
    pub market: MarketId,
    pub side: Side,
    pub stp: StpMode,
    /// Ticks and lots.
    pub price: u64,
    pub quantity: u64,
    pub remaining: u64,
    pub fee_ppm: u32,
    pub client_order_id: Option<ClientOrderId>,
}

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot does not decode: {0}")]
    Decode(#[from] postcard::Error),
    #[error("snapshot format version {0} is not supported")]
    Version(u32),
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(String),
}

/// A 32-byte BLAKE3 digest of the canonical state.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateHash(pub [u8; 32]);

impl std::fmt::Display for StateHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for StateHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StateHash({self})")
    }
}

impl Exchange {
    pub fn snapshot(&self) -> Snapshot {
        let mut users: Vec<(UserId, Vec<(AssetId, Account)>)> = self
            .users
            .iter()
            .map(|(user, record)| {
                let mut balances: Vec<(AssetId, Account)> =
                    record.balances().map(|(asset, account)| (asset, *account)).collect();
                balances.sort_unstable_by_key(|(asset, _)| *asset);
                (*user, balances)
            })
            .collect();
        users.sort_unstable_by_key(|(user, _)| *user);
        let mut orders: Vec<OrderSnapshot> = self
            .orders
            .by_id
            .values()
            .map(|&idx| {
                let o = self.orders.get(idx);
                OrderSnapshot {
                    id: o.id,
                    user: o.user,
                    market: o.market,
                    side: o.side,
                    stp: o.stp,
                    price: o.price,
                    quantity: o.quantity,
                    remaining: o.remaining,
                    fee_ppm: o.fee_ppm,
                    client_order_id: self.orders.client_order_id(o),
                }
            })
            .collect();
        orders.sort_unstable_by_key(|o| o.id);
        let mut deposits: Vec<ExternalKey> = self.deposits.iter().cloned().collect();
        deposits.sort_unstable();
        let mut reversals: Vec<ExternalKey> = self.reversals.iter().cloned().collect();
        reversals.sort_unstable();
        Snapshot {
            version: SNAPSHOT_VERSION,
            seq: self.seq,
            time_ns: self.time_ns,
            next_order: self.next_order,
            assets: self.assets.clone(),
            markets: self
                .markets
                .iter()
                .map(|m| MarketSnapshot {
                    spec: m.spec.clone(),
                    status: m.status,
                    update_id: m.update_id,
                    next_trade: m.next_trade,
                })
                .collect(),
            users,
            orders,
            deposits,
            withdrawals: self.withdrawals.iter().map(|(id, w)| (*id, w.clone())).collect(),
            reversals,
        }
    }

    /// The canonical encoding (the snapshot file's payload).
    pub fn encode_snapshot(&self) -> Vec<u8> {
        // Encoding plain owned data into a Vec cannot fail.
        postcard::to_allocvec(&self.snapshot()).unwrap_or_default()
    }

    pub fn state_hash(&self) -> StateHash {
        StateHash(*blake3::hash(&self.encode_snapshot()).as_bytes())
    }

    /// Rebuilds an exchange from [`Exchange::encode_snapshot`] bytes, checking every invariant:
    /// bytes that decode but describe an impossible state are an error, never a panic.
    pub fn restore(bytes: &[u8]) -> Result<Exchange, SnapshotError> {
        let snapshot: Snapshot = postcard::from_bytes(bytes)?;
        Exchange::from_snapshot(snapshot)
    }

    pub fn from_snapshot(s: Snapshot) -> Result<Exchange, SnapshotError> {
        let bad = |m: String| Err(SnapshotError::Inconsistent(m));
        if s.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version(s.version));
        }
        let mut x = Exchange::new();
        x.seq = s.seq;
        x.time_ns = s.time_ns;
        x.next_order = s.next_order;
        x.assets = s.assets;
        for m in s.markets {
            let base_scale = match (x.asset(m.spec.base), x.asset(m.spec.quote)) {
                (Some(base), Some(_)) => base.spec.scale,
                _ => return bad("market of an unknown asset".into()),
            };
            let Ok(grid) = m.spec.grid(base_scale) else { return bad("market grid".into()) };
            x.markets.push(Market {
                spec: m.spec,
                grid,
                status: m.status,
                book: Default::default(),
                update_id: m.update_id,
                next_trade: m.next_trade,
            });
        }
        for (user, balances) in s.users {
            if balances.iter().any(|(asset, _)| x.asset(*asset).is_none()) {
                return bad(format!("user {user} holds an unknown asset"));
            }
            let record = UserRecord::from_balances(balances);
            if x.users.insert(user, record).is_some() {
                return bad(format!("user {user} listed twice"));
            }
        }
        let mut last = OrderId(0);
        for o in s.orders {
            if o.id <= last || o.id.0 >= x.next_order {
                return bad(format!("order {} out of order", o.id));
            }
            last = o.id;
            let Some(m) = x.market(o.market) else { return bad(format!("order {} market", o.id)) };
            let fits = match o.side {
                Side::Buy => {
                    buy_need(o.price, o.quantity, m.grid.tick_lot_cost, o.fee_ppm).is_some()
                }
                Side::Sell => u128::from(o.quantity).checked_mul(m.spec.lot).is_some(),
            };
            if o.price == 0 || o.remaining == 0 || o.remaining > o.quantity || !fits {
                return bad(format!("order {} amounts", o.id));
            }
            if o.client_order_id.is_some_and(|c| x.orders.by_client.contains_key(&(o.user, c))) {
                return bad(format!("order {} client id reused", o.id));
            }
            let order = Order::new(
                o.id,
                o.user,
                o.market,
                o.side,
                o.stp,
                o.price,
                o.quantity,
                o.remaining,
                o.fee_ppm,
            );
            let Exchange { markets, orders, users, .. } = &mut x;
            let Some(m) = markets.get_mut(o.market.0 as usize - 1) else {
                return bad("market".into());
            };
            orders.insert(
                order,
                o.client_order_id,
                &mut m.book,
                &mut users.entry(o.user).or_default().open,
            );
        }
        let deposits = s.deposits.len();
        x.deposits = s.deposits.into_iter().collect();
        if x.deposits.len() != deposits {
            return bad("deposit key listed twice".into());
        }
        let reversals = s.reversals.len();
        x.reversals = s.reversals.into_iter().collect();
        if x.reversals.len() != reversals || !x.reversals.is_subset(&x.deposits) {
            return bad("reversal keys".into());
        }
        for (id, w) in s.withdrawals {
            let fits = w.amount.checked_add(w.fee).is_some_and(|t| i128::try_from(t).is_ok());
            if !fits || x.asset(w.asset).is_none() || x.withdrawals.insert(id, w).is_some() {
                return bad(format!("withdrawal {id}"));
            }
        }
        x.check_invariants().map_err(|e| SnapshotError::Inconsistent(e.0))?;
        Ok(x)
    }
}
