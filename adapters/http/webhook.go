package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	validation "github.com/go-ozzo/ozzo-validation/v4"
	"github.com/gofiber/fiber/v2"

	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// rawReading holds a reading's fields as they were sent, so that each is decoded on its own
// and a field of the wrong JSON type is reported by name. Unknown fields are ignored.
type rawReading struct {
	EquipmentID json.RawMessage `json:"equipmentId"`
	SensorType  json.RawMessage `json:"sensorType"`
	Value       json.RawMessage `json:"value"`
	Unit        json.RawMessage `json:"unit"`
	Timestamp   json.RawMessage `json:"timestamp"`
	ReadingID   json.RawMessage `json:"readingId"`
	SensorID    json.RawMessage `json:"sensorId"`
}

func (r rawReading) empty() bool {
	return r.EquipmentID == nil && r.SensorType == nil && r.Value == nil &&
		r.Unit == nil && r.Timestamp == nil && r.ReadingID == nil && r.SensorID == nil
}

// webhookBody is either one reading (its fields at the top level) or a batch.
type webhookBody struct {
	Readings json.RawMessage `json:"readings"`
	rawReading
}

// readingRequest is one reading with its fields of the right JSON types, to be validated.
// Absent and null fields are zero; Value and Timestamp are nil when absent.
type readingRequest struct {
	EquipmentID string   `json:"equipmentId"`
	SensorType  string   `json:"sensorType"`
	Value       *float64 `json:"value"`
	Unit        string   `json:"unit"`
	Timestamp   *string  `json:"timestamp"`
	ReadingID   string   `json:"readingId"`
	SensorID    *string  `json:"sensorId"` // nil when absent or null

	now   time.Time    // the time of receipt, which bounds Timestamp
	types *sensorTypes // the types accepted
}

var (
	ruleRequired  = validation.Required.Error("is required")
	ruleNotNil    = validation.NotNil.Error("is required")
	ruleIDLength  = validation.Length(1, sensor.MaxEquipmentIDLen).Error(fmt.Sprintf("must be 1 to %d characters long", sensor.MaxEquipmentIDLen))
	ruleIDPattern = validation.By(func(v any) error {
		if s, ok := v.(string); ok && s != "" && len(s) <= sensor.MaxEquipmentIDLen && !sensor.ValidEquipmentID(s) {
			return errBadIDPattern
		}
		return nil
	})
	ruleSensorID = validation.By(func(v any) error {
		p, _ := v.(*string)
		switch {
		case p == nil:
			return nil
		case *p == "" || len(*p) > sensor.MaxEquipmentIDLen:
			return fmt.Errorf("must be 1 to %d characters long", sensor.MaxEquipmentIDLen)
		case !sensor.ValidEquipmentID(*p):
			return errBadIDPattern
		}
		return nil
	})
	ruleUnit      = validation.Length(0, sensor.MaxUnitLen).Error(fmt.Sprintf("must be at most %d bytes long", sensor.MaxUnitLen))
	ruleReadingID = validation.Length(0, sensor.MaxReadingIDLen).Error(fmt.Sprintf("must be at most %d bytes long", sensor.MaxReadingIDLen))
	ruleNoNUL     = validation.By(func(v any) error {
		if s, ok := v.(string); ok && strings.ContainsRune(s, 0) {
			return errors.New("must not contain a NUL character")
		}
		return nil
	})
	ruleFinite = validation.By(func(v any) error {
		if f, ok := v.(*float64); ok && f != nil && (math.IsInf(*f, 0) || math.IsNaN(*f)) {
			return errors.New("must be a finite number")
		}
		return nil
	})
)

