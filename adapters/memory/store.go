// Package memory implements the ports in process memory: the fakes that tests swap in.
// Every type keeps its state behind a mutex and fails with Err when Err is set.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// Store keeps readings, anomalies, equipment and sessions. One Store implements
// ports.ReadingRepository, ports.AnomalyRepository, ports.EquipmentRepository and
// ports.BatchWriter, so that a batch write is atomic across them, and ports.PartitionFencer,
// whose epochs its batch writes check, and ports.RollupFolder.
type Store struct {
	mu sync.Mutex
	// Err, when set, is returned by every method.
	Err error

	readings  []ports.StoredReading // in the order stored
	refs      map[ports.ReadingRef]bool
	anomalies []anomaly.Anomaly
	equipment map[string]equipment.Equipment
	sessions  []equipment.Session
	epochs    map[int]int64 // by partition
	alarms    []alarm.Alarm // in the order opened
	// maintenance holds each equipment's window (see Maintenance); nil until the first.
	maintenance map[string]equipment.Maintenance
	// outbox holds the subscriptions, their deliveries and the statuses announced (see
	// Subscriptions, DeliveryQueue and StatusLedger).
	outbox outbox
}

var (
	_ ports.ReadingRepository   = (*Store)(nil)
	_ ports.AnomalyRepository   = (*Store)(nil)
	_ ports.EquipmentRepository = (*Store)(nil)
	_ ports.BatchWriter         = (*Store)(nil)
	_ ports.PartitionFencer     = (*Store)(nil)
	_ ports.RollupFolder        = (*Store)(nil)
)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{
		refs:      make(map[ports.ReadingRef]bool),
		equipment: make(map[string]equipment.Equipment),
		epochs:    make(map[int]int64),
	}
}

// SetErr makes every later call fail with err (nil to recover).
func (s *Store) SetErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Err = err
}

// Ping answers nil unless Err is set.
func (s *Store) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Err
}

// Name is "storage".
func (s *Store) Name() string { return "storage" }

// AdvanceEpoch implements ports.PartitionFencer. Batch writes check their fences under the
// same lock, so that none is committing while the epoch moves.
func (s *Store) AdvanceEpoch(_ context.Context, partition int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return 0, s.Err
	}
	s.epochs[partition]++
	return s.epochs[partition], nil
}

// FoldRollups implements ports.RollupFolder: the store counts readings when asked, it has
// nothing to fold.
func (s *Store) FoldRollups(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return 0, s.Err
}

// WriteBatch implements ports.BatchWriter. A batch with a fence whose partition is at another
// epoch fails with ports.ErrFenced and stores nothing. The batch's events enqueue their
// deliveries with the rest, under the same lock.
func (s *Store) WriteBatch(_ context.Context, b ports.ProcessedBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	for _, f := range b.Fences {
		// A partition never taken over has no epoch (as in PostgreSQL): every fence fails.
		if held, ok := s.epochs[f.Partition]; !ok || held != f.Epoch {
			return fmt.Errorf("write batch of %d readings: partition %d is at epoch %d, the write was fenced at epoch %d: %w",
				len(b.Readings), f.Partition, held, f.Epoch, ports.ErrFenced)
		}
	}
	if err := s.checkAlarms(b.Alarms); err != nil {
		return err
	}
	events, err := encodeEvents(b.Events)
	if err != nil {
		return fmt.Errorf("write batch of %d readings: %w", len(b.Readings), err)
	}
	added := make(map[ports.ReadingRef]bool)
	for _, r := range b.Readings {
		ref := ports.ReadingRef{EquipmentID: r.EquipmentID, ReadingID: r.ID}
		if s.refs[ref] {
			continue
		}
		s.refs[ref] = true
		added[ref] = true
		s.readings = append(s.readings, r)
	}
	for _, a := range b.Anomalies {
		if added[ports.ReadingRef{EquipmentID: a.EquipmentID, ReadingID: a.ReadingID}] {
			s.anomalies = append(s.anomalies, a)
		}
	}
	for _, sg := range b.Sightings {
		e, ok := s.equipment[sg.EquipmentID]
		if !ok {
			e = equipment.Equipment{ID: sg.EquipmentID, CreatedAt: sg.LastSeenAt}
		}
		if sg.LastSeenAt.After(e.LastSeenAt) {
			e.LastSeenAt = sg.LastSeenAt
		}
		if sg.LastAnomalyAt.After(e.LastAnomalyAt) {
			e.LastAnomalyAt = sg.LastAnomalyAt
		}
		s.equipment[sg.EquipmentID] = e
	}
	for _, ns := range b.Sessions {
		i := slices.IndexFunc(s.sessions, func(x equipment.Session) bool {
			return x.EquipmentID == ns.EquipmentID && x.Start.Equal(ns.Start)
		})
		if i < 0 {
			s.sessions = append(s.sessions, ns)
		} else if ns.End.After(s.sessions[i].End) {
			s.sessions[i].End = ns.End
		}
	}
	if err := s.writeAlarms(b.Alarms); err != nil {
		return err
	}
	s.outbox.enqueue(events)
	return nil
}

