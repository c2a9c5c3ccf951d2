-- The idempotency key of a reading is (equipment_id, reading_id): a reading re-sent with the
-- same readingId is stored once, whatever its timestamp, for as long as readings are kept.
-- A hypertable cannot enforce a unique key without its time column, so the key moves out of
-- sensor_readings into reading_keys, a plain table on every server: the writer inserts a
-- reading's key and the reading in one statement, and only readings whose key it inserted.
-- Two writers racing with the same reading meet on the key's primary key: one inserts it, the
-- other's ON CONFLICT skips it, and so its reading.
--
-- sensor_readings keeps one b-tree, (equipment_id, sensor_type, ts DESC), and the BRIN on ts;
-- the index on seq goes: the windows warm up from the last readings by time. Each index is
-- written by every insert; at line rate each costs a good share of the write speed.
--
-- On TimescaleDB, chunks of readings span plm.chunk_interval (default 1 day; read when the
-- migration runs, like plm.compress_after), and when a retention policy drops old chunks a
-- job drops the keys received before the same age, so that keys do not outlive readings.

-- +goose Up
-- +goose StatementBegin
-- The job that drops the keys received before drop_after (of its config): scheduled by the
-- migration below when retention is on, and run by hand or by tests with CALL
-- plm_drop_reading_keys(0, '{"drop_after": "30 days"}').
CREATE PROCEDURE plm_drop_reading_keys(job_id int, config jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM reading_keys WHERE received_at < now() - (config ->> 'drop_after')::interval;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
DECLARE
    chunk     interval;
    retention interval;
BEGIN
    -- First the lock every step below needs: a background job (compressing a chunk, say)
    -- that takes its locks in another order would otherwise deadlock with the migration.
    LOCK TABLE sensor_readings, anomalies IN ACCESS EXCLUSIVE MODE;
    CREATE TABLE reading_keys (
        equipment_id text COLLATE "C" NOT NULL,
        reading_id   text COLLATE "C" NOT NULL,
        received_at  timestamptz      NOT NULL,
        CONSTRAINT reading_keys_pkey PRIMARY KEY (equipment_id, reading_id)
    );
    -- Keys arrive in the order received: a block-range index finds the old ones to drop.
    CREATE INDEX reading_keys_received_brin ON reading_keys USING brin (received_at);
    INSERT INTO reading_keys (equipment_id, reading_id, received_at)
    SELECT equipment_id, reading_id, min(received_at) FROM sensor_readings GROUP BY 1, 2;

    ALTER TABLE anomalies DROP CONSTRAINT IF EXISTS anomalies_reading_fkey;
    ALTER TABLE sensor_readings DROP CONSTRAINT IF EXISTS sensor_readings_reading_key;
    ALTER TABLE sensor_readings DROP CONSTRAINT IF EXISTS sensor_readings_reading_ts_key;
    DROP INDEX IF EXISTS sensor_readings_sensor_seq;

    -- Two IFs: the second names a view that exists only with the extension.
    IF to_regclass('timescaledb_information.hypertables') IS NULL THEN
        RETURN;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM timescaledb_information.hypertables
        WHERE hypertable_schema = current_schema() AND hypertable_name = 'sensor_readings'
    ) THEN
        RETURN;
    END IF;
    chunk := coalesce(nullif(current_setting('plm.chunk_interval', true), ''), '1 day')::interval;
    PERFORM set_chunk_time_interval('sensor_readings', chunk);
    retention := nullif(current_setting('plm.retain_for', true), '')::interval;
    IF retention IS NOT NULL THEN
        PERFORM add_job('plm_drop_reading_keys', schedule_interval => least(chunk, interval '1 hour'),
            config => jsonb_build_object('drop_after', retention::text));
    END IF;
    RAISE NOTICE 'sensor_readings: chunks of %', chunk;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    hypertable boolean := false;
BEGIN
    IF to_regclass('timescaledb_information.hypertables') IS NOT NULL THEN
        hypertable := EXISTS (
            SELECT 1 FROM timescaledb_information.hypertables
            WHERE hypertable_schema = current_schema() AND hypertable_name = 'sensor_readings');
    END IF;
    LOCK TABLE sensor_readings, anomalies IN ACCESS EXCLUSIVE MODE;
    IF hypertable THEN
        PERFORM delete_job(job_id) FROM timescaledb_information.jobs WHERE proc_name = 'plm_drop_reading_keys';
        PERFORM set_chunk_time_interval('sensor_readings', interval '1 day');
        ALTER TABLE sensor_readings
            ADD CONSTRAINT sensor_readings_reading_ts_key UNIQUE (equipment_id, reading_id, ts);
    ELSE
        ALTER TABLE sensor_readings
            ADD CONSTRAINT sensor_readings_reading_key UNIQUE (equipment_id, reading_id);
        ALTER TABLE anomalies ADD CONSTRAINT anomalies_reading_fkey FOREIGN KEY (equipment_id, reading_id)
            REFERENCES sensor_readings (equipment_id, reading_id);
    END IF;
    CREATE INDEX sensor_readings_sensor_seq ON sensor_readings (equipment_id, sensor_type, seq DESC);
END
$$;
-- +goose StatementEnd
DROP PROCEDURE plm_drop_reading_keys(int, jsonb);
DROP TABLE reading_keys;
