package notify_test

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/application/notify"
	"github.com/production-line-monitor/plm/ports"
	"github.com/production-line-monitor/plm/tests/logbuf"
)

// waitTimeout bounds every wait for a condition.
const waitTimeout = 5 * time.Second

// rig runs a dispatcher over a fake queue and sender with a clock that moves only when
// told to. It polls once when it starts, and then only when woken.
type rig struct {
	t      *testing.T
	q      *fakeQueue
	s      *fakeSender
	clock  *memory.Clock
	d      *notify.Dispatcher
	seen   *outcomes
	logs   *logbuf.Buffer
	cancel context.CancelFunc
	done   chan error
}

// run starts the dispatcher with a clock standing at t0.
func run(t *testing.T, cfg notify.Config, q *fakeQueue, s *fakeSender) *rig {
	t.Helper()
	return runWithClock(t, cfg, q, s, memory.NewClock(t0))
}

// runWithClock starts the dispatcher with clock; the backoff's jitter draws 0.5, and the
// poll interval is an hour unless cfg sets one.
func runWithClock(t *testing.T, cfg notify.Config, q *fakeQueue, s *fakeSender, clock *memory.Clock) *rig {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Hour
	}
	r := &rig{t: t, q: q, s: s, clock: clock, seen: &outcomes{}, logs: &logbuf.Buffer{}, done: make(chan error, 1)}
	d, err := notify.New(cfg, q, s, clock, slog.New(slog.NewJSONHandler(r.logs, nil)))
	require.NoError(t, err)
	r.d = d.WithObserver(func(o notify.Outcome, n int) { r.seen.observe(string(o), n) }).
		WithJitter(func() float64 { return 0.5 })
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.d.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop cancels Run and waits for it to return.
func (r *rig) stop() {
	r.t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		require.NoError(r.t, err)
		r.done <- nil // for a second stop
	case <-time.After(waitTimeout):
		r.t.Fatal("Run did not return after its context ended")
	}
}

func (r *rig) waitFor(cond func() bool, what string) {
	r.t.Helper()
	require.Eventually(r.t, cond, waitTimeout, time.Millisecond, "waiting for %s", what)
}

// claim wakes the dispatcher and waits for its next claim, which it returns.
func (r *rig) claim() claimCall {
	r.t.Helper()
	n := len(r.q.claimCalls())
	r.d.Wake()
	r.waitFor(func() bool { return len(r.q.claimCalls()) > n }, "a claim")
	calls := r.q.claimCalls()
	return calls[len(calls)-1]
}

// poll wakes the dispatcher until it claims with no subscription in flight (a group that
// has settled its last delivery may take a moment to end), and returns that claim.
func (r *rig) poll() claimCall {
	r.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		c := r.claim()
		if len(c.Skip) == 0 {
			return c
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("subscriptions %v still in flight", c.Skip)
		}
	}
}

// waitCounts waits for the outcomes observed to be want: they are counted once recorded.
func (r *rig) waitCounts(want map[string]int) {
	r.t.Helper()
	if !assert.Eventually(r.t, func() bool { return reflect.DeepEqual(r.seen.counts(), want) }, waitTimeout, time.Millisecond) {
		assert.Equal(r.t, want, r.seen.counts())
	}
}

func (r *rig) waitSettled(n int) {
	r.t.Helper()
	r.waitFor(func() bool { return r.q.settledCount() >= n }, "settled outcomes")
}

func TestDispatcher_delivers(t *testing.T) {
	q := newFakeQueue(ports.Subscription{ID: "A", URL: "https://a.example/hook", Secret: "0123456789abcdef"})
	id := q.enqueue("A", t0)
	s := &fakeSender{answer: status(204)}
	r := run(t, notify.Config{}, q, s)
	r.waitSettled(1)

	d := q.delivery(id)
	assert.Equal(t, ports.DeliveryDelivered, d.State)
	assert.Equal(t, 1, d.Attempts)
	assert.Equal(t, 204, d.LastStatus)
	assert.Empty(t, d.LastError)
	assert.Equal(t, t0, d.DeliveredAt)
	claims := q.claimCalls()
	assert.Equal(t, claimCall{Now: t0, Lease: 4 * notify.DefaultSendTimeout, Limit: notify.DefaultBatchSize, Returned: 1}, claims[0],
		"the lease is 4 send timeouts; nothing is skipped")
	sent := s.sentDeliveries()
	require.Len(t, sent, 1)
	assert.Equal(t, "https://a.example/hook", sent[0].Subscription.URL, "the sender learns where to send")
	assert.Equal(t, "0123456789abcdef", sent[0].Subscription.Secret, "and how to sign")
	r.waitCounts(map[string]int{"delivered": 1})
}

