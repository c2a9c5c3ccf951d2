package sensor_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/sensor"
)

func TestParseType(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    sensor.Type
		wantErr bool
	}{
		{"temperature", "temperature", sensor.Temperature, false},
		{"vibration", "vibration", sensor.Vibration, false},
		{"pressure", "pressure", sensor.Pressure, false},
		{"voltage", "voltage", sensor.Voltage, false},
		{"empty", "", "", true},
		{"capitalised", "Temperature", "", true},
		{"upper_case", "VOLTAGE", "", true},
		{"trailing_space", "pressure ", "", true},
		{"unknown", "humidity", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sensor.ParseType(tt.in)
			if got != tt.want {
				t.Errorf("ParseType(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if tt.wantErr != (err != nil) {
				t.Fatalf("ParseType(%q) error = %v, want error: %v", tt.in, err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, sensor.ErrUnknownType) {
				t.Errorf("error %v does not wrap ErrUnknownType", err)
			}
		})
	}
}

func TestTypesListsEveryType(t *testing.T) {
	want := []sensor.Type{sensor.Temperature, sensor.Vibration, sensor.Pressure, sensor.Voltage}
	if len(sensor.Types) != len(want) {
		t.Fatalf("Types = %v, want %v", sensor.Types, want)
	}
	for i, typ := range sensor.Types {
		if typ != want[i] {
			t.Errorf("Types[%d] = %q, want %q", i, typ, want[i])
		}
	}
}

// readingArgs are NewReading's arguments; valid() is a reading that passes every rule.
type readingArgs struct {
	id, equipmentID string
	typ             sensor.Type
	sensorID        string
	value           float64
	unit            string
	ts, receivedAt  time.Time
}

var (
	measured = time.Date(2026, 11, 27, 8, 15, 0, 123e6, time.UTC)
	received = measured.Add(210 * time.Millisecond)
)

func valid() readingArgs {
	return readingArgs{id: "r-1", equipmentID: "press-01", typ: sensor.Temperature, value: 91.2,
		unit: "celsius", ts: measured, receivedAt: received}
}

func (a readingArgs) build() (sensor.Reading, error) {
	return sensor.NewReading(a.id, a.equipmentID, a.typ, a.sensorID, a.value, a.unit, a.ts, a.receivedAt)
}

