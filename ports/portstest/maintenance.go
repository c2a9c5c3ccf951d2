package portstest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/equipment"
)

// MaintenanceRepository is the contract of ports.MaintenanceRepository.
func MaintenanceRepository(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("SetReplacesAndGet", func(t *testing.T) { maintenanceSetAndGet(t, newStores(t)) })
	t.Run("End", func(t *testing.T) { maintenanceEnd(t, newStores(t)) })
	t.Run("Windows", func(t *testing.T) { maintenanceWindows(t, newStores(t)) })
}

// maintenanceStores returns the store's repository, failing the test when it has none.
func maintenanceStores(t *testing.T, s Stores) Stores {
	t.Helper()
	if s.Maintenance == nil {
		t.Fatal("the store has no MaintenanceRepository")
	}
	return s
}

// register creates equipment as PUT /equipment/:id does.
func register(t *testing.T, s Stores, ids ...string) {
	t.Helper()
	for _, id := range ids {
		_, err := s.Equipment.UpsertMetadata(t.Context(), id, equipment.Metadata{}, base)
		must(t, err)
	}
}

func window(eq string, from, to time.Duration, reason string) equipment.Maintenance {
	return equipment.Maintenance{EquipmentID: eq, From: at(from), To: at(to), Reason: reason}
}

func maintenanceSetAndGet(t *testing.T, s Stores) {
	s = maintenanceStores(t, s)
	ctx := t.Context()
	notFound(t, s.Maintenance.Set(ctx, window(press1, 0, time.Hour, "unknown equipment")))
	register(t, s, press1, press2)
	_, err := s.Maintenance.Get(ctx, press1)
	notFound(t, err)

	// Microseconds and the whole reason survive; times come back in UTC.
	m := window(press1, receiptDelay, 2*time.Hour+receiptDelay, strings.Repeat("é", 499)+"\u2603")
	m.From = m.From.In(time.FixedZone("CET", 3600))
	must(t, s.Maintenance.Set(ctx, m))
	got, err := s.Maintenance.Get(ctx, press1)
	must(t, err)
	m.From = m.From.UTC()
	equal(t, m, got, "the window as stored")
	inUTC(t, got.From, got.To)

	// One window per equipment: a second replaces the first; another equipment's is apart.
	second := window(press1, 3*time.Hour, 4*time.Hour, "")
	must(t, s.Maintenance.Set(ctx, second))
	must(t, s.Maintenance.Set(ctx, window(press2, 0, time.Minute, "other")))
	got, err = s.Maintenance.Get(ctx, press1)
	must(t, err)
	equal(t, second, got, "the replacing window")
	_, err = s.Maintenance.Get(ctx, "press-99")
	notFound(t, err)
}

func maintenanceEnd(t *testing.T, s Stores) {
	s = maintenanceStores(t, s)
	ctx := t.Context()
	notFound(t, s.Maintenance.End(ctx, "press-99", at(0)))
	register(t, s, press1, press2)
	notFound(t, s.Maintenance.End(ctx, press1, at(0)))

	// Under way: ended at the time given, and kept.
	running := window(press1, -time.Hour, time.Hour, "bearing")
	must(t, s.Maintenance.Set(ctx, running))
	must(t, s.Maintenance.End(ctx, press1, at(receiptDelay)))
	got, err := s.Maintenance.Get(ctx, press1)
	must(t, err)
	ended := running
	ended.To = at(receiptDelay)
	equal(t, ended, got, "the ended window")
	// Ended already: nothing to end, and the window stays as it is.
	notFound(t, s.Maintenance.End(ctx, press1, at(receiptDelay)))
	notFound(t, s.Maintenance.End(ctx, press1, at(time.Minute)))
	got, err = s.Maintenance.Get(ctx, press1)
	must(t, err)
	equal(t, ended, got, "the ended window, ended again")

	// Starting exactly at the time given: under way, so ended (empty) and kept.
	must(t, s.Maintenance.Set(ctx, window(press1, time.Hour, 2*time.Hour, "")))
	must(t, s.Maintenance.End(ctx, press1, at(time.Hour)))
	got, err = s.Maintenance.Get(ctx, press1)
	must(t, err)
	equal(t, window(press1, time.Hour, time.Hour, ""), got, "the window ended as it began")

	// Not begun: removed.
	future := window(press2, time.Hour, 2*time.Hour, "scheduled")
	must(t, s.Maintenance.Set(ctx, future))
	must(t, s.Maintenance.End(ctx, press2, at(time.Hour-time.Microsecond)))
	_, err = s.Maintenance.Get(ctx, press2)
	notFound(t, err)
	notFound(t, s.Maintenance.End(ctx, press2, at(time.Hour)))
	// Ending one equipment's window leaves the others'.
	must(t, s.Maintenance.Set(ctx, future))
	must(t, s.Maintenance.End(ctx, press1, at(0)))
	got, err = s.Maintenance.Get(ctx, press2)
	must(t, err)
	equal(t, future, got, "press-02's window after ending press-01's")
}

func maintenanceWindows(t *testing.T, s Stores) {
	s = maintenanceStores(t, s)
	ctx := t.Context()
	got, err := s.Maintenance.Windows(ctx, nil)
	must(t, err)
	equal(t, 0, len(got), "windows of no equipment")

	// More equipment than one statement's worth of parameters.
	const n = 1200
	ids := make([]string, n)
	want := make(map[string]equipment.Maintenance)
	for i := range ids {
		ids[i] = fmt.Sprintf("m-%04d", i)
		register(t, s, ids[i])
		if i%3 == 0 {
			m := window(ids[i], time.Duration(i)*time.Second, time.Duration(i)*time.Second+time.Hour, fmt.Sprint(i))
			must(t, s.Maintenance.Set(ctx, m))
			want[ids[i]] = m
		}
	}
	// An ended window is still answered.
	must(t, s.Maintenance.End(ctx, ids[0], at(time.Minute)))
	ended := want[ids[0]]
	ended.To = at(time.Minute)
	want[ids[0]] = ended

	got, err = s.Maintenance.Windows(ctx, append(ids, "press-99", ids[3]))
	must(t, err)
	equal(t, want, got, "the windows of %d equipment", n)
	got, err = s.Maintenance.Windows(ctx, []string{ids[1], ids[3]})
	must(t, err)
	equal(t, map[string]equipment.Maintenance{ids[3]: want[ids[3]]}, got, "the windows of two")
}
