package e2e

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/bootstrap"
)

// backtestRules gives temperature a hard upper limit, and clears alarms after 5 calm readings.
const backtestRules = `# rules for the backtest
defaults:
  clearAfter: 5
types:
  temperature:
    limits: {max: 100}
`

// backtestInput is 60 temperature readings, one a second, around 70 °C, with readings 10 to
// 14 at 105: above the limit while the window is still too short for any z-score. The header
// has an extra column, odd case and spaces.
func backtestInput() string {
	var b strings.Builder
	b.WriteString("Sensor, Timestamp ,VALUE\n")
	start := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	for i := range 60 {
		v := 70 + math.Round(math.Sin(float64(i))*100)/100
		if i >= 10 && i < 15 {
			v = 105
		}
		fmt.Fprintf(&b, "t-1,%s,%s\n", start.Add(time.Duration(i)*time.Second).Format(time.DateTime), strconv.FormatFloat(v, 'g', -1, 64))
	}
	return b.String()
}

func writeBacktestFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// backtestEvents lists, from the output CSV, each row that is anomalous or has an alarm
// state, as "row:severity:opened:state".
func backtestEvents(t *testing.T, out string) []string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, out)
	}
	if len(recs) != 61 || strings.Join(recs[0], ",") != "timestamp,value,z_score,anomalous,severity,alarm_opened,alarm_state" {
		t.Fatalf("%d rows, header %v", len(recs), recs[0])
	}
	var events []string
	for i, r := range recs[1:] {
		if want := time.Date(2026, 11, 27, 8, 0, i, 0, time.UTC).Format("2006-01-02T15:04:05.000Z"); r[0] != want {
			t.Errorf("row %d: timestamp %s, want %s", i, r[0], want)
		}
		if (r[2] == "") != (i < 30) {
			t.Errorf("row %d: z-score %q, want one from the 31st reading on", i, r[2])
		}
		if r[3] == "true" || r[6] != "" {
			events = append(events, fmt.Sprintf("%d:%s:%s:%s", i, r[4], r[5], r[6]))
		}
	}
	return events
}

