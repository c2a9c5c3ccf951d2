package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/redis/rueidis"

	"github.com/production-line-monitor/plm/tests/pgtest"
	"github.com/production-line-monitor/plm/tests/redistest"
)

// deployment is one production set-up for process tests: its own PostgreSQL database and
// its own Redis key prefix, shared by the serve and worker processes started in it.
type deployment struct {
	t      testing.TB
	env    []string
	db     *sql.DB
	prefix string
	redis  string
}

func newDeployment(t testing.TB, redisURL string, extra ...string) *deployment {
	t.Helper()
	admin := pgtest.Admin(t)
	if redisURL == "" {
		redisURL = redistest.Require(t)
	}
	dbURL := pgtest.NewDatabase(t, admin)
	prefix := redistest.Prefix(t, redisURL)
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	env := []string{
		"PLM_DATABASE_URL=" + dbURL, "PLM_REDIS_URL=" + redisURL, "PLM_REDIS_PREFIX=" + prefix,
		"PLM_API_KEYS=" + apiKey, "PLM_DATA_DIR=" + t.TempDir(), "PLM_PARTITIONS=8", "PLM_CLAIM_IDLE=2s",
		"PLM_MONITOR_INTERVAL=1s",
	}
	return &deployment{t: t, env: append(env, extra...), db: db, prefix: prefix, redis: redisURL}
}

// run starts plm command (run, serve or worker) in the deployment.
func (d *deployment) run(command string, extra ...string) *process {
	d.t.Helper()
	return runPLMCommand(d.t, command, append(append([]string{}, d.env...), extra...)...)
}

func (d *deployment) count(query string) int {
	d.t.Helper()
	var n int
	if err := d.db.QueryRow(query).Scan(&n); err != nil {
		d.t.Fatal(err)
	}
	return n
}

func (d *deployment) stored() int { return d.count("SELECT count(*) FROM sensor_readings") }

