//! Order placement, matching and cancellation: price-time priority, trades at the maker's price.
//!
//! Funds: an order is admitted only if its lock is available (a sell its quantity; a limit buy
//! its notional at the limit plus the fee at the higher of the market's rates, rounded up; a
//! market order its budget), and each fill pays from that lock. The taker's account is written
//! once, after matching, with the lock and the spending together; a resting buy's lock is kept equal to
//! what its remaining quantity needs, so price improvement and unused fee reserve return to the
//! buyer at once. Whatever a finished order did not spend goes back to available. Fees are taken
//! in the quote asset from both sides, rounded down, into the asset's fee account.

use crate::book::{NIL, Order, crosses};
use crate::command::{OrderRef, OrderType, PlaceOrder, Side, StpMode, TimeInForce};
use crate::event::{EndReason, Event, Reject};
use crate::exchange::{Exchange, Market, OPEN_ORDERS_PER_USER_MAX};
use crate::ids::{ClientOrderId, MarketId, OrderId, TradeId, UserId};
use crate::market::MarketStatus;
use crate::market::{affordable_lots, buy_need, div_rem, fee, notional};

/// Why a taker stopped before its quantity was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    SelfTrade,
    /// The balance a market order could spend ran out.
    Funds,
    /// A quote-amount order spent its amount (as far as whole lots allow).
    QuoteReached,
}

/// An incoming order while it matches.
#[derive(Debug)]
struct Taker {
    order: OrderId,
    user: UserId,
    side: Side,
    stp: StpMode,
    limit: Option<u64>,
    /// Lots still wanted; `u64::MAX` for quote-amount orders.
    lots_left: u64,
    quantity: u64,
    /// A quote-amount sell stops when its notional reaches this.
    quote_left: Option<u128>,
    /// What was locked in the spend asset (quote for buys, base for sells).
    lock: u128,
    /// Market orders: fills are capped by what the lock can still pay.
    budget_binds: bool,
    quote_order: bool,
    rests: bool,
    fee_ppm: u32,
    client_order_id: Option<ClientOrderId>,
    filled: u64,
    spent: u128,
    received: u128,
    stop: Option<Stop>,
}

/// The spend-asset amount a resting order of `lots` needs locked. Resting orders were checked
/// to fit at placement (and need shrinks with lots), so overflow here is corruption.
pub(crate) fn resting_need(m: &Market, side: Side, ticks: u64, lots: u64, fee_ppm: u32) -> u128 {
    need_on_grid(m.grid.tick_lot_cost, m.spec.lot, side, ticks, lots, fee_ppm)
}

fn need_on_grid(cost: u128, lot: u128, side: Side, ticks: u64, lots: u64, fee_ppm: u32) -> u128 {
    let need = match side {
        Side::Buy => buy_need(ticks, lots, cost, fee_ppm),
        Side::Sell => u128::from(lots).checked_mul(lot),
    };
    need.unwrap_or_else(|| unreachable!("resting order need overflowed"))
}

fn to_i128(amount: u128) -> i128 {
    // Every amount here is bounded by a balance, which is an i128.
    i128::try_from(amount).unwrap_or_else(|_| unreachable!("amount {amount} exceeds i128"))
}

impl Exchange {
    pub(crate) fn place(&mut self, p: &PlaceOrder, out: &mut Vec<Event>) {
        match self.admit(p) {
            Ok(taker) => self.execute(p, taker, out),
            Err(reason) => out.push(Event::OrderRejected {
                user: p.user,
                market: p.market,
                client_order_id: p.client_order_id,
                reason,
            }),
        }
    }

