-- Transactions signed by the wallet for account-based chains (Ethereum), SQLite. A row is written
-- before its transaction is broadcast, so after a crash the wallet finds it and broadcasts the
-- same bytes again instead of signing a second one for the same purpose.
-- kind: withdrawal (pays withdrawal_id) or sweep (moves a deposit address's funds to the hot
-- wallet). status: signed (recorded, maybe not yet broadcast), sent, confirmed (fee known),
-- failed (never reached the chain: its nonce may be used again). raw: the signed transaction as
-- lower-case hex; value and fee: decimal text of wei.

CREATE TABLE chain_sends (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_id      INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    withdrawal_id INTEGER,
    from_address  TEXT    NOT NULL,
    to_address    TEXT    NOT NULL,
    nonce         INTEGER NOT NULL,
    txid          TEXT    NOT NULL,
    raw           TEXT    NOT NULL,
    value         TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    fee           TEXT,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
) STRICT;
-- One live transaction per (asset, sender, nonce); also serves the next-nonce query.
CREATE UNIQUE INDEX chain_sends_nonce ON chain_sends (asset_id, from_address, nonce)
    WHERE status <> 'failed';
CREATE INDEX chain_sends_open ON chain_sends (asset_id, id) WHERE status IN ('signed', 'sent');
CREATE INDEX chain_sends_withdrawal ON chain_sends (withdrawal_id);
