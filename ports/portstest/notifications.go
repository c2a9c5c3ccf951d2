package portstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// Notifications is the contract of ports.SubscriptionRepository and ports.DeliveryQueue, with
// the deliveries that batch writes (ports.ProcessedBatch.Events) and acknowledgements
// (ports.AlarmRepository.Acknowledge) enqueue in their transactions.
func Notifications(t *testing.T, newStores func(t *testing.T) Stores) {
	run := func(name string, f func(t *testing.T, s Stores)) {
		t.Run(name, func(t *testing.T) { f(t, notificationStores(t, newStores(t))) })
	}
	run("subscriptions_are_created_read_listed_and_deleted", subscriptionsLifecycle)
	run("batch_enqueues_one_delivery_per_subscription_that_wants_the_type", batchEnqueues)
	run("only_existing_subscriptions_get_deliveries", onlyExistingSubscriptions)
	run("refused_batch_enqueues_nothing", refusedBatchEnqueuesNothing)
	run("fenced_batch_enqueues_nothing", fencedBatchEnqueuesNothing)
	run("acknowledgement_enqueues_its_event_once", acknowledgementEnqueues)
	run("claim_takes_due_deliveries_oldest_first", claimOrder)
	run("claim_takes_at_most_limit", claimLimit)
	run("claim_passes_over_the_subscriptions_skipped", claimSkip)
	run("claim_leases_what_it_takes", claimLease)
	run("claim_passes_over_paused_subscriptions", claimPaused)
	run("concurrent_claims_never_share_a_delivery", claimConcurrent)
	run("settle_records_the_attempt_and_the_breaker", settle)
	run("settle_of_a_deleted_subscription", settleDeleted)
	run("postpone_moves_the_due_time_only", postpone)
	run("redeliver_makes_a_dead_delivery_pending", redeliver)
	run("deliveries_are_paged_newest_first", deliveriesPaged)
}

// StatusLedger is the contract of ports.StatusLedger: conditional announcements, their
// deliveries, and one winner among processes announcing one change together.
func StatusLedger(t *testing.T, newStores func(t *testing.T) Stores) {
	run := func(name string, f func(t *testing.T, s Stores)) {
		t.Run(name, func(t *testing.T) { f(t, notificationStores(t, newStores(t))) })
	}
	run("changes_are_recorded_over_the_status_announced", ledgerConditional)
	run("recorded_changes_enqueue_their_deliveries", ledgerDeliveries)
	run("concurrent_announcements_of_one_change_record_it_once", ledgerRace)
}

// notificationStores returns s, failing the test when it lacks a notification port.
func notificationStores(t *testing.T, s Stores) Stores {
	t.Helper()
	if s.Subscriptions == nil || s.Deliveries == nil || s.Ledger == nil {
		t.Fatal("the store lacks a SubscriptionRepository, DeliveryQueue or StatusLedger")
	}
	return s
}

// The notification fixtures' subscriptions, created a second apart in this order.
const (
	subA = "sub-a"
	subB = "sub-b"
	subC = "sub-c"
)

// lease is how long claims lease their deliveries in the fixtures.
const lease = 30 * time.Second

// subscription is a subscription created at base + created + receiptDelay (so that
// microseconds must survive), with a secret of its own.
func subscription(id string, created time.Duration, types ...event.Type) ports.Subscription {
	return ports.Subscription{ID: id, URL: "https://receiver.example/hooks/" + id, Types: types,
		Secret: "secret-of-" + id + "-0123456789abcdef", CreatedAt: at(created + receiptDelay)}
}

// subscribe creates the subscriptions.
func subscribe(t *testing.T, s Stores, subs ...ports.Subscription) {
	t.Helper()
	for _, sub := range subs {
		must(t, s.Subscriptions.CreateSubscription(t.Context(), sub))
	}
}

// transition is the event of an alarm transition of a press-01 temperature alarm, at
// base + d + receiptDelay.
func transition(id string, typ event.Type, d time.Duration) event.Event {
	a := newAlarm("al-"+id, press1, sensor.Temperature, 0)
	return event.Event{ID: id, Type: typ, At: at(d + receiptDelay), EquipmentID: press1, Alarm: &a}
}

// statusChange is the event of eq's status moving from previous to status, at base + d.
func statusChange(id, eq string, previous, status equipment.Status, d time.Duration) event.Event {
	return event.ForStatus(id, event.StatusChange{EquipmentID: eq, Previous: previous, Status: status, Reason: "test"},
		at(d+receiptDelay))
}

// enqueue writes a batch that sights press-01 and carries the events.
func enqueue(t *testing.T, s Stores, events ...event.Event) {
	t.Helper()
	write(t, s, ports.ProcessedBatch{Sightings: []ports.Sighting{{EquipmentID: press1, LastSeenAt: at(0)}}, Events: events})
}

// logOf returns every delivery of the subscription, newest first.
func logOf(t *testing.T, s Stores, subscriptionID string) []ports.Delivery {
	t.Helper()
	got, total, err := s.Subscriptions.Deliveries(t.Context(), ports.DeliveryQuery{SubscriptionID: subscriptionID, Limit: 1000})
	must(t, err)
	equal(t, int64(len(got)), total, "total of the deliveries of %s", subscriptionID)
	return got
}

