package http_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	plmhttp "github.com/production-line-monitor/plm/adapters/http"
	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/ports"
)

const webhook = "/webhook/sensor-data"

func TestWebhook_single_reading_is_accepted_and_stored(t *testing.T) {
	h := newHarness(t)

	r := h.post(webhook, `{"equipmentId": "press-01", "sensorType": "temperature", "value": 71.5,
		"unit": "celsius", "timestamp": "2026-11-27T08:14:00.250+01:00", "readingId": "r-1"}`)

	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	assert.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
	assert.JSONEq(t, `{"accepted": 1}`, string(r.body))
	st := h.get("/equipment/press-01/status").json(t)
	assert.Equal(t, []any{map[string]any{"sensorType": "temperature", "value": 71.5, "unit": "celsius",
		"timestamp": "2026-11-27T07:14:00.250Z", "anomalous": false}}, st["latestReadings"])
}

func TestWebhook_reading_without_timestamp_takes_time_of_receipt(t *testing.T) {
	h := newHarness(t)

	h.ingest(`{"equipmentId": "press-01", "sensorType": "vibration", "value": 1}`)

	st := h.get("/equipment/press-01/status").json(t)
	latest := st["latestReadings"].([]any)[0].(map[string]any)
	assert.Equal(t, "2026-11-27T08:15:00.000Z", latest["timestamp"])
	assert.Equal(t, "", latest["unit"])
}

func TestWebhook_batch_is_accepted(t *testing.T) {
	h := newHarness(t)

	r := h.post(webhook, batch(
		reading("press-01", "temperature", 70, t0.Add(-2*time.Second)),
		reading("press-01", "pressure", 3.2, t0.Add(-time.Second)),
		reading("lathe-02", "voltage", 229, t0),
	))

	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	assert.JSONEq(t, `{"accepted": 3}`, string(r.body))
	list := h.get("/equipment").json(t)["data"].([]any)
	require.Len(t, list, 2)
	assert.Equal(t, "lathe-02", list[0].(map[string]any)["id"])
}

func TestWebhook_value_decoding(t *testing.T) {
	cases := []struct {
		name    string
		value   string // the JSON text of "value"; "" leaves it out
		status  int
		code    string
		message string
	}{
		{name: "zero_is_valid", value: `0`, status: http.StatusAccepted},
		{name: "negative_exponent_is_valid", value: `-1.5e-3`, status: http.StatusAccepted},
		{name: "underflow_is_zero", value: `1e-400`, status: http.StatusAccepted},
		{name: "overflow", value: `1e309`, status: http.StatusBadRequest, code: "validation_failed", message: "must be a finite number"},
		{name: "negative_overflow", value: `-1e309`, status: http.StatusBadRequest, code: "validation_failed", message: "must be a finite number"},
		{name: "string", value: `"71.5"`, status: http.StatusBadRequest, code: "malformed_json", message: "must be a number"},
		{name: "bool", value: `true`, status: http.StatusBadRequest, code: "malformed_json", message: "must be a number"},
		{name: "object", value: `{"v": 1}`, status: http.StatusBadRequest, code: "malformed_json", message: "must be a number"},
		{name: "null", value: `null`, status: http.StatusBadRequest, code: "validation_failed", message: "is required"},
		{name: "missing", value: ``, status: http.StatusBadRequest, code: "validation_failed", message: "is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, recording())
			body := `{"equipmentId": "press-01", "sensorType": "temperature"`
			if tc.value != "" {
				body += `, "value": ` + tc.value
			}
			r := h.post(webhook, body+`}`)

			if tc.status == http.StatusAccepted {
				require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
				require.Len(t, h.pub.Events(), 1)
				return
			}
			e := r.apiError(t, tc.status, tc.code)
			assert.Equal(t, []string{"value"}, e.fields())
			assert.Equal(t, tc.message, e.message(t, "value"))
			assert.Empty(t, h.pub.Events())
		})
	}
}

