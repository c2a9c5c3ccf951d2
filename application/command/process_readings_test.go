package command_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// start is when the processing tests' clock starts.
var start = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

var errStorageDown = fmt.Errorf("connect storage: %w", ports.ErrUnavailable)

// flakyStore is a memory.Store whose individual methods can be made to fail, to reach the
// failure paths that memory.Store.SetErr (which fails everything) cannot.
type flakyStore struct {
	*memory.Store
	failWrite, failRecent, failLatestSession atomic.Bool
}

func (s *flakyStore) WriteBatch(ctx context.Context, b ports.ProcessedBatch) error {
	if s.failWrite.Load() {
		return errStorageDown
	}
	return s.Store.WriteBatch(ctx, b)
}

func (s *flakyStore) RecentValues(ctx context.Context, k sensor.Key, n int) ([]float64, error) {
	if s.failRecent.Load() {
		return nil, errStorageDown
	}
	return s.Store.RecentValues(ctx, k, n)
}

func (s *flakyStore) LatestSession(ctx context.Context, id string) (equipment.Session, error) {
	if s.failLatestSession.Load() {
		return equipment.Session{}, errStorageDown
	}
	return s.Store.LatestSession(ctx, id)
}

type processFixture struct {
	store   *flakyStore
	clock   *memory.Clock
	ids     *memory.IDs
	handler *command.ProcessReadingsHandler
}

func newProcess() *processFixture {
	f := &processFixture{store: &flakyStore{Store: memory.NewStore()}, clock: memory.NewClock(start), ids: &memory.IDs{}}
	f.restart()
	return f
}

// restart replaces the handler with a fresh one over the same store, as a new process would.
func (f *processFixture) restart() {
	f.handler = command.NewProcessReadingsHandler(f.store, f.store, f.store, f.clock, f.ids,
		anomaly.DefaultConfig, equipment.DefaultRules)
}

func (f *processFixture) handle(t *testing.T, rs ...sensor.Reading) command.ProcessResult {
	t.Helper()
	res, err := f.handler.Handle(context.Background(), ports.ReadingsReceived{Readings: rs})
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return res
}

