package simulator_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/sensor"
)

// fakeService answers the webhook and the queries the checks read, judging readings with
// the real detector. It can lose readings and refuse requests, for the checks to notice.
type fakeService struct {
	t            *testing.T
	key          string
	loseEvery    int // drop every n-th reading accepted (0: none)
	refuseEvery  int // answer 503 to every n-th request (0: none)
	offlineAfter time.Duration

	mu       sync.Mutex
	requests int
	received int
	stored   map[string]int
	alerts   map[string][]map[string]any
	lastSeen map[string]time.Time
	detector *anomaly.Detector
}

func newFakeService(t *testing.T) (*fakeService, *httptest.Server) {
	f := &fakeService{t: t, key: "a-key-for-the-tests", offlineAfter: time.Second,
		stored: map[string]int{}, alerts: map[string][]map[string]any{}, lastSeen: map[string]time.Time{},
		detector: anomaly.NewDetector(anomaly.DefaultConfig)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook/sensor-data", f.webhook)
	mux.HandleFunc("GET /metrics/production", f.production)
	mux.HandleFunc("GET /alerts/history", f.alertHistory)
	mux.HandleFunc("GET /equipment/{id}/status", f.status)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1.048576e+07\n"+
			"# TYPE plm_detection_latency_seconds histogram\nplm_detection_latency_seconds_bucket{le=\"0.001\"} 0\n"+
			"plm_detection_latency_seconds_bucket{le=\"+Inf\"} 0\nplm_detection_latency_seconds_sum 0\nplm_detection_latency_seconds_count 0\n")
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != f.key {
			http.Error(w, `{"code":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

type wireReading struct {
	EquipmentID string      `json:"equipmentId"`
	SensorType  sensor.Type `json:"sensorType"`
	Value       float64     `json:"value"`
	Unit        string      `json:"unit"`
	Timestamp   time.Time   `json:"timestamp"`
	ReadingID   string      `json:"readingId"`
}

func (f *fakeService) webhook(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Readings []wireReading `json:"readings"`
		wireReading
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.t.Errorf("webhook body: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rs := body.Readings
	if rs == nil {
		rs = []wireReading{body.wireReading}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if f.refuseEvery > 0 && f.requests%f.refuseEvery == 0 {
		http.Error(w, `{"code":"unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	for _, rd := range rs {
		f.received++
		f.lastSeen[rd.EquipmentID] = time.Now()
		if f.loseEvery > 0 && f.received%f.loseEvery == 0 {
			continue
		}
		f.stored[rd.EquipmentID]++
		v := f.detector.Judge(sensor.Key{EquipmentID: rd.EquipmentID, Type: rd.SensorType}, rd.Value)
		if v.Anomalous {
			f.alerts[rd.EquipmentID] = append(f.alerts[rd.EquipmentID], map[string]any{
				"equipmentId": rd.EquipmentID, "sensorType": rd.SensorType, "severity": v.Severity,
				"timestamp": rd.Timestamp.Format("2006-01-02T15:04:05.000Z07:00")})
		}
	}
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"accepted":%d}`, len(rs))
}

func (f *fakeService) production(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fmt.Fprintf(w, `{"eventsProcessed":{"total":%d}}`, f.stored[r.URL.Query().Get("equipmentId")])
}

func (f *fakeService) alertHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	size, _ := strconv.Atoi(q.Get("pageSize"))
	f.mu.Lock()
	defer f.mu.Unlock()
	all := f.alerts[q.Get("equipmentId")]
	sort.SliceStable(all, func(i, j int) bool { return all[i]["timestamp"].(string) < all[j]["timestamp"].(string) })
	lo, hi := min((page-1)*size, len(all)), min(page*size, len(all))
	_ = json.NewEncoder(w).Encode(map[string]any{"data": all[lo:hi],
		"pagination": map[string]int{"totalPages": (len(all) + size - 1) / size}})
}

func (f *fakeService) status(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	status := "ONLINE"
	if time.Since(f.lastSeen[r.PathValue("id")]) > f.offlineAfter {
		status = "OFFLINE"
	}
	fmt.Fprintf(w, `{"status":%q}`, status)
}

func (f *fakeService) counts() (requests, received int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests, f.received
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
