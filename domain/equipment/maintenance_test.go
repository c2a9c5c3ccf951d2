package equipment_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/equipment"
)

func TestMaintenanceCovers(t *testing.T) {
	m := equipment.Maintenance{EquipmentID: "press-01", From: at(0), To: at(time.Hour)}
	tests := []struct {
		name string
		t    time.Time
		want bool
	}{
		{"before_from", at(-time.Nanosecond), false},
		{"exactly_from", at(0), true},
		{"inside", at(30 * time.Minute), true},
		{"last_nanosecond", at(time.Hour - time.Nanosecond), true},
		{"exactly_to", at(time.Hour), false},
		{"after_to", at(2 * time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.Covers(tt.t); got != tt.want {
				t.Errorf("Covers(%s) = %v, want %v", tt.t, got, tt.want)
			}
		})
	}
	if (equipment.Maintenance{From: at(0), To: at(0)}).Covers(at(0)) {
		t.Error("an empty window covers its start")
	}
	if m.EndedBy(at(time.Hour-time.Nanosecond)) || !m.EndedBy(at(time.Hour)) {
		t.Error("EndedBy must turn true exactly at To")
	}
}

// MAINTENANCE takes precedence over every status the rules give, while the window covers now.
func TestRulesStatusWithMaintenance(t *testing.T) {
	now := at(time.Hour)
	window := &equipment.Maintenance{From: now.Add(-time.Minute), To: now.Add(time.Minute)}
	over := &equipment.Maintenance{From: now.Add(-time.Hour), To: now}
	ahead := &equipment.Maintenance{From: now.Add(time.Nanosecond), To: now.Add(time.Hour)}
	tests := []struct {
		name        string
		m           *equipment.Maintenance
		lastSeen    time.Time
		lastAnomaly time.Time
		want        equipment.Status
	}{
		{"over_online", window, now, time.Time{}, equipment.StatusMaintenance},
		{"over_anomaly", window, now, now, equipment.StatusMaintenance},
		{"over_offline", window, now.Add(-time.Hour), time.Time{}, equipment.StatusMaintenance},
		{"over_never_seen", window, time.Time{}, time.Time{}, equipment.StatusMaintenance},
		{"no_window", nil, now, now, equipment.StatusAnomaly},
		{"window_ended_at_now", over, now, time.Time{}, equipment.StatusOnline},
		{"window_not_begun", ahead, now, now, equipment.StatusAnomaly},
		{"window_not_begun_offline", ahead, time.Time{}, time.Time{}, equipment.StatusOffline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := equipment.DefaultRules.StatusWith(tt.m, tt.lastSeen, tt.lastAnomaly, now); got != tt.want {
				t.Errorf("StatusWith = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestMaintenanceProblems(t *testing.T) {
	now := at(0)
	ok := equipment.Maintenance{EquipmentID: "press-01", From: now, To: now.Add(2 * time.Hour), Reason: "die change"}
	tests := []struct {
		name   string
		change func(*equipment.Maintenance)
		field  string
		want   error
	}{
		{"valid", func(*equipment.Maintenance) {}, "", nil},
		{"from_in_the_past", func(m *equipment.Maintenance) { m.From = now.Add(-24 * time.Hour) }, "", nil},
		{"exactly_30_days", func(m *equipment.Maintenance) { m.To = m.From.Add(equipment.MaxMaintenanceSpan) }, "", nil},
		{"30_days_and_1ns", func(m *equipment.Maintenance) { m.To = m.From.Add(equipment.MaxMaintenanceSpan + 1) }, "to", equipment.ErrMaintenanceTooLong},
		{"to_equals_from", func(m *equipment.Maintenance) { m.To = m.From }, "to", equipment.ErrMaintenanceEmpty},
		{"to_before_from", func(m *equipment.Maintenance) { m.To = m.From.Add(-time.Second) }, "to", equipment.ErrMaintenanceEmpty},
		{"to_exactly_now", func(m *equipment.Maintenance) { m.From, m.To = now.Add(-time.Hour), now }, "to", equipment.ErrMaintenanceOver},
		{"to_1ns_ahead", func(m *equipment.Maintenance) { m.From, m.To = now.Add(-time.Hour), now.Add(1) }, "", nil},
		{"reason_500_characters", func(m *equipment.Maintenance) { m.Reason = strings.Repeat("é", 500) }, "", nil},
		{"reason_501_characters", func(m *equipment.Maintenance) { m.Reason = strings.Repeat("é", 501) }, "reason", equipment.ErrMaintenanceReasonLong},
		{"reason_with_nul", func(m *equipment.Maintenance) { m.Reason = "a\x00b" }, "reason", equipment.ErrMaintenanceReasonText},
		{"reason_invalid_utf8", func(m *equipment.Maintenance) { m.Reason = "a\xffb" }, "reason", equipment.ErrMaintenanceReasonText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ok
			tt.change(&m)
			got := m.Problems(now)
			if tt.want == nil {
				if len(got) != 0 {
					t.Errorf("Problems = %+v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Field != tt.field || !errors.Is(got[0].Err, tt.want) {
				t.Errorf("Problems = %+v, want %s: %v", got, tt.field, tt.want)
			}
		})
	}
	both := equipment.Maintenance{From: now, To: now, Reason: "\x00"}
	if got := both.Problems(now); len(got) != 2 || got[0].Field != "to" || got[1].Field != "reason" {
		t.Errorf("Problems = %+v, want to and reason", got)
	}
}
