package outbound_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/adapters/outbound"
	"github.com/production-line-monitor/plm/application/notify"
	"github.com/production-line-monitor/plm/domain/event"
	"github.com/production-line-monitor/plm/ports"
)

// delivery is a delivery of an alarm.opened event to url.
func delivery(url string) ports.ClaimedDelivery {
	return ports.ClaimedDelivery{
		Delivery: ports.Delivery{ID: "dlv-1", SubscriptionID: "sub-1", EventID: "evt-1", EventType: event.AlarmOpened,
			Body:  []byte(`{"id":"evt-1","type":"alarm.opened","at":"2026-11-27T08:15:00.000Z","equipmentId":"press-01","data":{}}`),
			State: ports.DeliveryPending},
		Subscription: ports.Subscription{ID: "sub-1", URL: url, Secret: secret},
	}
}

// received is a request as an endpoint saw it.
type received struct {
	method string
	header http.Header
	body   []byte
}

func newSender(timeout time.Duration) *outbound.Sender {
	return outbound.NewSender(outbound.Config{Timeout: timeout}, memory.NewClock(now))
}

func TestSender_posts_the_body_signed(t *testing.T) {
	got := make(chan received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- received{r.Method, r.Header.Clone(), body}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	d := delivery(srv.URL + "/hooks/plm?token=abc")

	status, err := newSender(time.Second).Send(context.Background(), d)
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, status)

	r := <-got
	assert.Equal(t, http.MethodPost, r.method)
	assert.Equal(t, d.Body, r.body, "the body exactly as stored")
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.Equal(t, "evt-1", r.header.Get("X-PLM-Event-Id"))
	assert.Equal(t, "alarm.opened", r.header.Get("X-PLM-Event-Type"))
	assert.Equal(t, "dlv-1", r.header.Get("X-PLM-Delivery-Id"))
	assert.Equal(t, strconv.FormatInt(now.Unix(), 10), r.header.Get("X-PLM-Timestamp"), "the sender's clock, in Unix seconds")
	assert.Equal(t, outbound.DefaultUserAgent, r.header.Get("User-Agent"))
	assert.NoError(t, outbound.Verify(secret, r.header.Get("X-PLM-Timestamp"), r.body, r.header.Get("X-PLM-Signature"), now, time.Minute),
		"the receiver can verify it")
	assert.ErrorIs(t, outbound.Verify("another secret, 16+", r.header.Get("X-PLM-Timestamp"), r.body, r.header.Get("X-PLM-Signature"), now, time.Minute),
		outbound.ErrMismatch)
}

func TestSender_any_2xx_is_delivered(t *testing.T) {
	for _, code := range []int{200, 201, 202, 204, 299} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }))
			defer srv.Close()
			status, err := newSender(time.Second).Send(context.Background(), delivery(srv.URL))
			assert.NoError(t, err)
			assert.Equal(t, code, status)
		})
	}
}

func TestSender_other_answers_fail(t *testing.T) {
	tests := []struct {
		code    int
		body    string
		wantErr string
	}{
		{400, `{"error":"bad"}`, `the endpoint answered 400: {"error":"bad"}`},
		{404, "", "the endpoint answered 404"},
		{500, "boom\n\tat line 1\x00", "the endpoint answered 500: boom at line 1"},
		{503, strings.Repeat("x", 1000), "the endpoint answered 503: " + strings.Repeat("x", 200) + "…"},
		{101, "", "the endpoint answered 101"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.code)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			status, err := newSender(time.Second).Send(context.Background(), delivery(srv.URL))
			assert.Equal(t, tt.code, status)
			if assert.Error(t, err) {
				assert.Equal(t, tt.wantErr, err.Error())
			}
		})
	}
}

func TestSender_does_not_follow_redirects(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer target.Close()
	for _, code := range []int{301, 302, 307, 308} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/moved", code)
			}))
			defer srv.Close()
			status, err := newSender(time.Second).Send(context.Background(), delivery(srv.URL))
			assert.Equal(t, code, status)
			if assert.Error(t, err) {
				assert.Contains(t, err.Error(), "redirects are not followed")
				assert.Contains(t, err.Error(), target.URL+"/moved")
			}
		})
	}
	assert.Zero(t, hits.Load(), "the redirect's target was never asked")
}

// hangingServer is an endpoint that reads the request and never answers, until the sender
// hangs up or the test ends.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so that the server notices the hang-up
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return srv
}

func TestSender_times_out(t *testing.T) {
	srv := hangingServer(t)
	status, err := newSender(50*time.Millisecond).Send(context.Background(), delivery(srv.URL))
	assert.Zero(t, status)
	if assert.Error(t, err) {
		assert.Contains(t, err.Error(), "no answer within 50ms")
	}
}

func TestSender_honours_the_context_deadline(t *testing.T) {
	srv := hangingServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	status, err := newSender(time.Minute).Send(ctx, delivery(srv.URL))
	assert.Zero(t, status)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestSender_connection_refused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	status, err := newSender(time.Second).Send(context.Background(), delivery(url+"/hook?token=s3cr3t"))
	assert.Zero(t, status)
	if assert.Error(t, err) {
		assert.Contains(t, err.Error(), "no answer")
		assert.NotContains(t, err.Error(), "s3cr3t", "the URL (and any token in it) is not repeated")
	}
}

// An endpoint that answers with an endless body is not read to its end: the attempt ends
// well within its timeout.
func TestSender_reads_a_few_KiB_of_the_answer_at_most(t *testing.T) {
	for _, code := range []int{200, 500} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(code)
				chunk := []byte(strings.Repeat("y", 1024))
				for r.Context().Err() == nil {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			}))
			defer srv.Close()
			status, err := newSender(time.Minute).Send(context.Background(), delivery(srv.URL))
			assert.Equal(t, code, status)
			if code == 200 {
				assert.NoError(t, err)
			} else if assert.Error(t, err) {
				assert.NotContains(t, err.Error(), "no answer")
			}
		})
	}
}

func TestSender_refuses_a_url_it_cannot_post_to(t *testing.T) {
	status, err := newSender(time.Second).Send(context.Background(), delivery("http://bad host/"))
	assert.Zero(t, status)
	assert.Error(t, err)
}

func TestMetrics_count_outcomes(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := outbound.NewMetrics(reg)
	require.NoError(t, err)
	again, err := outbound.NewMetrics(reg)
	require.NoError(t, err, "a second registration shares the counter")
	m.Observe(notify.OutcomeDelivered, 1)
	again.Observe(notify.OutcomePostponed, 3)

	want := `
# HELP plm_deliveries_total Claimed deliveries of notifications, by outcome: delivered, retried, dead, postponed (breaker open) or dropped (subscription deleted).
# TYPE plm_deliveries_total counter
plm_deliveries_total{outcome="dead"} 0
plm_deliveries_total{outcome="delivered"} 1
plm_deliveries_total{outcome="dropped"} 0
plm_deliveries_total{outcome="postponed"} 3
plm_deliveries_total{outcome="retried"} 0
`
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "plm_deliveries_total"))
}
