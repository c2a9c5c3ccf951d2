package backtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/production-line-monitor/plm/domain/rules"
)

// Profile weighs the outcomes of NAB's scoring (Lavin & Ahmad 2015): the reward of a
// detected window, the cost of a detection outside every window, the cost of a window
// missed.
type Profile struct {
	Name       string
	TP, FP, FN float64
}

// Profiles are NAB's three: standard, rewarding a low false-positive rate, rewarding a low
// false-negative rate.
var Profiles = [3]Profile{{"standard", 1, 0.11, 1}, {"low-FP", 1, 0.22, 1}, {"low-FN", 1, 0.11, 2}}

// NAB is the raw NAB score of some files under each profile, with the scores a detector that
// never fires (Null) and a perfect one (Perfect) would have had on them.
type NAB struct {
	Raw, Null, Perfect [len(Profiles)]float64
	Windows            int
	Detected           int // windows with a detection
	FalsePositives     int // detections outside every window, after the probation
}

// Add sums o into n.
func (n *NAB) Add(o NAB) {
	for p := range Profiles {
		n.Raw[p] += o.Raw[p]
		n.Null[p] += o.Null[p]
		n.Perfect[p] += o.Perfect[p]
	}
	n.Windows += o.Windows
	n.Detected += o.Detected
	n.FalsePositives += o.FalsePositives
}

// Score is the normalised score under profile p: 0 for never firing, 100 for perfect.
func (n NAB) Score(p int) float64 {
	d := n.Perfect[p] - n.Null[p]
	if d == 0 {
		return 0
	}
	return 100 * (n.Raw[p] - n.Null[p]) / d
}

// scaledSigmoid is NAB's weight of a detection at a relative position: from about 0.99 at a
// window's start to 0 at its end, and from 0 to -1 after it.
func scaledSigmoid(pos float64) float64 {
	if pos > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*pos)) - 1
}

// ProbationRows is how many rows at the start of a file NAB ignores detections in: 15% of
// them, at most 750.
func ProbationRows(rows int) int {
	return int(math.Min(math.Floor(0.15*float64(rows)), 0.15*5000))
}

type window struct{ start, end int } // row indices, both inside

// Windows are the scoring windows of a file: from each changepoint (a row index) to the last
// row within width after it, overlapping windows merged.
func Windows(times []time.Time, changepoints []int, width time.Duration) []window {
	cps := append([]int(nil), changepoints...)
	sort.Ints(cps)
	var ws []window
	for _, c := range cps {
		end := c
		limit := times[c].Add(width)
		for end+1 < len(times) && !times[end+1].After(limit) {
			end++
		}
		if n := len(ws); n > 0 && c <= ws[n-1].end {
			ws[n-1].end = max(ws[n-1].end, end)
			continue
		}
		ws = append(ws, window{c, end})
	}
	return ws
}

// ScoreNAB scores detections (row indices, in order) against the windows of a file whose
// rows are timestamped times: the first detection in a window earns the profile's reward
// weighed by how early it came, a window without one costs the profile's miss, and each
// detection outside every window costs the profile's false positive, weighed by how long
// after the previous window it came. Detections in the probation are ignored.
func ScoreNAB(times []time.Time, changepoints, detections []int, width time.Duration) NAB {
	ws := Windows(times, changepoints, width)
	probation := ProbationRows(len(times))
	var n NAB
	n.Windows = len(ws)
	best := make([]float64, len(ws))
	hit := make([]bool, len(ws))
	var fp float64
	w := 0 // the first window that does not end before the detection
	for _, i := range detections {
		if i < probation {
			continue
		}
		for w < len(ws) && ws[w].end < i {
			w++
		}
		if w < len(ws) && ws[w].start <= i {
			width := float64(ws[w].end - ws[w].start + 1)
			v := scaledSigmoid(-float64(ws[w].end-i+1) / width)
			if !hit[w] || v > best[w] {
				best[w], hit[w] = v, true
			}
			continue
		}
		n.FalsePositives++
		if w == 0 {
			fp += -1
			continue
		}
		prev := ws[w-1]
		pos := float64(i-prev.end) / math.Max(float64(prev.end-prev.start), 1)
		fp += scaledSigmoid(pos)
	}
	for p, pr := range Profiles {
		n.Raw[p] = pr.FP * fp
		for k := range ws {
			if hit[k] {
				n.Raw[p] += pr.TP * best[k]
			} else {
				n.Raw[p] -= pr.FN
			}
		}
		n.Null[p] = -pr.FN * float64(len(ws))
		n.Perfect[p] = pr.TP * scaledSigmoid(-1) * float64(len(ws))
	}
	for _, h := range hit {
		if h {
			n.Detected++
		}
	}
	return n
}

// Confusion counts rows by label (anomaly) and by the machine being in alarm.
type Confusion struct{ TP, FP, TN, FN int }

// Add sums o into c.
func (c *Confusion) Add(o Confusion) { c.TP += o.TP; c.FP += o.FP; c.TN += o.TN; c.FN += o.FN }

// F1 is the harmonic mean of precision and recall.
func (c Confusion) F1() float64 { return ratio(float64(c.TP), float64(c.TP)+float64(c.FP+c.FN)/2) }