func TestNewReadingRules(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*readingArgs)
		wantErr error // nil: valid
	}{
		{"valid", func(*readingArgs) {}, nil},

		{"equipment_id_empty", func(a *readingArgs) { a.equipmentID = "" }, sensor.ErrBadEquipmentID},
		{"equipment_id_1_char", func(a *readingArgs) { a.equipmentID = "p" }, nil},
		{"equipment_id_64_chars", func(a *readingArgs) { a.equipmentID = strings.Repeat("a", 64) }, nil},
		{"equipment_id_65_chars", func(a *readingArgs) { a.equipmentID = strings.Repeat("a", 65) }, sensor.ErrBadEquipmentID},
		{"equipment_id_starts_with_digit", func(a *readingArgs) { a.equipmentID = "0press" }, nil},
		{"equipment_id_starts_with_upper", func(a *readingArgs) { a.equipmentID = "Press" }, nil},
		{"equipment_id_every_allowed_char", func(a *readingArgs) { a.equipmentID = "a.b_c:d-E9" }, nil},
		{"equipment_id_starts_with_dot", func(a *readingArgs) { a.equipmentID = ".press" }, sensor.ErrBadEquipmentID},
		{"equipment_id_starts_with_dash", func(a *readingArgs) { a.equipmentID = "-press" }, sensor.ErrBadEquipmentID},
		{"equipment_id_starts_with_underscore", func(a *readingArgs) { a.equipmentID = "_press" }, sensor.ErrBadEquipmentID},
		{"equipment_id_starts_with_colon", func(a *readingArgs) { a.equipmentID = ":press" }, sensor.ErrBadEquipmentID},
		{"equipment_id_space", func(a *readingArgs) { a.equipmentID = "press 01" }, sensor.ErrBadEquipmentID},
		{"equipment_id_slash", func(a *readingArgs) { a.equipmentID = "press/01" }, sensor.ErrBadEquipmentID},
		{"equipment_id_non_ascii", func(a *readingArgs) { a.equipmentID = "presse-é" }, sensor.ErrBadEquipmentID},
		{"equipment_id_trailing_newline", func(a *readingArgs) { a.equipmentID = "press-01\n" }, sensor.ErrBadEquipmentID},

		{"reading_id_empty", func(a *readingArgs) { a.id = "" }, sensor.ErrBadReadingID},
		{"reading_id_64_chars", func(a *readingArgs) { a.id = strings.Repeat("r", 64) }, nil},
		{"reading_id_65_chars", func(a *readingArgs) { a.id = strings.Repeat("r", 65) }, sensor.ErrBadReadingID},
		{"reading_id_64_non_ascii_chars", func(a *readingArgs) { a.id = strings.Repeat("é", 64) }, nil},
		{"reading_id_65_non_ascii_chars", func(a *readingArgs) { a.id = strings.Repeat("é", 65) }, sensor.ErrBadReadingID},

		{"type_empty", func(a *readingArgs) { a.typ = "" }, sensor.ErrUnknownType},
		{"type_malformed", func(a *readingArgs) { a.typ = "Humidity" }, sensor.ErrUnknownType},
		{"type_too_long", func(a *readingArgs) { a.typ = sensor.Type(strings.Repeat("h", 33)) }, sensor.ErrUnknownType},
		{"type_declared_shape", func(a *readingArgs) { a.typ = "humidity" }, nil},

		{"sensor_id_empty", func(a *readingArgs) { a.sensorID = "" }, nil},
		{"sensor_id_64_chars", func(a *readingArgs) { a.sensorID = strings.Repeat("s", 64) }, nil},
		{"sensor_id_65_chars", func(a *readingArgs) { a.sensorID = strings.Repeat("s", 65) }, sensor.ErrBadSensorID},
		{"sensor_id_every_allowed_char", func(a *readingArgs) { a.sensorID = "Bearing.1_a:b-2" }, nil},
		{"sensor_id_starts_with_dash", func(a *readingArgs) { a.sensorID = "-bearing" }, sensor.ErrBadSensorID},
		{"sensor_id_space", func(a *readingArgs) { a.sensorID = "bearing 1" }, sensor.ErrBadSensorID},
		{"type_voltage", func(a *readingArgs) { a.typ = sensor.Voltage }, nil},

		{"value_nan", func(a *readingArgs) { a.value = math.NaN() }, sensor.ErrNonFinite},
		{"value_plus_inf", func(a *readingArgs) { a.value = math.Inf(1) }, sensor.ErrNonFinite},
		{"value_minus_inf", func(a *readingArgs) { a.value = math.Inf(-1) }, sensor.ErrNonFinite},
		{"value_zero", func(a *readingArgs) { a.value = 0 }, nil},
		{"value_negative", func(a *readingArgs) { a.value = -273.15 }, nil},
		{"value_max_float", func(a *readingArgs) { a.value = math.MaxFloat64 }, nil},
		{"value_min_float", func(a *readingArgs) { a.value = -math.MaxFloat64 }, nil},
		{"value_smallest_subnormal", func(a *readingArgs) { a.value = math.SmallestNonzeroFloat64 }, nil},

		{"unit_empty", func(a *readingArgs) { a.unit = "" }, nil},
		{"unit_16_chars", func(a *readingArgs) { a.unit = strings.Repeat("u", 16) }, nil},
		{"unit_17_chars", func(a *readingArgs) { a.unit = strings.Repeat("u", 17) }, sensor.ErrUnitTooLong},
		{"unit_16_chars_non_ascii", func(a *readingArgs) { a.unit = "°C" + strings.Repeat("µ", 14) }, nil},
		{"unit_17_chars_non_ascii", func(a *readingArgs) { a.unit = "°C" + strings.Repeat("µ", 15) }, sensor.ErrUnitTooLong},
		{"unit_with_nul", func(a *readingArgs) { a.unit = "deg\x00C" }, sensor.ErrBadUnit},
		{"reading_id_with_nul", func(a *readingArgs) { a.id = "r\x001" }, sensor.ErrBadReadingID},

		{"timestamp_zero", func(a *readingArgs) { a.ts = time.Time{} }, sensor.ErrMissingTimestamp},
		{"received_at_zero", func(a *readingArgs) { a.receivedAt = time.Time{} }, sensor.ErrMissingTimestamp},
		{"timestamp_unix_epoch", func(a *readingArgs) { a.ts = time.Unix(0, 0) }, nil},
		{"timestamp_after_receipt", func(a *readingArgs) { a.ts = received.Add(time.Hour) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := valid()
			tt.change(&a)
			r, err := a.build()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("NewReading = %v, want no error", err)
				}
				want := sensor.Reading{ID: a.id, EquipmentID: a.equipmentID, Type: a.typ, SensorID: a.sensorID, Value: a.value,
					Unit: a.unit, Timestamp: a.ts.UTC(), ReceivedAt: a.receivedAt.UTC()}
				if !sameReading(r, want) {
					t.Errorf("NewReading = %+v, want %+v", r, want)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewReading error = %v, want %v", err, tt.wantErr)
			}
			if !sameReading(r, sensor.Reading{}) {
				t.Errorf("a refused reading came back non-zero: %+v", r)
			}
		})
	}
}

