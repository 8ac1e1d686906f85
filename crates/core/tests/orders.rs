//! Every order type, self-trade prevention mode and rejection reason, with exact balances.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use OrderType::*;
use Side::*;
use TimeInForce::*;
use bourse_core::*;
use common::*;

fn acct(available: &str, locked: &str) -> Account {
    Account { available: usdt(available) as i128, locked: usdt(locked) as i128, held: 0 }
}

#[test]
fn resting_buy_locks_notional_plus_fee_reserve_and_cancel_releases_it() {
    let mut fx = Fx::new();
    fx.deposit(1, USDT, usdt("1000"));
    let events = fx.limit(1, Buy, "100", "1", Gtc);
    let id = order_id(&events);
    // 100 USDT plus 0.2 % (the higher of maker and taker) reserved for fees.
    assert_eq!(fx.bal(1, USDT), acct("899.8", "100.2"));
    assert!(events.iter().any(|e| matches!(e, Event::BookLevelChanged { side: Buy, price, quantity, update_id: 1, .. } if *price == usdt("100") && *quantity == btc("1"))));
    let events = fx.run(Command::Cancel { user: UserId(1), market: None, order: OrderRef::Id(id) });
    assert_eq!(ended(&events, id), Some(EndReason::Canceled));
    assert_eq!(fx.bal(1, USDT), acct("1000", "0"));
    assert!(fx.x.depth(M, Buy, 10).is_empty());
}

#[test]
fn taker_trades_at_maker_price_and_gets_price_improvement_back() {
    let mut fx = Fx::new();
    fx.deposit(1, USDT, usdt("1000"));
    fx.deposit(2, BTC, btc("1"));
    let maker = order_id(&fx.limit(2, Sell, "99", "1", Gtc));
    let events = fx.limit(1, Buy, "100", "1", Gtc);
    let taker = order_id(&events);
    assert_eq!(trades(&events), vec![(usdt("99"), btc("1"))]);
    assert!(filled(&events, maker) && filled(&events, taker));
    // Buyer pays 99 + 0.2 % taker fee; the rest of the 100.2 lock came back.
    assert_eq!(fx.bal(1, USDT), acct("900.802", "0"));
    assert_eq!(fx.bal(1, BTC).available, btc("1") as i128);
    // Seller receives 99 - 0.1 % maker fee.
    assert_eq!(fx.bal(2, USDT), acct("98.901", "0"));
    assert_eq!(fx.bal(2, BTC), Account::default());
    assert_eq!(fx.fees(USDT), usdt("0.297") as i128);
    assert!(fx.x.depth(M, Sell, 10).is_empty() && fx.x.depth(M, Buy, 10).is_empty());
}

#[test]
fn price_time_priority() {
    let mut fx = Fx::new();
    for user in [2, 3, 4] {
        fx.deposit(user, BTC, btc("1"));
    }
    fx.deposit(1, USDT, usdt("1000"));
    let second = order_id(&fx.limit(2, Sell, "100", "1", Gtc));
    let third = order_id(&fx.limit(3, Sell, "100", "1", Gtc));
    let first = order_id(&fx.limit(4, Sell, "99.5", "1", Gtc));
    let events = fx.limit(1, Buy, "100", "2.5", Gtc);
    let makers: Vec<OrderId> = events
        .iter()
        .filter_map(|e| match e {
            Event::Trade { maker_order, .. } => Some(*maker_order),
            _ => None,
        })
        .collect();
    assert_eq!(makers, vec![first, second, third]);
    assert_eq!(fx.x.depth(M, Sell, 10), vec![(usdt("100"), btc("0.5"))]);
}

#[test]
fn partially_filled_resting_buy_keeps_exactly_what_its_remainder_needs() {
    let mut fx = Fx::new();
    fx.deposit(1, USDT, usdt("1000"));
    fx.deposit(2, BTC, btc("1"));
    let maker = order_id(&fx.limit(1, Buy, "100", "1", Gtc));
    let events = fx.limit(2, Sell, "100", "0.5", Gtc);
    assert!(events.iter().any(|e| matches!(e, Event::OrderPartiallyFilled { order, remaining, .. } if *order == maker && *remaining == btc("0.5"))));
    // Spent 50 + 0.05 maker fee; the remainder needs 50 + 0.1 reserve.
    assert_eq!(fx.bal(1, USDT), acct("899.85", "50.1"));
    assert_eq!(fx.bal(2, USDT), acct("49.9", "0"));
}

