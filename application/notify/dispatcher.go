// Package notify delivers the outbox: the Dispatcher claims pending deliveries from the
// ports.DeliveryQueue, sends each through a ports.DeliverySender, and settles the outcome,
// retrying with backoff and pausing a failing subscription with its circuit breaker.
//
// The dispatcher only ever touches the outbox. Events are enqueued as deliveries by
// whoever records them (in the same transaction), so a slow or failing endpoint can delay
// neither the ingest path nor the other subscriptions.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/production-line-monitor/plm/ports"
)

// Defaults taken by the zero fields of Config.
const (
	DefaultPollInterval    = 250 * time.Millisecond
	DefaultSendTimeout     = 5 * time.Second
	DefaultLeaseFactor     = 4 // the lease is this many send timeouts
	DefaultBatchSize       = 100
	DefaultMaxAttempts     = 10
	DefaultBackoffBase     = time.Second
	DefaultBackoffCap      = 5 * time.Minute
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second
)

// MaxErrorLen bounds the reason of a failed attempt as it is recorded (LastError), in bytes.
const MaxErrorLen = 512

// Config tunes a Dispatcher. Every zero field takes its default.
type Config struct {
	// PollInterval is how often the queue is asked for due deliveries (default 250 ms);
	// Wake asks at once.
	PollInterval time.Duration
	// SendTimeout bounds one attempt (default 5 s): the endpoint must have answered by then.
	// It also bounds how long Run waits for the attempts in flight when it stops.
	SendTimeout time.Duration
	// Lease is how long claimed deliveries stay this dispatcher's (default 4 send timeouts);
	// a dispatcher that dies leaves them to the others once it runs out. It must exceed
	// SendTimeout: no attempt starts that could outlive it.
	Lease time.Duration
	// BatchSize is the most deliveries claimed at once (default 100).
	BatchSize int
	// MaxAttempts is how many attempts a delivery gets before it is DEAD (default 10).
	MaxAttempts int
	// Backoff spaces the attempts (default: base 1 s, cap 5 min).
	Backoff Backoff
	// Breaker pauses a failing subscription (default: 5 failures in a row, 30 s cooldown).
	Breaker Breaker
}

// Validate names every bad field: none may be negative, the lease must exceed the send
// timeout, and the backoff's cap must not be below its base.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		name     string
		negative bool
	}{
		{"poll interval", c.PollInterval < 0}, {"send timeout", c.SendTimeout < 0}, {"lease", c.Lease < 0},
		{"batch size", c.BatchSize < 0}, {"max attempts", c.MaxAttempts < 0},
		{"backoff base", c.Backoff.Base < 0}, {"backoff cap", c.Backoff.Cap < 0},
		{"breaker failures", c.Breaker.Failures < 0}, {"breaker cooldown", c.Breaker.Cooldown < 0},
	} {
		if f.negative {
			errs = append(errs, fmt.Errorf("%s must not be negative", f.name))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	d := c.withDefaults()
	if d.Lease <= d.SendTimeout {
		errs = append(errs, fmt.Errorf("lease (%s) must be longer than the send timeout (%s)", d.Lease, d.SendTimeout))
	}
	if d.Backoff.Cap < d.Backoff.Base {
		errs = append(errs, fmt.Errorf("backoff cap (%s) must not be below the backoff base (%s)", d.Backoff.Cap, d.Backoff.Base))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.SendTimeout, DefaultSendTimeout)
	def(&c.Lease, DefaultLeaseFactor*c.SendTimeout)
	def(&c.Backoff.Base, DefaultBackoffBase)
	def(&c.Backoff.Cap, DefaultBackoffCap)
	def(&c.Breaker.Cooldown, DefaultBreakerCooldown)
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Breaker.Failures == 0 {
		c.Breaker.Failures = DefaultBreakerFailures
	}
	return c
}

// Outcome is what became of a claimed delivery, as the metrics count it
// (plm_deliveries_total{outcome}).
type Outcome string

// The outcomes.
const (
	// OutcomeDelivered: the endpoint accepted it.
	OutcomeDelivered Outcome = "delivered"
	// OutcomeRetried: the attempt failed; another is due later.
	OutcomeRetried Outcome = "retried"
	// OutcomeDead: the attempt failed and was the last.
	OutcomeDead Outcome = "dead"
	// OutcomePostponed: not attempted, its subscription's breaker having opened.
	OutcomePostponed Outcome = "postponed"
	// OutcomeDropped: its subscription was deleted meanwhile.
	OutcomeDropped Outcome = "dropped"
)

// Outcomes lists every outcome.
var Outcomes = []Outcome{OutcomeDelivered, OutcomeRetried, OutcomeDead, OutcomePostponed, OutcomeDropped}

// Dispatcher sends the deliveries of the outbox. Deliveries are claimed in batches and
// grouped by subscription; each subscription's group is sent in order by a goroutine of
// its own, and while it runs, the subscription is left out of the claims of this process.
// Several dispatchers (one per process) may share a queue: the leases keep them apart.
type Dispatcher struct {
	cfg     Config
	queue   ports.DeliveryQueue
	sender  ports.DeliverySender
	clock   ports.Clock
	log     *slog.Logger
	observe func(Outcome, int)
	draw    func() float64

	wake chan struct{}

	mu   sync.Mutex
	busy map[string]bool // subscriptions with a group in flight
	wg   sync.WaitGroup
}

// New builds a dispatcher over the queue and the sender, reading the time from clock and
// logging to log. cfg's zero fields take their defaults; a bad cfg is an error naming
// every bad field. The dispatcher does nothing until Run.
func New(cfg Config, q ports.DeliveryQueue, s ports.DeliverySender, c ports.Clock, log *slog.Logger) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dispatcher config: %w", err)
	}
	if q == nil || s == nil || c == nil || log == nil {
		return nil, errors.New("new dispatcher: queue, sender, clock and logger are required")
	}
	return &Dispatcher{
		cfg:     cfg.withDefaults(),
		queue:   q,
		sender:  s,
		clock:   c,
		log:     log.With("component", "notify"),
		observe: func(Outcome, int) {},
		draw:    rand.Float64,
		wake:    make(chan struct{}, 1),
		busy:    make(map[string]bool),
	}, nil
}

