package command

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// ProcessReadingsHandler judges queued readings and stores them with their anomalies.
//
// The detector's windows are a cache of what is stored: a sensor's window is warmed from its
// latest stored readings the first time the sensor is seen (so a restart opens no blind
// spot), and dropped again whenever a write fails, so that a redelivered batch is judged
// against exactly what was committed. Readings already stored are skipped, which makes
// redelivery harmless. Handle serialises batches: readings are judged in arrival order.
type ProcessReadingsHandler struct {
	readings  ports.ReadingRepository
	equipment ports.EquipmentRepository
	writer    ports.BatchWriter
	clock     ports.Clock
	ids       ports.IDGenerator
	rules     equipment.Rules

	// With alarms (WithAlarms): each sensor type's rules, and where alarms are kept.
	sensorRules *rules.Set
	alarms      ports.AlarmRepository

	// With maintenance (WithMaintenance): where the windows are kept, and how long a window
	// loaded from there is trusted.
	maintenance    ports.MaintenanceRepository
	maintenanceTTL time.Duration

	// With events (WithEvents): the live stream the batch's events are appended to.
	events ports.EventLog

	mu        sync.Mutex
	detectors map[sensor.Type]*anomaly.Detector    // without sensor rules: every type's, the same
	byConfig  map[anomaly.Config]*anomaly.Detector // with them: one detector a configuration
	trackers  map[sensor.Key]*alarm.Tracker
	incidents map[string]*alarm.Incidents  // each machine's, loaded with its first alarm change
	sessions  map[string]equipment.Session // the latest session of each equipment seen
	windows   map[string]cachedWindow      // each equipment's maintenance window, as last loaded
}

// cachedWindow is an equipment's maintenance window (or the lack of one) as loaded at loaded,
// on the handler's clock.
type cachedWindow struct {
	window equipment.Maintenance
	set    bool
	loaded time.Time
}

// NewProcessReadingsHandler builds the handler; cfg must be valid.
func NewProcessReadingsHandler(
	readings ports.ReadingRepository, eq ports.EquipmentRepository, w ports.BatchWriter,
	c ports.Clock, ids ports.IDGenerator, cfg anomaly.Config, rules equipment.Rules,
) *ProcessReadingsHandler {
	d := anomaly.NewDetector(cfg)
	h := &ProcessReadingsHandler{
		readings: readings, equipment: eq, writer: w, clock: c, ids: ids, rules: rules,
		detectors: make(map[sensor.Type]*anomaly.Detector, len(sensor.Types)),
		trackers:  make(map[sensor.Key]*alarm.Tracker),
		incidents: make(map[string]*alarm.Incidents),
		sessions:  make(map[string]equipment.Session),
		windows:   make(map[string]cachedWindow),
	}
	for _, t := range sensor.Types {
		h.detectors[t] = d
	}
	return h
}

// WithAlarms judges each sensor type by its own rules (window, bands, hard limits) instead
// of cfg, and keeps alarms: each batch's alarms are written with it, in its transaction.
// Call it before the first Handle.
func (h *ProcessReadingsHandler) WithAlarms(repo ports.AlarmRepository, set rules.Set) *ProcessReadingsHandler {
	h.sensorRules, h.alarms = &set, repo
	h.detectors = make(map[sensor.Type]*anomaly.Detector)
	h.byConfig = make(map[anomaly.Config]*anomaly.Detector)
	return h
}

// DefaultMaintenanceTTL is how long a worker trusts a maintenance window it loaded: a window
// set, changed or ended through another process (the API) applies to the readings it
// processes at most this much later.
const DefaultMaintenanceTTL = time.Second

// WithMaintenance, with WithAlarms, opens no alarm on a reading received (ReceivedAt) within
// its equipment's maintenance window: the reading is still judged and stored, its anomaly
// recorded, and an alarm already open still grows and clears (alarm.Observation.Quiet). The
// receipt time decides, not the reading's own timestamp (which the machine sets) nor the time
// of processing (which a backlog delays), so that a reading is judged as it was when it came.
//
// Windows are set through the API, possibly in another process, so the handler does not keep
// them itself: it loads those of a batch's equipment in one call, and reuses what it loaded
// for ttl (DefaultMaintenanceTTL when not positive) on its clock before loading them again.
// A window thus takes effect, and ends, up to ttl late. Call it before the first Handle.
func (h *ProcessReadingsHandler) WithMaintenance(repo ports.MaintenanceRepository, ttl time.Duration) *ProcessReadingsHandler {
	if ttl <= 0 {
		ttl = DefaultMaintenanceTTL
	}
	h.maintenance, h.maintenanceTTL = repo, ttl
	return h
}

