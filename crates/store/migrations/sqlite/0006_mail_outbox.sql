-- The e-mail outbox, SQLite: every mail is queued here and a worker sends it, retrying with
-- backoff, so a mail server outage delays mail and loses none. A mail is queued while sent_ms is
-- NULL; it is due when next_attempt_ms has passed. attempts: failed attempts so far; last_error:
-- the latest failure (truncated by the sender). text_body and html_body: the two parts.

CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    to_address      TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    text_body       TEXT    NOT NULL,
    html_body       TEXT    NOT NULL,
    created_ms      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    sent_ms         INTEGER,
    last_error      TEXT
) STRICT;
-- Serves the due-mails query (same predicate and order) and the queue length.
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_ms, id) WHERE sent_ms IS NULL;
