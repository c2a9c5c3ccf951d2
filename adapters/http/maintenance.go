package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	validation "github.com/go-ozzo/ozzo-validation/v4"
	"github.com/gofiber/fiber/v2"

	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/ports"
)

// maintenanceWindow is a maintenance window as answers show it.
type maintenanceWindow struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason"`
}

// newMaintenanceWindow renders m; nil stays nil.
func newMaintenanceWindow(m *equipment.Maintenance) *maintenanceWindow {
	if m == nil {
		return nil
	}
	return &maintenanceWindow{From: formatTime(m.From), To: formatTime(m.To), Reason: m.Reason}
}

// maintenanceResponse is the answer to PUT /equipment/:id/maintenance.
type maintenanceResponse struct {
	EquipmentID string `json:"equipmentId"`
	maintenanceWindow
}

// maintenanceRequest is the body of PUT /equipment/:id/maintenance, its times as sent.
type maintenanceRequest struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason"`
}

var ruleMaintenanceReason = validation.RuneLength(0, equipment.MaxMaintenanceReasonLen).
	Error(fmt.Sprintf("must be at most %d characters long", equipment.MaxMaintenanceReasonLen))

// Validate checks the request at now, naming every bad field: from (optional) and to are
// RFC 3339 times with an offset, and to is after from, in the future, and at most 30 days
// after from; the reason has at most 500 characters and no NUL.
func (r maintenanceRequest) Validate(now time.Time) error {
	from, fromErr := now, error(nil)
	if r.From != "" {
		from, fromErr = parseTime(r.From)
	}
	return validation.ValidateStruct(&r,
		validation.Field(&r.From, validation.By(func(any) error { return fromErr })),
		validation.Field(&r.To, validation.Required.Error("is required: when the window ends"), validation.By(func(any) error {
			to, err := parseTime(r.To)
			if err != nil || fromErr != nil {
				return err
			}
			for _, p := range (equipment.Maintenance{From: from, To: to}).Problems(now) {
				if p.Field == "to" {
					return p.Err
				}
			}
			return nil
		})),
		validation.Field(&r.Reason, ruleMaintenanceReason, ruleNoNUL),
	)
}

// decodeMaintenance reads the body of PUT /equipment/:id/maintenance at now, naming each
// field of the wrong JSON type, then each that breaks a rule.
func decodeMaintenance(body []byte, now time.Time) (command.SetMaintenance, error) {
	var raw struct {
		From   json.RawMessage `json:"from"`
		To     json.RawMessage `json:"to"`
		Reason json.RawMessage `json:"reason"`
	}
	if err := decodeFields(body, &raw, "from", "to", "reason"); err != nil {
		return command.SetMaintenance{}, err
	}
	var (
		r        maintenanceRequest
		typeErrs []detail
	)
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"from", raw.From, &r.From}, {"to", raw.To, &r.To}, {"reason", raw.Reason, &r.Reason}} {
		s, ok := decodeString(f.raw)
		if !ok || !utf8.ValidString(s) {
			typeErrs = append(typeErrs, detail{Field: f.name, Message: "must be a string"})
		}
		*f.dst = s
	}
	if len(typeErrs) > 0 {
		return command.SetMaintenance{}, malformedJSON(fieldCount(len(typeErrs))+" of the wrong JSON type", typeErrs...)
	}
	r.Reason = strings.TrimSpace(r.Reason)
	violations, err := appendViolations(nil, "", r.Validate(now))
	if err != nil {
		return command.SetMaintenance{}, fmt.Errorf("validate maintenance window: %w", err)
	}
	if len(violations) > 0 {
		return command.SetMaintenance{}, &ports.ValidationError{Violations: violations}
	}
	cmd := command.SetMaintenance{Reason: r.Reason}
	if r.From != "" {
		cmd.From, _ = parseTime(r.From) // Validate has parsed it
	}
	cmd.To, _ = parseTime(r.To)
	return cmd, nil
}

// putMaintenance is PUT /equipment/:id/maintenance: it sets the equipment's maintenance
// window, replacing any, and answers it as stored.
func (h *handlers) putMaintenance(c *fiber.Ctx) error {
	id, err := equipmentIDParam(c)
	if err != nil {
		return err
	}
	cmd, err := decodeMaintenance(c.Request().Body(), h.clock.Now())
	if err != nil {
		return err
	}
	cmd.EquipmentID = id
	m, err := h.app.Commands.SetMaintenance.Handle(c.UserContext(), cmd)
	if err != nil {
		return err
	}
	return c.JSON(maintenanceResponse{EquipmentID: m.EquipmentID, maintenanceWindow: *newMaintenanceWindow(&m)}, mimeJSON)
}

// deleteMaintenance is DELETE /equipment/:id/maintenance: a window under way ends now, one
// ahead is removed; 404 when there is neither.
func (h *handlers) deleteMaintenance(c *fiber.Ctx) error {
	id, err := equipmentIDParam(c)
	if err != nil {
		return err
	}
	err = h.app.Commands.EndMaintenance.Handle(c.UserContext(), command.EndMaintenance{EquipmentID: id})
	if errors.Is(err, command.ErrNoMaintenance) {
		return &apiError{status: fiber.StatusNotFound, code: codeNotFound,
			message: "the equipment has no maintenance window under way or ahead"}
	}
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
