//! The rows the store reads and writes. Amounts are integer minor units (`u128`, or `i128` where
//! a balance may be negative); times are Unix milliseconds; seqs are engine sequence numbers.

use bourse_core::{
    AssetId, EndReason, MarketId, OrderId, Side, StpMode, TimeInForce, TradeId, UserId,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub email_verified: bool,
    pub created_ms: i64,
    /// The enabled TOTP secret, sealed (encrypted and authenticated) by the server; opaque here.
    /// None: two-factor authentication is off.
    pub totp_sealed: Option<Vec<u8>>,
    /// A TOTP setup not yet confirmed (sealed like `totp_sealed`).
    pub totp_pending_sealed: Option<Vec<u8>>,
    /// The last TOTP time step accepted (0: none): a code is accepted once.
    pub totp_last_step: i64,
    /// Withdrawals go only to confirmed addresses of the user's whitelist.
    pub address_whitelist: bool,
    /// Set while an operator has locked the account (no login, no API key, no withdrawal).
    pub locked_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
    /// The link in a "new login" mail that signs out every session.
    SignOutEverywhere,
    /// The link that releases a withdrawal (subject: the withdrawal id).
    ConfirmWithdrawal,
    /// The link that confirms a withdrawal address for the whitelist (subject: the address id).
    ConfirmAddress,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::ResetPassword => "reset_password",
            TokenPurpose::SignOutEverywhere => "sign_out_everywhere",
            TokenPurpose::ConfirmWithdrawal => "confirm_withdrawal",
            TokenPurpose::ConfirmAddress => "confirm_address",
        }
    }
}

/// A single-use token; only its hash is stored (hex of SHA-256).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    pub token_hash: String,
    pub user: UserId,
    pub purpose: TokenPurpose,
    pub created_ms: i64,
    pub expires_ms: i64,
    /// What the token is about: a withdrawal id, a withdrawal-address id … (None: the user).
    pub subject: Option<i64>,
}

/// A token [`crate::Store::use_token`] accepted: whose it was and what it was about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsedToken {
    pub user: UserId,
    pub subject: Option<i64>,
}

/// A login session; only the hash of its cookie value is stored (hex of SHA-256).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    pub token_hash: String,
    pub user: UserId,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub ip: String,
    pub user_agent: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub id: i64,
    pub user: UserId,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub expires_ms: i64,
    pub ip: String,
    pub user_agent: String,
}

/// API key scopes as bits: what a key may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scopes(pub u8);

impl Scopes {
    pub const READ: Scopes = Scopes(1);
    pub const TRADE: Scopes = Scopes(2);
    pub const WITHDRAW: Scopes = Scopes(4);

