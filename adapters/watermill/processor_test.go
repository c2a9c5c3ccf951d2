package watermill_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/adapters/watermill"
	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/tests/logbuf"
)

// The processor's log lines name the message they are about: at debug level for each
// message handled, at warn level for a failure.
func TestProcessorLogLinesNameTheMessage(t *testing.T) {
	store := memory.NewStore()
	h := command.NewProcessReadingsHandler(store, store, store, memory.NewClock(t0), &memory.IDs{},
		anomaly.DefaultConfig, equipment.DefaultRules)
	var logs logbuf.Buffer
	p, err := watermill.NewProcessor(h, prometheus.NewRegistry(),
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ok, err := watermill.Marshal("msg-ok", event("press-01", 70))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(ok); err != nil {
		t.Fatal(err)
	}
	store.SetErr(errors.New("storage refuses"))
	failing, err := watermill.Marshal("msg-failing", event("press-01", 71))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(failing); err == nil {
		t.Fatal("the failing message was handled")
	}
	for _, want := range []string{"level=DEBUG msg=\"message processed\" component=processor message_id=msg-ok",
		"level=WARN msg=\"process readings\" component=processor message_id=msg-failing"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no line %q in\n%s", want, logs.String())
		}
	}
}
