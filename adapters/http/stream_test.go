package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/eventwire"
	plmhttp "github.com/production-line-monitor/plm/adapters/http"
	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// streamWait bounds every wait of these tests for something a stream sends.
const streamWait = 10 * time.Second

// sseBlock is one block of a stream, up to its blank line: an event, the retry field, or a
// comment.
type sseBlock struct {
	id, typ, data, retry, comment string
}

// sseStream reads a stream as it comes, block by block.
type sseStream struct {
	t      *testing.T
	header http.Header
	blocks chan sseBlock
	ended  chan error // receives how the body ended
	close  func()
}

// openStream asks base+target with header (the read key when header is nil), requires a
// 200, and reads the stream in the background until the test ends.
func openStream(t *testing.T, base, target string, header http.Header) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+target, nil)
	require.NoError(t, err)
	if header == nil {
		header = http.Header{"X-Api-Key": {readKey}}
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %d %s", target, resp.StatusCode, body)
	}
	s := &sseStream{t: t, header: resp.Header, blocks: make(chan sseBlock, 1<<16), ended: make(chan error, 1)}
	s.close = func() { cancel(); resp.Body.Close() }
	t.Cleanup(s.close)
	go s.read(resp.Body)
	return s
}

func (s *sseStream) read(body io.Reader) {
	sc := bufio.NewScanner(body)
	var b sseBlock
	var filled bool
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if filled {
				s.blocks <- b
			}
			b, filled = sseBlock{}, false
			continue
		}
		filled = true
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "":
			b.comment = value
		case "id":
			b.id = value
		case "event":
			b.typ = value
		case "data":
			if b.data != "" {
				b.data += "\n"
			}
			b.data += value
		case "retry":
			b.retry = value
		}
	}
	s.ended <- sc.Err()
}

// next returns the next block, failing the test if none comes in time.
func (s *sseStream) next() sseBlock {
	s.t.Helper()
	select {
	case b := <-s.blocks:
		return b
	case <-time.After(streamWait):
		s.t.Fatalf("no block within %s", streamWait)
		return sseBlock{}
	}
}

// nextEvent returns the next event, skipping the retry field and comments.
func (s *sseStream) nextEvent() sseBlock {
	s.t.Helper()
	for {
		if b := s.next(); b.typ != "" || b.data != "" {
			return b
		}
	}
}

// events returns the next n events.
func (s *sseStream) events(n int) []sseBlock {
	s.t.Helper()
	out := make([]sseBlock, n)
	for i := range out {
		out[i] = s.nextEvent()
	}
	return out
}

// waitEnd waits for the body to end, failing the test if it does not in time.
func (s *sseStream) waitEnd(limit time.Duration) {
	s.t.Helper()
	select {
	case <-s.ended:
	case <-time.After(limit):
		s.t.Fatalf("the stream has not ended within %s", limit)
	}
}

// statusEvent is a status change of eq, with id id.
func statusEvent(id, eq string) event.Event {
	return event.ForStatus(id, event.StatusChange{EquipmentID: eq, Previous: equipment.StatusOnline,
		Status: equipment.StatusOffline, Reason: "no reading for 30s"}, t0)
}

func alarmEvent(id, eq string) event.Event {
	a := alarm.Alarm{ID: "alarm-" + id, EquipmentID: eq, SensorType: "temperature", State: alarm.StateActive,
		Severity: anomaly.SeverityMedium, OpenedAt: t0, FirstAt: t0, LastAt: t0, Count: 1, PeakZ: 4.2}
	e, _ := event.ForAlarm(id, alarm.Opened, a, t0)
	return e
}

func anomalyEvent(id, eq string) event.Event {
	return event.ForAnomaly(id, anomaly.Anomaly{ID: "anomaly-" + id, ReadingID: "r-" + id, EquipmentID: eq,
		SensorType: "temperature", Value: 91.2, ZScore: 4.2, Mean: 70, StdDev: 5, WindowSize: 100,
		Severity: anomaly.SeverityMedium, Timestamp: t0, DetectedAt: t0})
}

// appendEvents appends to the harness's log.
func (h *harness) appendEvents(events ...event.Event) {
	h.t.Helper()
	require.NoError(h.t, h.events.Append(context.Background(), events))
}

// eventIDs are the ids of the events' wire forms (not the stream's cursors).
func eventIDs(t *testing.T, blocks []sseBlock) []string {
	t.Helper()
	out := make([]string, len(blocks))
	for i, b := range blocks {
		var w eventwire.Envelope
		require.NoError(t, json.Unmarshal([]byte(b.data), &w), "data: %s", b.data)
		out[i] = w.ID
	}
	return out
}

