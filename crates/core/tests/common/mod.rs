//! A small exchange for tests: assets BTC (scale 8) and USDT (scale 6), market 1 = BTC/USDT with
//! tick 0.01 USDT, lot 0.0001 BTC, maker 0.1 %, taker 0.2 %. Every command is followed by the
//! full invariant check.
#![allow(dead_code)]

use bourse_core::decimal::parse_units;
use bourse_core::*;

pub const BTC: AssetId = AssetId(1);
pub const USDT: AssetId = AssetId(2);
pub const M: MarketId = MarketId(1);

pub fn btc(s: &str) -> u128 {
    parse_units(s, 8).unwrap()
}
pub fn usdt(s: &str) -> u128 {
    parse_units(s, 6).unwrap()
}

pub struct Fx {
    pub x: Exchange,
    pub all: Vec<(Command, Vec<Event>)>,
}

impl Fx {
    pub fn empty() -> Fx {
        Fx { x: Exchange::new(), all: Vec::new() }
    }

    pub fn new() -> Fx {
        let mut fx = Fx::empty();
        fx.run(Command::AddAsset(AssetSpec { symbol: Symbol::new("BTC").unwrap(), scale: 8 }));
        fx.run(Command::AddAsset(AssetSpec { symbol: Symbol::new("USDT").unwrap(), scale: 6 }));
        let events = fx.run(Command::AddMarket(MarketSpec {
            base: BTC,
            quote: USDT,
            tick: usdt("0.01"),
            lot: btc("0.0001"),
            min_qty: btc("0.0001"),
            max_qty: btc("1000"),
            min_notional: usdt("1"),
            maker_fee_ppm: 1_000,
            taker_fee_ppm: 2_000,
        }));
        assert!(matches!(events[..], [Event::MarketAdded { market: M, .. }]), "{events:?}");
        fx
    }

    pub fn run(&mut self, command: Command) -> Vec<Event> {
        let mut out = Vec::new();
        let seq = self.x.seq() + 1;
        self.x.apply(seq, seq * 1_000, &command, &mut out);
        self.x.check_invariants().unwrap_or_else(|e| panic!("after {command:?}: {e}"));
        self.all.push((command, out.clone()));
        out
    }

    pub fn deposit(&mut self, user: u64, asset: AssetId, amount: u128) {
        let key = ExternalKey::new(&format!("dep-{}", self.x.seq() + 1)).unwrap();
        let events = self.run(Command::Deposit { user: UserId(user), asset, amount, key });
        assert!(matches!(events[0], Event::DepositCredited { .. }), "{events:?}");
    }

    pub fn place(
        &mut self,
        user: u64,
        side: Side,
        order_type: OrderType,
        stp: StpMode,
    ) -> Vec<Event> {
        self.run(Command::Place(PlaceOrder {
            user: UserId(user),
            market: M,
            side,
            order_type,
            client_order_id: None,
            stp,
        }))
    }

    pub fn limit(
        &mut self,
        user: u64,
        side: Side,
        price: &str,
        qty: &str,
        tif: TimeInForce,
    ) -> Vec<Event> {
        let order_type =
            OrderType::Limit { price: usdt(price), quantity: btc(qty), time_in_force: tif };
        self.place(user, side, order_type, StpMode::ExpireTaker)
    }

    pub fn bal(&self, user: u64, asset: AssetId) -> Account {
        self.x.balance(UserId(user), asset)
    }

    /// The state without its clock: what a refused command must leave untouched.
    pub fn state(&self) -> Snapshot {
        let mut s = self.x.snapshot();
        s.seq = 0;
        s.time_ns = 0;
        s
    }

    pub fn fees(&self, asset: AssetId) -> i128 {
        self.x.asset(asset).unwrap().fees
    }
}

pub fn order_id(events: &[Event]) -> OrderId {
    events
        .iter()
        .find_map(|e| match e {
            Event::OrderAccepted { order, .. } => Some(*order),
            _ => None,
        })
        .expect("order accepted")
}

pub fn rejection(events: &[Event]) -> Option<Reject> {
    events.iter().find_map(|e| match e {
        Event::OrderRejected { reason, .. } | Event::Rejected { reason, .. } => Some(*reason),
        _ => None,
    })
}

pub fn trades(events: &[Event]) -> Vec<(u128, u128)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Trade { price, quantity, .. } => Some((*price, *quantity)),
            _ => None,
        })
        .collect()
}

pub fn ended(events: &[Event], id: OrderId) -> Option<EndReason> {
    events.iter().find_map(|e| match e {
        Event::OrderEnded { order, reason, .. } if *order == id => Some(*reason),
        _ => None,
    })
}

pub fn filled(events: &[Event], id: OrderId) -> bool {
    events.iter().any(|e| matches!(e, Event::OrderFilled { order, .. } if *order == id))
}
