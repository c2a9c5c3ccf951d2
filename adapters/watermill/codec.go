// Package watermill carries accepted readings from the webhook to the processing use case
// over Watermill: the in-process GoChannel here, Redis Streams in production.
package watermill

import (
	"encoding/json"
	"fmt"
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

// Unmarshal decodes a message's event, re-checking every reading's invariants.
func Unmarshal(msg *message.Message) (ports.ReadingsReceived, error) {
	var w wireEvent
	if err := json.Unmarshal(msg.Payload, &w); err != nil {
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
