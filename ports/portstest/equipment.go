package portstest

import (
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/ports"
)

// EquipmentRepository is the contract of ports.EquipmentRepository.
func EquipmentRepository(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("Get_unknown_is_not_found", func(t *testing.T) {
		s := newStores(t)
		_, err := s.Equipment.Get(t.Context(), press1)
		notFound(t, err)
	})

	t.Run("All", func(t *testing.T) {
		s := newStores(t)
		all, err := s.Equipment.All(t.Context())
		must(t, err)
		equalList(t, nil, all, "equipment before any is stored")

		// Names, creation and insertion all run in another order than ids.
		for i, e := range []struct{ id, name string }{{"press-10", "Alpha"}, {"lathe-02", "Zulu"}, {"press-02", "Mike"}} {
			_, err := s.Equipment.UpsertMetadata(t.Context(), e.id, equipment.Metadata{Name: e.name}, at(-time.Duration(i)*time.Hour))
			must(t, err)
		}
		write(t, s, ports.ProcessedBatch{Sightings: []ports.Sighting{{EquipmentID: "drill-01", LastSeenAt: at(time.Second)}}})

		all, err = s.Equipment.All(t.Context())
		must(t, err)
		equal(t, []equipment.Equipment{
			{ID: "drill-01", CreatedAt: at(time.Second), LastSeenAt: at(time.Second)},
			{ID: "lathe-02", Name: "Zulu", CreatedAt: at(-time.Hour)},
			{ID: "press-02", Name: "Mike", CreatedAt: at(-2 * time.Hour)},
			{ID: "press-10", Name: "Alpha", CreatedAt: base},
		}, all)
	})

	t.Run("UpsertMetadata", upsertMetadata(newStores))
	t.Run("LatestSession", latestSession(newStores))
	t.Run("Sessions", func(t *testing.T) { sessions(t, newStores(t)) })
}

func upsertMetadata(newStores func(t *testing.T) Stores) func(t *testing.T) {
	return func(t *testing.T) {
		m1 := equipment.Metadata{Name: "Press 1", Line: "A", Location: "Hall 2"}
		m2 := equipment.Metadata{Name: "Press One", Line: "B"}
		now := at(17*time.Minute + 250*time.Microsecond)
		seenAt, anomalyAt := at(time.Minute+3*time.Microsecond), at(2*time.Minute+5*time.Microsecond)
		tests := []struct {
			name     string
			sighting bool // the equipment was seen (and anomalous) before
			upserts  []equipment.Metadata
			want     equipment.Equipment
		}{
			{name: "creates_unknown_equipment_at_now", upserts: []equipment.Metadata{m1},
				want: equipment.Equipment{ID: press1, Name: m1.Name, Line: m1.Line, Location: m1.Location, CreatedAt: now}},
			{name: "creates_with_empty_metadata", upserts: []equipment.Metadata{{}},
				want: equipment.Equipment{ID: press1, CreatedAt: now}},
			{name: "replaces_metadata_of_created", upserts: []equipment.Metadata{m1, m2},
				want: equipment.Equipment{ID: press1, Name: m2.Name, Line: m2.Line, CreatedAt: now}},
			{name: "updates_seen_equipment_keeping_times", sighting: true, upserts: []equipment.Metadata{m1},
				want: equipment.Equipment{ID: press1, Name: m1.Name, Line: m1.Line, Location: m1.Location,
					CreatedAt: seenAt, LastSeenAt: seenAt, LastAnomalyAt: anomalyAt}},
			{name: "replaces_metadata_of_seen_equipment", sighting: true, upserts: []equipment.Metadata{m1, m2},
				want: equipment.Equipment{ID: press1, Name: m2.Name, Line: m2.Line,
					CreatedAt: seenAt, LastSeenAt: seenAt, LastAnomalyAt: anomalyAt}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStores(t)
				if tt.sighting {
					write(t, s, ports.ProcessedBatch{Sightings: []ports.Sighting{{EquipmentID: press1, LastSeenAt: seenAt, LastAnomalyAt: anomalyAt}}})
				}
				var got equipment.Equipment
				for i, m := range tt.upserts {
					var err error
					got, err = s.Equipment.UpsertMetadata(t.Context(), press1, m, now.Add(time.Duration(i)*time.Hour))
					must(t, err)
				}
				equal(t, tt.want, got, "as returned")
				stored, err := s.Equipment.Get(t.Context(), press1)
				must(t, err)
				equal(t, tt.want, stored, "as stored")
				inUTC(t, stored.CreatedAt, stored.LastSeenAt, stored.LastAnomalyAt)
			})
		}
	}
}

