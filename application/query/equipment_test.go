package query_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

func (f *fixture) statusHandler() *query.EquipmentStatusHandler {
	return query.NewEquipmentStatusHandler(f.store, f.store, f.store, nil, f.clock, equipment.DefaultRules)
}

func TestEquipmentStatusOverTime(t *testing.T) {
	f := newFixture()
	h := f.statusHandler()
	ctx := context.Background()
	// press-01 is seen at t0 with an anomaly detected then, and seen again at t0+50s.
	f.anomaly(t, "press-01", sensor.Temperature, anomaly.SeverityMedium, t0.Add(-100*time.Millisecond), t0)
	f.reading(t, "press-01", sensor.Temperature, 70, t0.Add(50*time.Second), t0.Add(50*time.Second), false)

	tests := []struct {
		name        string
		now         time.Duration // clock, from t0
		wantStatus  equipment.Status
		wantSince   float64
		wantAnomaly int64
	}{
		{"anomaly_just_detected", 50 * time.Second, equipment.StatusAnomaly, 0, 1},
		{"anomaly_at_window_edge", 60 * time.Second, equipment.StatusAnomaly, 10, 1},
		{"anomaly_window_over", 60*time.Second + time.Millisecond, equipment.StatusOnline, 10.001, 0},
		{"silent_exactly_30s", 80 * time.Second, equipment.StatusOnline, 30, 0},
		{"silent_just_over_30s", 80*time.Second + time.Millisecond, equipment.StatusOffline, 30.001, 0},
		{"silent_an_hour", 50*time.Second + time.Hour, equipment.StatusOffline, 3600, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clock.Set(t0.Add(tt.now))
			st, err := h.Handle(ctx, "press-01", "")
			if err != nil {
				t.Fatal(err)
			}
			if st.Status != tt.wantStatus {
				t.Errorf("Status = %s, want %s", st.Status, tt.wantStatus)
			}
			if diff := st.SecondsSinceLastSeen - tt.wantSince; diff > 1e-9 || diff < -1e-9 {
				t.Errorf("SecondsSinceLastSeen = %v, want %v", st.SecondsSinceLastSeen, tt.wantSince)
			}
			if st.RecentAnomalies != tt.wantAnomaly {
				t.Errorf("RecentAnomalies = %d, want %d", st.RecentAnomalies, tt.wantAnomaly)
			}
			if st.EquipmentID != "press-01" || !st.LastSeenAt.Equal(t0.Add(50*time.Second)) {
				t.Errorf("id %q, LastSeenAt %v; want press-01, %v", st.EquipmentID, st.LastSeenAt, t0.Add(50*time.Second))
			}
		})
	}
}

func TestEquipmentStatusOnline(t *testing.T) {
	f := newFixture()
	f.reading(t, "press-01", sensor.Temperature, 70, t0, t0, false)
	f.clock.Set(t0.Add(2400 * time.Millisecond))
	st, err := f.statusHandler().Handle(context.Background(), "press-01", "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != equipment.StatusOnline || st.SecondsSinceLastSeen != 2.4 || st.RecentAnomalies != 0 {
		t.Errorf("status = %+v, want ONLINE, 2.4 s since last seen, no recent anomaly", st)
	}
}

