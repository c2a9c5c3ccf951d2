package sqlite_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/sqlite"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// TestSensorIDsMigrationKeepsTheRows runs 0007 up over rows stored before it, and down over
// rows stored after it: the rows keep their seq and rowid (the order they were stored in) and
// their anomalies' references, and Down refuses, changing nothing, the rows that the old
// schema cannot hold.
func TestSensorIDsMigrationKeepsTheRows(t *testing.T) {
	ctx := t.Context()
	db, _ := open(t)
	s := stores(db)
	require.NoError(t, sqlite.MigrateTo(ctx, db, 6))

	// Two readings of one timestamp, stored in the opposite order of their ids, with seqs
	// that have a gap; an anomaly of one; an open alarm.
	require.NoError(t, sqlite.Exec(ctx, db, `INSERT INTO equipment (id, created_at) VALUES ('pump-01', 0)`))
	require.NoError(t, sqlite.Exec(ctx, db, `INSERT INTO sensor_readings
		(seq, equipment_id, reading_id, sensor_type, value, unit, ts, received_at, anomalous) VALUES
		(10, 'pump-01', 'r-b', 'vibration', 1, 'mm/s', ?, ?, 0), (20, 'pump-01', 'r-a', 'vibration', 9, 'mm/s', ?, ?, 1)`,
		t0.UnixMicro(), t0.UnixMicro(), t0.UnixMicro(), t0.UnixMicro()))
	require.NoError(t, sqlite.Exec(ctx, db, `INSERT INTO anomalies (id, equipment_id, reading_id, sensor_type, value,
		z_score, mean, std_dev, window_size, severity, ts, detected_at)
		VALUES ('a-1', 'pump-01', 'r-a', 'vibration', 9, 4, 1, 2, 30, 'MEDIUM', ?, ?)`, t0.UnixMicro(), t0.UnixMicro()))
	require.NoError(t, sqlite.Exec(ctx, db, `INSERT INTO alarms (id, equipment_id, sensor_type, state, severity, opened_at,
		first_at, last_at, reading_count, peak_z, rules_version, incident_id)
		VALUES ('al-1', 'pump-01', 'vibration', 'ACTIVE', 'MEDIUM', ?, ?, ?, 1, 4, 'r1', 'al-1')`,
		t0.UnixMicro(), t0.UnixMicro(), t0.UnixMicro()))

	require.NoError(t, sqlite.MigrateTo(ctx, db, 7))
	checkIntact(t, db)
	seqs, err := sqlite.Int64s(ctx, db, "SELECT seq FROM sensor_readings ORDER BY seq")
	require.NoError(t, err)
	assert.Equal(t, []int64{10, 20}, seqs)
	got, err := s.Readings.History(ctx, ports.HistoryQuery{EquipmentID: "pump-01", SensorID: "vibration",
		From: t0, To: t0.Add(time.Hour), Limit: 10})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, []string{"r-b", "r-a"}, []string{got[0].ID, got[1].ID}, "ties are in the order stored")
	assert.Empty(t, got[0].SensorID+got[1].SensorID)
	as, _, err := s.Anomalies.Find(ctx, ports.AnomalyQuery{SensorID: "vibration", Limit: 10})
	require.NoError(t, err)
	require.Len(t, as, 1)
	assert.Equal(t, "r-a", as[0].ReadingID)
	kept, err := s.Alarms.Get(ctx, "al-1")
	require.NoError(t, err)
	assert.Equal(t, sensor.Key{EquipmentID: "pump-01", Type: sensor.Vibration}, kept.Key())
	assert.Equal(t, "al-1", kept.IncidentID)

	// After it: a reading of a declared type, and a named vibration sensor with its own open
	// alarm beside al-1.
	flow := newReading("pump-01", "f-1", 42, t0.Add(time.Second))
	flow.Type, flow.SensorID, flow.Unit = "flow", "flow-1", "m3/h"
	nde := newReading("pump-01", "nde-1", 3, t0.Add(2*time.Second))
	nde.Type, nde.SensorID = sensor.Vibration, "bearing-nde"
	al2 := alarm.Alarm{ID: "al-2", EquipmentID: "pump-01", SensorType: sensor.Vibration, Sensor: "bearing-nde",
		State: alarm.StateActive, Severity: anomaly.SeverityLow, OpenedAt: nde.Timestamp, FirstAt: nde.Timestamp,
		LastAt: nde.Timestamp, Count: 1, PeakZ: 3.5, RulesVersion: "r1", CalmSince: nde.Timestamp}
	require.NoError(t, s.Writer.WriteBatch(ctx, ports.ProcessedBatch{
		Readings:  []ports.StoredReading{flow, nde},
		Sightings: []ports.Sighting{{EquipmentID: "pump-01", LastSeenAt: nde.ReceivedAt}},
		Alarms:    []alarm.Alarm{al2},
	}))
	seqs, err = sqlite.Int64s(ctx, db, "SELECT seq FROM sensor_readings ORDER BY seq")
	require.NoError(t, err)
	assert.Equal(t, []int64{10, 20, 21, 22}, seqs, "new readings follow the kept ones")

	downRefused := func(why string) {
		t.Helper()
		require.Error(t, sqlite.MigrateTo(ctx, db, 6), why)
		applied, err := sqlite.AppliedMigrations(ctx, db)
		require.NoError(t, err)
		assert.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7}, applied, "after a refused down: %s", why)
		checkIntact(t, db)
		n, err := sqlite.Int64s(ctx, db, "SELECT count(*) FROM sensor_readings")
		require.NoError(t, err)
		assert.NotEqual(t, []int64{0}, n, "the readings are kept")
	}
	downRefused("a reading of a declared type")
	require.NoError(t, sqlite.Exec(ctx, db, "DELETE FROM sensor_readings WHERE sensor_type = 'flow'"))
	downRefused("two open alarms of one type's sensors")
	require.NoError(t, sqlite.Exec(ctx, db, "UPDATE alarms SET state = 'CLEARED', cleared_at = last_at WHERE id = 'al-2'"))

	require.NoError(t, sqlite.MigrateTo(ctx, db, 6))
	checkIntact(t, db)
	seqs, err = sqlite.Int64s(ctx, db, "SELECT seq FROM sensor_readings ORDER BY seq")
	require.NoError(t, err)
	assert.Equal(t, []int64{10, 20, 22}, seqs)
	anomalyRows, err := sqlite.Int64s(ctx, db, "SELECT rowid FROM anomalies")
	require.NoError(t, err)
	assert.Len(t, anomalyRows, 1)
	require.NoError(t, sqlite.MigrateTo(ctx, db, 7))
	checkIntact(t, db)
	got, err = s.Readings.History(ctx, ports.HistoryQuery{EquipmentID: "pump-01", From: t0, To: t0.Add(time.Hour), Limit: 10})
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, "nde-1", got[2].ID)
	assert.Empty(t, got[2].SensorID, "Down forgot the sensor id")
}

// checkIntact checks db's foreign keys and file.
func checkIntact(t *testing.T, db *sqlite.DB) {
	t.Helper()
	fk, err := sqlite.Int64s(t.Context(), db, "SELECT count(*) FROM pragma_foreign_key_check")
	require.NoError(t, err)
	assert.Equal(t, []int64{0}, fk, "foreign key violations")
	ok, err := sqlite.Pragma(t.Context(), db, "integrity_check")
	require.NoError(t, err)
	assert.Equal(t, "ok", ok)
}
