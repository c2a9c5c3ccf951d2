package redisstream

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/production-line-monitor/plm/ports"
)

// MaxGroupReadings bounds how many readings one group commit carries.
const MaxGroupReadings = 10_000

// GroupCommitters is how many group commits of one worker may run at once; a second one
// starts only when ParallelGroupReadings readings wait (a backlog), since under a light
// load one commit at a time groups more and costs the database less.
const (
	GroupCommitters       = 2
	ParallelGroupReadings = 1_000
)

// groupWriter commits the batches that the partitions of one worker write at the same time
// in one transaction: while a commit runs, the batches that arrive queue up, and the next
// commit takes them all. Under a backlog a second commit runs beside the first, so that the
// database works on two cores; a partition has one batch in flight at most, so two commits
// never carry batches of one partition. Partitions never share an equipment, so their
// batches never touch the same rows. When a group fails, each of its batches is written
// again on its own, so that every caller learns its own outcome (a batch fenced out fails
// alone).
type groupWriter struct {
	next ports.BatchWriter
	reqs chan *writeReq

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

type writeReq struct {
	ctx  context.Context
	b    ports.ProcessedBatch
	done chan error
}

var errWriterStopped = errors.New("batch writer stopped")

func newGroupWriter(next ports.BatchWriter) *groupWriter {
	g := &groupWriter{next: next, reqs: make(chan *writeReq), stop: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

// WriteBatch implements ports.BatchWriter.
func (g *groupWriter) WriteBatch(ctx context.Context, b ports.ProcessedBatch) error {
	r := &writeReq{ctx: ctx, b: b, done: make(chan error, 1)}
	select {
	case g.reqs <- r:
	case <-g.stop:
		return errWriterStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-r.done
}

// Close stops the writer once the commits in progress have ended.
func (g *groupWriter) Close() {
	g.stopOnce.Do(func() { close(g.stop) })
	<-g.done
}

// run queues the batches and starts the commits. Stopping, it commits what it queued
// before it returns.
func (g *groupWriter) run() {
	defer close(g.done)
	var (
		pending  []*writeReq
		readings int // in pending
		inFlight int
		reqs     = g.reqs
		stop     = g.stop
	)
	finished := make(chan struct{})
	for {
		if len(pending) > 0 && inFlight < GroupCommitters &&
			(inFlight == 0 || readings >= ParallelGroupReadings || reqs == nil) {
			n, size := 0, 0
			for n < len(pending) && (n == 0 || size+len(pending[n].b.Readings) <= MaxGroupReadings) {
				size += len(pending[n].b.Readings)
				n++
			}
			group := pending[:n:n]
			pending, readings = pending[n:], readings-size
			inFlight++
			go func() { g.commit(group); finished <- struct{}{} }()
			continue
		}
		if reqs == nil && inFlight == 0 && len(pending) == 0 {
			return
		}
		select {
		case r := <-reqs:
			pending = append(pending, r)
			readings += len(r.b.Readings)
		case <-finished:
			inFlight--
		case <-stop:
			reqs, stop = nil, nil // take no more; commit what is queued
		}
	}
}

func (g *groupWriter) commit(group []*writeReq) {
	// A caller going away must not cut short a commit that carries other callers' batches.
	ctx := context.WithoutCancel(group[0].ctx)
	if len(group) == 1 {
		group[0].done <- g.next.WriteBatch(ctx, group[0].b)
		return
	}
	var merged ports.ProcessedBatch
	for _, r := range group {
		merged.Readings = append(merged.Readings, r.b.Readings...)
		merged.Anomalies = append(merged.Anomalies, r.b.Anomalies...)
		merged.Sightings = append(merged.Sightings, r.b.Sightings...)
		merged.Sessions = append(merged.Sessions, r.b.Sessions...)
		merged.Alarms = append(merged.Alarms, r.b.Alarms...)
		merged.Events = append(merged.Events, r.b.Events...)
		merged.Fences = append(merged.Fences, r.b.Fences...)
	}
	if err := g.next.WriteBatch(ctx, merged); err == nil {
		for _, r := range group {
			r.done <- nil
		}
		return
	}
	for _, r := range group {
		r.done <- g.next.WriteBatch(ctx, r.b)
	}
}

// partitionWriter is what the processing use case of one partition writes through: it
// fences every batch with the partition's epoch and, once a batch is committed, keeps the
// live state of its equipment in Redis and tells the aggregation worker.
type partitionWriter struct {
	next   ports.BatchWriter
	fence  ports.Fence
	live   ports.LiveStore // may be nil
	notify func()
	log    *slog.Logger
}

// WriteBatch implements ports.BatchWriter.
func (w partitionWriter) WriteBatch(ctx context.Context, b ports.ProcessedBatch) error {
	b.Fences = append(b.Fences[:len(b.Fences):len(b.Fences)], w.fence)
	if err := w.next.WriteBatch(ctx, b); err != nil {
		return err
	}
	w.notify()
	if w.live == nil {
		return nil
	}
	// The batch is committed: the live state is a cache of it, and a failure to update it
	// only delays what the status shows until the next batch of the equipment. Both updates
	// go at once (rueidis pipelines them): one round trip, not two.
	beat := make(chan error, 1)
	go func() { beat <- w.live.Beat(ctx, b.Sightings) }()
	if err := w.live.Record(ctx, b.Readings); err != nil {
		w.log.Warn("keep latest readings", "partition", w.fence.Partition, "error", err)
	}
	if err := <-beat; err != nil {
		w.log.Warn("keep heartbeats", "partition", w.fence.Partition, "error", err)
	}
	return nil
}
