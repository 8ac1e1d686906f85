//! The SQL text both backends run unchanged (SQLite and PostgreSQL agree on `$n` parameters,
//! `RETURNING`, `ON CONFLICT ... DO UPDATE`, row-value comparisons, partial indexes and
//! `TRUE`/`FALSE`). What differs lives in the backend's own module. Optional filters are written
//! `($n IS NULL OR column = $n)` and absent cursors are bound as the largest value, so every query
//! is one fixed, prepared-once statement.

// ---- users ------------------------------------------------------------------------------------

pub(crate) const CREATE_USER: &str = "INSERT INTO users (email, password_hash, email_verified, created_ms) \
     VALUES ($1, $2, FALSE, $3) RETURNING id";
pub(crate) const USER: &str = "SELECT id, email, password_hash, email_verified, created_ms, \
     totp_sealed, totp_pending_sealed, totp_last_step, address_whitelist, locked_ms \
     FROM users WHERE id = $1";
pub(crate) const USER_BY_EMAIL: &str = "SELECT id, email, password_hash, email_verified, created_ms, \
     totp_sealed, totp_pending_sealed, totp_last_step, address_whitelist, locked_ms \
     FROM users WHERE email = $1";
pub(crate) const SET_EMAIL_VERIFIED: &str = "UPDATE users SET email_verified = TRUE WHERE id = $1";
pub(crate) const SET_PASSWORD_HASH: &str = "UPDATE users SET password_hash = $2 WHERE id = $1";
pub(crate) const COUNT_USERS: &str = "SELECT COUNT(*) AS n FROM users";
pub(crate) const SET_ADDRESS_WHITELIST: &str =
    "UPDATE users SET address_whitelist = $2 WHERE id = $1";
pub(crate) const SET_USER_LOCKED: &str = "UPDATE users SET locked_ms = $2 WHERE id = $1";
/// The first user a deposit address was given to (the same string may be an address of several
/// assets). Served by `deposit_addresses_address`.
pub(crate) const USER_BY_DEPOSIT_ADDRESS: &str =
    "SELECT user_id FROM deposit_addresses WHERE address = $1 ORDER BY id LIMIT 1";

// ---- two-factor authentication ----------------------------------------------------------------

pub(crate) const SET_TOTP_PENDING: &str = "UPDATE users SET totp_pending_sealed = $2 WHERE id = $1";
pub(crate) const ENABLE_TOTP: &str = "UPDATE users SET totp_sealed = $2, totp_pending_sealed = NULL, \
     totp_last_step = $3 WHERE id = $1";
pub(crate) const DISABLE_TOTP: &str =
    "UPDATE users SET totp_sealed = NULL, totp_pending_sealed = NULL WHERE id = $1";
/// Moves the last step forward only: of two concurrent calls with the same step, one matches.
pub(crate) const USE_TOTP_STEP: &str =
    "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2";
pub(crate) const DELETE_RECOVERY_CODES: &str = "DELETE FROM recovery_codes WHERE user_id = $1";
pub(crate) const INSERT_RECOVERY_CODE: &str =
    "INSERT INTO recovery_codes (user_id, code_hash, used_ms) VALUES ($1, $2, NULL)";
pub(crate) const USE_RECOVERY_CODE: &str = "UPDATE recovery_codes SET used_ms = $3 \
     WHERE user_id = $1 AND code_hash = $2 AND used_ms IS NULL";
pub(crate) const RECOVERY_CODES_LEFT: &str =
    "SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_ms IS NULL";

// ---- the admin app ----------------------------------------------------------------------------

pub(crate) const CREATE_ADMIN: &str = "INSERT INTO admins \
     (email, password_hash, role, totp_sealed, totp_last_step, created_ms) \
     VALUES ($1, $2, $3, $4, 0, $5) RETURNING id";
pub(crate) const ADMIN: &str = "SELECT id, email, password_hash, role, totp_sealed, totp_last_step, \
     created_ms, disabled_ms FROM admins WHERE id = $1";
pub(crate) const ADMIN_BY_EMAIL: &str = "SELECT id, email, password_hash, role, totp_sealed, \
     totp_last_step, created_ms, disabled_ms FROM admins WHERE email = $1";
pub(crate) const ADMINS: &str = "SELECT id, email, password_hash, role, totp_sealed, totp_last_step, \
     created_ms, disabled_ms FROM admins ORDER BY id";
/// [`USE_TOTP_STEP`] for an admin.
pub(crate) const USE_ADMIN_TOTP_STEP: &str =
    "UPDATE admins SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2";
pub(crate) const INSERT_ADMIN_SESSION: &str = "INSERT INTO admin_sessions \
     (admin_id, token_hash, created_ms, last_seen_ms, totp_ms, ip, user_agent) \
     VALUES ($1, $2, $3, $3, $4, $5, $6) RETURNING id";
/// Not ended, and its admin not disabled.
pub(crate) const LIVE_ADMIN_SESSION: &str = "SELECT s.id AS id, s.admin_id AS admin_id, \
     s.created_ms AS created_ms, s.last_seen_ms AS last_seen_ms, s.totp_ms AS totp_ms, s.ip AS ip, \
     s.user_agent AS user_agent FROM admin_sessions s JOIN admins a ON a.id = s.admin_id \
     WHERE s.token_hash = $1 AND s.ended_ms IS NULL AND a.disabled_ms IS NULL";
/// `$1` id, `$2` now, `$3` when a code was entered or NULL (kept).
pub(crate) const TOUCH_ADMIN_SESSION: &str = "UPDATE admin_sessions SET last_seen_ms = $2, \
     totp_ms = COALESCE($3, totp_ms) WHERE id = $1 AND ended_ms IS NULL";
