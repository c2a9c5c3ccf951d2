package command_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// receipt is when the ingest tests' clock stands.
var receipt = time.Date(2026, 11, 27, 8, 15, 0, 123e6, time.UTC)

type ingestFixture struct {
	clock     *memory.Clock
	publisher *memory.Publisher
	handler   *command.IngestReadingsHandler
}

func newIngest() ingestFixture {
	f := ingestFixture{clock: memory.NewClock(receipt), publisher: &memory.Publisher{}}
	f.handler = command.NewIngestReadingsHandler(f.publisher, f.clock, &memory.IDs{})
	return f
}

func goodInput(i int) command.ReadingInput {
	return command.ReadingInput{ReadingID: fmt.Sprintf("r-%d", i), EquipmentID: "press-01",
		SensorType: sensor.Temperature, Value: 70 + float64(i%5), Unit: "celsius", Timestamp: receipt.Add(-time.Second)}
}

func goodBatch(n int) []command.ReadingInput {
	out := make([]command.ReadingInput, n)
	for i := range out {
		out[i] = goodInput(i)
	}
	return out
}

// asValidation returns the violations of a *ports.ValidationError, failing the test for
// any other error.
func asValidation(t *testing.T, err error) []ports.Violation {
	t.Helper()
	var ve *ports.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v, want a *ports.ValidationError", err)
	}
	return ve.Violations
}

func TestIngestReadingsDefaults(t *testing.T) {
	f := newIngest()
	n, err := f.handler.Handle(context.Background(), command.IngestReadings{Readings: []command.ReadingInput{
		{EquipmentID: "press-01", SensorType: sensor.Vibration, Value: 0.4},
		{EquipmentID: "press-01", SensorType: sensor.Vibration, Value: 0.5},
	}})
	if err != nil || n != 2 {
		t.Fatalf("Handle = %d, %v; want 2, nil", n, err)
	}
	events := f.publisher.Events()
	if len(events) != 1 || len(events[0].Readings) != 2 {
		t.Fatalf("published %+v, want one event of 2 readings", events)
	}
	a, b := events[0].Readings[0], events[0].Readings[1]
	if a.ID == "" || b.ID == "" || a.ID == b.ID {
		t.Errorf("generated ids %q, %q; want distinct non-empty ids", a.ID, b.ID)
	}
	for _, r := range events[0].Readings {
		if !r.Timestamp.Equal(receipt) || !r.ReceivedAt.Equal(receipt) {
			t.Errorf("reading %s: timestamp %v, received %v; want both the receipt time %v", r.ID, r.Timestamp, r.ReceivedAt, receipt)
		}
	}
}

func TestIngestReadingsKeepsGivenFields(t *testing.T) {
	f := newIngest()
	measured := time.Date(2026, 11, 27, 9, 14, 0, 0, time.FixedZone("CET", 3600)) // 08:14 UTC
	in := command.ReadingInput{ReadingID: "client-7", EquipmentID: "press-01", SensorType: sensor.Pressure,
		Value: -1.5, Unit: "bar", Timestamp: measured}
	if _, err := f.handler.Handle(context.Background(), command.IngestReadings{Readings: []command.ReadingInput{in}}); err != nil {
		t.Fatal(err)
	}
	r := f.publisher.Events()[0].Readings[0]
	want := sensor.Reading{ID: "client-7", EquipmentID: "press-01", Type: sensor.Pressure, Value: -1.5, Unit: "bar",
		Timestamp: measured.UTC(), ReceivedAt: receipt}
	if r != want {
		t.Errorf("published %+v\nwant %+v", r, want)
	}
}

func TestIngestReadingsReceiptTimeFromClock(t *testing.T) {
	f := newIngest()
	later := time.Date(2027, 1, 2, 3, 4, 5, 0, time.FixedZone("EST", -5*3600))
	f.clock.Set(later)
	if _, err := f.handler.Handle(context.Background(), command.IngestReadings{Readings: goodBatch(1)}); err != nil {
		t.Fatal(err)
	}
	r := f.publisher.Events()[0].Readings[0]
	if !r.ReceivedAt.Equal(later) || r.ReceivedAt.Location() != time.UTC {
		t.Errorf("ReceivedAt = %v, want %v in UTC", r.ReceivedAt, later)
	}
}

func TestIngestReadingsBatchSize(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"empty_batch", 0, true},
		{"one_reading", 1, false},
		{"1000_readings", 1000, false},
		{"1001_readings", 1001, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newIngest()
			n, err := f.handler.Handle(context.Background(), command.IngestReadings{Readings: goodBatch(tt.size)})
			if tt.wantErr {
				v := asValidation(t, err)
				if len(v) != 1 || v[0].Field != "readings" {
					t.Errorf("violations = %+v, want one about readings", v)
				}
				if n != 0 || len(f.publisher.Events()) != 0 {
					t.Errorf("refused batch: n = %d, %d events published; want 0, 0", n, len(f.publisher.Events()))
				}
				return
			}
			if err != nil || n != tt.size {
				t.Fatalf("Handle = %d, %v; want %d, nil", n, err, tt.size)
			}
			if ev := f.publisher.Events(); len(ev) != 1 || len(ev[0].Readings) != tt.size {
				t.Errorf("published %d events, want one of %d readings", len(ev), tt.size)
			}
		})
	}
}

