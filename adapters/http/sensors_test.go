package http_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// withFlow declares the sensor type flow, in m3/h.
func withFlow(t *testing.T) option {
	t.Helper()
	r := rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules}
	flow := r
	flow.Unit = "m3/h"
	set, err := rules.NewSet(map[sensor.Type]rules.Rules{sensor.Temperature: r, sensor.Vibration: r,
		sensor.Pressure: r, sensor.Voltage: r, "flow": flow})
	require.NoError(t, err)
	return withSensors(set)
}

func TestWebhook_sensor_ids_name_several_sensors_of_one_type(t *testing.T) {
	h := newHarness(t, withFlow(t))
	r := h.post(webhook, `{"readings": [
		{"equipmentId": "pump-01", "sensorType": "vibration", "sensorId": "bearing-de", "value": 1.5, "timestamp": "2026-11-27T08:14:00Z"},
		{"equipmentId": "pump-01", "sensorType": "vibration", "sensorId": "bearing-nde", "value": 2.5, "timestamp": "2026-11-27T08:14:01Z"},
		{"equipmentId": "pump-01", "sensorType": "vibration", "value": 3.5, "timestamp": "2026-11-27T08:14:02Z"},
		{"equipmentId": "pump-01", "sensorType": "flow", "sensorId": "flow-1", "value": 42, "unit": "m3/h", "timestamp": "2026-11-27T08:14:03Z"}]}`)
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)

	st := h.get("/equipment/pump-01/status").json(t)
	assert.Equal(t, []any{
		map[string]any{"sensorType": "vibration", "value": 3.5, "unit": "", "timestamp": "2026-11-27T08:14:02.000Z", "anomalous": false},
		map[string]any{"sensorType": "vibration", "sensorId": "bearing-de", "value": 1.5, "unit": "", "timestamp": "2026-11-27T08:14:00.000Z", "anomalous": false},
		map[string]any{"sensorType": "vibration", "sensorId": "bearing-nde", "value": 2.5, "unit": "", "timestamp": "2026-11-27T08:14:01.000Z", "anomalous": false},
		map[string]any{"sensorType": "flow", "sensorId": "flow-1", "value": 42.0, "unit": "m3/h", "timestamp": "2026-11-27T08:14:03.000Z", "anomalous": false},
	}, st["latestReadings"])
	st = h.get("/equipment/pump-01/status?sensorId=bearing-nde").json(t)
	assert.Len(t, st["latestReadings"], 1)
	st = h.get("/equipment/pump-01/status?sensorId=vibration").json(t)
	require.Len(t, st["latestReadings"], 1, "the sensor sent without an id is named by its type")
	assert.Nil(t, st["latestReadings"].([]any)[0].(map[string]any)["sensorId"])

	hist := h.get("/equipment/pump-01/sensor-history?from=2026-11-27T08:00:00Z&sensorId=bearing-de").json(t)
	assert.Equal(t, []any{map[string]any{"sensorType": "vibration", "sensorId": "bearing-de",
		"timestamp": "2026-11-27T08:14:00.000Z", "value": 1.5, "anomalous": false}}, hist["points"])
	hist = h.get("/equipment/pump-01/sensor-history?from=2026-11-27T08:00:00Z&sensorType=flow").json(t)
	assert.Len(t, hist["points"], 1)
	avg := h.get("/equipment/pump-01/sensor-history?from=2026-11-27T08:00:00Z&sensorType=vibration&aggregation=avg&interval=1h").json(t)
	assert.Len(t, avg["points"], 3, "one point per sensor")

	m := h.get("/metrics/production?equipmentId=pump-01&sensorId=bearing-nde&from=2026-11-27T08:00:00Z&to=2026-11-27T09:00:00Z").json(t)
	assert.Equal(t, "bearing-nde", m["sensorId"])
	assert.Equal(t, 1.0, m["eventsProcessed"].(map[string]any)["total"])
}

func TestWebhook_sensor_id_rules(t *testing.T) {
	h := newHarness(t)
	for body, field := range map[string]string{
		`{"equipmentId": "pump-01", "sensorType": "vibration", "sensorId": "", "value": 1}`:               "sensorId",
		`{"equipmentId": "pump-01", "sensorType": "vibration", "sensorId": "bearing de", "value": 1}`:     "sensorId",
		`{"equipmentId": "pump-01", "sensorType": "vibration", "sensorId": "-bearing", "value": 1}`:       "sensorId",
		`{"equipmentId": "pump-01", "sensorType": "vibration", "sensorId": "` + long65 + `", "value": 1}`: "sensorId",
		// Without the rules file declaring it, flow is no sensor type.
		`{"equipmentId": "pump-01", "sensorType": "flow", "sensorId": "flow-1", "value": 1}`: "sensorType",
	} {
		e := h.post(webhook, body).apiError(t, http.StatusBadRequest, "validation_failed")
		assert.Equal(t, []string{field}, e.fields(), "body %s", body)
	}
	e := h.post(webhook, `{"equipmentId": "pump-01", "sensorType": "vibration", "sensorId": 7, "value": 1}`).apiError(t, http.StatusBadRequest, "malformed_json")
	assert.Equal(t, []string{"sensorId"}, e.fields())
	// null is absent, as for every optional field.
	r := h.post(webhook, `{"equipmentId": "pump-01", "sensorType": "vibration", "sensorId": null, "value": 1}`)
	assert.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)

	for _, target := range []string{"/alerts/history?sensorId=a%20b", "/alarms?sensorId=", "/equipment/pump-01/status?sensorId=-x",
		"/equipment/pump-01/sensor-history?sensorId=" + long65, "/metrics/production?sensorId=a/b", "/alerts/history?sensorType=flow"} {
		h.get(target).apiError(t, http.StatusBadRequest, "invalid_query")
	}
}

const long65 = "s234567890123456789012345678901234567890123456789012345678901234x"

func TestQueries_accept_declared_types(t *testing.T) {
	h := newHarness(t, withFlow(t))
	for _, target := range []string{"/alerts/history?sensorType=flow&sensorId=flow-1", "/alarms?sensorType=flow"} {
		r := h.get(target)
		assert.Equal(t, http.StatusOK, r.status, "%s: %s", target, r.body)
	}
	// The type is taken; the equipment is not known yet.
	h.get("/equipment/pump-01/sensor-history?sensorType=flow").apiError(t, http.StatusNotFound, "not_found")
	e := h.get("/alerts/history?sensorType=current").apiError(t, http.StatusBadRequest, "invalid_query")
	assert.Contains(t, e.message(t, "sensorType"), "flow", "the message lists the declared types")
}