func TestWebhook_batch_of_1000_with_one_bad_value_is_refused_whole(t *testing.T) {
	cases := []struct {
		name, bad, code, message string
	}{
		{name: "string_value", bad: `"oops"`, code: "malformed_json", message: "must be a number"},
		{name: "overflowing_value", bad: `1e309`, code: "validation_failed", message: "must be a finite number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, recording())
			readings := make([]string, 1000)
			for i := range readings {
				readings[i] = fmt.Sprintf(`{"equipmentId": "press-01", "sensorType": "temperature", "value": %d}`, i)
			}
			readings[537] = `{"equipmentId": "press-01", "sensorType": "temperature", "value": ` + tc.bad + `}`

			e := h.post(webhook, batch(readings...)).apiError(t, http.StatusBadRequest, tc.code)

			assert.Equal(t, []string{"readings[537].value"}, e.fields())
			assert.Equal(t, tc.message, e.message(t, "readings[537].value"))
			assert.Empty(t, h.pub.Events(), "nothing may be published")

			readings[537] = `{"equipmentId": "press-01", "sensorType": "temperature", "value": 537}`
			r := h.post(webhook, batch(readings...))
			require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
			assert.JSONEq(t, `{"accepted": 1000}`, string(r.body))
			require.Len(t, h.pub.Events(), 1)
			assert.Len(t, h.pub.Events()[0].Readings, 1000)
		})
	}
}

func TestWebhook_every_violation_of_every_reading_is_reported(t *testing.T) {
	h := newHarness(t, recording())

	e := h.post(webhook, batch(
		`{"equipmentId": "press-01", "sensorType": "temperature", "value": 1}`,
		`{"equipmentId": "-bad", "sensorType": "humidity", "value": 1, "unit": "`+strings.Repeat("u", 17)+`"}`,
		`{"equipmentId": "press-01", "sensorType": "voltage", "value": 1, "timestamp": "yesterday",
		  "readingId": "`+strings.Repeat("r", 65)+`"}`,
		`{"sensorType": "voltage", "value": 1}`,
	)).apiError(t, http.StatusBadRequest, "validation_failed")

	assert.Equal(t, []string{
		"readings[1].equipmentId", "readings[1].sensorType", "readings[1].unit",
		"readings[2].readingId", "readings[2].timestamp",
		"readings[3].equipmentId",
	}, e.fields())
	assert.Equal(t, "must be one of temperature, vibration, pressure, voltage", e.message(t, "readings[1].sensorType"))
	assert.Equal(t, "is required", e.message(t, "readings[3].equipmentId"))
	assert.Equal(t, "6 fields are invalid", e.Error.Message)
	assert.Empty(t, h.pub.Events())
}

func TestWebhook_NUL_characters_are_refused(t *testing.T) {
	// Storage cannot keep a NUL: accepted, such a reading would fail in the workers.
	h := newHarness(t, recording())
	e := h.post(webhook, batch(
		`{"equipmentId": "press-01", "sensorType": "temperature", "value": 1, "unit": "deg\u0000C", "readingId": "r\u00001"}`,
	)).apiError(t, http.StatusBadRequest, "validation_failed")
	assert.Equal(t, []string{"readings[0].readingId", "readings[0].unit"}, e.fields())
	assert.Equal(t, "must not contain a NUL character", e.message(t, "readings[0].unit"))
	assert.Empty(t, h.pub.Events())
}

func TestWebhook_type_errors_name_every_field_and_index(t *testing.T) {
	h := newHarness(t, recording())

	e := h.post(webhook, batch(
		`{"equipmentId": "press-01", "sensorType": "temperature", "value": 1}`,
		`{"equipmentId": 7, "sensorType": "temperature", "value": [1]}`,
		`{"equipmentId": "press-01", "sensorType": "temperature", "value": 1, "unit": false, "timestamp": 1764231300}`,
	)).apiError(t, http.StatusBadRequest, "malformed_json")

	assert.Equal(t, []string{"readings[1].equipmentId", "readings[1].value", "readings[2].unit", "readings[2].timestamp"}, e.fields())
	assert.Equal(t, "must be a string", e.message(t, "readings[1].equipmentId"))
	assert.Equal(t, "must be a number", e.message(t, "readings[1].value"))
}

