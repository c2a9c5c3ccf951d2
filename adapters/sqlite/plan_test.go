package sqlite_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/sqlite"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// TestReadingQueriesSeekTheSensorIndex checks the plans of the reading queries, exactly as the
// repository runs them, over machines with several sensors of one type and a declared type:
// one equipment's readings are read sensor by sensor from sensor_readings_sensor_ts (its
// sensors found by seeks in it, never by reading the equipment's entries), every equipment's
// from sensor_readings_ts; sensor_readings is never scanned whole.
func TestReadingQueriesSeekTheSensorIndex(t *testing.T) {
	db, _ := open(t)
	ctx := t.Context()
	require.NoError(t, sqlite.Exec(ctx, db, `WITH RECURSIVE n (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9)
		INSERT INTO equipment (id, created_at) SELECT 'eq-' || i, 0 FROM n`))
	// 10 machines, each with a temperature sensor named by its type, two vibration sensors
	// and a flow sensor, a reading a second for over an hour.
	require.NoError(t, sqlite.Exec(ctx, db, `WITH RECURSIVE n (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 3999)
		INSERT INTO sensor_readings (equipment_id, reading_id, sensor_type, sensor_id, value, ts, received_at)
		SELECT 'eq-' || (i % 10), 'r-' || i,
			CASE (i / 10) % 4 WHEN 0 THEN 'temperature' WHEN 3 THEN 'flow' ELSE 'vibration' END,
			CASE (i / 10) % 4 WHEN 1 THEN 'bearing-de' WHEN 2 THEN 'bearing-nde' WHEN 3 THEN 'flow-1' ELSE '' END,
			i, ? + i * 1000000, ? + i * 1000000 FROM n`, t0.UnixMicro(), t0.UnixMicro()))

	from, to := t0.Add(time.Hour), t0.Add(2*time.Hour)
	oneSensor := `SEARCH \S+ USING (COVERING )?INDEX sensor_readings_sensor_ts \(equipment_id=\? AND sensor_type=\? AND sensor_id=\?`
	inRange := oneSensor + ` AND ts>\? AND ts<\?\)`
	tests := []struct {
		name string
		s    sqlite.Statement
		want []string // patterns that steps of the plan match, each
	}{
		{"History/every_sensor", sqlite.HistoryStatement(ports.HistoryQuery{EquipmentID: "eq-3", From: from, To: to, Limit: 100}),
			[]string{inRange}},
		{"History/one_type", sqlite.HistoryStatement(ports.HistoryQuery{EquipmentID: "eq-3", SensorType: sensor.Vibration,
			From: from, To: to, Limit: 100}), []string{inRange}},
		{"History/one_sensor", sqlite.HistoryStatement(ports.HistoryQuery{EquipmentID: "eq-3", SensorID: "bearing-de",
			From: from, To: to, Limit: 100}), []string{inRange}},
		{"Averages", sqlite.AveragesStatement(ports.HistoryQuery{EquipmentID: "eq-3", SensorID: "temperature",
			From: from, To: to, Limit: 100}, time.Minute), []string{inRange}},
		{"Latest", sqlite.LatestStatement("eq-3"), []string{oneSensor + `\)`}},
		{"RecentValues", sqlite.RecentValuesStatement(sensor.Key{EquipmentID: "eq-3", Type: sensor.Vibration, Sensor: "bearing-nde"}, 100),
			[]string{oneSensor + `\)`}},
		{"CountByBucket/one_equipment", sqlite.CountStatement(ports.SensorScope{EquipmentID: "eq-3"}, from, to, time.Hour),
			[]string{`SEARCH \S+ USING COVERING INDEX sensor_readings_sensor_ts \(equipment_id=\? AND sensor_type=\? AND sensor_id=\? AND ts>\? AND ts<\?\)`}},
		{"CountByBucket/one_sensor", sqlite.CountStatement(ports.SensorScope{EquipmentID: "eq-3", SensorID: "flow-1"}, from, to, time.Hour),
			[]string{inRange}},
		{"CountByBucket/every_equipment", sqlite.CountStatement(ports.SensorScope{}, from, to, time.Hour),
			[]string{`SEARCH sensor_readings USING COVERING INDEX sensor_readings_ts \(ts>\? AND ts<\?\)`}},
		{"CountByBucket/one_sensor_of_every_equipment", sqlite.CountStatement(ports.SensorScope{SensorID: "temperature"}, from, to, time.Hour),
			[]string{`SEARCH sensor_readings USING INDEX sensor_readings_ts \(ts>\? AND ts<\?\)`}},
	}
	// The walk through one equipment's sensors: the next id of the type, or the next type.
	walk := []string{
		`SEARCH \S+ USING COVERING INDEX sensor_readings_sensor_ts \(equipment_id=\? AND sensor_type=\? AND sensor_id>\?\)`,
		`SEARCH \S+ USING COVERING INDEX sensor_readings_sensor_ts \(equipment_id=\? AND sensor_type>\?\)`,
	}
	scan := regexp.MustCompile(`^SCAN (sensor_readings|r)\b`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := sqlite.QueryPlan(ctx, db, tt.s)
			require.NoError(t, err)
			t.Log("\n" + strings.Join(plan, "\n"))
			want := tt.want
			if strings.Contains(tt.s.SQL(), "WITH RECURSIVE sensors") {
				want = append(want, walk...)
			}
			for _, p := range want {
				re := regexp.MustCompile(p)
				assert.True(t, containsMatch(plan, re), "no step matches %s", p)
			}
			for _, step := range plan {
				assert.False(t, scan.MatchString(strings.TrimSpace(step)), "scans the readings: %s", step)
			}
		})
	}
}

func containsMatch(lines []string, re *regexp.Regexp) bool {
	for _, l := range lines {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}
