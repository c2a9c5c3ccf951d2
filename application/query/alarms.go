package query

import (
	"context"
	"fmt"
	"time"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/ports"
)

// AlarmList asks for one page of alarms, as AlertHistory does for anomalies.
type AlarmList struct {
	Filter   ports.AlarmQuery // Offset and Limit are set from Page and PageSize
	Page     int
	PageSize int
}

// AlarmPage is one page of alarms with the paging figures.
type AlarmPage struct {
	Alarms     []alarm.Alarm
	Page       int
	PageSize   int
	Total      int64
	TotalPages int64
}

// AlarmDetail is one alarm with its anomalous readings.
type AlarmDetail struct {
	alarm.Alarm
	Readings []anomaly.Anomaly // oldest first, at most MaxAlarmReadings
}

// MaxAlarmReadings bounds the anomalous readings listed with one alarm.
const MaxAlarmReadings = 1000

// AlarmsHandler lists alarms and fetches one.
type AlarmsHandler struct {
	alarms    ports.AlarmRepository
	anomalies ports.AnomalyRepository
}

// NewAlarmsHandler builds the handler.
func NewAlarmsHandler(al ports.AlarmRepository, an ports.AnomalyRepository) *AlarmsHandler {
	return &AlarmsHandler{alarms: al, anomalies: an}
}

// List returns the page asked for; a page past the end is empty.
func (h *AlarmsHandler) List(ctx context.Context, q AlarmList) (AlarmPage, error) {
	p := pageOf(q.Page, q.PageSize)
	f := q.Filter
	f.Offset, f.Limit = p.offset(), p.size
	list, total, err := h.alarms.Find(ctx, f)
	if err != nil {
		return AlarmPage{}, fmt.Errorf("list alarms: %w", err)
	}
	return AlarmPage{Alarms: list, Page: p.number, PageSize: p.size, Total: total, TotalPages: p.count(total)}, nil
}

// Get returns the alarm with its anomalous readings: the anomalies of its sensor timestamped
// from its first to its last anomalous reading. ports.ErrNotFound for an unknown id.
func (h *AlarmsHandler) Get(ctx context.Context, id string) (AlarmDetail, error) {
	a, err := h.alarms.Get(ctx, id)
	if err != nil {
		return AlarmDetail{}, fmt.Errorf("get alarm %s: %w", id, err)
	}
	readings, _, err := h.anomalies.Find(ctx, ports.AnomalyQuery{EquipmentID: a.EquipmentID, SensorType: a.SensorType,
		From: a.FirstAt, To: a.LastAt.Add(time.Microsecond), Limit: MaxAlarmReadings, Ascending: true}) // storage keeps microseconds
	if err != nil {
		return AlarmDetail{}, fmt.Errorf("readings of alarm %s: %w", id, err)
	}
	return AlarmDetail{Alarm: a, Readings: readings}, nil
}