func latestSession(newStores func(t *testing.T) Stores) func(t *testing.T) {
	return func(t *testing.T) {
		first := equipment.Session{EquipmentID: press1, Start: at(0), End: at(time.Hour)}
		second := equipment.Session{EquipmentID: press1, Start: at(2 * time.Hour), End: at(2*time.Hour + time.Minute)}
		other := equipment.Session{EquipmentID: press2, Start: at(5 * time.Hour), End: at(6 * time.Hour)}
		tests := []struct {
			name    string
			batches []ports.ProcessedBatch
			eq      string
			want    equipment.Session // zero: ports.ErrNotFound
		}{
			{name: "none_is_not_found", eq: press1},
			{name: "only_other_equipment_is_not_found", batches: []ports.ProcessedBatch{sessionBatch(other)}, eq: press1},
			{name: "one_session", batches: []ports.ProcessedBatch{sessionBatch(first)}, eq: press1, want: first},
			// Stored latest first: the answer goes by start, not by order stored.
			{name: "latest_start_wins", batches: []ports.ProcessedBatch{sessionBatch(second, other), sessionBatch(first)},
				eq: press1, want: second},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStores(t)
				write(t, s, tt.batches...)
				got, err := s.Equipment.LatestSession(t.Context(), tt.eq)
				if tt.want == (equipment.Session{}) {
					notFound(t, err)
					return
				}
				must(t, err)
				equal(t, tt.want, got)
			})
		}
	}
}

func sessions(t *testing.T, s Stores) {
	p1a := equipment.Session{EquipmentID: press1, Start: at(0), End: at(10 * time.Minute)}
	p1b := equipment.Session{EquipmentID: press1, Start: at(time.Hour), End: at(time.Hour + 5*time.Minute)}
	p2 := equipment.Session{EquipmentID: press2, Start: at(20 * time.Minute), End: at(30 * time.Minute)}
	write(t, s, sessionBatch(p2, p1b), sessionBatch(p1a))

	tests := []struct {
		name             string
		eq               string
		endFrom, startTo time.Time
		want             []equipment.Session
	}{
		{name: "end_at_end_from_included", eq: press1, endFrom: p1a.End, startTo: at(2 * time.Hour),
			want: []equipment.Session{p1a, p1b}},
		{name: "end_before_end_from_excluded", eq: press1, endFrom: p1a.End.Add(time.Microsecond), startTo: at(2 * time.Hour),
			want: []equipment.Session{p1b}},
		{name: "start_at_start_to_excluded", eq: press1, endFrom: at(-time.Hour), startTo: p1b.Start,
			want: []equipment.Session{p1a}},
		{name: "start_before_start_to_included", eq: press1, endFrom: at(-time.Hour), startTo: p1b.Start.Add(time.Microsecond),
			want: []equipment.Session{p1a, p1b}},
		{name: "session_spanning_the_range", eq: press1, endFrom: at(2 * time.Minute), startTo: at(3 * time.Minute),
			want: []equipment.Session{p1a}},
		{name: "every_equipment_by_equipment_then_start", endFrom: at(-time.Hour), startTo: at(2 * time.Hour),
			want: []equipment.Session{p1a, p1b, p2}},
		{name: "every_equipment_in_range", endFrom: at(15 * time.Minute), startTo: at(2 * time.Hour),
			want: []equipment.Session{p1b, p2}},
		{name: "unknown_equipment", eq: "lathe-01", endFrom: at(-time.Hour), startTo: at(2 * time.Hour), want: nil},
		{name: "range_between_sessions", eq: press1, endFrom: at(11 * time.Minute), startTo: at(time.Hour), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Equipment.Sessions(t.Context(), tt.eq, tt.endFrom, tt.startTo)
			must(t, err)
			equalList(t, tt.want, got)
		})
	}
}
