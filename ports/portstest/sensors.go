package portstest

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// Sensors is the contract of a machine with several sensors of one type, and of a sensor type
// declared beyond the contract's four: every port keeps a reading's, an anomaly's and an
// alarm's sensor id, and selects by it. A sensor stored without an id is the sensor its type
// names (sensor.Matches).
func Sensors(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("Readings", func(t *testing.T) { sensorReadings(t, newStores(t)) })
	t.Run("CountByBucket", func(t *testing.T) { sensorCounts(t, newStores(t)) })
	t.Run("Anomalies", func(t *testing.T) { sensorAnomalies(t, newStores(t)) })
	t.Run("Alarms", func(t *testing.T) { sensorAlarms(t, newStores(t)) })
}

// The fixtures' pump: two vibration sensors named by id, its temperature sensor named by its
// type, and a flow sensor of a declared type.
const (
	pump         = "pump-01"
	bearingDE    = "bearing-de"
	bearingNDE   = "bearing-nde"
	flowMeter    = "flow-1"
	declaredFlow = sensor.Type("flow")
)

// pumpReading is a reading of the pump's sensor id (empty: the sensor of the type).
func pumpReading(id string, typ sensor.Type, sensorID string, value float64, ts time.Time) ports.StoredReading {
	r := reading(pump, id, typ, value, ts)
	r.SensorID = sensorID
	if typ == declaredFlow {
		r.Unit = "m3/h"
	}
	return r
}

func sensorReadings(t *testing.T, s Stores) {
	de1 := pumpReading("de-1", sensor.Vibration, bearingDE, 1, at(time.Second))
	nde1 := pumpReading("nde-1", sensor.Vibration, bearingNDE, 10, at(2*time.Second))
	de2 := flagged(pumpReading("de-2", sensor.Vibration, bearingDE, 3, at(3*time.Second)))
	temp := pumpReading("t-1", sensor.Temperature, "", 60, at(4*time.Second))
	flow := pumpReading("f-1", declaredFlow, flowMeter, 42.5, at(5*time.Second))
	nde2 := pumpReading("nde-2", sensor.Vibration, bearingNDE, 20, at(6*time.Second))
	write(t, s, batchOf([]ports.StoredReading{de1, nde1, de2, temp}), batchOf([]ports.StoredReading{flow, nde2}))

	t.Run("kept", func(t *testing.T) {
		equalList(t, []ports.StoredReading{de1, nde1, de2, temp, flow, nde2}, everything(t, s, pump))
	})
	t.Run("history_of_one_sensor", func(t *testing.T) {
		for _, c := range []struct {
			q    ports.HistoryQuery
			want []ports.StoredReading
		}{
			{ports.HistoryQuery{SensorID: bearingDE}, []ports.StoredReading{de1, de2}},
			{ports.HistoryQuery{SensorType: sensor.Vibration}, []ports.StoredReading{de1, nde1, de2, nde2}},
			{ports.HistoryQuery{SensorType: sensor.Vibration, SensorID: bearingNDE}, []ports.StoredReading{nde1, nde2}},
			{ports.HistoryQuery{SensorType: sensor.Temperature, SensorID: bearingNDE}, nil},
			// The sensor sent without an id is named by its type.
			{ports.HistoryQuery{SensorID: "temperature"}, []ports.StoredReading{temp}},
			{ports.HistoryQuery{SensorID: "vibration"}, nil},
			{ports.HistoryQuery{SensorType: declaredFlow}, []ports.StoredReading{flow}},
			{ports.HistoryQuery{SensorID: "nope"}, nil},
		} {
			q := c.q
			q.EquipmentID, q.From, q.To, q.Limit = pump, longAgo, farAhead, 100
			got, err := s.Readings.History(t.Context(), q)
			must(t, err)
			equalList(t, c.want, got, "History(type %q, sensor %q)", q.SensorType, q.SensorID)
		}
	})
	t.Run("averages_per_sensor", func(t *testing.T) {
		got, err := s.Readings.Averages(t.Context(), ports.HistoryQuery{EquipmentID: pump, From: at(0), To: at(time.Minute), Limit: 100}, time.Minute)
		must(t, err)
		want := []ports.AveragePoint{
			{SensorType: declaredFlow, SensorID: flowMeter, Bucket: at(0), Avg: 42.5, Min: 42.5, Max: 42.5, Count: 1},
			{SensorType: sensor.Temperature, Bucket: at(0), Avg: 60, Min: 60, Max: 60, Count: 1},
			{SensorType: sensor.Vibration, SensorID: bearingDE, Bucket: at(0), Avg: 2, Min: 1, Max: 3, Count: 2},
			{SensorType: sensor.Vibration, SensorID: bearingNDE, Bucket: at(0), Avg: 15, Min: 10, Max: 20, Count: 2},
		}
		equalList(t, want, got, "Averages of every sensor")
		got, err = s.Readings.Averages(t.Context(), ports.HistoryQuery{EquipmentID: pump, SensorID: bearingNDE, From: at(0), To: at(time.Minute), Limit: 100}, time.Minute)
		must(t, err)
		equalList(t, want[3:], got, "Averages of %s", bearingNDE)
	})
	t.Run("latest_per_sensor", func(t *testing.T) {
		got, err := s.Readings.Latest(t.Context(), pump)
		must(t, err)
		equalList(t, []ports.StoredReading{flow, temp, de2, nde2}, bySensor(got), "Latest")
	})
	t.Run("recent_values_of_one_sensor", func(t *testing.T) {
		for _, c := range []struct {
			k    sensor.Key
			want []float64
		}{
			{sensor.Key{EquipmentID: pump, Type: sensor.Vibration, Sensor: bearingDE}, []float64{1, 3}},
			{sensor.Key{EquipmentID: pump, Type: sensor.Vibration, Sensor: bearingNDE}, []float64{10, 20}},
			{sensor.Key{EquipmentID: pump, Type: sensor.Vibration}, nil},
			{sensor.Key{EquipmentID: pump, Type: sensor.Temperature}, []float64{60}},
		} {
			got, err := s.Readings.RecentValues(t.Context(), c.k, 10)
			must(t, err)
			equalList(t, c.want, got, "RecentValues(%+v)", c.k)
		}
	})
}

