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
	"github.com/production-line-monitor/plm/adapters/sqlite"
	"github.com/production-line-monitor/plm/adapters/system"
	"github.com/production-line-monitor/plm/adapters/watermill"
	"github.com/production-line-monitor/plm/application"
	"github.com/production-line-monitor/plm/ports"
)

// DatabaseFile is the SQLite file of the embedded set-up, inside the data directory.
const DatabaseFile = "plm.db"

// Embedded is the whole service on its embedded default: SQLite storage under the data
// directory and an in-process Watermill queue between the webhook and detection.
// cfg must carry at least one API key (see EnsureAPIKeys).
func Embedded(cfg Config, log *slog.Logger) fx.Option {
	return fx.Options(
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: log.With("component", "fx")}
			l.UseLogLevel(slog.LevelDebug)
			return l
		}),
		fx.StopTimeout(cfg.ShutdownTimeout),
		fx.Supply(
			log,
			cfg.Detector,
			cfg.Rules,
			sqlite.Config{Path: filepath.Join(cfg.DataDir, DatabaseFile)},
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
		sqlite.Module,
		application.Module,
		watermill.EmbeddedModule,
		httpadapter.Module,
		fx.Invoke(startQueue, startServer),
	)
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
