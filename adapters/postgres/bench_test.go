package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/postgres"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

const (
	benchBatch    = 1000
	benchMachines = 10
)

// benchBatchAt is the n-th batch of the benchmarks: benchBatch readings of benchMachines
// machines, a reading a millisecond, one in a hundred anomalous, with a sighting and a
// session per machine.
func benchBatchAt(b *testing.B, n int) ports.ProcessedBatch {
	batch := ports.ProcessedBatch{Readings: make([]ports.StoredReading, benchBatch)}
	for i := range benchBatch {
		k := n*benchBatch + i
		eq := fmt.Sprintf("press-%02d", i%benchMachines)
		at := t0.Add(time.Duration(k) * time.Millisecond)
		r, err := sensor.NewReading(fmt.Sprintf("r-%d", k), eq, sensor.Types[(i/benchMachines)%len(sensor.Types)], "",
			float64(i%97), "celsius", at, at)
		if err != nil {
			b.Fatal(err)
		}
		batch.Readings[i] = ports.StoredReading{Reading: r, Anomalous: i%100 == 0}
		if i%100 == 0 {
			batch.Anomalies = append(batch.Anomalies, anomaly.Anomaly{ID: fmt.Sprintf("a-%d", k), ReadingID: r.ID,
				EquipmentID: eq, SensorType: r.Type, Value: r.Value, ZScore: 3.5, Mean: 40, StdDev: 10, WindowSize: 100,
				Severity: anomaly.SeverityLow, Timestamp: r.Timestamp, DetectedAt: r.ReceivedAt})
		}
	}
	for m := range benchMachines {
		eq := fmt.Sprintf("press-%02d", m)
		last := batch.Readings[benchBatch-benchMachines+m].ReceivedAt
		batch.Sightings = append(batch.Sightings, ports.Sighting{EquipmentID: eq, LastSeenAt: last})
		batch.Sessions = append(batch.Sessions, equipment.Session{EquipmentID: eq, Start: t0, End: last})
	}
	return batch
}

// benchWrite measures write over fresh tables, one batch of new readings per iteration, the
// batches built before the clock starts.
func benchWrite(b *testing.B, write func(db *postgres.DB, batch ports.ProcessedBatch) error) {
	db := sharedDB(b)
	// Every machine registered, as the writer's sightings would have done.
	if err := postgres.NewBatchWriter(db).WriteBatch(b.Context(), ports.ProcessedBatch{Sightings: benchBatchAt(b, 0).Sightings}); err != nil {
		b.Fatal(err)
	}
	batches := make([]ports.ProcessedBatch, b.N)
	for n := range batches {
		batches[n] = benchBatchAt(b, n)
	}
	b.ResetTimer()
	for n := range b.N {
		if err := write(db, batches[n]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "readings/s")
}

func BenchmarkWriteBatch(b *testing.B) {
	benchWrite(b, func(db *postgres.DB, batch ports.ProcessedBatch) error {
		return postgres.NewBatchWriter(db).WriteBatch(b.Context(), batch)
	})
}

// BenchmarkWriteBatchFenced is BenchmarkWriteBatch with each batch fenced on one partition,
// as the workers write: the cost of holding the partition. Its epoch is taken at the first
// write (one round trip more, of the benchmark's first).
func BenchmarkWriteBatchFenced(b *testing.B) {
	var fence ports.Fence
	benchWrite(b, func(db *postgres.DB, batch ports.ProcessedBatch) error {
		if fence.Epoch == 0 {
			e, err := postgres.NewPartitionFencer(db).AdvanceEpoch(b.Context(), fence.Partition)
			if err != nil {
				return err
			}
			fence.Epoch = e
		}
		batch.Fences = []ports.Fence{fence}
		return postgres.NewBatchWriter(db).WriteBatch(b.Context(), batch)
	})
}

// BenchmarkWriteBatchThroughStaging measures the design the writer did not keep: COPY into a
// temporary table, then INSERT ... SELECT from it.
func BenchmarkWriteBatchThroughStaging(b *testing.B) {
	benchWrite(b, func(db *postgres.DB, batch ports.ProcessedBatch) error {
		return postgres.WriteBatchThroughStaging(b.Context(), db, batch)
	})
}

// BenchmarkRawCopy is the yardstick: COPY of the same readings into the same table, with
// its indexes, and nothing else.
func BenchmarkRawCopy(b *testing.B) {
	benchWrite(b, func(db *postgres.DB, batch ports.ProcessedBatch) error {
		return postgres.CopyReadings(b.Context(), db, batch.Readings)
	})
}
