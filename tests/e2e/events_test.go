package e2e

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sseEvent is one event read from GET /stream.
type sseEvent struct {
	ID, Type string
	Data     map[string]any
}

// eventID is the event's own id (the one deliveries carry), from its data.
func (e sseEvent) eventID() string { s, _ := e.Data["id"].(string); return s }

// payload is the event's data field: the alarm or the status change.
func (e sseEvent) payload() map[string]any { m, _ := e.Data["data"].(map[string]any); return m }

// stream is a client of GET /stream.
type stream struct {
	t      *testing.T
	resp   *http.Response
	events chan sseEvent
	done   chan error
}

// openStream connects to p's GET /stream with query (may be empty), resuming after lastID
// when it is set.
func openStream(t *testing.T, p *process, query, lastID string) *stream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.base+"/stream"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", apiKey)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET /stream: %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &stream{t: t, resp: resp, events: make(chan sseEvent, 1024), done: make(chan error, 1)}
	go s.read()
	t.Cleanup(s.close)
	return s
}

func (s *stream) read() {
	sc := bufio.NewScanner(s.resp.Body)
	var ev sseEvent
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() > 0 {
				if err := json.Unmarshal([]byte(data.String()), &ev.Data); err != nil {
					s.done <- fmt.Errorf("event %s: data %q: %w", ev.ID, data.String(), err)
					return
				}
				s.events <- ev
			}
			ev, data = sseEvent{}, strings.Builder{}
		case strings.HasPrefix(line, "id: "):
			ev.ID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			ev.Type = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data.WriteString(strings.TrimPrefix(line, "data: "))
		}
	}
	s.done <- sc.Err()
}

func (s *stream) close() { s.resp.Body.Close() }

// next returns the next event that match accepts, within timeout; the events it passes over
// are returned too, in order.
func (s *stream) next(timeout time.Duration, match func(sseEvent) bool) (sseEvent, []sseEvent) {
	s.t.Helper()
	var passed []sseEvent
	deadline := time.After(timeout)
	for {
		select {
		case e := <-s.events:
			if match(e) {
				return e, passed
			}
			passed = append(passed, e)
		case err := <-s.done:
			s.t.Fatalf("the stream ended: %v; events passed over: %v", err, passed)
		case <-deadline:
			s.t.Fatalf("no matching event within %s; events passed over: %v", timeout, passed)
		}
	}
}

// drain returns the events that arrive within d.
func (s *stream) drain(d time.Duration) []sseEvent {
	var out []sseEvent
	deadline := time.After(d)
	for {
		select {
		case e := <-s.events:
			out = append(out, e)
		case <-deadline:
			return out
		}
	}
}

func isType(typ string) func(sseEvent) bool { return func(e sseEvent) bool { return e.Type == typ } }

func isStatus(eq, status string) func(sseEvent) bool {
	return func(e sseEvent) bool {
		return e.Type == "equipment.status_changed" && e.Data["equipmentId"] == eq && e.payload()["status"] == status
	}
}

// receiver is an endpoint of a subscription: it checks each delivery's signature and keeps
// what it was sent. It answers 503 while failing is set.
type receiver struct {
	srv     *httptest.Server
	secret  string
	failing atomic.Bool

	mu       sync.Mutex
	attempts int
	got      []delivered // accepted deliveries, in order
}

type delivered struct {
	EventID, Type string
	Body          map[string]any
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts++
		if r.failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		ts := req.Header.Get("X-PLM-Timestamp")
		mac := hmac.New(sha256.New, []byte(r.secret))
		mac.Write([]byte(ts + "." + string(body)))
		want := "v1=" + hex.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(req.Header.Get("X-PLM-Signature")), []byte(want)) {
			t.Errorf("delivery %s: signature %q, want %q", req.Header.Get("X-PLM-Event-Id"), req.Header.Get("X-PLM-Signature"), want)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
			t.Errorf("delivery timestamp %q is not now", ts)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("delivery body %q: %v", body, err)
		}
		if m["id"] != req.Header.Get("X-PLM-Event-Id") || m["type"] != req.Header.Get("X-PLM-Event-Type") {
			t.Errorf("headers %s/%s, body %v", req.Header.Get("X-PLM-Event-Id"), req.Header.Get("X-PLM-Event-Type"), m)
		}
		r.got = append(r.got, delivered{EventID: m["id"].(string), Type: m["type"].(string), Body: m})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// received returns the accepted deliveries: each event id once, and how many came again.
