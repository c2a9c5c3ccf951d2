package memory

import (
	"context"
	"slices"
	"sync"

	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// LiveStore is an in-memory ports.LiveStore, with the same forward-only rules as the Redis
// one.
type LiveStore struct {
	mu    sync.Mutex
	items map[string]*liveItem
	// Err, when set, is returned by every call.
	Err error
}

type liveItem struct {
	ports.LiveEquipment
	latest map[sensor.Key]ports.StoredReading
	warm   bool // every sensor the database knew is in latest
}

var _ ports.LiveStore = (*LiveStore)(nil)

// NewLiveStore returns an empty store.
func NewLiveStore() *LiveStore { return &LiveStore{items: make(map[string]*liveItem)} }

func (s *LiveStore) item(id string) *liveItem {
	it, ok := s.items[id]
	if !ok {
		it = &liveItem{latest: make(map[sensor.Key]ports.StoredReading)}
		s.items[id] = it
	}
	return it
}

// Beat implements ports.LiveStore.
func (s *LiveStore) Beat(_ context.Context, sightings []ports.Sighting) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	for _, g := range sightings {
		it := s.item(g.EquipmentID)
		if g.LastSeenAt.After(it.LastSeenAt) {
			it.LastSeenAt = g.LastSeenAt
		}
		if g.LastAnomalyAt.After(it.LastAnomalyAt) {
			it.LastAnomalyAt = g.LastAnomalyAt
		}
	}
	return nil
}

// Record implements ports.LiveStore.
func (s *LiveStore) Record(_ context.Context, readings []ports.StoredReading) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	for _, r := range readings {
		s.record(s.item(r.EquipmentID), r)
	}
	return nil
}

func (s *LiveStore) record(it *liveItem, r ports.StoredReading) {
	if cur, ok := it.latest[r.Key()]; ok && cur.Timestamp.After(r.Timestamp) {
		return
	}
	it.latest[r.Key()] = r
}

// Warm implements ports.LiveStore.
func (s *LiveStore) Warm(_ context.Context, equipmentID string, latest []ports.StoredReading) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	it := s.item(equipmentID)
	for _, r := range latest {
		s.record(it, r)
	}
	it.warm = true
	return nil
}

// Live implements ports.LiveStore.
func (s *LiveStore) Live(_ context.Context, equipmentID string) (ports.LiveEquipment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return ports.LiveEquipment{}, s.Err
	}
	it, ok := s.items[equipmentID]
	if !ok {
		return ports.LiveEquipment{}, ports.ErrNotFound
	}
	out := ports.LiveEquipment{LastSeenAt: it.LastSeenAt, LastAnomalyAt: it.LastAnomalyAt, Complete: it.warm}
	for _, r := range it.latest {
		out.Latest = append(out.Latest, r)
	}
	slices.SortFunc(out.Latest, func(a, b ports.StoredReading) int { return sensor.CompareKeys(a.Key(), b.Key()) })
	return out, nil
}
