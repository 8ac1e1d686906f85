//! Storage for everything that is not the engine's state: accounts (users, e-mail tokens,
//! sessions, API keys, the security audit log) and the read models the projector derives from
//! engine events (orders, trades, ledger entries, balances, candles).
//!
//! One trait, [`Store`], with two implementations chosen by the database URL: SQLite (the
//! embedded default, `sqlite://path`) and PostgreSQL (`postgres://...`). Each backend has its own
//! migrations embedded in the binary. One conformance suite (`tests/conformance.rs`) runs
//! against both.
//!
//! Money is stored as decimal text of integer minor units (`u128`/`i128` do not fit a SQL
//! integer: 10 ETH is 10^19 wei), and parsed back exactly; the store never does arithmetic on
//! amounts. Read models are written only by [`Store::apply_projection`], which checks and
//! advances the projector's cursor in the same transaction, so a batch is applied exactly once.
//!
//! This crate never talks to the engine and never decides anything about money.

mod backup;
mod codec;
mod postgres;
mod rows;
mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use backup::{DatabaseBackup, DatabaseFormat, restore_database};
pub use rows::*;

use bourse_core::{AssetId, MarketId, OrderId, TradeId, UserId};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The most rows any list query returns, whatever the caller asks.
pub const LIST_LIMIT_MAX: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value already exists (e.g. the e-mail of a new user).
    #[error("already exists: {0}")]
    Conflict(&'static str),
    /// The projector's cursor in the database is not where this batch starts.
    #[error("projection starts after seq {expected} but the database has applied up to {found}")]
    CursorMismatch { expected: u64, found: u64 },
    /// A stored value does not parse (a bug or a tampered database).
    #[error("corrupt value in column {column}: {value}")]
    Corrupt { column: &'static str, value: String },
    /// A value given to the store cannot be stored as it is (an id or seq above `i64::MAX`, an
    /// allow-list entry that is empty or holds a comma, a projection whose seqs are not a
    /// range): a bug in the caller.
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("unsupported database URL (use sqlite://PATH or postgres://...): {0}")]
    BadUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A file operation of a backup or a restore failed; `action` says what and on which path.
    #[error("{action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    /// An external tool (`pg_dump`, `pg_restore`) could not be run or failed; `message` holds
    /// why (its exit status and the end of what it wrote to stderr).
    #[error("{tool} failed: {message}")]
    Tool { tool: &'static str, message: String },
    /// A database file to restore is not a sound SQLite database (`PRAGMA integrity_check`, or
    /// SQLite refused to open it).
    #[error("the database file is damaged: {0}")]
    Damaged(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Opens a pool for `url` (`sqlite://PATH` creates the file; `postgres://...`). Does not
/// migrate: call [`Store::migrate`].
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PgStore::connect(url).await?))
    } else {
        Err(StoreError::BadUrl(url.split(':').next().unwrap_or("").to_string()))
    }
}

