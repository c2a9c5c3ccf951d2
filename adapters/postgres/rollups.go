package postgres

import (
	"context"

	"github.com/production-line-monitor/plm/ports"
)

// RollupFolder folds the counts that batch writes append to reading_count_deltas into the
// hourly rollup reading_counts (see migration 0004).
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

// foldRollupsSQL sums the deltas it deletes by (equipment, hour) and upserts the sums in key
// order, so that concurrent folds lock rollup rows in the same order; it answers how many
// deltas it deleted.
const foldRollupsSQL = `WITH folded AS (
		DELETE FROM reading_count_deltas RETURNING equipment_id, hour, readings
	), summed AS (
		INSERT INTO reading_counts (equipment_id, hour, readings)
		SELECT equipment_id, hour, sum(readings)::bigint FROM folded GROUP BY 1, 2 ORDER BY 1, 2
		ON CONFLICT (equipment_id, hour) DO UPDATE SET readings = reading_counts.readings + excluded.readings
	)
	SELECT count(*) FROM folded`
