package bootstrap

import (
	"context"
	"log/slog"
	"path/filepath"

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
	"github.com/production-line-monitor/plm/ports"
)

// DatabaseFile is the SQLite file of the embedded set-up, inside the data directory.
const DatabaseFile = "plm.db"

// Service is the whole service: the webhook, detection and the query API, with an in-process
// Watermill queue between the webhook and detection. Storage is the embedded SQLite file
// under the data directory, or PostgreSQL when cfg.Database.URL is set.
// cfg must carry at least one API key (see EnsureAPIKeys).
func Service(cfg Config, log *slog.Logger) fx.Option {
	return fx.Options(
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
			},
			fx.Annotate(system.Clock{}, fx.As(new(ports.Clock))),
			fx.Annotate(system.IDs{}, fx.As(new(ports.IDGenerator))),
		),
		fx.Provide(
			fx.Annotate(newRegistry, fx.As(fx.Self()), fx.As(new(prometheus.Registerer))),
			func(c ports.Clock) ports.RateLimiter {
				return memory.NewRateLimiter(cfg.RateLimit.Limit, cfg.RateLimit.Per, c.Now)
			},
		),
		storage(cfg),
		application.Module,
		watermill.EmbeddedModule,
		httpadapter.Module,
		fx.Invoke(startQueue, startServer),
	)
}

// storage chooses the storage adapter.
func storage(cfg Config) fx.Option {
	if cfg.Database.Embedded() {
		return fx.Options(fx.Supply(sqlite.Config{Path: filepath.Join(cfg.DataDir, DatabaseFile)}), sqlite.Module)
	}
	return fx.Options(fx.Supply(postgresConfig(cfg.Database)), postgres.Module)
}

func postgresConfig(d Database) postgres.Config {
	return postgres.Config{URL: d.URL, MaxConns: int32(d.MaxConns), StatementTimeout: d.StatementTimeout,
		MigrateOnStart: d.MigrateOnStart, CompressAfter: d.CompressAfter, RetainFor: d.Retention}
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

func startServer(lc fx.Lifecycle, s *httpadapter.Server, log *slog.Logger) {
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := s.Start(ctx); err != nil {
				return err
			}
			log.Info("listening", "addr", s.Addr())
			return nil
		},
		OnStop: s.Stop,
	})
}
