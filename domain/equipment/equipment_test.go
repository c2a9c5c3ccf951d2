package equipment_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/equipment"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestDefaultRulesMatchContract(t *testing.T) {
	if equipment.DefaultRules.OfflineAfter != 30*time.Second || equipment.DefaultRules.AnomalyWindow != 60*time.Second {
		t.Errorf("DefaultRules = %+v, want offline after 30s, anomaly window 60s", equipment.DefaultRules)
	}
}

func TestRulesStatusAt(t *testing.T) {
	now := at(time.Hour)
	tests := []struct {
		name        string
		lastSeen    time.Time
		lastAnomaly time.Time
		want        equipment.Status
	}{
		{"never_seen", time.Time{}, time.Time{}, equipment.StatusOffline},
		{"never_seen_with_anomaly", time.Time{}, now, equipment.StatusOffline},
		{"seen_just_now", now, time.Time{}, equipment.StatusOnline},
		{"silent_29s", now.Add(-29 * time.Second), time.Time{}, equipment.StatusOnline},
		{"silent_exactly_30s_still_online", now.Add(-30 * time.Second), time.Time{}, equipment.StatusOnline},
		{"silent_30s_plus_1ns_offline", now.Add(-30*time.Second - time.Nanosecond), time.Time{}, equipment.StatusOffline},
		{"silent_an_hour", now.Add(-time.Hour), time.Time{}, equipment.StatusOffline},
		{"seen_in_the_future", now.Add(time.Second), time.Time{}, equipment.StatusOnline},
		{"anomaly_just_now", now, now, equipment.StatusAnomaly},
		{"anomaly_59s_ago", now, now.Add(-59 * time.Second), equipment.StatusAnomaly},
		{"anomaly_exactly_at_window_edge", now, now.Add(-60 * time.Second), equipment.StatusAnomaly},
		{"anomaly_just_past_window_edge", now, now.Add(-60*time.Second - time.Nanosecond), equipment.StatusOnline},
		{"anomaly_long_ago", now, now.Add(-24 * time.Hour), equipment.StatusOnline},
		{"offline_wins_over_anomaly", now.Add(-31 * time.Second), now.Add(-time.Second), equipment.StatusOffline},
		{"offline_by_1ns_wins_over_anomaly", now.Add(-30*time.Second - time.Nanosecond), now, equipment.StatusOffline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := equipment.DefaultRules.StatusAt(tt.lastSeen, tt.lastAnomaly, now); got != tt.want {
				t.Errorf("StatusAt = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRulesStatusAtCustom(t *testing.T) {
	r := equipment.Rules{OfflineAfter: 5 * time.Minute, AnomalyWindow: time.Second}
	now := at(time.Hour)
	tests := []struct {
		name        string
		lastSeen    time.Time
		lastAnomaly time.Time
		want        equipment.Status
	}{
		{"silent_4m_online", now.Add(-4 * time.Minute), time.Time{}, equipment.StatusOnline},
		{"silent_5m_plus_1ns_offline", now.Add(-5*time.Minute - time.Nanosecond), time.Time{}, equipment.StatusOffline},
		{"anomaly_2s_ago_over", now, now.Add(-2 * time.Second), equipment.StatusOnline},
		{"anomaly_1s_ago", now, now.Add(-time.Second), equipment.StatusAnomaly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.StatusAt(tt.lastSeen, tt.lastAnomaly, now); got != tt.want {
				t.Errorf("StatusAt = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSessionAbsorb(t *testing.T) {
	const gap = 30 * time.Second
	s := equipment.Session{EquipmentID: "press-01", Start: at(0), End: at(time.Minute)}
	tests := []struct {
		name    string
		t       time.Time
		wantOK  bool
		wantEnd time.Time
	}{
		{"inside", at(30 * time.Second), true, at(time.Minute)},
		{"at_start", at(0), true, at(time.Minute)},
		{"at_end", at(time.Minute), true, at(time.Minute)},
		{"after_end_within_gap", at(time.Minute + 10*time.Second), true, at(time.Minute + 10*time.Second)},
		{"exactly_gap_after_end", at(time.Minute + gap), true, at(time.Minute + gap)},
		{"gap_plus_1ns_after_end", at(time.Minute + gap + time.Nanosecond), false, at(time.Minute)},
		{"31s_after_end", at(time.Minute + 31*time.Second), false, at(time.Minute)},
		{"before_start_within_gap", at(-10 * time.Second), true, at(time.Minute)},
		{"exactly_gap_before_start", at(-gap), true, at(time.Minute)},
		{"gap_plus_1ns_before_start", at(-gap - time.Nanosecond), false, at(time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := s.Absorb(tt.t, gap)
			if ok != tt.wantOK {
				t.Fatalf("Absorb ok = %v, want %v", ok, tt.wantOK)
			}
			if !got.Start.Equal(s.Start) || got.EquipmentID != s.EquipmentID {
				t.Errorf("Absorb moved the session's identity: %+v", got)
			}
			if !got.End.Equal(tt.wantEnd) {
				t.Errorf("End = %v, want %v", got.End, tt.wantEnd)
			}
		})
	}
	if !s.End.Equal(at(time.Minute)) {
		t.Errorf("Absorb changed the receiver: End = %v", s.End)
	}
}

func TestUptimePercent(t *testing.T) {
	const off = 30 * time.Second
	sess := func(from, to time.Duration) equipment.Session {
		return equipment.Session{EquipmentID: "press-01", Start: at(from), End: at(to)}
	}
	h := time.Hour
	m := time.Minute
	tests := []struct {
		name     string
		sessions []equipment.Session
		from, to time.Time
		now      time.Time
		want     float64
	}{
		{"no_sessions", nil, at(0), at(h), at(2 * h), 0},
		{"whole_range", []equipment.Session{sess(-m, h)}, at(0), at(h), at(2 * h), 100},
		{"first_half_with_offline_tail",
			[]equipment.Session{sess(0, 30*m-off)}, at(0), at(h), at(2 * h), 50},
		{"single_receipt_counts_its_tail",
			[]equipment.Session{sess(0, 0)}, at(0), at(h), at(2 * h), 100 * off.Seconds() / h.Seconds()},
		{"tail_cut_at_range_end",
			[]equipment.Session{sess(30*m, h)}, at(0), at(h), at(2 * h), 50},
		{"session_crossing_start",
			[]equipment.Session{sess(-h, 15*m-off)}, at(0), at(h), at(2 * h), 25},
		{"session_crossing_both_edges",
			[]equipment.Session{sess(-h, 2*h)}, at(0), at(h), at(3 * h), 100},
		{"tail_reaching_into_range",
			[]equipment.Session{sess(-h, -off+6*m)}, at(0), at(h), at(2 * h), 10},
		{"session_ending_before_range_with_tail_before",
			[]equipment.Session{sess(-h, -off)}, at(0), at(h), at(2 * h), 0},
		{"session_after_range", []equipment.Session{sess(h, 2*h)}, at(0), at(h), at(3 * h), 0},
		{"overlapping_sessions_not_double_counted",
			[]equipment.Session{sess(0, 20*m), sess(10*m, 30*m-off)}, at(0), at(h), at(2 * h), 50},
		{"nested_sessions",
			[]equipment.Session{sess(0, 30*m-off), sess(5*m, 10*m)}, at(0), at(h), at(2 * h), 50},
		{"unsorted_disjoint_sessions",
			[]equipment.Session{sess(40*m, 46*m-off), sess(0, 6*m-off)}, at(0), at(h), at(2 * h), 20},
		{"touching_sessions",
			[]equipment.Session{sess(0, 10*m-off), sess(10*m, 20*m-off)}, at(0), at(h), at(2 * h), 100.0 / 3},
		{"range_beyond_now_counts_until_now",
			[]equipment.Session{sess(0, 15*m)}, at(0), at(h), at(30 * m), 100 * (15*m + off).Seconds() / (30 * m).Seconds()},
		{"range_beyond_now_online_until_now",
			[]equipment.Session{sess(0, 30*m)}, at(0), at(h), at(30 * m), 100},
		{"range_entirely_in_the_future", []equipment.Session{sess(0, h)}, at(2 * h), at(3 * h), at(h), 0},
		{"empty_range", []equipment.Session{sess(0, h)}, at(10 * m), at(10 * m), at(2 * h), 0},
		{"reversed_range", []equipment.Session{sess(0, h)}, at(20 * m), at(10 * m), at(2 * h), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := equipment.UptimePercent(tt.sessions, tt.from, tt.to, tt.now, off)
			if math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("UptimePercent = %v, want %v", got, tt.want)
			}
			if got < 0 || got > 100 {
				t.Errorf("UptimePercent = %v, outside [0, 100]", got)
			}
		})
	}
}

func TestMetadataValidate(t *testing.T) {
	ok := strings.Repeat("é", equipment.MaxMetadataLen)     // 128 runes, 256 bytes
	long := strings.Repeat("é", equipment.MaxMetadataLen+1) // 129 runes
	tests := []struct {
		name    string
		m       equipment.Metadata
		wantErr bool
	}{
		{"empty", equipment.Metadata{}, false},
		{"typical", equipment.Metadata{Name: "Press 1", Line: "A", Location: "Hall 3"}, false},
		{"all_128_runes", equipment.Metadata{Name: ok, Line: ok, Location: ok}, false},
		{"ascii_128", equipment.Metadata{Name: strings.Repeat("n", 128)}, false},
		{"ascii_129", equipment.Metadata{Name: strings.Repeat("n", 129)}, true},
		{"name_129_runes", equipment.Metadata{Name: long}, true},
		{"line_129_runes", equipment.Metadata{Line: long}, true},
		{"location_129_runes", equipment.Metadata{Location: long}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate()
			if tt.wantErr != (err != nil) {
				t.Fatalf("Validate() = %v, want error: %v", err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, equipment.ErrMetadataTooLong) {
				t.Errorf("error %v is not ErrMetadataTooLong", err)
			}
		})
	}
}

func TestMetadataValidateNamesTheField(t *testing.T) {
	long := strings.Repeat("x", equipment.MaxMetadataLen+1)
	for field, m := range map[string]equipment.Metadata{
		"name": {Name: long}, "line": {Line: long}, "location": {Location: long},
	} {
		if err := m.Validate(); err == nil || !strings.HasPrefix(err.Error(), field+":") {
			t.Errorf("Validate() of a long %s = %v, want it named", field, err)
		}
	}
}
