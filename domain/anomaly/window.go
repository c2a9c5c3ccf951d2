// Package anomaly judges readings with a rolling z-score and classifies what it finds.
package anomaly

import "math"

// MaxZScore bounds every z-score the detector reports. A reading that departs from a flat
// window (standard deviation zero) scores ±MaxZScore, so no score is ever infinite.
const MaxZScore = 1e6

// Window is a fixed-capacity ring buffer of a sensor's latest values with running sums, so
// that adding a value and asking for the mean and standard deviation are O(1).
//
// The sums are kept relative to a shift (a value of the window) to limit cancellation, and
// are recomputed exactly from the buffer once per capacity pushes, so rounding error cannot
// build up over a long series. A value far from the others (a spike, a step of the signal)
// leaves a rounding residue in the sums when it is evicted; while that residue could matter,
// Score computes the statistics exactly from the buffer instead. The zero Window is not
// usable: call NewWindow.
type Window struct {
	buf     []float64
	head    int // index of the oldest value
	n       int
	shift   float64
	sum     float64 // Σ(x - shift)
	sumSq   float64 // Σ(x - shift)²
	peak    float64 // the largest (x - shift)² summed since the last exact recomputation
	pending int     // pushes since the last exact recomputation
}

// sumsTrust bounds the rounding error Score accepts from the running sums. Each update since
// the last exact recomputation may add an error of about ε·n·peak to Σ(x - shift)²; Score
// trusts the sums only while Σ(x - mean)² is at least sumsTrust·n·peak per update, so that
// their relative error stays below ε/sumsTrust ≈ 2e-10, and otherwise recomputes from the
// buffer.
const sumsTrust = 1e-6

// NewWindow returns an empty window holding at most capacity values (capacity ≥ 2).
func NewWindow(capacity int) *Window {
	if capacity < 2 {
		capacity = 2
	}
	return &Window{buf: make([]float64, capacity)}
}

// Len is the number of values in the window.
func (w *Window) Len() int { return w.n }

// Cap is the most values the window holds.
func (w *Window) Cap() int { return len(w.buf) }

// Push adds x as the newest value, evicting the oldest when the window is full.
func (w *Window) Push(x float64) {
	if w.n == 0 {
		w.shift = x
	}
	d := x - w.shift
	if w.n == len(w.buf) {
		old := w.buf[w.head] - w.shift
		w.sum -= old
		w.sumSq -= old * old
		w.buf[w.head] = x
		w.head = (w.head + 1) % len(w.buf)
	} else {
		w.buf[(w.head+w.n)%len(w.buf)] = x
		w.n++
	}
	w.sum += d
	w.sumSq += d * d
	w.peak = max(w.peak, d*d)
	w.pending++
	if w.pending >= len(w.buf) || isNonFinite(w.sum) || isNonFinite(w.sumSq) {
		w.recompute()
	}
}

// Values returns the window's values, oldest first.
func (w *Window) Values() []float64 {
	out := make([]float64, w.n)
	for i := range w.n {
		out[i] = w.buf[(w.head+i)%len(w.buf)]
	}
	return out
}

// recompute rebuilds the running sums exactly, shifted by the oldest value.
func (w *Window) recompute() {
	w.pending = 0
	if w.n == 0 {
		w.sum, w.sumSq, w.peak = 0, 0, 0
		return
	}
	w.shift = w.buf[w.head]
	var s, sq, peak float64
	for i := range w.n {
		d := w.buf[(w.head+i)%len(w.buf)] - w.shift
		s += d
		sq += d * d
		peak = max(peak, d*d)
	}
	w.sum, w.sumSq, w.peak = s, sq, peak
}

// Score returns x's z-score against the window's values, with the window's mean and sample
// standard deviation (n-1). x is not added. All three results are finite; with fewer than
// two values the standard deviation is zero.
//
// On a flat window any x equal to the mean scores 0 and any other x scores ±MaxZScore.
func (w *Window) Score(x float64) (z, mean, stdDev float64) {
	if w.n == 0 {
		return 0, 0, 0
	}
	n := float64(w.n)
	m2 := w.sumSq - w.sum*w.sum/n       // Σ(x - mean)²
	updates := float64(2*w.pending + 2) // additions and evictions since the last recomputation
	if isNonFinite(m2) || m2 < sumsTrust*n*updates*w.peak {
		return w.exactScore(x)
	}
	mean = w.shift + w.sum/n
	if w.n > 1 {
		stdDev = math.Sqrt(m2 / (n - 1))
	}
	return w.scoreWith(x, mean, stdDev)
}

// exactScore computes the statistics in two passes over the buffer, shifted by its oldest
// value, for when the running sums cannot be trusted. A flat window gets its value as the
// mean and a standard deviation of exactly zero.
func (w *Window) exactScore(x float64) (z, mean, stdDev float64) {
	n := float64(w.n)
	shift := w.buf[w.head]
	var s float64
	for i := range w.n {
		s += w.buf[(w.head+i)%len(w.buf)] - shift
	}
	mean = shift + s/n
	var ss, c float64
	for i := range w.n {
		d := w.buf[(w.head+i)%len(w.buf)] - mean
		ss += d * d
		c += d
	}
	ss -= c * c / n
	if w.n > 1 && ss > 0 {
		stdDev = math.Sqrt(ss / (n - 1))
	}
	return w.scoreWith(x, mean, stdDev)
}

// scoreWith scores x against the given statistics, falling back to scaledScore when they or
// the deviation are out of the range of a float64.
func (w *Window) scoreWith(x, mean, stdDev float64) (z, m, sd float64) {
	if isNonFinite(mean) || isNonFinite(stdDev) {
		return w.scaledScore(x)
	}
	z, ok := zOf(x-mean, stdDev)
	if !ok {
		return w.scaledScore(x)
	}
	return z, mean, stdDev
}

// scaledScore computes the statistics in two passes over values divided by the largest
// magnitude, for windows whose values are so large that the running sums overflow.
func (w *Window) scaledScore(x float64) (z, mean, stdDev float64) {
	scale := math.Abs(x)
	for i := range w.n {
		scale = math.Max(scale, math.Abs(w.buf[(w.head+i)%len(w.buf)]))
	}
	if scale == 0 {
		return 0, 0, 0
	}
	n := float64(w.n)
	var m float64
	for i := range w.n {
		m += w.buf[(w.head+i)%len(w.buf)] / scale
	}
	m /= n
	var ss float64
	for i := range w.n {
		d := w.buf[(w.head+i)%len(w.buf)]/scale - m
		ss += d * d
	}
	sd := 0.0
	if w.n > 1 {
		sd = math.Sqrt(ss / (n - 1))
	}
	z, _ = zOf(x/scale-m, sd)
	return z, clampFinite(m * scale), clampFinite(sd * scale)
}

// zOf divides a deviation by a standard deviation, capping the result at ±MaxZScore.
// ok is false when the deviation itself is not finite.
func zOf(dev, stdDev float64) (z float64, ok bool) {
	if isNonFinite(dev) {
		return 0, false
	}
	if dev == 0 {
		return 0, true
	}
	if stdDev == 0 {
		return math.Copysign(MaxZScore, dev), true
	}
	z = dev / stdDev
	if math.Abs(z) > MaxZScore || isNonFinite(z) {
		z = math.Copysign(MaxZScore, dev)
	}
	return z, true
}

func isNonFinite(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }

func clampFinite(f float64) float64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f > math.MaxFloat64:
		return math.MaxFloat64
	case f < -math.MaxFloat64:
		return -math.MaxFloat64
	}
	return f
}
