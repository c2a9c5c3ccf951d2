package http

import (
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/production-line-monitor/plm/application/query"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/ports"
)

// Limits and defaults of the query strings.
const (
	historySpan          = time.Hour
	defaultInterval      = "1m" // as echoed
	defaultIntervalLen   = time.Minute
	minInterval          = time.Second
	defaultHistoryLimit  = 1000
	maxHistoryLimit      = 10000
	maxPage              = 1000000
	defaultPageSize      = query.DefaultPageSize
	maxPageSize          = 500
	metricsSpan          = 24 * time.Hour
	maxProductionBuckets = 10000
)

type historyResponse struct {
	EquipmentID string `json:"equipmentId"`
	Aggregation string `json:"aggregation"`
	Interval    string `json:"interval,omitempty"`
	Points      any    `json:"points"`
}

type rawPoint struct {
	SensorType string  `json:"sensorType"`
	SensorID   string  `json:"sensorId,omitempty"`
	Timestamp  string  `json:"timestamp"`
	Value      float64 `json:"value"`
	Anomalous  bool    `json:"anomalous"`
}

type avgPoint struct {
	SensorType string  `json:"sensorType"`
	SensorID   string  `json:"sensorId,omitempty"`
	Bucket     string  `json:"bucket"`
	Avg        float64 `json:"avg"`
	Min        float64 `json:"min"`
	Max        float64 `json:"max"`
	Count      int64   `json:"count"`
}

// sensorHistory is GET /equipment/:id/sensor-history.
func (h *handlers) sensorHistory(c *fiber.Ctx) error {
	id, err := equipmentIDParam(c)
	if err != nil {
		return err
	}
	q := parseQuery(c, "sensorType", "sensorId", "from", "to", "aggregation", "interval", "limit")
	typ, sensorID := q.sensorType(h.types), q.sensorID()
	from, to := q.window(h.clock.Now(), historySpan)
	agg := query.Aggregation(q.enum("aggregation", string(query.AggregationRaw),
		string(query.AggregationRaw), string(query.AggregationAvg)))
	intervalText, interval := q.interval(agg)
	limit := q.int("limit", defaultHistoryLimit, 1, maxHistoryLimit)
	if err := q.err(); err != nil {
		return err
	}

	res, err := h.app.Queries.SensorHistory.Handle(c.UserContext(), query.SensorHistory{
		Query:       ports.HistoryQuery{EquipmentID: id, SensorType: typ, SensorID: sensorID, From: from, To: to, Limit: limit},
		Aggregation: agg,
		Interval:    interval,
	})
	if err != nil {
		return err
	}
	out := historyResponse{EquipmentID: id, Aggregation: string(agg)}
	if agg == query.AggregationAvg {
		pts := make([]avgPoint, len(res.Averages))
		for i, p := range res.Averages {
			pts[i] = avgPoint{SensorType: string(p.SensorType), SensorID: p.SensorID, Bucket: formatTime(p.Bucket),
				Avg: p.Avg, Min: p.Min, Max: p.Max, Count: p.Count}
		}
		out.Interval, out.Points = intervalText, pts
	} else {
		pts := make([]rawPoint, len(res.Points))
		for i, p := range res.Points {
			pts[i] = rawPoint{SensorType: string(p.Type), SensorID: p.SensorID, Timestamp: formatTime(p.Timestamp),
				Value: p.Value, Anomalous: p.Anomalous}
		}
		out.Points = pts
	}
	return c.JSON(out, mimeJSON)
}

