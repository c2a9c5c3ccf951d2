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

func TestUpsertEquipmentValidation(t *testing.T) {
	long := strings.Repeat("é", equipment.MaxMetadataLen+1)
	fine := strings.Repeat("é", equipment.MaxMetadataLen)
	tests := []struct {
		name       string
		cmd        command.UpsertEquipment
		wantFields []string // nil: valid
	}{
		{"valid", command.UpsertEquipment{ID: "press-01", Metadata: equipment.Metadata{Name: "Press 1"}}, nil},
		{"id_64_chars", command.UpsertEquipment{ID: strings.Repeat("p", 64)}, nil},
		{"metadata_128_runes", command.UpsertEquipment{ID: "p", Metadata: equipment.Metadata{Name: fine, Line: fine, Location: fine}}, nil},
		{"id_empty", command.UpsertEquipment{ID: ""}, []string{"id"}},
		{"id_65_chars", command.UpsertEquipment{ID: strings.Repeat("p", 65)}, []string{"id"}},
		{"id_bad_first_char", command.UpsertEquipment{ID: "_press"}, []string{"id"}},
		{"id_with_slash", command.UpsertEquipment{ID: "press/01"}, []string{"id"}},
		{"name_129_runes", command.UpsertEquipment{ID: "p", Metadata: equipment.Metadata{Name: long}}, []string{"name"}},
		{"line_129_runes", command.UpsertEquipment{ID: "p", Metadata: equipment.Metadata{Line: long}}, []string{"line"}},
		{"location_129_runes", command.UpsertEquipment{ID: "p", Metadata: equipment.Metadata{Location: long}}, []string{"location"}},
		{"every_field_too_long", command.UpsertEquipment{ID: "p", Metadata: equipment.Metadata{Name: long, Line: long, Location: long}},
			[]string{"name", "line", "location"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := memory.NewStore()
			h := command.NewUpsertEquipmentHandler(store, memory.NewClock(start))
			e, err := h.Handle(context.Background(), tt.cmd)
			if tt.wantFields == nil {
				if err != nil {
					t.Fatalf("Handle = %v, want success", err)
				}
				if e.ID != tt.cmd.ID || e.Name != tt.cmd.Metadata.Name {
					t.Errorf("Handle = %+v", e)
				}
				return
			}
			v := asValidation(t, err)
			var fields []string
			for _, x := range v {
				fields = append(fields, x.Field)
				if x.Message == "" {
					t.Errorf("violation on %s has no message", x.Field)
				}
			}
			if strings.Join(fields, ",") != strings.Join(tt.wantFields, ",") {
				t.Errorf("violations on %v, want %v", fields, tt.wantFields)
			}
			if all, _ := store.All(context.Background()); len(all) != 0 {
				t.Errorf("refused upsert stored %+v", all)
			}
		})
	}
}

func TestUpsertEquipmentCreatesThenUpdates(t *testing.T) {
	ctx := context.Background()
	store := memory.NewStore()
	clock := memory.NewClock(start.In(time.FixedZone("CET", 3600)))
	h := command.NewUpsertEquipmentHandler(store, clock)

	created, err := h.Handle(ctx, command.UpsertEquipment{ID: "press-01",
		Metadata: equipment.Metadata{Name: "Press 1", Line: "A", Location: "Hall 3"}})
	if err != nil {
		t.Fatal(err)
	}
	want := equipment.Equipment{ID: "press-01", Name: "Press 1", Line: "A", Location: "Hall 3", CreatedAt: start}
	if created != want {
		t.Errorf("created = %+v\nwant %+v", created, want)
	}
	if got, err := store.Get(ctx, "press-01"); err != nil || got != want {
		t.Errorf("stored = %+v, %v; want %+v", got, err, want)
	}

	// Readings arrive, then the metadata changes: only the metadata moves.
	if err := store.WriteBatch(ctx, ports.ProcessedBatch{Sightings: []ports.Sighting{
		{EquipmentID: "press-01", LastSeenAt: start.Add(time.Minute)}}}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	updated, err := h.Handle(ctx, command.UpsertEquipment{ID: "press-01", Metadata: equipment.Metadata{Name: "Press One"}})
	if err != nil {
		t.Fatal(err)
	}
	want = equipment.Equipment{ID: "press-01", Name: "Press One", CreatedAt: start, LastSeenAt: start.Add(time.Minute)}
	if updated != want {
		t.Errorf("updated = %+v\nwant %+v", updated, want)
	}
	if all, _ := store.All(ctx); len(all) != 1 {
		t.Errorf("store holds %d equipment, want 1", len(all))
	}
}

func TestUpsertEquipmentStoreError(t *testing.T) {
	store := memory.NewStore()
	store.SetErr(errStorageDown)
	h := command.NewUpsertEquipmentHandler(store, memory.NewClock(start))
	_, err := h.Handle(context.Background(), command.UpsertEquipment{ID: "press-01"})
	if !errors.Is(err, ports.ErrUnavailable) || !strings.Contains(err.Error(), "press-01") {
		t.Errorf("Handle = %v, want the store error wrapped with the id", err)
	}
	var ve *ports.ValidationError
	if errors.As(err, &ve) {
		t.Errorf("a store failure came back as a validation error: %v", err)
	}
}
