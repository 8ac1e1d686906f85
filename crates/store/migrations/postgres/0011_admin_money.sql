-- The admin app's money, PostgreSQL: balance adjustments (proposed by one admin, approved by
-- another, then applied by the engine) and the exchange's fee income per asset and hour.
-- balance_adjustments: a change of one user's available balance of one asset, by delta (a signed
-- decimal integer of minor units, never 0), for reason (the proposer's words), proposed by
-- proposed_by at proposed_ms. status: pending (waiting for a decision), approved (by another
-- admin than the proposer; waiting for the engine), applied (the engine did it), refused (the
-- engine would not, e.g. the balance would go negative), rejected (by an admin, the proposer
-- included; never sent to the engine). See src/codec.rs. decided_by and decided_ms: the admin who
-- approved or rejected it and when, NULL while pending. outcome: empty until there is one; after
-- approval, the engine seq that applied it or the engine's refusal; after rejection, the
-- rejecting admin's reason. finished_ms: when the engine applied or refused it, NULL until then.
-- A row is never deleted; each status moves forward only (pending -> approved -> applied or
-- refused, pending -> rejected), by compare-and-set.
-- fee_revenue: the exchange's fee income in asset_id during the UTC hour starting at hour_ms (a
-- multiple of 3600000): trade_fees (maker and taker fees of the trades of the markets quoted in
-- the asset, by trade time) and withdrawal_fees (fees of the withdrawals of the asset completed,
-- by completion time), decimal integers of minor units. Written only by the projector (full rows,
-- upserted) and by the one-time backfill from trades and withdrawals.
-- deposits_status: serves the deposits of one status, of every user, newest first.

CREATE TABLE balance_adjustments (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    asset_id    BIGINT NOT NULL,
    delta       TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    proposed_by BIGINT NOT NULL REFERENCES admins (id),
    proposed_ms BIGINT NOT NULL,
    status      TEXT   NOT NULL,
    decided_by  BIGINT REFERENCES admins (id),
    decided_ms  BIGINT,
    outcome     TEXT   NOT NULL DEFAULT '',
    finished_ms BIGINT
);
-- Serves the adjustments of one status (the pending ones above all), newest first.
CREATE INDEX balance_adjustments_status ON balance_adjustments (status, id);

-- The primary key serves the newest row of each asset; fee_revenue_hour the rows of a period.
CREATE TABLE fee_revenue (
    asset_id        BIGINT NOT NULL,
    hour_ms         BIGINT NOT NULL,
    trade_fees      TEXT   NOT NULL,
    withdrawal_fees TEXT   NOT NULL,
    PRIMARY KEY (asset_id, hour_ms)
);
CREATE INDEX fee_revenue_hour ON fee_revenue (hour_ms, asset_id);

CREATE INDEX deposits_status ON deposits (status, id);
