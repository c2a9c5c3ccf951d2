package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// Fields of an equipment's hash. Times are Unix microseconds.
const (
	fieldSeen      = "seen"    // LastSeenAt
	fieldAnomaly   = "anomaly" // LastAnomalyAt
	fieldReadingAt = "t:"      // + sensor slot: the timestamp of the reading kept
	fieldReading   = "r:"      // + sensor slot: the reading kept, as JSON (liveReading)
	fieldComplete  = "warm"    // set by Warm: every sensor the database knew has its reading here
)

// slot names a sensor among an equipment's fields: its type, for the sensor that is its type
// (as earlier versions named every sensor), else its type, '/' and its id ('/' is in neither).
func slot(r sensor.Reading) string {
	if r.SensorID == "" {
		return string(r.Type)
	}
	return string(r.Type) + "/" + r.SensorID
}

// moveTimes moves times forward. KEYS[1] is the equipment's hash; ARGV holds pairs of a
// field and a time: the field takes the time unless it holds a later one.
var moveTimes = newScript(`
for i = 1, #ARGV, 2 do
  local held = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  if held == nil or tonumber(ARGV[i + 1]) > held then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 0
`)

// keepReadings keeps the newest reading of each sensor. KEYS[1] is the equipment's hash.
// ARGV[1] is a count n, followed by n triples of a sensor slot, a reading's timestamp and the
// reading: the reading is kept unless the one kept for its sensor has a later timestamp (on a
// tie, the one written last wins). An argument after the triples marks the hash complete.
var keepReadings = newScript(`
local n = tonumber(ARGV[1])
for i = 2, 1 + 3 * n, 3 do
  local held = tonumber(redis.call('HGET', KEYS[1], 't:' .. ARGV[i]))
  if held == nil or tonumber(ARGV[i + 1]) >= held then
    redis.call('HSET', KEYS[1], 't:' .. ARGV[i], ARGV[i + 1], 'r:' .. ARGV[i], ARGV[i + 2])
  end
end
if #ARGV > 1 + 3 * n then
  redis.call('HSET', KEYS[1], 'warm', '1')
end
return 0
`)

// liveReading is how a kept reading is written: compact JSON, times in Unix microseconds.
type liveReading struct {
	ID          string  `json:"id"`
	EquipmentID string  `json:"equipmentId"`
	SensorType  string  `json:"sensorType"`
	SensorID    string  `json:"sensorId,omitempty"`
	Value       float64 `json:"value"`
	Unit        string  `json:"unit"`
	Timestamp   int64   `json:"timestamp"`
	ReceivedAt  int64   `json:"receivedAt"`
	Anomalous   bool    `json:"anomalous"`
}

// LiveStore keeps the live state of each equipment in a hash, "<prefix>:live:<equipment
// id>", shared by every process; scripts compare and write in one step, so that concurrent
// updates only ever move it forward. Times are kept to the microsecond (truncated) and
// compare exactly between the years 1685 and 2255. A batch costs one round trip: one script
// run per equipment, all sent together. The hashes do not expire.
type LiveStore struct {
	c *Client
}

var _ ports.LiveStore = (*LiveStore)(nil)

// NewLiveStore keeps live state through c.
func NewLiveStore(c *Client) *LiveStore { return &LiveStore{c: c} }

// Beat implements ports.LiveStore.
func (s *LiveStore) Beat(ctx context.Context, sightings []ports.Sighting) error {
	type times struct{ seen, anomaly time.Time }
	var ids []string
	byID := make(map[string]*times)
	for _, si := range sightings {
		t, ok := byID[si.EquipmentID]
		if !ok {
			t = &times{}
			byID[si.EquipmentID] = t
			ids = append(ids, si.EquipmentID)
		}
		t.seen = later(t.seen, si.LastSeenAt)
		t.anomaly = later(t.anomaly, si.LastAnomalyAt)
	}
	var beaten []string
	var calls []call
	for _, id := range ids {
		var args []string
		if t := byID[id].seen; !t.IsZero() {
			args = append(args, fieldSeen, strconv.FormatInt(t.UnixMicro(), 10))
		}
		if t := byID[id].anomaly; !t.IsZero() {
			args = append(args, fieldAnomaly, strconv.FormatInt(t.UnixMicro(), 10))
		}
		if len(args) > 0 {
			beaten = append(beaten, id)
			calls = append(calls, call{keys: []string{s.c.key("live", id)}, args: args})
		}
	}
	return s.runAll(ctx, "beat", moveTimes, beaten, calls)
}

// later is the later of a and b to the microsecond; a zero time is earlier than any other.
func later(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.UnixMicro() > a.UnixMicro() {
		return b
	}
	return a
}

// Record implements ports.LiveStore. Of readings of one sensor with the same timestamp
// (to the microsecond), the last wins.
func (s *LiveStore) Record(ctx context.Context, readings []ports.StoredReading) error {
	var ids []string
	byID := make(map[string][]ports.StoredReading)
	for _, r := range readings {
		if _, ok := byID[r.EquipmentID]; !ok {
			ids = append(ids, r.EquipmentID)
		}
		byID[r.EquipmentID] = append(byID[r.EquipmentID], r)
	}
	calls := make([]call, len(ids))
	for i, id := range ids {
		args, err := readingArgs(byID[id])
		if err != nil {
			return fmt.Errorf("record readings: %w", err)
		}
		calls[i] = call{keys: []string{s.c.key("live", id)}, args: args}
	}
	return s.runAll(ctx, "record readings", keepReadings, ids, calls)
}