// Validate checks the reading against the contract's rules.
func (r readingRequest) Validate() error {
	return validation.ValidateStruct(&r,
		validation.Field(&r.EquipmentID, ruleRequired, ruleIDLength, ruleIDPattern),
		validation.Field(&r.SensorType, ruleRequired, validation.By(r.checkType)),
		validation.Field(&r.SensorID, ruleSensorID),
		validation.Field(&r.Value, ruleNotNil, ruleFinite),
		validation.Field(&r.Unit, ruleUnit, ruleNoNUL),
		validation.Field(&r.Timestamp, validation.By(r.checkTimestamp)),
		validation.Field(&r.ReadingID, ruleReadingID, ruleNoNUL),
	)
}

func (r readingRequest) checkType(any) error {
	if _, ok := r.types.parse(r.SensorType); r.SensorType != "" && !ok {
		return errors.New(r.types.message)
	}
	return nil
}

func (r readingRequest) checkTimestamp(any) error {
	if r.Timestamp == nil {
		return nil
	}
	ts, err := parseTime(*r.Timestamp)
	switch {
	case err != nil:
		return err
	case ts.IsZero():
		return errors.New("must be later than 0001-01-01T00:00:00Z")
	case ts.Sub(r.now) > command.MaxFutureSkew:
		return errTooFarAhead
	}
	return nil
}

var errBadIDPattern = errors.New("must start with a letter or digit and hold only letters, digits, '.', '_', ':' or '-'")

var errTooFarAhead = fmt.Errorf("must be at most %d minutes in the future", command.MaxFutureSkew/time.Minute)

// input turns a valid request into the use case's input.
func (r readingRequest) input() command.ReadingInput {
	in := command.ReadingInput{
		ReadingID:   r.ReadingID,
		EquipmentID: r.EquipmentID,
		SensorType:  sensor.Type(r.SensorType),
		Value:       *r.Value,
		Unit:        r.Unit,
	}
	if r.SensorID != nil {
		in.SensorID = *r.SensorID
	}
	if r.Timestamp != nil {
		in.Timestamp, _ = parseTime(*r.Timestamp) // checked by Validate
	}
	return in
}

// ingestReadings is POST /webhook/sensor-data.
func (h *handlers) ingestReadings(c *fiber.Ctx) error {
	now := h.clock.Now()
	inputs, single, ok := decodeValid(c.Request().Body(), now, h.types)
	var err error
	if !ok {
		inputs, single, err = decodeReadings(c.Request().Body(), now, h.types)
	}
	if err != nil {
		var rb *rejectedBatch
		if errors.As(err, &rb) {
			h.metrics.readings.WithLabelValues(outcomeRejected).Add(float64(rb.readings))
		}
		return err
	}
	n, err := h.app.Commands.IngestReadings.Handle(c.UserContext(), command.IngestReadings{Readings: inputs})
	if err != nil {
		var ve *ports.ValidationError
		switch {
		case errors.As(err, &ve):
			h.metrics.readings.WithLabelValues(outcomeRejected).Add(float64(len(inputs)))
			if single {
				for i := range ve.Violations {
					ve.Violations[i].Field = singleField(ve.Violations[i].Field)
				}
			}
		case errors.Is(err, ports.ErrUnavailable):
			h.metrics.readings.WithLabelValues(outcomeUnavailable).Add(float64(len(inputs)))
		}
		return err
	}
	h.metrics.readings.WithLabelValues(outcomeAccepted).Add(float64(n))
	return c.Status(fiber.StatusAccepted).JSON(acceptedResponse{Accepted: n}, mimeJSON)
}

type acceptedResponse struct {
	Accepted int `json:"accepted"`
}

// singleField names a field of the only reading of a request as the caller sent it.
func singleField(f string) string {
	const first = "readings[0]"
	if rest, ok := strings.CutPrefix(f, first); ok {
		if rest == "" {
			return "body"
		}
		return strings.TrimPrefix(rest, ".")
	}
	return f
}

