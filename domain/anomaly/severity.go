package anomaly

import (
	"errors"
	"fmt"
	"math"
)

// Severity grades an anomaly. Its value is the wire and storage form.
type Severity string

// The severities, from least to most severe.
const (
	SeverityLow      Severity = "LOW"
	SeverityMedium   Severity = "MEDIUM"
	SeverityCritical Severity = "CRITICAL"
)

// Severities lists every Severity from least to most severe.
var Severities = []Severity{SeverityLow, SeverityMedium, SeverityCritical}

// ErrUnknownSeverity is returned by ParseSeverity for a name that is not a severity.
var ErrUnknownSeverity = errors.New("unknown severity")

// ParseSeverity turns a wire name into a Severity.
func ParseSeverity(s string) (Severity, error) {
	switch v := Severity(s); v {
	case SeverityLow, SeverityMedium, SeverityCritical:
		return v, nil
	}
	return "", fmt.Errorf("%w %q", ErrUnknownSeverity, s)
}

// Bands are the |z| thresholds from which a reading is an anomaly of each severity:
// |z| ≥ Low is LOW, ≥ Medium is MEDIUM, ≥ Critical is CRITICAL.
type Bands struct {
	Low      float64
	Medium   float64
	Critical float64
}

// DefaultBands are the contract's defaults: 3, 4 and 5.
var DefaultBands = Bands{Low: 3, Medium: 4, Critical: 5}

// ErrBadBands is returned by Bands.Validate.
var ErrBadBands = errors.New("severity bands must be finite and satisfy 0 < low <= medium <= critical")

// Validate checks that the bands are positive, finite and ordered.
func (b Bands) Validate() error {
	for _, v := range []float64{b.Low, b.Medium, b.Critical} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return ErrBadBands
		}
	}
	if b.Low <= 0 || b.Medium < b.Low || b.Critical < b.Medium {
		return ErrBadBands
	}
	return nil
}

// Classify grades a z-score. ok is false when |z| is below the LOW band: no anomaly.
func (b Bands) Classify(z float64) (s Severity, ok bool) {
	a := math.Abs(z)
	switch {
	case a >= b.Critical:
		return SeverityCritical, true
	case a >= b.Medium:
		return SeverityMedium, true
	case a >= b.Low:
		return SeverityLow, true
	}
	return "", false
}

// Rank orders the severities: 1 for LOW up to 3 for CRITICAL, 0 for anything else.
func (s Severity) Rank() int {
	for i, v := range Severities {
		if v == s {
			return i + 1
		}
	}
	return 0
}