pub(crate) const END_ADMIN_SESSION: &str =
    "UPDATE admin_sessions SET ended_ms = $2 WHERE id = $1 AND ended_ms IS NULL";
pub(crate) const INSERT_ADMIN_ACTION: &str = "INSERT INTO admin_actions \
     (admin_id, at_ms, ip, action, target, reason, detail) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     RETURNING id";
/// `$1` inclusive upper bound on id, `$2` limit. Walks the primary key newest first.
pub(crate) const ADMIN_ACTIONS: &str = "SELECT x.id AS id, x.admin_id AS admin_id, \
     a.email AS admin_email, x.at_ms AS at_ms, x.ip AS ip, x.action AS action, x.target AS target, \
     x.reason AS reason, x.detail AS detail FROM admin_actions x JOIN admins a ON a.id = x.admin_id \
     WHERE x.id <= $1 ORDER BY x.id DESC LIMIT $2";
/// `$1` withdrawal, `$2` admin, `$3` now.
pub(crate) const INSERT_WITHDRAWAL_APPROVAL: &str = "INSERT INTO withdrawal_approvals \
     (withdrawal_id, admin_id, at_ms) VALUES ($1, $2, $3)";
/// In the order they were given (by id, not by the caller's clock).
pub(crate) const WITHDRAWAL_APPROVALS: &str =
    "SELECT admin_id FROM withdrawal_approvals WHERE withdrawal_id = $1 ORDER BY id";

/// `$1` user, `$2` asset, `$3` delta, `$4` reason, `$5` proposer, `$6` when.
pub(crate) const INSERT_ADJUSTMENT: &str = "INSERT INTO balance_adjustments \
     (user_id, asset_id, delta, reason, proposed_by, proposed_ms, status) \
     VALUES ($1, $2, $3, $4, $5, $6, 'pending') RETURNING id";
pub(crate) const ADJUSTMENT: &str = "SELECT x.id AS id, x.user_id AS user_id, \
     x.asset_id AS asset_id, x.delta AS delta, x.reason AS reason, x.proposed_by AS proposed_by, \
     p.email AS proposed_by_email, x.proposed_ms AS proposed_ms, x.status AS status, \
     x.decided_by AS decided_by, d.email AS decided_by_email, x.decided_ms AS decided_ms, \
     x.outcome AS outcome, x.finished_ms AS finished_ms FROM balance_adjustments x \
     JOIN admins p ON p.id = x.proposed_by LEFT JOIN admins d ON d.id = x.decided_by \
     WHERE x.id = $1";
/// `$1` inclusive upper bound on id, `$2` limit. Walks the primary key newest first.
pub(crate) const ADJUSTMENTS: &str = "SELECT x.id AS id, x.user_id AS user_id, \
     x.asset_id AS asset_id, x.delta AS delta, x.reason AS reason, x.proposed_by AS proposed_by, \
     p.email AS proposed_by_email, x.proposed_ms AS proposed_ms, x.status AS status, \
     x.decided_by AS decided_by, d.email AS decided_by_email, x.decided_ms AS decided_ms, \
     x.outcome AS outcome, x.finished_ms AS finished_ms FROM balance_adjustments x \
     JOIN admins p ON p.id = x.proposed_by LEFT JOIN admins d ON d.id = x.decided_by \
     WHERE x.id <= $1 ORDER BY x.id DESC LIMIT $2";
/// [`ADJUSTMENTS`] of one status (`$3`), served by `balance_adjustments_status`.
pub(crate) const ADJUSTMENTS_IN_STATUS: &str = "SELECT x.id AS id, x.user_id AS user_id, \
     x.asset_id AS asset_id, x.delta AS delta, x.reason AS reason, x.proposed_by AS proposed_by, \
     p.email AS proposed_by_email, x.proposed_ms AS proposed_ms, x.status AS status, \
     x.decided_by AS decided_by, d.email AS decided_by_email, x.decided_ms AS decided_ms, \
     x.outcome AS outcome, x.finished_ms AS finished_ms FROM balance_adjustments x \
     JOIN admins p ON p.id = x.proposed_by LEFT JOIN admins d ON d.id = x.decided_by \
     WHERE x.status = $3 AND x.id <= $1 ORDER BY x.id DESC LIMIT $2";
/// A compare-and-set from `pending`: `$1` id, `$2` the approving admin, `$3` now. The proposer
/// never matches, so no admin approves their own.
pub(crate) const APPROVE_ADJUSTMENT: &str = "UPDATE balance_adjustments SET status = 'approved', \
     decided_by = $2, decided_ms = $3 WHERE id = $1 AND status = 'pending' AND proposed_by <> $2";
/// A compare-and-set from `pending`: `$1` id, `$2` the rejecting admin (the proposer too), `$3`
/// now, `$4` their reason.
pub(crate) const REJECT_ADJUSTMENT: &str = "UPDATE balance_adjustments SET status = 'rejected', \
     decided_by = $2, decided_ms = $3, outcome = $4 WHERE id = $1 AND status = 'pending'";
/// A compare-and-set from `approved`: `$1` id, `$2` `applied` or `refused`, `$3` the outcome,
/// `$4` now.
pub(crate) const FINISH_ADJUSTMENT: &str = "UPDATE balance_adjustments SET status = $2, \
     outcome = $3, finished_ms = $4 WHERE id = $1 AND status = 'approved'";

// ---- tokens -----------------------------------------------------------------------------------

