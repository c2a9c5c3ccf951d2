package query

import (
	"context"
	"fmt"
	"time"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/ports"
)

// ProductionMetrics asks for the figures of [From, To), bucketed by Bucket (an hour or a day),
// of one equipment or ("") all, and of one sensor of theirs or ("") all. Uptime is the
// equipment's, whatever the sensor.
type ProductionMetrics struct {
	From, To    time.Time
	Bucket      time.Duration
	EquipmentID string
	SensorID    string
}

// Uptime is one equipment's share of the range in which it was not OFFLINE.
type Uptime struct {
	EquipmentID   string
	UptimePercent float64
}

// ProductionReport holds the production figures.
type ProductionReport struct {
	EventsTotal  int64
	EventsSeries []ports.BucketCount
	Anomalies    int64
	BySeverity   map[anomaly.Severity]int64
	AnomalyRate  float64 // anomalies per processed reading
	Uptime       []Uptime
	// Alarms that opened in the range (with alarms kept, else nil).
	Alarms *AlarmFigures
}

// AlarmFigures sum up the alarms of a range.
type AlarmFigures struct {
	Opened     int64
	BySeverity map[anomaly.Severity]int64
	// MeanTimeToAck and MeanTimeToClear are over the alarms acknowledged, and cleared;
	// negative when there are none.
	MeanTimeToAck, MeanTimeToClear time.Duration
}

// ProductionMetricsHandler computes production figures from stored data.
type ProductionMetricsHandler struct {
	readings  ports.ReadingRepository
	anomalies ports.AnomalyRepository
	equipment ports.EquipmentRepository
	alarms    ports.AlarmRepository // may be nil
	clock     ports.Clock
	rules     equipment.Rules
}

// WithAlarms adds the alarms of the range to the figures.
func (h *ProductionMetricsHandler) WithAlarms(a ports.AlarmRepository) *ProductionMetricsHandler {
	h.alarms = a
	return h
}

// NewProductionMetricsHandler builds the handler.
func NewProductionMetricsHandler(r ports.ReadingRepository, a ports.AnomalyRepository, eq ports.EquipmentRepository,
	c ports.Clock, rules equipment.Rules) *ProductionMetricsHandler {
	return &ProductionMetricsHandler{readings: r, anomalies: a, equipment: eq, clock: c, rules: rules}
}

// Handle returns ports.ErrNotFound when EquipmentID names unknown equipment.
func (h *ProductionMetricsHandler) Handle(ctx context.Context, q ProductionMetrics) (ProductionReport, error) {
	var machines []equipment.Equipment
	if q.EquipmentID != "" {
		e, err := h.equipment.Get(ctx, q.EquipmentID)
		if err != nil {
			return ProductionReport{}, fmt.Errorf("get equipment %s: %w", q.EquipmentID, err)
		}
		machines = []equipment.Equipment{e}
	} else {
		all, err := h.equipment.All(ctx)
		if err != nil {
			return ProductionReport{}, fmt.Errorf("list equipment: %w", err)
		}
		machines = all
	}

	scope := ports.SensorScope{EquipmentID: q.EquipmentID, SensorID: q.SensorID}
	series, err := h.readings.CountByBucket(ctx, scope, q.From, q.To, q.Bucket)
	if err != nil {
		return ProductionReport{}, fmt.Errorf("count readings: %w", err)
	}
	rep := ProductionReport{EventsSeries: series, BySeverity: make(map[anomaly.Severity]int64, 3)}
	for _, b := range series {
		rep.EventsTotal += b.Count
	}
	bySev, err := h.anomalies.CountBySeverity(ctx, scope, q.From, q.To)
	if err != nil {
		return ProductionReport{}, fmt.Errorf("count anomalies: %w", err)
	}
	for _, s := range anomaly.Severities {
		rep.BySeverity[s] = bySev[s]
		rep.Anomalies += bySev[s]
	}
	if rep.EventsTotal > 0 {
		rep.AnomalyRate = float64(rep.Anomalies) / float64(rep.EventsTotal)
	}

	if h.alarms != nil {
		st, err := h.alarms.Stats(ctx, scope, q.From, q.To)
		if err != nil {
			return ProductionReport{}, fmt.Errorf("alarm figures: %w", err)
		}
		f := &AlarmFigures{BySeverity: make(map[anomaly.Severity]int64, 3), MeanTimeToAck: -1, MeanTimeToClear: -1}
		for _, s := range anomaly.Severities {
			f.BySeverity[s] = st.BySeverity[s]
			f.Opened += st.BySeverity[s]
		}
		if st.Acknowledged > 0 {
			f.MeanTimeToAck = st.TimeToAckTotal / time.Duration(st.Acknowledged)
		}
		if st.Cleared > 0 {
			f.MeanTimeToClear = st.TimeToClearTotal / time.Duration(st.Cleared)
		}
		rep.Alarms = f
	}

	gap := h.rules.OfflineAfter
	sessions, err := h.equipment.Sessions(ctx, q.EquipmentID, q.From.Add(-gap), q.To)
	if err != nil {
		return ProductionReport{}, fmt.Errorf("load sessions: %w", err)
	}
	byID := make(map[string][]equipment.Session)
	for _, s := range sessions {
		byID[s.EquipmentID] = append(byID[s.EquipmentID], s)
	}
	now := h.clock.Now()
	rep.Uptime = make([]Uptime, len(machines))
	for i, m := range machines {
		rep.Uptime[i] = Uptime{EquipmentID: m.ID,
			UptimePercent: equipment.UptimePercent(byID[m.ID], q.From, q.To, now, gap)}
	}
	return rep, nil
}
