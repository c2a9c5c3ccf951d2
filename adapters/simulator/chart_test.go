package simulator

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// chartSVG is what a test reads back from a drawn chart.
type chartSVG struct {
	polylines [][]string          // the points of each polyline
	texts     map[string][]string // the text of each element, by class
}

// chartParse decodes an SVG document to its end, failing the test on any XML error.
func chartParse(t *testing.T, doc []byte) chartSVG {
	t.Helper()
	out := chartSVG{texts: map[string][]string{}}
	d := xml.NewDecoder(bytes.NewReader(doc))
	class := ""
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not XML: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			attr := map[string]string{}
			for _, a := range tok.Attr {
				attr[a.Name.Local] = a.Value
			}
			switch tok.Name.Local {
			case "polyline":
				out.polylines = append(out.polylines, strings.Fields(attr["points"]))
			case "text":
				class = attr["class"]
				text.Reset()
			}
		case xml.CharData:
			text.Write(tok)
		case xml.EndElement:
			if tok.Name.Local == "text" {
				out.texts[class] = append(out.texts[class], text.String())
			}
		}
	}
	return out
}

// chartExample is a valid two-series chart with names that need escaping.
func chartExample() Chart {
	return Chart{
		Title:  `Stored readings per second, "before" & after`,
		XLabel: "seconds",
		YLabel: "stored / s",
		Series: []Series{
			{Name: "baseline <&>", X: []float64{0, 1, 2, 3, 4}, Y: []float64{0, 40000, 93000, 90000, 91000}},
			{Name: "tuned", X: []float64{1, 2, 3, 4, 5, 6, 7}, Y: []float64{10000, 20000, 30000, 40000, 50000, 60000, 70000}},
		},
	}
}

func TestChartWriteSVGRefusesBadCharts(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name   string
		chart  Chart
		reason string
	}{
		{"no series", Chart{}, "no series"},
		{"lengths differ", Chart{Series: []Series{{Name: "a", X: []float64{1, 2}, Y: []float64{1}}}}, "2 X values but 1 Y values"},
		{"empty series", Chart{Series: []Series{{Name: "a", X: []float64{0}, Y: []float64{1}}, {Name: "b"}}}, "empty"},
		{"NaN X", Chart{Series: []Series{{X: []float64{0, nan}, Y: []float64{1, 2}}}}, "X[1] is NaN"},
		{"NaN Y", Chart{Series: []Series{{X: []float64{0, 1}, Y: []float64{nan, 2}}}}, "Y[0] is NaN"},
		{"infinite X", Chart{Series: []Series{{X: []float64{0, inf}, Y: []float64{1, 2}}}}, "X[1] is +Inf"},
		{"infinite Y", Chart{Series: []Series{{X: []float64{0, 1}, Y: []float64{1, -inf}}}}, "Y[1] is -Inf"},
		{"negative Y", Chart{Series: []Series{{X: []float64{0, 1}, Y: []float64{1, -2}}}}, "negative"},
		{"X descending", Chart{Series: []Series{{X: []float64{0, 2, 1}, Y: []float64{1, 2, 3}}}}, "not ascending"},
		{"negative size", Chart{Width: -1, Series: []Series{{X: []float64{0}, Y: []float64{1}}}}, "negative size"},
		{"too small", Chart{Width: 100, Height: 50, Series: []Series{{X: []float64{0}, Y: []float64{1}}}}, "no room"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := tt.chart.WriteSVG(&b)
			if err == nil {
				t.Fatalf("WriteSVG succeeded, want an error about %q", tt.reason)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("WriteSVG: %v, want an error about %q", err, tt.reason)
			}
			if b.Len() != 0 {
				t.Errorf("WriteSVG wrote %d bytes before failing", b.Len())
			}
		})
	}
}

