package anomaly_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/production-line-monitor/plm/domain/anomaly"
)

// naiveStats is the textbook two-pass computation of a window's mean and sample standard
// deviation, shifted by the first value so that large offsets cost no precision.
func naiveStats(values []float64) (mean, stdDev float64) {
	n := float64(len(values))
	if len(values) == 0 {
		return 0, 0
	}
	var s float64
	for _, v := range values {
		s += v - values[0]
	}
	mean = values[0] + s/n
	if len(values) < 2 {
		return mean, 0
	}
	var ss, c float64
	for _, v := range values {
		d := v - mean
		ss += d * d
		c += d
	}
	ss -= c * c / n
	return mean, math.Sqrt(max(ss, 0) / (n - 1))
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// closeTo reports whether got is within a relative tol of want (absolute near zero).
func closeTo(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*max(1, math.Abs(want))
}

func pushAll(w *anomaly.Window, values ...float64) {
	for _, v := range values {
		w.Push(v)
	}
}

func TestNewWindowCapacity(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		wantCap  int
	}{
		{"negative_becomes_2", -5, 2},
		{"zero_becomes_2", 0, 2},
		{"one_becomes_2", 1, 2},
		{"two", 2, 2},
		{"hundred", 100, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := anomaly.NewWindow(tt.capacity)
			if w.Cap() != tt.wantCap {
				t.Errorf("Cap() = %d, want %d", w.Cap(), tt.wantCap)
			}
			if w.Len() != 0 {
				t.Errorf("Len() = %d, want 0", w.Len())
			}
			if got := w.Values(); len(got) != 0 {
				t.Errorf("Values() = %v, want empty", got)
			}
		})
	}
}

func TestWindowPushEvicts(t *testing.T) {
	tests := []struct {
		name       string
		capacity   int
		pushes     []float64
		wantValues []float64
	}{
		{"one_value", 3, []float64{1}, []float64{1}},
		{"below_capacity", 3, []float64{1, 2}, []float64{1, 2}},
		{"exactly_full", 3, []float64{1, 2, 3}, []float64{1, 2, 3}},
		{"one_past_full_evicts_oldest", 3, []float64{1, 2, 3, 4}, []float64{2, 3, 4}},
		{"wraps_twice", 3, []float64{1, 2, 3, 4, 5, 6, 7}, []float64{5, 6, 7}},
		{"capacity_2", 2, []float64{9, 8, 7}, []float64{8, 7}},
		{"order_is_arrival_not_value", 4, []float64{5, -1, 3, 0, 2}, []float64{-1, 3, 0, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := anomaly.NewWindow(tt.capacity)
			pushAll(w, tt.pushes...)
			if got := w.Values(); !slices.Equal(got, tt.wantValues) {
				t.Errorf("Values() = %v, want %v", got, tt.wantValues)
			}
			if w.Len() != len(tt.wantValues) {
				t.Errorf("Len() = %d, want %d", w.Len(), len(tt.wantValues))
			}
			if w.Cap() != tt.capacity {
				t.Errorf("Cap() = %d, want %d", w.Cap(), tt.capacity)
			}
			mean, sd := naiveStats(tt.wantValues)
			_, gotMean, gotSD := w.Score(0)
			if !closeTo(gotMean, mean, 1e-12) || !closeTo(gotSD, sd, 1e-12) {
				t.Errorf("Score stats = (%v, %v), want the retained values' (%v, %v)", gotMean, gotSD, mean, sd)
			}
		})
	}
}

func TestWindowValuesIsACopy(t *testing.T) {
	w := anomaly.NewWindow(3)
	pushAll(w, 1, 2, 3)
	got := w.Values()
	got[0] = 100
	if again := w.Values(); !slices.Equal(again, []float64{1, 2, 3}) {
		t.Errorf("Values() after changing a returned slice = %v, want [1 2 3]", again)
	}
}