func sameReading(a, b sensor.Reading) bool {
	return a.ID == b.ID && a.EquipmentID == b.EquipmentID && a.Type == b.Type && a.SensorID == b.SensorID && a.Value == b.Value &&
		a.Unit == b.Unit && a.Timestamp.Equal(b.Timestamp) && a.ReceivedAt.Equal(b.ReceivedAt)
}

func TestNewReadingReportsEveryBrokenRule(t *testing.T) {
	_, err := sensor.NewReading("", "-bad", "Humidity", "bad id", math.NaN(), strings.Repeat("u", 17), time.Time{}, received)
	for _, want := range []error{sensor.ErrBadReadingID, sensor.ErrBadEquipmentID, sensor.ErrUnknownType, sensor.ErrBadSensorID,
		sensor.ErrNonFinite, sensor.ErrUnitTooLong, sensor.ErrMissingTimestamp} {
		if !errors.Is(err, want) {
			t.Errorf("error %q does not report %v", err, want)
		}
	}
}

func TestNewReadingNormalisesToUTC(t *testing.T) {
	tests := []struct {
		name string
		zone *time.Location
	}{
		{"utc", time.UTC},
		{"plus_2", time.FixedZone("EET", 2*3600)},
		{"minus_5_30", time.FixedZone("", -(5*3600 + 1800))},
		{"local", time.Local},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, rec := measured.In(tt.zone), received.In(tt.zone)
			r, err := sensor.NewReading("r-1", "press-01", sensor.Pressure, "", 1, "bar", ts, rec)
			if err != nil {
				t.Fatal(err)
			}
			if r.Timestamp.Location() != time.UTC || r.ReceivedAt.Location() != time.UTC {
				t.Errorf("locations = %v, %v; want UTC", r.Timestamp.Location(), r.ReceivedAt.Location())
			}
			if !r.Timestamp.Equal(measured) || !r.ReceivedAt.Equal(received) {
				t.Errorf("instants changed: %v, %v; want %v, %v", r.Timestamp, r.ReceivedAt, measured, received)
			}
			if r.Timestamp != measured {
				t.Errorf("Timestamp = %#v, want the same value as %#v", r.Timestamp, measured)
			}
		})
	}
}

