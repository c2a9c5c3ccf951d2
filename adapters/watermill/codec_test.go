package watermill_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/production-line-monitor/plm/adapters/watermill"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

func TestCodecRoundTrip(t *testing.T) {
	r1, _ := sensor.NewReading("a", "press-01", sensor.Vibration, -0.25, "mm/s", t0.Add(123456*time.Nanosecond), t0.Add(time.Second))
	r2, _ := sensor.NewReading("b", "press-02", sensor.Voltage, 0, "", t0, t0)
	in := ports.ReadingsReceived{Readings: []sensor.Reading{r1, r2}}
	msg, err := watermill.Marshal("m-1", in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := watermill.Unmarshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the event:\n in %+v\nout %+v", in, out)
	}
}

func TestUnmarshalRefusesBadMessages(t *testing.T) {
	for name, payload := range map[string]string{
		"not json":         `{`,
		"bad sensor type":  `{"readings":[{"id":"a","equipmentId":"e","sensorType":"humidity","value":1,"timestamp":"2026-11-27T08:00:00Z","receivedAt":"2026-11-27T08:00:00Z"}]}`,
		"no receipt time":  `{"readings":[{"id":"a","equipmentId":"e","sensorType":"voltage","value":1,"timestamp":"2026-11-27T08:00:00Z"}]}`,
		"bad equipment id": `{"readings":[{"id":"a","equipmentId":"-e","sensorType":"voltage","value":1,"timestamp":"2026-11-27T08:00:00Z","receivedAt":"2026-11-27T08:00:00Z"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := watermill.Unmarshal(message.NewMessage("m", []byte(payload))); err == nil {
				t.Fatal("accepted a bad message")
			}
		})
	}
}
