package simulator

import (
	"encoding/csv"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Series is one line of a chart: Y values at X values (X ascending).
type Series struct {
	Name string
	X, Y []float64
}

// Chart is a line chart of one or more series on shared axes.
type Chart struct {
	Title          string
	XLabel, YLabel string
	Series         []Series
	Width, Height  int // pixels; 0 means 900 x 420
}

// Default size and the fixed layout of a chart, in pixels.
const (
	chartDefaultWidth  = 900
	chartDefaultHeight = 420
	chartMarginLeft    = 70  // Y tick labels and the Y axis label
	chartMarginRight   = 170 // the legend
	chartMarginTop     = 44  // the title
	chartMarginBottom  = 52  // X tick labels and the X axis label
	chartMinPlot       = 20  // the smallest plot area drawn
	chartTickLength    = 5
	chartLegendRow     = 18
	chartLegendLine    = 24
)

// chartPalette is the fixed cycle of series colours; past its end the colours repeat with a
// dash pattern, so that every series stays distinguishable.
var chartPalette = []string{
	"#1f77b4", // blue
	"#ff7f0e", // orange
	"#2ca02c", // green
	"#d62728", // red
	"#9467bd", // purple
	"#8c564b", // brown
	"#e377c2", // pink
	"#17becf", // cyan
}

// chartDashes are the dash patterns of the second, third, ... passes through chartPalette.
var chartDashes = []string{"", "8 4", "2 3", "8 3 2 3"}

// WriteSVG writes c as a standalone SVG document.
//
// The Y axis runs from 0 to the largest Y value of any series rounded up to 1, 2, 2.5 or 5
// times a power of ten; the X axis runs from the smallest to the largest X value of any
// series. It is an error for c to have no series, or for a series to be empty, not to have
// as many X values as Y values, to hold NaN, infinite or negative Y values, or X values
// that are not ascending (equal neighbours are allowed). The output depends only on c.
func (c Chart) WriteSVG(w io.Writer) error {
	if err := c.validate(); err != nil {
		return err
	}
	width, height := c.Width, c.Height
	if width == 0 {
		width = chartDefaultWidth
	}
	if height == 0 {
		height = chartDefaultHeight
	}
	plotW := float64(width - chartMarginLeft - chartMarginRight)
	plotH := float64(height - chartMarginTop - chartMarginBottom)
	if plotW < chartMinPlot || plotH < chartMinPlot {
		return fmt.Errorf("chart: %d x %d pixels leaves no room to plot", width, height)
	}

	xMin, xMax, yMax := c.bounds()
	if xMax == xMin {
		xMax = xMin + 1
	}
	yTop, yStep := chartNiceCeil(yMax)
	left, top := float64(chartMarginLeft), float64(chartMarginTop)
	right, bottom := left+plotW, top+plotH
	px := func(x float64) float64 { return left + (x-xMin)/(xMax-xMin)*plotW }
	py := func(y float64) float64 { return bottom - y/yTop*plotH }

	var b strings.Builder
	n := chartNum
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	if c.Title != "" {
		fmt.Fprintf(&b, `<text class="title" x="%s" y="26" text-anchor="middle" font-size="16" font-weight="bold">%s</text>`+"\n",
			n(left+plotW/2), chartEscape(c.Title))
	}

	// Horizontal grid lines and the Y ticks.
	for i, v := range chartYTicks(yTop, yStep) {
		y := py(v)
		if i > 0 {
			fmt.Fprintf(&b, `<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e6e6e6" stroke-width="1"/>`+"\n",
				n(left), n(y), n(right), n(y))
		}
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333333" stroke-width="1"/>`+"\n",
			n(left-chartTickLength), n(y), n(left), n(y))
		fmt.Fprintf(&b, `<text class="ytick" x="%s" y="%s" text-anchor="end">%s</text>`+"\n",
			n(left-chartTickLength-3), n(y+4), chartEscape(chartCompact(v)))
	}

	// The X ticks.
	for _, v := range chartXTicks(xMin, xMax) {
		x := px(v)
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333333" stroke-width="1"/>`+"\n",
			n(x), n(bottom), n(x), n(bottom+chartTickLength))
		fmt.Fprintf(&b, `<text class="xtick" x="%s" y="%s" text-anchor="middle">%s</text>`+"\n",
			n(x), n(bottom+chartTickLength+14), chartEscape(chartXLabel(v)))
	}

	// The axes, over the grid.
	fmt.Fprintf(&b, `<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333333" stroke-width="1"/>`+"\n",
		n(left), n(top), n(left), n(bottom))
	fmt.Fprintf(&b, `<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333333" stroke-width="1"/>`+"\n",
		n(left), n(bottom), n(right), n(bottom))
	if c.XLabel != "" {
		fmt.Fprintf(&b, `<text class="xlabel" x="%s" y="%s" text-anchor="middle">%s</text>`+"\n",
			n(left+plotW/2), n(bottom+42), chartEscape(c.XLabel))
	}
	if c.YLabel != "" {
		x, y := 16.0, top+plotH/2
		fmt.Fprintf(&b, `<text class="ylabel" x="%s" y="%s" text-anchor="middle" transform="rotate(-90 %s %s)">%s</text>`+"\n",
			n(x), n(y), n(x), n(y), chartEscape(c.YLabel))
	}

	// The series and the legend.
	for i, s := range c.Series {
		colour, dash := chartStyle(i)
		fmt.Fprintf(&b, `<polyline class="series" fill="none" stroke="%s" stroke-width="1.5" stroke-linejoin="round"%s points="`, colour, dash)
		for j := range s.X {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(n(px(s.X[j])))
			b.WriteByte(',')
			b.WriteString(n(py(s.Y[j])))
		}
		b.WriteString(`"/>` + "\n")
	}
	for i, s := range c.Series {
		colour, dash := chartStyle(i)
		x := right + 16
		y := top + 8 + float64(i)*chartLegendRow
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2"%s/>`+"\n",
			n(x), n(y), n(x+chartLegendLine), n(y), colour, dash)
		fmt.Fprintf(&b, `<text class="legend" x="%s" y="%s">%s</text>`+"\n",
			n(x+chartLegendLine+6), n(y+4), chartEscape(s.Name))
	}
	b.WriteString("</svg>\n")

	_, err := io.WriteString(w, b.String())
	return err
}

