package http_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// subscribe creates a subscription through the API and returns the 201 body.
func (h *harness) subscribe(body string) map[string]any {
	h.t.Helper()
	r := h.post("/subscriptions", body)
	require.Equal(h.t, http.StatusCreated, r.status, "body: %s", r.body)
	return r.json(h.t)
}

func TestSubscriptions_create_shows_the_secret_once(t *testing.T) {
	h := newHarness(t)
	r := h.post("/subscriptions", `{"url": "https://hooks.example/plm?team=line-1", "types": ["alarm.opened", "equipment.status_changed"]}`)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	created := r.json(t)
	id, _ := created["id"].(string)
	require.NotEmpty(t, id)
	assert.Equal(t, "/subscriptions/"+id, r.header.Get("Location"))
	secret, _ := created["secret"].(string)
	raw, err := hex.DecodeString(secret)
	require.NoError(t, err, "a secret the service makes is hex")
	assert.Len(t, raw, 32)

	want := map[string]any{
		"id": id, "url": "https://hooks.example/plm?team=line-1", "types": []any{"alarm.opened", "equipment.status_changed"},
		"createdAt": t0.Format(msLayout), "breaker": map[string]any{"state": "CLOSED", "failures": float64(0), "pausedUntil": nil},
	}
	delete(created, "secret")
	assert.Equal(t, want, created)

	one := h.get("/subscriptions/" + id)
	require.Equal(t, http.StatusOK, one.status, "%s", one.body)
	assert.Equal(t, want, one.json(t))
	list := h.get("/subscriptions")
	require.Equal(t, http.StatusOK, list.status)
	assert.Equal(t, map[string]any{"data": []any{want}}, list.json(t))
	for _, b := range [][]byte{one.body, list.body} {
		assert.NotContains(t, string(b), secret, "the secret is shown at creation only")
		assert.NotContains(t, string(b), `"secret"`)
	}

	given := h.subscribe(`{"url": "http://10.1.2.3:9000/hook", "types": ["alarm.cleared"], "secret": "0123456789abcdef"}`)
	assert.Equal(t, "0123456789abcdef", given["secret"], "a secret given is kept")
	list = h.get("/subscriptions")
	assert.Len(t, list.json(t)["data"], 2)
}

