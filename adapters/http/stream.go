package http

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// Defaults of the live stream, taken by the zero fields of Config.
const (
	DefaultStreamKeepAlive  = 15 * time.Second
	DefaultStreamMaxClients = 1000
)

const (
	// streamRetry is the reconnection delay, in milliseconds, that clients are told.
	streamRetry = "3000"
	// streamBuffer is how many entries a client may fall behind the others before it is
	// dropped.
	streamBuffer = 1024
	// streamPage is how many entries are read at once: far fewer than a client's buffer
	// holds, since the hub hands out a page in one go.
	streamPage = 256
	// streamWait is how long one read of the hub waits for entries.
	streamWait = 5 * time.Second
	// streamReadTimeout bounds the reads that are not waits: the tail, a page of backlog.
	streamReadTimeout = 5 * time.Second
	// streamRetryDelay is the pause of the hub after a read that failed.
	streamRetryDelay = time.Second
)

// Why a stream cannot start.
var (
	errTooManyStreams = &apiError{status: fiber.StatusServiceUnavailable, code: codeUnavailable,
		message: "too many live streams are open on this server; retry later", retryAfter: unavailableRetryAfter}
	errStreamsClosed = &apiError{status: fiber.StatusServiceUnavailable, code: codeUnavailable,
		message: "the server is shutting down; retry later", retryAfter: unavailableRetryAfter}
	errNoEventLog = &apiError{status: fiber.StatusServiceUnavailable, code: codeUnavailable,
		message: "this server has no live stream", retryAfter: unavailableRetryAfter}
)

// streams serve GET /stream: Server-Sent Events of the event log, filtered per client.
//
// One hub per process reads the log, from its tail, while anyone listens, and hands each
// entry to the clients that want it through a bounded buffer each. A client that falls
// streamBuffer entries behind is dropped rather than slowing the others: its stream ends,
// and its EventSource reconnects with Last-Event-ID and catches up from the log. Every
// process reads the same log (a Redis stream in production), so clients may connect to any.
type streams struct {
	log          ports.EventLog // nil: the stream answers 503
	logger       *slog.Logger
	keepAlive    time.Duration
	maxClients   int
	writeTimeout time.Duration
	metrics      streamMetrics

	mu     sync.Mutex
	subs   map[*subscriber]struct{} // the clients the hub feeds
	active int                      // streams being served, dropped ones included until they end
	reader *hubReader               // nil while no one listens
	closed bool                     // the server is stopping: no stream starts
}

// hubReader is one run of the hub's reading loop.
type hubReader struct {
	cancel context.CancelFunc
}

// subscriber is one client of the hub.
type subscriber struct {
	filter  streamFilter
	entries chan ports.EventEntry
	gone    chan struct{} // closed when the hub lets go of it: too slow, or the server stops
}

type streamMetrics struct {
	clients prometheus.Gauge
	dropped prometheus.Counter
}

func newStreamMetrics(reg prometheus.Registerer) (streamMetrics, error) {
	clients, err := register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "plm_stream_clients",
		Help: "Live streams (GET /stream) being served.",
	}))
	if err != nil {
		return streamMetrics{}, err
	}
	dropped, err := register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plm_stream_dropped_total",
		Help: "Live streams ended because their client could not keep up.",
	}))
	if err != nil {
		return streamMetrics{}, err
	}
	return streamMetrics{clients: clients, dropped: dropped}, nil
}

func newStreams(log ports.EventLog, cfg Config, logger *slog.Logger, metrics streamMetrics) *streams {
	return &streams{log: log, logger: logger, keepAlive: cfg.StreamKeepAlive, maxClients: cfg.StreamMaxClients,
		writeTimeout: cfg.WriteTimeout, metrics: metrics, subs: make(map[*subscriber]struct{})}
}

// subscribe adds a client that wants the entries filter lets through. The hub starts, from
// the log's tail, with the first client: every entry appended after subscribe returns
// reaches the client (unless it is dropped).
func (st *streams) subscribe(ctx context.Context, filter streamFilter) (*subscriber, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.closed:
		return nil, errStreamsClosed
	case st.active >= st.maxClients:
		return nil, errTooManyStreams
	}
	if st.reader == nil {
		ctx, cancel := context.WithTimeout(ctx, streamReadTimeout)
		from, err := st.log.Tail(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("start the live stream: %w", err)
		}
		rctx, stop := context.WithCancel(context.Background())
		st.reader = &hubReader{cancel: stop}
		go st.run(rctx, st.reader, from)
	}
	sub := &subscriber{filter: filter, entries: make(chan ports.EventEntry, streamBuffer), gone: make(chan struct{})}
	st.subs[sub] = struct{}{}
	st.active++
	st.metrics.clients.Inc()
	return sub, nil
}

