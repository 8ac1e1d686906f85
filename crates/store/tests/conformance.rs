#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! The store's conformance suite: every test is written once against `Arc<dyn Store>` and run
//! against both backends (`sqlite::*` on a fresh file, `postgres::*` on a fresh database of the
//! server in `BOURSE_TEST_POSTGRES_URL`, which `./scripts/test` starts).

#[path = "../src/testing.rs"]
mod testing;

use bourse_core::{
    AssetId, EndReason, MarketId, OrderId, Side, StpMode, TimeInForce, TradeId, UserId,
};
use bourse_store::{
    AdjustmentRow, AdjustmentStatus, AdminActionRow, AdminRole, AdminRow, AdminSessionRow,
    AlertRow, ApiKeyRow, BackupRecord, BalanceRow, CandleRow, ChainSendKind, ChainSendRow,
    ChainSendStatus, DatabaseFormat, DepositFilter, DepositRow, DepositStatus, FeeRevenueRow,
    FillFilter, Interval, LIST_LIMIT_MAX, LedgerFilter, LedgerKind, MailRow, NewAdjustment,
    NewAdmin, NewAdminAction, NewAdminSession, NewAlert, NewApiKey, NewBackupRecord, NewChainSend,
    NewDepositAddress, NewLedgerEntry, NewMail, NewRelay, NewSecurityEvent, NewSession, NewToken,
    NewWithdrawal, NewWithdrawalAddress, OrderFilter, OrderKind, OrderRow, OrderStatus, Projection,
    RangeFilter, ReconciliationRow, RelayRow, Scopes, SecurityEventFilter, SecurityEventKind,
    SecurityEventRow, SessionRow, Store, StoreError, TokenPurpose, TradeRow, UsedToken, UserRow,
    WithdrawalAddressRow, WithdrawalFilter, WithdrawalStatus, connect, restore_database,
};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

struct Db {
    store: Arc<dyn Store>,
    url: String,
    backend: &'static str,
    _dir: Option<tempfile::TempDir>,
}

async fn open(url: String, backend: &'static str, dir: Option<tempfile::TempDir>) -> Db {
    let store = connect(&url).await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), 14, "a fresh database applies every migration");
    Db { store, url, backend, _dir: dir }
}

async fn sqlite_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = testing::fresh_sqlite_url(dir.path());
    open(url, "sqlite", Some(dir)).await
}

async fn postgres_db() -> Db {
    open(testing::fresh_postgres_url().await, "postgres", None).await
}

/// Runs `sql` on the database behind the store, bypassing it (to plant corrupt values).
async fn raw(url: &str, sql: &'static str) {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
        c.close().await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
        c.close().await.unwrap();
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::sqlite_db().await;
                    super::$name(&db).await;
                    db.store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::postgres_db().await;
                    super::$name(&db).await;
                    db.store.close().await;
                }
            )*
        }
    };
}

conformance!(
    migrate_is_idempotent,
    users,
    user_locking,
    user_search,
    user_by_deposit_address,
    tokens,
    tokens_are_used_once_under_concurrency,
    sessions,
    api_keys,
    projection_cursor_is_exactly_once,
    concurrent_projections_apply_once,
    orders_round_trip,
    orders_filters_and_pages,
    fills_filters_and_pages,
    trades_by_market,
    ledger_filters_and_pages,
    balances_upsert,
    candles_ranges_and_latest,
    corrupt_values_are_errors,
    wallet_addresses_deposits_and_cursor,
    withdrawals_round_trip,
    operator_alerts_newest_first,
    chain_sends_round_trip,
    mail_outbox_round_trip,
    security_events_newest_first,
    two_factor,
    totp_steps_and_recovery_codes_are_used_once_under_concurrency,
    tokens_with_subjects,
    withdrawal_address_whitelist,
    withdrawal_gates,
    withdrawal_transitions_are_compare_and_set_under_concurrency,
    projections_queue_mails_once,
    admins_round_trip,
    admin_totp_steps,
    admin_sessions,
    admin_audit_log,
    withdrawal_approvals,
    withdrawal_approvals_are_serialized_under_concurrency,
    adjustments_lifecycle,
    adjustment_decisions_are_compare_and_set_under_concurrency,
    fee_revenue_upserts_and_ranges,
    fee_revenue_backfill,
    fee_revenue_backfill_overflow_is_an_error,
    recent_deposits_filter_and_pages,
    open_order_users,
    trades_range,
    fills_range,
    orders_range,
    backups_are_recorded,
    backup_is_a_consistent_snapshot,
    relay_rows_commit_with_projections,
    reconciliations_are_kept_per_asset,
    restore_refusals,
);

// ---- builders ---------------------------------------------------------------------------------

async fn user(s: &dyn Store, email: &str) -> UserId {
    s.create_user(email, "hash", 1).await.unwrap()
}

/// Applies one projection of one seq after the current cursor; returns its seq.
async fn project(s: &dyn Store, build: impl FnOnce(&mut Projection)) -> u64 {
    let seq = s.projected_seq().await.unwrap() + 1;
    let mut p = Projection { from_seq: seq, to_seq: seq, ..Default::default() };
    build(&mut p);
    s.apply_projection(&p).await.unwrap();
    seq
}

fn order(id: u64, user: UserId, market: u32, status: OrderStatus) -> OrderRow {
    OrderRow {
        id: OrderId(id),
        user,
        market: MarketId(market),
        side: if id.is_multiple_of(2) { Side::Buy } else { Side::Sell },
        kind: OrderKind::Limit,
        time_in_force: Some(TimeInForce::Gtc),
        price: Some(1_000 + u128::from(id)),
        quantity: Some(10),
        quote_amount: None,
        client_order_id: Some(format!("c{id}")),
        stp: StpMode::ExpireTaker,
        status,
        end_reason: None,
        filled: 0,
        filled_quote: 0,
        fee: 0,
        created_seq: id,
        created_ms: 1_000 + i64::try_from(id % 1_000_000).unwrap(),
        updated_ms: 2_000,
    }
}

#[allow(clippy::too_many_arguments)]
fn trade(
    market: u32,
    id: u64,
    seq: u64,
    maker_user: UserId,
    maker_order: u64,
    taker_user: UserId,
    taker_order: u64,
) -> TradeRow {
    TradeRow {
        market: MarketId(market),
        id: TradeId(id),
        price: 50_000,
        quantity: u128::from(id),
        notional: 50_000 * u128::from(id),
        taker_side: if id.is_multiple_of(2) { Side::Buy } else { Side::Sell },
        maker_order: OrderId(maker_order),
        maker_user,
        maker_fee: 1,
        taker_order: OrderId(taker_order),
        taker_user,
        taker_fee: 2,
        seq,
        time_ms: 7,
    }
}

fn entry(user: UserId, asset: u32, seq: u64, n: i128) -> NewLedgerEntry {
    NewLedgerEntry {
        user,
        asset: AssetId(asset),
        seq,
        time_ms: 9,
        kind: LedgerKind::Trade,
        reference: format!("ref{n}"),
        delta_available: -n,
        delta_locked: n,
        delta_held: 0,
        available: 1_000 - n,
        locked: n,
        held: 0,
    }
}

fn candle(market: u32, interval: Interval, open_ms: i64, close: u128) -> CandleRow {
    CandleRow {
        market: MarketId(market),
        interval,
        open_ms,
        open: 10,
        high: close.max(10),
        low: close.min(10),
        close,
        volume: 3,
        quote_volume: 30,
        trades: 2,
    }
}

fn fill_key(t: &TradeRow) -> (u64, u32, u64) {
    (t.seq, t.market.0, t.id.0)
}

/// Two rows per time: ids `2k - 1` and `2k` at `10 * k` ms.
fn paired_ms(id: u64) -> i64 {
    10 * i64::try_from(id.div_ceil(2)).unwrap()
}

fn range(
    from_id: Option<u64>,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    limit: u32,
) -> RangeFilter {
    RangeFilter { from_id, start_ms, end_ms, limit }
}

/// What a range read of `rows` must return, by the definition of [`RangeFilter`]: the rows
/// within every given bound (`key`: id and time), the first `limit` by id if `from_id` or
/// `start_ms` is given, else the last `limit`; ascending by id.
fn in_range<T: Clone>(rows: &[T], key: impl Fn(&T) -> (u64, i64), r: &RangeFilter) -> Vec<T> {
    let mut v: Vec<T> = rows
        .iter()
        .filter(|row| {
            let (id, time) = key(row);
            r.from_id.is_none_or(|f| id >= f)
                && r.start_ms.is_none_or(|s| time >= s)
                && r.end_ms.is_none_or(|e| time <= e)
        })
        .cloned()
        .collect();
    v.sort_by_key(|row| key(row).0);
    let n = r.limit.min(LIST_LIMIT_MAX) as usize;
    if r.from_id.is_some() || r.start_ms.is_some() {
        v.truncate(n);
    } else {
        v.drain(..v.len().saturating_sub(n));
    }
    v
}

/// Every combination of the given bounds and limits.
fn ranges(
    from_ids: &[Option<u64>],
    starts: &[Option<i64>],
    ends: &[Option<i64>],
    limits: &[u32],
) -> Vec<RangeFilter> {
    let mut all = Vec::new();
    for &from_id in from_ids {
        for &start_ms in starts {
            for &end_ms in ends {
                for &limit in limits {
                    all.push(range(from_id, start_ms, end_ms, limit));
                }
            }
        }
    }
    all
}

fn trade_ids(rows: &[TradeRow]) -> Vec<u64> {
    rows.iter().map(|t| t.id.0).collect()
}

fn order_ids(rows: &[OrderRow]) -> Vec<u64> {
    rows.iter().map(|o| o.id.0).collect()
}

// ---- tests ------------------------------------------------------------------------------------

async fn migrate_is_idempotent(db: &Db) {
    let s = &*db.store;
    assert_eq!(s.backend(), db.backend);
    assert_eq!(s.migrate().await.unwrap(), 0);
    s.ping().await.unwrap();
    assert_eq!(s.projected_seq().await.unwrap(), 0);
    assert_eq!(s.count_users().await.unwrap(), 0);
    let id = user(s, "a@example.com").await;

    // A second process on the same database: nothing to apply, data intact.
    let again = connect(&db.url).await.unwrap();
    assert_eq!(again.migrate().await.unwrap(), 0);
    assert_eq!(again.user(id).await.unwrap().unwrap().email, "a@example.com");
    again.close().await;

    assert!(matches!(connect("mysql://localhost/x").await, Err(StoreError::BadUrl(_))));
}

async fn users(db: &Db) {
    let s = &*db.store;
    let a = s.create_user("a@example.com", "hash-a", 100).await.unwrap();
    let b = s.create_user("b@example.com", "hash-b", 200).await.unwrap();
    assert_eq!(a, UserId(1), "ids start at 1");
    assert!(b.0 > a.0);
    assert!(matches!(
        s.create_user("a@example.com", "other", 300).await,
        Err(StoreError::Conflict(_))
    ));

    let row_a = UserRow {
        id: a,
        email: "a@example.com".into(),
        password_hash: "hash-a".into(),
        email_verified: false,
        created_ms: 100,
        totp_sealed: None,
        totp_pending_sealed: None,
        totp_last_step: 0,
        address_whitelist: false,
        locked_ms: None,
    };
    assert_eq!(s.user(a).await.unwrap(), Some(row_a.clone()));
    assert_eq!(s.user_by_email("a@example.com").await.unwrap(), Some(row_a.clone()));
    assert_eq!(s.user_by_email("b@example.com").await.unwrap().unwrap().id, b);
    assert_eq!(s.user_by_email("nobody@example.com").await.unwrap(), None);
    assert_eq!(s.user(UserId(9_999)).await.unwrap(), None);
    assert_eq!(s.user(UserId(u64::MAX)).await.unwrap(), None);

    s.set_email_verified(a).await.unwrap();
    s.set_password_hash(b, "hash-b2").await.unwrap();
    let a_now = s.user(a).await.unwrap().unwrap();
    assert_eq!(a_now, UserRow { email_verified: true, ..row_a });
    let b_now = s.user(b).await.unwrap().unwrap();
    assert_eq!(b_now.password_hash, "hash-b2");
    assert!(!b_now.email_verified);
    assert_eq!(s.count_users().await.unwrap(), 2);
}

async fn user_locking(db: &Db) {
    let s = &*db.store;
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    let b_before = s.user(b).await.unwrap().unwrap();
    assert_eq!(s.user(a).await.unwrap().unwrap().locked_ms, None, "a new user is not locked");

    assert!(s.set_user_locked(a, Some(500)).await.unwrap());
    let locked = s.user(a).await.unwrap().unwrap();
    assert_eq!(locked.locked_ms, Some(500));
    assert_eq!(s.user_by_email("a@example.com").await.unwrap(), Some(locked.clone()));
    assert_eq!(s.search_users("a@example", 10).await.unwrap(), vec![locked.clone()]);
    assert_eq!(s.user(b).await.unwrap(), Some(b_before.clone()), "other users untouched");
    // Locking again moves the time; nothing else of the user changes.
    assert!(s.set_user_locked(a, Some(600)).await.unwrap());
    let relocked = s.user(a).await.unwrap().unwrap();
    assert_eq!(relocked, UserRow { locked_ms: Some(600), ..locked.clone() });

    assert!(s.set_user_locked(a, None).await.unwrap());
    assert_eq!(s.user(a).await.unwrap(), Some(UserRow { locked_ms: None, ..locked }));
    // Unlocking a user who is not locked is no error.
    assert!(s.set_user_locked(a, None).await.unwrap());
    assert_eq!(s.user(b).await.unwrap(), Some(b_before));

    assert!(!s.set_user_locked(UserId(9_999), Some(1)).await.unwrap());
    assert!(!s.set_user_locked(UserId(u64::MAX), Some(1)).await.unwrap());
    assert!(!s.set_user_locked(UserId(9_999), None).await.unwrap());
}

async fn user_search(db: &Db) {
    let s = &*db.store;
    let alice = user(s, "alice@example.com").await;
    let bob = user(s, "BOB@Example.COM").await;
    let carol = user(s, "carol@other.org").await;
    let a_b = user(s, "a_b@x.com").await;
    let axb = user(s, "axb@x.com").await;
    let pct = user(s, "50%off@x.com").await;
    let no_pct = user(s, "500ff@x.com").await;
    let slash = user(s, "back\\slash@x.com").await;
    let emile = user(s, "Émile@x.com").await;
    let ids = |rows: Vec<UserRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let find = |text: &'static str| async move { ids(s.search_users(text, 100).await.unwrap()) };

    // Rows come whole.
    assert_eq!(
        s.search_users("alice", 10).await.unwrap(),
        vec![s.user(alice).await.unwrap().unwrap()]
    );
    // Any part, either case, by id.
    assert_eq!(find("EXAMPLE.com").await, vec![alice, bob]);
    assert_eq!(find("bob@").await, vec![bob]);
    assert_eq!(find("Bob@eXample").await, vec![bob]);
    assert_eq!(find("@x.com").await, vec![a_b, axb, pct, no_pct, slash, emile]);
    assert_eq!(find("other.org").await, vec![carol]);
    assert_eq!(find("nobody").await, Vec::<UserId>::new());
    // `%`, `_` and `\` match themselves.
    assert_eq!(find("a_b").await, vec![a_b]);
    assert_eq!(find("_").await, vec![a_b]);
    assert_eq!(find("50%").await, vec![pct]);
    assert_eq!(find("%").await, vec![pct]);
    assert_eq!(find("%%").await, Vec::<UserId>::new());
    assert_eq!(find("k\\s").await, vec![slash]);
    assert_eq!(find("\\").await, vec![slash]);
    assert_eq!(find("\\%").await, Vec::<UserId>::new());
    // Letters beyond ASCII match as they are (case folds ASCII letters only, on both backends).
    assert_eq!(find("Émile").await, vec![emile]);
    assert_eq!(find("éMILE").await, Vec::<UserId>::new());
    assert_eq!(find("\0").await, Vec::<UserId>::new());

    // Empty text: everyone, by id, up to the limit.
    let all = vec![alice, bob, carol, a_b, axb, pct, no_pct, slash, emile];
    assert_eq!(find("").await, all);
    assert_eq!(ids(s.search_users("", 3).await.unwrap()), all[..3]);
    assert_eq!(ids(s.search_users("@x.com", 2).await.unwrap()), vec![a_b, axb]);
    assert_eq!(s.search_users("", 0).await.unwrap(), Vec::<UserRow>::new());
    assert_eq!(ids(s.search_users("", u32::MAX).await.unwrap()), all);
}

async fn user_by_deposit_address(db: &Db) {
    let s = &*db.store;
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    let new = |user, asset, address: &str, at| NewDepositAddress {
        user,
        asset: AssetId(asset),
        address: address.into(),
        label: format!("bourse:user:{}", user.0),
        created_ms: at,
    };
    s.insert_deposit_address(&new(a, 1, "bcrt1qa", 10)).await.unwrap();
    s.insert_deposit_address(&new(b, 1, "bcrt1qb", 20)).await.unwrap();
    s.insert_deposit_address(&new(b, 2, "0xB0b", 30)).await.unwrap();
    s.insert_deposit_address(&new(a, 3, "0xB0b", 40)).await.unwrap();

    assert_eq!(s.user_by_deposit_address("bcrt1qa").await.unwrap(), Some(a));
    assert_eq!(s.user_by_deposit_address("bcrt1qb").await.unwrap(), Some(b));
    // The same string given for several assets: the first it was given to.
    assert_eq!(s.user_by_deposit_address("0xB0b").await.unwrap(), Some(b));
    // Exact: no other case, no part, no pattern.
    for other in ["nope", "", "0xb0b", "bcrt1q", "bcrt1qa ", "bcrt1q_", "bcrt1q%", "\0"] {
        assert_eq!(s.user_by_deposit_address(other).await.unwrap(), None, "{other:?}");
    }
}

async fn tokens(db: &Db) {
    let s = &*db.store;
    let u = user(s, "t@example.com").await;
    let verify = NewToken {
        token_hash: "h-verify".into(),
        user: u,
        purpose: TokenPurpose::VerifyEmail,
        created_ms: 1_000,
        expires_ms: 2_000,
        subject: None,
    };
    let reset = NewToken {
        token_hash: "h-reset".into(),
        purpose: TokenPurpose::ResetPassword,
        ..verify.clone()
    };
    s.insert_token(&verify).await.unwrap();
    s.insert_token(&reset).await.unwrap();
    assert!(matches!(s.insert_token(&verify).await, Err(StoreError::Conflict(_))));

    // Wrong purpose, expired (the expiry instant is already too late), unknown: nothing, and
    // the token stays usable.
    assert_eq!(s.use_token("h-verify", TokenPurpose::ResetPassword, 1_500).await.unwrap(), None);
    assert_eq!(s.use_token("h-verify", TokenPurpose::VerifyEmail, 2_000).await.unwrap(), None);
    assert_eq!(s.use_token("nope", TokenPurpose::VerifyEmail, 1_500).await.unwrap(), None);
    let used = Some(UsedToken { user: u, subject: None });
    assert_eq!(s.use_token("h-verify", TokenPurpose::VerifyEmail, 1_999).await.unwrap(), used);
    // Single use.
    assert_eq!(s.use_token("h-verify", TokenPurpose::VerifyEmail, 1_999).await.unwrap(), None);
    // An expired token never comes back.
    assert_eq!(s.use_token("h-reset", TokenPurpose::ResetPassword, 5_000).await.unwrap(), None);
    assert_eq!(s.use_token("h-reset", TokenPurpose::ResetPassword, 1_500).await.unwrap(), used);
    assert_eq!(s.use_token("h-reset", TokenPurpose::ResetPassword, 1_500).await.unwrap(), None);
}

async fn tokens_are_used_once_under_concurrency(db: &Db) {
    let s = &*db.store;
    let u = user(s, "c@example.com").await;
    const TOKENS: usize = 25;
    const RACERS: usize = 4;
    for i in 0..TOKENS {
        let token = NewToken {
            token_hash: format!("race-{i}"),
            user: u,
            purpose: TokenPurpose::ResetPassword,
            created_ms: 0,
            expires_ms: 10_000,
            subject: None,
        };
        s.insert_token(&token).await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..TOKENS {
        for _ in 0..RACERS {
            let store = db.store.clone();
            tasks.push(tokio::spawn(async move {
                let hash = format!("race-{i}");
                (i, store.use_token(&hash, TokenPurpose::ResetPassword, 5_000).await.unwrap())
            }));
        }
    }
    let mut winners = vec![0; TOKENS];
    for task in tasks {
        let (i, got) = task.await.unwrap();
        if let Some(who) = got {
            assert_eq!(who, UsedToken { user: u, subject: None });
            winners[i] += 1;
        }
    }
    assert_eq!(winners, vec![1; TOKENS], "each token is used exactly once");
}

async fn sessions(db: &Db) {
    let s = &*db.store;
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    let new = |hash: &str, user: UserId, created_ms: i64, expires_ms: i64| NewSession {
        token_hash: hash.into(),
        user,
        created_ms,
        expires_ms,
        ip: "192.0.2.1".into(),
        user_agent: "test/1.0".into(),
    };
    let s1 = s.insert_session(&new("h1", a, 100, 1_000)).await.unwrap();
    let s2 = s.insert_session(&new("h2", a, 200, 2_000)).await.unwrap();
    let s3 = s.insert_session(&new("h3", b, 300, 9_000)).await.unwrap();
    assert!(s1 < s2 && s2 < s3);
    assert!(matches!(s.insert_session(&new("h1", b, 1, 2)).await, Err(StoreError::Conflict(_))));

    let row1 = SessionRow {
        id: s1,
        user: a,
        created_ms: 100,
        last_seen_ms: 100,
        expires_ms: 1_000,
        ip: "192.0.2.1".into(),
        user_agent: "test/1.0".into(),
    };
    assert_eq!(s.live_session("h1", 999).await.unwrap(), Some(row1.clone()));
    assert_eq!(s.live_session("h1", 1_000).await.unwrap(), None, "expired at expires_ms");
    assert_eq!(s.live_session("unknown", 0).await.unwrap(), None);

    // Sliding expiry.
    s.touch_session(s1, 900, 5_000).await.unwrap();
    let touched = SessionRow { last_seen_ms: 900, expires_ms: 5_000, ..row1 };
    assert_eq!(s.live_session("h1", 1_500).await.unwrap(), Some(touched.clone()));

    let ids = |v: Vec<SessionRow>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(s.sessions(a, 1_500).await.unwrap()), vec![s2, s1], "newest first");
    assert_eq!(ids(s.sessions(a, 2_500).await.unwrap()), vec![s1], "expired ones are not listed");
    assert_eq!(s.sessions(a, 1_500).await.unwrap()[1], touched);

    // Revoking one: only its owner can, only once.
    assert!(!s.revoke_session(b, s1).await.unwrap());
    assert!(s.live_session("h1", 1_500).await.unwrap().is_some());
    assert!(s.revoke_session(a, s1).await.unwrap());
    assert!(!s.revoke_session(a, s1).await.unwrap());
    assert_eq!(s.live_session("h1", 1_500).await.unwrap(), None);
    s.touch_session(s1, 1_600, 9_000).await.unwrap();
    assert_eq!(s.live_session("h1", 1_700).await.unwrap(), None, "touch does not revive");
    assert_eq!(ids(s.sessions(a, 1_500).await.unwrap()), vec![s2]);

    // Revoking all but one.
    let s4 = s.insert_session(&new("h4", a, 400, 9_000)).await.unwrap();
    assert_eq!(s.revoke_sessions(a, Some(s4)).await.unwrap(), 1);
    assert_eq!(ids(s.sessions(a, 1_500).await.unwrap()), vec![s4]);
    assert_eq!(s.live_session("h2", 1_500).await.unwrap(), None);
    assert_eq!(s.revoke_sessions(a, None).await.unwrap(), 1);
    assert!(s.sessions(a, 1_500).await.unwrap().is_empty());
    // The other user's session is untouched throughout.
    assert_eq!(ids(s.sessions(b, 1_500).await.unwrap()), vec![s3]);
    assert!(s.live_session("h3", 1_500).await.unwrap().is_some());
}

