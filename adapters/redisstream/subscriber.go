package redisstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	wmredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/production-line-monitor/plm/adapters/watermill"
)

// DefaultMaxBatch is how many queued messages of a partition a worker handles together at
// most.
const DefaultMaxBatch = 100

// partitionSubscriber is the Watermill subscriber of one partition's stream, for the worker
// that holds the partition. It differs from watermill-redisstream's own subscriber in two
// ways, both for the partition's order:
//
//   - Taking the partition over, it first claims every message an earlier holder left
//     pending, and hands them on, oldest first, before any new one.
//   - It hands on the messages that wait in the stream together, up to maxBatch of them in
//     one Watermill message (watermill.BatchSize tells how many), so that one commit stores
//     them all. Acknowledging that message acknowledges them all in Redis. When it is not
//     acknowledged, its messages are handed on again one at a time: a message that cannot
//     be stored fails (and goes to the dead letters) alone.
//
// One message is in hand at a time, as with any subscriber the processing relies on for
// order.
type partitionSubscriber struct {
	client     redis.UniversalClient
	consumer   string
	takeover   string        // the last id delivered to the group when this holder took over
	claimIdle  time.Duration // foreign pending messages idle this long are claimed
	maxBatch   int
	retryDelay time.Duration
	log        *slog.Logger

	closeOnce sync.Once
	closing   chan struct{}
	wg        sync.WaitGroup
}

var _ message.Subscriber = (*partitionSubscriber)(nil)

func newPartitionSubscriber(client redis.UniversalClient, consumer, takeover string, claimIdle time.Duration,
	maxBatch int, retryDelay time.Duration, log *slog.Logger) *partitionSubscriber {
	return &partitionSubscriber{
		client: client, consumer: consumer, takeover: takeover, claimIdle: claimIdle,
		maxBatch: maxBatch, retryDelay: retryDelay, log: log, closing: make(chan struct{}),
	}
}

// errNoGroup: the consumer group is gone (a Redis that restarted empty).
var errNoGroup = errors.New("consumer group vanished")

// Subscribe implements message.Subscriber for the stream topic.
func (s *partitionSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	ctx, cancel := context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer cancel()
		go func() {
			select {
			case <-s.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := s.consume(ctx, topic, out); err != nil && ctx.Err() == nil {
			s.log.Warn("partition subscription ended", "stream", topic, "error", err)
		}
	}()
	return out, nil
}

// Close implements message.Subscriber.
func (s *partitionSubscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}

func (s *partitionSubscriber) consume(ctx context.Context, stream string, out chan<- *message.Message) error {
	if err := s.claim(ctx, stream, func(p redis.XPendingExt) bool { return !streamIDAfter(p.ID, s.takeover) }); err != nil {
		return err
	}
	own := true // read this consumer's pending messages (the claimed ones) before new ones
	lastClaim := time.Now()
	count := s.maxBatch // entries per read, fewer when they are large
	for ctx.Err() == nil {
		if time.Since(lastClaim) >= s.claimIdle/2 {
			lastClaim = time.Now()
			// An earlier holder that lingered may have read messages after the take-over.
			err := s.claim(ctx, stream, func(p redis.XPendingExt) bool { return p.Idle >= s.claimIdle })
			if err != nil {
				return err
			}
			own = true
		}
		id, block := ">", 100*time.Millisecond
		if own {
			id, block = "0", -1
		}
		streams, err := s.client.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: GroupProcess, Consumer: s.consumer, Streams: []string{stream, id},
			Count: int64(count), Block: block,
		}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue
		case err != nil && strings.HasPrefix(err.Error(), "NOGROUP"):
			return errNoGroup
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("read partition", "stream", stream, "error", err)
			s.pause(ctx, s.retryDelay)
			continue
		}
		var entries []redis.XMessage
		if len(streams) > 0 {
			entries = streams[0].Messages
		}
		if own && len(entries) == 0 {
			own = false
			continue
		}
		count = readCount(entries, s.maxBatch)
		if err := s.deliver(ctx, stream, entries, out); err != nil {
			return err
		}
	}
	return nil
}

