package postgres_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/postgres"
	"github.com/production-line-monitor/plm/ports"
)

// heldTx is a transaction on a connection of its own, outside the pool of the code tested,
// that holds row locks for as long as a test needs.
type heldTx struct {
	conn *pgx.Conn
	tx   pgx.Tx
	pid  uint32 // of its server process
}

// beginHeld opens a connection to url and begins a transaction on it; both end with t.
func beginHeld(t *testing.T, url string) *heldTx {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	tx, err := conn.Begin(t.Context())
	require.NoError(t, err)
	return &heldTx{conn: conn, tx: tx, pid: conn.PgConn().PID()}
}

// waitUntilBlocking polls, for up to ten seconds, until a server process waits for a lock
// that h holds.
func (h *heldTx) waitUntilBlocking(t *testing.T, db *postgres.DB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := postgres.QueryInt64(t.Context(), db,
			"SELECT count(*) FROM pg_stat_activity WHERE ?::int = ANY (pg_blocking_pids(pid))", int64(h.pid))
		require.NoError(t, err)
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no server process waits for the locks of process %d", h.pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fencedWrite is a batch of one reading of eq, fenced.
func fencedWrite(eq, id string, fences ...ports.Fence) ports.ProcessedBatch {
	r := newReading(eq, id, 1, t0)
	return ports.ProcessedBatch{
		Readings:  []ports.StoredReading{r},
		Sightings: []ports.Sighting{{EquipmentID: eq, LastSeenAt: r.ReceivedAt}},
		Fences:    fences,
	}
}

func TestIntegrationAdvanceEpochWaitsForAFencedWriteInFlight(t *testing.T) {
	db := sharedDB(t)
	fencer, writer := postgres.NewPartitionFencer(db), postgres.NewBatchWriter(db)
	old, err := fencer.AdvanceEpoch(t.Context(), 1)
	require.NoError(t, err)

	// A write under the old epoch, in flight: it holds the partition, as the batch writer's
	// first statement does, and has written but not committed.
	held := beginHeld(t, sharedURL(t))
	_, err = held.tx.Exec(t.Context(), "SELECT plm_hold_partitions($1, $2)", []int32{1}, []int64{old})
	require.NoError(t, err)
	_, err = held.tx.Exec(t.Context(), "INSERT INTO equipment (id, created_at) VALUES ('press-held', now())")
	require.NoError(t, err)

	type result struct {
		epoch int64
		err   error
	}
	advanced := make(chan result, 1)
	go func() {
		e, err := fencer.AdvanceEpoch(t.Context(), 1)
		advanced <- result{e, err}
	}()
	held.waitUntilBlocking(t, db)
	select {
	case r := <-advanced:
		t.Fatalf("AdvanceEpoch returned (%d, %v) while a write under the old epoch was in flight", r.epoch, r.err)
	default:
	}

	require.NoError(t, held.tx.Commit(t.Context()), "the write in flight still commits")
	r := <-advanced
	require.NoError(t, r.err)
	assert.Equal(t, old+1, r.epoch)

	n, err := postgres.QueryInt64(t.Context(), db, "SELECT count(*) FROM equipment WHERE id = 'press-held'")
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "the write in flight was committed")
	err = writer.WriteBatch(t.Context(), fencedWrite("press-01", "r-1", ports.Fence{Partition: 1, Epoch: old}))
	assert.ErrorIs(t, err, ports.ErrFenced, "later writes under the old epoch are fenced")
}