#[test]
fn ioc_remainder_expires_and_releases_its_lock() {
    let mut fx = Fx::new();
    fx.deposit(1, USDT, usdt("1000"));
    fx.deposit(2, BTC, btc("1"));
    fx.limit(2, Sell, "100", "1", Gtc);
    let events = fx.limit(1, Buy, "100", "2", Ioc);
    let id = order_id(&events);
    assert_eq!(trades(&events).len(), 1);
    assert_eq!(ended(&events, id), Some(EndReason::Unfilled));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::OrderEnded { remaining, .. } if *remaining == btc("1")))
    );
    assert_eq!(fx.bal(1, USDT), acct("899.8", "0"));
    assert!(fx.x.depth(M, Buy, 10).is_empty());
}

#[test]
fn fok_fills_completely_or_changes_nothing() {
    let mut fx = Fx::new();
    fx.deposit(1, USDT, usdt("1000"));
    fx.deposit(2, BTC, btc("2"));
    fx.limit(2, Sell, "100", "1", Gtc);
    fx.limit(2, Sell, "101", "1", Gtc);
    let before = fx.state();
    let events = fx.limit(1, Buy, "100", "2", Fok);
    assert_eq!(rejection(&events), Some(Reject::FokNotFillable));
    assert_eq!(fx.state(), before);
    let events = fx.limit(1, Buy, "101", "2", Fok);
    assert!(filled(&events, order_id(&events)));
    assert_eq!(trades(&events), vec![(usdt("100"), btc("1")), (usdt("101"), btc("1"))]);
}

#[test]
fn post_only_never_takes() {
    let mut fx = Fx::new();
    fx.deposit(1, USDT, usdt("1000"));
    fx.deposit(2, BTC, btc("1"));
    fx.limit(2, Sell, "100", "1", Gtc);
    let before = fx.state();
    assert_eq!(rejection(&fx.limit(1, Buy, "100", "1", PostOnly)), Some(Reject::PostOnlyWouldTake));
    assert_eq!(fx.state(), before);
    let events = fx.limit(1, Buy, "99.99", "1", PostOnly);
    assert!(trades(&events).is_empty());
    assert_eq!(fx.x.depth(M, Buy, 1), vec![(usdt("99.99"), btc("1"))]);
}

#[test]
fn market_sell_walks_the_book() {
    let mut fx = Fx::new();
    fx.deposit(1, USDT, usdt("1000"));
    fx.deposit(2, BTC, btc("1"));
    fx.limit(1, Buy, "100", "0.3", Gtc);
    fx.limit(1, Buy, "99", "0.3", Gtc);
    let events = fx.place(2, Sell, Market { quantity: btc("0.5") }, StpMode::ExpireTaker);
    assert_eq!(trades(&events), vec![(usdt("100"), btc("0.3")), (usdt("99"), btc("0.2"))]);
    assert!(filled(&events, order_id(&events)));
    // 30 + 19.8 = 49.8 notional, less 0.2 % taker fee.
    assert_eq!(fx.bal(2, USDT), acct("49.7004", "0"));
    assert_eq!(fx.bal(2, BTC).available, btc("0.5") as i128);
}

#[test]
fn market_buy_stops_where_the_balance_runs_out() {
    let mut fx = Fx::new();
    fx.deposit(1, USDT, usdt("50"));
    fx.deposit(2, BTC, btc("1"));
    fx.limit(2, Sell, "100", "1", Gtc);
    let events = fx.place(1, Buy, Market { quantity: btc("1") }, StpMode::ExpireTaker);
    let id = order_id(&events);
    assert_eq!(trades(&events), vec![(usdt("100"), btc("0.499"))]);
    assert_eq!(ended(&events, id), Some(EndReason::Funds));
    // 49.9 + 0.0998 fee.
    assert_eq!(fx.bal(1, USDT), acct("0.0002", "0"));
}

