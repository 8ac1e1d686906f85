//! Conversions between the row types and the plain values both backends store: decimal text for
//! amounts, short lowercase codes for enums, `i64` for ids and seqs. Writing checks that a value
//! fits (`Invalid`); reading checks that a stored value parses (`Corrupt`). Nothing here panics
//! or wraps. Also the row decoders, written once over the small [`Get`] trait that both backends'
//! rows implement.

use crate::{
    AdjustmentRow, AdjustmentStatus, AdminActionRow, AdminRole, AdminRow, AdminSessionRow,
    AlertRow, ApiKeyRow, BackupRecord, BalanceRow, CandleRow, ChainSendKind, ChainSendRow,
    ChainSendStatus, DepositAddressRow, DepositRow, DepositStatus, FeeRevenueRow, Interval,
    LedgerKind, LedgerRow, MailRow, NewLedgerEntry, OrderKind, OrderRow, OrderStatus,
    ReconciliationRow, RelayRow, Result, Scopes, SecurityEventKind, SecurityEventRow, SessionRow,
    StoreError, TokenPurpose, TradeRow, UsedToken, UserRow, WithdrawalAddressRow, WithdrawalRow,
    WithdrawalStatus,
};
use bourse_core::{
    AssetId, EndReason, MarketId, OrderId, Side, StpMode, TimeInForce, TradeId, UserId,
};
use std::collections::BTreeMap;

// ---- numbers ----------------------------------------------------------------------------------

/// A `u64` (id or seq) as the `i64` a `BIGINT` column holds; `Invalid` if it does not fit.
pub(crate) fn db_u64(what: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("{what} {value} exceeds i64")))
}

/// An upper bound for `id < before` as an inclusive `id <= bound`: `None` means no row can match.
pub(crate) fn upper_bound(before: Option<u64>) -> Option<i64> {
    match before {
        None => Some(i64::MAX),
        Some(0) => None,
        Some(b) => Some(i64::try_from(b - 1).unwrap_or(i64::MAX)),
    }
}

/// [`upper_bound`] for an `i64` cursor.
pub(crate) fn upper_bound_i64(before: Option<i64>) -> Option<i64> {
    match before {
        None => Some(i64::MAX),
        Some(b) => b.checked_sub(1),
    }
}

/// The exclusive row-value bound `(seq, market_id, id) < bound` that is exactly equivalent to
/// `FillFilter::before` (no stored row has a market id near `i64::MAX`).
pub(crate) fn fills_bound(before: Option<(u64, MarketId, TradeId)>) -> (i64, i64, i64) {
    const ALL: (i64, i64, i64) = (i64::MAX, i64::MAX, i64::MAX);
    match before {
        None => ALL,
        Some((seq, market, id)) => match (i64::try_from(seq), i64::try_from(id.0)) {
            (Err(_), _) => ALL,
            (Ok(seq), Ok(id)) => (seq, i64::from(market.0), id),
            // Every stored id of this (seq, market) is below `id`: take the whole (seq, market).
            (Ok(seq), Err(_)) => (seq, i64::from(market.0) + 1, 0),
        },
    }
}

/// Checks a projection's seqs before anything is written: they must be a non-empty range
/// starting at 1 or later, and `to_seq` must fit a `BIGINT`. Returns the cursor the projection
/// must find (`from_seq - 1`) and the one it leaves (`to_seq`).
pub(crate) fn projection_seqs(p: &crate::Projection) -> Result<(u64, i64)> {
    match p.from_seq.checked_sub(1) {
        Some(start) if p.to_seq >= p.from_seq => Ok((start, db_u64("seq", p.to_seq)?)),
        _ => Err(StoreError::Invalid(format!(
            "projection seqs {}..={} are not a range starting at 1 or later",
            p.from_seq, p.to_seq
        ))),
    }
}

/// The `LIKE` pattern (escape character `\`) of the values that contain `text`, with ASCII
/// letters folded to lower case; `%`, `_` and `\` in `text` match themselves. Compare it with a
/// value folded the same way: ASCII only, so both backends agree whatever the database's locale.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c.to_ascii_lowercase());
    }
    pattern.push('%');
    pattern
}

/// A list limit as bound to `LIMIT`: at most [`crate::LIST_LIMIT_MAX`].
pub(crate) fn limit(limit: u32) -> i64 {
    i64::from(limit.min(crate::LIST_LIMIT_MAX))
}

/// How a [`crate::RangeFilter`] is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeWalk {
    /// `from_id` given: the first matching rows from it on, by ascending id.
    FromId,
    /// `start_ms` given, no `from_id`: the first matching rows of the time window, by ascending id.
    FromTime,
    /// Neither: the newest matching rows, read by descending id (see [`range_rows`]).
    Newest,
}

/// A [`crate::RangeFilter`] as bound to its statements: an absent bound is the widest value, so
/// every statement of one range method takes the same parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) walk: RangeWalk,
    /// Inclusive lower bound on id.
    pub(crate) first_id: i64,
    /// Inclusive bounds on the time.
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    pub(crate) limit: i64,
}

/// The bounds of `r`; `None` if no row can match (a `from_id` above every storable id).
pub(crate) fn range(r: &crate::RangeFilter) -> Option<Range> {
    let first_id = match r.from_id {
        None => i64::MIN,
        Some(id) => i64::try_from(id).ok()?,
    };
    let walk = match (r.from_id, r.start_ms) {
        (Some(_), _) => RangeWalk::FromId,
        (None, Some(_)) => RangeWalk::FromTime,
        (None, None) => RangeWalk::Newest,
    };
    Some(Range {
        walk,
        first_id,
        start_ms: r.start_ms.unwrap_or(i64::MIN),
        end_ms: r.end_ms.unwrap_or(i64::MAX),
        limit: limit(r.limit),
    })
}

