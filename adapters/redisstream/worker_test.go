package redisstream_test

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

	wmredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/production-line-monitor/plm/adapters/memory"
	redisadapter "github.com/production-line-monitor/plm/adapters/redis"
	"github.com/production-line-monitor/plm/adapters/redisstream"
	plmwatermill "github.com/production-line-monitor/plm/adapters/watermill"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
	"github.com/production-line-monitor/plm/tests/logbuf"
	"github.com/production-line-monitor/plm/tests/redistest"
)

// flakyWriter fails the batches that fail says, and counts the attempts at each equipment.
type flakyWriter struct {
	next ports.BatchWriter
	fail func(b ports.ProcessedBatch, attempt int) error

	mu       sync.Mutex
	attempts map[string]int
}

// WriteBatch counts an attempt at an equipment when the batch holds its readings only.
func (f *flakyWriter) WriteBatch(ctx context.Context, b ports.ProcessedBatch) error {
	f.mu.Lock()
	eq := ""
	for i, r := range b.Readings {
		if i == 0 {
			eq = r.EquipmentID
		} else if r.EquipmentID != eq {
			eq = "(several)"
		}
	}
	f.attempts[eq]++
	n := f.attempts[eq]
	f.mu.Unlock()
	if err := f.fail(b, n); err != nil {
		return err
	}
	return f.next.WriteBatch(ctx, b)
}

func (f *flakyWriter) tries(eq string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[eq]
}

type workerEnv struct {
	client *redis.Client
	names  redisstream.Names
	store  *memory.Store
	writer *flakyWriter
	pub    *redisstream.Publisher
	log    *logbuf.Buffer
	// concurrency and wrap, when set, are the workers' Concurrency and a wrapper of the
	// writer each partition's use case is given.
	concurrency int
	wrap        func(ports.BatchWriter) ports.BatchWriter
}

func newWorkerEnv(t *testing.T, partitions int, fail func(ports.ProcessedBatch, int) error) *workerEnv {
	t.Helper()
	c, names := setup(t, partitions)
	store := memory.NewStore()
	if fail == nil {
		fail = func(ports.ProcessedBatch, int) error { return nil }
	}
	return &workerEnv{
		client: c, names: names, store: store, pub: redisstream.NewPublisher(c, names), log: &logbuf.Buffer{},
		writer: &flakyWriter{next: store, fail: fail, attempts: map[string]int{}},
	}
}

