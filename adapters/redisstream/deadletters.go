package redisstream

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	wmredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"

	"github.com/production-line-monitor/plm/adapters/watermill"
	"github.com/production-line-monitor/plm/ports"
)

// DeadLetter is one message of the dead-letter stream, as the worker's PoisonQueue
// middleware left it there: the message with the metadata it had, plus the reason, topic,
// handler and subscriber of its failure.
type DeadLetter struct {
	ID          string    // its entry id in the dead-letter stream
	At          time.Time // when it was dead-lettered: the time of ID
	MessageUUID string    // the Watermill message's
	Stream      string    // the partition stream it was read from
	Handler     string
	Reason      string // the error of its last try
	// PayloadBytes is the size of the payload; Readings and Equipment (sorted, each once)
	// what it holds when it decodes, and Undecodable why it does not.
	PayloadBytes int
	Readings     int
	Equipment    []string
	Undecodable  string

	msg *message.Message // nil when the entry is not a Watermill message
}

// Summary says in a few words what the message carries: "2 readings of press-02", or
// "undecodable (9 bytes)".
func (d DeadLetter) Summary() string {
	if d.Undecodable != "" {
		return fmt.Sprintf("undecodable (%d bytes)", d.PayloadBytes)
	}
	noun := "readings"
	if d.Readings == 1 {
		noun = "reading"
	}
	const shown = 3
	switch eq := d.Equipment; {
	case len(eq) == 0:
		return fmt.Sprintf("%d %s", d.Readings, noun)
	case len(eq) <= shown:
		return fmt.Sprintf("%d %s of %s", d.Readings, noun, strings.Join(eq, ", "))
	default:
		return fmt.Sprintf("%d %s of %s and %d more", d.Readings, noun, strings.Join(eq[:shown], ", "), len(eq)-shown)
	}
}

// Replayed is a dead letter put back on its partition stream.
type Replayed struct {
	DeadLetter
	EntryID string // the id of its new entry in Stream
}

// ErrNotReplayable: a dead letter that replaying cannot help.
var ErrNotReplayable = errors.New("not replayable")

// DeadLetters lists the dead-letter stream of a deployment and replays its messages.
type DeadLetters struct {
	client     redis.UniversalClient
	names      Names
	marshaller wmredis.DefaultMarshallerUnmarshaller
}

// NewDeadLetters reads and replays the dead letters of the deployment of names.
func NewDeadLetters(client redis.UniversalClient, names Names) *DeadLetters {
	return &DeadLetters{client: client, names: names}
}

// List returns the oldest n dead letters (all of them when n is 0), in stream order, and how
// many there are.
func (d *DeadLetters) List(ctx context.Context, n int) ([]DeadLetter, int64, error) {
	stream := d.names.Poison()
	var total *redis.IntCmd
	var entries *redis.XMessageSliceCmd
	_, err := d.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		total = pipe.XLen(ctx, stream)
		if n > 0 {
			entries = pipe.XRangeN(ctx, stream, "-", "+", int64(n))
		} else {
			entries = pipe.XRange(ctx, stream, "-", "+")
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w: %w", stream, ports.ErrUnavailable, err)
	}
	out := make([]DeadLetter, len(entries.Val()))
	for i, e := range entries.Val() {
		out[i] = d.parse(e)
	}
	return out, total.Val(), nil
}

// Replay appends the messages of the dead letters ids to the partition streams they came
// from, oldest first, each with the metadata it had before it failed, and deletes them from
// the dead-letter stream. The workers then handle them like any new message of their
// partition (after the messages queued meanwhile).
//
// First every id is looked up: one that is not in the dead-letter stream, whose stream is
// not one of the deployment's partitions, or whose payload does not decode (it would only
// fail again), fails the call, which names each such id and replays none.
//
// Each message is appended and deleted in one Lua script, which Redis runs whole or not at
// all, and which does nothing once the entry is gone: a crash, or a second replay of the
// same id, cannot append a message twice. A copy that is nonetheless handled twice (a
// message dead-lettered twice, or resent) stores its readings once. Checked in the storage
// of this set-up, PostgreSQL (adapters/postgres): the worker first drops the readings already
// stored, by (equipment_id, reading_id) (command.ProcessReadingsHandler, StoredRefs), and
// the insert skips any other (insertReadingsSQL: ON CONFLICT DO NOTHING on the constraint
// UNIQUE (equipment_id, reading_id) of migration 0001, or (equipment_id, reading_id, ts)
// under TimescaleDB, where a replayed reading keeps its ts), counting in the rollup, and
// storing anomalies of, only the rows it inserted.
//
// It returns the messages replayed, those before a failure included.
func (d *DeadLetters) Replay(ctx context.Context, ids []string) ([]Replayed, error) {
	letters, err := d.lookUp(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("nothing replayed: %w", err)
	}
	var done []Replayed
	for _, l := range letters {
		id, err := d.replay(ctx, l)
		if err != nil {
			return done, err
		}
		done = append(done, Replayed{DeadLetter: l, EntryID: id})
	}
	return done, nil
}

