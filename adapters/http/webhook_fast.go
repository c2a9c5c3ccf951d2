package http

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// fastReading is a reading decoded straight into Go types. A field of the wrong JSON type
// fails the decoding, and null leaves a field nil.
type fastReading struct {
	EquipmentID *string  `json:"equipmentId"`
	SensorType  *string  `json:"sensorType"`
	Value       *float64 `json:"value"`
	Unit        *string  `json:"unit"`
	Timestamp   *string  `json:"timestamp"`
	ReadingID   *string  `json:"readingId"`
	SensorID    *string  `json:"sensorId"`
}

func (r *fastReading) empty() bool {
	return r.EquipmentID == nil && r.SensorType == nil && r.Value == nil && r.Unit == nil &&
		r.Timestamp == nil && r.ReadingID == nil && r.SensorID == nil
}

type fastBody struct {
	Readings []fastReading `json:"readings"`
	fastReading
}

// decodeValid is the webhook's fast path: one pass of the JSON decoder and plain checks,
// for the body that breaks no rule, as nearly every body a machine sends. It returns false
// whenever anything is amiss (or merely unusual), and then decodeReadings, which names
// every broken rule, decides: so the fast path never accepts what decodeReadings refuses.
func decodeValid(body []byte, now time.Time, types *sensorTypes) (inputs []command.ReadingInput, single bool, ok bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, false, false
	}
	var b fastBody
	if json.Unmarshal(body, &b) != nil {
		return nil, false, false
	}
	if _, repeated := repeatedField(body); repeated {
		return nil, false, false
	}
	rs := b.Readings
	switch {
	case rs == nil:
		single = true
		rs = []fastReading{b.fastReading}
	case !b.fastReading.empty() || len(rs) == 0 || len(rs) > command.MaxBatch:
		return nil, false, false
	}
	inputs = make([]command.ReadingInput, len(rs))
	for i := range rs {
		in, ok := rs[i].input(now, types)
		if !ok {
			return nil, false, false
		}
		inputs[i] = in
	}
	return inputs, single, true
}

// input checks every rule of readingRequest.Validate, more strictly where that is cheaper
// (lengths in bytes rather than characters).
func (r *fastReading) input(now time.Time, types *sensorTypes) (command.ReadingInput, bool) {
	if r.EquipmentID == nil || !sensor.ValidEquipmentID(*r.EquipmentID) || r.SensorType == nil || r.Value == nil {
		return command.ReadingInput{}, false
	}
	typ, known := types.parse(*r.SensorType)
	if !known || math.IsNaN(*r.Value) || math.IsInf(*r.Value, 0) {
		return command.ReadingInput{}, false
	}
	in := command.ReadingInput{EquipmentID: *r.EquipmentID, SensorType: typ, Value: *r.Value}
	if r.SensorID != nil {
		if !sensor.ValidEquipmentID(*r.SensorID) {
			return command.ReadingInput{}, false
		}
		in.SensorID = *r.SensorID
	}
	if r.Unit != nil {
		if len(*r.Unit) > sensor.MaxUnitLen || strings.IndexByte(*r.Unit, 0) >= 0 || !utf8.ValidString(*r.Unit) {
			return command.ReadingInput{}, false
		}
		in.Unit = *r.Unit
	}
	if r.ReadingID != nil {
		if len(*r.ReadingID) > sensor.MaxReadingIDLen || strings.IndexByte(*r.ReadingID, 0) >= 0 || !utf8.ValidString(*r.ReadingID) {
			return command.ReadingInput{}, false
		}
		in.ReadingID = *r.ReadingID
	}
	if r.Timestamp != nil {
		ts, err := parseTime(*r.Timestamp)
		if err != nil || ts.IsZero() || ts.Sub(now) > command.MaxFutureSkew {
			return command.ReadingInput{}, false
		}
		in.Timestamp = ts
	}
	return in, true
}