    /// Every check that can refuse an order; changes nothing.
    fn admit(&self, p: &PlaceOrder) -> Result<Taker, Reject> {
        let m = self.market(p.market).ok_or(Reject::UnknownMarket)?;
        if m.status == MarketStatus::Halted {
            return Err(Reject::MarketHalted);
        }
        let to_lots = |quantity: u128| -> Result<u64, Reject> {
            if quantity == 0 {
                return Err(Reject::QuantityZero);
            }
            let (lots, rem) = div_rem(quantity, m.spec.lot);
            if rem != 0 {
                return Err(Reject::QuantityOffLot);
            }
            let lots = u64::try_from(lots).map_err(|_| Reject::QuantityAboveMax)?;
            if lots < m.grid.min_lots {
                return Err(Reject::QuantityBelowMin);
            }
            if lots > m.grid.max_lots {
                return Err(Reject::QuantityAboveMax);
            }
            Ok(lots)
        };
        let (limit, lots, tif) = match p.order_type {
            OrderType::Limit { price, quantity, time_in_force } => {
                if price == 0 {
                    return Err(Reject::PriceZero);
                }
                let (ticks, rem) = div_rem(price, m.spec.tick);
                if rem != 0 {
                    return Err(Reject::PriceOffTick);
                }
                let ticks = u64::try_from(ticks).map_err(|_| Reject::Overflow)?;
                let lots = to_lots(quantity)?;
                // Bounded by what a balance (an i128) could ever pay.
                let notional = notional(ticks, lots, m.grid.tick_lot_cost)
                    .filter(|&n| i128::try_from(n).is_ok())
                    .ok_or(Reject::Overflow)?;
                if notional < m.spec.min_notional {
                    return Err(Reject::NotionalBelowMin);
                }
                (Some(ticks), Some(lots), time_in_force)
            }
            OrderType::Market { quantity } => (None, Some(to_lots(quantity)?), TimeInForce::Ioc),
            OrderType::MarketQuote { amount } => {
                if amount == 0 {
                    return Err(Reject::AmountZero);
                }
                if amount < m.spec.min_notional {
                    return Err(Reject::NotionalBelowMin);
                }
                (None, None, TimeInForce::Ioc)
            }
        };
        let user = self.users.get(&p.user);
        if let Some(client) = p.client_order_id
            && self.orders.by_client.contains_key(&(p.user, client))
        {
            return Err(Reject::DuplicateClientOrderId);
        }
        let rests = matches!(tif, TimeInForce::Gtc | TimeInForce::PostOnly);
        if rests && user.is_some_and(|u| u.open.count >= OPEN_ORDERS_PER_USER_MAX) {
            return Err(Reject::TooManyOpenOrders);
        }
        if let (TimeInForce::PostOnly, Some(limit)) = (tif, limit)
            && m.book.best_opposite(p.side).is_some_and(|best| crosses(p.side, limit, best))
        {
            return Err(Reject::PostOnlyWouldTake);
        }
        if let (TimeInForce::Fok, Some(limit), Some(lots)) = (tif, limit, lots)
            && self.fillable(m, p, limit, lots) < lots
        {
            return Err(Reject::FokNotFillable);
        }

        let (spend, fee_ppm) = match p.side {
            Side::Buy => (m.spec.quote, m.spec.fee_ppm_max()),
            Side::Sell => (m.spec.base, m.spec.fee_ppm_max()),
        };
        let available = user.map_or(0, |u| u.get(spend).available).max(0).cast_unsigned();
        let lock = match (p.side, p.order_type, limit, lots) {
            (Side::Buy, OrderType::Limit { .. }, Some(ticks), Some(lots)) => {
                buy_need(ticks, lots, m.grid.tick_lot_cost, fee_ppm).ok_or(Reject::Overflow)?
            }
            (Side::Sell, _, _, Some(lots)) => {
                u128::from(lots).checked_mul(m.spec.lot).ok_or(Reject::Overflow)?
            }
            (Side::Buy, OrderType::MarketQuote { amount }, _, _) => amount,
            // A market buy by quantity, or a sell by quote amount, may spend whatever is
            // available: the matcher stops where it runs out.
            _ => available,
        };
        if lock == 0 || lock > available {
            return Err(Reject::InsufficientFunds);
        }
        let quote_order = lots.is_none();
        Ok(Taker {
            order: OrderId(self.next_order),
            user: p.user,
            side: p.side,
            stp: p.stp,
            limit,
            lots_left: lots.unwrap_or(u64::MAX),
            quantity: lots.unwrap_or(0),
            quote_left: match (p.side, p.order_type) {
                (Side::Sell, OrderType::MarketQuote { amount }) => Some(amount),
                _ => None,
            },
            lock,
            budget_binds: limit.is_none() && (p.side == Side::Buy || quote_order),
            quote_order,
            rests,
            fee_ppm,
            client_order_id: p.client_order_id,
            filled: 0,
            spent: 0,
            received: 0,
            stop: None,
        })
    }

    /// How many of `want` lots an order could fill at once, counting self-trade prevention.
    fn fillable(&self, m: &Market, p: &PlaceOrder, limit: u64, want: u64) -> u64 {
        let levels: Box<dyn Iterator<Item = (&u64, &crate::book::Level)>> = match p.side {
            Side::Buy => Box::new(m.book.asks.iter()),
            Side::Sell => Box::new(m.book.bids.iter().rev()),
        };
        let mut total = 0u64;
        for (&price, level) in levels {
            if !crosses(p.side, limit, price) {
                break;
            }
            for idx in self.orders.level_iter(level) {
                let maker = self.orders.get(idx);
                if maker.user == p.user && p.stp != StpMode::None {
                    if p.stp == StpMode::ExpireMaker {
                        continue;
                    }
                    return total;
                }
                total = total.saturating_add(maker.remaining);
                if total >= want {
                    return total;
                }
            }
        }
        total
    }

