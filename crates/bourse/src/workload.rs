//! A realistic, reproducible command stream for benchmarks and crash tests: four markets,
//! thousands of funded users, limit orders near the touch (some crossing), cancels of live
//! orders, market and IOC orders, and a mid price that wanders. It follows the engine's events
//! to know which orders are live, so cancels hit real orders.

use bourse_core::{
    AssetId, AssetSpec, Command, Event, ExternalKey, MarketId, MarketSpec, OrderId, OrderRef,
    OrderType, PlaceOrder, Side, StpMode, Symbol, TimeInForce, UserId,
};
use std::collections::HashMap;

/// SplitMix64: small, fast and reproducible from a seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Debug)]
struct MarketInfo {
    id: MarketId,
    tick: u128,
    lot: u128,
    mid: u64,
}

/// (symbol, scale)
const ASSETS: [(&str, u8); 4] = [("BTC", 8), ("ETH", 18), ("LTC", 8), ("USDT", 6)];

/// The assets and markets of the workload, then a large deposit of every asset for every user.
pub fn setup(users: u64) -> Vec<Command> {
    let mut commands: Vec<Command> = ASSETS
        .iter()
        .filter_map(|(symbol, scale)| {
            Some(Command::AddAsset(AssetSpec { symbol: Symbol::new(symbol).ok()?, scale: *scale }))
        })
        .collect();
    for (base, quote, tick, lot, _) in MARKETS {
        commands.push(Command::AddMarket(MarketSpec {
            base: AssetId(base),
            quote: AssetId(quote),
            tick,
            lot,
            min_qty: lot,
            max_qty: lot * 1_000_000,
            min_notional: 0,
            maker_fee_ppm: 1_000,
            taker_fee_ppm: 2_000,
        }));
    }
    for user in 1..=users {
        for (i, (_, scale)) in ASSETS.iter().enumerate() {
            // 10^9 whole units: enough for any stream.
            let amount = 10u128.pow(u32::from(*scale) + 9);
            let Ok(key) = ExternalKey::new(&format!("bench:{user}:{i}")) else { continue };
            commands.push(Command::Deposit {
                user: UserId(user),
                asset: AssetId(i as u32 + 1),
                amount,
                key,
            });
        }
    }
    commands
}

/// (base, quote, tick, lot, starting mid in ticks): BTC/USDT 0.01 × 0.0001, ETH/USDT 0.01 ×
/// 0.001, LTC/USDT 0.01 × 0.01, ETH/BTC 0.00001 × 0.001.
const MARKETS: [(u32, u32, u128, u128, u64); 4] = [
    (1, 4, 10_000, 10_000, 6_000_000),
    (2, 4, 10_000, 1_000_000_000_000_000, 300_000),
    (3, 4, 10_000, 1_000_000, 8_000),
    (2, 1, 1_000, 1_000_000_000_000_000, 5_000),
];

#[derive(Debug)]
pub struct Workload {
    rng: Rng,
    users: u64,
    markets: Vec<MarketInfo>,
    live: Vec<(OrderId, UserId)>,
    live_index: HashMap<OrderId, usize>,
    /// How many live orders the stream aims to keep resting.
    resting_target: usize,
}

impl Workload {
    pub fn new(seed: u64, users: u64) -> Workload {
        Workload {
            rng: Rng::new(seed),
            users: users.max(1),
            markets: (1u32..)
                .zip(MARKETS)
                .map(|(id, (_, _, tick, lot, mid))| MarketInfo { id: MarketId(id), tick, lot, mid })
                .collect(),
            live: Vec::new(),
            live_index: HashMap::new(),
            resting_target: 20_000,
        }
    }

    fn market(&mut self) -> MarketInfo {
        let i = self.rng.below(self.markets.len() as u64) as usize;
        self.markets.get(i).cloned().unwrap_or(MarketInfo {
            id: MarketId(1),
            tick: 1,
            lot: 1,
            mid: 1,
        })
    }

    fn user(&mut self) -> UserId {
        UserId(1 + self.rng.below(self.users))
    }