func TestDispatcher_retries_with_backoff_then_delivers(t *testing.T) {
	q := newFakeQueue(ports.Subscription{ID: "A"})
	id := q.enqueue("A", t0)
	var calls atomic.Int32
	s := &fakeSender{answer: func(context.Context, ports.ClaimedDelivery) (int, error) {
		if calls.Add(1) == 1 {
			return 500, nil
		}
		return 200, nil
	}}
	r := run(t, notify.Config{Backoff: notify.Backoff{Base: 2 * time.Second, Cap: time.Minute}}, q, s)
	r.waitSettled(1)

	d := q.delivery(id)
	assert.Equal(t, ports.DeliveryPending, d.State)
	assert.Equal(t, 1, d.Attempts)
	assert.Equal(t, 500, d.LastStatus)
	assert.Equal(t, "the endpoint answered 500", d.LastError)
	assert.Equal(t, t0.Add(time.Second), d.NextAttemptAt, "half (the draw) of the first ceiling, 2 s")
	assert.Equal(t, 1, q.sub("A").Failures)

	assert.Zero(t, r.poll().Returned, "not due before its backoff")
	r.clock.Advance(time.Second)
	r.poll()
	r.waitSettled(2)
	d = q.delivery(id)
	assert.Equal(t, ports.DeliveryDelivered, d.State)
	assert.Equal(t, 2, d.Attempts)
	assert.Equal(t, t0.Add(time.Second), d.DeliveredAt)
	assert.Zero(t, q.sub("A").Failures, "a success resets the failures")
	r.waitCounts(map[string]int{"retried": 1, "delivered": 1})
}

func TestDispatcher_dead_after_the_last_attempt(t *testing.T) {
	q := newFakeQueue(ports.Subscription{ID: "A"})
	id := q.enqueue("A", t0)
	s := &fakeSender{answer: func(context.Context, ports.ClaimedDelivery) (int, error) {
		return 0, errors.New("dial tcp 192.0.2.1:443: connect: connection refused")
	}}
	b := notify.Backoff{Base: time.Second, Cap: 3 * time.Second}
	r := run(t, notify.Config{MaxAttempts: 3, Backoff: b}, q, s)
	for attempt := 1; attempt < 3; attempt++ {
		r.waitSettled(attempt)
		d := q.delivery(id)
		require.Equal(t, ports.DeliveryPending, d.State, "attempt %d", attempt)
		require.Equal(t, r.clock.Now().Add(b.Delay(attempt, 0.5)), d.NextAttemptAt, "attempt %d", attempt)
		r.clock.Set(d.NextAttemptAt)
		r.poll()
	}
	r.waitSettled(3)

	d := q.delivery(id)
	assert.Equal(t, ports.DeliveryDead, d.State)
	assert.Equal(t, 3, d.Attempts)
	assert.Equal(t, 0, d.LastStatus)
	assert.Contains(t, d.LastError, "connection refused")
	r.waitCounts(map[string]int{"retried": 2, "dead": 1})
	r.waitFor(func() bool { return strings.Contains(r.logs.String(), "delivery dead after its last attempt") }, "the log line")

	r.clock.Advance(time.Hour)
	assert.Zero(t, r.poll().Returned, "a dead delivery is not tried again")
	assert.Len(t, s.sentIDs(), 3)
}

