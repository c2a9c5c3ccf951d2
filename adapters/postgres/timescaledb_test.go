package postgres_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/postgres"
	"github.com/production-line-monitor/plm/ports"
	"github.com/production-line-monitor/plm/ports/portstest"
)

// requireTimescaleDB skips t on a server without TimescaleDB (the plain-PostgreSQL run of
// the suite), and fails it where TimescaleDB is expected but the migrations did not use it.
func requireTimescaleDB(t *testing.T, db *postgres.DB) {
	t.Helper()
	active, err := db.TimescaleDB(t.Context())
	require.NoError(t, err)
	want := wantTimescaleDB(t, db)
	if want && !active {
		t.Fatal("TimescaleDB expected (PLM_TEST_STORE=timescaledb) but sensor_readings is not a hypertable")
	}
	if !active {
		t.Skipf("no TimescaleDB on this server (PLM_TEST_STORE=%q): task test runs this on TimescaleDB", os.Getenv("PLM_TEST_STORE"))
	}
}

// compressingWriter compresses every chunk of readings after each batch it writes, so that
// the contract's queries read compressed chunks, and chunks partly compressed when a later
// batch writes into them.
type compressingWriter struct {
	ports.BatchWriter
	db *postgres.DB
}

func (w compressingWriter) WriteBatch(ctx context.Context, b ports.ProcessedBatch) error {
	if err := w.BatchWriter.WriteBatch(ctx, b); err != nil {
		return err
	}
	return postgres.Exec(ctx, w.db, `SELECT count(compress_chunk(c, if_not_compressed => true))
		FROM show_chunks('sensor_readings') c`)
}

func TestIntegrationContractOverCompressedChunks(t *testing.T) {
	requireTimescaleDB(t, sharedDB(t))
	portstest.Run(t, func(t *testing.T) portstest.Stores {
		db := sharedDB(t)
		s := stores(db)
		s.Writer = compressingWriter{BatchWriter: s.Writer, db: db}
		return s
	})
}

// TestIntegrationPoliciesRun lets TimescaleDB's scheduler run each job the migrations add
// (compression, retention, and the job that drops the keys of dropped readings) and checks
// what each did.
func TestIntegrationPoliciesRun(t *testing.T) {
	url := newDatabase(t)
	db, err := postgres.Open(t.Context(), postgres.Config{URL: url, MigrateOnStart: true,
		CompressAfter: 7 * 24 * time.Hour, RetainFor: 30 * 24 * time.Hour}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	requireTimescaleDB(t, db)

	now := time.Now().UTC().Truncate(time.Hour)
	ages := map[string]time.Duration{"old": 40 * 24 * time.Hour, "week-old": 10 * 24 * time.Hour, "new": 0}
	w := postgres.NewBatchWriter(db)
	for name, age := range ages {
		var b ports.ProcessedBatch
		for i := range 100 {
			at := now.Add(-age).Add(time.Duration(i) * time.Second)
			r := newReading("press-01", fmt.Sprintf("%s-%d", name, i), float64(i), at)
			b.Readings = append(b.Readings, r)
		}
		b.Sightings = []ports.Sighting{{EquipmentID: "press-01", LastSeenAt: b.Readings[99].ReceivedAt}}
		require.NoError(t, w.WriteBatch(t.Context(), b))
	}
	count := func(sql string, args ...any) int64 {
		t.Helper()
		n, err := postgres.QueryInt64(t.Context(), db, sql, args...)
		require.NoError(t, err)
		return n
	}
	require.Equal(t, int64(300), count("SELECT count(*) FROM reading_keys"))

	jobs, err := postgres.QueryStrings(t.Context(), db, `SELECT proc_name || ':' || job_id FROM timescaledb_information.jobs
		WHERE hypertable_name = 'sensor_readings' OR proc_name = 'plm_drop_reading_keys' ORDER BY proc_name`)
	require.NoError(t, err)
	require.Len(t, jobs, 3, "compression, retention and key jobs: %v", jobs)
	// One after another (a compression and a retention running at once on one hypertable can
	// deadlock, and the scheduler would retry the loser later): each made due now, and run
	// by the scheduler within a second or so. A job may have run already, when its policy
	// was added: only a run that finishes after it was made due counts.
	for _, job := range []string{"policy_compression", "policy_retention", "plm_drop_reading_keys"} {
		since, err := postgres.QueryStrings(t.Context(), db, "SELECT clock_timestamp()::text")
		require.NoError(t, err)
		require.NoError(t, postgres.Exec(t.Context(), db, `SELECT alter_job(job_id, next_start => now())
			FROM timescaledb_information.jobs WHERE proc_name = $1`, job))
		deadline := time.Now().Add(2 * time.Minute)
		for count(`SELECT count(*) FROM timescaledb_information.job_stats s
			JOIN timescaledb_information.jobs j USING (job_id)
			WHERE j.proc_name = $1 AND s.last_successful_finish > $2::timestamptz`, job, since[0]) == 0 {
			failed, err := postgres.QueryStrings(t.Context(), db, `SELECT coalesce(err_message, '')
				FROM timescaledb_information.job_errors WHERE proc_name = $1`, job)
			require.NoError(t, err)
			require.Empty(t, failed, "%s failed", job)
			if time.Now().After(deadline) {
				t.Fatalf("%s has not succeeded after 2 minutes", job)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Retention dropped the chunks of the old readings, the key job their keys.
	assert.Zero(t, count("SELECT count(*) FROM sensor_readings WHERE ts < $1", now.Add(-30*24*time.Hour)))
	assert.Equal(t, int64(200), count("SELECT count(*) FROM sensor_readings"))
	assert.Equal(t, int64(200), count("SELECT count(*) FROM reading_keys"))
	assert.Zero(t, count("SELECT count(*) FROM reading_keys WHERE reading_id LIKE 'old-%'"))
	// Compression compressed the week-old chunk and left the new one.
	assert.Equal(t, int64(1), count(`SELECT count(*) FROM timescaledb_information.chunks
		WHERE hypertable_name = 'sensor_readings' AND is_compressed`))
	assert.Equal(t, int64(1), count(`SELECT count(*) FROM timescaledb_information.chunks
		WHERE hypertable_name = 'sensor_readings' AND NOT is_compressed`))

	// A week-old reading re-sent, with another timestamp, is still stored once.
	again := newReading("press-01", "week-old-5", 99, now)
	require.NoError(t, w.WriteBatch(t.Context(), ports.ProcessedBatch{Readings: []ports.StoredReading{again}}))
	assert.Equal(t, int64(1), count("SELECT count(*) FROM sensor_readings WHERE reading_id = 'week-old-5'"))
	got, err := postgres.NewReadingRepository(db).StoredRefs(t.Context(), []ports.ReadingRef{{EquipmentID: "press-01", ReadingID: "old-5"}})
	require.NoError(t, err)
	assert.False(t, got[ports.ReadingRef{EquipmentID: "press-01", ReadingID: "old-5"}], "a dropped reading's key is gone")
}
