-- Account security, SQLite: two-factor authentication, tokens about something, the withdrawal-
-- address whitelist and the withdrawal gates.
-- users: totp_sealed is the enabled TOTP secret, sealed (encrypted and authenticated) by the
-- server, NULL while two-factor authentication is off; totp_pending_sealed a setup not yet
-- confirmed; totp_last_step the last TOTP time step accepted (a code is accepted once);
-- address_whitelist (0/1): withdrawals go only to confirmed addresses of withdrawal_addresses.
-- recovery_codes: the hashes of a user's one-time recovery codes; used_ms is set when one is used.
-- tokens.subject: what a token is about (a withdrawal id, a withdrawal-address id), or NULL.
-- withdrawal_addresses: a user's whitelist; confirmed_ms is set by the mailed link, and the
-- address may be used from usable_from_ms on; a removed one (removed_ms) stays, and the same
-- address may be added again.
-- withdrawals: new statuses unconfirmed (the funds are held; waiting for the link mailed to the
-- user), review (the funds are held; waiting for an operator's approval) and cancelling (its
-- hold is being released, then it becomes failed); after_hold: the status it takes once its
-- funds are held (held, unconfirmed or review).

ALTER TABLE users ADD COLUMN totp_sealed BLOB;
ALTER TABLE users ADD COLUMN totp_pending_sealed BLOB;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN address_whitelist INTEGER NOT NULL DEFAULT 0;

CREATE TABLE recovery_codes (
    user_id   INTEGER NOT NULL REFERENCES users (id),
    code_hash TEXT    NOT NULL,
    used_ms   INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

ALTER TABLE tokens ADD COLUMN subject INTEGER;

CREATE TABLE withdrawal_addresses (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        INTEGER NOT NULL REFERENCES users (id),
    asset_id       INTEGER NOT NULL,
    address        TEXT    NOT NULL,
    label          TEXT    NOT NULL,
    created_ms     INTEGER NOT NULL,
    confirmed_ms   INTEGER,
    usable_from_ms INTEGER,
    removed_ms     INTEGER
) STRICT;
-- One live row per (user, asset, address): a removed address can be added again.
CREATE UNIQUE INDEX withdrawal_addresses_live ON withdrawal_addresses (user_id, asset_id, address)
    WHERE removed_ms IS NULL;
-- Serves a user's live addresses, newest first.
CREATE INDEX withdrawal_addresses_user ON withdrawal_addresses (user_id, id)
    WHERE removed_ms IS NULL;

ALTER TABLE withdrawals ADD COLUMN after_hold TEXT NOT NULL DEFAULT 'held';
DROP INDEX withdrawals_open;
CREATE INDEX withdrawals_open ON withdrawals (asset_id, id)
    WHERE status IN ('requested', 'held', 'unconfirmed', 'review', 'cancelling', 'sending', 'sent');
-- Serves the withdrawals of one status (any user and asset), oldest first.
CREATE INDEX withdrawals_status ON withdrawals (status, id);