    fn place(
        &mut self,
        user: UserId,
        m: &MarketInfo,
        side: Side,
        order_type: OrderType,
    ) -> Command {
        Command::Place(PlaceOrder {
            user,
            market: m.id,
            side,
            order_type,
            client_order_id: None,
            stp: StpMode::ExpireTaker,
        })
    }

    /// A limit order `distance` ticks on the passive side of the mid (negative: crossing).
    fn limit(&mut self, m: &MarketInfo, side: Side, distance: i64, tif: TimeInForce) -> Command {
        let ticks = match side {
            Side::Buy => m.mid.saturating_add_signed(-distance),
            Side::Sell => m.mid.saturating_add_signed(distance),
        }
        .max(1);
        let lots = 1 + self.rng.below(20);
        let user = self.user();
        let order_type = OrderType::Limit {
            price: u128::from(ticks) * m.tick,
            quantity: u128::from(lots) * m.lot,
            time_in_force: tif,
        };
        self.place(user, m, side, order_type)
    }

    pub fn next_command(&mut self) -> Command {
        let m = self.market();
        if self.rng.chance(2) {
            // The mid wanders a tick at a time.
            let up = self.rng.chance(50);
            if let Some(market) = self.markets.iter_mut().find(|x| x.id == m.id) {
                market.mid =
                    if up { market.mid + 1 } else { market.mid.saturating_sub(1).max(100) };
            }
        }
        let side = if self.rng.chance(50) { Side::Buy } else { Side::Sell };
        let roll = self.rng.below(100);
        // Cancels keep the books near a steady size, as market makers do.
        let cancel_share = if self.live.len() > self.resting_target { 60 } else { 30 };
        if roll < cancel_share && !self.live.is_empty() {
            let i = self.rng.below(self.live.len() as u64) as usize;
            if let Some(&(order, user)) = self.live.get(i) {
                return Command::Cancel { user, market: None, order: OrderRef::Id(order) };
            }
        }
        match roll {
            0..=89 => {
                // Mostly passive, within ten ticks of the mid; one in ten crosses it.
                let distance = if self.rng.chance(10) {
                    -(self.rng.below(3) as i64)
                } else {
                    1 + self.rng.below(10) as i64
                };
                self.limit(&m, side, distance, TimeInForce::Gtc)
            }
            90..=94 => {
                let user = self.user();
                let quantity = u128::from(1 + self.rng.below(5)) * m.lot;
                self.place(user, &m, side, OrderType::Market { quantity })
            }
            _ => self.limit(&m, side, -1, TimeInForce::Ioc),
        }
    }

    /// Keeps track of live orders from the events of applied commands.
    pub fn observe(&mut self, events: &[Event]) {
        for event in events {
            match event {
                Event::OrderAccepted { order, user, .. } => {
                    self.live_index.insert(*order, self.live.len());
                    self.live.push((*order, *user));
                }
                Event::OrderFilled { order, .. } | Event::OrderEnded { order, .. } => {
                    if let Some(i) = self.live_index.remove(order) {
                        self.live.swap_remove(i);
                        if let Some(&(moved, _)) = self.live.get(i) {
                            self.live_index.insert(moved, i);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// `count` non-crossing limit orders spread over wide bands on both sides of every market,
    /// generated one at a time (the memory figure must not include a list of commands).
    pub fn resting_orders(&mut self, count: usize) -> impl Iterator<Item = Command> + '_ {
        (0..count).map(move |i| {
            let m = self.markets.get(i % self.markets.len()).cloned().unwrap_or(MarketInfo {
                id: MarketId(1),
                tick: 1,
                lot: 1,
                mid: 1,
            });
            let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
            let distance = 1 + self.rng.below(5_000) as i64;
            let user = UserId(1 + (i as u64 / 2) % self.users);
            let ticks = match side {
                Side::Buy => m.mid.saturating_add_signed(-distance).max(1),
                Side::Sell => m.mid.saturating_add_signed(distance),
            };
            let order_type = OrderType::Limit {
                price: u128::from(ticks) * m.tick,
                quantity: u128::from(1 + self.rng.below(20)) * m.lot,
                time_in_force: TimeInForce::Gtc,
            };
            self.place(user, &m, side, order_type)
        })
    }
}