pub(crate) const INSERT_TOKEN: &str = "INSERT INTO tokens (token_hash, user_id, purpose, created_ms, expires_ms, \
     subject) VALUES ($1, $2, $3, $4, $5, $6)";
pub(crate) const USE_TOKEN: &str = "UPDATE tokens SET used_ms = $3 \
     WHERE token_hash = $1 AND purpose = $2 AND used_ms IS NULL AND expires_ms > $3 \
     RETURNING user_id, subject";
/// `$1` user, `$2` purpose, `$3` subject, `$4` now. Served by `tokens_user`.
pub(crate) const EXPIRE_TOKENS: &str = "UPDATE tokens SET used_ms = $4 \
     WHERE user_id = $1 AND purpose = $2 AND subject = $3 AND used_ms IS NULL";

// ---- sessions ---------------------------------------------------------------------------------

pub(crate) const INSERT_SESSION: &str = "INSERT INTO sessions \
     (token_hash, user_id, created_ms, last_seen_ms, expires_ms, ip, user_agent, revoked) \
     VALUES ($1, $2, $3, $3, $4, $5, $6, FALSE) RETURNING id";
pub(crate) const LIVE_SESSION: &str = "SELECT id, user_id, created_ms, last_seen_ms, expires_ms, ip, user_agent FROM sessions \
     WHERE token_hash = $1 AND revoked = FALSE AND expires_ms > $2";
pub(crate) const TOUCH_SESSION: &str =
    "UPDATE sessions SET last_seen_ms = $2, expires_ms = $3 WHERE id = $1 AND revoked = FALSE";
pub(crate) const SESSIONS: &str = "SELECT id, user_id, created_ms, last_seen_ms, expires_ms, ip, user_agent FROM sessions \
     WHERE user_id = $1 AND revoked = FALSE AND expires_ms > $2 ORDER BY id DESC LIMIT $3";
pub(crate) const REVOKE_SESSION: &str =
    "UPDATE sessions SET revoked = TRUE WHERE id = $1 AND user_id = $2 AND revoked = FALSE";
pub(crate) const REVOKE_SESSIONS: &str = "UPDATE sessions SET revoked = TRUE \
     WHERE user_id = $1 AND revoked = FALSE AND ($2 IS NULL OR id <> $2)";

// ---- API keys ---------------------------------------------------------------------------------

pub(crate) const INSERT_API_KEY: &str = "INSERT INTO api_keys \
     (user_id, key_id, secret_sealed, label, scopes, ip_allowlist, created_ms, revoked) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE) RETURNING id";
pub(crate) const API_KEY: &str = "SELECT id, user_id, key_id, secret_sealed, label, scopes, ip_allowlist, created_ms \
     FROM api_keys WHERE key_id = $1 AND revoked = FALSE";
pub(crate) const API_KEYS: &str = "SELECT id, user_id, key_id, secret_sealed, label, scopes, ip_allowlist, created_ms \
     FROM api_keys WHERE user_id = $1 AND revoked = FALSE ORDER BY id DESC LIMIT $2";
pub(crate) const REVOKE_API_KEY: &str =
    "UPDATE api_keys SET revoked = TRUE WHERE id = $1 AND user_id = $2 AND revoked = FALSE";

// ---- security events --------------------------------------------------------------------------

pub(crate) const INSERT_SECURITY_EVENT: &str = "INSERT INTO security_events \
     (user_id, at_ms, kind, ip, user_agent, detail) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
/// `$1` user, `$2` inclusive upper bound on id, `$3` limit. Served by `security_events_user`.
pub(crate) const SECURITY_EVENTS: &str = "SELECT id, user_id, at_ms, kind, ip, user_agent, detail \
     FROM security_events WHERE user_id = $1 AND id <= $2 ORDER BY id DESC LIMIT $3";

// ---- projection -------------------------------------------------------------------------------

pub(crate) const SET_CURSOR: &str = "UPDATE projector_cursor SET seq = $1 WHERE id = 1";
pub(crate) const CURSOR: &str = "SELECT seq FROM projector_cursor WHERE id = 1";

pub(crate) const INSERT_RELAY: &str =
    "INSERT INTO relay (to_seq, from_seq, created_ms, body) VALUES ($1, $2, $3, $4)";
pub(crate) const RELAY_AFTER: &str = "SELECT from_seq, to_seq, created_ms, body FROM relay \
     WHERE to_seq > $1 ORDER BY to_seq LIMIT $2";
pub(crate) const PRUNE_RELAY: &str = "DELETE FROM relay WHERE created_ms < $1";

pub(crate) const RECORD_RECONCILIATION: &str = "INSERT INTO reconciliations \
     (asset_id, liabilities, hot, shortfall, paused, at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (asset_id) DO UPDATE SET liabilities = excluded.liabilities, hot = excluded.hot, \
     shortfall = excluded.shortfall, paused = excluded.paused, at_ms = excluded.at_ms";
pub(crate) const RECONCILIATIONS: &str = "SELECT asset_id, liabilities, hot, shortfall, paused, \
     at_ms FROM reconciliations ORDER BY asset_id";

pub(crate) const OPEN_ORDERS_ALL: &str = "SELECT id, user_id, market_id, side, kind, time_in_force, price, quantity, quote_amount, \
     client_order_id, stp, status, end_reason, filled, filled_quote, fee, created_seq, created_ms, updated_ms \
     FROM orders WHERE status IN ('open', 'partial') ORDER BY id";
