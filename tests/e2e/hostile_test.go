package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileTimeout bounds every request of these tests: no input may hang the service.
const hostileTimeout = 20 * time.Second

// send is service.do with a client timeout and without keep-alive (a connection left open
// would count against PLM_MAX_CONNS); body is sent as it is. A body over 1 MiB goes over a
// raw connection, read while it is written: the server answers 413 without reading it, and
// closes, which a client still writing may see only as a reset.
func (s *service) send(t *testing.T, method, path, body string, headers map[string]string) response {
	t.Helper()
	if len(body) > 1<<20 {
		return sendRaw(t, s.addr(), method, path, body, headers)
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-API-Key", apiKey)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: hostileTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %.80s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// sendRaw writes a JSON request on a new connection, reading the answer as it writes.
func sendRaw(t *testing.T, addr, method, path, body string, headers map[string]string) response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, hostileTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(hostileTimeout))
	var head strings.Builder
	head.WriteString(method + " " + path + " HTTP/1.1\r\nHost: plm\r\nConnection: close\r\n")
	head.WriteString("Content-Type: application/json\r\nX-API-Key: " + apiKey + "\r\n")
	for k, v := range headers {
		head.WriteString(k + ": " + v + "\r\n")
	}
	head.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	go func() { _, _ = io.WriteString(conn, head.String()+body) }() // fails once the server closes
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %.80s: no answer: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %.80s: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// addr is the service's host:port.
func (s *service) addr() string { return strings.TrimPrefix(s.base, "http://") }

// hostileCase is one request and the refusal it must get.
type hostileCase struct {
	name    string
	method  string
	path    string
	body    string
	headers map[string]string
	status  int
	code    string
}

const webhook = "/webhook/sensor-data"

// hostileRequests are refused whatever the storage, and leave nothing behind.
func hostileRequests() []hostileCase {
	const fields = `"equipmentId":"press-01","sensorType":"voltage","value":1`
	deep := strings.Repeat("[", 100_000)
	century := "from=1926-11-27T08:00:00Z&to=2026-11-27T08:00:00Z"
	post := func(name, body string, status int, code string) hostileCase {
		return hostileCase{name: name, method: http.MethodPost, path: webhook, body: body, status: status, code: code}
	}
	get := func(name, path string, status int, code string) hostileCase {
		return hostileCase{name: name, method: http.MethodGet, path: path, status: status, code: code}
	}
	return []hostileCase{
		// Shape.
		post("100k nested arrays", deep, 400, "malformed_json"),
		post("100k nested readings", `{"readings":`+deep, 400, "malformed_json"),
		post("100k nested unknown field", `{`+fields+`,"extra":`+deep+strings.Repeat("]", 100_000)+`}`, 400, "malformed_json"),
		post("100k nested objects", strings.Repeat(`{"a":`, 100_000)+`1`+strings.Repeat("}", 100_000), 400, "malformed_json"),
		post("duplicate key", `{"equipmentId":"-bad","equipmentId":"press-01","sensorType":"voltage","value":1}`, 400, "malformed_json"),
		post("duplicate key in another case", `{`+fields+`,"EquipmentID":"press-02"}`, 400, "malformed_json"),
		post("duplicate key in a batch reading", `{"readings":[{`+fields+`,"value":2}]}`, 400, "malformed_json"),
		post("duplicate readings", `{"readings":[{"equipmentId":"-bad"}],"readings":[{`+fields+`}]}`, 400, "malformed_json"),
		// Numbers.
		post("1e309", `{"equipmentId":"press-01","sensorType":"voltage","value":1e309}`, 400, "validation_failed"),
		post("-1e309", `{"equipmentId":"press-01","sensorType":"voltage","value":-1e309}`, 400, "validation_failed"),
		post("400-digit integer", `{"equipmentId":"press-01","sensorType":"voltage","value":`+strings.Repeat("9", 400)+`}`, 400, "validation_failed"),
		post("400-digit integer in a batch", `{"readings":[{`+fields+`},{"equipmentId":"press-01","sensorType":"voltage","value":-`+strings.Repeat("7", 400)+`}]}`, 400, "validation_failed"),
		post("NaN literal", `{"equipmentId":"press-01","sensorType":"voltage","value":NaN}`, 400, "malformed_json"),
		post("Infinity literal", `{"equipmentId":"press-01","sensorType":"voltage","value":Infinity}`, 400, "malformed_json"),
		post("-Infinity literal", `{"equipmentId":"press-01","sensorType":"voltage","value":-Infinity}`, 400, "malformed_json"),
		post("NaN string", `{"equipmentId":"press-01","sensorType":"voltage","value":"NaN"}`, 400, "malformed_json"),
		// Size.
		post("10 MB string", `{`+fields+`,"unit":"`+strings.Repeat("x", 10<<20)+`"}`, 413, "payload_too_large"),
		{name: "10 MB metadata", method: http.MethodPut, path: "/equipment/press-01", body: `{"name":"` + strings.Repeat("x", 10<<20) + `"}`, status: 413, code: "payload_too_large"},
		// Text.
		post("invalid UTF-8 in equipmentId", "{\"equipmentId\":\"press-\xff\xfe01\",\"sensorType\":\"voltage\",\"value\":1}", 400, "validation_failed"),
		post("invalid UTF-8 in sensorType", "{\"equipmentId\":\"press-01\",\"sensorType\":\"volt\xc3\x28age\",\"value\":1}", 400, "validation_failed"),
		post("NUL in equipmentId", `{"equipmentId":"press\u0000-01","sensorType":"voltage","value":1}`, 400, "validation_failed"),
		post("raw NUL byte in a string", "{\"equipmentId\":\"press\x00-01\",\"sensorType\":\"voltage\",\"value\":1}", 400, "malformed_json"),
		post("NUL in unit", `{`+fields+`,"unit":"a\u0000b"}`, 400, "validation_failed"),
		post("NUL in readingId", `{`+fields+`,"readingId":"r\u0000"}`, 400, "validation_failed"),
		{name: "NUL in metadata", method: http.MethodPut, path: "/equipment/press-01", body: `{"name":"a\u0000b"}`, status: 400, code: "validation_failed"},
		post("SQL in equipmentId", `{"equipmentId":"x'); DROP TABLE sensor_readings;--","sensorType":"voltage","value":1}`, 400, "validation_failed"),
		post("LIKE wildcard equipmentId", `{"equipmentId":"%","sensorType":"voltage","value":1}`, 400, "validation_failed"),
		post("backslash equipmentId", `{"equipmentId":"a\\\\b","sensorType":"voltage","value":1}`, 400, "validation_failed"),
		post("SQL in sensorType", `{"equipmentId":"press-01","sensorType":"voltage' OR '1'='1","value":1}`, 400, "validation_failed"),
		// Path ids.
		get("SQL in path id", "/equipment/x%27%3B%20DROP%20TABLE%20equipment%3B--/status", 400, "validation_failed"),
		get("quote in path id", "/equipment/press'01", 400, "validation_failed"),
		get("percent in path id", "/equipment/%25/status", 400, "validation_failed"),
		get("backslash in path id", "/equipment/%5C%5C/sensor-history", 400, "validation_failed"),
		get("invalid UTF-8 in path id", "/equipment/%FF%FE/status", 400, "validation_failed"),
		get("NUL in path id", "/equipment/a%00b/status", 400, "validation_failed"),
		get("65-character path id", "/equipment/"+strings.Repeat("a", 65)+"/status", 400, "validation_failed"),
		{name: "SQL in the id of a PUT", method: http.MethodPut, path: "/equipment/a%27%3B--", body: `{"name":"x"}`, status: 400, code: "validation_failed"},
		get("underscore is no wildcard", "/equipment/press_01/status", 404, "not_found"),
		// Query filters.
		get("SQL in equipmentId filter", "/alerts/history?equipmentId=x%27%3B%20DROP%20TABLE%20anomalies%3B--", 400, "invalid_query"),
		get("percent in equipmentId filter", "/alerts/history?equipmentId=%25", 400, "invalid_query"),
		get("backslash in equipmentId filter", "/alerts/history?equipmentId=%5C", 400, "invalid_query"),
		get("NUL in equipmentId filter", "/alerts/history?equipmentId=a%00", 400, "invalid_query"),
		get("invalid UTF-8 in equipmentId filter", "/alerts/history?equipmentId=%FF", 400, "invalid_query"),
		get("SQL in sensorType filter", "/alerts/history?sensorType=temperature%27%20OR%20%271%27%3D%271", 400, "invalid_query"),
		get("SQL in severity", "/alerts/history?severity=LOW%27--", 400, "invalid_query"),
		get("SQL in sort", "/alerts/history?sort=asc%3B%20DROP%20TABLE%20anomalies", 400, "invalid_query"),
		get("quote in metrics equipmentId", "/metrics/production?equipmentId=%27", 400, "invalid_query"),
		get("percent in history sensorType", "/equipment/press-01/sensor-history?sensorType=%25", 400, "invalid_query"),
		get("repeated parameter", "/alerts/history?page=1&page=2", 400, "invalid_query"),
		// Pages and limits.
		get("page -1", "/alerts/history?page=-1", 400, "invalid_query"),
		get("page 0", "/alerts/history?page=0", 400, "invalid_query"),
		get("page 20 digits", "/alerts/history?page=99999999999999999999", 400, "invalid_query"),
		get("page above the cap", "/alerts/history?page=1000001", 400, "invalid_query"),
		get("page 1e3", "/alerts/history?page=1e3", 400, "invalid_query"),
		get("page empty", "/alerts/history?page=", 400, "invalid_query"),
		get("pageSize -1", "/alerts/history?pageSize=-1", 400, "invalid_query"),
		get("pageSize 501", "/alerts/history?pageSize=501", 400, "invalid_query"),
		get("pageSize 20 digits", "/alerts/history?pageSize=99999999999999999999", 400, "invalid_query"),
		get("limit -1", "/equipment/press-01/sensor-history?limit=-1", 400, "invalid_query"),
		get("limit 10001", "/equipment/press-01/sensor-history?limit=10001", 400, "invalid_query"),
		get("limit 20 digits", "/equipment/press-01/sensor-history?limit=99999999999999999999", 400, "invalid_query"),
		// Times and durations.
		get("century of hours", "/metrics/production?"+century, 400, "invalid_query"),
		get("century of days", "/metrics/production?"+century+"&bucket=day", 400, "invalid_query"),
		get("year 0 to 9999 of days", "/metrics/production?from=0000-01-01T00:00:00Z&to=9999-12-31T23:59:59Z&bucket=day", 400, "invalid_query"),
		get("from the zero time after to", "/metrics/production?from=0001-01-01T00:00:00Z&to=0000-12-30T00:00:00Z&bucket=day", 400, "invalid_query"),
		get("alerts from the zero time after to", "/alerts/history?from=0001-01-01T00:00:00Z&to=0000-12-30T00:00:00Z", 400, "invalid_query"),
		get("history from the zero time after to", "/equipment/press-01/sensor-history?from=0001-01-01T00:00:00Z&to=0000-12-30T00:00:00Z", 400, "invalid_query"),
		get("from NaN", "/alerts/history?from=NaN", 400, "invalid_query"),
		get("to 1e309", "/metrics/production?to=1e309", 400, "invalid_query"),
		get("month 13", "/alerts/history?from=2026-13-45T99:99:99Z", 400, "invalid_query"),
		get("no offset", "/alerts/history?from=2026-11-27T08:00:00", 400, "invalid_query"),
		get("interval 1ns", "/equipment/press-01/sensor-history?aggregation=avg&interval=1ns", 400, "invalid_query"),
		get("interval -1s", "/equipment/press-01/sensor-history?aggregation=avg&interval=-1s", 400, "invalid_query"),
		get("interval overflows", "/equipment/press-01/sensor-history?aggregation=avg&interval=99999999999h", 400, "invalid_query"),
		get("interval NaN", "/equipment/press-01/sensor-history?aggregation=avg&interval=NaNs", 400, "invalid_query"),
		// Request ids that are not echoed (the rest of the answer is checked below).
		{name: "8000-character request id", method: http.MethodGet, path: "/equipment", headers: map[string]string{"X-Request-ID": strings.Repeat("r", 8000)}, status: 431, code: "headers_too_large"},
	}
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// Hostile requests get a 4xx with the contract's code, never a 5xx or a hang, and leave
// nothing stored; where the contract allows them (a century of history, the largest page),
// the answer is bounded.
func TestHostileRequests(t *testing.T) {
	eachStorage(t, func(t *testing.T, newConfig configFunc) {
		s := start(t, newConfig(nil), t0)
		for _, c := range hostileRequests() {
			t.Run(c.name, func(t *testing.T) {
				r := s.send(t, c.method, c.path, c.body, c.headers)
				mustStatus(t, r, c.status)
				if got := r.errorCode(t); got != c.code {
					t.Fatalf("code %q, want %q: %.300s", got, c.code, r.body)
				}
				if id := r.header.Get("X-Request-ID"); !requestIDPattern.MatchString(id) {
					t.Fatalf("X-Request-ID %q", id)
				}
			})
		}
		t.Run("request ids", func(t *testing.T) { checkRequestIDs(t, s) })
		t.Run("unparsable targets", func(t *testing.T) {
			for _, target := range []string{"/alerts/history?page=1\x00", "/alerts/history?from=\x01",
				"/equipment/a\x7fb/status", "/metrics/production?\x1b[2J"} {
				checkRawRefusal(t, s, "GET "+target+" HTTP/1.1\r\nHost: plm\r\n", 400, "bad_request")
			}
			for _, host := range []string{"plm:port", "[::1", "plm:99999999999999999999x"} {
				checkRawRefusal(t, s, "GET /equipment HTTP/1.1\r\nHost: "+host+"\r\n", 400, "bad_request")
			}
		})
		// A client that resets its connection mid-request is no failure of the service
		// (checkNo5xx below).
		t.Run("reset mid-request", func(t *testing.T) {
			for _, partial := range []string{"GET /equipment HTTP/1.1\r\nHost: plm\r\nX-API", "POST " + webhook +
				" HTTP/1.1\r\nHost: plm\r\nX-API-Key: " + apiKey + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"equ"} {
				resetAfter(t, s.addr(), partial)
			}
			time.Sleep(100 * time.Millisecond) // for the server to see the resets
		})
		t.Run("allowed extremes", func(t *testing.T) {
			for _, path := range []string{
				"/alerts/history?page=1000000&pageSize=500",
				"/alerts/history?from=1926-11-27T08:00:00Z&to=2026-11-27T08:00:00Z",
				"/alerts/history?from=0000-01-01T00:00:00Z&to=9999-12-31T23:59:59.999999999Z&sort=asc",
				"/alerts/history?equipmentId=press_01",
				"/metrics/production?from=2000-01-01T00:00:00Z&to=2026-11-27T08:00:00Z&bucket=day",
			} {
				r := s.send(t, http.MethodGet, path, "", nil)
				mustStatus(t, r, 200)
				if len(r.body) > 1<<20 {
					t.Fatalf("%s: answer of %d bytes", path, len(r.body))
				}
			}
		})

		// Nothing of it was stored, and nothing failed.
		if s.settle != nil {
			s.settle()
		}
		if list := s.get("/equipment").json(t)["data"].([]any); len(list) != 0 {
			t.Fatalf("hostile requests stored equipment: %v", list)
		}
		mustStatus(t, s.get("/equipment/press-01"), 404)
		checkNo5xx(t, s)

		// With data: a century of history is answered, bounded by the limit; '_' matches
		// only itself.
		mustStatus(t, s.post(batch(normal("press-01", 40, t0.Add(-time.Minute)))), 202)
		mustStatus(t, s.post(reading("pressX01", "temperature", 70, t0)), 202)
		for path, most := range map[string]int{
			"/equipment/press-01/sensor-history?from=1926-11-27T08:00:00Z&to=2026-11-27T08:00:00Z":                             40,
			"/equipment/press-01/sensor-history?from=1926-11-27T08:00:00Z&to=2026-11-27T08:00:00Z&limit=5":                     5,
			"/equipment/press-01/sensor-history?from=0000-01-01T00:00:00Z&to=9999-12-31T23:59:59Z&limit=10000":                 40,
			"/equipment/press-01/sensor-history?from=1926-11-27T08:00:00Z&to=2026-11-27T08:00:00Z&aggregation=avg&interval=1s": 40,
			"/equipment/press-01/sensor-history?from=1926-11-27T08:00:00Z&aggregation=avg&interval=1s&limit=3":                 3,
		} {
			r := s.send(t, http.MethodGet, path, "", nil)
			mustStatus(t, r, 200)
			if n := len(r.json(t)["points"].([]any)); n == 0 || n > most {
				t.Fatalf("%s: %d points, want 1 to %d", path, n, most)
			}
		}
		mustStatus(t, s.get("/equipment/press_01/status"), 404)
		mustStatus(t, s.get("/equipment/press_01/sensor-history"), 404)
		r := s.get("/alerts/history?equipmentId=press_01&from=1926-11-27T08:00:00Z")
		mustStatus(t, r, 200)
		if n := len(r.json(t)["data"].([]any)); n != 0 {
			t.Fatalf("press_01 matched %d alerts of other equipment", n)
		}
		if list := s.get("/equipment").json(t)["data"].([]any); len(list) != 2 {
			t.Fatalf("want press-01 and pressX01, got %v", list)
		}
		checkNo5xx(t, s)
	})
}

// checkRequestIDs sends request ids that must not be echoed: the answer carries a fresh one.
func checkRequestIDs(t *testing.T, s *service) {
	for name, id := range map[string]string{
		"129 characters":   strings.Repeat("a", 129),
		"1000 characters":  strings.Repeat("b", 1000),
		"non-ASCII":        "résumé-1",
		"escaped CRLF":     "abc%0d%0aSet-Cookie:%20x=1",
		"space":            "abc def",
		"header injection": "abc\tSet-Cookie: x=1",
	} {
		r := s.send(t, http.MethodGet, "/equipment", "", map[string]string{"X-Request-ID": id})
		mustStatus(t, r, 200)
		got := r.header.Get("X-Request-ID")
		if got == id || !requestIDPattern.MatchString(got) || r.header.Get("Set-Cookie") != "" {
			t.Errorf("%s: X-Request-ID %q, Set-Cookie %q", name, got, r.header.Get("Set-Cookie"))
		}
	}
	// Control characters cannot be sent by a well-behaved client: raw requests.
	for name, value := range map[string]string{
		"bare CR":  "abc\rSet-Cookie: x=1",
		"bare LF":  "abc\nSet-Cookie: x=1",
		"NUL":      "abc\x00def",
		"DEL":      "abc\x7fdef",
		"obs-fold": "abc\r\n Set-Cookie: x=1",
	} {
		head := rawRequest(t, s.addr(), "GET /equipment HTTP/1.1\r\nHost: plm\r\nX-API-Key: "+apiKey+
			"\r\nX-Request-ID: "+value+"\r\nConnection: close\r\n\r\n")
		status, header := parseHead(t, head)
		if status >= 500 || status == 0 {
			t.Errorf("%s: status %d: %q", name, status, head)
		}
		got := header.Get("X-Request-ID")
		if len(header["Set-Cookie"]) > 0 || strings.Contains(head, "x=1") || got == value ||
			!requestIDPattern.MatchString(got) {
			t.Errorf("%s: answer echoes the request id: %q", name, head)
		}
	}
}

// checkRawRefusal sends a request head (with the key added) as it is, and checks the answer.
func checkRawRefusal(t *testing.T, s *service, head string, status int, code string) {
	t.Helper()
	answer := rawRequest(t, s.addr(), head+"X-API-Key: "+apiKey+"\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), nil)
	if err != nil {
		t.Fatalf("%q: answer %q: %v", head, answer, err)
	}
	body, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, body: body}
	if r.status != status || r.errorCode(t) != code {
		t.Fatalf("%q: %d %s, want %d %s", head, r.status, r.body, status, code)
	}
}

// resetAfter writes partial on a new connection and resets it (SO_LINGER 0).
func resetAfter(t *testing.T, addr, partial string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, hostileTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, partial); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // read by the server
	if err := conn.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
}

// rawRequest writes req on a new connection and returns what the server answers before it
// closes the connection.
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, hostileTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(hostileTimeout))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(conn)
	if err != nil && len(out) == 0 {
		t.Fatalf("no answer: %v", err)
	}
	return string(out)
}