// startWorker runs a worker with the given id until the test ends.
func (e *workerEnv) startWorker(t *testing.T, id string, maxRetries int) *redisstream.Worker {
	t.Helper()
	rc, err := redisadapter.Open(redisadapter.Config{URL: redistest.URL(), Prefix: e.names.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	log := slog.New(slog.NewTextHandler(io.MultiWriter(e.log), &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := memory.NewClock(t0.Add(time.Hour))
	newHandler := func(w ports.BatchWriter) *command.ProcessReadingsHandler {
		if e.wrap != nil {
			w = e.wrap(w)
		}
		return command.NewProcessReadingsHandler(e.store, e.store, w, clock, &memory.IDs{}, anomaly.DefaultConfig, equipment.DefaultRules)
	}
	proc, err := plmwatermill.NewProcessor(newHandler(e.writer), prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	w, err := redisstream.NewWorker(redisstream.WorkerConfig{
		Names: e.names, ID: id, LeaseTTL: time.Second, MaxRetries: maxRetries, RetryDelay: 50 * time.Millisecond,
		Concurrency: e.concurrency,
	}, redisstream.WorkerDeps{
		Client: e.client, Leases: redisadapter.NewLeases(rc), Fencer: e.store, Writer: e.writer,
		Live: memory.NewLiveStore(), NewHandler: newHandler, Processor: proc, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Stop(context.Background()); err != nil {
			t.Errorf("stop worker: %v", err)
		}
	})
	return w
}

func (e *workerEnv) publish(t *testing.T, rs ...sensor.Reading) {
	t.Helper()
	if err := e.pub.PublishReadings(context.Background(), ports.ReadingsReceived{Readings: rs}); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing t after 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *workerEnv) storedValues(t *testing.T, eq string) []float64 {
	t.Helper()
	vs, err := e.store.RecentValues(context.Background(), sensor.Key{EquipmentID: eq, Type: sensor.Temperature}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// A message that fails for no known reason is retried MaxRetries times, then goes to the
// dead-letter stream; the messages behind it in its partition are handled.
func TestIntegrationWorkerPoisonAfterRetryBudget(t *testing.T) {
	errBroken := errors.New("storage refuses this batch")
	e := newWorkerEnv(t, 1, func(b ports.ProcessedBatch, _ int) error {
		for _, r := range b.Readings {
			if r.EquipmentID == "bad-01" {
				return errBroken
			}
		}
		return nil
	})
	e.publish(t, reading(t, "r-1", "bad-01", 1))
	e.publish(t, reading(t, "r-2", "good-01", 2))
	e.startWorker(t, "w1", 2)

	waitFor(t, "the message behind the poison one stored", func() bool { return len(e.storedValues(t, "good-01")) == 1 })
	if n := e.writer.tries("bad-01"); n != 3 {
		t.Errorf("the poison message was tried %d times, want 1 + 2 retries", n)
	}
	dead := readStream(t, e.client, e.names.Poison())
	if len(dead) != 1 || len(dead[0].event.Readings) != 1 || dead[0].event.Readings[0].EquipmentID != "bad-01" {
		t.Fatalf("dead letters %+v, want the message of bad-01", dead)
	}
	entries, err := e.client.XRange(context.Background(), e.names.Poison(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := wmredis.DefaultMarshallerUnmarshaller{}.Unmarshal(entries[0].Values)
	if err != nil {
		t.Fatal(err)
	}
	if reason := msg.Metadata.Get("reason_poisoned"); !strings.Contains(reason, errBroken.Error()) {
		t.Errorf("dead letter's reason %q does not say why", reason)
	}
	if len(e.storedValues(t, "bad-01")) != 0 {
		t.Error("the poison message's readings were stored")
	}
}

// A message that fails for want of a dependency is not poison: it keeps its place, and is
// stored, before the messages behind it, once the dependency is back.
func TestIntegrationWorkerWaitsOutAnOutageInOrder(t *testing.T) {
	e := newWorkerEnv(t, 1, func(_ ports.ProcessedBatch, attempt int) error {
		if attempt <= 6 {
			return ports.ErrUnavailable
		}
		return nil
	})
	e.publish(t, reading(t, "r-1", "press-01", 1))
	e.publish(t, reading(t, "r-2", "press-01", 2))
	e.startWorker(t, "w1", 1)

	waitFor(t, "both stored", func() bool { return len(e.storedValues(t, "press-01")) == 2 })
	if got := e.storedValues(t, "press-01"); got[0] != 1 || got[1] != 2 {
		t.Errorf("stored in the order %v, want [1 2]", got)
	}
	if dead := readStream(t, e.client, e.names.Poison()); len(dead) != 0 {
		t.Errorf("%d messages went to the dead letters during an outage", len(dead))
	}
}

// When another worker advances the partition's epoch (it took the partition over), this
// worker's writes are refused; it lets the partition go, and whoever takes it next handles
// the refused message: nothing is lost.
func TestIntegrationWorkerFencedOut(t *testing.T) {
	e := newWorkerEnv(t, 1, nil)
	w := e.startWorker(t, "w1", 3)
	waitFor(t, "partition taken", func() bool { return len(w.Held()) == 1 })
	e.publish(t, reading(t, "r-1", "press-01", 1))
	waitFor(t, "first stored", func() bool { return len(e.storedValues(t, "press-01")) == 1 })

	if _, err := e.store.AdvanceEpoch(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	e.publish(t, reading(t, "r-2", "press-01", 2))
	waitFor(t, "the refused message stored after the partition was taken again",
		func() bool { return len(e.storedValues(t, "press-01")) == 2 })
	if !strings.Contains(e.log.String(), "fenced out") {
		t.Errorf("the worker did not let the fenced partition go:\n%s", e.log)
	}
	if dead := readStream(t, e.client, e.names.Poison()); len(dead) != 0 {
		t.Errorf("a fenced message went to the dead letters")
	}
}

// Two workers share the partitions, and a worker that stops hands its partitions over at
// once.
func TestIntegrationWorkersSharePartitions(t *testing.T) {
	e := newWorkerEnv(t, 4, nil)
	a := e.startWorker(t, "wa", 3)
	waitFor(t, "a holds every partition", func() bool { return len(a.Held()) == 4 })
	b := e.startWorker(t, "wb", 3)
	waitFor(t, "two each", func() bool { return len(a.Held()) == 2 && len(b.Held()) == 2 })
	if err := b.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a holds every partition again", func() bool { return len(a.Held()) == 4 })
}

// inFlight counts the writes under way through it, and the most at once.
type inFlight struct {
	next ports.BatchWriter
	mu   *sync.Mutex
	now  *int
	most *int
}

func (f inFlight) WriteBatch(ctx context.Context, b ports.ProcessedBatch) error {
	f.mu.Lock()
	*f.now++
	*f.most = max(*f.most, *f.now)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		*f.now--
		f.mu.Unlock()
	}()
	time.Sleep(10 * time.Millisecond) // room for another partition's message to overlap
	return f.next.WriteBatch(ctx, b)
}

// PLM_WORKER_CONCURRENCY bounds how many messages one worker handles at once, whatever the
// number of partitions it holds.
func TestIntegrationWorkerConcurrencyLimit(t *testing.T) {
	for _, tt := range []struct {
		limit    int
		wantMost func(int) bool
	}{
		{1, func(n int) bool { return n == 1 }},
		{0, func(n int) bool { return n > 1 }}, // unbounded: the 4 partitions overlap
	} {
		t.Run(fmt.Sprintf("limit_%d", tt.limit), func(t *testing.T) {
			e := newWorkerEnv(t, 4, nil)
			var mu sync.Mutex
			var now, most int
			e.concurrency = tt.limit
			e.wrap = func(w ports.BatchWriter) ports.BatchWriter { return inFlight{next: w, mu: &mu, now: &now, most: &most} }
			w := e.startWorker(t, "w1", 3)
			waitFor(t, "every partition taken", func() bool { return len(w.Held()) == 4 })
			eqs := equipmentIn(t, e.names, 4)
			for round := range 5 {
				for _, eq := range eqs {
					e.publish(t, reading(t, fmt.Sprintf("r-%d", round), eq, float64(round)))
				}
			}
			waitFor(t, "all stored", func() bool {
				for _, eq := range eqs {
					if len(e.storedValues(t, eq)) != 5 {
						return false
					}
				}
				return true
			})
			mu.Lock()
			defer mu.Unlock()
			if !tt.wantMost(most) {
				t.Errorf("at most %d messages were handled at once with Concurrency %d", most, tt.limit)
			}
		})
	}
}

// Messages waiting in a partition are handled together: one commit for many, in order.
func TestIntegrationWorkerBatchesWaitingMessages(t *testing.T) {
	e := newWorkerEnv(t, 1, nil)
	for i := range 50 {
		e.publish(t, reading(t, fmt.Sprintf("r-%d", i), "press-01", float64(i)))
	}
	e.startWorker(t, "w1", 3)
	waitFor(t, "all stored", func() bool { return len(e.storedValues(t, "press-01")) == 50 })
	for i, v := range e.storedValues(t, "press-01") {
		if v != float64(i) {
			t.Fatalf("stored %v: not in the order queued", e.storedValues(t, "press-01"))
		}
	}
	if n := e.writer.tries("press-01"); n > 5 {
		t.Errorf("50 waiting messages took %d commits", n)
	}
}

// A message that cannot be stored, amid a batch, fails alone: the messages before and
// after it are stored, in order, and only it goes to the dead letters.
func TestIntegrationWorkerPoisonAmidABatch(t *testing.T) {
	e := newWorkerEnv(t, 1, func(b ports.ProcessedBatch, _ int) error {
		for _, r := range b.Readings {
			if r.EquipmentID == "bad-01" {
				return errors.New("storage refuses this reading")
			}
		}
		return nil
	})
	e.publish(t, reading(t, "r-1", "press-01", 1))
	e.publish(t, reading(t, "r-2", "press-01", 2))
	e.publish(t, reading(t, "r-x", "bad-01", 9))
	e.publish(t, reading(t, "r-3", "press-01", 3))
	e.startWorker(t, "w1", 1)
	waitFor(t, "the good ones stored", func() bool { return len(e.storedValues(t, "press-01")) == 3 })
	if got := e.storedValues(t, "press-01"); got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("stored %v, want [1 2 3]", got)
	}
	dead := readStream(t, e.client, e.names.Poison())
	if len(dead) != 1 || len(dead[0].event.Readings) != 1 || dead[0].event.Readings[0].ID != "r-x" {
		t.Errorf("dead letters %+v, want the message of r-x alone", dead)
	}
}