    pub fn contains(self, other: Scopes) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn union(self, other: Scopes) -> Scopes {
        Scopes(self.0 | other.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiKey {
    pub user: UserId,
    /// The public key id sent in the `X-API-KEY` / `X-MBX-APIKEY` header; unique.
    pub key: String,
    /// The HMAC secret, sealed (encrypted and authenticated) by the server; opaque here.
    pub secret_sealed: Vec<u8>,
    pub label: String,
    pub scopes: Scopes,
    /// CIDRs or addresses, empty: any address.
    pub ip_allowlist: Vec<String>,
    pub created_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub id: i64,
    pub user: UserId,
    pub key: String,
    pub secret_sealed: Vec<u8>,
    pub label: String,
    pub scopes: Scopes,
    pub ip_allowlist: Vec<String>,
    pub created_ms: i64,
}

/// What happened to an account's security; see [`crate::Store::record_security_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityEventKind {
    LoginSucceeded,
    LoginFailed,
    Logout,
    SessionRevoked,
    PasswordChanged,
    PasswordResetRequested,
    EmailVerified,
    ApiKeyCreated,
    ApiKeyRevoked,
    WithdrawalRequested,
    TwoFactorEnabled,
    TwoFactorDisabled,
    WithdrawalAddressAdded,
    WithdrawalAddressConfirmed,
    WithdrawalAddressRemoved,
    AddressWhitelistOn,
    /// Locks withdrawals for 24 hours, like a password change.
    AddressWhitelistOff,
}

impl SecurityEventKind {
    /// Its code, e.g. `login_failed`: the text the store keeps in `security_events.kind` (the
    /// one list of codes is in `codec.rs`, checked there to name every kind).
    pub fn as_str(self) -> &'static str {
        crate::codec::Code::code(self)
    }
}

/// A security event to append to a user's audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSecurityEvent {
    pub user: UserId,
    pub at_ms: i64,
    pub kind: SecurityEventKind,
    /// The client's IP address as the server saw it.
    pub ip: String,
    /// The client's User-Agent (the caller truncates it to 256 chars).
    pub user_agent: String,
    /// What it was about: a session id, an API key label, a withdrawal id … (may be empty).
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityEventRow {
    pub id: i64,
    pub user: UserId,
    pub at_ms: i64,
    pub kind: SecurityEventKind,
    pub ip: String,
    pub user_agent: String,
    pub detail: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityEventFilter {
    /// Only events with `id < before`.
    pub before: Option<i64>,
    pub limit: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderKind {
    Limit,
    Market,
    MarketQuote,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    Open,
    PartiallyFilled,
    Filled,
    /// Ended by its owner or by the exchange (see `end_reason`).
    Canceled,
    /// Ended unfilled or partly filled by its own terms (IOC/market remainder, self-trade
    /// prevention, funds).
    Expired,
}

impl OrderStatus {
    pub fn is_open(self) -> bool {
        matches!(self, OrderStatus::Open | OrderStatus::PartiallyFilled)
    }
}

/// An order as the projector last saw it (accepted orders only: a rejected order has no id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRow {
    pub id: OrderId,
    pub user: UserId,
    pub market: MarketId,
    pub side: Side,
    pub kind: OrderKind,
    /// Limit orders only.
    pub time_in_force: Option<TimeInForce>,
    /// Limit orders only, quote minor units per whole base unit.
    pub price: Option<u128>,
    /// Base minor units (limit and market-by-quantity orders).
    pub quantity: Option<u128>,
    /// Quote minor units (market-by-quote-amount orders).
    pub quote_amount: Option<u128>,
    pub client_order_id: Option<String>,
    pub stp: StpMode,
    pub status: OrderStatus,
    pub end_reason: Option<EndReason>,
    /// Base minor units filled so far.
    pub filled: u128,
    /// Quote minor units traded so far (sum of trade notionals).
    pub filled_quote: u128,
    /// Fees paid so far, in quote minor units.
    pub fee: u128,
    pub created_seq: u64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TradeRow {
    pub market: MarketId,
    /// Unique within its market.
    pub id: TradeId,
    pub price: u128,
    pub quantity: u128,
    pub notional: u128,
    pub taker_side: Side,
    pub maker_order: OrderId,
    pub maker_user: UserId,
    pub maker_fee: u128,
    pub taker_order: OrderId,
    pub taker_user: UserId,
    pub taker_fee: u128,
    pub seq: u64,
    pub time_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerKind {
    /// An order locked or released funds without trading.
    Order,
    Trade,
    Deposit,
    Withdrawal,
    Adjustment,
    /// A credited deposit taken back: its transaction left the chain.
    Reversal,
}

/// One change of one account: the new totals and the change from the previous ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLedgerEntry {
    pub user: UserId,
    pub asset: AssetId,
    pub seq: u64,
    pub time_ms: i64,
    pub kind: LedgerKind,
    /// What caused it: an order id, a deposit key, a withdrawal id, an adjustment reason.
    pub reference: String,
    pub delta_available: i128,
    pub delta_locked: i128,
    pub delta_held: i128,
    pub available: i128,
    pub locked: i128,
    pub held: i128,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerRow {
    pub id: i64,
    pub entry: NewLedgerEntry,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceRow {
    pub user: UserId,
    pub asset: AssetId,
    pub available: i128,
    pub locked: i128,
    pub held: i128,
    /// The seq of the command that last changed it.
    pub seq: u64,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Interval {
    M1,
    M5,
    M15,
    H1,
    H4,
    D1,
}

impl Interval {
    pub const ALL: [Interval; 6] =
        [Interval::M1, Interval::M5, Interval::M15, Interval::H1, Interval::H4, Interval::D1];

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::H1 => "1h",
            Interval::H4 => "4h",
            Interval::D1 => "1d",
        }
    }

    pub fn parse(s: &str) -> Option<Interval> {
        Interval::ALL.into_iter().find(|i| i.as_str() == s)
    }

    pub fn millis(self) -> i64 {
        match self {
            Interval::M1 => 60_000,
            Interval::M5 => 300_000,
            Interval::M15 => 900_000,
            Interval::H1 => 3_600_000,
            Interval::H4 => 14_400_000,
            Interval::D1 => 86_400_000,
        }
    }

    /// The start of the candle that contains `time_ms` (UTC-aligned).
    pub fn open_of(self, time_ms: i64) -> i64 {
        time_ms - time_ms.rem_euclid(self.millis())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CandleRow {
    pub market: MarketId,
    pub interval: Interval,
    pub open_ms: i64,
    pub open: u128,
    pub high: u128,
    pub low: u128,
    pub close: u128,
    /// Base minor units traded.
    pub volume: u128,
    /// Quote minor units traded.
    pub quote_volume: u128,
    pub trades: u64,
}

/// The exchange's fee income in one asset during one UTC hour, in minor units of the asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeeRevenueRow {
    pub asset: AssetId,
    /// The start of the hour: a multiple of 3 600 000 (`Interval::H1.open_of(time_ms)`).
    pub hour_ms: i64,
    /// Maker and taker fees of the trades of the markets quoted in `asset`, by trade time.
    pub trade_fees: u128,
    /// Fees of the withdrawals of `asset` completed in the hour.
    pub withdrawal_fees: u128,
}

/// What one projector step writes: the read-model effect of the commands `from_seq..=to_seq`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Projection {
    pub from_seq: u64,
    pub to_seq: u64,
    /// Upserted by id (full rows).
    pub orders: Vec<OrderRow>,
    /// Inserted; a (market, id) that exists is an error.
    pub trades: Vec<TradeRow>,
    pub ledger: Vec<NewLedgerEntry>,
    /// Upserted by (user, asset).
    pub balances: Vec<BalanceRow>,
    /// Upserted by (market, interval, open_ms).
    pub candles: Vec<CandleRow>,
    /// Upserted by (asset, hour_ms) (full rows).
    pub fee_revenue: Vec<FeeRevenueRow>,
    /// Mails about these events, queued (due at once) with them, so each is queued once.
    pub mails: Vec<NewMail>,
    /// What the step publishes, kept for the processes without the worker (a [`RelayRow`]
    /// `from_seq..=to_seq`) when the worker runs apart from the gateway or the admin app.
    pub relay: Option<NewRelay>,
}

/// A coin's last reconciliation (its wallet's holdings against what users are owed, minor
/// units), as the wallet role recorded it: processes without the wallet role show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconciliationRow {
    pub asset: AssetId,
    pub liabilities: i128,
    pub hot: i128,
    /// `liabilities - hot`.
    pub shortfall: i128,
    /// Withdrawals wait: the shortfall is over the tolerance.
    pub paused: bool,
    pub at_ms: i64,
}

/// A projector step's publications for processes that do not run the projector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRelay {
    pub created_ms: i64,
    /// Encoded by the server (the store only keeps it).
    pub body: String,
}

/// A relay row: the publications of the projector step `from_seq..=to_seq`, committed with
/// it. The newest row's `to_seq` is the projector's cursor when every step writes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayRow {
    pub from_seq: u64,
    pub to_seq: u64,
    pub created_ms: i64,
    pub body: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub market: Option<MarketId>,
    /// Only open and partially filled orders.
    pub open_only: bool,
    /// Only orders with `id < before`.
    pub before: Option<OrderId>,
    pub limit: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FillFilter {
    pub market: Option<MarketId>,
    /// Only this order's fills.
    pub order: Option<OrderId>,
    /// Only fills ordered before this `(seq, market, trade id)` (the last row of the previous
    /// page); rows are ordered by that triple, descending.
    pub before: Option<(u64, MarketId, TradeId)>,
    pub limit: u32,
}

/// A Binance-style range: rows from `from_id` on (inclusive), or with `start_ms <= time <= end_ms`
/// (either bound optional), or — when neither `from_id` nor `start_ms` is given — the newest
/// `limit` rows (within `end_ms` if given); always returned oldest first (ascending id), at most
/// `limit` (clamped to LIST_LIMIT_MAX).
///
/// Every bound given applies (`id >= from_id`, `time >= start_ms`, `time <= end_ms`). With
/// `from_id` or `start_ms`: the first `limit` matching rows by ascending id; otherwise the last
/// `limit` of them. See [`crate::Store::trades_range`], [`crate::Store::fills_range`] and
/// [`crate::Store::orders_range`] for what the id and the time of each are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeFilter {
    /// Only rows with `id >= from_id`.
    pub from_id: Option<u64>,
    /// Only rows with `time >= start_ms`.
    pub start_ms: Option<i64>,
    /// Only rows with `time <= end_ms` (inclusive, as on Binance).
    pub end_ms: Option<i64>,
    pub limit: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerFilter {
    pub asset: Option<AssetId>,
    /// Only entries with `id < before`.
    pub before: Option<i64>,
    pub limit: u32,
}

// ---- wallet ---------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDepositAddress {
    pub user: UserId,
    pub asset: AssetId,
    /// As the node wrote it; unique per asset.
    pub address: String,
    /// The label the node keeps with it (e.g. `bourse:user:7`), to trace it from the node.
    pub label: String,
    pub created_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositAddressRow {
    pub id: i64,
    pub user: UserId,
    pub asset: AssetId,
    pub address: String,
    pub label: String,
    pub created_ms: i64,
}

/// Where a deposit is on its way to the balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DepositStatus {
    /// Seen, waiting for confirmations.
    Pending,
    /// In the balance (engine seq in [`DepositRow::seq`]).
    Credited,
    /// Left the chain before it was credited: never credited.
    Dropped,
    /// Left the chain after it was credited: the credit was taken back.
    Reversed,
    /// Smaller than the coin's minimum deposit: recorded, never credited.
    BelowMinimum,
}

impl DepositStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DepositStatus::Pending => "pending",
            DepositStatus::Credited => "credited",
            DepositStatus::Dropped => "dropped",
            DepositStatus::Reversed => "reversed",
            DepositStatus::BelowMinimum => "below_minimum",
        }
    }
}

