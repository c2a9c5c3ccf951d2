package watermill_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/production-line-monitor/plm/adapters/watermill"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

func TestCodecRoundTrip(t *testing.T) {
	r1, _ := sensor.NewReading("a", "press-01", sensor.Vibration, "", -0.25, "mm/s", t0.Add(123456*time.Nanosecond), t0.Add(time.Second))
	r2, _ := sensor.NewReading("b", "press-02", sensor.Voltage, "", 0, "", t0, t0)
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

func TestCodecCarriesSensorIDsAndDeclaredTypes(t *testing.T) {
	r1, _ := sensor.NewReading("a", "pump-01", sensor.Vibration, "bearing-de", 0.5, "mm/s", t0, t0.Add(time.Second))
	r2, _ := sensor.NewReading("b", "pump-01", "flow", "flow-1", 42, "m3/h", t0, t0)
	r3, _ := sensor.NewReading("c", "pump-01", "flow", "", 41, "m3/h", t0, t0)
	in := ports.ReadingsReceived{Readings: []sensor.Reading{r1, r2, r3}}
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
	if _, err := watermill.Marshal("m-2", ports.ReadingsReceived{Readings: []sensor.Reading{{ID: "x", EquipmentID: "e", Type: "Bad Type"}}}); err == nil {
		t.Error("Marshal encoded a malformed sensor type")
	}
}

// A message queued by an earlier version, in the binary format without sensor ids, is read:
// 0x02, one reading: id "a", equipment "e", type 2 (pressure), value 1.5, unit "bar", its
// timestamp and receipt at 1 s and 2 s past the epoch, plus 7 ns.
func TestUnmarshalReadsTheEarlierBinaryFormat(t *testing.T) {
	payload := []byte{0x02, 1, 1, 'a', 1, 'e', 2, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 3, 'b', 'a', 'r', 2, 7, 4, 7}
	got, err := watermill.Unmarshal(message.NewMessage("m", payload))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := sensor.NewReading("a", "e", sensor.Pressure, "", 1.5, "bar", time.Unix(1, 7), time.Unix(2, 7))
	if !reflect.DeepEqual(got.Readings, []sensor.Reading{want}) {
		t.Fatalf("read %+v, want %+v", got.Readings, want)
	}
	// The earlier format knows no declared type.
	payload[6] = 0xff
	if _, err := watermill.Unmarshal(message.NewMessage("m", payload)); err == nil {
		t.Error("the earlier format read a type by name")
	}
}

func TestUnmarshalRefusesBadMessages(t *testing.T) {
	for name, payload := range map[string]string{
		"not json":         `{`,
		"bad sensor type":  `{"readings":[{"id":"a","equipmentId":"e","sensorType":"Humidity","value":1,"timestamp":"2026-11-27T08:00:00Z","receivedAt":"2026-11-27T08:00:00Z"}]}`,
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

func TestBatchCarriesEveryReadingInOrder(t *testing.T) {
	var msgs []*message.Message
	var want []sensor.Reading
	for i := range 3 {
		var rs []sensor.Reading
		for j := range i + 1 {
			r, _ := sensor.NewReading(fmt.Sprintf("r%d-%d", i, j), "press-01", sensor.Pressure, "", float64(i*10+j), "", t0, t0)
			rs = append(rs, r)
		}
		want = append(want, rs...)
		m, err := watermill.Marshal(fmt.Sprintf("m-%d", i), ports.ReadingsReceived{Readings: rs})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	b := watermill.NewBatch(msgs)
	if n := watermill.BatchSize(b); n != 3 {
		t.Errorf("BatchSize = %d, want 3", n)
	}
	if n := watermill.BatchSize(msgs[0]); n != 1 {
		t.Errorf("BatchSize of a plain message = %d, want 1", n)
	}
	got, err := watermill.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Readings, want) {
		t.Fatalf("batch gave\n%+v\nwant\n%+v", got.Readings, want)
	}
}

func TestBatchWithAnUnreadableMessageIsRefusedWhole(t *testing.T) {
	good, err := watermill.Marshal("m-1", ports.ReadingsReceived{})
	if err != nil {
		t.Fatal(err)
	}
	unreadable := message.NewMessage("m-2", nil)
	unreadable.Metadata.Set(watermill.MetadataUndecodable, "not a Watermill message")
	for name, m := range map[string]*message.Message{
		"marked undecodable": unreadable,
		"not json":           message.NewMessage("m-3", []byte(`{"readings": [`)),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := watermill.Unmarshal(watermill.NewBatch([]*message.Message{good, m})); err == nil {
				t.Error("a batch with an unreadable message was decoded")
			}
			if _, err := watermill.Unmarshal(m); err == nil {
				t.Error("the unreadable message alone was decoded")
			}
		})
	}
}

// Messages queued by earlier versions, in JSON, are still read.
func TestJSONMessagesAreStillRead(t *testing.T) {
	payload := `{"readings":[{"id":"a","equipmentId":"press-01","sensorType":"vibration","value":-0.25,"unit":"mm/s",` +
		`"timestamp":"2026-11-27T08:00:00.000123456Z","receivedAt":"2026-11-27T08:00:01Z"}]}`
	got, err := watermill.Unmarshal(message.NewMessage("old", []byte(payload)))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := sensor.NewReading("a", "press-01", sensor.Vibration, "", -0.25, "mm/s",
		time.Date(2026, 11, 27, 8, 0, 0, 123456, time.UTC), time.Date(2026, 11, 27, 8, 0, 1, 0, time.UTC))
	if !reflect.DeepEqual(got.Readings, []sensor.Reading{want}) {
		t.Fatalf("got %+v\nwant %+v", got.Readings, want)
	}
	// And in a batch beside a binary one.
	m2, _ := watermill.Marshal("new", ports.ReadingsReceived{Readings: []sensor.Reading{want}})
	b, err := watermill.Unmarshal(watermill.NewBatch([]*message.Message{message.NewMessage("old", []byte(payload)), m2}))
	if err != nil || len(b.Readings) != 2 || !reflect.DeepEqual(b.Readings[0], b.Readings[1]) {
		t.Fatalf("mixed batch: %v %+v", err, b.Readings)
	}
}

// Every cut of a binary payload is refused, without a panic; so is a byte too many.
func TestTruncatedBinaryPayloadsAreRefused(t *testing.T) {
	r, _ := sensor.NewReading("id-1", "press-01", sensor.Pressure, "", 4.5, "bar", t0, t0.Add(time.Millisecond))
	msg, err := watermill.Marshal("m", ports.ReadingsReceived{Readings: []sensor.Reading{r, r}})
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(msg.Payload) {
		if _, err := watermill.Unmarshal(message.NewMessage("m", msg.Payload[:n])); err == nil {
			t.Fatalf("a payload cut to %d of %d bytes was accepted", n, len(msg.Payload))
		}
	}
	if _, err := watermill.Unmarshal(message.NewMessage("m", append(msg.Payload, 0))); err == nil {
		t.Fatal("a payload with a byte too many was accepted")
	}
}

// Times far from the Unix epoch survive the binary format, as they do JSON.
func TestBinaryFormatKeepsEveryTime(t *testing.T) {
	for _, ts := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(1200, 5, 6, 7, 8, 9, 999999999, time.UTC),
		time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	} {
		r, err := sensor.NewReading("x", "e", sensor.Voltage, "", 230, "", ts, ts)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := watermill.Marshal("m", ports.ReadingsReceived{Readings: []sensor.Reading{r}})
		got, err := watermill.Unmarshal(msg)
		if err != nil || !got.Readings[0].Timestamp.Equal(ts) || !got.Readings[0].ReceivedAt.Equal(ts) {
			t.Fatalf("%s came back as %+v (%v)", ts, got, err)
		}
	}
}
