package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/tests/redistest"
)

// The fault tests put the production set-up (serve and workers as processes, the real
// PostgreSQL and Redis) under a steady load, break something in the middle of it, and then
// account for every reading: sent, accepted (202), refused, stored, stored twice.

// loadMachines and loadSpikeEvery shape the steady load: readings of one temperature sensor
// per machine, normal around 70 with a standard deviation of 1, and every loadSpikeEvery-th
// reading of a machine (once its window is full) a spike 15 deviations up.
const (
	loadMachines   = 20
	loadSpikeEvery = 150
)

// tally is what a steady load sent and what became of it.
type tally struct {
	mu       sync.Mutex
	sent     int
	accepted map[string]bool // equipment/readingId of every reading answered 202
	spikes   map[string]bool // the accepted readings that were spikes
	refused  map[int]int     // answers other than 202, by status
	badRetry int             // 503 answers without a Retry-After of at least 1 s
	failed   int             // requests that got no answer (connection error, timeout)
}

// loadGen makes the load's readings: machine by machine in turn, each reading with an id of
// its own, every loadSpikeEvery-th of a machine (once its window is full) a spike.
type loadGen struct {
	mu     sync.Mutex
	rng    *rand.Rand
	seq    [loadMachines]int
	next   int
	start  time.Time
	tl     *tally
	p      *process
	client *http.Client
}

func newLoadGen(p *process) *loadGen {
	return &loadGen{rng: rand.New(rand.NewPCG(7, 11)), start: time.Now().Add(-time.Hour), p: p,
		client: &http.Client{Timeout: 15 * time.Second},
		tl:     &tally{accepted: make(map[string]bool), spikes: make(map[string]bool), refused: make(map[int]int)}}
}

// batch makes the body of a batch of n readings, with their ids and which are spikes.
func (g *loadGen) batch(n int) (body string, ids []string, spikes []bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids, spikes = make([]string, n), make([]bool, n)
	rs := make([]string, n)
	for i := range rs {
		m := g.next % loadMachines
		g.next++
		eq := fmt.Sprintf("fault-%02d", m)
		s := g.seq[m]
		g.seq[m]++
		v := 70 + g.rng.NormFloat64()
		if s >= 60 && s%loadSpikeEvery == 0 {
			v, spikes[i] = 85, true
		}
		id := fmt.Sprintf("r%d", s)
		ids[i] = eq + "/" + id
		rs[i] = jsonReading(eq, "temperature", id, v, g.start.Add(time.Duration(s)*100*time.Millisecond))
	}
	return `{"readings":[` + strings.Join(rs, ",") + `]}`, ids, spikes
}

// post sends a batch of n readings and notes what became of it.
func (g *loadGen) post(n int) {
	body, ids, spikes := g.batch(n)
	g.tl.post(g.client, g.p, body, ids, spikes)
}

// burst posts batches batches of 1000 readings at once and returns when all are answered:
// work for the workers to be in the middle of.
func (g *loadGen) burst(batches int) {
	var wg sync.WaitGroup
	for range batches {
		wg.Add(1)
		go func() { defer wg.Done(); g.post(1000) }()
	}
	wg.Wait()
}

// steadyLoad posts a batch of batch readings every interval to p until ctx ends, from one
// goroutine per in-flight request so that a slow answer does not slow the schedule.
func steadyLoad(ctx context.Context, p *process, batch int, interval time.Duration) *loadGen {
	g := newLoadGen(p)
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() { defer wg.Done(); g.post(batch) }()
		}
	}()
	return g
}

func (tl *tally) post(client *http.Client, p *process, body string, ids []string, spikes []bool) {
	req, err := http.NewRequest(http.MethodPost, p.base+"/webhook/sensor-data", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", apiKey)
	resp, err := client.Do(req)
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.sent += len(ids)
	if err != nil {
		tl.failed++
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		tl.refused[resp.StatusCode]++
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode == http.StatusServiceUnavailable && (err != nil || ra < 1) {
			tl.badRetry++
		}
		return
	}
	for i, id := range ids {
		tl.accepted[id] = true
		if spikes[i] {
			tl.spikes[id] = true
		}
	}
}

func (tl *tally) acceptedCount() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return len(tl.accepted)
}

