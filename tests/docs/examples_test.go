//go:build unix

package docs

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/tests/logbuf"
)

// examplesKey is the API key of the service under test. It stands in for the examples'
// KEY=$(cat data/api-key).
const examplesKey = "docs-examples-0123456789abcdef"

// keptKey is how an example's PLM_API_KEYS names the key kept in data/api-key.
const keptKey = "$(<data/api-key)"

// The lines of the examples' set-up block, replaced by the test's key and address.
const (
	docKeyLine  = "KEY=$(cat data/api-key)"
	docBaseLine = "BASE=http://localhost:8080"
)

// blockTimeout bounds one example; the slowest waits 5 s for SQLite's write lock.
const blockTimeout = 20 * time.Second

// optionalTools may be missing where the tests run; an example that calls one is then
// skipped, saying so.
var optionalTools = []string{"sqlite3"}

type blockKind int

const (
	kindRun   blockKind = iota + 1 // run with bash, its output checked
	kindSetup                      // the KEY and BASE variables, put before every run block
	kindStart                      // go run .: the test (re)starts the service instead
)

// example is one sh block of the file and the output block that follows it.
type example struct {
	line    int    // of the opening fence, from 1
	section string // the heading above it
	code    string
	kind    blockKind
	env     []string // kindStart: the variables before go run .
	notRun  string   // the reason given by a <!-- not run: … --> comment just before it
	want    []string // the lines of its output block
	hasWant bool
}

var (
	notRunComment = regexp.MustCompile(`^<!-- not run: (.+) -->$`)
	startCommand  = regexp.MustCompile(`^((?:PLM_[A-Z0-9_]+=\S+ +)*)go run \.$`)
	httpStatus    = regexp.MustCompile(`^HTTP/[0-9.]+ ([1-5][0-9]{2})(?: .*)?$`)
	bareStatus    = regexp.MustCompile(`^[1-5][0-9]{2}$`)
	headerLine    = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*): (.*)$`)
)

// Every sh block of docs/API_EXAMPLES.md, run in order against the service it describes,
// prints what the output block after it shows.
func TestAPIExamples(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the examples need %s: %v", tool, err)
		}
	}
	examples := parseExamples(t, read(t, "../../docs/API_EXAMPLES.md"))
	bin := buildService(t)
	dir := t.TempDir()

	var (
		svc    *service
		setUp  bool // the KEY and BASE block has come
		notRun []string
	)
	for _, ex := range examples {
		name := fmt.Sprintf("line_%d_%s", ex.line, slug(ex.section))
		switch {
		case ex.notRun != "":
			notRun = append(notRun, fmt.Sprintf("line %d: %s", ex.line, ex.notRun))
			t.Run(name, func(t *testing.T) { t.Skipf("marked not run: %s", ex.notRun) })
		case ex.kind == kindStart:
			if svc != nil {
				svc.stop(t)
			}
			svc = startService(t, bin, dir, ex.env)
		case ex.kind == kindSetup:
			setUp = true
		case svc == nil || !setUp:
			t.Fatalf("line %d: an example before the service is started and KEY and BASE are set", ex.line)
		default:
			// The set-up block (classify checked it is docKeyLine and docBaseLine) with the
			// test's key and address.
			setup := fmt.Sprintf("KEY='%s'\nBASE=%s\n", examplesKey, svc.base)
			t.Run(name, func(t *testing.T) { runExample(t, dir, setup, ex) })
		}
	}
	for _, r := range notRun {
		t.Logf("not run: %s", r)
	}
}

// parseExamples reads the sh blocks of doc, checks how they are written, and classifies them.
func parseExamples(t *testing.T, doc string) []*example {
	t.Helper()
	var (
		examples []*example
		section  string
		prev     string   // the last non-blank line outside the blocks
		last     *example // the example whose block prev closed, if any
	)
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(trimmed, "```") {
			if trimmed != "" {
				if strings.HasPrefix(trimmed, "#") {
					section = strings.TrimSpace(strings.TrimLeft(trimmed, "#"))
				}
				prev, last = trimmed, nil
			}
			continue
		}
		info, open := strings.TrimPrefix(trimmed, "```"), i+1
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("line %d: the block is never closed", open)
		}
		switch info {
		case "sh":
			ex := &example{line: open, section: section, code: strings.Join(body, "\n")}
			if m := notRunComment.FindStringSubmatch(prev); m != nil {
				ex.notRun = m[1]
			}
			examples = append(examples, ex)
			last = ex
		case "output":
			if last == nil {
				t.Fatalf("line %d: an output block must follow an sh block", open)
			}
			last.want, last.hasWant = body, true
			last = nil
		default:
			last = nil
		}
		prev = "```"
	}

	setups := 0
	for _, ex := range examples {
		classify(t, ex)
		switch {
		case ex.kind == kindSetup:
			setups++
		case ex.kind == kindRun && ex.notRun == "" && !ex.hasWant:
			t.Errorf("line %d: the example shows no answer (an output block after it)", ex.line)
		case ex.kind != kindRun && ex.hasWant:
			t.Errorf("line %d: the block is not run, but an output block follows it", ex.line)
		}
	}
	if setups != 1 {
		t.Fatalf("%d blocks set BASE, want exactly 1", setups)
	}
	if t.Failed() {
		t.FailNow()
	}
	return examples
}