/// One output paid to a deposit address, keyed by `(asset, txid, vout)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositRow {
    /// Assigned by the store; ignored by [`crate::Store::upsert_deposit`].
    pub id: i64,
    pub asset: AssetId,
    pub txid: String,
    pub vout: u32,
    pub user: UserId,
    pub address: String,
    pub amount: u128,
    /// Negative while the transaction conflicts with the best chain.
    pub confirmations: i64,
    pub status: DepositStatus,
    /// The engine seq of the credit (or of its reversal).
    pub seq: Option<u64>,
    pub first_seen_ms: i64,
    pub updated_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DepositFilter {
    pub asset: Option<AssetId>,
    /// Only deposits with `id < before`.
    pub before: Option<i64>,
    pub limit: u32,
}

/// Where a withdrawal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WithdrawalStatus {
    /// Recorded; the engine has not held the funds yet.
    Requested,
    /// The funds are held; waiting for the next batch.
    Held,
    /// The funds are held; waiting for the user to open the link mailed to them (then `Held`).
    Unconfirmed,
    /// The funds are held; waiting for an operator's approval (then `Held`).
    Review,
    /// Being cancelled: its hold is released, then it becomes `Failed`.
    Cancelling,
    /// In a batch being sent: after a crash the node's wallet is searched for it before
    /// anything is sent again.
    Sending,
    /// Broadcast (`txid`); waiting for confirmations.
    Sent,
    Completed,
    /// Not sent; the hold was released (`reason`).
    Failed,
}

