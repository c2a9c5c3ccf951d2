// Package http serves the service's HTTP API with Fiber: the sensor webhook, the equipment,
// history and metrics queries, and the operational endpoints, all described by the embedded
// OpenAPI document (openapi.yaml).
package http

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	validation "github.com/go-ozzo/ozzo-validation/v4"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"go.uber.org/fx"

	"github.com/production-line-monitor/plm/application"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/ports"
)

// Defaults taken by the zero fields of Config.
const (
	DefaultBodyLimit    = 1 << 20 // 1 MiB
	DefaultReadTimeout  = 10 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultIdleTimeout  = 60 * time.Second
	DefaultMaxConns     = 10000
)

// Config sets how the server listens and whom it lets in.
type Config struct {
	// Addr is the TCP address to listen on, e.g. ":8080" (":0" picks a free port).
	Addr string
	// APIKeys are the keys callers may present, each as ParseAPIKey reads it (a scope and
	// a colon, or a bare key with full access); at least one.
	APIKeys []string
	// BodyLimit is the largest request body accepted, in bytes (default 1 MiB).
	BodyLimit int
	// ReadTimeout, WriteTimeout and IdleTimeout bound a connection's phases (defaults 10 s,
	// 10 s and 60 s).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConns is the most connections served at once (default 10000); one more is answered
	// 503 and closed at once.
	MaxConns int
	// OpsOnly serves the operational endpoints only (/healthz, /readyz, /metrics): the
	// face of a process that runs workers and no API.
	OpsOnly bool
	// SessionTTL is how long a browser session (POST /session) lasts (default 12 h).
	SessionTTL time.Duration
	// StreamKeepAlive is the interval of the live stream's keep-alive comments (default
	// 15 s); StreamMaxClients the most live streams served at once (default 1000), over
	// which GET /stream is answered 503.
	StreamKeepAlive  time.Duration
	StreamMaxClients int
}

// Validate names every bad field.
func (c Config) Validate() error {
	return validation.ValidateStruct(&c,
		validation.Field(&c.Addr, validation.Required),
		validation.Field(&c.APIKeys, validation.Required, validation.Each(validation.By(func(v any) error {
			_, err := ParseAPIKey(v.(string))
			return err
		}))),
		validation.Field(&c.BodyLimit, validation.Min(0)),
		validation.Field(&c.ReadTimeout, validation.Min(time.Duration(0))),
		validation.Field(&c.WriteTimeout, validation.Min(time.Duration(0))),
		validation.Field(&c.IdleTimeout, validation.Min(time.Duration(0))),
		validation.Field(&c.MaxConns, validation.Min(0)),
		validation.Field(&c.SessionTTL, validation.Min(time.Duration(0))),
		validation.Field(&c.StreamKeepAlive, validation.Min(time.Duration(0))),
		validation.Field(&c.StreamMaxClients, validation.Min(0)),
	)
}

func (c Config) withDefaults() Config {
	if c.BodyLimit == 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.StreamKeepAlive == 0 {
		c.StreamKeepAlive = DefaultStreamKeepAlive
	}
	if c.StreamMaxClients == 0 {
		c.StreamMaxClients = DefaultStreamMaxClients
	}
	return c
}

// Deps is what the server needs.
type Deps struct {
	fx.In

	Config   Config
	App      application.Application
	Clock    ports.Clock
	Limiter  ports.RateLimiter
	Pingers  []ports.Pinger `group:"pingers"`
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// EventLog feeds GET /stream; without one, the stream answers 503.
	EventLog ports.EventLog `optional:"true"`
	// Sensors declares the sensor types accepted beyond the contract's four; without it,
	// only those four are.
	Sensors rules.Set `optional:"true"`
}

// Server is the HTTP face of the service.
type Server struct {
	cfg     Config
	app     *fiber.App
	log     *slog.Logger
	keys    []keyHash
	limiter ports.RateLimiter
	metrics *httpMetrics
	routes  map[*fiber.Route]bool // the routes that answer requests, middleware left out

	sessions *sessions
	streams  *streams // nil when OpsOnly

	draining atomic.Bool

	mu     sync.Mutex
	ln     net.Listener
	served chan struct{} // closed when the listener loop has returned
}

