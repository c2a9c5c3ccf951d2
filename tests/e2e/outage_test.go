package e2e

import (
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/tests/pgtest"
)

// proxy forwards TCP connections to a server and can cut them all, to stand for an outage.
type proxy struct {
	t      *testing.T
	addr   string // the address it listens on, kept across outages
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{t: t, target: target, addr: "127.0.0.1:0"}
	p.up()
	t.Cleanup(p.down)
	return p
}

// up listens again and forwards every connection.
func (p *proxy) up() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
}

// down stops listening and cuts every open connection: the server seems gone.
func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// When PostgreSQL goes away the API answers 503 with Retry-After, quickly, and stores
// nothing; when it comes back the service recovers without a restart.
func TestPostgresOutage(t *testing.T) {
	dbURL, err := url.Parse(pgtest.NewDatabase(t, pgtest.Admin(t)))
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, dbURL.Host)
	dbURL.Host = px.addr
	s := start(t, config(t, t.TempDir(), map[string]string{"PLM_DATABASE_URL": dbURL.String()}), t0)

	mustStatus(t, s.post(reading("press-01", "pressure", 3.1, t0)), 202)

	px.down()
	began := time.Now()
	r := s.post(reading("press-01", "pressure", 3.2, t0))
	took := time.Since(began)
	t.Logf("a write during the outage was refused in %v", took)
	if took > 10*time.Second {
		t.Errorf("the refused request took %v", took)
	}
	mustStatus(t, r, 503)
	if r.errorCode(t) != "unavailable" {
		t.Fatalf("code %q", r.errorCode(t))
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	mustStatus(t, s.get("/equipment/press-01/status"), 503)
	mustStatus(t, s.do("GET", "/readyz", nil, map[string]string{"X-API-Key": ""}), 503)

	px.up()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r = s.post(reading("press-01", "pressure", 3.3, t0))
		if r.status == 202 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	mustStatus(t, r, 202)
	mustStatus(t, s.do("GET", "/readyz", nil, map[string]string{"X-API-Key": ""}), 200)
	from, to := url.QueryEscape(ms(t0.Add(-time.Hour))), url.QueryEscape(ms(t0.Add(time.Second)))
	pts := s.get("/equipment/press-01/sensor-history?from=" + from + "&to=" + to).json(t)["points"].([]any)
	if len(pts) != 2 {
		t.Fatalf("stored %d readings, want 2 (the one refused during the outage is not stored): %v", len(pts), pts)
	}
}
