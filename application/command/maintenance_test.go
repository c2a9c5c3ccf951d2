package command_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/ports"
)

func maintenanceStore(t *testing.T, ids ...string) *memory.Store {
	t.Helper()
	store := memory.NewStore()
	for _, id := range ids {
		if _, err := store.UpsertMetadata(context.Background(), id, equipment.Metadata{}, start); err != nil {
			t.Fatal(err)
		}
	}
	return store
}

func TestSetMaintenance(t *testing.T) {
	now := start.Add(123456789 * time.Nanosecond) // not a whole microsecond
	tests := []struct {
		name       string
		cmd        command.SetMaintenance
		wantFields []string // nil: valid
		want       equipment.Maintenance
	}{
		{"from_defaults_to_now", command.SetMaintenance{EquipmentID: "press-01", To: now.Add(time.Hour), Reason: "die change"}, nil,
			equipment.Maintenance{EquipmentID: "press-01", From: now.Truncate(time.Microsecond), To: now.Add(time.Hour).Truncate(time.Microsecond), Reason: "die change"}},
		{"in_another_zone", command.SetMaintenance{EquipmentID: "press-01", From: start.In(time.FixedZone("CET", 3600)),
			To: start.Add(time.Hour).In(time.FixedZone("CET", 3600))}, nil,
			equipment.Maintenance{EquipmentID: "press-01", From: start, To: start.Add(time.Hour)}},
		{"reason_500_characters", command.SetMaintenance{EquipmentID: "press-01", To: now.Add(time.Minute), Reason: strings.Repeat("é", 500)}, nil,
			equipment.Maintenance{EquipmentID: "press-01", From: now.Truncate(time.Microsecond), To: now.Add(time.Minute).Truncate(time.Microsecond),
				Reason: strings.Repeat("é", 500)}},
		{"id_bad", command.SetMaintenance{EquipmentID: "press/01", To: now.Add(time.Hour)}, []string{"id"}, equipment.Maintenance{}},
		{"to_missing", command.SetMaintenance{EquipmentID: "press-01"}, []string{"to"}, equipment.Maintenance{}},
		{"to_in_the_past", command.SetMaintenance{EquipmentID: "press-01", From: now.Add(-2 * time.Hour), To: now.Add(-time.Hour)}, []string{"to"}, equipment.Maintenance{}},
		{"over_30_days", command.SetMaintenance{EquipmentID: "press-01", To: now.Add(31 * 24 * time.Hour)}, []string{"to"}, equipment.Maintenance{}},
		{"to_and_reason", command.SetMaintenance{EquipmentID: "press-01", To: now, Reason: strings.Repeat("x", 501)},
			[]string{"to", "reason"}, equipment.Maintenance{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := maintenanceStore(t, "press-01")
			h := command.NewSetMaintenanceHandler(store.Maintenance(), memory.NewClock(now))
			got, err := h.Handle(context.Background(), tt.cmd)
			if tt.wantFields == nil {
				if err != nil {
					t.Fatalf("Handle = %v, want success", err)
				}
				stored, err := store.Maintenance().Get(context.Background(), "press-01")
				if err != nil || got != tt.want || stored != tt.want {
					t.Errorf("Handle = %+v, stored %+v (%v); want %+v", got, stored, err, tt.want)
				}
				return
			}
			var fields []string
			for _, v := range asValidation(t, err) {
				fields = append(fields, v.Field)
			}
			if strings.Join(fields, ",") != strings.Join(tt.wantFields, ",") {
				t.Errorf("violations on %v, want %v", fields, tt.wantFields)
			}
			if _, err := store.Maintenance().Get(context.Background(), "press-01"); !errors.Is(err, ports.ErrNotFound) {
				t.Errorf("a refused window was stored: %v", err)
			}
		})
	}
	h := command.NewSetMaintenanceHandler(maintenanceStore(t).Maintenance(), memory.NewClock(now))
	if _, err := h.Handle(context.Background(), command.SetMaintenance{EquipmentID: "press-99", To: now.Add(time.Hour)}); !errors.Is(err, ports.ErrNotFound) {
		t.Errorf("unknown equipment: %v, want ErrNotFound", err)
	}
}

func TestEndMaintenance(t *testing.T) {
	ctx := context.Background()
	store := maintenanceStore(t, "press-01")
	clock := memory.NewClock(start)
	set := command.NewSetMaintenanceHandler(store.Maintenance(), clock)
	end := command.NewEndMaintenanceHandler(store.Maintenance(), store, clock)

	if err := end.Handle(ctx, command.EndMaintenance{EquipmentID: "press-01"}); !errors.Is(err, command.ErrNoMaintenance) {
		t.Fatalf("no window: %v, want ErrNoMaintenance", err)
	}
	err := end.Handle(ctx, command.EndMaintenance{EquipmentID: "press-99"})
	if !errors.Is(err, ports.ErrNotFound) || errors.Is(err, command.ErrNoMaintenance) {
		t.Fatalf("unknown equipment: %v, want ErrNotFound, not ErrNoMaintenance", err)
	}

	// Under way: ended now.
	if _, err := set.Handle(ctx, command.SetMaintenance{EquipmentID: "press-01", To: start.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Minute)
	if err := end.Handle(ctx, command.EndMaintenance{EquipmentID: "press-01"}); err != nil {
		t.Fatal(err)
	}
	if m, err := store.Maintenance().Get(ctx, "press-01"); err != nil || !m.To.Equal(start.Add(10*time.Minute)) {
		t.Fatalf("after ending: %+v, %v; want it to end now", m, err)
	}
	if err := end.Handle(ctx, command.EndMaintenance{EquipmentID: "press-01"}); !errors.Is(err, command.ErrNoMaintenance) {
		t.Fatalf("ended twice: %v, want ErrNoMaintenance", err)
	}

	store.SetErr(errStorageDown)
	if err := end.Handle(ctx, command.EndMaintenance{EquipmentID: "press-01"}); !errors.Is(err, ports.ErrUnavailable) {
		t.Fatalf("storage down: %v, want ErrUnavailable", err)
	}
}