// plm backtest replays a CSV through the rules of a rules file: the hard limit flags the
// readings above it, the third of them opens an alarm (3 of 5), 5 calm readings clear it.
func TestBacktestCommand(t *testing.T) {
	dir := t.TempDir()
	rulesPath := writeBacktestFile(t, dir, "rules.yaml", backtestRules)
	input := writeBacktestFile(t, dir, "readings.csv", backtestInput())
	cfg, err := bootstrap.LoadConfig(func(k string) string { return map[string]string{"PLM_RULES_FILE": rulesPath}[k] })
	if err != nil {
		t.Fatal(err)
	}
	set, err := bootstrap.LoadRules(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The first reading beyond the limit opens the alarm at once; the calm readings after clear it.
	wantEvents := "10:CRITICAL:true:ACTIVE 11:CRITICAL:false:ACTIVE 12:CRITICAL:false:ACTIVE 13:CRITICAL:false:ACTIVE " +
		"14:CRITICAL:false:ACTIVE 15::false:ACTIVE 16::false:ACTIVE 17::false:ACTIVE 18::false:ACTIVE 19::false:CLEARED"

	t.Run("to a file, summary on stdout", func(t *testing.T) {
		out := filepath.Join(dir, "out.csv")
		code, stdout, stderr := runOnce(t, nil, "backtest", "--input", input, "--rules", rulesPath, "--sensor-type", "temperature", "--output", out)
		if code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(backtestEvents(t, string(raw)), " "); got != wantEvents {
			t.Errorf("events\n %s\nwant\n %s", got, wantEvents)
		}
		for _, line := range []string{
			"rules version       " + set.Version(),
			"readings            60, from 2026-11-27T08:00:00.000Z to 2026-11-27T08:00:59.000Z (judged 30)",
			"anomalous readings  5 (8.33%)",
			"alarms opened       1 (1 cleared)",
			"openings held back  0",
			"time in alarm       9s of 59s (15.25%)",
		} {
			if !strings.Contains(stdout, line+"\n") {
				t.Errorf("summary:\n%s\nlacks\n%s", stdout, line)
			}
		}
		if stderr != "" {
			t.Errorf("stderr: %s", stderr)
		}
	})

	t.Run("PLM_RULES_FILE, to stdout, summary on stderr", func(t *testing.T) {
		code, stdout, stderr := runOnce(t, []string{"PLM_RULES_FILE=" + rulesPath}, "backtest", "-input", input)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if got := strings.Join(backtestEvents(t, stdout), " "); got != wantEvents {
			t.Errorf("events\n %s\nwant\n %s", got, wantEvents)
		}
		if !strings.Contains(stderr, "alarms opened       1 (1 cleared)") || !strings.Contains(stderr, set.Version()) {
			t.Errorf("stderr:\n%s", stderr)
		}
	})

	// Without the rules file the same readings open nothing: no limit, and no verdict while
	// the window fills.
	t.Run("without the rules file", func(t *testing.T) {
		code, stdout, stderr := runOnce(t, nil, "backtest", "--input", input)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if events := backtestEvents(t, stdout); len(events) != 0 || !strings.Contains(stderr, "alarms opened       0 (0 cleared)") {
			t.Errorf("events %v\n%s", events, stderr)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		lines := strings.Split(backtestInput(), "\n")
		lines[2] = strings.Replace(lines[2], "70.84", "70.8l", 1) // line 3: the reading of 08:00:01
		bad := writeBacktestFile(t, dir, "bad.csv", strings.Join(lines, "\n"))
		out := filepath.Join(dir, "never.csv")
		code, _, stderr := runOnce(t, nil, "backtest", "--input", bad, "--output", out)
		want := `plm backtest: ` + bad + `: line 3, column value: "70.8l" is not a number`
		if code != 1 || strings.TrimSpace(stderr) != want {
			t.Errorf("exit %d, stderr %q; want 1, %q", code, stderr, want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("a failed run left %s: %v", out, err)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".never.csv*")); len(left) != 0 {
			t.Errorf("a failed run left %v", left)
		}
	})

	t.Run("out of time order", func(t *testing.T) {
		lines := strings.Split(backtestInput(), "\n")
		lines[5], lines[6] = lines[6], lines[5] // line 7 is now a second before line 6
		swapped := writeBacktestFile(t, dir, "swapped.csv", strings.Join(lines, "\n"))
		code, _, stderr := runOnce(t, nil, "backtest", "--input", swapped, "--output", filepath.Join(dir, "swapped-out.csv"))
		want := "plm backtest: warning: " + swapped + ": line 7 is timestamped before the line above it (1 reading out of time order in all)"
		if code != 0 || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "warning") != 1 {
			t.Errorf("exit %d, stderr %q; want 0 and one warning, %q", code, stderr, want)
		}
	})

	t.Run("bad rules", func(t *testing.T) {
		badRules := writeBacktestFile(t, dir, "bad-rules.yaml", "types:\n  humidity: {windowSize: 50}\n")
		code, _, stderr := runOnce(t, nil, "backtest", "--input", input, "--rules", badRules)
		if code != 1 || !strings.Contains(stderr, "rules file "+badRules+`: types.humidity: a sensor type beyond the contract's (temperature, vibration, pressure, voltage) needs its unit`) {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{"backtest"}, {"backtest", "--input", input, "--sensor-type", "humidity"}, {"backtest", "--bogus"}} {
			if code, _, stderr := runOnce(t, nil, args...); code != 2 || !strings.Contains(stderr, "Usage") && !strings.Contains(stderr, "humidity") {
				t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
			}
		}
	})
}

// A folder of SKAB-like files (';', datetime, labels), replayed a machine a file and scored;
// and one file replayed as a machine, a row a reading.
func TestBacktestMachineAndScore(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	var labelled, normal strings.Builder
	labelled.WriteString("datetime;Current;Volume Flow RateRMS;anomaly;changepoint\n")
	normal.WriteString("datetime;Current;Volume Flow RateRMS\n")
	t0 := time.Date(2020, 3, 9, 10, 0, 0, 0, time.UTC)
	for i := range 1200 {
		cur, flow := 2.4+0.05*math.Sin(float64(i)*1.3), 32+0.3*math.Cos(float64(i)*0.7)
		ts := t0.Add(time.Duration(i) * time.Second).Format(time.DateTime)
		fmt.Fprintf(&normal, "%s;%g;%g\n", ts, cur, flow)
		label, cp := 0, 0
		if i >= 700 {
			flow, label = flow-8, 1
		}
		if i == 700 {
			cp = 1
		}
		fmt.Fprintf(&labelled, "%s;%g;%g;%d;%d\n", ts, cur, flow, label, cp)
	}
	fault := writeBacktestFile(t, data, "fault.csv", labelled.String())
	writeBacktestFile(t, data, "normal.csv", normal.String())
	cols := writeBacktestFile(t, dir, "columns.txt", "# the pump\nCurrent = current\nVolume Flow RateRMS = flow flow\n")
	types := writeBacktestFile(t, dir, "types.yaml", "types: {current: {unit: A}, flow: {unit: l/min}}\n")

	code, stdout, stderr := runOnce(t, nil, "backtest", "score", "--columns", cols, "--rules", types, data)
	if code != 0 || !strings.Contains(stdout, "| **all labelled** (1) | 1 | 1 | ") ||
		!strings.Contains(stdout, "Unlabelled (normal operation), 1 file(s), 19m59s: **0 alarm openings") {
		t.Errorf("score: exit %d, stdout:\n%s\nstderr %q", code, stdout, stderr)
	}

	code, stdout, stderr = runOnce(t, nil, "backtest", "--input", fault, "--columns", cols, "--rules", types)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 1+2*1200 || !strings.HasPrefix(lines[0], "timestamp,sensor_id,sensor_type,") ||
		!strings.Contains(stderr, "alarm openings ") || !strings.Contains(stderr, "flow ") {
		t.Errorf("machine: exit %d, %d lines (%q), stderr %q", code, len(lines), lines[0], stderr)
	}

	// Without the types declared, the columns name types the rules do not know.
	if code, _, stderr := runOnce(t, nil, "backtest", "score", "--columns", cols, data); code != 1 ||
		!strings.Contains(stderr, `unknown sensor type "current"`) {
		t.Errorf("undeclared types: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runOnce(t, nil, "backtest", "score", data); code != 2 || !strings.Contains(stderr, "give the columns") {
		t.Errorf("no columns: exit %d, stderr %q", code, stderr)
	}
}
