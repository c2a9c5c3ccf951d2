package http

import (
	"strings"

	"github.com/production-line-monitor/plm/domain/rules"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// sensorTypes says which sensor types the service accepts, at the webhook and in queries:
// the contract's four, and those the rules file declares.
type sensorTypes struct {
	declared map[sensor.Type]bool
	message  string // the violation of an unknown type
}

// newSensorTypes reads the declared types of set; the zero Set declares none.
func newSensorTypes(set rules.Set) *sensorTypes {
	st := &sensorTypes{declared: map[sensor.Type]bool{}}
	names := make([]string, 0, len(sensor.Types))
	for _, t := range sensor.Types {
		names = append(names, string(t))
	}
	for _, t := range set.Types() {
		if _, err := sensor.ParseType(string(t)); err != nil && set.Knows(t) {
			st.declared[t] = true
			names = append(names, string(t))
		}
	}
	st.message = "must be one of " + strings.Join(names, ", ")
	return st
}

// fourTypes accepts the contract's four types only.
var fourTypes = newSensorTypes(rules.Set{})

// parse returns the type named s, and whether it is one the service accepts.
func (st *sensorTypes) parse(s string) (sensor.Type, bool) {
	if t, err := sensor.ParseType(s); err == nil {
		return t, true
	}
	t := sensor.Type(s)
	return t, st.declared[t]
}