// WithEvents appends, after each batch is stored, its events to the live stream log: its alarm
// transitions (whose deliveries the batch's transaction enqueued, see ProcessedBatch.Events)
// and an anomaly event for each anomalous reading. Call it before the first Handle.
func (h *ProcessReadingsHandler) WithEvents(log ports.EventLog) *ProcessReadingsHandler {
	h.events = log
	return h
}

// ProcessResult says what one call stored.
type ProcessResult struct {
	Stored    int // readings stored by this call
	Skipped   int // readings already stored before
	Anomalies []anomaly.Anomaly
	// Alarms are the alarms that opened, escalated or cleared, as written.
	Alarms []AlarmChange
	// Events are the events of what was stored: alarm transitions, then anomalies.
	Events []event.Event
	// Unpublished, when set, is why Events did not reach the live stream (WithEvents): what
	// was stored stays stored, and the deliveries of its transitions are enqueued.
	Unpublished error
}

// AlarmChange is an alarm that an event changed.
type AlarmChange struct {
	Event alarm.Event
	Alarm alarm.Alarm
	// Incident is the machine's incident when the change opened or closed it
	// (IncidentEvent says which); nil otherwise.
	Incident      *alarm.Incident
	IncidentEvent event.Type
}

// Handle judges e's readings in order and stores them. On error nothing of e is stored and
// the whole event may be retried.
func (h *ProcessReadingsHandler) Handle(ctx context.Context, e ports.ReadingsReceived) (ProcessResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()

	fresh, err := h.unstored(ctx, e.Readings)
	if err != nil {
		return ProcessResult{}, err
	}
	res := ProcessResult{Skipped: len(e.Readings) - len(fresh)}
	if len(fresh) == 0 {
		return res, nil
	}

	batch, changes, err := h.judge(ctx, fresh)
	if err != nil {
		return ProcessResult{}, err
	}
	if err := h.writer.WriteBatch(ctx, batch); err != nil {
		h.forget(fresh)
		return ProcessResult{}, fmt.Errorf("write %d readings: %w", len(batch.Readings), err)
	}
	for _, s := range batch.Sessions {
		if cur, ok := h.sessions[s.EquipmentID]; !ok || !s.Start.Before(cur.Start) {
			h.sessions[s.EquipmentID] = s
		}
	}
	res.Stored = len(batch.Readings)
	res.Anomalies = batch.Anomalies
	res.Alarms = changes
	res.Events = batch.Events
	for _, a := range batch.Anomalies {
		res.Events = append(res.Events, event.ForAnomaly(h.ids.NewID(), a))
	}
	if h.events != nil && len(res.Events) > 0 {
		if err := h.events.Append(ctx, res.Events); err != nil {
			res.Unpublished = fmt.Errorf("append %d events to the live stream: %w", len(res.Events), err)
		}
	}
	return res, nil
}

// unstored drops readings stored before, and repeats within the batch.
func (h *ProcessReadingsHandler) unstored(ctx context.Context, rs []sensor.Reading) ([]sensor.Reading, error) {
	refs := make([]ports.ReadingRef, len(rs))
	for i, r := range rs {
		refs[i] = ports.ReadingRef{EquipmentID: r.EquipmentID, ReadingID: r.ID}
	}
	stored, err := h.readings.StoredRefs(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("look up stored readings: %w", err)
	}
	fresh := make([]sensor.Reading, 0, len(rs))
	taken := make(map[ports.ReadingRef]bool, len(rs)) // the repository's map may be nil
	for i, r := range rs {
		if stored[refs[i]] || taken[refs[i]] {
			continue
		}
		taken[refs[i]] = true
		fresh = append(fresh, r)
	}
	return fresh, nil
}

