package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/sqlite"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
	"github.com/production-line-monitor/plm/ports/portstest"
)

// open opens a fresh database in t's temporary directory, closed when t ends.
func open(t testing.TB) (*sqlite.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plm.db")
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db, path
}

func stores(db *sqlite.DB) portstest.Stores {
	return portstest.Stores{
		Readings:    sqlite.NewReadingRepository(db),
		Anomalies:   sqlite.NewAnomalyRepository(db),
		Alarms:      sqlite.NewAlarmRepository(db),
		Equipment:   sqlite.NewEquipmentRepository(db),
		Writer:      sqlite.NewBatchWriter(db),
		Maintenance: sqlite.NewMaintenanceRepository(db),

		Subscriptions: sqlite.NewSubscriptionRepository(db),
		Deliveries:    sqlite.NewDeliveryQueue(db),
		Ledger:        sqlite.NewStatusLedger(db),
	}
}

func TestContract(t *testing.T) {
	portstest.Run(t, func(t *testing.T) portstest.Stores {
		db, _ := open(t)
		return stores(db)
	})
}

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

func newReading(eq, id string, v float64, ts time.Time) ports.StoredReading {
	r, err := sensor.NewReading(id, eq, sensor.Temperature, "", v, "celsius", ts, ts.Add(time.Millisecond))
	if err != nil {
		panic(err)
	}
	return ports.StoredReading{Reading: r}
}

func TestDataSurvivesCloseAndOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "plm.db") // the directories are created
	db, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	require.NoError(t, err)
	r := newReading("press-01", "r-1", 71.5, t0)
	s := stores(db)
	require.NoError(t, s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{
		Readings:  []ports.StoredReading{r},
		Sightings: []ports.Sighting{{EquipmentID: "press-01", LastSeenAt: r.ReceivedAt}},
	}))
	_, err = s.Equipment.UpsertMetadata(t.Context(), "press-01", equipment.Metadata{Name: "Press"}, t0)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	db, err = sqlite.Open(t.Context(), sqlite.Config{Path: path})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	s = stores(db)
	got, err := s.Readings.History(t.Context(), ports.HistoryQuery{EquipmentID: "press-01", From: t0, To: t0.Add(time.Hour), Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, []ports.StoredReading{r}, got)
	e, err := s.Equipment.Get(t.Context(), "press-01")
	require.NoError(t, err)
	assert.Equal(t, equipment.Equipment{ID: "press-01", Name: "Press", CreatedAt: r.ReceivedAt, LastSeenAt: r.ReceivedAt}, e)
}

func TestMigrationsAreAppliedOnce(t *testing.T) {
	_, path := open(t)
	again, err := sqlite.Open(t.Context(), sqlite.Config{Path: path}) // a second process on the same file
	require.NoError(t, err)
	t.Cleanup(func() { _ = again.Close() })

	applied, err := sqlite.AppliedMigrations(t.Context(), again)
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7}, applied)
}

func TestMigrationsGoDownAndUpAgain(t *testing.T) {
	db, _ := open(t)
	require.NoError(t, sqlite.MigrateDownAll(t.Context(), db))
	applied, err := sqlite.AppliedMigrations(t.Context(), db)
	require.NoError(t, err)
	assert.Empty(t, applied)
	_, err = sqlite.NewEquipmentRepository(db).All(t.Context())
	require.Error(t, err, "the tables are gone")

	require.NoError(t, sqlite.MigrateUp(t.Context(), db))
	all, err := sqlite.NewEquipmentRepository(db).All(t.Context())
	require.NoError(t, err)
	assert.Empty(t, all)
}

func TestOpenSetsThePragmas(t *testing.T) {
	db, _ := open(t)
	want := map[string]string{
		"journal_mode": "wal",
		"synchronous":  "1", // NORMAL
		"foreign_keys": "1",
		"busy_timeout": "5000",
		"temp_store":   "2", // MEMORY
	}
	for name, v := range want {
		got, err := sqlite.Pragma(t.Context(), db, name)
		require.NoError(t, err)
		assert.Equal(t, v, got, name)
	}
}

func TestOpenRejectsBadPaths(t *testing.T) {
	for _, path := range []string{"", ":memory:", filepath.Join(t.TempDir(), "a?b.db")} {
		t.Run(fmt.Sprintf("%q", path), func(t *testing.T) {
			_, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
			assert.ErrorIs(t, err, sqlite.ErrBadPath)
		})
	}
}

func TestOpenFailsOnAFileThatIsNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plm.db")
	require.NoError(t, os.WriteFile(path, []byte("this is not a database, though it is as long as a header"), 0o600))
	_, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	assert.Error(t, err)
}

