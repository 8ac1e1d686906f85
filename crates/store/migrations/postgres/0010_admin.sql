-- The admin app, PostgreSQL: its accounts, their sessions, their audit log and their approvals
-- of withdrawals. Admins are not users: they never trade, and they sign in to a separate app.
-- admins: email is stored as given (callers normalise it); role: viewer, operator or superadmin
-- (see src/codec.rs); totp_sealed is the TOTP secret, sealed (encrypted and authenticated) by the
-- server, mandatory for an admin; totp_last_step the last TOTP time step accepted (a code is
-- accepted once); disabled_ms is set when the admin may no longer sign in (their sessions stop
-- being live at once). A row is never deleted (the audit log names it).
-- admin_sessions: token_hash is the hash of the session cookie's token; totp_ms when a TOTP code
-- was last entered in the session (the sign-in's, then any fresh one a sensitive action asked
-- for); ip and user_agent: the client at sign-in; ended_ms is set when it ends (sign-out),
-- and an ended session never comes back.
-- admin_actions: the admin audit log, who did what (action, e.g. withdrawal.approve), to what
-- (target, e.g. withdrawal 17; may be empty), why (reason; may be empty) and from where (ip),
-- with detail. Append-only: nothing updates or deletes a row.
-- withdrawal_approvals: each admin's approval of a withdrawal in review, at most one per admin
-- per withdrawal; id keeps the order they were given in.
-- users.locked_ms: set while an operator has locked the account (no sign-in, no API key, no
-- withdrawal), NULL otherwise.
-- deposit_addresses_address: finds who a deposit address was given to, whatever its asset.

CREATE TABLE admins (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email          TEXT   NOT NULL UNIQUE,
    password_hash  TEXT   NOT NULL,
    role           TEXT   NOT NULL,
    totp_sealed    BYTEA  NOT NULL,
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    created_ms     BIGINT NOT NULL,
    disabled_ms    BIGINT
);

CREATE TABLE admin_sessions (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    admin_id     BIGINT NOT NULL REFERENCES admins (id),
    token_hash   TEXT   NOT NULL UNIQUE,
    created_ms   BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    totp_ms      BIGINT NOT NULL,
    ip           TEXT   NOT NULL,
    user_agent   TEXT   NOT NULL,
    ended_ms     BIGINT
);

-- Read newest first, paged by id: the primary key serves it.
CREATE TABLE admin_actions (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    admin_id BIGINT NOT NULL REFERENCES admins (id),
    at_ms    BIGINT NOT NULL,
    ip       TEXT   NOT NULL,
    action   TEXT   NOT NULL,
    target   TEXT   NOT NULL,
    reason   TEXT   NOT NULL,
    detail   TEXT   NOT NULL
);

-- The unique constraint also serves the approvals of one withdrawal.
CREATE TABLE withdrawal_approvals (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    withdrawal_id BIGINT NOT NULL REFERENCES withdrawals (id),
    admin_id      BIGINT NOT NULL REFERENCES admins (id),
    at_ms         BIGINT NOT NULL,
    UNIQUE (withdrawal_id, admin_id)
);

ALTER TABLE users ADD COLUMN locked_ms BIGINT;

-- Looked up without the asset, which the unique (asset_id, address) index needs first.
CREATE INDEX deposit_addresses_address ON deposit_addresses (address);