// judge runs detection over rs in order and assembles what is to be written. The windows
// it advances are dropped again by forget if the write fails.
func (h *ProcessReadingsHandler) judge(ctx context.Context, rs []sensor.Reading) (ports.ProcessedBatch, []AlarmChange, error) {
	now := h.clock.Now().UTC()
	if err := h.loadWindows(ctx, rs, now); err != nil {
		return ports.ProcessedBatch{}, nil, err
	}
	batch := ports.ProcessedBatch{Readings: make([]ports.StoredReading, len(rs))}
	sightings := make(map[string]*ports.Sighting)
	var order []string
	var changes []AlarmChange
	for i, r := range rs {
		k := r.Key()
		d := h.detector(k)
		if !d.Knows(k) {
			values, err := h.readings.RecentValues(ctx, k, d.Config().WarmReadings())
			if err != nil {
				h.forget(rs[:i])
				return ports.ProcessedBatch{}, nil, fmt.Errorf("warm window %s/%s: %w", k.EquipmentID, k.Type, err)
			}
			d.Warm(k, values)
		}
		v := d.Judge(k, r.Value)
		if h.sensorRules != nil {
			sr := h.sensorRules.ForSensor(k.EquipmentID, k.Type)
			v = sr.Judge(v, r.Value)
			o := sr.Observation(v, r.Value, r.Timestamp)
			o.Quiet = h.underMaintenance(r)
			change, err := h.track(ctx, r, o)
			if err != nil {
				h.forget(rs[:i+1])
				return ports.ProcessedBatch{}, nil, err
			}
			if change.Event != alarm.Nothing {
				batch.Alarms = append(batch.Alarms, change.Alarm)
				if change.Event != alarm.Grew {
					changes = append(changes, change)
				}
				if ev, ok := event.ForAlarm(h.ids.NewID(), change.Event, change.Alarm, now); ok {
					batch.Events = append(batch.Events, ev)
				}
				if change.Incident != nil {
					batch.Events = append(batch.Events, event.ForIncident(h.ids.NewID(), change.IncidentEvent, *change.Incident, now))
				}
			}
		}
		batch.Readings[i] = ports.StoredReading{Reading: r, Anomalous: v.Anomalous}

		s, ok := sightings[r.EquipmentID]
		if !ok {
			s = &ports.Sighting{EquipmentID: r.EquipmentID}
			sightings[r.EquipmentID] = s
			order = append(order, r.EquipmentID)
		}
		if r.ReceivedAt.After(s.LastSeenAt) {
			s.LastSeenAt = r.ReceivedAt
		}
		if v.Anomalous {
			batch.Anomalies = append(batch.Anomalies, anomaly.NewAnomaly(h.ids.NewID(), r, v, now))
			if h.rules.MarksAnomaly(v.Severity) {
				s.LastAnomalyAt = now
			}
		}
	}
	for _, id := range order {
		batch.Sightings = append(batch.Sightings, *sightings[id])
	}
	sessions, err := h.extendSessions(ctx, rs)
	if err != nil {
		h.forget(rs)
		return ports.ProcessedBatch{}, nil, err
	}
	batch.Sessions = sessions
	return batch, changes, nil
}

// loadWindows loads, in one call, the maintenance windows of the equipment of rs that the
// handler has not loaded within its TTL before now (or loaded at a time after now: the
// clock went back).
func (h *ProcessReadingsHandler) loadWindows(ctx context.Context, rs []sensor.Reading, now time.Time) error {
	if h.maintenance == nil || h.sensorRules == nil {
		return nil
	}
	var stale []string
	seen := make(map[string]bool)
	for _, r := range rs {
		id := r.EquipmentID
		if seen[id] {
			continue
		}
		seen[id] = true
		if c, ok := h.windows[id]; ok && !now.Before(c.loaded) && now.Sub(c.loaded) < h.maintenanceTTL {
			continue
		}
		stale = append(stale, id)
	}
	if len(stale) == 0 {
		return nil
	}
	got, err := h.maintenance.Windows(ctx, stale)
	if err != nil {
		return fmt.Errorf("load maintenance windows of %d equipment: %w", len(stale), err)
	}
	for _, id := range stale {
		m, ok := got[id]
		h.windows[id] = cachedWindow{window: m, set: ok, loaded: now}
	}
	return nil
}

// underMaintenance reports whether r was received within its equipment's maintenance window,
// as loaded by loadWindows.
func (h *ProcessReadingsHandler) underMaintenance(r sensor.Reading) bool {
	c := h.windows[r.EquipmentID]
	return c.set && c.window.Covers(r.ReceivedAt)
}

// track folds the observation of r into its sensor's alarms. A sensor's tracker is warmed, the
// first time, from its latest alarm and the openings of its flapping window.
func (h *ProcessReadingsHandler) track(ctx context.Context, r sensor.Reading, o alarm.Observation) (AlarmChange, error) {
	k := r.Key()
	tr, ok := h.trackers[k]
	if !ok {
		ar := h.sensorRules.ForSensor(k.EquipmentID, k.Type).Alarm
		latest, openings, err := h.alarms.Latest(ctx, k, r.Timestamp.Add(-ar.FlapWindow))
		if err != nil {
			return AlarmChange{}, fmt.Errorf("load alarms of %s/%s: %w", k.EquipmentID, k.Type, err)
		}
		tr = alarm.NewTracker(k, ar, h.sensorRules.Version())
		tr.Restore(latest, nil, openings)
		h.trackers[k] = tr
	}
	ev, a := tr.Observe(o, h.ids.NewID)
	if ev == alarm.HeldBack && a.ID == "" {
		ev = alarm.Nothing // held back again: nothing to write
	}
	change := AlarmChange{Event: ev, Alarm: a}
	if ev != alarm.Opened && ev != alarm.Cleared {
		return change, nil
	}
	incidents, err := h.incidentsOf(ctx, k.EquipmentID)
	if err != nil {
		return AlarmChange{}, err
	}
	if ev == alarm.Opened {
		inc, isNew := incidents.Opened(a)
		tr.JoinIncident(inc.ID)
		change.Alarm.IncidentID = inc.ID
		if isNew {
			change.Incident, change.IncidentEvent = &inc, event.IncidentOpened
		}
		return change, nil
	}
	if inc, closed := incidents.Cleared(a); closed {
		change.Incident, change.IncidentEvent = &inc, event.IncidentCleared
	}
	return change, nil
}

