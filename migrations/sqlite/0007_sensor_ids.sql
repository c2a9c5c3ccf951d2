-- Several sensors of one type on a machine, and sensor types beyond the contract's four.
-- Readings, anomalies and alarms gain sensor_id, the sensor within its equipment ('' when the
-- sensor is its type, as every row stored before); one open alarm is allowed per sensor, not
-- per type; sensor_type holds any type name (1 to 32 of a-z, 0-9, '_', '-', starting with a
-- letter: sensor.ValidTypeName) instead of one of four.
--
-- SQLite cannot alter a CHECK constraint, so the three tables are rebuilt as its documentation
-- says (https://sqlite.org/lang_altertable.html#otheralter): create the new table, copy the
-- rows (with their seq or rowid, the order they were stored in), drop the old table, rename
-- the new one and create its indexes again. This runs in goose's transaction with foreign keys
-- enforced, where PRAGMA foreign_keys cannot be turned off: so the new anomalies reference the
-- new sensor_readings from the start, and the old anomalies are dropped before the old
-- readings, which are then no one's parent. Renaming a table rewrites the references to it.
--
-- Indexes (every insert writes each of them, so there are no more than before):
-- - sensor_readings_sensor_ts (equipment_id, sensor_type, sensor_id, ts) is one sensor's
--   readings by time, ties in the order stored (an entry ends with the rowid): RecentValues
--   and Latest seek it, and the queries of one equipment (History, Averages, CountByBucket)
--   seek one range of it per sensor of the equipment, the sensors listed by skipping through
--   it. It replaces both per-sensor indexes of 0001, as (equipment_id, sensor_type) served
--   nothing that (equipment_id, sensor_type, ts) did not: sensor_readings has one index less.
-- - sensor_readings_ts (ts): CountByBucket of every equipment, as before.
-- - alarms_one_open and alarms_equipment_opened include sensor_id after sensor_type.
-- - The anomalies' indexes are unchanged: anomalies are few, a sensor filter is checked on
--   the rows of one equipment or time range.
--
-- Down drops sensor_id (the sensors of one type become one, as 0005's Down forgets the causes)
-- and restores the four-name CHECKs and the per-type unique index of open alarms. It fails, and
-- changes nothing, while rows of another type are stored, or two sensors of one type of one
-- machine have an alarm open: delete or clear those first.

-- +goose Up
CREATE TABLE sensor_readings_new (
    seq          INTEGER PRIMARY KEY,
    equipment_id TEXT    NOT NULL REFERENCES equipment (id),
    reading_id   TEXT    NOT NULL,
    sensor_type  TEXT    NOT NULL
        CHECK (length(sensor_type) BETWEEN 1 AND 32 AND sensor_type GLOB '[a-z]*'
               AND sensor_type NOT GLOB '*[^a-z0-9_-]*'),
    sensor_id    TEXT    NOT NULL DEFAULT '',
    value        REAL    NOT NULL,
    unit         TEXT    NOT NULL DEFAULT '',
    ts           INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    anomalous    INTEGER NOT NULL DEFAULT 0 CHECK (anomalous IN (0, 1)),
    UNIQUE (equipment_id, reading_id)
) STRICT;
INSERT INTO sensor_readings_new (seq, equipment_id, reading_id, sensor_type, value, unit, ts, received_at, anomalous)
    SELECT seq, equipment_id, reading_id, sensor_type, value, unit, ts, received_at, anomalous FROM sensor_readings;

CREATE TABLE anomalies_new (
    id           TEXT    NOT NULL PRIMARY KEY,
    equipment_id TEXT    NOT NULL,
    reading_id   TEXT    NOT NULL,
    sensor_type  TEXT    NOT NULL
        CHECK (length(sensor_type) BETWEEN 1 AND 32 AND sensor_type GLOB '[a-z]*'
               AND sensor_type NOT GLOB '*[^a-z0-9_-]*'),
    sensor_id    TEXT    NOT NULL DEFAULT '',
    value        REAL    NOT NULL,
    z_score      REAL    NOT NULL,
    mean         REAL    NOT NULL,
    std_dev      REAL    NOT NULL,
    window_size  INTEGER NOT NULL,
    severity     TEXT    NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'CRITICAL')),
    ts           INTEGER NOT NULL,
    detected_at  INTEGER NOT NULL,
    UNIQUE (equipment_id, reading_id),
    FOREIGN KEY (equipment_id, reading_id) REFERENCES sensor_readings_new (equipment_id, reading_id)
) STRICT;
INSERT INTO anomalies_new (rowid, id, equipment_id, reading_id, sensor_type, value, z_score, mean, std_dev,
        window_size, severity, ts, detected_at)
    SELECT rowid, id, equipment_id, reading_id, sensor_type, value, z_score, mean, std_dev,
        window_size, severity, ts, detected_at FROM anomalies;