// lookUp reads the dead letters ids, in stream order, and checks that each can be replayed.
func (d *DeadLetters) lookUp(ctx context.Context, ids []string) ([]DeadLetter, error) {
	stream := d.names.Poison()
	var errs []error
	var valid []string
	for _, id := range ids {
		if _, err := parseStreamID(id); err != nil {
			errs = append(errs, fmt.Errorf("%q is not a stream entry id (like 1764230400123-0)", id))
			continue
		}
		valid = append(valid, id)
	}
	slices.SortFunc(valid, func(a, b string) int {
		switch {
		case streamIDAfter(a, b):
			return 1
		case streamIDAfter(b, a):
			return -1
		}
		return 0
	})
	valid = slices.Compact(valid)
	cmds := make([]*redis.XMessageSliceCmd, len(valid))
	_, err := d.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, id := range valid {
			cmds[i] = pipe.XRange(ctx, stream, id, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w: %w", stream, ports.ErrUnavailable, err)
	}
	letters := make([]DeadLetter, 0, len(valid))
	for i, id := range valid {
		entries := cmds[i].Val()
		if len(entries) == 0 {
			errs = append(errs, fmt.Errorf("dead letter %s: %w in %s", id, ports.ErrNotFound, stream))
			continue
		}
		l := d.parse(entries[0])
		if why := d.unreplayable(l); why != "" {
			errs = append(errs, fmt.Errorf("dead letter %s: %w: %s", id, ErrNotReplayable, why))
			continue
		}
		letters = append(letters, l)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return letters, nil
}

// unreplayable says why l cannot be replayed, or "".
func (d *DeadLetters) unreplayable(l DeadLetter) string {
	if l.Undecodable != "" {
		return fmt.Sprintf("%s: %s; replaying it would only make it a dead letter again "+
			"(discard it with XDEL %s %s)", l.Summary(), l.Undecodable, d.names.Poison(), l.ID)
	}
	if !d.partitionStream(l.Stream) {
		return fmt.Sprintf("it came from %q, which is not one of this deployment's %d partition streams "+
			"(%s to %s; PLM_PARTITIONS, PLM_REDIS_PREFIX)", l.Stream, d.names.Partitions,
			d.names.Readings(0), d.names.Readings(d.names.Partitions-1))
	}
	return ""
}

// partitionStream reports whether stream is one of the deployment's partition streams.
func (d *DeadLetters) partitionStream(stream string) bool {
	for p := range d.names.Partitions {
		if d.names.Readings(p) == stream {
			return true
		}
	}
	return false
}

// replayScript appends a message to a partition stream and deletes its dead letter, if the
// dead letter is still there. KEYS: the dead-letter stream, the partition stream; ARGV: the
// dead letter's id, then the message's fields and values. It returns the new entry's id, or
// nil when the dead letter is gone. Both keys are on one Redis server, as the publisher's
// transactions assume (Redis Cluster would refuse keys of two hash slots).
var replayScript = redis.NewScript(`
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then
	return false
end
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
`)

// replay puts the message of l back on its stream and returns the id of its new entry.
func (d *DeadLetters) replay(ctx context.Context, l DeadLetter) (string, error) {
	msg := message.NewMessage(l.msg.UUID, l.msg.Payload)
	for k, v := range l.msg.Metadata {
		if !slices.Contains(derivedMetadata, k) {
			msg.Metadata.Set(k, v)
		}
	}
	values, err := d.marshaller.Marshal(l.Stream, msg)
	if err != nil {
		return "", fmt.Errorf("replay dead letter %s: encode message %s: %w", l.ID, msg.UUID, err)
	}
	args := []any{l.ID}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		args = append(args, k, values[k])
	}
	id, err := replayScript.Run(ctx, d.client, []string{d.names.Poison(), l.Stream}, args...).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return "", fmt.Errorf("replay dead letter %s: %w in %s any more", l.ID, ports.ErrNotFound, d.names.Poison())
	case err != nil:
		return "", fmt.Errorf("replay dead letter %s to %s: %w: %w", l.ID, l.Stream, ports.ErrUnavailable, err)
	}
	return id, nil
}

// derivedMetadata is the metadata a replayed message leaves behind: what the dead-letter
// middleware added, and what the subscriber derives when it reads the message.
var derivedMetadata = []string{
	middleware.ReasonForPoisonedKey, middleware.PoisonedTopicKey, middleware.PoisonedHandlerKey,
	middleware.PoisonedSubscriberKey, metadataEntry, watermill.MetadataUndecodable, watermill.MetadataBatch,
}

// parse reads a dead letter's entry. An entry that is not a Watermill message is kept as
// undecodable, its fields counted as its payload.
func (d *DeadLetters) parse(e redis.XMessage) DeadLetter {
	l := DeadLetter{ID: e.ID}
	if id, err := parseStreamID(e.ID); err == nil {
		l.At = time.UnixMilli(int64(id.ms)).UTC()
	}
	msg, err := d.marshaller.Unmarshal(e.Values)
	if err != nil {
		for k, v := range e.Values {
			s, _ := v.(string)
			l.PayloadBytes += len(k) + len(s)
		}
		l.Undecodable = "not a Watermill message: " + err.Error()
		return l
	}
	l.msg = msg
	l.MessageUUID = msg.UUID
	l.Stream = msg.Metadata.Get(middleware.PoisonedTopicKey)
	l.Handler = msg.Metadata.Get(middleware.PoisonedHandlerKey)
	l.Reason = msg.Metadata.Get(middleware.ReasonForPoisonedKey)
	l.PayloadBytes = len(msg.Payload)
	// Decoded as the worker would: without the metadata of the failure, nor of a batch.
	plain := message.NewMessage(msg.UUID, msg.Payload)
	if why := msg.Metadata.Get(watermill.MetadataUndecodable); why != "" {
		plain.Metadata.Set(watermill.MetadataUndecodable, why) // the subscriber could not read it
	}
	ev, err := watermill.Unmarshal(plain)
	if err != nil {
		l.Undecodable = err.Error()
		return l
	}
	l.Readings = len(ev.Readings)
	for _, r := range ev.Readings {
		l.Equipment = append(l.Equipment, r.EquipmentID)
	}
	slices.Sort(l.Equipment)
	l.Equipment = slices.Compact(l.Equipment)
	return l
}