#[test]
fn market_order_on_an_empty_book_expires() {
    let mut fx = Fx::new();
    fx.deposit(1, BTC, btc("1"));
    let before = fx.bal(1, BTC);
    let events = fx.place(1, Sell, Market { quantity: btc("1") }, StpMode::ExpireTaker);
    assert_eq!(ended(&events, order_id(&events)), Some(EndReason::Unfilled));
    assert_eq!(fx.bal(1, BTC), before);
}

#[test]
fn quote_amount_orders_spend_at_most_the_amount() {
    let mut fx = Fx::new();
    fx.deposit(1, USDT, usdt("1000"));
    fx.deposit(2, BTC, btc("2"));
    fx.limit(2, Sell, "100", "1", Gtc);
    let events = fx.place(1, Buy, MarketQuote { amount: usdt("50") }, StpMode::ExpireTaker);
    assert!(filled(&events, order_id(&events)));
    assert_eq!(trades(&events), vec![(usdt("100"), btc("0.499"))]);
    assert_eq!(fx.bal(1, USDT), acct("950.0002", "0"));

    // The rest of the ask is still there; a bid below it is what the next order meets.
    fx.limit(1, Buy, "99", "1", Gtc);
    let events = fx.place(2, Sell, MarketQuote { amount: usdt("50") }, StpMode::ExpireTaker);
    assert!(filled(&events, order_id(&events)));
    // 0.505 BTC at 99 is 49.995: one more lot would pass 50.
    assert_eq!(trades(&events), vec![(usdt("99"), btc("0.505"))]);
}

fn self_trade(stp: StpMode) -> (Fx, OrderId, Vec<Event>) {
    let mut fx = Fx::new();
    fx.deposit(1, USDT, usdt("1000"));
    fx.deposit(1, BTC, btc("1"));
    fx.deposit(2, BTC, btc("1"));
    let maker = order_id(&fx.limit(1, Sell, "100", "1", Gtc));
    fx.limit(2, Sell, "100", "1", Gtc);
    let order_type = Limit { price: usdt("100"), quantity: btc("1"), time_in_force: Gtc };
    let events = fx.place(1, Buy, order_type, stp);
    (fx, maker, events)
}

#[test]
fn stp_expire_taker() {
    let (fx, maker, events) = self_trade(StpMode::ExpireTaker);
    assert!(trades(&events).is_empty());
    assert_eq!(ended(&events, order_id(&events)), Some(EndReason::SelfTrade));
    assert_eq!(ended(&events, maker), None);
    assert_eq!(fx.x.depth(M, Sell, 1), vec![(usdt("100"), btc("2"))]);
}

#[test]
fn stp_expire_maker_then_matches_the_next_order() {
    let (fx, maker, events) = self_trade(StpMode::ExpireMaker);
    assert_eq!(ended(&events, maker), Some(EndReason::SelfTrade));
    assert!(filled(&events, order_id(&events)));
    assert!(events.iter().any(|e| matches!(e, Event::Trade { maker_user: UserId(2), .. })));
    assert_eq!(fx.bal(1, BTC).available, btc("2") as i128);
}

#[test]
fn stp_expire_both() {
    let (fx, maker, events) = self_trade(StpMode::ExpireBoth);
    assert_eq!(ended(&events, maker), Some(EndReason::SelfTrade));
    assert_eq!(ended(&events, order_id(&events)), Some(EndReason::SelfTrade));
    assert!(trades(&events).is_empty());
    assert_eq!(fx.x.depth(M, Sell, 1), vec![(usdt("100"), btc("1"))]);
}

#[test]
fn stp_none_trades_with_itself_and_pays_both_fees() {
    let (fx, _, events) = self_trade(StpMode::None);
    assert_eq!(trades(&events), vec![(usdt("100"), btc("1"))]);
    // Paid 100 + 0.2, received 100 - 0.1.
    assert_eq!(fx.bal(1, USDT), acct("999.7", "0"));
    assert_eq!(fx.fees(USDT), usdt("0.3") as i128);
}

