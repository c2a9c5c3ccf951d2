package http

// Fuzz targets for everything the API parses: the webhook and metadata bodies, every query
// string, path ids and the headers read. Each checks that nothing panics, that a refusal is
// a 4xx of the contract's codes, and that whatever is accepted keeps the rules of API.md,
// as an independent reading of them in this file judges. Seeds are in
// testdata/fuzz/<target>/; `go tool task fuzz` runs each target in turn.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// The contract's rules, written out again to judge the parsers by.
var (
	contractID        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
	contractTypes     = []string{"temperature", "vibration", "pressure", "voltage"}
	contractSeverity  = []string{"LOW", "MEDIUM", "CRITICAL"}
	contractRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	uuidPattern       = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

	refusalApp = fiber.New() // for the contexts the error mapping takes
)

func contractEquipmentID(id string) bool {
	return len(id) >= 1 && utf8.RuneCountInString(id) <= 64 && contractID.MatchString(id)
}

// contractTime reads a query time as the service documents it: RFC 3339 with an offset, a
// '+' that arrived as a space taken as '+'.
func contractTime(v string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, strings.ReplaceAll(v, " ", "+"))
	return t, err == nil
}

// checkRefusal checks that err is answered as a 400 with one of codes, and details that
// say something (a field may be "": a query string can name a parameter so).
func checkRefusal(t *testing.T, err error, codes ...string) *apiError {
	t.Helper()
	c := refusalApp.AcquireCtx(&fasthttp.RequestCtx{})
	defer refusalApp.ReleaseCtx(c)
	e := (&Server{log: slog.New(slog.DiscardHandler)}).apiErrorOf(c, err)
	if e.status != fiber.StatusBadRequest || !slices.Contains(codes, e.code) {
		t.Fatalf("refused as %d %s (%v), want 400 %v", e.status, e.code, err, codes)
	}
	for _, d := range e.details {
		if d.Message == "" {
			t.Fatalf("a detail says nothing: %+v", e.details)
		}
	}
	return e
}

// repeatedKey walks body with encoding/json's tokenizer and reports whether an object of
// it names a field twice, as encoding/json matches names (ignoring case): the body a field
// of a reading or readings, or a reading of its readings array a field of a reading. body
// is a JSON object.
func repeatedKey(body []byte) bool {
	reading := []string{"equipmentId", "sensorType", "value", "unit", "timestamp", "readingId"}
	return objectRepeats(body, append(reading, "readings"), func(raw json.RawMessage) bool {
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return false
		}
		repeated := false
		for _, item := range items {
			repeated = item[0] == '{' && objectRepeats(item, reading, nil) || repeated
		}
		return repeated
	})
}

// objectRepeats reports whether the object obj names one of names twice, or readings (when
// set) finds a repeat in the value of readings.
func objectRepeats(obj []byte, names []string, readings func(json.RawMessage) bool) bool {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	seen := map[int]bool{}
	repeated := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var value json.RawMessage
		if dec.Decode(&value) != nil {
			return false
		}
		f := slices.IndexFunc(names, func(n string) bool { return strings.EqualFold(n, tok.(string)) })
		if f < 0 {
			continue
		}
		repeated = repeated || seen[f]
		seen[f] = true
		if names[f] == "readings" && readings != nil && len(value) > 0 && value[0] == '[' {
			repeated = readings(value) || repeated
		}
	}
	return repeated
}

// FuzzDecodeReadings: the webhook body. A refusal is a 400 malformed_json or
// validation_failed; an accepted body holds 1 to 1000 readings that each keep every rule of
// the contract (and the domain's invariants), decode again to themselves once re-encoded,
// and come from objects that give no field twice.
func FuzzDecodeReadings(f *testing.F) {
	for _, b := range webhookBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		inputs, single, err := decodeReadings(body, fastNow, fourTypes)
		isObject := json.Valid(body) && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{"))
		if isObject && repeatedKey(body) {
			if err == nil {
				t.Fatalf("accepted a body that gives a field twice: %q", body)
			}
			if e := checkRefusal(t, err, codeMalformedJSON); len(e.details) != 1 || e.details[0].Message != "is given more than once" {
				t.Fatalf("a field given twice refused as %+v", e)
			}
			return
		}
		if err != nil {
			e := checkRefusal(t, err, codeMalformedJSON, codeValidationFailed)
			if isObject && e.code == codeMalformedJSON && len(e.details) == 1 && e.details[0].Message == "is given more than once" {
				t.Fatalf("refused %q for a repeated %s that encoding/json does not see", body, e.details[0].Field)
			}
			return
		}
		if !isObject {
			t.Fatalf("accepted %q, which is no JSON object", body)
		}
		if len(inputs) < 1 || len(inputs) > command.MaxBatch || single && len(inputs) != 1 {
			t.Fatalf("accepted %d readings (single %v)", len(inputs), single)
		}
		for i, in := range inputs {
			checkAcceptedReading(t, i, in)
		}
		// Round trip: the readings written back as a batch decode to the same.
		again, _, err := decodeReadings(encodeBatch(t, inputs), fastNow, fourTypes)
		if err != nil {
			t.Fatalf("the accepted readings, re-encoded, are refused: %v", err)
		}
		for i := range inputs {
			a, b := inputs[i], again[i]
			if a.EquipmentID != b.EquipmentID || a.SensorType != b.SensorType || a.Value != b.Value ||
				a.Unit != b.Unit || a.ReadingID != b.ReadingID || a.SensorID != b.SensorID || !a.Timestamp.Equal(b.Timestamp) {
				t.Fatalf("reading %d does not round-trip:\n%+v\n%+v", i, a, b)
			}
		}
	})
}