pub(crate) const LATEST_CANDLES: &str = "SELECT c.market_id AS market_id, c.period AS period, c.open_ms AS open_ms, c.open AS open, \
     c.high AS high, c.low AS low, c.close AS close, c.volume AS volume, c.quote_volume AS quote_volume, \
     c.trades AS trades \
     FROM candles c JOIN (SELECT market_id, period, MAX(open_ms) AS open_ms FROM candles \
     GROUP BY market_id, period) l \
     ON c.market_id = l.market_id AND c.period = l.period AND c.open_ms = l.open_ms \
     ORDER BY c.market_id, c.period";

/// The newest row of each asset (the grouping walks the primary key).
pub(crate) const LATEST_FEE_REVENUE: &str = "SELECT f.asset_id AS asset_id, f.hour_ms AS hour_ms, \
     f.trade_fees AS trade_fees, f.withdrawal_fees AS withdrawal_fees \
     FROM fee_revenue f JOIN (SELECT asset_id, MAX(hour_ms) AS hour_ms FROM fee_revenue \
     GROUP BY asset_id) l ON f.asset_id = l.asset_id AND f.hour_ms = l.hour_ms \
     ORDER BY f.asset_id";
/// `$1` inclusive, `$2` exclusive bound on `hour_ms`. Served by `fee_revenue_hour`.
pub(crate) const FEE_REVENUE: &str = "SELECT asset_id, hour_ms, trade_fees, withdrawal_fees \
     FROM fee_revenue WHERE hour_ms >= $1 AND hour_ms < $2 ORDER BY hour_ms, asset_id";
/// Whether the backfill has anything to do (a row: no).
pub(crate) const ANY_FEE_REVENUE: &str = "SELECT asset_id FROM fee_revenue LIMIT 1";
/// One page of a market's trades for the fee backfill: `$1` market, `$2` exclusive lower bound
/// on id, `$3` page size. Walks the primary key.
pub(crate) const TRADE_FEES_PAGE: &str = "SELECT id, maker_fee, taker_fee, time_ms FROM trades \
     WHERE market_id = $1 AND id > $2 ORDER BY id LIMIT $3";
/// One page of the completed withdrawals for the fee backfill: `$1` exclusive lower bound on id,
/// `$2` page size. Served by `withdrawals_status`.
pub(crate) const WITHDRAWAL_FEES_PAGE: &str = "SELECT id, asset_id, fee, updated_ms \
     FROM withdrawals WHERE status = 'completed' AND id > $1 ORDER BY id LIMIT $2";

// ---- read models ------------------------------------------------------------------------------

/// `$1` market. Walks the partial index `orders_open` (open orders only).
pub(crate) const OPEN_ORDER_USERS: &str = "SELECT DISTINCT user_id FROM orders \
     WHERE market_id = $1 AND status IN ('open', 'partial') ORDER BY user_id";

pub(crate) const BALANCE: &str = "SELECT user_id, asset_id, available, locked, held, seq FROM balances \
     WHERE user_id = $1 AND asset_id = $2";
pub(crate) const BALANCES: &str = "SELECT user_id, asset_id, available, locked, held, seq FROM balances \
     WHERE user_id = $1 ORDER BY asset_id";

pub(crate) const ORDER: &str = "SELECT id, user_id, market_id, side, kind, time_in_force, price, quantity, quote_amount, \
     client_order_id, stp, status, end_reason, filled, filled_quote, fee, created_seq, created_ms, updated_ms \
     FROM orders WHERE id = $1 AND user_id = $2";
pub(crate) const ORDER_BY_CLIENT_ID: &str = "SELECT id, user_id, market_id, side, kind, time_in_force, price, quantity, quote_amount, \
     client_order_id, stp, status, end_reason, filled, filled_quote, fee, created_seq, created_ms, updated_ms \
     FROM orders WHERE user_id = $1 AND client_order_id = $2 AND ($3 IS NULL OR market_id = $3) \
     ORDER BY id DESC LIMIT 1";
/// `$1` user, `$2` market or NULL, `$3` inclusive upper bound on id, `$4` limit.
pub(crate) const ORDERS: &str = "SELECT id, user_id, market_id, side, kind, time_in_force, price, quantity, quote_amount, \
     client_order_id, stp, status, end_reason, filled, filled_quote, fee, created_seq, created_ms, updated_ms \
     FROM orders WHERE user_id = $1 AND ($2 IS NULL OR market_id = $2) AND id <= $3 \
     ORDER BY id DESC LIMIT $4";
/// [`ORDERS`] restricted to open orders (served by the partial index `orders_user_open`).
pub(crate) const OPEN_ORDERS: &str = "SELECT id, user_id, market_id, side, kind, time_in_force, price, quantity, quote_amount, \
     client_order_id, stp, status, end_reason, filled, filled_quote, fee, created_seq, created_ms, updated_ms \
     FROM orders WHERE user_id = $1 AND ($2 IS NULL OR market_id = $2) AND id <= $3 \
     AND status IN ('open', 'partial') \
     ORDER BY id DESC LIMIT $4";

/// `$1` user, `$2` market or NULL, `$3..$5` the exclusive `(seq, market_id, id)` bound, `$6`
/// limit. Each branch walks its own index (`trades_maker`, `trades_taker`) newest first; a
/// self-trade is taken from the maker branch only, so it appears once.
pub(crate) const FILLS: &str = "SELECT * FROM (\
     SELECT market_id, id, price, quantity, notional, taker_side, maker_order, maker_user, maker_fee, \
     taker_order, taker_user, taker_fee, seq, time_ms FROM trades \
     WHERE maker_user = $1 AND ($2 IS NULL OR market_id = $2) AND (seq, market_id, id) < ($3, $4, $5) \
     ORDER BY seq DESC, market_id DESC, id DESC LIMIT $6) AS m \
     UNION ALL SELECT * FROM (\
     SELECT market_id, id, price, quantity, notional, taker_side, maker_order, maker_user, maker_fee, \
     taker_order, taker_user, taker_fee, seq, time_ms FROM trades \
     WHERE taker_user = $1 AND maker_user <> $1 AND ($2 IS NULL OR market_id = $2) \
     AND (seq, market_id, id) < ($3, $4, $5) \
     ORDER BY seq DESC, market_id DESC, id DESC LIMIT $6) AS t \
     ORDER BY seq DESC, market_id DESC, id DESC LIMIT $6";
