package http_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"gopkg.in/yaml.v3"

	plmhttp "github.com/production-line-monitor/plm/adapters/http"
	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/ports"
)

var publicRoutes = []string{"/healthz", "/readyz", "/openapi.yaml", "/", "/assets/:name", "/session"}

// routes lists the app's routes as "METHOD /path" (HEAD, which Fiber adds to every GET,
// left out).
func routes(s *plmhttp.Server) []string {
	var out []string
	for _, r := range s.App().GetRoutes(true) {
		if r.Method == http.MethodHead {
			continue
		}
		if k := r.Method + " " + r.Path; !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func TestAuth_every_protected_route_needs_a_valid_key(t *testing.T) {
	h := newHarness(t, recording())
	all := routes(h.server)
	require.Len(t, all, 29)
	for _, route := range all {
		method, path, _ := strings.Cut(route, " ")
		if slices.Contains(publicRoutes, path) {
			continue
		}
		path = strings.ReplaceAll(path, ":id", "press-01")
		body := ""
		if method == http.MethodPost || method == http.MethodPut {
			body = `{"equipmentId": "press-01", "sensorType": "temperature", "value": 1}`
		}
		t.Run(route, func(t *testing.T) {
			missing := request(method, path, body)
			missing.Header.Del("X-API-Key")
			r := h.send(missing)
			r.apiError(t, http.StatusUnauthorized, "unauthorized")
			assert.NotEmpty(t, r.header.Get("WWW-Authenticate"))

			for _, set := range []func(*http.Request){
				func(r *http.Request) { r.Header.Set("X-API-Key", "wrong") },
				func(r *http.Request) { r.Header.Set("X-API-Key", testKey+"x") },
				func(r *http.Request) { r.Header.Set("Authorization", "Bearer wrong") },
				func(r *http.Request) { r.Header.Set("Authorization", "Basic "+testKey) },
			} {
				wrong := request(method, path, body)
				wrong.Header.Del("X-API-Key")
				set(wrong)
				h.send(wrong).apiError(t, http.StatusUnauthorized, "unauthorized")
			}
		})
	}
	assert.Empty(t, h.pub.Events(), "nothing may be queued without a key")
	assert.NotContains(t, h.logs.String(), testKey)
	assert.NotContains(t, h.logs.String(), "wrong")
}

func TestAuth_unknown_routes_need_a_key_first(t *testing.T) {
	h := newHarness(t)
	for _, target := range []string{"/nope", "/equipment/press-01/nope", "/index.html", "/assets", "/healthz/"} {
		r := httptestRequest(http.MethodGet, target)
		h.send(r).apiError(t, http.StatusUnauthorized, "unauthorized")
	}
	post := httptestRequest(http.MethodPost, "/healthz")
	h.send(post).apiError(t, http.StatusUnauthorized, "unauthorized")
}

func TestAuth_accepts_either_header_and_every_configured_key(t *testing.T) {
	h := newHarness(t)
	for _, set := range []func(*http.Request){
		func(r *http.Request) { r.Header.Set("X-API-Key", testKey) },
		func(r *http.Request) { r.Header.Set("X-API-Key", "other-key") },
		func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testKey) },
		func(r *http.Request) { r.Header.Set("Authorization", "bearer other-key") },
	} {
		r := httptestRequest(http.MethodGet, "/equipment")
		set(r)
		assert.Equal(t, http.StatusOK, h.send(r).status)
	}
}

func httptestRequest(method, target string) *http.Request {
	r := request(method, target, "")
	r.Header.Del("X-API-Key")
	return r
}

func TestRouting_unknown_route_is_404_and_wrong_method_405(t *testing.T) {
	h := newHarness(t)

	h.get("/nope").apiError(t, http.StatusNotFound, "not_found")
	h.get("/Equipment").apiError(t, http.StatusNotFound, "not_found")
	h.send(request(http.MethodDelete, "/equipment/press-01", "")).apiError(t, http.StatusMethodNotAllowed, "method_not_allowed")
	h.post("/equipment", `{}`).apiError(t, http.StatusMethodNotAllowed, "method_not_allowed")
	h.send(request(http.MethodPost, "/healthz", "")).apiError(t, http.StatusMethodNotAllowed, "method_not_allowed")

	r := h.send(request("BREW", "/equipment", ""))
	r.apiError(t, http.StatusMethodNotAllowed, "method_not_allowed")
	assert.NotEmpty(t, r.header.Get("X-Request-ID"))
}

