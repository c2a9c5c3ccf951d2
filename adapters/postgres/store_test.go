package postgres_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/postgres"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
	"github.com/production-line-monitor/plm/ports/portstest"
)

func TestIntegrationContract(t *testing.T) {
	portstest.Run(t, func(t *testing.T) portstest.Stores { return stores(sharedDB(t)) })
}

// TestIntegrationContractByCopy runs the contract with every batch written by COPY first
// (the contract's batches are smaller than CopyFrom), and so by the statements after a
// unique violation whenever a batch holds a reading stored before.
func TestIntegrationContractByCopy(t *testing.T) {
	portstest.Run(t, func(t *testing.T) portstest.Stores {
		db := sharedDB(t)
		s := stores(db)
		s.Writer = postgres.NewBatchWriterCopyingFrom(db, 1)
		return s
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

func TestIntegrationDataSurvivesCloseAndOpen(t *testing.T) {
	sharedDB(t) // empties the tables
	db, err := postgres.Open(t.Context(), postgres.Config{URL: sharedURL(t)}, nil)
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

	db, err = postgres.Open(t.Context(), postgres.Config{URL: sharedURL(t)}, nil)
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

func TestIntegrationPing(t *testing.T) {
	db := open(t, sharedURL(t))
	assert.Equal(t, "storage", db.Name())
	require.NoError(t, db.Ping(t.Context()))
	require.NoError(t, db.Close())
	assert.ErrorIs(t, db.Ping(t.Context()), ports.ErrUnavailable)
}

func TestIntegrationOpenSizesThePoolAndSetsTheStatementTimeout(t *testing.T) {
	requireServer(t)
	tests := []struct {
		name             string
		cfg              postgres.Config
		wantMin, wantMax int32
		wantTimeout      string
	}{
		{name: "defaults", wantMin: 0, wantMax: 10, wantTimeout: "30s"},
		{name: "configured", cfg: postgres.Config{MaxConns: 3, MinConns: 1, StatementTimeout: 1500 * time.Millisecond},
			wantMin: 1, wantMax: 3, wantTimeout: "1500ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.URL = sharedURL(t)
			db, err := postgres.Open(t.Context(), cfg, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			minConns, maxConns := postgres.PoolSize(db)
			assert.Equal(t, tt.wantMin, minConns)
			assert.Equal(t, tt.wantMax, maxConns)
			got, err := postgres.QueryString(t.Context(), db, "SHOW statement_timeout")
			require.NoError(t, err)
			assert.Equal(t, tt.wantTimeout, got)
		})
	}
}

// TestIntegrationOpenTurnsJITOff checks that the pool's connections plan without JIT
// compilation (see poolConfig), unless the URL asks for it.
func TestIntegrationOpenTurnsJITOff(t *testing.T) {
	requireServer(t)
	for url, want := range map[string]string{sharedURL(t): "off", sharedURL(t) + "&jit=on": "on"} {
		db, err := postgres.Open(t.Context(), postgres.Config{URL: url}, nil)
		require.NoError(t, err)
		got, err := postgres.QueryString(t.Context(), db, "SHOW jit")
		require.NoError(t, err)
		assert.Equal(t, want, got, "jit with %s", redacted(url))
		require.NoError(t, db.Close())
	}
}

func TestIntegrationStatementTimeoutIsUnavailable(t *testing.T) {
	requireServer(t)
	db, err := postgres.Open(t.Context(), postgres.Config{URL: sharedURL(t), StatementTimeout: 50 * time.Millisecond}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	err = postgres.Exec(t.Context(), db, "SELECT pg_sleep(2)")
	assert.ErrorIs(t, err, ports.ErrUnavailable)
	require.NoError(t, db.Ping(t.Context()), "the connection is still usable")
}

func TestIntegrationTimescaleDBIsActiveExactlyWhereTheServerHasIt(t *testing.T) {
	db := sharedDB(t)
	installed, err := postgres.QueryInt64(t.Context(), db,
		"SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
	require.NoError(t, err)
	active, err := db.TimescaleDB(t.Context())
	require.NoError(t, err)
	assert.Equal(t, installed == 1, active)
	assert.Equal(t, wantTimescaleDB(t, db), active, "the migrations use TimescaleDB exactly where the server has it")
	hypertables, err := postgres.QueryInt64(t.Context(), db, `SELECT count(*) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = '_timescaledb_catalog' AND c.relname = 'hypertable'`)
	require.NoError(t, err)
	if active {
		readings, err := postgres.QueryInt64(t.Context(), db,
			"SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'sensor_readings'")
		require.NoError(t, err)
		assert.Equal(t, int64(1), readings, "sensor_readings is a hypertable")
	} else {
		assert.Zero(t, hypertables, "no TimescaleDB catalog on a plain server")
	}
}

func TestIntegrationClosedDatabaseIsUnavailable(t *testing.T) {
	var db *postgres.DB
	portstest.Closed(t, func(t *testing.T) (portstest.Stores, func() error) {
		db = open(t, sharedURL(t))
		return stores(db), db.Close
	})
	t.Run("TimescaleDB", func(t *testing.T) {
		_, err := db.TimescaleDB(t.Context())
		assert.ErrorIs(t, err, ports.ErrUnavailable)
		assert.NotErrorIs(t, err, ports.ErrNotFound)
	})
}

func TestOpenFailsFastWhenNoServerAnswers(t *testing.T) {
	start := time.Now()
	_, err := postgres.Open(t.Context(), postgres.Config{URL: "postgres://postgres@127.0.0.1:1/plm?sslmode=disable"}, nil)
	assert.ErrorIs(t, err, ports.ErrUnavailable)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestOpenTimesOutOnAServerThatNeverAnswers(t *testing.T) {
	// A listener that accepts and then says nothing: the connect timeout must end the wait.
	silent := silentListener(t)
	start := time.Now()
	_, err := postgres.Open(t.Context(), postgres.Config{
		URL: "postgres://postgres@" + silent + "/plm?sslmode=disable&connect_timeout=1",
	}, nil)
	assert.ErrorIs(t, err, ports.ErrUnavailable)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestOpenRejectsABadConfig(t *testing.T) {
	tests := map[string]postgres.Config{
		"empty_url":             {},
		"unparsable_url":        {URL: "postgres://a:b@[::1"},
		"min_above_max":         {URL: "postgres://127.0.0.1:1/plm", MaxConns: 2, MinConns: 3},
		"negative_max":          {URL: "postgres://127.0.0.1:1/plm", MaxConns: -1},
		"timeout_under_a_milli": {URL: "postgres://127.0.0.1:1/plm", StatementTimeout: time.Microsecond},
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := postgres.Open(t.Context(), cfg, nil)
			assert.ErrorIs(t, err, postgres.ErrBadConfig)
			assert.NotErrorIs(t, err, ports.ErrUnavailable)
		})
	}
}

func TestIntegrationWriteBatchFailingAtItsLastStatementStoresNothing(t *testing.T) {
	s := stores(sharedDB(t))
	r := newReading("press-01", "r-1", 71.5, t0)
	err := s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{
		Readings:  []ports.StoredReading{r},
		Sightings: []ports.Sighting{{EquipmentID: "press-01", LastSeenAt: r.ReceivedAt}},
		// The sessions go last: this one names equipment that no sighting registered.
		Sessions: []equipment.Session{{EquipmentID: "press-99", Start: t0, End: t0}},
	})
	require.ErrorIs(t, err, ports.ErrConflict)

	stored, err := s.Readings.StoredRefs(t.Context(), []ports.ReadingRef{{EquipmentID: "press-01", ReadingID: "r-1"}})
	require.NoError(t, err)
	assert.Empty(t, stored, "the reading was rolled back")
	all, err := s.Equipment.All(t.Context())
	require.NoError(t, err)
	assert.Empty(t, all, "the sighting was rolled back")
}

func TestIntegrationNonFiniteValueIsAConflict(t *testing.T) {
	db := sharedDB(t)
	r := newReading("press-01", "r-1", 1, t0)
	r.Value = 1 / zero() // past sensor.NewReading: the database refuses it too
	err := postgres.NewBatchWriter(db).WriteBatch(t.Context(), ports.ProcessedBatch{
		Readings:  []ports.StoredReading{r},
		Sightings: []ports.Sighting{{EquipmentID: "press-01", LastSeenAt: r.ReceivedAt}},
	})
	assert.ErrorIs(t, err, ports.ErrConflict)
}

func zero() float64 { return 0 }

func TestBucketsShorterThanAMicrosecondAreRefused(t *testing.T) {
	r := postgres.NewReadingRepository(nil) // refused before the database is asked
	_, err := r.CountByBucket(t.Context(), ports.SensorScope{}, t0, t0.Add(time.Hour), time.Nanosecond)
	assert.ErrorIs(t, err, postgres.ErrBadInterval)
	_, err = r.Averages(t.Context(), ports.HistoryQuery{EquipmentID: "press-01", From: t0, To: t0.Add(time.Hour), Limit: 10}, 0)
	assert.ErrorIs(t, err, postgres.ErrBadInterval)
}

func TestIntegrationCountByBucketEqualsARawCount(t *testing.T) {
	s := stores(sharedDB(t))
	rng := rand.New(rand.NewPCG(1, 2))
	machines := []string{"press-01", "press-02", "lathe-01"}
	start := t0.Add(-36 * time.Hour)
	span := 72 * time.Hour
	var all []ports.StoredReading
	for b := range 20 {
		var batch ports.ProcessedBatch
		last := map[string]time.Time{}
		for i := range 200 {
			eq := machines[rng.IntN(len(machines))]
			ts := start.Add(time.Duration(rng.Int64N(int64(span/time.Microsecond))) * time.Microsecond)
			r := newReading(eq, fmt.Sprintf("r-%d-%d", b, i), float64(i), ts)
			batch.Readings = append(batch.Readings, r)
			if r.ReceivedAt.After(last[eq]) {
				last[eq] = r.ReceivedAt
			}
		}
		for eq, at := range last {
			batch.Sightings = append(batch.Sightings, ports.Sighting{EquipmentID: eq, LastSeenAt: at})
		}
		require.NoError(t, s.Writer.WriteBatch(t.Context(), batch))
		require.NoError(t, s.Writer.WriteBatch(t.Context(), batch), "redelivered: counted once")
		all = append(all, batch.Readings...)
	}

	want := func(eq string, from, to time.Time, bucket time.Duration) []ports.BucketCount {
		return portstest.CountsOf(all, eq, from, to, bucket)
	}
	ranges := []struct{ from, to time.Time }{
		{start, start.Add(span)},                             // whole hours only
		{start.Add(-time.Hour), start.Add(span + time.Hour)}, // beyond every reading
		{start.Add(17*time.Minute + 3*time.Microsecond), start.Add(50*time.Hour + 59*time.Minute)},
		{start.Add(5 * time.Hour), start.Add(5*time.Hour + 30*time.Minute)}, // inside one hour
		{start.Add(5*time.Hour + 30*time.Minute), start.Add(6*time.Hour + 30*time.Minute)},
		{start.Add(5*time.Hour + 30*time.Minute), start.Add(7*time.Hour + 30*time.Minute)}, // one whole hour
	}
	for range 10 { // random ranges, at microsecond precision
		a := start.Add(time.Duration(rng.Int64N(int64(span/time.Microsecond))) * time.Microsecond)
		b := a.Add(time.Duration(rng.Int64N(int64(30*time.Hour/time.Microsecond))) * time.Microsecond)
		ranges = append(ranges, struct{ from, to time.Time }{a, b})
	}
	for _, bucket := range []time.Duration{time.Hour, 3 * time.Hour, 24 * time.Hour, 7 * time.Minute} {
		for _, eq := range []string{"", "press-02"} {
			for i, rg := range ranges {
				t.Run(fmt.Sprintf("%s/%q/%d", bucket, eq, i), func(t *testing.T) {
					got, err := s.Readings.CountByBucket(t.Context(), ports.SensorScope{EquipmentID: eq}, rg.from, rg.to, bucket)
					require.NoError(t, err)
					assert.Equal(t, want(eq, rg.from, rg.to, bucket), got)
				})
			}
		}
	}
}

func TestIntegrationConcurrentWritersAndReaders(t *testing.T) {
	s := stores(sharedDB(t))
	const writers, batches, per = 4, 10, 50
	errs := make(chan error, writers*batches*2)
	done := make(chan struct{})
	for w := range writers {
		go func() {
			defer func() { done <- struct{}{} }()
			for b := range batches {
				// Every writer writes to every machine, in its own order: row locks on the
				// same equipment, sessions and rollup rows.
				rs := make([]ports.StoredReading, per)
				var sightings []ports.Sighting
				var sessions []equipment.Session
				for i := range rs {
					eq := fmt.Sprintf("press-%02d", (i+w)%writers)
					rs[i] = newReading(eq, fmt.Sprintf("r-%d-%d-%d", w, b, i), float64(i), t0.Add(time.Duration(b*per+i)*time.Second))
					sightings = append(sightings, ports.Sighting{EquipmentID: eq, LastSeenAt: rs[i].ReceivedAt})
					sessions = append(sessions, equipment.Session{EquipmentID: eq, Start: t0, End: rs[i].ReceivedAt})
				}
				errs <- s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{Readings: rs, Sightings: sightings, Sessions: sessions})
				_, err := s.Readings.RecentValues(t.Context(), sensor.Key{EquipmentID: "press-00", Type: sensor.Temperature}, 100)
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
	sessions, err := s.Equipment.Sessions(t.Context(), "", t0, t0.Add(time.Hour))
	require.NoError(t, err)
	require.Len(t, sessions, writers)
	for _, ss := range sessions {
		assert.Equal(t, t0.Add(time.Duration(batches*per-1)*time.Second+time.Millisecond), ss.End, ss.EquipmentID)
	}
}

// silentListener accepts connections on a local port and never answers on them; it returns
// the port's address.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-accepted
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func TestIntegrationDatabaseContract(t *testing.T) {
	portstest.Database(t, func(t *testing.T) portstest.Stores { return stores(sharedDB(t)) })
}