func (f *processFixture) stored(t *testing.T, eq string) []ports.StoredReading {
	t.Helper()
	rs, err := f.store.History(context.Background(), ports.HistoryQuery{EquipmentID: eq,
		From: start.Add(-24 * time.Hour), To: start.Add(24 * time.Hour), Limit: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func (f *processFixture) anomalies(t *testing.T) []anomaly.Anomaly {
	t.Helper()
	as, _, err := f.store.Find(context.Background(), ports.AnomalyQuery{Limit: 100_000, Ascending: true})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// seq numbers readings so that every reading of a test has its own id and time.
type seq struct{ n int }

// reading builds a reading of eq/typ measured and received at the fixture clock's time.
func (s *seq) reading(t *testing.T, at time.Time, eq string, typ sensor.Type, v float64) sensor.Reading {
	t.Helper()
	s.n++
	r, err := sensor.NewReading(fmt.Sprintf("r-%d", s.n), eq, typ, "", v, "", at, at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// normal returns n readings alternating 69 and 71 (mean 70), one per second from at.
func (s *seq) normal(t *testing.T, at time.Time, eq string, typ sensor.Type, n int) []sensor.Reading {
	out := make([]sensor.Reading, n)
	for i := range out {
		out[i] = s.reading(t, at.Add(time.Duration(i)*time.Second), eq, typ, 69+2*float64(i%2))
	}
	return out
}

// sdOf is the sample standard deviation of n values alternating 69 and 71.
func sdOf(n int) float64 { return math.Sqrt(float64(n) / float64(n-1)) }

func TestProcessReadingsCatchesSpike(t *testing.T) {
	f := newProcess()
	var s seq
	res := f.handle(t, s.normal(t, start, "press-01", sensor.Temperature, 40)...)
	if res.Stored != 40 || res.Skipped != 0 || len(res.Anomalies) != 0 {
		t.Fatalf("normal readings: %+v, want 40 stored, no anomaly", res)
	}
	f.clock.Advance(time.Minute)
	spike := s.reading(t, f.clock.Now(), "press-01", sensor.Temperature, 100)
	f.clock.Advance(200 * time.Millisecond) // detection happens a little after receipt
	res = f.handle(t, spike)
	if res.Stored != 1 || len(res.Anomalies) != 1 {
		t.Fatalf("spike: %+v, want 1 stored, 1 anomaly", res)
	}

	sd := sdOf(40)
	want := anomaly.Anomaly{ID: res.Anomalies[0].ID, ReadingID: spike.ID, EquipmentID: "press-01",
		SensorType: sensor.Temperature, Value: 100, ZScore: 30 / sd, Mean: 70, StdDev: sd, WindowSize: 40,
		Severity: anomaly.SeverityCritical, Timestamp: spike.Timestamp, DetectedAt: f.clock.Now()}
	stored := f.anomalies(t)
	if len(stored) != 1 {
		t.Fatalf("stored anomalies = %+v, want 1", stored)
	}
	got := stored[0]
	if got.ID == "" || got.ID != res.Anomalies[0].ID {
		t.Errorf("stored anomaly id %q, result's %q", got.ID, res.Anomalies[0].ID)
	}
	if math.Abs(got.ZScore-want.ZScore) > 1e-9 || math.Abs(got.StdDev-want.StdDev) > 1e-12 || got.Mean != want.Mean {
		t.Errorf("evidence z %v mean %v sd %v; want %v %v %v", got.ZScore, got.Mean, got.StdDev, want.ZScore, want.Mean, want.StdDev)
	}
	got.ZScore, got.StdDev = want.ZScore, want.StdDev
	if got != want {
		t.Errorf("stored anomaly = %+v\nwant %+v", got, want)
	}

	readings := f.stored(t, "press-01")
	if len(readings) != 41 {
		t.Fatalf("stored %d readings, want 41", len(readings))
	}
	for _, r := range readings {
		if r.Anomalous != (r.ID == spike.ID) {
			t.Errorf("reading %s (%v): Anomalous = %v", r.ID, r.Value, r.Anomalous)
		}
	}
	e, err := f.store.Get(context.Background(), "press-01")
	if err != nil {
		t.Fatal(err)
	}
	if !e.LastAnomalyAt.Equal(f.clock.Now()) || !e.LastSeenAt.Equal(spike.ReceivedAt) {
		t.Errorf("equipment = %+v, want last anomaly at detection, last seen at the spike's receipt", e)
	}
}

func TestProcessReadingsNoVerdictBefore31st(t *testing.T) {
	f := newProcess()
	var s seq
	f.handle(t, s.normal(t, start, "press-01", sensor.Temperature, 29)...)
	// The 30th reading is judged against 29 values: no verdict, even for a spike.
	if res := f.handle(t, s.reading(t, start.Add(time.Minute), "press-01", sensor.Temperature, 1e6)); len(res.Anomalies) != 0 {
		t.Errorf("30th reading flagged: %+v", res.Anomalies)
	}
	// The 31st is judged against 30, the earlier spike among them.
	res := f.handle(t, s.reading(t, start.Add(2*time.Minute), "press-01", sensor.Temperature, -1e8))
	if len(res.Anomalies) != 1 || res.Anomalies[0].WindowSize != 30 {
		t.Errorf("31st reading: %+v, want an anomaly over a window of 30", res.Anomalies)
	}
}

func TestProcessReadingsSightings(t *testing.T) {
	f := newProcess()
	var s seq
	ctx := context.Background()
	if _, err := f.store.Get(ctx, "press-01"); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("equipment known before its first reading: %v", err)
	}
	first := s.reading(t, start, "press-01", sensor.Temperature, 70)
	f.handle(t, first)
	e, err := f.store.Get(ctx, "press-01")
	if err != nil {
		t.Fatalf("first reading did not register the equipment: %v", err)
	}
	if !e.LastSeenAt.Equal(start) || !e.LastAnomalyAt.IsZero() {
		t.Errorf("after first reading: %+v", e)
	}

	// A batch received over 10 s: LastSeenAt is its latest receipt, whatever the order.
	late := s.reading(t, start.Add(10*time.Second), "press-01", sensor.Temperature, 70)
	early := s.reading(t, start.Add(5*time.Second), "press-01", sensor.Vibration, 0.3)
	other := s.reading(t, start.Add(7*time.Second), "lathe-02", sensor.Voltage, 400)
	f.handle(t, late, early, other)
	for id, want := range map[string]time.Time{"press-01": late.ReceivedAt, "lathe-02": other.ReceivedAt} {
		e, err := f.store.Get(ctx, id)
		if err != nil || !e.LastSeenAt.Equal(want) {
			t.Errorf("%s: %+v, %v; want LastSeenAt %v", id, e, err, want)
		}
	}

	// A straggler received earlier than what is known does not move LastSeenAt back.
	f.handle(t, s.reading(t, start.Add(time.Second), "press-01", sensor.Pressure, 2))
	if e, _ := f.store.Get(ctx, "press-01"); !e.LastSeenAt.Equal(late.ReceivedAt) {
		t.Errorf("LastSeenAt moved back to %v", e.LastSeenAt)
	}
}

func TestProcessReadingsRedelivery(t *testing.T) {
	f := newProcess()
	var s seq
	normal := s.normal(t, start, "press-01", sensor.Temperature, 40)
	f.handle(t, normal...)
	spike := s.reading(t, start.Add(time.Minute), "press-01", sensor.Temperature, 100)
	event := append([]sensor.Reading{spike}, s.normal(t, start.Add(61*time.Second), "press-01", sensor.Temperature, 3)...)
	first := f.handle(t, event...)
	if first.Stored != 4 || len(first.Anomalies) != 1 {
		t.Fatalf("first delivery: %+v, want 4 stored, 1 anomaly", first)
	}

	for i := range 3 {
		again := f.handle(t, event...)
		if again.Stored != 0 || again.Skipped != 4 || len(again.Anomalies) != 0 {
			t.Errorf("redelivery %d: %+v, want nothing stored, 4 skipped", i+1, again)
		}
	}
	// A redelivery after a restart is skipped too.
	f.restart()
	if again := f.handle(t, event...); again.Stored != 0 || len(again.Anomalies) != 0 {
		t.Errorf("redelivery after restart: %+v", again)
	}
	if got := len(f.stored(t, "press-01")); got != 44 {
		t.Errorf("stored %d readings, want 44", got)
	}
	if got := f.anomalies(t); len(got) != 1 {
		t.Errorf("stored anomalies = %+v, want 1", got)
	}
	// The skipped readings did not enter the window twice: the next verdict's window is
	// the 44 stored values.
	next := f.handle(t, s.reading(t, start.Add(2*time.Minute), "press-01", sensor.Temperature, 1000))
	if len(next.Anomalies) != 1 || next.Anomalies[0].WindowSize != 44 {
		t.Errorf("next verdict: %+v, want an anomaly over 44 values", next.Anomalies)
	}
}

func TestProcessReadingsDuplicatesWithinEvent(t *testing.T) {
	f := newProcess()
	var s seq
	r := s.reading(t, start, "press-01", sensor.Temperature, 70)
	res := f.handle(t, r, r, r)
	if res.Stored != 1 || res.Skipped != 2 {
		t.Errorf("result = %+v, want 1 stored, 2 skipped", res)
	}
	if got := len(f.stored(t, "press-01")); got != 1 {
		t.Errorf("stored %d readings, want 1", got)
	}
}

// TestProcessReadingsRestartWarmsWindow: a fresh handler over the same store judges the
// first reading after a restart against the stored history: no blind spot.
func TestProcessReadingsRestartWarmsWindow(t *testing.T) {
	tests := []struct {
		name       string
		history    int
		wantWindow int
	}{
		{"40_stored", 40, 40},
		{"30_stored_is_enough", 30, 30},
		{"150_stored_keeps_latest_100", 150, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newProcess()
			var s seq
			// Old, wild values that a window of 100 must no longer hold.
			var rs []sensor.Reading
			for i := range tt.history - min(tt.history, 100) {
				rs = append(rs, s.reading(t, start.Add(time.Duration(i)*time.Second), "press-01", sensor.Temperature, 5000))
			}
			rs = append(rs, s.normal(t, start.Add(10*time.Minute), "press-01", sensor.Temperature, min(tt.history, 100))...)
			f.handle(t, rs...)

			f.restart()
			spike := s.reading(t, start.Add(time.Hour), "press-01", sensor.Temperature, 100)
			res := f.handle(t, spike)
			if len(res.Anomalies) != 1 {
				t.Fatalf("spike right after restart not caught: %+v", res)
			}
			a := res.Anomalies[0]
			if a.WindowSize != tt.wantWindow || a.Mean != 70 || math.Abs(a.StdDev-sdOf(tt.wantWindow)) > 1e-12 {
				t.Errorf("evidence window %d mean %v sd %v; want %d, 70, %v", a.WindowSize, a.Mean, a.StdDev,
					tt.wantWindow, sdOf(tt.wantWindow))
			}
		})
	}
}

// TestProcessReadingsRestartMatchesUninterrupted: judging a stream with restarts in between
// gives the verdicts of judging it in one go.
func TestProcessReadingsRestartMatchesUninterrupted(t *testing.T) {
	steady, restarted := newProcess(), newProcess()
	var s seq
	var events [][]sensor.Reading
	for e := range 20 {
		var ev []sensor.Reading
		for i := range 15 {
			at := start.Add(time.Duration(e*15+i) * time.Second)
			v := 70 + math.Sin(float64(e*15+i))
			if (e*15+i)%37 == 36 {
				v += 20
			}
			typ := sensor.Types[i%2]
			ev = append(ev, s.reading(t, at, "press-01", typ, v))
		}
		events = append(events, ev)
	}
	for i, ev := range events {
		want := steady.handle(t, ev...)
		if i%3 == 0 {
			restarted.restart()
		}
		got := restarted.handle(t, ev...)
		if !closeVerdicts(got.Anomalies, want.Anomalies) {
			t.Fatalf("event %d: with restarts %+v\nwithout %+v", i, got.Anomalies, want.Anomalies)
		}
	}
	if n := len(steady.anomalies(t)); n == 0 {
		t.Fatal("the stream raised no anomaly: the comparison proves nothing")
	}
}

// closeVerdicts compares anomalies like sameVerdicts, but lets the statistics differ by the
// rounding of a window rebuilt from storage rather than grown value by value.
func closeVerdicts(a, b []anomaly.Anomaly) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		for _, p := range [][2]*float64{{&x.ZScore, &y.ZScore}, {&x.Mean, &y.Mean}, {&x.StdDev, &y.StdDev}} {
			if math.Abs(*p[0]-*p[1]) > 1e-9*math.Max(1, math.Abs(*p[1])) {
				return false
			}
			*p[0] = *p[1]
		}
		if !sameVerdicts([]anomaly.Anomaly{x}, []anomaly.Anomaly{y}) {
			return false
		}
	}
	return true
}

// sameVerdicts compares anomalies by their verdicts, ignoring generated ids.
func sameVerdicts(a, b []anomaly.Anomaly) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.ID, y.ID = "", ""
		if x != y {
			return false
		}
	}
	return true
}

