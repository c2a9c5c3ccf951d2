-- What opened an alarm: the z-score of anomalous readings, or a check beyond it (stuck,
-- rate, drift, variance), with that check's evidence on the opening reading: the statistic,
-- the limit it reached and how many readings the statistic spans. Alarms opened before are
-- the z-score's, their evidence their peak |z|.

-- +goose Up
ALTER TABLE alarms
    ADD COLUMN cause text NOT NULL DEFAULT 'zscore'
        CHECK (cause IN ('zscore', 'stuck', 'rate', 'drift', 'variance')),
    ADD COLUMN evidence_statistic double precision NOT NULL DEFAULT 0,
    ADD COLUMN evidence_limit double precision NOT NULL DEFAULT 0,
    ADD COLUMN evidence_window integer NOT NULL DEFAULT 0;
UPDATE alarms SET evidence_statistic = peak_z;

-- +goose Down
ALTER TABLE alarms
    DROP COLUMN evidence_window,
    DROP COLUMN evidence_limit,
    DROP COLUMN evidence_statistic,
    DROP COLUMN cause;
