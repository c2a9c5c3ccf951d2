package anomaly

import (
	"errors"
	"fmt"
	"math"
)

// Check names a test of a sensor's readings beyond one reading's z-score: what an alarm
// opened on. Zero is the z-score itself.
type Check uint8

// The checks.
const (
	CheckZScore   Check = iota // the rolling z-score (the contract's anomalous reading)
	CheckStuck                 // the same value, reading after reading: a flat line
	CheckRate                  // a step between two readings far beyond the usual ones
	CheckDrift                 // a persistent departure from the window's mean (EWMA chart)
	CheckVariance              // the spread of the readings has changed
)

var checkNames = [...]string{"zscore", "stuck", "rate", "drift", "variance"}

// AllChecks lists every Check, the z-score first.
var AllChecks = []Check{CheckZScore, CheckStuck, CheckRate, CheckDrift, CheckVariance}

// String is the check's wire and storage name.
func (c Check) String() string {
	if int(c) < len(checkNames) {
		return checkNames[c]
	}
	return fmt.Sprintf("check(%d)", c)
}

// ParseCheck reads a check's name.
func ParseCheck(s string) (Check, error) {
	for i, n := range checkNames {
		if n == s {
			return Check(i), nil
		}
	}
	return 0, fmt.Errorf("unknown check %q", s)
}

// Checks configures the tests beyond the z-score. A zero limit turns its test off.
type Checks struct {
	// StuckReadings identical readings in a row are a stuck sensor.
	StuckReadings int
	// RateLimit: a step between consecutive readings at least RateLimit times the usual
	// step (an exponentially weighted mean of the steps, over about RateMemory readings).
	RateLimit  float64
	RateMemory int
	// Drift: an EWMA chart of each reading's deviation from the window's mean, in window
	// standard deviations (each deviation capped at ±ClampZ), with weight 1/DriftMemory,
	// less its baseline; it fires when the chart reaches DriftLimit times its own long-run
	// standard deviation.
	DriftLimit  float64
	DriftMemory int
	// DriftBaseline is the memory, in readings, of the sensor's usual deviation, which the
	// chart measures from: a sensor that always trails its window (a steady warm-up) is not
	// drifting until its trend changes. 0: from zero.
	DriftBaseline int
	// Variance: the variance of the latest readings (exponentially weighted, over about
	// VarianceMemory readings) against its own slow average (over 20 times as many); it
	// fires at VarianceRatio or above, or at 1/VarianceRatio or below.
	VarianceRatio  float64
	VarianceMemory int
	// ClampZ caps the deviation each reading adds to the drift chart (in window deviations;
	// three times as many, in the slow average's deviations, for the variance check), so that one
	// wild reading cannot fire them alone.
	ClampZ float64
}

// DefaultChecks are the defaults, chosen on SKAB's pump recordings, the simulator's normal
// segments and heavy-tailed and seasonal noise (see BENCHMARKS.md, detection).
var DefaultChecks = Checks{
	StuckReadings: 100,
	RateLimit:     40, RateMemory: 300,
	DriftLimit: 4, DriftMemory: 20, DriftBaseline: 600,
	VarianceRatio: 20, VarianceMemory: 60,
	ClampZ: 4,
}

// ErrBadChecks is wrapped by Checks.Validate.
var ErrBadChecks = errors.New("bad checks")

// Validate checks the settings: limits not negative, memories of at least 2 readings where
// their test is on.
func (c Checks) Validate() error {
	bad := func(f float64) bool { return f < 0 || math.IsNaN(f) || math.IsInf(f, 0) }
	switch {
	case c.StuckReadings < 0 || c.StuckReadings == 1:
		return fmt.Errorf("%w: stuck needs 2 readings or more (0: off)", ErrBadChecks)
	case bad(c.RateLimit) || (c.RateLimit > 0 && (c.RateLimit <= 1 || c.RateMemory < 2)):
		return fmt.Errorf("%w: the rate limit must be above 1 with a memory of 2 readings or more (0: off)", ErrBadChecks)
	case bad(c.DriftLimit) || (c.DriftLimit > 0 && c.DriftMemory < 2):
		return fmt.Errorf("%w: drift needs a positive limit and a memory of 2 readings or more (0: off)", ErrBadChecks)
	case bad(c.VarianceRatio) || (c.VarianceRatio > 0 && (c.VarianceRatio <= 1 || c.VarianceMemory < 2)):
		return fmt.Errorf("%w: the variance ratio must be above 1 with a memory of 2 readings or more (0: off)", ErrBadChecks)
	case bad(c.ClampZ) || ((c.DriftLimit > 0 || c.VarianceRatio > 0) && c.ClampZ <= 0):
		return fmt.Errorf("%w: the deviation cap must be positive", ErrBadChecks)
	}
	return nil
}

