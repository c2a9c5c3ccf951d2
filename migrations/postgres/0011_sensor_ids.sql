-- Several sensors of one type on a machine, and sensor types beyond the contract's four. A
-- reading, an anomaly and an alarm keep the id of their sensor within its equipment
-- (sensor_id; empty when the sensor is its type, as every sensor was until now), a sensor
-- type is any name of the shape sensor.ValidTypeName accepts, and one alarm may be open per
-- sensor: per (equipment_id, sensor_type, sensor_id).
--
-- Nothing is rewritten and no lock outlasts a catalog update, so that the migration takes
-- milliseconds however many readings are stored. A column with a constant default is added
-- to the catalog only (PostgreSQL 11 and later; TimescaleDB adds it so to every chunk,
-- compressed or not). The CHECK on the type's shape replaces the list of four NOT VALID on
-- sensor_readings and anomalies: their rows satisfy that list, which is stricter, and
-- validating would read every row under the migration's lock. New rows are checked all the
-- same. (TimescaleDB refuses VALIDATE CONSTRAINT on a compressed hypertable; on a plain table
-- `ALTER TABLE ... VALIDATE CONSTRAINT` may be run at any time, without stopping writes.)
-- Alarms are few: theirs is validated.
--
-- sensor_readings keeps its indexes, each written by every insert: queries of one sensor
-- filter sensor_id within (equipment_id, sensor_type, ts DESC), the readings of one type of
-- one machine being mostly of one sensor. Its compression keeps segmenting by
-- (equipment_id, sensor_type).
--
-- Which sensors an equipment has, and each sensor's readings by hour, come from a rollup by
-- sensor, sensor_reading_counts, folded from the same deltas as reading_counts: the deltas
-- now carry the sensor of their readings. Latest finds there each sensor's last hour, and so
-- its newest reading without reading other sensors'; the metrics of one sensor read its
-- whole hours there. reading_counts stays by equipment, for the metrics of every equipment,
-- which would otherwise read a row per sensor; its new column attributed says how many of an
-- hour's readings sensor_reading_counts counts. The hours counted before this migration are
-- not attributed (attributed = 0), nor are the deltas left to fold, nor those that a writer
-- or fold of an earlier build adds (their sensor_type is empty): those readings are of the
-- contract's types and have no sensor id, and the queries of one sensor count such hours
-- from the readings. Attributing them here would read every reading under the lock.

-- +goose Up
CREATE TABLE sensor_reading_counts (
    equipment_id text COLLATE "C" NOT NULL,
    sensor_id    text COLLATE "C" NOT NULL,
    sensor_type  text COLLATE "C" NOT NULL,
    hour         timestamptz      NOT NULL,
    readings     bigint           NOT NULL CHECK (readings > 0),
    -- The sensors of one equipment (a skip scan), each one's last hour, and the counts of one
    -- sensor of one equipment.
    PRIMARY KEY (equipment_id, sensor_id, sensor_type, hour)
);
-- The counts of one sensor of every equipment.
CREATE INDEX sensor_reading_counts_sensor ON sensor_reading_counts (sensor_id, sensor_type, hour);

-- First the lock every step below needs, in one order (see 0008). A fold would take the
-- deltas' lock, then reading_counts'.
LOCK TABLE sensor_readings, anomalies, alarms, reading_count_deltas, reading_counts IN ACCESS EXCLUSIVE MODE;

ALTER TABLE sensor_readings
    ADD COLUMN sensor_id text COLLATE "C" NOT NULL DEFAULT '',
    DROP CONSTRAINT sensor_readings_sensor_type_check,
    ADD CONSTRAINT sensor_readings_sensor_type_check CHECK (sensor_type ~ '^[a-z][a-z0-9_-]{0,31}$') NOT VALID;

ALTER TABLE anomalies
    ADD COLUMN sensor_id text COLLATE "C" NOT NULL DEFAULT '',
    DROP CONSTRAINT anomalies_sensor_type_check,
    ADD CONSTRAINT anomalies_sensor_type_check CHECK (sensor_type ~ '^[a-z][a-z0-9_-]{0,31}$') NOT VALID;

