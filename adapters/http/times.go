package http

import (
	"errors"
	"time"

	"github.com/production-line-monitor/plm/adapters/eventwire"
)

// timeLayout is how every answer writes a time: UTC, millisecond precision.
const timeLayout = eventwire.TimeLayout

var errBadTime = errors.New("must be an RFC 3339 time with an offset, e.g. 2026-11-27T08:15:00Z")

// parseTime reads an RFC 3339 time, which must carry its offset ("Z" or "±hh:mm"), and fall
// within the years 0 to 9999 once in UTC (as every answer writes it): 0000-01-01T00:00:00+01:00
// is a time of the year -1, which no answer could write.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errBadTime
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return time.Time{}, errBadTime
	}
	return t, nil
}

// formatTime writes t in UTC with millisecond precision.
func formatTime(t time.Time) string {
	return t.UTC().Format(timeLayout)
}

// jsonTime is a time as answers write it; the zero time is null.
type jsonTime time.Time

// MarshalJSON implements json.Marshaler.
func (t jsonTime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	b := make([]byte, 0, len(timeLayout)+2)
	b = append(b, '"')
	b = tt.UTC().AppendFormat(b, timeLayout)
	return append(b, '"'), nil
}
