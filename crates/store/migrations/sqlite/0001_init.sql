-- bourse accounts and read models, SQLite. Tables are STRICT, so a value of the wrong type is
-- refused instead of converted. Amounts are TEXT: decimal integers of minor units (u128/i128 do
-- not fit an INTEGER). Enums are short lowercase codes (see src/codec.rs). Times are Unix ms.
-- Booleans are INTEGER 0/1.

-- ---- accounts ---------------------------------------------------------------------------------

-- AUTOINCREMENT: an id is never reused, even after a delete.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    email          TEXT    NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,
    email_verified INTEGER NOT NULL DEFAULT 0,
    created_ms     INTEGER NOT NULL
) STRICT;

CREATE TABLE tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    purpose    TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    used_ms    INTEGER
) STRICT;
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   TEXT    NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    created_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL,
    ip           TEXT    NOT NULL,
    user_agent   TEXT    NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id, id);

CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    key_id        TEXT    NOT NULL UNIQUE,
    secret_sealed BLOB    NOT NULL,
    label         TEXT    NOT NULL,
    scopes        INTEGER NOT NULL,
    -- comma-joined addresses or CIDRs; empty: any address
    ip_allowlist  TEXT    NOT NULL,
    created_ms    INTEGER NOT NULL,
    revoked       INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX api_keys_user ON api_keys (user_id, id);

-- ---- read models (written only by the projector) ------------------------------------------------

-- One row: the last engine seq whose events are in the read models.
CREATE TABLE projector_cursor (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL CHECK (seq >= 0)
) STRICT;
INSERT INTO projector_cursor (id, seq) VALUES (1, 0);

CREATE TABLE orders (
    id              INTEGER NOT NULL PRIMARY KEY,
    user_id         INTEGER NOT NULL,
    market_id       INTEGER NOT NULL,
    side            TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    time_in_force   TEXT,
    price           TEXT,
    quantity        TEXT,
    quote_amount    TEXT,
    client_order_id TEXT,
    stp             TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    end_reason      TEXT,
    filled          TEXT    NOT NULL,
    filled_quote    TEXT    NOT NULL,
    fee             TEXT    NOT NULL,
    created_seq     INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
) STRICT;
CREATE INDEX orders_user ON orders (user_id, id);
CREATE INDEX orders_user_open ON orders (user_id, id) WHERE status IN ('open', 'partial');
-- Every open order, at projector start: small, as only open orders are in it.
CREATE INDEX orders_open ON orders (id) WHERE status IN ('open', 'partial');
CREATE INDEX orders_user_client ON orders (user_id, client_order_id, id)
    WHERE client_order_id IS NOT NULL;

CREATE TABLE trades (
    market_id   INTEGER NOT NULL,
    id          INTEGER NOT NULL,
    price       TEXT    NOT NULL,
    quantity    TEXT    NOT NULL,
    notional    TEXT    NOT NULL,
    taker_side  TEXT    NOT NULL,
    maker_order INTEGER NOT NULL,
    maker_user  INTEGER NOT NULL,
    maker_fee   TEXT    NOT NULL,
    taker_order INTEGER NOT NULL,
    taker_user  INTEGER NOT NULL,
    taker_fee   TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    time_ms     INTEGER NOT NULL,
    PRIMARY KEY (market_id, id)
) STRICT;
CREATE INDEX trades_maker ON trades (maker_user, seq, market_id, id);
CREATE INDEX trades_taker ON trades (taker_user, seq, market_id, id);
-- One order's fills.
CREATE INDEX trades_maker_order ON trades (maker_order);
CREATE INDEX trades_taker_order ON trades (taker_order);

-- INTEGER PRIMARY KEY without AUTOINCREMENT: rows are never deleted, so ids only grow.
CREATE TABLE ledger (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL,
    asset_id        INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    time_ms         INTEGER NOT NULL,
    kind            TEXT    NOT NULL,
    reference       TEXT    NOT NULL,
    delta_available TEXT    NOT NULL,
    delta_locked    TEXT    NOT NULL,
    delta_held      TEXT    NOT NULL,
    available       TEXT    NOT NULL,
    locked          TEXT    NOT NULL,
    held            TEXT    NOT NULL
) STRICT;
CREATE INDEX ledger_user ON ledger (user_id, id);

CREATE TABLE balances (
    user_id   INTEGER NOT NULL,
    asset_id  INTEGER NOT NULL,
    available TEXT    NOT NULL,
    locked    TEXT    NOT NULL,
    held      TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (user_id, asset_id)
) STRICT;

-- period: the interval's code ("1m", "5m", "15m", "1h", "4h", "1d").
CREATE TABLE candles (
    market_id    INTEGER NOT NULL,
    period       TEXT    NOT NULL,
    open_ms      INTEGER NOT NULL,
    open         TEXT    NOT NULL,
    high         TEXT    NOT NULL,
    low          TEXT    NOT NULL,
    close        TEXT    NOT NULL,
    volume       TEXT    NOT NULL,
    quote_volume TEXT    NOT NULL,
    trades       INTEGER NOT NULL,
    PRIMARY KEY (market_id, period, open_ms)
) STRICT;