// openBreaker runs a dispatcher whose breaker opens after 2 failures, over subscription A
// with 4 deliveries, all failing, and B with one, which succeeds; it returns once A's
// breaker has opened.
func openBreaker(t *testing.T) (*rig, []string) {
	t.Helper()
	q := newFakeQueue(ports.Subscription{ID: "A"}, ports.Subscription{ID: "B"})
	ids := []string{q.enqueue("A", t0), q.enqueue("A", t0), q.enqueue("B", t0), q.enqueue("A", t0), q.enqueue("A", t0)}
	s := &fakeSender{answer: func(_ context.Context, d ports.ClaimedDelivery) (int, error) {
		if d.SubscriptionID == "A" {
			return 503, nil
		}
		return 200, nil
	}}
	r := run(t, notify.Config{Breaker: notify.Breaker{Failures: 2, Cooldown: 30 * time.Second}}, q, s)
	r.waitSettled(3)
	r.waitFor(func() bool { return len(q.postponeCalls()) == 1 }, "the rest of A's group postponed")
	return r, []string{ids[0], ids[1], ids[3], ids[4], ids[2]} // A's four, then B's
}

func TestDispatcher_breaker_opens_and_postpones_the_rest(t *testing.T) {
	r, ids := openBreaker(t)
	q := r.q

	assert.ElementsMatch(t, []string{ids[0], ids[1], ids[4]}, r.s.sentIDs(), "A's first two, and B's")
	assert.Equal(t, postponeCall{IDs: ids[2:4], Until: t0.Add(30 * time.Second)}, q.postponeCalls()[0])
	for _, id := range ids[2:4] {
		assert.Zero(t, q.delivery(id).Attempts, "a postponed delivery keeps its attempts")
	}
	a := q.sub("A")
	assert.Equal(t, 2, a.Failures)
	assert.Equal(t, t0.Add(30*time.Second), a.PausedUntil)
	assert.Equal(t, notify.BreakerOpen, notify.StateOf(a, t0))
	assert.Equal(t, ports.DeliveryDelivered, q.delivery(ids[4]).State, "B is not held up by A")
	r.waitCounts(map[string]int{"retried": 2, "postponed": 2, "delivered": 1})

	// Due again (their backoff has passed), but the breaker is open: not claimed.
	r.clock.Advance(29 * time.Second)
	assert.Zero(t, r.poll().Returned)
	assert.Len(t, r.s.sentIDs(), 3)
}

func TestDispatcher_half_open_success_closes_the_breaker(t *testing.T) {
	r, ids := openBreaker(t)
	r.s.setAnswer(status(200))
	r.clock.Advance(30 * time.Second)
	r.poll()
	r.waitSettled(3 + 4)

	sent := r.s.sentIDs()
	assert.Equal(t, ids[:4], sent[3:], "the probe (A's oldest), then the rest in order")
	a := r.q.sub("A")
	assert.Zero(t, a.Failures)
	assert.True(t, a.PausedUntil.IsZero())
	assert.Equal(t, notify.BreakerClosed, notify.StateOf(a, r.clock.Now()))
	for _, id := range ids {
		assert.Equal(t, ports.DeliveryDelivered, r.q.delivery(id).State, id)
	}
}

func TestDispatcher_half_open_failure_reopens_the_breaker(t *testing.T) {
	r, ids := openBreaker(t)
	r.clock.Advance(30 * time.Second)
	r.poll()
	r.waitFor(func() bool { return len(r.q.postponeCalls()) == 2 }, "the group postponed again")

	sent := r.s.sentIDs()
	assert.Equal(t, []string{ids[0]}, sent[3:], "one probe only")
	reopened := t0.Add(60 * time.Second)
	assert.Equal(t, postponeCall{IDs: ids[1:4], Until: reopened}, r.q.postponeCalls()[1])
	a := r.q.sub("A")
	assert.Equal(t, 3, a.Failures)
	assert.Equal(t, reopened, a.PausedUntil)
	assert.Equal(t, 2, r.q.delivery(ids[0]).Attempts)
}

func TestDispatcher_a_blocked_endpoint_does_not_delay_another(t *testing.T) {
	q := newFakeQueue(ports.Subscription{ID: "A"}, ports.Subscription{ID: "B"})
	slow := q.enqueue("A", t0)
	release := make(chan struct{})
	s := &fakeSender{answer: func(ctx context.Context, d ports.ClaimedDelivery) (int, error) {
		if d.SubscriptionID == "A" {
			<-release
		}
		return 200, nil
	}}
	r := run(t, notify.Config{}, q, s)
	r.waitFor(func() bool { return len(s.sentIDs()) == 1 }, "A's attempt to start")

	fast := q.enqueue("B", t0)
	c := r.claim()
	assert.Equal(t, []string{"A"}, c.Skip, "A is in flight here")
	assert.Equal(t, 1, c.Returned, "B's delivery")
	r.waitFor(func() bool { return q.delivery(fast).State == ports.DeliveryDelivered }, "B delivered while A hangs")
	assert.Equal(t, ports.DeliveryPending, q.delivery(slow).State)

	close(release)
	r.waitFor(func() bool { return q.delivery(slow).State == ports.DeliveryDelivered }, "A delivered once it answers")
}

