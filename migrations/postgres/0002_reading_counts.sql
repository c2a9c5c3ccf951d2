-- The production metrics' rollup: how many readings each equipment has per hour (hours aligned
-- to the Unix epoch, that is UTC hours). The batch writer maintains it in the transaction that
-- stores the readings, from the rows that transaction actually inserted, so that a redelivered
-- reading is never counted twice. CountByBucket reads whole hours from here and only the
-- partial hours at the edges of its range from sensor_readings.

-- +goose Up
CREATE TABLE reading_counts (
    equipment_id text COLLATE "C" NOT NULL,
    hour         timestamptz      NOT NULL,
    readings     bigint           NOT NULL CHECK (readings > 0),
    -- CountByBucket of one equipment.
    PRIMARY KEY (equipment_id, hour)
);

-- CountByBucket of every equipment.
CREATE INDEX reading_counts_hour ON reading_counts (hour);

-- Readings stored before this migration.
INSERT INTO reading_counts (equipment_id, hour, readings)
SELECT equipment_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*)
FROM sensor_readings
GROUP BY 1, 2;

-- +goose Down
DROP TABLE reading_counts;
