package http

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	validation "github.com/go-ozzo/ozzo-validation/v4"
	"github.com/gofiber/fiber/v2"

	"github.com/production-line-monitor/plm/application"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/ports"
)

// handlers serve the API's routes over the use cases.
type handlers struct {
	app     application.Application
	clock   ports.Clock
	metrics *httpMetrics
	types   *sensorTypes
}

type equipmentResponse struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Line       string   `json:"line"`
	Location   string   `json:"location"`
	Status     string   `json:"status"`
	LastSeenAt jsonTime `json:"lastSeenAt"`
	CreatedAt  jsonTime `json:"createdAt"`
	// Maintenance is the maintenance window under way or ahead, if any (an extension).
	Maintenance *maintenanceWindow `json:"maintenance,omitempty"`
}

func newEquipmentResponse(v query.EquipmentView) equipmentResponse {
	return equipmentResponse{
		ID: v.ID, Name: v.Name, Line: v.Line, Location: v.Location, Status: string(v.Status),
		LastSeenAt: jsonTime(v.LastSeenAt), CreatedAt: jsonTime(v.CreatedAt),
		Maintenance: newMaintenanceWindow(v.Maintenance),
	}
}

type equipmentList struct {
	Data []equipmentResponse `json:"data"`
}

// equipmentIDParam reads the :id of the path, copied out of Fiber's buffer.
func equipmentIDParam(c *fiber.Ctx) (string, error) {
	id := strings.Clone(c.Params("id"))
	if err := validateEquipmentID(id); err != nil {
		return "", &ports.ValidationError{Violations: []ports.Violation{{Field: "id", Message: err.Error()}}}
	}
	return id, nil
}

// listEquipment is GET /equipment.
func (h *handlers) listEquipment(c *fiber.Ctx) error {
	views, err := h.app.Queries.Equipment.List(c.UserContext())
	if err != nil {
		return err
	}
	out := equipmentList{Data: make([]equipmentResponse, len(views))}
	for i, v := range views {
		out.Data[i] = newEquipmentResponse(v)
	}
	return c.JSON(out, mimeJSON)
}

// getEquipment is GET /equipment/:id.
func (h *handlers) getEquipment(c *fiber.Ctx) error {
	id, err := equipmentIDParam(c)
	if err != nil {
		return err
	}
	v, err := h.app.Queries.Equipment.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(newEquipmentResponse(v), mimeJSON)
}

// metadataRequest is the body of PUT /equipment/:id. Fields left out are cleared.
type metadataRequest struct {
	Name     string `json:"name"`
	Line     string `json:"line"`
	Location string `json:"location"`
}

var ruleMetadata = validation.RuneLength(0, equipment.MaxMetadataLen).
	Error(fmt.Sprintf("must be at most %d characters long", equipment.MaxMetadataLen))

// Validate checks the lengths of the fields, and that they hold no NUL (which PostgreSQL
// cannot store as text).
func (m metadataRequest) Validate() error {
	return validation.ValidateStruct(&m,
		validation.Field(&m.Name, ruleMetadata, ruleNoNUL),
		validation.Field(&m.Line, ruleMetadata, ruleNoNUL),
		validation.Field(&m.Location, ruleMetadata, ruleNoNUL),
	)
}

// decodeMetadata reads the body of PUT /equipment/:id, naming each field of the wrong type.
func decodeMetadata(body []byte) (metadataRequest, error) {
	var raw struct {
		Name     json.RawMessage `json:"name"`
		Line     json.RawMessage `json:"line"`
		Location json.RawMessage `json:"location"`
	}
	if err := decodeFields(body, &raw, "name", "line", "location"); err != nil {
		return metadataRequest{}, err
	}
	var (
		m        metadataRequest
		typeErrs []detail
	)
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"name", raw.Name, &m.Name}, {"line", raw.Line, &m.Line}, {"location", raw.Location, &m.Location}} {
		s, ok := decodeString(f.raw)
		if !ok {
			typeErrs = append(typeErrs, detail{Field: f.name, Message: "must be a string"})
		}
		*f.dst = s
	}
	if len(typeErrs) > 0 {
		return metadataRequest{}, malformedJSON(fieldCount(len(typeErrs))+" of the wrong JSON type", typeErrs...)
	}
	violations, err := appendViolations(nil, "", m.Validate())
	if err != nil {
		return metadataRequest{}, fmt.Errorf("validate metadata: %w", err)
	}
	if len(violations) > 0 {
		return metadataRequest{}, &ports.ValidationError{Violations: violations}
	}
	return m, nil
}

