package postgres_test

import (
	"database/sql"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/postgres"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// legacyStart is when the readings stored before migration 0011 start: three hours of them.
var legacyStart = t0.Add(-3 * time.Hour)

// storeBeforeSensorIDs stores, in the schema of migration 0010, what a build of that schema
// would have: 180 readings of press-01, temperature and vibration in turn, a minute apart
// over three hours, with their keys, the first two hours folded into reading_counts and the
// third left as deltas; an anomaly of the last vibration reading and its open alarm.
func storeBeforeSensorIDs(t *testing.T, db *sql.DB) {
	t.Helper()
	for _, q := range []string{
		`INSERT INTO equipment (id, created_at) VALUES ('press-01', $1)`,
		`INSERT INTO sensor_readings (equipment_id, reading_id, sensor_type, value, unit, ts, received_at)
		SELECT 'press-01', 'old-' || i, (ARRAY['temperature', 'vibration'])[1 + i % 2], i, 'u',
			$1::timestamptz + i * interval '1 minute', $1::timestamptz + i * interval '1 minute'
		FROM generate_series(0, 179) AS i`,
		`INSERT INTO reading_keys (equipment_id, reading_id, received_at)
		SELECT equipment_id, reading_id, received_at FROM sensor_readings WHERE $1::timestamptz IS NOT NULL`,
		`INSERT INTO reading_counts (equipment_id, hour, readings)
		SELECT equipment_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*) FROM sensor_readings
		WHERE ts < $1::timestamptz + interval '2 hours' GROUP BY 1, 2`,
		`INSERT INTO reading_count_deltas (equipment_id, hour, readings)
		SELECT equipment_id, date_bin('1 hour', ts, timestamptz 'epoch'), count(*) FROM sensor_readings
		WHERE ts >= $1::timestamptz + interval '2 hours' GROUP BY 1, 2`,
		`INSERT INTO anomalies (id, equipment_id, reading_id, sensor_type, value, z_score, mean, std_dev, window_size,
			severity, ts, detected_at)
		SELECT 'a-old', equipment_id, reading_id, sensor_type, value, 4, 1, 1, 100, 'LOW', ts, ts
		FROM sensor_readings WHERE reading_id = 'old-179' AND $1::timestamptz IS NOT NULL`,
		`INSERT INTO alarms (id, equipment_id, sensor_type, state, severity, opened_at, first_at, last_at, reading_count,
			peak_z, rules_version)
		VALUES ('al-old', 'press-01', 'vibration', 'ACTIVE', 'LOW', $1, $1, $1, 1, 4, 'r1')`,
	} {
		_, err := db.ExecContext(t.Context(), q, legacyStart)
		require.NoError(t, err, q)
	}
}

// relfilenodes maps each table holding readings, anomalies or alarms (on TimescaleDB each
// chunk, compressed or not) to its file: a table rewritten gets another.
func relfilenodes(t *testing.T, db *sql.DB) map[string]int64 {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT c.oid::regclass::text, c.relfilenode FROM pg_class c
		WHERE c.relkind = 'r' AND (c.relname IN ('sensor_readings', 'anomalies', 'alarms', 'reading_counts')
			OR c.relname LIKE '\_hyper\_%' OR c.relname LIKE 'compress\_hyper\_%')`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var file int64
		require.NoError(t, rows.Scan(&name, &file))
		out[name] = file
	}
	require.NoError(t, rows.Err())
	return out
}

// sensorReading is a reading of press-01's sensor id of type typ.
func sensorReading(id string, typ sensor.Type, sensorID string, ts time.Time) ports.StoredReading {
	r := newReading("press-01", id, 1, ts)
	r.Type, r.SensorID = typ, sensorID
	return r
}

func TestIntegrationSensorIDsMigration(t *testing.T) {
	url := newDatabase(t)
	n := openWithNotices(t, url)
	p, err := postgres.Migrator(n.db)
	require.NoError(t, err)
	_, err = p.UpTo(t.Context(), 10)
	require.NoError(t, err)
	storeBeforeSensorIDs(t, n.db)
	timescale := isHypertable(t, n.db, "sensor_readings")
	if timescale {
		_, err := n.db.ExecContext(t.Context(), "SELECT count(compress_chunk(c)) FROM show_chunks('sensor_readings') c")
		require.NoError(t, err)
	}
	files := relfilenodes(t, n.db)
	if store := os.Getenv("PLM_TEST_STORE"); store != "" {
		require.Equal(t, store == "timescaledb", timescale, "PLM_TEST_STORE=%s", store)
	}
	if timescale {
		var compressed int
		for name := range files {
			if strings.Contains(name, "compress_hyper_") {
				compressed++
			}
		}
		require.Positive(t, compressed, "compressed chunks among %v", files)
	}

	_, err = p.UpTo(t.Context(), 11)
	require.NoError(t, err)

	t.Run("rewrites_no_table", func(t *testing.T) {
		assert.Equal(t, files, relfilenodes(t, n.db))
	})
	t.Run("checks_the_type_names_shape", func(t *testing.T) {
		rows, err := n.db.QueryContext(t.Context(), `SELECT conrelid::regclass::text, convalidated FROM pg_constraint
			WHERE conname IN ('sensor_readings_sensor_type_check', 'anomalies_sensor_type_check', 'alarms_sensor_type_check')
				AND conrelid::regclass::text IN ('sensor_readings', 'anomalies', 'alarms')`)
		require.NoError(t, err)
		defer rows.Close()
		validated := map[string]bool{}
		for rows.Next() {
			var table string
			var ok bool
			require.NoError(t, rows.Scan(&table, &ok))
			validated[table] = ok
		}
		assert.Equal(t, map[string]bool{"sensor_readings": false, "anomalies": false, "alarms": true}, validated,
			"NOT VALID where rows are many")
		for _, typ := range []string{"Flow", "", "1flow", "flow rate"} {
			_, err := n.db.ExecContext(t.Context(), `INSERT INTO sensor_readings (equipment_id, reading_id, sensor_type, value, ts,
				received_at) VALUES ('press-01', 'bad', $1, 1, now(), now())`, typ)
			var pgErr *pgconn.PgError
			if assert.ErrorAs(t, err, &pgErr, "type %q", typ) {
				assert.Equal(t, "23514", pgErr.Code, "a check violation for type %q", typ)
			}
		}
	})

	db := open(t, url)
	s := stores(db)
	// Named sensors and a declared type, in the hours counted before and after.
	var named []ports.StoredReading
	for k := range 30 {
		named = append(named, sensorReading(fmt.Sprintf("de-%d", k), sensor.Vibration, "bearing-de", legacyStart.Add(time.Hour+30*time.Second+time.Duration(k)*4*time.Minute)))
	}
	for k := range 10 {
		named = append(named, sensorReading(fmt.Sprintf("flow-%d", k), "flow", "flow-1", t0.Add(time.Duration(k)*time.Minute)))
	}
	require.NoError(t, s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{Readings: named}))
	_, err = s.Rollups.FoldRollups(t.Context())
	require.NoError(t, err)
	latestTemperature := sensorReading("t-new", sensor.Temperature, "", t0.Add(5*time.Minute))
	require.NoError(t, s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{Readings: []ports.StoredReading{latestTemperature}}))

	t.Run("counts_each_sensor", func(t *testing.T) {
		ranges := []struct{ from, to time.Time }{
			{legacyStart, t0.Add(time.Hour)},
			{legacyStart.Add(17 * time.Minute), t0.Add(43 * time.Minute)},
			{legacyStart.Add(-24 * time.Hour), t0.Add(24 * time.Hour)},
		}
		for _, eq := range []string{"", "press-01"} {
			for _, id := range []string{"", "temperature", "vibration", "bearing-de", "flow-1", "flow", "pressure"} {
				for i, rg := range ranges {
					for _, bucket := range []time.Duration{time.Hour, 24 * time.Hour} {
						scope := ports.SensorScope{EquipmentID: eq, SensorID: id}
						got, err := s.Readings.CountByBucket(t.Context(), scope, rg.from, rg.to, bucket)
						require.NoError(t, err)
						assert.Equal(t, rawCounts(t, db, scope, rg.from, rg.to, bucket), got, "%+v over range %d by %s", scope, i, bucket)
					}
				}
			}
		}
	})
	t.Run("latest_of_each_sensor", func(t *testing.T) {
		got, err := s.Readings.Latest(t.Context(), "press-01")
		require.NoError(t, err)
		ids := make([]string, len(got))
		for i, r := range got {
			ids[i] = r.ID
		}
		assert.Equal(t, []string{"t-new", "old-179", "de-29", "flow-9"}, ids)
	})
	t.Run("history_of_a_sensor_stored_before", func(t *testing.T) {
		got, err := s.Readings.History(t.Context(), ports.HistoryQuery{EquipmentID: "press-01", SensorID: "vibration",
			From: legacyStart, To: t0.Add(time.Hour), Limit: 1000})
		require.NoError(t, err)
		assert.Len(t, got, 90)
		got, err = s.Readings.History(t.Context(), ports.HistoryQuery{EquipmentID: "press-01", SensorType: sensor.Vibration,
			From: legacyStart, To: t0.Add(time.Hour), Limit: 1000})
		require.NoError(t, err)
		assert.Len(t, got, 120)
	})
	t.Run("one_open_alarm_per_sensor", func(t *testing.T) {
		old, err := s.Alarms.Get(t.Context(), "al-old")
		require.NoError(t, err)
		assert.Equal(t, "", old.Sensor)
		a := alarm.Alarm{ID: "al-de", EquipmentID: "press-01", SensorType: sensor.Vibration, Sensor: "bearing-de",
			State: alarm.StateActive, Severity: anomaly.SeverityLow, OpenedAt: t0, FirstAt: t0, LastAt: t0, Count: 1,
			PeakZ: 4, RulesVersion: "r1", CalmSince: t0}
		require.NoError(t, s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{Alarms: []alarm.Alarm{a}}))
		a.ID = "al-de-2"
		assert.ErrorIs(t, s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{Alarms: []alarm.Alarm{a}}), ports.ErrConflict)
	})

	t.Run("down_refuses_while_named_sensors_are_stored", func(t *testing.T) {
		_, err := p.Down(t.Context())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "named sensors or of declared sensor types are stored")
		version, err := p.GetDBVersion(t.Context())
		require.NoError(t, err)
		assert.Equal(t, int64(11), version)
	})
	require.NoError(t, db.Close())
	for _, q := range []string{
		"DELETE FROM sensor_readings WHERE sensor_id <> ''",
		"DELETE FROM sensor_reading_counts WHERE sensor_id <> ''",
		"DELETE FROM reading_count_deltas WHERE sensor_id <> ''",
		"DELETE FROM alarms WHERE sensor_id <> ''",
	} {
		_, err := n.db.ExecContext(t.Context(), q)
		require.NoError(t, err, q)
	}
	_, err = p.Down(t.Context())
	require.NoError(t, err)
	var columns int64
	require.NoError(t, n.db.QueryRowContext(t.Context(), `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = current_schema() AND column_name IN ('sensor_id', 'attributed')`).Scan(&columns))
	assert.Zero(t, columns, "the sensor ids and the attributed counts are gone")
	var onePerType string
	require.NoError(t, n.db.QueryRowContext(t.Context(), `SELECT pg_get_indexdef('alarms_one_open'::regclass)`).Scan(&onePerType))
	assert.Contains(t, onePerType, "(equipment_id, sensor_type)")
	_, err = n.db.ExecContext(t.Context(), `INSERT INTO sensor_readings (equipment_id, reading_id, sensor_type, value, ts,
		received_at) VALUES ('press-01', 'bad', 'flow', 1, now(), now())`)
	assert.Error(t, err, "the four types are checked again")

	_, err = p.Up(t.Context())
	require.NoError(t, err, "and up again")
}

// rawCounts counts the readings of the sensors scope selects from sensor_readings itself,
// as CountByBucket should.
func rawCounts(t *testing.T, db *postgres.DB, scope ports.SensorScope, from, to time.Time, bucket time.Duration) []ports.BucketCount {
	t.Helper()
	rows, err := postgres.QueryStrings(t.Context(), db, `SELECT concat_ws(' ', extract(epoch FROM b)::bigint, n) FROM (
			SELECT date_bin(?::bigint * interval '1 microsecond', ts, timestamptz 'epoch') AS b, count(*) AS n
			FROM sensor_readings
			WHERE (? = '' OR equipment_id = ?) AND (? = '' OR sensor_id = ? OR sensor_id = '' AND sensor_type = ?)
				AND ts >= ? AND ts < ?
			GROUP BY 1
		) c ORDER BY b`, bucket.Microseconds(), scope.EquipmentID, scope.EquipmentID,
		scope.SensorID, scope.SensorID, scope.SensorID, from, to)
	require.NoError(t, err)
	out := []ports.BucketCount{}
	for _, row := range rows {
		var secs, n int64
		_, err := fmt.Sscan(row, &secs, &n)
		require.NoError(t, err)
		out = append(out, ports.BucketCount{Bucket: time.Unix(secs, 0).UTC(), Count: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bucket.Before(out[j].Bucket) })
	return out
}
