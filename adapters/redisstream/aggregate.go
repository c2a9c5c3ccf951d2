package redisstream

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	wm "github.com/ThreeDotsLabs/watermill"
	wmredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"

	"github.com/production-line-monitor/plm/adapters/watermill"
	"github.com/production-line-monitor/plm/ports"
)

// HandlerAggregate names the aggregation handler (and its consumer group).
const HandlerAggregate = GroupAggregate

// Notifier tells the aggregation workers that readings were committed. The batch writer
// appends each commit's hourly counts to the database in the commit itself; a notice only
// says that there is something to fold, so notices are coalesced: at most one per interval
// per process, however many commits.
type Notifier struct {
	pub      message.Publisher
	topic    string
	interval time.Duration
	log      *slog.Logger
	pending  atomic.Bool

	cancel context.CancelFunc
	done   chan struct{}
}

// NewNotifier publishes notices on names.Stored() at most once per interval.
func NewNotifier(client redis.UniversalClient, names Names, interval time.Duration, log *slog.Logger) (*Notifier, error) {
	pub, err := wmredis.NewPublisher(wmredis.PublisherConfig{Client: unclosable{client}}, wm.NopLogger{})
	if err != nil {
		return nil, fmt.Errorf("new notice publisher: %w", err)
	}
	return &Notifier{pub: pub, topic: names.Stored(), interval: interval, log: log.With("component", "notifier")}, nil
}

// Poke asks for a notice; it never blocks.
func (n *Notifier) Poke() { n.pending.Store(true) }

// Start sets the notifier going.
func (n *Notifier) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		tick := time.NewTicker(n.interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				n.flush(ctx)
			}
		}
	}()
	return nil
}

// Stop sends the last notice owed.
func (n *Notifier) Stop(ctx context.Context) error {
	if n.cancel == nil {
		return nil
	}
	n.cancel()
	<-n.done
	n.flush(ctx)
	return nil
}

func (n *Notifier) flush(ctx context.Context) {
	if !n.pending.Swap(false) {
		return
	}
	msg := message.NewMessage(wm.NewUUID(), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	msg.SetContext(ctx)
	if err := n.pub.Publish(n.topic, msg); err != nil {
		n.pending.Store(true) // owed still; the rollups stay exact meanwhile
		n.log.Warn("publish stored notice", "error", err)
	}
}

// Aggregator is the aggregation worker: a Watermill handler that, for every notice, folds
// the hourly counts appended by the batch writes into the production-metrics rollup. It
// acknowledges a notice only once the fold is committed. Folding is idempotent and safe
// to run in several workers at once, so notices need no order and no partitioning.
type Aggregator struct {
	client    redis.UniversalClient
	names     Names
	folder    ports.RollupFolder
	id        string
	claimIdle time.Duration
	log       *slog.Logger
	wlog      wm.LoggerAdapter

	mu     sync.Mutex
	router *message.Router
	cancel context.CancelFunc
	done   chan struct{}
}

// NewAggregator consumes names.Stored() as consumer id of the aggregation group; a notice
// left pending by a worker that died is claimed after claimIdle.
func NewAggregator(client redis.UniversalClient, names Names, folder ports.RollupFolder, id string,
	claimIdle time.Duration, log *slog.Logger) *Aggregator {
	log = log.With("component", "aggregator")
	return &Aggregator{
		client: unclosable{client}, names: names, folder: folder, id: id, claimIdle: claimIdle, log: log,
		wlog: wm.NewSlogLoggerWithLevelMapping(log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}),
	}
}

func (a *Aggregator) newRouter() (*message.Router, error) {
	sub, err := wmredis.NewSubscriber(wmredis.SubscriberConfig{
		Client:                        a.client,
		Consumer:                      a.id,
		ConsumerGroup:                 GroupAggregate,
		OldestId:                      "0",
		MaxIdleTime:                   a.claimIdle,
		ClaimInterval:                 a.claimIdle / 2,
		NackResendSleep:               time.Second,
		BlockTime:                     100 * time.Millisecond,
		DisableIndefiniteInitialBlock: true,
		ShouldStopOnReadErrors:        func(err error) bool { return strings.HasPrefix(err.Error(), "NOGROUP") },
		ConsumerTimeout:               10 * a.claimIdle,
	}, a.wlog)
	if err != nil {
		return nil, fmt.Errorf("new aggregation subscriber: %w", err)
	}
	r, err := message.NewRouter(message.RouterConfig{}, a.wlog)
	if err != nil {
		return nil, fmt.Errorf("new router: %w", err)
	}
	r.AddMiddleware(watermill.Retry(3, a.log).Middleware, middleware.Recoverer)
	r.AddConsumerHandler(HandlerAggregate, a.names.Stored(), sub, func(msg *message.Message) error {
		n, err := a.folder.FoldRollups(msg.Context())
		if err != nil {
			return fmt.Errorf("fold rollups: %w", err)
		}
		a.log.Debug("rollups folded", "rows", n)
		return nil
	})
	return r, nil
}

// Start sets the handler going. Should its subscription end (a Redis that restarted empty
// has lost the consumer group), it subscribes again.
func (a *Aggregator) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan struct{})
	go func() {
		defer close(a.done)
		for ctx.Err() == nil {
			r, err := a.newRouter()
			if err == nil {
				a.mu.Lock()
				a.router = r
				a.mu.Unlock()
				err = r.Run(ctx)
			}
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("aggregation worker stopped; restarting", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return nil
}

// Stop lets the fold in progress finish.
func (a *Aggregator) Stop(context.Context) error {
	if a.cancel == nil {
		return nil
	}
	a.cancel()
	a.mu.Lock()
	r := a.router
	a.mu.Unlock()
	var err error
	if r != nil {
		err = r.Close()
	}
	<-a.done
	return err
}