    fn execute(&mut self, p: &PlaceOrder, mut t: Taker, out: &mut Vec<Event>) {
        self.next_order += 1;
        let Some(m) = self.market(p.market) else { unreachable!("admitted order's market") };
        let (base, quote, lot) = (m.spec.base, m.spec.quote, m.spec.lot);
        let (spend, receive) = match t.side {
            Side::Buy => (quote, base),
            Side::Sell => (base, quote),
        };
        // The lock is applied with the settlement below, in one lookup of the user: `admit`
        // checked that it is available, and nothing in between can take from this user's
        // available balance (a self-trade maker fill only adds to it).
        out.push(Event::OrderAccepted {
            order: t.order,
            user: t.user,
            market: p.market,
            side: t.side,
            order_type: p.order_type,
            client_order_id: p.client_order_id,
            stp: p.stp,
        });
        let post_only =
            matches!(p.order_type, OrderType::Limit { time_in_force: TimeInForce::PostOnly, .. });
        if !post_only {
            self.match_taker(p.market, &mut t, out);
        }

        let filled = u128::from(t.filled) * lot;
        let rests = t.rests && t.lots_left > 0 && t.stop.is_none();
        let Exchange { markets, orders, users, .. } = self;
        let Some(m) = markets.get_mut(p.market.0 as usize - 1) else { unreachable!() };
        let user = users.entry(t.user).or_default();
        let keep = if rests {
            let ticks = t.limit.unwrap_or_else(|| unreachable!("resting orders have a limit"));
            let keep = resting_need(m, t.side, ticks, t.lots_left, t.fee_ppm);
            let order = Order::new(
                t.order,
                t.user,
                p.market,
                t.side,
                t.stp,
                ticks,
                t.quantity,
                t.lots_left,
                t.fee_ppm,
            );
            let level_lots = orders.insert(order, t.client_order_id, &mut m.book, &mut user.open);
            m.update_id += 1;
            out.push(Event::BookLevelChanged {
                market: p.market,
                side: t.side,
                price: u128::from(ticks) * m.spec.tick,
                quantity: u128::from(level_lots) * lot,
                update_id: m.update_id,
            });
            if t.filled > 0 {
                out.push(Event::OrderPartiallyFilled {
                    order: t.order,
                    user: t.user,
                    market: p.market,
                    filled,
                    remaining: u128::from(t.lots_left) * lot,
                });
            }
            keep
        } else {
            let done = t.lots_left == 0
                || (t.quote_order && t.stop == Some(Stop::QuoteReached) && t.filled > 0);
            if done {
                out.push(Event::OrderFilled {
                    order: t.order,
                    user: t.user,
                    market: p.market,
                    filled,
                });
            } else {
                out.push(Event::OrderEnded {
                    order: t.order,
                    user: t.user,
                    market: p.market,
                    filled,
                    remaining: if t.quote_order { 0 } else { u128::from(t.lots_left) * lot },
                    reason: match t.stop {
                        Some(Stop::SelfTrade) => EndReason::SelfTrade,
                        Some(Stop::Funds) => EndReason::Funds,
                        Some(Stop::QuoteReached) | None => EndReason::Unfilled,
                    },
                });
            }
            0
        };

        assert!(t.spent + keep <= t.lock, "an order spent more than it locked");
        let account = user.account(spend);
        account.locked += to_i128(keep);
        account.available -= to_i128(keep + t.spent);
        out.push(Self::balance_event(t.user, spend, account));
        if t.received > 0 {
            let account = user.account(receive);
            account.available += to_i128(t.received);
            out.push(Self::balance_event(t.user, receive, account));
        }
    }

