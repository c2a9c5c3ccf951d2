package simulator

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/production-line-monitor/plm/domain/anomaly"
)

// WriteLoad reports what the load generator saw.
func WriteLoad(w io.Writer, r LoadResult) {
	reqRate := float64(r.Requests) / max(r.Elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "sent       %d readings in %d requests over %s: %.0f readings/s, %.0f requests/s\n",
		r.Readings, r.Requests, r.Elapsed.Round(time.Millisecond), r.Rate(), reqRate)
	var codes []string
	for _, c := range sortedCodes(r.Status) {
		codes = append(codes, fmt.Sprintf("%d: %d", c, r.Status[c]))
	}
	for _, f := range slices.Sorted(maps.Keys(r.Failures)) {
		codes = append(codes, fmt.Sprintf("%s: %d", f, r.Failures[f]))
	}
	fmt.Fprintf(w, "answers    %s\n", strings.Join(codes, ", "))
	if r.FirstRefusal != "" {
		fmt.Fprintf(w, "refused    first: %.300s\n", r.FirstRefusal)
	}
	l := r.Latency
	fmt.Fprintf(w, "latency    p50 %s  p95 %s  p99 %s  max %s  (requests sent late by up to %s)\n",
		roundDuration(l.P50), roundDuration(l.P95), roundDuration(l.P99), roundDuration(l.Max), roundDuration(r.Lag))
}

// WriteCheck reports the end-to-end check.
func WriteCheck(w io.Writer, t Truth, c CheckResult, watch Watch) {
	verdict := "all of them"
	if c.Stored != c.Accepted {
		verdict = fmt.Sprintf("MISSING %d", c.Accepted-c.Stored)
	}
	fmt.Fprintf(w, "stored     %d of %d accepted readings (%s), counted %s after the run\n",
		c.Stored, c.Accepted, verdict, c.StoredAfter.Round(time.Millisecond))
	if d := watch.Delay; d.Count > 0 {
		fmt.Fprintf(w, "delay      receipt to stored and judged: p50 ≤ %s, p99 ≤ %s (over %d messages)\n",
			bound(d.P50), bound(d.P99), d.Count)
	}
	s := c.Score
	fmt.Fprintf(w, "anomalies  %d spikes and drops planted, %d flagged (recall %.3f); %d drifts grown, %d flagged",
		s.Planted, s.Found, s.Recall(), s.Drifts, s.DriftsFound)
	if s.DriftsFound > 0 {
		fmt.Fprintf(w, " after ≈%.0f readings", s.DriftDelay)
	}
	fmt.Fprintln(w)
	judged := max(t.Readings, 1)
	fmt.Fprintf(w, "           %d anomalies reported, %d explained; false positives %d (%.2f%% of readings): LOW %d, MEDIUM %d, CRITICAL %d\n",
		s.Alerts, s.Explained, s.FalsePositiveTotal(), 100*float64(s.FalsePositiveTotal())/float64(judged),
		s.FalsePositives[anomaly.SeverityLow], s.FalsePositives[anomaly.SeverityMedium], s.FalsePositives[anomaly.SeverityCritical])
	for i, e := range s.Missed {
		if i == 5 {
			fmt.Fprintf(w, "           … and %d more missed\n", len(s.Missed)-5)
			break
		}
		fmt.Fprintf(w, "           missed %s on %s %s at %s (value %.3f)\n",
			e.Kind, e.EquipmentID, e.Type, e.Timestamp.UTC().Format(time.RFC3339Nano), e.Value)
	}
	if c.Silent > 0 {
		fmt.Fprintf(w, "silent     %d equipment fell silent, %d OFFLINE", c.Silent, c.Offline)
		if len(c.NotOffline) > 0 {
			fmt.Fprintf(w, "; not: %s", strings.Join(c.NotOffline, ", "))
		}
		fmt.Fprintln(w)
	}
	for _, u := range slices.Sorted(maps.Keys(watch.RSS)) {
		r := watch.RSS[u]
		fmt.Fprintf(w, "memory     resident %.0f MB warmed up, %.0f MB at the end (%+.0f%%), peak %.0f MB  (%s)\n",
			r.WarmedUp/(1<<20), r.End/(1<<20), 100*r.Growth(), r.Peak/(1<<20), u)
	}
}

func bound(d time.Duration) string {
	if d < 0 {
		return "beyond the histogram"
	}
	return roundDuration(d).String()
}