impl WithdrawalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawalStatus::Requested => "requested",
            WithdrawalStatus::Held => "held",
            WithdrawalStatus::Unconfirmed => "unconfirmed",
            WithdrawalStatus::Review => "review",
            WithdrawalStatus::Cancelling => "cancelling",
            WithdrawalStatus::Sending => "sending",
            WithdrawalStatus::Sent => "sent",
            WithdrawalStatus::Completed => "completed",
            WithdrawalStatus::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewWithdrawal {
    pub user: UserId,
    pub asset: AssetId,
    pub address: String,
    pub amount: u128,
    pub fee: u128,
    /// The status it takes once its funds are held: `Held`, `Unconfirmed` or `Review`.
    pub after_hold: WithdrawalStatus,
    pub created_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithdrawalRow {
    /// Also the engine's withdrawal id.
    pub id: i64,
    pub user: UserId,
    pub asset: AssetId,
    pub address: String,
    pub amount: u128,
    pub fee: u128,
    pub status: WithdrawalStatus,
    /// The status it takes once its funds are held: `Held`, `Unconfirmed` or `Review`.
    pub after_hold: WithdrawalStatus,
    pub txid: Option<String>,
    pub reason: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WithdrawalFilter {
    pub asset: Option<AssetId>,
    /// Only withdrawals with `id < before`.
    pub before: Option<i64>,
    pub limit: u32,
}

/// An address a user may withdraw to when the whitelist is on; see
/// [`crate::Store::insert_withdrawal_address`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewWithdrawalAddress {
    pub user: UserId,
    pub asset: AssetId,
    pub address: String,
    /// The user's name for it.
    pub label: String,
    pub created_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithdrawalAddressRow {
    pub id: i64,
    pub user: UserId,
    pub asset: AssetId,
    pub address: String,
    pub label: String,
    pub created_ms: i64,
    /// When the user confirmed it (the mailed link); None: not yet.
    pub confirmed_ms: Option<i64>,
    /// Withdrawals may go to it from this time on (set with `confirmed_ms`).
    pub usable_from_ms: Option<i64>,
}

/// What an account-based chain's transaction (Ethereum) was signed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainSendKind {
    /// Pays a withdrawal ([`ChainSendRow::withdrawal`]).
    Withdrawal,
    /// Moves a deposit address's funds to the hot wallet.
    Sweep,
}

/// Where a signed transaction of an account-based chain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainSendStatus {
    /// Recorded; it may or may not have been broadcast yet.
    Signed,
    /// Broadcast; waiting for confirmations.
    Sent,
    /// Mined and confirmed ([`ChainSendRow::fee`]).
    Confirmed,
    /// Never reached the chain: its nonce may be used again.
    Failed,
}