// validate reports the first reason c cannot be drawn.
func (c Chart) validate() error {
	if c.Width < 0 || c.Height < 0 {
		return fmt.Errorf("chart: negative size %d x %d", c.Width, c.Height)
	}
	if len(c.Series) == 0 {
		return errors.New("chart: no series")
	}
	for i, s := range c.Series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("chart: series %d (%q): %d X values but %d Y values", i, s.Name, len(s.X), len(s.Y))
		}
		if len(s.X) == 0 {
			return fmt.Errorf("chart: series %d (%q) is empty", i, s.Name)
		}
		for j := range s.X {
			x, y := s.X[j], s.Y[j]
			switch {
			case math.IsNaN(x) || math.IsInf(x, 0):
				return fmt.Errorf("chart: series %d (%q): X[%d] is %v", i, s.Name, j, x)
			case math.IsNaN(y) || math.IsInf(y, 0):
				return fmt.Errorf("chart: series %d (%q): Y[%d] is %v", i, s.Name, j, y)
			case y < 0:
				return fmt.Errorf("chart: series %d (%q): Y[%d] is negative (%v); the Y axis starts at 0", i, s.Name, j, y)
			case j > 0 && x < s.X[j-1]:
				return fmt.Errorf("chart: series %d (%q): X not ascending: X[%d] = %v after X[%d] = %v", i, s.Name, j, x, j-1, s.X[j-1])
			}
		}
	}
	return nil
}

// bounds is the X range and the largest Y value over all series of a valid chart.
func (c Chart) bounds() (xMin, xMax, yMax float64) {
	xMin, xMax = math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		xMin = math.Min(xMin, s.X[0])
		xMax = math.Max(xMax, s.X[len(s.X)-1])
		for _, y := range s.Y {
			yMax = math.Max(yMax, y)
		}
	}
	return xMin, xMax, yMax
}

// chartStyle is the stroke colour and the dash attribute (empty or with a leading space) of
// the i-th series.
func chartStyle(i int) (colour, dash string) {
	colour = chartPalette[i%len(chartPalette)]
	if d := chartDashes[(i/len(chartPalette))%len(chartDashes)]; d != "" {
		dash = ` stroke-dasharray="` + d + `"`
	}
	return colour, dash
}

// chartNiceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten, and gives the step of
// the 5 or 6 ticks from 0 to it; v <= 0 rounds to 1.
func chartNiceCeil(v float64) (top, step float64) {
	if !(v > 0) {
		return 1, 0.2
	}
	p := math.Pow10(int(math.Floor(math.Log10(v))))
	f := v / p
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if f <= m*(1+1e-9) {
			top = m * p
			if m == 2 {
				return top, top / 4 // 0, 0.5, 1, 1.5, 2
			}
			return top, top / 5
		}
	}
	return 10 * p, 2 * p // not reached: f < 10
}

