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

	"github.com/production-line-monitor/plm/adapters/eventwire"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/ports"
)

// alarmResponse is an alarm as the API shows it: in its wire form (the one events carry), with
// how long it has been open.
type alarmResponse struct {
	eventwire.Alarm
	OpenSeconds float64 `json:"openSeconds"`
}

func newAlarmResponse(a alarm.Alarm, now time.Time) alarmResponse {
	end := now
	if !a.ClearedAt.IsZero() {
		end = a.ClearedAt
	}
	return alarmResponse{Alarm: eventwire.NewAlarm(a), OpenSeconds: roundMillis(max(0, end.Sub(a.OpenedAt).Seconds()))}
}

type alarmPage struct {
	Data       []alarmResponse `json:"data"`
	Pagination pagination      `json:"pagination"`
}

type alarmDetailResponse struct {
	alarmResponse
	Readings []alertResponse `json:"anomalies"`
}

// alarmList is GET /alarms: the alarms that opened in [from, to), filtered, paged, newest
// first unless sort=asc.
func (h *handlers) alarmList(c *fiber.Ctx) error {
	q := parseQuery(c, "equipmentId", "sensorType", "sensorId", "severity", "state", "from", "to", "page", "pageSize", "sort")
	filter := ports.AlarmQuery{
		EquipmentID: q.equipmentID(),
		SensorType:  q.sensorType(h.types),
		SensorID:    q.sensorID(),
		Severities:  q.severities(),
		States:      q.states(),
	}
	filter.From, filter.To = q.openRange()
	page, pageSize, asc := q.paging()
	filter.Ascending = asc
	if err := q.err(); err != nil {
		return err
	}
	res, err := h.app.Queries.Alarms.List(c.UserContext(), query.AlarmList{Filter: filter, Page: page, PageSize: pageSize})
	if err != nil {
		return err
	}
	now := h.clock.Now()
	out := alarmPage{
		Data:       make([]alarmResponse, len(res.Alarms)),
		Pagination: pagination{Page: res.Page, PageSize: res.PageSize, Total: res.Total, TotalPages: res.TotalPages},
	}
	for i, a := range res.Alarms {
		out.Data[i] = newAlarmResponse(a, now)
	}
	return c.JSON(out, mimeJSON)
}

// states reads a comma-separated list of alarm states (none when absent).
func (q *queryParams) states() []alarm.State {
	return list(q, "state", alarm.ParseState, "must be a comma-separated list of ACTIVE, ACKNOWLEDGED, CLEARED")
}

// maxAlarmIDLen bounds an alarm id in a path.
const maxAlarmIDLen = 64

// alarmIDParam is the :id of the path: ids are the service's own, printable ASCII.
func alarmIDParam(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	ok := id != "" && len(id) <= maxAlarmIDLen
	for i := 0; ok && i < len(id); i++ {
		ok = id[i] > ' ' && id[i] < 0x7f
	}
	if !ok {
		return "", &ports.ValidationError{Violations: []ports.Violation{{Field: "id", Message: "is not an alarm id"}}}
	}
	return strings.Clone(id), nil
}

// alarmDetail is GET /alarms/:id: the alarm with its anomalous readings.
func (h *handlers) alarmDetail(c *fiber.Ctx) error {
	id, err := alarmIDParam(c)
	if err != nil {
		return err
	}
	d, err := h.app.Queries.Alarms.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	out := alarmDetailResponse{alarmResponse: newAlarmResponse(d.Alarm, h.clock.Now()), Readings: make([]alertResponse, len(d.Readings))}
	for i, a := range d.Readings {
		out.Readings[i] = newAlertResponse(a)
	}
	return c.JSON(out, mimeJSON)
}

// ackRequest is the body of POST /alarms/:id/ack.
type ackRequest struct {
	By      string `json:"by"`
	Comment string `json:"comment"`
}

// Limits of an acknowledgement.
const (
	maxAckBy      = 128
	maxAckComment = 1000
)

func (r ackRequest) Validate() error {
	return validation.ValidateStruct(&r,
		validation.Field(&r.By, validation.Required.Error("is required: who acknowledges"),
			validation.RuneLength(1, maxAckBy).Error(fmt.Sprintf("must be at most %d characters long", maxAckBy)), ruleNoNUL),
		validation.Field(&r.Comment,
			validation.RuneLength(0, maxAckComment).Error(fmt.Sprintf("must be at most %d characters long", maxAckComment)), ruleNoNUL),
	)
}

// decodeAck reads the body of POST /alarms/:id/ack, naming each bad field.
func decodeAck(body []byte) (ackRequest, error) {
	var raw struct {
		By      json.RawMessage `json:"by"`
		Comment json.RawMessage `json:"comment"`
	}
	if err := decodeFields(body, &raw, "by", "comment"); err != nil {
		return ackRequest{}, err
	}
	var (
		r        ackRequest
		typeErrs []detail
	)
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"by", raw.By, &r.By}, {"comment", raw.Comment, &r.Comment}} {
		s, ok := decodeString(f.raw)
		if !ok || !utf8.ValidString(s) {
			typeErrs = append(typeErrs, detail{Field: f.name, Message: "must be a string"})
		}
		*f.dst = s
	}
	if len(typeErrs) > 0 {
		return ackRequest{}, malformedJSON(fieldCount(len(typeErrs))+" of the wrong JSON type", typeErrs...)
	}
	r.By = strings.TrimSpace(r.By)
	violations, err := appendViolations(nil, "", r.Validate())
	if err != nil {
		return ackRequest{}, fmt.Errorf("validate acknowledgement: %w", err)
	}
	if len(violations) > 0 {
		return ackRequest{}, &ports.ValidationError{Violations: violations}
	}
	return r, nil
}

// ackAlarm is POST /alarms/:id/ack: an ACTIVE alarm becomes ACKNOWLEDGED; any other state
// is 409 conflict.
func (h *handlers) ackAlarm(c *fiber.Ctx) error {
	id, err := alarmIDParam(c)
	if err != nil {
		return err
	}
	r, err := decodeAck(c.Request().Body())
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	a, err := h.app.Commands.AcknowledgeAlarm.Handle(ctx, command.AcknowledgeAlarm{ID: id, By: r.By, Comment: r.Comment})
	if errors.Is(err, ports.ErrConflict) {
		msg := "only an ACTIVE alarm can be acknowledged"
		if cur, gerr := h.app.Queries.Alarms.Get(ctx, id); gerr == nil {
			msg += "; this one is " + string(cur.State)
		}
		return &apiError{status: fiber.StatusConflict, code: codeConflict, message: msg}
	}
	if err != nil {
		return err
	}
	return c.JSON(newAlarmResponse(a, h.clock.Now()), mimeJSON)
}