// NewServer builds the server and its routes; it does not listen yet.
func NewServer(d Deps) (*Server, error) {
	if err := d.Config.Validate(); err != nil {
		return nil, fmt.Errorf("http config: %w", err)
	}
	if d.Clock == nil || d.Limiter == nil || d.Registry == nil || d.Logger == nil {
		return nil, errors.New("new http server: clock, limiter, registry and logger are required")
	}
	cfg := d.Config.withDefaults()
	metrics, err := newHTTPMetrics(d.Registry)
	if err != nil {
		return nil, fmt.Errorf("new http server: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		log:     d.Logger.With("component", "http"),
		limiter: d.Limiter,
		metrics: metrics,
	}
	apiKeys := make([]APIKey, 0, len(cfg.APIKeys))
	for _, entry := range cfg.APIKeys {
		k, _ := ParseAPIKey(entry) // Validate has refused any that does not parse
		s.keys = append(s.keys, keyHash{sum: sha256.Sum256([]byte(k.Key)), scope: k.Scope})
		apiKeys = append(apiKeys, k)
	}
	s.sessions = newSessions(apiKeys, cfg.SessionTTL, d.Clock.Now)
	s.app = fiber.New(fiber.Config{
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		Concurrency:           cfg.MaxConns,
		CaseSensitive:         true,
		StrictRouting:         true,
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
	})
	s.app.Server().Handler = s.rejectUnroutable(s.app.Server().Handler)

	pg, err := newEmbeddedPage()
	if err != nil {
		return nil, fmt.Errorf("new http server: %w", err)
	}
	h := &handlers{app: d.App, clock: d.Clock, metrics: metrics, types: newSensorTypes(d.Sensors)}
	ops := &operations{pingers: d.Pingers, draining: &s.draining, log: s.log}

	s.app.Use(s.observe)
	// Routes open to everyone come before the key check.
	s.app.Get("/healthz", ops.healthz)
	s.app.Get("/readyz", ops.readyz)
	ingest, read, admin := s.require(ScopeIngest), s.require(ScopeRead), s.require(ScopeAdmin)
	if cfg.OpsOnly {
		s.app.Use(s.authenticate, s.rateLimit)
		s.app.Get("/metrics", read, adaptor.HTTPHandler(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))
		s.recordRoutes()
		return s, nil
	}
	s.app.Get("/openapi.yaml", ops.openapi)
	// The live status page and its assets: no key, the page signs in by itself.
	s.app.Get("/", pg.serveIndex)
	s.app.Get(assetPrefix+":name", pg.serveAsset)
	// A browser trades a key for a session cookie, and forgets it, without a key.
	s.app.Post("/session", s.createSession)
	s.app.Delete("/session", s.deleteSession)
	// Everything below, unknown routes included, needs a key (or a session).
	s.app.Use(s.authenticate, s.rateLimit)
	s.app.Get("/session", s.sessionInfo)
	streamMetrics, err := newStreamMetrics(d.Registry)
	if err != nil {
		return nil, fmt.Errorf("new http server: %w", err)
	}
	s.streams = newStreams(d.EventLog, cfg, s.log, streamMetrics)
	s.app.Get("/stream", read, s.streams.stream)
	// Each route names the scope it needs: machines ingest, dashboards read, admins do all.
	s.app.Post("/webhook/sensor-data", ingest, requireJSON, h.ingestReadings)
	s.app.Get("/equipment", read, h.listEquipment)
	s.app.Get("/equipment/:id", read, h.getEquipment)
	s.app.Put("/equipment/:id", admin, requireJSON, h.putEquipment)
	s.app.Get("/equipment/:id/status", read, h.equipmentStatus)
	s.app.Put("/equipment/:id/maintenance", admin, requireJSON, h.putMaintenance)
	s.app.Delete("/equipment/:id/maintenance", admin, h.deleteMaintenance)
	s.app.Get("/equipment/:id/sensor-history", read, h.sensorHistory)
	s.app.Get("/alerts/history", read, h.alertHistory)
	s.app.Get("/metrics/production", read, h.productionMetrics)
	// Acknowledging is part of watching the line: a dashboard's read key may do it.
	s.app.Get("/alarms", read, h.alarmList)
	s.app.Get("/alarms/:id", read, h.alarmDetail)
	s.app.Post("/alarms/:id/ack", read, requireJSON, h.ackAlarm)
	// Outbound notifications: where they go and how their delivery went, admins only.
	s.app.Post("/subscriptions", admin, requireJSON, h.createSubscription)
	s.app.Get("/subscriptions", admin, h.listSubscriptions)
	s.app.Get("/subscriptions/:id", admin, h.getSubscription)
	s.app.Delete("/subscriptions/:id", admin, h.deleteSubscription)
	s.app.Get("/subscriptions/:id/deliveries", admin, h.subscriptionDeliveries)
	s.app.Post("/subscriptions/:id/deliveries/:deliveryId/redeliver", admin, h.redeliver)
	s.app.Get("/metrics", read, adaptor.HTTPHandler(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))
	s.recordRoutes()
	return s, nil
}

// recordRoutes notes the routes that answer requests, middleware left out. A route is known
// by identity, not by its pattern: the middleware's pattern is "/", which GET / shares. The
// copies that GetRoutes returns share their handler slices with the routes themselves.
func (s *Server) recordRoutes() {
	answering := make(map[*fiber.Handler]bool)
	for _, r := range s.app.GetRoutes(true) {
		if len(r.Handlers) > 0 {
			answering[&r.Handlers[0]] = true
		}
	}
	s.routes = make(map[*fiber.Route]bool)
	for _, stack := range s.app.Stack() {
		for _, r := range stack {
			if len(r.Handlers) > 0 && answering[&r.Handlers[0]] {
				s.routes[r] = true
			}
		}
	}
}

// App returns the Fiber application, for app.Test.
func (s *Server) App() *fiber.App { return s.app }

// Start listens on the configured address and serves in the background.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	served := make(chan struct{})
	s.mu.Lock()
	s.ln, s.served = ln, served
	s.mu.Unlock()
	go func() {
		defer close(served)
		if err := s.app.Listener(ln); err != nil && !s.draining.Load() {
			s.log.Error("http server stopped serving", "error", err)
		}
	}()
	return nil
}