func ids(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func TestStream_sends_each_event_with_its_id_type_and_wire_form(t *testing.T) {
	h := newHarness(t)
	s := openStream(t, h.start(), "/stream", nil)
	assert.Equal(t, "text/event-stream", s.header.Get("Content-Type"))
	assert.Equal(t, "no-cache", s.header.Get("Cache-Control"))
	assert.Equal(t, "no", s.header.Get("X-Accel-Buffering"))
	assert.Equal(t, sseBlock{retry: "3000"}, s.next(), "the retry field comes first")

	// An anomaly is not sent unless asked for: the next event is the status change.
	sent := []event.Event{alarmEvent("ev-1", "press-01"), anomalyEvent("ev-2", "press-01"), statusEvent("ev-3", "press-02")}
	h.appendEvents(sent...)
	entries, err := h.events.Read(t.Context(), event.Cursor{}, 10, 0)
	require.NoError(t, err)
	got := s.events(2)
	for i, want := range []int{0, 2} {
		wire, err := eventwire.Encode(sent[want])
		require.NoError(t, err)
		assert.Equal(t, entries[want].Cursor.String(), got[i].id, "the id is the cursor")
		assert.Equal(t, string(sent[want].Type), got[i].typ)
		assert.JSONEq(t, string(wire), got[i].data)
	}
}

func TestStream_filters_by_equipment_and_type(t *testing.T) {
	h := newHarness(t)
	base := h.start()
	byEquipment := openStream(t, base, "/stream?equipmentId=press-01,press-03", nil)
	byType := openStream(t, base, "/stream?types=anomaly,alarm.opened", nil)
	both := openStream(t, base, "/stream?types=equipment.status_changed&equipmentId=press-02", nil)

	h.appendEvents(
		statusEvent("s1", "press-01"), alarmEvent("a2", "press-02"), anomalyEvent("n3", "press-03"),
		statusEvent("s4", "press-02"), anomalyEvent("n5", "press-01"), alarmEvent("a6", "press-03"),
		statusEvent("s7", "press-03"))
	assert.Equal(t, []string{"s1", "a6", "s7"}, eventIDs(t, byEquipment.events(3)))
	assert.Equal(t, []string{"a2", "n3", "n5", "a6"}, eventIDs(t, byType.events(4)))
	assert.Equal(t, []string{"s4"}, eventIDs(t, both.events(1)))
	// Nothing else came: the next event of each is one sent after, for all three.
	h.appendEvents(alarmEvent("a8", "press-01"), alarmEvent("a9", "press-03"), statusEvent("s10", "press-02"))
	assert.Equal(t, []string{"a8", "a9"}, eventIDs(t, byEquipment.events(2)))
	assert.Equal(t, []string{"a8", "a9"}, eventIDs(t, byType.events(2)))
	assert.Equal(t, []string{"s10"}, eventIDs(t, both.events(1)))
}

func TestStream_refuses_bad_requests_before_streaming(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name, target, header string
		status               int
		code, field          string
	}{
		{"unknown_type", "/stream?types=alarm.opened,alarm.exploded", "", 400, "invalid_query", "types"},
		{"empty_types", "/stream?types=", "", 400, "invalid_query", "types"},
		{"bad_equipment_id", "/stream?equipmentId=press-01,-bad", "", 400, "invalid_query", "equipmentId"},
		{"malformed_last_event_id", "/stream", "12-x", 400, "invalid_query", "Last-Event-ID"},
		{"malformed_query_id", "/stream?lastEventId=12", "", 400, "invalid_query", "lastEventId"},
		{"empty_query_id", "/stream?lastEventId=", "", 400, "invalid_query", "lastEventId"},
		{"unknown_parameter", "/stream?since=1", "", 400, "invalid_query", "since"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(http.MethodGet, tt.target, "")
			req.Header.Set("X-API-Key", readKey)
			if tt.header != "" {
				req.Header.Set("Last-Event-ID", tt.header)
			}
			e := h.send(req).apiError(t, tt.status, tt.code)
			assert.Equal(t, []string{tt.field}, e.fields())
		})
	}

	t.Run("ingest_key", func(t *testing.T) {
		req := request(http.MethodGet, "/stream", "")
		req.Header.Set("X-API-Key", ingestKey)
		h.send(req).apiError(t, http.StatusForbidden, "forbidden")
	})
	t.Run("no_key", func(t *testing.T) {
		h.send(httptestRequest(http.MethodGet, "/stream")).apiError(t, http.StatusUnauthorized, "unauthorized")
	})
}

