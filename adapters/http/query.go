package http

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	validation "github.com/go-ozzo/ozzo-validation/v4"
	"github.com/gofiber/fiber/v2"

	"github.com/production-line-monitor/plm/domain/sensor"
)

// queryParams reads a query string parameter by parameter, collecting a detail for each
// parameter that is unknown, repeated or bad, so that one answer names them all.
type queryParams struct {
	values  map[string]string
	details []detail
	failed  map[string]bool
}

// parseQuery reads c's query string; names outside allowed are reported as unknown.
// Values are copied: they outlive Fiber's buffers.
func parseQuery(c *fiber.Ctx, allowed ...string) *queryParams {
	q := &queryParams{values: make(map[string]string), failed: make(map[string]bool)}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		name := string(k)
		switch _, seen := q.values[name]; {
		case !slices.Contains(allowed, name):
			q.fail(name, "is not a known parameter")
		case seen:
			q.fail(name, "must be given at most once")
		default:
			q.values[name] = string(v)
		}
	})
	return q
}

// fail records a bad parameter, once per name.
func (q *queryParams) fail(name, message string) {
	if q.failed[name] {
		return
	}
	q.failed[name] = true
	q.details = append(q.details, detail{Field: name, Message: message})
}

// err is the invalid_query error naming every bad parameter, or nil.
func (q *queryParams) err() error {
	if len(q.details) == 0 {
		return nil
	}
	msg := "1 query parameter is invalid"
	if len(q.details) > 1 {
		msg = fmt.Sprintf("%d query parameters are invalid", len(q.details))
	}
	return &apiError{status: fiber.StatusBadRequest, code: codeInvalidQuery, message: msg, details: q.details}
}

func (q *queryParams) lookup(name string) (string, bool) {
	v, ok := q.values[name]
	return v, ok && !q.failed[name]
}

// time reads an RFC 3339 time; given says whether the parameter was sent at all.
// A '+' of the offset that arrived unescaped (as a space) is taken as '+'.
func (q *queryParams) time(name string) (t time.Time, given bool) {
	v, ok := q.lookup(name)
	if !ok {
		return time.Time{}, q.failed[name]
	}
	t, err := parseTime(strings.ReplaceAll(v, " ", "+"))
	if err != nil {
		q.fail(name, err.Error())
	}
	return t, true
}

// window reads from and to with defaults: without either, the span ending at now; with
// only from, up to now; with only to, the span ending at to. from must be before to.
func (q *queryParams) window(now time.Time, span time.Duration) (from, to time.Time) {
	from, hasFrom := q.time("from")
	to, hasTo := q.time("to")
	switch {
	case !hasFrom && !hasTo:
		from, to = now.Add(-span), now
	case !hasTo:
		to = now
	case !hasFrom:
		from = to.Add(-span)
		if from.Before(firstWritableTime) && !q.failed["to"] {
			// An answer could not write the start: RFC 3339 has no year before 0.
			q.fail("to", fmt.Sprintf("without from, must be at least %s after %s", span, formatTime(firstWritableTime)))
		}
	}
	q.ordered(from, to)
	return from, to
}

// firstWritableTime is the earliest time an answer can write (RFC 3339 years are 0 to 9999).
var firstWritableTime = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)

// ordered checks that from is before to, unless either was bad already. Both must have
// been given or defaulted: the zero time is a time like any other here.
func (q *queryParams) ordered(from, to time.Time) {
	if q.failed["from"] || q.failed["to"] {
		return
	}
	if !from.Before(to) {
		q.fail("from", "must be before to ("+formatTime(to)+")")
	}
}

// int reads an integer in [lo, hi], def when absent.
func (q *queryParams) int(name string, def, lo, hi int) int {
	v, ok := q.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		q.fail(name, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
		return def
	}
	return n
}

// enum reads one of allowed, def when absent.
func (q *queryParams) enum(name, def string, allowed ...string) string {
	v, ok := q.lookup(name)
	if !ok {
		return def
	}
	if !slices.Contains(allowed, v) {
		q.fail(name, "must be one of "+strings.Join(allowed, ", "))
		return def
	}
	return v
}

// sensorType reads an optional sensor type ("" when absent): one of types.
func (q *queryParams) sensorType(types *sensorTypes) sensor.Type {
	v, ok := q.lookup("sensorType")
	if !ok {
		return ""
	}
	t, known := types.parse(v)
	if !known {
		q.fail("sensorType", types.message)
		return ""
	}
	return t
}

// sensorID reads an optional sensor id ("" when absent).
func (q *queryParams) sensorID() string {
	v, ok := q.lookup("sensorId")
	if !ok {
		return ""
	}
	if err := validateSensorID(v); err != nil {
		q.fail("sensorId", err.Error())
		return ""
	}
	return v
}

// validateSensorID checks a sensor id: the shape of an equipment id.
func validateSensorID(id string) error {
	return validation.Validate(&id, ruleSensorID)
}

// equipmentID reads an optional equipment id ("" when absent).
func (q *queryParams) equipmentID() string {
	v, ok := q.lookup("equipmentId")
	if !ok {
		return ""
	}
	if err := validateEquipmentID(v); err != nil {
		q.fail("equipmentId", err.Error())
		return ""
	}
	return v
}

// validateEquipmentID checks an id against the contract's rules.
func validateEquipmentID(id string) error {
	return validation.Validate(id, ruleRequired, ruleIDLength, ruleIDPattern)
}