func checkAcceptedReading(t *testing.T, i int, in command.ReadingInput) {
	t.Helper()
	switch {
	case !contractEquipmentID(in.EquipmentID):
		t.Fatalf("reading %d: accepted equipmentId %q", i, in.EquipmentID)
	case !slices.Contains(contractTypes, string(in.SensorType)):
		t.Fatalf("reading %d: accepted sensorType %q", i, in.SensorType)
	case math.IsNaN(in.Value) || math.IsInf(in.Value, 0):
		t.Fatalf("reading %d: accepted value %v", i, in.Value)
	case utf8.RuneCountInString(in.Unit) > 16 || strings.ContainsRune(in.Unit, 0):
		t.Fatalf("reading %d: accepted unit %q", i, in.Unit)
	case utf8.RuneCountInString(in.ReadingID) > 64 || strings.ContainsRune(in.ReadingID, 0):
		t.Fatalf("reading %d: accepted readingId %q", i, in.ReadingID)
	case in.SensorID != "" && !contractEquipmentID(in.SensorID):
		t.Fatalf("reading %d: accepted sensorId %q", i, in.SensorID)
	case in.Timestamp.Sub(fastNow) > 5*time.Minute:
		t.Fatalf("reading %d: accepted timestamp %v, more than 5 minutes after %v", i, in.Timestamp, fastNow)
	}
	ts := in.Timestamp
	if ts.IsZero() {
		ts = fastNow
	}
	id := in.ReadingID
	if id == "" {
		id = "generated"
	}
	if _, err := sensor.NewReading(id, in.EquipmentID, in.SensorType, in.SensorID, in.Value, in.Unit, ts, fastNow); err != nil {
		t.Fatalf("reading %d: accepted, but the domain refuses it: %v", i, err)
	}
}

func encodeBatch(t *testing.T, inputs []command.ReadingInput) []byte {
	t.Helper()
	type out struct {
		EquipmentID string  `json:"equipmentId"`
		SensorType  string  `json:"sensorType"`
		Value       float64 `json:"value"`
		Unit        string  `json:"unit,omitempty"`
		Timestamp   string  `json:"timestamp,omitempty"`
		ReadingID   string  `json:"readingId,omitempty"`
		SensorID    string  `json:"sensorId,omitempty"`
	}
	rs := make([]out, len(inputs))
	for i, in := range inputs {
		rs[i] = out{EquipmentID: in.EquipmentID, SensorType: string(in.SensorType), Value: in.Value,
			Unit: in.Unit, ReadingID: in.ReadingID, SensorID: in.SensorID}
		if !in.Timestamp.IsZero() {
			rs[i].Timestamp = in.Timestamp.Format(time.RFC3339Nano)
		}
	}
	b, err := json.Marshal(map[string]any{"readings": rs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecodeMetadata: the body of PUT /equipment/:id. A refusal is a 400 malformed_json or
// validation_failed; accepted fields are valid UTF-8, at most 128 characters, without NUL
// (which PostgreSQL cannot store).
func FuzzDecodeMetadata(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := decodeMetadata(body)
		if err != nil {
			checkRefusal(t, err, codeMalformedJSON, codeValidationFailed)
			return
		}
		for _, v := range []string{m.Name, m.Line, m.Location} {
			if !utf8.ValidString(v) || utf8.RuneCountInString(v) > equipment.MaxMetadataLen || strings.ContainsRune(v, 0) {
				t.Fatalf("accepted metadata field %q", v)
			}
		}
		if err := (equipment.Metadata{Name: m.Name, Line: m.Line, Location: m.Location}).Validate(); err != nil {
			t.Fatalf("accepted metadata the domain refuses: %v", err)
		}
	})
}

var offsetSuffix = regexp.MustCompile(`([Zz]|[+-]\d\d:\d\d)$`)

// FuzzParseTime: an accepted time carries its offset, lies in years 0 to 9999, and
// round-trips through the answers' format (UTC, milliseconds); a refusal is errBadTime.
func FuzzParseTime(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := parseTime(s)
		if err != nil {
			if !errors.Is(err, errBadTime) {
				t.Fatalf("parseTime(%q) = %v, want errBadTime", s, err)
			}
			return
		}
		if !offsetSuffix.MatchString(s) {
			t.Fatalf("parseTime(%q) took a time without an offset", s)
		}
		if y := ts.UTC().Year(); y < 0 || y > 9999 {
			t.Fatalf("parseTime(%q) = year %d", s, y)
		}
		back, err := parseTime(formatTime(ts))
		if err != nil || !back.Equal(ts.Truncate(time.Millisecond)) {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, ts, formatTime(ts), back, err)
		}
	})
}

// newParams is a query string already split, as parseQuery leaves it.
func newParams(values map[string]string) *queryParams {
	return &queryParams{values: values, failed: make(map[string]bool)}
}

// checkInvalidQuery checks q's error against the fields the rules find bad.
func checkInvalidQuery(t *testing.T, q *queryParams, allowed ...string) {
	t.Helper()
	e := checkRefusal(t, q.err(), codeInvalidQuery)
	for _, d := range e.details {
		if !slices.Contains(allowed, d.Field) {
			t.Fatalf("invalid_query names %q: %+v", d.Field, e.details)
		}
	}
}

