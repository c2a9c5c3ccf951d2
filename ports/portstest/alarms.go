package portstest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// AlarmRepository is the contract of ports.AlarmRepository, with the alarms of
// ports.ProcessedBatch.
func AlarmRepository(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("WriteAndGet", func(t *testing.T) { alarmWriteAndGet(t, newStores(t)) })
	t.Run("OneOpenPerSensor", func(t *testing.T) { alarmOneOpenPerSensor(t, newStores(t)) })
	t.Run("AcknowledgeSurvivesUpdates", func(t *testing.T) { alarmAcknowledge(t, newStores(t)) })
	t.Run("FindAndLatest", func(t *testing.T) { alarmFind(t, newStores(t)) })
	t.Run("Stats", func(t *testing.T) { alarmStats(t, newStores(t)) })
}

func alarmStats(t *testing.T, s Stores) {
	ctx := context.Background()
	a1 := newAlarm("al-1", press1, sensor.Temperature, time.Minute) // acknowledged after 30 s, cleared after 90 s
	a2 := newAlarm("al-2", press1, sensor.Vibration, 2*time.Minute) // acknowledged after 10 s, open
	a2.Severity = anomaly.SeverityCritical
	a3 := newAlarm("al-3", press2, sensor.Temperature, 3*time.Minute) // cleared after 20 s
	a4 := newAlarm("al-4", press2, sensor.Pressure, time.Hour)        // outside the range
	if err := writeAlarms(t, s, a1, a2, a3, a4); err != nil {
		t.Fatal(err)
	}
	for id, ackAt := range map[string]time.Duration{"al-1": 90 * time.Second, "al-2": 130 * time.Second} {
		if _, err := s.Alarms.Acknowledge(ctx, id, "jo", "", at(ackAt), nil); err != nil {
			t.Fatal(err)
		}
	}
	a1.State, a1.ClearedAt = alarm.StateCleared, at(150*time.Second)
	a3.State, a3.ClearedAt = alarm.StateCleared, at(200*time.Second)
	if err := writeAlarms(t, s, a1, a3); err != nil {
		t.Fatal(err)
	}
	st, err := s.Alarms.Stats(ctx, ports.SensorScope{}, at(0), at(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := ports.AlarmStats{BySeverity: map[anomaly.Severity]int64{anomaly.SeverityLow: 2, anomaly.SeverityCritical: 1},
		Acknowledged: 2, TimeToAckTotal: 40 * time.Second, Cleared: 2, TimeToClearTotal: 110 * time.Second}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
	st, err = s.Alarms.Stats(ctx, ports.SensorScope{EquipmentID: press2}, at(0), at(2*time.Hour))
	want = ports.AlarmStats{BySeverity: map[anomaly.Severity]int64{anomaly.SeverityLow: 2}, Cleared: 1, TimeToClearTotal: 20 * time.Second}
	if err != nil || !reflect.DeepEqual(st, want) {
		t.Errorf("Stats(press-02) = %+v, %v; want %+v", st, err, want)
	}
}

func newAlarm(id, eq string, typ sensor.Type, opened time.Duration) alarm.Alarm {
	return alarm.Alarm{ID: id, EquipmentID: eq, SensorType: typ, State: alarm.StateActive, Severity: anomaly.SeverityLow,
		OpenedAt: at(opened), FirstAt: at(opened), LastAt: at(opened), Count: 1, PeakZ: 3.5, RulesVersion: "r1",
		CalmSince: at(opened)}
}

func writeAlarms(t *testing.T, s Stores, as ...alarm.Alarm) error {
	t.Helper()
	sightings := map[string]bool{}
	var b ports.ProcessedBatch
	for _, a := range as {
		if !sightings[a.EquipmentID] {
			sightings[a.EquipmentID] = true
			b.Sightings = append(b.Sightings, ports.Sighting{EquipmentID: a.EquipmentID, LastSeenAt: a.LastAt})
		}
	}
	b.Alarms = as
	return s.Writer.WriteBatch(context.Background(), b)
}

func alarmWriteAndGet(t *testing.T, s Stores) {
	ctx := context.Background()
	a := newAlarm("al-1", press1, sensor.Temperature, time.Minute)
	// Opened by the drift chart, with its evidence: every field is kept.
	a.Cause, a.Evidence = anomaly.CheckDrift, anomaly.Finding{Check: anomaly.CheckDrift, Statistic: -4.25, Limit: -4, Window: 20}
	a.IncidentID = "al-0" // joined the incident another alarm of the machine started
	if err := writeAlarms(t, s, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.Alarms.Get(ctx, "al-1")
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, a)
	}
	// Grown, escalated and cleared by later batches: every field follows.
	a.Count, a.LastAt, a.PeakZ, a.Severity, a.Calm = 3, at(2*time.Minute), 6.25, anomaly.SeverityCritical, 2
	if err := writeAlarms(t, s, a); err != nil {
		t.Fatal(err)
	}
	a.State, a.ClearedAt, a.Flapping = alarm.StateCleared, at(3*time.Minute), true
	if err := writeAlarms(t, s, a); err != nil {
		t.Fatal(err)
	}
	if got, err = s.Alarms.Get(ctx, "al-1"); err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, a)
	}
	if _, err := s.Alarms.Get(ctx, "nope"); !errors.Is(err, ports.ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}
}