func TestWindowScore(t *testing.T) {
	sd8 := math.Sqrt(32.0 / 7.0) // sample std dev of {2,4,4,4,5,5,7,9}
	tests := []struct {
		name                    string
		values                  []float64
		x                       float64
		wantZ, wantMean, wantSD float64
	}{
		{"empty_window", nil, 42, 0, 0, 0},
		{"one_value_equal", []float64{5}, 5, 0, 5, 0},
		{"one_value_above", []float64{5}, 6, anomaly.MaxZScore, 5, 0},
		{"one_value_below", []float64{5}, 4, -anomaly.MaxZScore, 5, 0},
		{"textbook_set_at_mean", []float64{2, 4, 4, 4, 5, 5, 7, 9}, 5, 0, 5, sd8},
		{"textbook_set_above", []float64{2, 4, 4, 4, 5, 5, 7, 9}, 9, 4 / sd8, 5, sd8},
		{"textbook_set_below", []float64{2, 4, 4, 4, 5, 5, 7, 9}, 1, -4 / sd8, 5, sd8},
		{"two_values", []float64{1, 3}, 5, 3 / math.Sqrt2, 2, math.Sqrt2},
		{"negative_values", []float64{-10, -20, -30}, -40, -2, -20, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := anomaly.NewWindow(16)
			pushAll(w, tt.values...)
			z, mean, sd := w.Score(tt.x)
			if !closeTo(z, tt.wantZ, 1e-12) || !closeTo(mean, tt.wantMean, 1e-12) || !closeTo(sd, tt.wantSD, 1e-12) {
				t.Errorf("Score(%v) = (%v, %v, %v), want (%v, %v, %v)", tt.x, z, mean, sd, tt.wantZ, tt.wantMean, tt.wantSD)
			}
			if w.Len() != len(tt.values) {
				t.Errorf("Score changed Len() to %d, want %d", w.Len(), len(tt.values))
			}
		})
	}
}

// TestWindowScoreMatchesNaive compares Score with a two-pass recomputation over random
// windows, including ones that have wrapped many times.
func TestWindowScoreMatchesNaive(t *testing.T) {
	for _, capacity := range []int{2, 3, 7, 30, 100} {
		for _, pushes := range []int{1, capacity - 1, capacity, capacity + 1, 5*capacity + 3} {
			r := rand.New(rand.NewPCG(uint64(capacity), uint64(pushes)))
			w := anomaly.NewWindow(capacity)
			var all []float64
			for range pushes {
				v := 50 + 10*r.NormFloat64()
				all = append(all, v)
				w.Push(v)
			}
			kept := all[max(0, len(all)-capacity):]
			if !slices.Equal(w.Values(), kept) {
				t.Fatalf("cap %d after %d pushes: Values() = %v, want %v", capacity, pushes, w.Values(), kept)
			}
			x := 50 + 30*r.NormFloat64()
			wantMean, wantSD := naiveStats(kept)
			z, mean, sd := w.Score(x)
			if !closeTo(mean, wantMean, 1e-12) || !closeTo(sd, wantSD, 1e-12) {
				t.Errorf("cap %d after %d pushes: mean, sd = %v, %v; want %v, %v", capacity, pushes, mean, sd, wantMean, wantSD)
			}
			if wantSD > 0 && !closeTo(z, (x-wantMean)/wantSD, 1e-9) {
				t.Errorf("cap %d after %d pushes: z = %v, want %v", capacity, pushes, z, (x-wantMean)/wantSD)
			}
		}
	}
}

func TestWindowScoreFlat(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		x      float64
		wantZ  float64
	}{
		{"flat_equal_value_z_0", []float64{7, 7, 7, 7}, 7, 0},
		{"flat_higher_value_max_z", []float64{7, 7, 7, 7}, 7.000001, anomaly.MaxZScore},
		{"flat_lower_value_min_z", []float64{7, 7, 7, 7}, 6.999999, -anomaly.MaxZScore},
		{"flat_zeros_equal", []float64{0, 0, 0}, 0, 0},
		{"flat_zeros_smallest_step", []float64{0, 0, 0}, math.SmallestNonzeroFloat64, anomaly.MaxZScore},
		{"flat_decimal_equal", []float64{0.3, 0.3, 0.3}, 0.3, 0},
		{"flat_huge_equal", []float64{1e300, 1e300, 1e300}, 1e300, 0},
		{"flat_huge_other", []float64{1e300, 1e300, 1e300}, -1e300, -anomaly.MaxZScore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := anomaly.NewWindow(len(tt.values))
			pushAll(w, tt.values...)
			z, mean, sd := w.Score(tt.x)
			if z != tt.wantZ {
				t.Errorf("z = %v, want %v", z, tt.wantZ)
			}
			if mean != tt.values[0] || sd != 0 {
				t.Errorf("mean, sd = %v, %v; want %v, 0", mean, sd, tt.values[0])
			}
		})
	}
}

