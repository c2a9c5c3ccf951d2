package http_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A spike opens one alarm: listed, shown with its anomalous reading, and the equipment is
// ANOMALY while it is open, even once the anomaly window has passed; calm readings clear it.
func TestAlarms_a_spike_opens_one_alarm_that_calm_readings_clear(t *testing.T) {
	h := newHarness(t)
	ingestWithSpike(h, "press-01", 100)

	page := h.get("/alarms").json(t)
	data := page["data"].([]any)
	require.Len(t, data, 1, "%v", page)
	a := data[0].(map[string]any)
	assert.Equal(t, "press-01", a["equipmentId"])
	assert.Equal(t, "temperature", a["sensorType"])
	assert.Equal(t, "ACTIVE", a["state"])
	assert.Equal(t, "CRITICAL", a["severity"])
	assert.Equal(t, float64(1), a["anomalyCount"])
	assert.Nil(t, a["clearedAt"])
	assert.Nil(t, a["acknowledged"])
	assert.NotEmpty(t, a["rulesVersion"])
	assert.Equal(t, map[string]any{"page": float64(1), "pageSize": float64(50), "total": float64(1), "totalPages": float64(1)}, page["pagination"])

	id := a["id"].(string)
	detail := h.get("/alarms/" + id).json(t)
	anomalies := detail["anomalies"].([]any)
	require.Len(t, anomalies, 1)
	assert.Equal(t, float64(100), anomalies[0].(map[string]any)["value"])

	// Calm readings every 20 s: past the anomaly window, the open alarm keeps it ANOMALY.
	for i := 1; i <= 9; i++ {
		h.clock.Advance(20 * time.Second)
		h.ingest(reading("press-01", "temperature", 70.5, t0.Add(time.Duration(i)*20*time.Second)))
	}
	assert.Equal(t, "ANOMALY", h.get("/equipment/press-01/status").json(t)["status"], "9 calm readings of 10")
	assert.Equal(t, "ANOMALY", h.get("/equipment/press-01").json(t)["status"])
	assert.Contains(t, string(h.get("/equipment").body), `"status":"ANOMALY"`, "the list shows it too")
	h.clock.Advance(20 * time.Second)
	h.ingest(reading("press-01", "temperature", 70.5, t0.Add(200*time.Second)))
	assert.Equal(t, "ONLINE", h.get("/equipment/press-01/status").json(t)["status"], "cleared by the 10th")
	cleared := h.get("/alarms/" + id).json(t)
	assert.Equal(t, "CLEARED", cleared["state"])
	assert.Equal(t, t0.Add(200*time.Second).Format("2006-01-02T15:04:05.000Z"), cleared["clearedAt"])
	assert.Equal(t, float64(200), cleared["openSeconds"])
}

func TestAlarms_acknowledge(t *testing.T) {
	h := newHarness(t)
	ingestWithSpike(h, "press-01", 100)
	id := h.get("/alarms").json(t)["data"].([]any)[0].(map[string]any)["id"].(string)

	h.clock.Advance(30 * time.Second)
	r := h.send(func() *http.Request {
		req := request(http.MethodPost, "/alarms/"+id+"/ack", `{"by": " jo ", "comment": "valve checked"}`)
		req.Header.Set("X-API-Key", readKey) // a dashboard's key may acknowledge
		return req
	}())
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	acked := r.json(t)
	assert.Equal(t, "ACKNOWLEDGED", acked["state"])
	assert.Equal(t, map[string]any{"by": "jo", "comment": "valve checked", "at": t0.Add(30 * time.Second).Format("2006-01-02T15:04:05.000Z")},
		acked["acknowledged"])

	figures := h.get("/metrics/production").json(t)["alarms"]
	assert.Equal(t, map[string]any{"total": float64(1),
		"bySeverity":               map[string]any{"LOW": float64(0), "MEDIUM": float64(0), "CRITICAL": float64(1)},
		"meanSecondsToAcknowledge": float64(30), "meanSecondsToClear": nil}, figures)

	e := h.post("/alarms/"+id+"/ack", `{"by": "kim"}`).apiError(t, http.StatusConflict, "conflict")
	assert.Contains(t, e.Error.Message, "ACKNOWLEDGED")
	h.post("/alarms/no-such-alarm/ack", `{"by": "kim"}`).apiError(t, http.StatusNotFound, "not_found")
	h.get("/alarms/no-such-alarm").apiError(t, http.StatusNotFound, "not_found")

	e = h.post("/alarms/"+id+"/ack", `{"comment": "`+strings.Repeat("x", 1001)+`"}`).apiError(t, http.StatusBadRequest, "validation_failed")
	assert.Equal(t, []string{"by", "comment"}, e.fields())
	e = h.post("/alarms/"+id+"/ack", `{"by": 7}`).apiError(t, http.StatusBadRequest, "malformed_json")
	assert.Equal(t, []string{"by"}, e.fields())
	h.post("/alarms/"+id+"/ack", `{"by": "a\u0000b"}`).apiError(t, http.StatusBadRequest, "validation_failed")
	h.get("/alarms/"+strings.Repeat("a", 65)).apiError(t, http.StatusBadRequest, "validation_failed")
}

func TestAlarms_list_filters_and_refuses_bad_queries(t *testing.T) {
	h := newHarness(t)
	ingestWithSpike(h, "press-01", 100)
	ingestWithSpike(h, "press-02", 100)

	for query, want := range map[string]int{
		"":                            2,
		"?equipmentId=press-02":       1,
		"?state=ACTIVE,ACKNOWLEDGED":  2,
		"?state=CLEARED":              0,
		"?severity=LOW":               0,
		"?sensorType=vibration":       0,
		"?from=2026-11-27T08:15:00Z":  2,
		"?to=2026-11-27T08:15:00Z":    0,
		"?pageSize=1&page=2&sort=asc": 1,
	} {
		page := h.get("/alarms" + query).json(t)
		assert.Len(t, page["data"], want, "GET /alarms%s: %v", query, page)
	}
	for query, field := range map[string]string{
		"?state=OPEN":    "state",
		"?severity=HIGH": "severity",
		"?pageSize=501":  "pageSize",
		"?from=2026-11-28T00:00:00Z&to=2026-11-27T00:00:00Z": "from",
		"?limit=5":         "limit",
		"?equipmentId=%25": "equipmentId",
	} {
		e := h.get("/alarms"+query).apiError(t, http.StatusBadRequest, "invalid_query")
		assert.Contains(t, e.fields(), field, "GET /alarms%s", query)
	}
}
