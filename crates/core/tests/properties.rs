//! Property tests over random command sequences: several users, assets and markets; deposits,
//! orders of every type and STP mode, cancels, withdrawals, adjustments, fee changes and halts.
//! After every command the full invariant check runs (conservation, locks equal what orders and
//! holds need, book structure, books never crossed); no order fills beyond its quantity; replaying
//! the commands from scratch, or from a snapshot taken part-way, gives the same events and state
//! hash.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use bourse_core::*;
use common::Fx;
use proptest::prelude::*;
use std::collections::HashMap;

const USERS: u64 = 4;

/// (asset scale, minor units per deposit step)
const ASSETS: [(&str, u8, u128); 3] =
    [("BTC", 8, 1_000_000), ("ETH", 18, 10_000_000_000_000_000), ("USDT", 6, 1_000_000)];

/// (base, quote, tick, lot, mid price in ticks)
const MARKETS: [(u32, u32, u128, u128, u64); 3] = [
    (1, 3, 10_000, 10_000, 10_000),
    (2, 3, 10_000, 1_000_000_000_000_000, 2_000),
    (2, 1, 1_000, 1_000_000_000_000_000, 50),
];

fn setup() -> Fx {
    let mut fx = Fx::empty();
    for (symbol, scale, _) in ASSETS {
        fx.run(Command::AddAsset(AssetSpec { symbol: Symbol::new(symbol).unwrap(), scale }));
    }
    for (base, quote, tick, lot, _) in MARKETS {
        let events = fx.run(Command::AddMarket(MarketSpec {
            base: AssetId(base),
            quote: AssetId(quote),
            tick,
            lot,
            min_qty: lot,
            max_qty: lot * 1_000,
            min_notional: 0,
            maker_fee_ppm: 1_000,
            taker_fee_ppm: 2_500,
        }));
        assert!(matches!(events[..], [Event::MarketAdded { .. }]), "{events:?}");
    }
    fx
}