// TestIngestReadingsBadReadingRefusesBatch: one bad reading at index k refuses the whole
// batch, and the violation names readings[k] and its field.
func TestIngestReadingsBadReadingRefusesBatch(t *testing.T) {
	breakers := []struct {
		name      string
		field     string
		breakWith func(*command.ReadingInput)
	}{
		{"nan_value", "value", func(r *command.ReadingInput) { r.Value = math.NaN() }},
		{"infinite_value", "value", func(r *command.ReadingInput) { r.Value = math.Inf(-1) }},
		{"empty_equipment_id", "equipmentId", func(r *command.ReadingInput) { r.EquipmentID = "" }},
		{"equipment_id_65_chars", "equipmentId", func(r *command.ReadingInput) { r.EquipmentID = strings.Repeat("e", 65) }},
		{"equipment_id_bad_first_char", "equipmentId", func(r *command.ReadingInput) { r.EquipmentID = "-press" }},
		{"unknown_sensor_type", "sensorType", func(r *command.ReadingInput) { r.SensorType = "humidity" }},
		{"unit_17_chars", "unit", func(r *command.ReadingInput) { r.Unit = strings.Repeat("u", 17) }},
		{"reading_id_65_chars", "readingId", func(r *command.ReadingInput) { r.ReadingID = strings.Repeat("r", 65) }},
		{"timestamp_too_far_ahead", "timestamp", func(r *command.ReadingInput) { r.Timestamp = receipt.Add(time.Hour) }},
	}
	for _, b := range breakers {
		for _, k := range []int{0, 1, 499, 999} {
			t.Run(fmt.Sprintf("%s_at_%d", b.name, k), func(t *testing.T) {
				f := newIngest()
				batch := goodBatch(1000)
				b.breakWith(&batch[k])
				n, err := f.handler.Handle(context.Background(), command.IngestReadings{Readings: batch})
				v := asValidation(t, err)
				want := fmt.Sprintf("readings[%d].%s", k, b.field)
				if len(v) != 1 || v[0].Field != want || v[0].Message == "" {
					t.Errorf("violations = %+v, want one on %s", v, want)
				}
				if n != 0 || len(f.publisher.Events()) != 0 {
					t.Errorf("n = %d, %d events published; want nothing accepted", n, len(f.publisher.Events()))
				}
			})
		}
	}
}

func TestIngestReadingsNamesEveryBadField(t *testing.T) {
	f := newIngest()
	batch := goodBatch(5)
	batch[1].Value = math.NaN()
	batch[3].SensorType = ""
	batch[3].Unit = strings.Repeat("u", 20)
	batch[4].Timestamp = receipt.Add(6 * time.Minute)
	batch[4].EquipmentID = ".x"
	_, err := f.handler.Handle(context.Background(), command.IngestReadings{Readings: batch})
	v := asValidation(t, err)
	got := make(map[string]bool)
	for _, x := range v {
		got[x.Field] = true
	}
	want := []string{"readings[1].value", "readings[3].sensorType", "readings[3].unit",
		"readings[4].equipmentId", "readings[4].timestamp"}
	for _, w := range want {
		if !got[w] {
			t.Errorf("violations %+v do not name %s", v, w)
		}
	}
	if len(v) != len(want) {
		t.Errorf("got %d violations, want %d: %+v", len(v), len(want), v)
	}
}

func TestIngestReadingsFutureTimestamp(t *testing.T) {
	tests := []struct {
		name    string
		ts      time.Time
		wantErr bool
	}{
		{"an_hour_ago", receipt.Add(-time.Hour), false},
		{"a_year_ago", receipt.AddDate(-1, 0, 0), false},
		{"exactly_now", receipt, false},
		{"4m59s_ahead", receipt.Add(4*time.Minute + 59*time.Second), false},
		{"exactly_5m_ahead", receipt.Add(5 * time.Minute), false},
		{"5m_plus_1ms_ahead", receipt.Add(5*time.Minute + time.Millisecond), true},
		{"5m_plus_1ms_ahead_other_zone", receipt.Add(5*time.Minute + time.Millisecond).In(time.FixedZone("JST", 9*3600)), true},
		{"a_day_ahead", receipt.Add(24 * time.Hour), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newIngest()
			in := goodInput(0)
			in.Timestamp = tt.ts
			n, err := f.handler.Handle(context.Background(), command.IngestReadings{Readings: []command.ReadingInput{in}})
			if !tt.wantErr {
				if err != nil || n != 1 {
					t.Fatalf("Handle = %d, %v; want 1, nil", n, err)
				}
				if got := f.publisher.Events()[0].Readings[0].Timestamp; !got.Equal(tt.ts) {
					t.Errorf("published timestamp %v, want %v", got, tt.ts)
				}
				return
			}
			v := asValidation(t, err)
			if len(v) != 1 || v[0].Field != "readings[0].timestamp" {
				t.Errorf("violations = %+v, want one on readings[0].timestamp", v)
			}
			if len(f.publisher.Events()) != 0 {
				t.Error("a refused reading was published")
			}
		})
	}
}

