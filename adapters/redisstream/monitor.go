package redisstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/production-line-monitor/plm/ports"
)

// DefaultMonitorInterval is how often Run reports when it is given no positive interval.
const DefaultMonitorInterval = 15 * time.Second

// scrapeTimeout bounds the Redis round trip of one Prometheus scrape.
const scrapeTimeout = 2 * time.Second

// StreamStats is the state of one stream as the group that consumes it sees it.
type StreamStats struct {
	Stream string
	Group  string // GroupProcess for a readings stream, GroupAggregate for the stored stream
	Length int64  // entries kept in the stream, consumed or not
	// Pending counts entries delivered to the group and not yet acknowledged.
	Pending int64
	// Lag counts entries not yet delivered to the group: all of them while the group does
	// not exist; -1 when Redis cannot tell.
	Lag int64
}

// Snapshot is the state of the queue of one deployment.
type Snapshot struct {
	Streams     []StreamStats // the readings partitions in order, then the stored stream
	DeadLetters int64         // entries of the poison stream
}

// Total sums the streams' numbers; a lag Redis cannot tell counts as 0.
func (s Snapshot) Total() (length, pending, lag int64) {
	for _, st := range s.Streams {
		length += st.Length
		pending += st.Pending
		lag += max(st.Lag, 0)
	}
	return length, pending, lag
}

// Monitor watches the streams of a deployment: it logs their state, exposes it to
// Prometheus and trims the entries every consumer group is done with.
type Monitor struct {
	client    redis.UniversalClient
	names     Names
	log       *slog.Logger
	processed func() float64
}

// NewMonitor builds a monitor and registers its metrics on reg. processed, if not nil,
// returns how many readings this process has processed so far; Run logs its rate.
func NewMonitor(client redis.UniversalClient, names Names, reg prometheus.Registerer, log *slog.Logger, processed func() float64) (*Monitor, error) {
	if names.Partitions < 1 {
		return nil, fmt.Errorf("new queue monitor: %d partitions, need at least 1", names.Partitions)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{client: client, names: names, log: log, processed: processed}
	if err := reg.Register(newCollector(m)); err != nil {
		return nil, fmt.Errorf("register queue metrics: %w", err)
	}
	return m, nil
}

// consumed returns the streams the monitor watches, each with the group that consumes it:
// the readings partitions in order, then the stored stream.
func (m *Monitor) consumed() (streams, groups []string) {
	for p := range m.names.Partitions {
		streams = append(streams, m.names.Readings(p))
		groups = append(groups, GroupProcess)
	}
	return append(streams, m.names.Stored()), append(groups, GroupAggregate)
}

// streamState is what Redis tells of one stream.
type streamState struct {
	stream string
	length int64
	groups []redis.XInfoGroup // none while the stream or its groups do not exist
}

// read fetches the state of the watched streams and the length of the poison stream in one
// round trip.
func (m *Monitor) read(ctx context.Context) ([]streamState, int64, error) {
	streams, _ := m.consumed()
	lens := make([]*redis.IntCmd, len(streams))
	infos := make([]*redis.XInfoGroupsCmd, len(streams))
	var dead *redis.IntCmd
	_, err := m.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, s := range streams {
			lens[i] = pipe.XLen(ctx, s)
			infos[i] = pipe.XInfoGroups(ctx, s)
		}
		dead = pipe.XLen(ctx, m.names.Poison())
		return nil
	})
	// A command Redis refused is checked below: XINFO of a stream not created yet fails
	// harmlessly. Any other failure may have left the commands without their error.
	if err != nil && !isReply(err) {
		return nil, 0, fmt.Errorf("read queue state: %w: %w", ports.ErrUnavailable, err)
	}
	states := make([]streamState, len(streams))
	for i, s := range streams {
		n, err := lens[i].Result()
		if err != nil {
			return nil, 0, fmt.Errorf("read length of %s: %w: %w", s, ports.ErrUnavailable, err)
		}
		groups, err := infos[i].Result()
		if err != nil && !noSuchKey(err) {
			return nil, 0, fmt.Errorf("read groups of %s: %w: %w", s, ports.ErrUnavailable, err)
		}
		states[i] = streamState{stream: s, length: n, groups: groups}
	}
	deadLetters, err := dead.Result()
	if err != nil {
		return nil, 0, fmt.Errorf("read length of %s: %w: %w", m.names.Poison(), ports.ErrUnavailable, err)
	}
	return states, deadLetters, nil
}

