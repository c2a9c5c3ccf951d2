package backtest_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/backtest"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
)

var (
	defaultRules = rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules}
	start        = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
)

func defaultSet(t testing.TB) rules.Set {
	t.Helper()
	return uniform(t, defaultRules)
}

func uniform(t testing.TB, r rules.Rules) rules.Set {
	t.Helper()
	s, err := rules.Uniform(r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// series writes values as CSV, one a second from start, the timestamps in epoch seconds.
func series(values []float64) string {
	var b strings.Builder
	b.WriteString("timestamp,value\n")
	for i, v := range values {
		fmt.Fprintf(&b, "%d,%s\n", start.Unix()+int64(i), strconv.FormatFloat(v, 'g', -1, 64))
	}
	return b.String()
}

func noise(seed uint64, n int) []float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]float64, n)
	for i := range out {
		out[i] = 70 + rng.NormFloat64()
	}
	return out
}

// outputRow is one row of the output, as read back.
type outputRow struct {
	time      time.Time
	value     float64
	z         string
	anomalous bool
	severity  string
	opened    bool
	state     string
}

func readOutput(t *testing.T, out string) []outputRow {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != backtest.Header {
		t.Fatalf("header %v", recs[0])
	}
	rows := make([]outputRow, 0, len(recs)-1)
	for _, r := range recs[1:] {
		ts, err1 := time.Parse(time.RFC3339Nano, r[0])
		v, err2 := strconv.ParseFloat(r[1], 64)
		an, err3 := strconv.ParseBool(r[3])
		op, err4 := strconv.ParseBool(r[5])
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatalf("row %v: %v", r, err)
		}
		rows = append(rows, outputRow{time: ts, value: v, z: r[2], anomalous: an, severity: r[4], opened: op, state: r[6]})
	}
	return rows
}

// One big spike in noise: exactly one alarm opens on the spike and clears once the readings
// have been calm long enough; every verdict is the production logic's, z-scores exactly.
func TestASpikeOpensOneAlarmThatClears(t *testing.T) {
	values := noise(1, 300)
	values[200] += 25
	set := defaultSet(t)
	var out bytes.Buffer
	sum, err := backtest.Run(context.Background(), strings.NewReader(series(values)), &out, sensor.Vibration, set)
	if err != nil {
		t.Fatal(err)
	}
	rows := readOutput(t, out.String())
	if len(rows) != len(values) {
		t.Fatalf("%d rows out for %d in", len(rows), len(values))
	}

	// The production logic, run here independently.
	key := sensor.Key{EquipmentID: "backtest", Type: sensor.Vibration}
	d := anomaly.NewDetector(defaultRules.Detector)
	anomalous, judged := 0, 0
	for i, v := range values {
		want := defaultRules.Judge(d.Judge(key, v), v)
		got := rows[i]
		wantZ := ""
		if want.Judged {
			judged++
			wantZ = strconv.FormatFloat(want.ZScore, 'g', -1, 64)
			if z, _ := strconv.ParseFloat(got.z, 64); z != want.ZScore {
				t.Errorf("row %d: z %s does not read back as %v", i, got.z, want.ZScore)
			}
		}
		if want.Anomalous {
			anomalous++
		}
		if got.z != wantZ || got.anomalous != want.Anomalous || got.severity != string(want.Severity) ||
			got.value != v || !got.time.Equal(start.Add(time.Duration(i)*time.Second)) {
			t.Errorf("row %d: %+v, want value %v, z %q, %+v", i, got, v, wantZ, want)
		}
	}

	opened, cleared := -1, -1
	for i, r := range rows {
		switch {
		case r.opened:
			if opened >= 0 {
				t.Fatalf("a second alarm opened at row %d", i)
			}
			opened = i
		case r.state == "CLEARED":
			if cleared >= 0 {
				t.Fatalf("a second clearing at row %d", i)
			}
			cleared = i
		}
	}
	if opened != 200 || rows[200].severity != "CRITICAL" || rows[200].state != "ACTIVE" {
		t.Fatalf("opened at row %d (%+v), want 200, CRITICAL, ACTIVE", opened, rows[max(opened, 0)])
	}
	if cleared < 200+alarm.DefaultRules.ClearAfter {
		t.Fatalf("cleared at row %d, want at least %d calm readings after 200", cleared, alarm.DefaultRules.ClearAfter)
	}
	for i, r := range rows {
		if want := i >= opened && i < cleared; want != (r.state == "ACTIVE") {
			t.Errorf("row %d: state %q", i, r.state)
		}
	}

	want := backtest.Summary{Type: sensor.Vibration, RulesVersion: set.Version(), Rows: 300, Judged: judged,
		Anomalous: anomalous, Opened: 1, Cleared: 1, InAlarm: time.Duration(cleared-opened) * time.Second,
		First: start, Last: start.Add(299 * time.Second)}
	if sum != want || judged != 270 || anomalous == 0 {
		t.Errorf("summary\n %+v\nwant\n %+v", sum, want)
	}
	var report strings.Builder
	if err := sum.Report(&report); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"rules version       " + set.Version(),
		"readings            300, from 2026-11-27T08:00:00.000Z to 2026-11-27T08:04:59.000Z (judged 270)",
		fmt.Sprintf("anomalous readings  %d (%.2f%%)", anomalous, float64(anomalous)/3),
		"alarms opened       1 (1 cleared)",
		"openings held back  0",
		fmt.Sprintf("time in alarm       %s of 4m59s (%.2f%%)", want.InAlarm, 100*want.InAlarm.Seconds()/299),
	} {
		if !strings.Contains(report.String(), line+"\n") {
			t.Errorf("report:\n%s\nlacks the line\n%s", report.String(), line)
		}
	}
}

