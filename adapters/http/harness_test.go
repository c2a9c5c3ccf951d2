package http_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	plmhttp "github.com/production-line-monitor/plm/adapters/http"
	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/application"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/ports"
	"github.com/production-line-monitor/plm/tests/logbuf"
)

// testKey has full access; ingestKey and readKey have one scope each.
const (
	testKey   = "test-key-1"
	ingestKey = "machine-key-1"
	readKey   = "dashboard-key-1"
)

// t0 is when every test's clock stands at the start.
var t0 = time.Date(2026, 11, 27, 8, 15, 0, 0, time.UTC)

type harness struct {
	t        *testing.T
	server   *plmhttp.Server
	store    *memory.Store
	clock    *memory.Clock
	pub      *memory.Publisher
	registry *prometheus.Registry
	logs     *logbuf.Buffer
	events   *memory.EventLog // what GET /stream reads
}

type harnessConfig struct {
	limiter ports.RateLimiter
	pingers []ports.Pinger
	record  bool // the publisher records events instead of processing them
	config  func(*plmhttp.Config)
	events  *memory.EventLog
	sensors *rules.Set
}

type option func(*harnessConfig)

func withLimiter(l ports.RateLimiter) option { return func(c *harnessConfig) { c.limiter = l } }
func withPingers(p ...ports.Pinger) option   { return func(c *harnessConfig) { c.pingers = p } }

// withConfig changes the server's configuration before it is built.
func withConfig(f func(*plmhttp.Config)) option { return func(c *harnessConfig) { c.config = f } }

// withEventLog gives the server the event log l (none when nil) in place of its own.
func withEventLog(l *memory.EventLog) option { return func(c *harnessConfig) { c.events = l } }

// withSensors makes the server and the ingest use case accept the sensor types set declares.
func withSensors(set rules.Set) option { return func(c *harnessConfig) { c.sensors = &set } }

// recording makes the publisher keep events rather than run the pipeline.
func recording() option { return func(c *harnessConfig) { c.record = true } }

// newHarness wires the real use cases over the in-memory fakes, with a clock fixed at t0
// and a publisher that processes each event synchronously.
func newHarness(t *testing.T, opts ...option) *harness {
	t.Helper()
	store := memory.NewStore()
	clock := memory.NewClock(t0)
	hc := harnessConfig{
		limiter: memory.NewRateLimiter(0, time.Minute, clock.Now),
		pingers: []ports.Pinger{store},
		events:  memory.NewEventLog(0, time.Now),
	}
	for _, o := range opts {
		o(&hc)
	}
	h := &harness{t: t, store: store, clock: clock, registry: prometheus.NewRegistry(), logs: &logbuf.Buffer{}, events: hc.events}
	h.pub = &memory.Publisher{}
	app := newApplication(store, clock, h.pub)
	if !hc.record {
		h.pub.Deliver = func(ctx context.Context, e ports.ReadingsReceived) error {
			_, _ = app.Commands.ProcessReadings.Handle(ctx, e)
			return nil
		}
	}
	cfg := plmhttp.Config{Addr: "127.0.0.1:0", APIKeys: []string{"other-key", testKey, "ingest:" + ingestKey, "read:" + readKey}}
	if hc.config != nil {
		hc.config(&cfg)
	}
	deps := plmhttp.Deps{
		Config:   cfg,
		App:      app,
		Clock:    clock,
		Limiter:  hc.limiter,
		Pingers:  hc.pingers,
		Registry: h.registry,
		Logger:   slog.New(slog.NewJSONHandler(h.logs, nil)),
	}
	if hc.events != nil {
		deps.EventLog = hc.events
	}
	if hc.sensors != nil {
		deps.Sensors = *hc.sensors
		app.Commands.IngestReadings.WithTypes(hc.sensors.Knows)
	}
	srv, err := plmhttp.NewServer(deps)
	require.NoError(t, err)
	h.server = srv
	return h
}

func newApplication(store *memory.Store, clock *memory.Clock, pub ports.ReadingsPublisher) application.Application {
	return memory.NewApplication(store, clock, pub, &memory.IDs{})
}

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var out map[string]any
	require.NoError(t, json.Unmarshal(r.body, &out), "body: %s", r.body)
	return out
}

// mustJSON renders v as JSON.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

type errorDetail struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

type errorBody struct {
	Error struct {
		Code    string        `json:"code"`
		Message string        `json:"message"`
		Details []errorDetail `json:"details"`
	} `json:"error"`
}

// apiError decodes an error answer and checks its status and code.
func (r response) apiError(t *testing.T, status int, code string) errorBody {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	require.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
	var e errorBody
	require.NoError(t, json.Unmarshal(r.body, &e), "body: %s", r.body)
	require.Equal(t, code, e.Error.Code, "body: %s", r.body)
	require.NotEmpty(t, e.Error.Message)
	return e
}

// fields lists the fields the details name, in order.
func (e errorBody) fields() []string {
	out := make([]string, len(e.Error.Details))
	for i, d := range e.Error.Details {
		out[i] = d.Field
	}
	return out
}

// message returns the message of the detail naming field.
func (e errorBody) message(t *testing.T, field string) string {
	t.Helper()
	for _, d := range e.Error.Details {
		if d.Field == field {
			return d.Message
		}
	}
	t.Fatalf("no detail names %q: %+v", field, e.Error.Details)
	return ""
}

// request builds an authenticated request; a non-empty body is sent as JSON.
func request(method, target, body string) *http.Request {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("X-API-Key", testKey)
	return r
}

func (h *harness) send(r *http.Request) response {
	h.t.Helper()
	resp, err := h.server.App().Test(r, -1)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func (h *harness) get(target string) response { return h.send(request(http.MethodGet, target, "")) }

func (h *harness) post(target, body string) response {
	return h.send(request(http.MethodPost, target, body))
}

func (h *harness) put(target, body string) response {
	return h.send(request(http.MethodPut, target, body))
}

// start serves on a free local port until the test ends and returns the base URL.
func (h *harness) start() string {
	h.t.Helper()
	require.NoError(h.t, h.server.Start(context.Background()))
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(h.t, h.server.Stop(ctx))
	})
	return "http://" + h.server.Addr()
}

// roundTrip sends r over the network and reads the answer whole.
func roundTrip(t *testing.T, r *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// ingest posts a body to the webhook and requires 202.
func (h *harness) ingest(body string) {
	h.t.Helper()
	r := h.post("/webhook/sensor-data", body)
	require.Equal(h.t, http.StatusAccepted, r.status, "body: %s", r.body)
}

// reading renders one reading as JSON.
func reading(equipmentID, sensorType string, value float64, ts time.Time) string {
	b, _ := json.Marshal(map[string]any{
		"equipmentId": equipmentID, "sensorType": sensorType, "value": value,
		"unit": "celsius", "timestamp": ts.Format(time.RFC3339Nano),
	})
	return string(b)
}

// batch renders readings as a batch body.
func batch(readings ...string) string {
	return `{"readings": [` + strings.Join(readings, ",") + `]}`
}

// logLines decodes the JSON log lines of b.
func logLines(t *testing.T, b *logbuf.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range b.Lines() {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "log line: %s", line)
		out = append(out, m)
	}
	return out
}
