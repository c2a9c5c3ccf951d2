package http

import (
	"reflect"
	"testing"
	"time"
)

var fastNow = time.Date(2026, 11, 27, 8, 15, 0, 0, time.UTC)

// webhookBodies are bodies the fast path must get right: valid ones it should take, and
// every kind of bad one, which it must leave to decodeReadings.
var webhookBodies = []string{
	`{"equipmentId":"press-01","sensorType":"temperature","value":71.5,"unit":"celsius","timestamp":"2026-11-27T08:14:00.250Z","readingId":"r-1"}`,
	`{"equipmentId":"press-01","sensorType":"vibration","value":-3}`,
	`  {"readings":[{"equipmentId":"a","sensorType":"pressure","value":1e3},{"equipmentId":"b.c:d_e-f","sensorType":"voltage","value":0,"unit":""}]}  `,
	`{"readings":[{"equipmentId":"a","sensorType":"pressure","value":1,"readingId":"x"},{"equipmentId":"a","sensorType":"pressure","value":1,"readingId":"x"}]}`,
	`{"equipmentId":"pump-01","sensorType":"vibration","sensorId":"bearing-de","value":1.5}`,
	`{"equipmentId":"pump-01","sensorType":"vibration","sensorId":null,"value":1.5}`,
	`{"equipmentId":"pump-01","sensorType":"vibration","sensorId":"","value":1.5}`,
	`{"equipmentId":"pump-01","sensorType":"vibration","sensorId":"bearing de","value":1.5}`,
	`{"equipmentId":"pump-01","sensorType":"vibration","sensorId":7,"value":1.5}`,
	`{"equipmentId":"press-01","sensorType":"temperature","value":"71"}`,
	`{"equipmentId":"press-01","sensorType":"temperature","value":null}`,
	`{"equipmentId":"press-01","sensorType":"humidity","value":1}`,
	`{"equipmentId":"-press","sensorType":"temperature","value":1}`,
	`{"equipmentId":"","sensorType":"temperature","value":1}`,
	`{"equipmentId":"p","sensorType":"temperature","value":1e999}`,
	`{"equipmentId":"p","sensorType":"temperature","value":1,"unit":"abcdefghijklmnopq"}`,
	`{"equipmentId":"p","sensorType":"temperature","value":1,"unit":"ééééééééé"}`,
	`{"equipmentId":"p","sensorType":"temperature","value":1,"unit":"a\u0000b"}`,
	`{"equipmentId":"p","sensorType":"temperature","value":1,"timestamp":"2026-11-27T08:25:00Z"}`,
	`{"equipmentId":"p","sensorType":"temperature","value":1,"timestamp":"yesterday"}`,
	`{"equipmentId":"p","sensorType":"temperature","value":1,"timestamp":"0001-01-01T00:00:00Z"}`,
	`{"equipmentId":"p","sensorType":"temperature","value":1,"Value":2,"EQUIPMENTID":"q"}`,
	`{"equipmentId":"p","sensorType":"temperature","value":1,"readings":[{"equipmentId":"p","sensorType":"temperature","value":1}]}`,
	`{"readings":[]}`, `{"readings":null}`, `{"readings":{}}`, `{"readings":[1]}`, `null`, `[]`, `{}`, ``,
	`{"equipmentId":"p","sensorType":"temperature","value":1} x`,
	`{"equipmentId":"p\ud800","sensorType":"temperature","value":1}`,
}

// The fast path accepts only what decodeReadings accepts, and makes the same inputs of it.
func checkFastPath(t *testing.T, body []byte) {
	fast, fastSingle, ok := decodeValid(body, fastNow, fourTypes)
	if !ok {
		return
	}
	slow, slowSingle, err := decodeReadings(body, fastNow, fourTypes)
	if err != nil {
		t.Fatalf("the fast path took %q, which decodeReadings refuses: %v", body, err)
	}
	if !reflect.DeepEqual(fast, slow) || fastSingle != slowSingle {
		t.Fatalf("for %q the fast path made\n%+v (single %v)\ndecodeReadings made\n%+v (single %v)",
			body, fast, fastSingle, slow, slowSingle)
	}
}

func TestFastPathAgreesWithTheRules(t *testing.T) {
	taken := 0
	for _, b := range webhookBodies {
		checkFastPath(t, []byte(b))
		if _, _, ok := decodeValid([]byte(b), fastNow, fourTypes); ok {
			taken++
		}
	}
	// The valid ones: the first six. The one with keys in other cases gives value and
	// equipmentId twice (encoding/json matches names case-insensitively), which both paths
	// refuse.
	if taken != 6 {
		t.Errorf("the fast path took %d of the bodies, want the 6 valid ones", taken)
	}
}

func FuzzFastPathAgreesWithTheRules(f *testing.F) {
	for _, b := range webhookBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(checkFastPath)
}