// outcome accounts for every reading of the load once the deployment has stored what it
// accepted: it fails the test for a reading accepted and not stored, a reading stored
// twice, an anomaly recorded twice, or a planted spike not flagged. It returns the summary
// line that docs/RELIABILITY.md quotes.
func (d *deployment) outcome(t *testing.T, tl *tally, procs ...*process) string {
	t.Helper()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	deadline := time.Now().Add(120 * time.Second)
	for d.count("SELECT count(DISTINCT (equipment_id, reading_id)) FROM sensor_readings") < len(tl.accepted) {
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, p := range procs {
				logs.WriteString(p.stderr.String())
			}
			t.Fatalf("%d of %d accepted readings stored after 2 minutes\n%s", d.stored(), len(tl.accepted), logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // anything stored beyond what was accepted shows up too
	stored := make(map[string]bool)
	rows, err := d.db.Query("SELECT equipment_id || '/' || reading_id FROM sensor_readings")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		stored[id] = true
		total++
	}
	rows.Close()
	lost, unasked := 0, 0
	for id := range tl.accepted {
		if !stored[id] {
			lost++
		}
	}
	for id := range stored {
		if !tl.accepted[id] {
			unasked++ // refused (503) and yet queued: allowed, the client retries by readingId
		}
	}
	dupAnomalies := d.count("SELECT count(*) FROM (SELECT 1 FROM anomalies GROUP BY equipment_id, reading_id HAVING count(*) > 1) s")
	flagged := 0
	for id := range tl.spikes {
		eq, rid, _ := strings.Cut(id, "/")
		var n int
		if err := d.db.QueryRow("SELECT count(*) FROM anomalies WHERE equipment_id = $1 AND reading_id = $2", eq, rid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		flagged += n
	}
	summary := fmt.Sprintf("sent %d, accepted %d, refused %v, unanswered %d requests; stored %d (%d refused yet stored), lost %d, duplicated %d; spikes flagged %d of %d, anomalies duplicated %d",
		tl.sent, len(tl.accepted), tl.refused, tl.failed, total, unasked, lost, total-len(stored), flagged, len(tl.spikes), dupAnomalies)
	t.Log(summary)
	if lost != 0 || total != len(stored) || dupAnomalies != 0 {
		t.Errorf("readings lost or doubled: %s", summary)
	}
	if flagged != len(tl.spikes) || len(tl.spikes) == 0 {
		t.Errorf("planted spikes not all flagged once: %s", summary)
	}
	if tl.badRetry != 0 {
		t.Errorf("%d answers 503 came without Retry-After", tl.badRetry)
	}
	return summary
}

// alive fails the test if p has exited.
func alive(t *testing.T, p *process, name string) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		t.Fatalf("%s exited: %v\n%s", name, err, p.stderr)
	default:
	}
}

// Workers killed with SIGKILL again and again, in the middle of their work, while machines
// keep sending: every accepted reading is stored exactly once, no anomaly is recorded twice,
// and every planted spike is flagged.
func TestFaultWorkersKilledRepeatedlyUnderLoad(t *testing.T) {
	d := newDeployment(t, "", "PLM_PARTITIONS=4", "PLM_CLAIM_IDLE=1s")
	serve := d.run("serve")
	workers := []*process{d.run("worker", "PLM_WORKER_ID=w-0"), d.run("worker", "PLM_WORKER_ID=w-1")}
	all := []*process{serve, workers[0], workers[1]}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	g := steadyLoad(ctx, serve, 50, 25*time.Millisecond) // 2000 readings/s
	tl := g.tl
	const kills = 8
	inFlight := 0
	for k := range kills {
		time.Sleep(2500 * time.Millisecond)
		i := k % 2
		// 5000 readings more at once, so that the kill finds the worker in the middle of them.
		g.burst(5)
		behind := tl.acceptedCount() - d.stored()
		if err := workers[i].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-workers[i].done
		workers[i].done <- nil
		if behind > 0 {
			inFlight++
		}
		workers[i] = d.run("worker", fmt.Sprintf("PLM_WORKER_ID=w-%d", k+2))
		all = append(all, workers[i])
	}
	time.Sleep(2 * time.Second)
	stop()
	alive(t, serve, "serve")
	t.Logf("%d kills, %d of them with accepted readings not yet stored", kills, inFlight)
	if inFlight < kills/2 {
		t.Errorf("only %d of %d kills came while work was in flight", inFlight, kills)
	}
	d.outcome(t, tl, all...)
	if tl.failed != 0 || len(tl.refused) != 0 {
		t.Errorf("the webhook refused readings while only workers were killed: %v, %d unanswered", tl.refused, tl.failed)
	}
}

