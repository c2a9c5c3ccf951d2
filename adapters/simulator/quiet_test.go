package simulator_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/simulator"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// The simulator's normal operation (no scenario: noise and the daily cycle), four sensors a
// machine at two readings a second each, through the production detector, checks and alarm
// tracker with the defaults: at most one alarm a machine-hour, and a machine is ANOMALY by
// the default status rule (an open alarm, or a CRITICAL reading within the anomaly window)
// only rarely, where the contract's rule (any anomaly) holds it ANOMALY much of the time.
func TestNormalOperationIsQuiet(t *testing.T) {
	const machines, hours = 10, 4
	p := newPlant(t, simulator.Config{Seed: 9, Equipment: machines})
	set, err := rules.Uniform(rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules})
	if err != nil {
		t.Fatal(err)
	}
	d := map[sensor.Type]*anomaly.Detector{}
	for _, typ := range sensor.Types {
		d[typ] = anomaly.NewDetector(set.For(typ).Detector)
	}
	trackers := map[sensor.Key]*alarm.Tracker{}
	open := map[string]int{} // open alarms by machine
	lastAny, lastCritical := map[string]time.Time{}, map[string]time.Time{}
	status := equipment.DefaultRules
	ids, opened := 0, 0
	var samples, anomalyNow, anomalyBefore int
	step := time.Second / time.Duration(2*4*machines) // two readings a second for each sensor
	n := hours * 3600 * 2 * 4 * machines
	for i := range n {
		at := start.Add(time.Duration(i) * step)
		r, ok := p.Next(at)
		if !ok {
			continue
		}
		k := sensor.Key{EquipmentID: r.EquipmentID, Type: r.Type}
		rs := set.For(r.Type)
		v := d[r.Type].Judge(k, r.Value)
		tr, ok := trackers[k]
		if !ok {
			tr = alarm.NewTracker(k, rs.Alarm, set.Version())
			trackers[k] = tr
		}
		switch ev, _ := tr.Observe(rs.Observation(v, r.Value, r.Timestamp), func() string { ids++; return strconv.Itoa(ids) }); ev {
		case alarm.Opened:
			opened++
			open[r.EquipmentID]++
		case alarm.Cleared:
			open[r.EquipmentID]--
		}
		if v.Anomalous {
			lastAny[r.EquipmentID] = at
			if status.MarksAnomaly(v.Severity) {
				lastCritical[r.EquipmentID] = at
			}
		}
		// Sample the status of every machine once a simulated second, after the first minute.
		if i%(2*4*machines) == 0 && at.Sub(start) > time.Minute {
			for _, id := range p.EquipmentIDs() {
				samples++
				if open[id] > 0 || (!lastCritical[id].IsZero() && at.Sub(lastCritical[id]) <= status.AnomalyWindow) {
					anomalyNow++
				}
				if !lastAny[id].IsZero() && at.Sub(lastAny[id]) <= status.AnomalyWindow {
					anomalyBefore++
				}
			}
		}
	}
	perMachineHour := float64(opened) / (machines * hours)
	now, before := float64(anomalyNow)/float64(samples), float64(anomalyBefore)/float64(samples)
	t.Logf("%d alarms in %d machine-hours (%.2f a machine-hour); ANOMALY %.1f%% of the time (any anomaly within the window: %.1f%%)",
		opened, machines*hours, perMachineHour, 100*now, 100*before)
	if perMachineHour > 1 {
		t.Errorf("%.2f alarms a machine-hour in normal operation, want at most 1", perMachineHour)
	}
	if now > 0.05 {
		t.Errorf("machines ANOMALY %.1f%% of the time in normal operation, want at most 5%%", 100*now)
	}
}