async fn api_keys(db: &Db) {
    let s = &*db.store;
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    let k1 = NewApiKey {
        user: a,
        key: "key-1".into(),
        secret_sealed: vec![0, 1, 2, 0xff, 0, 0x80],
        label: "bot".into(),
        scopes: Scopes::READ.union(Scopes::TRADE),
        ip_allowlist: vec!["10.0.0.0/8".into(), "2001:db8::1".into()],
        created_ms: 100,
    };
    let k2 = NewApiKey {
        key: "key-2".into(),
        scopes: Scopes::READ.union(Scopes::TRADE).union(Scopes::WITHDRAW),
        ip_allowlist: Vec::new(),
        created_ms: 200,
        ..k1.clone()
    };
    let k3 = NewApiKey { user: b, key: "key-3".into(), ..k1.clone() };
    let id1 = s.insert_api_key(&k1).await.unwrap();
    let id2 = s.insert_api_key(&k2).await.unwrap();
    let id3 = s.insert_api_key(&k3).await.unwrap();
    assert!(id1 < id2 && id2 < id3);
    assert!(matches!(
        s.insert_api_key(&NewApiKey { user: b, ..k1.clone() }).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.insert_api_key(&NewApiKey {
            key: "key-4".into(),
            ip_allowlist: vec!["1.2.3.4,5.6.7.8".into()],
            ..k1.clone()
        })
        .await,
        Err(StoreError::Invalid(_))
    ));

    let row = |id: i64, k: &NewApiKey| ApiKeyRow {
        id,
        user: k.user,
        key: k.key.clone(),
        secret_sealed: k.secret_sealed.clone(),
        label: k.label.clone(),
        scopes: k.scopes,
        ip_allowlist: k.ip_allowlist.clone(),
        created_ms: k.created_ms,
    };
    assert_eq!(s.api_key("key-1").await.unwrap(), Some(row(id1, &k1)));
    assert_eq!(s.api_key("key-2").await.unwrap(), Some(row(id2, &k2)));
    assert_eq!(s.api_key("nope").await.unwrap(), None);
    assert_eq!(s.api_keys(a).await.unwrap(), vec![row(id2, &k2), row(id1, &k1)]);

    assert!(!s.revoke_api_key(b, id1).await.unwrap(), "not b's key");
    assert!(s.api_key("key-1").await.unwrap().is_some());
    assert!(s.revoke_api_key(a, id1).await.unwrap());
    assert!(!s.revoke_api_key(a, id1).await.unwrap());
    assert_eq!(s.api_key("key-1").await.unwrap(), None);
    assert_eq!(s.api_keys(a).await.unwrap(), vec![row(id2, &k2)]);
    assert_eq!(s.api_keys(b).await.unwrap(), vec![row(id3, &k3)]);
}

async fn projection_cursor_is_exactly_once(db: &Db) {
    let s = &*db.store;
    let (u, v) = (UserId(7), UserId(8));
    let o1 = order(1, u, 1, OrderStatus::Open);
    let t1 = trade(1, 1, 10, u, 1, v, 2);
    let b1 = BalanceRow { user: u, asset: AssetId(1), available: 5, locked: 6, held: 7, seq: 10 };
    let c1 = candle(1, Interval::M1, 60_000, 11);
    let p1 = Projection {
        from_seq: 1,
        to_seq: 10,
        orders: vec![o1.clone()],
        trades: vec![t1.clone()],
        ledger: vec![entry(u, 1, 10, 1)],
        balances: vec![b1.clone()],
        candles: vec![c1.clone()],
        fee_revenue: vec![fees(2, 0, 3, 0)],
        mails: Vec::new(),
        relay: None,
    };
    s.apply_projection(&p1).await.unwrap();
    assert_eq!(s.projected_seq().await.unwrap(), 10);

    // Everything this test wrote, to check that failed projections change none of it.
    let snapshot = || async {
        (
            s.projected_seq().await.unwrap(),
            s.orders(u, &OrderFilter { limit: 100, ..Default::default() }).await.unwrap(),
            s.trades(MarketId(1), None, 100).await.unwrap(),
            s.ledger(u, &LedgerFilter { limit: 100, ..Default::default() }).await.unwrap(),
            s.balances(u).await.unwrap(),
            s.latest_candles().await.unwrap(),
            s.fee_revenue(i64::MIN, i64::MAX).await.unwrap(),
        )
    };
    let before = snapshot().await;
    assert_eq!(before.1, vec![o1.clone()]);
    assert_eq!(before.2, vec![t1.clone()]);
    assert_eq!(before.4, vec![b1.clone()]);
    assert_eq!(before.5, vec![c1.clone()]);
    assert_eq!(before.6, vec![fees(2, 0, 3, 0)]);

    // Re-applying the same batch: refused, nothing written twice.
    assert!(matches!(
        s.apply_projection(&p1).await,
        Err(StoreError::CursorMismatch { expected: 0, found: 10 })
    ));
    // A gap: refused, nothing written.
    let changed = Projection {
        from_seq: 12,
        to_seq: 12,
        orders: vec![OrderRow { status: OrderStatus::Filled, filled: 10, ..o1.clone() }],
        trades: vec![trade(1, 2, 12, u, 1, v, 3)],
        ledger: vec![entry(u, 1, 12, 2)],
        balances: vec![BalanceRow { available: 0, seq: 12, ..b1.clone() }],
        candles: vec![candle(1, Interval::M1, 60_000, 99)],
        fee_revenue: vec![fees(2, 0, 9, 1), fees(2, HOUR, 1, 0)],
        mails: Vec::new(),
        relay: None,
    };
    assert!(matches!(
        s.apply_projection(&changed).await,
        Err(StoreError::CursorMismatch { expected: 11, found: 10 })
    ));
    assert_eq!(snapshot().await, before);

    // A batch that fails half-way (a trade that exists) is rolled back entirely.
    let failing = Projection {
        from_seq: 11,
        to_seq: 11,
        trades: vec![trade(1, 2, 11, u, 1, v, 3), t1.clone()],
        ..changed.clone()
    };
    assert!(matches!(s.apply_projection(&failing).await, Err(StoreError::Conflict(_))));
    assert_eq!(snapshot().await, before);

    // Seqs that are not a range, or an id that does not fit: refused before anything.
    let empty = |from_seq, to_seq| Projection { from_seq, to_seq, ..Default::default() };
    assert!(matches!(s.apply_projection(&empty(0, 0)).await, Err(StoreError::Invalid(_))));
    assert!(matches!(s.apply_projection(&empty(11, 10)).await, Err(StoreError::Invalid(_))));
    assert!(matches!(s.apply_projection(&empty(11, u64::MAX)).await, Err(StoreError::Invalid(_))));
    let too_big = Projection {
        orders: vec![order(u64::MAX, u, 1, OrderStatus::Open)],
        ..Projection { from_seq: 11, to_seq: 11, ..changed.clone() }
    };
    assert!(matches!(s.apply_projection(&too_big).await, Err(StoreError::Invalid(_))));
    assert_eq!(snapshot().await, before);

    // The right next batch applies, once.
    let next = Projection { from_seq: 11, to_seq: 12, ..changed.clone() };
    s.apply_projection(&next).await.unwrap();
    assert_eq!(s.projected_seq().await.unwrap(), 12);
    assert!(matches!(
        s.apply_projection(&next).await,
        Err(StoreError::CursorMismatch { expected: 10, found: 12 })
    ));
    let after = snapshot().await;
    assert_eq!(after.1, changed.orders);
    assert_eq!(after.2.len(), 2);
    assert_eq!(after.3.len(), 2);
    assert_eq!(after.4, changed.balances);
    assert_eq!(after.5, changed.candles);
    assert_eq!(after.6, changed.fee_revenue);
}

async fn concurrent_projections_apply_once(db: &Db) {
    let (u, v) = (UserId(1), UserId(2));
    for round in 0..10u64 {
        let seq = round + 1;
        let p = Projection {
            from_seq: seq,
            to_seq: seq,
            trades: vec![trade(1, seq, seq, u, 1, v, 2)],
            ledger: vec![entry(u, 1, seq, 1)],
            ..Default::default()
        };
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (store, p) = (db.store.clone(), p.clone());
                tokio::spawn(async move { store.apply_projection(&p).await })
            })
            .collect();
        let mut applied = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => applied += 1,
                Err(StoreError::CursorMismatch { expected, found }) => {
                    assert_eq!((expected, found), (seq - 1, seq));
                }
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(applied, 1, "round {round}");
    }
    let s = &*db.store;
    assert_eq!(s.projected_seq().await.unwrap(), 10);
    assert_eq!(s.trades(MarketId(1), None, 100).await.unwrap().len(), 10);
    assert_eq!(
        s.ledger(u, &LedgerFilter { limit: 100, ..Default::default() }).await.unwrap().len(),
        10
    );
}

async fn orders_round_trip(db: &Db) {
    let s = &*db.store;
    let (u, v) = (UserId(3), UserId(4));
    let big = OrderRow {
        id: OrderId(i64::MAX as u64),
        user: u,
        market: MarketId(u32::MAX),
        side: Side::Buy,
        kind: OrderKind::Limit,
        time_in_force: Some(TimeInForce::Gtc),
        price: Some(u128::MAX),
        quantity: Some(u128::MAX - 1),
        quote_amount: None,
        client_order_id: Some("big-one".into()),
        stp: StpMode::ExpireBoth,
        status: OrderStatus::Open,
        end_reason: None,
        filled: u128::MAX,
        filled_quote: u128::MAX / 3,
        fee: 1,
        created_seq: i64::MAX as u64,
        created_ms: -5,
        updated_ms: i64::MAX,
    };
    let market_sell = OrderRow {
        id: OrderId(2),
        side: Side::Sell,
        kind: OrderKind::Market,
        time_in_force: None,
        price: None,
        quantity: Some(5),
        client_order_id: None,
        stp: StpMode::None,
        status: OrderStatus::Expired,
        end_reason: Some(EndReason::Unfilled),
        market: MarketId(1),
        ..big.clone()
    };
    let quote_buy = OrderRow {
        id: OrderId(3),
        kind: OrderKind::MarketQuote,
        time_in_force: None,
        price: None,
        quantity: None,
        quote_amount: Some(10u128.pow(30)),
        stp: StpMode::ExpireMaker,
        status: OrderStatus::Canceled,
        end_reason: Some(EndReason::Canceled),
        ..market_sell.clone()
    };
    let mut others = Vec::new();
    for (i, (tif, status, reason)) in [
        (TimeInForce::PostOnly, OrderStatus::PartiallyFilled, None),
        (TimeInForce::Fok, OrderStatus::Filled, None),
        (TimeInForce::Ioc, OrderStatus::Expired, Some(EndReason::Funds)),
        (TimeInForce::Gtc, OrderStatus::Expired, Some(EndReason::SelfTrade)),
    ]
    .into_iter()
    .enumerate()
    {
        others.push(OrderRow {
            id: OrderId(10 + i as u64),
            time_in_force: Some(tif),
            status,
            end_reason: reason,
            stp: StpMode::ExpireTaker,
            ..order(10 + i as u64, u, 2, status)
        });
    }
    // The first version of `big` is superseded within the same batch: the last one wins.
    let first_big = OrderRow { status: OrderStatus::PartiallyFilled, filled: 1, ..big.clone() };
    let mut all = vec![big.clone(), market_sell.clone(), quote_buy.clone()];
    all.extend(others.iter().cloned());
    project(s, |p| {
        p.orders = vec![first_big.clone()];
        p.orders.extend(all.iter().cloned());
    })
    .await;
    for o in &all {
        assert_eq!(s.order(u, o.id).await.unwrap().as_ref(), Some(o));
        assert_eq!(s.order(v, o.id).await.unwrap(), None, "another user's order reads as none");
    }
    assert_eq!(s.order(u, OrderId(999)).await.unwrap(), None);
    assert_eq!(s.order(u, OrderId(u64::MAX)).await.unwrap(), None);

    // An upsert in a later batch replaces the whole row.
    let done = OrderRow {
        status: OrderStatus::Canceled,
        end_reason: Some(EndReason::Canceled),
        filled: 0,
        fee: u128::MAX,
        updated_ms: 3,
        ..big.clone()
    };
    project(s, |p| p.orders = vec![done.clone()]).await;
    assert_eq!(s.order(u, big.id).await.unwrap(), Some(done));

    // Client order ids: the newest of the user, in the market if given.
    let mut c1 = order(20, u, 1, OrderStatus::Filled);
    c1.client_order_id = Some("dup".into());
    let mut c2 = order(21, u, 2, OrderStatus::Open);
    c2.client_order_id = Some("dup".into());
    let mut c3 = order(22, v, 1, OrderStatus::Open);
    c3.client_order_id = Some("dup".into());
    project(s, |p| p.orders = vec![c1.clone(), c2.clone(), c3.clone()]).await;
    assert_eq!(s.order_by_client_id(u, None, "dup").await.unwrap(), Some(c2.clone()));
    assert_eq!(s.order_by_client_id(u, Some(MarketId(1)), "dup").await.unwrap(), Some(c1));
    assert_eq!(s.order_by_client_id(u, Some(MarketId(2)), "dup").await.unwrap(), Some(c2));
    assert_eq!(s.order_by_client_id(u, Some(MarketId(3)), "dup").await.unwrap(), None);
    assert_eq!(s.order_by_client_id(v, None, "dup").await.unwrap(), Some(c3));
    assert_eq!(s.order_by_client_id(u, None, "none").await.unwrap(), None);
    assert_eq!(s.order_by_client_id(u, None, "big-one").await.unwrap().map(|o| o.id), Some(big.id));
}

async fn orders_filters_and_pages(db: &Db) {
    let s = &*db.store;
    let (u, v) = (UserId(1), UserId(2));
    let statuses = [
        OrderStatus::Open,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::Canceled,
        OrderStatus::Expired,
    ];
    let mut all = Vec::new();
    for id in 1..=90u64 {
        let owner = if id % 3 == 0 { v } else { u };
        let market = if id % 4 < 2 { 1 } else { 2 };
        all.push(order(id, owner, market, statuses[(id % 5) as usize]));
    }
    // Two batches, so later upserts of earlier ids mix with inserts.
    project(s, |p| p.orders = all[..50].to_vec()).await;
    project(s, |p| p.orders = all[50..].to_vec()).await;

    let expect = |f: &dyn Fn(&OrderRow) -> bool| -> Vec<OrderRow> {
        let mut v: Vec<OrderRow> = all.iter().filter(|o| o.user == u && f(o)).cloned().collect();
        v.sort_by_key(|o| std::cmp::Reverse(o.id));
        v
    };
    let pages = |filter: OrderFilter| async move {
        let mut got = Vec::new();
        let mut filter = filter;
        loop {
            let page = s.orders(u, &filter).await.unwrap();
            assert!(page.len() <= filter.limit as usize);
            let Some(last) = page.last() else { break };
            filter.before = Some(last.id);
            got.extend(page);
        }
        got
    };

    let everything =
        s.orders(u, &OrderFilter { limit: 1_000, ..Default::default() }).await.unwrap();
    assert_eq!(everything, expect(&|_| true));
    assert_eq!(pages(OrderFilter { limit: 7, ..Default::default() }).await, expect(&|_| true));
    assert_eq!(
        pages(OrderFilter { limit: 4, open_only: true, ..Default::default() }).await,
        expect(&|o| o.status.is_open())
    );
    assert_eq!(
        pages(OrderFilter { limit: 5, market: Some(MarketId(2)), ..Default::default() }).await,
        expect(&|o| o.market == MarketId(2))
    );
    assert_eq!(
        pages(OrderFilter { limit: 3, market: Some(MarketId(1)), open_only: true, before: None })
            .await,
        expect(&|o| o.market == MarketId(1) && o.status.is_open())
    );
    assert_eq!(
        s.orders(u, &OrderFilter { limit: 1_000, before: Some(OrderId(40)), ..Default::default() })
            .await
            .unwrap(),
        expect(&|o| o.id.0 < 40)
    );
    let none = |before| OrderFilter { limit: 10, before, ..Default::default() };
    assert!(s.orders(u, &none(Some(OrderId(0)))).await.unwrap().is_empty());
    assert!(s.orders(u, &none(Some(OrderId(1)))).await.unwrap().is_empty());
    assert_eq!(s.orders(u, &none(Some(OrderId(u64::MAX)))).await.unwrap().len(), 10);
    assert!(s.orders(u, &OrderFilter::default()).await.unwrap().is_empty(), "limit 0");
    assert!(s.orders(UserId(99), &none(None)).await.unwrap().is_empty());

    // The projector's working set: open orders of everyone, oldest first.
    let open: Vec<OrderRow> = all.iter().filter(|o| o.status.is_open()).cloned().collect();
    assert_eq!(s.open_orders_all().await.unwrap(), open);
}

async fn fills_filters_and_pages(db: &Db) {
    let s = &*db.store;
    let (u, v, w) = (UserId(1), UserId(2), UserId(3));
    let mut trades = Vec::new();
    let mut next_id = [0u64; 3];
    let mut add = |market: u32, seq: u64, maker: (UserId, u64), taker: (UserId, u64)| {
        let slot = &mut next_id[market as usize];
        *slot += 1;
        trades.push(trade(market, *slot, seq, maker.0, maker.1, taker.0, taker.1));
    };
    // Seq 5: one big match sweeping two markets, 30 trades sharing one seq.
    for i in 0..30u64 {
        let market = 1 + (i % 2) as u32;
        match i % 5 {
            0 => add(market, 5, (u, 100 + i), (v, 500)),
            1 => add(market, 5, (v, 200 + i), (u, 501)),
            2 => add(market, 5, (u, 300 + i), (u, 502)), // self-trade
            3 => add(market, 5, (v, 400 + i), (w, 503)), // not u's
            _ => add(market, 5, (w, 600 + i), (u, 501)),
        }
    }
    // Order 700 of u: taker in its first trades, then maker while it rests.
    for seq in 6..9 {
        add(1, seq, (v, 800 + seq), (u, 700));
    }
    for seq in 9..12 {
        add(1, seq, (u, 700), (w, 900 + seq));
    }
    add(2, 12, (v, 1_000), (w, 1_001));
    add(1, 3, (u, 1), (v, 2));
    // Two batches: seq 3..=8 and 9..=12 (trades of one batch may carry any seq in its range).
    let (early, late): (Vec<TradeRow>, Vec<TradeRow>) =
        trades.iter().cloned().partition(|t| t.seq <= 8);
    s.apply_projection(&Projection { from_seq: 1, to_seq: 8, trades: early, ..Default::default() })
        .await
        .unwrap();
    s.apply_projection(&Projection { from_seq: 9, to_seq: 12, trades: late, ..Default::default() })
        .await
        .unwrap();

    let expect = |f: &dyn Fn(&TradeRow) -> bool| -> Vec<TradeRow> {
        let mut v: Vec<TradeRow> = trades
            .iter()
            .filter(|t| (t.maker_user == u || t.taker_user == u) && f(t))
            .cloned()
            .collect();
        v.sort_by_key(|t| std::cmp::Reverse(fill_key(t)));
        v
    };
    let pages = |user: UserId, filter: FillFilter| async move {
        let mut got: Vec<TradeRow> = Vec::new();
        let mut filter = filter;
        loop {
            let page = s.fills(user, &filter).await.unwrap();
            assert!(page.len() <= filter.limit as usize);
            let Some(last) = page.last() else { break };
            filter.before = Some((last.seq, last.market, last.id));
            got.extend(page);
        }
        let keys: HashSet<_> = got.iter().map(fill_key).collect();
        assert_eq!(keys.len(), got.len(), "no fill twice");
        got
    };

    let all = expect(&|_| true);
    assert!(all.len() > 25);
    assert_eq!(s.fills(u, &FillFilter { limit: 1_000, ..Default::default() }).await.unwrap(), all);
    for limit in [1, 3, 4, 7] {
        assert_eq!(
            pages(u, FillFilter { limit, ..Default::default() }).await,
            all,
            "limit {limit}"
        );
    }
    assert_eq!(
        pages(u, FillFilter { limit: 4, market: Some(MarketId(2)), ..Default::default() }).await,
        expect(&|t| t.market == MarketId(2))
    );
    // One order's fills, as taker and as maker; self-trades once.
    let of = |order: u64, market: Option<MarketId>| FillFilter {
        limit: 2,
        order: Some(OrderId(order)),
        market,
        before: None,
    };
    assert_eq!(
        pages(u, of(700, None)).await,
        expect(&|t| t.maker_order == OrderId(700) || t.taker_order == OrderId(700))
    );
    assert_eq!(pages(u, of(700, None)).await.len(), 6);
    assert_eq!(pages(u, of(502, None)).await, expect(&|t| t.taker_order == OrderId(502)));
    assert_eq!(
        pages(u, of(501, Some(MarketId(1)))).await,
        expect(&|t| { t.taker_order == OrderId(501) && t.market == MarketId(1) })
    );
    // Another user's order is not u's fill, even when u traded against it.
    assert!(pages(u, of(500, None)).await.is_empty());
    assert_eq!(pages(v, of(500, None)).await.len(), 6);
    assert!(pages(u, of(u64::MAX, None)).await.is_empty());
    // Cursors beyond every stored value.
    let top = FillFilter {
        limit: 1_000,
        before: Some((u64::MAX, MarketId(u32::MAX), TradeId(u64::MAX))),
        ..Default::default()
    };
    assert_eq!(s.fills(u, &top).await.unwrap(), all);
    let mid = FillFilter { limit: 1_000, before: Some((5, MarketId(1), TradeId(u64::MAX))), ..top };
    assert_eq!(s.fills(u, &mid).await.unwrap(), expect(&|t| fill_key(t) <= (5, 1, u64::MAX)));
    assert!(s.fills(w, &FillFilter::default()).await.unwrap().is_empty(), "limit 0");
    assert!(
        s.fills(UserId(99), &FillFilter { limit: 10, ..Default::default() })
            .await
            .unwrap()
            .is_empty()
    );
}

async fn trades_by_market(db: &Db) {
    let s = &*db.store;
    let (u, v) = (UserId(1), UserId(2));
    let mut big: Vec<TradeRow> =
        (1..=1_100).map(|id| trade(1, id, 1, u, id, v, id + 5_000)).collect();
    big[0].price = u128::MAX;
    big[0].notional = u128::MAX - 7;
    big[1].maker_fee = u128::MAX;
    let other: Vec<TradeRow> = (1..=5).map(|id| trade(2, id, 1, v, id, u, id)).collect();
    project(s, |p| {
        p.trades = big.clone();
        p.trades.extend(other.iter().cloned());
    })
    .await;

    let newest_first: Vec<TradeRow> = big.iter().rev().cloned().collect();
    let capped = s.trades(MarketId(1), None, u32::MAX).await.unwrap();
    assert_eq!(capped.len(), LIST_LIMIT_MAX as usize, "limit capped");
    assert_eq!(capped[..], newest_first[..LIST_LIMIT_MAX as usize]);

    let mut got = Vec::new();
    let mut before = None;
    loop {
        let page = s.trades(MarketId(1), before, 300).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        got.extend(page);
    }
    assert_eq!(got, newest_first);
    assert_eq!(
        s.trades(MarketId(2), None, 100).await.unwrap(),
        other.iter().rev().cloned().collect::<Vec<_>>()
    );
    assert_eq!(
        s.trades(MarketId(1), Some(TradeId(3)), 100).await.unwrap(),
        vec![big[1].clone(), big[0].clone()]
    );
    assert!(s.trades(MarketId(1), Some(TradeId(1)), 100).await.unwrap().is_empty());
    assert!(s.trades(MarketId(3), None, 100).await.unwrap().is_empty());
}

async fn ledger_filters_and_pages(db: &Db) {
    let s = &*db.store;
    let (u, v) = (UserId(1), UserId(2));
    let mut entries = Vec::new();
    for n in 0..40i128 {
        let owner = if n % 4 == 3 { v } else { u };
        entries.push(entry(owner, 1 + (n % 3) as u32, 1, n));
    }
    entries[0].delta_available = i128::MIN;
    entries[0].available = i128::MAX;
    entries[1].delta_held = -1;
    entries[1].held = i128::MIN + 1;
    entries[2].kind = LedgerKind::Deposit;
    entries[4].kind = LedgerKind::Withdrawal;
    entries[5].kind = LedgerKind::Adjustment;
    entries[6].kind = LedgerKind::Order;
    project(s, |p| p.ledger = entries[..25].to_vec()).await;
    project(s, |p| p.ledger = entries[25..].to_vec()).await;

    let rows = s.ledger(u, &LedgerFilter { limit: 1_000, ..Default::default() }).await.unwrap();
    let mine: Vec<NewLedgerEntry> = entries.iter().filter(|e| e.user == u).rev().cloned().collect();
    assert_eq!(rows.iter().map(|r| r.entry.clone()).collect::<Vec<_>>(), mine, "newest first");
    assert!(rows.windows(2).all(|w| w[0].id > w[1].id), "ids follow insertion order");

    let pages = |filter: LedgerFilter| async move {
        let mut got = Vec::new();
        let mut filter = filter;
        loop {
            let page = s.ledger(u, &filter).await.unwrap();
            let Some(last) = page.last() else { break };
            filter.before = Some(last.id);
            got.extend(page);
        }
        got
    };
    assert_eq!(pages(LedgerFilter { limit: 4, ..Default::default() }).await, rows);
    let asset2: Vec<_> = rows.iter().filter(|r| r.entry.asset == AssetId(2)).cloned().collect();
    assert!(!asset2.is_empty());
    assert_eq!(
        pages(LedgerFilter { limit: 3, asset: Some(AssetId(2)), before: None }).await,
        asset2
    );
    assert!(
        s.ledger(u, &LedgerFilter { limit: 10, before: Some(i64::MIN), ..Default::default() })
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.ledger(u, &LedgerFilter::default()).await.unwrap().is_empty(), "limit 0");
}

