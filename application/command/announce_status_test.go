package command_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// announceFixture is a store, the processing of its readings, and the announcers of two API
// processes over it (each with its own live stream log, as with one Redis stream they would
// share, the second is checked for what it appends).
type announceFixture struct {
	*processFixture
	logs       [2]*memory.EventLog
	announcers [2]*command.AnnounceStatusHandler
}

func newAnnounce(t *testing.T) *announceFixture {
	t.Helper()
	f := &announceFixture{processFixture: newProcess()}
	for i := range f.announcers {
		f.logs[i] = memory.NewEventLog(0, f.clock.Now)
		eq := query.NewEquipmentHandler(f.store, f.clock, equipment.DefaultRules).
			WithAlarms(f.store.Alarms()).WithMaintenance(f.store.Maintenance())
		f.announcers[i] = command.NewAnnounceStatusHandler(eq, f.store.StatusLedger(), f.logs[i], f.ids, f.clock,
			equipment.DefaultRules)
	}
	return f
}

func (f *announceFixture) announce(t *testing.T, i int) []event.StatusChange {
	t.Helper()
	res, err := f.announcers[i].Handle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Unpublished != nil {
		t.Fatal(res.Unpublished)
	}
	var out []event.StatusChange
	for _, e := range res.Announced {
		if e.Type != event.StatusChanged || e.Status == nil || e.EquipmentID != e.Status.EquipmentID {
			t.Fatalf("announced %+v", e)
		}
		out = append(out, *e.Status)
	}
	return out
}

// Each change is announced once, by whichever process looks first: a machine seen for the
// first time, its anomaly, its silence (which no request reports), its return.
func TestAnnounceStatusChangesOnce(t *testing.T) {
	f := newAnnounce(t)
	var s seq
	if got := f.announce(t, 0); len(got) != 0 {
		t.Fatalf("nothing known, announced %v", got)
	}
	f.handle(t, s.normal(t, f.clock.Now().Add(-40*time.Second), "press-01", sensor.Temperature, 40)...)
	got := f.announce(t, 0)
	if len(got) != 1 || got[0].Previous != "" || got[0].Status != equipment.StatusOnline || got[0].Reason != "readings arriving" {
		t.Fatalf("first sight announced %+v", got)
	}
	if again := f.announce(t, 1); len(again) != 0 {
		t.Fatalf("the other process announced %+v again", again)
	}
	if again := f.announce(t, 0); len(again) != 0 {
		t.Fatalf("no change, announced %+v", again)
	}

	f.handle(t, s.reading(t, f.clock.Now(), "press-01", sensor.Temperature, 95))
	got = f.announce(t, 1)
	if len(got) != 1 || got[0].Previous != equipment.StatusOnline || got[0].Status != equipment.StatusAnomaly ||
		!strings.HasPrefix(got[0].Reason, "anomalous reading at ") {
		t.Fatalf("spike announced %+v", got)
	}

	f.clock.Advance(equipment.DefaultRules.OfflineAfter + time.Second)
	got = f.announce(t, 0)
	if len(got) != 1 || got[0].Previous != equipment.StatusAnomaly || got[0].Status != equipment.StatusOffline ||
		!strings.HasPrefix(got[0].Reason, "no reading for more than 30s") {
		t.Fatalf("silence announced %+v", got)
	}
	if again := f.announce(t, 1); len(again) != 0 {
		t.Fatalf("OFFLINE announced again: %+v", again)
	}

	// Each process's log holds what that process announced; together, each change once.
	var all []string
	for _, l := range f.logs {
		es, err := l.Read(context.Background(), event.Cursor{}, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			all = append(all, string(e.Type)+"/"+e.EquipmentID)
		}
	}
	if len(all) != 3 {
		t.Fatalf("logged %v, want the three changes once each", all)
	}
}

// Processes that look at the same moment race for the ledger: one announces the change, and
// the others, finding it announced, append nothing.
func TestAnnounceStatusRaceHasOneWinner(t *testing.T) {
	f := newAnnounce(t)
	var s seq
	f.handle(t, s.normal(t, f.clock.Now().Add(-40*time.Second), "press-01", sensor.Temperature, 40)...)
	f.announce(t, 0)
	f.clock.Advance(time.Minute)
	results := make(chan int, 2)
	for i := range f.announcers {
		go func() {
			res, err := f.announcers[i].Handle(context.Background())
			if err != nil {
				t.Error(err)
			}
			results <- len(res.Announced)
		}()
	}
	if n := <-results + <-results; n != 1 {
		t.Fatalf("%d announcements of one change, want 1", n)
	}
}

// Maintenance is announced with its reason, and its end too.
func TestAnnounceStatusMaintenance(t *testing.T) {
	f := newAnnounce(t)
	var s seq
	f.handle(t, s.normal(t, f.clock.Now().Add(-40*time.Second), "press-01", sensor.Temperature, 40)...)
	f.announce(t, 0)
	now := f.clock.Now()
	w := equipment.Maintenance{EquipmentID: "press-01", From: now, To: now.Add(10 * time.Second), Reason: "belt change"}
	if err := f.store.Maintenance().Set(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	got := f.announce(t, 0)
	if len(got) != 1 || got[0].Status != equipment.StatusMaintenance || !strings.HasSuffix(got[0].Reason, ": belt change") {
		t.Fatalf("maintenance announced %+v", got)
	}
	f.clock.Advance(11 * time.Second)
	f.handle(t, s.normal(t, f.clock.Now(), "press-01", sensor.Temperature, 1)...)
	got = f.announce(t, 0)
	if len(got) != 1 || got[0].Status != equipment.StatusOnline || got[0].Reason != "maintenance ended" {
		t.Fatalf("end of maintenance announced %+v", got)
	}
}

// A ledger that cannot be read announces nothing and says why; a stream that is down does not
// undo an announcement (its deliveries are enqueued with it), and says so.
func TestAnnounceStatusFailures(t *testing.T) {
	f := newAnnounce(t)
	var s seq
	f.handle(t, s.normal(t, f.clock.Now().Add(-40*time.Second), "press-01", sensor.Temperature, 40)...)
	down := errors.New("stream down")
	f.logs[0].SetErr(down)
	res, err := f.announcers[0].Handle(context.Background())
	if err != nil || len(res.Announced) != 1 || !errors.Is(res.Unpublished, down) {
		t.Fatalf("announced %v, unpublished %v, err %v", res.Announced, res.Unpublished, err)
	}
	if got := f.announce(t, 1); len(got) != 0 {
		t.Fatalf("announced again after an unpublished announcement: %v", got)
	}
	f.store.SetErr(ports.ErrUnavailable)
	defer f.store.SetErr(nil)
	if _, err := f.announcers[1].Handle(context.Background()); !errors.Is(err, ports.ErrUnavailable) {
		t.Fatalf("storage down: %v", err)
	}
}