func TestDispatcher_an_attempt_is_bounded_by_the_send_timeout(t *testing.T) {
	q := newFakeQueue(ports.Subscription{ID: "A"})
	id := q.enqueue("A", t0)
	s := &fakeSender{answer: func(ctx context.Context, _ ports.ClaimedDelivery) (int, error) {
		<-ctx.Done() // an endpoint that never answers
		return 0, ctx.Err()
	}}
	r := run(t, notify.Config{SendTimeout: 20 * time.Millisecond, Lease: time.Second}, q, s)
	r.waitSettled(1)
	d := q.delivery(id)
	assert.Equal(t, ports.DeliveryPending, d.State)
	assert.Contains(t, d.LastError, context.DeadlineExceeded.Error())
}

// A group that would outlive its lease is cut short: what is left goes back to the queue
// and is claimed afresh, with a new lease.
func TestDispatcher_hands_back_what_the_lease_would_not_cover(t *testing.T) {
	q := newFakeQueue(ports.Subscription{ID: "A"})
	first, second := q.enqueue("A", t0), q.enqueue("A", t0)
	clock := memory.NewClock(t0)
	s := &fakeSender{answer: func(_ context.Context, d ports.ClaimedDelivery) (int, error) {
		if d.ID == first {
			clock.Advance(10 * time.Second) // a slow answer: 2 s of the lease left
		}
		return 200, nil
	}}
	r := runWithClock(t, notify.Config{SendTimeout: 5 * time.Second, Lease: 12 * time.Second}, q, s, clock)
	r.waitFor(func() bool { return q.delivery(second).State == ports.DeliveryDelivered }, "the second delivered")

	assert.Equal(t, []postponeCall{{IDs: []string{second}, Until: t0.Add(10 * time.Second)}}, q.postponeCalls())
	claims := q.claimCalls()
	assert.Equal(t, t0.Add(10*time.Second), claims[len(claims)-1].Now, "claimed afresh")
	assert.Equal(t, 1, q.delivery(second).Attempts)
	assert.Equal(t, []string{first, second}, s.sentIDs())
}

func TestDispatcher_drops_the_deliveries_of_a_deleted_subscription(t *testing.T) {
	q := newFakeQueue(ports.Subscription{ID: "A"})
	first := q.enqueue("A", t0)
	q.enqueue("A", t0)
	s := &fakeSender{answer: func(context.Context, ports.ClaimedDelivery) (int, error) {
		q.deleteSub("A") // deleted while its first delivery was on its way
		return 200, nil
	}}
	r := run(t, notify.Config{}, q, s)
	r.waitSettled(1)
	r.stop() // waits for the group to end

	assert.Equal(t, []string{first}, s.sentIDs(), "nothing more is sent to a deleted subscription")
	assert.Equal(t, map[string]int{"dropped": 1}, r.seen.counts())
	assert.NotContains(t, r.logs.String(), `"level":"ERROR"`, "dropped quietly")
}

// A dispatcher that overran its lease while another settled the delivery records nothing
// over it, and sends no more of the group: the other dispatcher has those too.
func TestDispatcher_yields_to_a_dispatcher_that_settled_first(t *testing.T) {
	q := newFakeQueue(ports.Subscription{ID: "A"})
	first := q.enqueue("A", t0)
	q.enqueue("A", t0)
	s := &fakeSender{answer: func(_ context.Context, c ports.ClaimedDelivery) (int, error) {
		q.settleElsewhere(c.ID)
		return 500, nil
	}}
	r := run(t, notify.Config{}, q, s)
	r.waitSettled(1)
	r.stop()

	assert.Equal(t, []string{first}, s.sentIDs(), "nothing more of the group is sent")
	assert.Equal(t, ports.DeliveryDelivered, q.delivery(first).State, "the other dispatcher's outcome stands")
	assert.Contains(t, r.logs.String(), "settled by another dispatcher")
}

