package redisstream_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/redisstream"
	"github.com/production-line-monitor/plm/ports"
)

// folder is a ports.RollupFolder that fails its first calls.
type folder struct {
	mu        sync.Mutex
	failFirst int
	calls     int
	folded    int
}

func (f *folder) FoldRollups(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.failFirst {
		return 0, ports.ErrUnavailable
	}
	f.folded++
	return 1, nil
}

func (f *folder) counts() (calls, folded int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.folded
}

// Commits are told to the aggregation worker by coalesced notices; it folds on each and
// acknowledges a notice only once its fold succeeded.
func TestIntegrationAggregatorFoldsOnNotice(t *testing.T) {
	c, names := setup(t, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := &folder{failFirst: 2}
	n, err := redisstream.NewNotifier(c, names, 20*time.Millisecond, log)
	if err != nil {
		t.Fatal(err)
	}
	a := redisstream.NewAggregator(c, names, f, "agg-1", time.Second, log)
	for _, s := range []interface {
		Start(context.Context) error
		Stop(context.Context) error
	}{n, a} {
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
	}

	time.Sleep(100 * time.Millisecond)
	if calls, _ := f.counts(); calls != 0 {
		t.Fatalf("%d folds without any commit", calls)
	}
	for range 50 { // many commits at once: one notice
		n.Poke()
	}
	waitFor(t, "a fold after its failures", func() bool { _, folded := f.counts(); return folded >= 1 })
	// One notice, unless a slow machine let the pokes straddle the coalescing interval.
	waitFor(t, "the notices acknowledged", func() bool {
		groups, err := c.XInfoGroups(context.Background(), names.Stored()).Result()
		_, folded := f.counts()
		return err == nil && len(groups) == 1 && groups[0].Pending == 0 && groups[0].EntriesRead == int64(folded)
	})
	if calls, folded := f.counts(); folded < 1 || folded > 2 || calls != folded+2 {
		t.Errorf("%d fold calls, %d folds; want the notice folded after two failures", calls, folded)
	}
}