/// Decodes the rows of a range read, oldest (lowest id) first: a [`RangeWalk::Newest`] read came
/// newest first.
pub(crate) fn range_rows<R, T>(
    range: &Range,
    rows: &[R],
    f: impl Fn(&R) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = all(rows, f)?;
    if range.walk == RangeWalk::Newest {
        out.reverse();
    }
    Ok(out)
}

fn corrupt(column: &'static str, value: impl ToString) -> StoreError {
    StoreError::Corrupt { column, value: value.to_string() }
}

fn to_u64(column: &'static str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| corrupt(column, v))
}

fn to_u32(column: &'static str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| corrupt(column, v))
}

/// An amount as stored: decimal text of integer minor units.
pub(crate) fn amount(v: u128) -> String {
    v.to_string()
}

/// A signed amount as stored.
pub(crate) fn signed(v: i128) -> String {
    v.to_string()
}

pub(crate) fn opt_amount(v: Option<u128>) -> Option<String> {
    v.map(amount)
}

fn parse_u128(column: &'static str, s: &str) -> Result<u128> {
    if s.starts_with('+') {
        return Err(corrupt(column, s));
    }
    s.parse().map_err(|_| corrupt(column, s))
}

fn parse_i128(column: &'static str, s: &str) -> Result<i128> {
    if s.starts_with('+') {
        return Err(corrupt(column, s));
    }
    s.parse().map_err(|_| corrupt(column, s))
}

/// A balance adjustment's delta as stored; 0 (a change that changes nothing) is `Invalid`.
pub(crate) fn adjustment_delta(delta: i128) -> Result<String> {
    if delta == 0 {
        return Err(StoreError::Invalid("adjustment delta 0".into()));
    }
    Ok(signed(delta))
}

// ---- fee revenue ------------------------------------------------------------------------------

/// The length of a fee-revenue bucket: one hour.
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// A fee-revenue row's `hour_ms` as stored: it must start an hour (`Invalid` otherwise).
pub(crate) fn fee_hour(hour_ms: i64) -> Result<i64> {
    if hour_ms.rem_euclid(HOUR_MS) != 0 {
        return Err(StoreError::Invalid(format!("fee revenue hour_ms {hour_ms} is not an hour")));
    }
    Ok(hour_ms)
}

/// The start of the hour that contains `time_ms` (read from `column`); `Corrupt` for the few
/// times before the first hour an `i64` can hold.
fn hour_of(column: &'static str, time_ms: i64) -> Result<i64> {
    time_ms.div_euclid(HOUR_MS).checked_mul(HOUR_MS).ok_or_else(|| corrupt(column, time_ms))
}

/// Rows per page the fee backfill reads.
pub(crate) const BACKFILL_PAGE: i64 = 10_000;

/// Fee sums by (asset, hour), added up exactly as the backfill reads trades and withdrawals:
/// memory grows with the buckets, not with the rows.
#[derive(Debug, Default)]
pub(crate) struct FeeBuckets(BTreeMap<(u32, i64), (u128, u128)>);

impl FeeBuckets {
    fn bucket(&mut self, asset: AssetId, hour_ms: i64) -> &mut (u128, u128) {
        self.0.entry((asset.0, hour_ms)).or_insert((0, 0))
    }

    /// Adds a trade (columns `maker_fee`, `taker_fee`, `time_ms`) of a market quoted in `quote`
    /// to the trade fees of its hour.
    pub(crate) fn add_trade(&mut self, quote: AssetId, r: &impl Get) -> Result<()> {
        let hour_ms = hour_of("time_ms", r.i64("time_ms")?)?;
        let fees = r.u128("maker_fee")?.checked_add(r.u128("taker_fee")?);
        let sum = self.bucket(quote, hour_ms);
        sum.0 = fees.and_then(|f| sum.0.checked_add(f)).ok_or_else(|| overflow("trade_fees"))?;
        Ok(())
    }

    /// Adds a completed withdrawal (columns `asset_id`, `fee`, `updated_ms`) to the withdrawal
    /// fees of the hour it completed in.
    pub(crate) fn add_withdrawal(&mut self, r: &impl Get) -> Result<()> {
        let asset = AssetId(r.u32("asset_id")?);
        let hour_ms = hour_of("updated_ms", r.i64("updated_ms")?)?;
        let fee = r.u128("fee")?;
        let sum = self.bucket(asset, hour_ms);
        sum.1 = sum.1.checked_add(fee).ok_or_else(|| overflow("withdrawal_fees"))?;
        Ok(())
    }

    /// One row per bucket, by (asset, hour).
    pub(crate) fn into_rows(self) -> Vec<FeeRevenueRow> {
        self.0
            .into_iter()
            .map(|((asset, hour_ms), (trade_fees, withdrawal_fees))| FeeRevenueRow {
                asset: AssetId(asset),
                hour_ms,
                trade_fees,
                withdrawal_fees,
            })
            .collect()
    }
}

/// A sum of stored fees that does not fit a `u128`: no real one can, so the rows are corrupt.
fn overflow(column: &'static str) -> StoreError {
    corrupt(column, "a sum above u128::MAX")
}

// ---- bytes ------------------------------------------------------------------------------------

/// Bytes as stored in a `TEXT` column: lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// Lower-case hex back to bytes; anything else (upper case, odd length, other characters) is
/// `Corrupt`, so what reads back is exactly what was written.
fn parse_hex(column: &'static str, s: &str) -> Result<Vec<u8>> {
    if !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(corrupt(column, s));
    }
    ::hex::decode(s).map_err(|_| corrupt(column, s))
}

// ---- enums ------------------------------------------------------------------------------------

