//! The PostgreSQL backend: a pool of 16 connections (10 s to get one). `apply_projection` locks
//! the cursor row (`SELECT ... FOR UPDATE`) and writes each table with one statement over
//! arrays (`INSERT ... SELECT * FROM UNNEST($1::bigint[], ...)`), so a batch of thousands of
//! rows costs a handful of round trips, whatever its size.

use crate::codec::{self, Code, RangeWalk, db_u64, impl_get};
use crate::sql;
use crate::{
    AdjustmentRow, AdjustmentStatus, AdminActionRow, AdminRow, AdminSessionRow, AlertRow,
    ApiKeyRow, BalanceRow, CandleRow, ChainSendRow, ChainSendStatus, DepositAddressRow,
    DepositFilter, DepositRow, DepositStatus, FeeRevenueRow, FillFilter, Interval, LIST_LIMIT_MAX,
    LedgerFilter, LedgerRow, MailRow, NewAdjustment, NewAdmin, NewAdminAction, NewAdminSession,
    NewAlert, NewApiKey, NewChainSend, NewDepositAddress, NewMail, NewSecurityEvent, NewSession,
    NewToken, NewWithdrawal, NewWithdrawalAddress, OrderFilter, OrderRow, Projection, RangeFilter,
    ReconciliationRow, RelayRow, Result, SecurityEventFilter, SecurityEventRow, SessionRow, Store,
    StoreError, TokenPurpose, TradeRow, UsedToken, UserRow, WithdrawalAddressRow, WithdrawalFilter,
    WithdrawalRow, WithdrawalStatus,
};
use crate::{BackupRecord, DatabaseBackup, NewBackupRecord, backup};
use bourse_core::{AssetId, MarketId, OrderId, TradeId, UserId};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Executor, PgConnection, Row};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

impl_get!(PgRow);

#[derive(Debug)]
pub(crate) struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub(crate) async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(PgStore { pool })
    }
}

async fn applied(conn: &mut PgConnection) -> Result<usize> {
    conn.ensure_migrations_table(&MIGRATOR.table_name).await?;
    Ok(conn.list_applied_migrations(&MIGRATOR.table_name).await?.len())
}

const CURSOR_FOR_UPDATE: &str = "SELECT seq FROM projector_cursor WHERE id = 1 FOR UPDATE";
/// Taken by `approve_withdrawal` before it writes: approvals of one withdrawal queue behind
/// each other (READ COMMITTED: the next one's statements then see the one before).
const LOCK_WITHDRAWAL: &str = "SELECT id FROM withdrawals WHERE id = $1 FOR UPDATE";

/// The rows of `rows` with distinct keys, the last one of each key, in their order: one
/// statement cannot upsert the same key twice.
fn last_per_key<T, K: Eq + Hash>(rows: &[T], key: impl Fn(&T) -> K) -> Vec<&T> {
    let mut seen = HashSet::with_capacity(rows.len());
    let mut out: Vec<&T> = rows.iter().rev().filter(|r| seen.insert(key(r))).collect();
    out.reverse();
    out
}

