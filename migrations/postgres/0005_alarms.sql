-- Alarms: one episode of a sensor's anomalies, from the first anomalous reading to the
-- clearing. Workers insert and update them with their batches; an operator acknowledges them.
-- At most one alarm per sensor is open (ACTIVE or ACKNOWLEDGED), whatever the number of
-- workers: the partial unique index refuses a second one.

-- +goose Up
CREATE TABLE alarms (
    id            text             NOT NULL PRIMARY KEY,
    equipment_id  text             NOT NULL REFERENCES equipment (id),
    sensor_type   text             NOT NULL
        CHECK (sensor_type IN ('temperature', 'vibration', 'pressure', 'voltage')),
    state         text             NOT NULL CHECK (state IN ('ACTIVE', 'ACKNOWLEDGED', 'CLEARED')),
    severity      text             NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'CRITICAL')),
    opened_at     timestamptz      NOT NULL,
    first_at      timestamptz      NOT NULL,
    last_at       timestamptz      NOT NULL,
    reading_count integer          NOT NULL,
    peak_z        double precision NOT NULL,
    cleared_at    timestamptz,
    ack_by        text             NOT NULL DEFAULT '',
    ack_comment   text             NOT NULL DEFAULT '',
    ack_at        timestamptz,
    flapping      boolean          NOT NULL DEFAULT false,
    rules_version text             NOT NULL,
    calm          integer          NOT NULL DEFAULT 0,
    calm_since    timestamptz
);

CREATE UNIQUE INDEX alarms_one_open ON alarms (equipment_id, sensor_type) WHERE state <> 'CLEARED';
-- Find over every equipment, and of one; Latest of one sensor.
CREATE INDEX alarms_opened ON alarms (opened_at, id);
CREATE INDEX alarms_equipment_opened ON alarms (equipment_id, sensor_type, opened_at);

-- +goose Down
DROP TABLE alarms;
