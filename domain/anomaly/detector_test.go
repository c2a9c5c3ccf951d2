package anomaly_test

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
)

var (
	pressTemp = sensor.Key{EquipmentID: "press-01", Type: sensor.Temperature}
	pressVib  = sensor.Key{EquipmentID: "press-01", Type: sensor.Vibration}
	lathTemp  = sensor.Key{EquipmentID: "lathe-02", Type: sensor.Temperature}
)

// alternating returns n values 9, 11, 9, 11, ...: mean 10 for an even n.
func alternating(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = 9 + 2*float64(i%2)
	}
	return out
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     anomaly.Config
		wantErr error
	}{
		{"defaults", anomaly.DefaultConfig, nil},
		{"smallest", anomaly.Config{WindowSize: 2, MinSamples: 2, Bands: anomaly.DefaultBands}, nil},
		{"min_samples_equal_window", anomaly.Config{WindowSize: 30, MinSamples: 30, Bands: anomaly.DefaultBands}, nil},
		{"window_1", anomaly.Config{WindowSize: 1, MinSamples: 1, Bands: anomaly.DefaultBands}, anomaly.ErrBadConfig},
		{"window_0", anomaly.Config{WindowSize: 0, MinSamples: 2, Bands: anomaly.DefaultBands}, anomaly.ErrBadConfig},
		{"min_samples_1", anomaly.Config{WindowSize: 100, MinSamples: 1, Bands: anomaly.DefaultBands}, anomaly.ErrBadConfig},
		{"min_samples_negative", anomaly.Config{WindowSize: 100, MinSamples: -30, Bands: anomaly.DefaultBands}, anomaly.ErrBadConfig},
		{"min_samples_above_window", anomaly.Config{WindowSize: 100, MinSamples: 101, Bands: anomaly.DefaultBands}, anomaly.ErrBadConfig},
		{"bad_bands", anomaly.Config{WindowSize: 100, MinSamples: 30, Bands: anomaly.Bands{Low: 5, Medium: 4, Critical: 3}}, anomaly.ErrBadBands},
		{"zero_value", anomaly.Config{}, anomaly.ErrBadConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestDefaultConfigMatchesContract(t *testing.T) {
	c := anomaly.DefaultConfig
	if c.WindowSize != 100 || c.MinSamples != 30 || c.Bands != (anomaly.Bands{Low: 3, Medium: 4, Critical: 5}) {
		t.Errorf("DefaultConfig = %+v, want window 100, min samples 30, bands 3/4/5", c)
	}
}

// TestDetectorFirstVerdict: the nth reading is judged against the n-1 before it, so with
// MinSamples 30 the 30th reading gets no verdict and the 31st does.
func TestDetectorFirstVerdict(t *testing.T) {
	tests := []struct {
		name       string
		nth        int
		wantJudged bool
	}{
		{"1st_reading", 1, false},
		{"29th_reading", 29, false},
		{"30th_reading_against_29", 30, false},
		{"31st_reading_against_30", 31, true},
		{"32nd_reading", 32, true},
		{"101st_reading_full_window", 101, true},
		{"150th_reading_past_full", 150, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := anomaly.NewDetector(anomaly.DefaultConfig)
			values := alternating(tt.nth - 1)
			for i, v := range values {
				if got := d.Judge(pressTemp, v); got.Judged != (i >= 30) {
					t.Fatalf("reading %d: Judged = %v", i+1, got.Judged)
				}
			}
			spike := 1000.0
			v := d.Judge(pressTemp, spike)
			if v.Judged != tt.wantJudged {
				t.Fatalf("Judged = %v, want %v", v.Judged, tt.wantJudged)
			}
			wantWindow := min(tt.nth-1, 100)
			if v.WindowSize != wantWindow {
				t.Errorf("WindowSize = %d, want %d", v.WindowSize, wantWindow)
			}
			if !tt.wantJudged {
				if v.Anomalous || v.Severity != "" || v.ZScore != 0 || v.Mean != 0 || v.StdDev != 0 {
					t.Errorf("unjudged verdict carries a judgement: %+v", v)
				}
				return
			}
			if !v.Anomalous || v.Severity != anomaly.SeverityCritical {
				t.Errorf("spike verdict = %+v, want a CRITICAL anomaly", v)
			}
		})
	}
}

// TestDetectorWindowExcludesJudgedReading: the statistics are those of the previous readings;
// the judged value joins the window only afterwards.
func TestDetectorWindowExcludesJudgedReading(t *testing.T) {
	d := anomaly.NewDetector(anomaly.DefaultConfig)
	prev := alternating(30)
	for _, v := range prev {
		d.Judge(pressTemp, v)
	}
	wantMean, wantSD := naiveStats(prev)
	v := d.Judge(pressTemp, 100)
	if v.Mean != 10 || !closeTo(v.Mean, wantMean, 1e-15) {
		t.Errorf("Mean = %v, want the previous readings' %v", v.Mean, wantMean)
	}
	if !closeTo(v.StdDev, wantSD, 1e-12) {
		t.Errorf("StdDev = %v, want %v", v.StdDev, wantSD)
	}
	if want := (100 - wantMean) / wantSD; !closeTo(v.ZScore, want, 1e-12) {
		t.Errorf("ZScore = %v, want %v", v.ZScore, want)
	}
	if v.WindowSize != 30 {
		t.Errorf("WindowSize = %d, want 30", v.WindowSize)
	}
	got := d.Window(pressTemp).Values()
	if len(got) != 31 || got[30] != 100 {
		t.Errorf("window after judging = %v, want the 30 values then 100", got)
	}
	// The spike is now part of the window and moves the statistics of the next verdict.
	next := d.Judge(pressTemp, 10)
	wantMean, _ = naiveStats(append(prev, 100))
	if !closeTo(next.Mean, wantMean, 1e-12) || next.WindowSize != 31 {
		t.Errorf("next verdict mean, window = %v, %d; want %v, 31", next.Mean, next.WindowSize, wantMean)
	}
}

func TestDetectorWindowSlides(t *testing.T) {
	cfg := anomaly.Config{WindowSize: 5, MinSamples: 3, Bands: anomaly.DefaultBands}
	d := anomaly.NewDetector(cfg)
	for _, v := range []float64{1000, 1000, 1, 2, 3, 4, 5} {
		d.Judge(pressTemp, v)
	}
	v := d.Judge(pressTemp, 3)
	if v.Mean != 3 || v.WindowSize != 5 {
		t.Errorf("verdict mean, window = %v, %d; want 3, 5 (the old values evicted)", v.Mean, v.WindowSize)
	}
	if !closeTo(v.StdDev, math.Sqrt(2.5), 1e-12) || v.ZScore != 0 || v.Anomalous {
		t.Errorf("verdict = %+v, want sd %v, z 0, not anomalous", v, math.Sqrt(2.5))
	}
}

func TestDetectorSeverities(t *testing.T) {
	// 30 values alternating 9 and 11: mean 10, sample sd s.
	_, s := naiveStats(alternating(30))
	tests := []struct {
		name          string
		value         float64
		wantAnomalous bool
		wantSeverity  anomaly.Severity
	}{
		{"at_mean", 10, false, ""},
		{"z_2_9", 10 + 2.9*s, false, ""},
		{"z_3_1", 10 + 3.1*s, true, anomaly.SeverityLow},
		{"z_minus_3_1", 10 - 3.1*s, true, anomaly.SeverityLow},
		{"z_4_5", 10 + 4.5*s, true, anomaly.SeverityMedium},
		{"z_minus_4_5", 10 - 4.5*s, true, anomaly.SeverityMedium},
		{"z_5_1", 10 + 5.1*s, true, anomaly.SeverityCritical},
		{"z_minus_50", 10 - 50*s, true, anomaly.SeverityCritical},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := anomaly.NewDetector(anomaly.DefaultConfig)
			d.Warm(pressTemp, alternating(30))
			v := d.Judge(pressTemp, tt.value)
			if !v.Judged || v.Anomalous != tt.wantAnomalous || v.Severity != tt.wantSeverity {
				t.Errorf("verdict = %+v, want judged, anomalous %v, severity %q", v, tt.wantAnomalous, tt.wantSeverity)
			}
		})
	}
}