func TestWebhook_timestamp_rules(t *testing.T) {
	cases := []struct {
		name      string
		timestamp string
		accepted  bool
	}{
		{name: "exactly_5m_ahead", timestamp: t0.Add(5 * time.Minute).Format(time.RFC3339), accepted: true},
		{name: "5m_1s_ahead", timestamp: t0.Add(5*time.Minute + time.Second).Format(time.RFC3339)},
		{name: "in_the_past_with_offset", timestamp: "2026-11-27T10:00:00+02:00", accepted: true},
		{name: "no_offset", timestamp: "2026-11-27T08:00:00"},
		{name: "not_rfc3339", timestamp: "27/11/2026 08:00"},
		{name: "empty", timestamp: ""},
		{name: "zero_time", timestamp: "0001-01-01T00:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, recording())
			r := h.post(webhook, `{"equipmentId": "press-01", "sensorType": "temperature", "value": 1, "timestamp": "`+tc.timestamp+`"}`)
			if tc.accepted {
				require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
				return
			}
			e := r.apiError(t, http.StatusBadRequest, "validation_failed")
			assert.Equal(t, []string{"timestamp"}, e.fields())
			assert.Empty(t, h.pub.Events())
		})
	}
}

func TestWebhook_body_shape(t *testing.T) {
	cases := []struct {
		name, body, code string
		fields           []string
	}{
		{name: "not_json", body: `{"equipmentId": `, code: "malformed_json", fields: []string{"body"}},
		{name: "empty", body: ` `, code: "malformed_json"},
		{name: "top_level_array", body: `[{"equipmentId": "press-01", "sensorType": "temperature", "value": 1}]`, code: "malformed_json"},
		{name: "top_level_string", body: `"reading"`, code: "malformed_json"},
		{name: "top_level_null", body: `null`, code: "malformed_json"},
		{name: "trailing_garbage", body: `{"equipmentId": "press-01", "sensorType": "temperature", "value": 1} x`, code: "malformed_json", fields: []string{"body"}},
		{name: "two_objects", body: `{"equipmentId": "press-01", "sensorType": "temperature", "value": 1}{}`, code: "malformed_json", fields: []string{"body"}},
		{name: "batch_and_reading_fields", body: `{"readings": [], "equipmentId": "press-01"}`, code: "malformed_json"},
		{name: "readings_not_array", body: `{"readings": {"equipmentId": "press-01"}}`, code: "malformed_json", fields: []string{"readings"}},
		{name: "reading_not_object", body: `{"readings": [{"equipmentId": "press-01", "sensorType": "voltage", "value": 1}, 5]}`, code: "malformed_json", fields: []string{"readings[1]"}},
		{name: "readings_empty", body: `{"readings": []}`, code: "validation_failed", fields: []string{"readings"}},
		{name: "readings_null", body: `{"readings": null}`, code: "validation_failed", fields: []string{"readings"}},
		{name: "readings_1001", body: batch(strings.Split(strings.Repeat(`{"equipmentId": "press-01", "sensorType": "voltage", "value": 1};`, 1001), ";")[:1001]...), code: "validation_failed", fields: []string{"readings"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, recording())
			e := h.post(webhook, tc.body).apiError(t, http.StatusBadRequest, tc.code)
			if tc.fields != nil {
				assert.Equal(t, tc.fields, e.fields())
			}
			assert.Empty(t, h.pub.Events())
		})
	}
}

