-- What opened an alarm: the z-score of anomalous readings, or a check beyond it (stuck,
-- rate, drift, variance), with that check's evidence on the opening reading: the statistic,
-- the limit it reached and how many readings the statistic spans. Alarms opened before are
-- the z-score's, their evidence their peak |z|.

-- +goose Up
ALTER TABLE alarms ADD COLUMN cause TEXT NOT NULL DEFAULT 'zscore'
    CHECK (cause IN ('zscore', 'stuck', 'rate', 'drift', 'variance'));
ALTER TABLE alarms ADD COLUMN evidence_statistic REAL NOT NULL DEFAULT 0;
ALTER TABLE alarms ADD COLUMN evidence_limit REAL NOT NULL DEFAULT 0;
ALTER TABLE alarms ADD COLUMN evidence_window INTEGER NOT NULL DEFAULT 0;
UPDATE alarms SET evidence_statistic = peak_z;

-- +goose Down
ALTER TABLE alarms DROP COLUMN evidence_window;
ALTER TABLE alarms DROP COLUMN evidence_limit;
ALTER TABLE alarms DROP COLUMN evidence_statistic;
ALTER TABLE alarms DROP COLUMN cause;
