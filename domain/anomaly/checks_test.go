package anomaly_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
)

var checkKey = sensor.Key{EquipmentID: "pump-1", Type: sensor.Pressure, Sensor: "outlet"}

// firstFinding judges values with the default config and returns the index and finding of
// the first reading a check fired on (-1 when none did).
func firstFinding(t *testing.T, cfg anomaly.Config, values []float64) (int, anomaly.Finding) {
	t.Helper()
	d := anomaly.NewDetector(cfg)
	for i, v := range values {
		if f := d.Judge(checkKey, v).Finding; f.Fired() {
			return i, f
		}
	}
	return -1, anomaly.Finding{}
}

func noisy(seed uint64, n int, mean, sd float64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 3))
	out := make([]float64, n)
	for i := range out {
		out[i] = mean + sd*rng.NormFloat64()
	}
	return out
}

func TestNoCheckFiresOnGaussianNoise(t *testing.T) {
	if i, f := firstFinding(t, anomaly.DefaultConfig, noisy(1, 20_000, 5, 0.1)); i >= 0 {
		t.Fatalf("reading %d: %+v on plain noise", i, f)
	}
}

func TestAStuckSensorIsFoundAfterItsLimit(t *testing.T) {
	values := noisy(2, 500, 5, 0.1)
	for i := 300; i < len(values); i++ {
		values[i] = values[299]
	}
	// With every check on, the flat line is seen before the stuck count is reached: as a
	// persistent offset from the window's mean, or as the spread collapsing.
	if i, f := firstFinding(t, anomaly.DefaultConfig, values); i < 300 || i >= 300+anomaly.DefaultConfig.Checks.StuckReadings {
		t.Fatalf("reading %d: %+v, want a finding within the stuck count", i, f)
	}
	cfg := anomaly.DefaultConfig
	cfg.Checks.DriftLimit, cfg.Checks.VarianceRatio = 0, 0
	i, f := firstFinding(t, cfg, values)
	limit := cfg.Checks.StuckReadings
	// The 100th identical reading in a row, counting reading 299 itself.
	if f.Check != anomaly.CheckStuck || i != 299+limit-1 || f.Statistic != float64(limit) || f.Window != limit {
		t.Fatalf("reading %d: %+v, want stuck at reading %d", i, f, 299+limit-1)
	}
}

func TestAJumpBeyondTheRateLimitIsFound(t *testing.T) {
	values := noisy(3, 600, 5, 0.1)
	values[500] += 10 // 100 deviations: some 90 times the usual step
	i, f := firstFinding(t, anomaly.DefaultConfig, values)
	if i != 500 || f.Check != anomaly.CheckRate || f.Statistic < f.Limit {
		t.Fatalf("reading %d: %+v, want rate at reading 500", i, f)
	}
	// The step back down, into the usual range, is a recovery: nothing more fires.
	d := anomaly.NewDetector(anomaly.DefaultConfig)
	for j, v := range values {
		if f := d.Judge(checkKey, v).Finding; f.Fired() && j != 500 {
			t.Errorf("reading %d: %+v after the jump", j, f)
		}
	}
}

// A level shift of one and a half deviations never reaches |z| 3, and the drift chart finds
// it within a few dozen readings.
func TestASmallSustainedShiftIsFoundAsDrift(t *testing.T) {
	values := noisy(4, 2000, 5, 0.1)
	for i := 1200; i < len(values); i++ {
		values[i] += 0.15
	}
	i, f := firstFinding(t, anomaly.DefaultConfig, values)
	if f.Check != anomaly.CheckDrift || i < 1200 || i > 1260 || f.Statistic < f.Limit {
		t.Fatalf("reading %d: %+v, want drift soon after reading 1200", i, f)
	}
	t.Logf("found %d readings after the shift: %+v", i-1200, f)
}

// A steady warm-up (a signal that always trails its window) is what the sensor does: the
// chart measures from that baseline, and only a change of the trend fires it.
func TestASteadyTrendIsNotDriftButAChangeOfTrendIs(t *testing.T) {
	values := noisy(5, 6000, 20, 0.01)
	for i := range values {
		values[i] += 0.0005 * float64(i) // 0.05 a hundred readings, five deviations
	}
	if i, f := firstFinding(t, anomaly.DefaultConfig, values[:4000]); i >= 0 {
		t.Fatalf("reading %d: %+v on a steady trend", i, f)
	}
	for i := 4000; i < len(values); i++ {
		values[i] += 0.002 * float64(i-4000) // the trend five times steeper
	}
	i, f := firstFinding(t, anomaly.DefaultConfig, values)
	if f.Check != anomaly.CheckDrift || i < 4000 {
		t.Fatalf("reading %d: %+v, want drift after reading 4000", i, f)
	}
}

