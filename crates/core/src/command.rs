//! Commands: every state change that touches money or markets. A command is journaled before it
//! is applied and applied deterministically, so the journal alone rebuilds the exchange.

use crate::ids::{
    AssetId, ClientOrderId, ExternalKey, MarketId, OrderId, Reason, UserId, WithdrawalId,
};
use crate::market::{AssetSpec, MarketSpec, MarketStatus};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeInForce {
    /// Rests until filled or canceled.
    Gtc,
    /// Takes what it can, the rest expires.
    Ioc,
    /// Fills completely at once or is rejected.
    Fok,
    /// Rests only; rejected if any part would take.
    PostOnly,
}

/// Self-trade prevention: what happens when an order would trade with an order of the same user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StpMode {
    /// Trade with yourself (fees are charged).
    None,
    /// The incoming order's remainder expires.
    #[default]
    ExpireTaker,
    /// The resting order expires and matching goes on.
    ExpireMaker,
    /// Both expire.
    ExpireBoth,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderType {
    /// `price` in quote minor units per whole base unit, `quantity` in base minor units; both
    /// must lie on the market's grid.
    Limit { price: u128, quantity: u128, time_in_force: TimeInForce },
    /// Takes `quantity` base minor units at any price; what the book or the balance cannot
    /// fill expires.
    Market { quantity: u128 },
    /// Buy: spends at most `amount` quote minor units, fees included. Sell: sells until the
    /// notional reaches at most `amount`.
    MarketQuote { amount: u128 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceOrder {
    pub user: UserId,
    pub market: MarketId,
    pub side: Side,
    pub order_type: OrderType,
    pub client_order_id: Option<ClientOrderId>,
    pub stp: StpMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderRef {
    Id(OrderId),
    Client(ClientOrderId),
}

/// A change to a market's grid and limits. Tick and lot may change only while the book is empty,
/// so no resting order is ever off its market's grid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketChange {
    pub tick: Option<u128>,
    pub lot: Option<u128>,
    pub min_qty: Option<u128>,
    pub max_qty: Option<u128>,
    pub min_notional: Option<u128>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    AddAsset(AssetSpec),
    AddMarket(MarketSpec),
    ChangeMarket {
        market: MarketId,
        change: MarketChange,
    },
    SetMarketStatus {
        market: MarketId,
        status: MarketStatus,
    },
    /// Resting orders keep at most the fee rate they reserved for when they were placed.
    SetFees {
        market: MarketId,
        maker_fee_ppm: u32,
        taker_fee_ppm: u32,
    },
    Place(PlaceOrder),
    Cancel {
        user: UserId,
        market: Option<MarketId>,
        order: OrderRef,
    },
    CancelAll {
        user: UserId,
        market: Option<MarketId>,
    },
    /// Credits a deposit once per `key` (e.g. `txid:vout`); a repeated key credits nothing.
    Deposit {
        user: UserId,
        asset: AssetId,
        amount: u128,
        key: ExternalKey,
    },
    /// Moves `amount + fee` from available to held for a withdrawal.
    WithdrawalHold {
        withdrawal: WithdrawalId,
        user: UserId,
        asset: AssetId,
        amount: u128,
        fee: u128,
    },
    /// The transaction was broadcast; the funds stay held until it completes or fails.
    WithdrawalSent {
        withdrawal: WithdrawalId,
        txid: ExternalKey,
    },
    /// The funds left the exchange: `amount` is gone, `fee` goes to the fee account.
    WithdrawalComplete {
        withdrawal: WithdrawalId,
    },
    /// The withdrawal did not happen: the hold returns to available.
    WithdrawalFail {
        withdrawal: WithdrawalId,
        reason: Reason,
    },
    /// An audited correction of a user's available balance.
    Adjust {
        user: UserId,
        asset: AssetId,
        delta: i128,
        reason: Reason,
    },
    /// Takes back a credited deposit (`key` as it was credited) whose transaction left the
    /// chain: `amount` leaves the user's available balance even where that goes below zero, and
    /// a user with a balance below zero can withdraw nothing until it is settled. Once per key.
    DepositReverse {
        user: UserId,
        asset: AssetId,
        amount: u128,
        key: ExternalKey,
        reason: Reason,
    },
}

/// A command as the sequencer stamped it: the journal stores this, so replay never reads the
/// clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamped {
    pub time_ns: u64,
    pub command: Command,
}

impl Stamped {
    /// The journal payload.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
        out.clear();
        let encoded = postcard::to_extend(self, std::mem::take(out))?;
        *out = encoded;
        Ok(())
    }

    /// Encodes `time_ns` and `command` exactly as [`Stamped::encode`] would, without cloning
    /// the command (the engine's hot path).
    pub fn encode_parts(
        time_ns: u64,
        command: &Command,
        out: &mut Vec<u8>,
    ) -> Result<(), postcard::Error> {
        #[derive(Serialize)]
        struct StampedRef<'a> {
            time_ns: u64,
            command: &'a Command,
        }
        out.clear();
        let encoded = postcard::to_extend(&StampedRef { time_ns, command }, std::mem::take(out))?;
        *out = encoded;
        Ok(())
    }

    /// Decodes a journal payload; any byte string gives `Ok` or `Err`, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Stamped, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Stamped::decode(&bytes);
        }
    }

    #[test]
    fn round_trips() {
        let stamped = Stamped {
            time_ns: 42,
            command: Command::Place(PlaceOrder {
                user: UserId(7),
                market: MarketId(1),
                side: Side::Sell,
                order_type: OrderType::Limit {
                    price: 5,
                    quantity: 10,
                    time_in_force: TimeInForce::Gtc,
                },
                client_order_id: Some(ClientOrderId::new("x-1").unwrap()),
                stp: StpMode::ExpireMaker,
            }),
        };
        let mut buf = Vec::new();
        stamped.encode(&mut buf).unwrap();
        assert_eq!(Stamped::decode(&buf).unwrap(), stamped);
        let mut parts = Vec::new();
        Stamped::encode_parts(stamped.time_ns, &stamped.command, &mut parts).unwrap();
        assert_eq!(parts, buf);
    }
}