func TestChartWriteSVGDrawsEverySeries(t *testing.T) {
	c := chartExample()
	var b bytes.Buffer
	if err := c.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	doc := b.Bytes()
	svg := chartParse(t, doc)

	if len(svg.polylines) != len(c.Series) {
		t.Fatalf("%d polylines, want %d", len(svg.polylines), len(c.Series))
	}
	for i, s := range c.Series {
		if got := len(svg.polylines[i]); got != len(s.X) {
			t.Errorf("polyline %d has %d points, want %d", i, got, len(s.X))
		}
	}
	if got, want := svg.texts["legend"], []string{"baseline <&>", "tuned"}; !reflect.DeepEqual(got, want) {
		t.Errorf("legend %q, want %q", got, want)
	}
	for _, raw := range []string{"baseline &lt;&amp;&gt;", "&#34;before&#34; &amp; after"} {
		if !bytes.Contains(doc, []byte(raw)) {
			t.Errorf("the SVG does not contain %q", raw)
		}
	}
	if got := svg.texts["title"]; len(got) != 1 || got[0] != c.Title {
		t.Errorf("title %q, want %q", got, c.Title)
	}
	if got := svg.texts["xlabel"]; len(got) != 1 || got[0] != c.XLabel {
		t.Errorf("X label %q, want %q", got, c.XLabel)
	}
	if got := svg.texts["ylabel"]; len(got) != 1 || got[0] != c.YLabel {
		t.Errorf("Y label %q, want %q", got, c.YLabel)
	}
	for _, axis := range []string{"xtick", "ytick"} {
		if n := len(svg.texts[axis]); n < 5 || n > 6 {
			t.Errorf("%d %s labels %q, want 5 or 6", n, axis, svg.texts[axis])
		}
	}
	if got, want := svg.texts["xtick"], []string{"0", "1.5", "3", "4.5", "6"}; !reflect.DeepEqual(got, want) {
		t.Errorf("X ticks %q, want %q", got, want)
	}
	if long := regexp.MustCompile(`\d\.\d\d`).Find(doc); long != nil {
		t.Errorf("the SVG has a number with more than one decimal place: %s", long)
	}
	if !bytes.Contains(doc, []byte(`fill="#ffffff"`)) {
		t.Error("the SVG has no white background")
	}
	if !bytes.Contains(doc, []byte(`class="grid"`)) {
		t.Error("the SVG has no grid lines")
	}
	colours := regexp.MustCompile(`<polyline[^>]* stroke="([^"]+)"`).FindAllSubmatch(doc, -1)
	if len(colours) != 2 || bytes.Equal(colours[0][1], colours[1][1]) {
		t.Errorf("the series are not drawn in two distinct colours: %q", colours)
	}
}

func TestChartYAxisTopsAtTheNiceMax(t *testing.T) {
	tests := []struct {
		max   float64
		ticks []string
	}{
		{93000, []string{"0", "20k", "40k", "60k", "80k", "100k"}},
		{100000, []string{"0", "20k", "40k", "60k", "80k", "100k"}},
		{100001, []string{"0", "50k", "100k", "150k", "200k"}},
		{1.3e6, []string{"0", "500k", "1M", "1.5M", "2M"}},
		{2.1e6, []string{"0", "500k", "1M", "1.5M", "2M", "2.5M"}},
		{4200, []string{"0", "1k", "2k", "3k", "4k", "5k"}},
		{7, []string{"0", "2", "4", "6", "8", "10"}},
		{0.3, []string{"0", "0.1", "0.2", "0.3", "0.4", "0.5"}},
		{0, []string{"0", "0.2", "0.4", "0.6", "0.8", "1"}},
	}
	for _, tt := range tests {
		c := Chart{Series: []Series{{Name: "a", X: []float64{0, 1, 2}, Y: []float64{0, tt.max, tt.max / 2}}}}
		var b bytes.Buffer
		if err := c.WriteSVG(&b); err != nil {
			t.Fatalf("max %v: %v", tt.max, err)
		}
		if got := chartParse(t, b.Bytes()).texts["ytick"]; !reflect.DeepEqual(got, tt.ticks) {
			t.Errorf("max %v: Y ticks %q, want %q", tt.max, got, tt.ticks)
		}
	}
}

