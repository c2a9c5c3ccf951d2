package backtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// Column maps one column of a multi-sensor file to a sensor of the replayed machine.
type Column struct {
	Header string      // the column's name in the file's header
	Type   sensor.Type // whose rules judge it
	Sensor string      // the sensor's id within the machine
}

// ErrBadColumn is wrapped by the errors of a column mapping that cannot be used.
var ErrBadColumn = errors.New("bad column mapping")

// ParseColumn reads one mapping, "header=type" or "header=type sensor-id". Without an id the
// sensor is named after the header, each character an id may not hold replaced by '-'.
func ParseColumn(s string) (Column, error) {
	header, rest, ok := strings.Cut(s, "=")
	header = strings.TrimSpace(header)
	f := strings.Fields(rest)
	if !ok || header == "" || len(f) < 1 || len(f) > 2 {
		return Column{}, fmt.Errorf("%w %q: want header=type, or header=type sensor-id", ErrBadColumn, s)
	}
	c := Column{Header: header, Type: sensor.Type(f[0])}
	if len(f) == 2 {
		c.Sensor = f[1]
	} else {
		c.Sensor = SensorIDOf(header)
	}
	if !sensor.ValidTypeName(string(c.Type)) {
		return Column{}, fmt.Errorf("%w %q: %q is not a sensor type name (%s)", ErrBadColumn, s, c.Type, sensor.TypeNameRule)
	}
	if !sensor.ValidEquipmentID(c.Sensor) {
		return Column{}, fmt.Errorf("%w %q: %q is not a sensor id (1 to %d of A-Z a-z 0-9 . _ : -, starting with a letter or digit)",
			ErrBadColumn, s, c.Sensor, sensor.MaxEquipmentIDLen)
	}
	return c, nil
}

// SensorIDOf turns a column's header into a sensor id: characters an id may not hold become
// '-', and it is cut to the longest id.
func SensorIDOf(header string) string {
	b := []byte(strings.TrimSpace(header))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			b[i] = '-'
		}
	}
	b = bytes.TrimLeft(b, "._:-")
	if len(b) > sensor.MaxEquipmentIDLen {
		b = b[:sensor.MaxEquipmentIDLen]
	}
	return string(b)
}

// ReadColumns reads a mapping file: one ParseColumn mapping a line; blank lines and lines
// starting with # are skipped.
func ReadColumns(r io.Reader) ([]Column, error) {
	var cols []Column
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c, err := ParseColumn(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		cols = append(cols, c)
	}
	return cols, sc.Err()
}

// CheckColumns refuses a mapping that names a header or a sensor twice, or a type the rules
// do not know.
func CheckColumns(cols []Column, set rules.Set) error {
	if len(cols) == 0 {
		return fmt.Errorf("%w: no columns", ErrBadColumn)
	}
	headers, ids := map[string]bool{}, map[string]bool{}
	for _, c := range cols {
		switch {
		case headers[c.Header]:
			return fmt.Errorf("%w: column %q mapped twice", ErrBadColumn, c.Header)
		case ids[c.Sensor]:
			return fmt.Errorf("%w: two columns are sensor %q", ErrBadColumn, c.Sensor)
		case !set.Knows(c.Type):
			return fmt.Errorf("%w: column %q: unknown sensor type %q (the rules know %s; declare others in the rules file)",
				ErrBadColumn, c.Header, c.Type, typeList(set))
		}
		headers[c.Header], ids[c.Sensor] = true, true
	}
	return nil
}