func TestSubscriptions_create_refuses_bad_bodies(t *testing.T) {
	long := "https://h.example/" + strings.Repeat("a", 2049-18)
	tests := []struct {
		name   string
		body   string
		code   string
		fields []string
	}{
		{"url_missing", `{"types": ["alarm.opened"]}`, "validation_failed", []string{"url"}},
		{"url_not_http", `{"url": "ftp://files.example/", "types": ["alarm.opened"]}`, "validation_failed", []string{"url"}},
		{"url_relative", `{"url": "/hook", "types": ["alarm.opened"]}`, "validation_failed", []string{"url"}},
		{"url_2049_characters", `{"url": "` + long + `", "types": ["alarm.opened"]}`, "validation_failed", []string{"url"}},
		{"types_missing", `{"url": "https://a.example/"}`, "validation_failed", []string{"types"}},
		{"types_empty_and_url_bad", `{"url": "nope", "types": []}`, "validation_failed", []string{"types", "url"}},
		{"types_anomaly_repeated_unknown", `{"url": "https://a.example/", "types": ["anomaly", "alarm.opened", "alarm.opened", "alarm.exploded"]}`,
			"validation_failed", []string{"types[0]", "types[2]", "types[3]"}},
		{"secret_15_characters", `{"url": "https://a.example/", "types": ["alarm.opened"], "secret": "0123456789abcde"}`, "validation_failed", []string{"secret"}},
		{"secret_empty", `{"url": "https://a.example/", "types": ["alarm.opened"], "secret": ""}`, "validation_failed", []string{"secret"}},
		{"secret_257_characters", `{"url": "https://a.example/", "types": ["alarm.opened"], "secret": "` + strings.Repeat("k", 257) + `"}`,
			"validation_failed", []string{"secret"}},
		{"wrong_json_types", `{"url": 5, "types": "alarm.opened", "secret": 1}`, "malformed_json", []string{"url", "types", "secret"}},
		{"type_items_not_strings", `{"url": "https://a.example/", "types": ["alarm.opened", 3, null]}`, "malformed_json", []string{"types[1]", "types[2]"}},
		{"array", `[]`, "malformed_json", nil},
		{"not_json", `{"url": `, "malformed_json", []string{"body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			e := h.post("/subscriptions", tt.body).apiError(t, http.StatusBadRequest, tt.code)
			assert.Equal(t, tt.fields, nilIfEmpty(e.fields()))
			assert.Empty(t, h.get("/subscriptions").json(t)["data"], "nothing stored")
		})
	}

	h := newHarness(t)
	e := h.post("/subscriptions", `{"url": "https://a.example/", "types": ["anomaly"]}`).apiError(t, http.StatusBadRequest, "validation_failed")
	assert.Equal(t, "anomaly events are not notified: a subscription receives transitions only", e.message(t, "types[0]"))
	e = h.post("/subscriptions", `{"url": "`+long+`", "types": ["alarm.opened"]}`).apiError(t, http.StatusBadRequest, "validation_failed")
	assert.Equal(t, "must be at most 2048 characters long", e.message(t, "url"))

	req := request(http.MethodPost, "/subscriptions", `{"url": "https://a.example/", "types": ["alarm.opened"]}`)
	req.Header.Set("Content-Type", "text/plain")
	h.send(req).apiError(t, http.StatusUnsupportedMediaType, "unsupported_media_type")

	// The limits themselves are accepted.
	h.subscribe(`{"url": "` + long[:2048] + `", "types": ["alarm.opened"], "secret": "` + strings.Repeat("k", 256) + `"}`)
	h.subscribe(`{"url": "https://a.example/", "types": ["alarm.opened"], "secret": null}`)
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// Subscriptions name endpoints and hold secrets: only a key with full access may touch them.
func TestSubscriptions_need_full_access(t *testing.T) {
	h := newHarness(t)
	id := h.subscribe(`{"url": "https://a.example/", "types": ["alarm.opened"]}`)["id"].(string)
	for _, key := range []string{readKey, ingestKey} {
		for _, target := range []struct{ method, path, body string }{
			{http.MethodGet, "/subscriptions", ""},
			{http.MethodGet, "/subscriptions/" + id, ""},
			{http.MethodGet, "/subscriptions/" + id + "/deliveries", ""},
			{http.MethodPost, "/subscriptions", `{"url": "https://b.example/", "types": ["alarm.opened"]}`},
			{http.MethodDelete, "/subscriptions/" + id, ""},
			{http.MethodPost, "/subscriptions/" + id + "/deliveries/1/redeliver", ""},
		} {
			req := request(target.method, target.path, target.body)
			req.Header.Set("X-API-Key", key)
			h.send(req).apiError(t, http.StatusForbidden, "forbidden")
		}
	}
	list := h.get("/subscriptions").json(t)["data"].([]any)
	assert.Len(t, list, 1, "nothing created or deleted")
}

func TestSubscriptions_get_and_delete(t *testing.T) {
	h := newHarness(t)
	id := h.subscribe(`{"url": "https://a.example/", "types": ["alarm.opened"]}`)["id"].(string)

	h.get("/subscriptions/no-such-subscription").apiError(t, http.StatusNotFound, "not_found")
	e := h.get("/subscriptions/"+strings.Repeat("x", 65)).apiError(t, http.StatusBadRequest, "validation_failed")
	assert.Equal(t, []string{"id"}, e.fields())

	r := h.send(request(http.MethodDelete, "/subscriptions/"+id, ""))
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
	assert.Empty(t, r.body)
	h.get("/subscriptions/"+id).apiError(t, http.StatusNotFound, "not_found")
	h.send(request(http.MethodDelete, "/subscriptions/"+id, "")).apiError(t, http.StatusNotFound, "not_found")
	assert.Empty(t, h.get("/subscriptions").json(t)["data"])
}

// announce records status changes of press-01 through the memory store, each enqueuing a
// delivery to every subscription to equipment.status_changed.
func (h *harness) announce(statuses ...equipment.Status) {
	h.t.Helper()
	ctx := context.Background()
	prev, err := h.store.StatusLedger().Announced(ctx)
	require.NoError(h.t, err)
	last := prev["press-01"]
	for i, st := range statuses {
		_, err := h.store.StatusLedger().Announce(ctx, []event.Event{event.ForStatus(fmt.Sprintf("evt-%s-%d", st, i),
			event.StatusChange{EquipmentID: "press-01", Previous: last, Status: st, Reason: "test"}, h.clock.Now())})
		require.NoError(h.t, err)
		last = st
	}
}

// attempt claims the oldest due delivery and settles it with o (its ids and time filled in).
func (h *harness) attempt(o ports.DeliveryOutcome) string {
	h.t.Helper()
	ctx := context.Background()
	claimed, err := h.store.DeliveryQueue().Claim(ctx, h.clock.Now(), time.Minute, 1, nil)
	require.NoError(h.t, err)
	require.Len(h.t, claimed, 1)
	o.DeliveryID, o.SubscriptionID, o.At = claimed[0].ID, claimed[0].SubscriptionID, h.clock.Now()
	require.NoError(h.t, h.store.DeliveryQueue().Settle(ctx, o))
	return o.DeliveryID
}

func TestSubscriptions_show_the_breaker(t *testing.T) {
	h := newHarness(t)
	id := h.subscribe(`{"url": "https://a.example/", "types": ["equipment.status_changed"]}`)["id"].(string)
	h.announce(equipment.StatusOnline)
	h.attempt(ports.DeliveryOutcome{Status: 503, Error: "the endpoint answered 503", State: ports.DeliveryPending,
		NextAttemptAt: t0.Add(time.Second), Failures: 5, PausedUntil: t0.Add(30 * time.Second)})

	breaker := h.get("/subscriptions/" + id).json(t)["breaker"]
	assert.Equal(t, map[string]any{"state": "OPEN", "failures": float64(5), "pausedUntil": t0.Add(30 * time.Second).Format(msLayout)}, breaker)
	h.clock.Advance(30 * time.Second)
	breaker = h.get("/subscriptions").json(t)["data"].([]any)[0].(map[string]any)["breaker"]
	assert.Equal(t, "HALF_OPEN", breaker.(map[string]any)["state"], "the cooldown is over: the next attempt decides")
}

func TestSubscriptions_delivery_log_and_redelivery(t *testing.T) {
	h := newHarness(t)
	sub := h.subscribe(`{"url": "https://a.example/", "types": ["equipment.status_changed"]}`)["id"].(string)
	other := h.subscribe(`{"url": "https://b.example/", "types": ["alarm.opened"]}`)["id"].(string)
	h.announce(equipment.StatusOnline, equipment.StatusAnomaly, equipment.StatusOnline)
	dead := h.attempt(ports.DeliveryOutcome{Status: 500, Error: "the endpoint answered 500: boom", State: ports.DeliveryDead, Failures: 1})
	h.clock.Advance(time.Second)
	delivered := h.attempt(ports.DeliveryOutcome{Status: 204, State: ports.DeliveryDelivered})

	r := h.get("/subscriptions/" + sub + "/deliveries")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	page := r.json(t)
	assert.Equal(t, map[string]any{"page": float64(1), "pageSize": float64(50), "total": float64(3), "totalPages": float64(1)}, page["pagination"])
	data := page["data"].([]any)
	require.Len(t, data, 3)
	pending := data[0].(map[string]any)
	assert.Equal(t, "PENDING", pending["state"], "newest first")
	assert.Equal(t, "equipment.status_changed", pending["eventType"])
	assert.Equal(t, "evt-ONLINE-2", pending["eventId"])
	assert.Equal(t, t0.Format(msLayout), pending["nextAttemptAt"])
	assert.Nil(t, pending["lastAttemptAt"])
	assert.Nil(t, pending["lastStatus"])
	assert.Nil(t, pending["lastError"])
	assert.Equal(t, map[string]any{"id": delivered, "eventId": "evt-ANOMALY-1", "eventType": "equipment.status_changed", "state": "DELIVERED",
		"attempts": float64(1), "createdAt": t0.Format(msLayout), "nextAttemptAt": nil, "lastAttemptAt": t0.Add(time.Second).Format(msLayout),
		"lastStatus": float64(204), "lastError": nil, "deliveredAt": t0.Add(time.Second).Format(msLayout)}, data[1])
	assert.Equal(t, map[string]any{"id": dead, "eventId": "evt-ONLINE-0", "eventType": "equipment.status_changed", "state": "DEAD",
		"attempts": float64(1), "createdAt": t0.Format(msLayout), "nextAttemptAt": nil, "lastAttemptAt": t0.Format(msLayout),
		"lastStatus": float64(500), "lastError": "the endpoint answered 500: boom", "deliveredAt": nil}, data[2])

	filtered := h.get("/subscriptions/" + sub + "/deliveries?state=DEAD,DELIVERED&page=2&pageSize=1").json(t)
	assert.Equal(t, map[string]any{"page": float64(2), "pageSize": float64(1), "total": float64(2), "totalPages": float64(2)}, filtered["pagination"])
	require.Len(t, filtered["data"], 1)
	assert.Equal(t, dead, filtered["data"].([]any)[0].(map[string]any)["id"])
	e := h.get("/subscriptions/"+sub+"/deliveries?state=LOST&pageSize=501&sort=asc").apiError(t, http.StatusBadRequest, "invalid_query")
	assert.ElementsMatch(t, []string{"state", "pageSize", "sort"}, e.fields())
	h.get("/subscriptions/no-such-subscription/deliveries").apiError(t, http.StatusNotFound, "not_found")
	assert.Empty(t, h.get("/subscriptions/" + other + "/deliveries").json(t)["data"], "another subscription's log")

	// Redelivery: a DEAD delivery becomes PENDING, due now, its attempts reset.
	h.clock.Advance(time.Minute)
	r = h.post("/subscriptions/"+sub+"/deliveries/"+dead+"/redeliver", "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	again := r.json(t)
	assert.Equal(t, "PENDING", again["state"])
	assert.Equal(t, float64(0), again["attempts"])
	assert.Equal(t, t0.Add(61*time.Second).Format(msLayout), again["nextAttemptAt"])
	assert.Equal(t, "evt-ONLINE-0", again["eventId"], "the same event")

	e = h.post("/subscriptions/"+sub+"/deliveries/"+dead+"/redeliver", "").apiError(t, http.StatusConflict, "conflict")
	assert.Contains(t, e.Error.Message, "only a DEAD delivery")
	h.post("/subscriptions/"+sub+"/deliveries/"+delivered+"/redeliver", "").apiError(t, http.StatusConflict, "conflict")
	h.post("/subscriptions/"+sub+"/deliveries/999/redeliver", "").apiError(t, http.StatusNotFound, "not_found")
	h.post("/subscriptions/"+other+"/deliveries/"+dead+"/redeliver", "").apiError(t, http.StatusNotFound, "not_found")
	e = h.post("/subscriptions/"+sub+"/deliveries/"+strings.Repeat("9", 65)+"/redeliver", "").apiError(t, http.StatusBadRequest, "validation_failed")
	assert.Equal(t, []string{"deliveryId"}, e.fields())
}
