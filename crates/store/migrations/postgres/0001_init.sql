-- bourse accounts and read models, PostgreSQL. Amounts are TEXT: decimal integers of minor units
-- (u128/i128 do not fit a BIGINT). Enums are short lowercase codes (see src/codec.rs). Times are
-- Unix ms. Ids and seqs are BIGINT (the u64 values are checked to fit on the way in and out).

-- ---- accounts ---------------------------------------------------------------------------------

CREATE TABLE users (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email          TEXT    NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_ms     BIGINT  NOT NULL
);

CREATE TABLE tokens (
    token_hash TEXT   NOT NULL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    purpose    TEXT   NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    used_ms    BIGINT
);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE sessions (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash   TEXT    NOT NULL UNIQUE,
    user_id      BIGINT  NOT NULL REFERENCES users (id),
    created_ms   BIGINT  NOT NULL,
    last_seen_ms BIGINT  NOT NULL,
    expires_ms   BIGINT  NOT NULL,
    ip           TEXT    NOT NULL,
    user_agent   TEXT    NOT NULL,
    revoked      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX sessions_user ON sessions (user_id, id);

CREATE TABLE api_keys (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       BIGINT  NOT NULL REFERENCES users (id),
    key_id        TEXT    NOT NULL UNIQUE,
    secret_sealed BYTEA   NOT NULL,
    label         TEXT    NOT NULL,
    scopes        INTEGER NOT NULL,
    -- comma-joined addresses or CIDRs; empty: any address
    ip_allowlist  TEXT    NOT NULL,
    created_ms    BIGINT  NOT NULL,
    revoked       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX api_keys_user ON api_keys (user_id, id);

-- ---- read models (written only by the projector) ------------------------------------------------

-- One row: the last engine seq whose events are in the read models.
CREATE TABLE projector_cursor (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT  NOT NULL CHECK (seq >= 0)
);
INSERT INTO projector_cursor (id, seq) VALUES (1, 0);

CREATE TABLE orders (
    id              BIGINT NOT NULL PRIMARY KEY,
    user_id         BIGINT NOT NULL,
    market_id       BIGINT NOT NULL,
    side            TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    time_in_force   TEXT,
    price           TEXT,
    quantity        TEXT,
    quote_amount    TEXT,
    client_order_id TEXT,
    stp             TEXT   NOT NULL,
    status          TEXT   NOT NULL,
    end_reason      TEXT,
    filled          TEXT   NOT NULL,
    filled_quote    TEXT   NOT NULL,
    fee             TEXT   NOT NULL,
    created_seq     BIGINT NOT NULL,
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL
);
CREATE INDEX orders_user ON orders (user_id, id);
CREATE INDEX orders_user_open ON orders (user_id, id) WHERE status IN ('open', 'partial');
-- Every open order, at projector start: small, as only open orders are in it.
CREATE INDEX orders_open ON orders (id) WHERE status IN ('open', 'partial');
CREATE INDEX orders_user_client ON orders (user_id, client_order_id, id)
    WHERE client_order_id IS NOT NULL;

CREATE TABLE trades (
    market_id   BIGINT NOT NULL,
    id          BIGINT NOT NULL,
    price       TEXT   NOT NULL,
    quantity    TEXT   NOT NULL,
    notional    TEXT   NOT NULL,
    taker_side  TEXT   NOT NULL,
    maker_order BIGINT NOT NULL,
    maker_user  BIGINT NOT NULL,
    maker_fee   TEXT   NOT NULL,
    taker_order BIGINT NOT NULL,
    taker_user  BIGINT NOT NULL,
    taker_fee   TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    time_ms     BIGINT NOT NULL,
    PRIMARY KEY (market_id, id)
);
CREATE INDEX trades_maker ON trades (maker_user, seq, market_id, id);
CREATE INDEX trades_taker ON trades (taker_user, seq, market_id, id);
-- One order's fills.
CREATE INDEX trades_maker_order ON trades (maker_order);
CREATE INDEX trades_taker_order ON trades (taker_order);

CREATE TABLE ledger (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         BIGINT NOT NULL,
    asset_id        BIGINT NOT NULL,
    seq             BIGINT NOT NULL,
    time_ms         BIGINT NOT NULL,
    kind            TEXT   NOT NULL,
    reference       TEXT   NOT NULL,
    delta_available TEXT   NOT NULL,
    delta_locked    TEXT   NOT NULL,
    delta_held      TEXT   NOT NULL,
    available       TEXT   NOT NULL,
    locked          TEXT   NOT NULL,
    held            TEXT   NOT NULL
);
CREATE INDEX ledger_user ON ledger (user_id, id);

CREATE TABLE balances (
    user_id   BIGINT NOT NULL,
    asset_id  BIGINT NOT NULL,
    available TEXT   NOT NULL,
    locked    TEXT   NOT NULL,
    held      TEXT   NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (user_id, asset_id)
);

-- period: the interval's code ("1m", "5m", "15m", "1h", "4h", "1d").
CREATE TABLE candles (
    market_id    BIGINT NOT NULL,
    period       TEXT   NOT NULL,
    open_ms      BIGINT NOT NULL,
    open         TEXT   NOT NULL,
    high         TEXT   NOT NULL,
    low          TEXT   NOT NULL,
    close        TEXT   NOT NULL,
    volume       TEXT   NOT NULL,
    quote_volume TEXT   NOT NULL,
    trades       BIGINT NOT NULL,
    PRIMARY KEY (market_id, period, open_ms)
);
