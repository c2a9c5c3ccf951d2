package backtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// EquipmentID is the equipment the replayed sensor belongs to.
const EquipmentID = "backtest"

// Summary is what a run found.
type Summary struct {
	Type         sensor.Type
	RulesVersion string
	Rows         int // readings
	Judged       int // readings the detector gave a verdict (the window held enough)
	Anomalous    int // anomalous readings, hard limits included
	Opened       int // alarms opened
	Cleared      int // alarms cleared
	StillOpen    bool
	HeldBack     int // readings whose opening was held back because the sensor was flapping
	// InAlarm is how long alarms were open: from the reading that opened each to the one
	// that cleared it, or to the latest reading for one still open at the end.
	InAlarm     time.Duration
	First, Last time.Time // the earliest and the latest timestamp
	// OutOfOrder counts the readings timestamped before the reading above them; they are
	// judged in file order all the same, as the service judges readings in arrival order.
	OutOfOrder          int
	FirstOutOfOrderLine int
}

// Span is the time from the earliest reading to the latest.
func (s Summary) Span() time.Duration { return s.Last.Sub(s.First) }

// Run replays the readings of in as one sensor of type typ (equipment EquipmentID) through
// the rules of set, exactly as the service judges them: the detector, then the type's hard
// limits, then the alarm tracker, one reading at a time in file order. It writes one CSV row
// per reading to out. An error in the input stops the run with an *InputError naming the
// line; what was written until then stays written.
func Run(ctx context.Context, in io.Reader, out io.Writer, typ sensor.Type, set rules.Set) (Summary, error) {
	if _, err := sensor.ParseType(string(typ)); err != nil {
		return Summary{}, err
	}
	r := set.ForSensor(EquipmentID, typ)
	key := sensor.Key{EquipmentID: EquipmentID, Type: typ}
	d := anomaly.NewDetector(r.Detector)
	tr := alarm.NewTracker(key, r.Alarm, set.Version())
	ids := 0
	newID := func() string { ids++; return "backtest-" + strconv.Itoa(ids) }
	sum := Summary{Type: typ, RulesVersion: set.Version()}

	rd, err := NewReader(in)
	if err != nil {
		return sum, err
	}
	wr, err := NewWriter(out)
	if err != nil {
		return sum, fmt.Errorf("write: %w", err)
	}
	var (
		open     bool
		openedAt time.Time
		prev     time.Time
	)
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = wr.Flush()
			return sum, err
		}
		if sum.Rows&0xfff == 0 {
			if err := ctx.Err(); err != nil {
				_ = wr.Flush()
				return sum, err
			}
		}
		switch {
		case sum.Rows == 0:
			sum.First, sum.Last = row.Time, row.Time
		case row.Time.Before(prev):
			if sum.OutOfOrder == 0 {
				sum.FirstOutOfOrderLine = row.Line
			}
			sum.OutOfOrder++
		}
		if row.Time.Before(sum.First) {
			sum.First = row.Time
		}
		if row.Time.After(sum.Last) {
			sum.Last = row.Time
		}
		prev = row.Time
		sum.Rows++

		raw := d.Judge(key, row.Value)
		v := r.Judge(raw, row.Value)
		ev, a := tr.Observe(r.Observation(raw, row.Value, row.Time), newID)
		if v.Judged {
			sum.Judged++
		}
		if v.Anomalous {
			sum.Anomalous++
		}
		switch ev {
		case alarm.Opened:
			sum.Opened++
			open, openedAt = true, a.OpenedAt
		case alarm.Cleared:
			sum.Cleared++
			open = false
			sum.InAlarm += max(a.ClearedAt.Sub(a.OpenedAt), 0)
		case alarm.HeldBack:
			sum.HeldBack++
		}
		if err := wr.Write(Result{Row: row, Verdict: v, Event: ev, Open: open}); err != nil {
			return sum, fmt.Errorf("write: %w", err)
		}
	}
	if open {
		sum.StillOpen = true
		sum.InAlarm += max(sum.Last.Sub(openedAt), 0)
	}
	if err := wr.Flush(); err != nil {
		return sum, fmt.Errorf("write: %w", err)
	}
	return sum, nil
}

// Report writes the summary for people, one figure a line.
func (s Summary) Report(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "sensor type\t%s (equipment %s)\n", s.Type, EquipmentID)
	fmt.Fprintf(tw, "rules version\t%s\n", s.RulesVersion)
	if s.Rows > 0 {
		fmt.Fprintf(tw, "readings\t%d, from %s to %s (judged %d)\n", s.Rows,
			AppendTime(nil, s.First), AppendTime(nil, s.Last), s.Judged)
	} else {
		fmt.Fprintf(tw, "readings\t0\n")
	}
	fmt.Fprintf(tw, "anomalous readings\t%d%s\n", s.Anomalous, share(float64(s.Anomalous), float64(s.Rows)))
	still := ""
	if s.StillOpen {
		still = ", 1 still open at the end"
	}
	fmt.Fprintf(tw, "alarms opened\t%d (%d cleared%s)\n", s.Opened, s.Cleared, still)
	if s.HeldBack > 0 {
		fmt.Fprintf(tw, "openings held back\t%d (the sensor was flapping)\n", s.HeldBack)
	} else {
		fmt.Fprintf(tw, "openings held back\t0\n")
	}
	fmt.Fprintf(tw, "time in alarm\t%s of %s%s\n", s.InAlarm.Round(time.Millisecond), s.Span().Round(time.Millisecond),
		share(float64(s.InAlarm), float64(s.Span())))
	if s.OutOfOrder > 0 {
		fmt.Fprintf(tw, "out of time order\t%s, the first at line %d (judged in file order)\n", Readings(s.OutOfOrder), s.FirstOutOfOrderLine)
	}
	return tw.Flush()
}

// Readings is "1 reading" or "n readings".
func Readings(n int) string {
	if n == 1 {
		return "1 reading"
	}
	return strconv.Itoa(n) + " readings"
}

// share is " (12.34%)" of part in whole, or nothing when whole is 0.
func share(part, whole float64) string {
	if whole <= 0 {
		return ""
	}
	return fmt.Sprintf(" (%.2f%%)", 100*part/whole)
}
