package http_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	plmhttp "github.com/production-line-monitor/plm/adapters/http"
)

// routeScopes is the scope each protected route needs: the access rules, written out.
var routeScopes = map[string]plmhttp.Scope{
	"POST /webhook/sensor-data":         plmhttp.ScopeIngest,
	"GET /equipment":                    plmhttp.ScopeRead,
	"GET /equipment/:id":                plmhttp.ScopeRead,
	"GET /equipment/:id/status":         plmhttp.ScopeRead,
	"GET /equipment/:id/sensor-history": plmhttp.ScopeRead,
	"GET /alerts/history":               plmhttp.ScopeRead,
	"GET /metrics/production":           plmhttp.ScopeRead,
	"GET /metrics":                      plmhttp.ScopeRead,
	"GET /alarms":                       plmhttp.ScopeRead,
	"GET /alarms/:id":                   plmhttp.ScopeRead,
	"POST /alarms/:id/ack":              plmhttp.ScopeRead,
	"PUT /equipment/:id":                plmhttp.ScopeAdmin,
	"PUT /equipment/:id/maintenance":    plmhttp.ScopeAdmin,
	"DELETE /equipment/:id/maintenance": plmhttp.ScopeAdmin,
	"GET /healthz":                      "",
	"GET /readyz":                       "",
	"GET /openapi.yaml":                 "",
	"GET /":                             "",
	"GET /assets/:name":                 "",
	"GET /stream":                       plmhttp.ScopeRead,
	"POST /session":                     "",
	"GET /session":                      "",
	"DELETE /session":                   "",

	// Outbound notifications.
	"POST /subscriptions":                                      plmhttp.ScopeAdmin,
	"GET /subscriptions":                                       plmhttp.ScopeAdmin,
	"GET /subscriptions/:id":                                   plmhttp.ScopeAdmin,
	"DELETE /subscriptions/:id":                                plmhttp.ScopeAdmin,
	"GET /subscriptions/:id/deliveries":                        plmhttp.ScopeAdmin,
	"POST /subscriptions/:id/deliveries/:deliveryId/redeliver": plmhttp.ScopeAdmin,
}

// Every route of the app, enumerated from the app itself, lets in the keys whose scope
// allows it and answers 403 forbidden to the others, before doing anything: an ingest key
// (a machine's) reads nothing, a read key (a dashboard's) posts nothing, and only a key
// with full access changes equipment.
func TestAccess_every_route_checks_the_scope_of_the_key(t *testing.T) {
	h := newHarness(t, recording())
	all := routes(h.server)
	table := make([]string, 0, len(routeScopes))
	for r := range routeScopes {
		table = append(table, r)
	}
	slices.Sort(table)
	require.Equal(t, table, all, "every route must have its scope written in routeScopes")

	keys := map[plmhttp.Scope]string{plmhttp.ScopeAdmin: testKey, plmhttp.ScopeIngest: ingestKey, plmhttp.ScopeRead: readKey}
	for _, route := range all {
		need := routeScopes[route]
		method, path, _ := strings.Cut(route, " ")
		path = strings.ReplaceAll(path, ":id", "press-01")
		if path == "/stream" {
			path += "?types=none" // refused (400) once let in, rather than streaming for ever
		}
		body := ""
		if method == http.MethodPost || method == http.MethodPut {
			body = `{"equipmentId": "press-01", "sensorType": "temperature", "value": 1}`
		}
		for scope, key := range keys {
			t.Run(route+" as "+string(scope), func(t *testing.T) {
				req := request(method, path, body)
				req.Header.Set("X-API-Key", key)
				r := h.send(req)
				if need == "" || scope == plmhttp.ScopeAdmin || scope == need {
					assert.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, r.status, string(r.body))
					return
				}
				r.apiError(t, http.StatusForbidden, "forbidden")
				assert.Contains(t, string(r.body), string(need), "the refusal names the scope needed")
				assert.NotContains(t, string(r.body), key)
			})
		}
	}
	// Only the admin and ingest keys' webhook posts were let through (the acknowledgements
	// found no alarm).
	assert.Len(t, h.pub.Events(), 2, "a key without the ingest scope queued something")
	assert.NotContains(t, h.logs.String(), ingestKey)
	assert.NotContains(t, h.logs.String(), readKey)
}

// A bearer token carries its scope like X-API-Key does.
func TestAccess_bearer_token_has_the_scope_of_its_key(t *testing.T) {
	h := newHarness(t, recording())
	req := request(http.MethodGet, "/equipment", "")
	req.Header.Del("X-API-Key")
	req.Header.Set("Authorization", "Bearer "+ingestKey)
	h.send(req).apiError(t, http.StatusForbidden, "forbidden")
	req.Header.Set("Authorization", "Bearer "+readKey)
	assert.Equal(t, http.StatusOK, h.send(req).status)
}

func TestParseAPIKey(t *testing.T) {
	for entry, want := range map[string]plmhttp.APIKey{
		"0123456789abcdef":              {Key: "0123456789abcdef", Scope: plmhttp.ScopeAdmin},
		"ingest:0123456789abcdef":       {Key: "0123456789abcdef", Scope: plmhttp.ScopeIngest},
		"read:0123456789abcdef":         {Key: "0123456789abcdef", Scope: plmhttp.ScopeRead},
		"admin:0123456789abcdef":        {Key: "0123456789abcdef", Scope: plmhttp.ScopeAdmin},
		"read:with:colons:in:the:key":   {Key: "with:colons:in:the:key", Scope: plmhttp.ScopeRead},
		"Key-With:Colon-But-No-Scope":   {Key: "Key-With:Colon-But-No-Scope", Scope: plmhttp.ScopeAdmin},
		"0a1b:key-that-starts-with-hex": {Key: "0a1b:key-that-starts-with-hex", Scope: plmhttp.ScopeAdmin},
	} {
		got, err := plmhttp.ParseAPIKey(entry)
		if assert.NoError(t, err, entry) {
			assert.Equal(t, want, got, entry)
		}
	}
	for entry, why := range map[string]string{
		"write:0123456789abcdef":   "unknown scope",
		"reed:0123456789abcdef":    "unknown scope",
		"read:":                    "empty",
		"":                         "empty",
		"ingest:0123 456789abcdef": "white space",
	} {
		_, err := plmhttp.ParseAPIKey(entry)
		if assert.Error(t, err, entry) {
			assert.Contains(t, err.Error(), why, entry)
			assert.NotContains(t, err.Error(), "0123456789abcdef", "the error quotes the key")
		}
	}
}