// FuzzTimeWindow: from and to with their defaults. Accepted, from is before to, a given
// bound is the time sent, and a missing one is the default (now, or the span before to);
// refused, only from or to is named.
func FuzzTimeWindow(f *testing.F) {
	now := time.Date(2026, 11, 27, 8, 15, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, from, to string, hasFrom, hasTo bool, spanSeconds uint32) {
		span := time.Duration(spanSeconds%(100*24*3600)+1) * time.Second
		values := map[string]string{}
		if hasFrom {
			values["from"] = from
		}
		if hasTo {
			values["to"] = to
		}
		q := newParams(values)
		gotFrom, gotTo := q.window(now, span)

		wantFrom, wantTo := now.Add(-span), now
		ok := true
		if hasTo {
			wantTo, ok = contractTime(to)
			wantFrom = wantTo.Add(-span)
		}
		if hasFrom {
			var okFrom bool
			wantFrom, okFrom = contractTime(from)
			ok = ok && okFrom
		}
		ok = ok && wantFrom.Before(wantTo) && !wantFrom.Before(firstWritableTime)
		if !ok {
			if q.err() == nil {
				t.Fatalf("from %q (%v), to %q (%v): accepted [%v, %v)", from, hasFrom, to, hasTo, gotFrom, gotTo)
			}
			checkInvalidQuery(t, q, "from", "to")
			return
		}
		if err := q.err(); err != nil {
			t.Fatalf("from %q (%v), to %q (%v): refused: %v", from, hasFrom, to, hasTo, err)
		}
		if !gotFrom.Equal(wantFrom) || !gotTo.Equal(wantTo) || !gotFrom.Before(gotTo) {
			t.Fatalf("window [%v, %v), want [%v, %v)", gotFrom, gotTo, wantFrom, wantTo)
		}
	})
}

// FuzzInterval: the bucket size of averages. Accepted only with aggregation=avg, at least
// 1s, echoed as sent and parsed as Go parses durations; 1m when absent.
func FuzzInterval(f *testing.F) {
	f.Fuzz(func(t *testing.T, aggregation, interval string, given bool) {
		values := map[string]string{"aggregation": aggregation}
		if given {
			values["interval"] = interval
		}
		q := newParams(values)
		agg := query.Aggregation(q.enum("aggregation", "raw", "raw", "avg"))
		text, d := q.interval(agg)

		wantD, perr := time.ParseDuration(interval)
		ok := aggregation == "raw" || aggregation == "avg"
		switch {
		case !given:
		case aggregation != "avg":
			ok = false
		default:
			ok = ok && perr == nil && wantD >= time.Second
		}
		if !ok {
			if q.err() == nil {
				t.Fatalf("aggregation %q, interval %q (%v): accepted %q = %v", aggregation, interval, given, text, d)
			}
			checkInvalidQuery(t, q, "aggregation", "interval")
			return
		}
		if err := q.err(); err != nil {
			t.Fatalf("aggregation %q, interval %q (%v): refused: %v", aggregation, interval, given, err)
		}
		if !given {
			if text != "1m" || d != time.Minute {
				t.Fatalf("default interval %q = %v", text, d)
			}
			return
		}
		if text != interval || d != wantD || d < time.Second {
			t.Fatalf("interval %q read as %q = %v", interval, text, d)
		}
	})
}

// FuzzQueryInt: page, pageSize and limit. Accepted, the number is the one sent (it prints
// back to a string that reads the same) and within the contract's range; refused, the
// parameter is named and the default stands.
func FuzzQueryInt(f *testing.F) {
	bounds := []struct {
		name         string
		def, lo, hi  int
		contractHigh int
	}{
		{"page", 1, 1, maxPage, 1_000_000},
		{"pageSize", 50, 1, maxPageSize, 500},
		{"limit", 1000, 1, maxHistoryLimit, 10000},
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, b := range bounds {
			q := newParams(map[string]string{b.name: v})
			n := q.int(b.name, b.def, b.lo, b.hi)
			if err := q.err(); err != nil {
				checkInvalidQuery(t, q, b.name)
				if n != b.def {
					t.Fatalf("%s=%q refused, but read as %d", b.name, v, n)
				}
				if want, aerr := strconv.Atoi(v); aerr == nil && want >= 1 && want <= b.contractHigh {
					t.Fatalf("%s=%q refused: %v", b.name, v, err)
				}
				continue
			}
			if n < 1 || n > b.contractHigh {
				t.Fatalf("%s=%q accepted as %d", b.name, v, n)
			}
			if back, err := strconv.Atoi(strconv.Itoa(n)); err != nil || back != n {
				t.Fatalf("%s=%q: %d does not round-trip", b.name, v, n)
			}
			if parsed, err := strconv.ParseInt(v, 10, 64); err != nil || parsed != int64(n) {
				t.Fatalf("%s=%q accepted as %d", b.name, v, n)
			}
		}
	})
}

// FuzzSeverities: the severity list. Accepted, every item (spaces trimmed) is LOW, MEDIUM or
// CRITICAL, in the order sent; refused, severity is named.
func FuzzSeverities(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string) {
		q := newParams(map[string]string{"severity": v})
		got := q.severities()
		items := strings.Split(v, ",")
		ok := true
		for _, item := range items {
			ok = ok && slices.Contains(contractSeverity, strings.TrimSpace(item))
		}
		if !ok {
			if q.err() == nil {
				t.Fatalf("severity=%q accepted as %v", v, got)
			}
			checkInvalidQuery(t, q, "severity")
			return
		}
		if q.err() != nil || len(got) != len(items) {
			t.Fatalf("severity=%q read as %v, %v", v, got, q.err())
		}
		for i, s := range got {
			if string(s) != strings.TrimSpace(items[i]) {
				t.Fatalf("severity=%q read as %v", v, got)
			}
		}
	})
}