func TestIntegrationFencedWriteWaitsForAnAdvanceInFlight(t *testing.T) {
	tests := []struct {
		name       string
		commit     bool // the advance commits, or rolls back
		wantFenced bool
	}{
		{name: "advance_commits", commit: true, wantFenced: true},
		{name: "advance_rolls_back", commit: false, wantFenced: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := sharedDB(t)
			fencer, writer := postgres.NewPartitionFencer(db), postgres.NewBatchWriter(db)
			epoch, err := fencer.AdvanceEpoch(t.Context(), 2)
			require.NoError(t, err)

			// Another worker's take-over, not committed yet.
			held := beginHeld(t, sharedURL(t))
			_, err = held.tx.Exec(t.Context(), "UPDATE partition_epochs SET epoch = epoch + 1 WHERE partition = 2")
			require.NoError(t, err)

			written := make(chan error, 1)
			go func() {
				written <- writer.WriteBatch(t.Context(), fencedWrite("press-01", "r-1", ports.Fence{Partition: 2, Epoch: epoch}))
			}()
			held.waitUntilBlocking(t, db)
			select {
			case err := <-written:
				t.Fatalf("WriteBatch returned %v while the take-over was in flight", err)
			default:
			}
			if tt.commit {
				require.NoError(t, held.tx.Commit(t.Context()))
			} else {
				require.NoError(t, held.tx.Rollback(t.Context()))
			}

			err = <-written
			stored, qerr := postgres.QueryInt64(t.Context(), db, "SELECT count(*) FROM sensor_readings")
			require.NoError(t, qerr)
			if tt.wantFenced {
				assert.ErrorIs(t, err, ports.ErrFenced)
				assert.Contains(t, err.Error(), "partition 2 is at epoch")
				assert.Zero(t, stored, "the fenced write stored nothing")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, int64(1), stored)
		})
	}
}

func TestIntegrationFencedErrorNamesThePartition(t *testing.T) {
	db := sharedDB(t)
	fencer, writer := postgres.NewPartitionFencer(db), postgres.NewBatchWriter(db)
	for range 3 {
		_, err := fencer.AdvanceEpoch(t.Context(), 7)
		require.NoError(t, err)
	}
	err := writer.WriteBatch(t.Context(), fencedWrite("press-01", "r-1", ports.Fence{Partition: 7, Epoch: 2}))
	require.ErrorIs(t, err, ports.ErrFenced)
	assert.NotErrorIs(t, err, ports.ErrConflict)
	assert.NotErrorIs(t, err, ports.ErrUnavailable)
	assert.Contains(t, err.Error(), "partition 7 is at epoch 3, the write was fenced at epoch 2")

	err = writer.WriteBatch(t.Context(), fencedWrite("press-01", "r-1", ports.Fence{Partition: 8, Epoch: 1}))
	require.ErrorIs(t, err, ports.ErrFenced)
	assert.Contains(t, err.Error(), "partition 8 is at epoch none")
}

func TestIntegrationPartitionsBeyond32BitsAreRefused(t *testing.T) {
	if math.MaxInt == math.MaxInt32 {
		t.Skip("int is 32 bits")
	}
	db := sharedDB(t)
	wide := int64(1) << 32
	big := int(wide) // would wrap to partition 0
	_, err := postgres.NewPartitionFencer(db).AdvanceEpoch(t.Context(), big)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("partition %d does not fit in 32 bits", big))

	epoch, err := postgres.NewPartitionFencer(db).AdvanceEpoch(t.Context(), 0)
	require.NoError(t, err)
	err = postgres.NewBatchWriter(db).WriteBatch(t.Context(), fencedWrite("press-01", "r-1", ports.Fence{Partition: big, Epoch: epoch}))
	require.Error(t, err)
	assert.NotErrorIs(t, err, ports.ErrFenced)
	n, err := postgres.QueryInt64(t.Context(), db, "SELECT count(*) FROM sensor_readings")
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestIntegrationConcurrentAdvancesHandOutEachEpochOnce(t *testing.T) {
	db := sharedDB(t)
	fencer := postgres.NewPartitionFencer(db)
	const workers, each = 4, 25
	epochs := make(chan int64, workers*each)
	errs := make(chan error, workers*each)
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for range each {
				e, err := fencer.AdvanceEpoch(t.Context(), 3)
				epochs <- e
				errs <- err
			}
		}()
	}
	for range workers {
		<-done
	}
	close(epochs)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	seen := make(map[int64]bool)
	for e := range epochs {
		assert.False(t, seen[e], "epoch %d handed out twice", e)
		seen[e] = true
	}
	for e := int64(1); e <= workers*each; e++ {
		assert.True(t, seen[e], "epoch %d never handed out", e)
	}
}
