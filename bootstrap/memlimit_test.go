package bootstrap_test

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"

	"github.com/production-line-monitor/plm/bootstrap"
)

func TestWorkerMemoryLimitSizes(t *testing.T) {
	for v, want := range map[string]int64{
		"200MiB": 200 << 20, "1GiB": 1 << 30, "64KiB": 64 << 10, "2TiB": 2 << 40, "5000000B": 5_000_000,
		"123456789": 123456789, "off": 0, "OFF": 0,
	} {
		cfg, err := bootstrap.LoadConfig(env(map[string]string{"PLM_WORKER_MEMORY_LIMIT": v}))
		if err != nil || cfg.Queue.MemoryLimit != want {
			t.Errorf("%q: limit %d, error %v; want %d", v, cfg.Queue.MemoryLimit, err, want)
		}
	}
	for _, v := range []string{"0", "-1MiB", "1.5GiB", "200MB", "MiB", "9999999999TiB", "lots"} {
		if _, err := bootstrap.LoadConfig(env(map[string]string{"PLM_WORKER_MEMORY_LIMIT": v})); err == nil {
			t.Errorf("%q was taken", v)
		}
	}
}

func TestSetWorkerMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg, err := bootstrap.LoadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}

	debug.SetMemoryLimit(before)
	bootstrap.SetWorkerMemoryLimit(cfg, env(nil), log)
	if got := debug.SetMemoryLimit(-1); got != 200<<20 {
		t.Errorf("default limit = %d, want 200 MiB", got)
	}

	debug.SetMemoryLimit(before)
	bootstrap.SetWorkerMemoryLimit(cfg, env(map[string]string{"GOMEMLIMIT": "1GiB"}), log)
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("with GOMEMLIMIT set the limit became %d, want it left at %d", got, before)
	}

	cfg.Queue.MemoryLimit = 0 // off
	bootstrap.SetWorkerMemoryLimit(cfg, env(nil), log)
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("with the limit off it became %d, want it left at %d", got, before)
	}
}