// decodeReadings parses a webhook body: one reading, or {"readings": [...]}. single says
// which. Errors are *apiError (malformed_json) or *ports.ValidationError naming every field
// that breaks a rule, of every reading.
func decodeReadings(body []byte, now time.Time, types *sensorTypes) (inputs []command.ReadingInput, single bool, err error) {
	var env webhookBody
	if err := decodeObject(body, &env); err != nil {
		return nil, false, err
	}
	if field, ok := repeatedField(body); ok {
		return nil, false, malformedJSON("a field is given more than once", detail{Field: field, Message: "is given more than once"})
	}
	var (
		raws   []rawReading
		prefix func(i int) string
	)
	switch {
	case env.Readings == nil:
		single = true
		raws = []rawReading{env.rawReading}
		prefix = func(int) string { return "" }
	case !env.rawReading.empty():
		return nil, false, malformedJSON(`a body is either one reading or {"readings": [...]}, not both`)
	default:
		if raws, err = decodeBatch(env.Readings); err != nil {
			return nil, false, err
		}
		prefix = func(i int) string { return "readings[" + strconv.Itoa(i) + "]." }
	}

	reqs := make([]readingRequest, len(raws))
	var typeErrs []detail
	for i, raw := range raws {
		reqs[i], typeErrs = raw.decode(prefix(i), typeErrs)
		reqs[i].now, reqs[i].types = now, types
	}
	if len(typeErrs) > 0 {
		return nil, single, malformedJSON(fieldCount(len(typeErrs))+" of the wrong JSON type", typeErrs...)
	}

	var violations []ports.Violation
	for i := range reqs {
		if violations, err = appendViolations(violations, prefix(i), reqs[i].Validate()); err != nil {
			return nil, single, fmt.Errorf("validate reading %d: %w", i, err)
		}
	}
	if len(violations) > 0 {
		return nil, single, &rejectedBatch{ValidationError: &ports.ValidationError{Violations: violations}, readings: len(reqs)}
	}
	inputs = make([]command.ReadingInput, len(reqs))
	for i := range reqs {
		inputs[i] = reqs[i].input()
	}
	return inputs, single, nil
}

// rejectedBatch is the validation error of a batch, with how many readings it refuses.
type rejectedBatch struct {
	*ports.ValidationError
	readings int
}

func (r *rejectedBatch) Unwrap() error { return r.ValidationError }

func fieldCount(n int) string {
	if n == 1 {
		return "1 field is"
	}
	return strconv.Itoa(n) + " fields are"
}

// decodeBatch splits the readings array, checking its size before decoding any reading.
func decodeBatch(raw json.RawMessage) ([]rawReading, error) {
	if bytes.Equal(raw, []byte("null")) {
		return nil, batchSizeError()
	}
	var items []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, malformedJSON("readings must be an array", detail{Field: "readings", Message: "must be an array"})
	}
	if len(items) == 0 || len(items) > command.MaxBatch {
		return nil, batchSizeError()
	}
	raws := make([]rawReading, len(items))
	var notObjects []detail
	for i, item := range items {
		if item[0] != '{' {
			notObjects = append(notObjects, detail{Field: fmt.Sprintf("readings[%d]", i), Message: "must be an object"})
			continue
		}
		if err := json.Unmarshal(item, &raws[i]); err != nil {
			return nil, fmt.Errorf("decode reading %d: %w", i, err) // cannot happen: the item is a valid object
		}
	}
	if len(notObjects) > 0 {
		return nil, malformedJSON("every reading must be an object", notObjects...)
	}
	return raws, nil
}

func batchSizeError() error {
	return &ports.ValidationError{Violations: []ports.Violation{{
		Field: "readings", Message: fmt.Sprintf("must hold 1 to %d readings", command.MaxBatch)}}}
}

