package bootstrap

import (
	"log/slog"
	"runtime/debug"
	"strings"
)

// SetWorkerMemoryLimit gives a worker process the soft memory limit of cfg, unless the
// GOMEMLIMIT variable (read by the Go runtime itself) is set, and logs the limit in force.
//
// Without a limit the heap of a worker that holds a partition's reads and their decoded
// readings for 16 partitions may grow to twice its live size before a collection (Go's
// GOGC=100), and the process keeps that memory for a while after. At 10,000 sensors the
// live heap stays near 60-110 MB while the resident size peaks at 250-310 MB; with the
// default limit of 200 MiB the peak is about 210 MB at the same rate. The limit is soft:
// a live heap above it is not refused, the collector only runs more often (its share of
// the processor capped by the runtime), so it is set well above the live heap.
func SetWorkerMemoryLimit(cfg Config, getenv func(string) string, log *slog.Logger) {
	if env := strings.TrimSpace(getenv("GOMEMLIMIT")); env != "" {
		log.Info("memory limit", "limit", env, "source", "GOMEMLIMIT")
		return
	}
	if cfg.Queue.MemoryLimit <= 0 {
		return
	}
	debug.SetMemoryLimit(cfg.Queue.MemoryLimit)
	log.Info("memory limit", "limit_bytes", cfg.Queue.MemoryLimit, "source", "PLM_WORKER_MEMORY_LIMIT")
}