// FuzzEquipmentID: an id, wherever it is read (the webhook, a path, a filter), is accepted
// exactly when the contract's pattern and length allow it.
func FuzzEquipmentID(f *testing.F) {
	f.Fuzz(func(t *testing.T, id string) {
		want := contractEquipmentID(id)
		if got := validateEquipmentID(id) == nil; got != want {
			t.Fatalf("validateEquipmentID(%q) accepts: %v, the contract: %v", id, got, want)
		}
		if got := sensor.ValidEquipmentID(id); got != want {
			t.Fatalf("sensor.ValidEquipmentID(%q) = %v, the contract: %v", id, got, want)
		}
		q := newParams(map[string]string{"equipmentId": id})
		got := q.equipmentID()
		if want != (q.err() == nil) || want && got != id || !want && got != "" {
			t.Fatalf("equipmentId=%q read as %q, %v", id, got, q.err())
		}
		if !want {
			checkInvalidQuery(t, q, "equipmentId")
		}
	})
}

// FuzzParseQuery: the split of a query string. Only allowed names are kept, each with the
// value it was first given; unknown and repeated names are reported once each; the values
// outlive the request's buffers.
func FuzzParseQuery(f *testing.F) {
	allowed := []string{"from", "to", "page", "equipmentId"}
	app := fiber.New()
	f.Fuzz(func(t *testing.T, raw string) {
		fctx := &fasthttp.RequestCtx{}
		fctx.Request.SetRequestURI("/alerts/history?" + raw)
		c := app.AcquireCtx(fctx)
		defer app.ReleaseCtx(c)
		q := parseQuery(c, allowed...)

		count := map[string]int{}
		first := map[string]string{}
		fctx.QueryArgs().VisitAll(func(k, v []byte) {
			if count[string(k)]++; count[string(k)] == 1 {
				first[string(k)] = string(v)
			}
		})
		// The request's buffers are reused: what parseQuery kept must not change.
		fctx.Request.SetRequestURI("/x?" + strings.Repeat("z", len(raw)))
		fctx.QueryArgs().VisitAll(func(k, v []byte) {})

		for name, n := range count {
			bad := !slices.Contains(allowed, name) || n > 1
			if bad != q.failed[name] {
				t.Fatalf("%q (given %d times) failed: %v", name, n, q.failed[name])
			}
			if v, ok := q.lookup(name); !bad && (!ok || v != first[name]) {
				t.Fatalf("%q read as %q (%v), sent %q", name, v, ok, first[name])
			}
		}
		for name := range q.values {
			if count[name] == 0 {
				t.Fatalf("%q read from %q", name, raw)
			}
		}
		seen := map[string]bool{}
		for _, d := range q.details {
			if seen[d.Field] {
				t.Fatalf("%q reported twice: %+v", d.Field, q.details)
			}
			seen[d.Field] = true
		}
		if len(q.details) > 0 {
			checkInvalidQuery(t, q, slices.Collect(func(yield func(string) bool) {
				for name := range count {
					if !yield(name) {
						return
					}
				}
			})...)
		}
	})
}

// fuzzService is the server over the in-memory fakes, with a few machines' readings and
// anomalies in store, answering requests in process.
type fuzzService struct {
	srv *Server
	now time.Time
}

const fuzzKey = "fuzz-key-0123456789"

// fuzzMachines are the equipment in store.
var fuzzMachines = []string{"press-01", "press_01"}