// waitStored waits until n readings are stored.
func (d *deployment) waitStored(n int, procs ...*process) {
	d.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := d.stored()
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			var logs strings.Builder
			for _, p := range procs {
				logs.WriteString(p.stderr.String())
			}
			d.t.Fatalf("%d readings stored, want %d\n%s", got, n, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// anomalies lists every stored anomaly as equipment/reading/severity/z, sorted.
func (d *deployment) anomalies() []string {
	d.t.Helper()
	rows, err := d.db.Query("SELECT equipment_id, reading_id, severity, z_score, mean, std_dev FROM anomalies")
	if err != nil {
		d.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var eq, id, sev string
		var z, mean, sd float64
		if err := rows.Scan(&eq, &id, &sev, &z, &mean, &sd); err != nil {
			d.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s/%s/%s/z=%.9g/mean=%.9g/sd=%.9g", eq, id, sev, z, mean, sd))
	}
	if err := rows.Err(); err != nil {
		d.t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// alarms lists every stored alarm as equipment/sensor/opened/state/severity/count/peak/cleared,
// sorted.
func (d *deployment) alarms() []string {
	d.t.Helper()
	rows, err := d.db.Query(`SELECT equipment_id, sensor_type, opened_at, state, severity, reading_count, peak_z,
		coalesce(cleared_at::text, 'open') FROM alarms`)
	if err != nil {
		d.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var eq, typ, state, sev, cleared string
		var opened time.Time
		var n int
		var peak float64
		if err := rows.Scan(&eq, &typ, &opened, &state, &sev, &n, &peak, &cleared); err != nil {
			d.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s/%s/%s/%s/%s/n=%d/peak=%.9g/cleared=%s", eq, typ, opened.UTC().Format(time.RFC3339Nano),
			state, sev, n, peak, cleared))
	}
	if err := rows.Err(); err != nil {
		d.t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// postJSON posts body to the webhook of p; it fails the test unless the answer is 202.
func postJSON(t testing.TB, p *process, body string) {
	t.Helper()
	code, resp, err := p.request(http.MethodPost, "/webhook/sensor-data", apiKey, []byte(body))
	if err != nil || code != http.StatusAccepted {
		t.Errorf("POST: %d %s %v", code, resp, err)
	}
}

func jsonReading(equipment, typ, readingID string, value float64, ts time.Time) string {
	return fmt.Sprintf(`{"equipmentId":%q,"sensorType":%q,"readingId":%q,"value":%s,"timestamp":%q}`,
		equipment, typ, readingID, strconv.FormatFloat(value, 'g', -1, 64), ts.UTC().Format(time.RFC3339Nano))
}

// A worker killed (SIGKILL) in the middle of its work loses nothing: another worker takes
// its partitions over, handles what it left pending, and every reading accepted is stored
// exactly once, with at most one anomaly.
func TestPipelineWorkerKilledMidBatch(t *testing.T) {
	d := newDeployment(t, "")
	serve := d.run("serve")
	const batches, size = 200, 100
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := g; b < batches; b += 4 {
				rs := make([]string, size)
				for i := range rs {
					eq := fmt.Sprintf("line-%02d", (b*size+i)%20)
					rs[i] = jsonReading(eq, "temperature", fmt.Sprintf("b%d-%d", b, i), 70+float64(i%7),
						start.Add(time.Duration(b*size+i)*time.Millisecond))
				}
				postJSON(t, serve, `{"readings":[`+strings.Join(rs, ",")+`]}`)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	a := d.run("worker", "PLM_WORKER_ID=worker-a")
	deadline := time.Now().Add(60 * time.Second)
	for d.stored() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("worker a stored nothing\n%s", a.stderr)
		}
		time.Sleep(time.Millisecond)
	}
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.done
	a.done <- nil
	atKill := d.stored()
	if atKill >= batches*size {
		t.Fatalf("worker a stored all %d readings before it could be killed: raise the load", atKill)
	}
	t.Logf("worker a killed with %d of %d readings stored", atKill, batches*size)

	b := d.run("worker", "PLM_WORKER_ID=worker-b")
	d.waitStored(batches*size, b)
	if n := d.count("SELECT count(*) FROM (SELECT DISTINCT equipment_id, reading_id FROM sensor_readings) s"); n != batches*size {
		t.Errorf("%d distinct readings, want %d", n, batches*size)
	}
	if n := d.count("SELECT count(*) FROM (SELECT 1 FROM anomalies GROUP BY equipment_id, reading_id HAVING count(*) > 1) s"); n != 0 {
		t.Errorf("%d readings have more than one anomaly", n)
	}
	if !strings.Contains(b.stderr.String(), "partition taken") {
		t.Errorf("worker b never took a partition over:\n%s", b.stderr)
	}
	// The aggregation worker folds every hourly count into the rollup, none twice.
	deadline = time.Now().Add(30 * time.Second)
	for d.count("SELECT count(*) FROM reading_count_deltas") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("hour counts left unfolded\n%s", b.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := d.count("SELECT coalesce(sum(readings), 0)::int FROM reading_counts"); n != batches*size {
		t.Errorf("the rollup counts %d readings, want %d", n, batches*size)
	}
}

// anomalyInput is a deterministic workload: for each of 12 machines, 150 readings of two
// sensors, noisy, with spikes of every size at random places, and on every other machine a
// short incident of five readings.
func anomalyInput() map[string][]string {
	rng := rand.New(rand.NewPCG(42, 7))
	start := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	out := make(map[string][]string)
	for m := range 12 {
		eq := fmt.Sprintf("press-%02d", m)
		for i := range 150 {
			for _, typ := range []string{"temperature", "vibration"} {
				v := 70 + rng.NormFloat64()
				if rng.IntN(12) == 0 {
					v += float64(2+rng.IntN(8)) * (1 + rng.Float64())
				}
				if typ == "temperature" && m%2 == 0 && i >= 90 && i < 95 {
					v += 15 // a short incident: an alarm opens and clears
				}
				out[eq] = append(out[eq], jsonReading(eq, typ, fmt.Sprintf("%s-%d", typ, i), v,
					start.Add(time.Duration(i)*time.Second)))
			}
		}
	}
	return out
}

// feed sends each machine's readings one request at a time, machines in parallel, with at
// least 10 ms between two readings of one sensor; between the halves it calls midway.
func feed(t *testing.T, p *process, input map[string][]string, midway func()) {
	t.Helper()
	half := func(first bool) {
		var wg sync.WaitGroup
		for _, rs := range input {
			if first {
				rs = rs[:len(rs)/2]
			} else {
				rs = rs[len(rs)/2:]
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, r := range rs {
					postJSON(t, p, r)
					time.Sleep(5 * time.Millisecond) // two sensors in turn: 10 ms per sensor
				}
			}()
		}
		wg.Wait()
	}
	half(true)
	midway()
	half(false)
}

// heldPartitions reads plm_worker_partitions_held from a worker's /metrics.
func heldPartitions(t testing.TB, p *process) int {
	t.Helper()
	code, body, err := p.request(http.MethodGet, "/metrics", apiKey, nil)
	if err != nil || code != http.StatusOK {
		return 0
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "plm_worker_partitions_held "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return 0
}

func waitHeld(t testing.TB, p *process, atLeast int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for heldPartitions(t, p) < atLeast {
		if time.Now().After(deadline) {
			t.Fatalf("worker holds fewer than %d partitions after 30 s\n%s", atLeast, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two worker processes find exactly the anomalies one finds, even when the second joins in
// the middle of the stream and the partitions are shared out again under load.
func TestPipelineTwoWorkersFindTheAnomaliesOfOne(t *testing.T) {
	input := anomalyInput()
	total := 0
	for _, rs := range input {
		total += len(rs)
	}

	// The rule before the debounce |z|, so that the workload's random spikes open alarms
	// enough to compare.
	oldRule := []string{"PLM_ALARM_DEBOUNCE_Z=0", "PLM_ALARM_OPEN_AT_Z=10"}
	one := newDeployment(t, "", oldRule...)
	serve1 := one.run("serve")
	w1 := one.run("worker")
	waitHeld(t, w1, 8)
	feed(t, serve1, input, func() {})
	one.waitStored(total, w1)
	want := one.anomalies()

	two := newDeployment(t, "", oldRule...)
	serve2 := two.run("serve")
	first := two.run("worker")
	waitHeld(t, first, 8)
	var second *process
	feed(t, serve2, input, func() {
		second = two.run("worker")
		waitHeld(t, second, 1)
	})
	two.waitStored(total, first, second)
	got := two.anomalies()
	wantAlarms, gotAlarms := one.alarms(), two.alarms()
	t.Logf("one worker opened %d alarms, two opened %d", len(wantAlarms), len(gotAlarms))
	if len(wantAlarms) < 5 {
		t.Errorf("the workload opened only %d alarms: too few to compare", len(wantAlarms))
	}
	if strings.Join(gotAlarms, "\n") != strings.Join(wantAlarms, "\n") {
		t.Errorf("two workers' alarms differ from one's:\n%s", diff(wantAlarms, gotAlarms))
	}
	for _, d := range []*deployment{one, two} {
		if n := d.count("SELECT count(*) FROM (SELECT 1 FROM alarms WHERE state <> 'CLEARED' GROUP BY equipment_id, sensor_type HAVING count(*) > 1) s"); n != 0 {
			t.Errorf("%d sensors have more than one open alarm", n)
		}
	}

	t.Logf("one worker found %d anomalies in %d readings, two found %d", len(want), total, len(got))
	if len(want) < 50 {
		t.Fatalf("the workload gave only %d anomalies: too few to compare", len(want))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("two workers found %d anomalies, one found %d; they differ:\n%s", len(got), len(want), diff(want, got))
	}
	if heldPartitions(t, first) == 0 || heldPartitions(t, second) == 0 {
		t.Errorf("the partitions were not shared: %d and %d held", heldPartitions(t, first), heldPartitions(t, second))
	}
}

func diff(want, got []string) string {
	in := func(list []string) map[string]bool {
		m := make(map[string]bool, len(list))
		for _, s := range list {
			m[s] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for _, s := range want {
		if !g[s] {
			b.WriteString("- " + s + "\n")
		}
	}
	for _, s := range got {
		if !w[s] {
			b.WriteString("+ " + s + "\n")
		}
	}
	return b.String()
}

// redisServer runs a Redis server of the test's own, which the test may stop and start.
type redisServer struct {
	t    *testing.T
	bin  string
	port int
	dir  string // kept across restarts
	cmd  *exec.Cmd
	// appendOnly makes the server keep every write in its append-only file, synced before
	// it answers (appendfsync always), as a production Redis of this service must.
	appendOnly bool
}

func newRedisServer(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("PLM_REQUIRE_SERVICES") == "1" {
			t.Fatalf("redis-server is required (PLM_REQUIRE_SERVICES=1): %v", err)
		}
		t.Skipf("SKIPPED: no redis-server to stop and start (%v); set PLM_REQUIRE_SERVICES=1 to make this a failure", err)
	}
	port, err := strconv.Atoi(freeAddr(t)[len("127.0.0.1:"):])
	if err != nil {
		t.Fatal(err)
	}
	r := &redisServer{t: t, bin: bin, port: port, dir: t.TempDir()}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *redisServer) start() {
	r.t.Helper()
	aof := []string{"--appendonly", "no"}
	if r.appendOnly {
		aof = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	r.cmd = exec.Command(r.bin, append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--dir", r.dir}, aof...)...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{fmt.Sprintf("127.0.0.1:%d", r.port)}, DisableCache: true})
		if err == nil {
			err = c.Do(context.Background(), c.B().Ping().Build()).Error()
			c.Close()
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server did not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server (SIGKILL): it keeps only what its append-only file holds.
func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// With Redis down the webhook answers 503 and accepts nothing; once Redis is back, the same
// process accepts and stores readings again.
func TestPipelineRedisStoppedAndBack(t *testing.T) {
	rs := newRedisServer(t)
	d := newDeployment(t, rs.url())
	p := d.run("run")
	ts := time.Now().Add(-time.Minute)

	postJSON(t, p, jsonReading("press-01", "temperature", "before", 70, ts))
	d.waitStored(1, p)

	rs.stop()
	code, body, err := p.request(http.MethodPost, "/webhook/sensor-data", apiKey,
		[]byte(jsonReading("press-01", "temperature", "during", 71, ts.Add(time.Second))))
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"unavailable"`) {
		t.Fatalf("POST with Redis down: %d %s %v, want 503 unavailable", code, body, err)
	}
	if code, body, _ := p.request(http.MethodGet, "/readyz", "", nil); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Redis down: %d %s, want 503", code, body)
	}

	rs.start()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body, err = p.request(http.MethodPost, "/webhook/sensor-data", apiKey,
			[]byte(jsonReading("press-01", "temperature", "after", 72, ts.Add(2*time.Second))))
		if err == nil && code == http.StatusAccepted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST after Redis came back: %d %s %v\n%s", code, body, err, p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.waitStored(2, p)
	if n := d.count("SELECT count(*) FROM sensor_readings WHERE reading_id = 'during'"); n != 0 {
		t.Errorf("the reading refused with 503 was stored")
	}
}

// A message no worker can read goes to the dead-letter stream; the messages behind it in
// its partition flow on.
func TestPipelinePoisonMessageGoesToDeadLetters(t *testing.T) {
	d := newDeployment(t, "", "PLM_PARTITIONS=1")
	p := d.run("run")
	c := redistest.Connect(t, d.redis)
	ctx := context.Background()
	stream, poison := d.prefix+":readings:0", d.prefix+":readings:poison"
	err := c.Do(ctx, c.B().Xadd().Key(stream).Id("*").FieldValue().
		FieldValue("_watermill_message_uuid", "poison-1").FieldValue("payload", "{not json").Build()).Error()
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Add(-time.Minute)
	for i := range 5 {
		postJSON(t, p, jsonReading("press-01", "temperature", fmt.Sprintf("r-%d", i), 70, ts.Add(time.Duration(i)*time.Second)))
	}
	d.waitStored(5, p)
	entries, err := c.Do(ctx, c.B().Xrange().Key(poison).Start("-").End("+").Build()).ToArray()
	if err != nil || len(entries) != 1 {
		t.Fatalf("dead letters: %d entries, %v; want the poison message", len(entries), err)
	}
	fields, err := entries[0].AsXRangeEntry()
	if err != nil || fields.FieldValues["_watermill_message_uuid"] != "poison-1" {
		t.Errorf("dead letter %+v, %v; want message poison-1", fields, err)
	}
}

// getJSON GETs path from p with the key and decodes the answer; it fails the test unless
// the answer is 200.
func getJSON(t *testing.T, p *process, path string) map[string]any {
	t.Helper()
	code, body, err := p.request(http.MethodGet, path, apiKey, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", path, code, body, err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
	return m
}

// The split set-up (plm serve, and two plm worker) answers the contract: a spike becomes an
// alert, the equipment turns ANOMALY, and history and production metrics count every
// reading. A process configured with other partitions than the deployment's refuses to start.
func TestPipelineSplitSetUp(t *testing.T) {
	d := newDeployment(t, "")
	serve := d.run("serve")
	w1, w2 := d.run("worker"), d.run("worker")
	waitHeld(t, w1, 1)
	waitHeld(t, w2, 1)

	ts := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	var rs []string
	for i := range 40 {
		rs = append(rs, jsonReading("press-01", "temperature", fmt.Sprintf("n-%d", i), 70+float64(i%5-2)*0.5,
			ts.Add(time.Duration(i)*time.Second)))
	}
	postJSON(t, serve, `{"readings":[`+strings.Join(rs, ",")+`]}`)
	postJSON(t, serve, jsonReading("press-01", "temperature", "spike", 95, ts.Add(41*time.Second)))
	d.waitStored(41, w1, w2)

	deadline := time.Now().Add(10 * time.Second)
	var status map[string]any
	for {
		status = getJSON(t, serve, "/equipment/press-01/status")
		if status["status"] == "ANOMALY" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	latest, _ := status["latestReadings"].([]any)
	if status["status"] != "ANOMALY" || len(latest) != 1 || latest[0].(map[string]any)["value"] != 95.0 {
		t.Errorf("status %v, want ANOMALY with the spike as the latest reading", status)
	}
	alerts := getJSON(t, serve, "/alerts/history?equipmentId=press-01")
	data, _ := alerts["data"].([]any)
	if len(data) != 1 || data[0].(map[string]any)["severity"] != "CRITICAL" {
		t.Errorf("alerts %v, want the spike, CRITICAL", alerts)
	}
	from := ts.Add(-time.Hour).UTC().Format(time.RFC3339)
	history := getJSON(t, serve, "/equipment/press-01/sensor-history?from="+from)
	if points, _ := history["points"].([]any); len(points) != 41 {
		t.Errorf("%d history points, want 41", len(points))
	}
	metrics := getJSON(t, serve, "/metrics/production?from="+from)
	if events, _ := metrics["eventsProcessed"].(map[string]any); events["total"] != 41.0 {
		t.Errorf("production metrics %v, want 41 events", metrics["eventsProcessed"])
	}

	// Another number of partitions would send press-01's readings elsewhere.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, plmBinary(t), "worker")
	cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH"), "PLM_ADDR=" + freeAddr(t)}, d.env...), "PLM_PARTITIONS=4")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "PLM_PARTITIONS=4") || !strings.Contains(string(out), "has 8 partitions") {
		t.Errorf("a worker with other partitions: %v\n%s", err, out)
	}
}

// A worker rolled with SIGTERM under load finishes the messages in hand, gives its
// partitions up at once, and every reading the webhook accepted is stored.
func TestPipelineWorkerRolledUnderLoad(t *testing.T) {
	d := newDeployment(t, "", "PLM_CLAIM_IDLE=30s") // a lost partition would stall the test
	serve := d.run("serve")
	old := d.run("worker")
	waitHeld(t, old, 8)

	var accepted atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	ts := time.Now().Add(-time.Hour)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := jsonReading(fmt.Sprintf("line-%02d", (g*7+i)%16), "vibration", fmt.Sprintf("g%d-%d", g, i),
					float64(i%10), ts.Add(time.Duration(i)*time.Millisecond))
				code, resp, err := serve.request(http.MethodPost, "/webhook/sensor-data", apiKey, []byte(body))
				if err != nil || code != http.StatusAccepted {
					t.Errorf("POST: %d %s %v", code, resp, err)
					return
				}
				accepted.Add(1)
				time.Sleep(2 * time.Millisecond) // a steady load, not a flood
			}
		}()
	}
	waitStoredAtLeast(t, d, 200)
	next := d.run("worker")
	old.terminate(t) // SIGTERM, clean exit within the shutdown timeout
	if !strings.Contains(old.stderr.String(), "worker stopping") {
		t.Errorf("the old worker did not hand its partitions over:\n%s", old.stderr)
	}
	waitHeld(t, next, 8)
	time.Sleep(300 * time.Millisecond) // load on the new worker too
	close(stop)
	wg.Wait()
	d.waitStored(int(accepted.Load()), next)
	t.Logf("%d readings accepted and stored across the roll", accepted.Load())
}

func waitStoredAtLeast(t *testing.T, d *deployment, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for d.stored() < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d readings stored in 30 s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
