// Package backtest replays a sensor's recorded readings through the production detection
// and alarm logic: readings in from CSV, one verdict and alarm state per reading out to CSV,
// and a summary.
package backtest

import (
	"bufio"
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
)

// InputError is a problem with the input, at a line (counting from 1, the header and blank
// lines included) and, when it is about one field, a column.
type InputError struct {
	Line   int
	Column string // "timestamp" or "value"; empty when the line as a whole is wrong
	Msg    string
}

func (e *InputError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("line %d, column %s: %s", e.Line, e.Column, e.Msg)
}

// ErrEmpty is the error of an input without even a header row.
var ErrEmpty = errors.New("the input is empty: it needs a header row with timestamp and value columns")

// Row is one reading of the input.
type Row struct {
	Line  int // in the input, counting the header and blank lines
	Time  time.Time
	Value float64
}

// Reader reads readings from CSV: a header row naming a timestamp and a value column (in any
// order and case, among other columns, which are ignored), then one reading a row.
type Reader struct {
	csv           *csv.Reader
	fields        int
	tsCol, valCol int
}

// NewReader reads the header of in.
func NewReader(in io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(in, 64<<10)
	if bom, _ := br.Peek(3); string(bom) == "\uFEFF" {
		_, _ = br.Discard(3) // a byte-order mark, as spreadsheets write
	}
	c := csv.NewReader(br)
	c.ReuseRecord = true
	header, err := c.Read()
	if errors.Is(err, io.EOF) {
		return nil, ErrEmpty
	}
	if err != nil {
		return nil, inputError(err)
	}
	line, _ := c.FieldPos(0) // 1, unless blank lines come first
	r := &Reader{csv: c, fields: len(header), tsCol: -1, valCol: -1}
	names := make([]string, len(header))
	for i, h := range header {
		names[i] = strings.ToLower(strings.TrimSpace(h))
		for _, col := range []struct {
			name string
			at   *int
		}{{"timestamp", &r.tsCol}, {"value", &r.valCol}} {
			if names[i] != col.name {
				continue
			}
			if *col.at >= 0 {
				return nil, &InputError{Line: line, Msg: fmt.Sprintf("two %s columns (%d and %d)", col.name, *col.at+1, i+1)}
			}
			*col.at = i
		}
	}
	var missing []string
	if r.tsCol < 0 {
		missing = append(missing, "timestamp")
	}
	if r.valCol < 0 {
		missing = append(missing, "value")
	}
	if len(missing) > 0 {
		return nil, &InputError{Line: line, Msg: fmt.Sprintf("the header has no %s column (it has: %s)",
			strings.Join(missing, " or "), strings.Join(names, ", "))}
	}
	return r, nil
}

// inputError turns an error of encoding/csv into an InputError.
func inputError(err error) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("read: %w", err)
	}
	return &InputError{Line: pe.Line, Msg: fmt.Sprintf("%v (byte %d of the line)", pe.Err, pe.Column)}
}

// readRecord reads the next record of c and the line it starts on: io.EOF after the last, an
// *InputError for a record that is not CSV or has other than fields fields.
func readRecord(c *csv.Reader, fields int) ([]string, int, error) {
	rec, err := c.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, io.EOF
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
			return nil, 0, &InputError{Line: pe.StartLine, Msg: fmt.Sprintf("%d fields, the header has %d", len(rec), fields)}
		}
		return nil, 0, inputError(err)
	}
	line, _ := c.FieldPos(0)
	return rec, line, nil
}

// Next returns the next reading, or io.EOF after the last.
func (r *Reader) Next() (Row, error) {
	rec, line, err := readRecord(r.csv, r.fields)
	if err != nil {
		return Row{}, err
	}
	row := Row{Line: line}
	ts := strings.TrimSpace(rec[r.tsCol])
	if row.Time, err = ParseTime(ts); err != nil {
		return Row{}, &InputError{Line: line, Column: "timestamp", Msg: err.Error()}
	}
	if row.Value, err = parseValue(strings.TrimSpace(rec[r.valCol])); err != nil {
		return Row{}, &InputError{Line: line, Column: "value", Msg: err.Error()}
	}
	return row, nil
}

// maxEpoch is the last second of the year 9999: epoch seconds beyond it are most likely
// milliseconds.
const maxEpoch = 253402300799

// minEpoch is how many seconds before 1970 the year 1 began.
const minEpoch = 62135596800