func TestReadingKey(t *testing.T) {
	r, err := valid().build()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Key(), (sensor.Key{EquipmentID: "press-01", Type: sensor.Temperature}); got != want {
		t.Errorf("Key() = %+v, want %+v", got, want)
	}
}

// ValidEquipmentID is the pattern, byte for byte: checked against the regular expression
// on random strings over the interesting bytes, and on every one-byte id.
func TestValidEquipmentIDMatchesThePattern(t *testing.T) {
	alphabet := []byte("aZ09._:-/ \n\x00é")
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(id string) {
		want := len(id) <= sensor.MaxEquipmentIDLen && sensor.EquipmentIDPattern.MatchString(id)
		if got := sensor.ValidEquipmentID(id); got != want {
			t.Fatalf("ValidEquipmentID(%q) = %v, the pattern says %v", id, got, want)
		}
	}
	for c := range 256 {
		check(string([]byte{byte(c)}))
	}
	for range 100000 {
		b := make([]byte, rng.IntN(sensor.MaxEquipmentIDLen+3))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		check(string(b))
	}
	check("")
	check(strings.Repeat("a", sensor.MaxEquipmentIDLen))
	check(strings.Repeat("a", sensor.MaxEquipmentIDLen+1))
}

func TestASensorIDNamingItsOwnTypeIsTheTypesSensor(t *testing.T) {
	r, err := sensor.NewReading("r-1", "pump-1", sensor.Vibration, "vibration", 1, "", measured, received)
	if err != nil {
		t.Fatal(err)
	}
	if r.SensorID != "" || r.Key() != (sensor.Key{EquipmentID: "pump-1", Type: sensor.Vibration}) {
		t.Errorf("reading = %+v, key %+v; want the sensor kept as its type", r, r.Key())
	}
	other, err := sensor.NewReading("r-2", "pump-1", sensor.Vibration, "bearing-2", 1, "", measured, received)
	if err != nil {
		t.Fatal(err)
	}
	if other.Key() == r.Key() || other.Key().ID() != "bearing-2" || r.Key().ID() != "vibration" {
		t.Errorf("keys %+v and %+v; ids %q, %q", r.Key(), other.Key(), r.Key().ID(), other.Key().ID())
	}
}

func TestMatches(t *testing.T) {
	tests := []struct {
		typ    sensor.Type
		stored string
		id     string
		want   bool
	}{
		{sensor.Temperature, "", "temperature", true},
		{sensor.Temperature, "", "bearing-1", false},
		{sensor.Temperature, "bearing-1", "bearing-1", true},
		{sensor.Temperature, "bearing-1", "temperature", false},
		{sensor.Temperature, "", "vibration", false},
	}
	for _, tt := range tests {
		if got := sensor.Matches(tt.typ, tt.stored, tt.id); got != tt.want {
			t.Errorf("Matches(%s, %q, %q) = %v, want %v", tt.typ, tt.stored, tt.id, got, tt.want)
		}
	}
}

func TestCompareKeys(t *testing.T) {
	in := []sensor.Key{
		{Type: "flow", Sensor: "f-2"}, {Type: sensor.Voltage}, {Type: "current"}, {Type: sensor.Vibration, Sensor: "b"},
		{Type: sensor.Vibration}, {Type: sensor.Temperature}, {Type: sensor.Vibration, Sensor: "a"}, {Type: "flow", Sensor: "f-1"},
	}
	want := []sensor.Key{
		{Type: sensor.Temperature}, {Type: sensor.Vibration}, {Type: sensor.Vibration, Sensor: "a"}, {Type: sensor.Vibration, Sensor: "b"},
		{Type: sensor.Voltage}, {Type: "current"}, {Type: "flow", Sensor: "f-1"}, {Type: "flow", Sensor: "f-2"},
	}
	slices.SortFunc(in, sensor.CompareKeys)
	if !slices.Equal(in, want) {
		t.Errorf("sorted = %v, want %v", in, want)
	}
}
