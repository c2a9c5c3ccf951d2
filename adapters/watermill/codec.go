// Package watermill carries accepted readings from the webhook to the processing use case
// over Watermill: the in-process GoChannel here, Redis Streams in production.
package watermill

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// TopicReadingsReceived is the topic of ports.ReadingsReceived events.
const TopicReadingsReceived = "plm.readings.received"

// wireReading is a reading as it travels in a message. The field names are a stored format:
// messages queued by one version are read by the next, so never rename them.
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

// Marshal encodes an event as a message with a new id.
func Marshal(uuid string, e ports.ReadingsReceived) (*message.Message, error) {
	w := wireEvent{Readings: make([]wireReading, len(e.Readings))}
	for i, r := range e.Readings {
		w.Readings[i] = wireReading{ID: r.ID, EquipmentID: r.EquipmentID, SensorType: string(r.Type),
			Value: r.Value, Unit: r.Unit, Timestamp: r.Timestamp, ReceivedAt: r.ReceivedAt}
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode readings: %w", err)
	}
	return message.NewMessage(uuid, payload), nil
}

// Metadata of messages that a subscriber builds.
const (
	// MetadataBatch, on a message made by NewBatch, is how many messages it carries.
	MetadataBatch = "plm_batch"
	// MetadataUndecodable marks a message that its subscriber could not read, with why.
	MetadataUndecodable = "plm_undecodable"
)

// NewBatch makes one message of several queued ones, in order: its payload is the JSON
// array of their payloads, and Unmarshal gives all their readings, in order.
func NewBatch(msgs []*message.Message) *message.Message {
	payload := []byte{'['}
	for i, m := range msgs {
		if i > 0 {
			payload = append(payload, ',')
		}
		if m.Metadata.Get(MetadataUndecodable) != "" || len(m.Payload) == 0 {
			payload = append(payload, "null"...) // fails the decoding of the whole batch
			continue
		}
		payload = append(payload, m.Payload...)
	}
	payload = append(payload, ']')
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
	var w wireEvent
	if BatchSize(msg) > 1 {
		var events []*wireEvent
		if err := json.Unmarshal(msg.Payload, &events); err != nil {
			return ports.ReadingsReceived{}, fmt.Errorf("decode batch %s: %w", msg.UUID, err)
		}
		for i, e := range events {
			if e == nil {
				return ports.ReadingsReceived{}, fmt.Errorf("decode batch %s: message %d is not an event", msg.UUID, i)
			}
			w.Readings = append(w.Readings, e.Readings...)
		}
	} else if err := json.Unmarshal(msg.Payload, &w); err != nil {
		return ports.ReadingsReceived{}, fmt.Errorf("decode message %s: %w", msg.UUID, err)
	}
	e := ports.ReadingsReceived{Readings: make([]sensor.Reading, len(w.Readings))}
	for i, r := range w.Readings {
		rd, err := sensor.NewReading(r.ID, r.EquipmentID, sensor.Type(r.SensorType), r.Value, r.Unit, r.Timestamp, r.ReceivedAt)
		if err != nil {
			return ports.ReadingsReceived{}, fmt.Errorf("decode message %s reading %d: %w", msg.UUID, i, err)
		}
		e.Readings[i] = rd
	}
	return e, nil
}