func TestDetectorFlatSignal(t *testing.T) {
	d := anomaly.NewDetector(anomaly.DefaultConfig)
	d.Warm(pressTemp, slices.Repeat([]float64{20}, 40))
	if v := d.Judge(pressTemp, 20); !v.Judged || v.Anomalous || v.ZScore != 0 || v.StdDev != 0 || v.Mean != 20 {
		t.Errorf("equal value on a flat signal: %+v, want judged, z 0, not anomalous", v)
	}
	v := d.Judge(pressTemp, 20.5)
	if !v.Anomalous || v.Severity != anomaly.SeverityCritical || v.ZScore != anomaly.MaxZScore {
		t.Errorf("departure from a flat signal: %+v, want CRITICAL with z %v", v, anomaly.MaxZScore)
	}
}

func TestDetectorKeysAreIsolated(t *testing.T) {
	d := anomaly.NewDetector(anomaly.DefaultConfig)
	for _, v := range alternating(40) {
		d.Judge(pressTemp, v)
	}
	// Another sensor of the same equipment, and the same sensor of another equipment, have
	// seen nothing: no verdict for them yet.
	for _, k := range []sensor.Key{pressVib, lathTemp} {
		if d.Knows(k) {
			t.Errorf("Knows(%v) before any reading = true", k)
		}
		if v := d.Judge(k, 1e6); v.Judged || v.WindowSize != 0 {
			t.Errorf("first reading of %v: %+v, want unjudged over an empty window", k, v)
		}
	}
	// Values of other keys did not enter pressTemp's window.
	if v := d.Judge(pressTemp, 10); v.Mean != 10 || v.WindowSize != 40 || v.Anomalous {
		t.Errorf("pressTemp verdict = %+v, want mean 10 over its own 40 values", v)
	}
	if got := d.Window(pressVib).Values(); !slices.Equal(got, []float64{1e6}) {
		t.Errorf("pressVib window = %v, want [1e6]", got)
	}
}