/// An enum stored as a short lowercase code.
pub(crate) trait Code: Sized + Copy + 'static {
    const ALL: &'static [Self];
    fn code(self) -> &'static str;
    fn from_code(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.code() == s)
    }
}

macro_rules! codes {
    ($ty:ty { $($variant:path => $code:literal),+ $(,)? }) => {
        impl Code for $ty {
            const ALL: &'static [Self] = &[$($variant),+];
            fn code(self) -> &'static str {
                match self {
                    $($variant => $code),+
                }
            }
        }
    };
}

codes!(Side { Side::Buy => "buy", Side::Sell => "sell" });
codes!(TimeInForce {
    TimeInForce::Gtc => "gtc",
    TimeInForce::Ioc => "ioc",
    TimeInForce::Fok => "fok",
    TimeInForce::PostOnly => "post_only",
});
codes!(StpMode {
    StpMode::None => "none",
    StpMode::ExpireTaker => "expire_taker",
    StpMode::ExpireMaker => "expire_maker",
    StpMode::ExpireBoth => "expire_both",
});
codes!(EndReason {
    EndReason::Canceled => "canceled",
    EndReason::Unfilled => "unfilled",
    EndReason::SelfTrade => "self_trade",
    EndReason::Funds => "funds",
});
codes!(OrderKind {
    OrderKind::Limit => "limit",
    OrderKind::Market => "market",
    OrderKind::MarketQuote => "market_quote",
});
// `open` and `partial` are also spelled out in the SQL of open-order queries and indexes.
codes!(OrderStatus {
    OrderStatus::Open => "open",
    OrderStatus::PartiallyFilled => "partial",
    OrderStatus::Filled => "filled",
    OrderStatus::Canceled => "canceled",
    OrderStatus::Expired => "expired",
});
codes!(LedgerKind {
    LedgerKind::Order => "order",
    LedgerKind::Trade => "trade",
    LedgerKind::Deposit => "deposit",
    LedgerKind::Withdrawal => "withdrawal",
    LedgerKind::Adjustment => "adjustment",
    LedgerKind::Reversal => "reversal",
});

impl Code for Interval {
    const ALL: &'static [Self] = &Interval::ALL;
    fn code(self) -> &'static str {
        self.as_str()
    }
}

codes!(DepositStatus {
    DepositStatus::Pending => "pending",
    DepositStatus::Credited => "credited",
    DepositStatus::Dropped => "dropped",
    DepositStatus::Reversed => "reversed",
    DepositStatus::BelowMinimum => "below_minimum",
});

// `requested`, `held`, `unconfirmed`, `review`, `cancelling`, `sending` and `sent` are also
// spelled out in the SQL of open-withdrawal queries and indexes, `requested` and `held` in
// inserts and defaults.
codes!(WithdrawalStatus {
    WithdrawalStatus::Requested => "requested",
    WithdrawalStatus::Held => "held",
    WithdrawalStatus::Unconfirmed => "unconfirmed",
    WithdrawalStatus::Review => "review",
    WithdrawalStatus::Cancelling => "cancelling",
    WithdrawalStatus::Sending => "sending",
    WithdrawalStatus::Sent => "sent",
    WithdrawalStatus::Completed => "completed",
    WithdrawalStatus::Failed => "failed",
});

// `signed` and `sent` are also spelled out in the SQL of open-send queries and indexes, and
// `failed` in the nonce index and queries.
codes!(ChainSendKind {
    ChainSendKind::Withdrawal => "withdrawal",
    ChainSendKind::Sweep => "sweep",
});
codes!(ChainSendStatus {
    ChainSendStatus::Signed => "signed",
    ChainSendStatus::Sent => "sent",
    ChainSendStatus::Confirmed => "confirmed",
    ChainSendStatus::Failed => "failed",
});

impl Code for TokenPurpose {
    const ALL: &'static [Self] = &[
        TokenPurpose::VerifyEmail,
        TokenPurpose::ResetPassword,
        TokenPurpose::SignOutEverywhere,
        TokenPurpose::ConfirmWithdrawal,
        TokenPurpose::ConfirmAddress,
    ];
    fn code(self) -> &'static str {
        self.as_str()
    }
}

// `pending` and `approved` are also spelled out in the SQL that inserts and decides
// adjustments, `approved` in the SQL that finishes them.
codes!(AdjustmentStatus {
    AdjustmentStatus::Pending => "pending",
    AdjustmentStatus::Approved => "approved",
    AdjustmentStatus::Applied => "applied",
    AdjustmentStatus::Refused => "refused",
    AdjustmentStatus::Rejected => "rejected",
});

codes!(AdminRole {
    AdminRole::Viewer => "viewer",
    AdminRole::Operator => "operator",
    AdminRole::Superadmin => "superadmin",
});

// The only list of these codes: `SecurityEventKind::as_str` reads it, and the `match` this
// expands to fails to compile if a kind is missing.
codes!(SecurityEventKind {
    SecurityEventKind::LoginSucceeded => "login_succeeded",
    SecurityEventKind::LoginFailed => "login_failed",
    SecurityEventKind::Logout => "logout",
    SecurityEventKind::SessionRevoked => "session_revoked",
    SecurityEventKind::PasswordChanged => "password_changed",
    SecurityEventKind::PasswordResetRequested => "password_reset_requested",
    SecurityEventKind::EmailVerified => "email_verified",
    SecurityEventKind::ApiKeyCreated => "api_key_created",
    SecurityEventKind::ApiKeyRevoked => "api_key_revoked",
    SecurityEventKind::WithdrawalRequested => "withdrawal_requested",
    SecurityEventKind::TwoFactorEnabled => "two_factor_enabled",
    SecurityEventKind::TwoFactorDisabled => "two_factor_disabled",
    SecurityEventKind::WithdrawalAddressAdded => "withdrawal_address_added",
    SecurityEventKind::WithdrawalAddressConfirmed => "withdrawal_address_confirmed",
    SecurityEventKind::WithdrawalAddressRemoved => "withdrawal_address_removed",
    SecurityEventKind::AddressWhitelistOn => "address_whitelist_on",
    SecurityEventKind::AddressWhitelistOff => "address_whitelist_off",
});