func TestWebhook_content_type(t *testing.T) {
	cases := []struct {
		name        string
		contentType string
		encoding    string
		accepted    bool
	}{
		{name: "json", contentType: "application/json", accepted: true},
		{name: "json_with_charset", contentType: "application/json; charset=utf-8", accepted: true},
		{name: "upper_case", contentType: "Application/JSON; Charset=UTF-8", accepted: true},
		{name: "missing"},
		{name: "text", contentType: "text/plain"},
		{name: "form", contentType: "application/x-www-form-urlencoded"},
		{name: "json_suffix", contentType: "application/json-seq"},
		{name: "compressed", contentType: "application/json", encoding: "gzip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, recording())
			req := request(http.MethodPost, webhook, `{"equipmentId": "press-01", "sensorType": "temperature", "value": 1}`)
			req.Header.Del("Content-Type")
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			r := h.send(req)
			if tc.accepted {
				require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
				return
			}
			r.apiError(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
			assert.Empty(t, h.pub.Events())
		})
	}
}

// The body limit is enforced by the server before routing, which app.Test does not go
// through: this test speaks HTTP over a socket. It sends only the head of a request that
// announces 1 MiB + 1 byte, as the server answers without reading a body it will refuse.
func TestWebhook_body_over_the_limit_is_413(t *testing.T) {
	h := newHarness(t, recording())
	base := h.start()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: plm\r\nContent-Type: application/json\r\n"+
		"X-API-Key: %s\r\nContent-Length: %d\r\n\r\n", webhook, testKey, 1<<20+1)
	require.NoError(t, err)

	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	r := response{status: resp.StatusCode, header: resp.Header, body: body}

	r.apiError(t, http.StatusRequestEntityTooLarge, "payload_too_large")
	assert.NotEmpty(t, r.header.Get("X-Request-ID"))
	assert.Empty(t, h.pub.Events())
	assert.Contains(t, h.logs.String(), `"status":413`)
}

// Just under the limit, the same reading is read and judged.
func TestWebhook_body_at_the_limit_is_read(t *testing.T) {
	h := newHarness(t, recording())
	head := `{"equipmentId": "press-01", "sensorType": "temperature", "value": 1, "pad": "`
	body := head + strings.Repeat("x", 1<<20-len(head)-2) + `"}`
	require.Len(t, body, 1<<20)

	r := h.post(webhook, body)

	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
}

func TestWebhook_unavailable_queue_is_503(t *testing.T) {
	h := newHarness(t, recording())
	h.pub.Err = fmt.Errorf("add to stream: %w: connection refused", ports.ErrUnavailable)

	r := h.post(webhook, `{"equipmentId": "press-01", "sensorType": "temperature", "value": 1}`)

	e := r.apiError(t, http.StatusServiceUnavailable, "unavailable")
	assert.Equal(t, "5", r.header.Get("Retry-After"))
	assert.NotContains(t, e.Error.Message, "connection refused")
}

// noopPublisher accepts everything and keeps nothing.
type noopPublisher struct{}

func (noopPublisher) PublishReadings(context.Context, ports.ReadingsReceived) error { return nil }

func BenchmarkWebhookSingleReading(b *testing.B) {
	store := memory.NewStore()
	clock := memory.NewClock(t0)
	srv, err := plmhttp.NewServer(plmhttp.Deps{
		Config:   plmhttp.Config{Addr: "127.0.0.1:0", APIKeys: []string{testKey}},
		App:      newApplication(store, clock, noopPublisher{}),
		Clock:    clock,
		Limiter:  memory.NewRateLimiter(0, time.Minute, clock.Now),
		Registry: prometheus.NewRegistry(),
		Logger:   slog.New(slog.DiscardHandler),
	})
	require.NoError(b, err)
	handler := srv.App().Handler()
	var req fasthttp.Request
	req.Header.SetMethod(http.MethodPost)
	req.SetRequestURI(webhook)
	req.Header.SetContentType("application/json")
	req.Header.Set("X-API-Key", testKey)
	req.SetBodyString(`{"equipmentId": "press-01", "sensorType": "temperature", "value": 71.5,
		"unit": "celsius", "timestamp": "2026-11-27T08:14:00.250Z"}`)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		ctx.ResetUserValues()
		ctx.Init(&req, nil, nil)
		handler(&ctx)
		if code := ctx.Response.StatusCode(); code != http.StatusAccepted {
			b.Fatalf("status %d: %s", code, ctx.Response.Body())
		}
	}
}
