package bootstrap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/fx"

	redisadapter "github.com/production-line-monitor/plm/adapters/redis"
	"github.com/production-line-monitor/plm/adapters/redisstream"
	"github.com/production-line-monitor/plm/adapters/watermill"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	sensorrules "github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/ports"
)

// Role says which part of the service a process runs.
type Role string

// The roles: the default runs everything; serve only the HTTP API (and the webhook);
// worker only the queue's consumers (with the operational endpoints).
const (
	RoleAll    Role = "run"
	RoleServe  Role = "serve"
	RoleWorker Role = "worker"
)

// redisQueue is the production queue: Redis Streams through Watermill between the webhook
// and the workers, and the shared state (rate limits, live equipment state, worker leases)
// in Redis through rueidis.
func redisQueue(cfg Config, role Role) fx.Option {
	q := cfg.Queue
	names := redisstream.Names{Prefix: q.Prefix, Partitions: q.Partitions}
	opts := []fx.Option{
		fx.Supply(names),
		redisEventLog(cfg),
		fx.Provide(
			func(lc fx.Lifecycle) (*redisadapter.Client, error) {
				c, err := redisadapter.Open(redisadapter.Config{URL: q.RedisURL, Prefix: q.Prefix})
				if err != nil {
					return nil, err
				}
				lc.Append(fx.Hook{
					OnStart: func(ctx context.Context) error { return checkPartitions(ctx, c, q.Partitions) },
					OnStop:  func(context.Context) error { c.Close(); return nil },
				})
				return c, nil
			},
			func(lc fx.Lifecycle) (goredis.UniversalClient, error) {
				opt, err := goredis.ParseURL(q.RedisURL)
				if err != nil {
					return nil, fmt.Errorf("PLM_REDIS_URL: %w", err)
				}
				// Deadlines of callers hold even for a command under way, and a Redis that is
				// down is reported in a round or two rather than after go-redis's many retries:
				// the webhook answers 503 promptly, and callers retry.
				opt.ContextTimeoutEnabled = true
				opt.MaxRetries, opt.DialerRetries = 1, 1
				// Each partition a worker holds keeps a connection in a blocking read; the
				// acknowledgements, claims, the publisher and the monitor need their own.
				opt.PoolSize = max(opt.PoolSize, q.Partitions+2*runtime.GOMAXPROCS(0)+8)
				c := goredis.NewClient(opt)
				lc.Append(fx.Hook{OnStop: func(context.Context) error { return c.Close() }})
				return c, nil
			},
			fx.Annotate(func(c *redisadapter.Client) ports.Pinger { return c }, fx.ResultTags(`group:"pingers"`)),
			func(c *redisadapter.Client) ports.LiveStore { return redisadapter.NewLiveStore(c) },
			func(c *redisadapter.Client) ports.RateLimiter {
				return redisadapter.NewRateLimiter(c, cfg.RateLimit.Limit, cfg.RateLimit.Per)
			},
			redisstream.NewPublisher,
			func(p *redisstream.Publisher) ports.ReadingsPublisher { return p },
			fx.Annotate(func(p *redisstream.Publisher) ports.Pinger { return p }, fx.ResultTags(`group:"pingers"`)),
		),
	}
	if role == RoleServe {
		// The queue's gauges are read from Redis at scrape time: any process may expose them.
		return fx.Options(append(opts, fx.Invoke(func(c goredis.UniversalClient, reg *prometheus.Registry, log *slog.Logger) error {
			_, err := redisstream.NewMonitor(c, names, reg, log.With("component", "queue"), nil)
			return err
		}))...)
	}
	id := q.WorkerID
	if id == "" {
		id = defaultWorkerID()
	}
	opts = append(opts,
		fx.Provide(
			watermill.NewProcessor,
			func(r ports.ReadingRepository, e ports.EquipmentRepository, a ports.AlarmRepository, m ports.MaintenanceRepository,
				c ports.Clock, ids ports.IDGenerator, d anomaly.Config, rules equipment.Rules, sensors sensorrules.Set,
				events ports.EventLog) redisstream.HandlerFactory {
				return func(w ports.BatchWriter) *command.ProcessReadingsHandler {
					return command.NewProcessReadingsHandler(r, e, w, c, ids, d, rules).WithAlarms(a, sensors).
						WithMaintenance(m, command.DefaultMaintenanceTTL).WithEvents(events)
				}
			},
			func(c goredis.UniversalClient, log *slog.Logger) (*redisstream.Notifier, error) {
				return redisstream.NewNotifier(c, names, time.Second, log)
			},
			func(c goredis.UniversalClient, f ports.RollupFolder, log *slog.Logger) *redisstream.Aggregator {
				return redisstream.NewAggregator(c, names, f, id, q.ClaimIdle, log)
			},
			func(c goredis.UniversalClient, p *watermill.Processor, reg *prometheus.Registry, log *slog.Logger) (*redisstream.Monitor, error) {
				return redisstream.NewMonitor(c, names, reg, log.With("component", "queue"), p.Processed)
			},
			func(d workerParams) (*redisstream.Worker, error) {
				return redisstream.NewWorker(redisstream.WorkerConfig{
					Names: names, ID: id, LeaseTTL: q.ClaimIdle, MaxRetries: q.MaxRetries,
					Concurrency: q.Concurrency, StopTimeout: cfg.ShutdownTimeout,
				}, redisstream.WorkerDeps{
					Client: d.Client, Leases: redisadapter.NewLeases(d.Redis), Fencer: d.Fencer, Writer: d.Writer,
					Live: d.Live, NewHandler: d.NewHandler, Processor: d.Processor, Notify: d.Notifier.Poke,
					Registerer: d.Registry, Log: d.Log,
				})
			},
		),
		fx.Invoke(func(lc fx.Lifecycle, w *redisstream.Worker, n *redisstream.Notifier, a *redisstream.Aggregator,
			m *redisstream.Monitor, log *slog.Logger) {
			log.Info("starting worker", "worker_id", id, "partitions", q.Partitions)
			// Started in this order, stopped in the reverse: the last notice goes out after
			// the last commit.
			lc.Append(fx.Hook{OnStart: n.Start, OnStop: n.Stop})
			lc.Append(fx.Hook{OnStart: w.Start, OnStop: w.Stop})
			lc.Append(fx.Hook{OnStart: a.Start, OnStop: a.Stop})
			background(lc, func(ctx context.Context) { m.Run(ctx, q.MonitorInterval) })
		}),
	)
	return fx.Options(opts...)
}