// leave ends a client's stream. The hub stops when no one listens.
func (st *streams) leave(sub *subscriber) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.subs, sub)
	st.active--
	st.metrics.clients.Dec()
	st.stopIfIdle()
}

// stopIfIdle stops the hub's reader when no client is left. st.mu is held.
func (st *streams) stopIfIdle() {
	if len(st.subs) == 0 && st.reader != nil {
		st.reader.cancel()
		st.reader = nil
	}
}

// close ends every stream and refuses new ones: the server is stopping, and would otherwise
// wait for the streams, which never end by themselves.
func (st *streams) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.closed = true
	for sub := range st.subs {
		delete(st.subs, sub)
		close(sub.gone)
	}
	st.stopIfIdle()
}

// run is the hub: it reads the log after the cursor and fans each entry out, until r is no
// longer the hub's reader.
func (st *streams) run(ctx context.Context, r *hubReader, after event.Cursor) {
	for {
		entries, err := st.log.Read(ctx, after, streamPage, streamWait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			st.logger.Warn("live stream: reading the events failed; retrying", "error", err)
			timer := time.NewTimer(streamRetryDelay)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
			continue
		}
		if len(entries) == 0 {
			continue
		}
		after = entries[len(entries)-1].Cursor
		st.mu.Lock()
		if st.reader != r {
			st.mu.Unlock()
			return
		}
		for _, e := range entries {
			st.fanOut(e)
		}
		st.stopIfIdle()
		st.mu.Unlock()
	}
}

// fanOut hands e to every client that wants it, dropping those whose buffer is full.
// st.mu is held.
func (st *streams) fanOut(e ports.EventEntry) {
	for sub := range st.subs {
		if !sub.filter.match(e) {
			continue
		}
		select {
		case sub.entries <- e:
		default:
			delete(st.subs, sub)
			close(sub.gone)
			st.metrics.dropped.Inc()
			st.logger.Info("live stream: a client could not keep up and was dropped; it may reconnect and resume")
		}
	}
}

// streamFilter says which entries a client wants.
type streamFilter struct {
	equipment map[string]bool // empty: every equipment
	types     map[event.Type]bool
}

func (f streamFilter) match(e ports.EventEntry) bool {
	return f.types[e.Type] && (len(f.equipment) == 0 || f.equipment[e.EquipmentID])
}

// streamRequest is what a client asks of GET /stream.
type streamRequest struct {
	filter streamFilter
	resume bool         // send what the log keeps after `after` first
	after  event.Cursor // the last event the client has
}

// headerLastEventID is the header in which EventSource sends, when it reconnects, the id of
// the last event it received.
const headerLastEventID = "Last-Event-ID"

var msgEventTypes = func() string {
	names := make([]string, len(event.Types))
	for i, t := range event.Types {
		names[i] = string(t)
	}
	return "must be a comma-separated list of " + strings.Join(names, ", ")
}()

// parseStreamRequest reads the query (equipmentId, types, lastEventId) and Last-Event-ID,
// which wins over lastEventId: it is the newer position, sent on reconnection.
func parseStreamRequest(c *fiber.Ctx) (streamRequest, error) {
	q := parseQuery(c, "equipmentId", "types", "lastEventId")
	var r streamRequest
	ids := list(q, "equipmentId", func(s string) (string, error) { return s, validateEquipmentID(s) },
		"must be a comma-separated list of equipment ids, each of 1 to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit")
	if len(ids) > 0 {
		r.filter.equipment = make(map[string]bool, len(ids))
		for _, id := range ids {
			r.filter.equipment[id] = true
		}
	}
	types := list(q, "types", event.ParseType, msgEventTypes)
	if _, asked := q.values["types"]; !asked {
		types = event.Transitions // anomalies only when asked for: they are many
	}
	r.filter.types = make(map[event.Type]bool, len(types))
	for _, t := range types {
		r.filter.types[t] = true
	}

	id, field := c.Get(headerLastEventID), headerLastEventID
	if id == "" {
		id, r.resume = q.lookup("lastEventId")
		field = "lastEventId"
	}
	if id != "" || r.resume {
		after, err := event.ParseCursor(id)
		if err != nil {
			q.fail(field, "must be an event id as the stream sends them: <ms>-<seq>, e.g. 1764230400000-0")
		}
		r.after, r.resume = after, true
	}
	return r, q.err()
}