func typeList(set rules.Set) string {
	ts := set.Types()
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// TableRow is one row of a multi-sensor file: a reading of each mapped column, and the
// row's labels when the file has them.
type TableRow struct {
	Line   int
	Time   time.Time
	Values []float64 // one a column, in the mapping's order; reused by the next row
	// Anomaly and Changepoint are the labels (0 or 1), or -1 when the file has no such column.
	Anomaly, Changepoint int8
}

// TableReader reads a multi-sensor CSV: a header naming a time column (timestamp or
// datetime), every mapped column, and optionally the labels anomaly and changepoint; other
// columns are ignored. Fields are separated by ',' or, when the header holds ';' and no
// ',', by ';' (SKAB's layout).
type TableReader struct {
	csv             *csv.Reader
	fields          int
	tsCol           int
	tsName          string // the time column's header
	cols            []int
	anomaly, cpoint int
	row             TableRow
	headers         []Column
}

// NewTableReader reads the header of in and finds the columns of cols.
func NewTableReader(in io.Reader, cols []Column) (*TableReader, error) {
	br := bufio.NewReaderSize(in, 64<<10)
	if bom, _ := br.Peek(3); string(bom) == "\uFEFF" {
		_, _ = br.Discard(3)
	}
	first, _ := br.Peek(4096)
	line, _, _ := bytes.Cut(first, []byte("\n"))
	c := csv.NewReader(br)
	c.ReuseRecord = true
	if bytes.IndexByte(line, ';') >= 0 && bytes.IndexByte(line, ',') < 0 {
		c.Comma = ';'
	}
	header, err := c.Read()
	if errors.Is(err, io.EOF) {
		return nil, ErrEmpty
	}
	if err != nil {
		return nil, inputError(err)
	}
	at, _ := c.FieldPos(0)
	t := &TableReader{csv: c, fields: len(header), tsCol: -1, anomaly: -1, cpoint: -1, headers: cols,
		cols: make([]int, len(cols)), row: TableRow{Values: make([]float64, len(cols))}}
	byName := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if _, dup := byName[h]; dup {
			return nil, &InputError{Line: at, Msg: fmt.Sprintf("two columns named %q", h)}
		}
		byName[h] = i
		switch strings.ToLower(h) {
		case "timestamp", "datetime":
			if t.tsCol >= 0 {
				return nil, &InputError{Line: at, Msg: "two time columns (timestamp or datetime)"}
			}
			t.tsCol, t.tsName = i, h
		case "anomaly":
			t.anomaly = i
		case "changepoint":
			t.cpoint = i
		}
	}
	if t.tsCol < 0 {
		return nil, &InputError{Line: at, Msg: "the header has no timestamp or datetime column"}
	}
	for j, col := range cols {
		i, ok := byName[col.Header]
		if !ok {
			return nil, &InputError{Line: at, Msg: fmt.Sprintf("the header has no column %q (it has: %s)", col.Header, strings.Join(header, ", "))}
		}
		t.cols[j] = i
	}
	return t, nil
}

// Labelled reports whether the file has an anomaly column.
func (t *TableReader) Labelled() bool { return t.anomaly >= 0 }

// Next returns the next row, or io.EOF after the last. The row's Values are overwritten by
// the next call.
func (t *TableReader) Next() (TableRow, error) {
	rec, line, err := readRecord(t.csv, t.fields)
	if err != nil {
		return TableRow{}, err
	}
	t.row.Line = line
	if t.row.Time, err = ParseTime(strings.TrimSpace(rec[t.tsCol])); err != nil {
		return TableRow{}, &InputError{Line: line, Column: t.tsName, Msg: err.Error()}
	}
	for j, i := range t.cols {
		v, err := parseValue(strings.TrimSpace(rec[i]))
		if err != nil {
			return TableRow{}, &InputError{Line: line, Column: t.headers[j].Header, Msg: err.Error()}
		}
		t.row.Values[j] = v
	}
	for _, l := range []struct {
		col  int
		dst  *int8
		name string
	}{{t.anomaly, &t.row.Anomaly, "anomaly"}, {t.cpoint, &t.row.Changepoint, "changepoint"}} {
		*l.dst = -1
		if l.col < 0 {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[l.col]), 64)
		if err != nil || (v != 0 && v != 1) {
			return TableRow{}, &InputError{Line: line, Column: l.name, Msg: fmt.Sprintf("%q is not a label (0 or 1)", rec[l.col])}
		}
		*l.dst = int8(v)
	}
	return t.row, nil
}

func parseValue(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	switch {
	case v == "":
		return 0, errors.New("empty")
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("%q is not a number", v)
	case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
		return 0, fmt.Errorf("%q is not a finite number", v)
	}
	return f, nil
}

