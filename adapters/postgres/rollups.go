package postgres

import (
	"context"

	"github.com/production-line-monitor/plm/ports"
)

// RollupFolder folds the counts that batch writes append to reading_count_deltas into the
// hourly rollups: reading_counts, by equipment (see migration 0004), and
// sensor_reading_counts, by sensor (see migration 0011).
type RollupFolder struct{ db *DB }

var _ ports.RollupFolder = (*RollupFolder)(nil)

// NewRollupFolder returns the rollup folder of db.
func NewRollupFolder(db *DB) *RollupFolder { return &RollupFolder{db: db} }

// FoldRollups implements ports.RollupFolder in one statement: it deletes the deltas it sees
// and adds their sums to the rollup. Folds may run at once: a fold that meets a delta that
// another is deleting waits for it to commit and then skips that delta, so that each delta is
// added once; deltas committed after a fold began are left to the next one.
func (f *RollupFolder) FoldRollups(ctx context.Context) (int64, error) {
	var folded int64
	if err := f.db.pool.QueryRow(ctx, foldRollupsSQL).Scan(&folded); err != nil {
		return 0, f.db.fail(ctx, "fold the reading count deltas", err)
	}
	return folded, nil
}

// foldRollupsSQL sums the deltas it deletes by (equipment, hour) and by (sensor, hour) and
// upserts the sums in key order, so that concurrent folds lock rollup rows in the same order;
// it answers how many deltas it deleted. reading_counts.attributed counts the readings of
// deltas that name their sensor: those that sensor_reading_counts counts too. A delta without
// one (with an empty sensor_type, appended by an earlier build) counts in reading_counts only.
const foldRollupsSQL = `WITH folded AS (
		DELETE FROM reading_count_deltas RETURNING equipment_id, sensor_type, sensor_id, hour, readings
	), by_equipment AS (
		INSERT INTO reading_counts (equipment_id, hour, readings, attributed)
		SELECT equipment_id, hour, sum(readings)::bigint,
			coalesce(sum(readings) FILTER (WHERE sensor_type <> ''), 0)::bigint
		FROM folded GROUP BY 1, 2 ORDER BY 1, 2
		ON CONFLICT (equipment_id, hour) DO UPDATE SET readings = reading_counts.readings + excluded.readings,
			attributed = reading_counts.attributed + excluded.attributed
	), by_sensor AS (
		INSERT INTO sensor_reading_counts (equipment_id, sensor_id, sensor_type, hour, readings)
		SELECT equipment_id, sensor_id, sensor_type, hour, sum(readings)::bigint
		FROM folded WHERE sensor_type <> '' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
		ON CONFLICT (equipment_id, sensor_id, sensor_type, hour)
			DO UPDATE SET readings = sensor_reading_counts.readings + excluded.readings
	)
	SELECT count(*) FROM folded`
