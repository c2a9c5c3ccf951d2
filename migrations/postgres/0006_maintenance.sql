-- Maintenance windows: at most one per equipment, [from_at, to_at), a new one replacing it.
-- While a window covers a reading's receipt, the workers open no alarm for the equipment.
-- An ended window stays until it is replaced, so that readings received within it are
-- judged under it however late they are processed.

-- +goose Up
CREATE TABLE equipment_maintenance (
    equipment_id text        NOT NULL PRIMARY KEY REFERENCES equipment (id),
    from_at      timestamptz NOT NULL,
    to_at        timestamptz NOT NULL CHECK (to_at >= from_at),
    reason       text        NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE equipment_maintenance;
