// Package watermill carries accepted readings from the webhook to the processing use case
// over Watermill: the in-process GoChannel here, Redis Streams in production.
package watermill

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// TopicReadingsReceived is the topic of ports.ReadingsReceived events.
const TopicReadingsReceived = "plm.readings.received"

// Payloads are in one of three formats, told apart by their first byte:
//
//   - the binary format with sensors (formatSensors), which Marshal writes: a uvarint count
//     of readings, then each reading as its id, equipment id, sensor type, value (IEEE 754
//     bits, little-endian), unit, sensor id, timestamp and time of receipt; strings as a
//     uvarint length and bytes, times as a varint of Unix seconds and a uvarint of
//     nanoseconds; the type as the index of one of the contract's four in sensor.Types, or
//     typeByName and the name of a declared type;
//   - the binary format (formatBinary) of earlier versions: the same without the sensor id,
//     and with the contract's four types only;
//   - JSON ({"readings": [...]}, see wireReading), which earlier versions still wrote.
//
// All are stored formats: messages queued by one version are read by the next.
const (
	formatBinary  byte = 0x02
	formatSensors byte = 0x04
)

// typeByName, in place of a type's index, says that the type's name follows.
const typeByName byte = 0xff

// formatBatch starts the payload of a message made by NewBatch: the payloads of its
// messages, each as a uvarint length and bytes.
const formatBatch byte = 0x03

// wireReading is a reading in the JSON format. Never rename its fields.
type wireReading struct {
	ID          string    `json:"id"`
	EquipmentID string    `json:"equipmentId"`
	SensorType  string    `json:"sensorType"`
	Value       float64   `json:"value"`
	Unit        string    `json:"unit,omitempty"`
	Timestamp   time.Time `json:"timestamp"`
	ReceivedAt  time.Time `json:"receivedAt"`
}

type wireEvent struct {
	Readings []wireReading `json:"readings"`
}

// Marshal encodes an event as a message with a new id, in the binary format.
func Marshal(uuid string, e ports.ReadingsReceived) (*message.Message, error) {
	// Beside its strings, a reading takes at most: three string lengths (ids and units are
	// short: two bytes each), the type, the value, and two times of up to 10 + 5 bytes.
	const fixed = 4*2 + 1 + 8 + 2*(binary.MaxVarintLen64+5)
	size := 1 + binary.MaxVarintLen64
	for _, r := range e.Readings {
		size += len(r.ID) + len(r.EquipmentID) + len(r.Unit) + len(r.SensorID) + fixed
	}
	b := make([]byte, 1, size)
	b[0] = formatSensors
	b = binary.AppendUvarint(b, uint64(len(e.Readings)))
	for _, r := range e.Readings {
		b = appendString(b, r.ID)
		b = appendString(b, r.EquipmentID)
		if typ := slices.Index(sensor.Types, r.Type); typ >= 0 {
			b = append(b, byte(typ))
		} else if sensor.ValidTypeName(string(r.Type)) {
			b = appendString(append(b, typeByName), string(r.Type))
		} else {
			return nil, fmt.Errorf("encode readings: %w %q", sensor.ErrUnknownType, r.Type)
		}
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Value))
		b = appendString(b, r.Unit)
		b = appendString(b, r.SensorID)
		b = appendTime(b, r.Timestamp)
		b = appendTime(b, r.ReceivedAt)
	}
	return message.NewMessage(uuid, b), nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendTime(b []byte, t time.Time) []byte {
	return binary.AppendUvarint(binary.AppendVarint(b, t.Unix()), uint64(t.Nanosecond()))
}

// errTruncated is the error of a binary payload that ends early or holds nonsense.
var errTruncated = errors.New("truncated or malformed binary payload")

// decoder reads the binary format.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) time() time.Time {
	sec, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return time.Time{}
	}
	d.b = d.b[n:]
	nsec := d.uvarint()
	if nsec >= uint64(time.Second) {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errTruncated
	}
	d.b = nil
}

// decodeBinary appends the readings of a binary payload (its format byte removed) to out;
// withSensors tells formatSensors from formatBinary.
func decodeBinary(b []byte, out []sensor.Reading, withSensors bool) ([]sensor.Reading, error) {
	d := decoder{b: b}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(b)) { // every reading takes several bytes
		return out, errTruncated
	}
	for i := range int(n) {
		id, eq := d.str(), d.str()
		var typ sensor.Type
		switch {
		case len(d.b) == 0:
			d.fail()
		case int(d.b[0]) < len(sensor.Types):
			typ = sensor.Types[d.b[0]]
			d.b = d.b[1:]
		case d.b[0] == typeByName && withSensors:
			d.b = d.b[1:]
			if typ = sensor.Type(d.str()); typ == "" {
				typ = "?" // refused below
			}
		default:
			d.b = d.b[1:]
		}
		var value float64
		if len(d.b) < 8 {
			d.fail()
		} else {
			value = math.Float64frombits(binary.LittleEndian.Uint64(d.b))
			d.b = d.b[8:]
		}
		unit := d.str()
		var sensorID string
		if withSensors {
			sensorID = d.str()
		}
		ts, received := d.time(), d.time()
		if d.err != nil {
			return out, d.err
		}
		if typ == "" {
			return out, fmt.Errorf("reading %d: %w", i, sensor.ErrUnknownType)
		}
		r, err := sensor.NewReading(id, eq, typ, sensorID, value, unit, ts, received)
		if err != nil {
			return out, fmt.Errorf("reading %d: %w", i, err)
		}
		out = append(out, r)
	}
	if len(d.b) > 0 {
		return out, errTruncated
	}
	return out, nil
}