// bySensor sorts a copy of rs by sensor type, then sensor id.
func bySensor(rs []ports.StoredReading) []ports.StoredReading {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b ports.StoredReading) int {
		if a.Type != b.Type {
			return strings.Compare(string(a.Type), string(b.Type))
		}
		return strings.Compare(a.SensorID, b.SensorID)
	})
	return out
}

func sensorCounts(t *testing.T, s Stores) {
	// Two whole hours and a part of a third, so that a store counting whole hours from a
	// rollup counts them per sensor too.
	var rs []ports.StoredReading
	for i := range 5 {
		ts := at(time.Duration(i) * 40 * time.Minute)
		rs = append(rs, pumpReading("de-"+string(rune('a'+i)), sensor.Vibration, bearingDE, 1, ts),
			pumpReading("t-"+string(rune('a'+i)), sensor.Temperature, "", 1, ts))
		if i%2 == 0 {
			rs = append(rs, pumpReading("nde-"+string(rune('a'+i)), sensor.Vibration, bearingNDE, 1, ts))
		}
	}
	rs = append(rs, reading(press1, "t-1", sensor.Temperature, 1, at(0)))
	write(t, s, batchOf(rs))
	if r := s.rollups(); r != nil {
		if _, err := r.FoldRollups(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	bc := func(h time.Duration, n int64) ports.BucketCount {
		return ports.BucketCount{Bucket: at(h * time.Hour), Count: n}
	}
	for _, c := range []struct {
		scope ports.SensorScope
		want  []ports.BucketCount
	}{
		{ports.SensorScope{EquipmentID: pump}, []ports.BucketCount{bc(0, 5), bc(1, 3), bc(2, 5)}},
		{ports.SensorScope{EquipmentID: pump, SensorID: bearingDE}, []ports.BucketCount{bc(0, 2), bc(1, 1), bc(2, 2)}},
		{ports.SensorScope{EquipmentID: pump, SensorID: bearingNDE}, []ports.BucketCount{bc(0, 1), bc(1, 1), bc(2, 1)}},
		{ports.SensorScope{EquipmentID: pump, SensorID: "temperature"}, []ports.BucketCount{bc(0, 2), bc(1, 1), bc(2, 2)}},
		{ports.SensorScope{SensorID: "temperature"}, []ports.BucketCount{bc(0, 3), bc(1, 1), bc(2, 2)}},
		{ports.SensorScope{EquipmentID: pump, SensorID: "vibration"}, nil},
	} {
		got, err := s.Readings.CountByBucket(t.Context(), c.scope, at(0), at(3*time.Hour), time.Hour)
		must(t, err)
		equalList(t, c.want, got, "CountByBucket(%+v)", c.scope)
	}
}

func sensorAnomalies(t *testing.T, s Stores) {
	de := pumpReading("de-1", sensor.Vibration, bearingDE, 9, at(time.Second))
	nde := pumpReading("nde-1", sensor.Vibration, bearingNDE, 9, at(2*time.Second))
	temp := pumpReading("t-1", sensor.Temperature, "", 90, at(3*time.Second))
	flow := pumpReading("f-1", declaredFlow, flowMeter, 0, at(4*time.Second))
	aDE, aNDE := anomalyOf("a-1", de, anomaly.SeverityLow), anomalyOf("a-2", nde, anomaly.SeverityCritical)
	aTemp, aFlow := anomalyOf("a-3", temp, anomaly.SeverityMedium), anomalyOf("a-4", flow, anomaly.SeverityLow)
	aDE.SensorID, aNDE.SensorID, aFlow.SensorID = bearingDE, bearingNDE, flowMeter
	write(t, s, batchOf([]ports.StoredReading{flagged(de), flagged(nde), flagged(temp), flagged(flow)}, aDE, aNDE, aTemp, aFlow))

	for _, c := range []struct {
		q    ports.AnomalyQuery
		want []anomaly.Anomaly
	}{
		{ports.AnomalyQuery{}, []anomaly.Anomaly{aDE, aNDE, aTemp, aFlow}},
		{ports.AnomalyQuery{SensorID: bearingNDE}, []anomaly.Anomaly{aNDE}},
		{ports.AnomalyQuery{SensorType: sensor.Vibration}, []anomaly.Anomaly{aDE, aNDE}},
		{ports.AnomalyQuery{SensorID: "temperature"}, []anomaly.Anomaly{aTemp}},
		{ports.AnomalyQuery{SensorType: declaredFlow, SensorID: flowMeter}, []anomaly.Anomaly{aFlow}},
		{ports.AnomalyQuery{SensorType: sensor.Temperature, SensorID: bearingDE}, nil},
	} {
		q := c.q
		q.EquipmentID, q.Limit, q.Ascending = pump, 10, true
		got, total, err := s.Anomalies.Find(t.Context(), q)
		must(t, err)
		equalList(t, c.want, got, "Find(type %q, sensor %q)", q.SensorType, q.SensorID)
		equal(t, int64(len(c.want)), total, "total of Find(type %q, sensor %q)", q.SensorType, q.SensorID)
	}
	bySev, err := s.Anomalies.CountBySeverity(t.Context(), ports.SensorScope{EquipmentID: pump, SensorID: bearingNDE}, longAgo, farAhead)
	must(t, err)
	equal(t, int64(1), bySev[anomaly.SeverityCritical], "CRITICAL anomalies of %s", bearingNDE)
	equal(t, int64(0), bySev[anomaly.SeverityLow]+bySev[anomaly.SeverityMedium], "other anomalies of %s", bearingNDE)
	for scope, want := range map[ports.SensorScope]int64{
		{EquipmentID: pump}:                          4,
		{EquipmentID: pump, SensorID: bearingDE}:     1,
		{EquipmentID: pump, SensorID: "temperature"}: 1,
		{EquipmentID: pump, SensorID: "vibration"}:   0,
	} {
		n, err := s.Anomalies.CountDetectedSince(t.Context(), scope, longAgo)
		must(t, err)
		equal(t, want, n, "CountDetectedSince(%+v)", scope)
	}
}

func sensorAlarms(t *testing.T, s Stores) {
	ctx := t.Context()
	sensorAlarm := func(id, sensorID string, typ sensor.Type, opened time.Duration) alarm.Alarm {
		a := newAlarm(id, pump, typ, opened)
		a.Sensor = sensorID
		return a
	}
	de, nde := sensorAlarm("al-1", bearingDE, sensor.Vibration, time.Minute), sensorAlarm("al-2", bearingNDE, sensor.Vibration, 2*time.Minute)
	temp, flow := sensorAlarm("al-3", "", sensor.Temperature, 3*time.Minute), sensorAlarm("al-4", flowMeter, declaredFlow, 4*time.Minute)
	nde.Severity = anomaly.SeverityCritical
	// Two sensors of one type have an alarm open each.
	if err := writeAlarms(t, s, de, nde, temp, flow); err != nil {
		t.Fatal(err)
	}
	for _, a := range []alarm.Alarm{de, nde, temp, flow} {
		got, err := s.Alarms.Get(ctx, a.ID)
		if err != nil || !reflect.DeepEqual(got, a) {
			t.Errorf("Get(%s) = %+v, %v; want %+v", a.ID, got, err, a)
		}
	}
	// A second open alarm on one of them is refused.
	if err := writeAlarms(t, s, sensorAlarm("al-5", bearingDE, sensor.Vibration, 5*time.Minute)); err == nil {
		t.Error("a second open alarm on bearing-de was stored")
	} else if _, err := s.Alarms.Get(ctx, "al-5"); !errors.Is(err, ports.ErrNotFound) {
		t.Errorf("Get(al-5) = %v, want ErrNotFound", err)
	}
	latest, _, err := s.Alarms.Latest(ctx, sensor.Key{EquipmentID: pump, Type: sensor.Vibration, Sensor: bearingNDE}, longAgo)
	if err != nil || latest == nil || latest.ID != "al-2" {
		t.Errorf("Latest(bearing-nde) = %+v, %v; want al-2", latest, err)
	}
	if latest, _, err := s.Alarms.Latest(ctx, sensor.Key{EquipmentID: pump, Type: sensor.Vibration}, longAgo); err != nil || latest != nil {
		t.Errorf("Latest(the vibration sensor without id) = %+v, %v; want none", latest, err)
	}
	for _, c := range []struct {
		q    ports.AlarmQuery
		want []string
	}{
		{ports.AlarmQuery{SensorID: bearingNDE}, []string{"al-2"}},
		{ports.AlarmQuery{SensorType: sensor.Vibration}, []string{"al-1", "al-2"}},
		{ports.AlarmQuery{SensorID: "temperature"}, []string{"al-3"}},
		{ports.AlarmQuery{SensorType: declaredFlow}, []string{"al-4"}},
		{ports.AlarmQuery{SensorID: "vibration"}, []string{}},
	} {
		q := c.q
		q.EquipmentID, q.Limit, q.Ascending = pump, 10, true
		got, total, err := s.Alarms.Find(ctx, q)
		must(t, err)
		ids := []string{}
		for _, a := range got {
			ids = append(ids, a.ID)
		}
		equal(t, c.want, ids, "Find(type %q, sensor %q)", q.SensorType, q.SensorID)
		equal(t, int64(len(c.want)), total, "total of Find(type %q, sensor %q)", q.SensorType, q.SensorID)
	}
	st, err := s.Alarms.Stats(ctx, ports.SensorScope{EquipmentID: pump, SensorID: bearingNDE}, longAgo, farAhead)
	must(t, err)
	equal(t, ports.AlarmStats{BySeverity: map[anomaly.Severity]int64{anomaly.SeverityCritical: 1}}, st, "Stats of %s", bearingNDE)
}
