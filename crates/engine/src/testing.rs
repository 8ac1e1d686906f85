//! Commands for tests of this crate and of the crates built on it (feature `testing`): a
//! BTC/USDT market with two funded users, and limit orders on it.
#![allow(clippy::unwrap_used)]

use bourse_core::*;

/// BTC (scale 8) and USDT (scale 6), the market BTC/USDT (id 1), 1,000 USDT for user 1 and
/// 1 BTC for user 2.
pub fn setup_commands() -> Vec<Command> {
    vec![
        Command::AddAsset(AssetSpec { symbol: Symbol::new("BTC").unwrap(), scale: 8 }),
        Command::AddAsset(AssetSpec { symbol: Symbol::new("USDT").unwrap(), scale: 6 }),
        Command::AddMarket(MarketSpec {
            base: AssetId(1),
            quote: AssetId(2),
            tick: 10_000,
            lot: 10_000,
            min_qty: 10_000,
            max_qty: 100_000_000_000,
            min_notional: 0,
            maker_fee_ppm: 1_000,
            taker_fee_ppm: 2_000,
        }),
        Command::Deposit {
            user: UserId(1),
            asset: AssetId(2),
            amount: 1_000_000_000,
            key: ExternalKey::new("a").unwrap(),
        },
        Command::Deposit {
            user: UserId(2),
            asset: AssetId(1),
            amount: 100_000_000,
            key: ExternalKey::new("b").unwrap(),
        },
    ]
}

/// A good-till-cancelled limit order of 0.0001 BTC on market 1 at `price` (quote units).
pub fn order(user: u64, side: Side, price: u128) -> Command {
    Command::Place(PlaceOrder {
        user: UserId(user),
        market: MarketId(1),
        side,
        order_type: OrderType::Limit { price, quantity: 10_000, time_in_force: TimeInForce::Gtc },
        client_order_id: None,
        stp: StpMode::ExpireTaker,
    })
}