// A client that comes back with the id of the last event it got receives every event after
// it, then the live ones, none twice and none missed, even while events keep coming.
func TestStream_resumes_after_the_last_event_without_gap_or_duplicate(t *testing.T) {
	for _, tt := range []struct {
		name   string
		target func(last string) string
		header func(last string) http.Header
	}{
		{"Last-Event-ID", func(string) string { return "/stream" },
			func(last string) http.Header { return http.Header{"X-Api-Key": {readKey}, "Last-Event-Id": {last}} }},
		{"lastEventId", func(last string) string { return "/stream?lastEventId=" + last }, func(string) http.Header { return nil }},
		{"header_wins", func(string) string { return "/stream?lastEventId=0-0" },
			func(last string) http.Header { return http.Header{"X-Api-Key": {readKey}, "Last-Event-Id": {last}} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			base := h.start()
			first := openStream(t, base, "/stream", nil)
			for i := 1; i <= 5; i++ {
				h.appendEvents(statusEvent(fmt.Sprintf("ev-%d", i), "press-01"))
			}
			got := first.events(5)
			require.Equal(t, ids("ev-", 1, 5), eventIDs(t, got))
			first.close()

			// The client was away for events 6 to 20; 21 to 200 come while it reconnects.
			h.appendEvents(statusEvent("ev-6", "press-01"))
			for i := 7; i <= 20; i++ {
				h.appendEvents(statusEvent(fmt.Sprintf("ev-%d", i), "press-01"), anomalyEvent(fmt.Sprintf("n-%d", i), "press-01"))
			}
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := 21; i <= 200; i++ {
					h.appendEvents(statusEvent(fmt.Sprintf("ev-%d", i), "press-01"))
				}
			})
			last := got[2].id // the client had read up to ev-3 only
			again := openStream(t, base, tt.target(last), tt.header(last))
			wg.Wait()
			resumed := again.events(197)
			assert.Equal(t, ids("ev-", 4, 200), eventIDs(t, resumed))
			for i := 1; i < len(resumed); i++ {
				assert.Less(t, cursor(t, resumed[i-1].id), cursor(t, resumed[i].id))
			}
		})
	}
}

func cursor(t *testing.T, id string) string {
	t.Helper()
	c, err := event.ParseCursor(id)
	require.NoError(t, err)
	return fmt.Sprintf("%020d-%020d", c.Ms, c.Seq) // ordered as text
}

// A client whose last event is no longer kept gets what is kept; one whose last event is
// ahead of the log (a log that was emptied) gets what comes next.
func TestStream_resumes_from_ids_the_log_no_longer_has(t *testing.T) {
	l := memory.NewEventLog(5, time.Now)
	h := newHarness(t, withEventLog(l))
	base := h.start()
	for i := 1; i <= 10; i++ {
		h.appendEvents(statusEvent(fmt.Sprintf("ev-%d", i), "press-01"))
	}
	old := openStream(t, base, "/stream?lastEventId=1-0", nil)
	assert.Equal(t, ids("ev-", 6, 10), eventIDs(t, old.events(5)))

	ahead := openStream(t, base, "/stream?lastEventId=99999999999999-0", nil)
	h.appendEvents(statusEvent("ev-11", "press-01"))
	assert.Equal(t, []string{"ev-11"}, eventIDs(t, ahead.events(1)))
	assert.Equal(t, []string{"ev-11"}, eventIDs(t, old.events(1)))
}

// Keep-alive comments come every StreamKeepAlive, and the stream outlives the server's
// write timeout, which fasthttp would otherwise apply to the whole answer.
func TestStream_keeps_alive_past_the_write_timeout(t *testing.T) {
	const writeTimeout = 200 * time.Millisecond
	h := newHarness(t, withConfig(func(c *plmhttp.Config) {
		c.WriteTimeout, c.ReadTimeout, c.IdleTimeout = writeTimeout, writeTimeout, writeTimeout
		c.StreamKeepAlive = 20 * time.Millisecond
	}))
	s := openStream(t, h.start(), "/stream", nil)
	start := time.Now()
	require.Equal(t, "3000", s.next().retry)
	for seen := 0; seen < 10 || time.Since(start) < 3*writeTimeout; seen++ {
		require.Equal(t, sseBlock{comment: "keep-alive"}, s.next())
	}
	h.appendEvents(statusEvent("ev-1", "press-01"))
	assert.Equal(t, []string{"ev-1"}, eventIDs(t, []sseBlock{s.nextEvent()}))
}