/// [`FILLS`] of one order of the user (`$7`): its few trades are found through
/// `trades_maker_order` / `trades_taker_order`, then sorted. The unary `+` keeps SQLite's
/// planner off the per-user indexes, which would walk every fill of the user.
pub(crate) const FILLS_OF_ORDER: &str = "SELECT market_id, id, price, quantity, notional, taker_side, maker_order, maker_user, \
     maker_fee, taker_order, taker_user, taker_fee, seq, time_ms FROM trades \
     WHERE ((maker_order = $7 AND +maker_user = $1) OR (taker_order = $7 AND +taker_user = $1)) \
     AND ($2 IS NULL OR market_id = $2) AND (seq, market_id, id) < ($3, $4, $5) \
     ORDER BY seq DESC, market_id DESC, id DESC LIMIT $6";

/// `$1` market, `$2` inclusive upper bound on id, `$3` limit.
pub(crate) const TRADES: &str = "SELECT market_id, id, price, quantity, notional, taker_side, maker_order, maker_user, maker_fee, \
     taker_order, taker_user, taker_fee, seq, time_ms FROM trades \
     WHERE market_id = $1 AND id <= $2 ORDER BY id DESC LIMIT $3";

// Binance-style ranges (`RangeFilter`). Every statement of one method takes the same parameters,
// absent bounds bound as the widest values; the first `limit` rows by ascending id, or (`NEWEST`)
// the last `limit` by descending id, which the backend reverses.

/// `$1` market, `$2` lowest id, `$3..=$4` inclusive bounds on `time_ms`, `$5` limit. Walks the
/// primary key up from `$2`; the unary `+` keeps SQLite's planner off `trades_market_time`,
/// which would read the whole time window to sort it.
pub(crate) const TRADES_FROM_ID: &str = "SELECT market_id, id, price, quantity, notional, taker_side, maker_order, maker_user, maker_fee, \
     taker_order, taker_user, taker_fee, seq, time_ms FROM trades \
     WHERE market_id = $1 AND id >= $2 AND +time_ms >= $3 AND +time_ms <= $4 ORDER BY id LIMIT $5";
/// [`TRADES_FROM_ID`] without a lowest id (`$2` is the smallest value): reads the time window
/// through `trades_market_time` and sorts it by id (the unary `+` keeps SQLite's planner off the
/// primary key, which would walk every trade of the market before the window).
pub(crate) const TRADES_FROM_TIME: &str = "SELECT market_id, id, price, quantity, notional, taker_side, maker_order, maker_user, maker_fee, \
     taker_order, taker_user, taker_fee, seq, time_ms FROM trades \
     WHERE market_id = $1 AND +id >= $2 AND time_ms >= $3 AND time_ms <= $4 ORDER BY id LIMIT $5";
/// [`TRADES_FROM_ID`] newest first (no lowest id, no `start_ms`): walks the primary key down from
/// the market's newest trade.
pub(crate) const TRADES_NEWEST: &str = "SELECT market_id, id, price, quantity, notional, taker_side, maker_order, maker_user, maker_fee, \
     taker_order, taker_user, taker_fee, seq, time_ms FROM trades \
     WHERE market_id = $1 AND id >= $2 AND +time_ms >= $3 AND +time_ms <= $4 \
     ORDER BY id DESC LIMIT $5";

/// `$1` user, `$2` market, `$3` lowest trade id, `$4..=$5` inclusive bounds on `time_ms`, `$6`
/// limit. Each branch walks its own index (`trades_maker_market`, `trades_taker_market`) up from
/// `$3` (the unary `+` keeps SQLite's planner off `trades_market_time`, which holds every user's
/// trades); a self-trade is taken from the maker branch only, so it appears once.
pub(crate) const FILLS_RANGE: &str = "SELECT * FROM (\
     SELECT market_id, id, price, quantity, notional, taker_side, maker_order, maker_user, maker_fee, \
     taker_order, taker_user, taker_fee, seq, time_ms FROM trades \
     WHERE maker_user = $1 AND market_id = $2 AND id >= $3 AND +time_ms >= $4 AND +time_ms <= $5 \
     ORDER BY id LIMIT $6) AS m \
     UNION ALL SELECT * FROM (\
     SELECT market_id, id, price, quantity, notional, taker_side, maker_order, maker_user, maker_fee, \
     taker_order, taker_user, taker_fee, seq, time_ms FROM trades \
     WHERE taker_user = $1 AND maker_user <> $1 AND market_id = $2 AND id >= $3 \
     AND +time_ms >= $4 AND +time_ms <= $5 \
     ORDER BY id LIMIT $6) AS t \
     ORDER BY id LIMIT $6";