// stream is GET /stream. The answer is a stream of Server-Sent Events that lasts until the
// client goes away or the server stops: first "retry: 3000", then, when resuming, every
// entry the log keeps after the client's last event (a client that was away so long that
// some were dropped from the log gets what is kept), then each new entry as it comes, with
// a keep-alive comment line every keepAlive. Each event is
//
//	id: <cursor>
//	event: <type>
//	data: <the event's wire form>
//
// No event is sent twice or skipped on the way from the backlog to the live entries: the
// client subscribes to the hub first, then reads the backlog, then skips the live entries
// that the backlog had.
func (st *streams) stream(c *fiber.Ctx) error {
	req, err := parseStreamRequest(c)
	if err != nil {
		return err
	}
	if st.log == nil {
		return errNoEventLog
	}
	sub, err := st.subscribe(c.UserContext(), req.filter)
	if err != nil {
		return err
	}
	if req.resume {
		// A cursor ahead of the log (a log that was emptied, say) would skip what comes next.
		ctx, cancel := context.WithTimeout(c.UserContext(), streamReadTimeout)
		tail, err := st.log.Tail(ctx)
		cancel()
		if err != nil {
			st.leave(sub)
			return fmt.Errorf("read the tail of the live stream: %w", err)
		}
		if tail.Less(req.after) {
			req.after = tail
		}
	}
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no") // no buffering by a proxy (nginx) in front
	// The writer runs on after the handler returns, in a goroutine of fasthttp's, and may
	// not touch the request; it needs the connection only to move its write deadline.
	out := &sseWriter{conn: c.Context().Conn(), timeout: st.writeTimeout}
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer st.leave(sub)
		out.w = w
		st.serve(out, sub, req)
	})
	return nil
}

// serve writes one client's stream until its client goes away (a write fails), the hub
// drops it, or the server stops.
func (st *streams) serve(out *sseWriter, sub *subscriber, req streamRequest) {
	out.field("retry", streamRetry)
	out.end()
	if out.flush() != nil {
		return
	}
	last := req.after
	for req.resume {
		ctx, cancel := context.WithTimeout(context.Background(), streamReadTimeout)
		entries, err := st.log.Read(ctx, last, streamPage, 0)
		cancel()
		if err != nil {
			// The client reconnects, and resumes from what it was sent.
			st.logger.Warn("live stream: reading the backlog failed; ending the stream", "error", err)
			return
		}
		for _, e := range entries {
			last = e.Cursor
			if sub.filter.match(e) {
				out.event(e)
			}
		}
		if out.flush() != nil {
			return
		}
		if len(entries) < streamPage {
			break
		}
		select {
		case <-sub.gone:
			return
		default:
		}
	}

	keepAlive := time.NewTicker(st.keepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-sub.gone:
			return
		case <-keepAlive.C:
			out.comment("keep-alive")
		case e := <-sub.entries:
			// Send what has come, at once.
		batch:
			for {
				if last.Less(e.Cursor) {
					last = e.Cursor
					out.event(e)
				}
				select {
				case e = <-sub.entries:
				default:
					break batch
				}
			}
		}
		if out.flush() != nil {
			return
		}
	}
}

// sseWriter writes Server-Sent Events. Before each flush it moves the connection's write
// deadline on by the server's write timeout: fasthttp sets the deadline once for a whole
// answer, which would cut a stream after WriteTimeout, while a client that stops reading
// must still make a write fail.
type sseWriter struct {
	w       *bufio.Writer
	conn    net.Conn
	timeout time.Duration
}

func (o *sseWriter) field(name, value string) {
	_, _ = o.w.WriteString(name)
	_, _ = o.w.WriteString(": ")
	_, _ = o.w.WriteString(value)
	_ = o.w.WriteByte('\n')
}

func (o *sseWriter) end() { _ = o.w.WriteByte('\n') }

// event writes one entry; data of several lines (never of the wire form's JSON) takes a data
// field each.
func (o *sseWriter) event(e ports.EventEntry) {
	o.field("id", e.Cursor.String())
	o.field("event", string(e.Type))
	for line := range bytes.SplitSeq(e.Data, []byte("\n")) {
		_, _ = o.w.WriteString("data: ")
		_, _ = o.w.Write(line)
		_ = o.w.WriteByte('\n')
	}
	o.end()
}

func (o *sseWriter) comment(text string) {
	_, _ = o.w.WriteString(": ")
	_, _ = o.w.WriteString(text)
	_ = o.w.WriteByte('\n')
	o.end()
}

// flush sends what was written; an error means the client is gone (bufio's errors stick).
func (o *sseWriter) flush() error {
	if o.conn != nil && o.timeout > 0 {
		if err := o.conn.SetWriteDeadline(time.Now().Add(o.timeout)); err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("move the write deadline: %w", err)
		}
	}
	return o.w.Flush()
}
