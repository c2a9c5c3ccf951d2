// Package equipment holds a machine of the production line and the rules of its status.
package equipment

import (
	"errors"
	"fmt"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"sort"
	"time"
	"unicode/utf8"
)

// Status is what the service says about a machine. Its value is the wire form.
type Status string

// The statuses a machine can be in.
const (
	StatusOnline  Status = "ONLINE"
	StatusOffline Status = "OFFLINE"
	StatusAnomaly Status = "ANOMALY"
	// StatusMaintenance: a maintenance window covers now (it takes precedence over the
	// others; see Rules.StatusWith).
	StatusMaintenance Status = "MAINTENANCE"
)

// Equipment is a machine that sends readings. LastSeenAt is when the service last received a
// reading from it (zero if never); LastAnomalyAt is when an anomaly of it was last detected.
type Equipment struct {
	ID            string
	Name          string
	Line          string
	Location      string
	CreatedAt     time.Time
	LastSeenAt    time.Time
	LastAnomalyAt time.Time
}

// Metadata is the part of an Equipment that people edit.
type Metadata struct {
	Name     string
	Line     string
	Location string
}

// MaxMetadataLen bounds each metadata field, in characters.
const MaxMetadataLen = 128

// ErrMetadataTooLong is returned by Metadata.Validate.
var ErrMetadataTooLong = errors.New("metadata field is too long")

// Validate checks the fields' lengths.
func (m Metadata) Validate() error {
	for name, v := range map[string]string{"name": m.Name, "line": m.Line, "location": m.Location} {
		if utf8.RuneCountInString(v) > MaxMetadataLen {
			return fmt.Errorf("%s: %w", name, ErrMetadataTooLong)
		}
	}
	return nil
}

// Rules decide a machine's status from when it was last seen and when it last misbehaved.
type Rules struct {
	// OfflineAfter is how long a machine may be silent before it is OFFLINE.
	OfflineAfter time.Duration
	// AnomalyWindow is how long after an anomaly a machine stays ANOMALY.
	AnomalyWindow time.Duration
	// AnomalyFrom is the least severity of an anomalous reading that makes a machine ANOMALY
	// for AnomalyWindow (an open alarm makes it ANOMALY whatever the readings). LOW is the
	// contract's rule, any anomalous reading; the default is CRITICAL, so that noise on a
	// healthy machine, a LOW reading now and then, does not hold it ANOMALY.
	AnomalyFrom anomaly.Severity
}

// DefaultRules are the contract's offline and anomaly windows, and ANOMALY from a CRITICAL
// reading or an open alarm.
var DefaultRules = Rules{OfflineAfter: 30 * time.Second, AnomalyWindow: 60 * time.Second, AnomalyFrom: anomaly.SeverityCritical}

// MarksAnomaly reports whether an anomalous reading of severity s makes its machine ANOMALY
// for the anomaly window.
func (r Rules) MarksAnomaly(s anomaly.Severity) bool { return s.Rank() >= r.AnomalyFrom.Rank() }

// StatusAt is the status at now: OFFLINE if never seen or silent for more than OfflineAfter,
// else ANOMALY if an anomaly that marks it (MarksAnomaly) was detected within AnomalyWindow,
// else ONLINE.
func (r Rules) StatusAt(lastSeen, lastAnomaly, now time.Time) Status {
	if lastSeen.IsZero() || now.Sub(lastSeen) > r.OfflineAfter {
		return StatusOffline
	}
	if !lastAnomaly.IsZero() && now.Sub(lastAnomaly) <= r.AnomalyWindow {
		return StatusAnomaly
	}
	return StatusOnline
}

// Session is a stretch in which a machine kept sending: from its first receipt to its last,
// with no silence longer than the offline threshold in between.
type Session struct {
	EquipmentID string
	Start       time.Time
	End         time.Time
}

// Absorb extends the session by a receipt at t when t falls within gap of it, and reports
// whether it did. A receipt further away belongs to another session. The start never moves:
// it identifies the session.
func (s Session) Absorb(t time.Time, gap time.Duration) (Session, bool) {
	if t.Before(s.Start.Add(-gap)) || t.After(s.End.Add(gap)) {
		return s, false
	}
	if t.After(s.End) {
		s.End = t
	}
	return s, true
}

// UptimePercent is the share, in percent, of [from, to) in which a machine with these
// sessions was not OFFLINE: each session counts from its start until offlineAfter past its
// end. Time after now is not counted; a range with nothing before now has no uptime.
func UptimePercent(sessions []Session, from, to, now time.Time, offlineAfter time.Duration) float64 {
	if now.Before(to) {
		to = now
	}
	if !to.After(from) {
		return 0
	}
	type span struct{ a, b time.Time }
	spans := make([]span, 0, len(sessions))
	for _, s := range sessions {
		a, b := s.Start, s.End.Add(offlineAfter)
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if b.After(a) {
			spans = append(spans, span{a, b})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].a.Before(spans[j].a) })
	var up time.Duration
	var cur span
	for i, sp := range spans {
		switch {
		case i == 0:
			cur = sp
		case !sp.a.After(cur.b):
			if sp.b.After(cur.b) {
				cur.b = sp.b
			}
		default:
			up += cur.b.Sub(cur.a)
			cur = sp
		}
	}
	if len(spans) > 0 {
		up += cur.b.Sub(cur.a)
	}
	return 100 * float64(up) / float64(to.Sub(from))
}