func TestPing(t *testing.T) {
	db, _ := open(t)
	assert.Equal(t, "storage", db.Name())
	require.NoError(t, db.Ping(t.Context()))
	require.NoError(t, db.Close())
	assert.ErrorIs(t, db.Ping(t.Context()), ports.ErrUnavailable)
}

func TestClosedDatabaseIsUnavailable(t *testing.T) {
	portstest.Closed(t, func(t *testing.T) (portstest.Stores, func() error) {
		db, _ := open(t)
		return stores(db), db.Close
	})
}

func TestReadingOfUnregisteredEquipmentIsAConflict(t *testing.T) {
	db, _ := open(t)
	err := sqlite.NewBatchWriter(db).WriteBatch(t.Context(), ports.ProcessedBatch{
		Readings: []ports.StoredReading{newReading("press-01", "r-1", 1, t0)},
	})
	assert.ErrorIs(t, err, ports.ErrConflict)
}

func TestBucketsShorterThanAMicrosecondAreRefused(t *testing.T) {
	db, _ := open(t)
	r := sqlite.NewReadingRepository(db)
	_, err := r.CountByBucket(t.Context(), ports.SensorScope{}, t0, t0.Add(time.Hour), time.Nanosecond)
	assert.ErrorIs(t, err, sqlite.ErrBadInterval)
	_, err = r.Averages(t.Context(), ports.HistoryQuery{EquipmentID: "press-01", From: t0, To: t0.Add(time.Hour), Limit: 10}, 0)
	assert.ErrorIs(t, err, sqlite.ErrBadInterval)
}

func TestConcurrentWritersAndReaders(t *testing.T) {
	db, _ := open(t)
	s := stores(db)
	const writers, batches, per = 4, 10, 50
	errs := make(chan error, writers*batches*2)
	done := make(chan struct{})
	for w := range writers {
		go func() {
			defer func() { done <- struct{}{} }()
			eq := fmt.Sprintf("press-%02d", w)
			for b := range batches {
				rs := make([]ports.StoredReading, per)
				for i := range rs {
					rs[i] = newReading(eq, fmt.Sprintf("r-%d-%d", b, i), float64(i), t0.Add(time.Duration(b*per+i)*time.Second))
				}
				errs <- s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{Readings: rs,
					Sightings: []ports.Sighting{{EquipmentID: eq, LastSeenAt: rs[per-1].ReceivedAt}}})
				_, err := s.Readings.RecentValues(t.Context(), sensor.Key{EquipmentID: eq, Type: sensor.Temperature}, 100)
				errs <- err
			}
		}()
	}
	for range writers {
		<-done
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	counts, err := s.Readings.CountByBucket(t.Context(), ports.SensorScope{}, t0, t0.Add(24*time.Hour), 24*time.Hour)
	require.NoError(t, err)
	assert.Equal(t, []ports.BucketCount{{Bucket: t0.Truncate(24 * time.Hour), Count: writers * batches * per}}, counts)
}

func BenchmarkWriteBatch(b *testing.B) {
	db, _ := open(b)
	w := sqlite.NewBatchWriter(db)
	const size, machines = 1000, 10
	n := 0
	for b.Loop() {
		batch := ports.ProcessedBatch{Readings: make([]ports.StoredReading, size)}
		for i := range size {
			eq := fmt.Sprintf("press-%02d", i%machines)
			r, err := sensor.NewReading(fmt.Sprintf("r-%d", n), eq, sensor.Types[(i/machines)%len(sensor.Types)], "",
				float64(i%97), "celsius", t0.Add(time.Duration(n)*time.Millisecond), t0.Add(time.Duration(n)*time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			batch.Readings[i] = ports.StoredReading{Reading: r, Anomalous: i%100 == 0}
			if i%100 == 0 {
				batch.Anomalies = append(batch.Anomalies, anomaly.Anomaly{ID: fmt.Sprintf("a-%d", n), ReadingID: r.ID,
					EquipmentID: eq, SensorType: r.Type, Value: r.Value, ZScore: 3.5, Mean: 40, StdDev: 10, WindowSize: 100,
					Severity: anomaly.SeverityLow, Timestamp: r.Timestamp, DetectedAt: r.ReceivedAt})
			}
			n++
		}
		for m := range machines {
			eq := fmt.Sprintf("press-%02d", m)
			last := batch.Readings[size-machines+m].ReceivedAt
			batch.Sightings = append(batch.Sightings, ports.Sighting{EquipmentID: eq, LastSeenAt: last})
			batch.Sessions = append(batch.Sessions, equipment.Session{EquipmentID: eq, Start: t0, End: last})
		}
		if err := w.WriteBatch(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
}

func TestDatabaseContract(t *testing.T) {
	portstest.Database(t, func(t *testing.T) portstest.Stores {
		db, _ := open(t)
		return stores(db)
	})
}