#[test]
fn cancel_by_client_id_and_cancel_all() {
    let mut fx = Fx::new();
    fx.run(Command::AddAsset(AssetSpec { symbol: Symbol::new("ETH").unwrap(), scale: 18 }));
    fx.run(Command::AddMarket(MarketSpec {
        base: AssetId(3),
        quote: USDT,
        tick: usdt("0.01"),
        lot: 1_000_000_000_000_000,
        min_qty: 1_000_000_000_000_000,
        max_qty: 1_000_000_000_000_000_000_000,
        min_notional: 0,
        maker_fee_ppm: 0,
        taker_fee_ppm: 0,
    }));
    fx.deposit(1, USDT, usdt("10000"));
    let client = ClientOrderId::new("mine-1").unwrap();
    let place = |market, client_order_id| {
        Command::Place(PlaceOrder {
            user: UserId(1),
            market,
            side: Buy,
            order_type: Limit { price: usdt("10"), quantity: btc("1"), time_in_force: Gtc },
            client_order_id,
            stp: StpMode::ExpireTaker,
        })
    };
    let mut eth = place(MarketId(2), None);
    if let Command::Place(p) = &mut eth {
        p.order_type =
            Limit { price: usdt("10"), quantity: 1_000_000_000_000_000_000, time_in_force: Gtc };
    }
    let first = order_id(&fx.run(place(M, Some(client))));
    assert_eq!(rejection(&fx.run(place(M, Some(client)))), Some(Reject::DuplicateClientOrderId));
    // Another user cannot cancel it, by id or by client id.
    let theirs = Command::Cancel { user: UserId(2), market: None, order: OrderRef::Id(first) };
    assert_eq!(rejection(&fx.run(theirs)), Some(Reject::UnknownOrder));
    let theirs = Command::Cancel { user: UserId(2), market: None, order: OrderRef::Client(client) };
    assert_eq!(rejection(&fx.run(theirs)), Some(Reject::UnknownOrder));
    let wrong_market =
        Command::Cancel { user: UserId(1), market: Some(MarketId(2)), order: OrderRef::Id(first) };
    assert_eq!(rejection(&fx.run(wrong_market)), Some(Reject::UnknownOrder));
    let events = fx.run(Command::Cancel {
        user: UserId(1),
        market: Some(M),
        order: OrderRef::Client(client),
    });
    assert_eq!(ended(&events, first), Some(EndReason::Canceled));
    // The client id is free again once its order is gone.
    order_id(&fx.run(place(M, Some(client))));
    order_id(&fx.run(place(M, None)));
    order_id(&fx.run(eth.clone()));
    order_id(&fx.run(eth));
    let events = fx.run(Command::CancelAll { user: UserId(1), market: Some(MarketId(2)) });
    assert_eq!(events.iter().filter(|e| matches!(e, Event::OrderEnded { .. })).count(), 2);
    assert_eq!(fx.x.open_orders_count(), 2);
    let events = fx.run(Command::CancelAll { user: UserId(1), market: None });
    assert_eq!(events.iter().filter(|e| matches!(e, Event::OrderEnded { .. })).count(), 2);
    assert_eq!(fx.x.open_orders_count(), 0);
    assert_eq!(fx.bal(1, USDT), acct("10000", "0"));
}

#[test]
fn halted_market_accepts_cancels_only() {
    let mut fx = Fx::new();
    fx.deposit(1, USDT, usdt("1000"));
    let id = order_id(&fx.limit(1, Buy, "100", "1", Gtc));
    fx.run(Command::SetMarketStatus { market: M, status: MarketStatus::Halted });
    assert_eq!(rejection(&fx.limit(1, Buy, "100", "1", Gtc)), Some(Reject::MarketHalted));
    let events =
        fx.run(Command::Cancel { user: UserId(1), market: Some(M), order: OrderRef::Id(id) });
    assert_eq!(ended(&events, id), Some(EndReason::Canceled));
    fx.run(Command::SetMarketStatus { market: M, status: MarketStatus::Trading });
    order_id(&fx.limit(1, Buy, "100", "1", Gtc));
}

