package postgres_test

import (
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/postgres"
	"github.com/production-line-monitor/plm/ports"
)

// notices is a database/sql handle on url that records the server's notices.
type notices struct {
	db   *sql.DB
	mu   sync.Mutex
	seen []string
}

func openWithNotices(t *testing.T, url string) *notices {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	n := &notices{}
	cfg.OnNotice = func(_ *pgconn.PgConn, notice *pgconn.Notice) {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.seen = append(n.seen, notice.Message)
	}
	n.db = stdlib.OpenDB(*cfg)
	t.Cleanup(func() { _ = n.db.Close() })
	return n
}

// take returns the notices seen since the last call.
func (n *notices) take() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.seen
	n.seen = nil
	return out
}

func tables(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name <> 'goose_db_version' ORDER BY table_name`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		out = append(out, name)
	}
	require.NoError(t, rows.Err())
	return out
}

var allTables = []string{"alarms", "anomalies", "deliveries", "equipment", "equipment_maintenance", "equipment_sessions",
	"equipment_status", "partition_epochs", "reading_count_deltas", "reading_counts", "reading_keys", "sensor_reading_counts",
	"sensor_readings", "subscriptions"}

func TestIntegrationMigrationsGoDownAndUpAgain(t *testing.T) {
	url := newDatabase(t)
	n := openWithNotices(t, url)
	p, err := postgres.Migrator(n.db)
	require.NoError(t, err)

	up, err := p.Up(t.Context())
	require.NoError(t, err)
	require.Len(t, up, 11)
	assert.Equal(t, allTables, tables(t, n.db))
	timescale := wantTimescaleDB(t, open(t, url))
	if timescale {
		assert.Contains(t, strings.Join(n.take(), "\n"), "sensor_readings is a TimescaleDB hypertable",
			"0003 makes the readings a hypertable")
	} else {
		assert.Contains(t, strings.Join(n.take(), "\n"), "TimescaleDB is not available on this server",
			"0003 only raises a notice here")
	}
	active, err := postgres.TimescaleDB(t.Context(), n.db)
	require.NoError(t, err)
	assert.Equal(t, timescale, active)

	down, err := p.Down(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(11), down.Source.Version)
	assert.NotContains(t, tables(t, n.db), "sensor_reading_counts")
	down, err = p.Down(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(10), down.Source.Version)
	down, err = p.Down(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(9), down.Source.Version)
	down, err = p.Down(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(8), down.Source.Version)
	assert.NotContains(t, tables(t, n.db), "reading_keys")
	down, err = p.Down(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(7), down.Source.Version)
	for _, table := range []string{"subscriptions", "deliveries", "equipment_status"} {
		assert.NotContains(t, tables(t, n.db), table)
	}
	down, err = p.Down(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(6), down.Source.Version)
	assert.NotContains(t, tables(t, n.db), "equipment_maintenance")
	assert.Contains(t, tables(t, n.db), "alarms")
	down, err = p.Down(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(5), down.Source.Version)
	assert.NotContains(t, tables(t, n.db), "alarms")
	down, err = p.Down(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(4), down.Source.Version)
	assert.Equal(t, []string{"anomalies", "equipment", "equipment_sessions", "reading_counts", "sensor_readings"},
		tables(t, n.db))
	var functions int64
	require.NoError(t, n.db.QueryRowContext(t.Context(),
		"SELECT count(*) FROM pg_proc WHERE proname = 'plm_hold_partitions'").Scan(&functions))
	assert.Zero(t, functions, "the fencing function is gone")
	down, err = p.Down(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(3), down.Source.Version)
	if !timescale {
		assert.Contains(t, strings.Join(n.take(), "\n"), "sensor_readings is a plain table: nothing to undo")
	}
	assert.False(t, isHypertable(t, n.db, "sensor_readings"), "0003 undone: a plain table again")

	_, err = p.DownTo(t.Context(), 0)
	require.NoError(t, err)
	assert.Empty(t, tables(t, n.db), "every table is gone")
	version, err := p.GetDBVersion(t.Context())
	require.NoError(t, err)
	assert.Zero(t, version)

	up, err = p.Up(t.Context())
	require.NoError(t, err)
	require.Len(t, up, 11)
	assert.Equal(t, allTables, tables(t, n.db))
	assert.Equal(t, timescale, isHypertable(t, n.db, "sensor_readings"))

	// The schema serves again.
	db := open(t, url)
	s := stores(db)
	r := newReading("press-01", "r-1", 1, t0)
	require.NoError(t, s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{Readings: []ports.StoredReading{r},
		Sightings: []ports.Sighting{{EquipmentID: "press-01", LastSeenAt: r.ReceivedAt}}}))
	got, err := s.Readings.Latest(t.Context(), "press-01")
	require.NoError(t, err)
	assert.Equal(t, []ports.StoredReading{r}, got)
}

// isHypertable says whether table is a TimescaleDB hypertable.
func isHypertable(t *testing.T, db *sql.DB, table string) bool {
	t.Helper()
	var yes bool
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT to_regclass('timescaledb_information.hypertables') IS NOT NULL`).Scan(&yes))
	if !yes {
		return false
	}
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
		WHERE hypertable_schema = current_schema() AND hypertable_name = $1)`, table).Scan(&yes))
	return yes
}

func TestIntegrationRollupMigrationCountsTheReadingsStoredBefore(t *testing.T) {
	url := newDatabase(t)
	n := openWithNotices(t, url)
	p, err := postgres.Migrator(n.db)
	require.NoError(t, err)
	_, err = p.UpTo(t.Context(), 1)
	require.NoError(t, err)
	_, err = n.db.ExecContext(t.Context(), `INSERT INTO equipment (id, created_at) VALUES ('press-01', now())`)
	require.NoError(t, err)
	_, err = n.db.ExecContext(t.Context(), `INSERT INTO sensor_readings (equipment_id, reading_id, sensor_type, value, ts, received_at)
		SELECT 'press-01', 'r-' || i, 'temperature', i, $1::timestamptz + i * interval '1 minute', now()
		FROM generate_series(0, 149) AS i`, t0.Add(-30*time.Minute))
	require.NoError(t, err)
	_, err = p.Up(t.Context())
	require.NoError(t, err)

	db := open(t, url)
	got, err := postgres.NewReadingRepository(db).CountByBucket(t.Context(), ports.SensorScope{EquipmentID: "press-01"}, t0.Add(-time.Hour), t0.Add(3*time.Hour), time.Hour)
	require.NoError(t, err)
	assert.Equal(t, []ports.BucketCount{
		{Bucket: t0.Add(-time.Hour), Count: 30}, {Bucket: t0, Count: 60}, {Bucket: t0.Add(time.Hour), Count: 60},
	}, got)
}

func TestIntegrationOpenRefusesASchemaBehindThisBuild(t *testing.T) {
	tests := []struct {
		name    string
		upTo    int64
		wantMsg string
	}{
		{name: "empty_database", upTo: 0, wantMsg: "database schema is at version 0, this build needs 11: run `plm migrate up`"},
		{name: "one_migration_pending", upTo: 10, wantMsg: "database schema is at version 10, this build needs 11: run `plm migrate up`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := newDatabase(t)
			if tt.upTo > 0 {
				p, err := postgres.Migrator(openWithNotices(t, url).db)
				require.NoError(t, err)
				_, err = p.UpTo(t.Context(), tt.upTo)
				require.NoError(t, err)
			}
			_, err := postgres.Open(t.Context(), postgres.Config{URL: url}, nil)
			require.ErrorIs(t, err, postgres.ErrSchemaBehind)
			assert.Contains(t, err.Error(), tt.wantMsg)
			n := openWithNotices(t, url)
			var versioned bool
			require.NoError(t, n.db.QueryRowContext(t.Context(),
				"SELECT to_regclass('goose_db_version') IS NOT NULL").Scan(&versioned))
			assert.Equal(t, tt.upTo > 0, versioned, "the check leaves the database as it was")

			db, err := postgres.Open(t.Context(), postgres.Config{URL: url, MigrateOnStart: true}, nil)
			require.NoError(t, err, "migrating on start brings it up to date")
			require.NoError(t, db.Close())
			db, err = postgres.Open(t.Context(), postgres.Config{URL: url}, nil)
			require.NoError(t, err, "a current schema is accepted")
			require.NoError(t, db.Close())
		})
	}
}

func TestIntegrationProcessesStartingTogetherMigrateOnce(t *testing.T) {
	url := newDatabase(t)
	const processes = 4
	errs := make(chan error, processes)
	for range processes {
		go func() {
			db, err := postgres.Open(t.Context(), postgres.Config{URL: url, MigrateOnStart: true}, nil)
			if err == nil {
				err = db.Close()
			}
			errs <- err
		}()
	}
	for range processes {
		require.NoError(t, <-errs)
	}
	n := openWithNotices(t, url)
	var applied int64
	require.NoError(t, n.db.QueryRowContext(t.Context(),
		"SELECT count(*) FROM goose_db_version WHERE version_id > 0 AND is_applied").Scan(&applied))
	assert.Equal(t, int64(11), applied)
}

func TestIntegrationRollupDeltasMigrationFoldsTheDeltasBackOnDown(t *testing.T) {
	url := newDatabase(t)
	db := open(t, url)
	writer, folder := postgres.NewBatchWriter(db), postgres.NewRollupFolder(db)
	require.NoError(t, writer.WriteBatch(t.Context(), rollupBatch(0, 300, 3, t0)))
	_, err := folder.FoldRollups(t.Context())
	require.NoError(t, err)
	// Deltas in hours the rollup has, and in hours it has not.
	require.NoError(t, writer.WriteBatch(t.Context(), rollupBatch(300, 300, 4, t0)))
	deltas, err := postgres.QueryInt64(t.Context(), db, "SELECT count(*) FROM reading_count_deltas")
	require.NoError(t, err)
	require.Positive(t, deltas)
	require.NoError(t, db.Close())

	n := openWithNotices(t, url)
	p, err := postgres.Migrator(n.db)
	require.NoError(t, err)
	down, err := p.DownTo(t.Context(), 3)
	require.NoError(t, err)
	require.Equal(t, int64(4), down[len(down)-1].Source.Version)

	// The rollup of 0002 counts every reading again, by equipment and hour.
	var wrong, counted int64
	require.NoError(t, n.db.QueryRowContext(t.Context(), `SELECT count(*) FROM (
			SELECT equipment_id, date_bin('1 hour', ts, timestamptz 'epoch') AS hour, count(*) AS n
			FROM sensor_readings GROUP BY 1, 2
		) r FULL JOIN (SELECT equipment_id, hour, readings AS n FROM reading_counts) c USING (equipment_id, hour)
		WHERE r.n IS DISTINCT FROM c.n`).Scan(&wrong))
	assert.Zero(t, wrong, "(equipment, hour) pairs miscounted")
	require.NoError(t, n.db.QueryRowContext(t.Context(), "SELECT sum(readings)::bigint FROM reading_counts").Scan(&counted))
	assert.Equal(t, int64(600), counted)

	_, err = p.Up(t.Context())
	require.NoError(t, err)
	db = open(t, url)
	got, err := postgres.NewReadingRepository(db).CountByBucket(t.Context(), ports.SensorScope{}, t0, t0.Add(24*time.Hour), 24*time.Hour)
	require.NoError(t, err)
	assert.Equal(t, []ports.BucketCount{{Bucket: t0.Truncate(24 * time.Hour), Count: 600}}, got)
}