// parseHead reads the status and headers of a raw answer (0 when there is none).
func parseHead(t *testing.T, raw string) (int, http.Header) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		return 0, nil
	}
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// checkNo5xx fails the test if the service answered any request with a 5xx.
func checkNo5xx(t *testing.T, s *service) {
	t.Helper()
	r := s.get("/metrics")
	mustStatus(t, r, 200)
	bad := regexp.MustCompile(`(?m)^plm_http_requests_total\{[^}]*status="5\d\d"[^}]*\} [1-9].*$`)
	if m := bad.FindAllString(string(r.body), -1); len(m) > 0 {
		t.Fatalf("5xx answers:\n%s", strings.Join(m, "\n"))
	}
}

// slowConn is a connection that sends a request header a byte at a time and never ends it.
type slowConn struct {
	opened time.Time
	closed time.Time // when the server closed it; zero while open
	answer []byte    // what the server wrote before closing
	err    error     // why reading stopped: nil for EOF
}

// openSlow opens n connections that trickle a header a byte every 200 ms. It returns them,
// with wait, which returns once the server has closed each one or deadline has passed
// since its opening, and open, which counts those the server has not closed yet.
func openSlow(t *testing.T, addr string, n int, deadline time.Duration) (conns []*slowConn, wait func(), open func() int) {
	t.Helper()
	conns = make([]*slowConn, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, hostileTimeout)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		sc := &slowConn{opened: time.Now()}
		conns[i] = sc
		done := make(chan struct{})
		wg.Add(2)
		go func() { // the trickle
			defer wg.Done()
			head := "GET /healthz HTTP/1.1\r\nHost: plm\r\nX-Slow: " + strings.Repeat("a", 1000)
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for k := 0; ; k++ {
				if _, err := c.Write([]byte{head[k%len(head)]}); err != nil {
					return
				}
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}()
		go func() { // the reader, until the server closes
			defer wg.Done()
			defer close(done)
			defer c.Close()
			_ = c.SetReadDeadline(sc.opened.Add(deadline))
			answer, err := io.ReadAll(c)
			mu.Lock()
			defer mu.Unlock()
			sc.answer, sc.err = answer, err
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				sc.closed = time.Now()
			}
		}()
	}
	wait = func() {
		wg.Wait()
		mu.Lock() // the writes of the readers are seen from here on
		mu.Unlock()
	}
	open = func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range conns {
			if c.closed.IsZero() {
				n++
			}
		}
		return n
	}
	return conns, wait, open
}

