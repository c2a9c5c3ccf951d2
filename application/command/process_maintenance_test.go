package command_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// countingMaintenance counts the loads of windows, and fails them with err when set.
type countingMaintenance struct {
	ports.MaintenanceRepository
	loads int
	err   error
}

func (c *countingMaintenance) Windows(ctx context.Context, ids []string) (map[string]equipment.Maintenance, error) {
	c.loads++
	if c.err != nil {
		return nil, c.err
	}
	return c.MaintenanceRepository.Windows(ctx, ids)
}

const maintenanceTTL = time.Second

// maintenanceHandler is a handler with alarms and maintenance windows, over f's store.
func maintenanceHandler(t *testing.T, f *processFixture) (*command.ProcessReadingsHandler, *countingMaintenance) {
	t.Helper()
	set, err := rules.Uniform(rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules})
	if err != nil {
		t.Fatal(err)
	}
	m := &countingMaintenance{MaintenanceRepository: f.store.Maintenance()}
	h := command.NewProcessReadingsHandler(f.store, f.store, f.store, f.clock, f.ids, anomaly.DefaultConfig,
		equipment.DefaultRules).WithAlarms(f.store.Alarms(), set).WithMaintenance(m, maintenanceTTL)
	return h, m
}

func setWindow(t *testing.T, f *processFixture, eq string, from, to time.Time) {
	t.Helper()
	if err := f.store.Maintenance().Set(context.Background(), equipment.Maintenance{EquipmentID: eq, From: from, To: to}); err != nil {
		t.Fatal(err)
	}
}

func openedIn(res command.ProcessResult) []string {
	var out []string
	for _, c := range res.Alarms {
		if c.Event == alarm.Opened {
			out = append(out, c.Alarm.EquipmentID)
		}
	}
	return out
}

// A spike received within its equipment's maintenance window is stored and recorded as an
// anomaly, but opens no alarm; the same spike on equipment without a window, in the same
// batch, opens one; after the window, a spike opens one again.
func TestProcessMaintenanceOpensNoAlarmWithinTheWindow(t *testing.T) {
	f := newProcess()
	f.handler, _ = maintenanceHandler(t, f)
	var s seq
	f.handle(t, append(s.normal(t, start, "press-01", sensor.Temperature, 40),
		s.normal(t, start, "press-02", sensor.Temperature, 40)...)...)
	windowEnd := start.Add(10 * time.Minute)
	setWindow(t, f, "press-01", start.Add(30*time.Second), windowEnd)
	f.clock.Advance(maintenanceTTL) // the handler loaded the windows at start: now it loads them again

	res := f.handle(t,
		s.reading(t, start.Add(40*time.Second), "press-01", sensor.Temperature, 95),
		s.reading(t, start.Add(40*time.Second), "press-02", sensor.Temperature, 95))
	if res.Stored != 2 || len(res.Anomalies) != 2 {
		t.Fatalf("spikes: %+v, want both stored and anomalous", res)
	}
	if got := openedIn(res); len(got) != 1 || got[0] != "press-02" {
		t.Fatalf("alarms opened by the spikes: %v, want press-02's alone", got)
	}
	if as := alarmsOf(t, f.store.Store); len(as) != 1 || as[0].EquipmentID != "press-02" {
		t.Fatalf("stored alarms %+v, want press-02's alone", as)
	}

	// The last instant of the window is in it; its end is not.
	res = f.handle(t, s.reading(t, windowEnd.Add(-time.Nanosecond), "press-01", sensor.Temperature, 200))
	if len(res.Anomalies) != 1 || len(openedIn(res)) != 0 {
		t.Fatalf("a spike in the window's last instant: %+v, want an anomaly and no alarm", res)
	}
	f.clock.Set(windowEnd)
	res = f.handle(t, s.reading(t, windowEnd, "press-01", sensor.Temperature, 400))
	if got := openedIn(res); len(got) != 1 || got[0] != "press-01" {
		t.Fatalf("a spike once the window has ended: %+v, want press-01's alarm to open", res)
	}
}