func alarmOneOpenPerSensor(t *testing.T, s Stores) {
	ctx := context.Background()
	if err := writeAlarms(t, s, newAlarm("al-1", press1, sensor.Temperature, time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Another sensor, or another equipment, may have one open too.
	if err := writeAlarms(t, s, newAlarm("al-2", press1, sensor.Vibration, time.Minute),
		newAlarm("al-3", press2, sensor.Temperature, time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A second open alarm on press-01/temperature is refused, with the rest of its batch.
	err := writeAlarms(t, s, newAlarm("al-4", press2, sensor.Pressure, time.Minute),
		newAlarm("al-5", press1, sensor.Temperature, 2*time.Minute))
	if err == nil {
		t.Fatal("a second open alarm on one sensor was stored")
	}
	if _, err := s.Alarms.Get(ctx, "al-4"); !errors.Is(err, ports.ErrNotFound) {
		t.Errorf("the refused batch stored al-4: %v", err)
	}
	// Once the first is cleared, a new one may open, in the same batch.
	cleared := newAlarm("al-1", press1, sensor.Temperature, time.Minute)
	cleared.State, cleared.ClearedAt = alarm.StateCleared, at(90*time.Second)
	if err := writeAlarms(t, s, cleared, newAlarm("al-5", press1, sensor.Temperature, 2*time.Minute)); err != nil {
		t.Fatalf("clearing one and opening the next: %v", err)
	}
	open, err := s.Alarms.AnyOpen(ctx, press1)
	if err != nil || !open {
		t.Errorf("AnyOpen(press-01) = %v, %v", open, err)
	}
	if open, err := s.Alarms.AnyOpen(ctx, "press-99"); err != nil || open {
		t.Errorf("AnyOpen(press-99) = %v, %v", open, err)
	}
	// press-02 has al-3 open; press-01 al-5 (and al-2).
	if set, err := s.Alarms.OpenEquipment(ctx); err != nil || !reflect.DeepEqual(set, map[string]bool{press1: true, press2: true}) {
		t.Errorf("OpenEquipment = %v, %v", set, err)
	}
}

func alarmAcknowledge(t *testing.T, s Stores) {
	ctx := context.Background()
	a := newAlarm("al-1", press1, sensor.Temperature, time.Minute)
	if err := writeAlarms(t, s, a); err != nil {
		t.Fatal(err)
	}
	acked, err := s.Alarms.Acknowledge(ctx, "al-1", "jo", "valve checked", at(5*time.Minute), nil)
	if err != nil || acked.State != alarm.StateAcknowledged || acked.AckBy != "jo" || acked.AckComment != "valve checked" ||
		!acked.AckAt.Equal(at(5*time.Minute)) {
		t.Fatalf("Acknowledge = %+v, %v", acked, err)
	}
	if _, err := s.Alarms.Acknowledge(ctx, "al-1", "kim", "", at(6*time.Minute), nil); !errors.Is(err, ports.ErrConflict) {
		t.Errorf("a second acknowledgement: %v, want ErrConflict", err)
	}
	if _, err := s.Alarms.Acknowledge(ctx, "nope", "kim", "", at(6*time.Minute), nil); !errors.Is(err, ports.ErrNotFound) {
		t.Errorf("acknowledging an unknown alarm: %v, want ErrNotFound", err)
	}
	// A worker that still holds the alarm as ACTIVE updates it: the acknowledgement stays.
	a.Count, a.LastAt = 2, at(7*time.Minute)
	if err := writeAlarms(t, s, a); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Alarms.Get(ctx, "al-1")
	if got.State != alarm.StateAcknowledged || got.AckBy != "jo" || got.Count != 2 {
		t.Errorf("after an update: %+v", got)
	}
	a.State, a.ClearedAt = alarm.StateCleared, at(8*time.Minute)
	if err := writeAlarms(t, s, a); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Alarms.Get(ctx, "al-1")
	if got.State != alarm.StateCleared || got.AckBy != "jo" || !got.ClearedAt.Equal(at(8*time.Minute)) {
		t.Errorf("after clearing: %+v", got)
	}
	if _, err := s.Alarms.Acknowledge(ctx, "al-1", "kim", "", at(9*time.Minute), nil); !errors.Is(err, ports.ErrConflict) {
		t.Errorf("acknowledging a cleared alarm: %v, want ErrConflict", err)
	}
}

func alarmFind(t *testing.T, s Stores) {
	ctx := context.Background()
	a1 := newAlarm("al-1", press1, sensor.Temperature, time.Minute)
	a1.State, a1.ClearedAt = alarm.StateCleared, at(2*time.Minute)
	a2 := newAlarm("al-2", press1, sensor.Temperature, 3*time.Minute)
	a2.Severity = anomaly.SeverityCritical
	a3 := newAlarm("al-3", press2, sensor.Vibration, 2*time.Minute)
	if err := writeAlarms(t, s, a1, a2, a3); err != nil {
		t.Fatal(err)
	}
	ids := func(as []alarm.Alarm) []string {
		out := []string{}
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	for name, c := range map[string]struct {
		q     ports.AlarmQuery
		want  []string
		total int64
	}{
		"all, newest first":  {ports.AlarmQuery{Limit: 10}, []string{"al-2", "al-3", "al-1"}, 3},
		"ascending":          {ports.AlarmQuery{Limit: 10, Ascending: true}, []string{"al-1", "al-3", "al-2"}, 3},
		"page":               {ports.AlarmQuery{Limit: 1, Offset: 1}, []string{"al-3"}, 3},
		"equipment":          {ports.AlarmQuery{EquipmentID: press1, Limit: 10}, []string{"al-2", "al-1"}, 2},
		"sensor type":        {ports.AlarmQuery{SensorType: sensor.Vibration, Limit: 10}, []string{"al-3"}, 1},
		"severity":           {ports.AlarmQuery{Severities: []anomaly.Severity{anomaly.SeverityCritical}, Limit: 10}, []string{"al-2"}, 1},
		"open":               {ports.AlarmQuery{States: []alarm.State{alarm.StateActive, alarm.StateAcknowledged}, Limit: 10}, []string{"al-2", "al-3"}, 2},
		"opened in [2m, 3m)": {ports.AlarmQuery{From: at(2 * time.Minute), To: at(3 * time.Minute), Limit: 10}, []string{"al-3"}, 1},
	} {
		got, total, err := s.Alarms.Find(ctx, c.q)
		if err != nil || !reflect.DeepEqual(ids(got), c.want) || total != c.total {
			t.Errorf("%s: %v (total %d), %v; want %v (total %d)", name, ids(got), total, err, c.want, c.total)
		}
	}
	latest, openings, err := s.Alarms.Latest(ctx, sensor.Key{EquipmentID: press1, Type: sensor.Temperature}, at(90*time.Second))
	if err != nil || latest == nil || latest.ID != "al-2" || len(openings) != 1 || !openings[0].Equal(at(3*time.Minute)) {
		t.Errorf("Latest = %+v, %v, %v", latest, openings, err)
	}
	if latest, openings, err := s.Alarms.Latest(ctx, sensor.Key{EquipmentID: press2, Type: sensor.Temperature}, longAgo); err != nil || latest != nil || len(openings) != 0 {
		t.Errorf("Latest of a sensor without alarms = %+v, %v, %v", latest, openings, err)
	}
}
