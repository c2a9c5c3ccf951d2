package redisstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/production-line-monitor/plm/adapters/redisstream"
	"github.com/production-line-monitor/plm/ports"
	"github.com/production-line-monitor/plm/tests/logbuf"
)

// add appends entries with the given ids to stream.
func add(t testing.TB, c *redis.Client, stream string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, ID: id, Values: []string{"k", "v"}}).Err(); err != nil {
			t.Fatalf("xadd %s %s: %v", stream, id, err)
		}
	}
}

// consume makes group (created at the start of stream if need be) read count new entries,
// then acknowledges those with the given ids.
func consume(t testing.TB, c *redis.Client, stream, group string, count int64, ack ...string) {
	t.Helper()
	ctx := context.Background()
	if err := c.XGroupCreateMkStream(ctx, stream, group, "0").Err(); err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		t.Fatalf("create group %s on %s: %v", group, stream, err)
	}
	if count > 0 {
		res, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c1", Streams: []string{stream, ">"}, Count: count, Block: -1}).Result()
		if err != nil {
			t.Fatalf("xreadgroup %s %s: %v", stream, group, err)
		}
		if got := len(res[0].Messages); int64(got) != count {
			t.Fatalf("group %s read %d entries of %s, want %d", group, got, stream, count)
		}
	}
	if len(ack) > 0 {
		if err := c.XAck(ctx, stream, group, ack...).Err(); err != nil {
			t.Fatalf("xack %s %s: %v", stream, group, err)
		}
	}
}

// ids lists the ids of the entries of stream.
func ids(t testing.TB, c *redis.Client, stream string) []string {
	t.Helper()
	entries, err := c.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatalf("xrange %s: %v", stream, err)
	}
	out := []string{}
	for _, e := range entries {
		out = append(out, e.ID)
	}
	return out
}

