//! Events: what applying a command did. Subscribers (market data, read models, wallets) consume
//! them in sequence order; every amount is in minor units.

use crate::command::{OrderType, Side, StpMode};
use crate::ids::{
    AssetId, ClientOrderId, ExternalKey, MarketId, OrderId, Reason, TradeId, UserId, WithdrawalId,
};
use crate::market::{AssetSpec, MarketSpec, MarketStatus, SpecError};
use serde::{Deserialize, Serialize};

/// Why a command changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Reject {
    #[error("insufficient funds")]
    InsufficientFunds,
    #[error("unknown asset")]
    UnknownAsset,
    #[error("unknown market")]
    UnknownMarket,
    #[error("market is halted")]
    MarketHalted,
    #[error("asset symbol already exists")]
    DuplicateAsset,
    #[error("market already exists")]
    DuplicateMarket,
    #[error("asset scale must be at most 18")]
    BadScale,
    #[error("invalid market: {0}")]
    BadMarketSpec(SpecError),
    #[error("tick and lot can change only while the book is empty")]
    MarketNotEmpty,
    #[error("price must be positive")]
    PriceZero,
    #[error("quantity must be positive")]
    QuantityZero,
    #[error("price is not a multiple of the tick size")]
    PriceOffTick,
    #[error("quantity is not a multiple of the lot size")]
    QuantityOffLot,
    #[error("quantity below the market minimum")]
    QuantityBelowMin,
    #[error("quantity above the market maximum")]
    QuantityAboveMax,
    #[error("notional below the market minimum")]
    NotionalBelowMin,
    #[error("amount too large")]
    Overflow,
    #[error("post-only order would take liquidity")]
    PostOnlyWouldTake,
    #[error("fill-or-kill order cannot be filled completely")]
    FokNotFillable,
    #[error("client order id already used by an open order")]
    DuplicateClientOrderId,
    #[error("too many open orders")]
    TooManyOpenOrders,
    #[error("unknown order")]
    UnknownOrder,
    #[error("amount must be positive")]
    AmountZero,
    #[error("deposit already credited")]
    DuplicateDeposit,
    #[error("withdrawal id already used")]
    DuplicateWithdrawal,
    #[error("unknown withdrawal")]
    UnknownWithdrawal,
    #[error("withdrawal is not in a state that allows this")]
    WithdrawalState,
    #[error("fee rate too high")]
    FeeTooHigh,
    #[error("no deposit was credited under this key")]
    UnknownDeposit,
    #[error("deposit already reversed")]
    DuplicateReversal,
    #[error("withdrawals are frozen while a balance is below zero")]
    AccountFrozen,
}

/// Why an order left the book or never entered it, other than by filling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndReason {
    /// Canceled by its owner.
    Canceled,
    /// The unfilled part of an IOC or market order.
    Unfilled,
    /// Self-trade prevention.
    SelfTrade,
    /// A market order ran out of the funds it could spend.
    Funds,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WithdrawalState {
    Held,
    Sent { txid: ExternalKey },
    Completed,
    Failed { reason: Reason },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    AssetAdded {
        asset: AssetId,
        spec: AssetSpec,
    },
    MarketAdded {
        market: MarketId,
        spec: MarketSpec,
    },
    /// The market's spec after a change of grid, limits or fees.
    MarketChanged {
        market: MarketId,
        spec: MarketSpec,
    },
    MarketStatusChanged {
        market: MarketId,
        status: MarketStatus,
    },
    OrderAccepted {
        order: OrderId,
        user: UserId,
        market: MarketId,
        side: Side,
        order_type: OrderType,
        client_order_id: Option<ClientOrderId>,
        stp: StpMode,
    },
    OrderRejected {
        user: UserId,
        market: MarketId,
        client_order_id: Option<ClientOrderId>,
        reason: Reject,
    },
    /// Prices in quote minor units per whole base unit; quantities in base minor units; fees
    /// in quote minor units.
    Trade {
        market: MarketId,
        trade: TradeId,
        price: u128,
        quantity: u128,
        notional: u128,
        taker_side: Side,
        maker_order: OrderId,
        maker_user: UserId,
        maker_fee: u128,
        taker_order: OrderId,
        taker_user: UserId,
        taker_fee: u128,
    },
    /// A fill that left part of the order open. `filled` is cumulative.
    OrderPartiallyFilled {
        order: OrderId,
        user: UserId,
        market: MarketId,
        filled: u128,
        remaining: u128,
    },
    OrderFilled {
        order: OrderId,
        user: UserId,
        market: MarketId,
        filled: u128,
    },
    /// The order ended without filling completely; `remaining` is what did not fill.
    OrderEnded {
        order: OrderId,
        user: UserId,
        market: MarketId,
        filled: u128,
        remaining: u128,
        reason: EndReason,
    },
    /// The new totals of one account after a change.
    BalanceChanged {
        user: UserId,
        asset: AssetId,
        available: i128,
        locked: i128,
        held: i128,
    },
    /// The new total quantity at a price level (0: the level is gone). `update_id` increases by
    /// one per level change of the market, so a client can apply diffs onto a snapshot.
    BookLevelChanged {
        market: MarketId,
        side: Side,
        price: u128,
        quantity: u128,
        update_id: u64,
    },
    DepositCredited {
        user: UserId,
        asset: AssetId,
        amount: u128,
        key: ExternalKey,
    },
    WithdrawalChanged {
        withdrawal: WithdrawalId,
        user: UserId,
        asset: AssetId,
        amount: u128,
        fee: u128,
        state: WithdrawalState,
    },
    BalanceAdjusted {
        user: UserId,
        asset: AssetId,
        delta: i128,
        reason: Reason,
    },
    DepositReversed {
        user: UserId,
        asset: AssetId,
        amount: u128,
        key: ExternalKey,
        reason: Reason,
    },
    /// A command other than an order placement changed nothing.
    Rejected {
        user: Option<UserId>,
        reason: Reject,
    },
}