// Machine judges the readings of one machine's sensors as the service does: each sensor's
// detector, its type's hard limits, its alarm tracker.
type Machine struct {
	sensors []machineSensor
	version string
	ids     int
	open    int // sensors with an open alarm
	// incidents groups the machine's alarms as the service does; Incidents counts those
	// that opened.
	incidents *alarm.Incidents
	Incidents int
}

type machineSensor struct {
	col     Column
	key     sensor.Key
	rules   rules.Rules
	det     *anomaly.Detector
	tracker *alarm.Tracker
	open    bool
}

// SensorVerdict is what the machine made of one sensor's reading.
type SensorVerdict struct {
	Verdict anomaly.Verdict
	Event   alarm.Event
	Open    bool // the sensor has an open alarm after the reading
	// Cause is what opened the alarm, on the reading that opened it.
	Cause anomaly.Finding
}

// NewMachine prepares the sensors of cols (checked with CheckColumns) under set.
func NewMachine(cols []Column, set rules.Set) *Machine {
	m := &Machine{version: set.Version(), sensors: make([]machineSensor, len(cols)), incidents: alarm.NewIncidents(nil)}
	for i, c := range cols {
		r := set.ForSensor(EquipmentID, c.Type)
		key := sensor.Key{EquipmentID: EquipmentID, Type: c.Type, Sensor: c.Sensor}
		m.sensors[i] = machineSensor{col: c, key: key, rules: r, det: anomaly.NewDetector(r.Detector),
			tracker: alarm.NewTracker(key, r.Alarm, set.Version())}
	}
	return m
}

// Judge folds in one reading of each sensor, taken at at, writing each sensor's verdict into
// out (one a sensor). It reports whether an alarm opened on any sensor, and whether any is
// open after the row.
func (m *Machine) Judge(at time.Time, values []float64, out []SensorVerdict) (opened, open bool) {
	for i := range m.sensors {
		s := &m.sensors[i]
		raw := s.det.Judge(s.key, values[i])
		v := s.rules.Judge(raw, values[i])
		ev, a := s.tracker.Observe(s.rules.Observation(raw, values[i], at), m.newID)
		switch ev {
		case alarm.Opened:
			opened = true
			if _, isNew := m.incidents.Opened(a); isNew {
				m.Incidents++
			}
			if !s.open {
				s.open = true
				m.open++
			}
		case alarm.Cleared:
			m.incidents.Cleared(a)
			if s.open {
				s.open = false
				m.open--
			}
		}
		out[i] = SensorVerdict{Verdict: v, Event: ev, Open: s.open, Cause: a.Evidence}
	}
	return opened, m.open > 0
}

func (m *Machine) newID() string {
	m.ids++
	return "backtest-" + strconv.Itoa(m.ids)
}

// MachineHeader is the first row of a multi-sensor run's output.
const MachineHeader = "timestamp,sensor_id,sensor_type,value,z_score,anomalous,severity,alarm_opened,alarm_state,cause,statistic,limit"

// SensorSummary is what a run found on one sensor.
type SensorSummary struct {
	Column
	Anomalous, Opened int
	ByCause           map[anomaly.Check]int // openings by what opened them
}

// MachineSummary is what a multi-sensor run found.
type MachineSummary struct {
	RulesVersion string
	Rows         int
	First, Last  time.Time
	Sensors      []SensorSummary
	// Openings counts the rows on which an alarm opened on some sensor; InAlarm is how long
	// the machine had an alarm open.
	Openings int
	InAlarm  time.Duration
	// Incidents counts the machine's incidents (see Machine.Incidents).
	Incidents int
}