// pending is the delivery of e to a subscription as enqueued: PENDING, created and due at
// the event's time, never tried. id and body are the ones the store gave it.
func pending(id, subscriptionID string, e event.Event, body []byte) ports.Delivery {
	return ports.Delivery{ID: id, SubscriptionID: subscriptionID, EventID: e.ID, EventType: e.Type, Body: body,
		State: ports.DeliveryPending, CreatedAt: e.At, NextAttemptAt: e.At}
}

// checkEnqueued checks that got (newest first) are the deliveries of events (oldest first)
// to the subscription, as enqueued, with ids that rise in the order enqueued and bodies that
// carry each event in its wire form.
func checkEnqueued(t *testing.T, subscriptionID string, events []event.Event, got []ports.Delivery) {
	t.Helper()
	if !equal(t, len(events), len(got), "number of deliveries to %s", subscriptionID) {
		return
	}
	var last int64
	for i, e := range events {
		d := got[len(got)-1-i]
		equal(t, pending(d.ID, subscriptionID, e, d.Body), d, "delivery of %s to %s", e.ID, subscriptionID)
		inUTC(t, d.CreatedAt, d.NextAttemptAt, d.LastAttemptAt, d.DeliveredAt)
		checkBody(t, e, d.Body)
		n, err := strconv.ParseInt(d.ID, 10, 64)
		if err != nil || n <= last {
			t.Errorf("delivery id %q is not an integer above the previous one's (%d)", d.ID, last)
		}
		last = n
	}
}

