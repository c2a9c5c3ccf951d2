package postgres

import (
	"context"
	"fmt"
	"math"

	"github.com/production-line-monitor/plm/ports"
)

// PartitionFencer hands out the fencing epochs of the readings queue's partitions, kept in
// partition_epochs (see migration 0004).
type PartitionFencer struct{ db *DB }

var _ ports.PartitionFencer = (*PartitionFencer)(nil)

// NewPartitionFencer returns the partition fencer of db.
func NewPartitionFencer(db *DB) *PartitionFencer { return &PartitionFencer{db: db} }

// AdvanceEpoch implements ports.PartitionFencer: the partition's epoch is 1 the first time,
// then one more each time. Fenced batch writes share-lock the partition's row until they
// commit, and this update waits for them: when it returns, no write fenced with an earlier
// epoch can commit any more.
func (f *PartitionFencer) AdvanceEpoch(ctx context.Context, partition int) (int64, error) {
	op := fmt.Sprintf("advance the epoch of partition %d", partition)
	p, err := partitionNumber(partition)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	var epoch int64
	err = f.db.pool.QueryRow(ctx, advanceEpochSQL, p).Scan(&epoch)
	if err != nil {
		return 0, f.db.fail(ctx, op, err)
	}
	return epoch, nil
}

const advanceEpochSQL = `INSERT INTO partition_epochs (partition, epoch) VALUES ($1, 1)
	ON CONFLICT (partition) DO UPDATE SET epoch = partition_epochs.epoch + 1
	RETURNING epoch`

// partitionNumber is p as the integer column that keeps it.
func partitionNumber(p int) (int32, error) {
	if p < math.MinInt32 || p > math.MaxInt32 {
		return 0, fmt.Errorf("partition %d does not fit in 32 bits", p)
	}
	return int32(p), nil
}
