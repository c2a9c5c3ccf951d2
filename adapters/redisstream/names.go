// Package redisstream is the production pipeline: Watermill over Redis Streams between the
// webhook and the workers, with the readings queue split into partitions so that several
// worker processes share the work while each sensor's readings are judged in order.
package redisstream

import (
	"fmt"
	"hash/fnv"
)

// Consumer groups. They are stored in Redis: renaming one would re-consume every queued
// message.
const (
	GroupProcess   = "process_readings"
	GroupAggregate = "aggregate_rollups"
)

// Names derives the streams of one deployment from its prefix.
type Names struct {
	Prefix     string // e.g. "plm"
	Partitions int    // how many readings streams; the same in every process of a deployment
}

// Readings is the stream of partition p.
func (n Names) Readings(p int) string { return fmt.Sprintf("%s:readings:%d", n.Prefix, p) }

// Poison is the dead-letter stream: messages that failed every retry.
func (n Names) Poison() string { return n.Prefix + ":readings:poison" }

// Stored is the stream of notices that readings were committed, read by the aggregation
// worker.
func (n Names) Stored() string { return n.Prefix + ":readings:stored" }

// Partition is the partition that carries the readings of an equipment: every reading of
// one equipment (hence of each of its sensors) travels through the same stream.
func Partition(equipmentID string, partitions int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(equipmentID))
	return int(h.Sum32() % uint32(partitions))
}
