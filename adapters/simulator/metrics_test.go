package simulator

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// The watcher measures memory growth from the first reading after the warm-up to the last,
// and keeps the peak in between.
func TestWatcherMeasuresMemoryFromTheWarmUpToTheEnd(t *testing.T) {
	var rss atomic.Int64
	rss.Store(50 << 20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %d\n"+
			"# TYPE plm_detection_latency_seconds histogram\nplm_detection_latency_seconds_bucket{le=\"+Inf\"} 0\n"+
			"plm_detection_latency_seconds_sum 0\nplm_detection_latency_seconds_count 0\n", rss.Load())
	}))
	defer srv.Close()
	ctx := context.Background()
	w, err := StartWatch(ctx, []string{srv.URL}, nil, "", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	seen := func(what string, f func(RSS) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			w.mu.Lock()
			r := w.rss[srv.URL]
			w.mu.Unlock()
			if f(r) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("never saw %s: %+v", what, r)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	rss.Store(300 << 20) // a start-up peak, before the warm-up ends
	seen("the peak", func(r RSS) bool { return r.Peak == 300<<20 })
	rss.Store(100 << 20)
	seen("a reading after the warm-up", func(r RSS) bool { return r.WarmedUp != 0 })
	rss.Store(125 << 20)
	watch, err := w.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := watch.RSS[srv.URL]
	if got.WarmedUp != 100<<20 || got.End != 125<<20 || got.Peak != 300<<20 {
		t.Fatalf("RSS %+v, want warmed up 100 MiB, end 125 MiB, peak 300 MiB", got)
	}
	if g := got.Growth(); g != 0.25 {
		t.Fatalf("growth %v, want 0.25", g)
	}
}
