-- Operator alerts, SQLite: what needs an operator now (a reversed deposit, a hot wallet short of
-- what users hold, a send the node refused). Append-only; each is also logged at error level.
-- source: the part that raised it, e.g. `wallet:LTC`.

CREATE TABLE operator_alerts (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   INTEGER NOT NULL,
    source  TEXT    NOT NULL,
    message TEXT    NOT NULL
) STRICT;
