package command

import (
	"context"
	"fmt"
	"time"

	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// AnnounceStatusHandler turns equipment status changes into equipment.status_changed events.
//
// An equipment's status is derived (from when it was last seen, its anomalies, open alarms and
// maintenance window, at the time of asking), so nothing writes a change when, say, a machine
// goes silent: the handler looks, compares with the status last announced (ports.StatusLedger)
// and announces the differences. Every API process runs it about once a second; the ledger
// records each change once, whichever process sees it first, so each change is announced
// exactly once: its deliveries enqueued with it, then appended to the live stream.
type AnnounceStatusHandler struct {
	equipment *query.EquipmentHandler
	ledger    ports.StatusLedger
	log       ports.EventLog // nil: none
	ids       ports.IDGenerator
	clock     ports.Clock
	rules     equipment.Rules
}

// NewAnnounceStatusHandler builds the handler; log may be nil.
func NewAnnounceStatusHandler(eq *query.EquipmentHandler, ledger ports.StatusLedger, log ports.EventLog,
	ids ports.IDGenerator, c ports.Clock, rules equipment.Rules) *AnnounceStatusHandler {
	return &AnnounceStatusHandler{equipment: eq, ledger: ledger, log: log, ids: ids, clock: c, rules: rules}
}

// AnnounceResult says what one look announced.
type AnnounceResult struct {
	// Announced are the changes this call recorded (and appended to the live stream).
	Announced []event.Event
	// Unpublished, when set, is why the announced events did not reach the live stream; they
	// are recorded, and their deliveries enqueued, all the same.
	Unpublished error
}

// Handle looks at every equipment's status and announces those that changed.
func (h *AnnounceStatusHandler) Handle(ctx context.Context) (AnnounceResult, error) {
	views, err := h.equipment.List(ctx)
	if err != nil {
		return AnnounceResult{}, fmt.Errorf("announce status: %w", err)
	}
	announced, err := h.ledger.Announced(ctx)
	if err != nil {
		return AnnounceResult{}, fmt.Errorf("announce status: load announced: %w", err)
	}
	now := h.clock.Now().UTC()
	var changes []event.Event
	for _, v := range views {
		prev := announced[v.ID]
		if prev == v.Status {
			continue
		}
		c := event.StatusChange{EquipmentID: v.ID, Previous: prev, Status: v.Status, Reason: h.reason(v, prev, now)}
		changes = append(changes, event.ForStatus(h.ids.NewID(), c, now))
	}
	if len(changes) == 0 {
		return AnnounceResult{}, nil
	}
	recorded, err := h.ledger.Announce(ctx, changes)
	if err != nil {
		return AnnounceResult{}, fmt.Errorf("announce %d status changes: %w", len(changes), err)
	}
	res := AnnounceResult{Announced: recorded}
	if h.log != nil && len(recorded) > 0 {
		if err := h.log.Append(ctx, recorded); err != nil {
			res.Unpublished = fmt.Errorf("append %d status changes to the live stream: %w", len(recorded), err)
		}
	}
	return res, nil
}

// reason says, in a few words, why v has its status.
func (h *AnnounceStatusHandler) reason(v query.EquipmentView, prev equipment.Status, now time.Time) string {
	switch v.Status {
	case equipment.StatusOffline:
		if v.LastSeenAt.IsZero() {
			return "no reading received yet"
		}
		return fmt.Sprintf("no reading for more than %s (last at %s)", h.rules.OfflineAfter, v.LastSeenAt.UTC().Format(time.RFC3339))
	case equipment.StatusMaintenance:
		if v.Maintenance != nil && v.Maintenance.Reason != "" {
			return "maintenance until " + v.Maintenance.To.UTC().Format(time.RFC3339) + ": " + v.Maintenance.Reason
		}
		if v.Maintenance != nil {
			return "maintenance until " + v.Maintenance.To.UTC().Format(time.RFC3339)
		}
		return "maintenance"
	case equipment.StatusAnomaly:
		if !v.LastAnomalyAt.IsZero() && now.Sub(v.LastAnomalyAt) <= h.rules.AnomalyWindow {
			return "anomalous reading at " + v.LastAnomalyAt.UTC().Format(time.RFC3339)
		}
		return "an alarm is open"
	}
	switch prev {
	case equipment.StatusOffline, "":
		return "readings arriving"
	case equipment.StatusMaintenance:
		return "maintenance ended"
	case equipment.StatusAnomaly:
		return "no anomaly and no open alarm"
	}
	return "online"
}