/// [`FILLS_RANGE`] newest first: each branch walks its index down.
pub(crate) const FILLS_RANGE_NEWEST: &str = "SELECT * FROM (\
     SELECT market_id, id, price, quantity, notional, taker_side, maker_order, maker_user, maker_fee, \
     taker_order, taker_user, taker_fee, seq, time_ms FROM trades \
     WHERE maker_user = $1 AND market_id = $2 AND id >= $3 AND +time_ms >= $4 AND +time_ms <= $5 \
     ORDER BY id DESC LIMIT $6) AS m \
     UNION ALL SELECT * FROM (\
     SELECT market_id, id, price, quantity, notional, taker_side, maker_order, maker_user, maker_fee, \
     taker_order, taker_user, taker_fee, seq, time_ms FROM trades \
     WHERE taker_user = $1 AND maker_user <> $1 AND market_id = $2 AND id >= $3 \
     AND +time_ms >= $4 AND +time_ms <= $5 \
     ORDER BY id DESC LIMIT $6) AS t \
     ORDER BY id DESC LIMIT $6";
/// [`FILLS_RANGE`] of one order of the user (`$7`): its few trades are found through
/// `trades_maker_order` / `trades_taker_order`, then sorted. The unary `+` keeps SQLite's planner
/// off the per-user and per-market indexes, which would walk every fill of the user or every
/// trade of the market.
pub(crate) const FILLS_OF_ORDER_RANGE: &str = "SELECT market_id, id, price, quantity, notional, taker_side, maker_order, maker_user, \
     maker_fee, taker_order, taker_user, taker_fee, seq, time_ms FROM trades \
     WHERE ((maker_order = $7 AND +maker_user = $1) OR (taker_order = $7 AND +taker_user = $1)) \
     AND +market_id = $2 AND +id >= $3 AND +time_ms >= $4 AND +time_ms <= $5 \
     ORDER BY id LIMIT $6";
/// [`FILLS_OF_ORDER_RANGE`] newest first.
pub(crate) const FILLS_OF_ORDER_RANGE_NEWEST: &str = "SELECT market_id, id, price, quantity, notional, taker_side, maker_order, maker_user, \
     maker_fee, taker_order, taker_user, taker_fee, seq, time_ms FROM trades \
     WHERE ((maker_order = $7 AND +maker_user = $1) OR (taker_order = $7 AND +taker_user = $1)) \
     AND +market_id = $2 AND +id >= $3 AND +time_ms >= $4 AND +time_ms <= $5 \
     ORDER BY id DESC LIMIT $6";

/// `$1` user, `$2` market, `$3` lowest order id, `$4..=$5` inclusive bounds on `created_ms`, `$6`
/// limit. Walks `orders_user_market` up from `$3`.
pub(crate) const ORDERS_RANGE: &str = "SELECT id, user_id, market_id, side, kind, time_in_force, price, quantity, quote_amount, \
     client_order_id, stp, status, end_reason, filled, filled_quote, fee, created_seq, created_ms, updated_ms \
     FROM orders WHERE user_id = $1 AND market_id = $2 AND id >= $3 \
     AND created_ms >= $4 AND created_ms <= $5 ORDER BY id LIMIT $6";
/// [`ORDERS_RANGE`] newest first: walks `orders_user_market` down.
pub(crate) const ORDERS_RANGE_NEWEST: &str = "SELECT id, user_id, market_id, side, kind, time_in_force, price, quantity, quote_amount, \
     client_order_id, stp, status, end_reason, filled, filled_quote, fee, created_seq, created_ms, updated_ms \
     FROM orders WHERE user_id = $1 AND market_id = $2 AND id >= $3 \
     AND created_ms >= $4 AND created_ms <= $5 ORDER BY id DESC LIMIT $6";

/// `$1` user, `$2` asset or NULL, `$3` inclusive upper bound on id, `$4` limit.
pub(crate) const LEDGER: &str = "SELECT id, user_id, asset_id, seq, time_ms, kind, reference, delta_available, delta_locked, \
     delta_held, available, locked, held FROM ledger \
     WHERE user_id = $1 AND ($2 IS NULL OR asset_id = $2) AND id <= $3 ORDER BY id DESC LIMIT $4";

/// `$1` market, `$2` interval, `$3..=$4` inclusive bounds on `open_ms`, `$5` limit.
pub(crate) const CANDLES: &str = "SELECT market_id, period, open_ms, open, high, low, close, volume, quote_volume, trades \
     FROM candles WHERE market_id = $1 AND period = $2 AND open_ms >= $3 AND open_ms <= $4 \
     ORDER BY open_ms DESC LIMIT $5";

// ---- wallet -------------------------------------------------------------------------------------

pub(crate) const INSERT_DEPOSIT_ADDRESS: &str = "INSERT INTO deposit_addresses \
     (user_id, asset_id, address, label, created_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id";
pub(crate) const DEPOSIT_ADDRESSES: &str = "SELECT id, user_id, asset_id, address, label, created_ms \
     FROM deposit_addresses WHERE user_id = $1 AND asset_id = $2 ORDER BY id DESC LIMIT $3";
pub(crate) const DEPOSIT_ADDRESS: &str = "SELECT id, user_id, asset_id, address, label, created_ms \
     FROM deposit_addresses WHERE asset_id = $1 AND address = $2";
pub(crate) const UPSERT_DEPOSIT: &str = "INSERT INTO deposits (asset_id, txid, vout, user_id, address, \
     amount, confirmations, status, seq, first_seen_ms, updated_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
     ON CONFLICT (asset_id, txid, vout) DO UPDATE SET confirmations = excluded.confirmations, \
     status = excluded.status, seq = excluded.seq, updated_ms = excluded.updated_ms";
pub(crate) const DEPOSIT: &str = "SELECT id, asset_id, txid, vout, user_id, address, amount, \
     confirmations, status, seq, first_seen_ms, updated_ms \
     FROM deposits WHERE asset_id = $1 AND txid = $2 AND vout = $3";
