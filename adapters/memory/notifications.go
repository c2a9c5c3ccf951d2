package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/production-line-monitor/plm/adapters/eventwire"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// outbox is the store's share of the notifications: subscriptions, their deliveries and the
// status last announced of each equipment. It lives under the store's lock, so that a batch
// write, an acknowledgement or an announcement enqueues its deliveries atomically with the
// change it reports.
type outbox struct {
	subscriptions []ports.Subscription // oldest first (by CreatedAt, then ID)
	deliveries    []ports.Delivery     // by ID, ascending
	lastID        int64                // of the latest delivery enqueued
	announced     map[string]announcement
}

// announcement is the status last announced of one equipment.
type announcement struct {
	status equipment.Status
	at     time.Time
}

// encodedEvent is an event with its wire form, ready to enqueue.
type encodedEvent struct {
	event.Event
	body []byte
}

// encodeEvents writes the events in their wire form; nothing is stored yet.
func encodeEvents(events []event.Event) ([]encodedEvent, error) {
	out := make([]encodedEvent, len(events))
	for i, e := range events {
		body, err := eventwire.Encode(e)
		if err != nil {
			return nil, fmt.Errorf("enqueue deliveries: %w", err)
		}
		out[i] = encodedEvent{Event: e, body: body}
	}
	return out, nil
}

// enqueue adds, for each event in order, a PENDING delivery to every subscription that wants
// its type, created and due at the event's time. Called with the lock held.
func (o *outbox) enqueue(events []encodedEvent) {
	for _, e := range events {
		for _, sub := range o.subscriptions {
			if !sub.Wants(e.Type) {
				continue
			}
			o.lastID++
			o.deliveries = append(o.deliveries, ports.Delivery{
				ID: strconv.FormatInt(o.lastID, 10), SubscriptionID: sub.ID, EventID: e.ID, EventType: e.Type,
				Body: slices.Clone(e.body), State: ports.DeliveryPending, CreatedAt: e.At, NextAttemptAt: e.At,
			})
		}
	}
}

// subscription returns the index of the subscription id, or -1.
func (o *outbox) subscription(id string) int {
	return slices.IndexFunc(o.subscriptions, func(s ports.Subscription) bool { return s.ID == id })
}

// delivery returns the index of the delivery id of the subscription, or -1.
func (o *outbox) delivery(subscriptionID, id string) int {
	return slices.IndexFunc(o.deliveries, func(d ports.Delivery) bool {
		return d.ID == id && d.SubscriptionID == subscriptionID
	})
}

func cloneSubscription(s ports.Subscription) ports.Subscription {
	s.Types = slices.Clone(s.Types)
	return s
}

func cloneDelivery(d ports.Delivery) ports.Delivery {
	d.Body = slices.Clone(d.Body)
	return d
}

// Subscriptions is the store's ports.SubscriptionRepository.
type Subscriptions struct{ s *Store }

var _ ports.SubscriptionRepository = (*Subscriptions)(nil)

// Subscriptions returns the store's subscription repository.
func (s *Store) Subscriptions() *Subscriptions { return &Subscriptions{s: s} }

// CreateSubscription implements ports.SubscriptionRepository.
func (r *Subscriptions) CreateSubscription(_ context.Context, sub ports.Subscription) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return r.s.Err
	}
	o := &r.s.outbox
	if o.subscription(sub.ID) >= 0 {
		return fmt.Errorf("create subscription %s: %w", sub.ID, ports.ErrConflict)
	}
	o.subscriptions = append(o.subscriptions, cloneSubscription(sub))
	slices.SortStableFunc(o.subscriptions, func(a, b ports.Subscription) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return nil
}

// Subscription implements ports.SubscriptionRepository.
func (r *Subscriptions) Subscription(_ context.Context, id string) (ports.Subscription, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return ports.Subscription{}, r.s.Err
	}
	i := r.s.outbox.subscription(id)
	if i < 0 {
		return ports.Subscription{}, fmt.Errorf("subscription %s: %w", id, ports.ErrNotFound)
	}
	return cloneSubscription(r.s.outbox.subscriptions[i]), nil
}