// interval reads the bucket size of averages: only with aggregation=avg, at least 1s,
// "1m" when absent. text is the value as sent.
func (q *queryParams) interval(agg query.Aggregation) (text string, d time.Duration) {
	v, ok := q.lookup("interval")
	if !ok {
		if q.failed["interval"] {
			return "", 0
		}
		return defaultInterval, defaultIntervalLen
	}
	if agg != query.AggregationAvg {
		if !q.failed["aggregation"] {
			q.fail("interval", "is only allowed with aggregation=avg")
		}
		return "", 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < minInterval {
		q.fail("interval", "must be a duration of at least 1s, e.g. 30s, 5m or 1h")
		return "", 0
	}
	return v, d
}

type alertResponse struct {
	ID          string  `json:"id"`
	EquipmentID string  `json:"equipmentId"`
	SensorType  string  `json:"sensorType"`
	SensorID    string  `json:"sensorId,omitempty"`
	Value       float64 `json:"value"`
	ZScore      float64 `json:"zScore"`
	Mean        float64 `json:"mean"`
	StdDev      float64 `json:"stdDev"`
	WindowSize  int     `json:"windowSize"`
	Severity    string  `json:"severity"`
	Timestamp   string  `json:"timestamp"`
	DetectedAt  string  `json:"detectedAt"`
}

type pagination struct {
	Page       int   `json:"page"`
	PageSize   int   `json:"pageSize"`
	Total      int64 `json:"total"`
	TotalPages int64 `json:"totalPages"`
}

type alertPage struct {
	Data       []alertResponse `json:"data"`
	Pagination pagination      `json:"pagination"`
}

// alertHistory is GET /alerts/history.
func (h *handlers) alertHistory(c *fiber.Ctx) error {
	q := parseQuery(c, "equipmentId", "sensorType", "sensorId", "severity", "from", "to", "page", "pageSize", "sort")
	filter := ports.AnomalyQuery{
		EquipmentID: q.equipmentID(),
		SensorType:  q.sensorType(h.types),
		SensorID:    q.sensorID(),
		Severities:  q.severities(),
	}
	filter.From, filter.To = q.openRange()
	page, pageSize, asc := q.paging()
	filter.Ascending = asc
	if err := q.err(); err != nil {
		return err
	}

	res, err := h.app.Queries.AlertHistory.Handle(c.UserContext(), query.AlertHistory{Filter: filter, Page: page, PageSize: pageSize})
	if err != nil {
		return err
	}
	out := alertPage{
		Data:       make([]alertResponse, len(res.Alerts)),
		Pagination: pagination{Page: res.Page, PageSize: res.PageSize, Total: res.Total, TotalPages: res.TotalPages},
	}
	for i, a := range res.Alerts {
		out.Data[i] = newAlertResponse(a)
	}
	return c.JSON(out, mimeJSON)
}

func newAlertResponse(a anomaly.Anomaly) alertResponse {
	return alertResponse{
		ID: a.ID, EquipmentID: a.EquipmentID, SensorType: string(a.SensorType), SensorID: a.SensorID, Value: a.Value,
		ZScore: a.ZScore, Mean: a.Mean, StdDev: a.StdDev, WindowSize: a.WindowSize,
		Severity: string(a.Severity), Timestamp: formatTime(a.Timestamp), DetectedAt: formatTime(a.DetectedAt),
	}
}

// openRange reads from and to, each an open end when absent; given both, from must be
// before to.
func (q *queryParams) openRange() (from, to time.Time) {
	from, hasFrom := q.time("from")
	to, hasTo := q.time("to")
	if hasFrom && hasTo {
		q.ordered(from, to)
	}
	if hasTo && to.IsZero() {
		// Storage reads the zero time as no bound; the instant before it is the same bound.
		to = to.Add(-time.Nanosecond)
	}
	return from, to
}

// paging reads page, pageSize and sort (desc by default).
func (q *queryParams) paging() (page, pageSize int, ascending bool) {
	page = q.int("page", 1, 1, maxPage)
	pageSize = q.int("pageSize", defaultPageSize, 1, maxPageSize)
	return page, pageSize, q.enum("sort", "desc", "asc", "desc") == "asc"
}

// list reads the comma-separated list name (nil when absent), each item trimmed and parsed;
// an item that does not parse fails the parameter with message.
func list[T any](q *queryParams, name string, parse func(string) (T, error), message string) []T {
	v, ok := q.lookup(name)
	if !ok {
		return nil
	}
	var out []T
	for item := range strings.SplitSeq(v, ",") {
		x, err := parse(strings.TrimSpace(item))
		if err != nil {
			q.fail(name, message)
			return nil
		}
		out = append(out, x)
	}
	return out
}

// severities reads a comma-separated list of severities (none when absent).
func (q *queryParams) severities() []anomaly.Severity {
	return list(q, "severity", anomaly.ParseSeverity, "must be a comma-separated list of LOW, MEDIUM, CRITICAL")
}

type productionResponse struct {
	From            string           `json:"from"`
	To              string           `json:"to"`
	Bucket          string           `json:"bucket"`
	SensorID        string           `json:"sensorId,omitempty"` // the filter, when given (an extension)
	EventsProcessed eventsProcessed  `json:"eventsProcessed"`
	Anomalies       anomalyCounts    `json:"anomalies"`
	AnomalyRate     float64          `json:"anomalyRate"`
	Uptime          []uptimeResponse `json:"uptime"`
	Alarms          *alarmFigures    `json:"alarms,omitempty"`
}

// alarmFigures are the alarms that opened in the range (an extension of the contract).
type alarmFigures struct {
	Total      int64      `json:"total"`
	BySeverity bySeverity `json:"bySeverity"`
	// Means in seconds, null when no alarm of the range was acknowledged (cleared).
	MeanSecondsToAcknowledge *float64 `json:"meanSecondsToAcknowledge"`
	MeanSecondsToClear       *float64 `json:"meanSecondsToClear"`
}

func seconds(d time.Duration) *float64 {
	if d < 0 {
		return nil
	}
	s := roundMillis(d.Seconds())
	return &s
}

type eventsProcessed struct {
	Total  int64         `json:"total"`
	Series []bucketCount `json:"series"`
}

type bucketCount struct {
	Bucket string `json:"bucket"`
	Count  int64  `json:"count"`
}

type anomalyCounts struct {
	Total      int64      `json:"total"`
	BySeverity bySeverity `json:"bySeverity"`
}

type bySeverity struct {
	Low      int64 `json:"LOW"`
	Medium   int64 `json:"MEDIUM"`
	Critical int64 `json:"CRITICAL"`
}

type uptimeResponse struct {
	EquipmentID   string  `json:"equipmentId"`
	UptimePercent float64 `json:"uptimePercent"`
}

var bucketSizes = map[string]time.Duration{"hour": time.Hour, "day": 24 * time.Hour}

// productionMetrics is GET /metrics/production.
func (h *handlers) productionMetrics(c *fiber.Ctx) error {
	q := parseQuery(c, "from", "to", "bucket", "equipmentId", "sensorId")
	from, to := q.window(h.clock.Now(), metricsSpan)
	bucket := q.enum("bucket", "hour", "hour", "day")
	equipmentID, sensorID := q.equipmentID(), q.sensorID()
	size := bucketSizes[bucket]
	var first time.Time
	var slots int64
	if !q.failed["from"] && !q.failed["to"] && !q.failed["bucket"] {
		first, slots = bucketsOf(from, to, size)
		if slots > maxProductionBuckets {
			hint := "ask for a shorter range"
			if bucket == "hour" {
				hint = "ask for bucket=day or a shorter range"
			}
			q.fail("bucket", fmt.Sprintf("the range holds %d %s buckets, more than %d: %s",
				slots, bucket, maxProductionBuckets, hint))
		}
	}
	if err := q.err(); err != nil {
		return err
	}

	rep, err := h.app.Queries.ProductionMetrics.Handle(c.UserContext(), query.ProductionMetrics{
		From: from, To: to, Bucket: size, EquipmentID: equipmentID, SensorID: sensorID,
	})
	if err != nil {
		return err
	}
	counts := make(map[int64]int64, len(rep.EventsSeries))
	for _, b := range rep.EventsSeries {
		counts[b.Bucket.Unix()] += b.Count
	}
	out := productionResponse{
		From: formatTime(from), To: formatTime(to), Bucket: bucket, SensorID: sensorID,
		EventsProcessed: eventsProcessed{Total: rep.EventsTotal, Series: make([]bucketCount, slots)},
		Anomalies: anomalyCounts{Total: rep.Anomalies, BySeverity: bySeverity{
			Low: rep.BySeverity[anomaly.SeverityLow], Medium: rep.BySeverity[anomaly.SeverityMedium],
			Critical: rep.BySeverity[anomaly.SeverityCritical],
		}},
		AnomalyRate: rep.AnomalyRate,
		Uptime:      make([]uptimeResponse, len(rep.Uptime)),
	}
	for i := range out.EventsProcessed.Series {
		b := first.Add(time.Duration(i) * size)
		out.EventsProcessed.Series[i] = bucketCount{Bucket: formatTime(b), Count: counts[b.Unix()]}
	}
	for i, u := range rep.Uptime {
		out.Uptime[i] = uptimeResponse{EquipmentID: u.EquipmentID, UptimePercent: u.UptimePercent}
	}
	if a := rep.Alarms; a != nil {
		out.Alarms = &alarmFigures{Total: a.Opened, BySeverity: bySeverity{
			Low: a.BySeverity[anomaly.SeverityLow], Medium: a.BySeverity[anomaly.SeverityMedium],
			Critical: a.BySeverity[anomaly.SeverityCritical],
		}, MeanSecondsToAcknowledge: seconds(a.MeanTimeToAck), MeanSecondsToClear: seconds(a.MeanTimeToClear)}
	}
	return c.JSON(out, mimeJSON)
}

// bucketsOf returns the first of the epoch-aligned buckets of the given size that intersect
// [from, to), and how many there are. from must be before to.
func bucketsOf(from, to time.Time, size time.Duration) (first time.Time, n int64) {
	secs := int64(size / time.Second)
	start := floorDiv(from.Unix(), secs)
	last := floorDiv(to.Add(-time.Nanosecond).Unix(), secs)
	return time.Unix(start, 0).UTC(), (last-start)/secs + 1
}

// floorDiv rounds t down to a multiple of d.
func floorDiv(t, d int64) int64 {
	q := t / d
	if t%d != 0 && t < 0 {
		q--
	}
	return q * d
}