func TestRateLimit_refusal_is_429_with_retry_after(t *testing.T) {
	clock := memory.NewClock(t0)
	h := newHarness(t, withLimiter(memory.NewRateLimiter(2, time.Minute, clock.Now)))

	require.Equal(t, http.StatusOK, h.get("/equipment").status)
	require.Equal(t, http.StatusOK, h.get("/equipment").status)
	r := h.get("/equipment")

	r.apiError(t, http.StatusTooManyRequests, "rate_limited")
	assert.Equal(t, "30", r.header.Get("Retry-After"))

	other := request(http.MethodGet, "/equipment", "")
	other.Header.Set("X-API-Key", "other-key")
	assert.Equal(t, http.StatusOK, h.send(other).status, "each key has its own budget")
	assert.Equal(t, http.StatusOK, h.get("/healthz").status, "health is not limited")
}

// fixedLimiter answers every call the same and records the keys it was asked about.
type fixedLimiter struct {
	mu         sync.Mutex
	ok         bool
	retryAfter time.Duration
	err        error
	keys       []string
}

func (l *fixedLimiter) Allow(_ context.Context, key string) (bool, time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys = append(l.keys, key)
	return l.ok, l.retryAfter, l.err
}

func TestRateLimit_keys_by_hash_and_rounds_retry_after_up(t *testing.T) {
	l := &fixedLimiter{retryAfter: 1500 * time.Millisecond}
	h := newHarness(t, withLimiter(l))

	r := h.get("/equipment")

	r.apiError(t, http.StatusTooManyRequests, "rate_limited")
	assert.Equal(t, "2", r.header.Get("Retry-After"))
	// sha256("test-key-1"), first 16 hex digits.
	assert.Equal(t, []string{"1255558df586ae27"}, l.keys)

	l.retryAfter = 0
	assert.Equal(t, "1", h.get("/equipment").header.Get("Retry-After"), "at least one second")
}

func TestRateLimit_failing_limiter_lets_requests_through(t *testing.T) {
	h := newHarness(t, withLimiter(&fixedLimiter{err: errors.New("redis: connection refused")}))

	r := h.get("/equipment")

	assert.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, h.logs.String(), "redis: connection refused")
}

func TestErrors_internal_failure_is_500_without_details(t *testing.T) {
	h := newHarness(t)
	h.store.SetErr(errors.New("disk on fire at /var/lib/plm"))

	r := h.send(func() *http.Request {
		req := request(http.MethodGet, "/equipment", "")
		req.Header.Set("X-Request-ID", "req-500")
		return req
	}())

	e := r.apiError(t, http.StatusInternalServerError, "internal")
	assert.NotContains(t, string(r.body), "disk")
	assert.Empty(t, e.Error.Details)
	var failures []map[string]any
	for _, l := range logLines(t, h.logs) {
		if l["msg"] == "request failed" {
			failures = append(failures, l)
		}
	}
	require.Len(t, failures, 1, "logged once")
	assert.Equal(t, "req-500", failures[0]["request_id"])
	assert.Contains(t, failures[0]["error"], "disk on fire")
}