func TestDetectorWarmKnowsForget(t *testing.T) {
	cfg := anomaly.Config{WindowSize: 50, MinSamples: 30, Bands: anomaly.DefaultBands}
	tests := []struct {
		name       string
		warm       []float64
		wantWindow []float64
		wantJudged bool
	}{
		{"warm_empty", nil, []float64{}, false},
		{"warm_29_not_enough", alternating(29), alternating(29), false},
		{"warm_30_enough", alternating(30), alternating(30), true},
		{"warm_more_than_window_keeps_latest", append(slices.Repeat([]float64{1e9}, 20), alternating(50)...), alternating(50), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := anomaly.NewDetector(cfg)
			if d.Knows(pressTemp) || d.Window(pressTemp) != nil {
				t.Fatal("a new detector knows pressTemp")
			}
			d.Warm(pressTemp, tt.warm)
			if !d.Knows(pressTemp) {
				t.Fatal("Knows after Warm = false")
			}
			if got := d.Window(pressTemp).Values(); !slices.Equal(got, tt.wantWindow) {
				t.Fatalf("window after Warm = %v, want %v", got, tt.wantWindow)
			}
			if d.Window(pressTemp).Cap() != cfg.WindowSize {
				t.Errorf("window Cap = %d, want %d", d.Window(pressTemp).Cap(), cfg.WindowSize)
			}
			if v := d.Judge(pressTemp, 10); v.Judged != tt.wantJudged {
				t.Errorf("Judged after Warm = %v, want %v", v.Judged, tt.wantJudged)
			}
			d.Forget(pressTemp)
			if d.Knows(pressTemp) || d.Window(pressTemp) != nil {
				t.Error("Knows after Forget = true")
			}
			if v := d.Judge(pressTemp, 10); v.Judged || v.WindowSize != 0 {
				t.Errorf("first verdict after Forget = %+v, want unjudged over an empty window", v)
			}
		})
	}
}

func TestDetectorWarmReplacesWindow(t *testing.T) {
	d := anomaly.NewDetector(anomaly.DefaultConfig)
	for range 40 {
		d.Judge(pressTemp, 1000)
	}
	d.Warm(pressTemp, alternating(30))
	if v := d.Judge(pressTemp, 10); v.Mean != 10 || v.WindowSize != 30 {
		t.Errorf("verdict after Warm = %+v, want mean 10 over the 30 warmed values only", v)
	}
}

func TestDetectorForgetOnlyThatKey(t *testing.T) {
	d := anomaly.NewDetector(anomaly.DefaultConfig)
	d.Warm(pressTemp, alternating(30))
	d.Warm(pressVib, alternating(30))
	d.Forget(pressTemp)
	d.Forget(lathTemp) // unknown: no effect
	if d.Knows(pressTemp) || !d.Knows(pressVib) {
		t.Errorf("Knows(pressTemp), Knows(pressVib) = %v, %v; want false, true", d.Knows(pressTemp), d.Knows(pressVib))
	}
}

func TestDetectorConfig(t *testing.T) {
	cfg := anomaly.Config{WindowSize: 7, MinSamples: 3, Bands: anomaly.Bands{Low: 1, Medium: 2, Critical: 3}}
	if got := anomaly.NewDetector(cfg).Config(); got != cfg {
		t.Errorf("Config() = %+v, want %+v", got, cfg)
	}
}

func TestNewAnomaly(t *testing.T) {
	ts := time.Date(2026, 11, 27, 8, 15, 0, 0, time.UTC)
	detected := time.Date(2026, 11, 27, 9, 15, 0, 210e6, time.FixedZone("CET", 3600))
	r, err := sensor.NewReading("r-1", "press-01", sensor.Temperature, "", 91.2, "celsius", ts, ts)
	if err != nil {
		t.Fatal(err)
	}
	v := anomaly.Verdict{Judged: true, Anomalous: true, Severity: anomaly.SeverityMedium,
		ZScore: 4.7, Mean: 70.1, StdDev: 4.5, WindowSize: 100}
	got := anomaly.NewAnomaly("a-1", r, v, detected)
	want := anomaly.Anomaly{ID: "a-1", ReadingID: "r-1", EquipmentID: "press-01", SensorType: sensor.Temperature,
		Value: 91.2, ZScore: 4.7, Mean: 70.1, StdDev: 4.5, WindowSize: 100, Severity: anomaly.SeverityMedium,
		Timestamp: ts, DetectedAt: detected.UTC()}
	if got != want {
		t.Errorf("NewAnomaly = %+v\nwant %+v", got, want)
	}
	if got.DetectedAt.Location() != time.UTC {
		t.Errorf("DetectedAt location = %v, want UTC", got.DetectedAt.Location())
	}
}
