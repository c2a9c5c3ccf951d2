package http_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A field given twice in a request body is refused, whatever the body, rather than the last
// one winning: what a proxy in front of the service checked is what the service acts on.
// encoding/json matches names ignoring case, so a name in another case is the same field.
func TestRepeatedFieldsAreRefused(t *testing.T) {
	h := newHarness(t)
	require.Equal(t, http.StatusOK, h.put("/equipment/press-01", `{"name":"Press 1"}`).status)
	for _, tc := range []struct {
		name, method, target, body, field string
	}{
		{"metadata", http.MethodPut, "/equipment/press-01", `{"name":"Press 1","name":"Press 2"}`, "name"},
		{"metadata_other_case", http.MethodPut, "/equipment/press-01", `{"line":"A","LINE":"B"}`, "line"},
		{"maintenance", http.MethodPut, "/equipment/press-01/maintenance",
			`{"from":"2026-11-27T09:00:00Z","to":"2026-11-27T10:00:00Z","to":"2026-11-28T10:00:00Z"}`, "to"},
		{"ack", http.MethodPost, "/alarms/some-alarm/ack", `{"by":"jo","By":"kim"}`, "by"},
		{"session", http.MethodPost, "/session", `{"key":"` + readKey + `","key":"other"}`, "key"},
		{"subscription", http.MethodPost, "/subscriptions",
			`{"url":"https://a.example/x","types":["alarm.opened"],"url":"https://b.example/y"}`, "url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.send(request(tc.method, tc.target, tc.body))
			require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
			e := r.json(t)["error"].(map[string]any)
			assert.Equal(t, "malformed_json", e["code"])
			details := e["details"].([]any)
			require.Len(t, details, 1)
			assert.Equal(t, tc.field, details[0].(map[string]any)["field"])
		})
	}
	// Nothing was changed by them.
	eq := h.get("/equipment/press-01").json(t)
	assert.Equal(t, "Press 1", eq["name"])
	assert.Empty(t, h.get("/subscriptions").json(t)["data"])
	assert.Nil(t, eq["maintenance"])
}
