package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/postgres"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// The production metrics' benchmarks read 30 days of readings of 50 machines with 4 sensors
// each, a reading per sensor every 200 seconds (a reading a second in all): 2,592,000
// readings, about one in a thousand anomalous, with the hourly rollup filled as the folds of
// the batch writer's deltas fill it, every delta folded.
const (
	metricsMachines = 50
	metricsSensors  = metricsMachines * 4
	metricsDays     = 30
	// The sensors read in turn, one a second: each sensor every metricsSensors seconds.
	metricsReadings = metricsDays * 24 * 3600
	// metricsOne is the equipment of the one-equipment benchmarks.
	metricsOne = "eq-07"
)

// metricsBase is when the data starts: a day boundary, in UTC.
var metricsBase = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

// The range the benchmarks ask for: the 30 days, cut at 17 minutes past an hour at both
// ends, so that CountByBucket reads the partial hours at its edges from sensor_readings and
// the whole hours between them from the rollup.
var (
	metricsFrom = metricsBase.Add(17*time.Minute + 3*time.Microsecond)
	metricsTo   = metricsBase.Add(metricsDays*24*time.Hour - 43*time.Minute)
)

// metricsData is the benchmarks' database, loaded once for the whole run and closed by
// TestMain.
var metricsData struct {
	once sync.Once
	db   *postgres.DB
	err  error
}

// metricsDB returns the benchmarks' database, loading it on first use.
func metricsDB(b *testing.B) *postgres.DB {
	b.Helper()
	requireServer(b)
	metricsData.once.Do(func() {
		start := time.Now()
		metricsData.db, metricsData.err = loadMetricsData(context.Background())
		if metricsData.err == nil {
			b.Logf("loaded %d readings over %d days in %s", metricsReadings, metricsDays, time.Since(start).Round(time.Millisecond))
		}
	})
	if metricsData.err != nil {
		b.Fatalf("load the metrics data: %v", metricsData.err)
	}
	return metricsData.db
}

// loadMetricsData creates, loads and checks the benchmarks' database, and opens it as the
// service would.
func loadMetricsData(ctx context.Context) (*postgres.DB, error) {
	_, url, err := createRunDatabase(ctx)
	if err != nil {
		return nil, err
	}
	// Loading runs statements longer than the service's timeout allows.
	loader, err := postgres.Open(ctx, postgres.Config{URL: url, MigrateOnStart: true, StatementTimeout: 10 * time.Minute}, nil)
	if err != nil {
		return nil, fmt.Errorf("open the database to load: %w", err)
	}
	err = loadInBulk(ctx, loader, metricsBase,
		fmt.Sprintf(`INSERT INTO equipment (id, created_at)
			SELECT 'eq-' || lpad(m::text, 2, '0'), ? FROM generate_series(0, %d) AS m`, metricsMachines-1),
		// Reading i is of sensor i % sensors: the sensors read in turn, one a second, with
		// under a second of jitter, so that timestamps rise with i as they do when readings
		// arrive. Every 997th reading is anomalous: 997 is prime, so that the anomalies fall
		// on every sensor.
		fmt.Sprintf(`INSERT INTO sensor_readings (equipment_id, reading_id, sensor_type, value, unit, ts, received_at, anomalous)
			SELECT 'eq-' || lpad(((i %% %d) / 4)::text, 2, '0'), 'r-' || i,
				(ARRAY['temperature', 'vibration', 'pressure', 'voltage'])[1 + i %% 4],
				(i %% 1000) / 10.0, 'u', ts, ts + interval '5 milliseconds', i %% 997 = 0
			FROM generate_series(0, %d) AS i,
				LATERAL (SELECT ?::timestamptz + i * interval '1 second' + (i::bigint * 7919 %% 1000000) * interval '1 microsecond' AS ts) AS t`,
			metricsSensors, metricsReadings-1),
		insertAnomaliesOfFlaggedReadings,
		// Their keys, as the batch writer stores them.
		`INSERT INTO reading_keys (equipment_id, reading_id, received_at)
		SELECT equipment_id, reading_id, received_at FROM sensor_readings`,
		// The rollups, as the folds add the batches' deltas to them: every reading is counted by
		// sensor too.
		`INSERT INTO reading_counts (equipment_id, hour, readings, attributed)
		SELECT equipment_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*), count(*)
		FROM sensor_readings GROUP BY 1, 2`,
		`INSERT INTO sensor_reading_counts (equipment_id, sensor_id, sensor_type, hour, readings)
		SELECT equipment_id, sensor_id, sensor_type, date_bin('1 hour', ts, timestamptz 'epoch'), count(*)
		FROM sensor_readings GROUP BY 1, 2, 3, 4`,
	)
	if cerr := loader.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close the loaded database: %w", cerr)
	}
	if err != nil {
		return nil, err
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: url}, nil)
	if err != nil {
		return nil, fmt.Errorf("open the loaded database: %w", err)
	}
	if err := checkMetricsData(ctx, db); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// checkMetricsData checks that the repositories count, over the benchmarks' range, as many
