package command_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// batchRecorder keeps the batches written through it.
type batchRecorder struct {
	*flakyStore
	batches []ports.ProcessedBatch
}

func (r *batchRecorder) WriteBatch(ctx context.Context, b ports.ProcessedBatch) error {
	if err := r.flakyStore.WriteBatch(ctx, b); err != nil {
		return err
	}
	r.batches = append(r.batches, b)
	return nil
}

func eventHandler(t *testing.T, f *processFixture, w ports.BatchWriter, log ports.EventLog) *command.ProcessReadingsHandler {
	t.Helper()
	set, err := rules.Uniform(rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules})
	if err != nil {
		t.Fatal(err)
	}
	return command.NewProcessReadingsHandler(f.store, f.store, w, f.clock, f.ids, anomaly.DefaultConfig,
		equipment.DefaultRules).WithAlarms(f.store.Alarms(), set).WithEvents(log)
}

func logged(t *testing.T, log ports.EventLog) []ports.EventEntry {
	t.Helper()
	es, err := log.Read(context.Background(), event.Cursor{}, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func typesOf(es []ports.EventEntry) []event.Type {
	out := make([]event.Type, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	return out
}

// A spike's alarm opens with an event that goes with the batch (so its deliveries are
// enqueued in the batch's transaction) and then to the live stream, after an anomaly event;
// calm readings clear it the same way. Readings that change nothing make no event.
func TestProcessEventsFollowAlarmTransitions(t *testing.T) {
	f := newProcess()
	rec := &batchRecorder{flakyStore: f.store}
	log := memory.NewEventLog(0, f.clock.Now)
	f.handler = eventHandler(t, f, rec, log)
	var s seq
	res := f.handle(t, s.normal(t, start, "press-01", sensor.Temperature, 40)...)
	if len(res.Events) != 0 || len(rec.batches[0].Events) != 0 || len(logged(t, log)) != 0 {
		t.Fatalf("calm readings made events: result %v, logged %v", res.Events, logged(t, log))
	}

	res = f.handle(t, s.reading(t, start.Add(40*time.Second), "press-01", sensor.Temperature, 95))
	batch := rec.batches[len(rec.batches)-1]
	id := res.Alarms[0].Alarm.ID
	// The alarm opens, and with it the machine's incident, named by it.
	if len(batch.Events) != 2 || batch.Events[0].Type != event.AlarmOpened || batch.Events[0].Alarm == nil ||
		batch.Events[0].Alarm.ID != id || batch.Events[0].Alarm.IncidentID != id || batch.Events[0].EquipmentID != "press-01" ||
		batch.Events[1].Type != event.IncidentOpened || batch.Events[1].Incident == nil || batch.Events[1].Incident.ID != id {
		t.Fatalf("batch events %+v, want the opening of alarm %s and of its incident", batch.Events, id)
	}
	got := typesOf(logged(t, log))
	if len(got) != 3 || got[0] != event.AlarmOpened || got[1] != event.IncidentOpened || got[2] != event.AnomalyDetected {
		t.Fatalf("logged %v, want the openings then the anomaly", got)
	}
	if res.Unpublished != nil {
		t.Fatal(res.Unpublished)
	}

	for i := range alarm.DefaultRules.ClearAfter {
		f.handle(t, s.reading(t, start.Add(time.Duration(41+i)*time.Second), "press-01", sensor.Temperature, 70))
	}
	got = typesOf(logged(t, log))
	if len(got) != 5 || got[3] != event.AlarmCleared || got[4] != event.IncidentCleared {
		t.Fatalf("logged %v, want the clearings last", got)
	}
	ids := map[string]bool{}
	for _, b := range rec.batches {
		for _, e := range b.Events {
			if ids[e.ID] {
				t.Fatalf("event id %s given twice", e.ID)
			}
			ids[e.ID] = true
		}
	}
}

// A batch that is not stored announces nothing; a live stream that is down does not undo a
// batch that was stored: the result says the events were not published.
func TestProcessEventsOnlyForWhatIsStored(t *testing.T) {
	f := newProcess()
	log := memory.NewEventLog(0, f.clock.Now)
	f.handler = eventHandler(t, f, f.store, log)
	var s seq
	f.handle(t, s.normal(t, start, "press-01", sensor.Temperature, 40)...)

	f.store.failWrite.Store(true)
	if _, err := f.handler.Handle(context.Background(), ports.ReadingsReceived{Readings: []sensor.Reading{
		s.reading(t, start.Add(40*time.Second), "press-01", sensor.Temperature, 95)}}); err == nil {
		t.Fatal("the write failed, Handle did not")
	}
	if es := logged(t, log); len(es) != 0 {
		t.Fatalf("a batch that was not stored logged %v", typesOf(es))
	}
	f.store.failWrite.Store(false)

	down := errors.New("stream down")
	log.SetErr(down)
	res := f.handle(t, s.reading(t, start.Add(41*time.Second), "press-01", sensor.Temperature, 95))
	if res.Stored != 1 || len(res.Events) != 3 || !errors.Is(res.Unpublished, down) {
		t.Fatalf("stored %d, events %v, unpublished %v", res.Stored, res.Events, res.Unpublished)
	}
}

// Two sensors of a machine whose alarms overlap make one incident: one incident.opened when
// the first opens, none when the second joins, one incident.cleared when the last clears;
// a new process over the same storage goes on with the incident.
func TestProcessIncidentsGroupAMachinesOverlappingAlarms(t *testing.T) {
	f := newProcess()
	log := memory.NewEventLog(0, f.clock.Now)
	f.handler = eventHandler(t, f, f.store, log)
	var s seq
	f.handle(t, append(s.normal(t, start, "press-01", sensor.Temperature, 40), s.normal(t, start, "press-01", sensor.Vibration, 40)...)...)
	first := f.handle(t, s.reading(t, start.Add(40*time.Second), "press-01", sensor.Temperature, 95))
	f.handler = eventHandler(t, f, f.store, log) // a restart between the two openings
	second := f.handle(t, s.reading(t, start.Add(41*time.Second), "press-01", sensor.Vibration, 95))
	a1, a2 := first.Alarms[0].Alarm, second.Alarms[0].Alarm
	if a1.IncidentID != a1.ID || a2.IncidentID != a1.ID {
		t.Fatalf("incidents %q and %q, want both %q", a1.IncidentID, a2.IncidentID, a1.ID)
	}
	count := func(typ event.Type) int {
		n := 0
		for _, e := range logged(t, log) {
			if e.Type == typ {
				n++
			}
		}
		return n
	}
	if count(event.IncidentOpened) != 1 {
		t.Fatalf("incident.opened %d times, want once", count(event.IncidentOpened))
	}
	for i := range alarm.DefaultRules.ClearAfter {
		at := start.Add(time.Duration(42+i) * time.Second)
		f.handle(t, s.reading(t, at, "press-01", sensor.Temperature, 70), s.reading(t, at, "press-01", sensor.Vibration, 70))
	}
	if count(event.IncidentCleared) != 1 {
		t.Fatalf("incident.cleared %d times, want once", count(event.IncidentCleared))
	}
	var cleared struct {
		Data struct {
			ID         string
			Sensors    []struct{ SensorType string }
			OpenAlarms int
			ClearedAt  *string
		}
	}
	for _, e := range logged(t, log) {
		if e.Type == event.IncidentCleared {
			if err := json.Unmarshal(e.Data, &cleared); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c := cleared.Data; c.ID != a1.ID || len(c.Sensors) != 2 || c.Sensors[1].SensorType != "vibration" || c.OpenAlarms != 0 || c.ClearedAt == nil {
		t.Fatalf("the cleared incident: %+v", c)
	}
	stored := alarmsOf(t, f.store.Store)
	if len(stored) != 2 || stored[0].IncidentID != a1.ID || stored[1].IncidentID != a1.ID {
		t.Fatalf("stored %+v", stored)
	}
}
