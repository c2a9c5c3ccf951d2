-- TimescaleDB, when the server has it: sensor_readings becomes a hypertable of one-day chunks,
-- compressed after an age and, if configured, dropped after another. On a server without
-- TimescaleDB (or where it is installed but not in shared_preload_libraries) this migration
-- only raises a NOTICE, and sensor_readings stays a plain table served by its BRIN index.
--
-- Settings, read when the migration runs (for example `ALTER DATABASE plm SET
-- plm.compress_after = '14 days'` beforehand, or PGOPTIONS='-c plm.retain_for=1year'):
--   plm.compress_after  age after which chunks are compressed; default 7 days
--   plm.retain_for      age after which chunks are dropped; no retention policy when unset
--
-- A unique constraint on a hypertable must include its time column, so the readings' identity
-- becomes (equipment_id, reading_id, ts). Redelivery stays idempotent: the webhook gives a
-- reading its timestamp before queueing it, so a redelivered reading has the same ts and
-- ON CONFLICT still skips it; the processor also skips, by StoredRefs, any reading whose
-- (equipment_id, reading_id) is stored, whatever its timestamp. The anomalies' foreign key to
-- the readings goes (a foreign key cannot reference a hypertable before TimescaleDB 2.16, and
-- would stop retention from dropping chunks): the writer inserts an anomaly only in the
-- statement that inserts its reading. Anomalies stay a plain table: they are few.
-- The rollup reading_counts keeps counting hours whose readings retention has dropped.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    compress_age interval;
    retention    interval;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        RAISE NOTICE 'TimescaleDB is not available on this server: sensor_readings stays a plain table';
        RETURN;
    END IF;
    IF current_setting('shared_preload_libraries') !~ 'timescaledb' THEN
        RAISE NOTICE 'TimescaleDB is installed but not in shared_preload_libraries: sensor_readings stays a plain table';
        RETURN;
    END IF;
    compress_age := coalesce(nullif(current_setting('plm.compress_after', true), ''), '7 days')::interval;
    retention := nullif(current_setting('plm.retain_for', true), '')::interval;
    CREATE EXTENSION IF NOT EXISTS timescaledb;

    ALTER TABLE anomalies DROP CONSTRAINT anomalies_reading_fkey;
    ALTER TABLE sensor_readings DROP CONSTRAINT sensor_readings_reading_key;
    -- Idempotency, StoredRefs (by its (equipment_id, reading_id) prefix), in every chunk.
    ALTER TABLE sensor_readings
        ADD CONSTRAINT sensor_readings_reading_ts_key UNIQUE (equipment_id, reading_id, ts);

    -- The indexes of 0001 serve the same queries in each chunk; no default time index.
    PERFORM create_hypertable('sensor_readings', 'ts',
        chunk_time_interval => interval '1 day',
        create_default_indexes => false,
        migrate_data => true);

    ALTER TABLE sensor_readings SET (
        timescaledb.compress,
        timescaledb.compress_segmentby = 'equipment_id, sensor_type',
        timescaledb.compress_orderby = 'ts DESC, seq DESC');
    PERFORM add_compression_policy('sensor_readings', compress_after => compress_age, if_not_exists => true);
    IF retention IS NOT NULL THEN
        PERFORM add_retention_policy('sensor_readings', drop_after => retention, if_not_exists => true);
    END IF;
    RAISE NOTICE 'sensor_readings is a TimescaleDB hypertable, compressed after %, retained %',
        compress_age, coalesce('for ' || retention::text, 'forever');
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    -- Two IFs: the second names a view that exists only with the extension.
    IF to_regclass('timescaledb_information.hypertables') IS NULL THEN
        RAISE NOTICE 'sensor_readings is a plain table: nothing to undo';
        RETURN;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM timescaledb_information.hypertables
        WHERE hypertable_schema = current_schema() AND hypertable_name = 'sensor_readings'
    ) THEN
        RAISE NOTICE 'sensor_readings is a plain table: nothing to undo';
        RETURN;
    END IF;
    PERFORM remove_retention_policy('sensor_readings', if_exists => true);
    PERFORM remove_compression_policy('sensor_readings', if_exists => true);

    -- Back to the plain table of 0001, with its rows (decompressed as they are read), their
    -- seq values and the same constraint and index names.
    ALTER TABLE sensor_readings RENAME TO sensor_readings_hypertable;
    CREATE TABLE sensor_readings (
        LIKE sensor_readings_hypertable INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY
    );
    INSERT INTO sensor_readings OVERRIDING SYSTEM VALUE
    SELECT * FROM sensor_readings_hypertable ORDER BY seq;
    PERFORM setval(pg_get_serial_sequence('sensor_readings', 'seq'), coalesce(max(seq), 0) + 1, false)
    FROM sensor_readings;
    DROP TABLE sensor_readings_hypertable;

    ALTER TABLE sensor_readings
        ADD CONSTRAINT sensor_readings_reading_key UNIQUE (equipment_id, reading_id);
    CREATE INDEX sensor_readings_sensor_ts ON sensor_readings (equipment_id, sensor_type, ts DESC);
    CREATE INDEX sensor_readings_sensor_seq ON sensor_readings (equipment_id, sensor_type, seq DESC);
    CREATE INDEX sensor_readings_ts_brin ON sensor_readings USING brin (ts);
    ALTER TABLE anomalies ADD CONSTRAINT anomalies_reading_fkey FOREIGN KEY (equipment_id, reading_id)
        REFERENCES sensor_readings (equipment_id, reading_id);
END
$$;
-- +goose StatementEnd