// TestProcessReadingsFailedWriteStoresNothing covers a failing store: nothing of the event is
// stored, and once the store recovers the retried event is judged as if nothing had failed.
func TestProcessReadingsFailedWriteStoresNothing(t *testing.T) {
	tests := []struct {
		name string
		fail func(*processFixture)
		heal func(*processFixture)
	}{
		{"store_down_everywhere",
			func(f *processFixture) { f.store.SetErr(errStorageDown) },
			func(f *processFixture) { f.store.SetErr(nil) }},
		{"write_fails_after_judging",
			func(f *processFixture) { f.store.failWrite.Store(true) },
			func(f *processFixture) { f.store.failWrite.Store(false) }},
		{"window_load_fails",
			func(f *processFixture) { f.store.failRecent.Store(true) },
			func(f *processFixture) { f.store.failRecent.Store(false) }},
		{"session_load_fails",
			func(f *processFixture) { f.store.failLatestSession.Store(true) },
			func(f *processFixture) { f.store.failLatestSession.Store(false) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, twin := newProcess(), newProcess()
			var s seq
			history := append(s.normal(t, start, "press-01", sensor.Temperature, 40),
				s.normal(t, start, "press-01", sensor.Vibration, 40)...)
			f.handle(t, history...)
			twin.handle(t, history...)
			// Restart so that the failing event is the first to need windows and sessions.
			f.restart()
			twin.restart()
			pre := s.reading(t, start.Add(time.Minute), "press-01", sensor.Temperature, 70.5)
			f.handle(t, pre)
			twin.handle(t, pre)

			// The event advances press-01/temperature's window first, then needs press-01's
			// vibration window, and a new machine's.
			at := start.Add(70 * time.Second)
			event := []sensor.Reading{
				s.reading(t, at, "press-01", sensor.Temperature, 69),
				s.reading(t, at, "press-01", sensor.Temperature, 100),
				s.reading(t, at, "press-01", sensor.Vibration, 71),
				s.reading(t, at, "press-01", sensor.Vibration, 10),
				s.reading(t, at, "lathe-02", sensor.Voltage, 400),
			}
			tt.fail(f)
			_, err := f.handler.Handle(context.Background(), ports.ReadingsReceived{Readings: event})
			if !errors.Is(err, errStorageDown) || !errors.Is(err, ports.ErrUnavailable) {
				t.Fatalf("Handle = %v, want the storage error wrapped", err)
			}
			tt.heal(f)
			if got := len(f.stored(t, "press-01")); got != 81 {
				t.Errorf("stored %d readings of press-01 after the failure, want 81", got)
			}
			if _, err := f.store.Get(context.Background(), "lathe-02"); !errors.Is(err, ports.ErrNotFound) {
				t.Errorf("failed event registered lathe-02: %v", err)
			}
			if got := f.anomalies(t); len(got) != 0 {
				t.Errorf("failed event stored anomalies %+v", got)
			}

			got := f.handle(t, event...)
			want := twin.handle(t, event...)
			if got.Stored != 5 || len(want.Anomalies) != 2 {
				t.Fatalf("retry stored %d, twin found %d anomalies; want 5 and 2", got.Stored, len(want.Anomalies))
			}
			if !sameVerdicts(got.Anomalies, want.Anomalies) {
				t.Errorf("retried verdicts %+v\nwant %+v", got.Anomalies, want.Anomalies)
			}
			gotSess, _ := f.store.Sessions(context.Background(), "", start.Add(-time.Hour), start.Add(time.Hour))
			wantSess, _ := twin.store.Sessions(context.Background(), "", start.Add(-time.Hour), start.Add(time.Hour))
			if fmt.Sprint(gotSess) != fmt.Sprint(wantSess) {
				t.Errorf("sessions after retry %v, want %v", gotSess, wantSess)
			}
		})
	}
}

