package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	wmredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/redis/go-redis/v9"

	"github.com/production-line-monitor/plm/adapters/redisstream"
	plmwatermill "github.com/production-line-monitor/plm/adapters/watermill"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
	"github.com/production-line-monitor/plm/tests/redistest"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// newClient connects to the test server, or skips t; the client is closed when t ends.
func newClient(t testing.TB) (*redis.Client, string) {
	t.Helper()
	url := redistest.Require(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c, url
}

// setup returns a client and the names of a deployment of its own with the given number
// of partitions.
func setup(t testing.TB, partitions int) (*redis.Client, redisstream.Names) {
	t.Helper()
	c, url := newClient(t)
	return c, redisstream.Names{Prefix: redistest.Prefix(t, url), Partitions: partitions}
}

// unreachable is a client of a server that does not exist.
func unreachable(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func reading(t testing.TB, id, equipmentID string, value float64) sensor.Reading {
	t.Helper()
	r, err := sensor.NewReading(id, equipmentID, sensor.Temperature, "", value, "C", t0.Add(time.Duration(value)*time.Second), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// equipmentIn returns n equipment ids that lie in n different partitions of names.
func equipmentIn(t testing.TB, names redisstream.Names, n int) []string {
	t.Helper()
	seen := map[int]bool{}
	var ids []string
	for i := 0; len(ids) < n && i < 1000; i++ {
		id := fmt.Sprintf("press-%02d", i)
		if p := redisstream.Partition(id, names.Partitions); !seen[p] {
			seen[p] = true
			ids = append(ids, id)
		}
	}
	if len(ids) < n {
		t.Fatalf("found %d equipment ids in different partitions, want %d", len(ids), n)
	}
	return ids
}

// decoded is a message read back from a stream.
type decoded struct {
	uuid  string
	event ports.ReadingsReceived
}

// readStream decodes every entry of stream as the workers' subscriber does.
func readStream(t testing.TB, c *redis.Client, stream string) []decoded {
	t.Helper()
	entries, err := c.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatalf("xrange %s: %v", stream, err)
	}
	var out []decoded
	for _, e := range entries {
		msg, err := wmredis.DefaultMarshallerUnmarshaller{}.Unmarshal(e.Values)
		if err != nil {
			t.Fatalf("entry %s of %s: %v", e.ID, stream, err)
		}
		ev, err := plmwatermill.Unmarshal(msg)
		if err != nil {
			t.Fatalf("entry %s of %s: %v", e.ID, stream, err)
		}
		out = append(out, decoded{uuid: msg.UUID, event: ev})
	}
	return out
}

func TestIntegrationPublishReadingsOneMessagePerPartition(t *testing.T) {
	c, names := setup(t, 4)
	eq := equipmentIn(t, names, 3)
	// Interleaved: each equipment's readings must come out in this order.
	in := []sensor.Reading{
		reading(t, "a1", eq[0], 1), reading(t, "b1", eq[1], 2), reading(t, "a2", eq[0], 3),
		reading(t, "c1", eq[2], 4), reading(t, "b2", eq[1], 5), reading(t, "a3", eq[0], 6),
	}
	p := redisstream.NewPublisher(c, names)
	if err := p.PublishReadings(context.Background(), ports.ReadingsReceived{Readings: in}); err != nil {
		t.Fatal(err)
	}
	uuids := map[string]bool{}
	for part := range names.Partitions {
		var want []sensor.Reading
		for _, r := range in {
			if redisstream.Partition(r.EquipmentID, names.Partitions) == part {
				want = append(want, r)
			}
		}
		got := readStream(t, c, names.Readings(part))
		if len(want) == 0 {
			if len(got) != 0 {
				t.Errorf("partition %d: %d messages, want none", part, len(got))
			}
			continue
		}
		if len(got) != 1 {
			t.Fatalf("partition %d: %d messages, want 1", part, len(got))
		}
		if !reflect.DeepEqual(got[0].event.Readings, want) {
			t.Errorf("partition %d carries\n%+v\nwant\n%+v", part, got[0].event.Readings, want)
		}
		if got[0].uuid == "" || uuids[got[0].uuid] {
			t.Errorf("partition %d: message uuid %q is empty or not unique", part, got[0].uuid)
		}
		uuids[got[0].uuid] = true
	}
	if len(uuids) != 3 {
		t.Errorf("%d messages in all, want 3", len(uuids))
	}
}

func TestIntegrationPublishReadingsKeepsEachEquipmentInOneStream(t *testing.T) {
	c, names := setup(t, 3)
	p := redisstream.NewPublisher(c, names)
	equipment := []string{"press-01", "press-02", "lathe-7", "oven.3", "weld:9", "cnc-a", "cnc-b", "pump_1"}
	for round := range 3 {
		var rs []sensor.Reading
		for i, eq := range equipment {
			rs = append(rs, reading(t, fmt.Sprintf("r%d-%d", round, i), eq, float64(round)))
		}
		if err := p.PublishReadings(context.Background(), ports.ReadingsReceived{Readings: rs}); err != nil {
			t.Fatal(err)
		}
	}
	streams := map[string]map[string]int{} // equipment → stream → readings
	for part := range names.Partitions {
		stream := names.Readings(part)
		for _, m := range readStream(t, c, stream) {
			for _, r := range m.event.Readings {
				if streams[r.EquipmentID] == nil {
					streams[r.EquipmentID] = map[string]int{}
				}
				streams[r.EquipmentID][stream]++
			}
		}
	}
	for _, eq := range equipment {
		want := map[string]int{names.Readings(redisstream.Partition(eq, names.Partitions)): 3}
		if !reflect.DeepEqual(streams[eq], want) {
			t.Errorf("%s: readings per stream %v, want %v", eq, streams[eq], want)
		}
	}
}

// Requests published at the same time share transactions and messages; every reading is
// queued once, and each caller's readings stay together and in order.
func TestIntegrationPublishReadingsCoalescesConcurrentRequests(t *testing.T) {
	c, names := setup(t, 1)
	p := redisstream.NewPublisher(c, names)
	const callers, each = 200, 3
	var wg sync.WaitGroup
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rs []sensor.Reading
			for i := range each {
				rs = append(rs, reading(t, fmt.Sprintf("c%d-%d", g, i), fmt.Sprintf("press-%03d", g), float64(i)))
			}
			if err := p.PublishReadings(context.Background(), ports.ReadingsReceived{Readings: rs}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	msgs := readStream(t, c, names.Readings(0))
	seen := map[string]bool{}
	for _, m := range msgs {
		for i := 0; i < len(m.event.Readings); i += each {
			caller := strings.SplitN(m.event.Readings[i].ID, "-", 2)[0]
			for j := range each {
				if r := m.event.Readings[i+j]; r.ID != fmt.Sprintf("%s-%d", caller, j) {
					t.Fatalf("message %s: reading %d is %s, want %s-%d: a caller's readings were split or reordered",
						m.uuid, i+j, r.ID, caller, j)
				}
			}
			if seen[caller] {
				t.Fatalf("the readings of %s were queued twice", caller)
			}
			seen[caller] = true
		}
	}
	if len(seen) != callers {
		t.Fatalf("%d callers' readings queued, want %d", len(seen), callers)
	}
	if len(msgs) >= callers {
		t.Errorf("%d messages for %d concurrent requests: nothing was coalesced", len(msgs), callers)
	}
	t.Logf("%d concurrent requests went in %d messages", callers, len(msgs))
}

func TestIntegrationPublishReadingsReadByWatermillSubscriber(t *testing.T) {
	c, names := setup(t, 2)
	in := []sensor.Reading{reading(t, "a", "press-01", 1), reading(t, "b", "press-01", 2)}
	if err := redisstream.NewPublisher(c, names).PublishReadings(context.Background(), ports.ReadingsReceived{Readings: in}); err != nil {
		t.Fatal(err)
	}
	subClient, _ := newClient(t) // the subscriber closes its client
	sub, err := wmredis.NewSubscriber(wmredis.SubscriberConfig{
		Client: subClient, ConsumerGroup: redisstream.GroupProcess,
		BlockTime: 100 * time.Millisecond, DisableIndefiniteInitialBlock: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := sub.Subscribe(ctx, names.Readings(redisstream.Partition("press-01", names.Partitions)))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-msgs:
		msg.Ack()
		got, err := plmwatermill.Unmarshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Readings, in) {
			t.Errorf("subscriber received\n%+v\nwant\n%+v", got.Readings, in)
		}
	case <-ctx.Done():
		t.Fatal("the subscriber received nothing")
	}
}

func TestIntegrationPublishReadingsQueuesNothing(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		event   ports.ReadingsReceived
		wantErr error // nil: no error
	}{
		{"no_readings", context.Background(), ports.ReadingsReceived{}, nil},
		{"context_canceled", canceled, ports.ReadingsReceived{Readings: []sensor.Reading{reading(t, "a", "press-01", 1)}}, context.Canceled},
		{"deadline_passed", expired, ports.ReadingsReceived{Readings: []sensor.Reading{reading(t, "a", "press-01", 1)}}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, names := setup(t, 2)
			err := redisstream.NewPublisher(c, names).PublishReadings(tt.ctx, tt.event)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.wantErr != nil && (!errors.Is(err, tt.wantErr) || !errors.Is(err, ports.ErrUnavailable)):
				t.Fatalf("error %v, want one wrapping %v and ports.ErrUnavailable", err, tt.wantErr)
			}
			for part := range names.Partitions {
				if n := c.XLen(context.Background(), names.Readings(part)).Val(); n != 0 {
					t.Errorf("partition %d holds %d messages, want none", part, n)
				}
			}
		})
	}
}

func TestPublisherRedisUnreachable(t *testing.T) {
	p := redisstream.NewPublisher(unreachable(t), redisstream.Names{Prefix: "plm", Partitions: 2})
	err := p.PublishReadings(context.Background(), ports.ReadingsReceived{Readings: []sensor.Reading{reading(t, "a", "press-01", 1)}})
	if !errors.Is(err, ports.ErrUnavailable) {
		t.Errorf("PublishReadings: error %v, want one wrapping ports.ErrUnavailable", err)
	}
	if err := p.Ping(context.Background()); !errors.Is(err, ports.ErrUnavailable) {
		t.Errorf("Ping: error %v, want one wrapping ports.ErrUnavailable", err)
	}
}

func TestIntegrationPublisherPing(t *testing.T) {
	c, names := setup(t, 1)
	p := redisstream.NewPublisher(c, names)
	if p.Name() != "queue" {
		t.Errorf("Name() = %q, want queue", p.Name())
	}
	if err := p.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNewPublisherRefusesNoPartitions(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewPublisher accepted 0 partitions")
		}
	}()
	redisstream.NewPublisher(unreachable(t), redisstream.Names{Prefix: "plm"})
}

func BenchmarkPublishReadings(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("readings=%d", n), func(b *testing.B) {
			c, names := setup(b, 8)
			rs := make([]sensor.Reading, n)
			for i := range rs {
				rs[i] = reading(b, fmt.Sprintf("r%d", i), fmt.Sprintf("press-%02d", i%20), float64(i))
			}
			p := redisstream.NewPublisher(c, names)
			event := ports.ReadingsReceived{Readings: rs}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := p.PublishReadings(context.Background(), event); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