func newFuzzService(f *testing.F) *fuzzService {
	f.Helper()
	store := memory.NewStore()
	clock := memory.NewClock(fastNow)
	pub := &memory.Publisher{}
	app := memory.NewApplication(store, clock, pub, &memory.IDs{})
	pub.Deliver = func(ctx context.Context, e ports.ReadingsReceived) error {
		_, err := app.Commands.ProcessReadings.Handle(ctx, e)
		return err
	}
	srv, err := NewServer(Deps{
		Config: Config{Addr: "127.0.0.1:0", APIKeys: []string{fuzzKey}},
		App:    app, Clock: clock, Limiter: memory.NewRateLimiter(0, time.Minute, clock.Now),
		Registry: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	srv.app.Handler() // builds the routes, as listening would
	s := &fuzzService{srv: srv, now: fastNow}
	// Two machines, each with a steady signal and then spikes of every severity.
	for _, id := range fuzzMachines {
		var rs []string
		for i := range 40 {
			ts := fastNow.Add(time.Duration(i-50) * time.Minute)
			rs = append(rs, `{"equipmentId":"`+id+`","sensorType":"temperature","value":`+
				strconv.FormatFloat(70+float64(i%5-2)*0.5, 'f', -1, 64)+`,"timestamp":"`+ts.Format(time.RFC3339)+`"}`)
		}
		for i, v := range []string{"72.5", "73", "75", "90"} {
			ts := fastNow.Add(time.Duration(i-10) * time.Minute)
			rs = append(rs, `{"equipmentId":"`+id+`","sensorType":"temperature","value":`+v+`,"timestamp":"`+ts.Format(time.RFC3339)+`"}`)
		}
		if status, body := s.serve(f, fiber.MethodPost, "/webhook/sensor-data", `{"readings":[`+strings.Join(rs, ",")+`]}`, nil); status != 202 {
			f.Fatalf("seeding %s: %d %s", id, status, body)
		}
	}
	return s
}

// serve answers one request in process; headers may override the key and content type.
func (s *fuzzService) serve(tb testing.TB, method, uri, body string, headers map[string]string) (int, []byte) {
	tb.Helper()
	fctx := &fasthttp.RequestCtx{}
	fctx.Request.Header.SetMethod(method)
	fctx.Request.SetRequestURI(uri)
	fctx.Request.Header.Set("X-API-Key", fuzzKey)
	if body != "" {
		fctx.Request.Header.SetContentType("application/json")
		fctx.Request.SetBodyString(body)
	}
	for k, v := range headers {
		fctx.Request.Header.Set(k, v)
	}
	s.srv.app.Server().Handler(fctx)
	return fctx.Response.StatusCode(), bytes.Clone(fctx.Response.Body())
}

// errorOf decodes an error answer, checking that its status is a 4xx of the contract.
func errorOf(t *testing.T, status int, body []byte) errorPayload {
	t.Helper()
	if status < 400 || status >= 500 {
		t.Fatalf("status %d: %s", status, body)
	}
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("status %d with no error body (%v): %s", status, err, body)
	}
	return e.Error
}

// unparsable checks that a request target fasthttp cannot parse (a control byte in it) is
// answered 400 bad_request, and reports whether uri is one.
func unparsable(t *testing.T, uri string, status int, body []byte) bool {
	t.Helper()
	var u fasthttp.URI
	if u.Parse(nil, []byte(uri)) == nil {
		return false
	}
	if e := errorOf(t, status, body); status != 400 || e.Code != codeBadRequest {
		t.Fatalf("%q: %d %s, want 400 bad_request", uri, status, body)
	}
	return true
}

// queryArgs splits the query string of uri (which parses) as the server does (a '#' ends
// it, say), and reports whether any name is unknown or repeated.
func queryArgs(uri string, allowed ...string) (values map[string]string, bad bool) {
	var u fasthttp.URI
	_ = u.Parse(nil, []byte(uri))
	values = map[string]string{}
	u.QueryArgs().VisitAll(func(k, v []byte) {
		name := string(k)
		if _, seen := values[name]; seen || !slices.Contains(allowed, name) {
			bad = true
		}
		values[name] = string(v)
	})
	return values, bad
}

// intIn reads an optional whole number in [lo, hi], def when absent.
func intIn(values map[string]string, name string, def, lo, hi int) (int, bool) {
	v, ok := values[name]
	if !ok {
		return def, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= lo && n <= hi
}

// oneOf reads an optional value of a set, def when absent.
func oneOf(values map[string]string, name, def string, set ...string) (string, bool) {
	v, ok := values[name]
	if !ok {
		return def, true
	}
	return v, slices.Contains(set, v)
}

// window reads from and to as API.md has them: defaults the span before now, or before to.
func (s *fuzzService) window(values map[string]string, span time.Duration) (from, to time.Time, ok bool) {
	from, to, ok = s.now.Add(-span), s.now, true
	if v, given := values["to"]; given {
		to, ok = contractTime(v)
		from = to.Add(-span)
	}
	if v, given := values["from"]; given {
		var okFrom bool
		from, okFrom = contractTime(v)
		ok = ok && okFrom
	}
	// A range whose start no answer could write (before year 0) is refused.
	return from, to, ok && from.Before(to) && !from.Before(firstWritableTime)
}

func answeredTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(timeLayout, s)
	if err != nil {
		t.Fatalf("answered time %q: %v", s, err)
	}
	return ts
}

// FuzzSensorHistoryQuery: GET /equipment/:id/sensor-history. The query is accepted exactly
// when API.md allows it; then the points are of the sensor type asked, at most limit, in
// [from, to) and in time order, and an average lies between its bucket's min and max.
func FuzzSensorHistoryQuery(f *testing.F) {
	s := newFuzzService(f)
	f.Fuzz(func(t *testing.T, raw string) {
		uri := "/equipment/press-01/sensor-history?" + raw
		status, body := s.serve(t, fiber.MethodGet, uri, "", nil)
		if unparsable(t, uri, status, body) {
			return
		}

		values, bad := queryArgs(uri, "sensorType", "from", "to", "aggregation", "interval", "limit")
		from, to, ok := s.window(values, time.Hour)
		typ, okType := values["sensorType"]
		ok = ok && !bad && (!okType || slices.Contains(contractTypes, typ))
		agg, okAgg := oneOf(values, "aggregation", "raw", "raw", "avg")
		limit, okLimit := intIn(values, "limit", 1000, 1, 10000)
		ok = ok && okAgg && okLimit
		if v, given := values["interval"]; given {
			d, err := time.ParseDuration(v)
			ok = ok && agg == "avg" && err == nil && d >= time.Second
		}
		if !ok {
			if e := errorOf(t, status, body); status != 400 || e.Code != codeInvalidQuery {
				t.Fatalf("%q: %d %s, want 400 invalid_query", raw, status, body)
			}
			return
		}
		if status != 200 {
			t.Fatalf("%q: %d %s, want 200", raw, status, body)
		}
		var res struct {
			Aggregation string `json:"aggregation"`
			Interval    string `json:"interval"`
			Points      []struct {
				SensorType string   `json:"sensorType"`
				Timestamp  string   `json:"timestamp"`
				Bucket     string   `json:"bucket"`
				Avg        *float64 `json:"avg"`
				Min        float64  `json:"min"`
				Max        float64  `json:"max"`
			} `json:"points"`
		}
		if err := json.Unmarshal(body, &res); err != nil || res.Aggregation != agg {
			t.Fatalf("%q: %s (%v)", raw, body, err)
		}
		if len(res.Points) > limit {
			t.Fatalf("%q: %d points, limit %d", raw, len(res.Points), limit)
		}
		if agg == "avg" && res.Interval != cmpOr(values["interval"], "1m") {
			t.Fatalf("%q: interval %q", raw, res.Interval)
		}
		var last time.Time
		for _, p := range res.Points {
			ts := p.Timestamp
			if agg == "avg" {
				ts = p.Bucket
				if p.Avg == nil || *p.Avg < p.Min-1e-9*math.Abs(p.Min) || *p.Avg > p.Max+1e-9*math.Abs(p.Max) {
					t.Fatalf("%q: average outside [min, max]: %s", raw, body)
				}
			}
			at := answeredTime(t, ts)
			if at.Before(last) || okType && p.SensorType != typ {
				t.Fatalf("%q: points out of order or of another type: %s", raw, body)
			}
			last = at
			if agg == "raw" && (at.Before(from.Truncate(time.Millisecond)) || !at.Before(to)) {
				t.Fatalf("%q: point at %v outside [%v, %v)", raw, at, from, to)
			}
		}
	})
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// pagedQuery is what a query of a paged list (alert history, alarms) asks for, as the
// contract reads it.
type pagedQuery struct {
	id, typ        string
	hasID, hasType bool
	lists          map[string][]string // the comma-separated filters given, item by item
	from, to       time.Time
	hasFrom, hasTo bool
	page, pageSize int
	sort           string
}

// contractPagedQuery reads values as the contract has them, with lists the comma-separated
// filters and their allowed items; ok is false when the contract refuses the query.
func contractPagedQuery(values map[string]string, lists map[string][]string) (q pagedQuery, ok bool) {
	ok = true
	q.id, q.hasID = values["equipmentId"]
	ok = ok && (!q.hasID || contractEquipmentID(q.id))
	q.typ, q.hasType = values["sensorType"]
	ok = ok && (!q.hasType || slices.Contains(contractTypes, q.typ))
	q.lists = map[string][]string{}
	for name, allowed := range lists {
		v, given := values[name]
		if !given {
			continue
		}
		for item := range strings.SplitSeq(v, ",") {
			q.lists[name] = append(q.lists[name], strings.TrimSpace(item))
			ok = ok && slices.Contains(allowed, strings.TrimSpace(item))
		}
	}
	okFrom, okTo := true, true
	if v, given := values["from"]; given {
		q.from, okFrom = contractTime(v)
	}
	if v, given := values["to"]; given {
		q.to, okTo = contractTime(v)
	}
	_, q.hasFrom = values["from"]
	_, q.hasTo = values["to"]
	ok = ok && okFrom && okTo && (!q.hasFrom || !q.hasTo || q.from.Before(q.to))
	var okPage, okSize, okSort bool
	q.page, okPage = intIn(values, "page", 1, 1, 1_000_000)
	q.pageSize, okSize = intIn(values, "pageSize", 50, 1, 500)
	q.sort, okSort = oneOf(values, "sort", "desc", "asc", "desc")
	return q, ok && okPage && okSize && okSort
}

// pagedItem is one item of a page, as the filters see it.
type pagedItem struct {
	equipmentID, sensorType string
	at                      time.Time         // the time the range and the order are on
	lists                   map[string]string // its value for each list filter
}

// check fails the test unless the page is the one asked for and every item matches the
// filters, in the order asked.
func (q pagedQuery) check(t *testing.T, raw string, body []byte, p pagination, items []pagedItem) {
	t.Helper()
	if p.Page != q.page || p.PageSize != q.pageSize || len(items) > q.pageSize || p.Total < 0 ||
		p.TotalPages != (p.Total+int64(q.pageSize)-1)/int64(q.pageSize) {
		t.Fatalf("%q: pagination %+v with %d items, asked page %d of %d", raw, p, len(items), q.page, q.pageSize)
	}
	var last time.Time
	for i, it := range items {
		outside := q.hasID && it.equipmentID != q.id || q.hasType && it.sensorType != q.typ ||
			q.hasFrom && it.at.Before(q.from.Truncate(time.Millisecond)) || q.hasTo && !it.at.Before(q.to)
		for name, want := range q.lists {
			outside = outside || !slices.Contains(want, it.lists[name])
		}
		switch {
		case outside:
			t.Fatalf("%q: item outside the filters: %+v", raw, it)
		case i > 0 && (q.sort == "desc" && it.at.After(last) || q.sort == "asc" && it.at.Before(last)):
			t.Fatalf("%q: items not in %s order: %s", raw, q.sort, body)
		}
		last = it.at
	}
}

// servePaged asks uri and returns the answer when the contract accepts the query; it checks
// the refusal and returns false when it does not.
func (s *fuzzService) servePaged(t *testing.T, raw, uri string, lists map[string][]string, allowed ...string) (pagedQuery, []byte, bool) {
	t.Helper()
	status, body := s.serve(t, fiber.MethodGet, uri, "", nil)
	if unparsable(t, uri, status, body) {
		return pagedQuery{}, nil, false
	}
	values, bad := queryArgs(uri, allowed...)
	q, ok := contractPagedQuery(values, lists)
	if bad || !ok {
		if e := errorOf(t, status, body); status != 400 || e.Code != codeInvalidQuery {
			t.Fatalf("%q: %d %s, want 400 invalid_query", raw, status, body)
		}
		return pagedQuery{}, nil, false
	}
	if status != 200 {
		t.Fatalf("%q: %d %s, want 200", raw, status, body)
	}
	return q, body, true
}

// FuzzAlertHistoryQuery: GET /alerts/history. The query is accepted exactly when API.md
// allows it; then the page and page size are those asked (within range), a page holds at
// most pageSize alerts, each matching the filters, in the order asked.
func FuzzAlertHistoryQuery(f *testing.F) {
	s := newFuzzService(f)
	f.Fuzz(func(t *testing.T, raw string) {
		q, body, ok := s.servePaged(t, raw, "/alerts/history?"+raw, map[string][]string{"severity": contractSeverity},
			"equipmentId", "sensorType", "severity", "from", "to", "page", "pageSize", "sort")
		if !ok {
			return
		}
		var res alertPage
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatalf("%q: %s (%v)", raw, body, err)
		}
		items := make([]pagedItem, len(res.Data))
		for i, a := range res.Data {
			items[i] = pagedItem{equipmentID: a.EquipmentID, sensorType: a.SensorType, at: answeredTime(t, a.Timestamp),
				lists: map[string]string{"severity": a.Severity}}
		}
		q.check(t, raw, body, res.Pagination, items)
	})
}

// FuzzAlarmListQuery: GET /alarms. The query is accepted exactly when its parameters keep
// the rules of the alert history's, and state is a list of alarm states; then the page holds
// at most pageSize alarms, each matching the filters, in the order asked.
func FuzzAlarmListQuery(f *testing.F) {
	s := newFuzzService(f)
	lists := map[string][]string{"severity": contractSeverity, "state": {"ACTIVE", "ACKNOWLEDGED", "CLEARED"}}
	f.Fuzz(func(t *testing.T, raw string) {
		q, body, ok := s.servePaged(t, raw, "/alarms?"+raw, lists,
			"equipmentId", "sensorType", "severity", "state", "from", "to", "page", "pageSize", "sort")
		if !ok {
			return
		}
		var res alarmPage
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatalf("%q: %s (%v)", raw, body, err)
		}
		items := make([]pagedItem, len(res.Data))
		for i, a := range res.Data {
			items[i] = pagedItem{equipmentID: a.EquipmentID, sensorType: a.SensorType, at: answeredTime(t, a.OpenedAt),
				lists: map[string]string{"severity": a.Severity, "state": a.State}}
		}
		q.check(t, raw, body, res.Pagination, items)
	})
}