// Snapshot reads the state of every readings stream and of the stored stream, each as seen
// by the group that consumes it, and counts the dead letters. A Redis failure is an error
// wrapping ports.ErrUnavailable.
func (m *Monitor) Snapshot(ctx context.Context) (Snapshot, error) {
	states, dead, err := m.read(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	_, groups := m.consumed()
	snap := Snapshot{Streams: make([]StreamStats, len(states)), DeadLetters: dead}
	for i, st := range states {
		stats := StreamStats{Stream: st.stream, Group: groups[i], Length: st.length, Lag: st.length}
		for _, g := range st.groups {
			if g.Name == groups[i] {
				stats.Pending, stats.Lag = g.Pending, g.Lag
			}
		}
		snap.Streams[i] = stats
	}
	return snap, nil
}

// Run reports every interval until ctx ends: it trims the streams, then logs one line with
// the queue's totals and, when the monitor was given processed, the processing rate in
// readings per second over the last interval. Redis failures are logged as warnings (the
// line then carries the rate only) and the next interval tries again.
func (m *Monitor) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultMonitorInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var last float64
	if m.processed != nil {
		last = m.processed()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		attrs := m.report(ctx, interval)
		if m.processed != nil {
			now := m.processed()
			attrs = append(attrs, slog.Float64("readings_per_second", (now-last)/interval.Seconds()))
			last = now
		}
		if attrs != nil {
			m.log.LogAttrs(ctx, slog.LevelInfo, "queue status", attrs...)
		}
	}
}

// report trims the streams and reads their totals, each within interval, and returns the
// attributes of Run's log line, or nil when Redis could not be read.
func (m *Monitor) report(ctx context.Context, interval time.Duration) []slog.Attr {
	ctx, cancel := context.WithTimeout(ctx, interval)
	defer cancel()
	trimmed, err := m.trim(ctx)
	if err != nil {
		m.log.Warn("trim queue", "error", err)
	}
	snap, err := m.Snapshot(ctx)
	if err != nil {
		m.log.Warn("read queue status", "error", err)
		return nil
	}
	length, pending, lag := snap.Total()
	return []slog.Attr{
		slog.Int64("length", length), slog.Int64("pending", pending), slog.Int64("lag", lag),
		slog.Int64("dead_letters", snap.DeadLetters), slog.Int64("trimmed", trimmed),
	}
}

// Trim drops from each readings stream and from the stored stream the entries that every
// consumer group of the stream has received and acknowledged: those below the group's
// oldest pending entry and at or below its last delivered one. A stream without groups
// keeps everything. A Redis failure is an error wrapping ports.ErrUnavailable.
func (m *Monitor) Trim(ctx context.Context) error {
	_, err := m.trim(ctx)
	return err
}

// trim is Trim, returning how many entries it dropped.
func (m *Monitor) trim(ctx context.Context) (int64, error) {
	streams, _ := m.consumed()
	var total int64
	for _, s := range streams {
		n, err := m.trimStream(ctx, s)
		total += n
		if err != nil {
			return total, fmt.Errorf("trim %s: %w", s, err)
		}
	}
	return total, nil
}