// chartYTicks are the multiples of step from 0 to top.
func chartYTicks(top, step float64) []float64 {
	n := int(math.Round(top / step))
	ticks := make([]float64, 0, n+1)
	for i := 0; i <= n; i++ {
		ticks = append(ticks, float64(i)*step)
	}
	return ticks
}

// chartXTicks are 5 or 6 ticks between lo and hi (lo < hi): the multiples of a round step,
// chosen to span as much of the range as can be and, among equals, to be the roundest; or if
// no round step gives 5 or 6 ticks, lo, hi and four ticks evenly between.
func chartXTicks(lo, hi float64) []float64 {
	const eps = 1e-9
	e := int(math.Floor(math.Log10(hi - lo)))
	var best []float64
	bestSpan := 0.0
	// The roundest steps first: 1, 2 or 5 times a power of ten; then 2.5; then steps that
	// suit seconds and minutes (15, 30, 60); then the rest.
	for _, ms := range [][]float64{{5, 2, 1}, {2.5}, {6, 3, 1.5}, {8, 4}} {
		for k := e + 1; k >= e-2; k-- {
			for _, m := range ms {
				step := m * math.Pow10(k)
				first := math.Ceil(lo/step - eps)
				last := math.Floor(hi/step + eps)
				c := last - first + 1
				if c < 5 || c > 6 {
					continue
				}
				if span := (last - first) * step / (hi - lo); best == nil || span > bestSpan+eps {
					best, bestSpan = best[:0], span
					for i := first; i <= last; i++ {
						v := i * step
						if v == 0 {
							v = 0 // no -0
						}
						best = append(best, v)
					}
				}
			}
		}
	}
	if best != nil {
		return best
	}
	ticks := make([]float64, 6)
	for i := range ticks {
		ticks[i] = lo + (hi-lo)*float64(i)/5
	}
	return ticks
}

// chartCompact formats a Y tick value compactly: 20k, 100k, 1.5M.
func chartCompact(v float64) string {
	a := math.Abs(v)
	for _, u := range []struct {
		scale  float64
		suffix string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if a >= u.scale*(1-1e-9) {
			return strconv.FormatFloat(v/u.scale, 'g', 4, 64) + u.suffix
		}
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// chartXLabel formats an X tick value as a plain number, compactly past a million.
func chartXLabel(v float64) string {
	if math.Abs(v) >= 1e6 {
		return chartCompact(v)
	}
	if math.Abs(v) < 1e-12 {
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// chartNum formats a coordinate with at most one decimal place.
func chartNum(v float64) string {
	r := math.Round(v*10) / 10
	if r == 0 {
		r = 0 // no "-0"
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// chartEscape escapes s for the text of an XML element.
func chartEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}

// chartTimelineHeader is the header of a timeline CSV, as WriteTimeline writes it.
var chartTimelineHeader = []string{"seconds", "stored", "stored_per_second"}

// ReadTimeline reads a CSV timeline as written by load runs: a header line
// "seconds,stored,stored_per_second" and then one row per second; it returns the series of
// stored_per_second against seconds, named name.
//
// It is an error for the header to be missing or different, for a row to have other than
// three fields or a field that is not a finite number, and for there to be no rows; errors
// name the line.
func ReadTimeline(r io.Reader, name string) (Series, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // counted below, to say which line is wrong
	cr.ReuseRecord = true
	fail := func(format string, args ...any) (Series, error) {
		return Series{}, fmt.Errorf("timeline %q: "+format, append([]any{name}, args...)...)
	}

	header, err := cr.Read()
	if err == io.EOF {
		return fail("missing header %q", strings.Join(chartTimelineHeader, ","))
	}
	if err != nil {
		return fail("%w", err)
	}
	if line, _ := cr.FieldPos(0); !chartSameFields(header, chartTimelineHeader) {
		return fail("line %d: header is %q, want %q", line, strings.Join(header, ","), strings.Join(chartTimelineHeader, ","))
	}

	s := Series{Name: name}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail("%w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(chartTimelineHeader) {
			return fail("line %d: %d fields, want %d", line, len(rec), len(chartTimelineHeader))
		}
		var v [3]float64
		for i, f := range rec {
			x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return fail("line %d: %s is %q, not a number", line, chartTimelineHeader[i], f)
			}
			v[i] = x
		}
		s.X = append(s.X, v[0])
		s.Y = append(s.Y, v[2])
	}
	if len(s.X) == 0 {
		return fail("no rows after the header")
	}
	return s, nil
}

// chartSameFields reports whether a and b hold the same strings, ignoring surrounding space.
func chartSameFields(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.TrimSpace(a[i]) != b[i] {
			return false
		}
	}
	return true
}
