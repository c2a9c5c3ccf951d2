package anomaly_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// A series generator returns the i-th value of a signal.
type series func(r *rand.Rand, i int) float64

func gaussian(offset, sd float64) series {
	return func(r *rand.Rand, _ int) float64 { return offset + sd*r.NormFloat64() }
}

// randomWalk drifts by steps of sd, far from where it started over a long series.
func randomWalk(start, sd float64) series {
	x := start
	return func(r *rand.Rand, _ int) float64 { x += sd * r.NormFloat64(); return x }
}

// spiky is Gaussian noise with a rare spike of the given height.
func spiky(sd, height float64, every int) series {
	return func(r *rand.Rand, i int) float64 {
		if r.IntN(every) == 0 {
			return height * (1 + r.Float64())
		}
		return sd * r.NormFloat64()
	}
}

// steps is Gaussian noise whose level jumps by the given height every period readings.
func steps(sd, height float64, period int) series {
	return func(r *rand.Rand, i int) float64 {
		level := float64((i/period)%3) * height
		return level + sd*r.NormFloat64()
	}
}

// heavyTailed is Cauchy noise: most values small, some enormous.
func heavyTailed(offset float64) series {
	return func(r *rand.Rand, _ int) float64 { return offset + math.Tan(math.Pi*(r.Float64()-0.5)) }
}

// TestDetectorMatchesNaive runs the detector over random series and checks each verdict
// against a naive recomputation over the previous WindowSize values.
//
// The tolerance is relative 1e-9, plus, for z, what the inputs themselves allow: x - mean
// cannot be known better than a few ulps of |x| + |mean|, so values of 1e9 with noise of 1
// fix z only to about 1e-7.
func TestDetectorMatchesNaive(t *testing.T) {
	const relTol = 1e-9
	type config struct{ window, minSamples int }
	tests := []struct {
		name    string
		configs []config
		n       int
		gen     func() series
	}{
		{"gaussian_unit", []config{{2, 2}, {5, 3}, {30, 30}, {100, 30}}, 20_000, func() series { return gaussian(0, 1) }},
		{"offset_1e9_noise_1", []config{{10, 5}, {100, 30}, {257, 100}}, 20_000, func() series { return gaussian(1e9, 1) }},
		{"offset_1e9_noise_1e-3", []config{{100, 30}}, 20_000, func() series { return gaussian(1e9, 1e-3) }},
		{"offset_minus_1e12_noise_10", []config{{100, 30}}, 20_000, func() series { return gaussian(-1e12, 10) }},
		{"tiny_values", []config{{100, 30}}, 20_000, func() series { return gaussian(1e-12, 1e-15) }},
		{"random_walk_long", []config{{100, 30}, {1000, 30}}, 100_000, func() series { return randomWalk(1e9, 1) }},
		{"gaussian_long", []config{{100, 30}}, 100_000, func() series { return gaussian(1e9, 1) }},
		{"spikes_1e6", []config{{50, 30}, {100, 30}}, 50_000, func() series { return spiky(1, 1e6, 200) }},
		{"spikes_1e12", []config{{100, 30}}, 50_000, func() series { return spiky(0.01, 1e12, 500) }},
		{"level_steps_1e7", []config{{20, 10}, {100, 30}}, 50_000, func() series { return steps(1, 1e7, 333) }},
		{"cauchy", []config{{100, 30}}, 50_000, func() series { return heavyTailed(50) }},
	}
	for _, tt := range tests {
		for _, c := range tt.configs {
			t.Run(fmt.Sprintf("%s/window_%d_min_%d", tt.name, c.window, c.minSamples), func(t *testing.T) {
				t.Parallel()
				cfg := anomaly.Config{WindowSize: c.window, MinSamples: c.minSamples, Bands: anomaly.DefaultBands}
				r := rand.New(rand.NewPCG(uint64(c.window), uint64(len(tt.name))))
				gen := tt.gen()
				d := anomaly.NewDetector(cfg)
				k := sensor.Key{EquipmentID: "press-01", Type: sensor.Pressure}
				history := make([]float64, 0, tt.n)
				for i := range tt.n {
					x := gen(r, i)
					got := d.Judge(k, x)
					prev := history[max(0, len(history)-c.window):]
					history = append(history, x)

					if !finite(got.ZScore) || !finite(got.Mean) || !finite(got.StdDev) {
						t.Fatalf("reading %d: non-finite verdict %+v", i, got)
					}
					if got.WindowSize != len(prev) {
						t.Fatalf("reading %d: WindowSize = %d, want %d", i, got.WindowSize, len(prev))
					}
					if got.Judged != (len(prev) >= c.minSamples) {
						t.Fatalf("reading %d: Judged = %v with %d previous values", i, got.Judged, len(prev))
					}
					if !got.Judged {
						continue
					}
					mean, sd := naiveStats(prev)
					if !closeTo(got.Mean, mean, relTol) {
						t.Fatalf("reading %d: Mean = %v, want %v", i, got.Mean, mean)
					}
					if math.Abs(got.StdDev-sd) > relTol*sd {
						t.Fatalf("reading %d: StdDev = %v, want %v", i, got.StdDev, sd)
					}
					if sd == 0 {
						t.Fatalf("reading %d: a random window came out flat", i)
					}
					z := math.Max(-anomaly.MaxZScore, math.Min(anomaly.MaxZScore, (x-mean)/sd))
					zTol := relTol*math.Max(1, math.Abs(z)) + 8*epsilon*(math.Abs(x)+math.Abs(mean))/sd
					if math.Abs(got.ZScore-z) > zTol {
						t.Fatalf("reading %d: ZScore = %v, want %v ± %v", i, got.ZScore, z, zTol)
					}
					wantSev, wantAnomalous := cfg.Bands.Classify(z)
					if got.Severity != wantSev || got.Anomalous != wantAnomalous {
						if !nearBand(z, zTol, cfg.Bands) {
							t.Fatalf("reading %d: severity %q anomalous %v, want %q %v (z %v)",
								i, got.Severity, got.Anomalous, wantSev, wantAnomalous, z)
						}
					}
					if s, ok := cfg.Bands.Classify(got.ZScore); s != got.Severity || ok != got.Anomalous {
						t.Fatalf("reading %d: verdict %+v disagrees with its own z", i, got)
					}
				}
			})
		}
	}
}