func TestErrors_unavailable_storage_is_503(t *testing.T) {
	h := newHarness(t)
	h.store.SetErr(ports.ErrUnavailable)

	r := h.get("/equipment")

	r.apiError(t, http.StatusServiceUnavailable, "unavailable")
	assert.Equal(t, "5", r.header.Get("Retry-After"))
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestRequestID_is_honoured_or_replaced(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name, sent string
		kept       bool
	}{
		{name: "plain", sent: "abc-123", kept: true},
		{name: "all_allowed_characters", sent: "A.z_0:9-", kept: true},
		{name: "128_characters", sent: strings.Repeat("r", 128), kept: true},
		{name: "129_characters", sent: strings.Repeat("r", 129)},
		{name: "spaces_and_markup", sent: "<script>alert(1)</script> x"},
		{name: "newline_escape", sent: "abc%0d%0aSet-Cookie:x"},
		{name: "absent", sent: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := request(http.MethodGet, "/equipment", "")
			if tc.sent != "" {
				req.Header.Set("X-Request-ID", tc.sent)
			}
			got := h.send(req).header.Get("X-Request-ID")
			if tc.kept {
				assert.Equal(t, tc.sent, got)
			} else {
				assert.Regexp(t, uuidPattern, got)
			}
		})
	}
}

