package bootstrap

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	httpadapter "github.com/production-line-monitor/plm/adapters/http"
	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/adapters/postgres"
	"github.com/production-line-monitor/plm/adapters/sqlite"
	"github.com/production-line-monitor/plm/adapters/system"
	"github.com/production-line-monitor/plm/adapters/watermill"
	"github.com/production-line-monitor/plm/application"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/ports"
)

// DatabaseFile is the SQLite file of the embedded set-up, inside the data directory.
const DatabaseFile = "plm.db"

// Service is the service, or the part of it that role names: the webhook, detection and
// the query API. The queue between the webhook and detection is an in-process Watermill
// GoChannel, or Redis Streams when cfg.Queue.RedisURL is set (which the serve and worker
// roles need). Storage is the embedded SQLite file under the data directory, or PostgreSQL
// when cfg.Database.URL is set. cfg must carry at least one API key (see EnsureAPIKeys).
func Service(cfg Config, log *slog.Logger, role Role) fx.Option {
	if cfg.Queue.Embedded() && role != RoleAll {
		return fx.Error(fmt.Errorf("plm %s needs PLM_REDIS_URL (and PLM_DATABASE_URL): "+
			"without Redis, 'plm run' runs the whole service in one process", role))
	}
	var profiler fx.Option = fx.Options()
	if cfg.PprofAddr != "" {
		profiler = startPprof(cfg.PprofAddr)
	}
	return fx.Options(
		profiler,
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: log.With("component", "fx")}
			l.UseLogLevel(slog.LevelDebug)
			// Start-up failures are reported once, by the caller, with their root cause.
			l.UseErrorLevel(slog.LevelDebug)
			return l
		}),
		fx.StopTimeout(cfg.ShutdownTimeout),
		fx.Supply(
			log,
			cfg.Detector,
			cfg.Rules,
			httpadapter.Config{
				Addr: cfg.Addr, APIKeys: cfg.APIKeys, BodyLimit: cfg.MaxBodyBytes,
				ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout, IdleTimeout: cfg.IdleTimeout,
				MaxConns: cfg.MaxConns, OpsOnly: role == RoleWorker,
				SessionTTL: cfg.Events.SessionTTL, StreamKeepAlive: cfg.Events.StreamKeepAlive,
				StreamMaxClients: cfg.Events.StreamMaxClients,
			},
			fx.Annotate(system.Clock{}, fx.As(new(ports.Clock))),
			fx.Annotate(system.IDs{}, fx.As(new(ports.IDGenerator))),
		),
		fx.Provide(fx.Annotate(newRegistry, fx.As(fx.Self()), fx.As(new(prometheus.Registerer)))),
		fx.Provide(func() (rules.Set, error) { return LoadRules(cfg) }),
		storage(cfg),
		queue(cfg, role),
		application.Module,
		httpadapter.Module,
		fx.Invoke(startServer),
		roleEvents(cfg, role),
	)
}

// roleEvents runs what announces and delivers events in a process of role: API processes
// look for status changes, workers deliver notifications.
func roleEvents(cfg Config, role Role) fx.Option {
	var opts []fx.Option
	if role == RoleAll || role == RoleServe {
		opts = append(opts, announceStatuses(cfg.Events.StatusInterval))
	}
	if role == RoleAll || role == RoleWorker {
		opts = append(opts, deliverNotifications(cfg.Events.Delivery))
	}
	return fx.Options(opts...)
}

// queue chooses the queue.
func queue(cfg Config, role Role) fx.Option {
	if !cfg.Queue.Embedded() {
		return redisQueue(cfg, role)
	}
	opts := []fx.Option{
		fx.Provide(func(c ports.Clock) ports.RateLimiter {
			return memory.NewRateLimiter(cfg.RateLimit.Limit, cfg.RateLimit.Per, c.Now)
		}),
		watermill.EmbeddedModule,
		fx.Invoke(startQueue),
		embeddedEventLog(cfg),
	}
	if !cfg.Database.Embedded() {
		// The production metrics' rollup, kept by the aggregation worker with Redis.
		opts = append(opts, fx.Invoke(foldRollupsEverySecond))
	}
	return fx.Options(opts...)
}

// foldRollupsEverySecond is the aggregation worker of the in-process set-up.
func foldRollupsEverySecond(lc fx.Lifecycle, f ports.RollupFolder, log *slog.Logger) {
	background(lc, func(ctx context.Context) {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, err := f.FoldRollups(ctx); err != nil && ctx.Err() == nil {
					log.Warn("fold rollups", "component", "aggregator", "error", err)
				}
			}
		}
	})
}

// background runs fn while the application runs: fn's context ends when the application
// stops, and stopping waits for fn to return.
func background(lc fx.Lifecycle, fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() { defer close(done); fn(ctx) }()
			return nil
		},
		OnStop: func(context.Context) error { cancel(); <-done; return nil },
	})
}

// storage chooses the storage adapter.
func storage(cfg Config) fx.Option {
	if cfg.Database.Embedded() {
		return fx.Options(fx.Supply(sqlite.Config{Path: filepath.Join(cfg.DataDir, DatabaseFile)}), sqlite.Module)
	}
	return fx.Options(fx.Supply(postgresConfig(cfg.Database)), postgres.Module,
		fx.Invoke(func(db *postgres.DB, reg prometheus.Registerer) error {
			return reg.Register(postgres.NewPoolCollector(db))
		}))
}

func postgresConfig(d Database) postgres.Config {
	return postgres.Config{URL: d.URL, MaxConns: int32(d.MaxConns), StatementTimeout: d.StatementTimeout,
		MigrateOnStart: d.MigrateOnStart, CompressAfter: d.CompressAfter, RetainFor: d.Retention,
		ChunkInterval: d.ChunkInterval}
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// startQueue starts consuming before the server accepts, and stops after it has drained.
func startQueue(lc fx.Lifecycle, q *watermill.Embedded) {
	lc.Append(fx.Hook{OnStart: q.Start, OnStop: q.Stop})
}

func startServer(lc fx.Lifecycle, s *httpadapter.Server, sensors rules.Set, log *slog.Logger) {
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := s.Start(ctx); err != nil {
				return err
			}
			log.Info("listening", "addr", s.Addr(), "rules_version", sensors.Version())
			return nil
		},
		OnStop: s.Stop,
	})
}