// StoredRefs implements ports.ReadingRepository.
func (s *Store) StoredRefs(_ context.Context, refs []ports.ReadingRef) (map[ports.ReadingRef]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	out := make(map[ports.ReadingRef]bool)
	for _, r := range refs {
		if s.refs[r] {
			out[r] = true
		}
	}
	return out, nil
}

// RecentValues implements ports.ReadingRepository.
func (s *Store) RecentValues(_ context.Context, k sensor.Key, n int) ([]float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	var mine []ports.StoredReading
	for _, r := range s.readings {
		if r.Key() == k {
			mine = append(mine, r)
		}
	}
	sort.SliceStable(mine, func(i, j int) bool { return mine[i].Timestamp.Before(mine[j].Timestamp) })
	out := []float64{}
	for _, r := range mine[max(0, len(mine)-n):] {
		out = append(out, r.Value)
	}
	return out, nil
}

func (s *Store) matching(q ports.HistoryQuery) []ports.StoredReading {
	var out []ports.StoredReading
	for _, r := range s.readings {
		if r.EquipmentID == q.EquipmentID && (q.SensorType == "" || r.Type == q.SensorType) &&
			(q.SensorID == "" || sensor.Matches(r.Type, r.SensorID, q.SensorID)) &&
			!r.Timestamp.Before(q.From) && r.Timestamp.Before(q.To) {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp.Before(out[j].Timestamp) })
	return out
}

// History implements ports.ReadingRepository.
func (s *Store) History(_ context.Context, q ports.HistoryQuery) ([]ports.StoredReading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	out := s.matching(q)
	if len(out) > q.Limit {
		out = out[len(out)-q.Limit:]
	}
	return out, nil
}

// Averages implements ports.ReadingRepository.
func (s *Store) Averages(_ context.Context, q ports.HistoryQuery, interval time.Duration) ([]ports.AveragePoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	type key struct {
		t  sensor.Type
		id string
		b  int64
	}
	sums := make(map[key]*ports.AveragePoint)
	for _, r := range s.matching(q) {
		k := key{r.Type, r.SensorID, floorDiv(r.Timestamp.UnixMicro(), interval.Microseconds())}
		p, ok := sums[k]
		if !ok {
			p = &ports.AveragePoint{SensorType: r.Type, SensorID: r.SensorID, Bucket: time.UnixMicro(k.b).UTC(), Min: r.Value, Max: r.Value}
			sums[k] = p
		}
		p.Avg += r.Value
		p.Min = min(p.Min, r.Value)
		p.Max = max(p.Max, r.Value)
		p.Count++
	}
	out := make([]ports.AveragePoint, 0, len(sums))
	for _, p := range sums {
		p.Avg /= float64(p.Count)
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Bucket.Equal(out[j].Bucket) {
			return out[i].Bucket.Before(out[j].Bucket)
		}
		if out[i].SensorType != out[j].SensorType {
			return out[i].SensorType < out[j].SensorType
		}
		return out[i].SensorID < out[j].SensorID
	})
	if len(out) > q.Limit {
		out = out[len(out)-q.Limit:]
	}
	return out, nil
}

// floorDiv returns the start of t's bucket of size d (both in the same unit), rounding down.
func floorDiv(t, d int64) int64 {
	q := t / d
	if t%d != 0 && t < 0 {
		q--
	}
	return q * d
}

// Latest implements ports.ReadingRepository.
func (s *Store) Latest(_ context.Context, equipmentID string) ([]ports.StoredReading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	latest := make(map[sensor.Key]ports.StoredReading)
	for _, r := range s.readings {
		if r.EquipmentID != equipmentID {
			continue
		}
		if cur, ok := latest[r.Key()]; !ok || !r.Timestamp.Before(cur.Timestamp) {
			latest[r.Key()] = r
		}
	}
	var out []ports.StoredReading
	for _, r := range latest {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b ports.StoredReading) int { return sensor.CompareKeys(a.Key(), b.Key()) })
	return out, nil
}