func TestLogging_one_line_per_request(t *testing.T) {
	h := newHarness(t)
	req := request(http.MethodGet, "/equipment/press-01", "")
	req.Header.Set("X-Request-ID", "trace-1")
	h.send(req)
	h.get("/nope")

	var lines []map[string]any
	for _, l := range logLines(t, h.logs) {
		if l["msg"] == "http request" {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 2)
	assert.Equal(t, "GET", lines[0]["method"])
	assert.Equal(t, "/equipment/:id", lines[0]["route"])
	assert.Equal(t, float64(404), lines[0]["status"])
	assert.Equal(t, "trace-1", lines[0]["request_id"])
	assert.Contains(t, lines[0], "latency_ms")
	assert.Equal(t, "unmatched", lines[1]["route"])
	assert.NotContains(t, h.logs.String(), testKey)
}

func TestMetrics_exposes_request_counts_by_route_pattern(t *testing.T) {
	h := newHarness(t)
	h.get("/equipment/press-01")
	h.get("/nope")

	r := h.get("/metrics")

	require.Equal(t, http.StatusOK, r.status)
	text := string(r.body)
	assert.Contains(t, text, `plm_http_requests_total{method="GET",route="/equipment/:id",status="404"} 1`)
	assert.Contains(t, text, `plm_http_requests_total{method="GET",route="unmatched",status="404"} 1`)
	assert.Contains(t, text, `plm_http_request_duration_seconds_bucket{method="GET",route="/equipment/:id"`)
	assert.NotContains(t, text, "press-01")
	assert.NotContains(t, text, "/nope")
}

func TestHealthz_is_ok_without_a_key(t *testing.T) {
	h := newHarness(t)
	r := h.send(httptestRequest(http.MethodGet, "/healthz"))
	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"status": "ok"}`, string(r.body))
}

// namedPinger is a dependency with a fixed answer; block makes Ping wait until released,
// ignoring its context.
type namedPinger struct {
	name    string
	err     error
	block   chan struct{}
	started chan struct{}
}

func (p *namedPinger) Name() string { return p.name }

func (p *namedPinger) Ping(context.Context) error {
	if p.started != nil {
		close(p.started)
	}
	if p.block != nil {
		<-p.block
	}
	return p.err
}

func TestReadyz_checks_every_dependency(t *testing.T) {
	store := memory.NewStore()
	queue := &namedPinger{name: "queue"}
	h := newHarness(t, withPingers(store, queue))

	r := h.send(httptestRequest(http.MethodGet, "/readyz"))
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	assert.JSONEq(t, `{"status": "ready", "checks": {"storage": "ok", "queue": "ok"}}`, string(r.body))

	store.SetErr(errors.New("database is locked"))
	queue.err = errors.New("dial tcp: refused")
	r = h.send(httptestRequest(http.MethodGet, "/readyz"))
	e := r.apiError(t, http.StatusServiceUnavailable, "unavailable")
	assert.Equal(t, []string{"storage", "queue"}, e.fields())
	assert.Equal(t, "5", r.header.Get("Retry-After"))
	assert.NotContains(t, string(r.body), "locked")
}

func TestReadyz_dependency_that_hangs_fails_after_2s(t *testing.T) {
	t.Parallel()
	hung := &namedPinger{name: "queue", block: make(chan struct{})}
	defer close(hung.block)
	h := newHarness(t, withPingers(hung))

	start := time.Now()
	r := h.send(httptestRequest(http.MethodGet, "/readyz"))

	e := r.apiError(t, http.StatusServiceUnavailable, "unavailable")
	assert.Equal(t, "did not answer within 2s", e.message(t, "queue"))
	assert.WithinDuration(t, start.Add(2*time.Second), time.Now(), time.Second)
}

func TestLifecycle_stop_drains_in_flight_requests(t *testing.T) {
	slow := &namedPinger{name: "storage", block: make(chan struct{}), started: make(chan struct{})}
	h := newHarness(t, withPingers(slow))
	require.NoError(t, h.server.Start(context.Background()))
	addr := h.server.Addr()
	require.NotEqual(t, "127.0.0.1:0", addr)

	ok := roundTrip(t, mustRequest(t, http.MethodGet, "http://"+addr+"/healthz"))
	require.Equal(t, http.StatusOK, ok.status)

	inFlight := make(chan response, 1)
	go func() { inFlight <- roundTrip(t, mustRequest(t, http.MethodGet, "http://"+addr+"/readyz")) }()
	<-slow.started

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopped <- h.server.Stop(ctx)
	}()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	}, 5*time.Second, 10*time.Millisecond, "the listener closes")
	select {
	case err := <-stopped:
		t.Fatalf("stop returned (%v) before the request in flight finished", err)
	default:
	}

	close(slow.block)
	r := <-inFlight
	e := r.apiError(t, http.StatusServiceUnavailable, "unavailable")
	assert.Contains(t, e.Error.Message, "shutting down")
	require.NoError(t, <-stopped)
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	return r
}

func TestNewServer_refuses_bad_config(t *testing.T) {
	clock := memory.NewClock(t0)
	deps := func(cfg plmhttp.Config) plmhttp.Deps {
		return plmhttp.Deps{
			Config: cfg, App: newApplication(memory.NewStore(), clock, &memory.Publisher{}), Clock: clock,
			Limiter: memory.NewRateLimiter(0, time.Minute, clock.Now), Registry: prometheus.NewRegistry(),
			Logger: slog.New(slog.DiscardHandler),
		}
	}
	for name, cfg := range map[string]plmhttp.Config{
		"no_keys":        {Addr: ":0"},
		"empty_key":      {Addr: ":0", APIKeys: []string{"k", ""}},
		"padded_key":     {Addr: ":0", APIKeys: []string{" k"}},
		"no_addr":        {APIKeys: []string{"k"}},
		"negative_limit": {Addr: ":0", APIKeys: []string{"k"}, BodyLimit: -1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := plmhttp.NewServer(deps(cfg))
			require.Error(t, err)
		})
	}
	_, err := plmhttp.NewServer(deps(plmhttp.Config{Addr: ":0", APIKeys: []string{"k"}}))
	require.NoError(t, err)
}

func TestNewServer_twice_on_one_registry(t *testing.T) {
	clock := memory.NewClock(t0)
	reg := prometheus.NewRegistry()
	for range 2 {
		_, err := plmhttp.NewServer(plmhttp.Deps{
			Config: plmhttp.Config{Addr: ":0", APIKeys: []string{"k"}},
			App:    newApplication(memory.NewStore(), clock, &memory.Publisher{}), Clock: clock,
			Limiter: memory.NewRateLimiter(0, time.Minute, clock.Now), Registry: reg, Logger: slog.New(slog.DiscardHandler),
		})
		require.NoError(t, err)
	}
}

// openAPIDoc is the part of the OpenAPI document these tests read.
type openAPIDoc struct {
	OpenAPI    string                    `yaml:"openapi"`
	Paths      map[string]map[string]any `yaml:"paths"`
	Components struct {
		SecuritySchemes map[string]map[string]any `yaml:"securitySchemes"`
	} `yaml:"components"`
}

func TestOpenAPI_is_served_without_a_key(t *testing.T) {
	h := newHarness(t)

	r := h.send(httptestRequest(http.MethodGet, "/openapi.yaml"))

	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "application/yaml", r.header.Get("Content-Type"))
	var doc openAPIDoc
	require.NoError(t, yaml.Unmarshal(r.body, &doc))
	assert.True(t, strings.HasPrefix(doc.OpenAPI, "3.0"), doc.OpenAPI)
	assert.Equal(t, "apiKey", doc.Components.SecuritySchemes["apiKey"]["type"])
	assert.Equal(t, "X-API-Key", doc.Components.SecuritySchemes["apiKey"]["name"])
	assert.Equal(t, "http", doc.Components.SecuritySchemes["bearer"]["type"])
	assert.Equal(t, "bearer", doc.Components.SecuritySchemes["bearer"]["scheme"])
}

// pathParam is a parameter of a Fiber route pattern (":id"), which OpenAPI writes "{id}".
var pathParam = regexp.MustCompile(`:([A-Za-z]+)`)

func TestOpenAPI_documents_exactly_the_routes(t *testing.T) {
	h := newHarness(t)
	var doc openAPIDoc
	require.NoError(t, yaml.Unmarshal(h.get("/openapi.yaml").body, &doc))

	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(documented)
	var routed []string
	for _, r := range routes(h.server) {
		routed = append(routed, pathParam.ReplaceAllString(r, "{$1}"))
	}

	assert.Equal(t, routed, documented)
}

func TestOpenAPI_documents_every_error_code(t *testing.T) {
	h := newHarness(t)
	doc := string(h.get("/openapi.yaml").body)
	for _, code := range []string{
		"malformed_json", "validation_failed", "invalid_query", "unauthorized", "not_found",
		"payload_too_large", "unsupported_media_type", "rate_limited", "unavailable", "internal",
		"method_not_allowed", "forbidden",
	} {
		assert.Contains(t, doc, code)
	}
}

func TestModule_provides_the_server_with_its_pingers(t *testing.T) {
	store := memory.NewStore()
	clock := memory.NewClock(t0)
	var srv *plmhttp.Server
	app := fxtest.New(t,
		plmhttp.Module,
		fx.Supply(
			plmhttp.Config{Addr: "127.0.0.1:0", APIKeys: []string{testKey}},
			newApplication(store, clock, &memory.Publisher{}),
			fx.Annotate(clock, fx.As(new(ports.Clock))),
			fx.Annotate(memory.NewRateLimiter(0, time.Minute, clock.Now), fx.As(new(ports.RateLimiter))),
			prometheus.NewRegistry(),
			slog.New(slog.DiscardHandler),
		),
		fx.Provide(fx.Annotate(func() ports.Pinger { return store }, fx.ResultTags(`group:"pingers"`))),
		fx.Populate(&srv),
	)
	app.RequireStart()
	defer app.RequireStop()

	store.SetErr(errors.New("database is locked"))
	resp, err := srv.App().Test(httptestRequest(http.MethodGet, "/readyz"), -1)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "the storage pinger came through the group")
}

func TestMetrics_count_webhook_readings_by_outcome(t *testing.T) {
	h := newHarness(t, recording())
	h.post(webhook, batch(
		`{"equipmentId": "press-01", "sensorType": "temperature", "value": 1}`,
		`{"equipmentId": "press-01", "sensorType": "temperature", "value": 2}`))
	h.post(webhook, batch( // one bad reading refuses all three
		`{"equipmentId": "press-01", "sensorType": "temperature", "value": 1}`,
		`{"equipmentId": "press-01", "sensorType": "humidity", "value": 1}`,
		`{"equipmentId": "press-01", "sensorType": "temperature", "value": 3}`))
	h.pub.Err = fmt.Errorf("queue down: %w", ports.ErrUnavailable)
	h.post(webhook, `{"equipmentId": "press-01", "sensorType": "temperature", "value": 4}`)

	text := string(h.get("/metrics").body)
	assert.Contains(t, text, `plm_webhook_readings_total{outcome="accepted"} 2`)
	assert.Contains(t, text, `plm_webhook_readings_total{outcome="rejected"} 3`)
	assert.Contains(t, text, `plm_webhook_readings_total{outcome="unavailable"} 1`)
}