// When Run's context ends, the attempt in flight is not cut short: it finishes and its
// outcome is recorded before Run returns; the rest of the group goes back to the queue.
func TestDispatcher_stops_cleanly(t *testing.T) {
	q := newFakeQueue(ports.Subscription{ID: "A"})
	first, second := q.enqueue("A", t0), q.enqueue("A", t0)
	var (
		r          *rig
		sendCtxErr atomic.Value
		started    = make(chan struct{})
	)
	s := &fakeSender{answer: func(ctx context.Context, d ports.ClaimedDelivery) (int, error) {
		<-started
		r.cancel()
		sendCtxErr.Store(errorString(ctx.Err()))
		return 200, nil
	}}
	r = run(t, notify.Config{}, q, s)
	close(started)
	select {
	case err := <-r.done:
		require.NoError(t, err)
		r.done <- nil
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return")
	}

	assert.Equal(t, "", sendCtxErr.Load(), "the attempt in flight kept its context")
	assert.Equal(t, ports.DeliveryDelivered, q.delivery(first).State, "recorded before Run returned")
	assert.Equal(t, []string{first}, s.sentIDs())
	assert.Equal(t, []postponeCall{{IDs: []string{second}, Until: t0}}, q.postponeCalls(), "handed back, due at once")
	assert.Zero(t, q.delivery(second).Attempts)
}

func errorString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A queue that cannot be reached is logged once, however long it lasts, and once more when
// it answers again.
func TestDispatcher_survives_a_queue_outage(t *testing.T) {
	q := newFakeQueue(ports.Subscription{ID: "A"})
	q.setClaimErr(ports.ErrUnavailable)
	s := &fakeSender{answer: status(200)}
	r := run(t, notify.Config{}, q, s)
	for range 3 {
		r.poll()
	}
	assert.Equal(t, 1, strings.Count(r.logs.String(), "cannot claim deliveries"))

	q.setClaimErr(nil)
	id := q.enqueue("A", t0)
	r.poll()
	r.waitFor(func() bool { return q.delivery(id).State == ports.DeliveryDelivered }, "delivered after the outage")
	assert.Contains(t, r.logs.String(), "claiming deliveries again")
}

// Wake has the dispatcher claim at once, well before its poll interval.
func TestDispatcher_wake_claims_at_once(t *testing.T) {
	q := newFakeQueue(ports.Subscription{ID: "A"})
	s := &fakeSender{answer: status(200)}
	r := run(t, notify.Config{PollInterval: time.Hour}, q, s)
	r.waitFor(func() bool { return len(q.claimCalls()) == 1 }, "the first claim")
	id := q.enqueue("A", t0)
	r.d.Wake()
	r.waitFor(func() bool { return q.delivery(id).State == ports.DeliveryDelivered }, "delivered on waking")
}

// Without a wake, the dispatcher polls every PollInterval.
func TestDispatcher_polls_every_interval(t *testing.T) {
	q := newFakeQueue(ports.Subscription{ID: "A"})
	s := &fakeSender{answer: status(200)}
	r := run(t, notify.Config{PollInterval: 5 * time.Millisecond}, q, s)
	r.waitFor(func() bool { return len(q.claimCalls()) >= 3 }, "three claims")
}

func TestNew_refuses_a_bad_config(t *testing.T) {
	q, s := newFakeQueue(), &fakeSender{}
	d, err := notify.New(notify.Config{SendTimeout: time.Minute}, q, s, memory.NewClock(t0), slog.New(slog.DiscardHandler))
	if assert.NoError(t, err, "the default lease follows the send timeout") {
		assert.Equal(t, 4*time.Minute, d.Config().Lease)
	}
	_, err = notify.New(notify.Config{SendTimeout: time.Minute, Lease: time.Second}, q, s, memory.NewClock(t0), slog.New(slog.DiscardHandler))
	assert.ErrorContains(t, err, "lease (1s) must be longer than the send timeout (1m0s)")
	_, err = notify.New(notify.Config{}, nil, s, memory.NewClock(t0), slog.New(slog.DiscardHandler))
	assert.Error(t, err)
}