// ParseTime reads a timestamp of the input: RFC 3339 with an offset
// (2026-11-27T08:00:00.5+01:00), YYYY-MM-DD HH:MM:SS with optional fractional seconds,
// taken as UTC, or epoch seconds, whole or decimal (1795766400.25).
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty")
	}
	why := ""
	if len(s) >= 19 && s[4] == '-' && s[7] == '-' && s[13] == ':' {
		layout := ""
		switch s[10] {
		case 'T':
			layout = time.RFC3339Nano
		case ' ':
			// Without a zone time.Parse gives UTC, and it takes fractional seconds that the
			// layout does not show.
			layout = time.DateTime
		}
		if layout != "" {
			t, err := time.Parse(layout, s)
			if err == nil {
				return t, nil
			}
			if pe := (*time.ParseError)(nil); errors.As(err, &pe) && pe.Message != "" {
				why = pe.Message // ": month out of range"
			}
		}
	} else if t, ok, err := parseEpoch(s); ok {
		return t, err
	}
	return time.Time{}, fmt.Errorf("%q is not a timestamp%s: want RFC 3339 with an offset (2026-11-27T08:00:00Z), "+
		"YYYY-MM-DD HH:MM:SS[.fff] in UTC, or epoch seconds (1795766400 or 1795766400.250)", s, why)
}

// parseEpoch reads [-]digits[.digits] as seconds since 1970; ok is false when s has
// another shape.
func parseEpoch(s string) (t time.Time, ok bool, err error) {
	neg := s[0] == '-'
	if neg || s[0] == '+' {
		s = s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || !digits(whole) || !digits(frac) {
		return time.Time{}, false, nil
	}
	sec := int64(math.MaxInt64) // beyond maxEpoch and minEpoch
	if len(whole) <= 12 {
		sec, _ = strconv.ParseInt(whole, 10, 64)
	}
	if neg && sec > minEpoch {
		return time.Time{}, true, fmt.Errorf("-%s is before the year 1 as epoch seconds", s)
	}
	if sec > maxEpoch {
		return time.Time{}, true, fmt.Errorf("%q is beyond the year 9999 as epoch seconds: milliseconds? give seconds", s)
	}
	var nsec int64
	for i := range 9 {
		nsec *= 10
		if i < len(frac) {
			nsec += int64(frac[i] - '0')
		}
	}
	if neg {
		sec, nsec = -sec, -nsec
	}
	return time.Unix(sec, nsec).UTC(), true, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Header is the first row of the output.
const Header = "timestamp,value,z_score,anomalous,severity,alarm_opened,alarm_state"

// Result is a reading as the production logic judged it.
type Result struct {
	Row
	Verdict anomaly.Verdict
	Event   alarm.Event
	Open    bool // an alarm is open after the reading
}

// State is the alarm_state column: ACTIVE while an alarm is open after the reading, CLEARED
// on the reading that cleared it, HELD_BACK on a reading that would have opened one had the
// sensor not been flapping, empty otherwise.
func (r Result) State() string {
	switch {
	case r.Event == alarm.Cleared:
		return string(alarm.StateCleared)
	case r.Event == alarm.HeldBack:
		return "HELD_BACK"
	case r.Open:
		return string(alarm.StateActive)
	}
	return ""
}

// Writer writes results as CSV, one row each, under Header.
type Writer struct {
	w   *bufio.Writer
	buf []byte
}

// NewWriter writes the header to out.
func NewWriter(out io.Writer) (*Writer, error) {
	w := &Writer{w: bufio.NewWriterSize(out, 64<<10), buf: make([]byte, 0, 256)}
	_, err := w.w.WriteString(Header + "\n")
	return w, err
}

// Write writes one result: the timestamp in RFC 3339 UTC (milliseconds, or micro- or
// nanoseconds when the reading has them), the value and z-score as the shortest decimals
// that read back exactly (z empty while the window is too short for a verdict), and the
// verdict and alarm columns.
func (w *Writer) Write(r Result) error {
	b := AppendTime(w.buf[:0], r.Time)
	b = append(b, ',')
	b = appendResult(b, r)
	w.buf = b
	_, err := w.w.Write(b)
	return err
}

// appendResult appends the columns of r from its value on, and the line's end.
func appendResult(b []byte, r Result) []byte {
	b = strconv.AppendFloat(b, r.Value, 'g', -1, 64)
	b = append(b, ',')
	if r.Verdict.Judged {
		b = strconv.AppendFloat(b, r.Verdict.ZScore, 'g', -1, 64)
	}
	b = append(b, ',')
	b = strconv.AppendBool(b, r.Verdict.Anomalous)
	b = append(b, ',')
	if r.Verdict.Anomalous {
		b = append(b, r.Verdict.Severity...)
	}
	b = append(b, ',')
	b = strconv.AppendBool(b, r.Event == alarm.Opened)
	b = append(b, ',')
	b = append(b, r.State()...)
	return append(b, '\n')
}

// Flush writes what is buffered.
func (w *Writer) Flush() error { return w.w.Flush() }

// AppendTime appends t in RFC 3339, UTC, with milliseconds, or micro- or nanoseconds when
// t has them.
func AppendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	switch ns := t.Nanosecond(); {
	case ns%1e6 == 0:
		b = appendDigits(b, ns/1e6, 3)
	case ns%1e3 == 0:
		b = appendDigits(b, ns/1e3, 6)
	default:
		b = appendDigits(b, ns, 9)
	}
	return append(b, 'Z')
}

// appendDigits appends n (not negative) in exactly width digits.
func appendDigits(b []byte, n, width int) []byte {
	var d [9]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[:width]...)
}