// checkBody checks that body is e's wire form: the envelope names it, and carries its data.
func checkBody(t *testing.T, e event.Event, body []byte) {
	t.Helper()
	var envelope struct {
		ID          string          `json:"id"`
		Type        event.Type      `json:"type"`
		EquipmentID string          `json:"equipmentId"`
		At          string          `json:"at"`
		Data        json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil {
		t.Errorf("body of the delivery of %s is not JSON: %v: %s", e.ID, err, body)
		return
	}
	if envelope.ID != e.ID || envelope.Type != e.Type || envelope.EquipmentID != e.EquipmentID ||
		envelope.At != e.At.Format("2006-01-02T15:04:05.000Z") || len(envelope.Data) < 2 {
		t.Errorf("body of the delivery of %s is not its wire form: %s", e.ID, body)
	}
}

// claim claims at now, failing the test on an error.
func claim(t *testing.T, s Stores, now time.Time, limit int, skip ...string) []ports.ClaimedDelivery {
	t.Helper()
	got, err := s.Deliveries.Claim(t.Context(), now, lease, limit, skip)
	must(t, err)
	return got
}

// claimedEvents names the claimed deliveries as "<event id>><subscription id>", in order.
func claimedEvents(claimed []ports.ClaimedDelivery) []string {
	out := []string{}
	for _, c := range claimed {
		out = append(out, c.EventID+">"+c.SubscriptionID)
	}
	return out
}

func subscriptionsLifecycle(t *testing.T, s Stores) {
	ctx := t.Context()
	b := subscription(subB, 2*time.Second, event.StatusChanged)
	a := subscription(subA, time.Second, event.AlarmOpened, event.AlarmCleared)
	subscribe(t, s, b, a)
	got, err := s.Subscriptions.Subscription(ctx, subA)
	must(t, err)
	equal(t, a, got, "subscription as stored")
	inUTC(t, got.CreatedAt, got.PausedUntil)
	list, err := s.Subscriptions.Subscriptions(ctx)
	must(t, err)
	equal(t, []ports.Subscription{a, b}, list, "subscriptions, oldest first")

	if err := s.Subscriptions.CreateSubscription(ctx, subscription(subA, time.Hour, event.AlarmEscalated)); !errors.Is(err, ports.ErrConflict) {
		t.Errorf("creating a subscription with a taken id: %v, want ports.ErrConflict", err)
	}
	_, err = s.Subscriptions.Subscription(ctx, "nope")
	notFound(t, err)

	// Deleting one deletes its deliveries, and leaves the others'.
	opened := transition("ev-1", event.AlarmOpened, time.Minute)
	changed := statusChange("ev-2", press1, "", equipment.StatusOnline, time.Minute)
	enqueue(t, s, opened, changed)
	must(t, s.Subscriptions.DeleteSubscription(ctx, subA))
	_, err = s.Subscriptions.Subscription(ctx, subA)
	notFound(t, err)
	_, _, err = s.Subscriptions.Deliveries(ctx, ports.DeliveryQuery{SubscriptionID: subA, Limit: 10})
	notFound(t, err)
	equal(t, []string{"ev-2>" + subB}, claimedEvents(claim(t, s, at(time.Hour), 10)), "claimable after the deletion")
	notFound(t, s.Subscriptions.DeleteSubscription(ctx, subA))
	list, err = s.Subscriptions.Subscriptions(ctx)
	must(t, err)
	equal(t, []ports.Subscription{b}, list, "subscriptions after the deletion")
}

func batchEnqueues(t *testing.T, s Stores) {
	subscribe(t, s,
		subscription(subA, 0, event.AlarmOpened, event.AlarmCleared),
		subscription(subB, time.Second, event.AlarmOpened),
		subscription(subC, 2*time.Second, event.StatusChanged))
	opened := transition("ev-1", event.AlarmOpened, time.Minute)
	escalated := transition("ev-2", event.AlarmEscalated, time.Minute)
	cleared := transition("ev-3", event.AlarmCleared, 2*time.Minute)
	a := newAlarm("al-1", press1, sensor.Temperature, time.Minute)
	write(t, s, ports.ProcessedBatch{
		Sightings: []ports.Sighting{{EquipmentID: press1, LastSeenAt: at(time.Minute)}},
		Alarms:    []alarm.Alarm{a},
		Events:    []event.Event{opened, escalated, cleared},
	})
	checkEnqueued(t, subA, []event.Event{opened, cleared}, logOf(t, s, subA))
	checkEnqueued(t, subB, []event.Event{opened}, logOf(t, s, subB))
	checkEnqueued(t, subC, nil, logOf(t, s, subC))
	// Deliveries are claimed in the order enqueued: by event, then by subscription.
	equal(t, []string{"ev-1>" + subA, "ev-1>" + subB, "ev-3>" + subA}, claimedEvents(claim(t, s, at(time.Hour), 10)),
		"claimed")
	// A batch without events enqueues nothing.
	write(t, s, batchOf([]ports.StoredReading{reading(press1, "r-1", sensor.Pressure, 1, at(0))}))
	equal(t, 2, len(logOf(t, s, subA)), "deliveries of sub-a after a batch without events")
}

func onlyExistingSubscriptions(t *testing.T, s Stores) {
	enqueue(t, s, transition("ev-1", event.AlarmOpened, time.Minute))
	subscribe(t, s, subscription(subA, 0, event.AlarmOpened))
	equal(t, 0, len(logOf(t, s, subA)), "deliveries of an event from before the subscription")
	second := transition("ev-2", event.AlarmOpened, 2*time.Minute)
	enqueue(t, s, second)
	checkEnqueued(t, subA, []event.Event{second}, logOf(t, s, subA))
	equal(t, []string{"ev-2>" + subA}, claimedEvents(claim(t, s, at(time.Hour), 10)), "claimed")
}

func refusedBatchEnqueuesNothing(t *testing.T, s Stores) {
	subscribe(t, s, subscription(subA, 0, event.Transitions...))
	if err := writeAlarms(t, s, newAlarm("al-1", press1, sensor.Temperature, time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A second open alarm on the sensor is refused, and so is everything with it.
	b := ports.ProcessedBatch{
		Sightings: []ports.Sighting{{EquipmentID: press1, LastSeenAt: at(2 * time.Minute)}},
		Alarms:    []alarm.Alarm{newAlarm("al-2", press1, sensor.Temperature, 2*time.Minute)},
		Events:    []event.Event{transition("ev-1", event.AlarmOpened, 2*time.Minute)},
	}
	if err := s.Writer.WriteBatch(t.Context(), b); err == nil {
		t.Fatal("a second open alarm on one sensor was stored")
	}
	equal(t, 0, len(logOf(t, s, subA)), "deliveries enqueued by the refused batch")
	equal(t, 0, len(claim(t, s, at(time.Hour), 10)), "deliveries claimed")
}

func fencedBatchEnqueuesNothing(t *testing.T, s Stores) {
	subscribe(t, s, subscription(subA, 0, event.AlarmOpened))
	ev := transition("ev-1", event.AlarmOpened, time.Minute)
	f := s.fencer()
	if f == nil {
		b := fencedBatch(1, ports.Fence{Partition: 0, Epoch: 1})
		b.Events = []event.Event{ev}
		if err := s.Writer.WriteBatch(t.Context(), b); err == nil {
			t.Fatal("WriteBatch of a fenced batch = nil, want an error")
		}
		equal(t, 0, len(logOf(t, s, subA)), "deliveries enqueued by the refused batch")
		return
	}
	old := advance(t, f, 0)
	current := advance(t, f, 0)
	stale := fencedBatch(1, ports.Fence{Partition: 0, Epoch: old})
	stale.Events = []event.Event{ev}
	fenced(t, s.Writer.WriteBatch(t.Context(), stale))
	equal(t, 0, len(logOf(t, s, subA)), "deliveries enqueued by the fenced batch")
	// The partition's holder writes it.
	stale.Fences = []ports.Fence{{Partition: 0, Epoch: current}}
	write(t, s, stale)
	checkEnqueued(t, subA, []event.Event{ev}, logOf(t, s, subA))
}

func acknowledgementEnqueues(t *testing.T, s Stores) {
	ctx := t.Context()
	subscribe(t, s, subscription(subA, 0, event.AlarmAcknowledged), subscription(subB, time.Second, event.AlarmOpened))
	if err := writeAlarms(t, s, newAlarm("al-1", press1, sensor.Temperature, time.Minute),
		newAlarm("al-2", press1, sensor.Vibration, time.Minute)); err != nil {
		t.Fatal(err)
	}
	var announced []alarm.Alarm
	announce := func(a alarm.Alarm) event.Event {
		announced = append(announced, a)
		return event.Acknowledged(fmt.Sprintf("ev-ack-%d", len(announced)), a)
	}
	acked, err := s.Alarms.Acknowledge(ctx, "al-1", "jo", "checked", at(5*time.Minute+receiptDelay), announce)
	must(t, err)
	if equal(t, 1, len(announced), "announcements") {
		equal(t, acked, announced[0], "the alarm announced")
		equal(t, alarm.StateAcknowledged, announced[0].State, "state of the alarm announced")
	}
	ev := event.Acknowledged("ev-ack-1", acked)
	checkEnqueued(t, subA, []event.Event{ev}, logOf(t, s, subA))
	equal(t, 0, len(logOf(t, s, subB)), "deliveries to a subscription that does not want acknowledgements")

	// An acknowledgement refused announces nothing and enqueues nothing.
	if _, err := s.Alarms.Acknowledge(ctx, "al-1", "kim", "", at(6*time.Minute), announce); !errors.Is(err, ports.ErrConflict) {
		t.Errorf("a second acknowledgement: %v, want ports.ErrConflict", err)
	}
	_, err = s.Alarms.Acknowledge(ctx, "nope", "kim", "", at(6*time.Minute), announce)
	notFound(t, err)
	equal(t, 1, len(announced), "announcements after the refused acknowledgements")
	// Without announce, an acknowledgement enqueues nothing.
	_, err = s.Alarms.Acknowledge(ctx, "al-2", "kim", "", at(6*time.Minute), nil)
	must(t, err)
	checkEnqueued(t, subA, []event.Event{ev}, logOf(t, s, subA))
}

// threeSubscriptionsFixture subscribes sub-a (alarm.opened) and sub-b (alarm.opened and
// alarm.cleared) and enqueues, due a second apart, ev-1 (opened), ev-2 (cleared) and ev-3
// (opened): five deliveries.
func threeSubscriptionsFixture(t *testing.T, s Stores) {
	t.Helper()
	subscribe(t, s, subscription(subA, 0, event.AlarmOpened), subscription(subB, time.Second, event.AlarmOpened, event.AlarmCleared))
	enqueue(t, s,
		transition("ev-1", event.AlarmOpened, time.Second),
		transition("ev-2", event.AlarmCleared, 2*time.Second),
		transition("ev-3", event.AlarmOpened, 3*time.Second))
}

func claimOrder(t *testing.T, s Stores) {
	threeSubscriptionsFixture(t, s)
	due := at(2*time.Second + receiptDelay) // ev-3 is due a second later
	got := claim(t, s, due, 10)
	equal(t, []string{"ev-1>" + subA, "ev-1>" + subB, "ev-2>" + subB}, claimedEvents(got), "claimed at ev-2's time")
	a, err := s.Subscriptions.Subscription(t.Context(), subA)
	must(t, err)
	b, err := s.Subscriptions.Subscription(t.Context(), subB)
	must(t, err)
	if len(got) == 3 {
		equal(t, a, got[0].Subscription, "subscription of the first delivery")
		equal(t, b, got[1].Subscription, "subscription of the second delivery")
		// Claiming leases: the delivery comes due again at the lease's end.
		log := logOf(t, s, subB)
		want := pending(got[1].ID, subB, transition("ev-1", event.AlarmOpened, time.Second), got[1].Body)
		want.NextAttemptAt = due.Add(lease)
		equal(t, want, got[1].Delivery, "delivery claimed")
		equal(t, want, log[len(log)-1], "delivery claimed, in the log")
	}
}

func claimLimit(t *testing.T, s Stores) {
	threeSubscriptionsFixture(t, s)
	now := at(time.Hour)
	equal(t, []string{"ev-1>" + subA, "ev-1>" + subB}, claimedEvents(claim(t, s, now, 2)), "first claim of two")
	equal(t, []string{"ev-2>" + subB, "ev-3>" + subA}, claimedEvents(claim(t, s, now, 2)), "second claim of two")
	equal(t, []string{"ev-3>" + subB}, claimedEvents(claim(t, s, now, 2)), "third claim of two")
	equal(t, 0, len(claim(t, s, now, 2)), "deliveries left")
}

func claimSkip(t *testing.T, s Stores) {
	threeSubscriptionsFixture(t, s)
	now := at(time.Hour)
	equal(t, []string{"ev-1>" + subB, "ev-2>" + subB, "ev-3>" + subB}, claimedEvents(claim(t, s, now, 10, subA, "sub-unknown")),
		"claimed skipping sub-a")
	equal(t, 0, len(claim(t, s, now, 10, subA)), "claimed skipping sub-a again")
	equal(t, []string{"ev-1>" + subA, "ev-3>" + subA}, claimedEvents(claim(t, s, now, 10)), "claimed skipping none")
}

func claimLease(t *testing.T, s Stores) {
	threeSubscriptionsFixture(t, s)
	first := at(2*time.Second + receiptDelay)
	equal(t, []string{"ev-1>" + subA, "ev-1>" + subB, "ev-2>" + subB}, claimedEvents(claim(t, s, first, 10)), "first claim")
	equal(t, 0, len(claim(t, s, first, 10)), "claimed again at once")
	equal(t, []string{"ev-3>" + subA, "ev-3>" + subB}, claimedEvents(claim(t, s, at(3*time.Second+receiptDelay), 10)),
		"claimed when ev-3 is due")
	equal(t, 0, len(claim(t, s, first.Add(lease-time.Microsecond), 10)), "claimed just before the first lease ends")
	// A dispatcher that died leaves its deliveries to the others when the lease ends.
	equal(t, []string{"ev-1>" + subA, "ev-1>" + subB, "ev-2>" + subB}, claimedEvents(claim(t, s, first.Add(lease), 10)),
		"claimed when the first lease ends")
}

func claimPaused(t *testing.T, s Stores) {
	ctx := t.Context()
	threeSubscriptionsFixture(t, s)
	claimed := claim(t, s, at(10*time.Second), 10) // leased until 40 s
	equal(t, 5, len(claimed), "claimed")
	// sub-a's breaker opens until 60 s, with ev-1 to be retried at 11 s.
	must(t, s.Deliveries.Settle(ctx, ports.DeliveryOutcome{DeliveryID: claimed[0].ID, SubscriptionID: subA,
		At: at(10 * time.Second), Status: 500, Error: "HTTP 500", State: ports.DeliveryPending,
		NextAttemptAt: at(11 * time.Second), Failures: 5, PausedUntil: at(time.Minute)}))
	equal(t, []string{"ev-1>" + subB, "ev-2>" + subB, "ev-3>" + subB}, claimedEvents(claim(t, s, at(45*time.Second), 10)),
		"claimed while sub-a is paused")
	got := claim(t, s, at(time.Minute), 10)
	equal(t, []string{"ev-1>" + subA, "ev-3>" + subA}, claimedEvents(got), "claimed once the pause is over")
	if len(got) > 0 {
		equal(t, 5, got[0].Subscription.Failures, "failures of the claimed delivery's subscription")
		equal(t, at(time.Minute), got[0].Subscription.PausedUntil, "pause of the claimed delivery's subscription")
		inUTC(t, got[0].Subscription.PausedUntil)
	}
}

func claimConcurrent(t *testing.T, s Stores) {
	subscribe(t, s, subscription(subA, 0, event.AlarmOpened))
	const n = 24
	var evs []event.Event
	for i := range n {
		evs = append(evs, transition(fmt.Sprintf("ev-%d", i), event.AlarmOpened, time.Duration(i)*time.Second))
	}
	enqueue(t, s, evs...)
	var (
		mu      sync.Mutex
		claimed []string
		wg      sync.WaitGroup
		errs    = make(chan error, 4)
		start   = make(chan struct{})
	)
	for range 4 {
		wg.Go(func() {
			<-start
			for {
				got, err := s.Deliveries.Claim(t.Context(), at(time.Hour), time.Hour, 3, nil)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, c := range got {
					claimed = append(claimed, c.ID)
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("claim: %v", err)
	}
	slices.Sort(claimed)
	equal(t, n, len(slices.Compact(slices.Clone(claimed))), "distinct deliveries claimed")
	equal(t, n, len(claimed), "deliveries claimed")
}

func settle(t *testing.T, s Stores) {
	ctx := t.Context()
	subscribe(t, s, subscription(subA, 0, event.AlarmOpened))
	e1, e2, e3 := transition("ev-1", event.AlarmOpened, time.Second), transition("ev-2", event.AlarmOpened, 2*time.Second),
		transition("ev-3", event.AlarmOpened, 3*time.Second)
	enqueue(t, s, e1, e2, e3)
	c := claim(t, s, at(10*time.Second), 10)
	if len(c) != 3 {
		t.Fatalf("claimed %d deliveries, want 3", len(c))
	}
	tried := func(d time.Duration) time.Time { return at(d + receiptDelay) }
	outcomes := []ports.DeliveryOutcome{
		{DeliveryID: c[0].ID, SubscriptionID: subA, At: tried(11 * time.Second), Status: 204, State: ports.DeliveryDelivered},
		{DeliveryID: c[1].ID, SubscriptionID: subA, At: tried(12 * time.Second), Status: 503, Error: "HTTP 503 Service Unavailable",
			State: ports.DeliveryPending, NextAttemptAt: tried(20 * time.Second), Failures: 1},
		{DeliveryID: c[2].ID, SubscriptionID: subA, At: tried(13 * time.Second), Error: "timeout after 5s",
			State: ports.DeliveryDead, Failures: 2, PausedUntil: tried(time.Minute)},
	}
	for _, o := range outcomes {
		must(t, s.Deliveries.Settle(ctx, o))
	}
	d1 := pending(c[0].ID, subA, e1, c[0].Body)
	d1.State, d1.Attempts, d1.NextAttemptAt, d1.LastAttemptAt, d1.LastStatus, d1.DeliveredAt =
		ports.DeliveryDelivered, 1, time.Time{}, tried(11*time.Second), 204, tried(11*time.Second)
	d2 := pending(c[1].ID, subA, e2, c[1].Body)
	d2.Attempts, d2.NextAttemptAt, d2.LastAttemptAt, d2.LastStatus, d2.LastError =
		1, tried(20*time.Second), tried(12*time.Second), 503, "HTTP 503 Service Unavailable"
	d3 := pending(c[2].ID, subA, e3, c[2].Body)
	d3.State, d3.Attempts, d3.NextAttemptAt, d3.LastAttemptAt, d3.LastError =
		ports.DeliveryDead, 1, time.Time{}, tried(13*time.Second), "timeout after 5s"
	log := logOf(t, s, subA)
	equal(t, []ports.Delivery{d3, d2, d1}, log, "deliveries after their attempts")
	for _, d := range log {
		inUTC(t, d.CreatedAt, d.NextAttemptAt, d.LastAttemptAt, d.DeliveredAt)
	}
	sub, err := s.Subscriptions.Subscription(ctx, subA)
	must(t, err)
	equal(t, 2, sub.Failures, "failures of the subscription")
	equal(t, tried(time.Minute), sub.PausedUntil, "pause of the subscription")

	// A second attempt succeeds and closes the breaker.
	must(t, s.Deliveries.Settle(ctx, ports.DeliveryOutcome{DeliveryID: c[1].ID, SubscriptionID: subA,
		At: tried(2 * time.Minute), Status: 200, State: ports.DeliveryDelivered}))
	d2.State, d2.Attempts, d2.NextAttemptAt, d2.LastAttemptAt, d2.LastStatus, d2.LastError, d2.DeliveredAt =
		ports.DeliveryDelivered, 2, time.Time{}, tried(2*time.Minute), 200, "", tried(2*time.Minute)
	equal(t, []ports.Delivery{d3, d2, d1}, logOf(t, s, subA), "deliveries after the second attempt")
	sub, err = s.Subscriptions.Subscription(ctx, subA)
	must(t, err)
	equal(t, 0, sub.Failures, "failures of the subscription")
	equal(t, time.Time{}, sub.PausedUntil, "pause of the subscription")
	equal(t, 0, len(claim(t, s, at(time.Hour), 10)), "claimable deliveries once delivered or dead")

	// A late settlement of a delivery that is no longer PENDING (a dispatcher that overran
	// its lease) records nothing, the breaker included.
	for _, late := range []ports.DeliveryOutcome{
		{DeliveryID: c[1].ID, SubscriptionID: subA, At: tried(3 * time.Minute), Status: 503, Error: "late",
			State: ports.DeliveryPending, NextAttemptAt: tried(4 * time.Minute), Failures: 9},
		{DeliveryID: c[2].ID, SubscriptionID: subA, At: tried(3 * time.Minute), Status: 200,
			State: ports.DeliveryDelivered, Failures: 9},
	} {
		if err := s.Deliveries.Settle(ctx, late); !errors.Is(err, ports.ErrConflict) {
			t.Errorf("settling %s again: %v, want ports.ErrConflict", late.DeliveryID, err)
		}
	}
	equal(t, []ports.Delivery{d3, d2, d1}, logOf(t, s, subA), "deliveries after late settlements")
	sub, err = s.Subscriptions.Subscription(ctx, subA)
	must(t, err)
	equal(t, 0, sub.Failures, "failures of the subscription after late settlements")

	// A settlement naming another subscription's delivery records nothing.
	subscribe(t, s, subscription(subB, time.Second, event.AlarmOpened))
	notFound(t, s.Deliveries.Settle(ctx, ports.DeliveryOutcome{DeliveryID: c[0].ID, SubscriptionID: subB,
		At: tried(time.Hour), State: ports.DeliveryDead}))
	notFound(t, s.Deliveries.Settle(ctx, ports.DeliveryOutcome{DeliveryID: "nope", SubscriptionID: subA,
		At: tried(time.Hour), State: ports.DeliveryDead}))
	equal(t, []ports.Delivery{d3, d2, d1}, logOf(t, s, subA), "deliveries after settlements of unknown deliveries")
}

func settleDeleted(t *testing.T, s Stores) {
	ctx := t.Context()
	subscribe(t, s, subscription(subA, 0, event.AlarmOpened))
	enqueue(t, s, transition("ev-1", event.AlarmOpened, time.Second))
	c := claim(t, s, at(time.Minute), 10)
	if len(c) != 1 {
		t.Fatalf("claimed %d deliveries, want 1", len(c))
	}
	must(t, s.Subscriptions.DeleteSubscription(ctx, subA))
	notFound(t, s.Deliveries.Settle(ctx, ports.DeliveryOutcome{DeliveryID: c[0].ID, SubscriptionID: subA,
		At: at(time.Minute), Status: 200, State: ports.DeliveryDelivered}))
	must(t, s.Deliveries.Postpone(ctx, []string{c[0].ID}, at(time.Hour)))
}

func postpone(t *testing.T, s Stores) {
	ctx := t.Context()
	subscribe(t, s, subscription(subA, 0, event.AlarmOpened))
	e1, e2 := transition("ev-1", event.AlarmOpened, time.Second), transition("ev-2", event.AlarmOpened, 2*time.Second)
	enqueue(t, s, e1, e2)
	c := claim(t, s, at(2*time.Second+receiptDelay), 10)
	if len(c) != 2 {
		t.Fatalf("claimed %d deliveries, want 2", len(c))
	}
	until := at(10*time.Minute + receiptDelay)
	must(t, s.Deliveries.Postpone(ctx, []string{c[0].ID, "999999999", "nope"}, until))
	want := pending(c[0].ID, subA, e1, c[0].Body)
	want.NextAttemptAt = until
	log := logOf(t, s, subA)
	equal(t, want, log[len(log)-1], "the delivery postponed")
	equal(t, []string{"ev-2>" + subA}, claimedEvents(claim(t, s, until.Add(-lease/2), 10)),
		"claimed before the postponement ends")
	equal(t, []string{"ev-1>" + subA}, claimedEvents(claim(t, s, until, 10)), "claimed when the postponement ends")
	// Only pending deliveries are postponed.
	must(t, s.Deliveries.Settle(ctx, ports.DeliveryOutcome{DeliveryID: c[1].ID, SubscriptionID: subA, At: until,
		Status: 200, State: ports.DeliveryDelivered}))
	must(t, s.Deliveries.Postpone(ctx, []string{c[1].ID}, at(time.Hour)))
	equal(t, time.Time{}, logOf(t, s, subA)[0].NextAttemptAt, "due time of a delivered delivery")
}

func redeliver(t *testing.T, s Stores) {
	ctx := t.Context()
	subscribe(t, s, subscription(subA, 0, event.AlarmOpened), subscription(subB, time.Second, event.AlarmOpened))
	ev := transition("ev-1", event.AlarmOpened, time.Second)
	enqueue(t, s, ev)
	c := claim(t, s, at(time.Minute), 10)
	if len(c) != 2 {
		t.Fatalf("claimed %d deliveries, want 2", len(c))
	}
	if _, err := s.Subscriptions.Redeliver(ctx, subA, c[0].ID, at(time.Hour)); !errors.Is(err, ports.ErrConflict) {
		t.Errorf("redelivering a pending delivery: %v, want ports.ErrConflict", err)
	}
	must(t, s.Deliveries.Settle(ctx, ports.DeliveryOutcome{DeliveryID: c[0].ID, SubscriptionID: subA, At: at(time.Minute),
		Status: 410, Error: "HTTP 410 Gone", State: ports.DeliveryDead, Failures: 1}))
	must(t, s.Deliveries.Settle(ctx, ports.DeliveryOutcome{DeliveryID: c[1].ID, SubscriptionID: subB, At: at(time.Minute),
		Status: 200, State: ports.DeliveryDelivered}))

	again := at(time.Hour + receiptDelay)
	got, err := s.Subscriptions.Redeliver(ctx, subA, c[0].ID, again)
	must(t, err)
	want := pending(c[0].ID, subA, ev, c[0].Body)
	want.NextAttemptAt, want.LastAttemptAt, want.LastStatus, want.LastError = again, at(time.Minute), 410, "HTTP 410 Gone"
	equal(t, want, got, "the delivery redelivered")
	equal(t, want, logOf(t, s, subA)[0], "the delivery redelivered, in the log")
	inUTC(t, got.CreatedAt, got.NextAttemptAt, got.LastAttemptAt)

	for name, ids := range map[string][2]string{
		"another_subscription's_delivery": {subB, c[0].ID},
		"unknown_subscription":            {"nope", c[0].ID},
		"unknown_delivery":                {subA, "999999999"},
		"malformed_delivery_id":           {subA, "nope"},
	} {
		_, err := s.Subscriptions.Redeliver(ctx, ids[0], ids[1], again)
		if !errors.Is(err, ports.ErrNotFound) {
			t.Errorf("%s: %v, want ports.ErrNotFound", name, err)
		}
	}
	if _, err := s.Subscriptions.Redeliver(ctx, subA, c[0].ID, again); !errors.Is(err, ports.ErrConflict) {
		t.Errorf("redelivering it again: %v, want ports.ErrConflict", err)
	}
	if _, err := s.Subscriptions.Redeliver(ctx, subB, c[1].ID, again); !errors.Is(err, ports.ErrConflict) {
		t.Errorf("redelivering a delivered delivery: %v, want ports.ErrConflict", err)
	}
	equal(t, 0, len(claim(t, s, again.Add(-time.Microsecond), 10)), "claimed before the redelivery is due")
	equal(t, []string{"ev-1>" + subA}, claimedEvents(claim(t, s, again, 10)), "claimed when the redelivery is due")
}

func deliveriesPaged(t *testing.T, s Stores) {
	ctx := t.Context()
	subscribe(t, s, subscription(subA, 0, event.AlarmOpened), subscription(subB, time.Second, event.AlarmOpened))
	var evs []event.Event
	for i := 1; i <= 5; i++ {
		evs = append(evs, transition(fmt.Sprintf("ev-%d", i), event.AlarmOpened, time.Duration(i)*time.Second))
	}
	enqueue(t, s, evs...)
	byEvent := map[string]string{} // delivery id of each event, to sub-a
	for _, c := range claim(t, s, at(time.Minute), 10, subB) {
		byEvent[c.EventID] = c.ID
	}
	for ev, state := range map[string]ports.DeliveryState{"ev-2": ports.DeliveryDelivered, "ev-4": ports.DeliveryDead, "ev-5": ports.DeliveryDead} {
		must(t, s.Deliveries.Settle(ctx, ports.DeliveryOutcome{DeliveryID: byEvent[ev], SubscriptionID: subA,
			At: at(time.Minute), State: state}))
	}
	eventsOf := func(ds []ports.Delivery) []string {
		out := []string{}
		for _, d := range ds {
			out = append(out, d.EventID)
		}
		return out
	}
	for name, c := range map[string]struct {
		q     ports.DeliveryQuery
		want  []string
		total int64
	}{
		"first_page":        {ports.DeliveryQuery{Limit: 2}, []string{"ev-5", "ev-4"}, 5},
		"second_page":       {ports.DeliveryQuery{Offset: 2, Limit: 2}, []string{"ev-3", "ev-2"}, 5},
		"last_page":         {ports.DeliveryQuery{Offset: 4, Limit: 2}, []string{"ev-1"}, 5},
		"beyond_the_last":   {ports.DeliveryQuery{Offset: 5, Limit: 2}, []string{}, 5},
		"dead":              {ports.DeliveryQuery{States: []ports.DeliveryState{ports.DeliveryDead}, Limit: 10}, []string{"ev-5", "ev-4"}, 2},
		"pending_delivered": {ports.DeliveryQuery{States: []ports.DeliveryState{ports.DeliveryPending, ports.DeliveryDelivered}, Limit: 10}, []string{"ev-3", "ev-2", "ev-1"}, 3},
		"dead_second_page":  {ports.DeliveryQuery{States: []ports.DeliveryState{ports.DeliveryDead}, Offset: 1, Limit: 10}, []string{"ev-4"}, 2},
	} {
		c.q.SubscriptionID = subA
		got, total, err := s.Subscriptions.Deliveries(ctx, c.q)
		if err != nil || !slices.Equal(eventsOf(got), c.want) || total != c.total {
			t.Errorf("%s: %v (total %d), %v; want %v (total %d)", name, eventsOf(got), total, err, c.want, c.total)
		}
	}
	equal(t, 5, len(logOf(t, s, subB)), "deliveries of sub-b")
	_, _, err := s.Subscriptions.Deliveries(ctx, ports.DeliveryQuery{SubscriptionID: "nope", Limit: 10})
	notFound(t, err)
}

func ledgerConditional(t *testing.T, s Stores) {
	ctx := t.Context()
	l := s.Ledger
	announced := func(want map[string]equipment.Status) {
		t.Helper()
		got, err := l.Announced(ctx)
		must(t, err)
		if len(want) == 0 && len(got) == 0 {
			return
		}
		equal(t, want, got, "statuses announced")
	}
	announce := func(what string, want []event.Event, evs ...event.Event) {
		t.Helper()
		got, err := l.Announce(ctx, evs)
		must(t, err)
		equalList(t, want, got, "changes recorded: %s", what)
	}
	announced(nil)
	s1 := statusChange("st-1", press1, "", equipment.StatusOnline, time.Second)
	s2 := statusChange("st-2", press2, "", equipment.StatusOffline, time.Second)
	announce("first announcements", []event.Event{s1, s2}, s1, s2)
	announced(map[string]equipment.Status{press1: equipment.StatusOnline, press2: equipment.StatusOffline})

	announce("a first announcement made before", nil, statusChange("st-3", press1, "", equipment.StatusOnline, 2*time.Second))
	announce("a change from another status", nil, statusChange("st-4", press1, equipment.StatusOffline, equipment.StatusAnomaly, 2*time.Second))
	s5 := statusChange("st-5", press1, equipment.StatusOnline, equipment.StatusAnomaly, 3*time.Second)
	announce("one change of two", []event.Event{s5}, s5,
		statusChange("st-6", press2, equipment.StatusAnomaly, equipment.StatusOnline, 3*time.Second))
	// Changes of one equipment in one call follow each other.
	s7 := statusChange("st-7", press2, equipment.StatusOffline, equipment.StatusOnline, 4*time.Second)
	s8 := statusChange("st-8", press2, equipment.StatusOnline, equipment.StatusMaintenance, 4*time.Second)
	announce("two changes in a row", []event.Event{s7, s8}, s7, s8)
	announced(map[string]equipment.Status{press1: equipment.StatusAnomaly, press2: equipment.StatusMaintenance})

	if _, err := l.Announce(ctx, []event.Event{transition("ev-1", event.AlarmOpened, time.Second)}); err == nil {
		t.Error("announcing an alarm event as a status change: no error")
	}
	announce("nothing", nil)
}

func ledgerDeliveries(t *testing.T, s Stores) {
	ctx := t.Context()
	subscribe(t, s, subscription(subA, 0, event.StatusChanged), subscription(subB, time.Second, event.AlarmOpened))
	s1 := statusChange("st-1", press1, "", equipment.StatusOnline, time.Second)
	s2 := statusChange("st-2", press2, "", equipment.StatusOffline, time.Second)
	_, err := s.Ledger.Announce(ctx, []event.Event{s1, s2})
	must(t, err)
	s4 := statusChange("st-4", press1, equipment.StatusOnline, equipment.StatusOffline, 2*time.Second)
	got, err := s.Ledger.Announce(ctx, []event.Event{statusChange("st-3", press1, "", equipment.StatusOffline, 2*time.Second), s4})
	must(t, err)
	equal(t, []event.Event{s4}, got, "changes recorded")
	checkEnqueued(t, subA, []event.Event{s1, s2, s4}, logOf(t, s, subA))
	equal(t, 0, len(logOf(t, s, subB)), "deliveries to a subscription that does not want status changes")
}

func ledgerRace(t *testing.T, s Stores) {
	subscribe(t, s, subscription(subA, 0, event.StatusChanged))
	const processes = 8
	race := func(round string, previous, status equipment.Status) event.Event {
		t.Helper()
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			results = make([][]event.Event, processes)
			errs    = make([]error, processes)
		)
		for i := range processes {
			wg.Go(func() {
				<-start
				ev := statusChange(fmt.Sprintf("%s-%d", round, i), press1, previous, status, time.Minute)
				results[i], errs[i] = s.Ledger.Announce(context.WithoutCancel(t.Context()), []event.Event{ev})
			})
		}
		close(start)
		wg.Wait()
		var winners []event.Event
		for i := range processes {
			must(t, errs[i])
			winners = append(winners, results[i]...)
		}
		if len(winners) != 1 {
			t.Fatalf("%s: %d processes recorded the change, want exactly one", round, len(winners))
		}
		return winners[0]
	}
	first := race("online", "", equipment.StatusOnline)
	second := race("offline", equipment.StatusOnline, equipment.StatusOffline)
	checkEnqueued(t, subA, []event.Event{first, second}, logOf(t, s, subA))
	got, err := s.Ledger.Announced(t.Context())
	must(t, err)
	equal(t, map[string]equipment.Status{press1: equipment.StatusOffline}, got, "statuses announced")
}
