package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/postgres"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// subscriber is a subscription to alarm.opened and equipment.status_changed.
func subscriber(id string, created time.Duration) ports.Subscription {
	return ports.Subscription{ID: id, URL: "https://receiver.example/" + id, Secret: "0123456789abcdef0123",
		Types: []event.Type{event.AlarmOpened, event.StatusChanged}, CreatedAt: t0.Add(created)}
}

// openedEvent is the event of an alarm of press-01 opening.
func openedEvent(id string) event.Event {
	a := alarm.Alarm{ID: "al-" + id, EquipmentID: "press-01", SensorType: sensor.Temperature, State: alarm.StateActive,
		Severity: anomaly.SeverityLow, OpenedAt: t0, FirstAt: t0, LastAt: t0, Count: 1, PeakZ: 3.5, RulesVersion: "r1"}
	e, _ := event.ForAlarm(id, alarm.Opened, a, t0)
	return e
}

// deliveryCount counts the deliveries of the subscription.
func deliveryCount(t *testing.T, db *postgres.DB, subscriptionID string) int64 {
	t.Helper()
	n, err := postgres.QueryInt64(t.Context(), db, "SELECT count(*) FROM deliveries WHERE subscription_id = ?", subscriptionID)
	require.NoError(t, err)
	return n
}

// A subscription deleted while a batch is enqueueing its deliveries is passed over: the batch
// (readings and all) commits, rather than failing on the foreign key.
func TestIntegrationBatchPassesOverASubscriptionDeletedMeanwhile(t *testing.T) {
	db := sharedDB(t)
	s := stores(db)
	for _, sub := range []ports.Subscription{subscriber("sub-gone", 0), subscriber("sub-kept", time.Second)} {
		require.NoError(t, s.Subscriptions.CreateSubscription(t.Context(), sub))
	}
	held := beginHeld(t, sharedURL(t))
	_, err := held.tx.Exec(t.Context(), "DELETE FROM subscriptions WHERE id = 'sub-gone'")
	require.NoError(t, err)

	r := newReading("press-01", "r-1", 1, t0)
	written := make(chan error, 1)
	go func() {
		written <- s.Writer.WriteBatch(context.WithoutCancel(t.Context()), ports.ProcessedBatch{
			Readings:  []ports.StoredReading{r},
			Sightings: []ports.Sighting{{EquipmentID: "press-01", LastSeenAt: r.ReceivedAt}},
			Events:    []event.Event{openedEvent("ev-1")},
		})
	}()
	held.waitUntilBlocking(t, db)
	require.NoError(t, held.tx.Commit(t.Context()))
	require.NoError(t, <-written, "the batch commits")

	assert.Equal(t, int64(1), deliveryCount(t, db, "sub-kept"))
	assert.Equal(t, int64(0), deliveryCount(t, db, "sub-gone"))
	stored, err := s.Readings.StoredRefs(t.Context(), []ports.ReadingRef{{EquipmentID: "press-01", ReadingID: "r-1"}})
	require.NoError(t, err)
	assert.Len(t, stored, 1, "the batch's reading is stored")
}

// A claim passes over the deliveries that another claim holds, without waiting for it.
func TestIntegrationClaimPassesOverLockedDeliveries(t *testing.T) {
	db := sharedDB(t)
	s := stores(db)
	require.NoError(t, s.Subscriptions.CreateSubscription(t.Context(), subscriber("sub-a", 0)))
	require.NoError(t, s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{
		Sightings: []ports.Sighting{{EquipmentID: "press-01", LastSeenAt: t0}},
		Events:    []event.Event{openedEvent("ev-1"), openedEvent("ev-2")},
	}))
	held := beginHeld(t, sharedURL(t))
	_, err := held.tx.Exec(t.Context(), "SELECT id FROM deliveries WHERE event_id = 'ev-1' FOR UPDATE")
	require.NoError(t, err)

	// Were the claim to wait for the lock, it would fail here when its context expires.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := s.Deliveries.Claim(ctx, t0.Add(time.Minute), time.Minute, 10, nil)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "ev-2", got[0].EventID)
}

// Of two processes announcing one change, the second waits for the first, then records
// nothing: each change is announced once.
func TestIntegrationAnnouncementWaitsForOneInFlight(t *testing.T) {
	db := sharedDB(t)
	s := stores(db)
	require.NoError(t, s.Subscriptions.CreateSubscription(t.Context(), subscriber("sub-a", 0)))
	first := event.ForStatus("st-1", event.StatusChange{EquipmentID: "press-01", Status: equipment.StatusOnline}, t0)
	recorded, err := s.Ledger.Announce(t.Context(), []event.Event{first})
	require.NoError(t, err)
	require.Len(t, recorded, 1)

	// Another process records ONLINE -> OFFLINE, and has not committed yet.
	held := beginHeld(t, sharedURL(t))
	_, err = held.tx.Exec(t.Context(), "UPDATE equipment_status SET status = 'OFFLINE' WHERE equipment_id = 'press-01' AND status = 'ONLINE'")
	require.NoError(t, err)

	change := event.ForStatus("st-2", event.StatusChange{EquipmentID: "press-01", Previous: equipment.StatusOnline,
		Status: equipment.StatusOffline}, t0.Add(time.Minute))
	type result struct {
		recorded []event.Event
		err      error
	}
	announced := make(chan result, 1)
	go func() {
		r, err := s.Ledger.Announce(context.WithoutCancel(t.Context()), []event.Event{change})
		announced <- result{r, err}
	}()
	held.waitUntilBlocking(t, db)
	require.NoError(t, held.tx.Commit(t.Context()))
	r := <-announced
	require.NoError(t, r.err)
	assert.Empty(t, r.recorded, "the change was recorded by the other process")
	assert.Equal(t, int64(1), deliveryCount(t, db, "sub-a"), "only the first announcement enqueued a delivery")
}