// RunMachine replays a multi-sensor file as one machine (equipment EquipmentID), one sensor a
// column of cols, row by row in file order, and writes one CSV row a reading to out (out may
// be io.Discard).
func RunMachine(ctx context.Context, in io.Reader, out io.Writer, cols []Column, set rules.Set) (MachineSummary, error) {
	sum := MachineSummary{RulesVersion: set.Version(), Sensors: make([]SensorSummary, len(cols))}
	if err := CheckColumns(cols, set); err != nil {
		return sum, err
	}
	for i, c := range cols {
		sum.Sensors[i].Column = c
	}
	rd, err := NewTableReader(in, cols)
	if err != nil {
		return sum, err
	}
	w := bufio.NewWriterSize(out, 64<<10)
	if _, err := w.WriteString(MachineHeader + "\n"); err != nil {
		return sum, fmt.Errorf("write: %w", err)
	}
	m := NewMachine(cols, set)
	verdicts := make([]SensorVerdict, len(cols))
	var (
		buf       []byte
		wasOpen   bool
		openSince time.Time
	)
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = w.Flush()
			return sum, err
		}
		if sum.Rows&0xfff == 0 {
			if err := ctx.Err(); err != nil {
				_ = w.Flush()
				return sum, err
			}
		}
		if sum.Rows == 0 {
			sum.First = row.Time
		}
		sum.Last = row.Time
		sum.Rows++
		opened, open := m.Judge(row.Time, row.Values, verdicts)
		if opened {
			sum.Openings++
		}
		switch {
		case open && !wasOpen:
			openSince = row.Time
		case !open && wasOpen:
			sum.InAlarm += max(row.Time.Sub(openSince), 0)
		}
		wasOpen = open
		for i, v := range verdicts {
			if v.Verdict.Anomalous {
				sum.Sensors[i].Anomalous++
			}
			if v.Event == alarm.Opened {
				sum.Sensors[i].Opened++
				if sum.Sensors[i].ByCause == nil {
					sum.Sensors[i].ByCause = map[anomaly.Check]int{}
				}
				sum.Sensors[i].ByCause[v.Cause.Check]++
			}
			buf = AppendTime(buf[:0], row.Time)
			buf = append(buf, ',')
			buf = append(buf, cols[i].Sensor...)
			buf = append(buf, ',')
			buf = append(buf, cols[i].Type...)
			buf = append(buf, ',')
			buf = appendResult(buf, Result{Row: Row{Time: row.Time, Value: row.Values[i]}, Verdict: v.Verdict, Event: v.Event, Open: v.Open})
			buf = buf[:len(buf)-1] // the line goes on
			buf = append(buf, ',')
			if v.Event == alarm.Opened {
				buf = append(buf, v.Cause.Check.String()...)
				buf = append(buf, ',')
				buf = strconv.AppendFloat(buf, v.Cause.Statistic, 'g', 6, 64)
				buf = append(buf, ',')
				buf = strconv.AppendFloat(buf, v.Cause.Limit, 'g', 6, 64)
			} else {
				buf = append(buf, ',', ',')
			}
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				return sum, fmt.Errorf("write: %w", err)
			}
		}
	}
	if wasOpen {
		sum.InAlarm += max(sum.Last.Sub(openSince), 0)
	}
	sum.Incidents = m.Incidents
	if err := w.Flush(); err != nil {
		return sum, fmt.Errorf("write: %w", err)
	}
	return sum, nil
}

// Report writes the summary for people.
func (s MachineSummary) Report(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "machine %s, rules version %s\n", EquipmentID, s.RulesVersion)
	if s.Rows > 0 {
		fmt.Fprintf(bw, "rows %d, from %s to %s\n", s.Rows, AppendTime(nil, s.First), AppendTime(nil, s.Last))
	}
	hours := s.Last.Sub(s.First).Hours()
	perHour := ""
	if hours > 0 {
		perHour = fmt.Sprintf(", %.1f per machine-hour", float64(s.Openings)/hours)
	}
	fmt.Fprintf(bw, "alarm openings %d%s, in %d incidents; time in alarm %s\n", s.Openings, perHour, s.Incidents, s.InAlarm)
	fmt.Fprintf(bw, "%-24s %-12s %10s %8s  %s\n", "sensor", "type", "anomalous", "alarms", "opened by")
	for _, ss := range s.Sensors {
		var by []string
		for _, c := range anomaly.AllChecks {
			if n := ss.ByCause[c]; n > 0 {
				by = append(by, fmt.Sprintf("%s %d", c, n))
			}
		}
		fmt.Fprintf(bw, "%-24s %-12s %10d %8d  %s\n", ss.Sensor, ss.Type, ss.Anomalous, ss.Opened, strings.Join(by, ", "))
	}
	return bw.Flush()
}