ALTER TABLE alarms
    ADD COLUMN sensor_id text COLLATE "C" NOT NULL DEFAULT '',
    DROP CONSTRAINT alarms_sensor_type_check,
    ADD CONSTRAINT alarms_sensor_type_check CHECK (sensor_type ~ '^[a-z][a-z0-9_-]{0,31}$');
DROP INDEX alarms_one_open;
CREATE UNIQUE INDEX alarms_one_open ON alarms (equipment_id, sensor_type, sensor_id) WHERE state <> 'CLEARED';
-- Latest of one sensor.
DROP INDEX alarms_equipment_opened;
CREATE INDEX alarms_equipment_opened ON alarms (equipment_id, sensor_type, sensor_id, opened_at);

-- A delta whose sensor_type is empty counts readings by equipment only.
ALTER TABLE reading_count_deltas
    ADD COLUMN sensor_type text COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN sensor_id   text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE reading_counts ADD COLUMN attributed bigint NOT NULL DEFAULT 0;

-- +goose Down
-- The schema before tells apart neither the sensors of one type nor the declared types:
-- going down refuses while such sensors are stored (the rollup by sensor lists every sensor
-- written; alarms are checked themselves), rather than merge their readings and alarms.
-- +goose StatementBegin
DO $$
BEGIN
    LOCK TABLE sensor_readings, anomalies, alarms, reading_count_deltas, reading_counts IN ACCESS EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM sensor_reading_counts
            WHERE sensor_id <> '' OR sensor_type NOT IN ('temperature', 'vibration', 'pressure', 'voltage'))
        OR EXISTS (SELECT 1 FROM reading_count_deltas
            WHERE sensor_id <> '' OR sensor_type NOT IN ('', 'temperature', 'vibration', 'pressure', 'voltage'))
        OR EXISTS (SELECT 1 FROM alarms
            WHERE sensor_id <> '' OR sensor_type NOT IN ('temperature', 'vibration', 'pressure', 'voltage')) THEN
        RAISE EXCEPTION USING
            MESSAGE = 'readings or alarms of named sensors or of declared sensor types are stored',
            HINT = 'The schema before migration 0011 cannot tell these sensors apart: delete their rows first.';
    END IF;
END
$$;
-- +goose StatementEnd
ALTER TABLE reading_counts DROP COLUMN attributed;
ALTER TABLE reading_count_deltas DROP COLUMN sensor_id, DROP COLUMN sensor_type;

DROP INDEX alarms_equipment_opened;
CREATE INDEX alarms_equipment_opened ON alarms (equipment_id, sensor_type, opened_at);
DROP INDEX alarms_one_open;
CREATE UNIQUE INDEX alarms_one_open ON alarms (equipment_id, sensor_type) WHERE state <> 'CLEARED';
ALTER TABLE alarms
    DROP COLUMN sensor_id,
    DROP CONSTRAINT alarms_sensor_type_check,
    ADD CONSTRAINT alarms_sensor_type_check
        CHECK (sensor_type IN ('temperature', 'vibration', 'pressure', 'voltage'));

-- NOT VALID, as Up left them: the check above found no other type.
ALTER TABLE anomalies
    DROP COLUMN sensor_id,
    DROP CONSTRAINT anomalies_sensor_type_check,
    ADD CONSTRAINT anomalies_sensor_type_check
        CHECK (sensor_type IN ('temperature', 'vibration', 'pressure', 'voltage')) NOT VALID;
ALTER TABLE sensor_readings
    DROP COLUMN sensor_id,
    DROP CONSTRAINT sensor_readings_sensor_type_check,
    ADD CONSTRAINT sensor_readings_sensor_type_check
        CHECK (sensor_type IN ('temperature', 'vibration', 'pressure', 'voltage')) NOT VALID;

DROP TABLE sensor_reading_counts;
