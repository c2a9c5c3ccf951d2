package rules_test

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// openings replays values, one a second, through the default detector, checks and alarm
// tracker, and counts the alarms opened, by cause.
func openings(values []float64) (total int, byCause map[anomaly.Check]int) {
	r := rules.Rules{Detector: anomaly.DefaultConfig, Alarm: alarm.DefaultRules}
	k := sensor.Key{EquipmentID: "m", Type: sensor.Temperature}
	d := anomaly.NewDetector(r.Detector)
	tr := alarm.NewTracker(k, r.Alarm, "v")
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ids := 0
	byCause = map[anomaly.Check]int{}
	for i, v := range values {
		ev, a := tr.Observe(r.Observation(d.Judge(k, v), v, start.Add(time.Duration(i)*time.Second)),
			func() string { ids++; return strconv.Itoa(ids) })
		if ev == alarm.Opened {
			total++
			byCause[a.Cause]++
		}
	}
	return total, byCause
}

// A day of normal operation at a reading a second, for each kind of noise a sensor shows,
// opens at most a handful of alarms with the defaults: a quarter of an alarm per sensor-hour
// at most (one per machine-hour for a machine of four sensors).
func TestTheDefaultsAreQuietOnNormalOperation(t *testing.T) {
	const n = 86_400
	gauss := func(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 7)) }
	studentT := func(rng *rand.Rand, nu int) float64 {
		chi := 0.0
		for range nu {
			g := rng.NormFloat64()
			chi += g * g
		}
		return rng.NormFloat64() / math.Sqrt(chi/float64(nu))
	}
	series := map[string]func() []float64{
		"gaussian": func() []float64 {
			rng, v := gauss(1), make([]float64, n)
			for i := range v {
				v[i] = 70 + rng.NormFloat64()
			}
			return v
		},
		"student-t, 4 degrees of freedom": func() []float64 {
			rng, v := gauss(2), make([]float64, n)
			for i := range v {
				v[i] = 70 + studentT(rng, 4)
			}
			return v
		},
		"daily and hourly cycles with noise": func() []float64 {
			rng, v := gauss(3), make([]float64, n)
			for i := range v {
				ti := float64(i)
				v[i] = 70 + 5*math.Sin(2*math.Pi*ti/86_400) + 1*math.Sin(2*math.Pi*ti/3600) + rng.NormFloat64()
			}
			return v
		},
		"smooth, correlated reading to reading (AR(1), 0.9)": func() []float64 {
			rng, v := gauss(4), make([]float64, n)
			x := 0.0
			for i := range v {
				x = 0.9*x + rng.NormFloat64()
				v[i] = 70 + x
			}
			return v
		},
		"quantised to a tenth of its spread": func() []float64 {
			rng, v := gauss(5), make([]float64, n)
			for i := range v {
				v[i] = math.Round((70+rng.NormFloat64())*10) / 10
			}
			return v
		},
	}
	for name, gen := range series {
		t.Run(name, func(t *testing.T) {
			total, by := openings(gen())
			perHour := float64(total) / (n / 3600.0)
			t.Logf("%d alarms in 24 h (%.2f per sensor-hour): %v", total, perHour, by)
			if perHour > 0.25 {
				t.Errorf("%d alarms in 24 h of normal operation, %.2f per sensor-hour: want at most 0.25", total, perHour)
			}
		})
	}
}
