-- The schema of the embedded database. Every time is an INTEGER of microseconds since the
-- Unix epoch, UTC; a time that has not happened yet ("never seen") is NULL.

-- +goose Up
CREATE TABLE equipment (
    id              TEXT    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL DEFAULT '',
    line            TEXT    NOT NULL DEFAULT '',
    location        TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER,
    last_anomaly_at INTEGER
) STRICT;

-- seq is the rowid: it grows with every insert, so it is the order the readings were stored.
CREATE TABLE sensor_readings (
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

-- History, Averages and Latest of one sensor; CountByBucket of one equipment.
CREATE INDEX sensor_readings_sensor_ts ON sensor_readings (equipment_id, sensor_type, ts);
-- RecentValues: the latest stored readings of one sensor (the rowid ends every index entry).
CREATE INDEX sensor_readings_sensor_seq ON sensor_readings (equipment_id, sensor_type);
-- CountByBucket of every equipment.
CREATE INDEX sensor_readings_ts ON sensor_readings (ts);

CREATE TABLE anomalies (
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
    FOREIGN KEY (equipment_id, reading_id) REFERENCES sensor_readings (equipment_id, reading_id)
) STRICT;

-- Find and CountBySeverity over every equipment, and of one.
CREATE INDEX anomalies_ts ON anomalies (ts, id);
CREATE INDEX anomalies_equipment_ts ON anomalies (equipment_id, ts, id);
-- CountDetectedSince.
CREATE INDEX anomalies_equipment_detected ON anomalies (equipment_id, detected_at);

CREATE TABLE equipment_sessions (
    equipment_id TEXT    NOT NULL REFERENCES equipment (id),
    start_at     INTEGER NOT NULL,
    end_at       INTEGER NOT NULL,
    PRIMARY KEY (equipment_id, start_at)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE equipment_sessions;
DROP TABLE anomalies;
DROP TABLE sensor_readings;
DROP TABLE equipment;
