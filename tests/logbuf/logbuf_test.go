package logbuf_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/production-line-monitor/plm/tests/logbuf"
)

func TestConcurrentWritesAreKeptWhole(t *testing.T) {
	var b logbuf.Buffer
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				fmt.Fprintf(&b, "writer %d line %d\n", g, i)
			}
		}()
	}
	wg.Wait()
	lines := b.Lines()
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	if !slices.Contains(lines, "writer 7 line 99") {
		t.Error("a line is missing or torn")
	}
}
