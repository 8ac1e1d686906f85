-- The wallet role's tables, PostgreSQL: deposit addresses, deposits seen on the chain, and the
-- scanner's cursor per asset. Written by the wallet only; balances change only through engine
-- commands (a deposit is credited by `Deposit` keyed by asset, txid and vout).

CREATE TABLE deposit_addresses (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    asset_id   BIGINT NOT NULL,
    address    TEXT   NOT NULL,
    label      TEXT   NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (asset_id, address)
);
CREATE INDEX deposit_addresses_user ON deposit_addresses (user_id, asset_id, id);

-- status: pending, credited, dropped (left the chain before it was credited), reversed (left it
-- after), below_minimum (never credited). confirmations is negative while the transaction
-- conflicts with the best chain.
CREATE TABLE deposits (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    asset_id      BIGINT NOT NULL,
    txid          TEXT   NOT NULL,
    vout          BIGINT NOT NULL,
    user_id       BIGINT NOT NULL,
    address       TEXT   NOT NULL,
    amount        TEXT   NOT NULL,
    confirmations BIGINT NOT NULL,
    status        TEXT   NOT NULL,
    seq           BIGINT,
    first_seen_ms BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL,
    UNIQUE (asset_id, txid, vout)
);
CREATE INDEX deposits_user ON deposits (user_id, id);
CREATE INDEX deposits_pending ON deposits (asset_id) WHERE status = 'pending';

CREATE TABLE wallet_cursors (
    asset_id   BIGINT PRIMARY KEY,
    block_hash TEXT   NOT NULL,
    updated_ms BIGINT NOT NULL
);
