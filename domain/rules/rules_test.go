package rules_test

import (
	"errors"
	"math"
	"testing"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
)

var base = rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules}

func ptr(v float64) *float64 { return &v }

func TestLimitsMakeAReadingCritical(t *testing.T) {
	r := base
	r.Limits = rules.Limits{Min: ptr(-20), Max: ptr(120)}
	for v, want := range map[float64]bool{-20: false, 120: false, 50: false, -20.001: true, 120.5: true} {
		got := r.Judge(anomaly.Verdict{}, v)
		if got.Anomalous != want || (want && got.Severity != anomaly.SeverityCritical) {
			t.Errorf("value %v: %+v, want anomalous=%v", v, got, want)
		}
	}
	// A verdict already anomalous is left as the detector gave it, within the limits.
	low := anomaly.Verdict{Judged: true, Anomalous: true, Severity: anomaly.SeverityLow, ZScore: 3.2}
	if got := r.Judge(low, 50); got != low {
		t.Errorf("%+v changed to %+v", low, got)
	}
}

func TestSetNeedsEveryTypeAndValidRules(t *testing.T) {
	all := map[sensor.Type]rules.Rules{}
	for _, typ := range sensor.Types {
		all[typ] = base
	}
	s, err := rules.NewSet(all)
	if err != nil {
		t.Fatal(err)
	}
	if s.For(sensor.Pressure) != base || s.MaxWindow() != 100 || len(s.Version()) != 12 {
		t.Errorf("set %+v, version %q", s.For(sensor.Pressure), s.Version())
	}
	for name, mutate := range map[string]func(map[sensor.Type]rules.Rules){
		"missing type": func(m map[sensor.Type]rules.Rules) { delete(m, sensor.Voltage) },
		"unknown type": func(m map[sensor.Type]rules.Rules) { m["humidity"] = base },
		"bad window":   func(m map[sensor.Type]rules.Rules) { r := base; r.Detector.MinSamples = 200; m[sensor.Voltage] = r },
		"bad alarm":    func(m map[sensor.Type]rules.Rules) { r := base; r.Alarm.ClearAfter = 0; m[sensor.Voltage] = r },
		"limits crossed": func(m map[sensor.Type]rules.Rules) {
			r := base
			r.Limits = rules.Limits{Min: ptr(5), Max: ptr(5)}
			m[sensor.Voltage] = r
		},
		"NaN limit": func(m map[sensor.Type]rules.Rules) {
			r := base
			r.Limits = rules.Limits{Max: ptr(math.NaN())}
			m[sensor.Voltage] = r
		},
	} {
		m := map[sensor.Type]rules.Rules{}
		for k, v := range all {
			m[k] = v
		}
		mutate(m)
		if _, err := rules.NewSet(m); !errors.Is(err, rules.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// The version names the content: the same rules give the same version, any change another.
func TestVersionFollowsTheContent(t *testing.T) {
	a, _ := rules.Uniform(base)
	b, _ := rules.Uniform(base)
	if a.Version() != b.Version() {
		t.Fatalf("same rules, versions %s and %s", a.Version(), b.Version())
	}
	changed := base
	changed.Alarm.ClearAfter++
	c, _ := rules.Uniform(changed)
	limited := base
	limited.Limits.Max = ptr(100)
	d, _ := rules.Uniform(limited)
	if c.Version() == a.Version() || d.Version() == a.Version() || c.Version() == d.Version() {
		t.Errorf("versions %s %s %s should differ", a.Version(), c.Version(), d.Version())
	}
}
