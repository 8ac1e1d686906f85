-- Withdrawals, SQLite. The row exists before the engine holds the funds (its id is the engine's
-- withdrawal id); status: requested (not yet held), held, sending (the send is under way: on a
-- restart the node's wallet is searched for it before anything is sent again), sent (txid known),
-- completed, failed (reason; the hold was released or never made).

CREATE TABLE withdrawals (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    asset_id   INTEGER NOT NULL,
    address    TEXT    NOT NULL,
    amount     TEXT    NOT NULL,
    fee        TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    txid       TEXT,
    reason     TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX withdrawals_user ON withdrawals (user_id, id);
CREATE INDEX withdrawals_open ON withdrawals (asset_id, id)
    WHERE status IN ('requested', 'held', 'sending', 'sent');
