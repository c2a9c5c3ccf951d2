package backtest_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/backtest"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/rules"
)

func seconds(n int) []time.Time {
	t0 := time.Date(2020, 3, 9, 10, 0, 0, 0, time.UTC)
	out := make([]time.Time, n)
	for i := range out {
		out[i] = t0.Add(time.Duration(i) * time.Second)
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// NAB's weights by hand: a window of 61 rows (a changepoint and the 60 s after it).
func TestScoreNABByHand(t *testing.T) {
	times := seconds(1000) // probation: the first 150 rows
	cps := []int{500}
	sig := func(x float64) float64 { return 2/(1+math.Exp(5*x)) - 1 }
	for name, c := range map[string]struct {
		detections []int
		raw        [3]float64
		detected   int
		fps        int
	}{
		"never":              {nil, [3]float64{-1, -1, -2}, 0, 0},
		"at the changepoint": {[]int{500}, [3]float64{sig(-1), sig(-1), sig(-1)}, 1, 0},
		// Only the first detection in a window counts.
		"twice in the window": {[]int{530, 540}, [3]float64{sig(-31.0 / 61), sig(-31.0 / 61), sig(-31.0 / 61)}, 1, 0},
		// Before any window: a full false positive; in the probation: ignored.
		"before the window": {[]int{100, 200}, [3]float64{-1 - 0.11, -1 - 0.22, -2 - 0.11}, 0, 1},
		// After the window, weighed by how far after it, in window lengths.
		"after the window": {[]int{600}, [3]float64{-1 + 0.11*sig(40.0/60), -1 + 0.22*sig(40.0/60), -2 + 0.11*sig(40.0/60)}, 0, 1},
	} {
		n := backtest.ScoreNAB(times, cps, c.detections, backtest.NABWindow)
		for p := range backtest.Profiles {
			if !near(n.Raw[p], c.raw[p]) {
				t.Errorf("%s: %s raw %v, want %v", name, backtest.Profiles[p].Name, n.Raw[p], c.raw[p])
			}
		}
		if n.Windows != 1 || n.Detected != c.detected || n.FalsePositives != c.fps {
			t.Errorf("%s: %+v", name, n)
		}
		if name == "never" && n.Score(0) != 0 {
			t.Errorf("never alarming scores %v, want 0", n.Score(0))
		}
		if name == "at the changepoint" && !near(n.Score(0), 100) {
			t.Errorf("a detection at the changepoint scores %v, want 100", n.Score(0))
		}
	}
}

// Overlapping windows merge; a window's end is the last row within 60 s of its changepoint.
func TestWindowsMergeAndEndOnTheData(t *testing.T) {
	times := seconds(400)
	times = append(times[:300], times[330:]...) // 30 s missing after row 299
	ws := backtest.Windows(times, []int{100, 130, 280}, backtest.NABWindow)
	if len(ws) != 2 {
		t.Fatalf("windows %+v, want two", ws)
	}
	n := backtest.ScoreNAB(times, []int{100, 130, 280}, []int{100, 280}, backtest.NABWindow)
	if n.Windows != 2 || n.Detected != 2 || n.FalsePositives != 0 {
		t.Errorf("%+v", n)
	}
	// 280 + 60 s is 340 s, which is row 310 once 30 s are missing.
	n = backtest.ScoreNAB(times, []int{280}, []int{310, 311}, backtest.NABWindow)
	if n.Detected != 1 || n.FalsePositives != 1 {
		t.Errorf("the window should end at row 310: %+v", n)
	}
}

func TestConfusionRates(t *testing.T) {
	c := backtest.Confusion{TP: 30, FP: 10, TN: 90, FN: 70}
	if !near(c.F1(), 30/(30+40.0)) || !near(c.FAR(), 0.1) || !near(c.MAR(), 0.7) {
		t.Errorf("F1 %v FAR %v MAR %v", c.F1(), c.FAR(), c.MAR())
	}
	if (backtest.Confusion{}).F1() != 0 {
		t.Error("no rows: F1 should be 0")
	}
}

const skabLike = `datetime;Accelerometer1RMS;Volume Flow RateRMS;anomaly;changepoint
`

// A SKAB-like file scored end to end: a flow that drops by half at the changepoint is found
// in its window, and the file is counted labelled.
func TestScoreFileFindsAStepInItsWindow(t *testing.T) {
	var b strings.Builder
	b.WriteString(skabLike)
	t0 := time.Date(2020, 3, 9, 10, 0, 0, 0, time.UTC)
	for i := range 1000 {
		flow, label, cp := 32+0.2*math.Sin(float64(i)*1.7), "0", "0"
		if i >= 600 {
			flow, label = 16+0.2*math.Sin(float64(i)*1.7), "1"
		}
		if i == 600 {
			cp = "1"
		}
		b.WriteString(t0.Add(time.Duration(i)*time.Second).Format(time.DateTime) + ";" +
			strconvF(0.2+0.001*math.Cos(float64(i))) + ";" + strconvF(flow) + ";" + label + ";" + cp + "\n")
	}
	path := filepath.Join(t.TempDir(), "1.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cols := []backtest.Column{mustColumn(t, "Accelerometer1RMS=vibration"), mustColumn(t, "Volume Flow RateRMS=pressure flow")}
	set, err := rules.Uniform(rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules})
	if err != nil {
		t.Fatal(err)
	}
	s, err := backtest.ScoreFile(context.Background(), path, cols, set)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Labelled || s.Rows != 1000 || s.NAB.Windows != 1 || s.NAB.Detected != 1 || s.NAB.Score(0) < 90 {
		t.Errorf("%+v", s)
	}
	if s.Rows2x2.TP == 0 || s.Rows2x2.TP+s.Rows2x2.FN != 400 {
		t.Errorf("rows by label and alarm: %+v", s.Rows2x2)
	}
	var out strings.Builder
	if err := (backtest.Scores{s}).Report(&out); err != nil || !strings.Contains(out.String(), "| **all labelled** (1) | 1 | 1 | ") {
		t.Errorf("report %v:\n%s", err, out.String())
	}
}

func mustColumn(t *testing.T, s string) backtest.Column {
	t.Helper()
	c, err := backtest.ParseColumn(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