// checkClosedByServer checks that the server closed every slow connection within bound of
// its opening, answering 408 if anything.
func checkClosedByServer(t *testing.T, conns []*slowConn, bound time.Duration) {
	t.Helper()
	for i, c := range conns {
		switch {
		case c.closed.IsZero():
			t.Fatalf("slow connection %d still open after %v (%v)", i, bound, c.err)
		case c.closed.Sub(c.opened) > bound:
			t.Fatalf("slow connection %d closed after %v, want at most %v", i, c.closed.Sub(c.opened), bound)
		case len(c.answer) > 0 && !bytes.HasPrefix(c.answer, []byte("HTTP/1.1 408 ")):
			t.Fatalf("slow connection %d got %q, want 408 or nothing", i, c.answer)
		}
	}
}

// Slowloris: connections that trickle a header are closed once the read timeout passes,
// and while they hang on, everyone else is served promptly.
func TestSlowClientsAreCutOff(t *testing.T) {
	s := start(t, config(t, t.TempDir(), map[string]string{"PLM_READ_TIMEOUT": "1s"}), t0)
	const readTimeout = time.Second
	conns, wait, open := openSlow(t, s.addr(), 200, readTimeout+10*time.Second)
	start := time.Now()
	var slowest time.Duration
	for i := range 5 {
		sent := time.Now()
		mustStatus(t, s.send(t, http.MethodPost, webhook, mustJSON(t, reading("press-01", "voltage", float64(i), t0)), nil), 202)
		mustStatus(t, s.send(t, http.MethodGet, "/equipment/press-01", "", nil), 200)
		slowest = max(slowest, time.Since(sent))
	}
	if slowest > 2*time.Second {
		t.Errorf("with 200 slow connections open, a pair of requests took %v", slowest)
	}
	if n := open(); n == 0 {
		t.Errorf("the requests were answered only after the slow connections were closed")
	} else {
		t.Logf("10 requests answered in %v beside %d slow connections", time.Since(start), n)
	}

	wait()
	checkClosedByServer(t, conns, readTimeout+5*time.Second)
	mustStatus(t, s.send(t, http.MethodGet, "/equipment/press-01", "", nil), 200)
	checkNo5xx(t, s)
}