// incidentsOf returns the incidents of a machine, loaded the first time from its open alarms
// (an alarm that changes is still open in storage: the batch that changes it is not written
// yet).
func (h *ProcessReadingsHandler) incidentsOf(ctx context.Context, equipmentID string) (*alarm.Incidents, error) {
	if m, ok := h.incidents[equipmentID]; ok {
		return m, nil
	}
	open, _, err := h.alarms.Find(ctx, ports.AlarmQuery{EquipmentID: equipmentID,
		States: []alarm.State{alarm.StateActive, alarm.StateAcknowledged}, Limit: maxOpenAlarms, Ascending: true})
	if err != nil {
		return nil, fmt.Errorf("load the open alarms of %s: %w", equipmentID, err)
	}
	m := alarm.NewIncidents(open)
	h.incidents[equipmentID] = m
	return m, nil
}

// maxOpenAlarms bounds the open alarms of a machine read to follow its incidents: one a
// sensor, and a machine has far fewer sensors.
const maxOpenAlarms = 10_000

// extendSessions folds the receipt times of rs into each equipment's online sessions.
func (h *ProcessReadingsHandler) extendSessions(ctx context.Context, rs []sensor.Reading) ([]equipment.Session, error) {
	gap := h.rules.OfflineAfter
	changed := make(map[string][]equipment.Session)
	var order []string
	for _, r := range rs {
		list, ok := changed[r.EquipmentID]
		if !ok {
			order = append(order, r.EquipmentID)
			cur, known := h.sessions[r.EquipmentID]
			if !known {
				s, err := h.equipment.LatestSession(ctx, r.EquipmentID)
				switch {
				case err == nil:
					cur, known = s, true
				case !errors.Is(err, ports.ErrNotFound):
					return nil, fmt.Errorf("load session of %s: %w", r.EquipmentID, err)
				}
			}
			if known {
				list = []equipment.Session{cur}
			}
		}
		last := len(list) - 1
		if last >= 0 {
			if s, ok := list[last].Absorb(r.ReceivedAt, gap); ok {
				list[last] = s
				changed[r.EquipmentID] = list
				continue
			}
		}
		if last < 0 || r.ReceivedAt.After(list[last].End) {
			list = append(list, equipment.Session{EquipmentID: r.EquipmentID, Start: r.ReceivedAt, End: r.ReceivedAt})
		}
		changed[r.EquipmentID] = list
	}
	var out []equipment.Session
	for _, id := range order {
		out = append(out, changed[id]...)
	}
	return out, nil
}

// forget drops the windows and cached sessions that rs touched.
// detector is the detector that judges sensor k: its type's, or its machine's when the
// rules override them there.
func (h *ProcessReadingsHandler) detector(k sensor.Key) *anomaly.Detector {
	if h.sensorRules == nil {
		if d, ok := h.detectors[k.Type]; ok {
			return d
		}
		return h.detectors[sensor.Temperature] // every type is judged by cfg
	}
	if !h.sensorRules.Overrides(k.EquipmentID) { // the common case: one lookup by type
		d, ok := h.detectors[k.Type]
		if !ok {
			d = anomaly.NewDetector(h.sensorRules.For(k.Type).Detector)
			h.detectors[k.Type] = d
		}
		return d
	}
	cfg := h.sensorRules.ForSensor(k.EquipmentID, k.Type).Detector
	d, ok := h.byConfig[cfg]
	if !ok {
		d = anomaly.NewDetector(cfg)
		h.byConfig[cfg] = d
	}
	return d
}

func (h *ProcessReadingsHandler) forget(rs []sensor.Reading) {
	for _, r := range rs {
		h.detector(r.Key()).Forget(r.Key())
		delete(h.trackers, r.Key())
		delete(h.incidents, r.EquipmentID)
		delete(h.sessions, r.EquipmentID)
	}
}
