-- Outbound notifications: the subscriptions, the outbox of their deliveries and the equipment
-- status last announced (see the PostgreSQL migration of the same name). Times as in 0001
-- (microseconds, NULL for "not yet"); a subscription's types are a JSON array of strings.

-- +goose Up
CREATE TABLE subscriptions (
    id           TEXT    NOT NULL PRIMARY KEY,
    url          TEXT    NOT NULL,
    types        TEXT    NOT NULL CHECK (json_valid(types) AND json_type(types) = 'array'),
    secret       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    failures     INTEGER NOT NULL DEFAULT 0,
    paused_until INTEGER
) STRICT;

-- AUTOINCREMENT: an id is never used twice, even after the newest deliveries are deleted.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id TEXT    NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    body            BLOB    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('PENDING', 'DELIVERED', 'DEAD')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER,
    last_attempt_at INTEGER,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    delivered_at    INTEGER,
    CHECK ((state = 'PENDING') = (next_attempt_at IS NOT NULL))
) STRICT;

-- Claim: the pending deliveries, oldest first.
CREATE INDEX deliveries_pending ON deliveries (id, next_attempt_at) WHERE state = 'PENDING';
-- A subscription's log, newest first; also serves the cascade when a subscription is deleted.
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, id);

CREATE TABLE equipment_status (
    equipment_id TEXT    NOT NULL PRIMARY KEY,
    status       TEXT    NOT NULL CHECK (status IN ('ONLINE', 'OFFLINE', 'ANOMALY', 'MAINTENANCE')),
    changed_at   INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE equipment_status;
DROP TABLE deliveries;
DROP TABLE subscriptions;
