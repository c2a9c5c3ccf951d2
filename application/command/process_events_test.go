package command_test

import (
	"context"
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
	if len(batch.Events) != 1 || batch.Events[0].Type != event.AlarmOpened || batch.Events[0].Alarm == nil ||
		batch.Events[0].Alarm.ID != res.Alarms[0].Alarm.ID || batch.Events[0].EquipmentID != "press-01" {
		t.Fatalf("batch events %+v, want the opening of alarm %s", batch.Events, res.Alarms[0].Alarm.ID)
	}
	got := typesOf(logged(t, log))
	if len(got) != 2 || got[0] != event.AlarmOpened || got[1] != event.AnomalyDetected {
		t.Fatalf("logged %v, want the opening then the anomaly", got)
	}
	if res.Unpublished != nil {
		t.Fatal(res.Unpublished)
	}

	for i := range alarm.DefaultRules.ClearAfter {
		f.handle(t, s.reading(t, start.Add(time.Duration(41+i)*time.Second), "press-01", sensor.Temperature, 70))
	}
	got = typesOf(logged(t, log))
	if len(got) != 3 || got[2] != event.AlarmCleared {
		t.Fatalf("logged %v, want the clearing last", got)
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
	if res.Stored != 1 || len(res.Events) != 2 || !errors.Is(res.Unpublished, down) {
		t.Fatalf("stored %d, events %v, unpublished %v", res.Stored, res.Events, res.Unpublished)
	}
}
