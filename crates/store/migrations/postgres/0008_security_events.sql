-- Security events, PostgreSQL: the audit log of what happened to each account's security (logins,
-- failed logins, logouts, revoked sessions, password changes and reset requests, e-mail
-- verification, API keys, withdrawal requests, two-factor changes), shown to its user.
-- Append-only: nothing updates or deletes a row.
-- kind: a short lowercase code (see src/codec.rs); ip and user_agent: the client as the server
-- saw it; detail: what it was about (a session id, an API key label, a withdrawal id ...; may be
-- empty).

CREATE TABLE security_events (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    at_ms      BIGINT NOT NULL,
    kind       TEXT   NOT NULL,
    ip         TEXT   NOT NULL,
    user_agent TEXT   NOT NULL,
    detail     TEXT   NOT NULL
);
-- Serves a user's events, newest first, paged by id.
CREATE INDEX security_events_user ON security_events (user_id, id);