// Warm implements ports.LiveStore: latest is kept as Record keeps it, and the equipment is
// marked complete: from then on, every sensor the database knew has its reading in the hash,
// and every later reading is recorded into it.
func (s *LiveStore) Warm(ctx context.Context, equipmentID string, latest []ports.StoredReading) error {
	args, err := readingArgs(latest)
	if err != nil {
		return fmt.Errorf("warm live equipment %s: %w", equipmentID, err)
	}
	args = append(args, fieldComplete)
	return s.runAll(ctx, "warm live equipment", keepReadings, []string{equipmentID},
		[]call{{keys: []string{s.c.key("live", equipmentID)}, args: args}})
}

// readingArgs are the arguments of keepReadings for readings of one equipment: the newest
// reading of each sensor (of equal timestamps, the last).
func readingArgs(readings []ports.StoredReading) ([]string, error) {
	newest := make(map[string]ports.StoredReading)
	for _, r := range readings {
		if held, ok := newest[slot(r.Reading)]; !ok || r.Timestamp.UnixMicro() >= held.Timestamp.UnixMicro() {
			newest[slot(r.Reading)] = r
		}
	}
	args := make([]string, 1, 2+3*len(newest))
	args[0] = strconv.Itoa(len(newest))
	for _, sl := range slices.Sorted(maps.Keys(newest)) {
		r := newest[sl]
		doc, err := json.Marshal(liveReading{
			ID: r.ID, EquipmentID: r.EquipmentID, SensorType: string(r.Type), SensorID: r.SensorID, Value: r.Value, Unit: r.Unit,
			Timestamp: r.Timestamp.UnixMicro(), ReceivedAt: r.ReceivedAt.UnixMicro(), Anomalous: r.Anomalous,
		})
		if err != nil {
			return nil, fmt.Errorf("encode reading %s/%s: %w", r.EquipmentID, r.ID, err)
		}
		args = append(args, sl, strconv.FormatInt(r.Timestamp.UnixMicro(), 10), string(doc))
	}
	return args, nil
}

// runAll runs sc once per call, all sent together; ids names the equipment of each call.
func (s *LiveStore) runAll(ctx context.Context, op string, sc *script, ids []string, calls []call) error {
	if len(calls) == 0 {
		return nil
	}
	for i, res := range sc.runAll(ctx, s.c.rc, calls) {
		if err := res.Error(); err != nil {
			return fail(ctx, op+" of "+ids[i], err)
		}
	}
	return nil
}

// Live implements ports.LiveStore.
func (s *LiveStore) Live(ctx context.Context, equipmentID string) (ports.LiveEquipment, error) {
	op := "read live equipment " + equipmentID
	fields, err := s.c.rc.Do(ctx, s.c.rc.B().Hgetall().Key(s.c.key("live", equipmentID)).Build()).AsStrMap()
	if err != nil {
		return ports.LiveEquipment{}, fail(ctx, op, err)
	}
	if len(fields) == 0 {
		return ports.LiveEquipment{}, fmt.Errorf("%s: %w", op, ports.ErrNotFound)
	}
	var live ports.LiveEquipment
	if v, ok := fields[fieldSeen]; ok {
		if live.LastSeenAt, err = parseMicros(v); err != nil {
			return ports.LiveEquipment{}, fmt.Errorf("%s: %s: %w", op, fieldSeen, err)
		}
	}
	if v, ok := fields[fieldAnomaly]; ok {
		if live.LastAnomalyAt, err = parseMicros(v); err != nil {
			return ports.LiveEquipment{}, fmt.Errorf("%s: %s: %w", op, fieldAnomaly, err)
		}
	}
	// Complete once warmed, and only then: readings recorded since the hash was made need not
	// be every sensor's (after a restart of Redis, say). A hash warmed by an earlier version
	// is warmed again, once.
	_, live.Complete = fields[fieldComplete]
	for _, f := range slices.Sorted(maps.Keys(fields)) {
		sl, ok := strings.CutPrefix(f, fieldReading)
		if !ok {
			continue
		}
		r, err := decodeReading(fields[f])
		if err != nil {
			return ports.LiveEquipment{}, fmt.Errorf("%s: %s: %w", op, sl, err)
		}
		live.Latest = append(live.Latest, r)
	}
	slices.SortFunc(live.Latest, func(a, b ports.StoredReading) int { return sensor.CompareKeys(a.Key(), b.Key()) })
	return live, nil
}

// parseMicros reads a time written in Unix microseconds, in UTC.
func parseMicros(v string) (time.Time, error) {
	us, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse time: %w", err)
	}
	return time.UnixMicro(us).UTC(), nil
}

// decodeReading reads a kept reading, checking the invariants of sensor.Reading.
func decodeReading(doc string) (ports.StoredReading, error) {
	var lr liveReading
	if err := json.Unmarshal([]byte(doc), &lr); err != nil {
		return ports.StoredReading{}, fmt.Errorf("decode reading: %w", err)
	}
	r, err := sensor.NewReading(lr.ID, lr.EquipmentID, sensor.Type(lr.SensorType), lr.SensorID, lr.Value, lr.Unit,
		time.UnixMicro(lr.Timestamp), time.UnixMicro(lr.ReceivedAt))
	if err != nil {
		return ports.StoredReading{}, fmt.Errorf("decode reading: %w", err)
	}
	return ports.StoredReading{Reading: r, Anomalous: lr.Anomalous}, nil
}