// FuzzProductionMetricsQuery: GET /metrics/production. The query is accepted exactly when
// API.md allows it and the range holds at most 10,000 buckets; then from and to are echoed
// as asked, and the series has one entry per bucket, consecutive, covering [from, to).
func FuzzProductionMetricsQuery(f *testing.F) {
	s := newFuzzService(f)
	f.Fuzz(func(t *testing.T, raw string) {
		uri := "/metrics/production?" + raw
		status, body := s.serve(t, fiber.MethodGet, uri, "", nil)
		if unparsable(t, uri, status, body) {
			return
		}

		values, bad := queryArgs(uri, "from", "to", "bucket", "equipmentId")
		from, to, ok := s.window(values, 24*time.Hour)
		bucket, okBucket := oneOf(values, "bucket", "hour", "hour", "day")
		id, hasID := values["equipmentId"]
		ok = ok && !bad && okBucket && (!hasID || contractEquipmentID(id))
		size := map[string]time.Duration{"hour": time.Hour, "day": 24 * time.Hour}[bucket]
		var first time.Time
		var buckets int64
		if ok {
			first = from.Truncate(size) // whole hours and days: the same since year 1 as since 1970
			lastStart := to.Add(-time.Nanosecond).Truncate(size)
			buckets = (lastStart.Unix()-first.Unix())/int64(size/time.Second) + 1
			ok = buckets <= 10000
		}
		if !ok {
			if e := errorOf(t, status, body); status != 400 || e.Code != codeInvalidQuery {
				t.Fatalf("%q: %d %s, want 400 invalid_query", raw, status, body)
			}
			return
		}
		if hasID && !slices.Contains(fuzzMachines, id) {
			if e := errorOf(t, status, body); status != 404 || e.Code != codeNotFound {
				t.Fatalf("%q: %d %s, want 404 for unknown equipment", raw, status, body)
			}
			return
		}
		if status != 200 {
			t.Fatalf("%q: %d %s, want 200", raw, status, body)
		}
		var res productionResponse
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatalf("%q: %s (%v)", raw, body, err)
		}
		if res.From != formatTime(from) || res.To != formatTime(to) || res.Bucket != bucket {
			t.Fatalf("%q: echoed %s..%s by %s, asked %v..%v by %s", raw, res.From, res.To, res.Bucket, from, to, bucket)
		}
		series := res.EventsProcessed.Series
		if int64(len(series)) != buckets {
			t.Fatalf("%q: %d buckets, want %d", raw, len(series), buckets)
		}
		for i, b := range series {
			if at := answeredTime(t, b.Bucket); !at.Equal(first.Add(time.Duration(i)*size)) || b.Count < 0 {
				t.Fatalf("%q: bucket %d is %+v, want %v", raw, i, b, first.Add(time.Duration(i)*size))
			}
		}
		if math.IsNaN(res.AnomalyRate) || res.AnomalyRate < 0 {
			t.Fatalf("%q: anomalyRate %v", raw, res.AnomalyRate)
		}
	})
}