#[test]
fn a_fee_rise_does_not_overdraw_a_resting_buy() {
    let mut fx = Fx::new();
    fx.deposit(1, USDT, usdt("1000"));
    fx.deposit(2, BTC, btc("1"));
    fx.limit(1, Buy, "100", "1", Gtc);
    fx.run(Command::SetFees { market: M, maker_fee_ppm: 50_000, taker_fee_ppm: 50_000 });
    fx.limit(2, Sell, "100", "1", Gtc);
    // The maker pays at most the 0.2 % its lock reserved.
    assert_eq!(fx.bal(1, USDT), acct("899.8", "0"));
}

#[test]
fn every_order_rejection_changes_nothing() {
    let mut fx = Fx::new();
    fx.deposit(1, USDT, usdt("1000"));
    fx.deposit(2, BTC, btc("1"));
    fx.limit(2, Sell, "100", "1", Gtc);
    let lim = |price: u128, quantity: u128| Limit { price, quantity, time_in_force: Gtc };
    let cases: Vec<(PlaceOrder, Reject)> = vec![
        (MarketId(9), Buy, lim(usdt("1"), btc("1")), Reject::UnknownMarket),
        (M, Buy, lim(0, btc("1")), Reject::PriceZero),
        (M, Buy, lim(usdt("1"), 0), Reject::QuantityZero),
        (M, Buy, lim(usdt("1.001"), btc("1")), Reject::PriceOffTick),
        (M, Buy, lim(usdt("1"), btc("1.00001")), Reject::QuantityOffLot),
        (M, Buy, lim(usdt("1"), btc("1001")), Reject::QuantityAboveMax),
        (M, Buy, lim(usdt("1"), btc("0.5")), Reject::NotionalBelowMin),
        (M, Buy, lim(usdt("99"), btc("100")), Reject::InsufficientFunds),
        (M, Sell, lim(usdt("99"), btc("1")), Reject::InsufficientFunds),
        (M, Buy, lim(u128::MAX - u128::MAX % usdt("0.01"), btc("1")), Reject::Overflow),
        (M, Buy, Market { quantity: btc("0.00005") }, Reject::QuantityOffLot),
        (M, Sell, Market { quantity: btc("1") }, Reject::InsufficientFunds),
        (M, Buy, MarketQuote { amount: 0 }, Reject::AmountZero),
        (M, Buy, MarketQuote { amount: usdt("0.5") }, Reject::NotionalBelowMin),
        (M, Buy, MarketQuote { amount: usdt("5000") }, Reject::InsufficientFunds),
    ]
    .into_iter()
    .map(|(market, side, order_type, reason)| {
        (
            PlaceOrder {
                user: UserId(1),
                market,
                side,
                order_type,
                client_order_id: None,
                stp: StpMode::ExpireTaker,
            },
            reason,
        )
    })
    .collect();
    for (place, reason) in cases {
        let before = fx.state();
        let events = fx.run(Command::Place(place));
        assert_eq!(rejection(&events), Some(reason), "{place:?}");
        assert_eq!(events.len(), 1);
        assert_eq!(fx.state(), before, "{place:?}");
    }
    // Below the minimum quantity needs a market with a larger minimum.
    fx.run(Command::ChangeMarket {
        market: M,
        change: MarketChange { min_qty: Some(btc("0.01")), ..Default::default() },
    });
    assert_eq!(rejection(&fx.limit(1, Buy, "100", "0.001", Gtc)), Some(Reject::QuantityBelowMin));
}

#[test]
fn too_many_open_orders() {
    let mut fx = Fx::new();
    fx.deposit(1, USDT, usdt("1000000"));
    for _ in 0..OPEN_ORDERS_PER_USER_MAX {
        order_id(&fx.limit(1, Buy, "1", "1", Gtc));
    }
    assert_eq!(rejection(&fx.limit(1, Buy, "1", "1", Gtc)), Some(Reject::TooManyOpenOrders));
    // Orders that cannot rest are still welcome.
    let events = fx.limit(1, Buy, "1", "1", Ioc);
    assert_eq!(ended(&events, order_id(&events)), Some(EndReason::Unfilled));
}

