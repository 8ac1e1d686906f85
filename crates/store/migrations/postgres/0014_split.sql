-- The projector's publications for processes that do not run it (a split deployment's
-- gateway and admin app): one row per projector step, committed with it, pruned after minutes.
CREATE TABLE relay (
    to_seq     BIGINT PRIMARY KEY,
    from_seq   BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    body       TEXT   NOT NULL
);
CREATE INDEX relay_created ON relay (created_ms);

-- Each coin's last reconciliation, recorded by the wallet role for the processes that show it
-- (amounts in minor units as decimal text).
CREATE TABLE reconciliations (
    asset_id    BIGINT  PRIMARY KEY,
    liabilities TEXT    NOT NULL,
    hot         TEXT    NOT NULL,
    shortfall   TEXT    NOT NULL,
    paused      BOOLEAN NOT NULL,
    at_ms       BIGINT  NOT NULL
);
