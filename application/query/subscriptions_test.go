package query_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/application/notify"
	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

func TestSubscriptions_list_and_get_without_the_secret(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	subs := f.store.Subscriptions()
	for _, s := range []ports.Subscription{
		{ID: "closed", URL: "https://a.example/", Types: []event.Type{event.AlarmOpened}, Secret: "secret-closed-0123", CreatedAt: t0},
		{ID: "open", URL: "https://b.example/", Types: event.Transitions, Secret: "secret-open-0123456", CreatedAt: t0.Add(time.Second),
			Failures: 5, PausedUntil: t0.Add(30 * time.Second)},
		{ID: "half-open", URL: "https://c.example/", Types: []event.Type{event.AlarmCleared}, Secret: "secret-half-0123456", CreatedAt: t0.Add(2 * time.Second),
			Failures: 6, PausedUntil: t0.Add(-time.Second)},
	} {
		require.NoError(t, subs.CreateSubscription(ctx, s))
	}
	h := query.NewSubscriptionsHandler(subs, f.clock)

	list, err := h.List(ctx)
	require.NoError(t, err)
	want := []query.SubscriptionView{
		{ID: "closed", URL: "https://a.example/", Types: []event.Type{event.AlarmOpened}, CreatedAt: t0,
			Breaker: query.BreakerView{State: notify.BreakerClosed}},
		{ID: "open", URL: "https://b.example/", Types: event.Transitions, CreatedAt: t0.Add(time.Second),
			Breaker: query.BreakerView{State: notify.BreakerOpen, Failures: 5, PausedUntil: t0.Add(30 * time.Second)}},
		{ID: "half-open", URL: "https://c.example/", Types: []event.Type{event.AlarmCleared}, CreatedAt: t0.Add(2 * time.Second),
			Breaker: query.BreakerView{State: notify.BreakerHalfOpen, Failures: 6, PausedUntil: t0.Add(-time.Second)}},
	}
	assert.Equal(t, want, list, "oldest first")
	assert.NotContains(t, fmt.Sprintf("%+v", list), "secret-", "no secret in the views")

	one, err := h.Get(ctx, "open")
	require.NoError(t, err)
	assert.Equal(t, want[1], one)
	f.clock.Advance(30 * time.Second)
	one, err = h.Get(ctx, "open")
	require.NoError(t, err)
	assert.Equal(t, notify.BreakerHalfOpen, one.Breaker.State, "once the cooldown is over")

	_, err = h.Get(ctx, "unknown")
	assert.ErrorIs(t, err, ports.ErrNotFound)
	f.store.SetErr(errStorageDown)
	_, err = h.List(ctx)
	assert.ErrorIs(t, err, ports.ErrUnavailable)
}

func TestSubscriptions_deliveries_paged_newest_first(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	require.NoError(t, f.store.Subscriptions().CreateSubscription(ctx,
		ports.Subscription{ID: "sub-1", URL: "https://a.example/", Types: []event.Type{event.StatusChanged}, CreatedAt: t0}))
	// Three status changes, each a delivery; the oldest ends DEAD.
	statuses := []equipment.Status{equipment.StatusOnline, equipment.StatusAnomaly, equipment.StatusOnline}
	prev := equipment.Status("")
	for i, st := range statuses {
		_, err := f.store.StatusLedger().Announce(ctx, []event.Event{event.ForStatus(fmt.Sprintf("evt-%d", i+1),
			event.StatusChange{EquipmentID: "press-01", Previous: prev, Status: st}, t0.Add(time.Duration(i)*time.Second))})
		require.NoError(t, err)
		prev = st
	}
	claimed, err := f.store.DeliveryQueue().Claim(ctx, t0, time.Minute, 1, nil)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.NoError(t, f.store.DeliveryQueue().Settle(ctx, ports.DeliveryOutcome{DeliveryID: claimed[0].ID, SubscriptionID: "sub-1",
		At: t0, Status: 410, Error: "the endpoint answered 410", State: ports.DeliveryDead}))
	h := query.NewSubscriptionsHandler(f.store.Subscriptions(), f.clock)

	page, err := h.Deliveries(ctx, query.DeliveryList{SubscriptionID: "sub-1", PageSize: 2})
	require.NoError(t, err)
	assert.Equal(t, 1, page.Page)
	assert.Equal(t, 2, page.PageSize)
	assert.EqualValues(t, 3, page.Total)
	assert.EqualValues(t, 2, page.TotalPages)
	require.Len(t, page.Deliveries, 2)
	assert.Equal(t, []string{"evt-3", "evt-2"}, []string{page.Deliveries[0].EventID, page.Deliveries[1].EventID})

	page, err = h.Deliveries(ctx, query.DeliveryList{SubscriptionID: "sub-1", Page: 2, PageSize: 2})
	require.NoError(t, err)
	require.Len(t, page.Deliveries, 1)
	assert.Equal(t, "evt-1", page.Deliveries[0].EventID)
	assert.Equal(t, ports.DeliveryDead, page.Deliveries[0].State)

	page, err = h.Deliveries(ctx, query.DeliveryList{SubscriptionID: "sub-1", States: []ports.DeliveryState{ports.DeliveryDead}})
	require.NoError(t, err)
	assert.Equal(t, query.DefaultPageSize, page.PageSize, "the default page size")
	require.Len(t, page.Deliveries, 1)
	assert.Equal(t, 410, page.Deliveries[0].LastStatus)
	assert.EqualValues(t, 1, page.Total)

	page, err = h.Deliveries(ctx, query.DeliveryList{SubscriptionID: "sub-1", Page: 9})
	require.NoError(t, err)
	assert.Empty(t, page.Deliveries, "a page past the end")
	assert.EqualValues(t, 3, page.Total)

	_, err = h.Deliveries(ctx, query.DeliveryList{SubscriptionID: "unknown"})
	assert.ErrorIs(t, err, ports.ErrNotFound)
}