func TestEquipmentStatusLatestReadings(t *testing.T) {
	f := newFixture()
	// Several readings per type; the latest by timestamp wins, not the latest stored.
	f.reading(t, "press-01", sensor.Vibration, 0.1, t0.Add(1*time.Second), t0.Add(1*time.Second), false)
	vib := f.reading(t, "press-01", sensor.Vibration, 0.9, t0.Add(5*time.Second), t0.Add(5*time.Second), true)
	temp := f.reading(t, "press-01", sensor.Temperature, 71, t0.Add(4*time.Second), t0.Add(6*time.Second), false)
	f.reading(t, "press-01", sensor.Temperature, 69, t0.Add(2*time.Second), t0.Add(7*time.Second), false)
	f.reading(t, "lathe-02", sensor.Pressure, 3, t0.Add(9*time.Second), t0.Add(9*time.Second), false)
	f.clock.Set(t0.Add(10 * time.Second))

	st, err := f.statusHandler().Handle(context.Background(), "press-01", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []ports.StoredReading{temp, vib} // in sensor.Types order
	if len(st.LatestReadings) != len(want) {
		t.Fatalf("LatestReadings = %+v, want %+v", st.LatestReadings, want)
	}
	for i, r := range st.LatestReadings {
		if r.ID != want[i].ID || r.Value != want[i].Value || r.Anomalous != want[i].Anomalous || r.Type != want[i].Type {
			t.Errorf("LatestReadings[%d] = %+v, want %+v", i, r, want[i])
		}
	}
	if !st.LastSeenAt.Equal(t0.Add(7 * time.Second)) {
		t.Errorf("LastSeenAt = %v, want the last receipt %v", st.LastSeenAt, t0.Add(7*time.Second))
	}
}

func TestEquipmentStatusNeverSeen(t *testing.T) {
	f := newFixture()
	if _, err := f.store.UpsertMetadata(context.Background(), "press-01", equipment.Metadata{Name: "Press"}, t0); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(time.Hour))
	st, err := f.statusHandler().Handle(context.Background(), "press-01", "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != equipment.StatusOffline || !st.LastSeenAt.IsZero() || st.SecondsSinceLastSeen != 0 || len(st.LatestReadings) != 0 {
		t.Errorf("never seen equipment: %+v, want OFFLINE with nothing seen", st)
	}
}

func TestEquipmentStatusErrors(t *testing.T) {
	f := newFixture()
	h := f.statusHandler()
	if _, err := h.Handle(context.Background(), "ghost", ""); !errors.Is(err, ports.ErrNotFound) {
		t.Errorf("unknown equipment: %v, want ErrNotFound", err)
	}
	f.reading(t, "press-01", sensor.Temperature, 70, t0, t0, false)
	f.store.SetErr(errStorageDown)
	_, err := h.Handle(context.Background(), "press-01", "")
	if !errors.Is(err, ports.ErrUnavailable) || errors.Is(err, ports.ErrNotFound) {
		t.Errorf("store down: %v, want ErrUnavailable", err)
	}
}

func TestEquipmentListAndGet(t *testing.T) {
	f := newFixture()
	ctx := context.Background()
	h := query.NewEquipmentHandler(f.store, f.clock, equipment.DefaultRules)

	if list, err := h.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("List on an empty store = %+v, %v", list, err)
	}
	f.reading(t, "press-01", sensor.Temperature, 70, t0, t0, false)                              // online
	f.anomaly(t, "lathe-02", sensor.Vibration, anomaly.SeverityLow, t0, t0.Add(-10*time.Second)) // anomaly
	f.reading(t, "drill-03", sensor.Voltage, 230, t0, t0.Add(-31*time.Second), false)            // offline
	if _, err := f.store.UpsertMetadata(ctx, "press-01", equipment.Metadata{Name: "Press 1", Line: "A"}, t0); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0)

	list, err := h.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id     string
		status equipment.Status
	}{{"drill-03", equipment.StatusOffline}, {"lathe-02", equipment.StatusAnomaly}, {"press-01", equipment.StatusOnline}}
	if len(list) != len(want) {
		t.Fatalf("List = %+v, want %d equipment", list, len(want))
	}
	for i, w := range want {
		if list[i].ID != w.id || list[i].Status != w.status {
			t.Errorf("List[%d] = %s %s, want %s %s", i, list[i].ID, list[i].Status, w.id, w.status)
		}
	}

	got, err := h.Get(ctx, "press-01")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Press 1" || got.Line != "A" || got.Status != equipment.StatusOnline || !got.LastSeenAt.Equal(t0) {
		t.Errorf("Get = %+v", got)
	}
	f.clock.Advance(31 * time.Second)
	if got, _ := h.Get(ctx, "press-01"); got.Status != equipment.StatusOffline {
		t.Errorf("Get 31 s later: status %s, want OFFLINE", got.Status)
	}
	if _, err := h.Get(ctx, "ghost"); !errors.Is(err, ports.ErrNotFound) {
		t.Errorf("Get unknown = %v, want ErrNotFound", err)
	}
	f.store.SetErr(errStorageDown)
	if _, err := h.List(ctx); !errors.Is(err, ports.ErrUnavailable) {
		t.Errorf("List with store down = %v, want ErrUnavailable", err)
	}
}

