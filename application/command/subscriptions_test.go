package command_test

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

func TestCreateSubscription_refuses_what_breaks_the_rules(t *testing.T) {
	ok := command.CreateSubscription{URL: "https://hooks.example/plm", Types: []event.Type{event.AlarmOpened}}
	with := func(change func(*command.CreateSubscription)) command.CreateSubscription {
		c := ok
		c.Types = append([]event.Type(nil), ok.Types...)
		change(&c)
		return c
	}
	tests := []struct {
		name string
		cmd  command.CreateSubscription
		want map[string]string // field → message
	}{
		{"url_missing", with(func(c *command.CreateSubscription) { c.URL = "" }), map[string]string{"url": command.ErrSubscriptionURL.Error()}},
		{"url_relative", with(func(c *command.CreateSubscription) { c.URL = "/hooks/plm" }), map[string]string{"url": command.ErrSubscriptionURL.Error()}},
		{"url_ftp", with(func(c *command.CreateSubscription) { c.URL = "ftp://hooks.example/" }), map[string]string{"url": command.ErrSubscriptionURL.Error()}},
		{"url_without_host", with(func(c *command.CreateSubscription) { c.URL = "http:///hooks" }), map[string]string{"url": command.ErrSubscriptionURL.Error()}},
		{"url_opaque", with(func(c *command.CreateSubscription) { c.URL = "http:hooks.example" }), map[string]string{"url": command.ErrSubscriptionURL.Error()}},
		{"url_with_a_space", with(func(c *command.CreateSubscription) { c.URL = "https://hooks.example/a b" }), map[string]string{"url": command.ErrSubscriptionURL.Error()}},
		{"url_with_a_newline", with(func(c *command.CreateSubscription) { c.URL = "https://hooks.example/\nX: y" }), map[string]string{"url": command.ErrSubscriptionURL.Error()}},
		{"url_2049_bytes", with(func(c *command.CreateSubscription) { c.URL = "https://h.example/" + strings.Repeat("a", 2049-18) }), map[string]string{"url": "must be at most 2048 characters long"}},
		{"types_none", with(func(c *command.CreateSubscription) { c.Types = nil }), map[string]string{"types": "must list at least one event type"}},
		{"types_anomaly", with(func(c *command.CreateSubscription) { c.Types = []event.Type{event.AlarmOpened, event.AnomalyDetected} }),
			map[string]string{"types[1]": command.ErrAnomalyNotified.Error()}},
		{"types_unknown", with(func(c *command.CreateSubscription) { c.Types = []event.Type{"alarm.exploded"} }),
			map[string]string{"types[0]": "must be one of alarm.opened, alarm.escalated, alarm.acknowledged, alarm.cleared, equipment.status_changed, incident.opened, incident.cleared"}},
		{"types_repeated", with(func(c *command.CreateSubscription) {
			c.Types = []event.Type{event.AlarmOpened, event.AlarmCleared, event.AlarmOpened}
		}), map[string]string{"types[2]": "is listed twice"}},
		{"secret_15_characters", with(func(c *command.CreateSubscription) { c.Secret = strings.Repeat("s", 15) }), map[string]string{"secret": command.ErrSecret.Error()}},
		{"secret_257_characters", with(func(c *command.CreateSubscription) { c.Secret = strings.Repeat("s", 257) }), map[string]string{"secret": command.ErrSecret.Error()}},
		{"secret_with_a_space", with(func(c *command.CreateSubscription) { c.Secret = "correct horse battery" }), map[string]string{"secret": command.ErrSecret.Error()}},
		{"secret_not_ascii", with(func(c *command.CreateSubscription) { c.Secret = strings.Repeat("é", 10) }), map[string]string{"secret": command.ErrSecret.Error()}},
		{"everything_at_once", command.CreateSubscription{URL: "mailto:ops@example.com", Types: []event.Type{"anomaly", "anomaly"}, Secret: "short"},
			map[string]string{"url": command.ErrSubscriptionURL.Error(), "types[0]": command.ErrAnomalyNotified.Error(),
				"types[1]": command.ErrAnomalyNotified.Error(), "secret": command.ErrSecret.Error()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := memory.NewStore()
			h := command.NewCreateSubscriptionHandler(store.Subscriptions(), memory.NewClock(start), &memory.IDs{})
			_, err := h.Handle(context.Background(), tt.cmd)
			got := make(map[string]string)
			for _, v := range asValidation(t, err) {
				got[v.Field] = v.Message
			}
			assert.Equal(t, tt.want, got)
			subs, err := store.Subscriptions().Subscriptions(context.Background())
			require.NoError(t, err)
			assert.Empty(t, subs, "a refused subscription was stored")
		})
	}
}

func TestCreateSubscription_stores_it(t *testing.T) {
	now := start.Add(123456789 * time.Nanosecond)
	tests := []struct {
		name string
		cmd  command.CreateSubscription
	}{
		{"secret_16_characters", command.CreateSubscription{URL: "http://10.0.0.5:8080/hook?token=x", Types: []event.Type{event.StatusChanged},
			Secret: "0123456789abcdef"}},
		{"secret_256_characters_url_2048_bytes", command.CreateSubscription{URL: "https://h.example/" + strings.Repeat("a", 2048-18),
			Types: event.Transitions, Secret: strings.Repeat("~", 256)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := memory.NewStore()
			h := command.NewCreateSubscriptionHandler(store.Subscriptions(), memory.NewClock(now), &memory.IDs{})
			got, err := h.Handle(context.Background(), tt.cmd)
			require.NoError(t, err)
			want := ports.Subscription{ID: "id-1", URL: tt.cmd.URL, Types: tt.cmd.Types, Secret: tt.cmd.Secret,
				CreatedAt: now.Truncate(time.Microsecond)}
			assert.Equal(t, want, got)
			stored, err := store.Subscriptions().Subscription(context.Background(), "id-1")
			require.NoError(t, err)
			assert.Equal(t, want, stored)
		})
	}
}

