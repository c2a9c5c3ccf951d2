-- Maintenance windows: at most one per equipment, [from_at, to_at), a new one replacing it.
-- An ended window stays until it is replaced. Times as in 0001 (microseconds).

-- +goose Up
CREATE TABLE equipment_maintenance (
    equipment_id TEXT    NOT NULL PRIMARY KEY REFERENCES equipment (id),
    from_at      INTEGER NOT NULL,
    to_at        INTEGER NOT NULL CHECK (to_at >= from_at),
    reason       TEXT    NOT NULL DEFAULT ''
) STRICT;

-- +goose Down
DROP TABLE equipment_maintenance;