// countingReadings counts the calls of Latest, to tell whether the readings table is read.
type countingReadings struct {
	ports.ReadingRepository
	latest int
}

func (c *countingReadings) Latest(ctx context.Context, id string) ([]ports.StoredReading, error) {
	c.latest++
	return c.ReadingRepository.Latest(ctx, id)
}

func TestEquipmentStatusFromLiveStore(t *testing.T) {
	f := newFixture()
	ctx := context.Background()
	temp := f.reading(t, "press-01", sensor.Temperature, 71, t0, t0.Add(time.Second), false)
	readings := &countingReadings{ReadingRepository: f.store}
	live := memory.NewLiveStore()
	h := query.NewEquipmentStatusHandler(f.store, readings, f.store, live, f.clock, equipment.DefaultRules)
	f.clock.Set(t0.Add(2 * time.Second))

	// Unknown to the live store: answered from the database, which warms the live store.
	st, err := h.Handle(ctx, "press-01", "")
	if err != nil {
		t.Fatal(err)
	}
	if readings.latest != 1 || len(st.LatestReadings) != 1 || st.LatestReadings[0].ID != temp.ID {
		t.Fatalf("cold: %d database reads, latest %+v; want 1 read and %s", readings.latest, st.LatestReadings, temp.ID)
	}
	if l, err := live.Live(ctx, "press-01"); err != nil || !l.Complete || len(l.Latest) != 1 {
		t.Fatalf("live store after the cold answer: %+v, %v; want it complete with one reading", l, err)
	}

	// Known: answered from the live store, with what the workers recorded since.
	vib := f.reading(t, "press-01", sensor.Vibration, 0.7, t0.Add(2*time.Second), t0.Add(3*time.Second), true)
	if err := live.Record(ctx, []ports.StoredReading{vib}); err != nil {
		t.Fatal(err)
	}
	if err := live.Beat(ctx, []ports.Sighting{{EquipmentID: "press-01", LastSeenAt: t0.Add(3 * time.Second), LastAnomalyAt: t0.Add(3 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(4 * time.Second))
	st, err = h.Handle(ctx, "press-01", "")
	if err != nil {
		t.Fatal(err)
	}
	if readings.latest != 1 {
		t.Errorf("warm: the readings table was read again (%d reads)", readings.latest)
	}
	if len(st.LatestReadings) != 2 || st.LatestReadings[0].ID != temp.ID || st.LatestReadings[1].ID != vib.ID {
		t.Errorf("warm: latest %+v, want %s then %s", st.LatestReadings, temp.ID, vib.ID)
	}
	if !st.LastSeenAt.Equal(t0.Add(3*time.Second)) || st.Status != equipment.StatusAnomaly {
		t.Errorf("warm: last seen %v, status %s; want %v, ANOMALY", st.LastSeenAt, st.Status, t0.Add(3*time.Second))
	}

	// A live store that fails is passed over.
	live.Err = errors.New("redis down")
	if st, err = h.Handle(ctx, "press-01", ""); err != nil || len(st.LatestReadings) != 2 || readings.latest != 2 {
		t.Errorf("live store down: %+v, %v after %d reads; want the database's answer", st, err, readings.latest)
	}
}

func TestEquipmentStatusIncompleteLiveStore(t *testing.T) {
	// A live store that knows only what workers recorded since it was emptied (a Redis
	// restart) is not trusted for the rest.
	f := newFixture()
	ctx := context.Background()
	temp := f.reading(t, "press-01", sensor.Temperature, 71, t0, t0, false)
	vib := f.reading(t, "press-01", sensor.Vibration, 0.5, t0.Add(time.Second), t0.Add(time.Second), false)
	live := memory.NewLiveStore()
	if err := live.Record(ctx, []ports.StoredReading{vib}); err != nil {
		t.Fatal(err)
	}
	h := query.NewEquipmentStatusHandler(f.store, f.store, f.store, live, f.clock, equipment.DefaultRules)
	st, err := h.Handle(ctx, "press-01", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.LatestReadings) != 2 || st.LatestReadings[0].ID != temp.ID {
		t.Errorf("latest %+v, want both sensors from the database", st.LatestReadings)
	}
}