    fn match_taker(&mut self, market: MarketId, t: &mut Taker, out: &mut Vec<Event>) {
        let Exchange { markets, orders, users, assets, .. } = self;
        let Some(m) = markets.get_mut(market.0 as usize - 1) else { unreachable!() };
        let (tick, lot, cost) = (m.spec.tick, m.spec.lot, m.grid.tick_lot_cost);
        let (maker_ppm, taker_ppm) = (m.spec.maker_fee_ppm, m.spec.taker_fee_ppm);
        let (base, quote) = (m.spec.base, m.spec.quote);
        let maker_side = t.side.opposite();
        let mut fees: u128 = 0;

        while t.lots_left > 0 && t.stop.is_none() {
            let levels = m.book.side_mut(maker_side);
            let entry = match maker_side {
                Side::Sell => levels.first_entry(),
                Side::Buy => levels.last_entry(),
            };
            let Some(mut entry) = entry else { break };
            let price = *entry.key();
            if t.limit.is_some_and(|limit| !crosses(t.side, limit, price)) {
                break;
            }
            let level = entry.get_mut();
            let mut changed = false;
            while level.head != NIL && t.lots_left > 0 {
                let idx = level.head;
                let maker = orders.get(idx);
                let maker_user = maker.user;
                if maker_user == t.user && t.stp != StpMode::None {
                    if t.stp == StpMode::ExpireTaker {
                        t.stop = Some(Stop::SelfTrade);
                        break;
                    }
                    let Some(owner) = users.get_mut(&maker_user) else { unreachable!() };
                    let gone = orders.remove(idx, level, &mut owner.open);
                    let need = need_on_grid(
                        cost,
                        lot,
                        gone.side,
                        gone.price,
                        gone.remaining,
                        gone.fee_ppm,
                    );
                    let spend = if gone.side == Side::Buy { quote } else { base };
                    let account = owner.account(spend);
                    account.locked -= to_i128(need);
                    account.available += to_i128(need);
                    out.push(Event::OrderEnded {
                        order: gone.id,
                        user: gone.user,
                        market,
                        filled: u128::from(gone.filled()) * lot,
                        remaining: u128::from(gone.remaining) * lot,
                        reason: EndReason::SelfTrade,
                    });
                    out.push(Self::balance_event(maker_user, spend, account));
                    changed = true;
                    if t.stp == StpMode::ExpireBoth {
                        t.stop = Some(Stop::SelfTrade);
                        break;
                    }
                    continue;
                }

                let mut lots = t.lots_left.min(maker.remaining);
                let mut cap_stop = Stop::Funds;
                if let Some(quote_left) = t.quote_left {
                    let per_lot = u128::from(price) * cost;
                    lots = lots.min(u64::try_from(quote_left / per_lot).unwrap_or(u64::MAX));
                    cap_stop = Stop::QuoteReached;
                }
                if t.budget_binds {
                    let budget = t.lock - t.spent;
                    let affordable = match t.side {
                        Side::Buy => affordable_lots(budget, price, cost, taker_ppm),
                        Side::Sell => u64::try_from(budget / lot).unwrap_or(u64::MAX),
                    };
                    if affordable < lots {
                        lots = affordable;
                        cap_stop = if t.quote_order { Stop::QuoteReached } else { Stop::Funds };
                    }
                }
                if lots == 0 {
                    t.stop = Some(cap_stop);
                    break;
                }

                // Maker price, maker quantity: both validated when the maker was placed.
                let notional = u128::from(price) * u128::from(lots) * cost;
                let qty = u128::from(lots) * lot;
                let taker_fee = fee(notional, taker_ppm);
                let maker_side_order_fee_ppm = maker.fee_ppm;
                let maker_id = maker.id;
                let before = maker.remaining;
                let maker_fee = match maker_side {
                    Side::Buy => fee(notional, maker_ppm.min(maker_side_order_fee_ppm)),
                    Side::Sell => fee(notional, maker_ppm),
                };
                let after = orders.fill(idx, level, lots).remaining;
                changed = true;

                let Some(owner) = users.get_mut(&maker_user) else { unreachable!() };
                match maker_side {
                    Side::Sell => {
                        owner.account(base).locked -= to_i128(qty);
                        owner.account(quote).available += to_i128(notional - maker_fee);
                    }
                    Side::Buy => {
                        let need = |lots| {
                            need_on_grid(
                                cost,
                                lot,
                                Side::Buy,
                                price,
                                lots,
                                maker_side_order_fee_ppm,
                            )
                        };
                        let released = need(before) - need(after);
                        let account = owner.account(quote);
                        account.locked -= to_i128(released);
                        account.available += to_i128(released - notional - maker_fee);
                        owner.account(base).available += to_i128(qty);
                    }
                }
                fees += maker_fee + taker_fee;
                match t.side {
                    Side::Buy => {
                        t.spent += notional + taker_fee;
                        t.received += qty;
                    }
                    Side::Sell => {
                        t.spent += qty;
                        t.received += notional - taker_fee;
                    }
                }
                if let Some(quote_left) = t.quote_left.as_mut() {
                    *quote_left -= notional;
                }
                if t.lots_left != u64::MAX {
                    t.lots_left -= lots;
                }
                t.filled += lots;

                let trade = TradeId(m.next_trade);
                m.next_trade += 1;
                out.push(Event::Trade {
                    market,
                    trade,
                    price: u128::from(price) * tick,
                    quantity: qty,
                    notional,
                    taker_side: t.side,
                    maker_order: maker_id,
                    maker_user,
                    maker_fee,
                    taker_order: t.order,
                    taker_user: t.user,
                    taker_fee,
                });
                let maker_filled = u128::from(orders.get(idx).filled()) * lot;
                if after == 0 {
                    orders.remove(idx, level, &mut owner.open);
                    out.push(Event::OrderFilled {
                        order: maker_id,
                        user: maker_user,
                        market,
                        filled: maker_filled,
                    });
                } else {
                    out.push(Event::OrderPartiallyFilled {
                        order: maker_id,
                        user: maker_user,
                        market,
                        filled: maker_filled,
                        remaining: u128::from(after) * lot,
                    });
                }
                out.push(Self::balance_event(maker_user, base, &owner.get(base)));
                out.push(Self::balance_event(maker_user, quote, &owner.get(quote)));
            }
            let level_lots = level.lots;
            if level.head == NIL {
                entry.remove();
            }
            if changed {
                m.update_id += 1;
                out.push(Event::BookLevelChanged {
                    market,
                    side: maker_side,
                    price: u128::from(price) * tick,
                    quantity: u128::from(level_lots) * lot,
                    update_id: m.update_id,
                });
            }
        }
        if fees > 0
            && let Some(asset) = assets.get_mut(quote.0 as usize - 1)
        {
            asset.fees += to_i128(fees);
        }
    }