// classify sets ex's kind and checks that the test's substitutions apply to it cleanly:
// the service is reached only through $BASE and $KEY.
func classify(t *testing.T, ex *example) {
	t.Helper()
	var lines []string
	for l := range strings.SplitSeq(ex.code, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 1 {
		if m := startCommand.FindStringSubmatch(lines[0]); m != nil {
			ex.kind, ex.env = kindStart, strings.Fields(m[1])
			for _, kv := range ex.env {
				switch name, value, _ := strings.Cut(kv, "="); name {
				case "PLM_ADDR", "PLM_DATA_DIR":
					t.Errorf("line %d: the examples' KEY and BASE assume the default %s", ex.line, name)
				case "PLM_API_KEYS":
					// More keys may be added to the one KEY holds, read from where the
					// first start kept it; the test's key stands in for it.
					if !strings.HasPrefix(value, `"`+keptKey+`,`) || !strings.HasSuffix(value, `"`) {
						t.Errorf("line %d: PLM_API_KEYS must keep KEY's key first, as \"%s,…\"", ex.line, keptKey)
					}
				}
			}
			return
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "BASE=") {
			ex.kind = kindSetup
		}
	}
	if ex.kind == kindSetup {
		var got []string
		for _, l := range lines {
			code, _, _ := strings.Cut(l, " #")
			got = append(got, strings.TrimSpace(code))
		}
		if want := []string{docKeyLine, docBaseLine}; !slices.Equal(got, want) {
			t.Errorf("line %d: the set-up block is %q, want exactly %q (comments aside)", ex.line, got, want)
		}
		return
	}
	ex.kind = kindRun
	for _, s := range []string{"localhost", "8080", "api-key", "KEY=", "BASE="} {
		if strings.Contains(ex.code, s) {
			t.Errorf("line %d: the example mentions %q; it must use $BASE and $KEY", ex.line, s)
		}
	}
}

// runExample runs ex with bash after setup, in dir, and compares what it printed with its
// output block.
func runExample(t *testing.T, dir, setup string, ex *example) {
	for _, tool := range optionalTools {
		if strings.Contains(ex.code, tool+" ") {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("SKIPPED: the example needs %s, which is not installed", tool)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), blockTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", setup+ex.code)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LC_ALL=C"}
	// Its own process group, so that a background job it leaves behind is stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	out := strings.ReplaceAll(stdout.String(), "\r", "")
	if err != nil {
		t.Fatalf("line %d: %v\n--- example\n%s\n--- stdout\n%s\n--- stderr\n%s", ex.line, err, ex.code, out, stderr.String())
	}
	for _, problem := range compare(ex.want, out) {
		t.Errorf("line %d: %s", ex.line, problem)
	}
	if t.Failed() {
		t.Logf("--- example\n%s\n--- stdout\n%s", ex.code, out)
	}
}

// The comparison of an output block with what a command printed.
func TestCompare(t *testing.T) {
	const body = `{"error":{"code":"not_found","message":"no such route"}}`
	answer := "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nAllow: GET, PUT\r\n\r\n" + body
	cases := []struct {
		name string
		want string
		out  string
		ok   bool
	}{
		{"same_status_and_body", "HTTP/1.1 404 Not Found\n\n" + body, answer, true},
		{"other_reason_phrase", "HTTP/1.1 404 Gone\n\n" + body, answer, false},
		{"other_status", "HTTP/1.1 400 Bad Request\n\n" + body, answer, false},
		{"one_status_more_in_the_output", "HTTP/1.1 404 Not Found", answer + "\nHTTP/1.1 404 Not Found\n", false},
		{"one_status_less_in_the_output", "HTTP/1.1 404 Not Found\n\n" + body + "\n200", answer, false},
		{"status_glued_to_a_body", "200\nHTTP/1.1 404 Not Found", body + "HTTP/1.1 404 Not Found\n", false},
		{"100_continue_not_counted", "HTTP/1.1 404 Not Found", "HTTP/1.1 100 Continue\r\n\r\n" + answer, true},
		{"bare_statuses_in_order", "200\n200\nHTTP/1.1 404 Not Found", "200\n200\n" + answer, true},
		{"bare_statuses_out_of_order", "200\nHTTP/1.1 404 Not Found\n200", "200\n200\n" + answer, false},
		{"header_with_its_value", "HTTP/1.1 404 Not Found\nallow: GET, PUT", answer, true},
		{"header_with_another_value", "HTTP/1.1 404 Not Found\nAllow: GET", answer, false},
		{"header_value_with_ellipsis", "HTTP/1.1 404 Not Found\nContent-Type: application/…", answer, true},
		{"header_missing", "HTTP/1.1 404 Not Found\nRetry-After: 5", answer, false},
		{"body_with_ellipsis", `HTTP/1.1 404 Not Found` + "\n\n" + `{"error":{"code":"not_found",…}}`, answer, true},
		{"body_with_another_code", `HTTP/1.1 404 Not Found` + "\n\n" + `{"error":{"code":"unauthorized",…}}`, answer, false},
		{"body_line_not_in_output", "HTTP/1.1 404 Not Found\n\n" + body + "\n  …\"details\":[…]…", answer, false},
		{"text_without_status", "plm_anomalies_total{severity=\"CRITICAL\"} …", "plm_anomalies_total{severity=\"CRITICAL\"} 1\n", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			problems := compare(strings.Split(c.want, "\n"), strings.ReplaceAll(c.out, "\r", ""))
			if ok := len(problems) == 0; ok != c.ok {
				t.Fatalf("compare = %q, want ok = %v", problems, c.ok)
			}
		})
	}
}