func TestCreateSubscription_makes_a_secret_when_none_is_given(t *testing.T) {
	store := memory.NewStore()
	h := command.NewCreateSubscriptionHandler(store.Subscriptions(), memory.NewClock(start), &memory.IDs{})
	cmd := command.CreateSubscription{URL: "https://hooks.example/plm", Types: []event.Type{event.AlarmOpened}}
	a, err := h.Handle(context.Background(), cmd)
	require.NoError(t, err)
	b, err := h.Handle(context.Background(), cmd)
	require.NoError(t, err)

	raw, err := hex.DecodeString(a.Secret)
	require.NoError(t, err, "hex")
	assert.Len(t, raw, 32)
	assert.NoError(t, command.CheckSecret(a.Secret), "a secret the service makes passes its own rules")
	assert.NotEqual(t, a.Secret, b.Secret)
	stored, err := store.Subscriptions().Subscription(context.Background(), a.ID)
	require.NoError(t, err)
	assert.Equal(t, a.Secret, stored.Secret, "the secret is kept to sign with")
}

func TestCreateSubscription_storage_down(t *testing.T) {
	store := memory.NewStore()
	store.SetErr(errStorageDown)
	h := command.NewCreateSubscriptionHandler(store.Subscriptions(), memory.NewClock(start), &memory.IDs{})
	_, err := h.Handle(context.Background(), command.CreateSubscription{URL: "https://hooks.example/", Types: []event.Type{event.AlarmCleared}})
	assert.ErrorIs(t, err, ports.ErrUnavailable)
}

func TestDeleteSubscription(t *testing.T) {
	ctx := context.Background()
	store := memory.NewStore()
	subs := store.Subscriptions()
	require.NoError(t, subs.CreateSubscription(ctx, ports.Subscription{ID: "sub-1", URL: "https://hooks.example/", Types: event.Transitions}))
	h := command.NewDeleteSubscriptionHandler(subs)

	require.NoError(t, h.Handle(ctx, command.DeleteSubscription{ID: "sub-1"}))
	_, err := subs.Subscription(ctx, "sub-1")
	assert.ErrorIs(t, err, ports.ErrNotFound)
	assert.ErrorIs(t, h.Handle(ctx, command.DeleteSubscription{ID: "sub-1"}), ports.ErrNotFound, "deleted twice")
}

// deadDelivery stores a subscription to status changes with one delivery whose only attempt
// failed for good, and returns the store and the delivery's id.
func deadDelivery(t *testing.T) (*memory.Store, string) {
	t.Helper()
	ctx := context.Background()
	store := memory.NewStore()
	require.NoError(t, store.Subscriptions().CreateSubscription(ctx,
		ports.Subscription{ID: "sub-1", URL: "https://hooks.example/", Types: []event.Type{event.StatusChanged}, CreatedAt: start}))
	_, err := store.StatusLedger().Announce(ctx, []event.Event{event.ForStatus("evt-1",
		event.StatusChange{EquipmentID: "press-01", Status: equipment.StatusOnline, Reason: "first reading"}, start)})
	require.NoError(t, err)
	claimed, err := store.DeliveryQueue().Claim(ctx, start, time.Minute, 10, nil)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.NoError(t, store.DeliveryQueue().Settle(ctx, ports.DeliveryOutcome{DeliveryID: claimed[0].ID, SubscriptionID: "sub-1",
		At: start, Status: 500, Error: "the endpoint answered 500", State: ports.DeliveryDead}))
	return store, claimed[0].ID
}

func TestRedeliver(t *testing.T) {
	ctx := context.Background()
	store, id := deadDelivery(t)
	clock := memory.NewClock(start.Add(time.Hour))
	woken := 0
	h := command.NewRedeliverHandler(store.Subscriptions(), clock).WithWake(func() { woken++ })

	d, err := h.Handle(ctx, command.Redeliver{SubscriptionID: "sub-1", DeliveryID: id})
	require.NoError(t, err)
	assert.Equal(t, ports.DeliveryPending, d.State)
	assert.Zero(t, d.Attempts, "a new run of attempts")
	assert.Equal(t, start.Add(time.Hour), d.NextAttemptAt, "due now")
	assert.Equal(t, 1, woken, "the dispatcher is woken")
	claimed, err := store.DeliveryQueue().Claim(ctx, clock.Now(), time.Minute, 10, nil)
	require.NoError(t, err)
	assert.Len(t, claimed, 1, "the dispatcher can take it")

	_, err = h.Handle(ctx, command.Redeliver{SubscriptionID: "sub-1", DeliveryID: id})
	assert.ErrorIs(t, err, ports.ErrConflict, "a PENDING delivery")
	_, err = h.Handle(ctx, command.Redeliver{SubscriptionID: "sub-1", DeliveryID: "no-such-delivery"})
	assert.ErrorIs(t, err, ports.ErrNotFound)
	_, err = h.Handle(ctx, command.Redeliver{SubscriptionID: "sub-2", DeliveryID: id})
	assert.ErrorIs(t, err, ports.ErrNotFound, "a delivery of another subscription")
	assert.Equal(t, 1, woken, "no wake for a refusal")
	assert.False(t, errors.Is(err, ports.ErrConflict))
}