#[test]
fn deposits_are_credited_once_per_key() {
    let mut fx = Fx::new();
    let key = ExternalKey::new("txid:0").unwrap();
    let deposit = Command::Deposit { user: UserId(1), asset: BTC, amount: btc("1"), key };
    fx.run(deposit.clone());
    let before = fx.state();
    assert_eq!(rejection(&fx.run(deposit)), Some(Reject::DuplicateDeposit));
    assert_eq!(fx.state(), before);
    assert_eq!(fx.bal(1, BTC).available, btc("1") as i128);
    let key = ExternalKey::new("txid:1").unwrap();
    let bad = Command::Deposit { user: UserId(1), asset: AssetId(7), amount: 1, key: key.clone() };
    assert_eq!(rejection(&fx.run(bad)), Some(Reject::UnknownAsset));
    let zero = Command::Deposit { user: UserId(1), asset: BTC, amount: 0, key };
    assert_eq!(rejection(&fx.run(zero)), Some(Reject::AmountZero));
}

#[test]
fn a_reversed_deposit_may_take_a_balance_below_zero_and_freezes_withdrawals() {
    let mut fx = Fx::new();
    let key = ExternalKey::new("LTC:aa:0").unwrap();
    let reason = Reason::new("deposit left the chain").unwrap();
    fx.run(Command::Deposit { user: UserId(1), asset: BTC, amount: btc("1"), key: key.clone() });
    fx.deposit(1, USDT, usdt("100"));
    // The user spent most of it before the reversal: 0.7 held for a withdrawal already sent.
    let hold = |id, asset, amount| Command::WithdrawalHold {
        withdrawal: WithdrawalId(id),
        user: UserId(1),
        asset,
        amount,
        fee: 0,
    };
    fx.run(hold(1, BTC, btc("0.7")));
    let reverse = |key: &ExternalKey, amount| Command::DepositReverse {
        user: UserId(1),
        asset: BTC,
        amount,
        key: key.clone(),
        reason: reason.clone(),
    };
    let unknown = ExternalKey::new("LTC:bb:0").unwrap();
    let before = fx.state();
    assert_eq!(rejection(&fx.run(reverse(&unknown, btc("1")))), Some(Reject::UnknownDeposit));
    assert_eq!(rejection(&fx.run(reverse(&key, btc("2")))), Some(Reject::Overflow));
    assert_eq!(rejection(&fx.run(reverse(&key, 0))), Some(Reject::AmountZero));
    assert_eq!(fx.state(), before, "refusals change nothing");

    let events = fx.run(reverse(&key, btc("1")));
    assert!(matches!(events[0], Event::DepositReversed { .. }), "{events:?}");
    assert_eq!(fx.bal(1, BTC).available, -(btc("0.7") as i128));
    assert_eq!(fx.x.asset(BTC).unwrap().deposited, 0);
    assert!(fx.x.audit().iter().all(|t| t.balanced()));
    assert_eq!(rejection(&fx.run(reverse(&key, btc("1")))), Some(Reject::DuplicateReversal));

    // Frozen: no withdrawal of any asset; trading what is left still works.
    assert!(fx.x.withdrawals_frozen(UserId(1)));
    assert_eq!(rejection(&fx.run(hold(2, USDT, usdt("1")))), Some(Reject::AccountFrozen));
    // The snapshot keeps the reversal: a restored exchange refuses it again.
    let mut restored = Fx { x: Exchange::restore(&fx.x.encode_snapshot()).unwrap(), all: vec![] };
    assert_eq!(restored.x.state_hash(), fx.x.state_hash());
    assert_eq!(rejection(&restored.run(reverse(&key, btc("1")))), Some(Reject::DuplicateReversal));

    // Settling the debt lifts the freeze.
    fx.deposit(1, BTC, btc("0.7"));
    assert!(!fx.x.withdrawals_frozen(UserId(1)));
    assert_eq!(rejection(&fx.run(hold(3, USDT, usdt("1")))), None);
}

