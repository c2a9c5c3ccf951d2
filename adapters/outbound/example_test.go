package outbound_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/production-line-monitor/plm/adapters/outbound"
)

// A receiver checks each delivery before it trusts it, and answers 2xx once it has it.
func ExampleVerify() {
	const secret = "the-subscription-secret" // as POST /subscriptions answered it
	seen := map[string]bool{}                // event ids handled already (keep them in your store)

	hook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read the body", http.StatusBadRequest)
			return
		}
		err = outbound.Verify(secret, r.Header.Get("X-PLM-Timestamp"), body, r.Header.Get("X-PLM-Signature"),
			time.Now(), 5*time.Minute)
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			fmt.Println("refused:", errors.Is(err, outbound.ErrMismatch))
			return
		}
		if id := r.Header.Get("X-PLM-Event-Id"); !seen[id] {
			seen[id] = true
			fmt.Println("handled", r.Header.Get("X-PLM-Event-Type"), id)
		}
		w.WriteHeader(http.StatusNoContent)
	})

	// What the service sends, and the same delivery with its body altered on the way.
	body := `{"id":"evt-1","type":"alarm.opened","at":"2026-11-27T08:15:00.210Z","equipmentId":"press-01","data":{}}`
	for _, sent := range []string{body, body, strings.Replace(body, "press-01", "press-02", 1)} {
		ts := time.Now().Unix()
		r := httptest.NewRequest(http.MethodPost, "/hooks/plm", strings.NewReader(sent))
		r.Header.Set("X-PLM-Event-Id", "evt-1")
		r.Header.Set("X-PLM-Event-Type", "alarm.opened")
		r.Header.Set("X-PLM-Timestamp", strconv.FormatInt(ts, 10))
		r.Header.Set("X-PLM-Signature", outbound.Sign(secret, ts, []byte(body)))
		w := httptest.NewRecorder()
		hook.ServeHTTP(w, r)
		fmt.Println(w.Code)
	}
	// Output:
	// handled alarm.opened evt-1
	// 204
	// 204
	// refused: true
	// 401
}