    pub(crate) fn cancel(
        &mut self,
        user: UserId,
        market: Option<MarketId>,
        order: OrderRef,
        out: &mut Vec<Event>,
    ) {
        let id = match order {
            OrderRef::Id(id) => Some(id),
            OrderRef::Client(client) => self.orders.by_client.get(&(user, client)).copied(),
        };
        let idx = id.and_then(|id| self.orders.by_id.get(&id).copied()).filter(|&idx| {
            let o = self.orders.get(idx);
            o.user == user && market.is_none_or(|m| m == o.market)
        });
        match idx {
            Some(idx) => self.end_resting(idx, EndReason::Canceled, out),
            // Another user's order is reported exactly like a missing one.
            None => out.push(Event::Rejected { user: Some(user), reason: Reject::UnknownOrder }),
        }
    }

    pub(crate) fn cancel_all(
        &mut self,
        user: UserId,
        market: Option<MarketId>,
        out: &mut Vec<Event>,
    ) {
        let mut slots = std::mem::take(&mut self.scratch);
        slots.clear();
        if let Some(record) = self.users.get(&user) {
            slots.extend(
                self.orders
                    .user_iter(&record.open)
                    .filter(|&idx| market.is_none_or(|m| self.orders.get(idx).market == m)),
            );
        }
        for &idx in &slots {
            self.end_resting(idx, EndReason::Canceled, out);
        }
        self.scratch = slots;
    }

    /// Takes a resting order off the book and releases its lock.
    fn end_resting(&mut self, idx: u32, reason: EndReason, out: &mut Vec<Event>) {
        let Exchange { markets, orders, users, .. } = self;
        let (market, owner) = {
            let o = orders.get(idx);
            (o.market, o.user)
        };
        let Some(m) = markets.get_mut(market.0 as usize - 1) else { unreachable!() };
        let Some(record) = users.get_mut(&owner) else { unreachable!() };
        let (order, level_lots) = orders.remove_from_book(idx, &mut m.book, &mut record.open);
        let need = resting_need(m, order.side, order.price, order.remaining, order.fee_ppm);
        let spend = if order.side == Side::Buy { m.spec.quote } else { m.spec.base };
        let account = record.account(spend);
        account.locked -= to_i128(need);
        account.available += to_i128(need);
        m.update_id += 1;
        out.push(Event::OrderEnded {
            order: order.id,
            user: owner,
            market,
            filled: u128::from(order.filled()) * m.spec.lot,
            remaining: u128::from(order.remaining) * m.spec.lot,
            reason,
        });
        out.push(Self::balance_event(owner, spend, account));
        out.push(Event::BookLevelChanged {
            market,
            side: order.side,
            price: u128::from(order.price) * m.spec.tick,
            quantity: u128::from(level_lots) * m.spec.lot,
            update_id: m.update_id,
        });
    }
}