/// The code of a withdrawal's `after_hold`: only `held`, `unconfirmed` or `review` (anything
/// else is `Invalid`).
pub(crate) fn after_hold(status: WithdrawalStatus) -> Result<&'static str> {
    match status {
        WithdrawalStatus::Held | WithdrawalStatus::Unconfirmed | WithdrawalStatus::Review => {
            Ok(status.code())
        }
        other => Err(StoreError::Invalid(format!("after_hold {}", other.code()))),
    }
}

/// The optional code of an optional enum.
pub(crate) fn opt_code<T: Code>(v: Option<T>) -> Option<&'static str> {
    v.map(Code::code)
}

// ---- the allow-list of an API key -------------------------------------------------------------

/// The allow-list as stored: comma-joined. Entries are addresses or CIDRs, so an empty entry or
/// one with a comma could not be read back the same and is refused.
pub(crate) fn join_allowlist(list: &[String]) -> Result<String> {
    if let Some(bad) = list.iter().find(|e| e.is_empty() || e.contains(',')) {
        return Err(StoreError::Invalid(format!("ip allow-list entry {bad:?}")));
    }
    Ok(list.join(","))
}

fn split_allowlist(s: &str) -> Vec<String> {
    if s.is_empty() { Vec::new() } else { s.split(',').map(str::to_string).collect() }
}

// ---- reading rows -----------------------------------------------------------------------------