// A client that stops reading is dropped once it has fallen far behind, while a client
// that keeps up gets every event; the dropped one's stream ends.
func TestStream_drops_a_client_too_slow_to_keep_up(t *testing.T) {
	h := newHarness(t, withConfig(func(c *plmhttp.Config) { c.WriteTimeout = 500 * time.Millisecond }))
	base := h.start()
	fast := openStream(t, base, "/stream", nil)
	require.Equal(t, "3000", fast.next().retry)

	slow, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { slow.Close() })
	_, err = fmt.Fprintf(slow, "GET /stream HTTP/1.1\r\nHost: plm\r\nX-API-Key: %s\r\n\r\n", readKey)
	require.NoError(t, err)
	eventually(t, "the slow client is streaming", func() bool { return gaugeValue(t, h.registry, "plm_stream_clients") == 2 })

	// Batch after batch, as long as the fast client gets each, until the slow one is dropped.
	n := 0
	for gaugeValue(t, h.registry, "plm_stream_dropped_total") == 0 {
		require.Less(t, n, 200_000, "the slow client was never dropped")
		batch := make([]event.Event, 100)
		for i := range batch {
			n++
			batch[i] = statusEvent(fmt.Sprintf("ev-%d", n), "press-01")
		}
		h.appendEvents(batch...)
		assert.Equal(t, ids("ev-", n-99, n), eventIDs(t, fast.events(100)), "the fast client missed events")
	}
	assert.Equal(t, 1.0, gaugeValue(t, h.registry, "plm_stream_dropped_total"), "only the slow client is dropped")

	// The slow client's answer ends: it reads what was sent, then the end of the body or of
	// the connection.
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
		}
	}()
	select {
	case <-done:
	case <-time.After(streamWait):
		t.Fatal("the dropped client's stream did not end")
	}
	h.appendEvents(statusEvent("last", "press-01"))
	assert.Equal(t, []string{"last"}, eventIDs(t, fast.events(1)))
}

// gaugeValue is the value of the metric name (a gauge or a counter without labels).
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		m := f.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// eventually polls cond until it holds, and fails t if it does not within streamWait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(streamWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, streamWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A stream ends when its client goes away (the next write fails).
func TestStream_ends_when_the_client_goes_away(t *testing.T) {
	h := newHarness(t, withConfig(func(c *plmhttp.Config) { c.StreamKeepAlive = 20 * time.Millisecond }))
	s := openStream(t, h.start(), "/stream", nil)
	require.Equal(t, "3000", s.next().retry)
	assert.Equal(t, 1.0, gaugeValue(t, h.registry, "plm_stream_clients"))
	s.close()
	eventually(t, "the stream ends", func() bool { return gaugeValue(t, h.registry, "plm_stream_clients") == 0 })
}

// Stopping the server ends the streams at once, rather than waiting for them until the
// shutdown times out.
func TestStream_ends_when_the_server_stops(t *testing.T) {
	h := newHarness(t)
	base := h.start()
	streams := []*sseStream{openStream(t, base, "/stream", nil), openStream(t, base, "/stream?lastEventId=0-0", nil)}
	for _, s := range streams {
		require.Equal(t, "3000", s.next().retry)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, h.server.Stop(ctx), "the streams held up the shutdown")
	for _, s := range streams {
		s.waitEnd(streamWait)
	}
}

func TestStream_serves_at_most_StreamMaxClients(t *testing.T) {
	h := newHarness(t, withConfig(func(c *plmhttp.Config) {
		c.StreamMaxClients = 1
		c.StreamKeepAlive = 20 * time.Millisecond
	}))
	base := h.start()
	first := openStream(t, base, "/stream", nil)
	require.Equal(t, "3000", first.next().retry)

	req, err := http.NewRequest(http.MethodGet, base+"/stream", nil)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", readKey)
	r := roundTrip(t, req)
	r.apiError(t, http.StatusServiceUnavailable, "unavailable")
	assert.Equal(t, "5", r.header.Get("Retry-After"))

	first.close()
	eventually(t, "the first stream ends", func() bool { return gaugeValue(t, h.registry, "plm_stream_clients") == 0 })
	second := openStream(t, base, "/stream", nil)
	require.Equal(t, "3000", second.next().retry)
}

func TestStream_without_an_event_log_is_unavailable(t *testing.T) {
	down := newHarness(t)
	down.events.SetErr(fmt.Errorf("event log down: %w", ports.ErrUnavailable))
	req := request(http.MethodGet, "/stream", "")
	down.send(req).apiError(t, http.StatusServiceUnavailable, "unavailable")

	none := newHarness(t, withEventLog(nil))
	none.send(request(http.MethodGet, "/stream", "")).apiError(t, http.StatusServiceUnavailable, "unavailable")
}

// Every process streams the one log (a Redis stream in production): an event appended once
// reaches the clients of each.
func TestStream_serves_the_shared_log_from_every_server(t *testing.T) {
	shared := memory.NewEventLog(0, time.Now)
	a, b := newHarness(t, withEventLog(shared)), newHarness(t, withEventLog(shared))
	sa, sb := openStream(t, a.start(), "/stream", nil), openStream(t, b.start(), "/stream", nil)
	require.Equal(t, "3000", sa.next().retry)
	require.Equal(t, "3000", sb.next().retry)
	a.appendEvents(statusEvent("ev-1", "press-01"))
	assert.Equal(t, []string{"ev-1"}, eventIDs(t, sa.events(1)))
	assert.Equal(t, []string{"ev-1"}, eventIDs(t, sb.events(1)))
}