async fn balances_upsert(db: &Db) {
    let s = &*db.store;
    let (u, v) = (UserId(1), UserId(2));
    let b = |user, asset, available, seq| BalanceRow {
        user,
        asset: AssetId(asset),
        available,
        locked: i128::MAX,
        held: 0,
        seq,
    };
    project(s, |p| {
        p.balances = vec![b(u, 2, 20, 1), b(u, 1, 10, 1), b(v, 1, 30, 1), b(u, 1, 11, 1)];
    })
    .await;
    assert_eq!(s.balance(u, AssetId(1)).await.unwrap(), Some(b(u, 1, 11, 1)), "last one wins");
    assert_eq!(s.balances(u).await.unwrap(), vec![b(u, 1, 11, 1), b(u, 2, 20, 1)]);
    assert_eq!(s.balance(u, AssetId(3)).await.unwrap(), None);

    project(s, |p| p.balances = vec![b(u, 1, i128::MIN, 2)]).await;
    assert_eq!(s.balances(u).await.unwrap(), vec![b(u, 1, i128::MIN, 2), b(u, 2, 20, 1)]);
    assert_eq!(s.balances(v).await.unwrap(), vec![b(v, 1, 30, 1)]);
    assert!(s.balances(UserId(9)).await.unwrap().is_empty());
}

async fn candles_ranges_and_latest(db: &Db) {
    let s = &*db.store;
    let m1: Vec<CandleRow> =
        (0..10).map(|i| candle(1, Interval::M1, i * 60_000, 100 + i as u128)).collect();
    let h1 = candle(1, Interval::H1, 0, 7);
    let h1_newer = candle(1, Interval::H1, 3_600_000, u128::MAX);
    let other = candle(2, Interval::M1, 120_000, 5);
    project(s, |p| {
        p.candles = m1.clone();
        p.candles.extend([h1.clone(), other.clone()]);
    })
    .await;
    project(s, |p| p.candles = vec![h1_newer.clone()]).await;

    let get = |from, to, limit| s.candles(MarketId(1), Interval::M1, from, to, limit);
    assert_eq!(get(None, None, 1_000).await.unwrap(), m1, "oldest first");
    assert_eq!(get(None, None, 3).await.unwrap(), m1[7..].to_vec(), "the newest `limit`");
    assert_eq!(get(Some(120_000), Some(300_000), 100).await.unwrap(), m1[2..5].to_vec());
    assert_eq!(get(Some(120_000), Some(300_000), 2).await.unwrap(), m1[3..5].to_vec());
    assert_eq!(get(Some(500_000), None, 100).await.unwrap(), m1[9..].to_vec());
    assert_eq!(get(None, Some(60_000), 100).await.unwrap(), m1[..1].to_vec());
    assert!(get(None, Some(i64::MIN), 100).await.unwrap().is_empty());
    assert!(get(None, None, 0).await.unwrap().is_empty());
    assert_eq!(
        s.candles(MarketId(1), Interval::H1, None, None, 10).await.unwrap(),
        vec![h1.clone(), h1_newer.clone()]
    );
    assert!(s.candles(MarketId(1), Interval::D1, None, None, 10).await.unwrap().is_empty());

    // The open candle is upserted as trades arrive.
    let updated = CandleRow { close: 1, low: 1, trades: 9, volume: u128::MAX, ..m1[9].clone() };
    project(s, |p| p.candles = vec![updated.clone()]).await;
    assert_eq!(get(None, None, 1).await.unwrap(), vec![updated.clone()]);

    let mut latest = s.latest_candles().await.unwrap();
    latest.sort_by_key(|c| (c.market, c.interval));
    assert_eq!(latest, vec![updated, h1_newer, other]);
}

async fn corrupt_values_are_errors(db: &Db) {
    let s = &*db.store;
    let u = UserId(1);
    project(s, |p| {
        p.orders = vec![order(1, u, 1, OrderStatus::Open), order(2, u, 1, OrderStatus::Open)];
        p.balances = vec![BalanceRow {
            user: u,
            asset: AssetId(1),
            available: 1,
            locked: 0,
            held: 0,
            seq: 1,
        }];
    })
    .await;
    raw(&db.url, "UPDATE orders SET filled = '12x' WHERE id = 1").await;
    raw(&db.url, "UPDATE orders SET side = 'up' WHERE id = 2").await;
    raw(&db.url, "UPDATE balances SET available = '+1'").await;
    let corrupt = |r: Result<_, StoreError>, col: &str| match r {
        Err(StoreError::Corrupt { column, .. }) => assert_eq!(column, col),
        other => panic!("expected Corrupt({col}), got {other:?}"),
    };
    corrupt(s.order(u, OrderId(1)).await.map(|_| ()), "filled");
    corrupt(s.order(u, OrderId(2)).await.map(|_| ()), "side");
    corrupt(
        s.orders(u, &OrderFilter { limit: 10, ..Default::default() }).await.map(|_| ()),
        "side",
    );
    corrupt(s.open_orders_all().await.map(|_| ()), "filled");
    corrupt(s.balances(u).await.map(|_| ()), "available");
    raw(&db.url, "UPDATE orders SET filled = '1', side = 'buy', price = '-3'").await;
    corrupt(s.order(u, OrderId(1)).await.map(|_| ()), "price");
    raw(&db.url, "UPDATE orders SET price = '1', user_id = -1 WHERE id = 2").await;
    corrupt(s.open_orders_all().await.map(|_| ()), "price");
    raw(&db.url, "UPDATE orders SET price = '1' WHERE id = 1").await;
    corrupt(s.open_orders_all().await.map(|_| ()), "user_id");
    // The rows that are sound still read.
    assert_eq!(s.order(u, OrderId(1)).await.unwrap().map(|o| o.id), Some(OrderId(1)));
}