// TestWindowScoreFlatAfterNoise covers a window that has become flat by evicting varied
// values: whatever residue those values left in the running sums, the equal value must
// score 0 and the mean must be the flat value exactly.
func TestWindowScoreFlatAfterNoise(t *testing.T) {
	for capacity := 2; capacity <= 40; capacity++ {
		for before := 1; before <= capacity; before++ {
			w := anomaly.NewWindow(capacity)
			w.Push(0.1)
			for range before - 1 {
				w.Push(0.7)
			}
			for range capacity {
				w.Push(0.3)
			}
			z, mean, sd := w.Score(0.3)
			if z != 0 || mean != 0.3 || sd != 0 {
				t.Errorf("cap %d, %d varied values evicted: Score(0.3) = (%v, %v, %v), want (0, 0.3, 0)",
					capacity, before, z, mean, sd)
			}
			if z, _, _ := w.Score(0.31); z != anomaly.MaxZScore {
				t.Errorf("cap %d, %d varied values evicted: Score(0.31) z = %v, want %v", capacity, before, z, anomaly.MaxZScore)
			}
		}
	}
}

// TestWindowScoreAfterSpikeLeaves: once a huge spike has left the window, the statistics are
// those of the small values that remain, not a residue of the spike.
func TestWindowScoreAfterSpikeLeaves(t *testing.T) {
	for _, spike := range []float64{1e6, 1e9, 1e12, -1e15} {
		for _, capacity := range []int{5, 30, 100} {
			r := rand.New(rand.NewPCG(7, uint64(capacity)))
			w := anomaly.NewWindow(capacity)
			var all []float64
			push := func(v float64) { all = append(all, v); w.Push(v) }
			for range capacity / 2 {
				push(0.01 * r.NormFloat64())
			}
			push(spike)
			for range capacity {
				push(0.01 * r.NormFloat64())
				kept := all[max(0, len(all)-capacity):]
				if slices.Contains(kept, spike) {
					continue
				}
				wantMean, wantSD := naiveStats(kept)
				_, mean, sd := w.Score(0)
				if !closeTo(mean, wantMean, 1e-9) || math.Abs(sd-wantSD) > 1e-9*wantSD {
					t.Fatalf("spike %g, cap %d: mean, sd = %v, %v; want %v, %v", spike, capacity, mean, sd, wantMean, wantSD)
				}
			}
		}
	}
}

func TestWindowScoreHugeValuesStayFinite(t *testing.T) {
	const big = 1.7e308
	tests := []struct {
		name     string
		values   []float64
		x        float64
		wantSign float64 // sign of z; 0 means z must be 0
	}{
		{"plus_minus_1e300", []float64{1e300, -1e300, 1e300, -1e300}, 1e300, 1},
		{"minus_plus_1e300_judging_min", []float64{-1e300, 1e300, -1e300}, -1e300, -1},
		{"max_float_flat_equal", []float64{big, big, big}, big, 0},
		{"max_float_flat_opposite", []float64{big, big, big}, -big, -1},
		{"max_float_mixed", []float64{big, -big, big, -big}, big, 1},
		{"max_float_vs_small", []float64{1, 2, 3, 4}, big, 1},
		{"small_vs_max_float", []float64{big, big, 1, 2}, -big, -1},
		{"max_float_window_judging_zero", []float64{big, -big, big}, 0, -1},
		{"largest_float", []float64{math.MaxFloat64, -math.MaxFloat64}, math.MaxFloat64, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := anomaly.NewWindow(len(tt.values))
			pushAll(w, tt.values...)
			z, mean, sd := w.Score(tt.x)
			if !finite(z) || !finite(mean) || !finite(sd) {
				t.Fatalf("Score(%g) = (%v, %v, %v), want all finite", tt.x, z, mean, sd)
			}
			if sd < 0 {
				t.Errorf("sd = %v, want >= 0", sd)
			}
			if math.Abs(z) > anomaly.MaxZScore {
				t.Errorf("|z| = %v, want <= %v", math.Abs(z), anomaly.MaxZScore)
			}
			switch {
			case tt.wantSign == 0 && z != 0:
				t.Errorf("z = %v, want 0", z)
			case tt.wantSign != 0 && math.Signbit(z) != math.Signbit(tt.wantSign):
				t.Errorf("z = %v, want sign of %v", z, tt.wantSign)
			}
		})
	}
}

func TestWindowScoreHugeValuesOverLongSeries(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	w := anomaly.NewWindow(10)
	magnitudes := []float64{1, 1e150, 1e300, 1.7e308, math.MaxFloat64}
	for i := range 5000 {
		v := magnitudes[r.IntN(len(magnitudes))] * (2*r.Float64() - 1)
		z, mean, sd := w.Score(v)
		if !finite(z) || !finite(mean) || !finite(sd) {
			t.Fatalf("reading %d (%g) over %v: Score = (%v, %v, %v), want all finite", i, v, w.Values(), z, mean, sd)
		}
		w.Push(v)
	}
}
