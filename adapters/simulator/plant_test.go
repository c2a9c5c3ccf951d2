package simulator_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/simulator"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
)

var start = time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)

func newPlant(t *testing.T, cfg simulator.Config) *simulator.Plant {
	t.Helper()
	if cfg.Prefix == "" {
		cfg.Prefix = "sim"
	}
	if cfg.Start.IsZero() {
		cfg.Start = start
	}
	p, err := simulator.NewPlant(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// play runs n readings of p, one every step, through the real detector.
func play(p *simulator.Plant, n int, step time.Duration) ([]simulator.Reading, []simulator.Alert) {
	d := anomaly.NewDetector(anomaly.DefaultConfig)
	var rs []simulator.Reading
	var alerts []simulator.Alert
	for i := range n {
		r, ok := p.Next(start.Add(time.Duration(i) * step))
		if !ok {
			continue
		}
		rs = append(rs, r)
		v := d.Judge(sensor.Key{EquipmentID: r.EquipmentID, Type: r.Type}, r.Value)
		if v.Anomalous {
			alerts = append(alerts, simulator.Alert{EquipmentID: r.EquipmentID, Type: r.Type,
				Timestamp: r.Timestamp, Severity: v.Severity})
		}
	}
	return rs, alerts
}

func TestThePlantIsDeterministic(t *testing.T) {
	cfg := simulator.Config{Seed: 7, Equipment: 5, Scenarios: simulator.Scenarios, SilentFrom: time.Minute}
	a, _ := play(newPlant(t, cfg), 4000, 10*time.Millisecond)
	b, _ := play(newPlant(t, cfg), 4000, 10*time.Millisecond)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two plants of one seed produced different readings")
	}
	cfg.Seed = 8
	c, _ := play(newPlant(t, cfg), 4000, 10*time.Millisecond)
	if reflect.DeepEqual(a, c) {
		t.Fatal("two seeds produced the same readings")
	}
}

func TestNormalReadingsStayInTheirRange(t *testing.T) {
	rs, _ := play(newPlant(t, simulator.Config{Seed: 1, Equipment: 20}), 20000, time.Second)
	bounds := map[sensor.Type][2]float64{
		sensor.Temperature: {50, 90}, sensor.Vibration: {1, 7}, sensor.Pressure: {3.5, 8.5}, sensor.Voltage: {224, 236},
	}
	for _, r := range rs {
		if b := bounds[r.Type]; r.Value < b[0] || r.Value > b[1] {
			t.Fatalf("%s %s = %v, outside %v", r.EquipmentID, r.Type, r.Value, b)
		}
		if r.Unit == "" {
			t.Fatalf("%s %s has no unit", r.EquipmentID, r.Type)
		}
	}
}

// The planted faults are what the detector finds: every spike and drop, every drift before
// its end; and nothing else but noise.
func TestTheDetectorFindsWhatThePlantPlants(t *testing.T) {
	p := newPlant(t, simulator.Config{Seed: 42, Equipment: 30, Scenarios: []simulator.Scenario{
		simulator.Spike, simulator.Drop, simulator.Drift}})
	rs, alerts := play(p, 30*4*400, 250*time.Millisecond)
	truth := p.Truth()
	if truth.Readings != len(rs) {
		t.Fatalf("truth counts %d readings, %d were produced", truth.Readings, len(rs))
	}
	s := simulator.ScoreAlerts(truth, alerts)
	kinds := map[simulator.Scenario]int{}
	for _, e := range truth.Events {
		kinds[e.Kind]++
	}
	if kinds[simulator.Spike] < 20 || kinds[simulator.Drop] < 20 {
		t.Fatalf("planted %v, want at least 20 spikes and 20 drops", kinds)
	}
	if s.Recall() != 1 {
		t.Errorf("recall %.3f: missed %+v", s.Recall(), s.Missed)
	}
	if s.Drifts < 5 || s.DriftsFound != s.Drifts {
		t.Errorf("drifts found %d of %d, want all of at least 5", s.DriftsFound, s.Drifts)
	}
	if s.DriftDelay < 5 || s.DriftDelay > 24 {
		t.Errorf("drifts flagged after %.1f readings on average, want after some growth and before the end", s.DriftDelay)
	}
	// Gaussian noise against |z| >= 3 with a window of 100: about 0.3% of judged readings.
	judged := len(rs) - 30*4*30
	if rate := float64(s.FalsePositiveTotal()) / float64(judged); rate > 0.006 {
		t.Errorf("false positives %d of %d judged readings (%.2f%%)", s.FalsePositiveTotal(), judged, 100*rate)
	}
	if s.FalsePositives[anomaly.SeverityCritical] != 0 {
		t.Errorf("noise alone made %d CRITICAL anomalies", s.FalsePositives[anomaly.SeverityCritical])
	}
}

func TestWithoutScenariosNothingIsPlanted(t *testing.T) {
	p := newPlant(t, simulator.Config{Seed: 3, Equipment: 10})
	play(p, 10*4*300, time.Second)
	if tr := p.Truth(); len(tr.Events)+len(tr.Drifts)+len(tr.Silent) != 0 {
		t.Fatalf("planted %d events, %d drifts, %d silences with no scenario", len(tr.Events), len(tr.Drifts), len(tr.Silent))
	}
}

func TestSilentEquipmentStopsAndComesBack(t *testing.T) {
	p := newPlant(t, simulator.Config{Seed: 5, Equipment: 20, Scenarios: []simulator.Scenario{simulator.Silent},
		SilentFrom: 10 * time.Second, SilentFor: 20 * time.Second})
	rs, _ := play(p, 20*4*50, 10*time.Millisecond) // 40 s
	silent := p.Truth().Silent
	if len(silent) != 2 {
		t.Fatalf("%d pieces of equipment went silent, want one in ten", len(silent))
	}
	for _, r := range rs {
		since := r.Timestamp.Sub(start)
		if _, ok := silent[r.EquipmentID]; ok && since >= 10*time.Second && since < 30*time.Second {
			t.Fatalf("silent %s sent at +%s", r.EquipmentID, since)
		}
	}
	for id, last := range silent {
		if last.Sub(start) < 30*time.Second {
			t.Errorf("%s did not come back after its silence (last sent at +%s)", id, last.Sub(start))
		}
	}
}

func TestBurstsRaiseTheRate(t *testing.T) {
	p := newPlant(t, simulator.Config{Seed: 1, Equipment: 1, Scenarios: []simulator.Scenario{simulator.Burst}})
	if r := p.RateAt(100, 5*time.Second); r != 100 {
		t.Errorf("rate at 5 s = %v, want 100", r)
	}
	if r := p.RateAt(100, 19*time.Second); r != 400 {
		t.Errorf("rate at 19 s = %v, want 400 (a burst)", r)
	}
	quiet := newPlant(t, simulator.Config{Seed: 1, Equipment: 1})
	if r := quiet.RateAt(100, 19*time.Second); r != 100 {
		t.Errorf("rate without bursts = %v, want 100", r)
	}
}

func TestBadPlantsAreRefused(t *testing.T) {
	for _, cfg := range []simulator.Config{
		{Equipment: 0, Prefix: "sim"},
		{Equipment: 1, Prefix: "bad prefix"},
		{Equipment: 1, Prefix: "p123456789012345678901234567890123456789012345678901234567890"},
	} {
		if _, err := simulator.NewPlant(cfg); !errors.Is(err, simulator.ErrConfig) {
			t.Errorf("NewPlant(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
	if _, err := simulator.ParseScenarios("spike,meteor"); err == nil {
		t.Error("an unknown scenario was accepted")
	}
	if got, _ := simulator.ParseScenarios("all"); len(got) != len(simulator.Scenarios) {
		t.Errorf("all = %v", got)
	}
}
