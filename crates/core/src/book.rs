//! Order storage: a slab of resting orders, each threaded on two intrusive doubly-linked lists
//! (its price level's time queue and its owner's open orders), so that adding, filling and
//! canceling are O(1) after the price level is found, and a million resting orders cost no
//! allocation per order beyond the slab slot.
//!
//! Prices here are ticks and quantities lots (`u64`); the exchange converts at its edges.
//! Internal links are trusted: a broken link is corruption and crashes (`unreachable!`), while
//! nothing a command carries can reach these functions unchecked.

use crate::command::{Side, StpMode};
use crate::ids::{ClientOrderId, MarketId, OrderId, UserId};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

pub(crate) const NIL: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub(crate) struct Order {
    pub id: OrderId,
    pub user: UserId,
    pub market: MarketId,
    pub side: Side,
    pub stp: StpMode,
    pub price: u64,
    pub quantity: u64,
    pub remaining: u64,
    /// For buys, the fee rate the lock reserved for; fills never charge more.
    pub fee_ppm: u32,
    /// Whether `Orders::client_ids` holds a client order id for it: most orders have none, so
    /// the id lives in a side table and the slot stays small (a million resting orders).
    has_client_id: bool,
    prev: u32,
    next: u32,
    user_prev: u32,
    user_next: u32,
}

impl Order {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: OrderId,
        user: UserId,
        market: MarketId,
        side: Side,
        stp: StpMode,
        price: u64,
        quantity: u64,
        remaining: u64,
        fee_ppm: u32,
    ) -> Order {
        Order {
            id,
            user,
            market,
            side,
            stp,
            price,
            quantity,
            remaining,
            fee_ppm,
            has_client_id: false,
            prev: NIL,
            next: NIL,
            user_prev: NIL,
            user_next: NIL,
        }
    }

    pub fn filled(&self) -> u64 {
        self.quantity - self.remaining
    }
}

