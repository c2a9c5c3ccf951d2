package watermill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// Embedded is the in-process pipeline: a Watermill GoChannel between the webhook and the
// processing handler.
//
// Publishing blocks until the handler has stored the readings (or given up), and reports
// the outcome: in this mode a 202 means the readings are stored. Requests that arrive while
// a message is being processed wait in one FIFO queue; the next message carries all of them
// (up to MaxGroupReadings readings), so that one transaction commits many requests. The
// GoChannel delivers one message at a time, so readings are judged in arrival order.
type Embedded struct {
	pubsub  *gochannel.GoChannel
	router  *message.Router
	log     *slog.Logger
	stopped chan struct{} // closed when the router has returned

	// mu guards accepting and the closing of queue: publishers hold it for reading while
	// they enqueue, Stop for writing while it closes the queue.
	mu        sync.RWMutex
	accepting bool
	queue     chan *pending
	drained   chan struct{} // closed when the grouping loop has published the last request
}

// MaxGroupReadings bounds how many readings one message of the embedded queue carries.
const MaxGroupReadings = 5000

// pending is one caller's readings waiting to be published.
type pending struct {
	ctx      context.Context
	readings []sensor.Reading
	done     chan error
}

var (
	_ ports.ReadingsPublisher = (*Embedded)(nil)
	_ ports.Pinger            = (*Embedded)(nil)
)

// NewEmbedded wires the GoChannel, the router and the processor.
func NewEmbedded(p *Processor, log *slog.Logger) (*Embedded, error) {
	// Watermill narrates its life cycle at info level; that is debug detail here.
	wlog := watermill.NewSlogLoggerWithLevelMapping(log.With("component", "watermill"),
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	ps := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true, PreserveContext: true}, wlog)
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, wlog)
	if err != nil {
		return nil, fmt.Errorf("new router: %w", err)
	}
	r.AddMiddleware(reportOutcome, Retry(DefaultMaxRetries, log).Middleware, middleware.Recoverer)
	r.AddConsumerHandler(HandlerProcessReadings, TopicReadingsReceived, ps, p.Handle)
	return &Embedded{
		pubsub: ps, router: r, log: log, stopped: make(chan struct{}),
		queue: make(chan *pending, 1024), drained: make(chan struct{}),
	}, nil
}

// Start runs the router and returns once it is consuming.
func (e *Embedded) Start(ctx context.Context) error {
	go func() {
		defer close(e.stopped)
		if err := e.router.Run(context.Background()); err != nil {
			e.log.Error("router stopped", "error", err)
		}
	}()
	select {
	case <-e.router.Running():
	case <-e.stopped:
		return errors.New("router stopped at start")
	case <-ctx.Done():
		return fmt.Errorf("start router: %w", ctx.Err())
	}
	go e.publishGroups()
	e.mu.Lock()
	e.accepting = true
	e.mu.Unlock()
	return nil
}

// Stop refuses new readings, lets every queued one be stored, then closes the router and
// the channel. Call it after the webhook has stopped accepting.
func (e *Embedded) Stop(ctx context.Context) error {
	e.mu.Lock()
	wasAccepting := e.accepting
	e.accepting = false
	if wasAccepting {
		close(e.queue)
	}
	e.mu.Unlock()
	if wasAccepting {
		select {
		case <-e.drained:
		case <-ctx.Done():
			return fmt.Errorf("drain queue: %w", ctx.Err())
		}
	}
	err := e.router.Close()
	return errors.Join(err, e.pubsub.Close())
}

// Name is "queue".
func (e *Embedded) Name() string { return "queue" }

// Ping reports ErrUnavailable unless the queue is accepting.
func (e *Embedded) Ping(context.Context) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if !e.accepting {
		return fmt.Errorf("in-process queue is not running: %w", ports.ErrUnavailable)
	}
	return nil
}

// PublishReadings implements ports.ReadingsPublisher: it returns once the readings are
// stored, or with an error wrapping ports.ErrUnavailable when they could not be. The caller
// going away does not stop its readings from being stored once queued.
func (e *Embedded) PublishReadings(ctx context.Context, ev ports.ReadingsReceived) error {
	p := &pending{ctx: ctx, readings: ev.Readings, done: make(chan error, 1)}
	e.mu.RLock()
	if !e.accepting {
		e.mu.RUnlock()
		return fmt.Errorf("publish: %w: the in-process queue is not running", ports.ErrUnavailable)
	}
	e.queue <- p
	e.mu.RUnlock()
	return <-p.done
}

// publishGroups takes the queued requests in order and publishes them in groups, each
// group as one message, until the queue is closed and empty.
func (e *Embedded) publishGroups() {
	defer close(e.drained)
	for first := range e.queue {
		group := []*pending{first}
		n := len(first.readings)
	fill:
		for n < MaxGroupReadings {
			select {
			case p, ok := <-e.queue:
				if !ok {
					break fill
				}
				group = append(group, p)
				n += len(p.readings)
			default:
				break fill
			}
		}
		readings := make([]sensor.Reading, 0, n)
		for _, p := range group {
			readings = append(readings, p.readings...)
		}
		err := e.publish(first.ctx, ports.ReadingsReceived{Readings: readings})
		for _, p := range group {
			p.done <- err
		}
	}
}

// publish sends one message and waits for the handler's outcome.
func (e *Embedded) publish(ctx context.Context, ev ports.ReadingsReceived) error {
	msg, err := Marshal(watermill.NewUUID(), ev)
	if err != nil {
		return err
	}
	out := &outcome{}
	// The handler must not be cut short by a caller going away: it works on.
	msg.SetContext(context.WithValue(context.WithoutCancel(ctx), outcomeKey{}, out))
	if err := e.pubsub.Publish(TopicReadingsReceived, msg); err != nil {
		return fmt.Errorf("publish: %w: %w", ports.ErrUnavailable, err)
	}
	done, herr := out.get()
	switch {
	case !done:
		return fmt.Errorf("publish: %w: the in-process queue is not consuming", ports.ErrUnavailable)
	case herr != nil:
		return fmt.Errorf("process readings: %w: %w", ports.ErrUnavailable, herr)
	}
	return nil
}

type outcomeKey struct{}

// outcome carries the handler's final result back to the publisher of the message.
type outcome struct {
	mu   sync.Mutex
	done bool
	err  error
}

func (o *outcome) set(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done, o.err = true, err
}

func (o *outcome) get() (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.done, o.err
}

// reportOutcome hands the final result of the handler (after its retries) to a waiting
// publisher and acknowledges the message: the publisher answers for it.
func reportOutcome(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		msgs, err := h(msg)
		if o, ok := msg.Context().Value(outcomeKey{}).(*outcome); ok {
			o.set(err)
			return msgs, nil
		}
		return msgs, err
	}
}