// Subscriptions implements ports.SubscriptionRepository.
func (r *Subscriptions) Subscriptions(context.Context) ([]ports.Subscription, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return nil, r.s.Err
	}
	out := make([]ports.Subscription, len(r.s.outbox.subscriptions))
	for i, sub := range r.s.outbox.subscriptions {
		out[i] = cloneSubscription(sub)
	}
	return out, nil
}

// DeleteSubscription implements ports.SubscriptionRepository.
func (r *Subscriptions) DeleteSubscription(_ context.Context, id string) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return r.s.Err
	}
	o := &r.s.outbox
	i := o.subscription(id)
	if i < 0 {
		return fmt.Errorf("delete subscription %s: %w", id, ports.ErrNotFound)
	}
	o.subscriptions = slices.Delete(o.subscriptions, i, i+1)
	o.deliveries = slices.DeleteFunc(o.deliveries, func(d ports.Delivery) bool { return d.SubscriptionID == id })
	return nil
}

// Deliveries implements ports.SubscriptionRepository.
func (r *Subscriptions) Deliveries(_ context.Context, q ports.DeliveryQuery) ([]ports.Delivery, int64, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return nil, 0, r.s.Err
	}
	o := &r.s.outbox
	if o.subscription(q.SubscriptionID) < 0 {
		return nil, 0, fmt.Errorf("deliveries of subscription %s: %w", q.SubscriptionID, ports.ErrNotFound)
	}
	var all []ports.Delivery
	for i := len(o.deliveries) - 1; i >= 0; i-- { // newest first
		d := o.deliveries[i]
		if d.SubscriptionID == q.SubscriptionID && (len(q.States) == 0 || slices.Contains(q.States, d.State)) {
			all = append(all, d)
		}
	}
	lo := min(max(q.Offset, 0), len(all))
	hi := min(lo+max(q.Limit, 0), len(all))
	out := make([]ports.Delivery, 0, hi-lo)
	for _, d := range all[lo:hi] {
		out = append(out, cloneDelivery(d))
	}
	return out, int64(len(all)), nil
}

// Redeliver implements ports.SubscriptionRepository.
func (r *Subscriptions) Redeliver(_ context.Context, subscriptionID, deliveryID string, at time.Time) (ports.Delivery, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.Err != nil {
		return ports.Delivery{}, r.s.Err
	}
	i := r.s.outbox.delivery(subscriptionID, deliveryID)
	if i < 0 {
		return ports.Delivery{}, fmt.Errorf("redeliver %s of subscription %s: %w", deliveryID, subscriptionID, ports.ErrNotFound)
	}
	d := &r.s.outbox.deliveries[i]
	if d.State != ports.DeliveryDead {
		return ports.Delivery{}, fmt.Errorf("redeliver %s of subscription %s: it is %s: %w",
			deliveryID, subscriptionID, d.State, ports.ErrConflict)
	}
	d.State, d.Attempts, d.NextAttemptAt = ports.DeliveryPending, 0, at
	return cloneDelivery(*d), nil
}

// DeliveryQueue is the store's ports.DeliveryQueue.
type DeliveryQueue struct{ s *Store }

var _ ports.DeliveryQueue = (*DeliveryQueue)(nil)

// DeliveryQueue returns the store's delivery queue.
func (s *Store) DeliveryQueue() *DeliveryQueue { return &DeliveryQueue{s: s} }

// Claim implements ports.DeliveryQueue.
func (q *DeliveryQueue) Claim(_ context.Context, now time.Time, lease time.Duration, limit int, skip []string) ([]ports.ClaimedDelivery, error) {
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	if q.s.Err != nil {
		return nil, q.s.Err
	}
	o := &q.s.outbox
	var out []ports.ClaimedDelivery
	for i := range o.deliveries {
		if len(out) >= limit {
			break
		}
		d := &o.deliveries[i]
		if d.State != ports.DeliveryPending || d.NextAttemptAt.After(now) || slices.Contains(skip, d.SubscriptionID) {
			continue
		}
		sub := o.subscriptions[o.subscription(d.SubscriptionID)] // deleted with its deliveries
		if sub.PausedUntil.After(now) {
			continue
		}
		d.NextAttemptAt = now.Add(lease)
		out = append(out, ports.ClaimedDelivery{Delivery: cloneDelivery(*d), Subscription: cloneSubscription(sub)})
	}
	return out, nil
}

