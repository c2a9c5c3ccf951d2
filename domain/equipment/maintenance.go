package equipment

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Maintenance is a window, [From, To), in which a machine is being worked on. Its readings
// are still stored and judged (anomalies are recorded as usual), but no alarm opens for it
// (an alarm already open may still grow and clear), and its status is MAINTENANCE. A machine
// has at most one window; a new one replaces it.
type Maintenance struct {
	EquipmentID string
	From        time.Time
	To          time.Time
	Reason      string
}

// Limits of a maintenance window.
const (
	// MaxMaintenanceSpan is the longest a window may last, To - From.
	MaxMaintenanceSpan = 30 * 24 * time.Hour
	// MaxMaintenanceReasonLen bounds the reason, in characters.
	MaxMaintenanceReasonLen = 500
)

// The rules a window breaks, as MaintenanceProblem.Err.
var (
	ErrMaintenanceEmpty      = errors.New("must be after from")
	ErrMaintenanceOver       = errors.New("must be in the future")
	ErrMaintenanceTooLong    = fmt.Errorf("must be at most %d days after from", int(MaxMaintenanceSpan/(24*time.Hour)))
	ErrMaintenanceReasonLong = fmt.Errorf("must be at most %d characters long", MaxMaintenanceReasonLen)
	ErrMaintenanceReasonText = errors.New("must be valid UTF-8 without NUL characters")
)

// MaintenanceProblem is one rule a window breaks: Field is "to" or "reason".
type MaintenanceProblem struct {
	Field string
	Err   error
}

// Problems lists the rules m breaks when set at now: To after From, To after now (a window
// cannot be set wholly in the past), at most MaxMaintenanceSpan long, and a reason of at most
// MaxMaintenanceReasonLen characters of UTF-8 without NUL (which PostgreSQL cannot store).
func (m Maintenance) Problems(now time.Time) []MaintenanceProblem {
	var out []MaintenanceProblem
	switch {
	case !m.To.After(m.From):
		out = append(out, MaintenanceProblem{"to", ErrMaintenanceEmpty})
	case !m.To.After(now):
		out = append(out, MaintenanceProblem{"to", ErrMaintenanceOver})
	case m.To.Sub(m.From) > MaxMaintenanceSpan:
		out = append(out, MaintenanceProblem{"to", ErrMaintenanceTooLong})
	}
	switch {
	case !utf8.ValidString(m.Reason) || strings.IndexByte(m.Reason, 0) >= 0:
		out = append(out, MaintenanceProblem{"reason", ErrMaintenanceReasonText})
	case utf8.RuneCountInString(m.Reason) > MaxMaintenanceReasonLen:
		out = append(out, MaintenanceProblem{"reason", ErrMaintenanceReasonLong})
	}
	return out
}

// Covers reports whether t falls within the window: From <= t < To.
func (m Maintenance) Covers(t time.Time) bool {
	return !t.Before(m.From) && t.Before(m.To)
}

// EndedBy reports whether the window is over at t (To <= t): it no longer covers t nor
// anything after.
func (m Maintenance) EndedBy(t time.Time) bool { return !m.To.After(t) }

// StatusWith is the status at now of a machine with maintenance window m (nil when it has
// none): MAINTENANCE while m covers now, whatever StatusAt would say (OFFLINE, ANOMALY or
// ONLINE); StatusAt otherwise.
func (r Rules) StatusWith(m *Maintenance, lastSeen, lastAnomaly, now time.Time) Status {
	if m != nil && m.Covers(now) {
		return StatusMaintenance
	}
	return r.StatusAt(lastSeen, lastAnomaly, now)
}
