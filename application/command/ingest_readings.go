// Package command holds the use cases that change state.
package command

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// MaxFutureSkew is how far past the time of receipt a reading's timestamp may lie.
const MaxFutureSkew = 5 * time.Minute

// MaxBatch is the most readings one request may carry.
const MaxBatch = 1000

// ReadingInput is one reading as a caller sent it, already checked at the edge.
// Empty ReadingID and zero Timestamp take defaults: a generated id and the time of receipt.
// Empty SensorID is the equipment's sensor of the type.
type ReadingInput struct {
	ReadingID   string
	EquipmentID string
	SensorType  sensor.Type
	SensorID    string
	Value       float64
	Unit        string
	Timestamp   time.Time
}

// IngestReadings accepts a batch of readings for detection and storage.
type IngestReadings struct {
	Readings []ReadingInput
}

// IngestReadingsHandler turns inputs into readings and queues them. The batch is
// all-or-nothing: one bad reading refuses the whole batch.
type IngestReadingsHandler struct {
	publisher ports.ReadingsPublisher
	clock     ports.Clock
	ids       ports.IDGenerator
	known     func(sensor.Type) bool
}

// NewIngestReadingsHandler builds the handler. It accepts the contract's four sensor types
// unless WithTypes says otherwise.
func NewIngestReadingsHandler(p ports.ReadingsPublisher, c ports.Clock, ids ports.IDGenerator) *IngestReadingsHandler {
	return &IngestReadingsHandler{publisher: p, clock: c, ids: ids, known: contractType}
}

// WithTypes makes known say which sensor types are accepted: the contract's four and those a
// rules file declares (rules.Set.Knows).
func (h *IngestReadingsHandler) WithTypes(known func(sensor.Type) bool) *IngestReadingsHandler {
	h.known = known
	return h
}

func contractType(t sensor.Type) bool {
	_, err := sensor.ParseType(string(t))
	return err == nil
}

// Handle returns how many readings were accepted. A batch breaking a rule gets a
// *ports.ValidationError; a queue that cannot take it, an error wrapping ports.ErrUnavailable.
func (h *IngestReadingsHandler) Handle(ctx context.Context, cmd IngestReadings) (int, error) {
	if len(cmd.Readings) == 0 || len(cmd.Readings) > MaxBatch {
		return 0, &ports.ValidationError{Violations: []ports.Violation{{
			Field: "readings", Message: fmt.Sprintf("must hold 1 to %d readings", MaxBatch)}}}
	}
	now := h.clock.Now().UTC()
	readings := make([]sensor.Reading, 0, len(cmd.Readings))
	seen := make(map[ports.ReadingRef]struct{}, len(cmd.Readings))
	var violations []ports.Violation
	for i, in := range cmd.Readings {
		id := in.ReadingID
		if id == "" {
			id = h.ids.NewID()
		}
		ts := in.Timestamp
		if ts.IsZero() {
			ts = now
		}
		r, err := sensor.NewReading(id, in.EquipmentID, in.SensorType, in.SensorID, in.Value, in.Unit, ts, now)
		if err == nil && !h.known(r.Type) {
			err = fmt.Errorf("%w %q", sensor.ErrUnknownType, r.Type)
		}
		future := ts.Sub(now) > MaxFutureSkew
		if err != nil {
			violations = append(violations, readingViolations(i, err)...)
		}
		if future {
			violations = append(violations, ports.Violation{Field: fmt.Sprintf("readings[%d].timestamp", i),
				Message: "must be at most 5 minutes in the future"})
		}
		if err != nil || future {
			continue
		}
		ref := ports.ReadingRef{EquipmentID: r.EquipmentID, ReadingID: r.ID}
		if _, dup := seen[ref]; dup {
			continue // the same reading twice in one batch is stored once
		}
		seen[ref] = struct{}{}
		readings = append(readings, r)
	}
	if len(violations) > 0 {
		return 0, &ports.ValidationError{Violations: violations}
	}
	if err := h.publisher.PublishReadings(ctx, ports.ReadingsReceived{Readings: readings}); err != nil {
		return 0, fmt.Errorf("publish %d readings: %w", len(readings), err)
	}
	return len(cmd.Readings), nil
}

// readingFields names, by the contract's json names, the field each sensor.NewReading error
// is about.
var readingFields = []struct {
	err   error
	field string
}{
	{sensor.ErrBadEquipmentID, "equipmentId"},
	{sensor.ErrUnknownType, "sensorType"},
	{sensor.ErrNonFinite, "value"},
	{sensor.ErrUnitTooLong, "unit"},
	{sensor.ErrBadUnit, "unit"},
	{sensor.ErrMissingTimestamp, "timestamp"},
	{sensor.ErrBadReadingID, "readingId"},
	{sensor.ErrBadSensorID, "sensorId"},
}

// readingViolations turns the error of sensor.NewReading for readings[i] into one violation
// per broken field.
func readingViolations(i int, err error) []ports.Violation {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]ports.Violation, 0, len(errs))
	for _, e := range errs {
		field := fmt.Sprintf("readings[%d]", i)
		for _, f := range readingFields {
			if errors.Is(e, f.err) {
				field += "." + f.field
				break
			}
		}
		out = append(out, ports.Violation{Field: field, Message: e.Error()})
	}
	return out
}
