-- The incident of its machine an alarm belongs to (see the PostgreSQL migration of the same
-- name).

-- +goose Up
ALTER TABLE alarms ADD COLUMN incident_id TEXT NOT NULL DEFAULT '';
UPDATE alarms SET incident_id = id;

-- +goose Down
ALTER TABLE alarms DROP COLUMN incident_id;
