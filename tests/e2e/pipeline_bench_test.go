package e2e

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPipelineBatches measures the production pipeline end to end, each part its own
// process as in production: batches of 100 readings POSTed by 16 concurrent clients to
// `plm serve`, queued in Redis Streams, judged and stored in PostgreSQL by `plm worker`
// processes. The time runs until the last reading is stored; it reports readings/s.
//
//	PLM_REQUIRE_SERVICES=1 go test -run '^$' -bench PipelineBatches -benchtime 300x ./tests/e2e/
func BenchmarkPipelineBatches(b *testing.B) {
	benchmarkPipeline(b, 100)
}

// BenchmarkPipelineSingleReadings is BenchmarkPipelineBatches with one reading per request,
// as a machine sends them.
//
//	PLM_REQUIRE_SERVICES=1 go test -run '^$' -bench PipelineSingle -benchtime 20000x ./tests/e2e/
func BenchmarkPipelineSingleReadings(b *testing.B) {
	benchmarkPipeline(b, 1)
}

func benchmarkPipeline(b *testing.B, size int) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			d := newDeployment(b, "", "PLM_LOG_LEVEL=warn", "PLM_PARTITIONS="+partitionsForBench())
			serve := d.run("serve")
			var procs []*process
			for range workers {
				w := d.run("worker")
				waitHeld(b, w, 1)
				procs = append(procs, w)
			}
			const clients = 16
			body := func(n int) string {
				if size == 1 {
					return jsonReading(fmt.Sprintf("line-%03d", n%200), "temperature", fmt.Sprintf("s%d", n),
						70+float64(n%9), time.Now().Add(-time.Hour).Add(time.Duration(n)*time.Millisecond))
				}
				rs := make([]string, size)
				ts := time.Now().Add(-time.Hour)
				for i := range rs {
					rs[i] = jsonReading(fmt.Sprintf("line-%03d", (n*size+i)%200), "temperature",
						fmt.Sprintf("b%d-%d", n, i), 70+float64(i%9), ts.Add(time.Duration(n*size+i)*time.Millisecond))
				}
				return `{"readings":[` + strings.Join(rs, ",") + `]}`
			}
			bodies := make([]string, b.N)
			for n := range bodies {
				bodies[n] = body(n)
			}
			b.ResetTimer()
			start := time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := int(next.Add(1)) - 1; n < b.N; n = int(next.Add(1)) - 1 {
						postJSON(b, serve, bodies[n])
					}
				}()
			}
			wg.Wait()
			accepted := time.Since(start)
			d.waitStored(b.N*size, procs...)
			stored := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N*size)/stored.Seconds(), "readings/s")
			b.ReportMetric(float64(b.N*size)/accepted.Seconds(), "accepted/s")
		})
	}
}

// partitionsForBench is PLM_BENCH_PARTITIONS, or the 8 of the test deployments.
func partitionsForBench() string {
	if p := os.Getenv("PLM_BENCH_PARTITIONS"); p != "" {
		return p
	}
	return "8"
}
