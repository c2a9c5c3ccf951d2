-- Outbound notifications: the subscriptions (endpoints that want events of some types), the
-- outbox of their deliveries, and the equipment status last announced.
--
-- A delivery is written in the transaction of the change it reports (a batch of readings, an
-- acknowledgement, a status announcement), so that a change is never committed without its
-- deliveries, nor a delivery without its change. The dispatchers of every process then claim
-- due deliveries with FOR UPDATE SKIP LOCKED.

-- +goose Up
CREATE TABLE subscriptions (
    id           text        NOT NULL PRIMARY KEY,
    url          text        NOT NULL,
    types        text[]      NOT NULL,
    secret       text        NOT NULL,
    created_at   timestamptz NOT NULL,
    -- The circuit breaker: deliveries failed in a row, and until when none is attempted.
    failures     integer     NOT NULL DEFAULT 0,
    paused_until timestamptz
);

-- id grows with every delivery enqueued: the order deliveries are claimed in, and the order of
-- a subscription's log. next_attempt_at is set while the delivery is PENDING only.
CREATE TABLE deliveries (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id text        NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    body            bytea       NOT NULL,
    state           text        NOT NULL CHECK (state IN ('PENDING', 'DELIVERED', 'DEAD')),
    attempts        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz,
    last_attempt_at timestamptz,
    last_status     integer     NOT NULL DEFAULT 0,
    last_error      text        NOT NULL DEFAULT '',
    delivered_at    timestamptz,
    CHECK ((state = 'PENDING') = (next_attempt_at IS NOT NULL))
);

-- Claim: the pending deliveries, oldest first (delivered and dead ones are left out).
CREATE INDEX deliveries_pending ON deliveries (id) INCLUDE (next_attempt_at) WHERE state = 'PENDING';
-- A subscription's log, newest first; also serves the cascade when a subscription is deleted.
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, id DESC);

-- The status last announced of each equipment: a change is recorded only over the status it
-- changes from, so that of processes noticing one change together, exactly one records it.
CREATE TABLE equipment_status (
    equipment_id text        NOT NULL PRIMARY KEY,
    status       text        NOT NULL CHECK (status IN ('ONLINE', 'OFFLINE', 'ANOMALY', 'MAINTENANCE')),
    changed_at   timestamptz NOT NULL
);

-- +goose Down
DROP TABLE equipment_status;
DROP TABLE deliveries;
DROP TABLE subscriptions;