// putEquipment is PUT /equipment/:id: it creates the equipment or replaces its metadata.
func (h *handlers) putEquipment(c *fiber.Ctx) error {
	id, err := equipmentIDParam(c)
	if err != nil {
		return err
	}
	m, err := decodeMetadata(c.Request().Body())
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if _, err := h.app.Commands.UpsertEquipment.Handle(ctx, command.UpsertEquipment{
		ID: id, Metadata: equipment.Metadata{Name: m.Name, Line: m.Line, Location: m.Location},
	}); err != nil {
		return err
	}
	v, err := h.app.Queries.Equipment.Get(ctx, id)
	if err != nil {
		return err
	}
	return c.JSON(newEquipmentResponse(v), mimeJSON)
}

type statusResponse struct {
	EquipmentID          string                  `json:"equipmentId"`
	Status               string                  `json:"status"`
	LastSeenAt           jsonTime                `json:"lastSeenAt"`
	SecondsSinceLastSeen *float64                `json:"secondsSinceLastSeen"`
	LatestReadings       []latestReadingResponse `json:"latestReadings"`
	RecentAnomalies      int64                   `json:"recentAnomalies"`
	// Maintenance is the maintenance window under way or ahead, if any (an extension).
	Maintenance *maintenanceWindow `json:"maintenance,omitempty"`
}

type latestReadingResponse struct {
	SensorType string  `json:"sensorType"`
	SensorID   string  `json:"sensorId,omitempty"`
	Value      float64 `json:"value"`
	Unit       string  `json:"unit"`
	Timestamp  string  `json:"timestamp"`
	Anomalous  bool    `json:"anomalous"`
}

// equipmentStatus is GET /equipment/:id/status.
func (h *handlers) equipmentStatus(c *fiber.Ctx) error {
	id, err := equipmentIDParam(c)
	if err != nil {
		return err
	}
	// Only sensorId is read: other parameters are ignored, as they always were here.
	var sensorID string
	if v := c.Context().QueryArgs().Peek("sensorId"); v != nil {
		sensorID = string(v)
		if err := validateSensorID(sensorID); err != nil {
			return &apiError{status: fiber.StatusBadRequest, code: codeInvalidQuery, message: "1 query parameter is invalid",
				details: []detail{{Field: "sensorId", Message: err.Error()}}}
		}
	}
	st, err := h.app.Queries.EquipmentStatus.Handle(c.UserContext(), id, sensorID)
	if err != nil {
		return err
	}
	out := statusResponse{
		EquipmentID:     st.EquipmentID,
		Status:          string(st.Status),
		LastSeenAt:      jsonTime(st.LastSeenAt),
		LatestReadings:  make([]latestReadingResponse, len(st.LatestReadings)),
		RecentAnomalies: st.RecentAnomalies,
		Maintenance:     newMaintenanceWindow(st.Maintenance),
	}
	if !st.LastSeenAt.IsZero() {
		secs := roundMillis(st.SecondsSinceLastSeen)
		out.SecondsSinceLastSeen = &secs
	}
	for i, r := range st.LatestReadings {
		out.LatestReadings[i] = latestReadingResponse{
			SensorType: string(r.Type), SensorID: r.SensorID, Value: r.Value, Unit: r.Unit,
			Timestamp: formatTime(r.Timestamp), Anomalous: r.Anomalous,
		}
	}
	return c.JSON(out, mimeJSON)
}

// roundMillis rounds seconds to the millisecond, the precision of every time answered.
func roundMillis(secs float64) float64 {
	return math.Round(secs*1000) / 1000
}