// FuzzEquipmentPath: the :id of the equipment routes. A path id is taken exactly when the
// contract's pattern allows it (then the equipment is found, or 404, or registered by a
// PUT); other ids are a 400 validation_failed naming id; nothing is ever a 5xx.
func FuzzEquipmentPath(f *testing.F) {
	s := newFuzzService(f)
	f.Fuzz(func(t *testing.T, id string, put bool) {
		// Only ids that stay one raw path segment are judged; the rest must merely not fail.
		plain := !strings.ContainsAny(id, "/?#% \t\r\n") && id != "." && id != ".." && utf8.ValidString(id)
		for i := range len(id) {
			plain = plain && id[i] > ' ' && id[i] < 0x7f
		}
		uri := "/equipment/" + id + "/status"
		method, body := fiber.MethodGet, ""
		if put {
			uri, method, body = "/equipment/"+id, fiber.MethodPut, `{"name":"fuzzed"}`
		}
		status, answer := s.serve(t, method, uri, body, nil)
		if status >= 500 || status < 200 {
			t.Fatalf("%s %q: %d %s", method, uri, status, answer)
		}
		if status >= 400 {
			e := errorOf(t, status, answer)
			if plain && status == 400 && (e.Code != codeValidationFailed || len(e.Details) != 1 || e.Details[0].Field != "id") {
				t.Fatalf("%s %q: %s, want validation_failed naming id", method, uri, answer)
			}
		}
		if !plain || id == "" {
			return
		}
		valid := contractEquipmentID(id)
		switch {
		case !valid && status != 400:
			t.Fatalf("%s %q: %d %s, want 400", method, uri, status, answer)
		case valid && put && status != 200:
			t.Fatalf("%s %q: %d %s, want 200", method, uri, status, answer)
		case valid && !put && status != 200 && status != 404:
			t.Fatalf("%s %q: %d %s, want 200 or 404", method, uri, status, answer)
		case valid && status == 200:
			var got struct {
				ID          string `json:"id"`
				EquipmentID string `json:"equipmentId"`
			}
			if err := json.Unmarshal(answer, &got); err != nil || cmpOr(got.ID, got.EquipmentID) != id {
				t.Fatalf("%s %q answered another id: %s", method, uri, answer)
			}
		}
	})
}