/// A signed transaction, recorded before it is broadcast (so a crash never signs a second one
/// for the same purpose).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewChainSend {
    pub asset: AssetId,
    pub kind: ChainSendKind,
    /// The withdrawal it pays (kind Withdrawal).
    pub withdrawal: Option<i64>,
    pub from_address: String,
    pub to_address: String,
    pub nonce: u64,
    pub txid: String,
    /// The signed transaction's bytes.
    pub raw: Vec<u8>,
    /// Value moved, in the chain's smallest unit (wei).
    pub value: u128,
    pub created_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSendRow {
    pub id: i64,
    pub asset: AssetId,
    pub kind: ChainSendKind,
    pub withdrawal: Option<i64>,
    pub from_address: String,
    pub to_address: String,
    pub nonce: u64,
    pub txid: String,
    pub raw: Vec<u8>,
    pub value: u128,
    pub status: ChainSendStatus,
    /// The fee paid, once confirmed (wei).
    pub fee: Option<u128>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// Something an operator must look at now; see [`crate::Store::insert_alert`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAlert {
    pub at_ms: i64,
    /// The part that raised it, e.g. `wallet:LTC`.
    pub source: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRow {
    pub id: i64,
    pub at_ms: i64,
    pub source: String,
    pub message: String,
}

/// A mail to send; see [`crate::Store::enqueue_mail`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMail {
    pub to: String,
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    pub created_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailRow {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub created_ms: i64,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not tried again before this time.
    pub next_attempt_ms: i64,
    /// When the mail server took it; None while queued.
    pub sent_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// What an admin may do: each role may do everything the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdminRole {
    /// Reads every view; changes nothing.
    Viewer,
    /// Runs the exchange day to day: approves withdrawals, locks users, credits bank deposits,
    /// halts markets.
    Operator,
    /// Also adds assets and markets, changes fees and adjusts balances.
    Superadmin,
}

impl AdminRole {
    /// `viewer`, `operator` or `superadmin`: the text the store keeps.
    pub fn as_str(self) -> &'static str {
        crate::codec::Code::code(self)
    }

    pub fn from_name(name: &str) -> Option<AdminRole> {
        crate::codec::Code::from_code(name)
    }
}

