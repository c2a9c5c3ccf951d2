// Package e2e drives the real service over HTTP: on its embedded default, on PostgreSQL,
// and on PostgreSQL with the Redis Streams queue.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	httpadapter "github.com/production-line-monitor/plm/adapters/http"
	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/adapters/redisstream"
	"github.com/production-line-monitor/plm/bootstrap"
	"github.com/production-line-monitor/plm/ports"
)

const apiKey = "e2e-test-key-0123456789"

// t0 is where the service's clock starts in these tests.
var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// service is one running instance of the service, in this process.
type service struct {
	t     *testing.T
	app   *fxtest.App
	base  string
	clock *memory.Clock
	// settle, with the Redis queue, waits until the workers have processed every queued
	// message: there a 202 means queued, not yet stored.
	settle func()
}

// config is the default configuration with a data dir and a free port.
func config(t *testing.T, dataDir string, env map[string]string) bootstrap.Config {
	t.Helper()
	vars := map[string]string{"PLM_ADDR": "127.0.0.1:0", "PLM_DATA_DIR": dataDir, "PLM_API_KEYS": apiKey}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := bootstrap.LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start runs the service with cfg on a clock standing at now.
func start(t *testing.T, cfg bootstrap.Config, now time.Time) *service {
	t.Helper()
	clock := memory.NewClock(now)
	var srv *httpadapter.Server
	var monitor *redisstream.Monitor
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := []fx.Option{
		bootstrap.Service(cfg, log, bootstrap.RoleAll),
		fx.Replace(fx.Annotate(clock, fx.As(new(ports.Clock)))),
		fx.Populate(&srv),
	}
	if !cfg.Queue.Embedded() {
		opts = append(opts, fx.Populate(&monitor))
	}
	app := fxtest.New(t, opts...)
	app.RequireStart()
	s := &service{t: t, app: app, base: "http://" + srv.Addr(), clock: clock}
	if monitor != nil {
		s.settle = func() { waitDrained(t, monitor) }
	}
	t.Cleanup(s.stop)
	return s
}

// waitDrained waits until no readings stream has a message undelivered or unacknowledged.
func waitDrained(t *testing.T, m *redisstream.Monitor) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		snap, err := m.Snapshot(context.Background())
		drained := err == nil
		for _, st := range snap.Streams {
			if st.Group == redisstream.GroupProcess && (st.Lag != 0 || st.Pending != 0) {
				drained = false
			}
		}
		if drained {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained within 20 s: %+v, %v", snap, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *service) stop() { s.app.RequireStop() }

// response is an answer with its decoded JSON body.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer is not a JSON object (%v): %s", err, r.body)
	}
	return m
}

// errorCode returns error.code of an error answer.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %s", r.body)
	}
	code, _ := e["code"].(string)
	return code
}

func (s *service) do(method, path string, body any, headers map[string]string) response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-API-Key", apiKey)
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

func (s *service) get(path string) response { return s.do(http.MethodGet, path, nil, nil) }

// post sends readings to the webhook and, with the Redis queue, waits for them to be
// processed when they were accepted.
func (s *service) post(body any) response {
	r := s.do(http.MethodPost, "/webhook/sensor-data", body, nil)
	if r.status == http.StatusAccepted && s.settle != nil {
		s.settle()
	}
	return r
}

// mustStatus fails the test unless r has the wanted status.
func mustStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
}

func reading(equipment, typ string, value float64, ts time.Time) map[string]any {
	return map[string]any{"equipmentId": equipment, "sensorType": typ, "value": value,
		"unit": "celsius", "timestamp": ts.Format(time.RFC3339Nano)}
}

// normal returns n readings of a steady signal around 70, one per second from start.
func normal(equipment string, n int, start time.Time) []map[string]any {
	out := make([]map[string]any, n)
	for i := range n {
		v := 70 + float64(i%5-2)*0.5 // 69, 69.5, 70, 70.5, 71, ...
		out[i] = reading(equipment, "temperature", v, start.Add(time.Duration(i)*time.Second))
	}
	return out
}

func batch(rs []map[string]any) map[string]any { return map[string]any{"readings": rs} }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