// claim takes over, in one go, the pending messages of other consumers that want says.
func (s *partitionSubscriber) claim(ctx context.Context, stream string, want func(redis.XPendingExt) bool) error {
	start := "-"
	for {
		pending, err := s.client.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: stream, Group: GroupProcess, Start: start, End: "+", Count: 1000,
		}).Result()
		if err != nil {
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				return errNoGroup
			}
			return fmt.Errorf("pending messages of %s: %w", stream, err)
		}
		var ids []string
		for _, p := range pending {
			if p.Consumer != s.consumer && want(p) {
				ids = append(ids, p.ID)
			}
		}
		if len(ids) > 0 {
			err := s.client.XClaimJustID(ctx, &redis.XClaimArgs{
				Stream: stream, Group: GroupProcess, Consumer: s.consumer, Messages: ids,
			}).Err()
			if err != nil {
				return fmt.Errorf("claim %d messages of %s: %w", len(ids), stream, err)
			}
		}
		if len(pending) < 1000 {
			return nil
		}
		start = "(" + pending[len(pending)-1].ID
	}
}

// deliver hands entries on in order, together, and one at a time those of a group that
// was not acknowledged. It returns when every entry is acknowledged, or the subscription
// ends.
func (s *partitionSubscriber) deliver(ctx context.Context, stream string, entries []redis.XMessage, out chan<- *message.Message) error {
	alone := 0 // entries to hand on one at a time, after a group that failed
	for len(entries) > 0 {
		n := len(entries)
		if alone > 0 {
			n = 1
		}
		msg := combine(entries[:n])
		msg.SetContext(ctx)
		select {
		case out <- msg:
		case <-ctx.Done():
			return nil
		}
		select {
		case <-msg.Acked():
			ids := make([]string, n)
			for i, e := range entries[:n] {
				ids[i] = e.ID
			}
			if err := s.ack(ctx, stream, ids); err != nil {
				return err
			}
			entries = entries[n:]
			alone = max(alone-n, 0)
		case <-msg.Nacked():
			if n > 1 {
				alone = n
				continue
			}
			s.pause(ctx, s.retryDelay)
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// ack acknowledges ids, trying again while Redis does not answer: they are stored.
func (s *partitionSubscriber) ack(ctx context.Context, stream string, ids []string) error {
	for {
		err := s.client.XAck(ctx, stream, GroupProcess, ids...).Err()
		if err == nil || ctx.Err() != nil {
			return nil // unacknowledged, they are redelivered, found stored and skipped
		}
		s.log.Warn("acknowledge messages", "stream", stream, "messages", len(ids), "error", err)
		s.pause(ctx, s.retryDelay)
	}
}

func (s *partitionSubscriber) pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// combine makes one Watermill message of stream entries: the entry's own message when there
// is one entry, else a batch of their payloads (see watermill.NewBatch). An entry that is
// not a Watermill message becomes a message that no handler can decode.
func combine(entries []redis.XMessage) *message.Message {
	msgs := make([]*message.Message, len(entries))
	for i, e := range entries {
		m, err := wmredis.DefaultMarshallerUnmarshaller{}.Unmarshal(e.Values)
		if err != nil {
			// Kept whole for the dead letters, where someone will want to read it.
			raw, _ := json.Marshal(e.Values)
			m = message.NewMessage("entry-"+e.ID, raw)
			m.Metadata.Set(watermill.MetadataUndecodable, err.Error())
		}
		m.Metadata.Set(metadataEntry, e.ID)
		msgs[i] = m
	}
	if len(msgs) == 1 {
		return msgs[0]
	}
	b := watermill.NewBatch(msgs)
	b.Metadata.Set(metadataEntry, entries[0].ID+".."+entries[len(entries)-1].ID+" ("+strconv.Itoa(len(entries))+")")
	return b
}

// MaxBatchBytes bounds, roughly, the bytes of one read of a partition: reads of large
// entries take fewer of them, which bounds a worker's memory under a backlog of large
// batches (a batch of 1000 readings is about 45 kB).
const MaxBatchBytes = 256 << 10

// readCount is how many entries to read next, after entries: as many as fit MaxBatchBytes
// at their mean size, from 1 to maxBatch.
func readCount(entries []redis.XMessage, maxBatch int) int {
	size := 0
	for _, e := range entries {
		for k, v := range e.Values {
			size += len(k)
			if s, ok := v.(string); ok {
				size += len(s)
			}
		}
	}
	if len(entries) == 0 || size == 0 {
		return maxBatch
	}
	return max(1, min(maxBatch, MaxBatchBytes*len(entries)/size))
}

// metadataEntry names the stream entry (or entries) a message came from.
const metadataEntry = "stream_entry"
