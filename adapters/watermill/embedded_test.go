package watermill_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/adapters/watermill"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

type pipeline struct {
	store *memory.Store
	queue *watermill.Embedded
	reg   *prometheus.Registry
}

func newPipeline(t *testing.T, start bool) pipeline {
	t.Helper()
	store := memory.NewStore()
	h := command.NewProcessReadingsHandler(store, store, store, memory.NewClock(t0), &memory.IDs{},
		anomaly.DefaultConfig, equipment.DefaultRules)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	p, err := watermill.NewProcessor(h, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	q, err := watermill.NewEmbedded(p, log)
	if err != nil {
		t.Fatal(err)
	}
	if start {
		if err := q.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Stop(context.Background()) })
	}
	return pipeline{store: store, queue: q, reg: reg}
}

func event(equipmentID string, values ...float64) ports.ReadingsReceived {
	e := ports.ReadingsReceived{}
	for i, v := range values {
		r, err := sensor.NewReading(fmt.Sprintf("%s-%d-%v", equipmentID, i, v), equipmentID, sensor.Temperature, "", v, "", t0, t0)
		if err != nil {
			panic(err)
		}
		e.Readings = append(e.Readings, r)
	}
	return e
}

func stored(t *testing.T, s *memory.Store, equipmentID string) []float64 {
	t.Helper()
	v, err := s.RecentValues(context.Background(), sensor.Key{EquipmentID: equipmentID, Type: sensor.Temperature}, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Publish returns once the readings are stored: the caller may answer 202.
func TestPublishReturnsOnceStored(t *testing.T) {
	p := newPipeline(t, true)
	if err := p.queue.PublishReadings(context.Background(), event("press-01", 1, 2, 3)); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, p.store, "press-01"); len(got) != 3 {
		t.Fatalf("stored %v right after publish, want 3 readings", got)
	}
	want := "# HELP plm_readings_processed_total Readings judged and stored.\n# TYPE plm_readings_processed_total counter\nplm_readings_processed_total 3\n"
	if err := testutil.GatherAndCompare(p.reg, strings.NewReader(want), "plm_readings_processed_total"); err != nil {
		t.Error(err)
	}
}

// Concurrent publishers: every message is stored once, and each publisher's messages are
// processed in the order it published them.
func TestConcurrentPublishersKeepEachOrder(t *testing.T) {
	p := newPipeline(t, true)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if err := p.queue.PublishReadings(context.Background(), event(fmt.Sprintf("eq-%d", w), float64(i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for w := range 4 {
		got := stored(t, p.store, fmt.Sprintf("eq-%d", w))
		if len(got) != 50 {
			t.Fatalf("eq-%d: %d readings stored, want 50", w, len(got))
		}
		for i, v := range got {
			if v != float64(i) {
				t.Fatalf("eq-%d: reading %d is %v: out of order", w, i, v)
			}
		}
	}
}

// A queue that is not consuming refuses: nothing is reported stored that is not.
func TestPublishBeforeStartOrAfterStopIsUnavailable(t *testing.T) {
	p := newPipeline(t, false)
	err := p.queue.PublishReadings(context.Background(), event("press-01", 1))
	if !errors.Is(err, ports.ErrUnavailable) {
		t.Fatalf("before start: %v, want ErrUnavailable", err)
	}
	if err := p.queue.Ping(context.Background()); !errors.Is(err, ports.ErrUnavailable) {
		t.Fatalf("ping before start: %v", err)
	}
	if err := p.queue.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.queue.Ping(context.Background()); err != nil {
		t.Fatalf("ping while running: %v", err)
	}
	if err := p.queue.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	err = p.queue.PublishReadings(context.Background(), event("press-01", 2))
	if !errors.Is(err, ports.ErrUnavailable) {
		t.Fatalf("after stop: %v, want ErrUnavailable", err)
	}
	if got := stored(t, p.store, "press-01"); len(got) != 0 {
		t.Fatalf("stored %v though every publish was refused", got)
	}
}

// When storage keeps failing, the publisher hears of it after the retries and nothing is
// stored; once storage is back the same readings go through.
func TestStorageFailureReachesThePublisher(t *testing.T) {
	p := newPipeline(t, true)
	boom := errors.New("disk on fire")
	p.store.SetErr(boom)
	err := p.queue.PublishReadings(context.Background(), event("press-01", 1, 2))
	if !errors.Is(err, ports.ErrUnavailable) || !errors.Is(err, boom) {
		t.Fatalf("got %v, want ErrUnavailable wrapping the storage error", err)
	}
	p.store.SetErr(nil)
	if got := stored(t, p.store, "press-01"); len(got) != 0 {
		t.Fatalf("stored %v after a failure", got)
	}
	if err := p.queue.PublishReadings(context.Background(), event("press-01", 1, 2)); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, p.store, "press-01"); len(got) != 2 {
		t.Fatalf("after recovery stored %v, want 2 readings", got)
	}
}

// The caller going away does not cut the processing short.
func TestCancelledCallerStillGetsItsReadingsStored(t *testing.T) {
	p := newPipeline(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.queue.PublishReadings(ctx, event("press-01", 7)); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, p.store, "press-01"); len(got) != 1 {
		t.Fatalf("stored %v, want the reading", got)
	}
}

// Stop while many callers publish: every publish that returned nil is stored, every other
// one was told ErrUnavailable, and none hangs.
func TestStopDrainsWhatWasAccepted(t *testing.T) {
	p := newPipeline(t, true)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := map[string]int{}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("eq-%d", w)
			for i := range 200 {
				err := p.queue.PublishReadings(context.Background(), event(id, float64(i)))
				switch {
				case err == nil:
					mu.Lock()
					accepted[id]++
					mu.Unlock()
				case errors.Is(err, ports.ErrUnavailable):
					return
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := p.queue.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	total := 0
	for w := range 8 {
		id := fmt.Sprintf("eq-%d", w)
		if got := len(stored(t, p.store, id)); got != accepted[id] {
			t.Errorf("%s: %d accepted, %d stored", id, accepted[id], got)
		}
		total += accepted[id]
	}
	if total == 0 {
		t.Fatal("nothing was accepted before Stop: the test proves nothing")
	}
}