// Past PLM_MAX_CONNS connections, a new one gets fasthttp's 503 and is closed at once; the
// ones already open are served (here: timed out), and once they are gone service resumes.
func TestConnectionCap(t *testing.T) {
	const maxConns = 20
	s := start(t, config(t, t.TempDir(), map[string]string{"PLM_MAX_CONNS": "20", "PLM_READ_TIMEOUT": "2s"}), t0)
	mustStatus(t, s.send(t, http.MethodGet, "/equipment", "", nil), 200)
	time.Sleep(200 * time.Millisecond) // the server is done with that connection

	conns, wait, _ := openSlow(t, s.addr(), maxConns, 15*time.Second)
	// fasthttp answers at once, before reading anything, in plain text, and closes.
	answer := rawRead(t, s.addr())
	if !strings.HasPrefix(answer, "HTTP/1.1 503 ") || !strings.Contains(answer, "\r\nConnection: close\r\n") {
		t.Fatalf("connection %d got %q, want a 503 with Connection: close", maxConns+1, answer)
	}

	wait()
	checkClosedByServer(t, conns, 2*time.Second+5*time.Second)
	for i, c := range conns {
		if len(c.answer) == 0 {
			t.Fatalf("slow connection %d was closed without the 408", i)
		}
	}
	mustStatus(t, s.send(t, http.MethodGet, "/equipment", "", nil), 200)
}

// rawRead connects and, sending nothing, reads until the server closes the connection.
func rawRead(t *testing.T, addr string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, hostileTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	out, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("the connection was not closed (read %q): %v", out, err)
	}
	return string(out)
}
