-- The projector's publications for processes that do not run it (a split deployment's
-- gateway and admin app): one row per projector step, committed with it, pruned after minutes.
CREATE TABLE relay (
    to_seq     INTEGER PRIMARY KEY,
    from_seq   INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    body       TEXT    NOT NULL
) STRICT;
CREATE INDEX relay_created ON relay (created_ms);

-- Each coin's last reconciliation, recorded by the wallet role for the processes that show it
-- (amounts in minor units as decimal text; paused 0 or 1).
CREATE TABLE reconciliations (
    asset_id    INTEGER PRIMARY KEY,
    liabilities TEXT    NOT NULL,
    hot         TEXT    NOT NULL,
    shortfall   TEXT    NOT NULL,
    paused      INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL
) STRICT;
