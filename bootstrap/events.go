package bootstrap

import (
	"context"
	"log/slog"
	"time"

	"go.uber.org/fx"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/adapters/outbound"
	redisadapter "github.com/production-line-monitor/plm/adapters/redis"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/application/notify"
	"github.com/production-line-monitor/plm/ports"
)

// embeddedEventLog is the live stream of the in-process set-up: a ring in memory.
func embeddedEventLog(cfg Config) fx.Option {
	return fx.Provide(func(c ports.Clock) ports.EventLog { return memory.NewEventLog(cfg.Events.LogSize, c.Now) })
}

// redisEventLog is the live stream of the production set-up: one Redis stream that every
// process appends to and every API process reads.
func redisEventLog(cfg Config) fx.Option {
	return fx.Provide(func(c *redisadapter.Client) ports.EventLog { return redisadapter.NewEventLog(c, cfg.Events.LogSize) })
}

// announceStatuses runs the status sweeper of an API process: every interval it announces the
// equipment status changes that no process has announced yet (an equipment falling silent
// among them, which no request reports).
func announceStatuses(interval time.Duration) fx.Option {
	return fx.Invoke(func(lc fx.Lifecycle, h *command.AnnounceStatusHandler, log *slog.Logger) {
		log = log.With("component", "status")
		background(lc, func(ctx context.Context) {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			failing := false
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				res, err := h.Handle(ctx)
				switch {
				case err != nil && ctx.Err() == nil:
					if !failing { // once per outage, not once a second
						log.Warn("announce status changes", "error", err)
					}
					failing = true
					continue
				case err == nil && failing:
					log.Info("announcing status changes again")
				}
				failing = false
				for _, e := range res.Announced {
					log.Info("equipment status changed", "equipment_id", e.EquipmentID,
						"previous", e.Status.Previous, "status", e.Status.Status, "reason", e.Status.Reason)
				}
				if res.Unpublished != nil {
					log.Warn("status changes not on the live stream", "error", res.Unpublished)
				}
			}
		})
	})
}

// deliverNotifications runs a notification dispatcher: it claims due deliveries from the
// outbox (shared with the dispatchers of the other processes) and POSTs them, signed. A
// redelivery asked of this process wakes it at once.
func deliverNotifications(d Delivery) fx.Option {
	return fx.Invoke(func(lc fx.Lifecycle, q ports.DeliveryQueue, c ports.Clock, reg prometheus.Registerer, log *slog.Logger,
		redeliver *command.RedeliverHandler) error {
		metrics, err := outbound.NewMetrics(reg)
		if err != nil {
			return err
		}
		disp, err := notify.New(notify.Config{
			SendTimeout: d.Timeout, MaxAttempts: d.MaxAttempts,
			Backoff: notify.Backoff{Base: d.Backoff}, Breaker: notify.Breaker{Failures: d.BreakerFailures, Cooldown: d.BreakerCooldown},
		}, q, outbound.NewSender(outbound.Config{Timeout: d.Timeout}, c), c, log.With("component", "notify"))
		if err != nil {
			return err
		}
		disp = disp.WithObserver(metrics.Observe)
		redeliver.WithWake(disp.Wake)
		background(lc, func(ctx context.Context) { _ = disp.Run(ctx) })
		return nil
	})
}
