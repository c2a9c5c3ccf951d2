package redisstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// gatedWriter holds its first write until gate is closed, and records every batch given.
type gatedWriter struct {
	gate    chan struct{}
	started chan struct{}
	once    sync.Once
	fail    func(ports.ProcessedBatch) error

	mu      sync.Mutex
	batches []ports.ProcessedBatch
}

func newGatedWriter(fail func(ports.ProcessedBatch) error) *gatedWriter {
	return &gatedWriter{gate: make(chan struct{}), started: make(chan struct{}), fail: fail}
}

func (g *gatedWriter) WriteBatch(_ context.Context, b ports.ProcessedBatch) error {
	g.once.Do(func() { close(g.started); <-g.gate })
	g.mu.Lock()
	g.batches = append(g.batches, b)
	g.mu.Unlock()
	if g.fail != nil {
		return g.fail(b)
	}
	return nil
}

func (g *gatedWriter) calls() []ports.ProcessedBatch {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]ports.ProcessedBatch(nil), g.batches...)
}

func batchOf(t *testing.T, partition int) ports.ProcessedBatch {
	t.Helper()
	eq := fmt.Sprintf("press-%02d", partition)
	r, err := sensor.NewReading(eq+"-r", eq, sensor.Temperature, "", 1, "", time.Unix(1e9, 0), time.Unix(1e9, 0))
	if err != nil {
		t.Fatal(err)
	}
	return ports.ProcessedBatch{Readings: []ports.StoredReading{{Reading: r}}, Fences: []ports.Fence{{Partition: partition, Epoch: 1}},
		Alarms: []alarm.Alarm{{ID: fmt.Sprintf("alarm-%d", partition)}},
		Events: []event.Event{{ID: fmt.Sprintf("event-%d", partition), Type: event.AlarmOpened}}}
}

// writeWhileBusy holds a first write in the writer, makes n more concurrently, lets the
// first go once they are all under way, and returns the errors of the n.
func writeWhileBusy(t *testing.T, g *groupWriter, w *gatedWriter, n int) []error {
	t.Helper()
	first := make(chan error, 1)
	go func() { first <- g.WriteBatch(context.Background(), batchOf(t, 100)) }()
	<-w.started
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = g.WriteBatch(context.Background(), batchOf(t, i)) }()
	}
	time.Sleep(50 * time.Millisecond) // let the n reach the writer's queue (at worst, fewer share a group)
	close(w.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	return errs
}

// Batches that wait while a commit runs go together in the next one.
func TestGroupWriterCommitsWaitingBatchesTogether(t *testing.T) {
	w := newGatedWriter(nil)
	g := newGroupWriter(w)
	defer g.Close()
	for i, err := range writeWhileBusy(t, g, w, 10) {
		if err != nil {
			t.Errorf("batch %d: %v", i, err)
		}
	}
	calls := w.calls()
	readings, fences, alarms, events := 0, 0, 0, 0
	for _, b := range calls {
		readings += len(b.Readings)
		fences += len(b.Fences)
		alarms += len(b.Alarms)
		events += len(b.Events)
	}
	if readings != 11 || fences != 11 || alarms != 11 || events != 11 {
		t.Errorf("%d readings, %d fences, %d alarms and %d events written, want 11 each", readings, fences, alarms, events)
	}
	if len(calls) > 3 {
		t.Errorf("11 batches took %d commits: the waiting ones were not grouped", len(calls))
	}
}

// When a group fails, each of its batches is written again on its own: a fenced batch
// fails alone, and the others are stored.
func TestGroupWriterFailsOnlyTheFailingBatch(t *testing.T) {
	w := newGatedWriter(func(b ports.ProcessedBatch) error {
		for _, f := range b.Fences {
			if f.Partition == 3 {
				return fmt.Errorf("partition 3: %w", ports.ErrFenced)
			}
		}
		return nil
	})
	g := newGroupWriter(w)
	defer g.Close()
	for i, err := range writeWhileBusy(t, g, w, 6) {
		if fenced := errors.Is(err, ports.ErrFenced); fenced != (i == 3) {
			t.Errorf("batch of partition %d: %v", i, err)
		}
	}
}

func TestGroupWriterRefusesAfterClose(t *testing.T) {
	g := newGroupWriter(newGatedWriter(nil))
	g.Close()
	if err := g.WriteBatch(context.Background(), ports.ProcessedBatch{}); !errors.Is(err, errWriterStopped) {
		t.Errorf("after Close: %v, want errWriterStopped", err)
	}
}

// heldWriter holds every write until gate is closed, and counts the writes under way.
type heldWriter struct {
	gate    chan struct{}
	running atomic.Int32
}

func (h *heldWriter) WriteBatch(context.Context, ports.ProcessedBatch) error {
	h.running.Add(1)
	<-h.gate
	return nil
}

func waitRunning(t *testing.T, h *heldWriter, n int32) bool {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if h.running.Load() == n {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// Under a light load one commit runs at a time; under a backlog, a second runs beside it.
func TestGroupWriterCommitsInParallelOnlyUnderABacklog(t *testing.T) {
	h := &heldWriter{gate: make(chan struct{})}
	g := newGroupWriter(h)
	defer g.Close()
	errs := make(chan error, 3)
	write := func(b ports.ProcessedBatch) { go func() { errs <- g.WriteBatch(context.Background(), b) }() }
	write(batchOf(t, 0))
	if !waitRunning(t, h, 1) {
		t.Fatal("the first commit did not start")
	}
	write(batchOf(t, 1))
	if waitRunning(t, h, 2) {
		t.Fatal("a second commit started for one small batch")
	}
	big := ports.ProcessedBatch{}
	for range ParallelGroupReadings {
		big.Readings = append(big.Readings, batchOf(t, 2).Readings...)
	}
	write(big)
	if !waitRunning(t, h, 2) {
		t.Fatal("no second commit under a backlog")
	}
	close(h.gate)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// Stopping commits what was queued: no caller is left without an answer.
func TestGroupWriterCommitsWhatIsQueuedWhenClosed(t *testing.T) {
	w := newGatedWriter(nil)
	g := newGroupWriter(w)
	first := make(chan error, 1)
	go func() { first <- g.WriteBatch(context.Background(), batchOf(t, 0)) }()
	<-w.started
	queued := make(chan error, 1)
	go func() { queued <- g.WriteBatch(context.Background(), batchOf(t, 1)) }()
	time.Sleep(50 * time.Millisecond) // let it reach the queue
	closed := make(chan struct{})
	go func() { g.Close(); close(closed) }()
	close(w.gate)
	<-closed
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-queued; err != nil {
		t.Fatalf("a queued batch at Close: %v", err)
	}
	if n := len(w.calls()); n != 2 {
		t.Fatalf("%d commits, want 2", n)
	}
}

// Reads of large entries take fewer of them: about MaxBatchBytes at a time.
func TestReadCountBoundsTheBytesOfARead(t *testing.T) {
	entries := func(n, size int) []redis.XMessage {
		out := make([]redis.XMessage, n)
		for i := range out {
			out[i] = redis.XMessage{Values: map[string]any{"payload": strings.Repeat("x", size)}}
		}
		return out
	}
	for _, c := range []struct {
		entries []redis.XMessage
		want    int
	}{
		{nil, 100},
		{entries(100, 200), 100},
		{entries(10, 45_000), MaxBatchBytes / 45_007},
		{entries(3, 10*MaxBatchBytes), 1},
	} {
		if got := readCount(c.entries, 100); got != c.want {
			t.Errorf("after %d entries: read %d, want %d", len(c.entries), got, c.want)
		}
	}
}
