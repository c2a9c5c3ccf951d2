package http

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

type localKey int

const (
	localRequestID localKey = iota
	localCaller             // the rate-limit identity of an authenticated caller
	localScope              // the Scope of an authenticated caller's key
	localSession            // when the session of a caller signed in by its cookie expires
)

// routeUnmatched labels requests that matched no route.
const routeUnmatched = "unmatched"

const maxRequestIDLen = 128

// observe gives each request its id, turns a panic into an error, hands errors to the error
// handler, and then writes the request's log line and metrics.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	assignRequestID(c)
	if err := callNext(c); err != nil {
		if herr := s.handleError(c, err); herr != nil {
			return herr
		}
	}
	s.record(c, start)
	return nil
}

func callNext(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return c.Next()
}

// record writes the one log line of a request and its metrics.
func (s *Server) record(c *fiber.Ctx, start time.Time) {
	elapsed := time.Since(start)
	method, route := methodLabel(c.Method()), s.routeLabel(c)
	status := c.Response().StatusCode()
	s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
	s.log.LogAttrs(c.UserContext(), slog.LevelInfo, "http request",
		slog.String("method", method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("latency_ms", float64(elapsed.Microseconds())/1000),
		slog.String("request_id", requestID(c)),
	)
}

// assignRequestID honours the caller's X-Request-ID when it is 1 to 128 characters of
// [A-Za-z0-9._:-] and makes a new one otherwise; the id is echoed in the response.
func assignRequestID(c *fiber.Ctx) {
	id := c.Get(fiber.HeaderXRequestID)
	if validRequestID(id) {
		id = strings.Clone(id)
	} else {
		id = uuid.NewString()
	}
	c.Locals(localRequestID, id)
	c.Set(fiber.HeaderXRequestID, id)
}

func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9',
			b == '.', b == '_', b == ':', b == '-':
		default:
			return false
		}
	}
	return true
}

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}

const methodOther = "OTHER"

// methodLabel returns a constant for each method Fiber routes, so that nothing of the
// request buffer is kept in metrics.
func methodLabel(m string) string {
	if i := slices.Index(fiber.DefaultMethods, m); i >= 0 {
		return fiber.DefaultMethods[i]
	}
	return methodOther
}

// routeLabel is the pattern of the route that answered, never the raw path; routeUnmatched
// when none did (the middleware, which matches every path, does not count).
func (s *Server) routeLabel(c *fiber.Ctx) string {
	r := c.Route()
	if r == nil || !s.routes[r] {
		return routeUnmatched
	}
	return r.Path
}

// keyHash is a configured key as the server keeps it: its SHA-256, and its scope.
type keyHash struct {
	sum   [sha256.Size]byte
	scope Scope
}

// authenticate lets through requests carrying one of the keys, as X-API-Key or as a bearer
// token, and notes the key's scope for the routes to check. The presented key is hashed and
// compared, in constant time, with every key (all of them, whichever matches). A request
// that presents no key may carry a browser session's cookie instead (authenticateSession).
func (s *Server) authenticate(c *fiber.Ctx) error {
	key := presentedKey(c)
	if key == "" {
		return s.authenticateSession(c)
	}
	sum := sha256.Sum256([]byte(key))
	var scope Scope
	for i := range s.keys {
		if subtle.ConstantTimeCompare(sum[:], s.keys[i].sum[:]) == 1 {
			scope = s.keys[i].scope
		}
	}
	if scope == "" {
		return &apiError{status: fiber.StatusUnauthorized, code: codeUnauthorized, message: "the API key is not valid"}
	}
	c.Locals(localCaller, hex.EncodeToString(sum[:8]))
	c.Locals(localScope, scope)
	return c.Next()
}

func presentedKey(c *fiber.Ctx) string {
	if k := strings.TrimSpace(c.Get("X-API-Key")); k != "" {
		return k
	}
	const bearer = "bearer "
	auth := strings.TrimSpace(c.Get(fiber.HeaderAuthorization))
	if len(auth) > len(bearer) && strings.EqualFold(auth[:len(bearer)], bearer) {
		return strings.TrimSpace(auth[len(bearer):])
	}
	return ""
}

// rateLimit asks the limiter about the caller (the first 16 hex digits of its key's SHA-256).
// A limiter that fails lets the request through.
func (s *Server) rateLimit(c *fiber.Ctx) error {
	caller, _ := c.Locals(localCaller).(string)
	if err := s.allow(c, caller); err != nil {
		return err
	}
	return c.Next()
}

// allow asks the limiter about caller: nil when the request may go on, the rate_limited
// answer when not. A limiter that fails lets the request through.
func (s *Server) allow(c *fiber.Ctx, caller string) error {
	ok, retryAfter, err := s.limiter.Allow(c.UserContext(), caller)
	if err != nil {
		s.log.WarnContext(c.UserContext(), "rate limiter failed, request let through",
			"request_id", requestID(c), "error", err)
		return nil
	}
	if !ok {
		return &apiError{status: fiber.StatusTooManyRequests, code: codeRateLimited,
			message: "too many requests; retry later", retryAfter: max(retryAfter, time.Second)}
	}
	return nil
}

// requireJSON refuses bodies that are not declared as JSON, or that are compressed.
func requireJSON(c *fiber.Ctx) error {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return &apiError{status: fiber.StatusUnsupportedMediaType, code: codeUnsupportedMediaType,
			message: "Content-Type must be application/json"}
	}
	if enc := strings.TrimSpace(c.Get(fiber.HeaderContentEncoding)); enc != "" && !strings.EqualFold(enc, "identity") {
		return &apiError{status: fiber.StatusUnsupportedMediaType, code: codeUnsupportedMediaType,
			message: "Content-Encoding is not supported; send the body uncompressed"}
	}
	return c.Next()
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// readings counts the readings of webhook requests by outcome: accepted (queued),
	// rejected (a batch that broke a rule: every reading of it), unavailable (the queue
	// could not take them).
	readings *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	requests, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plm_http_requests_total",
		Help: "HTTP requests answered, by method, route pattern and status.",
	}, []string{"method", "route", "status"}))
	if err != nil {
		return nil, err
	}
	duration, err := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "plm_http_request_duration_seconds",
		Help:    "Time taken to answer HTTP requests, by method and route pattern.",
		Buckets: prometheus.DefBuckets,
	}, []string{"method", "route"}))
	if err != nil {
		return nil, err
	}
	readings, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plm_webhook_readings_total",
		Help: "Readings sent to the webhook, by outcome: accepted, rejected (invalid batch) or unavailable.",
	}, []string{"outcome"}))
	if err != nil {
		return nil, err
	}
	for _, o := range []string{outcomeAccepted, outcomeRejected, outcomeUnavailable} {
		readings.WithLabelValues(o) // present at 0 from the start
	}
	return &httpMetrics{requests: requests, duration: duration, readings: readings}, nil
}

// Outcomes of webhook readings.
const (
	outcomeAccepted    = "accepted"
	outcomeRejected    = "rejected"
	outcomeUnavailable = "unavailable"
)

// register adds c to reg, or returns the equal collector registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		var zero C
		return zero, fmt.Errorf("register metrics: %w", err)
	}
	return c, nil
}
