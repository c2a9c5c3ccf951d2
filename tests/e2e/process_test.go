package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/tests/logbuf"
	"github.com/production-line-monitor/plm/tests/plmbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	plmbin.Remove()
	os.Exit(code)
}

// plmBinary is the service's binary, built once for the package's tests.
func plmBinary(t testing.TB) string { return plmbin.Path(t) }

// process is the service running as its own binary.
type process struct {
	cmd    *exec.Cmd
	base   string
	stderr *logbuf.Buffer
	done   chan error
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runPLM starts the binary (its default command, run) with env and waits until it
// answers /healthz.
func runPLM(t testing.TB, env ...string) *process {
	t.Helper()
	return runPLMCommand(t, "run", env...)
}

// runPLMCommand is runPLM for the command plm run, serve or worker.
func runPLMCommand(t testing.TB, command string, env ...string) *process {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(plmBinary(t), command)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "PLM_ADDR=" + addr}, env...)
	p := &process{cmd: cmd, base: "http://" + addr, stderr: &logbuf.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.base + "/healthz"); err == nil {
			resp.Body.Close()
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("plm exited at start: %v\n%s", err, p.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("plm did not answer within 30 s\n%s", p.stderr)
	return nil
}

// terminate sends SIGTERM and waits for a clean exit.
func (p *process) terminate(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("plm exited with %v after SIGTERM\n%s", err, p.stderr)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("plm did not stop within 40 s of SIGTERM\n%s", p.stderr)
	}
}

func (p *process) request(method, path, key string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, p.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// With no PLM_API_KEYS the first start generates a key, prints it once and keeps it; the
// service never runs open.
func TestFirstStartGeneratesAKey(t *testing.T) {
	dir := t.TempDir()
	p := runPLM(t, "PLM_DATA_DIR="+dir)
	raw, err := os.ReadFile(filepath.Join(dir, "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(raw))
	if fi, _ := os.Stat(filepath.Join(dir, "api-key")); fi.Mode().Perm() != 0o600 {
		t.Errorf("api-key mode %v, want 0600", fi.Mode().Perm())
	}
	if !strings.Contains(p.stderr.String(), key) {
		t.Errorf("the generated key was not printed:\n%s", p.stderr)
	}
	if code, _, _ := p.request("GET", "/equipment", "", nil); code != 401 {
		t.Errorf("without a key: %d, want 401", code)
	}
	if code, _, _ := p.request("GET", "/equipment", key, nil); code != 200 {
		t.Errorf("with the generated key: %d, want 200", code)
	}
	p.terminate(t)

	p = runPLM(t, "PLM_DATA_DIR="+dir)
	if strings.Contains(p.stderr.String(), key) {
		t.Errorf("the key was printed again on the second start:\n%s", p.stderr)
	}
	if code, _, _ := p.request("GET", "/equipment", key, nil); code != 200 {
		t.Errorf("the kept key after a restart: %d, want 200", code)
	}
	p.terminate(t)
}

// SIGTERM under load: every reading answered 202 is stored, and the process exits cleanly.
func TestSigtermUnderLoadLosesNothingAccepted(t *testing.T) {
	dir := t.TempDir()
	env := []string{"PLM_DATA_DIR=" + dir, "PLM_API_KEYS=" + apiKey}
	p := runPLM(t, env...)

	var accepted, sent atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 100_000; i++ {
				rs := make([]map[string]any, 10)
				for j := range rs {
					rs[j] = map[string]any{"equipmentId": fmt.Sprintf("eq-%d", w), "sensorType": "temperature",
						"value": 20 + float64(j), "readingId": fmt.Sprintf("w%d-%d-%d", w, i, j)}
				}
				body, _ := json.Marshal(map[string]any{"readings": rs})
				sent.Add(10)
				code, _, err := p.request("POST", "/webhook/sensor-data", apiKey, body)
				if err == nil && code == 202 {
					accepted.Add(10)
				}
			}
		}()
	}
	for accepted.Load() < 2000 {
		time.Sleep(10 * time.Millisecond)
	}
	p.terminate(t)
	cancel()
	wg.Wait()
	// The first process stopped cleanly: nothing it logged is an error.
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "level=ERROR") {
			t.Errorf("error logged: %s", sc.Text())
		}
	}

	p = runPLM(t, env...)
	from := url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	code, body, err := p.request("GET", "/metrics/production?from="+from, apiKey, nil)
	if err != nil || code != 200 {
		t.Fatalf("metrics: %d %v %s", code, err, body)
	}
	var m struct {
		EventsProcessed struct{ Total int64 } `json:"eventsProcessed"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	stored := m.EventsProcessed.Total
	t.Logf("sent %d, accepted %d, stored %d", sent.Load(), accepted.Load(), stored)
	if stored < accepted.Load() {
		t.Fatalf("lost readings: %d accepted but %d stored", accepted.Load(), stored)
	}
	if stored > sent.Load() {
		t.Fatalf("stored %d readings but only %d were sent", stored, sent.Load())
	}
	p.terminate(t)
}

// PLM_PPROF_ADDR serves Go's profiler on its own address, and only there.
func TestProfilerIsServedWhenAsked(t *testing.T) {
	addr := freeAddr(t)
	p := runPLM(t, "PLM_DATA_DIR="+t.TempDir(), "PLM_API_KEYS="+apiKey, "PLM_PPROF_ADDR="+addr)
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("profiler: %s", resp.Status)
	}
	if code, _, _ := p.request("GET", "/debug/pprof/cmdline", apiKey, nil); code != http.StatusNotFound {
		t.Errorf("the API's address serves the profiler: %d", code)
	}
	if !strings.Contains(p.stderr.String(), "serving the profiler") {
		t.Errorf("no warning that the profiler is on:\n%s", p.stderr)
	}
	p.terminate(t)
}