// Finding is a check that fired on a reading, with its evidence: the statistic, the limit
// it reached, and how many readings the statistic spans.
type Finding struct {
	Check     Check
	Statistic float64
	Limit     float64
	Window    int
}

// Fired reports whether f is a finding (the zero Finding is none).
func (f Finding) Fired() bool { return f.Check != CheckZScore }

// checkState is what the checks remember of one sensor.
type checkState struct {
	last     float64
	run      int     // readings equal to last in a row, last included
	step     float64 // the mean step
	steps    int
	drift    float64 // EWMA of the capped deviations, less the baseline
	baseline float64 // slow EWMA of the capped deviations
	spread   float64 // slow EWMA of drift², the chart's own variance
	judged   int     // readings folded into the drift chart
	// The variance check's EWMA mean and variance over its memory, the slow average of that
	// variance, and the readings seen.
	vMean, vShort, vLong float64
	vSeen                int
}

// observe folds a reading in and returns the check that fired, if any. z is the reading's
// deviation from the window (its z-score), judged false while the window is too short.
func (s *checkState) observe(c *Checks, k *checkConstants, x, z float64, judged bool) Finding {
	var f Finding
	if s.run > 0 && x == s.last {
		s.run++
	} else {
		if s.run > 0 && c.RateLimit > 0 {
			step := math.Abs(x - s.last)
			// A step back into the window's usual range (|z| under 3) is a recovery, not a
			// change to alarm on.
			away := !judged || math.Abs(z) >= 3
			if away && s.steps >= c.RateMemory/4 && s.step > 0 && step >= c.RateLimit*s.step {
				f = Finding{Check: CheckRate, Statistic: step / s.step, Limit: c.RateLimit, Window: min(s.steps, c.RateMemory)}
			}
			s.steps++
			w := weight(s.steps, c.RateMemory, k.rateWeight)
			// A step beyond the limit joins the mean at the limit, so that one change of
			// level does not make every later step look usual.
			if s.step > 0 {
				step = math.Min(step, c.RateLimit*s.step)
			}
			s.step += w * (step - s.step)
		}
		s.last, s.run = x, 1
	}
	if c.StuckReadings > 0 && s.run >= c.StuckReadings && !f.Fired() {
		f = Finding{Check: CheckStuck, Statistic: float64(s.run), Limit: float64(c.StuckReadings), Window: s.run}
	}
	if c.VarianceRatio > 0 {
		if f2 := s.varianceRatio(c, k, x); !f.Fired() {
			f = f2
		}
	}
	if !judged || c.DriftLimit <= 0 {
		return f
	}
	u := math.Max(-c.ClampZ, math.Min(c.ClampZ, z))
	s.judged++
	if f2 := s.driftChart(c, k, u); !f.Fired() {
		f = f2
	}
	return f
}

// driftChart folds the capped deviation u into the drift chart: an EWMA of the deviations
// from their own slow average (the baseline), measured in the chart's own long-run standard
// deviation, so that a sensor whose readings follow each other closely (a smooth
// temperature) is not held to the limits of independent noise. The standard deviation is
// never taken below that of independent noise of unit variance, sqrt(λ/(2-λ)). The limits
// are compared in squares, so that no square root is taken unless the chart fires.
func (s *checkState) driftChart(c *Checks, k *checkConstants, u float64) Finding {
	d := u
	if c.DriftBaseline > 0 {
		d -= s.baseline
		if n := s.judged - c.DriftMemory; n > 0 { // the chart's first readings set where it starts
			s.baseline += (u - s.baseline) * weight(n, c.DriftBaseline, k.baselineWeight)
		}
	}
	s.drift += (d - s.drift) * weight(s.judged, c.DriftMemory, k.driftWeight)
	variance := math.Max(s.spread, k.driftFloor)
	drift2, limit2 := s.drift*s.drift, k.driftLimit2*variance
	fired := s.judged >= c.DriftMemory+c.DriftBaseline/4 && drift2 >= limit2
	// The spread learns from the chart capped at its limit, so that a drift under way does
	// not widen the limits it is judged by.
	if n := s.judged - c.DriftMemory; n > 0 {
		s.spread += (math.Min(drift2, limit2) - s.spread) * weight(n, k.spreadMemory, k.spreadWeight)
	}
	if !fired {
		return Finding{}
	}
	stat := s.drift / math.Sqrt(variance)
	return Finding{Check: CheckDrift, Statistic: stat, Limit: math.Copysign(c.DriftLimit, stat), Window: c.DriftMemory}
}