// readings and anomalies as the tables hold in it.
func checkMetricsData(ctx context.Context, db *postgres.DB) error {
	readings, anomalies := postgres.NewReadingRepository(db), postgres.NewAnomalyRepository(db)
	var errs []error
	for _, eq := range []string{"", metricsOne} {
		where := "ts >= ? AND ts < ?"
		args := []any{metricsFrom, metricsTo}
		if eq != "" {
			where, args = "equipment_id = ? AND "+where, append([]any{eq}, args...)
		}
		wantReadings, err := postgres.QueryInt64(ctx, db, "SELECT count(*) FROM sensor_readings WHERE "+where, args...)
		if err != nil {
			return fmt.Errorf("count the readings of equipment %q: %w", eq, err)
		}
		wantAnomalies, err := postgres.QueryInt64(ctx, db, "SELECT count(*) FROM anomalies WHERE "+where, args...)
		if err != nil {
			return fmt.Errorf("count the anomalies of equipment %q: %w", eq, err)
		}
		if wantReadings == 0 || wantAnomalies == 0 {
			return fmt.Errorf("equipment %q: %d readings and %d anomalies in range, want some of each", eq, wantReadings, wantAnomalies)
		}
		for _, bucket := range []time.Duration{time.Hour, 24 * time.Hour} {
			series, err := readings.CountByBucket(ctx, ports.SensorScope{EquipmentID: eq}, metricsFrom, metricsTo, bucket)
			if err != nil {
				return fmt.Errorf("equipment %q by %s: %w", eq, bucket, err)
			}
			var got int64
			for _, c := range series {
				got += c.Count
			}
			if got != wantReadings {
				errs = append(errs, fmt.Errorf("equipment %q by %s: CountByBucket counts %d readings, the table holds %d",
					eq, bucket, got, wantReadings))
			}
		}
		bySeverity, err := anomalies.CountBySeverity(ctx, ports.SensorScope{EquipmentID: eq}, metricsFrom, metricsTo)
		if err != nil {
			return fmt.Errorf("equipment %q: %w", eq, err)
		}
		var got int64
		for _, n := range bySeverity {
			got += n
		}
		if got != wantAnomalies {
			errs = append(errs, fmt.Errorf("equipment %q: CountBySeverity counts %d anomalies, the table holds %d",
				eq, got, wantAnomalies))
		}
	}
	return errors.Join(errs...)
}

// metricsScopes are the equipment the production metrics ask about: all, or one.
var metricsScopes = []struct{ name, equipmentID string }{
	{"all_equipment", ""},
	{"one_equipment", metricsOne},
}