// The receipt time decides, not the reading's own timestamp: a reading measured within the
// window but received after it opens an alarm, and one measured before it but received within
// it does not.
func TestProcessMaintenanceGoesByTheTimeOfReceipt(t *testing.T) {
	f := newProcess()
	f.handler, _ = maintenanceHandler(t, f)
	var s seq
	f.handle(t, s.normal(t, start, "press-01", sensor.Temperature, 40)...)
	setWindow(t, f, "press-01", start.Add(time.Minute), start.Add(2*time.Minute))
	f.clock.Set(start.Add(3 * time.Minute))

	received := func(id string, v float64, ts, at time.Time) sensor.Reading {
		r, err := sensor.NewReading(id, "press-01", sensor.Temperature, "", v, "", ts, at)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	res := f.handle(t, received("early", 500, start.Add(50*time.Second), start.Add(90*time.Second)))
	if len(res.Anomalies) != 1 || len(openedIn(res)) != 0 {
		t.Fatalf("received within the window: %+v, want an anomaly and no alarm", res)
	}
	res = f.handle(t, received("late", 5000, start.Add(90*time.Second), start.Add(150*time.Second)))
	if len(res.Anomalies) != 1 || len(openedIn(res)) != 1 {
		t.Fatalf("received after the window: %+v, want an alarm to open", res)
	}
}

// An alarm open when the window begins still grows with anomalous readings and clears with
// calm ones: only openings are held back.
func TestProcessMaintenanceLetsAnOpenAlarmGrowAndClear(t *testing.T) {
	f := newProcess()
	f.handler, _ = maintenanceHandler(t, f)
	var s seq
	f.handle(t, s.normal(t, start, "press-01", sensor.Temperature, 40)...)
	res := f.handle(t, s.reading(t, start.Add(40*time.Second), "press-01", sensor.Temperature, 95))
	if len(openedIn(res)) != 1 {
		t.Fatalf("the spike before the window: %+v, want an alarm", res)
	}
	setWindow(t, f, "press-01", start.Add(41*time.Second), start.Add(time.Hour))
	f.clock.Advance(time.Minute)

	f.handle(t, s.reading(t, start.Add(45*time.Second), "press-01", sensor.Temperature, 120))
	if as := alarmsOf(t, f.store.Store); len(as) != 1 || as[0].Count != 2 || as[0].State != alarm.StateActive {
		t.Fatalf("after a second spike in the window: %+v, want the alarm grown to 2 readings", as)
	}
	for i := range alarm.DefaultRules.ClearAfter {
		f.handle(t, s.reading(t, start.Add(time.Duration(50+i)*time.Second), "press-01", sensor.Temperature, 70))
	}
	if as := alarmsOf(t, f.store.Store); len(as) != 1 || as[0].State != alarm.StateCleared {
		t.Fatalf("after calm readings in the window: %+v, want the alarm cleared", as)
	}
}

// Windows are loaded once per batch for the equipment not loaded within the TTL, on the
// handler's clock: not once per reading, and a window set meanwhile (through the API of
// another process) takes effect once the TTL has passed.
func TestProcessMaintenanceWindowsAreCachedForTheTTL(t *testing.T) {
	f := newProcess()
	var repo *countingMaintenance
	f.handler, repo = maintenanceHandler(t, f)
	var s seq
	f.handle(t, append(s.normal(t, start, "press-01", sensor.Temperature, 40),
		s.normal(t, start, "press-02", sensor.Temperature, 40)...)...)
	if repo.loads != 1 {
		t.Fatalf("%d loads for one batch of two equipment, want 1", repo.loads)
	}
	setWindow(t, f, "press-01", start, start.Add(time.Hour))

	f.clock.Advance(maintenanceTTL - time.Millisecond)
	res := f.handle(t, s.reading(t, start.Add(40*time.Second), "press-01", sensor.Temperature, 95))
	if repo.loads != 1 {
		t.Fatalf("%d loads within the TTL, want still 1", repo.loads)
	}
	if len(openedIn(res)) != 1 {
		t.Fatalf("a window set within the TTL of the last load applies at once: %+v", res)
	}

	f.clock.Advance(time.Millisecond)
	res = f.handle(t, s.reading(t, start.Add(41*time.Second), "press-02", sensor.Temperature, 95),
		s.reading(t, start.Add(41*time.Second), "press-03", sensor.Temperature, 71))
	if repo.loads != 2 {
		t.Fatalf("%d loads once the TTL has passed, want 2", repo.loads)
	}
	if got := openedIn(res); len(got) != 1 || got[0] != "press-02" {
		t.Fatalf("opened %v, want press-02's alarm", got)
	}
	f.handle(t, s.reading(t, start.Add(42*time.Second), "press-03", sensor.Temperature, 71))
	if repo.loads != 2 {
		t.Fatalf("%d loads: press-03 was loaded with the batch before, want 2", repo.loads)
	}

	// press-01 was not in the batch that reloaded: it is loaded on its next reading, with
	// its window, so its anomalies open nothing more.
	calm := s.normal(t, start.Add(50*time.Second), "press-01", sensor.Temperature, alarm.DefaultRules.ClearAfter)
	f.handle(t, calm...)
	res = f.handle(t, s.reading(t, start.Add(70*time.Second), "press-01", sensor.Temperature, 300))
	if repo.loads != 3 || len(res.Anomalies) != 1 || len(openedIn(res)) != 0 {
		t.Fatalf("press-01 after the TTL: %d loads, %+v; want 3 loads, an anomaly and no alarm", repo.loads, res)
	}
}

// A failed load of the windows fails the batch, which stores nothing and may be retried.
func TestProcessMaintenanceLoadFailureFailsTheBatch(t *testing.T) {
	f := newProcess()
	var repo *countingMaintenance
	f.handler, repo = maintenanceHandler(t, f)
	var s seq
	repo.err = errStorageDown
	rs := s.normal(t, start, "press-01", sensor.Temperature, 3)
	if _, err := f.handler.Handle(context.Background(), ports.ReadingsReceived{Readings: rs}); !errors.Is(err, ports.ErrUnavailable) {
		t.Fatalf("Handle = %v, want ErrUnavailable", err)
	}
	if got := f.stored(t, "press-01"); len(got) != 0 {
		t.Fatalf("%d readings stored by a failed batch", len(got))
	}
	repo.err = nil
	if res := f.handle(t, rs...); res.Stored != 3 {
		t.Fatalf("the retry: %+v, want 3 stored", res)
	}
}
