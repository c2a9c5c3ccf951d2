package anomaly_test

import (
	"errors"
	"math"
	"testing"

	"github.com/production-line-monitor/plm/domain/anomaly"
)

func TestParseSeverity(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    anomaly.Severity
		wantErr bool
	}{
		{"low", "LOW", anomaly.SeverityLow, false},
		{"medium", "MEDIUM", anomaly.SeverityMedium, false},
		{"critical", "CRITICAL", anomaly.SeverityCritical, false},
		{"empty", "", "", true},
		{"lower_case", "low", "", true},
		{"mixed_case", "Critical", "", true},
		{"padded", " LOW", "", true},
		{"unknown", "HIGH", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := anomaly.ParseSeverity(tt.in)
			if got != tt.want {
				t.Errorf("ParseSeverity(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if tt.wantErr != (err != nil) {
				t.Fatalf("ParseSeverity(%q) error = %v, want error: %v", tt.in, err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, anomaly.ErrUnknownSeverity) {
				t.Errorf("error %v does not wrap ErrUnknownSeverity", err)
			}
		})
	}
}

func TestSeveritiesAreOrderedAndParse(t *testing.T) {
	want := []anomaly.Severity{anomaly.SeverityLow, anomaly.SeverityMedium, anomaly.SeverityCritical}
	if len(anomaly.Severities) != len(want) {
		t.Fatalf("Severities = %v, want %v", anomaly.Severities, want)
	}
	for i, s := range anomaly.Severities {
		if s != want[i] {
			t.Errorf("Severities[%d] = %q, want %q", i, s, want[i])
		}
		if got, err := anomaly.ParseSeverity(string(s)); err != nil || got != s {
			t.Errorf("ParseSeverity(%q) = %q, %v", s, got, err)
		}
	}
}

func TestBandsClassify(t *testing.T) {
	below := func(f float64) float64 { return math.Nextafter(f, 0) }
	tests := []struct {
		name   string
		z      float64
		want   anomaly.Severity
		wantOK bool
	}{
		{"z_0", 0, "", false},
		{"z_just_below_3", below(3), "", false},
		{"z_2_99", 2.99, "", false},
		{"z_exactly_3", 3, anomaly.SeverityLow, true},
		{"z_just_below_4", below(4), anomaly.SeverityLow, true},
		{"z_exactly_4", 4, anomaly.SeverityMedium, true},
		{"z_just_below_5", below(5), anomaly.SeverityMedium, true},
		{"z_exactly_5", 5, anomaly.SeverityCritical, true},
		{"z_max", anomaly.MaxZScore, anomaly.SeverityCritical, true},
		{"negative_z_just_above_minus_3", -below(3), "", false},
		{"negative_z_exactly_minus_3", -3, anomaly.SeverityLow, true},
		{"negative_z_just_above_minus_4", -below(4), anomaly.SeverityLow, true},
		{"negative_z_exactly_minus_4", -4, anomaly.SeverityMedium, true},
		{"negative_z_just_above_minus_5", -below(5), anomaly.SeverityMedium, true},
		{"negative_z_exactly_minus_5", -5, anomaly.SeverityCritical, true},
		{"negative_z_max", -anomaly.MaxZScore, anomaly.SeverityCritical, true},
		{"nan_is_no_anomaly", math.NaN(), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := anomaly.DefaultBands.Classify(tt.z)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Classify(%v) = (%q, %v), want (%q, %v)", tt.z, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestBandsClassifyCustom(t *testing.T) {
	b := anomaly.Bands{Low: 2, Medium: 2, Critical: 10}
	tests := []struct {
		name   string
		z      float64
		want   anomaly.Severity
		wantOK bool
	}{
		{"below_low", 1.5, "", false},
		{"equal_low_and_medium_is_medium", 2, anomaly.SeverityMedium, true},
		{"between", 9.99, anomaly.SeverityMedium, true},
		{"critical", -10, anomaly.SeverityCritical, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := b.Classify(tt.z)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Classify(%v) = (%q, %v), want (%q, %v)", tt.z, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestBandsValidate(t *testing.T) {
	tests := []struct {
		name    string
		b       anomaly.Bands
		wantErr bool
	}{
		{"defaults", anomaly.DefaultBands, false},
		{"all_equal", anomaly.Bands{Low: 3, Medium: 3, Critical: 3}, false},
		{"tiny_low", anomaly.Bands{Low: 1e-9, Medium: 1, Critical: 2}, false},
		{"zero_value", anomaly.Bands{}, true},
		{"low_zero", anomaly.Bands{Low: 0, Medium: 4, Critical: 5}, true},
		{"low_negative", anomaly.Bands{Low: -3, Medium: 4, Critical: 5}, true},
		{"medium_below_low", anomaly.Bands{Low: 3, Medium: 2.9, Critical: 5}, true},
		{"critical_below_medium", anomaly.Bands{Low: 3, Medium: 4, Critical: 3.9}, true},
		{"nan_low", anomaly.Bands{Low: math.NaN(), Medium: 4, Critical: 5}, true},
		{"nan_medium", anomaly.Bands{Low: 3, Medium: math.NaN(), Critical: 5}, true},
		{"nan_critical", anomaly.Bands{Low: 3, Medium: 4, Critical: math.NaN()}, true},
		{"infinite_critical", anomaly.Bands{Low: 3, Medium: 4, Critical: math.Inf(1)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.b.Validate()
			if tt.wantErr != (err != nil) {
				t.Fatalf("Validate() = %v, want error: %v", err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, anomaly.ErrBadBands) {
				t.Errorf("error %v is not ErrBadBands", err)
			}
		})
	}
}