func TestChartNiceCeilRoundsUpToOneTwoTwoAndAHalfOrFive(t *testing.T) {
	tests := []struct{ in, top float64 }{
		{0, 1}, {-3, 1}, {1, 1}, {1.01, 2}, {2, 2}, {2.2, 2.5}, {2.5, 2.5}, {3, 5}, {5, 5}, {5.5, 10},
		{9.99, 10}, {10, 10}, {93000, 100000}, {1000, 1000}, {0.042, 0.05}, {123456789, 200000000},
	}
	for _, tt := range tests {
		top, step := chartNiceCeil(tt.in)
		if math.Abs(top-tt.top) > 1e-9*tt.top {
			t.Errorf("chartNiceCeil(%v) = %v, want %v", tt.in, top, tt.top)
		}
		if n := math.Round(top / step); n < 4 || n > 5 {
			t.Errorf("chartNiceCeil(%v): step %v gives %v ticks above 0, want 4 or 5", tt.in, step, n)
		}
	}
}

func TestChartXTicksAreFiveOrSix(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   []float64 // nil: only count them
	}{
		{0, 60, []float64{0, 15, 30, 45, 60}},
		{0, 300, []float64{0, 60, 120, 180, 240, 300}},
		{0, 10, []float64{0, 2, 4, 6, 8, 10}},
		{0, 120, []float64{0, 30, 60, 90, 120}},
		{-0.3, 0.7, []float64{-0.2, 0, 0.2, 0.4, 0.6}},
		{1, 60, nil},
		{0, 1, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{17.3, 18.1, nil},
		{-5, 1234567, nil},
		{1e-6, 3e-6, nil},
		{100, 101, nil},
	}
	for _, tt := range tests {
		got := chartXTicks(tt.lo, tt.hi)
		if len(got) < 5 || len(got) > 6 {
			t.Errorf("chartXTicks(%v, %v) = %v, want 5 or 6 ticks", tt.lo, tt.hi, got)
		}
		for _, v := range got {
			if v < tt.lo-1e-9*math.Abs(tt.hi-tt.lo) || v > tt.hi+1e-9*math.Abs(tt.hi-tt.lo) {
				t.Errorf("chartXTicks(%v, %v): tick %v out of range", tt.lo, tt.hi, v)
			}
		}
		if tt.want != nil {
			if len(got) != len(tt.want) {
				t.Errorf("chartXTicks(%v, %v) = %v, want %v", tt.lo, tt.hi, got, tt.want)
				continue
			}
			for i := range got {
				if math.Abs(got[i]-tt.want[i]) > 1e-9 {
					t.Errorf("chartXTicks(%v, %v) = %v, want %v", tt.lo, tt.hi, got, tt.want)
					break
				}
			}
		}
	}
}