DROP TABLE anomalies;
DROP TABLE sensor_readings;
ALTER TABLE sensor_readings_new RENAME TO sensor_readings;
ALTER TABLE anomalies_new RENAME TO anomalies;

-- One sensor's readings by time (see above).
CREATE INDEX sensor_readings_sensor_ts ON sensor_readings (equipment_id, sensor_type, sensor_id, ts);
-- CountByBucket of every equipment.
CREATE INDEX sensor_readings_ts ON sensor_readings (ts);
-- Find and CountBySeverity over every equipment, and of one.
CREATE INDEX anomalies_ts ON anomalies (ts, id);
CREATE INDEX anomalies_equipment_ts ON anomalies (equipment_id, ts, id);
-- CountDetectedSince.
CREATE INDEX anomalies_equipment_detected ON anomalies (equipment_id, detected_at);

CREATE TABLE alarms_new (
    id                 TEXT    NOT NULL PRIMARY KEY,
    equipment_id       TEXT    NOT NULL REFERENCES equipment (id),
    sensor_type        TEXT    NOT NULL
        CHECK (length(sensor_type) BETWEEN 1 AND 32 AND sensor_type GLOB '[a-z]*'
               AND sensor_type NOT GLOB '*[^a-z0-9_-]*'),
    sensor_id          TEXT    NOT NULL DEFAULT '',
    state              TEXT    NOT NULL CHECK (state IN ('ACTIVE', 'ACKNOWLEDGED', 'CLEARED')),
    severity           TEXT    NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'CRITICAL')),
    opened_at          INTEGER NOT NULL,
    first_at           INTEGER NOT NULL,
    last_at            INTEGER NOT NULL,
    reading_count      INTEGER NOT NULL,
    peak_z             REAL    NOT NULL,
    cleared_at         INTEGER,
    ack_by             TEXT    NOT NULL DEFAULT '',
    ack_comment        TEXT    NOT NULL DEFAULT '',
    ack_at             INTEGER,
    flapping           INTEGER NOT NULL DEFAULT 0 CHECK (flapping IN (0, 1)),
    rules_version      TEXT    NOT NULL,
    calm               INTEGER NOT NULL DEFAULT 0,
    calm_since         INTEGER,
    cause              TEXT    NOT NULL DEFAULT 'zscore'
        CHECK (cause IN ('zscore', 'stuck', 'rate', 'drift', 'variance')),
    evidence_statistic REAL    NOT NULL DEFAULT 0,
    evidence_limit     REAL    NOT NULL DEFAULT 0,
    evidence_window    INTEGER NOT NULL DEFAULT 0,
    incident_id        TEXT    NOT NULL DEFAULT ''
) STRICT;
INSERT INTO alarms_new (rowid, id, equipment_id, sensor_type, state, severity, opened_at, first_at, last_at,
        reading_count, peak_z, cleared_at, ack_by, ack_comment, ack_at, flapping, rules_version, calm, calm_since,
        cause, evidence_statistic, evidence_limit, evidence_window, incident_id)
    SELECT rowid, id, equipment_id, sensor_type, state, severity, opened_at, first_at, last_at,
        reading_count, peak_z, cleared_at, ack_by, ack_comment, ack_at, flapping, rules_version, calm, calm_since,
        cause, evidence_statistic, evidence_limit, evidence_window, incident_id FROM alarms;
DROP TABLE alarms;
ALTER TABLE alarms_new RENAME TO alarms;

-- At most one open alarm per sensor, whatever the number of writers.
CREATE UNIQUE INDEX alarms_one_open ON alarms (equipment_id, sensor_type, sensor_id) WHERE state <> 'CLEARED';
-- Find over every equipment, and of one; Latest of one sensor.
CREATE INDEX alarms_opened ON alarms (opened_at, id);
CREATE INDEX alarms_equipment_opened ON alarms (equipment_id, sensor_type, sensor_id, opened_at);

-- +goose Down
CREATE TABLE sensor_readings_old (
    seq          INTEGER PRIMARY KEY,
    equipment_id TEXT    NOT NULL REFERENCES equipment (id),
    reading_id   TEXT    NOT NULL,
    sensor_type  TEXT    NOT NULL
        CHECK (sensor_type IN ('temperature', 'vibration', 'pressure', 'voltage')),
    value        REAL    NOT NULL,
    unit         TEXT    NOT NULL DEFAULT '',
    ts           INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    anomalous    INTEGER NOT NULL DEFAULT 0 CHECK (anomalous IN (0, 1)),
    UNIQUE (equipment_id, reading_id)
) STRICT;
INSERT INTO sensor_readings_old (seq, equipment_id, reading_id, sensor_type, value, unit, ts, received_at, anomalous)
    SELECT seq, equipment_id, reading_id, sensor_type, value, unit, ts, received_at, anomalous FROM sensor_readings;

