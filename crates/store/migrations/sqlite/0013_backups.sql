-- Backups, SQLite: one row per backup the exchange attempted (for `bourse status` and metrics).
-- Append-only. started_at_ms/finished_at_ms: Unix ms; destination: where it went (a directory
-- or a bucket, without credentials); name: the backup's name there; seq and state_hash: the
-- engine state it holds; bytes: its size; ok: 1 if it completed, else 0 with error set.

CREATE TABLE backups (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER NOT NULL,
    destination    TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    state_hash     TEXT    NOT NULL,
    bytes          INTEGER NOT NULL,
    ok             INTEGER NOT NULL,
    error          TEXT
) STRICT;