// TestProcessReadingsSessions: receipts within 30 s of each other extend one online session,
// a longer silence opens a new one, whether the receipts come in one event, in several, or
// across a restart.
func TestProcessReadingsSessions(t *testing.T) {
	sec := func(n int) time.Time { return start.Add(time.Duration(n) * time.Second) }
	type span struct{ start, end int }
	tests := []struct {
		name   string
		events [][]int // receipt times, in seconds from start, per event
		// restartBefore restarts the handler before the event of that index (-1: never).
		restartBefore int
		want          []span
	}{
		{"one_receipt", [][]int{{0}}, -1, []span{{0, 0}}},
		{"within_30s_one_event", [][]int{{0, 10, 40}}, -1, []span{{0, 40}}},
		{"exactly_30s_gap_extends", [][]int{{0}, {30}, {60}}, -1, []span{{0, 60}}},
		{"31s_gap_opens_new", [][]int{{0}, {31}}, -1, []span{{0, 0}, {31, 31}}},
		{"31s_gap_inside_one_event", [][]int{{0, 20, 51, 60}}, -1, []span{{0, 20}, {51, 60}}},
		{"several_sessions", [][]int{{0, 25}, {100, 110}, {200}}, -1, []span{{0, 25}, {100, 110}, {200, 200}}},
		{"extends_across_restart", [][]int{{0, 20}, {45}}, 1, []span{{0, 45}}},
		{"new_after_restart", [][]int{{0, 20}, {51}}, 1, []span{{0, 20}, {51, 51}}},
		{"late_receipt_within_session", [][]int{{0, 20, 40}, {10}}, -1, []span{{0, 40}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newProcess()
			var s seq
			for i, ev := range tt.events {
				if i == tt.restartBefore {
					f.restart()
				}
				var rs []sensor.Reading
				for _, at := range ev {
					rs = append(rs, s.reading(t, sec(at), "press-01", sensor.Temperature, 70))
				}
				f.handle(t, rs...)
			}
			got, err := f.store.Sessions(context.Background(), "press-01", start.Add(-time.Hour), start.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			var spans []span
			for _, x := range got {
				spans = append(spans, span{int(x.Start.Sub(start) / time.Second), int(x.End.Sub(start) / time.Second)})
			}
			if fmt.Sprint(spans) != fmt.Sprint(tt.want) {
				t.Errorf("sessions = %v, want %v", spans, tt.want)
			}
		})
	}
}

func TestProcessReadingsSessionsPerEquipment(t *testing.T) {
	f := newProcess()
	var s seq
	f.handle(t, s.reading(t, start, "press-01", sensor.Temperature, 70),
		s.reading(t, start.Add(20*time.Second), "lathe-02", sensor.Temperature, 70))
	f.handle(t, s.reading(t, start.Add(45*time.Second), "lathe-02", sensor.Temperature, 70))
	got, err := f.store.Sessions(context.Background(), "", start.Add(-time.Hour), start.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []equipment.Session{
		{EquipmentID: "lathe-02", Start: start.Add(20 * time.Second), End: start.Add(45 * time.Second)},
		{EquipmentID: "press-01", Start: start, End: start},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sessions = %v, want %v", got, want)
	}
}

// nilMapStore answers StoredRefs with a nil map when nothing is stored, as an adapter may.
type nilMapStore struct{ *memory.Store }

func (s nilMapStore) StoredRefs(ctx context.Context, refs []ports.ReadingRef) (map[ports.ReadingRef]bool, error) {
	m, err := s.Store.StoredRefs(ctx, refs)
	if len(m) == 0 {
		return nil, err
	}
	return m, err
}

func TestProcessReadingsNilStoredRefs(t *testing.T) {
	st := nilMapStore{memory.NewStore()}
	h := command.NewProcessReadingsHandler(st, st, st, memory.NewClock(start), &memory.IDs{},
		anomaly.DefaultConfig, equipment.DefaultRules)
	var s seq
	r := s.reading(t, start, "press-01", sensor.Temperature, 70)
	res, err := h.Handle(context.Background(), ports.ReadingsReceived{Readings: []sensor.Reading{r, r}})
	if err != nil || res.Stored != 1 || res.Skipped != 1 {
		t.Errorf("Handle = %+v, %v; want 1 stored, 1 skipped", res, err)
	}
}

func TestProcessReadingsEmptyEvent(t *testing.T) {
	f := newProcess()
	res := f.handle(t)
	if res.Stored != 0 || res.Skipped != 0 || len(res.Anomalies) != 0 {
		t.Errorf("empty event: %+v", res)
	}
}
