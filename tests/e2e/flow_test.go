package e2e

import (
	"math"
	"net/url"
	"strings"
	"testing"
	"time"
)

func ms(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// A spike is caught with its evidence, the equipment turns ANOMALY, then OFFLINE once it has
// been silent for more than 30 s; every query endpoint reflects it.
func TestSpikeAnomalyThenOffline(t *testing.T) {
	eachStorage(t, func(t *testing.T, newConfig configFunc) {
		s := start(t, newConfig(nil), t0)

		mustStatus(t, s.post(batch(normal("press-01", 40, t0.Add(-40*time.Second)))), 202)
		r := s.post(reading("press-01", "temperature", 95, t0))
		mustStatus(t, r, 202)
		if got := r.json(t)["accepted"]; got != float64(1) {
			t.Fatalf("accepted = %v, want 1", got)
		}

		alerts := s.get("/alerts/history?equipmentId=press-01")
		mustStatus(t, alerts, 200)
		body := alerts.json(t)
		data := body["data"].([]any)
		if len(data) != 1 {
			t.Fatalf("want 1 alert, got %s", alerts.body)
		}
		a := data[0].(map[string]any)
		if a["value"] != 95.0 || a["severity"] != "CRITICAL" || a["windowSize"] != 40.0 ||
			a["equipmentId"] != "press-01" || a["sensorType"] != "temperature" || a["timestamp"] != ms(t0) {
			t.Fatalf("alert evidence wrong: %v", a)
		}
		if z := a["zScore"].(float64); z < 5 {
			t.Errorf("zScore = %v, want >= 5", z)
		}
		if m := a["mean"].(float64); math.Abs(m-70) > 0.5 {
			t.Errorf("mean = %v, want about 70", m)
		}
		if sd := a["stdDev"].(float64); sd <= 0 || sd > 1 {
			t.Errorf("stdDev = %v, want in (0, 1]", sd)
		}
		if a["detectedAt"] != ms(t0) || a["id"] == "" {
			t.Errorf("detectedAt/id wrong: %v", a)
		}
		pg := body["pagination"].(map[string]any)
		if pg["total"] != 1.0 || pg["page"] != 1.0 || pg["pageSize"] != 50.0 || pg["totalPages"] != 1.0 {
			t.Errorf("pagination = %v", pg)
		}

		st := s.get("/equipment/press-01/status").json(t)
		if st["status"] != "ANOMALY" || st["recentAnomalies"] != 1.0 || st["lastSeenAt"] != ms(t0) {
			t.Fatalf("status = %v", st)
		}
		latest := st["latestReadings"].([]any)
		if len(latest) != 1 || latest[0].(map[string]any)["value"] != 95.0 || latest[0].(map[string]any)["anomalous"] != true {
			t.Fatalf("latestReadings = %v", latest)
		}

		s.clock.Advance(30 * time.Second) // silent for exactly 30 s: not yet offline
		if got := s.get("/equipment/press-01/status").json(t)["status"]; got != "ANOMALY" {
			t.Fatalf("after exactly 30 s status = %v, want ANOMALY", got)
		}
		s.clock.Advance(time.Millisecond)
		st = s.get("/equipment/press-01/status").json(t)
		if st["status"] != "OFFLINE" || st["secondsSinceLastSeen"] != 30.001 {
			t.Fatalf("after 30.001 s status = %v", st)
		}
		list := s.get("/equipment").json(t)["data"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["status"] != "OFFLINE" || list[0].(map[string]any)["id"] != "press-01" {
			t.Fatalf("GET /equipment = %v", list)
		}

		from, to := url.QueryEscape(ms(t0.Add(-time.Hour))), url.QueryEscape(ms(t0.Add(time.Second)))
		raw := s.get("/equipment/press-01/sensor-history?from=" + from + "&to=" + to).json(t)
		points := raw["points"].([]any)
		if raw["aggregation"] != "raw" || len(points) != 41 {
			t.Fatalf("raw history: %d points, %v", len(points), raw["aggregation"])
		}
		if points[0].(map[string]any)["timestamp"] != ms(t0.Add(-40*time.Second)) || points[40].(map[string]any)["value"] != 95.0 {
			t.Fatalf("raw history not ascending: first %v last %v", points[0], points[40])
		}
		avg := s.get("/equipment/press-01/sensor-history?aggregation=avg&interval=1h&sensorType=temperature&from=" + from + "&to=" + to).json(t)
		ap := avg["points"].([]any)
		var count float64
		for _, p := range ap {
			count += p.(map[string]any)["count"].(float64)
			if mx := p.(map[string]any)["max"].(float64); mx > 95 {
				t.Errorf("max %v above any reading", mx)
			}
		}
		if avg["interval"] != "1h" || count != 41 {
			t.Fatalf("avg history: interval %v, %v readings in %d buckets", avg["interval"], count, len(ap))
		}

		mfrom, mto := url.QueryEscape(ms(t0.Add(-2*time.Hour))), url.QueryEscape(ms(t0.Add(time.Hour)))
		m := s.get("/metrics/production?from=" + mfrom + "&to=" + mto).json(t)
		ev := m["eventsProcessed"].(map[string]any)
		an := m["anomalies"].(map[string]any)
		if ev["total"] != 41.0 || an["total"] != 1.0 || an["bySeverity"].(map[string]any)["CRITICAL"] != 1.0 {
			t.Fatalf("metrics = %v", m)
		}
		if rate := m["anomalyRate"].(float64); math.Abs(rate-1.0/41) > 1e-9 {
			t.Errorf("anomalyRate = %v, want 1/41", rate)
		}
		up := m["uptime"].([]any)
		if len(up) != 1 || up[0].(map[string]any)["equipmentId"] != "press-01" {
			t.Fatalf("uptime = %v", up)
		}
		// Every reading was received at t0 (the test clock stood still), so the equipment was
		// online from t0 until t0+30s, the offline threshold; the range ends at the clock
		// (t0+30.001s), since the future does not count.
		wantUp := 100 * 30.0 / (2*3600 + 30.001)
		if got := up[0].(map[string]any)["uptimePercent"].(float64); math.Abs(got-wantUp) > 0.01 {
			t.Errorf("uptimePercent = %v, want %.3f", got, wantUp)
		}
	})
}

// A restart keeps the data and the detection windows: the first reading after it is judged.
func TestRestartKeepsDataAndDetection(t *testing.T) {
	eachStorage(t, func(t *testing.T, newConfig configFunc) {
		cfg := newConfig(nil)
		s := start(t, cfg, t0)
		mustStatus(t, s.post(batch(normal("mill-7", 35, t0.Add(-35*time.Second)))), 202)
		s.stop()

		s = start(t, cfg, t0.Add(time.Second))
		mustStatus(t, s.post(reading("mill-7", "temperature", 120, t0)), 202)
		alerts := s.get("/alerts/history?equipmentId=mill-7").json(t)
		if n := len(alerts["data"].([]any)); n != 1 {
			t.Fatalf("after a restart the spike gave %d alerts, want 1: %v", n, alerts)
		}
		if ws := alerts["data"].([]any)[0].(map[string]any)["windowSize"]; ws != 35.0 {
			t.Errorf("windowSize = %v, want 35 (the readings stored before the restart)", ws)
		}
		from := url.QueryEscape(ms(t0.Add(-time.Hour)))
		to := url.QueryEscape(ms(t0.Add(time.Second)))
		pts := s.get("/equipment/mill-7/sensor-history?from=" + from + "&to=" + to).json(t)["points"].([]any)
		if len(pts) != 36 {
			t.Fatalf("history after restart: %d points, want 36", len(pts))
		}
	})
}

// The same readingId sent twice for the same equipment is stored once.
func TestReadingIDIsIdempotent(t *testing.T) {
	eachStorage(t, func(t *testing.T, newConfig configFunc) {
		s := start(t, newConfig(nil), t0)
		r := reading("kiln-2", "pressure", 3.2, t0)
		r["readingId"] = "r-1"
		for range 3 {
			mustStatus(t, s.post(r), 202)
		}
		other := reading("kiln-3", "pressure", 3.2, t0)
		other["readingId"] = "r-1" // another equipment: another reading
		mustStatus(t, s.post(other), 202)
		m := s.get("/metrics/production?from=" + url.QueryEscape(ms(t0.Add(-time.Hour))) + "&to=" + url.QueryEscape(ms(t0.Add(time.Second)))).json(t)
		if got := m["eventsProcessed"].(map[string]any)["total"]; got != 2.0 {
			t.Fatalf("stored %v readings, want 2", got)
		}
	})
}

func TestEquipmentMetadata(t *testing.T) {
	eachStorage(t, func(t *testing.T, newConfig configFunc) {
		s := start(t, newConfig(nil), t0)
		mustStatus(t, s.get("/equipment/press-09"), 404)
		r := s.do("PUT", "/equipment/press-09", map[string]string{"name": "Press 9", "line": "A", "location": "Hall 2"}, nil)
		mustStatus(t, r, 200)
		e := s.get("/equipment/press-09").json(t)
		if e["name"] != "Press 9" || e["line"] != "A" || e["location"] != "Hall 2" || e["status"] != "OFFLINE" || e["lastSeenAt"] != nil {
			t.Fatalf("equipment = %v", e)
		}
		mustStatus(t, s.post(reading("press-09", "voltage", 230, t0)), 202)
		e = s.get("/equipment/press-09").json(t)
		if e["name"] != "Press 9" || e["status"] != "ONLINE" || e["lastSeenAt"] != ms(t0) {
			t.Fatalf("after a reading: %v", e)
		}
	})
}

func TestOperationsEndpoints(t *testing.T) {
	eachStorage(t, func(t *testing.T, newConfig configFunc) {
		cfg := newConfig(nil)
		s := start(t, cfg, t0)
		noKey := map[string]string{"X-API-Key": ""}
		for _, p := range []string{"/healthz", "/readyz", "/openapi.yaml"} {
			mustStatus(t, s.do("GET", p, nil, noKey), 200)
		}
		if got := s.get("/healthz").json(t)["status"]; got != "ok" {
			t.Errorf("healthz status = %v", got)
		}
		doc := s.do("GET", "/openapi.yaml", nil, noKey)
		for _, want := range []string{"openapi: 3", "/webhook/sensor-data", "/alerts/history", "/metrics/production"} {
			if !strings.Contains(string(doc.body), want) {
				t.Errorf("openapi.yaml lacks %q", want)
			}
		}
		mustStatus(t, s.post(reading("press-01", "vibration", 0.3, t0)), 202)
		mustStatus(t, s.do("GET", "/metrics", nil, noKey), 401)
		prom := s.get("/metrics")
		mustStatus(t, prom, 200)
		want := []string{"plm_readings_processed_total 1", "plm_http_requests_total", "plm_detection_latency_seconds_count 1",
			`plm_webhook_readings_total{outcome="accepted"} 1`, "go_goroutines", "process_resident_memory_bytes"}
		if !cfg.Database.Embedded() {
			want = append(want, `plm_db_pool_connections{state="max"} 10`, "plm_db_pool_acquires_total")
		}
		if !cfg.Queue.Embedded() {
			want = append(want, "plm_queue_length{stream=", "plm_queue_pending{", "plm_queue_lag{", "plm_queue_dead_letters 0",
				"plm_worker_partitions_held 4")
		}
		for _, w := range want {
			if !strings.Contains(string(prom.body), w) {
				t.Errorf("/metrics lacks %q", w)
			}
		}
	})
}