// decode converts the fields to their Go types, appending a detail for each field of the
// wrong JSON type to typeErrs.
func (r rawReading) decode(prefix string, typeErrs []detail) (readingRequest, []detail) {
	var out readingRequest
	str := func(name string, raw json.RawMessage, dst *string) {
		if s, ok := decodeString(raw); ok {
			*dst = s
		} else {
			typeErrs = append(typeErrs, detail{Field: prefix + name, Message: "must be a string"})
		}
	}
	str("equipmentId", r.EquipmentID, &out.EquipmentID)
	str("sensorType", r.SensorType, &out.SensorType)
	str("unit", r.Unit, &out.Unit)
	str("readingId", r.ReadingID, &out.ReadingID)
	if !isNull(r.SensorID) {
		var id string
		str("sensorId", r.SensorID, &id)
		out.SensorID = &id
	}
	if !isNull(r.Timestamp) {
		var ts string
		str("timestamp", r.Timestamp, &ts)
		out.Timestamp = &ts
	}
	if !isNull(r.Value) {
		v, ok := decodeNumber(r.Value)
		if ok {
			out.Value = &v
		} else {
			typeErrs = append(typeErrs, detail{Field: prefix + "value", Message: "must be a number"})
		}
	}
	return out, typeErrs
}

func isNull(raw json.RawMessage) bool {
	return raw == nil || bytes.Equal(raw, []byte("null"))
}

// decodeString decodes a JSON string; absent and null are "". ok is false for another type.
func decodeString(raw json.RawMessage) (s string, ok bool) {
	switch {
	case isNull(raw):
		return "", true
	case raw[0] != '"':
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true // nothing to unescape
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// decodeNumber decodes a JSON number. A number beyond float64's range decodes to ±Inf, for
// validation to refuse as not finite; ok is false for another JSON type.
func decodeNumber(raw json.RawMessage) (float64, bool) {
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return v, true
}

// decodeObject unmarshals a body that must be one JSON object (and nothing after it).
func decodeObject(body []byte, dst any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return malformedJSON("the body is empty; it must be a JSON object")
	}
	if err := json.Unmarshal(body, dst); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return malformedJSON("the body is not valid JSON",
				detail{Field: "body", Message: fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)})
		}
		return malformedJSON("the body must be a JSON object")
	}
	if body[0] != '{' {
		return malformedJSON("the body must be a JSON object")
	}
	return nil
}

// decodeFields is decodeObject for a body of the named fields, which also refuses a field
// given twice: encoding/json would keep the last silently, so that what a proxy in front of the
// service checked need not be what it acts on. Names compare as encoding/json matches them,
// ignoring case.
func decodeFields(body []byte, dst any, names ...string) error {
	if err := decodeObject(body, dst); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // '{', as decodeObject found
		return nil
	}
	seen := make(map[string]bool, len(names))
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := t.(string)
		for _, n := range names {
			if !strings.EqualFold(key, n) {
				continue
			}
			if seen[n] {
				return malformedJSON("a field is given more than once", detail{Field: n, Message: "is given more than once"})
			}
			seen[n] = true
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil
		}
	}
	return nil
}

// appendViolations flattens ozzo's (possibly nested) errors into violations named by prefix
// and json names, sorted by name. Any other error is returned as is.
func appendViolations(out []ports.Violation, prefix string, err error) ([]ports.Violation, error) {
	if err == nil {
		return out, nil
	}
	var errs validation.Errors
	if !errors.As(err, &errs) {
		return out, err
	}
	names := make([]string, 0, len(errs))
	for name := range errs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		e := errs[name]
		var nested validation.Errors
		if errors.As(e, &nested) {
			if out, err = appendViolations(out, prefix+name+".", nested); err != nil {
				return out, err
			}
			continue
		}
		var internal validation.InternalError
		if errors.As(e, &internal) {
			return out, e
		}
		out = append(out, ports.Violation{Field: prefix + name, Message: e.Error()})
	}
	return out, nil
}

// bodyFields are the fields of a webhook body: a reading's, and the batch's readings.
var bodyFields = [...]string{"equipmentId", "sensorType", "value", "unit", "timestamp", "readingId", "readings"}

const fieldReadings = len(bodyFields) - 1