// decodeJSON appends the readings of a JSON payload to out.
func decodeJSON(b []byte, out []sensor.Reading) ([]sensor.Reading, error) {
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		return out, err
	}
	for i, r := range w.Readings {
		rd, err := sensor.NewReading(r.ID, r.EquipmentID, sensor.Type(r.SensorType), "", r.Value, r.Unit, r.Timestamp, r.ReceivedAt)
		if err != nil {
			return out, fmt.Errorf("reading %d: %w", i, err)
		}
		out = append(out, rd)
	}
	return out, nil
}

// decodePayload appends the readings of one message's payload, in either format, to out.
func decodePayload(b []byte, out []sensor.Reading) ([]sensor.Reading, error) {
	switch {
	case len(b) == 0:
		return out, errors.New("empty payload")
	case b[0] == formatSensors:
		return decodeBinary(b[1:], out, true)
	case b[0] == formatBinary:
		return decodeBinary(b[1:], out, false)
	}
	return decodeJSON(b, out)
}

// Metadata of messages that a subscriber builds.
const (
	// MetadataBatch, on a message made by NewBatch, is how many messages it carries.
	MetadataBatch = "plm_batch"
	// MetadataUndecodable marks a message that its subscriber could not read, with why.
	MetadataUndecodable = "plm_undecodable"
)

// NewBatch makes one message of several queued ones, in order: its payload holds their
// payloads, and Unmarshal gives all their readings, in order.
func NewBatch(msgs []*message.Message) *message.Message {
	size := 1
	for _, m := range msgs {
		size += binary.MaxVarintLen64 + len(m.Payload)
	}
	payload := append(make([]byte, 0, size), formatBatch)
	for _, m := range msgs {
		if m.Metadata.Get(MetadataUndecodable) != "" {
			payload = binary.AppendUvarint(payload, 0) // fails the decoding of the whole batch
			continue
		}
		payload = binary.AppendUvarint(payload, uint64(len(m.Payload)))
		payload = append(payload, m.Payload...)
	}
	b := message.NewMessage(msgs[0].UUID+"+"+strconv.Itoa(len(msgs)-1), payload)
	b.Metadata.Set(MetadataBatch, strconv.Itoa(len(msgs)))
	return b
}

// BatchSize is how many queued messages msg carries: 1 unless NewBatch made it.
func BatchSize(msg *message.Message) int {
	if n, err := strconv.Atoi(msg.Metadata.Get(MetadataBatch)); err == nil && n > 0 {
		return n
	}
	return 1
}

// Unmarshal decodes a message's event (of a batch, the readings of all its messages, in
// order), re-checking every reading's invariants.
func Unmarshal(msg *message.Message) (ports.ReadingsReceived, error) {
	if why := msg.Metadata.Get(MetadataUndecodable); why != "" {
		return ports.ReadingsReceived{}, fmt.Errorf("decode message %s: %s", msg.UUID, why)
	}
	p := msg.Payload
	if BatchSize(msg) == 1 || len(p) == 0 || p[0] != formatBatch {
		rs, err := decodePayload(p, nil)
		if err != nil {
			return ports.ReadingsReceived{}, fmt.Errorf("decode message %s: %w", msg.UUID, err)
		}
		return ports.ReadingsReceived{Readings: rs}, nil
	}
	d := decoder{b: p[1:]}
	var rs []sensor.Reading
	for i := 0; len(d.b) > 0; i++ {
		n := d.uvarint()
		if d.err != nil || n > uint64(len(d.b)) {
			return ports.ReadingsReceived{}, fmt.Errorf("decode batch %s: message %d: %w", msg.UUID, i, errTruncated)
		}
		var err error
		if rs, err = decodePayload(d.b[:n], rs); err != nil {
			return ports.ReadingsReceived{}, fmt.Errorf("decode batch %s: message %d: %w", msg.UUID, i, err)
		}
		d.b = d.b[n:]
	}
	return ports.ReadingsReceived{Readings: rs}, nil
}