/// Everything the rest of bourse may ask of the database. Every method is one transaction (or a
/// single statement); list methods return at most `min(limit, LIST_LIMIT_MAX)` rows, newest
/// first unless said otherwise, and page with an exclusive `before` cursor.
#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
    /// Applies pending embedded migrations; returns how many were applied.
    async fn migrate(&self) -> Result<usize>;
    /// Cheap liveness check (`SELECT 1`).
    async fn ping(&self) -> Result<()>;
    async fn close(&self);

    // ---- users ---------------------------------------------------------------------------
    /// `email` is stored as given (callers normalise it). Conflict if it exists.
    async fn create_user(&self, email: &str, password_hash: &str, now_ms: i64) -> Result<UserId>;
    async fn user(&self, id: UserId) -> Result<Option<UserRow>>;
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>>;
    async fn set_email_verified(&self, id: UserId) -> Result<()>;
    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<()>;
    async fn count_users(&self) -> Result<u64>;
    /// Locks a user (`Some(when)`) or unlocks them (`None`); false for an unknown user.
    async fn set_user_locked(&self, user: UserId, locked_ms: Option<i64>) -> Result<bool>;
    /// Users whose e-mail contains `text` (case-insensitive; `%` and `_` match themselves),
    /// by id, at most `min(limit, LIST_LIMIT_MAX)`.
    async fn search_users(&self, text: &str, limit: u32) -> Result<Vec<UserRow>>;
    /// The user a deposit address was given to.
    async fn user_by_deposit_address(&self, address: &str) -> Result<Option<UserId>>;

    // ---- two-factor authentication -----------------------------------------------------------
    /// Stores (or, with `None`, clears) the secret of a TOTP setup not yet confirmed, sealed by
    /// the caller.
    async fn set_totp_pending(&self, user: UserId, sealed: Option<&[u8]>) -> Result<()>;
    /// In one transaction: turns TOTP on with `sealed` (the confirmed secret), clears the
    /// pending one, sets the last step accepted to `step` (the code that confirmed it), and
    /// replaces the user's recovery codes (every old one deleted) by `recovery_code_hashes`,
    /// unused. The same hash twice is `Conflict("recovery code")` (nothing written); an unknown
    /// user: nothing.
    async fn enable_totp(
        &self,
        user: UserId,
        sealed: &[u8],
        step: i64,
        recovery_code_hashes: &[String],
    ) -> Result<()>;
    /// In one transaction: turns TOTP off (clears the secret and any pending one) and deletes
    /// the user's recovery codes. The last step accepted is kept.
    async fn disable_totp(&self, user: UserId) -> Result<()>;
    /// Accepts a TOTP time step once: sets the last step accepted to `step` and returns true
    /// only if `step` is after it. Atomic: of two concurrent calls with the same step, one
    /// succeeds.
    async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool>;
    /// Marks the user's unused recovery code with this hash used; false if there is none (used,
    /// unknown, or another user's). Atomic: two concurrent calls never both succeed.
    async fn use_recovery_code(&self, user: UserId, code_hash: &str, now_ms: i64) -> Result<bool>;
    /// How many of the user's recovery codes are unused.
    async fn recovery_codes_left(&self, user: UserId) -> Result<u64>;
    /// Turns the user's withdrawal-address whitelist on or off (withdrawals go only to its
    /// confirmed addresses).
    async fn set_address_whitelist(&self, user: UserId, on: bool) -> Result<()>;

    // ---- the admin app ----------------------------------------------------------------------
    /// Adds an admin (separate from users); returns its id. An e-mail that exists is
    /// `Conflict("admin email")`.
    async fn create_admin(&self, admin: &NewAdmin) -> Result<i64>;
    async fn admin(&self, id: i64) -> Result<Option<AdminRow>>;
    async fn admin_by_email(&self, email: &str) -> Result<Option<AdminRow>>;
    /// Every admin, by id.
    async fn admins(&self) -> Result<Vec<AdminRow>>;
    /// [`Store::use_totp_step`] for an admin.
    async fn use_admin_totp_step(&self, admin: i64, step: i64) -> Result<bool>;
    async fn insert_admin_session(&self, session: &NewAdminSession) -> Result<i64>;
    /// The session with this token hash, unless it ended or its admin is disabled.
    async fn live_admin_session(&self, token_hash: &str) -> Result<Option<AdminSessionRow>>;
    /// Sets a session's `last_seen_ms`, and its `totp_ms` when given (a fresh code was entered;
    /// `None` keeps it); false if it ended or does not exist.
    async fn touch_admin_session(&self, id: i64, now_ms: i64, totp_ms: Option<i64>)
    -> Result<bool>;
    /// Ends a session (it is never live again); false if it had ended or does not exist.
    async fn end_admin_session(&self, id: i64, now_ms: i64) -> Result<bool>;
    /// Appends to the admin audit log (append-only: nothing updates or deletes it); returns
    /// its id.
    async fn record_admin_action(&self, action: &NewAdminAction) -> Result<i64>;
    /// The admin audit log, newest first, with each admin's e-mail; `before` is exclusive.
    async fn admin_actions(&self, before: Option<i64>, limit: u32) -> Result<Vec<AdminActionRow>>;
    /// Records `admin`'s approval of a withdrawal; returns every admin who approved it so far,
    /// in the order they approved (this one last), in one transaction. Approvals of one
    /// withdrawal are serialized: of concurrent ones, each sees all those before it. The same
    /// admin twice is `Conflict("withdrawal approval")` (nothing written); an unknown withdrawal
    /// or admin is a database error.
    async fn approve_withdrawal(
        &self,
        withdrawal: i64,
        admin: i64,
        now_ms: i64,
    ) -> Result<Vec<i64>>;
    /// The admins who approved a withdrawal, in the order they approved.
    async fn withdrawal_approvals(&self, withdrawal: i64) -> Result<Vec<i64>>;
    /// Records a proposed balance adjustment, `pending`; returns its id. A `delta` of 0 is
    /// `Invalid`; an unknown user or admin is a database error.
    async fn insert_adjustment(&self, a: &NewAdjustment) -> Result<i64>;
    /// The adjustment, with its admins' e-mails.
    async fn adjustment(&self, id: i64) -> Result<Option<AdjustmentRow>>;
    /// Adjustments (of `status` if given), newest first, with their admins' e-mails; `before` is
    /// exclusive.
    async fn adjustments(
        &self,
        status: Option<AdjustmentStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AdjustmentRow>>;
    /// Decides a `pending` adjustment in one compare-and-set statement: `approve` moves it to
    /// `approved`, only if `admin` is not its proposer (no admin approves their own; `note` is
    /// not kept); otherwise to `rejected` (any admin, the proposer included) with `note` as its
    /// outcome. Sets `decided_by` and `decided_ms`. Returns whether it changed the row (false:
    /// unknown, not pending, or the proposer approving). Of concurrent decisions, one succeeds.
    async fn decide_adjustment(
        &self,
        id: i64,
        admin: i64,
        approve: bool,
        note: &str,
        now_ms: i64,
    ) -> Result<bool>;
    /// Records what the engine did with an `approved` adjustment, in one compare-and-set
    /// statement: `applied` (`outcome`: the seq that applied it) or `refused` (`outcome`: why),
    /// with `finished_ms`. Returns whether it changed the row (false: unknown or not approved).
    async fn finish_adjustment(
        &self,
        id: i64,
        applied: bool,
        outcome: &str,
        now_ms: i64,
    ) -> Result<bool>;

    // ---- single-use tokens (e-mail links) ----------------------------------------------------
    async fn insert_token(&self, token: &NewToken) -> Result<()>;
    /// Marks the token used and returns its user and subject, if it exists with this purpose,
    /// is unused and `now_ms < expires_ms`; `None` otherwise. Atomic: two concurrent calls
    /// never both succeed.
    async fn use_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<Option<UsedToken>>;
    /// Marks every unused token of `user` with this purpose and subject used (the link of a
    /// cancelled withdrawal stops working); returns how many.
    async fn expire_tokens(
        &self,
        user: UserId,
        purpose: TokenPurpose,
        subject: i64,
        now_ms: i64,
    ) -> Result<u64>;

    // ---- sessions ----------------------------------------------------------------------------
    async fn insert_session(&self, session: &NewSession) -> Result<i64>;
    /// The session with this token hash if it is not revoked and `now_ms < expires_ms`.
    async fn live_session(&self, token_hash: &str, now_ms: i64) -> Result<Option<SessionRow>>;
    /// Sets `last_seen_ms` and `expires_ms` (sliding expiry).
    async fn touch_session(&self, id: i64, now_ms: i64, expires_ms: i64) -> Result<()>;
    /// Live sessions of a user, newest first.
    async fn sessions(&self, user: UserId, now_ms: i64) -> Result<Vec<SessionRow>>;
    /// Revokes one session of `user`; false if it is not theirs or already revoked.
    async fn revoke_session(&self, user: UserId, id: i64) -> Result<bool>;
    /// Revokes every session of `user` except `keep`; returns how many.
    async fn revoke_sessions(&self, user: UserId, keep: Option<i64>) -> Result<u64>;

    // ---- API keys ----------------------------------------------------------------------------
    /// Conflict if `key` exists.
    async fn insert_api_key(&self, key: &NewApiKey) -> Result<i64>;
    /// The key if it exists and is not revoked.
    async fn api_key(&self, key: &str) -> Result<Option<ApiKeyRow>>;
    /// Keys of a user that are not revoked, newest first.
    async fn api_keys(&self, user: UserId) -> Result<Vec<ApiKeyRow>>;
    async fn revoke_api_key(&self, user: UserId, id: i64) -> Result<bool>;

    // ---- security events (the user's audit log) ---------------------------------------------
    /// Appends a security event; returns its id. The log is append-only: nothing updates or
    /// deletes it.
    async fn record_security_event(&self, event: &NewSecurityEvent) -> Result<i64>;
    /// The user's security events, newest first.
    async fn security_events(
        &self,
        user: UserId,
        filter: &SecurityEventFilter,
    ) -> Result<Vec<SecurityEventRow>>;

    // ---- wallet (written by the wallet role only) ------------------------------------------
    /// Conflict if the address exists for the asset.
    async fn insert_deposit_address(&self, address: &NewDepositAddress) -> Result<i64>;
    /// The user's addresses for the asset, newest first, at most `limit`.
    async fn deposit_addresses(
        &self,
        user: UserId,
        asset: AssetId,
        limit: u32,
    ) -> Result<Vec<DepositAddressRow>>;
    /// Who an address belongs to.
    async fn deposit_address(
        &self,
        asset: AssetId,
        address: &str,
    ) -> Result<Option<DepositAddressRow>>;
    /// Inserts the deposit or updates its confirmations, status, seq and `updated_ms` (the
    /// rest of a deposit never changes).
    async fn upsert_deposit(&self, deposit: &DepositRow) -> Result<()>;
    async fn deposit(&self, asset: AssetId, txid: &str, vout: u32) -> Result<Option<DepositRow>>;
    /// Deposits of `user`, newest (highest id) first.
    async fn deposits(&self, user: UserId, filter: &DepositFilter) -> Result<Vec<DepositRow>>;
    /// Deposits of every user (in `status` if given), newest (highest id) first; `before` is
    /// exclusive.
    async fn recent_deposits(
        &self,
        status: Option<DepositStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DepositRow>>;
    /// Deposits of the asset still to follow, oldest first: pending ones, and credited ones
    /// with fewer than `watch` confirmations (a reorg could still take them away).
    async fn watched_deposits(&self, asset: AssetId, watch: i64) -> Result<Vec<DepositRow>>;
    /// The block the asset's deposit scan goes on from.
    async fn wallet_cursor(&self, asset: AssetId) -> Result<Option<String>>;
    async fn set_wallet_cursor(&self, asset: AssetId, block_hash: &str, now_ms: i64) -> Result<()>;

    /// A new withdrawal in status `requested`; returns its id (the engine's withdrawal id). An
    /// `after_hold` other than `Held`, `Unconfirmed` or `Review` is `Invalid`.
    async fn insert_withdrawal(&self, w: &NewWithdrawal) -> Result<i64>;
    /// The withdrawal if it belongs to `user`.
    async fn withdrawal(&self, user: UserId, id: i64) -> Result<Option<WithdrawalRow>>;
    /// The withdrawal, whoever it belongs to (for operators).
    async fn withdrawal_by_id(&self, id: i64) -> Result<Option<WithdrawalRow>>;
    /// Withdrawals of `user`, newest first.
    async fn withdrawals(
        &self,
        user: UserId,
        filter: &WithdrawalFilter,
    ) -> Result<Vec<WithdrawalRow>>;
    /// Withdrawals of the asset still requested, held, unconfirmed, in review, cancelling,
    /// sending or sent, oldest first.
    async fn open_withdrawals(&self, asset: AssetId) -> Result<Vec<WithdrawalRow>>;
    /// Withdrawals in `status` of any user and asset, oldest (lowest id) first.
    async fn withdrawals_in_status(
        &self,
        status: WithdrawalStatus,
        limit: u32,
    ) -> Result<Vec<WithdrawalRow>>;
    /// Deletes a withdrawal still `requested` (the engine refused to hold it: it never was).
    async fn discard_withdrawal(&self, id: i64) -> Result<()>;
    /// Moves a withdrawal to `status`, with its txid or failure reason when given.
    async fn set_withdrawal_status(
        &self,
        id: i64,
        status: WithdrawalStatus,
        txid: Option<&str>,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<()>;
    /// Moves a withdrawal from `from` to `to` (with the reason when given) in one statement,
    /// only if its status is `from`; returns whether it moved. Of two concurrent transitions
    /// from the same status, one succeeds.
    async fn transition_withdrawal(
        &self,
        id: i64,
        from: WithdrawalStatus,
        to: WithdrawalStatus,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<bool>;

    /// Adds an address to the user's whitelist, unconfirmed; returns its id. A live (not
    /// removed) one with the same user, asset and address is
    /// `StoreError::Conflict("withdrawal address")`.
    async fn insert_withdrawal_address(&self, address: &NewWithdrawalAddress) -> Result<i64>;
    /// Confirms an address: sets `confirmed_ms` and `usable_from_ms`, only if it is the user's,
    /// unconfirmed and not removed; returns whether it did.
    async fn confirm_withdrawal_address(
        &self,
        user: UserId,
        id: i64,
        now_ms: i64,
        usable_from_ms: i64,
    ) -> Result<bool>;
    /// The user's whitelist (addresses not removed), newest first.
    async fn withdrawal_addresses(&self, user: UserId) -> Result<Vec<WithdrawalAddressRow>>;
    /// Removes an address from the user's whitelist; false if it is not theirs or already
    /// removed.
    async fn remove_withdrawal_address(&self, user: UserId, id: i64, now_ms: i64) -> Result<bool>;

    /// Records a signed transaction in status `signed`; returns its id. A second send from the
    /// same address with the same nonce for the asset is
    /// `StoreError::Conflict("chain send nonce")`.
    async fn insert_chain_send(&self, send: &NewChainSend) -> Result<i64>;
    /// The asset's sends still `signed` or `sent`, oldest first.
    async fn open_chain_sends(&self, asset: AssetId) -> Result<Vec<ChainSendRow>>;
    /// The send recorded for a withdrawal that is not `failed`, if any.
    async fn chain_send_of_withdrawal(&self, withdrawal: i64) -> Result<Option<ChainSendRow>>;
    /// Moves a send to `status`, with the fee paid when given.
    async fn set_chain_send_status(
        &self,
        id: i64,
        status: ChainSendStatus,
        fee: Option<u128>,
        now_ms: i64,
    ) -> Result<()>;
    /// The nonce after the highest one of the address's sends that are not `failed` (None: none
    /// recorded).
    async fn next_chain_nonce(&self, asset: AssetId, from_address: &str) -> Result<Option<u64>>;
    /// The deposit addresses of the asset (any user) whose id is above `after_id`, by id (oldest
    /// first); `after_id` 0 gives them all. A wallet keeps the highest id it has seen and asks
    /// only for the rows after it, so it learns of addresses other processes made.
    async fn asset_deposit_addresses(
        &self,
        asset: AssetId,
        after_id: i64,
    ) -> Result<Vec<DepositAddressRow>>;

    /// Records an operator alert (append-only); returns its id.
    async fn insert_alert(&self, alert: &NewAlert) -> Result<i64>;
    /// The newest `limit` operator alerts, newest first.
    async fn alerts(&self, limit: u32) -> Result<Vec<AlertRow>>;
    /// Up to `limit` alerts with an id above `after_id`, oldest first.
    async fn alerts_after(&self, after_id: i64, limit: u32) -> Result<Vec<AlertRow>>;
    /// The last alert id `sink` delivered (0: none).
    async fn alert_sink_cursor(&self, sink: &str) -> Result<i64>;
    async fn set_alert_sink_cursor(&self, sink: &str, last_id: i64) -> Result<()>;

    /// Queues a mail, due at once; returns its id.
    async fn enqueue_mail(&self, mail: &NewMail) -> Result<i64>;
    /// Up to `limit` queued mails due at `now_ms` (next_attempt_ms <= now_ms, not sent), oldest
    /// first: by `next_attempt_ms`, then id (for mails not yet tried, the order they were queued
    /// in). At most [`LIST_LIMIT_MAX`].
    async fn due_mails(&self, now_ms: i64, limit: u32) -> Result<Vec<MailRow>>;
    /// The mail server took it.
    async fn mail_sent(&self, id: i64, now_ms: i64) -> Result<()>;
    /// An attempt failed: attempts + 1, the error (truncated to 500 chars by the caller), tried
    /// again at `next_attempt_ms`.
    async fn mail_failed(&self, id: i64, error: &str, next_attempt_ms: i64) -> Result<()>;
    /// Mails still queued (not sent), for health and metrics.
    async fn mail_queue_len(&self) -> Result<u64>;

    // ---- projection (written by the projector only) ------------------------------------------
    /// The last engine seq whose events are in the read models (0: none).
    async fn projected_seq(&self) -> Result<u64>;
    /// In one transaction: checks that the cursor is `projection.from_seq - 1`
    /// (`CursorMismatch` otherwise, nothing written), upserts orders, balances, candles and fee
    /// revenue by their keys, inserts trades and ledger entries, queues the mails (due at once,
    /// as [`Store::enqueue_mail`] does), keeps the relay row if there is one, and sets the cursor to `projection.to_seq`. A fee
    /// revenue row whose `hour_ms` does not start an hour is `Invalid` (nothing written).
    async fn apply_projection(&self, projection: &Projection) -> Result<()>;
    /// The relay rows with `to_seq > after`, oldest first, at most `limit` (processes without
    /// the worker follow its steps with these).
    async fn relay_after(&self, after: u64, limit: u32) -> Result<Vec<RelayRow>>;
    /// Deletes the relay rows created before `before_ms`; returns how many.
    async fn prune_relay(&self, before_ms: i64) -> Result<u64>;
    /// Keeps `row` as its asset's last reconciliation (replacing the one before).
    async fn record_reconciliation(&self, row: &ReconciliationRow) -> Result<()>;
    /// Every asset's last reconciliation, by asset id.
    async fn reconciliations(&self) -> Result<Vec<ReconciliationRow>>;
    /// Orders with status open or partially filled (the projector's working set at start).
    async fn open_orders_all(&self) -> Result<Vec<OrderRow>>;
    /// The newest candle of every (market, interval) (the projector's working set at start).
    async fn latest_candles(&self) -> Result<Vec<CandleRow>>;
    /// The newest fee revenue row (largest `hour_ms`) of every asset, by asset (the projector's
    /// working set at start).
    async fn latest_fee_revenue(&self) -> Result<Vec<FeeRevenueRow>>;
    /// Fills `fee_revenue` once from the read models, in one transaction that no projection
    /// interleaves with. If it has any row, writes nothing and returns 0. Otherwise adds up, per
    /// asset and UTC hour, every trade's maker and taker fees (by trade time, in the quote asset
    /// of its market: `quote_of`; trades of markets not in it are skipped) and the fee of every
    /// completed withdrawal (by `updated_ms`, in its asset), writes one row per (asset, hour)
    /// that had any, even when its sums are 0, and returns how many. Reads in pages: memory
    /// grows with the rows written, not the rows read. Sums are exact; one above `u128::MAX` is
    /// `Corrupt` (nothing written).
    async fn backfill_fee_revenue(&self, quote_of: &HashMap<MarketId, AssetId>) -> Result<u64>;

    // ---- read models ------------------------------------------------------------------------
    async fn balance(&self, user: UserId, asset: AssetId) -> Result<Option<BalanceRow>>;
    async fn balances(&self, user: UserId) -> Result<Vec<BalanceRow>>;
    /// The order if it belongs to `user` (another user's id reads as `None`).
    async fn order(&self, user: UserId, id: OrderId) -> Result<Option<OrderRow>>;
    /// The newest order of `user` with this client order id (in `market` if given).
    async fn order_by_client_id(
        &self,
        user: UserId,
        market: Option<MarketId>,
        client_order_id: &str,
    ) -> Result<Option<OrderRow>>;
    /// Orders of `user`, newest (highest id) first.
    async fn orders(&self, user: UserId, filter: &OrderFilter) -> Result<Vec<OrderRow>>;
    /// Every user with an open or partially filled order in `market`, once each, ascending (not
    /// limited).
    async fn open_order_users(&self, market: MarketId) -> Result<Vec<UserId>>;
    /// Trades where `user` is maker or taker, ordered by (seq, market, id) descending.
    async fn fills(&self, user: UserId, filter: &FillFilter) -> Result<Vec<TradeRow>>;
    /// A market's trades, newest first; `before` is a trade id of that market.
    async fn trades(
        &self,
        market: MarketId,
        before: Option<TradeId>,
        limit: u32,
    ) -> Result<Vec<TradeRow>>;
    /// A market's trades in a Binance-style [`RangeFilter`] (the `/api/v3` trade lists):
    /// `from_id` is a trade id of that market, the time is `time_ms`. Oldest (lowest id) first,
    /// at most `min(range.limit, LIST_LIMIT_MAX)`.
    async fn trades_range(&self, market: MarketId, range: &RangeFilter) -> Result<Vec<TradeRow>>;
    /// The trades of `market` where `user` is maker or taker (a self-trade, where they are both,
    /// once), only those of `order` (as maker or taker order) if given, in a Binance-style
    /// [`RangeFilter`]: `from_id` is a trade id, the time is `time_ms`. Oldest (lowest trade id)
    /// first, at most `min(range.limit, LIST_LIMIT_MAX)`.
    async fn fills_range(
        &self,
        user: UserId,
        market: MarketId,
        order: Option<OrderId>,
        range: &RangeFilter,
    ) -> Result<Vec<TradeRow>>;
    /// The orders of `user` in `market`, whatever their status, in a Binance-style
    /// [`RangeFilter`]: `from_id` is an order id, the time is `created_ms`. Oldest (lowest id)
    /// first, at most `min(range.limit, LIST_LIMIT_MAX)`.
    async fn orders_range(
        &self,
        user: UserId,
        market: MarketId,
        range: &RangeFilter,
    ) -> Result<Vec<OrderRow>>;
    /// Ledger entries of `user`, newest (highest id) first.
    async fn ledger(&self, user: UserId, filter: &LedgerFilter) -> Result<Vec<LedgerRow>>;
    /// Candles with `from_ms <= open_ms < to_ms` (either bound optional), the newest `limit` of
    /// them, returned oldest first.
    async fn candles(
        &self,
        market: MarketId,
        interval: Interval,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: u32,
    ) -> Result<Vec<CandleRow>>;
    /// The fee revenue rows with `from_ms <= hour_ms < to_ms`, by (hour_ms, asset). Not limited
    /// by [`LIST_LIMIT_MAX`]: callers bound the period.
    async fn fee_revenue(&self, from_ms: i64, to_ms: i64) -> Result<Vec<FeeRevenueRow>>;

    // ---- backups ------------------------------------------------------------------------------
    /// Starts a backup of the whole database to the file `path`, which must not exist
    /// (`Invalid` otherwise; this creates it). Returns once a consistent read snapshot is fixed:
    /// [`DatabaseBackup::finish`] writes exactly the database as it was when this returned,
    /// whatever is written meanwhile. Quick (no copy happens here): the exchange may pause its
    /// writers around it. SQLite: the database must be a file in WAL mode. PostgreSQL: needs
    /// `pg_dump` (see [`DatabaseBackup::finish`]). Dropping the backup unfinished ends the
    /// snapshot and removes the file.
    async fn backup_begin(&self, path: &Path) -> Result<Box<dyn DatabaseBackup>>;
    /// Records a backup the exchange attempted (append-only); returns its id.
    async fn record_backup(&self, record: &NewBackupRecord) -> Result<i64>;
    /// The newest `min(limit, LIST_LIMIT_MAX)` recorded backups, newest first.
    async fn recent_backups(&self, limit: u32) -> Result<Vec<BackupRecord>>;
    /// The newest recorded backup that completed (`ok`).
    async fn last_good_backup(&self) -> Result<Option<BackupRecord>>;
}