// repeatedField finds a field that one object of a webhook body gives twice: the body's
// own, or a reading's of its readings array. encoding/json would keep the last silently,
// so that what a proxy in front of the service checked need not be what it stores. Names
// compare as encoding/json matches them: unescaped, ignoring case. field is as the error
// details name it. body is valid JSON; anything else is scanned without failing.
func repeatedField(body []byte) (field string, found bool) {
	s := jsonScan{b: body}
	s.space()
	if s.peek() != '{' {
		return "", false
	}
	var inReading string
	repeated := s.object(len(bodyFields), func(f int) {
		if f != fieldReadings || s.peek() != '[' {
			s.skip()
			return
		}
		s.i++
		for i := 0; ; i++ {
			s.space()
			switch s.peek() {
			case ',':
				s.i++
				s.space()
			case ']', 0:
				s.i++
				return
			}
			if s.peek() != '{' {
				s.skip()
				continue
			}
			if r := s.object(fieldReadings, nil); r >= 0 && inReading == "" { // a reading has no readings
				inReading = "readings[" + strconv.Itoa(i) + "]." + bodyFields[r]
			}
		}
	})
	switch {
	case repeated >= 0:
		return bodyFields[repeated], true
	case inReading != "":
		return inReading, true
	}
	return "", false
}

// jsonScan walks JSON text without decoding it.
type jsonScan struct {
	b []byte
	i int
}

// peek is the byte at the position, 0 at the end.
func (s *jsonScan) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScan) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// str moves past the string at the position and returns its text, escapes left in.
func (s *jsonScan) str() []byte {
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch s.b[j] {
		case '\\':
			j++
		case '"':
			s.i = j + 1
			return s.b[start:j]
		}
	}
	s.i = len(s.b)
	return nil
}

// skip moves past the value at the position.
func (s *jsonScan) skip() {
	switch s.peek() {
	case '"':
		s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					s.i++
					return
				}
			}
			s.i++
		}
	default: // a number, true, false or null; at least one byte, so that a scan of what is
		// not JSON moves on too
		for s.i++; s.i < len(s.b); s.i++ {
			switch s.b[s.i] {
			case ',', ':', '}', ']', ' ', '\t', '\r', '\n':
				return
			}
		}
	}
}

// object moves past the object at the position, handing each value to value (which must
// move past it; nil skips it) with the index in bodyFields of its name, -1 for none. It
// returns the index of the first field named twice, -1 for none; only the first fields of
// bodyFields count.
func (s *jsonScan) object(fields int, value func(field int)) (repeated int) {
	repeated = -1
	var seen uint32
	s.i++ // '{'
	for {
		s.space()
		switch s.peek() {
		case '}', 0:
			s.i++
			return repeated
		case ',':
			s.i++
			s.space()
		}
		if s.peek() != '"' {
			s.skip() // not JSON
			continue
		}
		f := fieldNamed(s.str())
		if f >= fields {
			f = -1
		}
		s.space()
		if s.peek() == ':' {
			s.i++
		}
		s.space()
		if f >= 0 {
			if seen&(1<<f) != 0 && repeated < 0 {
				repeated = f
			}
			seen |= 1 << f
		}
		if value != nil {
			value(f)
		} else {
			s.skip()
		}
	}
}

// fieldNamed is the index in bodyFields of the field that encoding/json decodes a key of
// this raw text into, -1 for none.
func fieldNamed(raw []byte) int {
	if bytes.IndexByte(raw, '\\') >= 0 {
		var key string
		if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &key) != nil {
			return -1
		}
		raw = []byte(key)
	}
	for i, name := range bodyFields {
		if string(raw) == name {
			return i
		}
	}
	for i, name := range bodyFieldNames {
		if bytes.EqualFold(raw, name) { // as encoding/json matches names
			return i
		}
	}
	return -1
}

var bodyFieldNames = func() (out [len(bodyFields)][]byte) {
	for i, name := range bodyFields {
		out[i] = []byte(name)
	}
	return out
}()
