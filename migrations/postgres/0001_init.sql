-- The schema of the production database (PostgreSQL 15 or later). Times are timestamptz:
-- instants at microsecond precision; a time that has not happened yet ("never seen") is NULL.
-- Identifiers and enum-like values are text in the "C" collation: they compare and sort byte
-- by byte, as in the embedded database, whatever the database's locale, and their indexes
-- compare faster. Sensor types and severities are checked by the database.

-- +goose Up
CREATE TABLE equipment (
    id              text COLLATE "C" NOT NULL PRIMARY KEY,
    name            text             NOT NULL DEFAULT '',
    line            text             NOT NULL DEFAULT '',
    location        text             NOT NULL DEFAULT '',
    created_at      timestamptz      NOT NULL,
    last_seen_at    timestamptz,
    last_anomaly_at timestamptz
);

-- seq is drawn from an identity as rows are inserted: it is the order the readings were
-- stored. The table has no primary key: (equipment_id, reading_id) identifies a reading, and
-- an index on seq alone would be written by every insert and read by no query.
-- equipment_id has no foreign key: checking one costs every insert about a third of its
-- speed, and the batch writer registers the equipment in the same transaction anyway.
CREATE TABLE sensor_readings (
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    equipment_id text COLLATE "C" NOT NULL,
    reading_id   text COLLATE "C" NOT NULL,
    sensor_type  text COLLATE "C" NOT NULL
        CONSTRAINT sensor_readings_sensor_type_check
        CHECK (sensor_type IN ('temperature', 'vibration', 'pressure', 'voltage')),
    -- NaN sorts above infinity in PostgreSQL: this keeps NaN and both infinities out.
    value        double precision NOT NULL
        CONSTRAINT sensor_readings_value_check CHECK (value > '-Infinity' AND value < 'Infinity'),
    unit         text             NOT NULL DEFAULT '',
    ts           timestamptz      NOT NULL,
    received_at  timestamptz      NOT NULL,
    anomalous    boolean          NOT NULL DEFAULT false,
    -- Identity of a reading: writes skip readings stored before (ON CONFLICT DO NOTHING).
    -- Its index also serves StoredRefs and the anomalies' foreign key.
    CONSTRAINT sensor_readings_reading_key UNIQUE (equipment_id, reading_id)
);

-- Every index below is written by every insert; each serves the queries named.
-- History, Averages and Latest of one sensor, newest first, and CountByBucket of one
-- equipment for the partial hours at the edges of its range.
CREATE INDEX sensor_readings_sensor_ts ON sensor_readings (equipment_id, sensor_type, ts DESC);
-- RecentValues: the last readings stored of one sensor.
CREATE INDEX sensor_readings_sensor_seq ON sensor_readings (equipment_id, sensor_type, seq DESC);
-- CountByBucket of every equipment, for the partial hours at the edges of its range.
-- Readings arrive roughly in time order, so that block ranges summarise ts well, at a
-- small fraction of a b-tree's write cost.
CREATE INDEX sensor_readings_ts_brin ON sensor_readings USING brin (ts);

CREATE TABLE anomalies (
    id           text COLLATE "C" NOT NULL PRIMARY KEY,
    equipment_id text COLLATE "C" NOT NULL,
    reading_id   text COLLATE "C" NOT NULL,
    sensor_type  text COLLATE "C" NOT NULL
        CONSTRAINT anomalies_sensor_type_check
        CHECK (sensor_type IN ('temperature', 'vibration', 'pressure', 'voltage')),
    value        double precision NOT NULL,
    z_score      double precision NOT NULL,
    mean         double precision NOT NULL,
    std_dev      double precision NOT NULL,
    window_size  integer          NOT NULL,
    severity     text COLLATE "C" NOT NULL
        CONSTRAINT anomalies_severity_check CHECK (severity IN ('LOW', 'MEDIUM', 'CRITICAL')),
    ts           timestamptz      NOT NULL,
    detected_at  timestamptz      NOT NULL,
    -- At most one anomaly per reading; writes skip those stored before.
    CONSTRAINT anomalies_reading_key UNIQUE (equipment_id, reading_id),
    CONSTRAINT anomalies_reading_fkey FOREIGN KEY (equipment_id, reading_id)
        REFERENCES sensor_readings (equipment_id, reading_id)
);

-- Find and CountBySeverity over every equipment, latest first (read backwards for ascending).
CREATE INDEX anomalies_ts ON anomalies (ts DESC, id DESC);
-- Find and CountBySeverity of one equipment.
CREATE INDEX anomalies_equipment_ts ON anomalies (equipment_id, ts DESC, id DESC);
-- Find filtered by severity: the count, and pages of the rarer severities.
CREATE INDEX anomalies_severity_ts ON anomalies (severity, ts DESC, id DESC);
-- CountDetectedSince.
CREATE INDEX anomalies_equipment_detected ON anomalies (equipment_id, detected_at);

-- The primary key serves LatestSession and Sessions.
CREATE TABLE equipment_sessions (
    equipment_id text COLLATE "C" NOT NULL REFERENCES equipment (id),
    start_at     timestamptz      NOT NULL,
    end_at       timestamptz      NOT NULL,
    PRIMARY KEY (equipment_id, start_at)
);

-- +goose Down
DROP TABLE equipment_sessions;
DROP TABLE anomalies;
DROP TABLE sensor_readings;
DROP TABLE equipment;