// PostgreSQL unreachable from the worker for 20 s in the middle of a steady load: the
// webhook keeps accepting (it needs only Redis), the worker retries without acknowledging
// and without crashing, nothing goes to the dead letters, and once PostgreSQL is back it
// catches up: every accepted reading stored once.
func TestFaultPostgresDown20sUnderLoad(t *testing.T) {
	d := newDeployment(t, "", "PLM_PARTITIONS=4")
	dbURL, err := url.Parse(envValue(d.env, "PLM_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, dbURL.Host)
	dbURL.Host = px.addr
	serve := d.run("serve")
	worker := d.run("worker", "PLM_DATABASE_URL="+dbURL.String())

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	tl := steadyLoad(ctx, serve, 20, 20*time.Millisecond).tl // 1000 readings/s
	time.Sleep(5 * time.Second)
	px.down()
	downAt := tl.acceptedCount()
	time.Sleep(10 * time.Second)
	if code, _, _ := worker.request(http.MethodGet, "/readyz", "", nil); code != http.StatusServiceUnavailable {
		t.Errorf("the worker's /readyz answered %d with PostgreSQL away, want 503", code)
	}
	time.Sleep(10 * time.Second)
	storedDuring := d.stored()
	px.up()
	upAt := time.Now()
	time.Sleep(5 * time.Second)
	stop()
	t.Logf("%d readings accepted before the outage, %d by its end; %d stored when PostgreSQL came back",
		downAt, tl.acceptedCount(), storedDuring)
	d.outcome(t, tl, serve, worker)
	t.Logf("everything stored %v after PostgreSQL came back (the load ran on for the first 5 s)", time.Since(upAt).Round(100*time.Millisecond))
	alive(t, worker, "worker")
	alive(t, serve, "serve")
	if tl.failed != 0 || len(tl.refused) != 0 {
		t.Errorf("the webhook refused readings while only PostgreSQL was away: %v, %d unanswered", tl.refused, tl.failed)
	}
	if n := d.deadLetters(t); n != 0 {
		t.Errorf("%d messages went to the dead letters during the outage", n)
	}
}

// Redis killed (SIGKILL) in the middle of a steady load and started again 5 s later from
// its append-only file: while it is away the webhook answers 503 with Retry-After, never
// 202; every 202 it gave is kept and stored once; it accepts again without a restart.
func TestFaultRedisKilledUnderLoad(t *testing.T) {
	rs := newRedisServer(t)
	rs.appendOnly = true
	rs.stop()
	rs.start()
	d := newDeployment(t, rs.url(), "PLM_PARTITIONS=4")
	serve := d.run("serve")
	worker := d.run("worker")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	tl := steadyLoad(ctx, serve, 20, 20*time.Millisecond).tl
	time.Sleep(5 * time.Second)
	rs.stop()
	time.Sleep(5 * time.Second)
	rs.start()
	time.Sleep(8 * time.Second)
	stop()
	d.outcome(t, tl, serve, worker)
	alive(t, serve, "serve")
	alive(t, worker, "worker")
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.refused[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no 503 while Redis was away: %v", tl.refused)
	}
	for status := range tl.refused {
		if status != http.StatusServiceUnavailable {
			t.Errorf("answers %d while Redis was away: %v", status, tl.refused)
		}
	}
	if tl.failed != 0 {
		t.Errorf("%d requests got no answer", tl.failed)
	}
}

// deadLetters is the length of the deployment's dead-letter stream.
func (d *deployment) deadLetters(t *testing.T) int64 {
	t.Helper()
	c := redistest.Connect(t, d.redis)
	n, err := c.Do(context.Background(), c.B().Xlen().Key(d.prefix+":readings:poison").Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// envValue is the value of name in env (KEY=value entries), the last one winning.
func envValue(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}
