package http_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	plmhttp "github.com/production-line-monitor/plm/adapters/http"
	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/domain/event"
)

// BenchmarkStreamFanOut measures one process's GET /stream serving many clients over
// loopback: each iteration appends 10 status changes to the log and waits until every client
// has read all of them. It reports the deliveries (events × clients) per second.
//
//	go test -run '^$' -bench StreamFanOut -benchtime 200x ./adapters/http/
func BenchmarkStreamFanOut(b *testing.B) {
	for _, n := range []int{10, 200, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchmarkFanOut(b, n) })
	}
}

func benchmarkFanOut(b *testing.B, clients int) {
	log := memory.NewEventLog(0, time.Now)
	store, clock := memory.NewStore(), memory.NewClock(t0)
	srv, err := plmhttp.NewServer(plmhttp.Deps{
		Config: plmhttp.Config{Addr: "127.0.0.1:0", APIKeys: []string{"read:" + readKey}, StreamMaxClients: clients},
		App:    newApplication(store, clock, &memory.Publisher{}), Clock: clock,
		Limiter: memory.NewRateLimiter(0, time.Minute, clock.Now), Registry: prometheus.NewRegistry(),
		Logger: slog.New(slog.DiscardHandler), EventLog: log,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		stop, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		_ = srv.Stop(stop)
	}()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	received := make([]atomic.Int64, clients)
	for i := range clients {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.Addr()+"/stream", nil)
		req.Header.Set("X-API-Key", readKey)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("client %d: %v %v", i, err, resp)
		}
		go func() {
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if bytes.HasPrefix(sc.Bytes(), []byte("event: ")) {
					received[i].Add(1)
				}
			}
		}()
	}
	var appended int64
	appendAndWait := func(k int) {
		batch := make([]event.Event, k)
		for j := range batch {
			appended++
			batch[j] = statusEvent(fmt.Sprint(appended), "press-01")
		}
		if err := log.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for i := range received {
			for received[i].Load() < appended {
				if time.Now().After(deadline) {
					b.Fatalf("client %d has %d of %d events", i, received[i].Load(), appended)
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	appendAndWait(1) // every client is subscribed once it has the first event
	b.ResetTimer()
	for range b.N {
		appendAndWait(10)
	}
	b.ReportMetric(float64(clients*10*b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