/// Deposits of every user: `$1` inclusive upper bound on id, `$2` limit. Walks the primary key
/// newest first.
pub(crate) const RECENT_DEPOSITS: &str = "SELECT id, asset_id, txid, vout, user_id, address, \
     amount, confirmations, status, seq, first_seen_ms, updated_ms \
     FROM deposits WHERE id <= $1 ORDER BY id DESC LIMIT $2";
/// [`RECENT_DEPOSITS`] of one status (`$3`), served by `deposits_status`.
pub(crate) const RECENT_DEPOSITS_IN_STATUS: &str = "SELECT id, asset_id, txid, vout, user_id, \
     address, amount, confirmations, status, seq, first_seen_ms, updated_ms \
     FROM deposits WHERE status = $3 AND id <= $1 ORDER BY id DESC LIMIT $2";
/// `$1` user, `$2` asset or NULL, `$3` inclusive upper bound on id, `$4` limit.
pub(crate) const DEPOSITS: &str = "SELECT id, asset_id, txid, vout, user_id, address, amount, \
     confirmations, status, seq, first_seen_ms, updated_ms \
     FROM deposits WHERE user_id = $1 AND ($2 IS NULL OR asset_id = $2) AND id <= $3 \
     ORDER BY id DESC LIMIT $4";
pub(crate) const WATCHED_DEPOSITS: &str = "SELECT id, asset_id, txid, vout, user_id, address, amount, \
     confirmations, status, seq, first_seen_ms, updated_ms \
     FROM deposits WHERE asset_id = $1 \
     AND (status = 'pending' OR (status = 'credited' AND confirmations < $2)) ORDER BY id";
pub(crate) const WALLET_CURSOR: &str = "SELECT block_hash FROM wallet_cursors WHERE asset_id = $1";
pub(crate) const SET_WALLET_CURSOR: &str = "INSERT INTO wallet_cursors (asset_id, block_hash, updated_ms) \
     VALUES ($1, $2, $3) ON CONFLICT (asset_id) DO UPDATE SET block_hash = excluded.block_hash, \
     updated_ms = excluded.updated_ms";

pub(crate) const INSERT_ALERT: &str =
    "INSERT INTO operator_alerts (at_ms, source, message) VALUES ($1, $2, $3) RETURNING id";
pub(crate) const ALERTS: &str =
    "SELECT id, at_ms, source, message FROM operator_alerts ORDER BY id DESC LIMIT $1";
pub(crate) const ALERTS_AFTER: &str = "SELECT id, at_ms, source, message FROM operator_alerts \
     WHERE id > $1 ORDER BY id LIMIT $2";
pub(crate) const ALERT_SINK: &str = "SELECT last_id FROM alert_sinks WHERE sink = $1";
pub(crate) const SET_ALERT_SINK: &str = "INSERT INTO alert_sinks (sink, last_id) VALUES ($1, $2) \
     ON CONFLICT (sink) DO UPDATE SET last_id = excluded.last_id";

// ---- backups ----------------------------------------------------------------------------------

pub(crate) const INSERT_BACKUP: &str = "INSERT INTO backups (started_at_ms, finished_at_ms, \
     destination, name, seq, state_hash, bytes, ok, error) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
/// `$1` limit.
pub(crate) const RECENT_BACKUPS: &str = "SELECT id, started_at_ms, finished_at_ms, destination, \
     name, seq, state_hash, bytes, ok, error FROM backups ORDER BY id DESC LIMIT $1";
pub(crate) const LAST_GOOD_BACKUP: &str = "SELECT id, started_at_ms, finished_at_ms, destination, \
     name, seq, state_hash, bytes, ok, error FROM backups WHERE ok = TRUE ORDER BY id DESC LIMIT 1";

// ---- mail outbox ------------------------------------------------------------------------------

pub(crate) const ENQUEUE_MAIL: &str = "INSERT INTO mail_outbox (to_address, subject, text_body, \
     html_body, created_ms, next_attempt_ms) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id";
/// `$1` now, `$2` limit. Served by the partial index `mail_outbox_due` (same predicate, same
/// order), so it stops after `$2` index entries whatever the backlog.
pub(crate) const DUE_MAILS: &str = "SELECT id, to_address, subject, text_body, html_body, \
     created_ms, attempts, next_attempt_ms, sent_ms, last_error FROM mail_outbox \
     WHERE sent_ms IS NULL AND next_attempt_ms <= $1 ORDER BY next_attempt_ms, id LIMIT $2";
/// Keeps the first time if told twice.
pub(crate) const MAIL_SENT: &str =
    "UPDATE mail_outbox SET sent_ms = COALESCE(sent_ms, $2) WHERE id = $1";
/// A mail already sent is left alone.
pub(crate) const MAIL_FAILED: &str = "UPDATE mail_outbox SET attempts = attempts + 1, \
     last_error = $2, next_attempt_ms = $3 WHERE id = $1 AND sent_ms IS NULL";
pub(crate) const MAIL_QUEUE_LEN: &str =
    "SELECT COUNT(*) AS n FROM mail_outbox WHERE sent_ms IS NULL";

pub(crate) const INSERT_WITHDRAWAL: &str = "INSERT INTO withdrawals (user_id, asset_id, address, \
     amount, fee, status, after_hold, created_ms, updated_ms) \
     VALUES ($1, $2, $3, $4, $5, 'requested', $7, $6, $6) RETURNING id";
pub(crate) const WITHDRAWAL: &str = "SELECT id, user_id, asset_id, address, amount, fee, status, \
     after_hold, txid, reason, created_ms, updated_ms FROM withdrawals WHERE user_id = $1 AND id = $2";
