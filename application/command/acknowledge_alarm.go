package command

import (
	"context"
	"fmt"

	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// AcknowledgeAlarm says that someone has seen an alarm and is on it.
type AcknowledgeAlarm struct {
	ID      string
	By      string
	Comment string
}

// AcknowledgeAlarmHandler acknowledges alarms.
type AcknowledgeAlarmHandler struct {
	alarms ports.AlarmRepository
	clock  ports.Clock

	// With events (WithEvents).
	ids    ports.IDGenerator
	events ports.EventLog
}

// NewAcknowledgeAlarmHandler builds the handler.
func NewAcknowledgeAlarmHandler(a ports.AlarmRepository, c ports.Clock) *AcknowledgeAlarmHandler {
	return &AcknowledgeAlarmHandler{alarms: a, clock: c}
}

// WithEvents announces each acknowledgement: an alarm.acknowledged event, whose deliveries
// are enqueued with the acknowledgement (in its transaction), and which is then appended to
// the live stream log (when not nil).
func (h *AcknowledgeAlarmHandler) WithEvents(ids ports.IDGenerator, log ports.EventLog) *AcknowledgeAlarmHandler {
	h.ids, h.events = ids, log
	return h
}

// Handle acknowledges an ACTIVE alarm, now. ports.ErrNotFound for an unknown alarm,
// ports.ErrConflict for one already acknowledged or cleared. Once the acknowledgement is
// stored, a failure to append its event to the live stream is not an error: the event is
// lost to the stream only (its deliveries are enqueued).
func (h *AcknowledgeAlarmHandler) Handle(ctx context.Context, cmd AcknowledgeAlarm) (alarm.Alarm, error) {
	var announce func(alarm.Alarm) event.Event
	var ev event.Event
	if h.ids != nil {
		announce = func(a alarm.Alarm) event.Event {
			ev = event.Acknowledged(h.ids.NewID(), a)
			return ev
		}
	}
	a, err := h.alarms.Acknowledge(ctx, cmd.ID, cmd.By, cmd.Comment, h.clock.Now().UTC(), announce)
	if err != nil {
		return alarm.Alarm{}, fmt.Errorf("acknowledge alarm %s: %w", cmd.ID, err)
	}
	if h.events != nil && ev.ID != "" {
		_ = h.events.Append(ctx, []event.Event{ev})
	}
	return a, nil
}