// BenchmarkCountByBucket30Days measures the readings series of the production metrics over
// 30 days, by hour and by day.
func BenchmarkCountByBucket30Days(b *testing.B) {
	r := postgres.NewReadingRepository(metricsDB(b))
	for _, bucket := range []struct {
		name string
		size time.Duration
	}{{"hour", time.Hour}, {"day", 24 * time.Hour}} {
		for _, scope := range metricsScopes {
			b.Run(bucket.name+"/"+scope.name, func(b *testing.B) {
				for b.Loop() {
					if _, err := r.CountByBucket(b.Context(), ports.SensorScope{EquipmentID: scope.equipmentID}, metricsFrom, metricsTo, bucket.size); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkCountBySeverity30Days measures the anomaly counts of the production metrics over
// 30 days.
func BenchmarkCountBySeverity30Days(b *testing.B) {
	a := postgres.NewAnomalyRepository(metricsDB(b))
	for _, scope := range metricsScopes {
		b.Run(scope.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := a.CountBySeverity(b.Context(), ports.SensorScope{EquipmentID: scope.equipmentID}, metricsFrom, metricsTo); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkQueries30Days measures the sensor history (raw, the latest 1000, and hourly
// averages) and the production metrics' hourly counts of one equipment over the 30 days,
// and reports the disk the readings take (their table and indexes, and their keys) per
// million readings. On TimescaleDB it then compresses every chunk, reports the disk again
// and measures the same queries over the compressed chunks.
func BenchmarkQueries30Days(b *testing.B) {
	db := metricsDB(b)
	r := postgres.NewReadingRepository(db)
	queries := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"history", func(ctx context.Context) error {
			_, err := r.History(ctx, ports.HistoryQuery{EquipmentID: metricsOne, SensorType: sensor.Temperature,
				From: metricsFrom, To: metricsTo, Limit: 1000})
			return err
		}},
		{"averages_hourly", func(ctx context.Context) error {
			_, err := r.Averages(ctx, ports.HistoryQuery{EquipmentID: metricsOne, SensorType: sensor.Temperature,
				From: metricsFrom, To: metricsTo, Limit: 1000}, time.Hour)
			return err
		}},
		{"metrics_hourly", func(ctx context.Context) error {
			_, err := r.CountByBucket(ctx, ports.SensorScope{EquipmentID: metricsOne}, metricsFrom, metricsTo, time.Hour)
			return err
		}},
	}
	measure := func(state string) {
		b.Run(state+"/disk", func(b *testing.B) {
			size := "pg_total_relation_size('sensor_readings')"
			if active, err := db.TimescaleDB(b.Context()); err != nil {
				b.Fatal(err)
			} else if active {
				size = "hypertable_size('sensor_readings')"
			}
			bytes, err := postgres.QueryInt64(b.Context(), db, "SELECT "+size+" + pg_total_relation_size('reading_keys')")
			if err != nil {
				b.Fatal(err)
			}
			keys, err := postgres.QueryInt64(b.Context(), db, "SELECT pg_total_relation_size('reading_keys')")
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
			}
			b.ReportMetric(float64(bytes)/(1<<20)/(float64(metricsReadings)/1e6), "MiB/Mreadings")
			b.ReportMetric(float64(keys)/(1<<20)/(float64(metricsReadings)/1e6), "keys-MiB/Mreadings")
		})
		for _, q := range queries {
			b.Run(state+"/"+q.name, func(b *testing.B) {
				for b.Loop() {
					if err := q.run(b.Context()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	measure("uncompressed")
	active, err := db.TimescaleDB(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	if !active {
		return
	}
	chunks, err := postgres.QueryStrings(b.Context(), db, "SELECT show_chunks('sensor_readings')::text")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range chunks { // one statement each: the whole would outlast the statement timeout
		if err := postgres.Exec(b.Context(), db, "SELECT compress_chunk($1::regclass, if_not_compressed => true)", c); err != nil {
			b.Fatal(err)
		}
	}
	if err := postgres.Exec(b.Context(), db, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	measure("compressed")
	measureContinuousAggregate(b, db)
}

// measureContinuousAggregate measures, over the compressed chunks, what a continuous
// aggregate of hourly statistics per sensor (with real-time aggregation) would give the
// hourly averages and metrics instead of the queries above: the same whole hours read
// from it, without the partial hours at the range's edges that the service's queries add
// from the readings.
func measureContinuousAggregate(b *testing.B, db *postgres.DB) {
	ctx := b.Context()
	start := time.Now()
	err := postgres.Exec(ctx, db, `CREATE MATERIALIZED VIEW IF NOT EXISTS bench_hourly
		WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
		SELECT equipment_id, sensor_type, time_bucket(interval '1 hour', ts) AS bucket,
			avg(value) AS avg, min(value) AS min, max(value) AS max, count(*) AS n
		FROM sensor_readings GROUP BY 1, 2, 3 WITH DATA`)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("continuous aggregate materialized in %s", time.Since(start).Round(time.Millisecond))
	from, to := metricsFrom.Truncate(time.Hour).Add(time.Hour), metricsTo.Truncate(time.Hour)
	for _, q := range []struct{ name, sql string }{
		// Every column of every row is read, as the service reads them.
		{"averages_hourly", `SELECT concat_ws(' ', bucket, avg, min, max, n) FROM bench_hourly
			WHERE equipment_id = ? AND sensor_type = 'temperature' AND bucket >= ? AND bucket < ?
			ORDER BY bucket DESC LIMIT 1000`},
		{"metrics_hourly", `SELECT concat_ws(' ', bucket, sum(n)) FROM bench_hourly
			WHERE equipment_id = ? AND bucket >= ? AND bucket < ? GROUP BY bucket ORDER BY bucket`},
	} {
		b.Run("compressed/continuous_aggregate/"+q.name, func(b *testing.B) {
			for b.Loop() {
				rows, err := postgres.QueryStrings(b.Context(), db, q.sql, metricsOne, from, to)
				if err != nil {
					b.Fatal(err)
				}
				if len(rows) == 0 {
					b.Fatal("no hours in the continuous aggregate")
				}
			}
		})
	}
	// A reading that arrives late, for an hour already materialized: the aggregate's answer
	// for that hour changes only when a refresh covers it.
	hour := from.Add(24 * time.Hour)
	count := func() string {
		n, err := postgres.QueryStrings(ctx, db, `SELECT concat_ws(' / ', (SELECT sum(n) FROM bench_hourly
			WHERE equipment_id = ? AND bucket = ?), (SELECT count(*) FROM sensor_readings
			WHERE equipment_id = ? AND ts >= ? AND ts < ?))`, metricsOne, hour, metricsOne, hour, hour.Add(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		return n[0]
	}
	before := count()
	if err := postgres.Exec(ctx, db, `INSERT INTO sensor_readings (equipment_id, reading_id, sensor_type, value, unit, ts, received_at)
		VALUES (?, 'late-reading', 'temperature', 1, 'u', ?, now())`, metricsOne, hour.Add(time.Minute)); err != nil {
		b.Fatal(err)
	}
	late := count()
	if err := postgres.Exec(ctx, db, "CALL refresh_continuous_aggregate('bench_hourly', ?::timestamptz, ?::timestamptz)", hour, hour.Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	b.Logf("one hour's readings, continuous aggregate / table: %s before a late reading, %s after it, %s after a refresh", before, late, count())
	if err := postgres.Exec(ctx, db, "DELETE FROM sensor_readings WHERE reading_id = 'late-reading'"); err != nil {
		b.Fatal(err)
	}
	if err := postgres.Exec(ctx, db, "CALL refresh_continuous_aggregate('bench_hourly', ?::timestamptz, ?::timestamptz)", hour, hour.Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
}
