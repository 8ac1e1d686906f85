-- Backups, PostgreSQL: one row per backup the exchange attempted (for `bourse status` and
-- metrics). Append-only. started_at_ms/finished_at_ms: Unix ms; destination: where it went (a
-- directory or a bucket, without credentials); name: the backup's name there; seq and
-- state_hash: the engine state it holds; bytes: its size; ok: whether it completed, else error
-- is set.

CREATE TABLE backups (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at_ms  BIGINT  NOT NULL,
    finished_at_ms BIGINT  NOT NULL,
    destination    TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    seq            BIGINT  NOT NULL,
    state_hash     TEXT    NOT NULL,
    bytes          BIGINT  NOT NULL,
    ok             BOOLEAN NOT NULL,
    error          TEXT
);