func (r *receiver) received() (byID map[string]delivered, repeats int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byID = make(map[string]delivered)
	for _, d := range r.got {
		if _, ok := byID[d.EventID]; ok {
			repeats++
		}
		byID[d.EventID] = d
	}
	return byID, repeats
}

// everyTransition is every type a subscription may ask for.
var everyTransition = []string{"alarm.opened", "alarm.escalated", "alarm.acknowledged", "alarm.cleared",
	"equipment.status_changed", "incident.opened", "incident.cleared"}

// subscribe creates a subscription to every transition with p, for r.
func subscribe(t *testing.T, p *process, r *receiver) string {
	t.Helper()
	return subscribeTo(t, p, r, everyTransition...)
}

// subscribeTo creates a subscription to types with p, for r.
func subscribeTo(t *testing.T, p *process, r *receiver, types ...string) string {
	t.Helper()
	body := mustJSON(t, map[string]any{"url": r.srv.URL + "/hook", "secret": r.secret, "types": types})
	status, b, err := p.request(http.MethodPost, "/subscriptions", apiKey, []byte(body))
	if err != nil || status != http.StatusCreated {
		t.Fatalf("POST /subscriptions: %d %v %s", status, err, b)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s["id"].(string)
}

func postReadings(t *testing.T, p *process, rs []map[string]any) {
	t.Helper()
	status, b, err := p.request(http.MethodPost, "/webhook/sensor-data", apiKey, []byte(mustJSON(t, batch(rs))))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("POST readings: %d %v %s", status, err, b)
	}
}