// WithObserver has observe told of every outcome, with how many deliveries it concerns (the
// metrics). observe must be safe for concurrent use and must not block.
func (d *Dispatcher) WithObserver(observe func(o Outcome, n int)) *Dispatcher {
	d.observe = observe
	return d
}

// WithJitter draws the backoff's jitter from draw (uniform in [0, 1)) instead of
// math/rand: tests fix it. draw must be safe for concurrent use.
func (d *Dispatcher) WithJitter(draw func() float64) *Dispatcher {
	d.draw = draw
	return d
}

// Config returns the configuration in use, the defaults filled in.
func (d *Dispatcher) Config() Config { return d.cfg }

// Wake has the dispatcher claim at once rather than at its next poll: a process calls it
// right after it enqueued deliveries. It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run claims and sends deliveries until ctx ends. Then it claims no more, lets the
// attempts in flight finish (each bounded by SendTimeout) and records their outcomes,
// hands the deliveries it had claimed but not attempted back to the queue, and returns.
func (d *Dispatcher) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	failing := false // whether the last claim failed, so that a long outage logs once
	for {
		select {
		case <-ctx.Done():
			d.wg.Wait()
			return nil
		case <-timer.C:
		case <-d.wake:
			timer.Stop()
		}
		if ctx.Err() != nil {
			continue
		}
		err := d.poll(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			d.log.WarnContext(ctx, "cannot claim deliveries; retrying", "error", err)
			failing = true
		case err == nil && failing:
			d.log.InfoContext(ctx, "claiming deliveries again")
			failing = false
		}
		timer.Reset(d.cfg.PollInterval)
	}
}

// poll claims the due deliveries of the subscriptions not in flight here and starts a
// goroutine for each subscription's group.
func (d *Dispatcher) poll(ctx context.Context) error {
	d.mu.Lock()
	skip := make([]string, 0, len(d.busy))
	for id := range d.busy {
		skip = append(skip, id)
	}
	d.mu.Unlock()

	now := d.clock.Now()
	claimed, err := d.queue.Claim(ctx, now, d.cfg.Lease, d.cfg.BatchSize, skip)
	if err != nil {
		return fmt.Errorf("claim deliveries: %w", err)
	}
	var (
		order  []string
		groups = make(map[string][]ports.ClaimedDelivery)
	)
	for _, c := range claimed {
		if _, ok := groups[c.SubscriptionID]; !ok {
			order = append(order, c.SubscriptionID)
		}
		groups[c.SubscriptionID] = append(groups[c.SubscriptionID], c)
	}
	leaseEnd := now.Add(d.cfg.Lease)
	for _, id := range order {
		group := groups[id]
		d.mu.Lock()
		inFlight := d.busy[id]
		if !inFlight {
			d.busy[id] = true
			d.wg.Add(1)
		}
		d.mu.Unlock()
		if inFlight {
			// The queue ignored skip; sending these beside the group in flight would
			// break the subscription's order. Hand them back.
			d.release(ctx, group, now)
			continue
		}
		go d.deliver(ctx, group, leaseEnd)
	}
	return nil
}