// answer is an output block, or what a command printed, taken apart.
type answer struct {
	statuses []string    // status lines (HTTP/1.1 200 OK, or a bare 200), in order; 100 Continue left out
	headers  [][2]string // name in lower case, value; from the header lines under a status line
	text     []string    // the other non-blank lines
}

func parseAnswer(lines []string) answer {
	var a answer
	inHeaders := false
	for _, l := range lines {
		l = strings.TrimRight(l, " \r")
		if m := httpStatus.FindStringSubmatch(l); m != nil {
			if m[1] != "100" {
				a.statuses = append(a.statuses, l)
			}
			inHeaders = true
			continue
		}
		if bareStatus.MatchString(l) {
			a.statuses = append(a.statuses, l)
			continue
		}
		if l == "" {
			inHeaders = false
			continue
		}
		if m := headerLine.FindStringSubmatch(l); inHeaders && m != nil {
			a.headers = append(a.headers, [2]string{strings.ToLower(m[1]), m[2]})
			continue
		}
		inHeaders = false
		a.text = append(a.text, l)
	}
	return a
}

// compare lists how out differs from the output block want: other status lines, a header
// missing or with another value, a piece of text that does not appear ("…" stands for
// anything).
func compare(want []string, out string) []string {
	w, got := parseAnswer(want), parseAnswer(strings.Split(out, "\n"))
	if !slices.Equal(w.statuses, got.statuses) {
		return []string{fmt.Sprintf("status lines %q, the example shows %q", got.statuses, w.statuses)}
	}
	var problems []string
	for _, h := range w.headers {
		found := false
		for _, g := range got.headers {
			found = found || g[0] == h[0] && valueMatches(h[1], g[1])
		}
		if !found {
			problems = append(problems, fmt.Sprintf("no header %q with the value %q", h[0], h[1]))
		}
	}
	for _, l := range w.text {
		if !contains(out, l) {
			problems = append(problems, fmt.Sprintf("the output lacks %q", l))
		}
	}
	return problems
}

// valueMatches reports whether a header's value is pattern, "…" standing for anything.
func valueMatches(pattern, value string) bool {
	if !strings.Contains(pattern, "…") {
		return pattern == value
	}
	return contains(value, pattern)
}

// contains reports whether s holds every piece of pattern between "…".
func contains(s, pattern string) bool {
	for p := range strings.SplitSeq(pattern, "…") {
		if p = strings.TrimSpace(p); p != "" && !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// slug makes a heading usable in a subtest name.
func slug(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	return strings.TrimSuffix(b.String(), "_")
}

// buildService builds the plm binary.
func buildService(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "plm")
	if out, err := exec.Command("go", "build", "-o", bin, "../..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// service is the plm binary running as the examples' go run . would.
type service struct {
	cmd  *exec.Cmd
	base string
	log  *logbuf.Buffer
	done chan error
}

// startService runs bin in dir with env, on a free port of its own and with the test's key,
// and waits until it answers /healthz.
func startService(t *testing.T, bin, dir string, env []string) *service {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	keys := examplesKey
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PLM_API_KEYS="); ok {
			keys = strings.Replace(strings.Trim(v, `"`), keptKey, examplesKey, 1)
		}
	}
	cmd.Env = append(cmd.Env, "PLM_ADDR="+addr, "PLM_API_KEYS="+keys)
	s := &service{cmd: cmd, base: "http://" + addr, log: &logbuf.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		err := <-s.done
		s.done <- err
	})

	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if resp, err := client.Get(s.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("plm %s exited at start: %v\n%s", strings.Join(env, " "), err, s.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("plm %s did not answer /healthz within 30 s\n%s", strings.Join(env, " "), s.log)
	return nil
}

// stop stops the service as Ctrl-C would, and waits for it to exit.
func (s *service) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Fatalf("plm exited with %v after Ctrl-C\n%s", err, s.log)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("plm did not stop within 30 s of Ctrl-C\n%s", s.log)
	}
}