/// One price level: the total remaining lots and the time queue of its orders.
#[derive(Clone, Debug)]
pub(crate) struct Level {
    pub lots: u64,
    pub head: u32,
    tail: u32,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Book {
    pub bids: BTreeMap<u64, Level>,
    pub asks: BTreeMap<u64, Level>,
}

impl Book {
    pub fn side(&self, side: Side) -> &BTreeMap<u64, Level> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    pub fn side_mut(&mut self, side: Side) -> &mut BTreeMap<u64, Level> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// The best price an order of `taker` side would meet.
    pub fn best_opposite(&self, taker: Side) -> Option<u64> {
        match taker {
            Side::Buy => self.asks.keys().next().copied(),
            Side::Sell => self.bids.keys().next_back().copied(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }
}

/// Does a taker at `limit` cross a maker at `price`?
pub(crate) fn crosses(taker: Side, limit: u64, price: u64) -> bool {
    match taker {
        Side::Buy => price <= limit,
        Side::Sell => price >= limit,
    }
}

/// A user's open orders, oldest first.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserList {
    pub head: u32,
    tail: u32,
    pub count: u32,
}

impl Default for UserList {
    fn default() -> Self {
        UserList { head: NIL, tail: NIL, count: 0 }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Orders {
    slots: Vec<Order>,
    free: Vec<u32>,
    pub by_id: FxHashMap<OrderId, u32>,
    /// Open orders by (owner, client order id): a client id is unique among a user's open
    /// orders.
    pub by_client: FxHashMap<(UserId, ClientOrderId), OrderId>,
    /// The client order ids of open orders that have one.
    client_ids: FxHashMap<OrderId, ClientOrderId>,
}

impl Orders {
    pub fn get(&self, idx: u32) -> &Order {
        match self.slots.get(idx as usize) {
            Some(order) => order,
            None => unreachable!("order slot {idx} out of range"),
        }
    }

    pub fn get_mut(&mut self, idx: u32) -> &mut Order {
        match self.slots.get_mut(idx as usize) {
            Some(order) => order,
            None => unreachable!("order slot {idx} out of range"),
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Rests `order` at the back of its price level and of its owner's list. Returns the
    /// level's total lots.
    pub fn insert(
        &mut self,
        mut order: Order,
        client_order_id: Option<ClientOrderId>,
        book: &mut Book,
        user: &mut UserList,
    ) -> u64 {
        let (id, side, price, lots) = (order.id, order.side, order.price, order.remaining);
        if let Some(client) = client_order_id {
            self.by_client.insert((order.user, client), id);
            self.client_ids.insert(id, client);
            order.has_client_id = true;
        }
        let idx = match self.free.pop() {
            Some(idx) => {
                *self.get_mut(idx) = order;
                idx
            }
            None => {
                let idx = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i != NIL)
                    .unwrap_or_else(|| unreachable!("more than 4 billion resting orders"));
                self.slots.push(order);
                idx
            }
        };
        self.by_id.insert(id, idx);

        let level =
            book.side_mut(side).entry(price).or_insert(Level { lots: 0, head: NIL, tail: NIL });
        level.lots += lots;
        let level_lots = level.lots;
        let tail = level.tail;
        level.tail = idx;
        if tail == NIL {
            level.head = idx;
        } else {
            self.get_mut(tail).next = idx;
        }
        self.get_mut(idx).prev = tail;

        let tail = user.tail;
        user.tail = idx;
        user.count += 1;
        if tail == NIL {
            user.head = idx;
        } else {
            self.get_mut(tail).user_next = idx;
        }
        self.get_mut(idx).user_prev = tail;
        level_lots
    }

    /// Takes the order out of `level` (which the caller drops once its `head` is `NIL`) and
    /// its owner's list, and frees its slot. Returns the order as it was.
    pub fn remove(&mut self, idx: u32, level: &mut Level, user: &mut UserList) -> Order {
        let order = self.get(idx).clone();
        level.lots -= order.remaining;
        if order.prev == NIL {
            level.head = order.next;
        } else {
            self.get_mut(order.prev).next = order.next;
        }
        if order.next == NIL {
            level.tail = order.prev;
        } else {
            self.get_mut(order.next).prev = order.prev;
        }

        if order.user_prev == NIL {
            user.head = order.user_next;
        } else {
            self.get_mut(order.user_prev).user_next = order.user_next;
        }
        if order.user_next == NIL {
            user.tail = order.user_prev;
        } else {
            self.get_mut(order.user_next).user_prev = order.user_prev;
        }
        user.count -= 1;

        self.by_id.remove(&order.id);
        if order.has_client_id
            && let Some(client) = self.client_ids.remove(&order.id)
        {
            self.by_client.remove(&(order.user, client));
        }
        self.free.push(idx);
        order
    }

    /// [`Orders::remove`] for an order whose level the caller has not borrowed; drops the level
    /// if it empties. Returns the order and the level's remaining lots.
    pub fn remove_from_book(
        &mut self,
        idx: u32,
        book: &mut Book,
        user: &mut UserList,
    ) -> (Order, u64) {
        let (side, price) = {
            let order = self.get(idx);
            (order.side, order.price)
        };
        let levels = book.side_mut(side);
        let Some(level) = levels.get_mut(&price) else {
            unreachable!("order slot {idx} rests at a missing level")
        };
        let order = self.remove(idx, level, user);
        let lots = level.lots;
        if level.head == NIL {
            levels.remove(&price);
        }
        (order, lots)
    }

    /// Lowers a resting order's remaining quantity by a fill of `lots`.
    pub fn fill(&mut self, idx: u32, level: &mut Level, lots: u64) -> &Order {
        level.lots -= lots;
        let order = self.get_mut(idx);
        order.remaining -= lots;
        order
    }

    /// The client order id of an open order, if it has one.
    pub fn client_order_id(&self, order: &Order) -> Option<ClientOrderId> {
        if order.has_client_id { self.client_ids.get(&order.id).copied() } else { None }
    }

    /// The slot after `idx` in its level's queue.
    pub fn next_in_level(&self, idx: u32) -> u32 {
        self.get(idx).next
    }

    /// The slot after `idx` in its owner's list.
    pub fn next_of_user(&self, idx: u32) -> u32 {
        self.get(idx).user_next
    }

    /// The slots of one level, oldest first.
    pub fn level_iter<'a>(&'a self, level: &Level) -> impl Iterator<Item = u32> + 'a {
        let mut at = level.head;
        std::iter::from_fn(move || {
            if at == NIL {
                return None;
            }
            let idx = at;
            at = self.next_in_level(idx);
            Some(idx)
        })
    }

    /// The slots of one user's open orders, oldest first.
    pub fn user_iter<'a>(&'a self, list: &UserList) -> impl Iterator<Item = u32> + 'a {
        let mut at = list.head;
        std::iter::from_fn(move || {
            if at == NIL {
                return None;
            }
            let idx = at;
            at = self.next_of_user(idx);
            Some(idx)
        })
    }
}