// deliver sends a subscription's group in order, and frees the subscription when done.
func (d *Dispatcher) deliver(ctx context.Context, group []ports.ClaimedDelivery, leaseEnd time.Time) {
	sub := group[0].Subscription
	handedBack := false
	defer func() {
		d.mu.Lock()
		delete(d.busy, group[0].SubscriptionID)
		d.mu.Unlock()
		if handedBack {
			d.Wake() // now that the subscription may be claimed again
		}
		d.wg.Done()
	}()
	failures, pausedUntil := sub.Failures, sub.PausedUntil
	for i, c := range group {
		now := d.clock.Now()
		switch {
		case ctx.Err() != nil:
			d.release(ctx, group[i:], now)
			return
		case pausedUntil.After(now):
			d.postpone(ctx, group[i:], pausedUntil)
			return
		case now.Add(d.cfg.SendTimeout).After(leaseEnd):
			// The attempt could outlive the lease, and another dispatcher take the
			// delivery meanwhile: hand the rest back, to be claimed afresh.
			d.release(ctx, group[i:], now)
			handedBack = true
			return
		}
		c.Subscription.Failures, c.Subscription.PausedUntil = failures, pausedUntil
		o := d.attempt(ctx, c, now)
		failures, pausedUntil = o.Failures, o.PausedUntil
		if !d.settle(ctx, o) {
			return
		}
	}
}

// attempt sends c once and says what came of it. The attempt is not cut short when ctx
// ends: Run waits for it, bounded by SendTimeout.
func (d *Dispatcher) attempt(ctx context.Context, c ports.ClaimedDelivery, at time.Time) ports.DeliveryOutcome {
	sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.SendTimeout)
	status, err := d.sender.Send(sendCtx, c)
	cancel()
	ok := err == nil && status >= 200 && status < 300
	if err == nil && !ok {
		err = fmt.Errorf("the endpoint answered %d", status)
	}
	end := d.clock.Now()
	o := ports.DeliveryOutcome{DeliveryID: c.ID, SubscriptionID: c.SubscriptionID, At: at, Status: status}
	o.Failures, o.PausedUntil = d.cfg.Breaker.After(c.Subscription.Failures, c.Subscription.PausedUntil, ok, end)
	attempts := c.Attempts + 1
	switch {
	case ok:
		o.State = ports.DeliveryDelivered
	case attempts >= d.cfg.MaxAttempts:
		o.State, o.Error = ports.DeliveryDead, truncate(err.Error())
	default:
		o.State, o.Error = ports.DeliveryPending, truncate(err.Error())
		o.NextAttemptAt = end.Add(d.cfg.Backoff.Delay(attempts, d.draw()))
	}
	return o
}

// settle records o and counts it; false when the rest of the group must not be sent: the
// subscription is gone, another dispatcher has the deliveries (this one stalled past its
// lease), or the outcome could not be recorded (the deliveries left stay leased, and are
// tried again when the lease ends).
func (d *Dispatcher) settle(ctx context.Context, o ports.DeliveryOutcome) bool {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.SendTimeout)
	defer cancel()
	err := d.queue.Settle(sctx, o)
	switch {
	case errors.Is(err, ports.ErrNotFound):
		d.observe(OutcomeDropped, 1)
		return false
	case errors.Is(err, ports.ErrConflict):
		d.log.WarnContext(ctx, "a delivery was settled by another dispatcher while this one overran its lease",
			"delivery_id", o.DeliveryID, "subscription_id", o.SubscriptionID, "error", err)
		return false
	case err != nil:
		d.log.ErrorContext(ctx, "cannot record a delivery attempt; it will be made again",
			"delivery_id", o.DeliveryID, "subscription_id", o.SubscriptionID, "state", o.State, "error", err)
		return false
	}
	switch o.State {
	case ports.DeliveryDelivered:
		d.observe(OutcomeDelivered, 1)
	case ports.DeliveryDead:
		d.observe(OutcomeDead, 1)
		d.log.WarnContext(ctx, "delivery dead after its last attempt",
			"delivery_id", o.DeliveryID, "subscription_id", o.SubscriptionID, "status", o.Status, "error", o.Error)
	default:
		d.observe(OutcomeRetried, 1)
	}
	return true
}

// postpone makes the group's deliveries due when the breaker closes.
func (d *Dispatcher) postpone(ctx context.Context, group []ports.ClaimedDelivery, until time.Time) {
	if d.hand(ctx, group, until) {
		d.observe(OutcomePostponed, len(group))
	}
}

// release hands unattempted deliveries back to the queue, due at once.
func (d *Dispatcher) release(ctx context.Context, group []ports.ClaimedDelivery, now time.Time) {
	d.hand(ctx, group, now)
}

// hand makes the group due at until, their attempts unchanged. When that fails, the
// deliveries come due anyway when their lease ends.
func (d *Dispatcher) hand(ctx context.Context, group []ports.ClaimedDelivery, until time.Time) bool {
	ids := make([]string, len(group))
	for i, c := range group {
		ids[i] = c.ID
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.SendTimeout)
	defer cancel()
	err := d.queue.Postpone(pctx, ids, until)
	if err != nil && !errors.Is(err, ports.ErrNotFound) {
		d.log.WarnContext(ctx, "cannot postpone deliveries; they come due when their lease ends",
			"subscription_id", group[0].SubscriptionID, "deliveries", len(ids), "error", err)
		return false
	}
	return err == nil
}

// truncate bounds a reason to MaxErrorLen bytes, on a rune boundary.
func truncate(s string) string {
	if len(s) <= MaxErrorLen {
		return s
	}
	s = s[:MaxErrorLen]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
