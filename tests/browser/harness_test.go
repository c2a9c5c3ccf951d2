// Package browser drives the live status page (GET /) of the built service in a real,
// headless Chromium: sign-in, the live grid and alarm list, acknowledging, and what the page
// must never expose. Chromium is required: without it the tests fail (go tool task chromium
// installs it), they never skip.
package browser

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/production-line-monitor/plm/tests/logbuf"
	"github.com/production-line-monitor/plm/tests/plmbin"
)

// artifactsDirEnv names the folder the screenshots go to (default: artifacts, beside this
// file).
const artifactsDirEnv = "PLM_ARTIFACTS_DIR"

func TestMain(m *testing.M) {
	code := m.Run()
	plmbin.Remove()
	os.Exit(code)
}

// plmBinary is the service's binary, built once for the package's tests.
func plmBinary(t testing.TB) string { return plmbin.Path(t) }

// newKey is a fresh random key, so that a test can look for it anywhere it must not be.
func newKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "k" + hex.EncodeToString(b)
}

// service is the plm binary running on its embedded default, with one read key and one
// admin key.
type service struct {
	base     string
	readKey  string
	adminKey string
	log      *logbuf.Buffer
}

// startService runs `plm run` in a temporary data folder on a free port, with env added,
// and waits until it answers /healthz. The process is killed when the test ends.
func startService(t testing.TB, env ...string) *service {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	s := &service{base: "http://" + addr, readKey: newKey(t), adminKey: newKey(t), log: &logbuf.Buffer{}}
	cmd := exec.Command(plmBinary(t), "run")
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"PLM_ADDR=" + addr,
		"PLM_DATA_DIR=" + t.TempDir(),
		"PLM_API_KEYS=read:" + s.readKey + ",admin:" + s.adminKey,
	}, env...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.base + "/healthz"); err == nil {
			resp.Body.Close()
			return s
		}
		select {
		case err := <-done:
			t.Fatalf("plm exited at start: %v\n%s", err, s.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("plm did not answer /healthz within 30 s\n%s", s.log)
	return nil
}

// call sends a request with the admin key and decodes a JSON answer into out (when not nil).
func (s *service) call(t testing.TB, method, path string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-API-Key", s.adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode < 300 && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

// send is call for goroutines other than the test's: it returns the status or the error.
func (s *service) send(method, path string, body any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, r)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-API-Key", s.adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// reading is one reading as the webhook takes it.
type reading struct {
	EquipmentID string  `json:"equipmentId"`
	SensorType  string  `json:"sensorType"`
	Value       float64 `json:"value"`
	Unit        string  `json:"unit,omitempty"`
	Timestamp   string  `json:"timestamp,omitempty"`
}

// post sends readings to the webhook in batches of up to 1000 and requires each accepted.
func (s *service) post(t testing.TB, readings []reading) {
	t.Helper()
	for len(readings) > 0 {
		n := min(len(readings), 1000)
		if code := s.call(t, http.MethodPost, "/webhook/sensor-data", map[string]any{"readings": readings[:n]}, nil); code != http.StatusAccepted {
			t.Fatalf("webhook answered %d, want 202", code)
		}
		readings = readings[n:]
	}
}

// calm is n calm temperature readings of one machine (around 70 °C), one a second, the last
// at end.
func calm(id string, n int, end time.Time) []reading {
	out := make([]reading, n)
	for i := range out {
		out[i] = reading{EquipmentID: id, SensorType: "temperature", Unit: "celsius",
			Value:     70 + 0.4*float64((i*7)%5-2),
			Timestamp: end.Add(-time.Duration(n-1-i) * time.Second).UTC().Format(time.RFC3339Nano)}
	}
	return out
}

// equipment is one entry of GET /equipment.
type equipment struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// waitEquipment waits until GET /equipment lists every id with the status want.
func (s *service) waitEquipment(t testing.TB, want string, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last map[string]string
	for time.Now().Before(deadline) {
		var body struct{ Data []equipment }
		s.call(t, http.MethodGet, "/equipment", nil, &body)
		last = make(map[string]string, len(body.Data))
		for _, e := range body.Data {
			last[e.ID] = e.Status
		}
		ok := true
		for _, id := range ids {
			ok = ok && last[id] == want
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the API did not list %d machines as %s within 30 s (last seen: %d listed)", len(ids), want, len(last))
}

// alarm is the part of an alarm the tests read.
type alarm struct {
	ID           string `json:"id"`
	EquipmentID  string `json:"equipmentId"`
	IncidentID   string `json:"incidentId"`
	State        string `json:"state"`
	Acknowledged *struct {
		By string `json:"by"`
	} `json:"acknowledged"`
}

// ---------------------------------------------------------------------------------------
// The browser

// chromiumPath finds Debian's Chromium, or fails the test saying how to install it.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is missing: the browser test needs /usr/bin/chromium (or chromium in PATH). " +
		"Install it with `go tool task chromium` (Debian's chromium package); `go tool task test` does so first.")
	return ""
}

// browser is one headless Chromium tab, with what the page logged.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string // uncaught exceptions, console errors, refusals (CSP and others)
	network  []string // answers that were errors: some are expected (401 before signing in)
}

// newBrowser starts Chromium with a fresh profile; it is closed when the test ends.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{ctx: ctx}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	console := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	entries := chromedp.Events(ctx, cdplog.EntryAdded)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no timeout
		t.Fatalf("start Chromium: %v", err)
	}
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			b.note("exception: " + ev.ExceptionDetails.Text + " " + describe(ev.ExceptionDetails.Exception))
		}
	}()
	go func() {
		for ev, err := range console {
			if err != nil {
				return
			}
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, describe(a))
				}
				b.note("console.error: " + strings.Join(parts, " "))
			}
		}
	}()
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			if ev.Entry.Level != cdplog.EntryLevelError {
				continue
			}
			line := fmt.Sprintf("%s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			if ev.Entry.Source == cdplog.EntrySourceNetwork {
				b.noteNetwork(line)
			} else {
				b.note(line)
			}
		}
	}()
	return b
}