// trimStream trims one stream. Redis only moves a group forward (entries are delivered in
// order, then acknowledged), so a bound drawn from a state read earlier is still safe when
// XTRIM runs.
func (m *Monitor) trimStream(ctx context.Context, stream string) (int64, error) {
	groups, err := m.client.XInfoGroups(ctx, stream).Result()
	if noSuchKey(err) || (err == nil && len(groups) == 0) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read groups: %w: %w", ports.ErrUnavailable, err)
	}
	pending := make([]*redis.XPendingCmd, len(groups))
	if _, err := m.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, g := range groups {
			pending[i] = pipe.XPending(ctx, stream, g.Name)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("read pending entries: %w: %w", ports.ErrUnavailable, err)
	}
	var bound streamID // entries below bound are done with by every group
	for i, g := range groups {
		last, err := parseStreamID(g.LastDeliveredID)
		if err != nil {
			return 0, err
		}
		groupBound := last.next()
		if p := pending[i].Val(); p.Count > 0 {
			oldest, err := parseStreamID(p.Lower)
			if err != nil {
				return 0, err
			}
			groupBound = minStreamID(groupBound, oldest)
		}
		if i == 0 {
			bound = groupBound
		} else {
			bound = minStreamID(bound, groupBound)
		}
	}
	n, err := m.client.XTrimMinID(ctx, stream, bound.String()).Result()
	if err != nil {
		return 0, fmt.Errorf("xtrim minid %s: %w: %w", bound, ports.ErrUnavailable, err)
	}
	return n, nil
}

// collector exposes the state of the queue to Prometheus, reading Redis at scrape time.
type collector struct {
	m                          *Monitor
	length, pending, lag, dead *prometheus.Desc
}

func newCollector(m *Monitor) *collector {
	return &collector{
		m: m,
		length: prometheus.NewDesc("plm_queue_length",
			"Entries kept in a queue stream, consumed or not.", []string{"stream"}, nil),
		pending: prometheus.NewDesc("plm_queue_pending",
			"Entries of a queue stream delivered to a consumer group and not yet acknowledged.",
			[]string{"stream", "group"}, nil),
		lag: prometheus.NewDesc("plm_queue_lag",
			"Entries of a queue stream not yet delivered to a consumer group.",
			[]string{"stream", "group"}, nil),
		dead: prometheus.NewDesc("plm_queue_dead_letters",
			"Messages in the poison stream: they failed every retry.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.length
	ch <- c.pending
	ch <- c.lag
	ch <- c.dead
}

// Collect implements prometheus.Collector. When Redis cannot be read within scrapeTimeout
// it reports nothing, so that the rest of the scrape still succeeds; a lag Redis cannot
// tell is left out.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	states, dead, err := c.m.read(ctx)
	if err != nil {
		c.m.log.Warn("read queue metrics", "error", err)
		return
	}
	for _, st := range states {
		ch <- prometheus.MustNewConstMetric(c.length, prometheus.GaugeValue, float64(st.length), st.stream)
		for _, g := range st.groups {
			ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(g.Pending), st.stream, g.Name)
			if g.Lag >= 0 {
				ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(g.Lag), st.stream, g.Name)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(dead))
}

// isReply tells whether err is an error reply of Redis, rather than a failure to reach it.
func isReply(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply)
}

// noSuchKey tells whether err is Redis refusing to describe a stream that does not exist.
func noSuchKey(err error) bool {
	return isReply(err) && strings.Contains(err.Error(), "no such key")
}

// streamID is the id of a stream entry, "<ms>-<seq>".
type streamID struct {
	ms, seq uint64
}

func parseStreamID(s string) (streamID, error) {
	msPart, seqPart, ok := strings.Cut(s, "-")
	ms, err1 := strconv.ParseUint(msPart, 10, 64)
	seq, err2 := strconv.ParseUint(seqPart, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return streamID{}, fmt.Errorf("parse stream id %q: malformed", s)
	}
	return streamID{ms: ms, seq: seq}, nil
}

// next is the smallest id above id.
func (id streamID) next() streamID {
	if id.seq == math.MaxUint64 {
		return streamID{ms: id.ms + 1}
	}
	return streamID{ms: id.ms, seq: id.seq + 1}
}

func (id streamID) String() string { return fmt.Sprintf("%d-%d", id.ms, id.seq) }

func minStreamID(a, b streamID) streamID {
	if b.ms < a.ms || (b.ms == a.ms && b.seq < a.seq) {
		return b
	}
	return a
}