// FAR is the false-alarm rate: normal rows in alarm, of all normal rows.
func (c Confusion) FAR() float64 { return ratio(float64(c.FP), float64(c.FP+c.TN)) }

// MAR is the missed-alarm rate: anomalous rows not in alarm, of all anomalous rows.
func (c Confusion) MAR() float64 { return ratio(float64(c.FN), float64(c.FN+c.TP)) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// FileScore is one file replayed as a machine and scored.
type FileScore struct {
	Path      string
	Rows      int
	Span      time.Duration
	Labelled  bool
	Openings  int // rows on which an alarm opened on some sensor
	Incidents int // the machine's incidents (see Machine.Incidents)
	NAB       NAB
	Rows2x2   Confusion // by row: the anomaly label against the machine being in alarm
}

// NABWindow is the width of SKAB's scoring window, to the right of each changepoint.
const NABWindow = 60 * time.Second

// ScoreFile replays one file as a machine under set and scores it.
func ScoreFile(ctx context.Context, path string, cols []Column, set rules.Set) (FileScore, error) {
	fs := FileScore{Path: path}
	f, err := os.Open(path)
	if err != nil {
		return fs, err
	}
	defer f.Close()
	rd, err := NewTableReader(f, cols)
	if err != nil {
		return fs, fmt.Errorf("%s: %w", path, err)
	}
	fs.Labelled = rd.Labelled()
	m := NewMachine(cols, set)
	verdicts := make([]SensorVerdict, len(cols))
	var times []time.Time
	var cps, detections []int
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fs, fmt.Errorf("%s: %w", path, err)
		}
		if len(times)&0xfff == 0 {
			if err := ctx.Err(); err != nil {
				return fs, err
			}
		}
		i := len(times)
		times = append(times, row.Time)
		opened, open := m.Judge(row.Time, row.Values, verdicts)
		if opened {
			detections = append(detections, i)
		}
		if row.Changepoint == 1 {
			cps = append(cps, i)
		}
		switch {
		case row.Anomaly < 0:
		case row.Anomaly == 1 && open:
			fs.Rows2x2.TP++
		case row.Anomaly == 1:
			fs.Rows2x2.FN++
		case open:
			fs.Rows2x2.FP++
		default:
			fs.Rows2x2.TN++
		}
	}
	fs.Rows, fs.Openings, fs.Incidents = len(times), len(detections), m.Incidents
	if len(times) > 0 {
		fs.Span = times[len(times)-1].Sub(times[0])
	}
	if fs.Labelled {
		fs.NAB = ScoreNAB(times, cps, detections, NABWindow)
	}
	return fs, nil
}

// CSVFiles lists the .csv files of paths: files as given, folders walked, in name order.
func CSVFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.EqualFold(filepath.Ext(path), ".csv") {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// Scores is a set of scored files.
type Scores []FileScore

// group sums the files whose folder is dir ("" for all) and that are labelled or not.
func (s Scores) group(dir string, labelled bool) (files int, n NAB, c Confusion, openings, incidents int, span time.Duration) {
	for _, f := range s {
		if f.Labelled != labelled || (dir != "" && filepath.Base(filepath.Dir(f.Path)) != dir) {
			continue
		}
		files++
		n.Add(f.NAB)
		c.Add(f.Rows2x2)
		openings += f.Openings
		incidents += f.Incidents
		span += f.Span
	}
	return
}

// Report writes the scores as Markdown tables: the labelled files by folder and in all, and
// the alarms per machine-hour of the unlabelled ones.
func (s Scores) Report(w io.Writer) error {
	var dirs []string
	seen := map[string]bool{}
	for _, f := range s {
		d := filepath.Base(filepath.Dir(f.Path))
		if f.Labelled && !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	sort.Strings(dirs)
	fmt.Fprintln(w, "| files | windows | detected | false alarms | NAB standard | NAB low-FP | NAB low-FN | F1 | FAR % | MAR % | alarms per machine-hour |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	line := func(name string, files int, n NAB, c Confusion, openings int, span time.Duration) {
		fmt.Fprintf(w, "| %s (%d) | %d | %d | %d | %.1f | %.1f | %.1f | %.2f | %.1f | %.1f | %.1f |\n", name, files,
			n.Windows, n.Detected, n.FalsePositives, n.Score(0), n.Score(1), n.Score(2),
			c.F1(), 100*c.FAR(), 100*c.MAR(), perHour(openings, span))
	}
	for _, d := range dirs {
		files, n, c, o, _, sp := s.group(d, true)
		line(d, files, n, c, o, sp)
	}
	if files, n, c, o, _, sp := s.group("", true); files > 0 {
		line("**all labelled**", files, n, c, o, sp)
	}
	if files, _, _, o, inc, sp := s.group("", false); files > 0 {
		fmt.Fprintf(w, "\nUnlabelled (normal operation), %d file(s), %s: **%d alarm openings, %.2f per machine-hour**, in %d incidents (%.2f per machine-hour)\n",
			files, sp.Round(time.Second), o, perHour(o, sp), inc, perHour(inc, sp))
	}
	return nil
}

func perHour(n int, span time.Duration) float64 {
	if span <= 0 {
		return 0
	}
	return float64(n) / span.Hours()
}
