//! `bourse demo`: a throwaway exchange with four assets, four markets, a funded demo user
//! (login and a trade-scope API key printed at start) and a liquidity bot that keeps both sides
//! of every book populated and trades now and then. The bot is an ordinary user: it places and
//! cancels orders through engine commands like any client, and its funds come from deposits.

use crate::api::account::new_api_key;
use crate::crypto;
use crate::state::Shared;
use bourse_core::{
    AssetSpec, Command, Event, ExternalKey, MarketSpec, OrderType, PlaceOrder, Side, StpMode,
    Symbol, TimeInForce, UserId,
};
use std::time::Duration;
use tokio::sync::watch;

pub const DEMO_EMAIL: &str = "demo@bourse.local";
pub const DEMO_PASSWORD: &str = "demo-password-1234";
const BOT_EMAIL: &str = "liquidity-bot@bourse.local";

/// Assets: symbol, scale, demo deposit (whole units) for the demo user and the bot.
const ASSETS: [(&str, u8, u128, u128); 4] = [
    ("BTC", 8, 2, 1_000),
    ("ETH", 18, 20, 10_000),
    ("LTC", 8, 200, 100_000),
    ("USDT", 6, 100_000, 100_000_000),
];

/// Markets: base, quote, tick, lot, min qty, max qty, min notional (minor units), reference
/// price (minor units of quote per whole base unit).
struct DemoMarket {
    base: &'static str,
    quote: &'static str,
    tick: u128,
    lot: u128,
    min_qty: u128,
    max_qty: u128,
    min_notional: u128,
    price: u128,
}

const MARKETS: [DemoMarket; 4] = [
    // BTC/USDT: tick 0.01, lot 0.0001 BTC, price 65,000.
    DemoMarket {
        base: "BTC",
        quote: "USDT",
        tick: 10_000,
        lot: 10_000,
        min_qty: 10_000,
        max_qty: 100_000_000_000,
        min_notional: 1_000_000,
        price: 65_000_000_000,
    },
    // ETH/USDT: tick 0.01, lot 0.0001 ETH, price 3,200.
    DemoMarket {
        base: "ETH",
        quote: "USDT",
        tick: 10_000,
        lot: 100_000_000_000_000,
        min_qty: 100_000_000_000_000,
        max_qty: 1_000_000_000_000_000_000_000,
        min_notional: 1_000_000,
        price: 3_200_000_000,
    },
    // LTC/USDT: tick 0.01, lot 0.001 LTC, price 80.
    DemoMarket {
        base: "LTC",
        quote: "USDT",
        tick: 10_000,
        lot: 100_000,
        min_qty: 100_000,
        max_qty: 1_000_000_000_000,
        min_notional: 1_000_000,
        price: 80_000_000,
    },
    // ETH/BTC: tick 0.00001 BTC, lot 0.001 ETH, price 0.05.
    DemoMarket {
        base: "ETH",
        quote: "BTC",
        tick: 1_000,
        lot: 1_000_000_000_000_000,
        min_qty: 1_000_000_000_000_000,
        max_qty: 1_000_000_000_000_000_000_000,
        min_notional: 1_000,
        price: 5_000_000,
    },
];

#[derive(Debug)]
pub struct DemoInfo {
    pub email: String,
    pub password: String,
    pub api_key: String,
    pub api_secret: String,
    pub user: UserId,
    pub bot: UserId,
}