/// Typed access to a result row by column name; implemented by both backends' rows.
pub(crate) trait Get {
    fn i64(&self, column: &'static str) -> Result<i64>;
    fn opt_i64(&self, column: &'static str) -> Result<Option<i64>>;
    fn i32(&self, column: &'static str) -> Result<i32>;
    fn text(&self, column: &'static str) -> Result<&str>;
    fn opt_text(&self, column: &'static str) -> Result<Option<&str>>;
    fn boolean(&self, column: &'static str) -> Result<bool>;
    fn bytes(&self, column: &'static str) -> Result<Vec<u8>>;
    fn opt_bytes(&self, column: &'static str) -> Result<Option<Vec<u8>>>;

    fn string(&self, column: &'static str) -> Result<String> {
        self.text(column).map(str::to_string)
    }
    fn opt_string(&self, column: &'static str) -> Result<Option<String>> {
        Ok(self.opt_text(column)?.map(str::to_string))
    }
    fn u64(&self, column: &'static str) -> Result<u64> {
        to_u64(column, self.i64(column)?)
    }
    fn u32(&self, column: &'static str) -> Result<u32> {
        to_u32(column, self.i64(column)?)
    }
    fn u128(&self, column: &'static str) -> Result<u128> {
        parse_u128(column, self.text(column)?)
    }
    fn opt_u128(&self, column: &'static str) -> Result<Option<u128>> {
        self.opt_text(column)?.map(|s| parse_u128(column, s)).transpose()
    }
    fn i128(&self, column: &'static str) -> Result<i128> {
        parse_i128(column, self.text(column)?)
    }
    fn code<T: Code>(&self, column: &'static str) -> Result<T> {
        let s = self.text(column)?;
        T::from_code(s).ok_or_else(|| corrupt(column, s))
    }
    fn opt_code<T: Code>(&self, column: &'static str) -> Result<Option<T>> {
        match self.opt_text(column)? {
            None => Ok(None),
            Some(s) => T::from_code(s).map(Some).ok_or_else(|| corrupt(column, s)),
        }
    }
}

macro_rules! impl_get {
    ($row:ty) => {
        impl crate::codec::Get for $row {
            fn i64(&self, column: &'static str) -> crate::Result<i64> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn opt_i64(&self, column: &'static str) -> crate::Result<Option<i64>> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn i32(&self, column: &'static str) -> crate::Result<i32> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn text(&self, column: &'static str) -> crate::Result<&str> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn opt_text(&self, column: &'static str) -> crate::Result<Option<&str>> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn boolean(&self, column: &'static str) -> crate::Result<bool> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn bytes(&self, column: &'static str) -> crate::Result<Vec<u8>> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
            fn opt_bytes(&self, column: &'static str) -> crate::Result<Option<Vec<u8>>> {
                Ok(sqlx::Row::try_get(self, column)?)
            }
        }
    };
}
pub(crate) use impl_get;

pub(crate) fn user_row(r: &impl Get) -> Result<UserRow> {
    Ok(UserRow {
        id: UserId(r.u64("id")?),
        email: r.string("email")?,
        password_hash: r.string("password_hash")?,
        email_verified: r.boolean("email_verified")?,
        created_ms: r.i64("created_ms")?,
        totp_sealed: r.opt_bytes("totp_sealed")?,
        totp_pending_sealed: r.opt_bytes("totp_pending_sealed")?,
        totp_last_step: r.i64("totp_last_step")?,
        address_whitelist: r.boolean("address_whitelist")?,
        locked_ms: r.opt_i64("locked_ms")?,
    })
}

/// The row `USE_TOKEN` returns.
pub(crate) fn used_token(r: &impl Get) -> Result<UsedToken> {
    Ok(UsedToken { user: UserId(r.u64("user_id")?), subject: r.opt_i64("subject")? })
}

pub(crate) fn session_row(r: &impl Get) -> Result<SessionRow> {
    Ok(SessionRow {
        id: r.i64("id")?,
        user: UserId(r.u64("user_id")?),
        created_ms: r.i64("created_ms")?,
        last_seen_ms: r.i64("last_seen_ms")?,
        expires_ms: r.i64("expires_ms")?,
        ip: r.string("ip")?,
        user_agent: r.string("user_agent")?,
    })
}

pub(crate) fn api_key_row(r: &impl Get) -> Result<ApiKeyRow> {
    let scopes = r.i32("scopes")?;
    Ok(ApiKeyRow {
        id: r.i64("id")?,
        user: UserId(r.u64("user_id")?),
        key: r.string("key_id")?,
        secret_sealed: r.bytes("secret_sealed")?,
        label: r.string("label")?,
        scopes: Scopes(u8::try_from(scopes).map_err(|_| corrupt("scopes", scopes))?),
        ip_allowlist: split_allowlist(r.text("ip_allowlist")?),
        created_ms: r.i64("created_ms")?,
    })
}

pub(crate) fn order_row(r: &impl Get) -> Result<OrderRow> {
    Ok(OrderRow {
        id: OrderId(r.u64("id")?),
        user: UserId(r.u64("user_id")?),
        market: MarketId(r.u32("market_id")?),
        side: r.code("side")?,
        kind: r.code("kind")?,
        time_in_force: r.opt_code("time_in_force")?,
        price: r.opt_u128("price")?,
        quantity: r.opt_u128("quantity")?,
        quote_amount: r.opt_u128("quote_amount")?,
        client_order_id: r.opt_string("client_order_id")?,
        stp: r.code("stp")?,
        status: r.code("status")?,
        end_reason: r.opt_code("end_reason")?,
        filled: r.u128("filled")?,
        filled_quote: r.u128("filled_quote")?,
        fee: r.u128("fee")?,
        created_seq: r.u64("created_seq")?,
        created_ms: r.i64("created_ms")?,
        updated_ms: r.i64("updated_ms")?,
    })
}

pub(crate) fn trade_row(r: &impl Get) -> Result<TradeRow> {
    Ok(TradeRow {
        market: MarketId(r.u32("market_id")?),
        id: TradeId(r.u64("id")?),
        price: r.u128("price")?,
        quantity: r.u128("quantity")?,
        notional: r.u128("notional")?,
        taker_side: r.code("taker_side")?,
        maker_order: OrderId(r.u64("maker_order")?),
        maker_user: UserId(r.u64("maker_user")?),
        maker_fee: r.u128("maker_fee")?,
        taker_order: OrderId(r.u64("taker_order")?),
        taker_user: UserId(r.u64("taker_user")?),
        taker_fee: r.u128("taker_fee")?,
        seq: r.u64("seq")?,
        time_ms: r.i64("time_ms")?,
    })
}

pub(crate) fn ledger_row(r: &impl Get) -> Result<LedgerRow> {
    Ok(LedgerRow {
        id: r.i64("id")?,
        entry: NewLedgerEntry {
            user: UserId(r.u64("user_id")?),
            asset: AssetId(r.u32("asset_id")?),
            seq: r.u64("seq")?,
            time_ms: r.i64("time_ms")?,
            kind: r.code("kind")?,
            reference: r.string("reference")?,
            delta_available: r.i128("delta_available")?,
            delta_locked: r.i128("delta_locked")?,
            delta_held: r.i128("delta_held")?,
            available: r.i128("available")?,
            locked: r.i128("locked")?,
            held: r.i128("held")?,
        },
    })
}

pub(crate) fn balance_row(r: &impl Get) -> Result<BalanceRow> {
    Ok(BalanceRow {
        user: UserId(r.u64("user_id")?),
        asset: AssetId(r.u32("asset_id")?),
        available: r.i128("available")?,
        locked: r.i128("locked")?,
        held: r.i128("held")?,
        seq: r.u64("seq")?,
    })
}

pub(crate) fn candle_row(r: &impl Get) -> Result<CandleRow> {
    Ok(CandleRow {
        market: MarketId(r.u32("market_id")?),
        interval: r.code("period")?,
        open_ms: r.i64("open_ms")?,
        open: r.u128("open")?,
        high: r.u128("high")?,
        low: r.u128("low")?,
        close: r.u128("close")?,
        volume: r.u128("volume")?,
        quote_volume: r.u128("quote_volume")?,
        trades: r.u64("trades")?,
    })
}

pub(crate) fn deposit_address_row(r: &impl Get) -> Result<DepositAddressRow> {
    Ok(DepositAddressRow {
        id: r.i64("id")?,
        user: UserId(r.u64("user_id")?),
        asset: AssetId(r.u32("asset_id")?),
        address: r.string("address")?,
        label: r.string("label")?,
        created_ms: r.i64("created_ms")?,
    })
}

pub(crate) fn deposit_row(r: &impl Get) -> Result<DepositRow> {
    Ok(DepositRow {
        id: r.i64("id")?,
        asset: AssetId(r.u32("asset_id")?),
        txid: r.string("txid")?,
        vout: r.u32("vout")?,
        user: UserId(r.u64("user_id")?),
        address: r.string("address")?,
        amount: r.u128("amount")?,
        confirmations: r.i64("confirmations")?,
        status: r.code("status")?,
        seq: r.opt_i64("seq")?.map(|s| to_u64("seq", s)).transpose()?,
        first_seen_ms: r.i64("first_seen_ms")?,
        updated_ms: r.i64("updated_ms")?,
    })
}

pub(crate) fn withdrawal_row(r: &impl Get) -> Result<WithdrawalRow> {
    Ok(WithdrawalRow {
        id: r.i64("id")?,
        user: UserId(r.u64("user_id")?),
        asset: AssetId(r.u32("asset_id")?),
        address: r.string("address")?,
        amount: r.u128("amount")?,
        fee: r.u128("fee")?,
        status: r.code("status")?,
        after_hold: r.code("after_hold")?,
        txid: r.opt_string("txid")?,
        reason: r.opt_string("reason")?,
        created_ms: r.i64("created_ms")?,
        updated_ms: r.i64("updated_ms")?,
    })
}

pub(crate) fn withdrawal_address_row(r: &impl Get) -> Result<WithdrawalAddressRow> {
    Ok(WithdrawalAddressRow {
        id: r.i64("id")?,
        user: UserId(r.u64("user_id")?),
        asset: AssetId(r.u32("asset_id")?),
        address: r.string("address")?,
        label: r.string("label")?,
        created_ms: r.i64("created_ms")?,
        confirmed_ms: r.opt_i64("confirmed_ms")?,
        usable_from_ms: r.opt_i64("usable_from_ms")?,
    })
}

pub(crate) fn chain_send_row(r: &impl Get) -> Result<ChainSendRow> {
    Ok(ChainSendRow {
        id: r.i64("id")?,
        asset: AssetId(r.u32("asset_id")?),
        kind: r.code("kind")?,
        withdrawal: r.opt_i64("withdrawal_id")?,
        from_address: r.string("from_address")?,
        to_address: r.string("to_address")?,
        nonce: r.u64("nonce")?,
        txid: r.string("txid")?,
        raw: parse_hex("raw", r.text("raw")?)?,
        value: r.u128("value")?,
        status: r.code("status")?,
        fee: r.opt_u128("fee")?,
        created_ms: r.i64("created_ms")?,
        updated_ms: r.i64("updated_ms")?,
    })
}

/// The nonce after the highest one (`MAX(nonce)` in column `n`, NULL: none).
pub(crate) fn next_nonce(r: &impl Get) -> Result<Option<u64>> {
    match r.opt_i64("n")? {
        None => Ok(None),
        // At most `i64::MAX`, so one more still fits a `u64`.
        Some(n) => to_u64("nonce", n).map(|n| Some(n.saturating_add(1))),
    }
}

pub(crate) fn security_event_row(r: &impl Get) -> Result<SecurityEventRow> {
    Ok(SecurityEventRow {
        id: r.i64("id")?,
        user: UserId(r.u64("user_id")?),
        at_ms: r.i64("at_ms")?,
        kind: r.code("kind")?,
        ip: r.string("ip")?,
        user_agent: r.string("user_agent")?,
        detail: r.string("detail")?,
    })
}

pub(crate) fn alert_row(r: &impl Get) -> Result<AlertRow> {
    Ok(AlertRow {
        id: r.i64("id")?,
        at_ms: r.i64("at_ms")?,
        source: r.string("source")?,
        message: r.string("message")?,
    })
}

pub(crate) fn backup_row(r: &impl Get) -> Result<BackupRecord> {
    Ok(BackupRecord {
        id: r.i64("id")?,
        started_at_ms: r.i64("started_at_ms")?,
        finished_at_ms: r.i64("finished_at_ms")?,
        destination: r.string("destination")?,
        name: r.string("name")?,
        seq: r.u64("seq")?,
        state_hash: r.string("state_hash")?,
        bytes: r.u64("bytes")?,
        ok: r.boolean("ok")?,
        error: r.opt_string("error")?,
    })
}

pub(crate) fn mail_row(r: &impl Get) -> Result<MailRow> {
    Ok(MailRow {
        id: r.i64("id")?,
        to: r.string("to_address")?,
        subject: r.string("subject")?,
        text: r.string("text_body")?,
        html: r.string("html_body")?,
        created_ms: r.i64("created_ms")?,
        attempts: r.u32("attempts")?,
        next_attempt_ms: r.i64("next_attempt_ms")?,
        sent_ms: r.opt_i64("sent_ms")?,
        last_error: r.opt_string("last_error")?,
    })
}

pub(crate) fn admin_row(r: &impl Get) -> Result<AdminRow> {
    Ok(AdminRow {
        id: r.i64("id")?,
        email: r.string("email")?,
        password_hash: r.string("password_hash")?,
        role: r.code("role")?,
        totp_sealed: r.bytes("totp_sealed")?,
        totp_last_step: r.i64("totp_last_step")?,
        created_ms: r.i64("created_ms")?,
        disabled_ms: r.opt_i64("disabled_ms")?,
    })
}

pub(crate) fn admin_session_row(r: &impl Get) -> Result<AdminSessionRow> {
    Ok(AdminSessionRow {
        id: r.i64("id")?,
        admin: r.i64("admin_id")?,
        created_ms: r.i64("created_ms")?,
        last_seen_ms: r.i64("last_seen_ms")?,
        totp_ms: r.i64("totp_ms")?,
        ip: r.string("ip")?,
        user_agent: r.string("user_agent")?,
    })
}

pub(crate) fn admin_action_row(r: &impl Get) -> Result<AdminActionRow> {
    Ok(AdminActionRow {
        id: r.i64("id")?,
        admin: r.i64("admin_id")?,
        admin_email: r.string("admin_email")?,
        at_ms: r.i64("at_ms")?,
        ip: r.string("ip")?,
        action: r.string("action")?,
        target: r.string("target")?,
        reason: r.string("reason")?,
        detail: r.string("detail")?,
    })
}

pub(crate) fn adjustment_row(r: &impl Get) -> Result<AdjustmentRow> {
    Ok(AdjustmentRow {
        id: r.i64("id")?,
        user: UserId(r.u64("user_id")?),
        asset: AssetId(r.u32("asset_id")?),
        delta: r.i128("delta")?,
        reason: r.string("reason")?,
        proposed_by: r.i64("proposed_by")?,
        proposed_by_email: r.string("proposed_by_email")?,
        proposed_ms: r.i64("proposed_ms")?,
        status: r.code("status")?,
        decided_by: r.opt_i64("decided_by")?,
        decided_by_email: r.opt_string("decided_by_email")?,
        decided_ms: r.opt_i64("decided_ms")?,
        outcome: r.string("outcome")?,
        finished_ms: r.opt_i64("finished_ms")?,
    })
}

pub(crate) fn reconciliation_row(r: &impl Get) -> Result<ReconciliationRow> {
    Ok(ReconciliationRow {
        asset: AssetId(r.u32("asset_id")?),
        liabilities: r.i128("liabilities")?,
        hot: r.i128("hot")?,
        shortfall: r.i128("shortfall")?,
        paused: r.boolean("paused")?,
        at_ms: r.i64("at_ms")?,
    })
}

pub(crate) fn relay_row(r: &impl Get) -> Result<RelayRow> {
    Ok(RelayRow {
        from_seq: r.u64("from_seq")?,
        to_seq: r.u64("to_seq")?,
        created_ms: r.i64("created_ms")?,
        body: r.string("body")?,
    })
}

pub(crate) fn fee_revenue_row(r: &impl Get) -> Result<FeeRevenueRow> {
    Ok(FeeRevenueRow {
        asset: AssetId(r.u32("asset_id")?),
        hour_ms: r.i64("hour_ms")?,
        trade_fees: r.u128("trade_fees")?,
        withdrawal_fees: r.u128("withdrawal_fees")?,
    })
}

/// The admin ids of `WITHDRAWAL_APPROVALS`, in order.
pub(crate) fn approvers<R: Get>(rows: &[R]) -> Result<Vec<i64>> {
    all(rows, |r| r.i64("admin_id"))
}

/// Decodes every row with `f`.
pub(crate) fn all<R, T>(rows: &[R], f: impl Fn(&R) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

/// Maps a unique-constraint violation to `Conflict(what)`.
pub(crate) fn conflict(e: sqlx::Error, what: &'static str) -> StoreError {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Database(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn amounts_parse_exactly_or_are_corrupt() {
        assert_eq!(parse_u128("c", &amount(u128::MAX)).unwrap(), u128::MAX);
        assert_eq!(parse_i128("c", &signed(i128::MIN)).unwrap(), i128::MIN);
        for bad in ["", "+1", "-1", "1.5", "1e3", " 1", "340282366920938463463374607431768211456"] {
            assert!(matches!(parse_u128("c", bad), Err(StoreError::Corrupt { .. })), "{bad}");
        }
        assert!(matches!(parse_i128("c", "+1"), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn codes_round_trip_and_are_distinct() {
        fn check<T: Code + PartialEq + std::fmt::Debug>() {
            for v in T::ALL {
                assert_eq!(T::from_code(v.code()), Some(*v));
                assert!(
                    v.code()
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                );
            }
            assert_eq!(T::from_code("nonsense"), None);
        }
        check::<Side>();
        check::<TimeInForce>();
        check::<StpMode>();
        check::<EndReason>();
        check::<OrderKind>();
        check::<OrderStatus>();
        check::<LedgerKind>();
        check::<Interval>();
        check::<TokenPurpose>();
        check::<DepositStatus>();
        check::<WithdrawalStatus>();
        check::<ChainSendKind>();
        check::<ChainSendStatus>();
        check::<SecurityEventKind>();
        check::<AdminRole>();
        check::<AdjustmentStatus>();
    }

    #[test]
    fn adjustment_statuses_are_named() {
        assert_eq!(AdjustmentStatus::ALL.len(), 5);
        for s in AdjustmentStatus::ALL {
            assert_eq!(s.as_str(), s.code());
        }
        assert_eq!(AdjustmentStatus::Pending.as_str(), "pending");
        assert_eq!(AdjustmentStatus::Approved.as_str(), "approved");
        assert_eq!(AdjustmentStatus::from_code("rejected"), Some(AdjustmentStatus::Rejected));
        assert_eq!(adjustment_delta(-5).unwrap(), "-5");
        assert_eq!(adjustment_delta(i128::MIN).unwrap(), i128::MIN.to_string());
        assert!(matches!(adjustment_delta(0), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn fee_hours() {
        assert_eq!(hour_of("t", 0).unwrap(), 0);
        assert_eq!(hour_of("t", 3_599_999).unwrap(), 0);
        assert_eq!(hour_of("t", 3_600_000).unwrap(), 3_600_000);
        assert_eq!(hour_of("t", -1).unwrap(), -3_600_000, "floored, not truncated");
        assert_eq!(hour_of("t", -3_600_000).unwrap(), -3_600_000);
        assert_eq!(hour_of("t", i64::MAX).unwrap(), i64::MAX - i64::MAX.rem_euclid(HOUR_MS));
        assert!(matches!(hour_of("t", i64::MIN), Err(StoreError::Corrupt { column: "t", .. })));
        for t in [0, 1_234_567_890_123, -7, i64::MAX] {
            assert_eq!(hour_of("t", t).unwrap(), Interval::H1.open_of(t));
        }
        assert_eq!(fee_hour(-3_600_000).unwrap(), -3_600_000);
        assert_eq!(fee_hour(7_200_000).unwrap(), 7_200_000);
        for bad in [1, -1, 3_599_999, i64::MAX, i64::MIN] {
            assert!(matches!(fee_hour(bad), Err(StoreError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn security_event_kinds_are_distinct_codes() {
        let all = SecurityEventKind::ALL;
        assert_eq!(all.len(), 17);
        let codes: std::collections::HashSet<_> = all.iter().map(|k| k.as_str()).collect();
        assert_eq!(codes.len(), all.len(), "two kinds share a code");
        assert_eq!(SecurityEventKind::PasswordResetRequested.as_str(), "password_reset_requested");
        assert_eq!(
            SecurityEventKind::from_code("login_failed"),
            Some(SecurityEventKind::LoginFailed)
        );
    }

    #[test]
    fn admin_roles_are_ordered_and_named() {
        assert_eq!(AdminRole::ALL, [AdminRole::Viewer, AdminRole::Operator, AdminRole::Superadmin]);
        assert!(AdminRole::ALL.windows(2).all(|w| w[0] < w[1]), "each role may do more");
        for r in AdminRole::ALL {
            assert_eq!(AdminRole::from_name(r.as_str()), Some(*r));
        }
        assert_eq!(AdminRole::Superadmin.as_str(), "superadmin");
        assert_eq!(AdminRole::from_name("Operator"), None);
    }

    #[test]
    fn withdrawal_codes_match_as_str_and_after_hold_is_checked() {
        for s in WithdrawalStatus::ALL {
            assert_eq!(s.as_str(), s.code());
        }
        assert_eq!(WithdrawalStatus::ALL.len(), 9);
        assert_eq!(TokenPurpose::ALL.len(), 5);
        assert_eq!(after_hold(WithdrawalStatus::Held).unwrap(), "held");
        assert_eq!(after_hold(WithdrawalStatus::Unconfirmed).unwrap(), "unconfirmed");
        assert_eq!(after_hold(WithdrawalStatus::Review).unwrap(), "review");
        for bad in [
            WithdrawalStatus::Requested,
            WithdrawalStatus::Cancelling,
            WithdrawalStatus::Sending,
            WithdrawalStatus::Sent,
            WithdrawalStatus::Completed,
            WithdrawalStatus::Failed,
        ] {
            assert!(matches!(after_hold(bad), Err(StoreError::Invalid(_))), "{bad:?}");
        }
    }

    #[test]
    fn hex_round_trips_or_is_corrupt() {
        let bytes = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
        assert_eq!(hex(&bytes), "00017f80feff");
        assert_eq!(parse_hex("c", &hex(&bytes)).unwrap(), bytes);
        assert_eq!(parse_hex("c", "").unwrap(), Vec::<u8>::new());
        for bad in ["0", "0g", "AB", "0xab", " ab", "ab\n"] {
            assert!(matches!(parse_hex("c", bad), Err(StoreError::Corrupt { .. })), "{bad:?}");
        }
    }

    #[test]
    fn bounds() {
        assert_eq!(upper_bound(None), Some(i64::MAX));
        assert_eq!(upper_bound(Some(0)), None);
        assert_eq!(upper_bound(Some(10)), Some(9));
        assert_eq!(upper_bound(Some(u64::MAX)), Some(i64::MAX));
        assert_eq!(upper_bound_i64(Some(i64::MIN)), None);
        assert_eq!(fills_bound(Some((5, MarketId(2), TradeId(u64::MAX)))), (5, 3, 0));
        assert_eq!(fills_bound(Some((u64::MAX, MarketId(2), TradeId(1)))).0, i64::MAX);
        assert_eq!(limit(u32::MAX), 1000);
        assert!(db_u64("id", u64::MAX).is_err());
    }

    #[test]
    fn ranges() {
        use crate::RangeFilter;
        let r = |from_id, start_ms, end_ms, limit| RangeFilter { from_id, start_ms, end_ms, limit };
        let all = range(&r(None, None, None, 10)).unwrap();
        assert_eq!(all.walk, RangeWalk::Newest);
        assert_eq!(
            (all.first_id, all.start_ms, all.end_ms, all.limit),
            (i64::MIN, i64::MIN, i64::MAX, 10)
        );
        assert_eq!(range(&r(None, None, Some(5), 10)).unwrap().walk, RangeWalk::Newest);
        let time = range(&r(None, Some(-3), Some(5), u32::MAX)).unwrap();
        assert_eq!(time.walk, RangeWalk::FromTime);
        assert_eq!((time.start_ms, time.end_ms, time.limit), (-3, 5, 1000));
        let from = range(&r(Some(7), Some(1), None, 2)).unwrap();
        assert_eq!(from.walk, RangeWalk::FromId);
        assert_eq!((from.first_id, from.start_ms, from.end_ms), (7, 1, i64::MAX));
        assert_eq!(range(&r(Some(i64::MAX as u64), None, None, 1)).unwrap().first_id, i64::MAX);
        assert_eq!(range(&r(Some(u64::MAX), None, None, 1)), None);
        let newest = range(&r(None, None, None, 3)).unwrap();
        assert_eq!(range_rows(&newest, &[3, 2, 1], |&x| Ok(x)).unwrap(), vec![1, 2, 3]);
        assert_eq!(range_rows(&time, &[1, 2, 3], |&x| Ok(x)).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn contains_patterns_escape_wildcards_and_fold_ascii() {
        assert_eq!(contains_pattern(""), "%%");
        assert_eq!(contains_pattern("Bob@X.com"), "%bob@x.com%");
        assert_eq!(contains_pattern(r"a_b%c\d"), r"%a\_b\%c\\d%");
        assert_eq!(contains_pattern("ÉMILE"), "%Émile%");
    }

    #[test]
    fn allowlist_round_trips() {
        let list = vec!["10.0.0.0/8".to_string(), "::1".to_string()];
        assert_eq!(split_allowlist(&join_allowlist(&list).unwrap()), list);
        assert_eq!(split_allowlist(&join_allowlist(&[]).unwrap()), Vec::<String>::new());
        assert!(join_allowlist(&["".to_string()]).is_err());
        assert!(join_allowlist(&["a,b".to_string()]).is_err());
    }
}