/// See [`crate::Store::create_admin`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAdmin {
    pub email: String,
    pub password_hash: String,
    pub role: AdminRole,
    /// The TOTP secret, sealed by the caller (mandatory for admins).
    pub totp_sealed: Vec<u8>,
    pub created_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRow {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub role: AdminRole,
    pub totp_sealed: Vec<u8>,
    /// The last TOTP step accepted (each code works once).
    pub totp_last_step: i64,
    pub created_ms: i64,
    /// Set when the admin may no longer log in.
    pub disabled_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAdminSession {
    pub admin: i64,
    /// The hash of the session cookie's token.
    pub token_hash: String,
    pub created_ms: i64,
    /// When a TOTP code was last entered in this session (the login's).
    pub totp_ms: i64,
    pub ip: String,
    pub user_agent: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminSessionRow {
    pub id: i64,
    pub admin: i64,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub totp_ms: i64,
    pub ip: String,
    pub user_agent: String,
}

/// An entry of the admin audit log: who did what, to what, why, from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAdminAction {
    pub admin: i64,
    pub at_ms: i64,
    pub ip: String,
    /// What was done, e.g. `withdrawal.approve`, `login`.
    pub action: String,
    /// What it was done to, e.g. `withdrawal 17`, `user 5` (may be empty).
    pub target: String,
    /// The admin's reason (may be empty where none is asked for).
    pub reason: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminActionRow {
    pub id: i64,
    pub admin: i64,
    /// The admin's e-mail.
    pub admin_email: String,
    pub at_ms: i64,
    pub ip: String,
    pub action: String,
    pub target: String,
    pub reason: String,
    pub detail: String,
}

/// Where a balance adjustment is; see [`crate::Store::decide_adjustment`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdjustmentStatus {
    /// Proposed; waiting for another admin's approval (or anyone's rejection).
    Pending,
    /// Approved by an admin other than its proposer; waiting for the engine.
    Approved,
    /// The engine applied it ([`AdjustmentRow::outcome`]: its seq).
    Applied,
    /// The engine would not apply it ([`AdjustmentRow::outcome`]: why).
    Refused,
    /// Rejected by an admin; never sent to the engine ([`AdjustmentRow::outcome`]: why).
    Rejected,
}

impl AdjustmentStatus {
    /// `pending`, `approved`, `applied`, `refused` or `rejected`: the text the store keeps.
    pub fn as_str(self) -> &'static str {
        crate::codec::Code::code(self)
    }
}

/// A change of a user's available balance proposed by an admin; see
/// [`crate::Store::insert_adjustment`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAdjustment {
    pub user: UserId,
    pub asset: AssetId,
    /// Minor units, signed; never 0.
    pub delta: i128,
    /// The proposer's reason.
    pub reason: String,
    /// The admin who proposes it (who may not approve it).
    pub proposed_by: i64,
    pub proposed_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdjustmentRow {
    pub id: i64,
    pub user: UserId,
    pub asset: AssetId,
    pub delta: i128,
    pub reason: String,
    pub proposed_by: i64,
    /// The proposer's e-mail.
    pub proposed_by_email: String,
    pub proposed_ms: i64,
    pub status: AdjustmentStatus,
    /// The admin who approved or rejected it; None while pending.
    pub decided_by: Option<i64>,
    /// Their e-mail.
    pub decided_by_email: Option<String>,
    pub decided_ms: Option<i64>,
    /// Empty until there is one. Approved: the engine seq that applied it, or the engine's
    /// refusal; rejected: the rejecting admin's reason.
    pub outcome: String,
    /// When the engine applied or refused it.
    pub finished_ms: Option<i64>,
}

/// A backup the exchange attempted; see [`crate::Store::record_backup`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBackupRecord {
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    /// Where it went (a directory or a bucket), without credentials.
    pub destination: String,
    /// The backup's name at its destination.
    pub name: String,
    /// The engine seq of the state it holds.
    pub seq: u64,
    /// The hash of the engine state it holds (hex).
    pub state_hash: String,
    /// Its size.
    pub bytes: u64,
    /// Whether it completed; if not, `error` says why.
    pub ok: bool,
    pub error: Option<String>,
}

/// A recorded backup: [`NewBackupRecord`] with its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupRecord {
    pub id: i64,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    /// Where it went (a directory or a bucket), without credentials.
    pub destination: String,
    /// The backup's name at its destination.
    pub name: String,
    /// The engine seq of the state it holds.
    pub seq: u64,
    /// The hash of the engine state it holds (hex).
    pub state_hash: String,
    /// Its size.
    pub bytes: u64,
    /// Whether it completed; if not, `error` says why.
    pub ok: bool,
    pub error: Option<String>,
}