// CountByBucket implements ports.ReadingRepository.
func (s *Store) CountByBucket(_ context.Context, scope ports.SensorScope, from, to time.Time, bucket time.Duration) ([]ports.BucketCount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	counts := make(map[int64]int64)
	for _, r := range s.readings {
		if scope.Selects(r.EquipmentID, r.Type, r.SensorID) && !r.Timestamp.Before(from) && r.Timestamp.Before(to) {
			counts[floorDiv(r.Timestamp.UnixMicro(), bucket.Microseconds())]++
		}
	}
	out := make([]ports.BucketCount, 0, len(counts))
	for b, n := range counts {
		out = append(out, ports.BucketCount{Bucket: time.UnixMicro(b).UTC(), Count: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bucket.Before(out[j].Bucket) })
	return out, nil
}

func inRange(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || t.Before(to))
}

// Find implements ports.AnomalyRepository.
func (s *Store) Find(_ context.Context, q ports.AnomalyQuery) ([]anomaly.Anomaly, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, 0, s.Err
	}
	var all []anomaly.Anomaly
	for _, a := range s.anomalies {
		if (q.EquipmentID == "" || a.EquipmentID == q.EquipmentID) &&
			(q.SensorType == "" || a.SensorType == q.SensorType) &&
			(q.SensorID == "" || sensor.Matches(a.SensorType, a.SensorID, q.SensorID)) &&
			(len(q.Severities) == 0 || slices.Contains(q.Severities, a.Severity)) &&
			inRange(a.Timestamp, q.From, q.To) {
			all = append(all, a)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if q.Ascending {
			a, b = b, a
		}
		if !a.Timestamp.Equal(b.Timestamp) {
			return a.Timestamp.After(b.Timestamp)
		}
		return a.ID > b.ID
	})
	total := int64(len(all))
	if q.Offset >= len(all) {
		return []anomaly.Anomaly{}, total, nil
	}
	all = all[q.Offset:]
	if len(all) > q.Limit {
		all = all[:q.Limit]
	}
	return all, total, nil
}

// CountBySeverity implements ports.AnomalyRepository.
func (s *Store) CountBySeverity(_ context.Context, scope ports.SensorScope, from, to time.Time) (map[anomaly.Severity]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	out := make(map[anomaly.Severity]int64)
	for _, a := range s.anomalies {
		if scope.Selects(a.EquipmentID, a.SensorType, a.SensorID) && inRange(a.Timestamp, from, to) {
			out[a.Severity]++
		}
	}
	return out, nil
}

// CountDetectedSince implements ports.AnomalyRepository.
func (s *Store) CountDetectedSince(_ context.Context, scope ports.SensorScope, since time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return 0, s.Err
	}
	var n int64
	for _, a := range s.anomalies {
		if a.EquipmentID == scope.EquipmentID && scope.Selects(a.EquipmentID, a.SensorType, a.SensorID) && !a.DetectedAt.Before(since) {
			n++
		}
	}
	return n, nil
}

// Get implements ports.EquipmentRepository.
func (s *Store) Get(_ context.Context, id string) (equipment.Equipment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return equipment.Equipment{}, s.Err
	}
	e, ok := s.equipment[id]
	if !ok {
		return equipment.Equipment{}, ports.ErrNotFound
	}
	return e, nil
}

// All implements ports.EquipmentRepository.
func (s *Store) All(context.Context) ([]equipment.Equipment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	out := make([]equipment.Equipment, 0, len(s.equipment))
	for _, e := range s.equipment {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// UpsertMetadata implements ports.EquipmentRepository.
func (s *Store) UpsertMetadata(_ context.Context, id string, m equipment.Metadata, now time.Time) (equipment.Equipment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return equipment.Equipment{}, s.Err
	}
	e, ok := s.equipment[id]
	if !ok {
		e = equipment.Equipment{ID: id, CreatedAt: now}
	}
	e.Name, e.Line, e.Location = m.Name, m.Line, m.Location
	s.equipment[id] = e
	return e, nil
}

// LatestSession implements ports.EquipmentRepository.
func (s *Store) LatestSession(_ context.Context, equipmentID string) (equipment.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return equipment.Session{}, s.Err
	}
	var best equipment.Session
	found := false
	for _, x := range s.sessions {
		if x.EquipmentID == equipmentID && (!found || x.Start.After(best.Start)) {
			best, found = x, true
		}
	}
	if !found {
		return equipment.Session{}, ports.ErrNotFound
	}
	return best, nil
}

// Sessions implements ports.EquipmentRepository.
func (s *Store) Sessions(_ context.Context, equipmentID string, endFrom, startTo time.Time) ([]equipment.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	var out []equipment.Session
	for _, x := range s.sessions {
		if (equipmentID == "" || x.EquipmentID == equipmentID) && !x.End.Before(endFrom) && x.Start.Before(startTo) {
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].EquipmentID != out[j].EquipmentID {
			return out[i].EquipmentID < out[j].EquipmentID
		}
		return out[i].Start.Before(out[j].Start)
	})
	return out, nil
}