/// Creates the assets, markets, users, deposits and the demo API key.
pub async fn setup(state: &Shared) -> anyhow::Result<DemoInfo> {
    let engine = &state.engine;
    let mut asset_ids = Vec::new();
    for (symbol, scale, _, _) in ASSETS {
        let outcome = engine
            .execute(Command::AddAsset(AssetSpec { symbol: Symbol::new(symbol)?, scale }))
            .await?;
        let id = outcome.events.iter().find_map(|e| match e {
            Event::AssetAdded { asset, .. } => Some(*asset),
            _ => None,
        });
        asset_ids.push((
            symbol,
            id.ok_or_else(|| anyhow::anyhow!("asset {symbol} not added: {:?}", outcome.events))?,
        ));
    }
    let asset = |s: &str| asset_ids.iter().find(|(n, _)| *n == s).map(|(_, id)| *id);
    for m in &MARKETS {
        let (Some(base), Some(quote)) = (asset(m.base), asset(m.quote)) else { continue };
        let spec = MarketSpec {
            base,
            quote,
            tick: m.tick,
            lot: m.lot,
            min_qty: m.min_qty,
            max_qty: m.max_qty,
            min_notional: m.min_notional,
            maker_fee_ppm: 1_000,
            taker_fee_ppm: 2_000,
        };
        let outcome = engine.execute(Command::AddMarket(spec)).await?;
        if !outcome.events.iter().any(|e| matches!(e, Event::MarketAdded { .. })) {
            anyhow::bail!("market {}/{} not added: {:?}", m.base, m.quote, outcome.events);
        }
    }
    let now = crate::now_ms();
    let mut users = Vec::new();
    for (email, password) in
        [(DEMO_EMAIL, DEMO_PASSWORD.to_string()), (BOT_EMAIL, crypto::random_token()?)]
    {
        let hash = tokio::task::spawn_blocking(move || crypto::hash_password(&password)).await??;
        let user = state.store.create_user(email, &hash, now).await?;
        state.store.set_email_verified(user).await?;
        users.push(user);
    }
    let (user, bot) = match users.as_slice() {
        [u, b] => (*u, *b),
        _ => anyhow::bail!("demo users not created"),
    };
    for (symbol, scale, demo_units, bot_units) in ASSETS {
        let Some(id) = asset(symbol) else { continue };
        let unit = bourse_core::decimal::pow10(scale).unwrap_or(1);
        for (who, units) in [(user, demo_units), (bot, bot_units)] {
            let key = ExternalKey::new(&format!("demo:{}:{symbol}", who.0))?;
            engine
                .execute(Command::Deposit { user: who, asset: id, amount: units * unit, key })
                .await?;
        }
    }
    // Made by the demo itself, as the log says.
    let demo = crate::security::Client {
        ip: "127.0.0.1".into(),
        addr: std::net::Ipv4Addr::LOCALHOST.into(),
        user_agent: "bourse demo".into(),
    };
    let trade = ["trade".to_string()];
    let ((_, api_key), api_secret) = new_api_key(state, user, "demo", &trade, &[], None, &demo)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    Ok(DemoInfo {
        email: DEMO_EMAIL.into(),
        password: DEMO_PASSWORD.into(),
        api_key,
        api_secret,
        user,
        bot,
    })
}

/// A small deterministic generator (the bot needs variety, not secrecy).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// Levels per side the bot keeps.
const LEVELS: u64 = 8;

/// Runs until `shutdown`: every ~300 ms per market it refreshes its quotes around a price that
/// walks randomly, and about every third round it takes liquidity with a small IOC order.
pub async fn run_bot(state: Shared, bot: UserId, mut shutdown: watch::Receiver<bool>) {
    let mut rng = Rng(u64::try_from(crate::now_ms()).unwrap_or(1));
    let mut prices: Vec<u128> = MARKETS.iter().map(|m| m.price).collect();
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let markets: Vec<(bourse_core::MarketId, usize)> = {
            let Ok(mirror) = state.mirror.read() else { return };
            MARKETS
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    mirror
                        .market_by_symbol(&format!("{}-{}", m.base, m.quote))
                        .map(|info| (info.id, i))
                })
                .collect()
        };
        for (market, i) in markets {
            let (Some(m), Some(price)) = (MARKETS.get(i), prices.get_mut(i)) else { continue };
            // Walk the reference price by up to ±3 ticks, staying on the grid and positive.
            let step = u128::from(rng.below(7));
            *price = (*price + step * m.tick).saturating_sub(3 * m.tick).max(m.tick * 10);
            *price -= *price % m.tick;
            let _ =
                state.engine.execute(Command::CancelAll { user: bot, market: Some(market) }).await;
            for level in 1..=LEVELS {
                for side in [Side::Buy, Side::Sell] {
                    let offset = u128::from(level) * m.tick * (1 + u128::from(rng.below(3)));
                    let p = match side {
                        Side::Buy => price.saturating_sub(offset),
                        Side::Sell => *price + offset,
                    };
                    let lots = 1 + u128::from(rng.below(20));
                    let quantity = (m.min_qty * lots).max(m.min_qty);
                    place(&state, bot, market, side, p, quantity, TimeInForce::Gtc).await;
                }
            }
            if rng.below(3) == 0 {
                let side = if rng.below(2) == 0 { Side::Buy } else { Side::Sell };
                let p = match side {
                    Side::Buy => *price + 2 * m.tick,
                    Side::Sell => price.saturating_sub(2 * m.tick),
                };
                place(
                    &state,
                    bot,
                    market,
                    side,
                    p,
                    m.min_qty * (1 + u128::from(rng.below(5))),
                    TimeInForce::Ioc,
                )
                .await;
            }
        }
    }
}

async fn place(
    state: &Shared,
    user: UserId,
    market: bourse_core::MarketId,
    side: Side,
    price: u128,
    quantity: u128,
    tif: TimeInForce,
) {
    if price == 0 {
        return;
    }
    let order = PlaceOrder {
        user,
        market,
        side,
        order_type: OrderType::Limit { price, quantity, time_in_force: tif },
        client_order_id: None,
        // The bot's taker orders may cross its own quotes: let them trade (fees are charged),
        // so the demo shows trades even when nobody else is trading.
        stp: StpMode::None,
    };
    let _ = state.engine.execute(Command::Place(order)).await;
}
