package redisstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

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
	r, err := sensor.NewReading(eq+"-r", eq, sensor.Temperature, 1, "", time.Unix(1e9, 0), time.Unix(1e9, 0))
	if err != nil {
		t.Fatal(err)
	}
	return ports.ProcessedBatch{Readings: []ports.StoredReading{{Reading: r}}, Fences: []ports.Fence{{Partition: partition, Epoch: 1}}}
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
	readings, fences := 0, 0
	for _, b := range calls {
		readings += len(b.Readings)
		fences += len(b.Fences)
	}
	if readings != 11 || fences != 11 {
		t.Errorf("%d readings and %d fences written, want 11 each", readings, fences)
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