async fn wallet_addresses_deposits_and_cursor(db: &Db) {
    let s = &*db.store;
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    let ltc = AssetId(2);
    let new = |user, address: &str, at| NewDepositAddress {
        user,
        asset: ltc,
        address: address.into(),
        label: format!("bourse:user:{}", user.0),
        created_ms: at,
    };
    let first = s.insert_deposit_address(&new(a, "rltc1qa", 10)).await.unwrap();
    let second = s.insert_deposit_address(&new(a, "rltc1qb", 20)).await.unwrap();
    s.insert_deposit_address(&new(b, "rltc1qc", 30)).await.unwrap();
    assert!(matches!(
        s.insert_deposit_address(&new(b, "rltc1qa", 40)).await,
        Err(StoreError::Conflict(_))
    ));
    // The same address string of another asset is another address.
    s.insert_deposit_address(&NewDepositAddress { asset: AssetId(1), ..new(b, "rltc1qa", 50) })
        .await
        .unwrap();
    let mine = s.deposit_addresses(a, ltc, 10).await.unwrap();
    assert_eq!(mine.iter().map(|r| r.id).collect::<Vec<_>>(), vec![second, first]);
    assert_eq!(s.deposit_addresses(a, ltc, 1).await.unwrap().len(), 1);
    let owner = s.deposit_address(ltc, "rltc1qa").await.unwrap().unwrap();
    assert_eq!((owner.user, owner.label.as_str(), owner.created_ms), (a, "bourse:user:1", 10));
    assert_eq!(s.deposit_address(ltc, "nope").await.unwrap(), None);

    // A deposit is keyed by (asset, txid, vout); an upsert changes only its progress.
    let seen = DepositRow {
        id: 0,
        asset: ltc,
        txid: "ab".repeat(32),
        vout: 1,
        user: a,
        address: "rltc1qa".into(),
        amount: u128::from(u64::MAX) * 1000,
        confirmations: 0,
        status: DepositStatus::Pending,
        seq: None,
        first_seen_ms: 100,
        updated_ms: 100,
    };
    s.upsert_deposit(&seen).await.unwrap();
    s.upsert_deposit(&DepositRow { vout: 2, amount: 5, ..seen.clone() }).await.unwrap();
    let credited = DepositRow {
        confirmations: 6,
        status: DepositStatus::Credited,
        seq: Some(42),
        updated_ms: 200,
        amount: 1,
        first_seen_ms: 999,
        ..seen.clone()
    };
    s.upsert_deposit(&credited).await.unwrap();
    let got = s.deposit(ltc, &seen.txid, 1).await.unwrap().unwrap();
    assert_eq!(
        got,
        DepositRow {
            id: got.id,
            confirmations: 6,
            status: DepositStatus::Credited,
            seq: Some(42),
            updated_ms: 200,
            ..seen.clone()
        },
        "amount and first sight never change"
    );
    assert_eq!(s.deposit(ltc, &seen.txid, 3).await.unwrap(), None);
    let watched = s.watched_deposits(ltc, 6).await.unwrap();
    assert_eq!(watched.iter().map(|d| d.vout).collect::<Vec<_>>(), vec![2], "pending only");
    let watched = s.watched_deposits(ltc, 7).await.unwrap();
    assert_eq!(
        watched.iter().map(|d| d.vout).collect::<Vec<_>>(),
        vec![1, 2],
        "and credited with fewer confirmations than the watch"
    );
    assert!(s.watched_deposits(AssetId(1), 100).await.unwrap().is_empty());

    let all =
        s.deposits(a, &DepositFilter { limit: 10, ..DepositFilter::default() }).await.unwrap();
    assert_eq!(all.iter().map(|d| d.vout).collect::<Vec<_>>(), vec![2, 1], "newest first");
    let older = s
        .deposits(
            a,
            &DepositFilter { before: Some(all[0].id), limit: 10, ..DepositFilter::default() },
        )
        .await
        .unwrap();
    assert_eq!(older.iter().map(|d| d.vout).collect::<Vec<_>>(), vec![1]);
    let other_asset = DepositFilter { asset: Some(AssetId(1)), limit: 10, before: None };
    assert!(s.deposits(a, &other_asset).await.unwrap().is_empty());
    assert!(
        s.deposits(b, &DepositFilter { limit: 10, ..DepositFilter::default() })
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(s.wallet_cursor(ltc).await.unwrap(), None);
    s.set_wallet_cursor(ltc, "00aa", 1).await.unwrap();
    s.set_wallet_cursor(ltc, "00bb", 2).await.unwrap();
    assert_eq!(s.wallet_cursor(ltc).await.unwrap().as_deref(), Some("00bb"));
    assert_eq!(s.wallet_cursor(AssetId(1)).await.unwrap(), None);
}

async fn operator_alerts_newest_first(db: &Db) {
    let s = &*db.store;
    assert!(s.alerts(10).await.unwrap().is_empty());
    let alert = |at_ms, message: &str| NewAlert {
        at_ms,
        source: "wallet:LTC".into(),
        message: message.into(),
    };
    let first = s.insert_alert(&alert(10, "a deposit left the chain")).await.unwrap();
    let second = s.insert_alert(&alert(20, "the hot wallet is short ✗")).await.unwrap();
    assert!(second > first);
    let got = s.alerts(10).await.unwrap();
    assert_eq!(
        got,
        vec![
            AlertRow {
                id: second,
                at_ms: 20,
                source: "wallet:LTC".into(),
                message: "the hot wallet is short ✗".into()
            },
            AlertRow {
                id: first,
                at_ms: 10,
                source: "wallet:LTC".into(),
                message: "a deposit left the chain".into()
            },
        ]
    );
    assert_eq!(s.alerts(1).await.unwrap().len(), 1, "limited");

    // A sink reads on from its cursor, oldest first.
    let after: Vec<i64> = s.alerts_after(0, 10).await.unwrap().iter().map(|a| a.id).collect();
    assert_eq!(after, vec![first, second]);
    assert_eq!(s.alerts_after(first, 10).await.unwrap()[0].id, second);
    assert!(s.alerts_after(second, 10).await.unwrap().is_empty());
    assert_eq!(s.alerts_after(0, 1).await.unwrap().len(), 1, "limited");
    assert_eq!(s.alert_sink_cursor("webhook").await.unwrap(), 0, "nothing delivered yet");
    s.set_alert_sink_cursor("webhook", first).await.unwrap();
    s.set_alert_sink_cursor("webhook", second).await.unwrap();
    assert_eq!(s.alert_sink_cursor("webhook").await.unwrap(), second);
    assert_eq!(s.alert_sink_cursor("other").await.unwrap(), 0, "per sink");
}

async fn withdrawals_round_trip(db: &Db) {
    let s = &*db.store;
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    let new = |user, amount| NewWithdrawal {
        user,
        asset: AssetId(2),
        address: "rltc1qx".into(),
        amount,
        fee: 100_000,
        after_hold: WithdrawalStatus::Held,
        created_ms: 10,
    };
    let w1 = s.insert_withdrawal(&new(a, u128::from(u64::MAX) * 7)).await.unwrap();
    let w2 = s.insert_withdrawal(&new(a, 5)).await.unwrap();
    let w3 = s.insert_withdrawal(&new(b, 6)).await.unwrap();
    let got = s.withdrawal(a, w1).await.unwrap().unwrap();
    assert_eq!(
        (got.amount, got.fee, got.status),
        (u128::from(u64::MAX) * 7, 100_000, WithdrawalStatus::Requested)
    );
    assert_eq!((got.txid, got.reason, got.created_ms, got.updated_ms), (None, None, 10, 10));
    assert_eq!(s.withdrawal(b, w1).await.unwrap(), None, "not b's");

    s.set_withdrawal_status(w1, WithdrawalStatus::Sent, Some("ab12"), None, 20).await.unwrap();
    s.set_withdrawal_status(w1, WithdrawalStatus::Completed, None, None, 30).await.unwrap();
    let done = s.withdrawal(a, w1).await.unwrap().unwrap();
    assert_eq!(
        (done.status, done.txid.as_deref(), done.updated_ms),
        (WithdrawalStatus::Completed, Some("ab12"), 30),
        "the txid stays"
    );
    s.set_withdrawal_status(w2, WithdrawalStatus::Failed, None, Some("the node refused"), 40)
        .await
        .unwrap();
    assert_eq!(
        s.withdrawal(a, w2).await.unwrap().unwrap().reason.as_deref(),
        Some("the node refused")
    );

    // Only a withdrawal never held can be discarded.
    let w4 = s.insert_withdrawal(&new(b, 7)).await.unwrap();
    s.discard_withdrawal(w4).await.unwrap();
    assert_eq!(s.withdrawal(b, w4).await.unwrap(), None);
    s.discard_withdrawal(w1).await.unwrap();
    assert!(s.withdrawal(a, w1).await.unwrap().is_some(), "a completed one stays");
    let open = s.open_withdrawals(AssetId(2)).await.unwrap();
    assert_eq!(
        open.iter().map(|w| w.id).collect::<Vec<_>>(),
        vec![w3],
        "completed and failed are closed"
    );
    assert!(s.open_withdrawals(AssetId(1)).await.unwrap().is_empty());
    let page = s
        .withdrawals(a, &WithdrawalFilter { limit: 10, ..WithdrawalFilter::default() })
        .await
        .unwrap();
    assert_eq!(page.iter().map(|w| w.id).collect::<Vec<_>>(), vec![w2, w1]);
    let older = s
        .withdrawals(a, &WithdrawalFilter { before: Some(w2), limit: 10, asset: Some(AssetId(2)) })
        .await
        .unwrap();
    assert_eq!(older.iter().map(|w| w.id).collect::<Vec<_>>(), vec![w1]);
}

async fn chain_sends_round_trip(db: &Db) {
    let s = &*db.store;
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    let (eth, other) = (AssetId(3), AssetId(4));
    let w1 = s
        .insert_withdrawal(&NewWithdrawal {
            user: a,
            asset: eth,
            address: "0xdest".into(),
            amount: 5,
            fee: 1,
            after_hold: WithdrawalStatus::Held,
            created_ms: 1,
        })
        .await
        .unwrap();
    let w2 = s
        .insert_withdrawal(&NewWithdrawal {
            user: b,
            asset: eth,
            address: "0xdest2".into(),
            amount: 6,
            fee: 1,
            after_hold: WithdrawalStatus::Held,
            created_ms: 2,
        })
        .await
        .unwrap();
    let send = |kind, withdrawal, from: &str, nonce, at| NewChainSend {
        asset: eth,
        kind,
        withdrawal,
        from_address: from.into(),
        to_address: "0xdest".into(),
        nonce,
        txid: format!("0x{nonce:064x}{from}"),
        raw: vec![0x02, 0xf8, u8::try_from(nonce % 256).unwrap()],
        value: 1,
        created_ms: at,
    };
    assert_eq!(s.next_chain_nonce(eth, "0xhot").await.unwrap(), None, "nothing recorded");
    assert!(s.open_chain_sends(eth).await.unwrap().is_empty());

    // Every field reads back as written: every byte value, a value above u64::MAX.
    let first = NewChainSend {
        raw: (0..=255u8).rev().chain(0..=255).collect(),
        value: u128::from(u64::MAX) * 1_000 + 7,
        to_address: "0xDeSt".into(),
        ..send(ChainSendKind::Withdrawal, Some(w1), "0xhot", 0, 100)
    };
    let id1 = s.insert_chain_send(&first).await.unwrap();
    let row1 = ChainSendRow {
        id: id1,
        asset: eth,
        kind: ChainSendKind::Withdrawal,
        withdrawal: Some(w1),
        from_address: "0xhot".into(),
        to_address: "0xDeSt".into(),
        nonce: 0,
        txid: first.txid.clone(),
        raw: first.raw.clone(),
        value: u128::from(u64::MAX) * 1_000 + 7,
        status: ChainSendStatus::Signed,
        fee: None,
        created_ms: 100,
        updated_ms: 100,
    };
    assert_eq!(s.open_chain_sends(eth).await.unwrap(), vec![row1.clone()]);
    assert_eq!(s.chain_send_of_withdrawal(w1).await.unwrap(), Some(row1.clone()));

    let sweep = NewChainSend {
        to_address: "0xhot".into(),
        ..send(ChainSendKind::Sweep, None, "0xdep1", 5, 110)
    };
    let id2 = s.insert_chain_send(&sweep).await.unwrap();
    let id3 = s
        .insert_chain_send(&send(ChainSendKind::Withdrawal, Some(w2), "0xhot", 1, 120))
        .await
        .unwrap();
    // The same nonce from another address, or of the same address on another asset, is another
    // send.
    let id4 =
        s.insert_chain_send(&send(ChainSendKind::Sweep, None, "0xdep2", 0, 130)).await.unwrap();
    let id5 = s
        .insert_chain_send(&NewChainSend {
            asset: other,
            ..send(ChainSendKind::Withdrawal, None, "0xhot", 0, 140)
        })
        .await
        .unwrap();
    // A second live send of the same (asset, address, nonce) is refused, nothing written.
    match s.insert_chain_send(&send(ChainSendKind::Sweep, None, "0xhot", 1, 150)).await {
        Err(StoreError::Conflict(what)) => assert_eq!(what, "chain send nonce"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(matches!(
        s.insert_chain_send(&send(ChainSendKind::Sweep, None, "0xhot", u64::MAX, 150)).await,
        Err(StoreError::Invalid(_))
    ));
    let sweep_row =
        s.open_chain_sends(eth).await.unwrap().into_iter().find(|r| r.id == id2).unwrap();
    assert_eq!(
        (sweep_row.kind, sweep_row.withdrawal, sweep_row.nonce, sweep_row.value, sweep_row.raw),
        (ChainSendKind::Sweep, None, 5, 1, vec![0x02, 0xf8, 5])
    );
    let ids = |rows: Vec<ChainSendRow>| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(s.open_chain_sends(eth).await.unwrap()), vec![id1, id2, id3, id4]);
    assert_eq!(ids(s.open_chain_sends(other).await.unwrap()), vec![id5]);
    assert_eq!(s.next_chain_nonce(eth, "0xhot").await.unwrap(), Some(2));
    assert_eq!(s.next_chain_nonce(eth, "0xdep1").await.unwrap(), Some(6));
    assert_eq!(s.next_chain_nonce(other, "0xhot").await.unwrap(), Some(1));
    assert_eq!(s.next_chain_nonce(eth, "0xnobody").await.unwrap(), None);

    // sent, then confirmed with its fee; the fee stays when a later change gives none.
    let fee = u128::from(u64::MAX) + 21_000;
    s.set_chain_send_status(id1, ChainSendStatus::Sent, None, 200).await.unwrap();
    let sent = s.chain_send_of_withdrawal(w1).await.unwrap().unwrap();
    assert_eq!((sent.status, sent.fee, sent.updated_ms), (ChainSendStatus::Sent, None, 200));
    s.set_chain_send_status(id1, ChainSendStatus::Confirmed, Some(fee), 300).await.unwrap();
    s.set_chain_send_status(id1, ChainSendStatus::Confirmed, None, 400).await.unwrap();
    assert_eq!(
        s.chain_send_of_withdrawal(w1).await.unwrap(),
        Some(ChainSendRow {
            status: ChainSendStatus::Confirmed,
            fee: Some(fee),
            updated_ms: 400,
            ..row1
        })
    );
    assert_eq!(
        ids(s.open_chain_sends(eth).await.unwrap()),
        vec![id2, id3, id4],
        "confirmed is closed"
    );
    assert_eq!(s.next_chain_nonce(eth, "0xhot").await.unwrap(), Some(2), "a confirmed send counts");

    // A failed send is closed, no longer the withdrawal's, and frees its nonce.
    s.set_chain_send_status(id3, ChainSendStatus::Failed, None, 500).await.unwrap();
    assert_eq!(ids(s.open_chain_sends(eth).await.unwrap()), vec![id2, id4]);
    assert_eq!(s.chain_send_of_withdrawal(w2).await.unwrap(), None);
    assert_eq!(s.next_chain_nonce(eth, "0xhot").await.unwrap(), Some(1), "failed ones are ignored");
    let id6 = s
        .insert_chain_send(&send(ChainSendKind::Withdrawal, Some(w2), "0xhot", 1, 600))
        .await
        .unwrap();
    let again = s.chain_send_of_withdrawal(w2).await.unwrap().unwrap();
    assert_eq!((again.id, again.nonce, again.status), (id6, 1, ChainSendStatus::Signed));
    assert_eq!(s.next_chain_nonce(eth, "0xhot").await.unwrap(), Some(2));
    // The failed one cannot come back while its nonce is taken.
    assert!(matches!(
        s.set_chain_send_status(id3, ChainSendStatus::Signed, None, 700).await,
        Err(StoreError::Conflict("chain send nonce"))
    ));
    // Two failed sends of one nonce do not conflict.
    s.set_chain_send_status(id6, ChainSendStatus::Failed, None, 800).await.unwrap();
    let id7 = s
        .insert_chain_send(&send(ChainSendKind::Withdrawal, Some(w2), "0xhot", 1, 900))
        .await
        .unwrap();
    s.set_chain_send_status(id7, ChainSendStatus::Failed, None, 910).await.unwrap();
    assert_eq!(s.chain_send_of_withdrawal(w2).await.unwrap(), None);
    assert_eq!(s.chain_send_of_withdrawal(w2 + 1_000).await.unwrap(), None);
    assert_eq!(ids(s.open_chain_sends(eth).await.unwrap()), vec![id2, id4]);

    // The deposit addresses of one asset, whoever's, after an id, oldest first.
    let addr = |user, asset, address: &str, at| NewDepositAddress {
        user,
        asset,
        address: address.into(),
        label: format!("bourse:user:{}", user.0),
        created_ms: at,
    };
    let d1 = s.insert_deposit_address(&addr(a, eth, "0xdep1", 10)).await.unwrap();
    let d2 = s.insert_deposit_address(&addr(b, eth, "0xdep2", 20)).await.unwrap();
    let d3 = s.insert_deposit_address(&addr(a, other, "0xdep1", 30)).await.unwrap();
    let d4 = s.insert_deposit_address(&addr(a, eth, "0xdep3", 40)).await.unwrap();
    let all = s.asset_deposit_addresses(eth, 0).await.unwrap();
    assert_eq!(
        all.iter().map(|r| (r.id, r.user, r.asset, r.address.as_str())).collect::<Vec<_>>(),
        vec![(d1, a, eth, "0xdep1"), (d2, b, eth, "0xdep2"), (d4, a, eth, "0xdep3")]
    );
    assert_eq!((all[1].label.as_str(), all[1].created_ms), ("bourse:user:2", 20));
    assert_eq!(s.asset_deposit_addresses(other, 0).await.unwrap().len(), 1);
    assert!(s.asset_deposit_addresses(AssetId(9), 0).await.unwrap().is_empty());
    // Only the rows after `after_id` (the other asset's row in between is not the asset's).
    let address_ids =
        |rows: Vec<bourse_store::DepositAddressRow>| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(address_ids(s.asset_deposit_addresses(eth, d1).await.unwrap()), vec![d2, d4]);
    assert_eq!(address_ids(s.asset_deposit_addresses(eth, d2).await.unwrap()), vec![d4]);
    assert_eq!(address_ids(s.asset_deposit_addresses(eth, d3).await.unwrap()), vec![d4]);
    assert!(s.asset_deposit_addresses(eth, d4).await.unwrap().is_empty());
    assert!(s.asset_deposit_addresses(other, d4).await.unwrap().is_empty());
    let d5 = s.insert_deposit_address(&addr(b, eth, "0xdep5", 50)).await.unwrap();
    assert_eq!(address_ids(s.asset_deposit_addresses(eth, d4).await.unwrap()), vec![d5]);

    // Stored bytes that are not lower-case hex are corrupt.
    let corrupt = |r: Result<(), StoreError>| match r {
        Err(StoreError::Corrupt { column, .. }) => assert_eq!(column, "raw"),
        other => panic!("expected Corrupt(raw), got {other:?}"),
    };
    raw(&db.url, "UPDATE chain_sends SET raw = '0xzz' WHERE from_address = '0xdep1'").await;
    corrupt(s.open_chain_sends(eth).await.map(|_| ()));
    raw(&db.url, "UPDATE chain_sends SET raw = 'ABCD' WHERE from_address = '0xdep1'").await;
    corrupt(s.open_chain_sends(eth).await.map(|_| ()));
    raw(&db.url, "UPDATE chain_sends SET raw = 'abc' WHERE from_address = '0xdep1'").await;
    corrupt(s.open_chain_sends(eth).await.map(|_| ()));
    // The rows that are sound still read.
    assert_eq!(s.chain_send_of_withdrawal(w1).await.unwrap().map(|r| r.raw.len()), Some(512));
    assert_eq!(ids(s.open_chain_sends(other).await.unwrap()), vec![id5]);
}

async fn mail_outbox_round_trip(db: &Db) {
    let s = &*db.store;
    assert!(s.due_mails(i64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(s.mail_queue_len().await.unwrap(), 0);

    let long_html = format!(
        "<!doctype html><html><body>{}</body></html>",
        "<p style=\"color:#333\">Grüße, 你好 — «bourse» &amp; ✉</p>\n".repeat(4000)
    );
    assert!(long_html.len() > 150_000);
    let mail = |to: &str, subject: &str, created_ms| NewMail {
        to: to.into(),
        subject: subject.into(),
        text: format!(
            "Hello {to},\r\n\r\nYour code: 123 456 — ¡olé! 👋\n'quotes' \"and\" \\ backslash"
        ),
        html: long_html.clone(),
        created_ms,
    };
    let queued = |id, m: &NewMail| MailRow {
        id,
        to: m.to.clone(),
        subject: m.subject.clone(),
        text: m.text.clone(),
        html: m.html.clone(),
        created_ms: m.created_ms,
        attempts: 0,
        next_attempt_ms: m.created_ms,
        sent_ms: None,
        last_error: None,
    };
    let m1 = mail("a@example.com", "Bestätigen Sie Ihre E-Mail ✉ — 確認してください", 100);
    let m2 = mail("b@example.com", "Passwort zurücksetzen 🔑", 200);
    let m3 = mail("c@example.com", "Neue Anmeldung", 300);
    let id1 = s.enqueue_mail(&m1).await.unwrap();
    let id2 = s.enqueue_mail(&m2).await.unwrap();
    let id3 = s.enqueue_mail(&m3).await.unwrap();
    assert!(id1 < id2 && id2 < id3);
    assert_eq!(s.mail_queue_len().await.unwrap(), 3);

    // Due at once (at its created_ms), not before; every field reads back exactly.
    assert!(s.due_mails(99, 10).await.unwrap().is_empty());
    assert_eq!(s.due_mails(100, 10).await.unwrap(), vec![queued(id1, &m1)]);
    let all = vec![queued(id1, &m1), queued(id2, &m2), queued(id3, &m3)];
    assert_eq!(s.due_mails(300, 10).await.unwrap(), all, "oldest first");
    assert_eq!(s.due_mails(i64::MAX, 2).await.unwrap(), all[..2], "limited");
    assert!(s.due_mails(i64::MAX, 0).await.unwrap().is_empty());

    // A failed attempt: counted, its error kept, not due again before next_attempt_ms.
    let error: String = "é".repeat(500);
    s.mail_failed(id1, &error, 1_000).await.unwrap();
    assert_eq!(
        s.due_mails(999, 10).await.unwrap().iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![id2, id3]
    );
    let failed = MailRow {
        attempts: 1,
        next_attempt_ms: 1_000,
        last_error: Some(error.clone()),
        ..queued(id1, &m1)
    };
    assert_eq!(
        s.due_mails(1_000, 10).await.unwrap(),
        vec![queued(id2, &m2), queued(id3, &m3), failed.clone()],
        "a retried mail queues behind those due earlier"
    );
    s.mail_failed(id1, "421 4.3.2 service not available", 2_000).await.unwrap();
    assert!(s.due_mails(1_999, 10).await.unwrap().iter().all(|m| m.id != id1));
    assert_eq!(
        s.due_mails(2_000, 10).await.unwrap().last(),
        Some(&MailRow {
            attempts: 2,
            next_attempt_ms: 2_000,
            last_error: Some("421 4.3.2 service not available".into()),
            ..queued(id1, &m1)
        }),
        "the latest error replaces the previous one"
    );
    assert_eq!(s.mail_queue_len().await.unwrap(), 3, "a failed mail stays queued");

    // A sent mail is never due again, even after a late failure report, and is not counted.
    s.mail_sent(id2, 400).await.unwrap();
    assert_eq!(s.mail_queue_len().await.unwrap(), 2);
    s.mail_failed(id2, "late", 0).await.unwrap();
    s.mail_sent(id2, 500).await.unwrap();
    assert_eq!(s.mail_queue_len().await.unwrap(), 2);
    assert_eq!(
        s.due_mails(i64::MAX, LIST_LIMIT_MAX)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        vec![id3, id1]
    );
    // A mail that failed before it was sent is sent the same way.
    s.mail_sent(id1, 2_100).await.unwrap();
    assert_eq!(s.mail_queue_len().await.unwrap(), 1);
    assert_eq!(s.due_mails(i64::MAX, 10).await.unwrap(), vec![queued(id3, &m3)]);

    // Mails due at the same time go in the order they were queued.
    let m4 = mail("d@example.com", "d", 50);
    let m5 = mail("e@example.com", "e", 50);
    let id4 = s.enqueue_mail(&m4).await.unwrap();
    let id5 = s.enqueue_mail(&m5).await.unwrap();
    assert_eq!(s.mail_queue_len().await.unwrap(), 3);
    assert_eq!(
        s.due_mails(i64::MAX, 10).await.unwrap(),
        vec![queued(id4, &m4), queued(id5, &m5), queued(id3, &m3)]
    );
    assert_eq!(s.due_mails(50, 1).await.unwrap(), vec![queued(id4, &m4)]);

    // An attempts count that is not a u32 is corrupt, not wrapped.
    raw(&db.url, "UPDATE mail_outbox SET attempts = -1 WHERE created_ms = 300").await;
    match s.due_mails(i64::MAX, 10).await {
        Err(StoreError::Corrupt { column, .. }) => assert_eq!(column, "attempts"),
        other => panic!("expected Corrupt(attempts), got {other:?}"),
    }
    raw(&db.url, "UPDATE mail_outbox SET attempts = 4294967296 WHERE created_ms = 300").await;
    assert!(matches!(s.due_mails(i64::MAX, 10).await, Err(StoreError::Corrupt { .. })));
    raw(&db.url, "UPDATE mail_outbox SET attempts = 4294967295 WHERE created_ms = 300").await;
    assert_eq!(s.due_mails(300, 10).await.unwrap()[2].attempts, u32::MAX);
}

async fn security_events_newest_first(db: &Db) {
    use SecurityEventKind as K;
    let s = &*db.store;
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    let page = |before, limit| SecurityEventFilter { before, limit };
    let ids = |rows: &[SecurityEventRow]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    assert!(s.security_events(a, &page(None, 10)).await.unwrap().is_empty());

    // One event of every kind for a, with b's in between; every field differs from the last.
    let kinds = [
        K::LoginSucceeded,
        K::LoginFailed,
        K::Logout,
        K::SessionRevoked,
        K::PasswordChanged,
        K::PasswordResetRequested,
        K::EmailVerified,
        K::ApiKeyCreated,
        K::ApiKeyRevoked,
        K::WithdrawalRequested,
        K::TwoFactorEnabled,
        K::TwoFactorDisabled,
        K::WithdrawalAddressAdded,
        K::WithdrawalAddressConfirmed,
        K::WithdrawalAddressRemoved,
        K::AddressWhitelistOn,
        K::AddressWhitelistOff,
    ];
    let long_agent: String = "ü".repeat(256);
    let event = |user, i: usize, kind| NewSecurityEvent {
        user,
        // Not in id order (a clock that steps back): the log is ordered by id.
        at_ms: match i {
            0 => 0,
            1 => i64::MAX,
            _ => 1_700_000_000_000 - i64::try_from(i).unwrap(),
        },
        kind,
        ip: ["203.0.113.7", "2001:db8::1", "::ffff:192.0.2.1"][i % 3].into(),
        user_agent: match i % 3 {
            0 => "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into(),
            1 => long_agent.clone(),
            _ => String::new(),
        },
        detail: match i % 4 {
            0 => String::new(),
            1 => format!("session {i}"),
            2 => format!("label «bot {i}» ✓ 'q' \"qq\" \\"),
            _ => format!("{i}"),
        },
    };
    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    let mut last = 0;
    for (i, kind) in kinds.into_iter().enumerate() {
        let new = event(a, i, kind);
        let id = s.record_security_event(&new).await.unwrap();
        assert!(id > last, "ids grow");
        last = id;
        mine.push(SecurityEventRow {
            id,
            user: a,
            at_ms: new.at_ms,
            kind,
            ip: new.ip,
            user_agent: new.user_agent,
            detail: new.detail,
        });
        if i % 3 == 2 {
            let new = event(b, i + 100, K::Logout);
            let id = s.record_security_event(&new).await.unwrap();
            last = id;
            theirs.push(id);
        }
    }
    mine.reverse();
    theirs.reverse();

    // Every field and every kind reads back as written, newest first; only the user's own.
    let got = s.security_events(a, &page(None, LIST_LIMIT_MAX)).await.unwrap();
    assert_eq!(got, mine);
    assert_eq!(got.iter().map(|r| r.kind.as_str()).collect::<HashSet<_>>().len(), kinds.len());
    assert_eq!(got.iter().find(|r| r.at_ms == i64::MAX).unwrap().user_agent, long_agent);
    let got_b = s.security_events(b, &page(None, LIST_LIMIT_MAX)).await.unwrap();
    assert_eq!(ids(&got_b), theirs);
    assert!(got_b.iter().all(|r| r.user == b && r.kind == K::Logout));
    let c = user(s, "c@example.com").await;
    assert!(s.security_events(c, &page(None, 10)).await.unwrap().is_empty());

    // Pages: `before` is exclusive, and the pages are the whole log, in order.
    let first = s.security_events(a, &page(None, 5)).await.unwrap();
    assert_eq!(first, mine[..5]);
    let second = s.security_events(a, &page(Some(first[4].id), 5)).await.unwrap();
    assert_eq!(second, mine[5..10]);
    let third = s.security_events(a, &page(Some(second[4].id), 5)).await.unwrap();
    assert_eq!(third, mine[10..15]);
    let fourth = s.security_events(a, &page(Some(third[4].id), 5)).await.unwrap();
    assert_eq!(fourth, mine[15..]);
    assert!(s.security_events(a, &page(Some(fourth[1].id), 5)).await.unwrap().is_empty());
    // A cursor that is another user's event or no event at all works the same.
    let below = |id: i64| mine.iter().filter(|r| r.id < id).cloned().collect::<Vec<_>>();
    assert_eq!(s.security_events(a, &page(Some(theirs[1]), 50)).await.unwrap(), below(theirs[1]));
    assert_eq!(s.security_events(a, &page(Some(i64::MAX), 50)).await.unwrap(), mine);
    assert!(s.security_events(a, &page(Some(0), 50)).await.unwrap().is_empty());
    assert!(s.security_events(a, &page(Some(i64::MIN), 50)).await.unwrap().is_empty());
    assert!(s.security_events(a, &page(None, 0)).await.unwrap().is_empty(), "limit 0");
    assert_eq!(s.security_events(a, &page(None, 1)).await.unwrap(), mine[..1]);

    // A user id that does not fit the column is refused; an unknown user has no log.
    assert!(matches!(
        s.security_events(UserId(u64::MAX), &page(None, 10)).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.record_security_event(&event(UserId(u64::MAX), 0, K::Logout)).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.record_security_event(&event(UserId(c.0 + 1_000), 0, K::Logout)).await,
        Err(StoreError::Database(_))
    ));

    // The limit is clamped to LIST_LIMIT_MAX.
    raw(
        &db.url,
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1001) \
         INSERT INTO security_events (user_id, at_ms, kind, ip, user_agent, detail) \
         SELECT (SELECT id FROM users WHERE email = 'c@example.com'), i, 'logout', '', '', '' \
         FROM n",
    )
    .await;
    let many = s.security_events(c, &page(None, u32::MAX)).await.unwrap();
    assert_eq!(many.len(), usize::try_from(LIST_LIMIT_MAX).unwrap());
    assert_eq!(many[0].at_ms, 1001, "newest first");
    assert!(many.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(s.security_events(a, &page(None, LIST_LIMIT_MAX)).await.unwrap(), mine);

    // What is stored is each kind's code.
    raw(
        &db.url,
        "UPDATE security_events SET detail = kind \
         WHERE user_id = (SELECT id FROM users WHERE email = 'a@example.com')",
    )
    .await;
    let coded = s.security_events(a, &page(None, 50)).await.unwrap();
    assert_eq!(coded.len(), kinds.len());
    for r in &coded {
        assert_eq!(r.detail, r.kind.as_str());
    }

    // A kind that is not a code is corrupt; the other users' events still read.
    let corrupt = |r: Result<Vec<SecurityEventRow>, StoreError>| match r {
        Err(StoreError::Corrupt { column, value }) => (column, value),
        other => panic!("expected Corrupt(kind), got {other:?}"),
    };
    raw(&db.url, "UPDATE security_events SET kind = 'Login_Failed' WHERE kind = 'login_failed'")
        .await;
    assert_eq!(
        corrupt(s.security_events(a, &page(None, 50)).await),
        ("kind", "Login_Failed".to_string())
    );
    raw(&db.url, "UPDATE security_events SET kind = '' WHERE kind = 'Login_Failed'").await;
    assert_eq!(corrupt(s.security_events(a, &page(None, 50)).await), ("kind", String::new()));
    assert_eq!(ids(&s.security_events(b, &page(None, 50)).await.unwrap()), theirs);
    // A page that stops before the corrupt row (a's second event) still reads.
    assert_eq!(ids(&s.security_events(a, &page(None, 5)).await.unwrap()), ids(&mine[..5]));
}

async fn two_factor(db: &Db) {
    let s = &*db.store;
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    let hashes =
        |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();

    // A new account: two-factor authentication off, no whitelist.
    let fresh = s.user(a).await.unwrap().unwrap();
    assert_eq!(
        (fresh.totp_sealed, fresh.totp_pending_sealed, fresh.totp_last_step),
        (None, None, 0)
    );
    assert!(!fresh.address_whitelist);
    assert_eq!(s.recovery_codes_left(a).await.unwrap(), 0);

    // A pending setup: stored, replaced, cleared; the sealed bytes read back exactly.
    let pending: Vec<u8> = (0..=255).collect();
    s.set_totp_pending(a, Some(&[1, 2, 3])).await.unwrap();
    s.set_totp_pending(a, Some(&pending)).await.unwrap();
    let row = s.user_by_email("a@example.com").await.unwrap().unwrap();
    assert_eq!((row.totp_sealed, row.totp_pending_sealed), (None, Some(pending.clone())));
    s.set_totp_pending(a, None).await.unwrap();
    assert_eq!(s.user(a).await.unwrap().unwrap().totp_pending_sealed, None);
    s.set_totp_pending(a, Some(&pending)).await.unwrap();

    // Enabling: the secret, the pending one cleared, the step, and the recovery codes.
    let sealed = vec![0u8, 0xff, 0x00, 0x7f, 0x80];
    s.enable_totp(a, &sealed, 1_000, &hashes("a-", 10)).await.unwrap();
    let on = s.user(a).await.unwrap().unwrap();
    assert_eq!(
        (on.totp_sealed.clone(), on.totp_pending_sealed.clone(), on.totp_last_step),
        (Some(sealed.clone()), None, 1_000)
    );
    assert_eq!(on.email, "a@example.com", "the rest of the account is untouched");
    assert_eq!(s.recovery_codes_left(a).await.unwrap(), 10);
    assert_eq!(s.recovery_codes_left(b).await.unwrap(), 0);
    assert_eq!(s.user(b).await.unwrap().unwrap().totp_sealed, None, "only a's");

    // A step is accepted once, and only after the last one.
    assert!(!s.use_totp_step(a, 1_000).await.unwrap(), "the step that enabled it");
    assert!(!s.use_totp_step(a, 999).await.unwrap());
    assert!(s.use_totp_step(a, 1_002).await.unwrap());
    assert!(!s.use_totp_step(a, 1_002).await.unwrap());
    assert!(!s.use_totp_step(a, 1_001).await.unwrap(), "never back");
    assert!(s.use_totp_step(a, i64::MAX).await.unwrap());
    assert_eq!(s.user(a).await.unwrap().unwrap().totp_last_step, i64::MAX);
    assert!(!s.use_totp_step(UserId(9_999), 1).await.unwrap(), "no such user");
    assert!(s.use_totp_step(b, 1).await.unwrap(), "per user");

    // Recovery codes: each once, only the user's own.
    s.enable_totp(b, &[9], 5, &["shared".to_string(), "b-only".to_string()]).await.unwrap();
    s.enable_totp(a, &sealed, 1_000, &["shared".to_string(), "a-only".to_string()]).await.unwrap();
    assert_eq!(s.user(a).await.unwrap().unwrap().totp_last_step, 1_000, "enabling sets it");
    assert!(!s.use_recovery_code(a, "a-0", 10).await.unwrap(), "the old codes are gone");
    assert!(!s.use_recovery_code(a, "b-only", 10).await.unwrap(), "b's code");
    assert!(!s.use_recovery_code(a, "nope", 10).await.unwrap());
    assert!(s.use_recovery_code(a, "shared", 10).await.unwrap());
    assert!(!s.use_recovery_code(a, "shared", 11).await.unwrap(), "used");
    assert_eq!(s.recovery_codes_left(a).await.unwrap(), 1);
    assert_eq!(s.recovery_codes_left(b).await.unwrap(), 2, "b's same hash is b's own");
    assert!(s.use_recovery_code(b, "shared", 12).await.unwrap());
    assert!(s.use_recovery_code(a, "a-only", 13).await.unwrap());
    assert_eq!(s.recovery_codes_left(a).await.unwrap(), 0);

    // Enabling again replaces every code, used or not.
    s.enable_totp(a, &sealed, 2_000, &hashes("a2-", 3)).await.unwrap();
    assert_eq!(s.recovery_codes_left(a).await.unwrap(), 3);
    assert!(!s.use_recovery_code(a, "a-only", 14).await.unwrap());
    assert!(s.use_recovery_code(a, "a2-1", 14).await.unwrap());

    // The same hash twice: refused, nothing written.
    let before = s.user(a).await.unwrap().unwrap();
    let twice = vec!["x".to_string(), "y".to_string(), "x".to_string()];
    assert!(matches!(
        s.enable_totp(a, &[7, 7], 3_000, &twice).await,
        Err(StoreError::Conflict("recovery code"))
    ));
    assert_eq!(s.user(a).await.unwrap().unwrap(), before);
    assert_eq!(s.recovery_codes_left(a).await.unwrap(), 2);
    assert!(s.use_recovery_code(a, "a2-2", 15).await.unwrap());

    // Disabling: the secrets and codes go, the last step stays; b is untouched.
    s.set_totp_pending(a, Some(&[5])).await.unwrap();
    s.disable_totp(a).await.unwrap();
    let off = s.user(a).await.unwrap().unwrap();
    assert_eq!((off.totp_sealed, off.totp_pending_sealed, off.totp_last_step), (None, None, 2_000));
    assert_eq!(s.recovery_codes_left(a).await.unwrap(), 0);
    assert!(!s.use_recovery_code(a, "a2-0", 16).await.unwrap());
    assert_eq!(s.recovery_codes_left(b).await.unwrap(), 1);
    assert_eq!(s.user(b).await.unwrap().unwrap().totp_sealed, Some(vec![9]));
    s.disable_totp(a).await.unwrap();

    // No codes at all; an unknown user changes nothing.
    s.enable_totp(a, &sealed, 2_000, &[]).await.unwrap();
    assert_eq!(s.recovery_codes_left(a).await.unwrap(), 0);
    assert_eq!(s.user(a).await.unwrap().unwrap().totp_sealed, Some(sealed.clone()));
    s.enable_totp(UserId(9_999), &sealed, 1, &hashes("z", 2)).await.unwrap();
    assert_eq!(s.user(UserId(9_999)).await.unwrap(), None);
    assert_eq!(s.recovery_codes_left(UserId(9_999)).await.unwrap(), 0);
    assert!(matches!(s.recovery_codes_left(UserId(u64::MAX)).await, Err(StoreError::Invalid(_))));

    // The whitelist switch.
    s.set_address_whitelist(a, true).await.unwrap();
    assert!(s.user(a).await.unwrap().unwrap().address_whitelist);
    assert!(!s.user(b).await.unwrap().unwrap().address_whitelist);
    s.set_address_whitelist(a, true).await.unwrap();
    s.set_address_whitelist(a, false).await.unwrap();
    assert!(!s.user(a).await.unwrap().unwrap().address_whitelist);
}

async fn totp_steps_and_recovery_codes_are_used_once_under_concurrency(db: &Db) {
    let s = &*db.store;
    let u = user(s, "c@example.com").await;
    const CODES: usize = 10;
    const RACERS: usize = 4;
    let hashes: Vec<String> = (0..CODES).map(|i| format!("code-{i}")).collect();
    s.enable_totp(u, &[1], 0, &hashes).await.unwrap();

    // Each step: several concurrent calls, exactly one accepted.
    for step in 1..=10i64 {
        let tasks: Vec<_> = (0..RACERS)
            .map(|_| {
                let store = db.store.clone();
                tokio::spawn(async move { store.use_totp_step(u, step).await.unwrap() })
            })
            .collect();
        let mut accepted = 0;
        for task in tasks {
            accepted += usize::from(task.await.unwrap());
        }
        assert_eq!(accepted, 1, "step {step}");
    }
    let (x, y) = tokio::join!(s.use_totp_step(u, 11), s.use_totp_step(u, 11));
    assert!(x.unwrap() ^ y.unwrap(), "exactly one of two joined calls");
    assert_eq!(s.user(u).await.unwrap().unwrap().totp_last_step, 11);

    // Each recovery code: used exactly once, whoever races for it.
    let mut tasks = Vec::new();
    for i in 0..CODES {
        for _ in 0..RACERS {
            let store = db.store.clone();
            tasks.push(tokio::spawn(async move {
                (i, store.use_recovery_code(u, &format!("code-{i}"), 5).await.unwrap())
            }));
        }
    }
    let mut winners = vec![0; CODES];
    for task in tasks {
        let (i, used) = task.await.unwrap();
        winners[i] += usize::from(used);
    }
    assert_eq!(winners, vec![1; CODES], "each code is used exactly once");
    assert_eq!(s.recovery_codes_left(u).await.unwrap(), 0);
}

async fn tokens_with_subjects(db: &Db) {
    let s = &*db.store;
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    let token = |hash: &str, user, purpose, subject| NewToken {
        token_hash: hash.into(),
        user,
        purpose,
        created_ms: 0,
        expires_ms: 1_000,
        subject,
    };
    use TokenPurpose::{ConfirmAddress, ConfirmWithdrawal, VerifyEmail};
    for t in [
        token("w5", a, ConfirmWithdrawal, Some(5)),
        token("w5-again", a, ConfirmWithdrawal, Some(5)),
        token("w5-used", a, ConfirmWithdrawal, Some(5)),
        token("w6", a, ConfirmWithdrawal, Some(6)),
        token("w5-of-b", b, ConfirmWithdrawal, Some(5)),
        token("addr5", a, ConfirmAddress, Some(5)),
        token("addr-max", a, ConfirmAddress, Some(i64::MAX)),
        token("no-subject", a, VerifyEmail, None),
    ] {
        s.insert_token(&t).await.unwrap();
    }

    // The subject comes back with the user; the purpose must match.
    assert_eq!(s.use_token("w5-used", ConfirmAddress, 10).await.unwrap(), None);
    assert_eq!(
        s.use_token("w5-used", ConfirmWithdrawal, 10).await.unwrap(),
        Some(UsedToken { user: a, subject: Some(5) })
    );
    assert_eq!(
        s.use_token("addr-max", ConfirmAddress, 10).await.unwrap(),
        Some(UsedToken { user: a, subject: Some(i64::MAX) })
    );
    assert_eq!(
        s.use_token("no-subject", VerifyEmail, 10).await.unwrap(),
        Some(UsedToken { user: a, subject: None })
    );

    // Expiring a's links about withdrawal 5: the two unused ones, nothing else.
    assert_eq!(s.expire_tokens(a, ConfirmWithdrawal, 5, 20).await.unwrap(), 2);
    assert_eq!(s.expire_tokens(a, ConfirmWithdrawal, 5, 21).await.unwrap(), 0, "already");
    assert_eq!(s.use_token("w5", ConfirmWithdrawal, 30).await.unwrap(), None);
    assert_eq!(s.use_token("w5-again", ConfirmWithdrawal, 30).await.unwrap(), None);
    assert_eq!(
        s.use_token("w6", ConfirmWithdrawal, 30).await.unwrap(),
        Some(UsedToken { user: a, subject: Some(6) }),
        "another subject"
    );
    assert_eq!(
        s.use_token("w5-of-b", ConfirmWithdrawal, 30).await.unwrap(),
        Some(UsedToken { user: b, subject: Some(5) }),
        "another user"
    );
    assert_eq!(s.expire_tokens(a, ConfirmAddress, 5, 40).await.unwrap(), 1, "per purpose");
    assert_eq!(s.use_token("addr5", ConfirmAddress, 50).await.unwrap(), None);
    assert_eq!(s.expire_tokens(b, ConfirmAddress, 5, 40).await.unwrap(), 0);
    assert!(matches!(
        s.expire_tokens(UserId(u64::MAX), ConfirmAddress, 5, 40).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn withdrawal_address_whitelist(db: &Db) {
    let s = &*db.store;
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    let new = |user, asset, address: &str, label: &str, created_ms| NewWithdrawalAddress {
        user,
        asset: AssetId(asset),
        address: address.into(),
        label: label.into(),
        created_ms,
    };
    let row = |id, n: &NewWithdrawalAddress| WithdrawalAddressRow {
        id,
        user: n.user,
        asset: n.asset,
        address: n.address.clone(),
        label: n.label.clone(),
        created_ms: n.created_ms,
        confirmed_ms: None,
        usable_from_ms: None,
    };
    assert!(s.withdrawal_addresses(a).await.unwrap().is_empty());

    let n1 = new(a, 1, "bc1qcold", "cold storage «☃»", 10);
    let n2 = new(a, 2, "bc1qcold", "", 20);
    let n3 = new(b, 1, "bc1qcold", "b's", 30);
    let id1 = s.insert_withdrawal_address(&n1).await.unwrap();
    let id2 = s.insert_withdrawal_address(&n2).await.unwrap();
    let id3 = s.insert_withdrawal_address(&n3).await.unwrap();
    assert!(id1 < id2 && id2 < id3);
    // The same live (user, asset, address) again: a conflict, whatever the label.
    assert!(matches!(
        s.insert_withdrawal_address(&new(a, 1, "bc1qcold", "again", 40)).await,
        Err(StoreError::Conflict("withdrawal address"))
    ));
    assert!(matches!(
        s.insert_withdrawal_address(&new(UserId(u64::MAX), 1, "x", "", 40)).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(s.withdrawal_addresses(a).await.unwrap(), vec![row(id2, &n2), row(id1, &n1)]);
    assert_eq!(s.withdrawal_addresses(b).await.unwrap(), vec![row(id3, &n3)]);

    // Confirming: only the owner, only once.
    assert!(!s.confirm_withdrawal_address(b, id1, 50, 60).await.unwrap(), "not b's");
    assert!(!s.confirm_withdrawal_address(a, 9_999, 50, 60).await.unwrap());
    assert!(s.confirm_withdrawal_address(a, id1, 50, 86_400_050).await.unwrap());
    assert!(!s.confirm_withdrawal_address(a, id1, 70, 80).await.unwrap(), "already");
    let confirmed = WithdrawalAddressRow {
        confirmed_ms: Some(50),
        usable_from_ms: Some(86_400_050),
        ..row(id1, &n1)
    };
    assert_eq!(s.withdrawal_addresses(a).await.unwrap(), vec![row(id2, &n2), confirmed.clone()]);

    // Removing: only the owner, only once; a removed one cannot be confirmed, and the same
    // address can be added again (a new, unconfirmed row).
    assert!(!s.remove_withdrawal_address(b, id2, 90).await.unwrap(), "not b's");
    assert!(s.remove_withdrawal_address(a, id2, 90).await.unwrap());
    assert!(!s.remove_withdrawal_address(a, id2, 91).await.unwrap(), "already");
    assert!(!s.confirm_withdrawal_address(a, id2, 92, 92).await.unwrap(), "removed");
    assert_eq!(s.withdrawal_addresses(a).await.unwrap(), vec![confirmed.clone()]);
    assert!(s.remove_withdrawal_address(a, id1, 93).await.unwrap(), "a confirmed one too");
    assert!(s.withdrawal_addresses(a).await.unwrap().is_empty());
    let n4 = new(a, 1, "bc1qcold", "back", 100);
    let id4 = s.insert_withdrawal_address(&n4).await.unwrap();
    assert!(id4 > id3);
    assert_eq!(s.withdrawal_addresses(a).await.unwrap(), vec![row(id4, &n4)]);
    assert!(matches!(
        s.insert_withdrawal_address(&n4).await,
        Err(StoreError::Conflict("withdrawal address"))
    ));
    assert_eq!(s.withdrawal_addresses(b).await.unwrap(), vec![row(id3, &n3)], "b's untouched");

    // The list is capped at LIST_LIMIT_MAX, newest first.
    let c = user(s, "c@example.com").await;
    raw(
        &db.url,
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1001) \
         INSERT INTO withdrawal_addresses (user_id, asset_id, address, label, created_ms) \
         SELECT (SELECT id FROM users WHERE email = 'c@example.com'), 1, 'addr' || i, '', i \
         FROM n",
    )
    .await;
    let many = s.withdrawal_addresses(c).await.unwrap();
    assert_eq!(many.len(), usize::try_from(LIST_LIMIT_MAX).unwrap());
    assert_eq!(many[0].created_ms, 1001, "newest first");
    assert!(many.windows(2).all(|w| w[0].id > w[1].id));
}

async fn withdrawal_gates(db: &Db) {
    let s = &*db.store;
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    let new = |user, asset, after_hold, created_ms| NewWithdrawal {
        user,
        asset: AssetId(asset),
        address: "rltc1qx".into(),
        amount: 1_000,
        fee: 10,
        after_hold,
        created_ms,
    };
    use WithdrawalStatus as W;
    let w1 = s.insert_withdrawal(&new(a, 2, W::Unconfirmed, 1)).await.unwrap();
    let w2 = s.insert_withdrawal(&new(b, 3, W::Review, 2)).await.unwrap();
    let w3 = s.insert_withdrawal(&new(a, 2, W::Held, 3)).await.unwrap();
    for bad in [W::Requested, W::Cancelling, W::Sending, W::Sent, W::Completed, W::Failed] {
        assert!(
            matches!(s.insert_withdrawal(&new(a, 2, bad, 4)).await, Err(StoreError::Invalid(_))),
            "{bad:?}"
        );
    }
    let got = s.withdrawal(a, w1).await.unwrap().unwrap();
    assert_eq!((got.status, got.after_hold), (W::Requested, W::Unconfirmed));
    assert_eq!(s.withdrawal(b, w2).await.unwrap().unwrap().after_hold, W::Review);

    // By id, whoever it belongs to.
    assert_eq!(s.withdrawal_by_id(w2).await.unwrap(), s.withdrawal(b, w2).await.unwrap());
    assert_eq!(s.withdrawal_by_id(w1).await.unwrap().unwrap().user, a);
    assert_eq!(s.withdrawal_by_id(9_999).await.unwrap(), None);

    // Compare-and-set: only from the status it has.
    assert!(!s.transition_withdrawal(w1, W::Held, W::Unconfirmed, None, 10).await.unwrap());
    assert!(s.transition_withdrawal(w1, W::Requested, W::Unconfirmed, None, 10).await.unwrap());
    assert!(!s.transition_withdrawal(w1, W::Requested, W::Held, None, 11).await.unwrap());
    assert!(s.transition_withdrawal(w2, W::Requested, W::Review, None, 12).await.unwrap());
    assert!(s.transition_withdrawal(w3, W::Requested, W::Held, None, 13).await.unwrap());
    assert!(!s.transition_withdrawal(9_999, W::Requested, W::Held, None, 13).await.unwrap());
    let moved = s.withdrawal(a, w1).await.unwrap().unwrap();
    assert_eq!((moved.status, moved.updated_ms, moved.reason), (W::Unconfirmed, 10, None));
    assert_eq!(moved.after_hold, W::Unconfirmed, "after_hold never changes");

    // Every gate status is open; the list of one status is any user's and asset's, oldest
    // first.
    let ids =
        |rows: Vec<bourse_store::WithdrawalRow>| rows.iter().map(|w| w.id).collect::<Vec<_>>();
    assert_eq!(ids(s.open_withdrawals(AssetId(2)).await.unwrap()), vec![w1, w3]);
    assert_eq!(ids(s.open_withdrawals(AssetId(3)).await.unwrap()), vec![w2]);
    let w4 = s.insert_withdrawal(&new(b, 4, W::Unconfirmed, 5)).await.unwrap();
    assert!(s.transition_withdrawal(w4, W::Requested, W::Unconfirmed, None, 14).await.unwrap());
    assert_eq!(ids(s.withdrawals_in_status(W::Unconfirmed, 10).await.unwrap()), vec![w1, w4]);
    assert_eq!(ids(s.withdrawals_in_status(W::Unconfirmed, 1).await.unwrap()), vec![w1]);
    assert!(s.withdrawals_in_status(W::Unconfirmed, 0).await.unwrap().is_empty());
    assert_eq!(ids(s.withdrawals_in_status(W::Review, 10).await.unwrap()), vec![w2]);
    assert_eq!(ids(s.withdrawals_in_status(W::Held, 10).await.unwrap()), vec![w3]);
    assert!(s.withdrawals_in_status(W::Cancelling, 10).await.unwrap().is_empty());

    // Cancelling: a reason is set when given and kept when not.
    assert!(
        s.transition_withdrawal(w1, W::Unconfirmed, W::Cancelling, Some("cancelled by you"), 20)
            .await
            .unwrap()
    );
    assert_eq!(ids(s.open_withdrawals(AssetId(2)).await.unwrap()), vec![w1, w3], "still open");
    assert_eq!(ids(s.withdrawals_in_status(W::Cancelling, 10).await.unwrap()), vec![w1]);
    assert!(s.transition_withdrawal(w1, W::Cancelling, W::Failed, None, 21).await.unwrap());
    let failed = s.withdrawal_by_id(w1).await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.reason.as_deref(), failed.updated_ms),
        (W::Failed, Some("cancelled by you"), 21)
    );
    assert_eq!(ids(s.open_withdrawals(AssetId(2)).await.unwrap()), vec![w3]);
    assert!(s.transition_withdrawal(w2, W::Review, W::Held, Some("approved"), 22).await.unwrap());
    assert_eq!(s.withdrawal_by_id(w2).await.unwrap().unwrap().reason.as_deref(), Some("approved"));

    // A row written without after_hold (before it existed) reads as `held`; a stored value
    // that is no status is corrupt.
    raw(
        &db.url,
        "INSERT INTO withdrawals (user_id, asset_id, address, amount, fee, status, created_ms, \
         updated_ms) VALUES ((SELECT id FROM users WHERE email = 'a@example.com'), 5, 'old', \
         '1', '0', 'held', 0, 0)",
    )
    .await;
    let old = s.open_withdrawals(AssetId(5)).await.unwrap();
    assert_eq!((old.len(), old[0].after_hold, old[0].status), (1, W::Held, W::Held));
    raw(&db.url, "UPDATE withdrawals SET after_hold = 'Held' WHERE asset_id = 5").await;
    match s.open_withdrawals(AssetId(5)).await {
        Err(StoreError::Corrupt { column, .. }) => assert_eq!(column, "after_hold"),
        other => panic!("expected Corrupt(after_hold), got {other:?}"),
    }
}

async fn withdrawal_transitions_are_compare_and_set_under_concurrency(db: &Db) {
    let s = &*db.store;
    let u = user(s, "c@example.com").await;
    const RACERS: usize = 4;
    for round in 0..10 {
        let id = s
            .insert_withdrawal(&NewWithdrawal {
                user: u,
                asset: AssetId(1),
                address: "x".into(),
                amount: 5,
                fee: 1,
                after_hold: WithdrawalStatus::Review,
                created_ms: round,
            })
            .await
            .unwrap();
        s.set_withdrawal_status(id, WithdrawalStatus::Review, None, None, round).await.unwrap();
        // An operator's approval and the user's cancellation race: one wins.
        let tasks: Vec<_> = (0..RACERS)
            .map(|i| {
                let store = db.store.clone();
                let to =
                    if i % 2 == 0 { WithdrawalStatus::Held } else { WithdrawalStatus::Cancelling };
                tokio::spawn(async move {
                    let moved = store
                        .transition_withdrawal(id, WithdrawalStatus::Review, to, None, 100)
                        .await
                        .unwrap();
                    (to, moved)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (to, moved) = task.await.unwrap();
            if moved {
                winners.push(to);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        assert_eq!(s.withdrawal(u, id).await.unwrap().unwrap().status, winners[0]);
    }
}

async fn projections_queue_mails_once(db: &Db) {
    let s = &*db.store;
    let mail = |i: usize| NewMail {
        to: format!("u{i}@example.com"),
        subject: format!("Withdrawal {i} sent ✓"),
        text: format!("Your withdrawal {i} was sent.\r\n— bourse"),
        html: format!("<p>Your withdrawal <b>{i}</b> was sent.</p>"),
        created_ms: 1_000 + i64::try_from(i).unwrap(),
    };
    let queued = |id, m: &NewMail| MailRow {
        id,
        to: m.to.clone(),
        subject: m.subject.clone(),
        text: m.text.clone(),
        html: m.html.clone(),
        created_ms: m.created_ms,
        attempts: 0,
        next_attempt_ms: m.created_ms,
        sent_ms: None,
        last_error: None,
    };
    let before = s.enqueue_mail(&mail(0)).await.unwrap();

    // A projection with one mail queues it, due at once.
    let one = Projection { from_seq: 1, to_seq: 1, mails: vec![mail(1)], ..Default::default() };
    s.apply_projection(&one).await.unwrap();
    let due = s.due_mails(i64::MAX, 10).await.unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[1], queued(due[1].id, &mail(1)));
    assert!(due[1].id > before);
    assert!(s.due_mails(1_000, 10).await.unwrap().iter().all(|m| m.created_ms <= 1_000));

    // Re-applied: refused, nothing more queued.
    assert!(matches!(s.apply_projection(&one).await, Err(StoreError::CursorMismatch { .. })));
    assert_eq!(s.mail_queue_len().await.unwrap(), 2);

    // A projection that fails half-way queues none of its mails.
    let (u, v) = (UserId(1), UserId(2));
    let failing = Projection {
        from_seq: 2,
        to_seq: 2,
        trades: vec![trade(1, 1, 2, u, 1, v, 2), trade(1, 1, 2, u, 1, v, 2)],
        mails: vec![mail(2)],
        ..Default::default()
    };
    assert!(matches!(s.apply_projection(&failing).await, Err(StoreError::Conflict(_))));
    assert_eq!(s.mail_queue_len().await.unwrap(), 2);
    assert_eq!(s.projected_seq().await.unwrap(), 1);

    // Many mails in one projection (more than one multi-row insert): all queued once, ids in
    // their order.
    let many: Vec<NewMail> = (10..80).map(mail).collect();
    let p = Projection { from_seq: 2, to_seq: 5, mails: many.clone(), ..Default::default() };
    s.apply_projection(&p).await.unwrap();
    assert!(matches!(s.apply_projection(&p).await, Err(StoreError::CursorMismatch { .. })));
    assert_eq!(s.mail_queue_len().await.unwrap(), 2 + 70);
    let due = s.due_mails(i64::MAX, LIST_LIMIT_MAX).await.unwrap();
    let got: Vec<MailRow> = due.into_iter().filter(|m| m.created_ms >= 1_010).collect();
    assert_eq!(got.len(), 70);
    assert!(got.windows(2).all(|w| w[0].id < w[1].id));
    for (row, m) in got.iter().zip(&many) {
        assert_eq!(*row, queued(row.id, m));
    }
}

// ---- the admin app ----------------------------------------------------------------------------

fn new_admin(email: &str, role: AdminRole, created_ms: i64) -> NewAdmin {
    NewAdmin {
        email: email.into(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1${email}"),
        role,
        totp_sealed: email.bytes().rev().collect(),
        created_ms,
    }
}

async fn admin(s: &dyn Store, email: &str) -> i64 {
    s.create_admin(&new_admin(email, AdminRole::Operator, 1)).await.unwrap()
}

/// The row a new admin reads back as.
fn admin_row(id: i64, n: &NewAdmin) -> AdminRow {
    AdminRow {
        id,
        email: n.email.clone(),
        password_hash: n.password_hash.clone(),
        role: n.role,
        totp_sealed: n.totp_sealed.clone(),
        totp_last_step: 0,
        created_ms: n.created_ms,
        disabled_ms: None,
    }
}

async fn admins_round_trip(db: &Db) {
    let s = &*db.store;
    assert!(s.admins().await.unwrap().is_empty());
    assert_eq!(s.admin(1).await.unwrap(), None);
    assert_eq!(s.admin_by_email("root@example.com").await.unwrap(), None);

    // Every role; the sealed secret's bytes read back exactly, whatever they are.
    let n1 = NewAdmin {
        totp_sealed: (0..=255).collect(),
        ..new_admin("root@example.com", AdminRole::Superadmin, 1_700_000_000_000)
    };
    let n2 = NewAdmin {
        password_hash: "ü «hash» 'q' \"qq\" \\".into(),
        totp_sealed: vec![0],
        ..new_admin("ops@example.com", AdminRole::Operator, 0)
    };
    let n3 = new_admin("Viewer@Example.com", AdminRole::Viewer, i64::MAX);
    let id1 = s.create_admin(&n1).await.unwrap();
    let id2 = s.create_admin(&n2).await.unwrap();
    let id3 = s.create_admin(&n3).await.unwrap();
    assert!(id1 < id2 && id2 < id3, "ids grow");
    let rows = vec![admin_row(id1, &n1), admin_row(id2, &n2), admin_row(id3, &n3)];
    for row in &rows {
        assert_eq!(s.admin(row.id).await.unwrap().as_ref(), Some(row));
        assert_eq!(s.admin_by_email(&row.email).await.unwrap().as_ref(), Some(row));
    }
    assert_eq!(s.admins().await.unwrap(), rows, "every admin, by id");
    assert_eq!(s.admin(id3 + 1).await.unwrap(), None);
    assert_eq!(s.admin_by_email("viewer@example.com").await.unwrap(), None, "stored as given");

    // A second admin with an e-mail that exists: refused, nothing written or changed.
    let again = new_admin("ops@example.com", AdminRole::Superadmin, 5);
    assert!(matches!(s.create_admin(&again).await, Err(StoreError::Conflict("admin email"))));
    assert_eq!(s.admins().await.unwrap(), rows);

    // Admins are not users: neither sees the other's e-mails.
    assert_eq!(s.user_by_email("root@example.com").await.unwrap(), None);
    let u = user(s, "root@example.com").await;
    assert_eq!(s.user(u).await.unwrap().unwrap().email, "root@example.com");
    assert_eq!(s.admin_by_email("root@example.com").await.unwrap().unwrap().id, id1);
    assert_eq!(s.count_users().await.unwrap(), 1);

    // A stored role that is no role is corrupt.
    raw(&db.url, "UPDATE admins SET role = 'Superadmin' WHERE email = 'root@example.com'").await;
    match s.admin(id1).await {
        Err(StoreError::Corrupt { column, value }) => {
            assert_eq!((column, value.as_str()), ("role", "Superadmin"));
        }
        other => panic!("expected Corrupt(role), got {other:?}"),
    }
    assert!(matches!(s.admins().await, Err(StoreError::Corrupt { column: "role", .. })));
    assert_eq!(s.admin(id2).await.unwrap().as_ref(), Some(&rows[1]), "the others still read");
}

async fn admin_totp_steps(db: &Db) {
    let s = &*db.store;
    let a = admin(s, "a@admin.example").await;
    let b = admin(s, "b@admin.example").await;
    let u = user(s, "a@admin.example").await;
    let step = |id| async move { s.admin(id).await.unwrap().unwrap().totp_last_step };
    assert_eq!(step(a).await, 0);

    // Only forward, each step once.
    assert!(!s.use_admin_totp_step(a, 0).await.unwrap(), "not after the initial 0");
    assert!(!s.use_admin_totp_step(a, -1).await.unwrap());
    assert!(s.use_admin_totp_step(a, 1_000).await.unwrap());
    assert!(!s.use_admin_totp_step(a, 1_000).await.unwrap(), "the same step twice");
    assert!(!s.use_admin_totp_step(a, 999).await.unwrap(), "never back");
    assert!(s.use_admin_totp_step(a, 1_001).await.unwrap());
    assert_eq!(step(a).await, 1_001);

    // Per admin, and apart from the users' steps.
    assert_eq!(step(b).await, 0, "b untouched");
    assert!(s.use_admin_totp_step(b, 1_000).await.unwrap(), "b's own steps");
    assert!(!s.use_admin_totp_step(b, 1_000).await.unwrap());
    assert_eq!(step(a).await, 1_001);
    assert_eq!(s.user(u).await.unwrap().unwrap().totp_last_step, 0, "a user's are apart");
    assert!(s.use_totp_step(u, 5_000).await.unwrap());
    assert_eq!(step(a).await, 1_001);
    assert!(s.use_admin_totp_step(a, i64::MAX).await.unwrap());
    assert!(!s.use_admin_totp_step(a, i64::MAX).await.unwrap());
    assert_eq!(step(a).await, i64::MAX);
    assert!(!s.use_admin_totp_step(9_999, 1).await.unwrap(), "no such admin");

    // Of concurrent calls with the same step, one is accepted.
    for n in 2_000..2_010i64 {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let store = db.store.clone();
                tokio::spawn(async move { store.use_admin_totp_step(b, n).await.unwrap() })
            })
            .collect();
        let mut accepted = 0;
        for task in tasks {
            accepted += usize::from(task.await.unwrap());
        }
        assert_eq!(accepted, 1, "step {n}");
    }
    assert_eq!(step(b).await, 2_009);
}

async fn admin_sessions(db: &Db) {
    let s = &*db.store;
    let a = admin(s, "a@admin.example").await;
    let b = admin(s, "b@admin.example").await;
    let new = |admin, token_hash: &str, created_ms, ip: &str| NewAdminSession {
        admin,
        token_hash: token_hash.into(),
        created_ms,
        totp_ms: created_ms - 1,
        ip: ip.into(),
        user_agent: format!("Mozilla/5.0 «{token_hash}» ✓"),
    };
    let row = |id, n: &NewAdminSession| AdminSessionRow {
        id,
        admin: n.admin,
        created_ms: n.created_ms,
        last_seen_ms: n.created_ms,
        totp_ms: n.totp_ms,
        ip: n.ip.clone(),
        user_agent: n.user_agent.clone(),
    };
    assert_eq!(s.live_admin_session("h1").await.unwrap(), None);

    let n1 = new(a, "h1", 1_000, "203.0.113.7");
    let n2 = new(a, "h2", 2_000, "2001:db8::1");
    let n3 = new(b, "h3", 3_000, "");
    let id1 = s.insert_admin_session(&n1).await.unwrap();
    let id2 = s.insert_admin_session(&n2).await.unwrap();
    let id3 = s.insert_admin_session(&n3).await.unwrap();
    assert!(id1 < id2 && id2 < id3);
    // Found by its token hash only, field for field.
    assert_eq!(s.live_admin_session("h1").await.unwrap(), Some(row(id1, &n1)));
    assert_eq!(s.live_admin_session("h2").await.unwrap(), Some(row(id2, &n2)));
    assert_eq!(s.live_admin_session("h3").await.unwrap(), Some(row(id3, &n3)));
    assert_eq!(s.live_admin_session("H1").await.unwrap(), None);
    assert_eq!(s.live_admin_session("").await.unwrap(), None);
    assert!(matches!(
        s.insert_admin_session(&new(b, "h1", 4_000, "x")).await,
        Err(StoreError::Conflict("admin session"))
    ));
    assert_eq!(s.live_admin_session("h1").await.unwrap(), Some(row(id1, &n1)), "unchanged");

    // Touching: last seen always; the time of the last code only when one is given.
    assert!(s.touch_admin_session(id1, 1_500, None).await.unwrap());
    let touched = AdminSessionRow { last_seen_ms: 1_500, ..row(id1, &n1) };
    assert_eq!(s.live_admin_session("h1").await.unwrap(), Some(touched.clone()));
    assert!(s.touch_admin_session(id1, 1_600, Some(1_590)).await.unwrap());
    let coded = AdminSessionRow { last_seen_ms: 1_600, totp_ms: 1_590, ..touched };
    assert_eq!(s.live_admin_session("h1").await.unwrap(), Some(coded.clone()));
    assert!(s.touch_admin_session(id1, 1_700, None).await.unwrap());
    let kept = AdminSessionRow { last_seen_ms: 1_700, ..coded };
    assert_eq!(s.live_admin_session("h1").await.unwrap(), Some(kept.clone()), "code time kept");
    assert_eq!(s.live_admin_session("h2").await.unwrap(), Some(row(id2, &n2)), "only that one");
    assert!(!s.touch_admin_session(9_999, 1_700, None).await.unwrap(), "no such session");

    // Ending: not live, cannot be touched nor ended again; the others stay live.
    assert!(s.end_admin_session(id1, 1_800).await.unwrap());
    assert_eq!(s.live_admin_session("h1").await.unwrap(), None);
    assert!(!s.touch_admin_session(id1, 1_900, None).await.unwrap());
    assert!(!s.touch_admin_session(id1, 1_900, Some(1_900)).await.unwrap());
    assert!(!s.end_admin_session(id1, 2_000).await.unwrap(), "already ended");
    assert_eq!(s.live_admin_session("h1").await.unwrap(), None, "never comes back");
    assert!(!s.end_admin_session(9_999, 2_000).await.unwrap());
    assert_eq!(s.live_admin_session("h2").await.unwrap(), Some(row(id2, &n2)));
    assert!(matches!(
        s.insert_admin_session(&new(a, "h1", 4_000, "x")).await,
        Err(StoreError::Conflict("admin session"))
    ));

    // A disabled admin's sessions stop being live (there is no method to disable one yet: the
    // column is set directly). Touching is the caller's business once it is not live.
    raw(&db.url, "UPDATE admins SET disabled_ms = 5000 WHERE email = 'a@admin.example'").await;
    assert_eq!(s.admin(a).await.unwrap().unwrap().disabled_ms, Some(5_000));
    assert_eq!(s.live_admin_session("h2").await.unwrap(), None);
    assert_eq!(s.live_admin_session("h3").await.unwrap(), Some(row(id3, &n3)), "b's still live");
    let id4 = s.insert_admin_session(&new(a, "h4", 6_000, "x")).await.unwrap();
    assert!(id4 > id3);
    assert_eq!(s.live_admin_session("h4").await.unwrap(), None, "a new one neither");
    raw(&db.url, "UPDATE admins SET disabled_ms = NULL WHERE email = 'a@admin.example'").await;
    assert_eq!(s.live_admin_session("h2").await.unwrap(), Some(row(id2, &n2)));
    assert_eq!(s.live_admin_session("h1").await.unwrap(), None, "ended stays ended");
}

async fn admin_audit_log(db: &Db) {
    let s = &*db.store;
    let a = admin(s, "a@admin.example").await;
    let b = admin(s, "b@admin.example").await;
    let ids = |rows: &[AdminActionRow]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    assert!(s.admin_actions(None, 10).await.unwrap().is_empty());

    let action = |admin, i: i64| NewAdminAction {
        admin,
        // Not in id order (a clock that steps back): the log is ordered by id.
        at_ms: if i == 1 { i64::MAX } else { 1_700_000_000_000 - i },
        ip: ["203.0.113.7", "2001:db8::1", ""][usize::try_from(i % 3).unwrap()].into(),
        action: ["login", "withdrawal.approve", "user.lock"][usize::try_from(i % 3).unwrap()]
            .into(),
        target: if i % 2 == 0 { String::new() } else { format!("withdrawal {i}") },
        reason: if i % 4 == 0 { String::new() } else { format!("ticket «{i}» 'q' \"qq\" \\") },
        detail: format!("{{\"n\":{i}}}"),
    };
    let mut all = Vec::new();
    let mut last = 0;
    for i in 0..10 {
        let who = if i % 3 == 2 { b } else { a };
        let new = action(who, i);
        let id = s.record_admin_action(&new).await.unwrap();
        assert!(id > last, "ids grow");
        last = id;
        all.push(AdminActionRow {
            id,
            admin: who,
            admin_email: if who == a { "a@admin.example" } else { "b@admin.example" }.into(),
            at_ms: new.at_ms,
            ip: new.ip,
            action: new.action,
            target: new.target,
            reason: new.reason,
            detail: new.detail,
        });
    }
    all.reverse();

    // Newest first, field for field, with each admin's e-mail.
    assert_eq!(s.admin_actions(None, 100).await.unwrap(), all);
    // The limit, and `before` exclusive.
    assert_eq!(s.admin_actions(None, 3).await.unwrap(), all[..3]);
    assert!(s.admin_actions(None, 0).await.unwrap().is_empty());
    let page = s.admin_actions(Some(all[2].id), 4).await.unwrap();
    assert_eq!(page, all[3..7]);
    let rest = s.admin_actions(Some(page[3].id), 100).await.unwrap();
    assert_eq!(rest, all[7..]);
    assert!(s.admin_actions(Some(all[9].id), 100).await.unwrap().is_empty(), "before the first");
    assert!(s.admin_actions(Some(i64::MIN), 100).await.unwrap().is_empty());
    assert_eq!(ids(&s.admin_actions(Some(i64::MAX), 100).await.unwrap()), ids(&all));
    assert_eq!(s.admin_actions(Some(all[0].id + 1), 1).await.unwrap(), all[..1]);

    // An unknown admin cannot be named in the log; nothing is written.
    let ghost = action(9_999, 1);
    assert!(s.record_admin_action(&ghost).await.is_err());
    assert_eq!(s.admin_actions(None, 100).await.unwrap(), all);

    // The list is capped at LIST_LIMIT_MAX, newest first.
    raw(
        &db.url,
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1001) \
         INSERT INTO admin_actions (admin_id, at_ms, ip, action, target, reason, detail) \
         SELECT (SELECT id FROM admins WHERE email = 'b@admin.example'), i, '', 'bulk', '', '', '' \
         FROM n",
    )
    .await;
    let many = s.admin_actions(None, u32::MAX).await.unwrap();
    assert_eq!(many.len(), usize::try_from(LIST_LIMIT_MAX).unwrap());
    assert_eq!((many[0].at_ms, many[0].admin_email.as_str()), (1001, "b@admin.example"));
    assert!(many.windows(2).all(|w| w[0].id > w[1].id));
}

/// A withdrawal (approvals refer to one).
async fn withdrawal_in_review(s: &dyn Store, user: UserId, created_ms: i64) -> i64 {
    let id = s
        .insert_withdrawal(&NewWithdrawal {
            user,
            asset: AssetId(1),
            address: "bc1qx".into(),
            amount: 5,
            fee: 1,
            after_hold: WithdrawalStatus::Review,
            created_ms,
        })
        .await
        .unwrap();
    s.set_withdrawal_status(id, WithdrawalStatus::Review, None, None, created_ms).await.unwrap();
    id
}

async fn withdrawal_approvals(db: &Db) {
    let s = &*db.store;
    let u = user(s, "u@example.com").await;
    let w1 = withdrawal_in_review(s, u, 1).await;
    let w2 = withdrawal_in_review(s, u, 2).await;
    let a = admin(s, "a@admin.example").await;
    let b = admin(s, "b@admin.example").await;
    let c = admin(s, "c@admin.example").await;
    assert!(s.withdrawal_approvals(w1).await.unwrap().is_empty());

    // Each approval returns every approver so far, in the order they approved (this one last,
    // even when the clock steps back).
    assert_eq!(s.approve_withdrawal(w1, b, 100).await.unwrap(), vec![b]);
    assert_eq!(s.approve_withdrawal(w1, a, 90).await.unwrap(), vec![b, a]);
    assert_eq!(s.withdrawal_approvals(w1).await.unwrap(), vec![b, a]);

    // The same admin twice: a conflict, nothing changed.
    for at in [100, 200] {
        assert!(matches!(
            s.approve_withdrawal(w1, b, at).await,
            Err(StoreError::Conflict("withdrawal approval"))
        ));
    }
    assert_eq!(s.withdrawal_approvals(w1).await.unwrap(), vec![b, a]);
    assert_eq!(s.approve_withdrawal(w1, c, 300).await.unwrap(), vec![b, a, c]);

    // Another withdrawal's approvals are its own.
    assert!(s.withdrawal_approvals(w2).await.unwrap().is_empty());
    assert_eq!(s.approve_withdrawal(w2, b, 400).await.unwrap(), vec![b], "b again, elsewhere");
    assert_eq!(s.approve_withdrawal(w2, c, 500).await.unwrap(), vec![b, c]);
    assert_eq!(s.withdrawal_approvals(w1).await.unwrap(), vec![b, a, c]);
    assert_eq!(s.withdrawal_approvals(w2).await.unwrap(), vec![b, c]);

    // Only withdrawals and admins that exist; nothing written otherwise.
    assert!(s.withdrawal_approvals(9_999).await.unwrap().is_empty());
    assert!(s.approve_withdrawal(9_999, a, 600).await.is_err());
    assert!(s.approve_withdrawal(w2, 9_999, 600).await.is_err());
    assert!(s.withdrawal_approvals(9_999).await.unwrap().is_empty());
    assert_eq!(s.withdrawal_approvals(w2).await.unwrap(), vec![b, c]);
}

async fn withdrawal_approvals_are_serialized_under_concurrency(db: &Db) {
    let s = &*db.store;
    let u = user(s, "u@example.com").await;
    const ADMINS: usize = 4;
    let mut admins = Vec::new();
    for i in 0..ADMINS {
        admins.push(admin(s, &format!("{i}@admin.example")).await);
    }
    for round in 0..5 {
        let w = withdrawal_in_review(s, u, round).await;
        // Every admin approves at once: each sees every approval before its own, so exactly one
        // of them sees them all (the one that would release the withdrawal).
        let tasks: Vec<_> = admins
            .iter()
            .map(|&a| {
                let store = db.store.clone();
                tokio::spawn(async move { (a, store.approve_withdrawal(w, a, 7).await.unwrap()) })
            })
            .collect();
        let mut seen = Vec::new();
        for task in tasks {
            let (a, approvers) = task.await.unwrap();
            assert_eq!(approvers.last(), Some(&a), "round {round}: this one last");
            seen.push(approvers);
        }
        seen.sort_by_key(Vec::len);
        assert_eq!(seen.iter().map(Vec::len).collect::<Vec<_>>(), (1..=ADMINS).collect::<Vec<_>>());
        assert!(seen.windows(2).all(|p| p[1].starts_with(&p[0])), "round {round}: {seen:?}");
        let all = s.withdrawal_approvals(w).await.unwrap();
        assert_eq!(all, seen[ADMINS - 1]);
        assert_eq!(all.iter().copied().collect::<HashSet<_>>().len(), ADMINS);

        // One admin approving twice at once: once.
        let w = withdrawal_in_review(s, u, round).await;
        let (x, y) = tokio::join!(
            s.approve_withdrawal(w, admins[0], 8),
            s.approve_withdrawal(w, admins[0], 8)
        );
        let ok = [&x, &y].iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "round {round}: {x:?} {y:?}");
        assert!(
            [x, y]
                .into_iter()
                .any(|r| matches!(r, Err(StoreError::Conflict("withdrawal approval"))))
        );
        assert_eq!(s.withdrawal_approvals(w).await.unwrap(), vec![admins[0]]);
    }
}

// ---- the admin app's money --------------------------------------------------------------------

/// The row a new adjustment reads back as (pending, undecided).
fn pending_adjustment(id: i64, n: &NewAdjustment, proposer_email: &str) -> AdjustmentRow {
    AdjustmentRow {
        id,
        user: n.user,
        asset: n.asset,
        delta: n.delta,
        reason: n.reason.clone(),
        proposed_by: n.proposed_by,
        proposed_by_email: proposer_email.into(),
        proposed_ms: n.proposed_ms,
        status: AdjustmentStatus::Pending,
        decided_by: None,
        decided_by_email: None,
        decided_ms: None,
        outcome: String::new(),
        finished_ms: None,
    }
}

async fn adjustments_lifecycle(db: &Db) {
    let s = &*db.store;
    let u = user(s, "u@example.com").await;
    let a = admin(s, "a@admin.example").await;
    let b = admin(s, "b@admin.example").await;
    let c = admin(s, "c@admin.example").await;
    let ids = |rows: &[AdjustmentRow]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    let list = |status, before, limit| s.adjustments(status, before, limit);
    let get = |id| async move { s.adjustment(id).await.unwrap().unwrap() };
    assert!(list(None, None, 10).await.unwrap().is_empty());
    assert_eq!(s.adjustment(1).await.unwrap(), None);

    // Big deltas either way, exactly.
    let n1 = NewAdjustment {
        user: u,
        asset: AssetId(2),
        delta: -i128::from(u64::MAX) * 1_000_000_007,
        reason: "ticket «17»: double credit 'x' \"y\" \\".into(),
        proposed_by: a,
        proposed_ms: 1_000,
    };
    let n2 = NewAdjustment { delta: i128::MAX, reason: "goodwill".into(), ..n1.clone() };
    let id1 = s.insert_adjustment(&n1).await.unwrap();
    let id2 = s.insert_adjustment(&n2).await.unwrap();
    assert!(id2 > id1);
    let row1 = pending_adjustment(id1, &n1, "a@admin.example");
    let row2 = pending_adjustment(id2, &n2, "a@admin.example");
    assert_eq!(get(id1).await, row1);
    assert_eq!(get(id2).await, row2);

    // A delta of 0, an unknown user or admin: nothing written.
    assert!(matches!(
        s.insert_adjustment(&NewAdjustment { delta: 0, ..n1.clone() }).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(
        s.insert_adjustment(&NewAdjustment { proposed_by: 9_999, ..n1.clone() }).await.is_err()
    );
    assert!(
        s.insert_adjustment(&NewAdjustment { user: UserId(9_999), ..n1.clone() }).await.is_err()
    );
    assert_eq!(list(None, None, 10).await.unwrap(), vec![row2.clone(), row1.clone()]);

    // Lists: newest first, by status, `before` exclusive, limited.
    assert_eq!(
        list(Some(AdjustmentStatus::Pending), None, 10).await.unwrap(),
        vec![row2.clone(), row1.clone()]
    );
    assert!(list(Some(AdjustmentStatus::Approved), None, 10).await.unwrap().is_empty());
    assert_eq!(list(None, None, 1).await.unwrap(), vec![row2.clone()]);
    assert!(list(None, None, 0).await.unwrap().is_empty());
    assert_eq!(list(None, Some(id2), 10).await.unwrap(), vec![row1.clone()]);
    assert_eq!(
        list(Some(AdjustmentStatus::Pending), Some(id2), 10).await.unwrap(),
        vec![row1.clone()]
    );
    assert!(list(None, Some(id1), 10).await.unwrap().is_empty());
    assert!(list(None, Some(i64::MIN), 10).await.unwrap().is_empty());

    // The proposer cannot approve their own: false, the row unchanged.
    assert!(!s.decide_adjustment(id1, a, true, "mine", 1_100).await.unwrap());
    assert_eq!(get(id1).await, row1);

    // Another admin approves (the note is not kept); then nobody decides it again.
    assert!(s.decide_adjustment(id1, b, true, "checked", 1_200).await.unwrap());
    let approved = AdjustmentRow {
        status: AdjustmentStatus::Approved,
        decided_by: Some(b),
        decided_by_email: Some("b@admin.example".into()),
        decided_ms: Some(1_200),
        ..row1.clone()
    };
    assert_eq!(get(id1).await, approved);
    assert!(!s.decide_adjustment(id1, b, true, "again", 1_300).await.unwrap());
    assert!(!s.decide_adjustment(id1, c, true, "me too", 1_300).await.unwrap());
    assert!(!s.decide_adjustment(id1, c, false, "too late", 1_300).await.unwrap());
    assert!(!s.decide_adjustment(id1, a, false, "changed my mind", 1_300).await.unwrap());
    assert_eq!(get(id1).await, approved);
    assert_eq!(
        list(Some(AdjustmentStatus::Approved), None, 10).await.unwrap(),
        vec![approved.clone()]
    );
    assert_eq!(list(Some(AdjustmentStatus::Pending), None, 10).await.unwrap(), vec![row2.clone()]);

    // Finished once, from approved only.
    assert!(!s.finish_adjustment(id2, true, "seq 1", 1_400).await.unwrap(), "still pending");
    assert_eq!(get(id2).await, row2);
    assert!(s.finish_adjustment(id1, true, "seq 4242", 1_500).await.unwrap());
    let applied = AdjustmentRow {
        status: AdjustmentStatus::Applied,
        outcome: "seq 4242".into(),
        finished_ms: Some(1_500),
        ..approved.clone()
    };
    assert_eq!(get(id1).await, applied);
    assert!(!s.finish_adjustment(id1, true, "seq 4243", 1_600).await.unwrap());
    assert!(!s.finish_adjustment(id1, false, "refused", 1_600).await.unwrap());
    assert!(!s.decide_adjustment(id1, c, false, "no", 1_600).await.unwrap());
    assert_eq!(get(id1).await, applied);

    // Rejected, by its proposer too, with the note as its outcome; then final.
    assert!(s.decide_adjustment(id2, a, false, "typo in the amount", 1_700).await.unwrap());
    let rejected = AdjustmentRow {
        status: AdjustmentStatus::Rejected,
        decided_by: Some(a),
        decided_by_email: Some("a@admin.example".into()),
        decided_ms: Some(1_700),
        outcome: "typo in the amount".into(),
        ..row2.clone()
    };
    assert_eq!(get(id2).await, rejected);
    assert!(!s.decide_adjustment(id2, b, true, "", 1_800).await.unwrap());
    assert!(!s.decide_adjustment(id2, b, false, "", 1_800).await.unwrap());
    assert!(!s.finish_adjustment(id2, true, "seq 1", 1_800).await.unwrap());
    assert_eq!(get(id2).await, rejected);

    // Refused by the engine.
    let n3 = NewAdjustment { delta: -1, proposed_by: c, proposed_ms: 2_000, ..n1.clone() };
    let id3 = s.insert_adjustment(&n3).await.unwrap();
    assert!(s.decide_adjustment(id3, a, true, "", 2_100).await.unwrap());
    assert!(s.finish_adjustment(id3, false, "insufficient funds", 2_200).await.unwrap());
    let refused = AdjustmentRow {
        status: AdjustmentStatus::Refused,
        decided_by: Some(a),
        decided_by_email: Some("a@admin.example".into()),
        decided_ms: Some(2_100),
        outcome: "insufficient funds".into(),
        finished_ms: Some(2_200),
        ..pending_adjustment(id3, &n3, "c@admin.example")
    };
    assert_eq!(get(id3).await, refused);
    assert!(!s.finish_adjustment(id3, true, "seq 9", 2_300).await.unwrap());
    assert_eq!(get(id3).await, refused);

    // Each status lists its own.
    let by = |status| async move { ids(&list(Some(status), None, 10).await.unwrap()) };
    assert!(by(AdjustmentStatus::Pending).await.is_empty());
    assert!(by(AdjustmentStatus::Approved).await.is_empty());
    assert_eq!(by(AdjustmentStatus::Applied).await, vec![id1]);
    assert_eq!(by(AdjustmentStatus::Rejected).await, vec![id2]);
    assert_eq!(by(AdjustmentStatus::Refused).await, vec![id3]);
    assert_eq!(list(None, None, 10).await.unwrap(), vec![refused, rejected, applied]);

    // Unknown ids change nothing; an unknown approver is a database error.
    assert!(!s.decide_adjustment(9_999, b, true, "", 1).await.unwrap());
    assert!(!s.decide_adjustment(9_999, b, false, "", 1).await.unwrap());
    assert!(!s.finish_adjustment(9_999, true, "", 1).await.unwrap());
    let id4 = s.insert_adjustment(&n1).await.unwrap();
    assert!(s.decide_adjustment(id4, 9_999, true, "", 1).await.is_err());
    assert_eq!(get(id4).await, pending_adjustment(id4, &n1, "a@admin.example"));

    // A stored delta that does not parse is corrupt.
    raw(&db.url, "UPDATE balance_adjustments SET delta = '+5' WHERE status = 'refused'").await;
    assert!(matches!(s.adjustment(id3).await, Err(StoreError::Corrupt { column: "delta", .. })));
    raw(&db.url, "UPDATE balance_adjustments SET delta = '-1', status = 'done' WHERE delta = '+5'")
        .await;
    assert!(matches!(s.adjustment(id3).await, Err(StoreError::Corrupt { column: "status", .. })));
    raw(&db.url, "UPDATE balance_adjustments SET status = 'refused' WHERE status = 'done'").await;

    // Lists are capped at LIST_LIMIT_MAX.
    raw(
        &db.url,
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1001) \
         INSERT INTO balance_adjustments \
         (user_id, asset_id, delta, reason, proposed_by, proposed_ms, status) \
         SELECT (SELECT id FROM users WHERE email = 'u@example.com'), 1, '7', 'bulk', \
         (SELECT id FROM admins WHERE email = 'b@admin.example'), i, 'pending' FROM n",
    )
    .await;
    for status in [None, Some(AdjustmentStatus::Pending)] {
        let many = list(status, None, u32::MAX).await.unwrap();
        assert_eq!(many.len(), usize::try_from(LIST_LIMIT_MAX).unwrap());
        assert_eq!((many[0].proposed_ms, many[0].delta), (1001, 7));
        assert!(many.windows(2).all(|w| w[0].id > w[1].id));
    }
}

async fn adjustment_decisions_are_compare_and_set_under_concurrency(db: &Db) {
    let s = &*db.store;
    let u = user(s, "u@example.com").await;
    let a = admin(s, "a@admin.example").await;
    let b = admin(s, "b@admin.example").await;
    let c = admin(s, "c@admin.example").await;
    let new = |round| NewAdjustment {
        user: u,
        asset: AssetId(1),
        delta: 5,
        reason: format!("round {round}"),
        proposed_by: a,
        proposed_ms: round,
    };
    for round in 0..10 {
        // Two admins approve at once: exactly one wins, and the row names the winner.
        let id = s.insert_adjustment(&new(round)).await.unwrap();
        let (x, y) = tokio::join!(
            s.decide_adjustment(id, b, true, "", 100),
            s.decide_adjustment(id, c, true, "", 101)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x ^ y, "round {round}: {x} {y}");
        let row = s.adjustment(id).await.unwrap().unwrap();
        assert_eq!(row.status, AdjustmentStatus::Approved);
        assert_eq!(row.decided_by, Some(if x { b } else { c }));
        assert_eq!(row.decided_ms, Some(if x { 100 } else { 101 }));

        // Approval and rejection race: one wins.
        let id = s.insert_adjustment(&new(round)).await.unwrap();
        let (x, y) = tokio::join!(
            s.decide_adjustment(id, b, true, "", 200),
            s.decide_adjustment(id, a, false, "no", 201)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x ^ y, "round {round}: {x} {y}");
        let row = s.adjustment(id).await.unwrap().unwrap();
        let (status, outcome) =
            if x { (AdjustmentStatus::Approved, "") } else { (AdjustmentStatus::Rejected, "no") };
        assert_eq!((row.status, row.outcome.as_str()), (status, outcome));

        // The proposer and another admin approve at once: only the other one can.
        let id = s.insert_adjustment(&new(round)).await.unwrap();
        let (x, y) = tokio::join!(
            s.decide_adjustment(id, a, true, "", 300),
            s.decide_adjustment(id, c, true, "", 301)
        );
        assert_eq!((x.unwrap(), y.unwrap()), (false, true), "round {round}");
        assert_eq!(s.adjustment(id).await.unwrap().unwrap().decided_by, Some(c));

        // Finished at once twice: once.
        let (x, y) = tokio::join!(
            s.finish_adjustment(id, true, "seq 1", 400),
            s.finish_adjustment(id, false, "refused", 401)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x ^ y, "round {round}: {x} {y}");
        let row = s.adjustment(id).await.unwrap().unwrap();
        let (status, outcome) = if x {
            (AdjustmentStatus::Applied, "seq 1")
        } else {
            (AdjustmentStatus::Refused, "refused")
        };
        assert_eq!((row.status, row.outcome.as_str()), (status, outcome));
    }
}

const HOUR: i64 = 3_600_000;

fn fees(asset: u32, hour_ms: i64, trade_fees: u128, withdrawal_fees: u128) -> FeeRevenueRow {
    FeeRevenueRow { asset: AssetId(asset), hour_ms, trade_fees, withdrawal_fees }
}

async fn fee_revenue_upserts_and_ranges(db: &Db) {
    let s = &*db.store;
    assert!(s.latest_fee_revenue().await.unwrap().is_empty());
    assert!(s.fee_revenue(i64::MIN, i64::MAX).await.unwrap().is_empty());

    let first = vec![
        fees(1, 0, 10, 0),
        fees(1, HOUR, 11, 1),
        fees(2, 0, u128::MAX, u128::MAX - 1),
        fees(2, -HOUR, 5, 6),
        fees(3, 5 * HOUR, 0, 0),
        // The same key again in one projection: the last one wins.
        fees(1, HOUR, 12, 2),
    ];
    project(s, |p| p.fee_revenue = first.clone()).await;
    let all = s.fee_revenue(i64::MIN, i64::MAX).await.unwrap();
    assert_eq!(
        all,
        vec![
            fees(2, -HOUR, 5, 6),
            fees(1, 0, 10, 0),
            fees(2, 0, u128::MAX, u128::MAX - 1),
            fees(1, HOUR, 12, 2),
            fees(3, 5 * HOUR, 0, 0),
        ],
        "by (hour, asset)"
    );

    // Upserted as the hour goes on (full rows), with candles and the rest in one projection.
    project(s, |p| {
        p.fee_revenue = vec![fees(1, HOUR, 20, 3), fees(1, 2 * HOUR, 1, 0)];
        p.candles = vec![candle(1, Interval::H1, HOUR, 9)];
    })
    .await;
    assert_eq!(s.latest_candles().await.unwrap(), vec![candle(1, Interval::H1, HOUR, 9)]);
    assert_eq!(
        s.latest_fee_revenue().await.unwrap(),
        vec![
            fees(1, 2 * HOUR, 1, 0),
            fees(2, 0, u128::MAX, u128::MAX - 1),
            fees(3, 5 * HOUR, 0, 0)
        ],
        "the newest row of each asset, by asset"
    );

    // Bounds: from inclusive, to exclusive.
    let range = |from, to| s.fee_revenue(from, to);
    assert_eq!(
        range(0, 2 * HOUR).await.unwrap(),
        vec![fees(1, 0, 10, 0), fees(2, 0, u128::MAX, u128::MAX - 1), fees(1, HOUR, 20, 3)]
    );
    assert_eq!(
        range(HOUR, 2 * HOUR + 1).await.unwrap(),
        vec![fees(1, HOUR, 20, 3), fees(1, 2 * HOUR, 1, 0)]
    );
    assert_eq!(range(HOUR + 1, 2 * HOUR).await.unwrap(), vec![]);
    assert_eq!(range(-HOUR, 0).await.unwrap(), vec![fees(2, -HOUR, 5, 6)]);
    assert!(range(HOUR, HOUR).await.unwrap().is_empty());
    assert!(range(2 * HOUR, HOUR).await.unwrap().is_empty());
    assert_eq!(range(5 * HOUR, i64::MAX).await.unwrap(), vec![fees(3, 5 * HOUR, 0, 0)]);
    assert_eq!(range(i64::MIN, -HOUR + 1).await.unwrap(), vec![fees(2, -HOUR, 5, 6)]);

    // An hour_ms that does not start an hour: Invalid, nothing of the projection written.
    let seq = s.projected_seq().await.unwrap() + 1;
    let bad = Projection {
        from_seq: seq,
        to_seq: seq,
        fee_revenue: vec![fees(9, 0, 1, 1), fees(1, HOUR + 1, 1, 1)],
        candles: vec![candle(1, Interval::H1, 2 * HOUR, 3)],
        ..Default::default()
    };
    assert!(matches!(s.apply_projection(&bad).await, Err(StoreError::Invalid(_))));
    assert_eq!(s.projected_seq().await.unwrap(), seq - 1);
    assert_eq!(s.latest_candles().await.unwrap(), vec![candle(1, Interval::H1, HOUR, 9)]);
    assert_eq!(s.fee_revenue(i64::MIN, i64::MAX).await.unwrap().len(), 6);

    // A stored sum that does not parse is corrupt.
    raw(&db.url, "UPDATE fee_revenue SET withdrawal_fees = '-1' WHERE asset_id = 3").await;
    assert!(matches!(
        s.latest_fee_revenue().await,
        Err(StoreError::Corrupt { column: "withdrawal_fees", .. })
    ));
    assert_eq!(range(0, HOUR).await.unwrap().len(), 2, "the others still read");
}

/// A completed withdrawal of `asset` with `fee`, completed at `updated_ms`.
async fn completed_withdrawal(s: &dyn Store, user: UserId, asset: u32, fee: u128, at: i64) -> i64 {
    let id = s
        .insert_withdrawal(&NewWithdrawal {
            user,
            asset: AssetId(asset),
            address: "bc1qx".into(),
            amount: 1_000,
            fee,
            after_hold: WithdrawalStatus::Held,
            created_ms: at - 10,
        })
        .await
        .unwrap();
    s.set_withdrawal_status(id, WithdrawalStatus::Completed, Some("txid"), None, at).await.unwrap();
    id
}

async fn fee_revenue_backfill(db: &Db) {
    let s = &*db.store;
    let u = user(s, "u@example.com").await;
    let v = user(s, "v@example.com").await;
    let big = u128::from(u64::MAX) * 1_000_000; // above u64
    let t = |market, id, time_ms, maker_fee, taker_fee| TradeRow {
        time_ms,
        maker_fee,
        taker_fee,
        ..trade(market, id, 1, u, 1, v, 2)
    };
    // Market 1 is quoted in asset 10, market 2 in asset 20; market 3 is not in the map.
    let quote_of = HashMap::from([(MarketId(1), AssetId(10)), (MarketId(2), AssetId(20))]);
    // More trades in market 1 than a page of the backfill's reads: one per 10 s from hour 3 on,
    // maker fee 1 and taker fee 2 each (360 a hour).
    const MANY: u64 = 10_050;
    let many: Vec<TradeRow> = (1..=MANY)
        .map(|i| t(1, 100 + i, 3 * HOUR + i64::try_from(i - 1).unwrap() * 10_000, 1, 2))
        .collect();
    project(s, |p| {
        p.trades = vec![
            t(1, 1, 0, big, big),
            t(1, 2, HOUR - 1, 1, 2),
            t(1, 3, HOUR, 0, 0),
            // Before 1970: floored to the hour before.
            t(1, 4, -1, 7, 0),
            t(2, 1, 0, 3, big),
            t(2, 2, 2 * HOUR + 5, 0, 1),
            t(3, 1, 0, 1_000, 1_000),
        ];
    })
    .await;
    project(s, |p| p.trades = many.clone()).await;
    // Completed withdrawals count at their completion time; others not at all.
    completed_withdrawal(s, u, 10, big, 30).await;
    completed_withdrawal(s, v, 10, 4, HOUR + 30).await;
    completed_withdrawal(s, u, 30, 0, 7 * HOUR).await;
    completed_withdrawal(s, u, 20, 9, 2 * HOUR).await;
    let sent = completed_withdrawal(s, u, 10, 1_000, 40).await;
    s.set_withdrawal_status(sent, WithdrawalStatus::Sent, None, None, 50).await.unwrap();
    let failed = completed_withdrawal(s, u, 40, 1_000, 40).await;
    s.set_withdrawal_status(failed, WithdrawalStatus::Failed, None, None, 50).await.unwrap();
    let requested = s
        .insert_withdrawal(&NewWithdrawal {
            user: u,
            asset: AssetId(50),
            address: "x".into(),
            amount: 1,
            fee: 1,
            after_hold: WithdrawalStatus::Held,
            created_ms: 1,
        })
        .await
        .unwrap();
    assert!(requested > 0);

    // 10 050 trades of 3 fee units each from hour 3 on: 360 per full hour.
    let mut expected = vec![
        fees(10, -HOUR, 7, 0),
        fees(10, 0, 2 * big + 3, big),
        fees(20, 0, 3 + big, 0),
        fees(10, HOUR, 0, 4),
        fees(20, 2 * HOUR, 1, 9),
        fees(30, 7 * HOUR, 0, 0),
    ];
    let mut hours: std::collections::BTreeMap<i64, u128> = std::collections::BTreeMap::new();
    for trade in &many {
        *hours.entry(trade.time_ms.div_euclid(HOUR) * HOUR).or_default() += 3;
    }
    assert_eq!(hours.len(), 28);
    assert_eq!(hours[&(3 * HOUR)], 1_080);
    for (&hour, &sum) in &hours {
        match expected.iter_mut().find(|f| f.asset == AssetId(10) && f.hour_ms == hour) {
            Some(row) => row.trade_fees += sum,
            None => expected.push(fees(10, hour, sum, 0)),
        }
    }
    expected.sort_by_key(|f| (f.hour_ms, f.asset));

    let written = s.backfill_fee_revenue(&quote_of).await.unwrap();
    assert_eq!(written, u64::try_from(expected.len()).unwrap());
    let got = s.fee_revenue(i64::MIN, i64::MAX).await.unwrap();
    assert_eq!(got, expected);
    assert_eq!(got[1], fees(10, 0, 2 * big + 3, big), "exact above u64");
    assert_eq!(
        s.latest_fee_revenue().await.unwrap(),
        vec![
            fees(
                10,
                hours.keys().last().copied().unwrap(),
                hours.values().last().copied().unwrap(),
                0
            ),
            fees(20, 2 * HOUR, 1, 9),
            fees(30, 7 * HOUR, 0, 0),
        ]
    );

    // Once only: with any row there, nothing is written.
    assert_eq!(s.backfill_fee_revenue(&quote_of).await.unwrap(), 0);
    let all_markets = HashMap::from([
        (MarketId(1), AssetId(10)),
        (MarketId(2), AssetId(20)),
        (MarketId(3), AssetId(30)),
    ]);
    assert_eq!(s.backfill_fee_revenue(&all_markets).await.unwrap(), 0);
    assert_eq!(s.fee_revenue(i64::MIN, i64::MAX).await.unwrap(), expected);

    // The projector goes on from there.
    project(s, |p| p.fee_revenue = vec![fees(30, 7 * HOUR, 5, 0)]).await;
    let hour_7 = s.fee_revenue(7 * HOUR, 8 * HOUR).await.unwrap();
    assert_eq!(hour_7, vec![fees(10, 7 * HOUR, 1_080, 0), fees(30, 7 * HOUR, 5, 0)]);
}

async fn fee_revenue_backfill_overflow_is_an_error(db: &Db) {
    let s = &*db.store;
    let u = user(s, "u@example.com").await;
    let quote_of = HashMap::from([(MarketId(1), AssetId(10)), (MarketId(2), AssetId(20))]);
    // Nothing to add up: nothing written.
    assert_eq!(s.backfill_fee_revenue(&quote_of).await.unwrap(), 0);
    assert_eq!(s.backfill_fee_revenue(&HashMap::new()).await.unwrap(), 0);

    // Two trades of one bucket whose fees add up above u128::MAX: Corrupt, nothing written.
    project(s, |p| {
        p.trades = vec![
            TradeRow {
                maker_fee: u128::MAX - 1,
                taker_fee: 0,
                time_ms: 5,
                ..trade(1, 1, 1, u, 1, u, 2)
            },
            TradeRow { maker_fee: 1, taker_fee: 1, time_ms: 6, ..trade(1, 2, 1, u, 3, u, 4) },
            TradeRow { maker_fee: 2, taker_fee: 3, time_ms: 7, ..trade(2, 1, 1, u, 5, u, 6) },
        ];
    })
    .await;
    assert!(matches!(
        s.backfill_fee_revenue(&quote_of).await,
        Err(StoreError::Corrupt { column: "trade_fees", .. })
    ));
    assert!(s.fee_revenue(i64::MIN, i64::MAX).await.unwrap().is_empty());

    // The same for one trade's maker and taker fees, and for withdrawal fees.
    project(s, |p| {
        p.trades = vec![TradeRow {
            maker_fee: u128::MAX,
            taker_fee: 1,
            time_ms: 5,
            ..trade(3, 1, 1, u, 1, u, 2)
        }];
    })
    .await;
    let only_3 = HashMap::from([(MarketId(3), AssetId(10))]);
    assert!(matches!(
        s.backfill_fee_revenue(&only_3).await,
        Err(StoreError::Corrupt { column: "trade_fees", .. })
    ));
    completed_withdrawal(s, u, 40, u128::MAX, 10).await;
    completed_withdrawal(s, u, 40, 1, 20).await;
    let only_2 = HashMap::from([(MarketId(2), AssetId(20))]);
    assert!(matches!(
        s.backfill_fee_revenue(&only_2).await,
        Err(StoreError::Corrupt { column: "withdrawal_fees", .. })
    ));
    assert!(s.fee_revenue(i64::MIN, i64::MAX).await.unwrap().is_empty());

    // Without the overflowing rows it goes through.
    raw(&db.url, "UPDATE withdrawals SET updated_ms = 3600000 WHERE fee = '1'").await;
    assert_eq!(s.backfill_fee_revenue(&only_2).await.unwrap(), 3);
    assert_eq!(
        s.fee_revenue(i64::MIN, i64::MAX).await.unwrap(),
        vec![fees(20, 0, 5, 0), fees(40, 0, 0, u128::MAX), fees(40, HOUR, 0, 1)]
    );
}

async fn recent_deposits_filter_and_pages(db: &Db) {
    let s = &*db.store;
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    assert!(s.recent_deposits(None, None, 10).await.unwrap().is_empty());
    let statuses = [
        DepositStatus::Pending,
        DepositStatus::Credited,
        DepositStatus::Credited,
        DepositStatus::Dropped,
        DepositStatus::Credited,
        DepositStatus::BelowMinimum,
        DepositStatus::Reversed,
        DepositStatus::Pending,
    ];
    for (i, status) in statuses.into_iter().enumerate() {
        let n = u32::try_from(i).unwrap();
        s.upsert_deposit(&DepositRow {
            id: 0,
            asset: AssetId(1 + n % 2),
            txid: format!("{n:064x}"),
            vout: n,
            user: if i % 3 == 0 { b } else { a },
            address: format!("addr{n}"),
            amount: u128::from(u64::MAX) * u128::from(n + 1),
            confirmations: i64::from(n),
            status,
            seq: (status == DepositStatus::Credited).then_some(u64::from(n) + 100),
            first_seen_ms: i64::from(n),
            updated_ms: i64::from(n) + 1,
        })
        .await
        .unwrap();
    }
    let vouts = |rows: &[DepositRow]| rows.iter().map(|d| d.vout).collect::<Vec<_>>();

    // Every user's, newest first, field for field as each user's own list has them.
    let all = s.recent_deposits(None, None, 100).await.unwrap();
    assert_eq!(vouts(&all), vec![7, 6, 5, 4, 3, 2, 1, 0]);
    let mut own = s.deposits(a, &DepositFilter { limit: 100, ..Default::default() }).await.unwrap();
    own.extend(s.deposits(b, &DepositFilter { limit: 100, ..Default::default() }).await.unwrap());
    own.sort_by_key(|d| std::cmp::Reverse(d.id));
    assert_eq!(all, own);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(all[0].amount, u128::from(u64::MAX) * 8);

    // Pages: `before` exclusive, the limit.
    assert_eq!(vouts(&s.recent_deposits(None, None, 3).await.unwrap()), vec![7, 6, 5]);
    assert_eq!(vouts(&s.recent_deposits(None, Some(all[2].id), 3).await.unwrap()), vec![4, 3, 2]);
    assert_eq!(
        vouts(&s.recent_deposits(None, Some(all[7].id), 3).await.unwrap()),
        Vec::<u32>::new()
    );
    assert!(s.recent_deposits(None, None, 0).await.unwrap().is_empty());
    assert!(s.recent_deposits(None, Some(i64::MIN), 10).await.unwrap().is_empty());
    assert_eq!(s.recent_deposits(None, Some(i64::MAX), 100).await.unwrap(), all);

    // By status.
    let credited = s.recent_deposits(Some(DepositStatus::Credited), None, 100).await.unwrap();
    assert_eq!(vouts(&credited), vec![4, 2, 1]);
    assert!(credited.iter().all(|d| d.status == DepositStatus::Credited));
    let page = s.recent_deposits(Some(DepositStatus::Credited), Some(credited[0].id), 1).await;
    assert_eq!(vouts(&page.unwrap()), vec![2]);
    let pending = s.recent_deposits(Some(DepositStatus::Pending), None, 100).await.unwrap();
    assert_eq!(vouts(&pending), vec![7, 0]);
    assert_eq!(
        vouts(
            &s.recent_deposits(Some(DepositStatus::Pending), Some(pending[0].id), 100)
                .await
                .unwrap()
        ),
        vec![0]
    );
    assert_eq!(
        vouts(&s.recent_deposits(Some(DepositStatus::BelowMinimum), None, 100).await.unwrap()),
        vec![5]
    );

    // A deposit that moves on changes list.
    let first = &pending[1];
    s.upsert_deposit(&DepositRow {
        status: DepositStatus::Credited,
        seq: Some(1),
        ..first.clone()
    })
    .await
    .unwrap();
    assert_eq!(
        vouts(&s.recent_deposits(Some(DepositStatus::Credited), None, 100).await.unwrap()),
        vec![4, 2, 1, 0]
    );
    assert_eq!(
        vouts(&s.recent_deposits(Some(DepositStatus::Pending), None, 100).await.unwrap()),
        vec![7]
    );
}

async fn open_order_users(db: &Db) {
    let s = &*db.store;
    let (u1, u2, u3, u4, u5) = (UserId(5), UserId(2), UserId(9), UserId(3), UserId(7));
    assert!(s.open_order_users(MarketId(1)).await.unwrap().is_empty());
    project(s, |p| {
        p.orders = vec![
            order(1, u1, 1, OrderStatus::Open),
            order(2, u1, 1, OrderStatus::PartiallyFilled),
            order(3, u2, 1, OrderStatus::PartiallyFilled),
            order(4, u3, 1, OrderStatus::Filled),
            order(5, u3, 1, OrderStatus::Canceled),
            order(6, u4, 1, OrderStatus::Expired),
            order(7, u4, 2, OrderStatus::Open),
            order(8, u5, 1, OrderStatus::Open),
            order(9, u2, 1, OrderStatus::Open),
        ];
    })
    .await;
    // Once each, ascending; only open and partially filled orders of that market.
    assert_eq!(s.open_order_users(MarketId(1)).await.unwrap(), vec![u2, u1, u5]);
    assert_eq!(s.open_order_users(MarketId(2)).await.unwrap(), vec![u4]);
    assert!(s.open_order_users(MarketId(3)).await.unwrap().is_empty());

    // As orders end, their users leave the list (one open order is enough to stay).
    project(s, |p| {
        p.orders = vec![
            order(1, u1, 1, OrderStatus::Canceled),
            order(8, u5, 1, OrderStatus::Filled),
            order(7, u4, 2, OrderStatus::Expired),
        ];
    })
    .await;
    assert_eq!(s.open_order_users(MarketId(1)).await.unwrap(), vec![u2, u1]);
    assert!(s.open_order_users(MarketId(2)).await.unwrap().is_empty());
    project(s, |p| p.orders = vec![order(2, u1, 1, OrderStatus::Filled)]).await;
    assert_eq!(s.open_order_users(MarketId(1)).await.unwrap(), vec![u2]);
}

async fn trades_range(db: &Db) {
    let s = &*db.store;
    let (u, v) = (UserId(1), UserId(2));
    // More trades than LIST_LIMIT_MAX, two per time.
    let ours: Vec<TradeRow> = (1..=1_100)
        .map(|id| TradeRow { time_ms: paired_ms(id), ..trade(1, id, 1, u, id, v, id + 5_000) })
        .collect();
    let other: Vec<TradeRow> = (1..=5)
        .map(|id| TradeRow { time_ms: paired_ms(id), ..trade(2, id, 1, v, id, u, id) })
        .collect();
    // Times out of id order (the engine never does this, but the order is by id, not by time).
    let shuffled: Vec<TradeRow> = [40, 10, 30, 20]
        .into_iter()
        .zip(1..)
        .map(|(time_ms, id)| TradeRow { time_ms, ..trade(3, id, 1, u, id, v, id) })
        .collect();
    project(s, |p| {
        p.trades = ours[..600].to_vec();
        p.trades.extend(other.iter().cloned());
    })
    .await;
    project(s, |p| {
        p.trades = ours[600..].to_vec();
        p.trades.extend(shuffled.iter().cloned());
    })
    .await;
    let get = |market: u32, from_id, start_ms, end_ms, limit| async move {
        s.trades_range(MarketId(market), &range(from_id, start_ms, end_ms, limit)).await.unwrap()
    };

    // From an id on, inclusive, ascending, at most `limit`.
    assert_eq!(trade_ids(&get(1, Some(5), None, None, 3).await), vec![5, 6, 7]);
    assert_eq!(get(1, Some(1), None, None, 2).await, ours[..2].to_vec(), "whole rows");
    assert_eq!(trade_ids(&get(1, Some(1_099), None, None, 10).await), vec![1_099, 1_100]);
    // Both time bounds inclusive (two trades at each time).
    assert_eq!(trade_ids(&get(1, None, Some(20), Some(40), 100).await), vec![3, 4, 5, 6, 7, 8]);
    assert_eq!(trade_ids(&get(1, None, Some(20), Some(40), 4).await), vec![3, 4, 5, 6]);
    // From a time on: the first `limit` of the window.
    assert_eq!(trade_ids(&get(1, None, Some(5_000), None, 3).await), vec![999, 1_000, 1_001]);
    // Every bound given applies.
    assert_eq!(trade_ids(&get(1, Some(6), Some(20), Some(40), 100).await), vec![6, 7, 8]);
    assert_eq!(trade_ids(&get(1, Some(2), Some(30), None, 3).await), vec![5, 6, 7]);
    // Neither from_id nor start: the newest `limit`, oldest first.
    assert_eq!(trade_ids(&get(1, None, None, None, 3).await), vec![1_098, 1_099, 1_100]);
    // End only: the newest `limit` up to it, inclusive.
    assert_eq!(trade_ids(&get(1, None, None, Some(40), 3).await), vec![6, 7, 8]);
    assert_eq!(trade_ids(&get(1, None, None, Some(45), 3).await), vec![6, 7, 8]);
    // The limit is clamped: the first or the newest LIST_LIMIT_MAX.
    let max = LIST_LIMIT_MAX as usize;
    assert_eq!(get(1, Some(1), None, None, u32::MAX).await, ours[..max].to_vec());
    assert_eq!(get(1, None, Some(0), None, u32::MAX).await, ours[..max].to_vec());
    assert_eq!(get(1, None, None, None, u32::MAX).await, ours[ours.len() - max..].to_vec());
    // Other markets' trades are not in it.
    assert_eq!(get(2, None, None, None, 100).await, other);
    assert_eq!(trade_ids(&get(2, Some(4), None, None, 100).await), vec![4, 5]);
    assert!(get(4, None, None, None, 100).await.is_empty());
    // Nothing matches.
    assert!(get(1, None, None, None, 0).await.is_empty(), "limit 0");
    assert!(get(1, Some(1_101), None, None, 10).await.is_empty());
    assert!(get(1, Some(u64::MAX), None, None, 10).await.is_empty());
    assert!(get(1, None, Some(40), Some(39), 10).await.is_empty(), "start after end");
    assert!(get(1, None, None, Some(9), 10).await.is_empty());
    assert!(get(1, None, Some(5_501), None, 10).await.is_empty());
    assert!(get(1, Some(8), None, Some(30), 10).await.is_empty());
    // By id, whatever the times: ids 1..=4 at 40, 10, 30, 20.
    assert_eq!(trade_ids(&get(3, None, Some(20), Some(40), 2).await), vec![1, 3]);
    assert_eq!(trade_ids(&get(3, None, None, Some(30), 2).await), vec![3, 4]);
    assert_eq!(trade_ids(&get(3, Some(2), Some(15), None, 10).await), vec![3, 4]);

    // Every combination, against the definition.
    let key = |t: &TradeRow| (t.id.0, t.time_ms);
    for r in ranges(
        &[None, Some(1), Some(7), Some(1_099), Some(2_000)],
        &[None, Some(10), Some(35), Some(5_000)],
        &[None, Some(10), Some(40), Some(5_000), Some(i64::MAX)],
        &[1, 3, u32::MAX],
    ) {
        assert_eq!(
            s.trades_range(MarketId(1), &r).await.unwrap(),
            in_range(&ours, key, &r),
            "{r:?}"
        );
        assert_eq!(
            s.trades_range(MarketId(3), &r).await.unwrap(),
            in_range(&shuffled, key, &r),
            "{r:?}"
        );
    }
}

async fn fills_range(db: &Db) {
    let s = &*db.store;
    let (u, v, w) = (UserId(1), UserId(2), UserId(3));
    let mut trades = Vec::new();
    // Market 1: u in four trades of five (more than LIST_LIMIT_MAX in all), two per time.
    for id in 1..=1_300u64 {
        let (maker, taker) = match id % 5 {
            0 => ((u, 50_000 + id), (v, 500)),
            1 => ((v, 10_000 + id), (u, 501)),
            2 => ((u, 20_000 + id), (u, 502)), // self-trade
            3 => ((v, 30_000 + id), (w, 503)), // not u's
            _ => ((w, 700), (u, 501)),
        };
        trades.push(TradeRow {
            time_ms: paired_ms(id),
            ..trade(1, id, id, maker.0, maker.1, taker.0, taker.1)
        });
    }
    // Order 900 of u: taker in its first trades, then maker while it rests.
    for id in 1_301..=1_306u64 {
        let (maker, taker) =
            if id <= 1_303 { ((v, 40_000 + id), (u, 900)) } else { ((u, 900), (w, 41_000 + id)) };
        trades.push(TradeRow {
            time_ms: paired_ms(id),
            ..trade(1, id, id, maker.0, maker.1, taker.0, taker.1)
        });
    }
    // Market 2: u as maker and as taker (order 501 here too, to show the market filter).
    for id in 1..=10u64 {
        let (maker, taker) =
            if id % 2 == 1 { ((u, 2_000 + id), (v, 2_500)) } else { ((v, 2_100 + id), (u, 501)) };
        trades.push(TradeRow {
            time_ms: paired_ms(id),
            ..trade(2, id, 2_000 + id, maker.0, maker.1, taker.0, taker.1)
        });
    }
    let (early, late): (Vec<TradeRow>, Vec<TradeRow>) =
        trades.iter().cloned().partition(|t| t.seq <= 700);
    s.apply_projection(&Projection {
        from_seq: 1,
        to_seq: 700,
        trades: early,
        ..Default::default()
    })
    .await
    .unwrap();
    s.apply_projection(&Projection {
        from_seq: 701,
        to_seq: 3_000,
        trades: late,
        ..Default::default()
    })
    .await
    .unwrap();

    let m1 = MarketId(1);
    let get = |user: UserId, market: MarketId, order: Option<u64>, r: RangeFilter| async move {
        s.fills_range(user, market, order.map(OrderId), &r).await.unwrap()
    };
    let mine = |user: UserId, market: MarketId, order: Option<u64>| -> Vec<TradeRow> {
        trades
            .iter()
            .filter(|t| t.market == market)
            .filter(|t| match order {
                None => t.maker_user == user || t.taker_user == user,
                Some(o) => {
                    (t.maker_user == user && t.maker_order == OrderId(o))
                        || (t.taker_user == user && t.taker_order == OrderId(o))
                }
            })
            .cloned()
            .collect()
    };

    // From a trade id on, inclusive, ascending: maker (5), taker (1, 4), self-trade once (2);
    // trade 3 is not u's.
    assert_eq!(trade_ids(&get(u, m1, None, range(Some(1), None, None, 4)).await), vec![1, 2, 4, 5]);
    assert_eq!(trade_ids(&get(u, m1, None, range(Some(2), None, None, 1)).await), vec![2]);
    assert_eq!(get(u, m1, None, range(Some(2), None, None, 1)).await[0], trades[1], "whole rows");
    assert_eq!(trade_ids(&get(v, m1, None, range(Some(1), None, None, 3)).await), vec![1, 3, 5]);
    assert_eq!(trade_ids(&get(w, m1, None, range(Some(1), None, None, 3)).await), vec![3, 4, 8]);
    // Both time bounds inclusive.
    assert_eq!(
        trade_ids(&get(u, m1, None, range(None, Some(10), Some(20), 10)).await),
        vec![1, 2, 4]
    );
    assert_eq!(trade_ids(&get(u, m1, None, range(None, Some(20), Some(30), 2)).await), vec![4, 5]);
    // Neither from_id nor start: the newest `limit`, oldest first; end only: up to it.
    assert_eq!(
        trade_ids(&get(u, m1, None, range(None, None, None, 3)).await),
        vec![1_304, 1_305, 1_306]
    );
    assert_eq!(trade_ids(&get(u, m1, None, range(None, None, Some(20), 2)).await), vec![2, 4]);
    assert_eq!(trade_ids(&get(u, m1, None, range(None, None, Some(25), 2)).await), vec![2, 4]);
    // The limit is clamped.
    let all = mine(u, m1, None);
    assert!(all.len() > LIST_LIMIT_MAX as usize);
    let max = LIST_LIMIT_MAX as usize;
    assert_eq!(get(u, m1, None, range(Some(1), None, None, u32::MAX)).await, all[..max].to_vec());
    assert_eq!(
        get(u, m1, None, range(None, None, None, u32::MAX)).await,
        all[all.len() - max..].to_vec()
    );
    // Other markets' trades are not in it.
    assert_eq!(
        trade_ids(&get(u, MarketId(2), None, range(None, None, None, 100)).await),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        trade_ids(&get(u, MarketId(2), None, range(Some(9), None, None, 100)).await),
        vec![9, 10]
    );
    assert!(get(u, MarketId(3), None, range(None, None, None, 100)).await.is_empty());

    // One order's fills: as taker order, then as maker order.
    assert_eq!(
        trade_ids(&get(u, m1, Some(900), range(None, None, None, 100)).await),
        (1_301..=1_306).collect::<Vec<_>>()
    );
    assert_eq!(
        trade_ids(&get(u, m1, Some(900), range(Some(1_303), None, None, 2)).await),
        vec![1_303, 1_304]
    );
    assert_eq!(
        trade_ids(&get(u, m1, Some(900), range(None, None, None, 2)).await),
        vec![1_305, 1_306]
    );
    assert_eq!(
        trade_ids(&get(u, m1, Some(900), range(None, Some(6_520), Some(6_520), 10)).await),
        vec![1_303, 1_304]
    );
    // The maker order of a self-trade, and its taker order: each trade once.
    assert_eq!(trade_ids(&get(u, m1, Some(20_002), range(None, None, None, 100)).await), vec![2]);
    assert_eq!(
        trade_ids(&get(u, m1, Some(502), range(Some(1), None, None, 3)).await),
        vec![2, 7, 12]
    );
    assert_eq!(trade_ids(&get(u, m1, Some(50_005), range(None, None, None, 10)).await), vec![5]);
    // Order 501 traded in both markets: only the market asked for.
    assert_eq!(get(u, MarketId(2), Some(501), range(None, None, None, 100)).await.len(), 5);
    assert_eq!(
        trade_ids(&get(u, m1, Some(501), range(Some(1), None, None, 3)).await),
        vec![1, 4, 6]
    );
    // Another user's order is not u's fill, even when u traded against it.
    assert!(get(u, m1, Some(500), range(None, None, None, 100)).await.is_empty());
    assert_eq!(get(v, m1, Some(500), range(Some(1), None, None, 3)).await.len(), 3);
    assert!(get(u, m1, Some(u64::MAX), range(None, None, None, 100)).await.is_empty());
    // Nothing matches.
    assert!(get(u, m1, None, range(None, None, None, 0)).await.is_empty(), "limit 0");
    assert!(get(u, m1, Some(900), range(None, None, None, 0)).await.is_empty(), "limit 0");
    assert!(get(u, m1, None, range(Some(u64::MAX), None, None, 10)).await.is_empty());
    assert!(get(u, m1, None, range(None, Some(30), Some(29), 10)).await.is_empty());
    assert!(get(UserId(99), m1, None, range(None, None, None, 10)).await.is_empty());

    // Every combination, against the definition.
    let key = |t: &TradeRow| (t.id.0, t.time_ms);
    let grid = ranges(
        &[None, Some(1), Some(640), Some(1_305)],
        &[None, Some(10), Some(3_000)],
        &[None, Some(40), Some(3_000)],
        &[1, 7, u32::MAX],
    );
    for (user, order) in [(u, None), (u, Some(900)), (u, Some(502)), (v, None), (w, Some(700))] {
        let expect = mine(user, m1, order);
        for r in &grid {
            assert_eq!(
                get(user, m1, order, *r).await,
                in_range(&expect, key, r),
                "{user:?} {order:?} {r:?}"
            );
        }
    }
}

async fn orders_range(db: &Db) {
    let s = &*db.store;
    let (u, v) = (UserId(1), UserId(2));
    let statuses = [
        OrderStatus::Open,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::Canceled,
        OrderStatus::Expired,
    ];
    // u's orders in market 1 outnumber LIST_LIMIT_MAX; two are created at each time.
    let mut all: Vec<OrderRow> = (1..=2_400u64)
        .map(|id| {
            let owner = if id % 3 == 0 { v } else { u };
            let market = if id % 4 == 3 { 2 } else { 1 };
            OrderRow {
                created_ms: paired_ms(id),
                ..order(id, owner, market, statuses[(id % 5) as usize])
            }
        })
        .collect();
    project(s, |p| p.orders = all[..1_000].to_vec()).await;
    project(s, |p| p.orders = all[1_000..].to_vec()).await;
    // A later upsert: the range reads the current row.
    all[3].status = OrderStatus::Filled;
    all[3].filled = 10;
    project(s, |p| p.orders = vec![all[3].clone()]).await;

    let m1 = MarketId(1);
    let get = |user: UserId, market: MarketId, r: RangeFilter| async move {
        s.orders_range(user, market, &r).await.unwrap()
    };
    let mine = |user: UserId, market: MarketId| -> Vec<OrderRow> {
        all.iter().filter(|o| o.user == user && o.market == market).cloned().collect()
    };

    // From an order id on, inclusive, ascending (3 is v's, 7 in market 2).
    assert_eq!(order_ids(&get(u, m1, range(Some(2), None, None, 3)).await), vec![2, 4, 5]);
    assert_eq!(order_ids(&get(u, m1, range(Some(4), None, None, 3)).await), vec![4, 5, 8]);
    assert_eq!(
        get(u, m1, range(Some(4), None, None, 1)).await,
        vec![all[3].clone()],
        "current row"
    );
    // Both time bounds inclusive: ids 3..=8 are created at 20..=40.
    assert_eq!(order_ids(&get(u, m1, range(None, Some(20), Some(40), 10)).await), vec![4, 5, 8]);
    assert_eq!(order_ids(&get(u, m1, range(None, Some(20), None, 2)).await), vec![4, 5]);
    assert_eq!(order_ids(&get(u, m1, range(Some(5), Some(20), Some(40), 10)).await), vec![5, 8]);
    // Neither from_id nor start: the newest `limit`, oldest first; end only: up to it.
    let newest = mine(u, m1);
    assert_eq!(get(u, m1, range(None, None, None, 2)).await, newest[newest.len() - 2..].to_vec());
    assert_eq!(order_ids(&get(u, m1, range(None, None, Some(20), 2)).await), vec![2, 4]);
    assert_eq!(order_ids(&get(u, m1, range(None, None, Some(29), 2)).await), vec![2, 4]);
    // Any status.
    let first = get(u, m1, range(Some(1), None, None, 20)).await;
    assert!(statuses.iter().all(|st| first.iter().any(|o| o.status == *st)));
    // The limit is clamped.
    let max = LIST_LIMIT_MAX as usize;
    assert!(newest.len() > max);
    assert_eq!(get(u, m1, range(Some(1), None, None, u32::MAX)).await, newest[..max].to_vec());
    assert_eq!(
        get(u, m1, range(None, None, None, u32::MAX)).await,
        newest[newest.len() - max..].to_vec()
    );
    // Other users and markets are not in it.
    assert_eq!(order_ids(&get(v, m1, range(Some(1), None, None, 3)).await), vec![6, 9, 12]);
    assert_eq!(
        order_ids(&get(u, MarketId(2), range(Some(1), None, None, 3)).await),
        vec![7, 11, 19]
    );
    assert!(get(u, MarketId(3), range(None, None, None, 10)).await.is_empty());
    assert!(get(UserId(99), m1, range(None, None, None, 10)).await.is_empty());
    // Nothing matches.
    assert!(get(u, m1, range(None, None, None, 0)).await.is_empty(), "limit 0");
    assert!(get(u, m1, range(Some(2_401), None, None, 10)).await.is_empty());
    assert!(get(u, m1, range(Some(u64::MAX), None, None, 10)).await.is_empty());
    assert!(get(u, m1, range(None, Some(40), Some(39), 10)).await.is_empty());
    assert!(get(u, m1, range(None, None, Some(9), 10)).await.is_empty());

    // Every combination, against the definition.
    let key = |o: &OrderRow| (o.id.0, o.created_ms);
    let grid = ranges(
        &[None, Some(1), Some(4), Some(1_500), Some(2_399)],
        &[None, Some(10), Some(35), Some(8_000)],
        &[None, Some(10), Some(40), Some(8_000)],
        &[1, 3, u32::MAX],
    );
    for (user, market) in [(u, m1), (v, m1), (u, MarketId(2))] {
        let expect = mine(user, market);
        for r in &grid {
            assert_eq!(
                get(user, market, *r).await,
                in_range(&expect, key, r),
                "{user:?} {market:?} {r:?}"
            );
        }
    }
}

// ---- backups ----------------------------------------------------------------------------------

fn backup_record(n: i64, ok: bool) -> NewBackupRecord {
    NewBackupRecord {
        started_at_ms: n * 1000,
        finished_at_ms: n * 1000 + 500,
        destination: "/var/backups/bourse".into(),
        name: format!("backup-{n}"),
        seq: u64::try_from(n).unwrap() * 10,
        state_hash: format!("{n:064x}"),
        bytes: (1 << 40) + u64::try_from(n).unwrap(),
        ok,
        error: (!ok).then(|| "disk full ✗".to_string()),
    }
}

fn recorded(id: i64, r: &NewBackupRecord) -> BackupRecord {
    BackupRecord {
        id,
        started_at_ms: r.started_at_ms,
        finished_at_ms: r.finished_at_ms,
        destination: r.destination.clone(),
        name: r.name.clone(),
        seq: r.seq,
        state_hash: r.state_hash.clone(),
        bytes: r.bytes,
        ok: r.ok,
        error: r.error.clone(),
    }
}

async fn backups_are_recorded(db: &Db) {
    let s = &*db.store;
    assert!(s.recent_backups(10).await.unwrap().is_empty());
    assert_eq!(s.last_good_backup().await.unwrap(), None);

    let (first, second) = (backup_record(1, true), backup_record(2, false));
    let a = s.record_backup(&first).await.unwrap();
    let b = s.record_backup(&second).await.unwrap();
    assert!(b > a);
    assert_eq!(
        s.recent_backups(10).await.unwrap(),
        vec![recorded(b, &second), recorded(a, &first)],
        "newest first"
    );
    assert_eq!(s.recent_backups(1).await.unwrap(), vec![recorded(b, &second)], "limited");
    assert_eq!(s.last_good_backup().await.unwrap(), Some(recorded(a, &first)), "skips failures");

    let third = backup_record(3, true);
    let c = s.record_backup(&third).await.unwrap();
    assert_eq!(s.last_good_backup().await.unwrap(), Some(recorded(c, &third)));
    assert_eq!(s.recent_backups(u32::MAX).await.unwrap().len(), 3);

    let too_big = NewBackupRecord { seq: u64::MAX, ..backup_record(4, true) };
    assert!(matches!(s.record_backup(&too_big).await, Err(StoreError::Invalid(_))));
    assert_eq!(s.recent_backups(10).await.unwrap().len(), 3, "nothing written");
}

/// The format a backup of this backend has.
fn backup_format(db: &Db) -> DatabaseFormat {
    match db.backend {
        "sqlite" => DatabaseFormat::Sqlite,
        _ => DatabaseFormat::PgDump,
    }
}

/// Somewhere to restore a backup of this backend to: a new SQLite file in `dir`, or a new,
/// empty (not migrated) PostgreSQL database.
async fn restore_target(db: &Db, dir: &Path, name: &str) -> String {
    match db.backend {
        "sqlite" => format!("sqlite://{}", dir.join(name).display()),
        _ => testing::fresh_postgres_url().await,
    }
}

async fn backup_is_a_consistent_snapshot(db: &Db) {
    let s = &*db.store;
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    let record = backup_record(1, true);
    let record_id = s.record_backup(&record).await.unwrap();
    let seq = project(s, |p| {
        p.balances.push(BalanceRow {
            user: a,
            asset: AssetId(1),
            available: 10_000_000_000_000_000_000,
            locked: 0,
            held: 0,
            seq: 1,
        })
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("database.backup");
    let backup = s.backup_begin(&file).await.unwrap();
    // Written once the snapshot is fixed: not in the backup.
    let c = user(s, "c@example.com").await;
    s.record_backup(&backup_record(2, false)).await.unwrap();
    // And written while the backup is: not in it either.
    let writer = {
        let store = db.store.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                store.create_user(&format!("w{i}@example.com"), "hash", 1).await.unwrap();
            }
        })
    };
    let format = backup.finish().await.unwrap();
    writer.await.unwrap();
    assert_eq!(format, backup_format(db));
    assert!(std::fs::metadata(&file).unwrap().len() > 0);

    let url = restore_target(db, dir.path(), "restored.db").await;
    restore_database(format, &file, &url).await.unwrap();
    let r = connect(&url).await.unwrap();
    assert_eq!(r.migrate().await.unwrap(), 0, "the schema and its migration history came along");
    assert_eq!(r.user(a).await.unwrap().unwrap().email, "a@example.com");
    assert_eq!(r.user(b).await.unwrap().unwrap().email, "b@example.com");
    assert_eq!(r.user(c).await.unwrap(), None, "written after backup_begin");
    assert_eq!(r.user_by_email("c@example.com").await.unwrap(), None);
    assert_eq!(r.count_users().await.unwrap(), 2);
    assert_eq!(r.recent_backups(10).await.unwrap(), vec![recorded(record_id, &record)]);
    assert_eq!(r.projected_seq().await.unwrap(), seq);
    assert_eq!(
        r.balance(a, AssetId(1)).await.unwrap().unwrap().available,
        10_000_000_000_000_000_000
    );
    // Ids go on after the highest one given (AUTOINCREMENT counters, identity sequences), and
    // the indexes came along (a unique e-mail is still unique).
    let d = user(&*r, "d@example.com").await;
    assert!(d > b);
    assert!(matches!(
        r.create_user("a@example.com", "hash", 1).await,
        Err(StoreError::Conflict(_))
    ));
    r.close().await;

    // The live database has everything.
    assert_eq!(s.count_users().await.unwrap(), 23);
    assert_eq!(s.recent_backups(10).await.unwrap().len(), 2);

    // A backup never overwrites a file.
    let len = std::fs::metadata(&file).unwrap().len();
    assert!(matches!(s.backup_begin(&file).await, Err(StoreError::Invalid(_))));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), len, "untouched");

    // A backup dropped unfinished leaves no file, and the database is writable.
    let dropped = dir.path().join("dropped.backup");
    let backup = s.backup_begin(&dropped).await.unwrap();
    drop(backup);
    assert!(!dropped.exists());
    user(s, "e@example.com").await;

    // Another one after it works.
    let again = dir.path().join("again.backup");
    s.backup_begin(&again).await.unwrap().finish().await.unwrap();
    let url = restore_target(db, dir.path(), "again.db").await;
    restore_database(format, &again, &url).await.unwrap();
    let r = connect(&url).await.unwrap();
    assert_eq!(r.count_users().await.unwrap(), 24);
    r.close().await;
}

async fn restore_refusals(db: &Db) {
    let s = &*db.store;
    user(s, "a@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("database.backup");
    let format = s.backup_begin(&file).await.unwrap().finish().await.unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let truncated = dir.path().join("truncated.backup");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let sqlite_url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());

    // A missing backup file (checked before the target).
    let target = match format {
        DatabaseFormat::Sqlite => sqlite_url("m.db"),
        DatabaseFormat::PgDump => db.url.clone(),
    };
    let missing = restore_database(format, &dir.path().join("missing"), &target).await;
    assert!(matches!(missing, Err(StoreError::Io { .. })), "{missing:?}");
    assert!(matches!(
        restore_database(format, &file, "mysql://localhost/x").await,
        Err(StoreError::BadUrl(_))
    ));

    match format {
        DatabaseFormat::Sqlite => {
            // The wrong kind of database.
            let wrong = restore_database(format, &file, "postgres://postgres@127.0.0.1:1/x").await;
            match wrong {
                Err(StoreError::Invalid(m)) => assert!(m.contains("sqlite://"), "{m}"),
                other => panic!("{other:?}"),
            }

            // A target that exists is refused and left alone.
            let existing = dir.path().join("existing.db");
            std::fs::write(&existing, b"precious").unwrap();
            let refused = restore_database(format, &file, &sqlite_url("existing.db")).await;
            assert!(matches!(refused, Err(StoreError::Invalid(_))), "{refused:?}");
            assert_eq!(std::fs::read(&existing).unwrap(), b"precious");

            // A damaged file is refused, and nothing is left at the target.
            let garbage = dir.path().join("garbage.backup");
            std::fs::write(&garbage, vec![0x5a_u8; 100_000]).unwrap();
            let target = dir.path().join("restored.db");
            for bad in [&truncated, &garbage] {
                let r = restore_database(format, bad, &sqlite_url("restored.db")).await;
                assert!(matches!(r, Err(StoreError::Damaged(_))), "{}: {r:?}", bad.display());
                let names: Vec<_> = std::fs::read_dir(dir.path())
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("restored"))
                    .collect();
                assert!(names.is_empty(), "{names:?}");
            }

            // The sound one restores there then.
            restore_database(format, &file, &sqlite_url("restored.db")).await.unwrap();
            assert!(target.exists());
            assert!(!dir.path().join("restored.db.partial").exists());
            let r = connect(&sqlite_url("restored.db")).await.unwrap();
            assert_eq!(r.migrate().await.unwrap(), 0);
            assert_eq!(r.count_users().await.unwrap(), 1);
            r.close().await;
        }
        DatabaseFormat::PgDump => {
            // The wrong kind of database.
            let wrong = restore_database(format, &file, &sqlite_url("x.db")).await;
            match wrong {
                Err(StoreError::Invalid(m)) => assert!(m.contains("postgres://"), "{m}"),
                other => panic!("{other:?}"),
            }
            assert!(!dir.path().join("x.db").exists());

            // A database that is not empty is refused and left alone.
            let refused = restore_database(format, &file, &db.url).await;
            assert!(matches!(refused, Err(StoreError::Invalid(_))), "{refused:?}");
            assert_eq!(s.count_users().await.unwrap(), 1);

            // A damaged dump: pg_restore fails, saying why, and restores nothing.
            let url = testing::fresh_postgres_url().await;
            let r = restore_database(format, &truncated, &url).await;
            match r {
                Err(StoreError::Tool { tool, message }) => {
                    assert_eq!(tool, "pg_restore");
                    assert!(message.contains("pg_restore: error"), "{message}");
                }
                other => panic!("{other:?}"),
            }

            // So the database is still empty: the sound one restores there.
            restore_database(format, &file, &url).await.unwrap();
            let r = connect(&url).await.unwrap();
            assert_eq!(r.migrate().await.unwrap(), 0);
            assert_eq!(r.count_users().await.unwrap(), 1);
            r.close().await;
        }
    }
}

/// Relay rows commit with their projection (a refused one leaves none), are read in seq order
/// after a cursor, and are pruned by age.
async fn relay_rows_commit_with_projections(db: &Db) {
    let s = &db.store;
    let relay = |created_ms: i64, body: &str| Some(NewRelay { created_ms, body: body.into() });
    let step =
        |from_seq, to_seq, relay| Projection { from_seq, to_seq, relay, ..Default::default() };
    s.apply_projection(&step(1, 3, relay(1_000, "a"))).await.unwrap();
    s.apply_projection(&step(4, 4, None)).await.unwrap();
    s.apply_projection(&step(5, 9, relay(2_000, "b"))).await.unwrap();
    assert!(matches!(
        s.apply_projection(&step(5, 6, relay(3_000, "again"))).await,
        Err(StoreError::CursorMismatch { expected: 4, found: 9 })
    ));
    let all = s.relay_after(0, 10).await.unwrap();
    let row = |from_seq, to_seq, created_ms, body: &str| RelayRow {
        from_seq,
        to_seq,
        created_ms,
        body: body.into(),
    };
    assert_eq!(all, vec![row(1, 3, 1_000, "a"), row(5, 9, 2_000, "b")]);
    assert_eq!(s.relay_after(3, 10).await.unwrap(), all[1..].to_vec());
    assert_eq!(s.relay_after(2, 10).await.unwrap(), all, "a row reaching past the cursor");
    assert_eq!(s.relay_after(0, 1).await.unwrap(), all[..1].to_vec());
    assert!(s.relay_after(9, 10).await.unwrap().is_empty());
    assert_eq!(s.prune_relay(2_000).await.unwrap(), 1);
    assert_eq!(s.relay_after(0, 10).await.unwrap(), all[1..].to_vec());
    assert_eq!(s.projected_seq().await.unwrap(), 9);
}

/// The last reconciliation of each asset replaces the one before; amounts keep their sign and
/// size.
async fn reconciliations_are_kept_per_asset(db: &Db) {
    let s = &db.store;
    assert!(s.reconciliations().await.unwrap().is_empty());
    let row = |asset, liabilities: i128, hot: i128, paused, at_ms| ReconciliationRow {
        asset: AssetId(asset),
        liabilities,
        hot,
        shortfall: liabilities - hot,
        paused,
        at_ms,
    };
    s.record_reconciliation(&row(2, 10, 5, true, 10)).await.unwrap();
    s.record_reconciliation(&row(1, 0, 7, false, 11)).await.unwrap();
    s.record_reconciliation(&row(2, i128::MAX, i128::MAX, false, 12)).await.unwrap();
    assert_eq!(
        s.reconciliations().await.unwrap(),
        vec![row(1, 0, 7, false, 11), row(2, i128::MAX, i128::MAX, false, 12)]
    );
}