func newMonitor(t testing.TB, c redis.UniversalClient, names redisstream.Names, reg prometheus.Registerer, log *slog.Logger, processed func() float64) *redisstream.Monitor {
	t.Helper()
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := redisstream.NewMonitor(c, names, reg, log, processed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fillQueue gives a deployment of 2 partitions this state:
//   - partition 0: 5 entries, GroupProcess read 3 and acknowledged 2 (1 pending, 2 unread);
//     another group read them all;
//   - partition 1: no stream;
//   - stored: 3 entries, no group;
//   - poison: 2 entries.
func fillQueue(t testing.TB, c *redis.Client, names redisstream.Names) {
	t.Helper()
	add(t, c, names.Readings(0), "1-1", "1-2", "1-3", "1-4", "1-5")
	consume(t, c, names.Readings(0), redisstream.GroupProcess, 3, "1-1", "1-2")
	consume(t, c, names.Readings(0), "audit", 5, "1-1", "1-2", "1-3", "1-4", "1-5")
	add(t, c, names.Stored(), "1-1", "1-2", "1-3")
	add(t, c, names.Poison(), "1-1", "1-2")
}

func TestIntegrationMonitorSnapshot(t *testing.T) {
	c, names := setup(t, 2)
	fillQueue(t, c, names)
	got, err := newMonitor(t, c, names, nil, nil, nil).Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := redisstream.Snapshot{
		Streams: []redisstream.StreamStats{
			{Stream: names.Readings(0), Group: redisstream.GroupProcess, Length: 5, Pending: 1, Lag: 2},
			{Stream: names.Readings(1), Group: redisstream.GroupProcess, Length: 0, Pending: 0, Lag: 0},
			{Stream: names.Stored(), Group: redisstream.GroupAggregate, Length: 3, Pending: 0, Lag: 3},
		},
		DeadLetters: 2,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot\n%+v\nwant\n%+v", got, want)
	}
	length, pending, lag := got.Total()
	if length != 8 || pending != 1 || lag != 5 {
		t.Errorf("Total() = %d, %d, %d; want 8, 1, 5", length, pending, lag)
	}
}

func TestIntegrationMonitorTrim(t *testing.T) {
	six := []string{"1-1", "1-2", "1-3", "1-4", "1-5", "1-6"}
	tests := []struct {
		name   string
		stream func(redisstream.Names) string
		group  string
		fill   func(t *testing.T, c *redis.Client, stream string)
		want   []string
	}{
		{"no_group_keeps_all", readings0, redisstream.GroupProcess, func(t *testing.T, c *redis.Client, s string) {}, six},
		{"group_read_nothing", readings0, redisstream.GroupProcess, func(t *testing.T, c *redis.Client, s string) {
			consume(t, c, s, redisstream.GroupProcess, 0)
		}, six},
		{"acked_below_oldest_pending_only", readings0, redisstream.GroupProcess, func(t *testing.T, c *redis.Client, s string) {
			consume(t, c, s, redisstream.GroupProcess, 4, "1-1", "1-2", "1-4")
		}, []string{"1-3", "1-4", "1-5", "1-6"}},
		{"all_read_acked_unread_stay", readings0, redisstream.GroupProcess, func(t *testing.T, c *redis.Client, s string) {
			consume(t, c, s, redisstream.GroupProcess, 3, "1-1", "1-2", "1-3")
		}, []string{"1-4", "1-5", "1-6"}},
		{"read_not_acked", readings0, redisstream.GroupProcess, func(t *testing.T, c *redis.Client, s string) {
			consume(t, c, s, redisstream.GroupProcess, 6)
		}, six},
		{"slowest_group_bounds", readings0, redisstream.GroupProcess, func(t *testing.T, c *redis.Client, s string) {
			consume(t, c, s, redisstream.GroupProcess, 6, six...)
			consume(t, c, s, "audit", 2, "1-1", "1-2")
		}, []string{"1-3", "1-4", "1-5", "1-6"}},
		{"group_with_pending_bounds", readings0, redisstream.GroupProcess, func(t *testing.T, c *redis.Client, s string) {
			consume(t, c, s, redisstream.GroupProcess, 6, six...)
			consume(t, c, s, "audit", 6, "1-1", "1-3", "1-4", "1-5", "1-6")
		}, []string{"1-2", "1-3", "1-4", "1-5", "1-6"}},
		{"everything_consumed", readings0, redisstream.GroupProcess, func(t *testing.T, c *redis.Client, s string) {
			consume(t, c, s, redisstream.GroupProcess, 6, six...)
		}, []string{}},
		{"stored_stream", func(n redisstream.Names) string { return n.Stored() }, redisstream.GroupAggregate, func(t *testing.T, c *redis.Client, s string) {
			consume(t, c, s, redisstream.GroupAggregate, 2, "1-1", "1-2")
		}, []string{"1-3", "1-4", "1-5", "1-6"}},
		{"last_partition", func(n redisstream.Names) string { return n.Readings(n.Partitions - 1) }, redisstream.GroupProcess, func(t *testing.T, c *redis.Client, s string) {
			consume(t, c, s, redisstream.GroupProcess, 1, "1-1")
		}, []string{"1-2", "1-3", "1-4", "1-5", "1-6"}},
		{"poison_stream_untouched", func(n redisstream.Names) string { return n.Poison() }, redisstream.GroupProcess, func(t *testing.T, c *redis.Client, s string) {
			consume(t, c, s, redisstream.GroupProcess, 6, six...)
		}, six},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, names := setup(t, 3)
			stream := tt.stream(names)
			add(t, c, stream, six...)
			tt.fill(t, c, stream)
			m := newMonitor(t, c, names, nil, nil, nil)
			if err := m.Trim(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := ids(t, c, stream); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s keeps %v, want %v", stream, got, tt.want)
			}
		})
	}
}

func readings0(n redisstream.Names) string { return n.Readings(0) }

