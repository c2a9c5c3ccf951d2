package backtest_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/backtest"
	"github.com/production-line-monitor/plm/domain/sensor"
)

func TestParseTimeFormats(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for in, want := range map[string]time.Time{
		"2026-11-27T08:00:00Z":                utc("2026-11-27T08:00:00Z"),
		"2026-11-27T09:30:00+01:30":           utc("2026-11-27T08:00:00Z"),
		"2026-11-27T03:00:00.5-05:00":         utc("2026-11-27T08:00:00.5Z"),
		"2026-11-27T08:00:00.123456789Z":      utc("2026-11-27T08:00:00.123456789Z"),
		"2026-11-27 08:00:00":                 utc("2026-11-27T08:00:00Z"),
		"2026-11-27 08:00:00.25":              utc("2026-11-27T08:00:00.25Z"),
		"2026-11-27 08:00:00.000000001":       utc("2026-11-27T08:00:00.000000001Z"),
		"1795766400":                          utc("2026-11-27T08:00:00Z"),
		"1795766400.250":                      utc("2026-11-27T08:00:00.25Z"),
		"1795766400.123456789999":             utc("2026-11-27T08:00:00.123456789Z"), // beyond nanoseconds: cut
		"+1795766400.5":                       utc("2026-11-27T08:00:00.5Z"),
		"0":                                   utc("1970-01-01T00:00:00Z"),
		"-1.5":                                utc("1969-12-31T23:59:58.5Z"),
		"253402300799":                        utc("9999-12-31T23:59:59Z"),
		"1795766400.":                         utc("2026-11-27T08:00:00Z"),
		"2026-11-27T08:00:00.000000000+00:00": utc("2026-11-27T08:00:00Z"),
	} {
		got, err := backtest.ParseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for in, why := range map[string]string{
		"":                     "empty",
		"2026-11-27":           "is not a timestamp",
		"2026-11-27T08:00:00":  "is not a timestamp", // RFC 3339 needs an offset
		"2026-11-27 08:00:00Z": "is not a timestamp",
		"2026-13-27 08:00:00":  "month out of range",
		"2026-11-27T25:00:00Z": "hour out of range",
		"27/11/2026 08:00:00":  "is not a timestamp",
		"1795766400000":        "beyond the year 9999 as epoch seconds: milliseconds?",
		"-99999999999":         "before the year 1",
		"1.7957664e9":          "is not a timestamp",
		".5":                   "is not a timestamp",
		"1795766400,5":         "is not a timestamp",
		"now":                  "is not a timestamp",
	} {
		if got, err := backtest.ParseTime(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %v, %v; want an error saying %q", in, got, err, why)
		}
	}
}

func TestAppendTimeKeepsThePrecisionItNeeds(t *testing.T) {
	base := time.Date(2026, 11, 27, 8, 0, 0, 0, time.FixedZone("CET", 3600))
	for ns, want := range map[int]string{
		0:           "2026-11-27T07:00:00.000Z",
		250_000_000: "2026-11-27T07:00:00.250Z",
		250_500_000: "2026-11-27T07:00:00.250500Z",
		1:           "2026-11-27T07:00:00.000000001Z",
	} {
		if got := string(backtest.AppendTime(nil, base.Add(time.Duration(ns)))); got != want {
			t.Errorf("%d ns: %s, want %s", ns, got, want)
		}
	}
}

// Every error in the input names its line (the header is line 1) and, for a bad field, its
// column.
func TestInputErrorsNameTheLineAndColumn(t *testing.T) {
	const ok = "2026-11-27T08:00:00Z"
	cases := []struct {
		name, in     string
		line         int
		column, want string
	}{
		{"non-numeric value", "timestamp,value\n" + ok + ",70\n" + ok + ",seventy\n", 3, "value", `"seventy" is not a number`},
		{"NaN", "timestamp,value\n" + ok + ",NaN\n", 2, "value", `"NaN" is not a finite number`},
		{"infinity", "timestamp,value\n" + ok + ",70\n" + ok + ",-Inf\n", 3, "value", `"-Inf" is not a finite number`},
		{"beyond float64", "timestamp,value\n" + ok + ",1e400\n", 2, "value", `"1e400" is not a finite number`},
		{"empty value", "timestamp,value\n" + ok + ", \n", 2, "value", "empty"},
		{"bad timestamp", "value,timestamp\n70," + ok + "\n71,2026-11-27T08:00:01\n", 3, "timestamp", `"2026-11-27T08:00:01" is not a timestamp`},
		{"empty timestamp", "timestamp,value\n,70\n", 2, "timestamp", "empty"},
		{"blank lines are counted", "\ntimestamp,value\n\n" + ok + ",70\n\n" + ok + ",x\n", 6, "value", `"x" is not a number`},
		{"quoted field over two lines", "timestamp,note,value\n" + ok + ",\"a\nb\",70\n" + ok + ",c,x\n", 4, "value", `"x" is not a number`},
		{"too few fields", "timestamp,value,note\n" + ok + ",70,a\n" + ok + ",71\n", 3, "", "2 fields, the header has 3"},
		{"too many fields", "timestamp,value\n" + ok + ",70,a\n", 2, "", "3 fields, the header has 2"},
		{"bare quote", "timestamp,value\n" + ok + ",7\"0\n", 2, "", `bare " in non-quoted-field`},
		{"no value column", "timestamp,reading\n" + ok + ",70\n", 1, "", "the header has no value column (it has: timestamp, reading)"},
		{"no columns at all", "time,v\n", 1, "", "the header has no timestamp or value column (it has: time, v)"},
		{"two value columns", "value,timestamp,Value\n", 1, "", "two value columns (1 and 3)"},
		{"header after blank lines", "\n\ntime,value\n", 3, "", "the header has no timestamp column (it has: time, value)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := backtest.Run(context.Background(), strings.NewReader(c.in), io.Discard, sensor.Temperature, defaultSet(t))
			var ie *backtest.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an InputError", err)
			}
			if ie.Line != c.line || ie.Column != c.column || !strings.Contains(ie.Msg, c.want) {
				t.Errorf("got line %d, column %q, %q; want line %d, column %q, %q", ie.Line, ie.Column, ie.Msg, c.line, c.column, c.want)
			}
			prefix := "line " + strconv.Itoa(c.line)
			if c.column != "" {
				prefix += ", column " + c.column
			}
			if !strings.HasPrefix(err.Error(), prefix+": ") {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
		})
	}
	for _, empty := range []string{"", "\n\n"} {
		if _, err := backtest.Run(context.Background(), strings.NewReader(empty), io.Discard, sensor.Temperature, defaultSet(t)); !errors.Is(err, backtest.ErrEmpty) {
			t.Errorf("%q: err = %v, want ErrEmpty", empty, err)
		}
	}
}

// The header names its columns in any order and case, with spaces, quotes, a byte-order
// mark and other columns around them.
func TestHeaderIsFlexible(t *testing.T) {
	in := "\uFEFF\"Machine\", Value ,\"TimeStamp\"\npress-01,70.5,2026-11-27 08:00:00\npress-01, 71 ,1795766401.5\n"
	var out strings.Builder
	sum, err := backtest.Run(context.Background(), strings.NewReader(in), &out, sensor.Pressure, defaultSet(t))
	if err != nil {
		t.Fatal(err)
	}
	want := backtest.Header + "\n" +
		"2026-11-27T08:00:00.000Z,70.5,,false,,false,\n" +
		"2026-11-27T08:00:01.500Z,71,,false,,false,\n"
	if out.String() != want || sum.Rows != 2 {
		t.Errorf("output:\n%s\nwant:\n%s(summary %+v)", out.String(), want, sum)
	}
}
