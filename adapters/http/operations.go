package http

import (
	"context"
	_ "embed"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/production-line-monitor/plm/ports"
)

//go:embed openapi.yaml
var openAPIDocument []byte

// pingTimeout bounds each dependency's answer to a readiness check.
const pingTimeout = 2 * time.Second

// operations serve the endpoints that orchestrators and operators use.
type operations struct {
	pingers  []ports.Pinger
	draining *atomic.Bool
	log      *slog.Logger
}

type healthBody struct {
	Status string `json:"status"`
}

type readyBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// healthz is GET /healthz: the process answers.
func (o *operations) healthz(c *fiber.Ctx) error {
	return c.JSON(healthBody{Status: "ok"}, mimeJSON)
}

// readyz is GET /readyz: every dependency answers, within pingTimeout each, and the server
// is not shutting down.
func (o *operations) readyz(c *fiber.Ctx) error {
	if o.draining.Load() {
		return errDraining
	}
	ctx := c.UserContext()
	results := make([]error, len(o.pingers))
	var wg sync.WaitGroup
	for i, p := range o.pingers {
		wg.Go(func() { results[i] = ping(ctx, p) })
	}
	wg.Wait()

	checks := make(map[string]string, len(o.pingers))
	var failing []detail
	for i, p := range o.pingers {
		if err := results[i]; err != nil {
			o.log.WarnContext(ctx, "dependency not ready", "dependency", p.Name(), "request_id", requestID(c), "error", err)
			msg := "is unavailable"
			if errors.Is(err, context.DeadlineExceeded) {
				msg = "did not answer within " + pingTimeout.String()
			}
			failing = append(failing, detail{Field: p.Name(), Message: msg})
			continue
		}
		checks[p.Name()] = "ok"
	}
	if len(failing) > 0 {
		return &apiError{status: fiber.StatusServiceUnavailable, code: codeUnavailable,
			message: "a dependency is not ready", details: failing, retryAfter: unavailableRetryAfter}
	}
	if o.draining.Load() {
		return errDraining
	}
	return c.JSON(readyBody{Status: "ready", Checks: checks}, mimeJSON)
}

var errDraining = &apiError{status: fiber.StatusServiceUnavailable, code: codeUnavailable,
	message: "the server is shutting down", retryAfter: unavailableRetryAfter}

// ping asks p within pingTimeout, even if p ignores its context.
func ping(ctx context.Context, p ports.Pinger) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Ping(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// openapi is GET /openapi.yaml.
func (o *operations) openapi(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "application/yaml")
	return c.Send(openAPIDocument)
}