const epsilon = 0x1p-52

// nearBand reports whether z lies within tol of a severity threshold, where a tiny rounding
// difference may legitimately change the verdict.
func nearBand(z, tol float64, b anomaly.Bands) bool {
	for _, edge := range []float64{b.Low, b.Medium, b.Critical} {
		if math.Abs(math.Abs(z)-edge) <= tol {
			return true
		}
	}
	return false
}

// TestDetectorKeysMatchSeparateDetectors: interleaving many sensors in one detector gives
// each the verdicts it would get alone.
func TestDetectorKeysMatchSeparateDetectors(t *testing.T) {
	cfg := anomaly.Config{WindowSize: 40, MinSamples: 30, Bands: anomaly.DefaultBands}
	keys := []sensor.Key{pressTemp, pressVib, lathTemp, {EquipmentID: "lathe-02", Type: sensor.Voltage}}
	shared := anomaly.NewDetector(cfg)
	alone := make(map[sensor.Key]*anomaly.Detector)
	for _, k := range keys {
		alone[k] = anomaly.NewDetector(cfg)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 10_000 {
		k := keys[r.IntN(len(keys))]
		x := float64(len(k.EquipmentID)*100) + r.NormFloat64()
		if r.IntN(100) == 0 {
			x += 50
		}
		got, want := shared.Judge(k, x), alone[k].Judge(k, x)
		if got != want {
			t.Fatalf("reading %d of %v: shared detector %+v, alone %+v", i, k, got, want)
		}
	}
}