// Production set-up, two API processes and a worker: what happens to a machine reaches a
// stream on either API process, a client that comes back with Last-Event-ID gets what it
// missed, OFFLINE is announced once (two sweepers look), and a subscribed endpoint that fails
// for a while, across a worker killed with deliveries pending, receives every transition,
// signed, exactly the ones the stream showed.
func TestEventsReachStreamsAndSubscribersAcrossProcesses(t *testing.T) {
	d := newDeployment(t, "", "PLM_OFFLINE_AFTER=3s", "PLM_ANOMALY_WINDOW=2s",
		"PLM_DELIVERY_BACKOFF=100ms", "PLM_BREAKER_COOLDOWN=1s")
	worker := d.run("worker")
	a, b := d.run("serve"), d.run("serve")
	rcv := newReceiver(t, "a-secret-of-sixteen-or-more")
	subscribe(t, a, rcv)
	rcv.failing.Store(true)

	onA := openStream(t, a, "?equipmentId=press-01", "")
	now := time.Now().UTC()
	postReadings(t, b, normal("press-01", 40, now.Add(-40*time.Second)))
	postReadings(t, b, []map[string]any{reading("press-01", "temperature", 95, now)})
	opened, _ := onA.next(20*time.Second, isType("alarm.opened"))
	alarmID := opened.payload()["id"].(string)
	if opened.payload()["state"] != "ACTIVE" || opened.Data["equipmentId"] != "press-01" || opened.eventID() == "" {
		t.Fatalf("alarm.opened %v", opened.Data)
	}
	anomalous, _ := onA.next(10*time.Second, isStatus("press-01", "ANOMALY"))
	last := anomalous.ID
	for _, e := range onA.drain(200 * time.Millisecond) {
		last = e.ID
	}
	onA.close()

	// Acknowledged while no stream is open; a stream on the other process, resuming, gets it.
	status, body, err := b.request(http.MethodPost, "/alarms/"+alarmID+"/ack", apiKey, []byte(`{"by":"jo","comment":"on it"}`))
	if err != nil || status != http.StatusOK {
		t.Fatalf("ack: %d %v %s", status, err, body)
	}
	onB := openStream(t, b, "?equipmentId=press-01", last)
	acked, passed := onB.next(10*time.Second, isType("alarm.acknowledged"))
	if len(passed) != 0 || acked.payload()["id"] != alarmID || acked.payload()["state"] != "ACKNOWLEDGED" {
		t.Fatalf("resumed after %s: passed over %v, then %v", last, passed, acked.Data)
	}

	// The worker dies with deliveries pending (the endpoint is failing); another takes over.
	if err := worker.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-worker.done
	worker.done <- nil
	worker = d.run("worker")
	rcv.failing.Store(false)

	// Calm readings for 3 s clear the alarm and, past the anomaly window, the machine is
	// ONLINE; then it falls silent and goes OFFLINE, announced once.
	calmFrom := time.Now().UTC()
	postReadings(t, b, normal("press-01", 10, calmFrom))
	for i := range 6 {
		time.Sleep(500 * time.Millisecond)
		postReadings(t, a, []map[string]any{reading("press-01", "temperature", 70, calmFrom.Add(time.Duration(11+i)*time.Second))})
	}
	lastReading := time.Now()
	onB.next(20*time.Second, isType("alarm.cleared"))
	onB.next(20*time.Second, isStatus("press-01", "ONLINE"))
	offline, _ := onB.next(20*time.Second, isStatus("press-01", "OFFLINE"))
	at, err := time.Parse(time.RFC3339Nano, offline.Data["at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("OFFLINE announced %s after the last reading was sent (PLM_OFFLINE_AFTER=3s)", at.Sub(lastReading).Round(time.Millisecond))
	if offline.payload()["previous"] != "ONLINE" || offline.payload()["reason"] == "" {
		t.Errorf("OFFLINE event %v", offline.Data)
	}

	// Every transition the stream has, from the start, once.
	all := openStream(t, a, "?equipmentId=press-01", "0-0")
	var transitions []sseEvent
	for _, e := range all.drain(3 * time.Second) {
		transitions = append(transitions, e)
	}
	offlines := 0
	for _, e := range transitions {
		if isStatus("press-01", "OFFLINE")(e) {
			offlines++
		}
	}
	if offlines != 1 {
		t.Errorf("OFFLINE announced %d times, want once: %v", offlines, transitions)
	}

	// The endpoint receives exactly the transitions the stream showed, signed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, repeats := rcv.received()
		missing := []string{}
		for _, e := range transitions {
			if _, ok := got[e.eventID()]; !ok {
				missing = append(missing, e.Type+" "+e.eventID())
			}
		}
		if len(missing) == 0 {
			if len(got) != len(transitions) {
				t.Errorf("the endpoint received %d events, the stream has %d transitions", len(got), len(transitions))
			}
			for _, e := range transitions {
				if g := got[e.eventID()]; g.Type != e.Type || fmt.Sprint(g.Body["data"]) != fmt.Sprint(e.Data["data"]) {
					t.Errorf("delivered %v, streamed %v", g.Body, e.Data)
				}
			}
			rcv.mu.Lock()
			attempts := rcv.attempts
			rcv.mu.Unlock()
			t.Logf("%d transitions delivered, %d delivered again, %d attempts in all", len(got), repeats, attempts)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered within 30 s: %v\n%s%s", missing, worker.stderr, a.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deliveryLog returns a subscription's deliveries, newest first.
func deliveryLog(t *testing.T, p *process, subID string) []map[string]any {
	t.Helper()
	status, b, err := p.request(http.MethodGet, "/subscriptions/"+subID+"/deliveries?pageSize=100", apiKey, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("delivery log: %d %v %s", status, err, b)
	}
	var page struct{ Data []map[string]any }
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatal(err)
	}
	return page.Data
}

// Embedded set-up: an endpoint that hangs does not hold back another one, which receives
// every transition meanwhile; the hanging endpoint's deliveries die after their attempts, say
// why in the log, and are delivered once redelivered.
func TestHangingEndpointHoldsNoOtherBack(t *testing.T) {
	p := runPLM(t, "PLM_API_KEYS="+apiKey, "PLM_DATA_DIR="+t.TempDir(), "PLM_DELIVERY_TIMEOUT=500ms",
		"PLM_DELIVERY_MAX_ATTEMPTS=2", "PLM_DELIVERY_BACKOFF=100ms")
	var hung atomic.Int32
	var mended atomic.Bool
	hanging := newReceiver(t, "the-hanging-endpoint-secret")
	accept := hanging.srv.Config.Handler
	hanging.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if mended.Load() {
			accept.ServeHTTP(w, req)
			return
		}
		hung.Add(1)
		_, _ = io.ReadAll(req.Body) // (the server notices the sender leave once the body is read)
		<-req.Context().Done()      // until the sender gives up
	})
	fast := newReceiver(t, "the-fast-endpoint-secret-000")
	// The alarm and status types only: with the incident's events too, the hanging endpoint's
	// fifth failed attempt would open its breaker (PLM_BREAKER_FAILURES, 5) before the last
	// delivery's second attempt.
	alarmsAndStatus := everyTransition[:5]
	hangingID := subscribeTo(t, p, hanging, alarmsAndStatus...)
	subscribeTo(t, p, fast, alarmsAndStatus...)

	now := time.Now().UTC()
	postReadings(t, p, normal("press-01", 40, now.Add(-40*time.Second)))
	postReadings(t, p, []map[string]any{reading("press-01", "temperature", 95, now)})

	// The fast endpoint gets the opening and the status change while the other hangs.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _ := fast.received()
		types := map[string]bool{}
		for _, d := range got {
			types[d.Type] = true
		}
		if types["alarm.opened"] && types["equipment.status_changed"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fast endpoint got %v within 20 s while the other hung\n%s", got, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if hung.Load() == 0 {
		t.Fatal("the hanging endpoint was never called")
	}

	// Its deliveries die after two attempts, each cut at the timeout.
	var dead []map[string]any
	deadline = time.Now().Add(20 * time.Second)
	for {
		dead = dead[:0]
		all := deliveryLog(t, p, hangingID)
		for _, d := range all {
			if d["state"] == "DEAD" {
				dead = append(dead, d)
			}
		}
		if len(all) > 0 && len(dead) == len(all) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries to the hanging endpoint: %v", all)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, d := range dead {
		if d["attempts"] != 2.0 || d["lastError"] == nil || d["lastStatus"] != nil {
			t.Errorf("dead delivery %v: want 2 attempts, an error and no status", d)
		}
	}

	// Mended, it receives every dead delivery once redelivered.
	mended.Store(true)
	for _, d := range dead {
		status, b, err := p.request(http.MethodPost, "/subscriptions/"+hangingID+"/deliveries/"+d["id"].(string)+"/redeliver", apiKey, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("redeliver: %d %v %s", status, err, b)
		}
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		got, repeats := hanging.received()
		if len(got) == len(dead) {
			for _, d := range dead {
				if _, ok := got[d["eventId"].(string)]; !ok {
					t.Errorf("dead delivery of %v not redelivered", d["eventId"])
				}
			}
			if repeats != 0 {
				t.Errorf("%d redeliveries came twice", repeats)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redelivered %d of %d\n%s", len(got), len(dead), p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The endpoint has answered; the log records each answer a moment later (and an answer
	// later than the timeout, on a busy machine, is tried again).
	deadline = time.Now().Add(20 * time.Second)
	for {
		var pending []map[string]any
		for _, d := range deliveryLog(t, p, hangingID) {
			if d["state"] != "DELIVERED" || d["deliveredAt"] == nil {
				pending = append(pending, d)
			}
		}
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after redelivery, not delivered within 20 s: %v", pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
