package notify_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// claimCall is one call of Claim, as made.
type claimCall struct {
	Now   time.Time
	Lease time.Duration
	Limit int
	Skip  []string
	// Returned is how many deliveries the call returned.
	Returned int
}

// postponeCall is one call of Postpone, as made.
type postponeCall struct {
	IDs   []string
	Until time.Time
}

// fakeQueue is an outbox in memory with the semantics of ports.DeliveryQueue, recording
// every call.
type fakeQueue struct {
	mu         sync.Mutex
	subs       map[string]ports.Subscription
	deliveries []ports.Delivery // in the order enqueued, the oldest first
	claimErr   error            // returned by Claim while set

	claims    []claimCall
	settled   []ports.DeliveryOutcome
	postponed []postponeCall
}

var _ ports.DeliveryQueue = (*fakeQueue)(nil)

func newFakeQueue(subs ...ports.Subscription) *fakeQueue {
	q := &fakeQueue{subs: make(map[string]ports.Subscription)}
	for _, s := range subs {
		q.subs[s.ID] = s
	}
	return q
}

// enqueue adds a PENDING delivery to sub, due at due, and returns its id.
func (q *fakeQueue) enqueue(sub string, due time.Time) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	id := fmt.Sprintf("d%d", len(q.deliveries)+1)
	q.deliveries = append(q.deliveries, ports.Delivery{ID: id, SubscriptionID: sub, EventID: "e-" + id,
		EventType: event.AlarmOpened, Body: []byte(`{"id":"e-` + id + `"}`), State: ports.DeliveryPending,
		CreatedAt: due, NextAttemptAt: due})
	return id
}

func (q *fakeQueue) Claim(_ context.Context, now time.Time, lease time.Duration, limit int, skip []string) ([]ports.ClaimedDelivery, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.claims = append(q.claims, claimCall{Now: now, Lease: lease, Limit: limit, Skip: slices.Sorted(slices.Values(skip))})
	if q.claimErr != nil {
		return nil, q.claimErr
	}
	var out []ports.ClaimedDelivery
	for i := range q.deliveries {
		d := &q.deliveries[i]
		sub, ok := q.subs[d.SubscriptionID]
		if len(out) == limit || d.State != ports.DeliveryPending || d.NextAttemptAt.After(now) || !ok ||
			sub.PausedUntil.After(now) || slices.Contains(skip, sub.ID) {
			continue
		}
		d.NextAttemptAt = now.Add(lease)
		out = append(out, ports.ClaimedDelivery{Delivery: *d, Subscription: sub})
	}
	q.claims[len(q.claims)-1].Returned = len(out)
	return out, nil
}

func (q *fakeQueue) Settle(_ context.Context, o ports.DeliveryOutcome) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.settled = append(q.settled, o)
	sub, ok := q.subs[o.SubscriptionID]
	i := slices.IndexFunc(q.deliveries, func(d ports.Delivery) bool { return d.ID == o.DeliveryID })
	if !ok || i < 0 {
		return fmt.Errorf("settle %s: %w", o.DeliveryID, ports.ErrNotFound)
	}
	d := &q.deliveries[i]
	if d.State != ports.DeliveryPending {
		return fmt.Errorf("settle %s: it is %s: %w", o.DeliveryID, d.State, ports.ErrConflict)
	}
	d.Attempts++
	d.State, d.LastAttemptAt, d.LastStatus, d.LastError = o.State, o.At, o.Status, o.Error
	d.NextAttemptAt = o.NextAttemptAt
	if o.State == ports.DeliveryDelivered {
		d.DeliveredAt = o.At
	}
	sub.Failures, sub.PausedUntil = o.Failures, o.PausedUntil
	q.subs[sub.ID] = sub
	return nil
}

func (q *fakeQueue) Postpone(_ context.Context, ids []string, until time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.postponed = append(q.postponed, postponeCall{IDs: slices.Clone(ids), Until: until})
	for i := range q.deliveries {
		if slices.Contains(ids, q.deliveries[i].ID) {
			q.deliveries[i].NextAttemptAt = until
		}
	}
	return nil
}

// delivery returns the stored delivery id.
func (q *fakeQueue) delivery(id string) ports.Delivery {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range q.deliveries {
		if d.ID == id {
			return d
		}
	}
	panic("no delivery " + id)
}

// sub returns the stored subscription id.
func (q *fakeQueue) sub(id string) ports.Subscription {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.subs[id]
}

// deleteSub removes a subscription and its deliveries.
func (q *fakeQueue) deleteSub(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.subs, id)
	q.deliveries = slices.DeleteFunc(q.deliveries, func(d ports.Delivery) bool { return d.SubscriptionID == id })
}

func (q *fakeQueue) claimCalls() []claimCall {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.claims)
}

func (q *fakeQueue) settledCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.settled)
}

func (q *fakeQueue) postponeCalls() []postponeCall {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.postponed)
}

func (q *fakeQueue) setClaimErr(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.claimErr = err
}

// fakeSender answers each attempt with what answer returns, recording the deliveries sent.
type fakeSender struct {
	mu     sync.Mutex
	answer func(ctx context.Context, d ports.ClaimedDelivery) (int, error)
	sent   []ports.ClaimedDelivery
}

var _ ports.DeliverySender = (*fakeSender)(nil)

func (s *fakeSender) Send(ctx context.Context, d ports.ClaimedDelivery) (int, error) {
	s.mu.Lock()
	s.sent = append(s.sent, d)
	answer := s.answer
	s.mu.Unlock()
	return answer(ctx, d)
}

func (s *fakeSender) setAnswer(answer func(ctx context.Context, d ports.ClaimedDelivery) (int, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = answer
}

// sentDeliveries lists the deliveries sent, in order.
func (s *fakeSender) sentDeliveries() []ports.ClaimedDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// sentIDs lists the ids of the deliveries sent, in order.
func (s *fakeSender) sentIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.sent))
	for i, d := range s.sent {
		out[i] = d.ID
	}
	return out
}

// status answers every attempt with code.
func status(code int) func(context.Context, ports.ClaimedDelivery) (int, error) {
	return func(context.Context, ports.ClaimedDelivery) (int, error) { return code, nil }
}

// outcomes counts what the dispatcher observed.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) observe(kind string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = make(map[string]int)
	}
	o.n[kind] += n
}

func (o *outcomes) counts() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]int, len(o.n))
	for k, v := range o.n {
		out[k] = v
	}
	return out
}

// settleElsewhere marks a delivery DELIVERED, as another dispatcher that claimed it after
// this one's lease ended would.
func (q *fakeQueue) settleElsewhere(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := slices.IndexFunc(q.deliveries, func(d ports.Delivery) bool { return d.ID == id })
	q.deliveries[i].State = ports.DeliveryDelivered
}