#[derive(Clone, Debug)]
enum Op {
    Deposit {
        user: u64,
        asset: u32,
        steps: u32,
    },
    Place {
        user: u64,
        market: u32,
        side: Side,
        kind: u8,
        off: i64,
        lots: u64,
        client: Option<u8>,
        stp: u8,
    },
    Cancel {
        user: u64,
        order: u64,
        client: Option<u8>,
    },
    CancelAll {
        user: u64,
        market: Option<u32>,
    },
    Hold {
        id: u64,
        user: u64,
        asset: u32,
        steps: u32,
    },
    WithdrawalStep {
        id: u64,
        step: u8,
    },
    Adjust {
        user: u64,
        asset: u32,
        delta: i64,
    },
    /// Reverses the deposit made `back` commands earlier (if that was one).
    Reverse {
        user: u64,
        asset: u32,
        back: u64,
        steps: u32,
    },
    Fees {
        market: u32,
        maker: u32,
        taker: u32,
    },
    Status {
        market: u32,
        halt: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let user = 1..=USERS;
    let side = prop_oneof![Just(Side::Buy), Just(Side::Sell)];
    prop_oneof![
        3 => (user.clone(), 1..=3u32, 1..2_000u32).prop_map(|(user, asset, steps)| Op::Deposit { user, asset, steps }),
        12 => (user.clone(), 1..=4u32, side, 0..6u8, -6..=6i64, 1..40u64, proptest::option::weighted(0.2, 0..3u8), 0..4u8)
            .prop_map(|(user, market, side, kind, off, lots, client, stp)| Op::Place { user, market, side, kind, off, lots, client, stp }),
        3 => (user.clone(), 1..120u64, proptest::option::weighted(0.3, 0..3u8)).prop_map(|(user, order, client)| Op::Cancel { user, order, client }),
        1 => (user.clone(), proptest::option::of(1..=3u32)).prop_map(|(user, market)| Op::CancelAll { user, market }),
        2 => (0..8u64, user.clone(), 1..=3u32, 1..200u32).prop_map(|(id, user, asset, steps)| Op::Hold { id, user, asset, steps }),
        2 => (0..8u64, 0..3u8).prop_map(|(id, step)| Op::WithdrawalStep { id, step }),
        1 => (user.clone(), 1..=3u32, -500..500i64).prop_map(|(user, asset, delta)| Op::Adjust { user, asset, delta }),
        1 => (user.clone(), 1..=3u32, 1..40u64, 1..2_000u32).prop_map(|(user, asset, back, steps)| Op::Reverse { user, asset, back, steps }),
        1 => (1..=3u32, 0..5_000u32, 0..5_000u32).prop_map(|(market, maker, taker)| Op::Fees { market, maker, taker }),
        1 => (1..=3u32, proptest::bool::weighted(0.3)).prop_map(|(market, halt)| Op::Status { market, halt }),
    ]
}

fn command(op: &Op, seq: u64) -> Command {
    let asset_step = |asset: u32| ASSETS.get(asset as usize - 1).map_or(1, |a| a.2);
    let client = |c: u8| ClientOrderId::new(&format!("c{c}")).unwrap();
    match *op {
        Op::Deposit { user, asset, steps } => Command::Deposit {
            user: UserId(user),
            asset: AssetId(asset),
            amount: u128::from(steps) * asset_step(asset),
            key: ExternalKey::new(&format!("tx{seq}:0")).unwrap(),
        },
        Op::Place { user, market, side, kind, off, lots, client: c, stp } => {
            let (_, _, tick, lot, mid) =
                MARKETS.get(market as usize - 1).copied().unwrap_or(MARKETS[0]);
            let price = u128::from(mid.saturating_add_signed(off)) * tick;
            let quantity = u128::from(lots) * lot;
            let tif = [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok, TimeInForce::PostOnly];
            let order_type = match kind {
                0..=3 => OrderType::Limit { price, quantity, time_in_force: tif[kind as usize] },
                4 => OrderType::Market { quantity },
                _ => OrderType::MarketQuote { amount: price / 10 * u128::from(lots) },
            };
            let stp =
                [StpMode::None, StpMode::ExpireTaker, StpMode::ExpireMaker, StpMode::ExpireBoth]
                    [stp as usize];
            Command::Place(PlaceOrder {
                user: UserId(user),
                market: MarketId(market),
                side,
                order_type,
                client_order_id: c.map(client),
                stp,
            })
        }
        Op::Cancel { user, order, client: c } => Command::Cancel {
            user: UserId(user),
            market: None,
            order: match c {
                Some(c) => OrderRef::Client(client(c)),
                None => OrderRef::Id(OrderId(order)),
            },
        },
        Op::CancelAll { user, market } => {
            Command::CancelAll { user: UserId(user), market: market.map(MarketId) }
        }
        Op::Hold { id, user, asset, steps } => Command::WithdrawalHold {
            withdrawal: WithdrawalId(id),
            user: UserId(user),
            asset: AssetId(asset),
            amount: u128::from(steps) * asset_step(asset),
            fee: asset_step(asset) / 10,
        },
        Op::WithdrawalStep { id, step } => {
            let withdrawal = WithdrawalId(id);
            match step {
                0 => Command::WithdrawalSent {
                    withdrawal,
                    txid: ExternalKey::new(&format!("out{seq}")).unwrap(),
                },
                1 => Command::WithdrawalComplete { withdrawal },
                _ => Command::WithdrawalFail {
                    withdrawal,
                    reason: Reason::new("node error").unwrap(),
                },
            }
        }
        Op::Adjust { user, asset, delta } => Command::Adjust {
            user: UserId(user),
            asset: AssetId(asset),
            delta: i128::from(delta) * asset_step(asset) as i128,
            reason: Reason::new("correction").unwrap(),
        },
        Op::Reverse { user, asset, back, steps } => Command::DepositReverse {
            user: UserId(user),
            asset: AssetId(asset),
            amount: u128::from(steps) * asset_step(asset),
            key: ExternalKey::new(&format!("tx{}:0", seq.saturating_sub(back))).unwrap(),
            reason: Reason::new("left the chain").unwrap(),
        },
        Op::Fees { market, maker, taker } => Command::SetFees {
            market: MarketId(market),
            maker_fee_ppm: maker,
            taker_fee_ppm: taker,
        },
        Op::Status { market, halt } => Command::SetMarketStatus {
            market: MarketId(market),
            status: if halt { MarketStatus::Halted } else { MarketStatus::Trading },
        },
    }
}

fn replay(fx: &mut Fx, commands: &[Command]) -> Vec<Vec<Event>> {
    commands.iter().map(|c| fx.run(c.clone())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_every_invariant(ops in proptest::collection::vec(op(), 1..400), cut: prop::sample::Index) {
        let mut fx = setup();
        let base = fx.x.seq();
        let commands: Vec<Command> = ops.iter().enumerate().map(|(i, op)| command(op, base + i as u64 + 1)).collect();
        let cut = cut.index(commands.len());

        let mut quantity: HashMap<OrderId, u128> = HashMap::new();
        let mut traded: HashMap<OrderId, u128> = HashMap::new();
        let mut events = Vec::new();
        let mut snapshot = None;
        for (i, command) in commands.iter().enumerate() {
            if i == cut {
                snapshot = Some(fx.x.encode_snapshot());
            }
            let out = fx.run(command.clone()); // checks every invariant
            for e in &out {
                match e {
                    Event::OrderAccepted { order, order_type: OrderType::Limit { quantity: q, .. } | OrderType::Market { quantity: q }, .. } => {
                        quantity.insert(*order, *q);
                    }
                    Event::Trade { maker_order, taker_order, quantity: q, .. } => {
                        for id in [maker_order, taker_order] {
                            let total = traded.entry(*id).or_default();
                            *total += q;
                            if let Some(max) = quantity.get(id) {
                                prop_assert!(*total <= *max, "order {id} filled {total} of {max}");
                            }
                        }
                    }
                    _ => {}
                }
            }
            events.push(out);
        }
        let hash = fx.x.state_hash();

        let mut again = setup();
        prop_assert_eq!(replay(&mut again, &commands), events.clone());
        prop_assert_eq!(again.x.state_hash(), hash);

        let snapshot = snapshot.unwrap_or_else(|| fx.x.encode_snapshot());
        let mut restored = Fx { x: Exchange::restore(&snapshot).unwrap(), all: Vec::new() };
        prop_assert_eq!(replay(&mut restored, &commands[cut..]), events[cut..].to_vec());
        prop_assert_eq!(restored.x.state_hash(), hash);
    }

    #[test]
    fn restoring_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Exchange::restore(&bytes);
    }

    #[test]
    fn restoring_a_damaged_snapshot_never_panics(ops in proptest::collection::vec(op(), 1..60), at: prop::sample::Index, byte: u8) {
        let mut fx = setup();
        let base = fx.x.seq();
        for (i, op) in ops.iter().enumerate() {
            fx.run(command(op, base + i as u64 + 1));
        }
        let mut bytes = fx.x.encode_snapshot();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(x) = Exchange::restore(&bytes) {
            prop_assert!(x.check_invariants().is_ok());
        }
    }
}