type workerParams struct {
	fx.In
	Client     goredis.UniversalClient
	Redis      *redisadapter.Client
	Fencer     ports.PartitionFencer
	Writer     ports.BatchWriter
	Live       ports.LiveStore
	NewHandler redisstream.HandlerFactory
	Processor  *watermill.Processor
	Notifier   *redisstream.Notifier
	Registry   *prometheus.Registry
	Log        *slog.Logger
}

// checkPartitions records the deployment's number of partitions in Redis the first time,
// and refuses to start a process configured with another: readings of one equipment would
// go to two partitions, and be judged out of order.
func checkPartitions(ctx context.Context, c *redisadapter.Client, partitions int) error {
	got, err := c.Settle(ctx, "partitions", fmt.Sprint(partitions))
	if err != nil {
		return fmt.Errorf("check PLM_PARTITIONS: %w", err)
	}
	if got != fmt.Sprint(partitions) {
		return fmt.Errorf("PLM_PARTITIONS=%d, but this deployment's queue has %s partitions: "+
			"set PLM_PARTITIONS=%s (changing it needs an empty queue and a new PLM_REDIS_PREFIX)", partitions, got, got)
	}
	return nil
}

// defaultWorkerID is the host name, the process id and a random suffix: unique even for
// two processes that a container runtime gives the same host name and pid.
func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
