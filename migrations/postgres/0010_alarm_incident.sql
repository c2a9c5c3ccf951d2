-- The incident of its machine an alarm belongs to: the alarms of one machine that opened
-- while another of them was open share the id of the first. An alarm from before is its own.

-- +goose Up
ALTER TABLE alarms ADD COLUMN incident_id text NOT NULL DEFAULT '';
UPDATE alarms SET incident_id = id;

-- +goose Down
ALTER TABLE alarms DROP COLUMN incident_id;