// FuzzRequestHeaders: the headers the service reads. A webhook request is accepted only with
// a key that is one of the configured ones (spaces trimmed; X-API-Key or a bearer token) and
// a JSON content type; the request id is echoed only when it is 1 to 128 characters of
// [A-Za-z0-9._:-], and otherwise replaced by a fresh one.
func FuzzRequestHeaders(f *testing.F) {
	s := newFuzzService(f)
	body := `{"equipmentId":"press-01","sensorType":"voltage","value":1}`
	f.Fuzz(func(t *testing.T, requestID, apiKey, authorization, contentType string) {
		fctx := &fasthttp.RequestCtx{}
		fctx.Request.Header.SetMethod(fiber.MethodPost)
		fctx.Request.SetRequestURI("/webhook/sensor-data")
		fctx.Request.Header.Set("X-Request-ID", requestID)
		fctx.Request.Header.Set("X-API-Key", apiKey)
		fctx.Request.Header.Set("Authorization", authorization)
		fctx.Request.Header.SetContentType(contentType)
		fctx.Request.SetBodyString(body)
		// What the server reads back of the headers as set (fasthttp drops some bytes).
		sentID := string(fctx.Request.Header.Peek("X-Request-ID"))
		sentKey := strings.TrimSpace(string(fctx.Request.Header.Peek("X-API-Key")))
		sentAuth := strings.TrimSpace(string(fctx.Request.Header.Peek("Authorization")))
		sentType := string(fctx.Request.Header.ContentType())
		s.srv.app.Server().Handler(fctx)
		status, answer := fctx.Response.StatusCode(), fctx.Response.Body()

		keyOK := sentKey == fuzzKey
		if sentKey == "" && len(sentAuth) > 7 && strings.EqualFold(sentAuth[:7], "bearer ") {
			keyOK = strings.TrimSpace(sentAuth[7:]) == fuzzKey
		}
		switch {
		case !keyOK:
			if status != 401 || errorOf(t, status, answer).Code != codeUnauthorized {
				t.Fatalf("key %q / %q: %d %s, want 401", sentKey, sentAuth, status, answer)
			}
		case status == 202:
			mt, _, _ := strings.Cut(sentType, ";")
			if !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
				t.Fatalf("Content-Type %q accepted", sentType)
			}
		default:
			if e := errorOf(t, status, answer); status != 415 || e.Code != codeUnsupportedMediaType {
				t.Fatalf("Content-Type %q: %d %s", sentType, status, answer)
			}
		}
		got := string(fctx.Response.Header.Peek("X-Request-ID"))
		validID := contractRequestID.MatchString(sentID)
		if validID && got != sentID || !validID && !uuidPattern.MatchString(got) {
			t.Fatalf("X-Request-ID %q answered as %q", sentID, got)
		}
	})
}
