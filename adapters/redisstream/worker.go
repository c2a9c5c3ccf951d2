package redisstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	wm "github.com/ThreeDotsLabs/watermill"
	wmredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/production-line-monitor/plm/adapters/watermill"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/ports"
)

// Leases is what a worker needs of the lease store (adapters/redis.Leases).
type Leases interface {
	Acquire(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	Renew(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	Release(ctx context.Context, name, owner string) error
	Join(ctx context.Context, group, member string, ttl time.Duration) error
	Leave(ctx context.Context, group, member string) error
	Members(ctx context.Context, group string) ([]string, error)
}

// WorkerConfig tunes a worker.
type WorkerConfig struct {
	Names Names
	// ID names the worker process; unique among the workers of a deployment.
	ID string
	// LeaseTTL is how long a worker's hold on a partition lasts without renewal: after it
	// a worker that died has its partitions, and the messages it left pending, taken over.
	LeaseTTL time.Duration
	// MaxRetries is how often a failing message is retried before it goes to the
	// dead-letter stream.
	MaxRetries int
	// Concurrency bounds how many messages the worker handles at once (0: one per
	// partition it holds).
	Concurrency int
	// RetryDelay is the pause before a message that failed for want of a dependency is
	// tried again (default 1s).
	RetryDelay time.Duration
	// StopTimeout bounds how long stopping a partition waits for its message in hand.
	StopTimeout time.Duration
	// MaxBatch bounds how many queued messages of a partition are handled together
	// (default DefaultMaxBatch).
	MaxBatch int
}

// HandlerFactory builds the processing use case of one partition, writing through w.
type HandlerFactory func(w ports.BatchWriter) *command.ProcessReadingsHandler

// WorkerDeps is what a worker works with.
type WorkerDeps struct {
	Client     redis.UniversalClient
	Leases     Leases
	Fencer     ports.PartitionFencer
	Writer     ports.BatchWriter
	Live       ports.LiveStore // may be nil
	NewHandler HandlerFactory
	Processor  *watermill.Processor
	Notify     func() // called after every commit; may be nil
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Worker consumes the readings queue. The queue's partitions are shared among the live
// workers: each partition is held by one worker at a time, under a lease in Redis, and its
// messages are handled in stream order, those waiting together (see partitionSubscriber),
// by a processing use case (and detector) of its own. So every sensor's readings are judged in the order they were
// queued, whatever the number of workers.
//
// Taking a partition over, a worker first advances the partition's fencing epoch in
// PostgreSQL (from then on, writes of any earlier holder fail), then handles the messages
// the earlier holder left pending, oldest first, and only then new ones. Its detector warms
// each sensor's window from the stored readings, so detection carries on where it stopped.
type Worker struct {
	cfg    WorkerConfig
	deps   WorkerDeps
	client redis.UniversalClient // never closed by the subscribers
	writer *groupWriter
	poison message.Publisher
	wlog   wm.LoggerAdapter
	log    *slog.Logger
	sem    chan struct{}
	held   prometheus.Gauge

	mu    sync.Mutex
	parts map[int]*partition

	cancel context.CancelFunc
	done   chan struct{}
}

// partition is one partition held by this worker.
type partition struct {
	n      int
	router *message.Router
	done   chan struct{} // closed when the router has returned

	// fenced is set once a write was refused because another worker advanced the epoch:
	// the partition handles nothing more until it is taken again.
	fenced atomic.Bool

	mu         sync.Mutex
	validUntil time.Time // the lease is certainly ours until then
}

func (p *partition) valid(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return now.Before(p.validUntil)
}

func (p *partition) extend(until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.validUntil = until
}

const workersGroup = "workers"

// NewWorker builds a worker; Start sets it going.
func NewWorker(cfg WorkerConfig, deps WorkerDeps) (*Worker, error) {
	if cfg.ID == "" || cfg.LeaseTTL <= 0 || cfg.Names.Partitions <= 0 {
		return nil, errors.New("new worker: ID, LeaseTTL and Names.Partitions are required")
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	log := deps.Log.With("component", "worker", "worker_id", cfg.ID)
	wlog := wm.NewSlogLoggerWithLevelMapping(log.With("component", "watermill"),
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	client := unclosable{deps.Client}
	poison, err := wmredis.NewPublisher(wmredis.PublisherConfig{Client: client}, wlog)
	if err != nil {
		return nil, fmt.Errorf("new dead-letter publisher: %w", err)
	}
	w := &Worker{
		cfg: cfg, deps: deps, client: client, poison: poison, wlog: wlog, log: log,
		parts: make(map[int]*partition),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plm_worker_partitions_held", Help: "Partitions of the readings queue this worker holds."}),
	}
	if cfg.Concurrency > 0 {
		w.sem = make(chan struct{}, cfg.Concurrency)
	}
	if deps.Registerer != nil {
		if err := deps.Registerer.Register(w.held); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Start joins the workers and sets the balancing loop going; partitions are taken in the
// background. It fails when Redis does not answer.
func (w *Worker) Start(ctx context.Context) error {
	if err := w.deps.Leases.Join(ctx, workersGroup, w.cfg.ID, w.cfg.LeaseTTL); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	w.writer = newGroupWriter(w.deps.Writer)
	runCtx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go w.loop(runCtx)
	return nil
}

// Stop lets every partition finish the message in hand, gives the partitions up and
// leaves the workers, so that the others take over at once.
func (w *Worker) Stop(ctx context.Context) error {
	if w.cancel == nil {
		return nil
	}
	w.cancel()
	select {
	case <-w.done:
	case <-ctx.Done():
		return fmt.Errorf("stop worker: %w", ctx.Err())
	}
	w.mu.Lock()
	parts := make([]*partition, 0, len(w.parts))
	for _, p := range w.parts {
		parts = append(parts, p)
	}
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.release(ctx, p, "worker stopping")
		}()
	}
	wg.Wait()
	w.writer.Close()
	return w.deps.Leases.Leave(context.WithoutCancel(ctx), workersGroup, w.cfg.ID)
}

// Held lists the partitions this worker holds now.
func (w *Worker) Held() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]int, 0, len(w.parts))
	for n := range w.parts {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

func (w *Worker) loop(ctx context.Context) {
	defer close(w.done)
	tick := time.NewTicker(w.balanceEvery())
	defer tick.Stop()
	for {
		w.balance(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// balanceEvery is how often the worker renews its leases and balances the partitions: a
// third of the lease, so that two renewals may fail before it lapses, and at least every
// second, so that partitions a stopping worker gave up are taken again at once.
func (w *Worker) balanceEvery() time.Duration { return min(w.cfg.LeaseTTL/3, time.Second) }

func leaseName(p int) string { return "readings:" + strconv.Itoa(p) }

// balance renews the leases held, drops the partitions whose lease is lost or whose
// consumer stopped, and takes or gives up partitions so that each live worker holds about
// its share.
func (w *Worker) balance(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.LeaseTTL/3)
	defer cancel()
	ttl := w.cfg.LeaseTTL
	// The lease is surely ours until ttl after the renewal was sent, less a margin for
	// clock drift and for a read in flight: the next holder cannot have it before then.
	margin := ttl / 5

	for _, p := range w.snapshot() {
		select {
		case <-p.done:
			w.release(ctx, p, "consumer stopped")
			continue
		default:
		}
		if p.fenced.Load() {
			w.release(ctx, p, "fenced out by a later epoch")
			continue
		}
		sent := time.Now()
		ok, err := w.deps.Leases.Renew(ctx, leaseName(p.n), w.cfg.ID, ttl)
		switch {
		case err == nil && ok:
			p.extend(sent.Add(ttl - margin))
		case err == nil:
			w.drop(p, "lease lost")
		case !p.valid(time.Now()):
			w.drop(p, "lease not renewed in time: "+err.Error())
		}
	}

	if err := w.deps.Leases.Join(ctx, workersGroup, w.cfg.ID, ttl); err != nil {
		w.log.Warn("join workers", "error", err)
		return
	}
	members, err := w.deps.Leases.Members(ctx, workersGroup)
	if err != nil || len(members) == 0 {
		w.log.Warn("list workers", "error", err)
		return
	}
	total := w.cfg.Names.Partitions
	share := (total + len(members) - 1) / len(members)
	rank := sort.SearchStrings(members, w.cfg.ID) % len(members)

	held := w.snapshot()
	for i := len(held) - 1; i >= share; i-- {
		w.release(ctx, held[i], "rebalancing")
	}
	// Each worker starts looking at its own slice of the partitions, so that workers
	// joining together do not all contend for the same ones.
	for i := 0; i < total && len(w.snapshot()) < share; i++ {
		n := (rank*share + i) % total
		if w.holds(n) {
			continue
		}
		sent := time.Now()
		ok, err := w.deps.Leases.Acquire(ctx, leaseName(n), w.cfg.ID, ttl)
		if err != nil {
			w.log.Warn("acquire partition", "partition", n, "error", err)
			return
		}
		if !ok {
			continue
		}
		if err := w.take(ctx, n, sent.Add(ttl-margin)); err != nil {
			w.log.Warn("take partition", "partition", n, "error", err)
			_ = w.deps.Leases.Release(context.WithoutCancel(ctx), leaseName(n), w.cfg.ID)
		}
	}
}

// snapshot returns the partitions held, by number.
func (w *Worker) snapshot() []*partition {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*partition, 0, len(w.parts))
	for _, p := range w.parts {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n })
	return out
}

func (w *Worker) holds(n int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.parts[n]
	return ok
}

// take starts consuming partition n, whose lease this worker has just acquired.
func (w *Worker) take(ctx context.Context, n int, validUntil time.Time) error {
	epoch, err := w.deps.Fencer.AdvanceEpoch(ctx, n)
	if err != nil {
		return fmt.Errorf("advance epoch: %w", err)
	}
	stream := w.cfg.Names.Readings(n)
	takeover, err := w.lastDelivered(ctx, stream)
	if err != nil {
		return err
	}
	// The consumer is named after this take: messages that an earlier take (of this worker
	// too) left pending are claimed like any other holder's.
	self := fmt.Sprintf("%s/%d/%d", w.cfg.ID, n, epoch)
	sub := newPartitionSubscriber(w.client, self, takeover, w.cfg.LeaseTTL, w.cfg.MaxBatch, w.cfg.RetryDelay, w.log)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: w.cfg.StopTimeout}, w.wlog)
	if err != nil {
		return fmt.Errorf("new router: %w", err)
	}
	p := &partition{n: n, router: router, done: make(chan struct{}), validUntil: validUntil}
	poison, err := middleware.PoisonQueueWithFilter(w.poison, w.cfg.Names.Poison(), watermill.Poisonous)
	if err != nil {
		return fmt.Errorf("dead-letter middleware: %w", err)
	}
	handler := w.deps.NewHandler(partitionWriter{
		next: w.writer, fence: ports.Fence{Partition: n, Epoch: epoch},
		live: w.deps.Live, notify: w.notify, log: w.log,
	})
	router.AddMiddleware(w.guard(p), poison, watermill.Retry(w.cfg.MaxRetries, w.log).Middleware,
		middleware.Recoverer, w.limit)
	router.AddConsumerHandler(GroupProcess, stream, sub, w.deps.Processor.WithHandler(handler).Handle)
	go func() {
		defer close(p.done)
		if err := router.Run(context.Background()); err != nil {
			w.log.Warn("partition consumer stopped", "partition", n, "error", err)
		}
	}()
	select {
	case <-router.Running():
	case <-p.done:
		return errors.New("partition consumer stopped at start")
	case <-ctx.Done():
		_ = router.Close()
		return ctx.Err()
	}
	w.mu.Lock()
	w.parts[n] = p
	w.held.Set(float64(len(w.parts)))
	w.mu.Unlock()
	w.log.Info("partition taken", "partition", n, "epoch", epoch, "taken_over_at", takeover)
	return nil
}

// lastDelivered creates the consumer group if need be and returns the id of the last
// message it delivered: messages up to it that are still pending were left by an earlier
// holder.
func (w *Worker) lastDelivered(ctx context.Context, stream string) (string, error) {
	err := w.client.XGroupCreateMkStream(ctx, stream, GroupProcess, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return "", fmt.Errorf("create consumer group of %s: %w: %w", stream, ports.ErrUnavailable, err)
	}
	groups, err := w.client.XInfoGroups(ctx, stream).Result()
	if err != nil {
		return "", fmt.Errorf("consumer groups of %s: %w: %w", stream, ports.ErrUnavailable, err)
	}
	for _, g := range groups {
		if g.Name == GroupProcess {
			return g.LastDeliveredID, nil
		}
	}
	return "", fmt.Errorf("consumer group %s of %s vanished", GroupProcess, stream)
}

// drop stops a partition whose lease is no longer ours, without releasing the lease.
func (w *Worker) drop(p *partition, why string) {
	w.log.Warn("partition dropped", "partition", p.n, "reason", why)
	w.stop(p)
}

// release stops a partition and frees its lease for another worker.
func (w *Worker) release(ctx context.Context, p *partition, why string) {
	w.log.Info("partition released", "partition", p.n, "reason", why)
	w.stop(p)
	if err := w.deps.Leases.Release(context.WithoutCancel(ctx), leaseName(p.n), w.cfg.ID); err != nil {
		w.log.Warn("release partition", "partition", p.n, "error", err)
	}
}

func (w *Worker) stop(p *partition) {
	if err := p.router.Close(); err != nil {
		w.log.Warn("stop partition", "partition", p.n, "error", err)
	}
	<-p.done
	w.mu.Lock()
	if w.parts[p.n] == p {
		delete(w.parts, p.n)
	}
	w.held.Set(float64(len(w.parts)))
	w.mu.Unlock()
}

// guard refuses to handle a message once this worker can no longer be sure it holds the
// partition: the message stays pending for the next holder.
func (w *Worker) guard(p *partition) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			if p.fenced.Load() || !p.valid(time.Now()) {
				return nil, fmt.Errorf("partition %d: no longer surely held: %w", p.n, ports.ErrFenced)
			}
			msgs, err := h(msg)
			if errors.Is(err, ports.ErrFenced) {
				p.fenced.Store(true) // handle nothing more; the next balancing round lets it go
			}
			return msgs, err
		}
	}
}

// limit bounds how many messages the worker handles at once.
func (w *Worker) limit(h message.HandlerFunc) message.HandlerFunc {
	if w.sem == nil {
		return h
	}
	return func(msg *message.Message) ([]*message.Message, error) {
		select {
		case w.sem <- struct{}{}:
		case <-msg.Context().Done():
			return nil, msg.Context().Err()
		}
		defer func() { <-w.sem }()
		return h(msg)
	}
}

func (w *Worker) notify() {
	if w.deps.Notify != nil {
		w.deps.Notify()
	}
}

// streamIDAfter reports whether stream entry id a comes after b ("ms-seq" ids).
func streamIDAfter(a, b string) bool {
	am, as := splitStreamID(a)
	bm, bs := splitStreamID(b)
	if am != bm {
		return am > bm
	}
	return as > bs
}

func splitStreamID(id string) (uint64, uint64) {
	ms, seq, _ := strings.Cut(id, "-")
	m, _ := strconv.ParseUint(ms, 10, 64)
	s, _ := strconv.ParseUint(seq, 10, 64)
	return m, s
}

// unclosable keeps the shared client open when a Watermill subscriber or publisher closes.
type unclosable struct{ redis.UniversalClient }

func (unclosable) Close() error { return nil }
