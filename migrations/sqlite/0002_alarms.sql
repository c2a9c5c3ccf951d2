-- Alarms: one episode of a sensor's anomalies. Times as in 0001 (microseconds, NULL for
-- "not yet").

-- +goose Up
CREATE TABLE alarms (
    id            TEXT    NOT NULL PRIMARY KEY,
    equipment_id  TEXT    NOT NULL REFERENCES equipment (id),
    sensor_type   TEXT    NOT NULL
        CHECK (sensor_type IN ('temperature', 'vibration', 'pressure', 'voltage')),
    state         TEXT    NOT NULL CHECK (state IN ('ACTIVE', 'ACKNOWLEDGED', 'CLEARED')),
    severity      TEXT    NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'CRITICAL')),
    opened_at     INTEGER NOT NULL,
    first_at      INTEGER NOT NULL,
    last_at       INTEGER NOT NULL,
    reading_count INTEGER NOT NULL,
    peak_z        REAL    NOT NULL,
    cleared_at    INTEGER,
    ack_by        TEXT    NOT NULL DEFAULT '',
    ack_comment   TEXT    NOT NULL DEFAULT '',
    ack_at        INTEGER,
    flapping      INTEGER NOT NULL DEFAULT 0 CHECK (flapping IN (0, 1)),
    rules_version TEXT    NOT NULL,
    calm          INTEGER NOT NULL DEFAULT 0,
    calm_since    INTEGER
) STRICT;

-- At most one open alarm per sensor, whatever the number of writers.
CREATE UNIQUE INDEX alarms_one_open ON alarms (equipment_id, sensor_type) WHERE state <> 'CLEARED';
-- Find over every equipment, and of one; Latest of one sensor.
CREATE INDEX alarms_opened ON alarms (opened_at, id);
CREATE INDEX alarms_equipment_opened ON alarms (equipment_id, sensor_type, opened_at);

-- +goose Down
DROP TABLE alarms;