CREATE TABLE anomalies_old (
    id           TEXT    NOT NULL PRIMARY KEY,
    equipment_id TEXT    NOT NULL,
    reading_id   TEXT    NOT NULL,
    sensor_type  TEXT    NOT NULL
        CHECK (sensor_type IN ('temperature', 'vibration', 'pressure', 'voltage')),
    value        REAL    NOT NULL,
    z_score      REAL    NOT NULL,
    mean         REAL    NOT NULL,
    std_dev      REAL    NOT NULL,
    window_size  INTEGER NOT NULL,
    severity     TEXT    NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'CRITICAL')),
    ts           INTEGER NOT NULL,
    detected_at  INTEGER NOT NULL,
    UNIQUE (equipment_id, reading_id),
    FOREIGN KEY (equipment_id, reading_id) REFERENCES sensor_readings_old (equipment_id, reading_id)
) STRICT;
INSERT INTO anomalies_old (rowid, id, equipment_id, reading_id, sensor_type, value, z_score, mean, std_dev,
        window_size, severity, ts, detected_at)
    SELECT rowid, id, equipment_id, reading_id, sensor_type, value, z_score, mean, std_dev,
        window_size, severity, ts, detected_at FROM anomalies;

DROP TABLE anomalies;
DROP TABLE sensor_readings;
ALTER TABLE sensor_readings_old RENAME TO sensor_readings;
ALTER TABLE anomalies_old RENAME TO anomalies;

CREATE INDEX sensor_readings_sensor_ts ON sensor_readings (equipment_id, sensor_type, ts);
CREATE INDEX sensor_readings_sensor_seq ON sensor_readings (equipment_id, sensor_type);
CREATE INDEX sensor_readings_ts ON sensor_readings (ts);
CREATE INDEX anomalies_ts ON anomalies (ts, id);
CREATE INDEX anomalies_equipment_ts ON anomalies (equipment_id, ts, id);
CREATE INDEX anomalies_equipment_detected ON anomalies (equipment_id, detected_at);

CREATE TABLE alarms_old (
    id                 TEXT    NOT NULL PRIMARY KEY,
    equipment_id       TEXT    NOT NULL REFERENCES equipment (id),
    sensor_type        TEXT    NOT NULL
        CHECK (sensor_type IN ('temperature', 'vibration', 'pressure', 'voltage')),
    state              TEXT    NOT NULL CHECK (state IN ('ACTIVE', 'ACKNOWLEDGED', 'CLEARED')),
    severity           TEXT    NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'CRITICAL')),
    opened_at          INTEGER NOT NULL,
    first_at           INTEGER NOT NULL,
    last_at            INTEGER NOT NULL,
    reading_count      INTEGER NOT NULL,
    peak_z             REAL    NOT NULL,
    cleared_at         INTEGER,
    ack_by             TEXT    NOT NULL DEFAULT '',
    ack_comment        TEXT    NOT NULL DEFAULT '',
    ack_at             INTEGER,
    flapping           INTEGER NOT NULL DEFAULT 0 CHECK (flapping IN (0, 1)),
    rules_version      TEXT    NOT NULL,
    calm               INTEGER NOT NULL DEFAULT 0,
    calm_since         INTEGER,
    cause              TEXT    NOT NULL DEFAULT 'zscore'
        CHECK (cause IN ('zscore', 'stuck', 'rate', 'drift', 'variance')),
    evidence_statistic REAL    NOT NULL DEFAULT 0,
    evidence_limit     REAL    NOT NULL DEFAULT 0,
    evidence_window    INTEGER NOT NULL DEFAULT 0,
    incident_id        TEXT    NOT NULL DEFAULT ''
) STRICT;
INSERT INTO alarms_old (rowid, id, equipment_id, sensor_type, state, severity, opened_at, first_at, last_at,
        reading_count, peak_z, cleared_at, ack_by, ack_comment, ack_at, flapping, rules_version, calm, calm_since,
        cause, evidence_statistic, evidence_limit, evidence_window, incident_id)
    SELECT rowid, id, equipment_id, sensor_type, state, severity, opened_at, first_at, last_at,
        reading_count, peak_z, cleared_at, ack_by, ack_comment, ack_at, flapping, rules_version, calm, calm_since,
        cause, evidence_statistic, evidence_limit, evidence_window, incident_id FROM alarms;
DROP TABLE alarms;
ALTER TABLE alarms_old RENAME TO alarms;

CREATE UNIQUE INDEX alarms_one_open ON alarms (equipment_id, sensor_type) WHERE state <> 'CLEARED';
CREATE INDEX alarms_opened ON alarms (opened_at, id);
CREATE INDEX alarms_equipment_opened ON alarms (equipment_id, sensor_type, opened_at);
