package watermill

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/production-line-monitor/plm/application/command"
	"github.com/production-line-monitor/plm/domain/alarm"
	"github.com/production-line-monitor/plm/ports"
)

// HandlerProcessReadings names the processing handler. It names the consumer group in
// production: renaming it would re-consume every queued message.
const HandlerProcessReadings = "process_readings"

// errUndecodable marks a message that no retry can fix.
var errUndecodable = errors.New("undecodable message")

// errBatchFailed marks the failure of a batch of messages: neither retried nor a dead
// letter as a whole, it is handed on again one message at a time (see NewBatch).
var errBatchFailed = errors.New("batch failed")

// Poisonous reports whether a message that failed with err, after its retries, belongs in
// the dead-letter queue. Outages are not the message's fault: it waits for the dependency
// and keeps its place. Neither is a take-over of its partition: the new owner handles it.
func Poisonous(err error) bool {
	return !errors.Is(err, ports.ErrUnavailable) && !errors.Is(err, ports.ErrFenced) && !errors.Is(err, errBatchFailed)
}

// Processor is the Watermill handler that feeds queued readings to the processing use case.
type Processor struct {
	handler *command.ProcessReadingsHandler
	log     *slog.Logger

	processed  prometheus.Counter
	duplicates prometheus.Counter
	anomalies  *prometheus.CounterVec
	alarms     *prometheus.CounterVec
	latency    prometheus.Histogram
	now        func() time.Time
}

// NewProcessor builds the handler and registers its metrics on reg.
func NewProcessor(h *command.ProcessReadingsHandler, reg prometheus.Registerer, log *slog.Logger) (*Processor, error) {
	p := &Processor{
		handler: h,
		log:     log.With("component", "processor"),
		now:     time.Now,
		processed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plm_readings_processed_total", Help: "Readings judged and stored."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plm_readings_duplicate_total", Help: "Readings skipped because they were already stored."}),
		anomalies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plm_anomalies_total", Help: "Anomalies detected, by severity."}, []string{"severity"}),
		alarms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plm_alarm_events_total",
			Help: "Alarm transitions, by event (opened, escalated, cleared, held_back) and severity."}, []string{"event", "severity"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "plm_detection_latency_seconds",
			Help:    "Time from the receipt of a reading to its storage with a verdict.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	for _, c := range []prometheus.Collector{p.processed, p.duplicates, p.anomalies, p.alarms, p.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// WithHandler returns a processor that feeds h and shares p's metrics: each partition of
// the production queue has a handler (and detector) of its own.
func (p *Processor) WithHandler(h *command.ProcessReadingsHandler) *Processor {
	c := *p
	c.handler = h
	return &c
}

// Processed returns how many readings this processor has stored so far.
func (p *Processor) Processed() float64 {
	var m dto.Metric
	if err := p.processed.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// Handle processes one message; an error leaves the message for redelivery.
func (p *Processor) Handle(msg *message.Message) error {
	err := p.handle(msg)
	if n := BatchSize(msg); err != nil && n > 1 {
		return fmt.Errorf("batch of %d messages: %w: %w", n, errBatchFailed, err)
	}
	return err
}

func (p *Processor) handle(msg *message.Message) error {
	e, err := Unmarshal(msg)
	if err != nil {
		return errors.Join(errUndecodable, err)
	}
	res, err := p.handler.Handle(msg.Context(), e)
	if err != nil {
		p.log.Warn("process readings", "message_id", msg.UUID, "readings", len(e.Readings), "error", err)
		return err
	}
	p.log.Debug("message processed", "message_id", msg.UUID, "readings", len(e.Readings),
		"stored", res.Stored, "skipped", res.Skipped, "anomalies", len(res.Anomalies))
	p.processed.Add(float64(res.Stored))
	p.duplicates.Add(float64(res.Skipped))
	for _, a := range res.Anomalies {
		p.anomalies.WithLabelValues(string(a.Severity)).Inc()
	}
	for _, c := range res.Alarms {
		if name := alarmEventNames[c.Event]; name != "" {
			p.alarms.WithLabelValues(name, string(c.Alarm.Severity)).Inc()
			p.log.Info("alarm "+name, "alarm_id", c.Alarm.ID, "equipment_id", c.Alarm.EquipmentID,
				"sensor_type", c.Alarm.SensorType, "severity", c.Alarm.Severity, "message_id", msg.UUID)
		}
	}
	if res.Unpublished != nil {
		p.log.Warn("events not on the live stream", "message_id", msg.UUID, "error", res.Unpublished)
	}
	if len(e.Readings) > 0 {
		p.latency.Observe(p.now().Sub(e.Readings[0].ReceivedAt).Seconds())
	}
	return nil
}

// alarmEventNames are the metric labels of the alarm events counted.
var alarmEventNames = map[alarm.Event]string{
	alarm.Opened: "opened", alarm.Escalated: "escalated", alarm.Cleared: "cleared", alarm.HeldBack: "held_back",
}

// DefaultMaxRetries is how many times a failed message is retried in process.
const DefaultMaxRetries = 3

// Retry is the retry policy of the processing handler: maxRetries quick attempts with
// backoff, none for a message that cannot be decoded or whose partition was taken over.
func Retry(maxRetries int, log *slog.Logger) middleware.Retry {
	return middleware.Retry{
		MaxRetries:      maxRetries,
		InitialInterval: 50 * time.Millisecond,
		MaxInterval:     time.Second,
		Multiplier:      2,
		ShouldRetry: func(p middleware.RetryParams) bool {
			return !errors.Is(p.Err, errUndecodable) && !errors.Is(p.Err, ports.ErrFenced) &&
				!errors.Is(p.Err, errBatchFailed)
		},
		OnRetryHook: func(n int, delay time.Duration) {
			log.Debug("retry processing", "attempt", n, "delay", delay)
		},
	}
}