// varianceRatio folds x into the variance check: the short-memory variance of the readings,
// each deviation capped at three times ClampZ of the slow average's deviation (a single
// wild reading then adds at most 9·ClampZ²/VarianceMemory to the ratio), against that slow
// average.
func (s *checkState) varianceRatio(c *Checks, k *checkConstants, x float64) Finding {
	s.vSeen++
	if s.vSeen == 1 {
		s.vMean = x
		return Finding{}
	}
	d := x - s.vMean
	if limit2 := k.varianceCap2 * s.vLong; s.vLong > 0 && d*d > limit2 {
		d = math.Copysign(math.Sqrt(limit2), d)
	}
	w := weight(s.vSeen-1, c.VarianceMemory, k.varianceWeight)
	s.vMean += w * d
	s.vShort += w * (d*d - s.vShort)
	var f Finding
	if s.vSeen > k.varianceLong/2 && s.vLong > 0 {
		switch {
		case s.vShort >= c.VarianceRatio*s.vLong:
			f = Finding{Check: CheckVariance, Statistic: s.vShort / s.vLong, Limit: c.VarianceRatio, Window: c.VarianceMemory}
		case s.vShort*c.VarianceRatio <= s.vLong:
			f = Finding{Check: CheckVariance, Statistic: s.vShort / s.vLong, Limit: 1 / c.VarianceRatio, Window: c.VarianceMemory}
		}
	}
	if n := s.vSeen - c.VarianceMemory; n > 0 {
		s.vLong += (s.vShort - s.vLong) * weight(n, k.varianceLong, k.varianceLongWeight)
	}
	return f
}

// checkConstants are what the checks derive from their settings, once for a detector.
type checkConstants struct {
	rateWeight, driftWeight, baselineWeight, spreadWeight float64 // 1/memory of each average
	varianceWeight, varianceLongWeight                    float64
	spreadMemory, varianceLong                            int
	driftFloor                                            float64 // λ/(2-λ): independent noise's chart variance
	driftLimit2                                           float64 // DriftLimit²
	varianceCap2                                          float64 // (3·ClampZ)²
}

func constantsOf(c Checks) checkConstants {
	inv := func(n int) float64 {
		if n <= 0 {
			return 0
		}
		return 1 / float64(n)
	}
	k := checkConstants{rateWeight: inv(c.RateMemory), driftWeight: inv(c.DriftMemory), baselineWeight: inv(c.DriftBaseline),
		spreadMemory: c.DriftBaseline, varianceWeight: inv(c.VarianceMemory), varianceLong: 20 * c.VarianceMemory,
		driftLimit2: c.DriftLimit * c.DriftLimit, varianceCap2: 9 * c.ClampZ * c.ClampZ}
	if k.spreadMemory <= 0 {
		k.spreadMemory = 10 * c.DriftMemory
	}
	k.spreadWeight, k.varianceLongWeight = inv(k.spreadMemory), inv(k.varianceLong)
	if lambda := k.driftWeight; lambda > 0 {
		k.driftFloor = lambda / (2 - lambda)
	}
	return k
}

// weight is the weight of the n-th value in an average over a memory of m values: 1/n while
// fewer than m have come (a plain mean), then 1/m (inv).
func weight(n, m int, inv float64) float64 {
	if n >= m {
		return inv
	}
	return 1 / float64(n)
}

// UnmarshalFinding rebuilds a finding as storage keeps it (an unknown check name is an
// error: storage only holds the names String gives).
func UnmarshalFinding(check string, statistic, limit float64, window int) (Finding, error) {
	c, err := ParseCheck(check)
	if err != nil {
		return Finding{}, err
	}
	return Finding{Check: c, Statistic: statistic, Limit: limit, Window: window}, nil
}