/// Writes the rows of one projection, one statement per table; the caller owns the
/// transaction and the cursor.
async fn write_projection(tx: &mut PgConnection, p: &Projection) -> Result<()> {
    if !p.orders.is_empty() {
        let orders = last_per_key(&p.orders, |o| o.id);
        let n = orders.len();
        let mut id = Vec::with_capacity(n);
        let mut user = Vec::with_capacity(n);
        let mut market = Vec::with_capacity(n);
        let mut side = Vec::with_capacity(n);
        let mut kind = Vec::with_capacity(n);
        let mut tif = Vec::with_capacity(n);
        let mut price = Vec::with_capacity(n);
        let mut quantity = Vec::with_capacity(n);
        let mut quote_amount = Vec::with_capacity(n);
        let mut client_order_id = Vec::with_capacity(n);
        let mut stp = Vec::with_capacity(n);
        let mut status = Vec::with_capacity(n);
        let mut end_reason = Vec::with_capacity(n);
        let mut filled = Vec::with_capacity(n);
        let mut filled_quote = Vec::with_capacity(n);
        let mut fee = Vec::with_capacity(n);
        let mut created_seq = Vec::with_capacity(n);
        let mut created_ms = Vec::with_capacity(n);
        let mut updated_ms = Vec::with_capacity(n);
        for o in orders {
            id.push(db_u64("order id", o.id.0)?);
            user.push(db_u64("user id", o.user.0)?);
            market.push(i64::from(o.market.0));
            side.push(o.side.code());
            kind.push(o.kind.code());
            tif.push(codec::opt_code(o.time_in_force));
            price.push(codec::opt_amount(o.price));
            quantity.push(codec::opt_amount(o.quantity));
            quote_amount.push(codec::opt_amount(o.quote_amount));
            client_order_id.push(o.client_order_id.as_deref());
            stp.push(o.stp.code());
            status.push(o.status.code());
            end_reason.push(codec::opt_code(o.end_reason));
            filled.push(codec::amount(o.filled));
            filled_quote.push(codec::amount(o.filled_quote));
            fee.push(codec::amount(o.fee));
            created_seq.push(db_u64("created seq", o.created_seq)?);
            created_ms.push(o.created_ms);
            updated_ms.push(o.updated_ms);
        }
        sqlx::query(UPSERT_ORDERS)
            .bind(id)
            .bind(user)
            .bind(market)
            .bind(side)
            .bind(kind)
            .bind(tif)
            .bind(price)
            .bind(quantity)
            .bind(quote_amount)
            .bind(client_order_id)
            .bind(stp)
            .bind(status)
            .bind(end_reason)
            .bind(filled)
            .bind(filled_quote)
            .bind(fee)
            .bind(created_seq)
            .bind(created_ms)
            .bind(updated_ms)
            .execute(&mut *tx)
            .await?;
    }
    if !p.trades.is_empty() {
        let n = p.trades.len();
        let mut market = Vec::with_capacity(n);
        let mut id = Vec::with_capacity(n);
        let mut price = Vec::with_capacity(n);
        let mut quantity = Vec::with_capacity(n);
        let mut notional = Vec::with_capacity(n);
        let mut taker_side = Vec::with_capacity(n);
        let mut maker_order = Vec::with_capacity(n);
        let mut maker_user = Vec::with_capacity(n);
        let mut maker_fee = Vec::with_capacity(n);
        let mut taker_order = Vec::with_capacity(n);
        let mut taker_user = Vec::with_capacity(n);
        let mut taker_fee = Vec::with_capacity(n);
        let mut seq = Vec::with_capacity(n);
        let mut time_ms = Vec::with_capacity(n);
        for t in &p.trades {
            market.push(i64::from(t.market.0));
            id.push(db_u64("trade id", t.id.0)?);
            price.push(codec::amount(t.price));
            quantity.push(codec::amount(t.quantity));
            notional.push(codec::amount(t.notional));
            taker_side.push(t.taker_side.code());
            maker_order.push(db_u64("order id", t.maker_order.0)?);
            maker_user.push(db_u64("user id", t.maker_user.0)?);
            maker_fee.push(codec::amount(t.maker_fee));
            taker_order.push(db_u64("order id", t.taker_order.0)?);
            taker_user.push(db_u64("user id", t.taker_user.0)?);
            taker_fee.push(codec::amount(t.taker_fee));
            seq.push(db_u64("seq", t.seq)?);
            time_ms.push(t.time_ms);
        }
        sqlx::query(INSERT_TRADES)
            .bind(market)
            .bind(id)
            .bind(price)
            .bind(quantity)
            .bind(notional)
            .bind(taker_side)
            .bind(maker_order)
            .bind(maker_user)
            .bind(maker_fee)
            .bind(taker_order)
            .bind(taker_user)
            .bind(taker_fee)
            .bind(seq)
            .bind(time_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| codec::conflict(e, "trade"))?;
    }
    if !p.ledger.is_empty() {
        let n = p.ledger.len();
        let mut user = Vec::with_capacity(n);
        let mut asset = Vec::with_capacity(n);
        let mut seq = Vec::with_capacity(n);
        let mut time_ms = Vec::with_capacity(n);
        let mut kind = Vec::with_capacity(n);
        let mut reference = Vec::with_capacity(n);
        let mut delta_available = Vec::with_capacity(n);
        let mut delta_locked = Vec::with_capacity(n);
        let mut delta_held = Vec::with_capacity(n);
        let mut available = Vec::with_capacity(n);
        let mut locked = Vec::with_capacity(n);
        let mut held = Vec::with_capacity(n);
        for l in &p.ledger {
            user.push(db_u64("user id", l.user.0)?);
            asset.push(i64::from(l.asset.0));
            seq.push(db_u64("seq", l.seq)?);
            time_ms.push(l.time_ms);
            kind.push(l.kind.code());
            reference.push(l.reference.as_str());
            delta_available.push(codec::signed(l.delta_available));
            delta_locked.push(codec::signed(l.delta_locked));
            delta_held.push(codec::signed(l.delta_held));
            available.push(codec::signed(l.available));
            locked.push(codec::signed(l.locked));
            held.push(codec::signed(l.held));
        }
        sqlx::query(INSERT_LEDGER)
            .bind(user)
            .bind(asset)
            .bind(seq)
            .bind(time_ms)
            .bind(kind)
            .bind(reference)
            .bind(delta_available)
            .bind(delta_locked)
            .bind(delta_held)
            .bind(available)
            .bind(locked)
            .bind(held)
            .execute(&mut *tx)
            .await?;
    }
    if !p.balances.is_empty() {
        let balances = last_per_key(&p.balances, |b| (b.user, b.asset));
        let n = balances.len();
        let mut user = Vec::with_capacity(n);
        let mut asset = Vec::with_capacity(n);
        let mut available = Vec::with_capacity(n);
        let mut locked = Vec::with_capacity(n);
        let mut held = Vec::with_capacity(n);
        let mut seq = Vec::with_capacity(n);
        for b in balances {
            user.push(db_u64("user id", b.user.0)?);
            asset.push(i64::from(b.asset.0));
            available.push(codec::signed(b.available));
            locked.push(codec::signed(b.locked));
            held.push(codec::signed(b.held));
            seq.push(db_u64("seq", b.seq)?);
        }
        sqlx::query(UPSERT_BALANCES)
            .bind(user)
            .bind(asset)
            .bind(available)
            .bind(locked)
            .bind(held)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
    }
    if !p.candles.is_empty() {
        let candles = last_per_key(&p.candles, |c| (c.market, c.interval, c.open_ms));
        let n = candles.len();
        let mut market = Vec::with_capacity(n);
        let mut period = Vec::with_capacity(n);
        let mut open_ms = Vec::with_capacity(n);
        let mut open = Vec::with_capacity(n);
        let mut high = Vec::with_capacity(n);
        let mut low = Vec::with_capacity(n);
        let mut close = Vec::with_capacity(n);
        let mut volume = Vec::with_capacity(n);
        let mut quote_volume = Vec::with_capacity(n);
        let mut trades = Vec::with_capacity(n);
        for c in candles {
            market.push(i64::from(c.market.0));
            period.push(c.interval.code());
            open_ms.push(c.open_ms);
            open.push(codec::amount(c.open));
            high.push(codec::amount(c.high));
            low.push(codec::amount(c.low));
            close.push(codec::amount(c.close));
            volume.push(codec::amount(c.volume));
            quote_volume.push(codec::amount(c.quote_volume));
            trades.push(db_u64("candle trades", c.trades)?);
        }
        sqlx::query(UPSERT_CANDLES)
            .bind(market)
            .bind(period)
            .bind(open_ms)
            .bind(open)
            .bind(high)
            .bind(low)
            .bind(close)
            .bind(volume)
            .bind(quote_volume)
            .bind(trades)
            .execute(&mut *tx)
            .await?;
    }
    if !p.fee_revenue.is_empty() {
        upsert_fee_revenue(tx, &last_per_key(&p.fee_revenue, |f| (f.asset, f.hour_ms))).await?;
    }
    if !p.mails.is_empty() {
        let n = p.mails.len();
        let mut to = Vec::with_capacity(n);
        let mut subject = Vec::with_capacity(n);
        let mut text = Vec::with_capacity(n);
        let mut html = Vec::with_capacity(n);
        let mut created_ms = Vec::with_capacity(n);
        for m in &p.mails {
            to.push(m.to.as_str());
            subject.push(m.subject.as_str());
            text.push(m.text.as_str());
            html.push(m.html.as_str());
            created_ms.push(m.created_ms);
        }
        sqlx::query(INSERT_MAILS)
            .bind(to)
            .bind(subject)
            .bind(text)
            .bind(html)
            .bind(created_ms)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Upserts fee revenue rows of distinct keys in one statement.
async fn upsert_fee_revenue(tx: &mut PgConnection, rows: &[&FeeRevenueRow]) -> Result<()> {
    let n = rows.len();
    let mut asset = Vec::with_capacity(n);
    let mut hour_ms = Vec::with_capacity(n);
    let mut trade_fees = Vec::with_capacity(n);
    let mut withdrawal_fees = Vec::with_capacity(n);
    for f in rows {
        asset.push(i64::from(f.asset.0));
        hour_ms.push(codec::fee_hour(f.hour_ms)?);
        trade_fees.push(codec::amount(f.trade_fees));
        withdrawal_fees.push(codec::amount(f.withdrawal_fees));
    }
    sqlx::query(UPSERT_FEE_REVENUE)
        .bind(asset)
        .bind(hour_ms)
        .bind(trade_fees)
        .bind(withdrawal_fees)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

const UPSERT_ORDERS: &str = "INSERT INTO orders (id, user_id, market_id, side, kind, time_in_force, price, quantity, \
     quote_amount, client_order_id, stp, status, end_reason, filled, filled_quote, fee, created_seq, \
     created_ms, updated_ms) \
     SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], \
     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], \
     $15::text[], $16::text[], $17::bigint[], $18::bigint[], $19::bigint[]) \
     ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, market_id = excluded.market_id, \
     side = excluded.side, kind = excluded.kind, time_in_force = excluded.time_in_force, \
     price = excluded.price, quantity = excluded.quantity, quote_amount = excluded.quote_amount, \
     client_order_id = excluded.client_order_id, stp = excluded.stp, status = excluded.status, \
     end_reason = excluded.end_reason, filled = excluded.filled, filled_quote = excluded.filled_quote, \
     fee = excluded.fee, created_seq = excluded.created_seq, created_ms = excluded.created_ms, \
     updated_ms = excluded.updated_ms";
const INSERT_TRADES: &str = "INSERT INTO trades (market_id, id, price, quantity, notional, taker_side, maker_order, \
     maker_user, maker_fee, taker_order, taker_user, taker_fee, seq, time_ms) \
     SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], \
     $7::bigint[], $8::bigint[], $9::text[], $10::bigint[], $11::bigint[], $12::text[], $13::bigint[], \
     $14::bigint[])";
/// `WITH ORDINALITY ... ORDER BY`: ledger ids follow the order of the entries.
const INSERT_LEDGER: &str = "INSERT INTO ledger (user_id, asset_id, seq, time_ms, kind, reference, delta_available, \
     delta_locked, delta_held, available, locked, held) \
     SELECT u, a, s, t, k, r, da, dl, dh, av, lo, he FROM UNNEST($1::bigint[], $2::bigint[], \
     $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
     $11::text[], $12::text[]) WITH ORDINALITY AS x(u, a, s, t, k, r, da, dl, dh, av, lo, he, ord) \
     ORDER BY ord";
const UPSERT_BALANCES: &str = "INSERT INTO balances (user_id, asset_id, available, locked, held, seq) \
     SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[]) \
     ON CONFLICT (user_id, asset_id) DO UPDATE SET available = excluded.available, \
     locked = excluded.locked, held = excluded.held, seq = excluded.seq";
const UPSERT_CANDLES: &str = "INSERT INTO candles (market_id, period, open_ms, open, high, low, close, volume, \
     quote_volume, trades) \
     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], \
     $7::text[], $8::text[], $9::text[], $10::bigint[]) \
     ON CONFLICT (market_id, period, open_ms) DO UPDATE SET open = excluded.open, \
     high = excluded.high, low = excluded.low, close = excluded.close, volume = excluded.volume, \
     quote_volume = excluded.quote_volume, trades = excluded.trades";
const UPSERT_FEE_REVENUE: &str = "INSERT INTO fee_revenue (asset_id, hour_ms, trade_fees, \
     withdrawal_fees) SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[]) \
     ON CONFLICT (asset_id, hour_ms) DO UPDATE SET trade_fees = excluded.trade_fees, \
     withdrawal_fees = excluded.withdrawal_fees";

/// Queued as `enqueue_mail` queues one (due at once), ids in the order of the mails.
const INSERT_MAILS: &str = "INSERT INTO mail_outbox (to_address, subject, text_body, html_body, \
     created_ms, next_attempt_ms) \
     SELECT t, s, x, h, c, c FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
     $5::bigint[]) WITH ORDINALITY AS m(t, s, x, h, c, ord) ORDER BY ord";
/// `$1` user, `$2` the hashes.
const INSERT_RECOVERY_CODES: &str = "INSERT INTO recovery_codes (user_id, code_hash) \
     SELECT $1::bigint, h FROM UNNEST($2::text[]) AS c(h)";

/// `$1` a [`codec::contains_pattern`], `$2` limit. `LOWER` under the "C" collation folds ASCII
/// letters only, as SQLite's does (under the database's own it would follow its locale).
const SEARCH_USERS: &str = "SELECT id, email, password_hash, email_verified, created_ms, \
     totp_sealed, totp_pending_sealed, totp_last_step, address_whitelist, locked_ms FROM users \
     WHERE LOWER(email COLLATE \"C\") LIKE $1 ESCAPE '\\' ORDER BY id LIMIT $2";

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<usize> {
        let before = applied(&mut *self.pool.acquire().await?).await?;
        MIGRATOR.run(&self.pool).await?;
        let after = applied(&mut *self.pool.acquire().await?).await?;
        Ok(after.saturating_sub(before))
    }

    async fn ping(&self) -> Result<()> {
        self.pool.execute("SELECT 1").await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    // ---- users ---------------------------------------------------------------------------

    async fn create_user(&self, email: &str, password_hash: &str, now_ms: i64) -> Result<UserId> {
        let row = sqlx::query(sql::CREATE_USER)
            .bind(email)
            .bind(password_hash)
            .bind(now_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| codec::conflict(e, "email"))?;
        Ok(UserId(codec::Get::u64(&row, "id")?))
    }

    async fn user(&self, id: UserId) -> Result<Option<UserRow>> {
        let Ok(id) = i64::try_from(id.0) else { return Ok(None) };
        let row = sqlx::query(sql::USER).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(codec::user_row).transpose()
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query(sql::USER_BY_EMAIL).bind(email).fetch_optional(&self.pool).await?;
        row.as_ref().map(codec::user_row).transpose()
    }

    async fn set_email_verified(&self, id: UserId) -> Result<()> {
        sqlx::query(sql::SET_EMAIL_VERIFIED)
            .bind(db_u64("user id", id.0)?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<()> {
        sqlx::query(sql::SET_PASSWORD_HASH)
            .bind(db_u64("user id", id.0)?)
            .bind(password_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn count_users(&self) -> Result<u64> {
        let row = sqlx::query(sql::COUNT_USERS).fetch_one(&self.pool).await?;
        codec::Get::u64(&row, "n")
    }

    async fn set_user_locked(&self, user: UserId, locked_ms: Option<i64>) -> Result<bool> {
        let Ok(id) = i64::try_from(user.0) else { return Ok(false) };
        let done =
            sqlx::query(sql::SET_USER_LOCKED).bind(id).bind(locked_ms).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn search_users(&self, text: &str, limit: u32) -> Result<Vec<UserRow>> {
        if text.contains('\0') {
            // No e-mail holds one (and PostgreSQL text cannot): the same answer on both backends.
            return Ok(Vec::new());
        }
        let rows = sqlx::query(SEARCH_USERS)
            .bind(codec::contains_pattern(text))
            .bind(codec::limit(limit))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::user_row)
    }

    async fn user_by_deposit_address(&self, address: &str) -> Result<Option<UserId>> {
        if address.contains('\0') {
            return Ok(None);
        }
        let row = sqlx::query(sql::USER_BY_DEPOSIT_ADDRESS)
            .bind(address)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| codec::Get::u64(&r, "user_id").map(UserId)).transpose()
    }

    // ---- two-factor authentication -------------------------------------------------------

    async fn set_totp_pending(&self, user: UserId, sealed: Option<&[u8]>) -> Result<()> {
        sqlx::query(sql::SET_TOTP_PENDING)
            .bind(db_u64("user id", user.0)?)
            .bind(sealed)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn enable_totp(
        &self,
        user: UserId,
        sealed: &[u8],
        step: i64,
        recovery_code_hashes: &[String],
    ) -> Result<()> {
        let id = db_u64("user id", user.0)?;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(sql::ENABLE_TOTP)
            .bind(id)
            .bind(sealed)
            .bind(step)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            // No such user: nothing to write (the transaction rolls back).
            return Ok(());
        }
        sqlx::query(sql::DELETE_RECOVERY_CODES).bind(id).execute(&mut *tx).await?;
        if !recovery_code_hashes.is_empty() {
            sqlx::query(INSERT_RECOVERY_CODES)
                .bind(id)
                .bind(recovery_code_hashes)
                .execute(&mut *tx)
                .await
                .map_err(|e| codec::conflict(e, "recovery code"))?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn disable_totp(&self, user: UserId) -> Result<()> {
        let id = db_u64("user id", user.0)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(sql::DISABLE_TOTP).bind(id).execute(&mut *tx).await?;
        sqlx::query(sql::DELETE_RECOVERY_CODES).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool> {
        let done = sqlx::query(sql::USE_TOTP_STEP)
            .bind(db_u64("user id", user.0)?)
            .bind(step)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn use_recovery_code(&self, user: UserId, code_hash: &str, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(sql::USE_RECOVERY_CODE)
            .bind(db_u64("user id", user.0)?)
            .bind(code_hash)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn recovery_codes_left(&self, user: UserId) -> Result<u64> {
        let row = sqlx::query(sql::RECOVERY_CODES_LEFT)
            .bind(db_u64("user id", user.0)?)
            .fetch_one(&self.pool)
            .await?;
        codec::Get::u64(&row, "n")
    }

    async fn set_address_whitelist(&self, user: UserId, on: bool) -> Result<()> {
        sqlx::query(sql::SET_ADDRESS_WHITELIST)
            .bind(db_u64("user id", user.0)?)
            .bind(on)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- the admin app -------------------------------------------------------------------

    async fn create_admin(&self, admin: &NewAdmin) -> Result<i64> {
        let row = sqlx::query(sql::CREATE_ADMIN)
            .bind(admin.email.as_str())
            .bind(admin.password_hash.as_str())
            .bind(admin.role.code())
            .bind(admin.totp_sealed.as_slice())
            .bind(admin.created_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| codec::conflict(e, "admin email"))?;
        Ok(row.try_get("id")?)
    }

    async fn admin(&self, id: i64) -> Result<Option<AdminRow>> {
        let row = sqlx::query(sql::ADMIN).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(codec::admin_row).transpose()
    }

    async fn admin_by_email(&self, email: &str) -> Result<Option<AdminRow>> {
        let row = sqlx::query(sql::ADMIN_BY_EMAIL).bind(email).fetch_optional(&self.pool).await?;
        row.as_ref().map(codec::admin_row).transpose()
    }

    async fn admins(&self) -> Result<Vec<AdminRow>> {
        let rows = sqlx::query(sql::ADMINS).fetch_all(&self.pool).await?;
        codec::all(&rows, codec::admin_row)
    }

    async fn use_admin_totp_step(&self, admin: i64, step: i64) -> Result<bool> {
        let done = sqlx::query(sql::USE_ADMIN_TOTP_STEP)
            .bind(admin)
            .bind(step)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_admin_session(&self, session: &NewAdminSession) -> Result<i64> {
        let row = sqlx::query(sql::INSERT_ADMIN_SESSION)
            .bind(session.admin)
            .bind(session.token_hash.as_str())
            .bind(session.created_ms)
            .bind(session.totp_ms)
            .bind(session.ip.as_str())
            .bind(session.user_agent.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| codec::conflict(e, "admin session"))?;
        Ok(row.try_get("id")?)
    }

    async fn live_admin_session(&self, token_hash: &str) -> Result<Option<AdminSessionRow>> {
        let row = sqlx::query(sql::LIVE_ADMIN_SESSION)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(codec::admin_session_row).transpose()
    }

    async fn touch_admin_session(
        &self,
        id: i64,
        now_ms: i64,
        totp_ms: Option<i64>,
    ) -> Result<bool> {
        let done = sqlx::query(sql::TOUCH_ADMIN_SESSION)
            .bind(id)
            .bind(now_ms)
            .bind(totp_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn end_admin_session(&self, id: i64, now_ms: i64) -> Result<bool> {
        let done =
            sqlx::query(sql::END_ADMIN_SESSION).bind(id).bind(now_ms).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_admin_action(&self, action: &NewAdminAction) -> Result<i64> {
        let row = sqlx::query(sql::INSERT_ADMIN_ACTION)
            .bind(action.admin)
            .bind(action.at_ms)
            .bind(action.ip.as_str())
            .bind(action.action.as_str())
            .bind(action.target.as_str())
            .bind(action.reason.as_str())
            .bind(action.detail.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    async fn admin_actions(&self, before: Option<i64>, limit: u32) -> Result<Vec<AdminActionRow>> {
        let Some(bound) = codec::upper_bound_i64(before) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(sql::ADMIN_ACTIONS)
            .bind(bound)
            .bind(codec::limit(limit))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::admin_action_row)
    }

    async fn approve_withdrawal(
        &self,
        withdrawal: i64,
        admin: i64,
        now_ms: i64,
    ) -> Result<Vec<i64>> {
        let mut tx = self.pool.begin().await?;
        // Approvals of one withdrawal one at a time, so each sees every approval before it.
        sqlx::query(LOCK_WITHDRAWAL).bind(withdrawal).fetch_optional(&mut *tx).await?;
        sqlx::query(sql::INSERT_WITHDRAWAL_APPROVAL)
            .bind(withdrawal)
            .bind(admin)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| codec::conflict(e, "withdrawal approval"))?;
        let rows =
            sqlx::query(sql::WITHDRAWAL_APPROVALS).bind(withdrawal).fetch_all(&mut *tx).await?;
        let approvers = codec::approvers(&rows)?;
        tx.commit().await?;
        Ok(approvers)
    }

    async fn withdrawal_approvals(&self, withdrawal: i64) -> Result<Vec<i64>> {
        let rows =
            sqlx::query(sql::WITHDRAWAL_APPROVALS).bind(withdrawal).fetch_all(&self.pool).await?;
        codec::approvers(&rows)
    }

    async fn insert_adjustment(&self, a: &NewAdjustment) -> Result<i64> {
        let row = sqlx::query(sql::INSERT_ADJUSTMENT)
            .bind(db_u64("user id", a.user.0)?)
            .bind(i64::from(a.asset.0))
            .bind(codec::adjustment_delta(a.delta)?)
            .bind(a.reason.as_str())
            .bind(a.proposed_by)
            .bind(a.proposed_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    async fn adjustment(&self, id: i64) -> Result<Option<AdjustmentRow>> {
        let row = sqlx::query(sql::ADJUSTMENT).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(codec::adjustment_row).transpose()
    }

    async fn adjustments(
        &self,
        status: Option<AdjustmentStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AdjustmentRow>> {
        let Some(bound) = codec::upper_bound_i64(before) else {
            return Ok(Vec::new());
        };
        let query = match status {
            None => sqlx::query(sql::ADJUSTMENTS),
            Some(_) => sqlx::query(sql::ADJUSTMENTS_IN_STATUS),
        };
        let mut query = query.bind(bound).bind(codec::limit(limit));
        if let Some(status) = status {
            query = query.bind(status.code());
        }
        let rows = query.fetch_all(&self.pool).await?;
        codec::all(&rows, codec::adjustment_row)
    }

    async fn decide_adjustment(
        &self,
        id: i64,
        admin: i64,
        approve: bool,
        note: &str,
        now_ms: i64,
    ) -> Result<bool> {
        // READ COMMITTED: a second decision waits for the first's row lock, then finds the row
        // no longer pending.
        let query = if approve {
            sqlx::query(sql::APPROVE_ADJUSTMENT).bind(id).bind(admin).bind(now_ms)
        } else {
            sqlx::query(sql::REJECT_ADJUSTMENT).bind(id).bind(admin).bind(now_ms).bind(note)
        };
        let done = query.execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_adjustment(
        &self,
        id: i64,
        applied: bool,
        outcome: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let status = if applied { AdjustmentStatus::Applied } else { AdjustmentStatus::Refused };
        let done = sqlx::query(sql::FINISH_ADJUSTMENT)
            .bind(id)
            .bind(status.code())
            .bind(outcome)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- tokens --------------------------------------------------------------------------

    async fn insert_token(&self, token: &NewToken) -> Result<()> {
        sqlx::query(sql::INSERT_TOKEN)
            .bind(token.token_hash.as_str())
            .bind(db_u64("user id", token.user.0)?)
            .bind(token.purpose.code())
            .bind(token.created_ms)
            .bind(token.expires_ms)
            .bind(token.subject)
            .execute(&self.pool)
            .await
            .map_err(|e| codec::conflict(e, "token"))?;
        Ok(())
    }

    async fn use_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now_ms: i64,
    ) -> Result<Option<UsedToken>> {
        let row = sqlx::query(sql::USE_TOKEN)
            .bind(token_hash)
            .bind(purpose.code())
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(codec::used_token).transpose()
    }

    async fn expire_tokens(
        &self,
        user: UserId,
        purpose: TokenPurpose,
        subject: i64,
        now_ms: i64,
    ) -> Result<u64> {
        let done = sqlx::query(sql::EXPIRE_TOKENS)
            .bind(db_u64("user id", user.0)?)
            .bind(purpose.code())
            .bind(subject)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    // ---- sessions ------------------------------------------------------------------------

    async fn insert_session(&self, session: &NewSession) -> Result<i64> {
        let row = sqlx::query(sql::INSERT_SESSION)
            .bind(session.token_hash.as_str())
            .bind(db_u64("user id", session.user.0)?)
            .bind(session.created_ms)
            .bind(session.expires_ms)
            .bind(session.ip.as_str())
            .bind(session.user_agent.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| codec::conflict(e, "session"))?;
        Ok(row.try_get("id")?)
    }

    async fn live_session(&self, token_hash: &str, now_ms: i64) -> Result<Option<SessionRow>> {
        let row = sqlx::query(sql::LIVE_SESSION)
            .bind(token_hash)
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(codec::session_row).transpose()
    }

    async fn touch_session(&self, id: i64, now_ms: i64, expires_ms: i64) -> Result<()> {
        sqlx::query(sql::TOUCH_SESSION)
            .bind(id)
            .bind(now_ms)
            .bind(expires_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn sessions(&self, user: UserId, now_ms: i64) -> Result<Vec<SessionRow>> {
        let rows = sqlx::query(sql::SESSIONS)
            .bind(db_u64("user id", user.0)?)
            .bind(now_ms)
            .bind(i64::from(LIST_LIMIT_MAX))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::session_row)
    }

    async fn revoke_session(&self, user: UserId, id: i64) -> Result<bool> {
        let done = sqlx::query(sql::REVOKE_SESSION)
            .bind(id)
            .bind(db_u64("user id", user.0)?)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_sessions(&self, user: UserId, keep: Option<i64>) -> Result<u64> {
        let done = sqlx::query(sql::REVOKE_SESSIONS)
            .bind(db_u64("user id", user.0)?)
            .bind(keep)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    // ---- API keys ------------------------------------------------------------------------

    async fn insert_api_key(&self, key: &NewApiKey) -> Result<i64> {
        let row = sqlx::query(sql::INSERT_API_KEY)
            .bind(db_u64("user id", key.user.0)?)
            .bind(key.key.as_str())
            .bind(key.secret_sealed.as_slice())
            .bind(key.label.as_str())
            .bind(i32::from(key.scopes.0))
            .bind(codec::join_allowlist(&key.ip_allowlist)?)
            .bind(key.created_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| codec::conflict(e, "api key"))?;
        Ok(row.try_get("id")?)
    }

    async fn api_key(&self, key: &str) -> Result<Option<ApiKeyRow>> {
        let row = sqlx::query(sql::API_KEY).bind(key).fetch_optional(&self.pool).await?;
        row.as_ref().map(codec::api_key_row).transpose()
    }

    async fn api_keys(&self, user: UserId) -> Result<Vec<ApiKeyRow>> {
        let rows = sqlx::query(sql::API_KEYS)
            .bind(db_u64("user id", user.0)?)
            .bind(i64::from(LIST_LIMIT_MAX))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::api_key_row)
    }

    async fn revoke_api_key(&self, user: UserId, id: i64) -> Result<bool> {
        let done = sqlx::query(sql::REVOKE_API_KEY)
            .bind(id)
            .bind(db_u64("user id", user.0)?)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_security_event(&self, event: &NewSecurityEvent) -> Result<i64> {
        let row = sqlx::query(sql::INSERT_SECURITY_EVENT)
            .bind(db_u64("user id", event.user.0)?)
            .bind(event.at_ms)
            .bind(event.kind.code())
            .bind(event.ip.as_str())
            .bind(event.user_agent.as_str())
            .bind(event.detail.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    async fn security_events(
        &self,
        user: UserId,
        filter: &SecurityEventFilter,
    ) -> Result<Vec<SecurityEventRow>> {
        let Some(bound) = codec::upper_bound_i64(filter.before) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(sql::SECURITY_EVENTS)
            .bind(db_u64("user id", user.0)?)
            .bind(bound)
            .bind(codec::limit(filter.limit))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::security_event_row)
    }

    // ---- projection ----------------------------------------------------------------------

    // ---- wallet -------------------------------------------------------------------------

    async fn insert_deposit_address(&self, a: &NewDepositAddress) -> Result<i64> {
        let row = sqlx::query(sql::INSERT_DEPOSIT_ADDRESS)
            .bind(db_u64("user id", a.user.0)?)
            .bind(i64::from(a.asset.0))
            .bind(a.address.as_str())
            .bind(a.label.as_str())
            .bind(a.created_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| codec::conflict(e, "deposit address"))?;
        Ok(row.try_get("id")?)
    }

    async fn deposit_addresses(
        &self,
        user: UserId,
        asset: AssetId,
        limit: u32,
    ) -> Result<Vec<DepositAddressRow>> {
        let rows = sqlx::query(sql::DEPOSIT_ADDRESSES)
            .bind(db_u64("user id", user.0)?)
            .bind(i64::from(asset.0))
            .bind(codec::limit(limit))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::deposit_address_row)
    }

    async fn deposit_address(
        &self,
        asset: AssetId,
        address: &str,
    ) -> Result<Option<DepositAddressRow>> {
        let row = sqlx::query(sql::DEPOSIT_ADDRESS)
            .bind(i64::from(asset.0))
            .bind(address)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(codec::deposit_address_row).transpose()
    }

    async fn upsert_deposit(&self, d: &DepositRow) -> Result<()> {
        sqlx::query(sql::UPSERT_DEPOSIT)
            .bind(i64::from(d.asset.0))
            .bind(d.txid.as_str())
            .bind(i64::from(d.vout))
            .bind(db_u64("user id", d.user.0)?)
            .bind(d.address.as_str())
            .bind(codec::amount(d.amount))
            .bind(d.confirmations)
            .bind(d.status.code())
            .bind(d.seq.map(|s| db_u64("seq", s)).transpose()?)
            .bind(d.first_seen_ms)
            .bind(d.updated_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn deposit(&self, asset: AssetId, txid: &str, vout: u32) -> Result<Option<DepositRow>> {
        let row = sqlx::query(sql::DEPOSIT)
            .bind(i64::from(asset.0))
            .bind(txid)
            .bind(i64::from(vout))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(codec::deposit_row).transpose()
    }

    async fn deposits(&self, user: UserId, filter: &DepositFilter) -> Result<Vec<DepositRow>> {
        let Some(bound) = codec::upper_bound_i64(filter.before) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(sql::DEPOSITS)
            .bind(db_u64("user id", user.0)?)
            .bind(filter.asset.map(|a| i64::from(a.0)))
            .bind(bound)
            .bind(codec::limit(filter.limit))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::deposit_row)
    }

    async fn recent_deposits(
        &self,
        status: Option<DepositStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DepositRow>> {
        let Some(bound) = codec::upper_bound_i64(before) else {
            return Ok(Vec::new());
        };
        let query = match status {
            None => sqlx::query(sql::RECENT_DEPOSITS),
            Some(_) => sqlx::query(sql::RECENT_DEPOSITS_IN_STATUS),
        };
        let mut query = query.bind(bound).bind(codec::limit(limit));
        if let Some(status) = status {
            query = query.bind(status.code());
        }
        let rows = query.fetch_all(&self.pool).await?;
        codec::all(&rows, codec::deposit_row)
    }

    async fn watched_deposits(&self, asset: AssetId, watch: i64) -> Result<Vec<DepositRow>> {
        let rows = sqlx::query(sql::WATCHED_DEPOSITS)
            .bind(i64::from(asset.0))
            .bind(watch)
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::deposit_row)
    }

    async fn wallet_cursor(&self, asset: AssetId) -> Result<Option<String>> {
        let row = sqlx::query(sql::WALLET_CURSOR)
            .bind(i64::from(asset.0))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("block_hash")).transpose()?)
    }

    async fn set_wallet_cursor(&self, asset: AssetId, block_hash: &str, now_ms: i64) -> Result<()> {
        sqlx::query(sql::SET_WALLET_CURSOR)
            .bind(i64::from(asset.0))
            .bind(block_hash)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_withdrawal(&self, w: &NewWithdrawal) -> Result<i64> {
        let row = sqlx::query(sql::INSERT_WITHDRAWAL)
            .bind(db_u64("user id", w.user.0)?)
            .bind(i64::from(w.asset.0))
            .bind(w.address.as_str())
            .bind(codec::amount(w.amount))
            .bind(codec::amount(w.fee))
            .bind(w.created_ms)
            .bind(codec::after_hold(w.after_hold)?)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    async fn withdrawal(&self, user: UserId, id: i64) -> Result<Option<WithdrawalRow>> {
        let row = sqlx::query(sql::WITHDRAWAL)
            .bind(db_u64("user id", user.0)?)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(codec::withdrawal_row).transpose()
    }

    async fn withdrawal_by_id(&self, id: i64) -> Result<Option<WithdrawalRow>> {
        let row = sqlx::query(sql::WITHDRAWAL_BY_ID).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(codec::withdrawal_row).transpose()
    }

    async fn withdrawals(
        &self,
        user: UserId,
        filter: &WithdrawalFilter,
    ) -> Result<Vec<WithdrawalRow>> {
        let Some(bound) = codec::upper_bound_i64(filter.before) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(sql::WITHDRAWALS)
            .bind(db_u64("user id", user.0)?)
            .bind(filter.asset.map(|a| i64::from(a.0)))
            .bind(bound)
            .bind(codec::limit(filter.limit))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::withdrawal_row)
    }

    async fn open_withdrawals(&self, asset: AssetId) -> Result<Vec<WithdrawalRow>> {
        let rows = sqlx::query(sql::OPEN_WITHDRAWALS)
            .bind(i64::from(asset.0))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::withdrawal_row)
    }

    async fn withdrawals_in_status(
        &self,
        status: WithdrawalStatus,
        limit: u32,
    ) -> Result<Vec<WithdrawalRow>> {
        let rows = sqlx::query(sql::WITHDRAWALS_IN_STATUS)
            .bind(status.code())
            .bind(codec::limit(limit))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::withdrawal_row)
    }

    async fn discard_withdrawal(&self, id: i64) -> Result<()> {
        sqlx::query(sql::DISCARD_WITHDRAWAL).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn set_withdrawal_status(
        &self,
        id: i64,
        status: WithdrawalStatus,
        txid: Option<&str>,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(sql::SET_WITHDRAWAL_STATUS)
            .bind(id)
            .bind(status.code())
            .bind(txid)
            .bind(reason)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn transition_withdrawal(
        &self,
        id: i64,
        from: WithdrawalStatus,
        to: WithdrawalStatus,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<bool> {
        let done = sqlx::query(sql::TRANSITION_WITHDRAWAL)
            .bind(id)
            .bind(from.code())
            .bind(to.code())
            .bind(reason)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_withdrawal_address(&self, a: &NewWithdrawalAddress) -> Result<i64> {
        let row = sqlx::query(sql::INSERT_WITHDRAWAL_ADDRESS)
            .bind(db_u64("user id", a.user.0)?)
            .bind(i64::from(a.asset.0))
            .bind(a.address.as_str())
            .bind(a.label.as_str())
            .bind(a.created_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| codec::conflict(e, "withdrawal address"))?;
        Ok(row.try_get("id")?)
    }

    async fn confirm_withdrawal_address(
        &self,
        user: UserId,
        id: i64,
        now_ms: i64,
        usable_from_ms: i64,
    ) -> Result<bool> {
        let done = sqlx::query(sql::CONFIRM_WITHDRAWAL_ADDRESS)
            .bind(db_u64("user id", user.0)?)
            .bind(id)
            .bind(now_ms)
            .bind(usable_from_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn withdrawal_addresses(&self, user: UserId) -> Result<Vec<WithdrawalAddressRow>> {
        let rows = sqlx::query(sql::WITHDRAWAL_ADDRESSES)
            .bind(db_u64("user id", user.0)?)
            .bind(i64::from(LIST_LIMIT_MAX))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::withdrawal_address_row)
    }

    async fn remove_withdrawal_address(&self, user: UserId, id: i64, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(sql::REMOVE_WITHDRAWAL_ADDRESS)
            .bind(db_u64("user id", user.0)?)
            .bind(id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_chain_send(&self, c: &NewChainSend) -> Result<i64> {
        let row = sqlx::query(sql::INSERT_CHAIN_SEND)
            .bind(i64::from(c.asset.0))
            .bind(c.kind.code())
            .bind(c.withdrawal)
            .bind(c.from_address.as_str())
            .bind(c.to_address.as_str())
            .bind(db_u64("nonce", c.nonce)?)
            .bind(c.txid.as_str())
            .bind(codec::hex(&c.raw))
            .bind(codec::amount(c.value))
            .bind(c.created_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| codec::conflict(e, "chain send nonce"))?;
        Ok(row.try_get("id")?)
    }

    async fn open_chain_sends(&self, asset: AssetId) -> Result<Vec<ChainSendRow>> {
        let rows = sqlx::query(sql::OPEN_CHAIN_SENDS)
            .bind(i64::from(asset.0))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::chain_send_row)
    }

    async fn chain_send_of_withdrawal(&self, withdrawal: i64) -> Result<Option<ChainSendRow>> {
        let row = sqlx::query(sql::CHAIN_SEND_OF_WITHDRAWAL)
            .bind(withdrawal)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(codec::chain_send_row).transpose()
    }

    async fn set_chain_send_status(
        &self,
        id: i64,
        status: ChainSendStatus,
        fee: Option<u128>,
        now_ms: i64,
    ) -> Result<()> {
        // Back from `failed`, its nonce may meanwhile belong to another send.
        sqlx::query(sql::SET_CHAIN_SEND_STATUS)
            .bind(id)
            .bind(status.code())
            .bind(codec::opt_amount(fee))
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(|e| codec::conflict(e, "chain send nonce"))?;
        Ok(())
    }

    async fn next_chain_nonce(&self, asset: AssetId, from_address: &str) -> Result<Option<u64>> {
        let row = sqlx::query(sql::MAX_CHAIN_NONCE)
            .bind(i64::from(asset.0))
            .bind(from_address)
            .fetch_one(&self.pool)
            .await?;
        codec::next_nonce(&row)
    }

    async fn asset_deposit_addresses(
        &self,
        asset: AssetId,
        after_id: i64,
    ) -> Result<Vec<DepositAddressRow>> {
        let rows = sqlx::query(sql::ASSET_DEPOSIT_ADDRESSES)
            .bind(i64::from(asset.0))
            .bind(after_id)
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::deposit_address_row)
    }

    async fn insert_alert(&self, alert: &NewAlert) -> Result<i64> {
        let row = sqlx::query(sql::INSERT_ALERT)
            .bind(alert.at_ms)
            .bind(alert.source.as_str())
            .bind(alert.message.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    async fn alerts(&self, limit: u32) -> Result<Vec<AlertRow>> {
        let rows = sqlx::query(sql::ALERTS)
            .bind(i64::from(limit.min(LIST_LIMIT_MAX)))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::alert_row)
    }

    async fn alerts_after(&self, after_id: i64, limit: u32) -> Result<Vec<AlertRow>> {
        let rows = sqlx::query(sql::ALERTS_AFTER)
            .bind(after_id)
            .bind(i64::from(limit.min(LIST_LIMIT_MAX)))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::alert_row)
    }

    async fn alert_sink_cursor(&self, sink: &str) -> Result<i64> {
        let row = sqlx::query(sql::ALERT_SINK).bind(sink).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get("last_id")).transpose()?.unwrap_or(0))
    }

    async fn set_alert_sink_cursor(&self, sink: &str, last_id: i64) -> Result<()> {
        sqlx::query(sql::SET_ALERT_SINK).bind(sink).bind(last_id).execute(&self.pool).await?;
        Ok(())
    }

    async fn enqueue_mail(&self, mail: &NewMail) -> Result<i64> {
        let row = sqlx::query(sql::ENQUEUE_MAIL)
            .bind(mail.to.as_str())
            .bind(mail.subject.as_str())
            .bind(mail.text.as_str())
            .bind(mail.html.as_str())
            .bind(mail.created_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    async fn due_mails(&self, now_ms: i64, limit: u32) -> Result<Vec<MailRow>> {
        let rows = sqlx::query(sql::DUE_MAILS)
            .bind(now_ms)
            .bind(codec::limit(limit))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::mail_row)
    }

    async fn mail_sent(&self, id: i64, now_ms: i64) -> Result<()> {
        sqlx::query(sql::MAIL_SENT).bind(id).bind(now_ms).execute(&self.pool).await?;
        Ok(())
    }

    async fn mail_failed(&self, id: i64, error: &str, next_attempt_ms: i64) -> Result<()> {
        sqlx::query(sql::MAIL_FAILED)
            .bind(id)
            .bind(error)
            .bind(next_attempt_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn mail_queue_len(&self) -> Result<u64> {
        let row = sqlx::query(sql::MAIL_QUEUE_LEN).fetch_one(&self.pool).await?;
        codec::Get::u64(&row, "n")
    }

    async fn projected_seq(&self) -> Result<u64> {
        let row = sqlx::query(sql::CURSOR).fetch_optional(&self.pool).await?;
        match row {
            Some(row) => codec::Get::u64(&row, "seq"),
            None => Err(StoreError::Corrupt { column: "projector_cursor", value: "no row".into() }),
        }
    }

    async fn apply_projection(&self, projection: &Projection) -> Result<()> {
        let (expected, to_seq) = codec::projection_seqs(projection)?;
        let mut tx = self.pool.begin().await?;
        // Projections can be rebuilt from the engine journal, and the cursor commits with
        // them: this commit need not wait for the WAL flush. A crash may lose the last few,
        // whole, and the projector applies them again.
        sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
        let row = sqlx::query(CURSOR_FOR_UPDATE).fetch_optional(&mut *tx).await?;
        let found = match row {
            Some(row) => codec::Get::u64(&row, "seq")?,
            None => {
                return Err(StoreError::Corrupt {
                    column: "projector_cursor",
                    value: "no row".into(),
                });
            }
        };
        if found != expected {
            return Err(StoreError::CursorMismatch { expected, found });
        }
        write_projection(&mut tx, projection).await?;
        if let Some(relay) = &projection.relay {
            sqlx::query(sql::INSERT_RELAY)
                .bind(to_seq)
                .bind(db_u64("seq", projection.from_seq)?)
                .bind(relay.created_ms)
                .bind(relay.body.as_str())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(sql::SET_CURSOR).bind(to_seq).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn relay_after(&self, after: u64, limit: u32) -> Result<Vec<RelayRow>> {
        let rows = sqlx::query(sql::RELAY_AFTER)
            .bind(db_u64("seq", after)?)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::relay_row)
    }

    async fn prune_relay(&self, before_ms: i64) -> Result<u64> {
        let done = sqlx::query(sql::PRUNE_RELAY).bind(before_ms).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    async fn record_reconciliation(&self, row: &ReconciliationRow) -> Result<()> {
        sqlx::query(sql::RECORD_RECONCILIATION)
            .bind(i64::from(row.asset.0))
            .bind(row.liabilities.to_string())
            .bind(row.hot.to_string())
            .bind(row.shortfall.to_string())
            .bind(row.paused)
            .bind(row.at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn reconciliations(&self) -> Result<Vec<ReconciliationRow>> {
        let rows = sqlx::query(sql::RECONCILIATIONS).fetch_all(&self.pool).await?;
        codec::all(&rows, codec::reconciliation_row)
    }

    async fn open_orders_all(&self) -> Result<Vec<OrderRow>> {
        let rows = sqlx::query(sql::OPEN_ORDERS_ALL).fetch_all(&self.pool).await?;
        codec::all(&rows, codec::order_row)
    }

    async fn latest_candles(&self) -> Result<Vec<CandleRow>> {
        let rows = sqlx::query(sql::LATEST_CANDLES).fetch_all(&self.pool).await?;
        codec::all(&rows, codec::candle_row)
    }

    async fn latest_fee_revenue(&self) -> Result<Vec<FeeRevenueRow>> {
        let rows = sqlx::query(sql::LATEST_FEE_REVENUE).fetch_all(&self.pool).await?;
        codec::all(&rows, codec::fee_revenue_row)
    }

    async fn backfill_fee_revenue(&self, quote_of: &HashMap<MarketId, AssetId>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        // The projector's lock: no projection (nor another backfill) commits meanwhile, so every
        // page sees the same trades and fee revenue.
        sqlx::query(CURSOR_FOR_UPDATE).fetch_optional(&mut *tx).await?;
        if sqlx::query(sql::ANY_FEE_REVENUE).fetch_optional(&mut *tx).await?.is_some() {
            return Ok(0);
        }
        let mut buckets = codec::FeeBuckets::default();
        let mut markets: Vec<_> = quote_of.iter().collect();
        markets.sort();
        for (market, &quote) in markets {
            let mut after = i64::MIN;
            loop {
                let rows = sqlx::query(sql::TRADE_FEES_PAGE)
                    .bind(i64::from(market.0))
                    .bind(after)
                    .bind(codec::BACKFILL_PAGE)
                    .fetch_all(&mut *tx)
                    .await?;
                for row in &rows {
                    buckets.add_trade(quote, row)?;
                }
                match rows.last() {
                    Some(last) => after = last.try_get("id")?,
                    None => break,
                }
            }
        }
        let mut after = i64::MIN;
        loop {
            let rows = sqlx::query(sql::WITHDRAWAL_FEES_PAGE)
                .bind(after)
                .bind(codec::BACKFILL_PAGE)
                .fetch_all(&mut *tx)
                .await?;
            for row in &rows {
                buckets.add_withdrawal(row)?;
            }
            match rows.last() {
                Some(last) => after = last.try_get("id")?,
                None => break,
            }
        }
        let rows = buckets.into_rows();
        if !rows.is_empty() {
            upsert_fee_revenue(&mut tx, &rows.iter().collect::<Vec<_>>()).await?;
        }
        tx.commit().await?;
        Ok(u64::try_from(rows.len()).unwrap_or(u64::MAX))
    }

    // ---- read models ---------------------------------------------------------------------

    async fn balance(&self, user: UserId, asset: AssetId) -> Result<Option<BalanceRow>> {
        let row = sqlx::query(sql::BALANCE)
            .bind(db_u64("user id", user.0)?)
            .bind(i64::from(asset.0))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(codec::balance_row).transpose()
    }

    async fn balances(&self, user: UserId) -> Result<Vec<BalanceRow>> {
        let rows = sqlx::query(sql::BALANCES)
            .bind(db_u64("user id", user.0)?)
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::balance_row)
    }

    async fn order(&self, user: UserId, id: OrderId) -> Result<Option<OrderRow>> {
        let Ok(id) = i64::try_from(id.0) else { return Ok(None) };
        let row = sqlx::query(sql::ORDER)
            .bind(id)
            .bind(db_u64("user id", user.0)?)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(codec::order_row).transpose()
    }

    async fn order_by_client_id(
        &self,
        user: UserId,
        market: Option<MarketId>,
        client_order_id: &str,
    ) -> Result<Option<OrderRow>> {
        let row = sqlx::query(sql::ORDER_BY_CLIENT_ID)
            .bind(db_u64("user id", user.0)?)
            .bind(client_order_id)
            .bind(market.map(|m| i64::from(m.0)))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(codec::order_row).transpose()
    }

    async fn orders(&self, user: UserId, filter: &OrderFilter) -> Result<Vec<OrderRow>> {
        let Some(bound) = codec::upper_bound(filter.before.map(|b| b.0)) else {
            return Ok(Vec::new());
        };
        let sql = if filter.open_only { sql::OPEN_ORDERS } else { sql::ORDERS };
        let rows = sqlx::query(sql)
            .bind(db_u64("user id", user.0)?)
            .bind(filter.market.map(|m| i64::from(m.0)))
            .bind(bound)
            .bind(codec::limit(filter.limit))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::order_row)
    }

    async fn open_order_users(&self, market: MarketId) -> Result<Vec<UserId>> {
        let rows = sqlx::query(sql::OPEN_ORDER_USERS)
            .bind(i64::from(market.0))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, |r| codec::Get::u64(r, "user_id").map(UserId))
    }

    async fn fills(&self, user: UserId, filter: &FillFilter) -> Result<Vec<TradeRow>> {
        let (seq, market, id) = codec::fills_bound(filter.before);
        let order = match filter.order {
            None => None,
            Some(o) => match i64::try_from(o.0) {
                Ok(o) => Some(o),
                Err(_) => return Ok(Vec::new()),
            },
        };
        let sql = if order.is_some() { sql::FILLS_OF_ORDER } else { sql::FILLS };
        let mut query = sqlx::query(sql)
            .bind(db_u64("user id", user.0)?)
            .bind(filter.market.map(|m| i64::from(m.0)))
            .bind(seq)
            .bind(market)
            .bind(id)
            .bind(codec::limit(filter.limit));
        if let Some(order) = order {
            query = query.bind(order);
        }
        let rows = query.fetch_all(&self.pool).await?;
        codec::all(&rows, codec::trade_row)
    }

    async fn trades(
        &self,
        market: MarketId,
        before: Option<TradeId>,
        limit: u32,
    ) -> Result<Vec<TradeRow>> {
        let Some(bound) = codec::upper_bound(before.map(|b| b.0)) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(sql::TRADES)
            .bind(i64::from(market.0))
            .bind(bound)
            .bind(codec::limit(limit))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::trade_row)
    }

    async fn trades_range(&self, market: MarketId, range: &RangeFilter) -> Result<Vec<TradeRow>> {
        let Some(r) = codec::range(range) else { return Ok(Vec::new()) };
        let sql = match r.walk {
            RangeWalk::FromId => sql::TRADES_FROM_ID,
            RangeWalk::FromTime => sql::TRADES_FROM_TIME,
            RangeWalk::Newest => sql::TRADES_NEWEST,
        };
        let rows = sqlx::query(sql)
            .bind(i64::from(market.0))
            .bind(r.first_id)
            .bind(r.start_ms)
            .bind(r.end_ms)
            .bind(r.limit)
            .fetch_all(&self.pool)
            .await?;
        codec::range_rows(&r, &rows, codec::trade_row)
    }

    async fn fills_range(
        &self,
        user: UserId,
        market: MarketId,
        order: Option<OrderId>,
        range: &RangeFilter,
    ) -> Result<Vec<TradeRow>> {
        let Some(r) = codec::range(range) else { return Ok(Vec::new()) };
        let order = match order {
            None => None,
            Some(o) => match i64::try_from(o.0) {
                Ok(o) => Some(o),
                Err(_) => return Ok(Vec::new()),
            },
        };
        let newest = r.walk == RangeWalk::Newest;
        let sql = match (order.is_some(), newest) {
            (false, false) => sql::FILLS_RANGE,
            (false, true) => sql::FILLS_RANGE_NEWEST,
            (true, false) => sql::FILLS_OF_ORDER_RANGE,
            (true, true) => sql::FILLS_OF_ORDER_RANGE_NEWEST,
        };
        let mut query = sqlx::query(sql)
            .bind(db_u64("user id", user.0)?)
            .bind(i64::from(market.0))
            .bind(r.first_id)
            .bind(r.start_ms)
            .bind(r.end_ms)
            .bind(r.limit);
        if let Some(order) = order {
            query = query.bind(order);
        }
        let rows = query.fetch_all(&self.pool).await?;
        codec::range_rows(&r, &rows, codec::trade_row)
    }

    async fn orders_range(
        &self,
        user: UserId,
        market: MarketId,
        range: &RangeFilter,
    ) -> Result<Vec<OrderRow>> {
        let Some(r) = codec::range(range) else { return Ok(Vec::new()) };
        let sql = match r.walk {
            RangeWalk::FromId | RangeWalk::FromTime => sql::ORDERS_RANGE,
            RangeWalk::Newest => sql::ORDERS_RANGE_NEWEST,
        };
        let rows = sqlx::query(sql)
            .bind(db_u64("user id", user.0)?)
            .bind(i64::from(market.0))
            .bind(r.first_id)
            .bind(r.start_ms)
            .bind(r.end_ms)
            .bind(r.limit)
            .fetch_all(&self.pool)
            .await?;
        codec::range_rows(&r, &rows, codec::order_row)
    }

    async fn ledger(&self, user: UserId, filter: &LedgerFilter) -> Result<Vec<LedgerRow>> {
        let Some(bound) = codec::upper_bound_i64(filter.before) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(sql::LEDGER)
            .bind(db_u64("user id", user.0)?)
            .bind(filter.asset.map(|a| i64::from(a.0)))
            .bind(bound)
            .bind(codec::limit(filter.limit))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::ledger_row)
    }

    async fn candles(
        &self,
        market: MarketId,
        interval: Interval,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: u32,
    ) -> Result<Vec<CandleRow>> {
        let Some(last) = codec::upper_bound_i64(to_ms) else { return Ok(Vec::new()) };
        let rows = sqlx::query(sql::CANDLES)
            .bind(i64::from(market.0))
            .bind(interval.code())
            .bind(from_ms.unwrap_or(i64::MIN))
            .bind(last)
            .bind(codec::limit(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut candles = codec::all(&rows, codec::candle_row)?;
        candles.reverse();
        Ok(candles)
    }

    async fn fee_revenue(&self, from_ms: i64, to_ms: i64) -> Result<Vec<FeeRevenueRow>> {
        let rows =
            sqlx::query(sql::FEE_REVENUE).bind(from_ms).bind(to_ms).fetch_all(&self.pool).await?;
        codec::all(&rows, codec::fee_revenue_row)
    }

    // ---- backups -------------------------------------------------------------------------

    async fn backup_begin(&self, path: &Path) -> Result<Box<dyn DatabaseBackup>> {
        backup::postgres_begin(&self.pool.connect_options(), path).await
    }

    async fn record_backup(&self, r: &NewBackupRecord) -> Result<i64> {
        let row = sqlx::query(sql::INSERT_BACKUP)
            .bind(r.started_at_ms)
            .bind(r.finished_at_ms)
            .bind(r.destination.as_str())
            .bind(r.name.as_str())
            .bind(db_u64("backup seq", r.seq)?)
            .bind(r.state_hash.as_str())
            .bind(db_u64("backup bytes", r.bytes)?)
            .bind(r.ok)
            .bind(r.error.as_deref())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    async fn recent_backups(&self, limit: u32) -> Result<Vec<BackupRecord>> {
        let rows = sqlx::query(sql::RECENT_BACKUPS)
            .bind(codec::limit(limit))
            .fetch_all(&self.pool)
            .await?;
        codec::all(&rows, codec::backup_row)
    }

    async fn last_good_backup(&self) -> Result<Option<BackupRecord>> {
        let row = sqlx::query(sql::LAST_GOOD_BACKUP).fetch_optional(&self.pool).await?;
        row.as_ref().map(codec::backup_row).transpose()
    }
}