func TestALouderSensorIsAVarianceChange(t *testing.T) {
	values := noisy(6, 3000, 5, 0.1)
	louder := noisy(7, 1000, 0, 1) // ten times the spread
	for i := range louder {
		values[2000+i] += louder[i]
	}
	cfg := anomaly.DefaultConfig
	cfg.Checks.DriftLimit, cfg.Checks.RateLimit = 0, 0 // the variance check alone
	i, f := firstFinding(t, cfg, values)
	if f.Check != anomaly.CheckVariance || i < 2000 || i > 2150 || f.Statistic < f.Limit {
		t.Fatalf("reading %d: %+v, want a variance change soon after reading 2000", i, f)
	}
}

// Warming a detector with a sensor's stored values leaves its checks where judging those
// values would have: the next verdicts are the same.
func TestWarmLeavesTheChecksAsJudgingWould(t *testing.T) {
	values := noisy(8, 1500, 5, 0.1)
	for i := 1000; i < len(values); i++ {
		values[i] += 0.12
	}
	judged := anomaly.NewDetector(anomaly.DefaultConfig)
	for _, v := range values[:1000] {
		judged.Judge(checkKey, v)
	}
	warmed := anomaly.NewDetector(anomaly.DefaultConfig)
	warmed.Warm(checkKey, values[:1000])
	for i, v := range values[1000:] {
		a, b := judged.Judge(checkKey, v), warmed.Judge(checkKey, v)
		if a != b {
			t.Fatalf("reading %d: judged %+v, warmed %+v", 1000+i, a, b)
		}
	}
}

func TestChecksValidate(t *testing.T) {
	if err := anomaly.DefaultChecks.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (anomaly.Checks{}).Validate(); err != nil {
		t.Fatalf("every check off: %v", err)
	}
	for name, mutate := range map[string]func(*anomaly.Checks){
		"stuck of 1":          func(c *anomaly.Checks) { c.StuckReadings = 1 },
		"rate limit of 1":     func(c *anomaly.Checks) { c.RateLimit = 1 },
		"rate without memory": func(c *anomaly.Checks) { c.RateMemory = 1 },
		"negative drift":      func(c *anomaly.Checks) { c.DriftLimit = -1 },
		"NaN drift":           func(c *anomaly.Checks) { c.DriftLimit = math.NaN() },
		"drift memory of 1":   func(c *anomaly.Checks) { c.DriftMemory = 1 },
		"variance ratio 1":    func(c *anomaly.Checks) { c.VarianceRatio = 1 },
		"no deviation cap":    func(c *anomaly.Checks) { c.ClampZ = 0 },
	} {
		c := anomaly.DefaultChecks
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCheckNamesRoundTrip(t *testing.T) {
	for _, c := range anomaly.AllChecks {
		got, err := anomaly.ParseCheck(c.String())
		if err != nil || got != c {
			t.Errorf("%v: parsed %v, %v", c, got, err)
		}
	}
	if _, err := anomaly.ParseCheck("vibes"); err == nil {
		t.Error("an unknown check parsed")
	}
}

// Warmed with WarmReadings of a sensor's readings, a detector's checks are past their
// warm-up: after a restart they find a change about when a detector that judged everything
// does, where a warm-up with the window alone leaves the variance check blind.
func TestWarmReadingsAreEnoughForEveryCheck(t *testing.T) {
	cfg := anomaly.DefaultConfig
	n := cfg.WarmReadings()
	if n != 10*cfg.Checks.VarianceMemory+1 {
		t.Fatalf("WarmReadings %d, want the variance check's warm-up, %d", n, 10*cfg.Checks.VarianceMemory+1)
	}
	values := noisy(9, 4000, 5, 0.1)
	louder := noisy(10, 300, 0, 1)
	for i := range louder {
		values[3000+i] += louder[i] // the spread grows tenfold, for 300 readings
	}
	first := func(d *anomaly.Detector) int {
		for i, v := range values[3000:] {
			if d.Judge(checkKey, v).Finding.Check == anomaly.CheckVariance {
				return i
			}
		}
		return -1
	}
	judged := anomaly.NewDetector(cfg)
	for _, v := range values[:3000] {
		judged.Judge(checkKey, v)
	}
	warmed, window := anomaly.NewDetector(cfg), anomaly.NewDetector(cfg)
	warmed.Warm(checkKey, values[3000-n:3000])
	window.Warm(checkKey, values[3000-cfg.WindowSize:3000])
	j, w, short := first(judged), first(warmed), first(window)
	t.Logf("the variance change found %d readings in when judged throughout, %d when warmed with %d readings, %d with the window alone",
		j, w, n, short)
	// The slow average is rebuilt from fewer readings than it remembers: close, not equal.
	if j < 0 || w < 0 || w > j+20 {
		t.Errorf("the variance change is found %d readings in when judged throughout, %d when warmed with %d", j, w, n)
	}
	if short >= 0 && short <= j+100 {
		t.Errorf("warmed with the window alone, the variance check found it at %d: the test shows nothing", short)
	}
}
