package command

import (
	"context"
	"fmt"

	"github.com/production-line-monitor/plm/domain/alarm"
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
}

// NewAcknowledgeAlarmHandler builds the handler.
func NewAcknowledgeAlarmHandler(a ports.AlarmRepository, c ports.Clock) *AcknowledgeAlarmHandler {
	return &AcknowledgeAlarmHandler{alarms: a, clock: c}
}

// Handle acknowledges an ACTIVE alarm, now. ports.ErrNotFound for an unknown alarm,
// ports.ErrConflict for one already acknowledged or cleared.
func (h *AcknowledgeAlarmHandler) Handle(ctx context.Context, cmd AcknowledgeAlarm) (alarm.Alarm, error) {
	a, err := h.alarms.Acknowledge(ctx, cmd.ID, cmd.By, cmd.Comment, h.clock.Now().UTC(), nil)
	if err != nil {
		return alarm.Alarm{}, fmt.Errorf("acknowledge alarm %s: %w", cmd.ID, err)
	}
	return a, nil
}