#[test]
fn withdrawal_lifecycle() {
    let mut fx = Fx::new();
    fx.deposit(1, BTC, btc("1"));
    let hold = |id, amount| Command::WithdrawalHold {
        withdrawal: WithdrawalId(id),
        user: UserId(1),
        asset: BTC,
        amount,
        fee: btc("0.001"),
    };
    assert_eq!(rejection(&fx.run(hold(1, btc("1")))), Some(Reject::InsufficientFunds));
    fx.run(hold(1, btc("0.5")));
    assert_eq!(fx.bal(1, BTC).held, btc("0.501") as i128);
    assert_eq!(rejection(&fx.run(hold(1, btc("0.1")))), Some(Reject::DuplicateWithdrawal));
    let txid = ExternalKey::new("abcd").unwrap();
    fx.run(Command::WithdrawalSent { withdrawal: WithdrawalId(1), txid: txid.clone() });
    let again = Command::WithdrawalSent { withdrawal: WithdrawalId(1), txid };
    assert_eq!(rejection(&fx.run(again)), Some(Reject::WithdrawalState));
    fx.run(Command::WithdrawalComplete { withdrawal: WithdrawalId(1) });
    assert_eq!(fx.bal(1, BTC), Account { available: btc("0.499") as i128, locked: 0, held: 0 });
    assert_eq!(fx.fees(BTC), btc("0.001") as i128);
    assert_eq!(fx.x.asset(BTC).unwrap().withdrawn, btc("0.5"));
    let complete = Command::WithdrawalComplete { withdrawal: WithdrawalId(1) };
    assert_eq!(rejection(&fx.run(complete)), Some(Reject::WithdrawalState));

    fx.run(hold(2, btc("0.1")));
    let reason = Reason::new("node refused the address").unwrap();
    fx.run(Command::WithdrawalFail { withdrawal: WithdrawalId(2), reason: reason.clone() });
    assert_eq!(fx.bal(1, BTC).available, btc("0.499") as i128);
    let unknown = Command::WithdrawalFail { withdrawal: WithdrawalId(3), reason };
    assert_eq!(rejection(&fx.run(unknown)), Some(Reject::UnknownWithdrawal));
}

#[test]
fn adjustments_are_audited_and_never_overdraw() {
    let mut fx = Fx::new();
    let reason = Reason::new("bank transfer 42").unwrap();
    let adjust =
        |delta| Command::Adjust { user: UserId(1), asset: USDT, delta, reason: reason.clone() };
    fx.run(adjust(500));
    assert_eq!(rejection(&fx.run(adjust(-501))), Some(Reject::InsufficientFunds));
    assert_eq!(rejection(&fx.run(adjust(0))), Some(Reject::AmountZero));
    fx.run(adjust(-200));
    assert_eq!(fx.x.asset(USDT).unwrap().adjusted, 300);
    assert!(fx.x.audit().iter().all(|t| t.balanced()));
}

#[test]
fn asset_and_market_administration() {
    let mut fx = Fx::new();
    let asset =
        |s: &str, scale| Command::AddAsset(AssetSpec { symbol: Symbol::new(s).unwrap(), scale });
    assert_eq!(rejection(&fx.run(asset("BTC", 8))), Some(Reject::DuplicateAsset));
    assert_eq!(rejection(&fx.run(asset("XYZ", 19))), Some(Reject::BadScale));
    let Some((spec, _)) = fx.x.market_spec(M) else { panic!() };
    let spec = spec.clone();
    assert_eq!(rejection(&fx.run(Command::AddMarket(spec.clone()))), Some(Reject::DuplicateMarket));
    let bad = MarketSpec { quote: BTC, ..spec.clone() };
    assert!(matches!(rejection(&fx.run(Command::AddMarket(bad))), Some(Reject::BadMarketSpec(_))));
    let fees = Command::SetFees { market: M, maker_fee_ppm: 100_001, taker_fee_ppm: 0 };
    assert_eq!(rejection(&fx.run(fees)), Some(Reject::FeeTooHigh));
    fx.deposit(1, USDT, usdt("1000"));
    fx.limit(1, Buy, "100", "1", Gtc);
    let regrid = Command::ChangeMarket {
        market: M,
        change: MarketChange { tick: Some(usdt("0.1")), ..Default::default() },
    };
    assert_eq!(rejection(&fx.run(regrid.clone())), Some(Reject::MarketNotEmpty));
    fx.run(Command::CancelAll { user: UserId(1), market: None });
    assert!(matches!(fx.run(regrid)[..], [Event::MarketChanged { .. }]));
    assert_eq!(rejection(&fx.limit(1, Buy, "100.01", "1", Gtc)), Some(Reject::PriceOffTick));
}
