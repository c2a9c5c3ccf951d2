package query_test

import (
	"context"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

func (f *fixture) window(t *testing.T, eq string, from, to time.Time) equipment.Maintenance {
	t.Helper()
	m := equipment.Maintenance{EquipmentID: eq, From: from, To: to, Reason: "work on " + eq}
	if err := f.store.Maintenance().Set(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

// MAINTENANCE takes precedence over ONLINE, ANOMALY (an anomaly or an open alarm) and
// OFFLINE while a window covers now; a window ahead is shown without changing the status,
// and one that has ended is neither shown nor counted.
func TestEquipmentStatusUnderMaintenance(t *testing.T) {
	f := newFixture()
	ctx := context.Background()
	f.clock.Set(t0)
	f.reading(t, "press-01", sensor.Temperature, 70, t0, t0, false)                               // online
	f.anomaly(t, "lathe-02", sensor.Vibration, anomaly.SeverityLow, t0, t0.Add(-10*time.Second))  // anomaly
	f.reading(t, "drill-03", sensor.Voltage, 230, t0, t0.Add(-31*time.Second), false)             // offline
	f.reading(t, "mill-04", sensor.Temperature, 70, t0, t0, false)                                // online
	f.reading(t, "saw-05", sensor.Temperature, 70, t0, t0, false)                                 // online
	f.anomaly(t, "bore-06", sensor.Temperature, anomaly.SeverityLow, t0, t0.Add(-10*time.Minute)) // then seen, alarm open
	f.reading(t, "bore-06", sensor.Temperature, 70, t0, t0, false)
	f.write(t, ports.ProcessedBatch{Alarms: []alarm.Alarm{{ID: "al-1", EquipmentID: "bore-06", SensorType: sensor.Temperature,
		State: alarm.StateActive, Severity: anomaly.SeverityLow, OpenedAt: t0, FirstAt: t0, LastAt: t0, Count: 1, PeakZ: 3}}})

	windows := map[string]equipment.Maintenance{}
	for _, eq := range []string{"press-01", "lathe-02", "drill-03", "bore-06"} {
		windows[eq] = f.window(t, eq, t0.Add(-time.Minute), t0.Add(time.Hour))
	}
	windows["mill-04"] = f.window(t, "mill-04", t0.Add(time.Second), t0.Add(time.Hour))
	f.window(t, "saw-05", t0.Add(-time.Hour), t0)

	want := map[string]struct {
		status equipment.Status
		shown  bool
	}{
		"bore-06":  {equipment.StatusMaintenance, true},
		"drill-03": {equipment.StatusMaintenance, true},
		"lathe-02": {equipment.StatusMaintenance, true},
		"mill-04":  {equipment.StatusOnline, true},
		"press-01": {equipment.StatusMaintenance, true},
		"saw-05":   {equipment.StatusOnline, false},
	}
	alarms, maint := f.store.Alarms(), f.store.Maintenance()
	list, err := query.NewEquipmentHandler(f.store, f.clock, equipment.DefaultRules).WithAlarms(alarms).WithMaintenance(maint).List(ctx)
	if err != nil || len(list) != len(want) {
		t.Fatalf("List = %+v, %v", list, err)
	}
	get := query.NewEquipmentHandler(f.store, f.clock, equipment.DefaultRules).WithAlarms(alarms).WithMaintenance(maint)
	status := f.statusHandler().WithAlarms(alarms).WithMaintenance(maint)
	check := func(how, id string, st equipment.Status, m *equipment.Maintenance) {
		t.Helper()
		w := want[id]
		if st != w.status {
			t.Errorf("%s %s: status %s, want %s", how, id, st, w.status)
		}
		switch {
		case !w.shown && m != nil:
			t.Errorf("%s %s: window %+v shown, want none", how, id, *m)
		case w.shown && (m == nil || *m != windows[id]):
			t.Errorf("%s %s: window %v, want %+v", how, id, m, windows[id])
		}
	}
	for _, v := range list {
		check("List", v.ID, v.Status, v.Maintenance)
		g, err := get.Get(ctx, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		check("Get", v.ID, g.Status, g.Maintenance)
		s, err := status.Handle(ctx, v.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		check("Status", v.ID, s.Status, s.Maintenance)
	}

	// Once the window has ended, the status is the rules' again.
	f.clock.Set(t0.Add(time.Hour))
	f.reading(t, "press-01", sensor.Temperature, 70, t0.Add(time.Hour), t0.Add(time.Hour), false)
	s, err := status.Handle(ctx, "press-01", "")
	if err != nil || s.Status != equipment.StatusOnline || s.Maintenance != nil {
		t.Errorf("after the window: %+v, %v; want ONLINE without a window", s, err)
	}
}