// Addr is the address the server listens on once started (the configured one before).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return s.cfg.Addr
	}
	return s.ln.Addr().String()
}

// Stop marks the server draining (readiness answers 503 from now on), stops accepting
// connections and waits, until ctx ends, for the requests in flight to finish.
func (s *Server) Stop(ctx context.Context) error {
	s.draining.Store(true)
	if s.streams != nil {
		s.streams.close() // live streams never end by themselves
	}
	if err := s.app.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("shut down http server: %w", err)
	}
	s.mu.Lock()
	served := s.served
	s.mu.Unlock()
	if served == nil {
		return nil
	}
	select {
	case <-served:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shut down http server: %w", ctx.Err())
	}
}

// rejectUnroutable answers requests with a method Fiber does not route (which it would
// otherwise answer in plain text) through the error handler, as 405; and requests whose
// target fasthttp could not parse (a control byte in it, or a bad Host header), which it
// leaves without a path, and which would otherwise be routed as "/" and answered 404, as
// 400.
func (s *Server) rejectUnroutable(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(rc *fasthttp.RequestCtx) {
		var e *fiber.Error
		switch {
		case methodLabel(string(rc.Method())) == methodOther:
			e = fiber.ErrMethodNotAllowed
		case len(rc.URI().PathOriginal()) == 0:
			e = fiber.ErrBadRequest
		default:
			next(rc)
			return
		}
		c := s.app.AcquireCtx(rc)
		defer s.app.ReleaseCtx(c)
		if err := s.handleError(c, e); err != nil {
			rc.SetStatusCode(e.Code)
		}
	}
}

// Module provides the *Server; bootstrap ties Start and Stop to the lifecycle.
var Module = fx.Module("http", fx.Provide(NewServer))