func describe(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	if o.Description != "" {
		return o.Description
	}
	return string(o.Value)
}

func (b *browser) note(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, s)
}

func (b *browser) noteNetwork(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.network = append(b.network, s)
}

// Network returns the failed answers the page got so far.
func (b *browser) Network() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.network...)
}

// Problems returns what the page reported as errors so far, failed answers left out.
func (b *browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// do runs steps within timeout.
func (b *browser) do(t testing.TB, timeout time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value into T; a promise is awaited.
func eval[T any](t testing.TB, b *browser, expression string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expression, err)
	}
	return v
}

// waitFor waits until the JavaScript predicate is true in the page. On timeout it fails with
// what, the value of the expression state (what the page shows instead), and what the page
// logged as errors.
func (b *browser) waitFor(t testing.TB, timeout time.Duration, what, predicate, state string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err == nil {
		return
	}
	shown := "(unknown)"
	if state != "" {
		sctx, scancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer scancel()
		if v, serr := chromedp.Run(sctx, chromedp.Evaluate[string](state)); serr == nil {
			shown = v
		}
	}
	t.Fatalf("%s: not within %s (%v).\nThe page shows: %s\nThe page reported: %q\nFailed answers: %q",
		what, timeout, err, shown, b.Problems(), b.Network())
}

// screenshot saves a full-page PNG of the tab as name.png in the artifacts folder.
func (b *browser) screenshot(t testing.TB, name string) {
	t.Helper()
	dir := os.Getenv(artifactsDirEnv)
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	path := filepath.Join(dir, fileName(name)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	abs, _ := filepath.Abs(path)
	t.Logf("screenshot: %s", abs)
}

// screenshotOnFailure saves a screenshot named after the test if it has failed by its end.
func (b *browser) screenshotOnFailure(t testing.TB) {
	t.Cleanup(func() {
		if t.Failed() {
			b.screenshot(t, t.Name()+"-failure")
		}
	})
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func fileName(s string) string { return unsafeName.ReplaceAllString(s, "_") }

// call runs one CDP command on the tab.
func call[P, R any](t testing.TB, b *browser, cmd cdp.Command[P, R], params P) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	r, err := chromedp.Call(ctx, cmd, params)
	if err != nil {
		t.Fatalf("%s: %v", cmd.Method, err)
	}
	return r
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
