package simulator

import (
	"time"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// Alert is an anomaly the service reported.
type Alert struct {
	EquipmentID string
	Type        sensor.Type
	Timestamp   time.Time
	Severity    anomaly.Severity
}

// Score compares the anomalies found with what was planted.
type Score struct {
	Planted, Found int // spikes and drops planted, and flagged
	// Drifts is how many drifts grew to their end; DriftsFound how many of those were
	// flagged while growing, DriftDelay the mean number of their readings that took.
	Drifts, DriftsFound int
	DriftDelay          float64
	Alerts              int                      // anomalies reported
	Explained           int                      // of them, on a planted reading or drift
	FalsePositives      map[anomaly.Severity]int // the rest, by severity
	Missed              []Event                  // planted events not flagged
}

// FalsePositiveTotal is the number of anomalies that nothing planted explains.
func (s Score) FalsePositiveTotal() int {
	n := 0
	for _, c := range s.FalsePositives {
		n += c
	}
	return n
}

// Recall is the share of planted spikes and drops that were flagged (1 when none was).
func (s Score) Recall() float64 {
	if s.Planted == 0 {
		return 1
	}
	return float64(s.Found) / float64(s.Planted)
}

type readingKey struct {
	equipment string
	typ       sensor.Type
	ms        int64
}

type sensorKey struct {
	equipment string
	typ       sensor.Type
}

// ScoreAlerts matches alerts with the truth. An alert on a planted reading finds it; an
// alert on a drifting sensor between the drift's start and its settling belongs to the
// drift; any other alert is a false positive (with a z-score threshold of 3 on Gaussian
// noise, about 0.3% of judged readings are).
func ScoreAlerts(t Truth, alerts []Alert) Score {
	s := Score{FalsePositives: map[anomaly.Severity]int{}, Alerts: len(alerts)}
	planted := make(map[readingKey]int, len(t.Events))
	for i, e := range t.Events {
		planted[readingKey{e.EquipmentID, e.Type, e.Timestamp.UnixMilli()}] = i
	}
	drifts := make(map[sensorKey][]int)
	for i, d := range t.Drifts {
		k := sensorKey{d.EquipmentID, d.Type}
		drifts[k] = append(drifts[k], i)
	}
	found := make([]bool, len(t.Events))
	firstDrift := make([]time.Time, len(t.Drifts))
	for _, a := range alerts {
		if i, ok := planted[readingKey{a.EquipmentID, a.Type, a.Timestamp.UnixMilli()}]; ok {
			found[i] = true
			s.Explained++
			continue
		}
		explained := false
		for _, i := range drifts[sensorKey{a.EquipmentID, a.Type}] {
			d := t.Drifts[i]
			if a.Timestamp.Before(d.Start) || a.Timestamp.After(d.Settled) {
				continue
			}
			explained = true
			if !a.Timestamp.After(d.End) && (firstDrift[i].IsZero() || a.Timestamp.Before(firstDrift[i])) {
				firstDrift[i] = a.Timestamp
			}
		}
		if explained {
			s.Explained++
			continue
		}
		s.FalsePositives[a.Severity]++
	}
	s.Planted = len(t.Events)
	for i, ok := range found {
		if ok {
			s.Found++
		} else {
			s.Missed = append(s.Missed, t.Events[i])
		}
	}
	var delay float64
	for i, d := range t.Drifts {
		if !d.Complete {
			continue
		}
		s.Drifts++
		if !firstDrift[i].IsZero() {
			s.DriftsFound++
			// The growth's readings are evenly spread from Start to End.
			span := d.End.Sub(d.Start)
			if span > 0 {
				delay += float64(driftLength-1) * float64(firstDrift[i].Sub(d.Start)) / float64(span)
			}
			delay++
		}
	}
	if s.DriftsFound > 0 {
		s.DriftDelay = delay / float64(s.DriftsFound)
	}
	return s
}