// Settle implements ports.DeliveryQueue.
func (q *DeliveryQueue) Settle(_ context.Context, out ports.DeliveryOutcome) error {
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	if q.s.Err != nil {
		return q.s.Err
	}
	out, err := out.Normalized()
	if err != nil {
		return err
	}
	o := &q.s.outbox
	i := o.delivery(out.SubscriptionID, out.DeliveryID)
	if i < 0 {
		return fmt.Errorf("settle delivery %s: %w", out.DeliveryID, ports.ErrNotFound)
	}
	d := &o.deliveries[i]
	if d.State != ports.DeliveryPending {
		return fmt.Errorf("settle delivery %s: it is %s: %w", out.DeliveryID, d.State, ports.ErrConflict)
	}
	d.State, d.Attempts, d.NextAttemptAt = out.State, d.Attempts+1, out.NextAttemptAt
	d.LastAttemptAt, d.LastStatus, d.LastError = out.At, out.Status, out.Error
	if out.State == ports.DeliveryDelivered {
		d.DeliveredAt = out.At
	}
	sub := &o.subscriptions[o.subscription(out.SubscriptionID)]
	sub.Failures, sub.PausedUntil = out.Failures, out.PausedUntil
	return nil
}

// Postpone implements ports.DeliveryQueue.
func (q *DeliveryQueue) Postpone(_ context.Context, deliveryIDs []string, until time.Time) error {
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	if q.s.Err != nil {
		return q.s.Err
	}
	for i := range q.s.outbox.deliveries {
		d := &q.s.outbox.deliveries[i]
		if d.State == ports.DeliveryPending && slices.Contains(deliveryIDs, d.ID) {
			d.NextAttemptAt = until
		}
	}
	return nil
}

// StatusLedger is the store's ports.StatusLedger.
type StatusLedger struct{ s *Store }

var _ ports.StatusLedger = (*StatusLedger)(nil)

// StatusLedger returns the store's status ledger.
func (s *Store) StatusLedger() *StatusLedger { return &StatusLedger{s: s} }

// Announced implements ports.StatusLedger.
func (l *StatusLedger) Announced(context.Context) (map[string]equipment.Status, error) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.s.Err != nil {
		return nil, l.s.Err
	}
	out := make(map[string]equipment.Status, len(l.s.outbox.announced))
	for id, a := range l.s.outbox.announced {
		out[id] = a.status
	}
	return out, nil
}

// Announce implements ports.StatusLedger.
func (l *StatusLedger) Announce(_ context.Context, events []event.Event) ([]event.Event, error) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.s.Err != nil {
		return nil, l.s.Err
	}
	if err := statusChanges(events); err != nil {
		return nil, err
	}
	encoded, err := encodeEvents(events)
	if err != nil {
		return nil, fmt.Errorf("announce %d status changes: %w", len(events), err)
	}
	o := &l.s.outbox
	if o.announced == nil {
		o.announced = make(map[string]announcement)
	}
	var recorded []event.Event
	var queued []encodedEvent
	for _, e := range encoded {
		c := e.Status
		cur, ok := o.announced[c.EquipmentID]
		if (c.Previous == "" && ok) || (c.Previous != "" && (!ok || cur.status != c.Previous)) {
			continue // announced by another, or from another status
		}
		o.announced[c.EquipmentID] = announcement{status: c.Status, at: e.At}
		recorded = append(recorded, e.Event)
		queued = append(queued, e)
	}
	o.enqueue(queued)
	return recorded, nil
}

// statusChanges checks that every event is a status change.
func statusChanges(events []event.Event) error {
	for _, e := range events {
		if e.Type != event.StatusChanged || e.Status == nil || e.Status.EquipmentID == "" {
			return fmt.Errorf("announce event %s: %s is not a status change", e.ID, e.Type)
		}
	}
	return nil
}