func TestChartCompactLabels(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {0.5, "0.5"}, {250, "250"}, {1000, "1k"}, {20000, "20k"}, {100000, "100k"},
		{150000, "150k"}, {1.5e6, "1.5M"}, {2.5e9, "2.5G"}, {3e12, "3T"}, {3 * 0.1, "0.3"},
	}
	for _, tt := range tests {
		if got := chartCompact(tt.in); got != tt.want {
			t.Errorf("chartCompact(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestChartNumbersHaveAtMostOneDecimal(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {-0.01, "0"}, {1.25, "1.3"}, {12.04, "12"}, {99.96, "100"}, {-3.14159, "-3.1"}, {123456.78, "123456.8"},
	}
	for _, tt := range tests {
		if got := chartNum(tt.in); got != tt.want {
			t.Errorf("chartNum(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestChartWriteSVGIsDeterministic(t *testing.T) {
	var first []byte
	for i := 0; i < 5; i++ {
		var b bytes.Buffer
		if err := chartExample().WriteSVG(&b); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = b.Bytes()
		} else if !bytes.Equal(b.Bytes(), first) {
			t.Fatalf("run %d wrote a different SVG", i)
		}
	}
}

func TestChartManySeriesStayDistinct(t *testing.T) {
	var c Chart
	for i := 0; i < 2*len(chartPalette); i++ {
		c.Series = append(c.Series, Series{Name: string(rune('a' + i)), X: []float64{0, 1}, Y: []float64{float64(i), 1}})
	}
	var b bytes.Buffer
	if err := c.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	styles := regexp.MustCompile(`<polyline[^>]* points=`).FindAll(b.Bytes(), -1)
	if len(styles) != len(c.Series) {
		t.Fatalf("%d polylines, want %d", len(styles), len(c.Series))
	}
	seen := map[string]bool{}
	for _, s := range styles {
		style := string(s)
		if seen[style] {
			t.Errorf("style %q drawn twice", style)
		}
		seen[style] = true
	}
	if got := len(chartParse(t, b.Bytes()).texts["legend"]); got != len(c.Series) {
		t.Errorf("%d legend entries, want %d", got, len(c.Series))
	}
}

func TestReadTimelineRoundTrip(t *testing.T) {
	const in = "seconds,stored,stored_per_second\n" +
		"1.0,1200,1200\n" +
		"2.0,3400,2200\n" +
		"3.0,6400,3000\n"
	s, err := ReadTimeline(strings.NewReader(in), "run A")
	if err != nil {
		t.Fatal(err)
	}
	want := Series{Name: "run A", X: []float64{1, 2, 3}, Y: []float64{1200, 2200, 3000}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("ReadTimeline = %+v, want %+v", s, want)
	}

	var b bytes.Buffer
	if err := (Chart{Title: "run A", Series: []Series{s}}).WriteSVG(&b); err != nil {
		t.Fatalf("the timeline does not chart: %v", err)
	}
	svg := chartParse(t, b.Bytes())
	if len(svg.polylines) != 1 || len(svg.polylines[0]) != 3 {
		t.Errorf("polylines %q, want one of 3 points", svg.polylines)
	}
}

func TestReadTimelineRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name, in, reason string
	}{
		{"empty", "", "missing header"},
		{"only header", "seconds,stored,stored_per_second\n", "no rows"},
		{"no header", "1.0,1200,1200\n2.0,3400,2200\n", "line 1: header"},
		{"wrong header", "seconds,stored,rate\n1.0,1200,1200\n", "line 1: header"},
		{"short header", "seconds,stored\n1.0,1200\n", "line 1: header"},
		{"too few fields", "seconds,stored,stored_per_second\n1.0,1200,1200\n2.0,3400\n", "line 3: 2 fields, want 3"},
		{"too many fields", "seconds,stored,stored_per_second\n1.0,1200,1200,7\n", "line 2: 4 fields, want 3"},
		{"bad seconds", "seconds,stored,stored_per_second\n1.0,1200,1200\nsoon,3400,2200\n", `line 3: seconds is "soon"`},
		{"bad stored", "seconds,stored,stored_per_second\n1.0,lots,1200\n", `line 2: stored is "lots"`},
		{"bad rate", "seconds,stored,stored_per_second\n1.0,1200,\n", `line 2: stored_per_second is ""`},
		{"NaN rate", "seconds,stored,stored_per_second\n1.0,1200,NaN\n", `line 2: stored_per_second is "NaN"`},
		{"bad quoting", "seconds,stored,stored_per_second\n1.0,\"12\"00,1200\n", "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadTimeline(strings.NewReader(tt.in), "run B")
			if err == nil {
				t.Fatalf("ReadTimeline succeeded, want an error about %q", tt.reason)
			}
			if !strings.Contains(err.Error(), tt.reason) || !strings.Contains(err.Error(), `"run B"`) {
				t.Errorf("ReadTimeline: %v, want an error about %q naming the run", err, tt.reason)
			}
		})
	}
}