func TestIngestReadingsDuplicatesInBatch(t *testing.T) {
	f := newIngest()
	a := goodInput(1)
	dup := a
	dup.Value = 999 // same (equipment, readingId): the first one wins
	otherMachine := a
	otherMachine.EquipmentID = "press-02" // same readingId, other equipment: distinct
	n, err := f.handler.Handle(context.Background(), command.IngestReadings{Readings: []command.ReadingInput{a, dup, otherMachine, dup}})
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("accepted = %d, want the 4 readings sent", n)
	}
	got := f.publisher.Events()[0].Readings
	if len(got) != 2 {
		t.Fatalf("published %d readings, want 2: %+v", len(got), got)
	}
	if got[0].EquipmentID != "press-01" || got[0].ID != a.ReadingID || got[0].Value != a.Value {
		t.Errorf("first published reading = %+v, want the first of the duplicates", got[0])
	}
	if got[1].EquipmentID != "press-02" || got[1].ID != a.ReadingID {
		t.Errorf("second published reading = %+v, want press-02's", got[1])
	}
}

func TestIngestReadingsPublisherError(t *testing.T) {
	f := newIngest()
	queueDown := fmt.Errorf("dial queue: %w", ports.ErrUnavailable)
	f.publisher.Err = queueDown
	n, err := f.handler.Handle(context.Background(), command.IngestReadings{Readings: goodBatch(3)})
	if n != 0 || err == nil {
		t.Fatalf("Handle = %d, %v; want 0 and an error", n, err)
	}
	if !errors.Is(err, queueDown) || !errors.Is(err, ports.ErrUnavailable) {
		t.Errorf("error %v does not wrap the publisher's", err)
	}
	if err.Error() == queueDown.Error() {
		t.Errorf("error %q says nothing of what was being done", err)
	}
	var ve *ports.ValidationError
	if errors.As(err, &ve) {
		t.Errorf("a queue failure came back as a validation error: %v", err)
	}
}

func TestIngestReadingsPassesContext(t *testing.T) {
	type key struct{}
	f := newIngest()
	var seen any
	f.publisher.Deliver = func(ctx context.Context, _ ports.ReadingsReceived) error {
		seen = ctx.Value(key{})
		return nil
	}
	ctx := context.WithValue(context.Background(), key{}, "request-1")
	if _, err := f.handler.Handle(ctx, command.IngestReadings{Readings: goodBatch(1)}); err != nil {
		t.Fatal(err)
	}
	if seen != "request-1" {
		t.Errorf("publisher saw context value %v, want the caller's", seen)
	}
}

func TestIngestReadingsKeepsSensorIDsAndKnowsDeclaredTypes(t *testing.T) {
	f := newIngest()
	declared := func(t sensor.Type) bool { return t == "flow" || t == sensor.Vibration }
	f.handler.WithTypes(declared)
	in := []command.ReadingInput{
		{ReadingID: "a", EquipmentID: "pump-01", SensorType: sensor.Vibration, SensorID: "bearing-de", Value: 0.4},
		{ReadingID: "b", EquipmentID: "pump-01", SensorType: "flow", SensorID: "flow-1", Value: 42, Unit: "m3/h"},
		{ReadingID: "c", EquipmentID: "pump-01", SensorType: sensor.Vibration, SensorID: "vibration", Value: 0.5},
	}
	if n, err := f.handler.Handle(context.Background(), command.IngestReadings{Readings: in}); err != nil || n != 3 {
		t.Fatalf("Handle = %d, %v; want 3, nil", n, err)
	}
	got := f.publisher.Events()[0].Readings
	for i, want := range []string{"bearing-de", "flow-1", ""} {
		if got[i].SensorID != want {
			t.Errorf("reading %d: sensor id %q, want %q", i, got[i].SensorID, want)
		}
	}

	// A type the rules do not declare, and a malformed sensor id, are refused by field.
	_, err := f.handler.Handle(context.Background(), command.IngestReadings{Readings: []command.ReadingInput{
		{EquipmentID: "pump-01", SensorType: sensor.Temperature, Value: 1},
		{EquipmentID: "pump-01", SensorType: sensor.Vibration, SensorID: "bearing de", Value: 1},
	}})
	v := asValidation(t, err)
	if len(v) != 2 || v[0].Field != "readings[0].sensorType" || v[1].Field != "readings[1].sensorId" {
		t.Fatalf("violations = %+v, want readings[0].sensorType and readings[1].sensorId", v)
	}
}
