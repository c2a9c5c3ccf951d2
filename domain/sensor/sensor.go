// Package sensor holds the sensor reading, the unit of data a machine sends.
package sensor

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is the kind of quantity a sensor measures. Its value is the wire and storage form.
type Type string

// The sensor types the service accepts.
const (
	Temperature Type = "temperature"
	Vibration   Type = "vibration"
	Pressure    Type = "pressure"
	Voltage     Type = "voltage"
)

// Types lists every valid Type in a stable order.
var Types = []Type{Temperature, Vibration, Pressure, Voltage}

// ErrUnknownType is returned by ParseType for a name that is not a sensor type.
var ErrUnknownType = errors.New("unknown sensor type")

// ParseType turns a wire name into a Type.
func ParseType(s string) (Type, error) {
	switch t := Type(s); t {
	case Temperature, Vibration, Pressure, Voltage:
		return t, nil
	}
	return "", fmt.Errorf("%w %q", ErrUnknownType, s)
}

// MaxTypeNameLen is the longest name of a sensor type.
const MaxTypeNameLen = 32

// TypeNameRule says what ValidTypeName accepts.
const TypeNameRule = "1 to 32 lowercase letters, digits, '_' or '-', starting with a letter"

// ValidTypeName reports whether s can name a sensor type: the contract's four, and the types
// a rules file declares beyond them.
func ValidTypeName(s string) bool {
	if len(s) == 0 || len(s) > MaxTypeNameLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Limits of a reading's fields.
const (
	MaxEquipmentIDLen = 64
	MaxUnitLen        = 16
	MaxReadingIDLen   = 64
)

// EquipmentIDPattern is the shape of an equipment identifier; ValidEquipmentID checks it.
var EquipmentIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

// ValidEquipmentID reports whether id is an equipment identifier: 1 to MaxEquipmentIDLen
// bytes of EquipmentIDPattern. It checks each byte, without the regular expression's cost.
func ValidEquipmentID(id string) bool {
	if len(id) == 0 || len(id) > MaxEquipmentIDLen || !alphanumeric(id[0]) {
		return false
	}
	for i := 1; i < len(id); i++ {
		if c := id[i]; !alphanumeric(c) && c != '.' && c != '_' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

func alphanumeric(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// Errors returned by NewReading.
var (
	ErrNonFinite        = errors.New("value is not a finite number")
	ErrBadEquipmentID   = errors.New("equipment id is malformed")
	ErrBadReadingID     = errors.New("reading id is malformed")
	ErrBadSensorID      = errors.New("sensor id is malformed")
	ErrUnitTooLong      = errors.New("unit is too long")
	ErrBadUnit          = errors.New("unit holds a NUL character")
	ErrMissingTimestamp = errors.New("timestamp is missing")
)

// Reading is one value measured by one sensor of one piece of equipment.
//
// ID identifies the reading within its equipment: the same (EquipmentID, ID) is stored once.
// Timestamp is when the machine measured it; ReceivedAt is when the service received it.
type Reading struct {
	ID          string
	EquipmentID string
	Type        Type
	SensorID    string // the sensor within its equipment; empty: the sensor is its type
	Value       float64
	Unit        string
	Timestamp   time.Time
	ReceivedAt  time.Time
}

// Key names the sensor a reading belongs to. Sensor is the sensor's id within its equipment;
// empty, the sensor is its type (the equipment's one sensor of that type).
type Key struct {
	EquipmentID string
	Type        Type
	Sensor      string
}

// ID is the sensor's id within its equipment: Sensor, or its type when Sensor is empty.
func (k Key) ID() string { return IDOf(k.Type, k.Sensor) }

// IDOf is the id of the sensor of type t named sensorID within its equipment: sensorID, or
// the type's name when sensorID is empty.
func IDOf(t Type, sensorID string) string {
	if sensorID == "" {
		return string(t)
	}
	return sensorID
}

// Matches reports whether a sensor of type t stored with sensorID (empty: the sensor is its
// type) is the sensor a query names id.
func Matches(t Type, sensorID, id string) bool {
	return sensorID == id || sensorID == "" && string(t) == id
}

// CompareKeys orders the sensors of one equipment as answers list them: the contract's types
// in the order of Types, then declared types by name; of one type, the sensor that is its type
// first, then by sensor id.
func CompareKeys(a, b Key) int {
	if a.Type != b.Type {
		ia, ib := typeRank(a.Type), typeRank(b.Type)
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(string(a.Type), string(b.Type))
	}
	return strings.Compare(a.Sensor, b.Sensor)
}

func typeRank(t Type) int {
	for i, c := range Types {
		if c == t {
			return i
		}
	}
	return len(Types)
}

// NormalSensorID is the form in which a reading's sensor id is kept: empty when the sensor is
// its type, whether the id was left out or names the type itself.
func NormalSensorID(t Type, sensorID string) string {
	if sensorID == string(t) {
		return ""
	}
	return sensorID
}

// Key returns the sensor the reading came from.
func (r Reading) Key() Key { return Key{EquipmentID: r.EquipmentID, Type: r.Type, Sensor: r.SensorID} }

// NewReading builds a Reading and checks its invariants. When several are broken, the error
// joins one error per broken invariant, each matching its Err… with errors.Is. Lengths of the
// reading id and the unit count characters, as the contract states them.
//
// typ must be a well-formed type name (ValidTypeName): whether the service knows the type, one
// of the contract's four or a declared one, is for the caller to decide. sensorID is empty or
// an id of the equipment id's shape; one that names typ itself is kept empty (NormalSensorID).
func NewReading(id, equipmentID string, typ Type, sensorID string, value float64, unit string, ts, receivedAt time.Time) (Reading, error) {
	var errs []error
	if !ValidEquipmentID(equipmentID) {
		errs = append(errs, fmt.Errorf("%w: %q", ErrBadEquipmentID, equipmentID))
	}
	// NUL is no text: storage refuses it, so it is refused here.
	if len(id) == 0 || utf8.RuneCountInString(id) > MaxReadingIDLen || strings.ContainsRune(id, 0) {
		errs = append(errs, fmt.Errorf("%w: %q", ErrBadReadingID, id))
	}
	if !ValidTypeName(string(typ)) {
		errs = append(errs, fmt.Errorf("%w %q", ErrUnknownType, typ))
	}
	if sensorID != "" && !ValidEquipmentID(sensorID) {
		errs = append(errs, fmt.Errorf("%w: %q", ErrBadSensorID, sensorID))
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		errs = append(errs, ErrNonFinite)
	}
	if utf8.RuneCountInString(unit) > MaxUnitLen {
		errs = append(errs, ErrUnitTooLong)
	}
	if strings.ContainsRune(unit, 0) {
		errs = append(errs, ErrBadUnit)
	}
	if ts.IsZero() || receivedAt.IsZero() {
		errs = append(errs, ErrMissingTimestamp)
	}
	if len(errs) > 0 {
		return Reading{}, errors.Join(errs...)
	}
	return Reading{
		ID: id, EquipmentID: equipmentID, Type: typ, SensorID: NormalSensorID(typ, sensorID), Value: value, Unit: unit,
		Timestamp: ts.UTC(), ReceivedAt: receivedAt.UTC(),
	}, nil
}