pub(crate) const WITHDRAWAL_BY_ID: &str = "SELECT id, user_id, asset_id, address, amount, fee, \
     status, after_hold, txid, reason, created_ms, updated_ms FROM withdrawals WHERE id = $1";
/// `$1` user, `$2` asset or NULL, `$3` inclusive upper bound on id, `$4` limit.
pub(crate) const WITHDRAWALS: &str = "SELECT id, user_id, asset_id, address, amount, fee, status, \
     after_hold, txid, reason, created_ms, updated_ms FROM withdrawals \
     WHERE user_id = $1 AND ($2 IS NULL OR asset_id = $2) AND id <= $3 ORDER BY id DESC LIMIT $4";
/// Served by the partial index `withdrawals_open` (same status list).
pub(crate) const OPEN_WITHDRAWALS: &str = "SELECT id, user_id, asset_id, address, amount, fee, status, \
     after_hold, txid, reason, created_ms, updated_ms FROM withdrawals \
     WHERE asset_id = $1 \
     AND status IN ('requested', 'held', 'unconfirmed', 'review', 'cancelling', 'sending', 'sent') \
     ORDER BY id";
/// `$1` status, `$2` limit. Served by `withdrawals_status`.
pub(crate) const WITHDRAWALS_IN_STATUS: &str = "SELECT id, user_id, asset_id, address, amount, fee, \
     status, after_hold, txid, reason, created_ms, updated_ms FROM withdrawals \
     WHERE status = $1 ORDER BY id LIMIT $2";
pub(crate) const SET_WITHDRAWAL_STATUS: &str = "UPDATE withdrawals SET status = $2, \
     txid = COALESCE($3, txid), reason = COALESCE($4, reason), updated_ms = $5 WHERE id = $1";
/// A compare-and-set: `$1` id, `$2` the status it must have, `$3` the new one, `$4` reason or
/// NULL (kept), `$5` now.
pub(crate) const TRANSITION_WITHDRAWAL: &str = "UPDATE withdrawals SET status = $3, \
     reason = COALESCE($4, reason), updated_ms = $5 WHERE id = $1 AND status = $2";

// ---- withdrawal addresses ---------------------------------------------------------------------

pub(crate) const INSERT_WITHDRAWAL_ADDRESS: &str = "INSERT INTO withdrawal_addresses \
     (user_id, asset_id, address, label, created_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id";
/// `$1` user, `$2` id, `$3` now, `$4` usable from.
pub(crate) const CONFIRM_WITHDRAWAL_ADDRESS: &str = "UPDATE withdrawal_addresses \
     SET confirmed_ms = $3, usable_from_ms = $4 \
     WHERE id = $2 AND user_id = $1 AND confirmed_ms IS NULL AND removed_ms IS NULL";
/// `$1` user, `$2` limit. Served by the partial index `withdrawal_addresses_user`.
pub(crate) const WITHDRAWAL_ADDRESSES: &str = "SELECT id, user_id, asset_id, address, label, \
     created_ms, confirmed_ms, usable_from_ms FROM withdrawal_addresses \
     WHERE user_id = $1 AND removed_ms IS NULL ORDER BY id DESC LIMIT $2";
/// `$1` user, `$2` id, `$3` now.
pub(crate) const REMOVE_WITHDRAWAL_ADDRESS: &str = "UPDATE withdrawal_addresses SET removed_ms = $3 \
     WHERE id = $2 AND user_id = $1 AND removed_ms IS NULL";
pub(crate) const DISCARD_WITHDRAWAL: &str =
    "DELETE FROM withdrawals WHERE id = $1 AND status = 'requested'";

// ---- chain sends --------------------------------------------------------------------------------

pub(crate) const INSERT_CHAIN_SEND: &str = "INSERT INTO chain_sends (asset_id, kind, withdrawal_id, \
     from_address, to_address, nonce, txid, raw, value, status, created_ms, updated_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'signed', $10, $10) RETURNING id";
/// Served by the partial index `chain_sends_open`.
pub(crate) const OPEN_CHAIN_SENDS: &str = "SELECT id, asset_id, kind, withdrawal_id, from_address, \
     to_address, nonce, txid, raw, value, status, fee, created_ms, updated_ms FROM chain_sends \
     WHERE asset_id = $1 AND status IN ('signed', 'sent') ORDER BY id";
pub(crate) const CHAIN_SEND_OF_WITHDRAWAL: &str = "SELECT id, asset_id, kind, withdrawal_id, \
     from_address, to_address, nonce, txid, raw, value, status, fee, created_ms, updated_ms \
     FROM chain_sends WHERE withdrawal_id = $1 AND status <> 'failed' ORDER BY id DESC LIMIT 1";
pub(crate) const SET_CHAIN_SEND_STATUS: &str = "UPDATE chain_sends SET status = $2, \
     fee = COALESCE($3, fee), updated_ms = $4 WHERE id = $1";
/// Served by the partial unique index `chain_sends_nonce` (same predicate).
pub(crate) const MAX_CHAIN_NONCE: &str = "SELECT MAX(nonce) AS n FROM chain_sends \
     WHERE asset_id = $1 AND from_address = $2 AND status <> 'failed'";
/// Served by the primary key (a range scan above `$2`, usually empty).
pub(crate) const ASSET_DEPOSIT_ADDRESSES: &str = "SELECT id, user_id, asset_id, address, label, \
     created_ms FROM deposit_addresses WHERE asset_id = $1 AND id > $2 ORDER BY id";
