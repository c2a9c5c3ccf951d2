package redisstream

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/redis/go-redis/v9"

	plmwatermill "github.com/production-line-monitor/plm/adapters/watermill"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// Publisher queues accepted readings on the partitioned readings streams, as Watermill
// messages that the workers' redisstream subscribers read.
//
// The client should be built with ContextTimeoutEnabled: go-redis otherwise bounds a command
// by its own read and write timeouts rather than by the caller's context.
//
// Concurrent requests are coalesced: while one transaction is under way, the requests that
// arrive queue up in arrival order, and the next transaction carries all of them (up to
// MaxPublishReadings readings), one message per partition. Fewer, larger messages mean fewer
// round trips for the webhook and for the workers alike.
type Publisher struct {
	client     redis.UniversalClient
	names      Names
	marshaller wmredis.DefaultMarshallerUnmarshaller

	mu       sync.Mutex
	queue    []*publishing
	draining bool
}

// publishing is one caller's readings waiting for a transaction.
type publishing struct {
	ctx      context.Context
	readings []sensor.Reading
	done     chan error
}

// MaxPublishReadings bounds the readings one coalesced transaction carries.
const MaxPublishReadings = 5000

// publishTimeout bounds one transaction: coalesced, it answers for callers other than the
// one whose context it runs under.
const publishTimeout = 5 * time.Second

var (
	_ ports.ReadingsPublisher = (*Publisher)(nil)
	_ ports.Pinger            = (*Publisher)(nil)
)

// NewPublisher builds a publisher on the streams of names. It panics when names has fewer
// than one partition: that is a configuration error to be caught at startup.
func NewPublisher(client redis.UniversalClient, names Names) *Publisher {
	if names.Partitions < 1 {
		panic(fmt.Sprintf("redisstream: %d partitions, need at least 1", names.Partitions))
	}
	return &Publisher{client: client, names: names}
}

// PublishReadings implements ports.ReadingsPublisher. It groups the readings by partition,
// keeping their order, and appends one message per partition in a single MULTI/EXEC
// transaction (on one Redis server: Redis Cluster would split it by hash slot): nil means
// every message is in its stream. Any Redis failure, the context
// ending included, is an error wrapping ports.ErrUnavailable; when it happens while EXEC is
// under way the readings may nonetheless be queued, and the consumers, which receive each
// message at least once anyway, tell a repeat by the readings' ids. An event without
// readings queues nothing.
//
// Once queued behind a transaction under way, a request is carried by the next one even if
// its caller goes away meanwhile, and PublishReadings waits for that outcome.
func (p *Publisher) PublishReadings(ctx context.Context, e ports.ReadingsReceived) error {
	if len(e.Readings) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("queue readings: %w: %w", ports.ErrUnavailable, err)
	}
	req := &publishing{ctx: ctx, readings: e.Readings, done: make(chan error, 1)}
	p.mu.Lock()
	p.queue = append(p.queue, req)
	if !p.draining {
		p.draining = true
		go p.drain()
	}
	p.mu.Unlock()
	return <-req.done
}

// drain publishes the queued requests, a group per transaction, until the queue is empty.
func (p *Publisher) drain() {
	for {
		p.mu.Lock()
		n, readings := 0, 0
		for n < len(p.queue) && (n == 0 || readings+len(p.queue[n].readings) <= MaxPublishReadings) {
			readings += len(p.queue[n].readings)
			n++
		}
		group := p.queue[:n:n]
		p.queue = p.queue[n:]
		if n == 0 {
			p.draining = false
			p.queue = nil
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()

		all := make([]sensor.Reading, 0, readings)
		for _, r := range group {
			all = append(all, r.readings...)
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(group[0].ctx), publishTimeout)
		err := p.publish(ctx, all)
		cancel()
		for _, r := range group {
			r.done <- err
		}
	}
}

// publish appends readings, one message per partition, in one transaction.
func (p *Publisher) publish(ctx context.Context, readings []sensor.Reading) error {
	streams, values, err := p.messages(readings)
	if err != nil {
		return err
	}
	_, err = p.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, stream := range streams {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values[i]})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue readings: %w: %w", ports.ErrUnavailable, err)
	}
	return nil
}

// messages splits readings into one encoded message per partition, partitions in the order
// their first reading comes, and returns each message's stream and stream entry.
func (p *Publisher) messages(readings []sensor.Reading) (streams []string, values []map[string]any, err error) {
	index := make(map[int]int, p.names.Partitions) // partition → position in parts
	var parts [][]sensor.Reading
	for _, r := range readings {
		part := Partition(r.EquipmentID, p.names.Partitions)
		i, ok := index[part]
		if !ok {
			i = len(parts)
			index[part] = i
			parts = append(parts, nil)
			streams = append(streams, p.names.Readings(part))
		}
		parts[i] = append(parts[i], r)
	}
	values = make([]map[string]any, len(parts))
	for i, rs := range parts {
		msg, err := plmwatermill.Marshal(watermill.NewUUID(), ports.ReadingsReceived{Readings: rs})
		if err != nil {
			return nil, nil, err
		}
		if values[i], err = p.marshaller.Marshal(streams[i], msg); err != nil {
			return nil, nil, fmt.Errorf("encode message %s: %w", msg.UUID, err)
		}
	}
	return streams, values, nil
}

// Name implements ports.Pinger.
func (p *Publisher) Name() string { return "queue" }

// Ping implements ports.Pinger: a round trip to Redis.
func (p *Publisher) Ping(ctx context.Context) error {
	if err := p.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w: %w", ports.ErrUnavailable, err)
	}
	return nil
}
