package e2e

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every error code of the contract, with nothing stored for any refused request.
func TestErrorCodes(t *testing.T) {
	eachStorage(t, func(t *testing.T, newConfig configFunc) {
		s := start(t, newConfig(map[string]string{"PLM_MAX_BODY_BYTES": "4096"}), t0)
		good := reading("press-01", "temperature", 70, t0)
		raw := `{"equipmentId":"press-01","sensorType":"temperature","value":70}`

		bad := normal("press-01", 10, t0.Add(-time.Minute))
		bad[7]["sensorType"] = "humidity"
		bad[3]["equipmentId"] = "-bad"

		cases := []struct {
			name    string
			method  string
			path    string
			body    any
			headers map[string]string
			status  int
			code    string
		}{
			{"no key", "POST", "/webhook/sensor-data", good, map[string]string{"X-API-Key": ""}, 401, "unauthorized"},
			{"wrong key", "POST", "/webhook/sensor-data", good, map[string]string{"X-API-Key": "not-the-key-at-all"}, 401, "unauthorized"},
			{"wrong bearer", "GET", "/equipment", nil, map[string]string{"X-API-Key": "", "Authorization": "Bearer nope-nope-nope-nope"}, 401, "unauthorized"},
			{"not json", "POST", "/webhook/sensor-data", "{not json", nil, 400, "malformed_json"},
			{"value is a string", "POST", "/webhook/sensor-data", `{"equipmentId":"a","sensorType":"voltage","value":"12"}`, nil, 400, "malformed_json"},
			{"value overflows", "POST", "/webhook/sensor-data", `{"equipmentId":"a","sensorType":"voltage","value":1e309}`, nil, 400, "validation_failed"},
			{"missing value", "POST", "/webhook/sensor-data", `{"equipmentId":"a","sensorType":"voltage"}`, nil, 400, "validation_failed"},
			{"batch with bad readings", "POST", "/webhook/sensor-data", batch(bad), nil, 400, "validation_failed"},
			{"empty batch", "POST", "/webhook/sensor-data", `{"readings":[]}`, nil, 400, "validation_failed"},
			{"far future", "POST", "/webhook/sensor-data", reading("press-01", "voltage", 1, t0.Add(6*time.Minute)), nil, 400, "validation_failed"},
			{"wrong content type", "POST", "/webhook/sensor-data", raw, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
			{"too large", "POST", "/webhook/sensor-data", `{"readings":[` + strings.Repeat(raw+",", 80) + raw + `]}`, nil, 413, "payload_too_large"},
			{"pageSize 0", "GET", "/alerts/history?pageSize=0", nil, nil, 400, "invalid_query"},
			{"unknown severity", "GET", "/alerts/history?severity=LOW,HUGE", nil, nil, 400, "invalid_query"},
			{"from after to", "GET", "/alerts/history?from=" + url.QueryEscape(ms(t0)) + "&to=" + url.QueryEscape(ms(t0.Add(-time.Hour))), nil, nil, 400, "invalid_query"},
			{"bad aggregation", "GET", "/equipment/press-01/sensor-history?aggregation=median", nil, nil, 400, "invalid_query"},
			{"bad bucket", "GET", "/metrics/production?bucket=week", nil, nil, 400, "invalid_query"},
			{"unknown equipment", "GET", "/equipment/nope/status", nil, nil, 404, "not_found"},
			{"unknown route", "GET", "/nowhere", nil, nil, 404, "not_found"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := s.do(c.method, c.path, c.body, c.headers)
				mustStatus(t, r, c.status)
				if got := r.errorCode(t); got != c.code {
					t.Fatalf("code %q, want %q: %s", got, c.code, r.body)
				}
			})
		}

		// The batch names each bad reading by index.
		r := s.post(batch(bad))
		for _, want := range []string{"readings[3].equipmentId", "readings[7].sensorType"} {
			if !strings.Contains(string(r.body), want) {
				t.Errorf("details lack %s: %s", want, r.body)
			}
		}
		// Nothing of any refused request was stored.
		if list := s.get("/equipment").json(t)["data"].([]any); len(list) != 0 {
			t.Fatalf("refused requests stored equipment: %v", list)
		}
	})
}

// A batch of 1000 readings with one bad value is refused whole, naming its index.
func TestBatchOf1000WithOneBadValue(t *testing.T) {
	eachStorage(t, func(t *testing.T, newConfig configFunc) {
		s := start(t, newConfig(nil), t0)
		rs := make([]map[string]any, 1000)
		for i := range rs {
			rs[i] = reading("line-"+strconv.Itoa(i%7), "pressure", 2.5, t0.Add(-time.Duration(i)*time.Millisecond))
		}
		body := batch(rs)
		raw := strings.Replace(mustJSON(t, body), `"value":2.5`, `"value":"2.5"`, 1) // one string value
		r := s.post(raw)
		mustStatus(t, r, 400)
		if !strings.Contains(string(r.body), "readings[0].value") {
			t.Errorf("details do not name readings[0].value: %s", r.body)
		}
		rs[537]["value"] = nil
		r = s.post(batch(rs))
		mustStatus(t, r, 400)
		if r.errorCode(t) != "validation_failed" || !strings.Contains(string(r.body), "readings[537].value") {
			t.Fatalf("want validation_failed naming readings[537].value: %s", r.body)
		}
		if list := s.get("/equipment").json(t)["data"].([]any); len(list) != 0 {
			t.Fatalf("a refused batch stored equipment: %v", list)
		}
		rs[537]["value"] = 0.0 // zero is a value like any other
		r = s.post(batch(rs))
		mustStatus(t, r, 202)
		if r.json(t)["accepted"] != 1000.0 {
			t.Fatalf("accepted = %v", r.json(t)["accepted"])
		}
	})
}

func TestRateLimit(t *testing.T) {
	eachStorage(t, func(t *testing.T, newConfig configFunc) {
		cfg := newConfig(map[string]string{"PLM_RATE_LIMIT": "3/m"})
		shared := !cfg.Queue.Embedded() // kept in Redis, on the Redis server's clock
		if shared {
			cfg = newConfig(map[string]string{"PLM_RATE_LIMIT": "3/s"})
		}
		s := start(t, cfg, t0)
		for range 3 {
			mustStatus(t, s.get("/equipment"), 200)
		}
		r := s.get("/equipment")
		mustStatus(t, r, 429)
		if r.errorCode(t) != "rate_limited" {
			t.Fatalf("code = %s", r.errorCode(t))
		}
		if !shared {
			if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 20 {
				t.Fatalf("Retry-After = %q, want 1..20 s", r.header.Get("Retry-After"))
			}
			s.clock.Advance(21 * time.Second) // one request's worth of tokens back
			mustStatus(t, s.get("/equipment"), 200)
			return
		}
		if ra := r.header.Get("Retry-After"); ra != "1" {
			t.Fatalf("Retry-After = %q, want 1 (s)", ra)
		}
		// Another process (here: another service on the same Redis) shares the budget.
		other := start(t, cfg, t0)
		mustStatus(t, other.get("/equipment"), 429)
		time.Sleep(400 * time.Millisecond) // a third of a second gives one token back
		mustStatus(t, other.get("/equipment"), 200)
	})
}