func TestIntegrationMonitorTrimAtLargestSequence(t *testing.T) {
	c, names := setup(t, 1)
	stream := names.Readings(0)
	add(t, c, stream, "5-18446744073709551614", "5-18446744073709551615", "6-0")
	consume(t, c, stream, redisstream.GroupProcess, 2, "5-18446744073709551614", "5-18446744073709551615")
	if err := newMonitor(t, c, names, nil, nil, nil).Trim(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(t, c, stream), []string{"6-0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("%s keeps %v, want %v", stream, got, want)
	}
}

func TestIntegrationMonitorSnapshotAfterTrim(t *testing.T) {
	c, names := setup(t, 2)
	fillQueue(t, c, names)
	m := newMonitor(t, c, names, nil, nil, nil)
	if err := m.Trim(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := m.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := redisstream.StreamStats{Stream: names.Readings(0), Group: redisstream.GroupProcess, Length: 3, Pending: 1, Lag: 2}
	if got.Streams[0] != want {
		t.Errorf("after trim %+v, want %+v", got.Streams[0], want)
	}
	if got.Streams[2].Length != 3 || got.DeadLetters != 2 {
		t.Errorf("after trim the stored stream holds %d, the poison stream %d; want 3 and 2 (no group: kept)",
			got.Streams[2].Length, got.DeadLetters)
	}
}

func TestIntegrationMonitorMetrics(t *testing.T) {
	c, names := setup(t, 2)
	fillQueue(t, c, names)
	consume(t, c, names.Stored(), redisstream.GroupAggregate, 1)
	reg := prometheus.NewRegistry()
	newMonitor(t, c, names, reg, nil, nil)
	r0, r1, stored := names.Readings(0), names.Readings(1), names.Stored()
	want := fmt.Sprintf(`
# HELP plm_queue_dead_letters Messages in the poison stream: they failed every retry.
# TYPE plm_queue_dead_letters gauge
plm_queue_dead_letters 2
# HELP plm_queue_lag Entries of a queue stream not yet delivered to a consumer group.
# TYPE plm_queue_lag gauge
plm_queue_lag{group="audit",stream=%[1]q} 0
plm_queue_lag{group="process_readings",stream=%[1]q} 2
plm_queue_lag{group="aggregate_rollups",stream=%[3]q} 2
# HELP plm_queue_length Entries kept in a queue stream, consumed or not.
# TYPE plm_queue_length gauge
plm_queue_length{stream=%[1]q} 5
plm_queue_length{stream=%[2]q} 0
plm_queue_length{stream=%[3]q} 3
# HELP plm_queue_pending Entries of a queue stream delivered to a consumer group and not yet acknowledged.
# TYPE plm_queue_pending gauge
plm_queue_pending{group="audit",stream=%[1]q} 0
plm_queue_pending{group="process_readings",stream=%[1]q} 1
plm_queue_pending{group="aggregate_rollups",stream=%[3]q} 1
`, r0, r1, stored)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"plm_queue_length", "plm_queue_pending", "plm_queue_lag", "plm_queue_dead_letters"); err != nil {
		t.Fatal(err)
	}
}

func TestMonitorRedisUnreachable(t *testing.T) {
	var logs logbuf.Buffer
	reg := prometheus.NewRegistry()
	m := newMonitor(t, unreachable(t), redisstream.Names{Prefix: "plm", Partitions: 2}, reg,
		slog.New(slog.NewJSONHandler(&logs, nil)), nil)
	if _, err := m.Snapshot(context.Background()); !errors.Is(err, ports.ErrUnavailable) {
		t.Errorf("Snapshot: error %v, want one wrapping ports.ErrUnavailable", err)
	}
	if err := m.Trim(context.Background()); !errors.Is(err, ports.ErrUnavailable) {
		t.Errorf("Trim: error %v, want one wrapping ports.ErrUnavailable", err)
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatalf("the scrape fails with Redis: %v", err)
	}
	if n != 0 {
		t.Errorf("the scrape reports %d samples without Redis, want none", n)
	}
	if !strings.Contains(logs.String(), "read queue metrics") {
		t.Errorf("the failed scrape is not logged; logs: %s", logs.String())
	}
}

func TestNewMonitorRefuses(t *testing.T) {
	c := unreachable(t)
	names := redisstream.Names{Prefix: "plm", Partitions: 2}
	taken := prometheus.NewRegistry()
	newMonitor(t, c, names, taken, nil, nil)
	tests := []struct {
		name  string
		names redisstream.Names
		reg   prometheus.Registerer
	}{
		{"no_partitions", redisstream.Names{Prefix: "plm"}, prometheus.NewRegistry()},
		{"metrics_registered_already", names, taken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := redisstream.NewMonitor(c, tt.names, tt.reg, nil, nil); err == nil {
				t.Fatal("NewMonitor succeeded")
			}
		})
	}
}

func TestIntegrationMonitorRun(t *testing.T) {
	c, names := setup(t, 2)
	fillQueue(t, c, names)
	var logs logbuf.Buffer
	var calls atomic.Int64
	processed := func() float64 { return float64(10 * calls.Add(1)) } // 10 more every call
	const interval = 100 * time.Millisecond
	m := newMonitor(t, c, names, nil, slog.New(slog.NewJSONHandler(&logs, nil)), processed)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx, interval)
	}()

	// After a round: partition 0 trimmed to 3 entries; 3 + 0 + 3 in all.
	want := map[string]float64{"length": 6, "pending": 1, "lag": 5, "dead_letters": 2, "readings_per_second": 10 / interval.Seconds()}
	var line map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for line == nil && time.Now().Before(deadline) {
		for _, l := range logs.Lines() {
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			if rec["msg"] == "queue status" && rec["length"] == want["length"] {
				line = rec
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}
	if line == nil {
		t.Fatalf("no queue status line with the trimmed length; logs:\n%s", logs.String())
	}
	if line["level"] != "INFO" {
		t.Errorf("level %v, want INFO", line["level"])
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v (line %v)", k, line[k], v, line)
		}
	}
}