// calm is a deterministic series that never strays 3 deviations.
func calm(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = 70 + math.Sin(float64(i))
	}
	return out
}

// A sensor whose alarms keep opening is flapping: its next opening is held back and marked
// HELD_BACK, and counted.
func TestFlappingOpeningsAreHeldBack(t *testing.T) {
	r := defaultRules
	r.Alarm = alarm.Rules{DebounceK: 1, DebounceM: 1, ClearBelow: 2, ClearAfter: 1, FlapCount: 2, FlapWindow: time.Hour}
	values := calm(260)
	for _, i := range []int{100, 150, 200} {
		values[i] += 25
	}
	var out bytes.Buffer
	sum, err := backtest.Run(context.Background(), strings.NewReader(series(values)), &out, sensor.Voltage, uniform(t, r))
	if err != nil {
		t.Fatal(err)
	}
	rows := readOutput(t, out.String())
	var events []string
	for i, row := range rows {
		if row.opened || row.state != "" {
			events = append(events, fmt.Sprintf("%d:%v:%s", i, row.opened, row.state))
		}
	}
	want := "100:true:ACTIVE 101:false:CLEARED 150:true:ACTIVE 151:false:CLEARED 200:false:HELD_BACK"
	if strings.Join(events, " ") != want {
		t.Errorf("events %s\nwant   %s", strings.Join(events, " "), want)
	}
	if sum.Opened != 2 || sum.Cleared != 2 || sum.HeldBack != 1 || sum.InAlarm != 2*time.Second || sum.StillOpen {
		t.Errorf("summary %+v", sum)
	}
	var report strings.Builder
	_ = sum.Report(&report)
	if !strings.Contains(report.String(), "openings held back  1 (the sensor was flapping)\n") {
		t.Errorf("report:\n%s", report.String())
	}
}

// Readings out of time order are judged in file order, counted, and the first one's line
// kept; an alarm still open at the end counts as open until the latest reading.
func TestOutOfOrderReadingsAndAnAlarmOpenAtTheEnd(t *testing.T) {
	values := calm(50)
	values[45] += 25
	in := series(values)
	lines := strings.Split(in, "\n")
	lines[11], lines[12] = lines[12], lines[11] // rows 10 and 11 swapped: line 13 is earlier than line 12
	var out bytes.Buffer
	sum, err := backtest.Run(context.Background(), strings.NewReader(strings.Join(lines, "\n")), &out, sensor.Temperature, defaultSet(t))
	if err != nil {
		t.Fatal(err)
	}
	if sum.OutOfOrder != 1 || sum.FirstOutOfOrderLine != 13 || !sum.First.Equal(start) || !sum.Last.Equal(start.Add(49*time.Second)) {
		t.Errorf("summary %+v", sum)
	}
	if sum.Opened != 1 || !sum.StillOpen || sum.InAlarm != 4*time.Second {
		t.Errorf("summary %+v, want one alarm open for the last 4 s", sum)
	}
	var report strings.Builder
	_ = sum.Report(&report)
	for _, s := range []string{"1 still open at the end", "out of time order   1 reading, the first at line 13"} {
		if !strings.Contains(report.String(), s) {
			t.Errorf("report:\n%s\nlacks %q", report.String(), s)
		}
	}
}

func TestRunRefusesAnUnknownTypeAndStopsWhenCanceled(t *testing.T) {
	if _, err := backtest.Run(context.Background(), strings.NewReader(series(calm(5))), io.Discard, "humidity", defaultSet(t)); err == nil {
		t.Error("humidity accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := backtest.Run(ctx, strings.NewReader(series(calm(5))), io.Discard, sensor.Temperature, defaultSet(t)); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// BenchmarkRun1MRows replays a million readings (RFC 3339 timestamps, noise with spikes).
func BenchmarkRun1MRows(b *testing.B) {
	const n = 1_000_000
	in := generate(n)
	set := defaultSet(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		sum, err := backtest.Run(context.Background(), bytes.NewReader(in), io.Discard, sensor.Temperature, set)
		if err != nil || sum.Rows != n {
			b.Fatal(sum.Rows, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/row")
}

// generate writes n readings as the service would export them: RFC 3339 timestamps with
// milliseconds, one every 100 ms, an equipment column, noise and a spike every 5000.
func generate(n int) []byte {
	rng := rand.New(rand.NewPCG(7, 7))
	var b bytes.Buffer
	b.WriteString("timestamp,equipment,value\n")
	buf := make([]byte, 0, 64)
	for i := range n {
		v := 70 + rng.NormFloat64()
		if i%5000 == 4999 {
			v += 20
		}
		buf = backtest.AppendTime(buf[:0], start.Add(time.Duration(i)*100*time.Millisecond))
		buf = append(buf, ",press-01,"...)
		buf = strconv.AppendFloat(buf, math.Round(v*1000)/1000, 'f', -1, 64)
		buf = append(buf, '\n')
		b.Write(buf)
	}
	return b.Bytes()
}
