package redisstream_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	wmredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/production-line-monitor/plm/adapters/redisstream"
	plmwatermill "github.com/production-line-monitor/plm/adapters/watermill"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

func TestDeadLetterSummary(t *testing.T) {
	tests := []struct {
		name string
		dl   redisstream.DeadLetter
		want string
	}{
		{"one_reading", redisstream.DeadLetter{Readings: 1, Equipment: []string{"press-01"}}, "1 reading of press-01"},
		{"three_equipment", redisstream.DeadLetter{Readings: 4, Equipment: []string{"a", "b", "c"}},
			"4 readings of a, b, c"},
		{"fourth_equipment", redisstream.DeadLetter{Readings: 9, Equipment: []string{"a", "b", "c", "d", "e"}},
			"9 readings of a, b, c and 2 more"},
		{"no_readings", redisstream.DeadLetter{}, "0 readings"},
		{"undecodable", redisstream.DeadLetter{PayloadBytes: 9, Undecodable: "bad"}, "undecodable (9 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.dl.Summary(); got != tt.want {
				t.Errorf("Summary() = %q, want %q", got, tt.want)
			}
		})
	}
}

// addDeadLetter appends to the dead-letter stream what the worker's PoisonQueue middleware
// appends for a message with payload that failed on stream, and returns its entry id.
func addDeadLetter(t testing.TB, c *redis.Client, names redisstream.Names, uuid, stream string, payload []byte) string {
	t.Helper()
	msg := message.NewMessage(uuid, payload)
	msg.Metadata.Set("stream_entry", "1-0")
	msg.Metadata.Set("reason_poisoned", "write 1 readings: conflict\nsecond line")
	msg.Metadata.Set("topic_poisoned", stream)
	msg.Metadata.Set("handler_poisoned", redisstream.GroupProcess)
	msg.Metadata.Set("subscriber_poisoned", "partitionSubscriber")
	values, err := wmredis.DefaultMarshallerUnmarshaller{}.Marshal(names.Poison(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return addRaw(t, c, names.Poison(), values)
}

func addRaw(t testing.TB, c *redis.Client, stream string, values map[string]any) string {
	t.Helper()
	id, err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: values}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// payloadOf encodes readings as the publisher does.
func payloadOf(t testing.TB, rs ...sensor.Reading) []byte {
	t.Helper()
	msg, err := plmwatermill.Marshal("m", ports.ReadingsReceived{Readings: rs})
	if err != nil {
		t.Fatal(err)
	}
	return msg.Payload
}

// List reads each dead letter's id, time, message, stream, handler, reason and payload, the
// oldest first, and tells the ones it cannot decode.
func TestIntegrationDeadLettersList(t *testing.T) {
	c, names := setup(t, 2)
	dl := redisstream.NewDeadLetters(c, names)
	ctx := context.Background()

	letters, total, err := dl.List(ctx, 0)
	if err != nil || len(letters) != 0 || total != 0 {
		t.Fatalf("List of no stream = %v, %d, %v; want nothing", letters, total, err)
	}

	before := time.Now().Add(-time.Second)
	good := addDeadLetter(t, c, names, "msg-good", names.Readings(1), payloadOf(t,
		reading(t, "r-1", "press-02", 1), reading(t, "r-2", "press-01", 2), reading(t, "r-3", "press-02", 3)))
	bad := addDeadLetter(t, c, names, "msg-bad", names.Readings(0), []byte("{not json"))
	raw := addRaw(t, c, names.Poison(), map[string]any{"payload": "abc"})

	letters, total, err = dl.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if total != 3 || len(letters) != 3 {
		t.Fatalf("List = %d letters of %d, want 3 of 3", len(letters), total)
	}
	g := letters[0]
	if g.ID != good || g.MessageUUID != "msg-good" || g.Stream != names.Readings(1) || g.Handler != redisstream.GroupProcess ||
		g.Reason != "write 1 readings: conflict\nsecond line" || g.Readings != 3 ||
		!slices.Equal(g.Equipment, []string{"press-01", "press-02"}) || g.Undecodable != "" {
		t.Errorf("the decodable dead letter: %+v", g)
	}
	if g.At.Before(before) || g.At.After(time.Now().Add(time.Second)) {
		t.Errorf("dead-lettered at %v, want the time of its entry id %s", g.At, g.ID)
	}
	if got := g.Summary(); got != "3 readings of press-01, press-02" {
		t.Errorf("summary %q", got)
	}
	b := letters[1]
	if b.ID != bad || b.MessageUUID != "msg-bad" || b.Undecodable == "" || b.Summary() != "undecodable (9 bytes)" {
		t.Errorf("the undecodable dead letter: %+v, %q", b, b.Summary())
	}
	r := letters[2]
	if r.ID != raw || !strings.Contains(r.Undecodable, "not a Watermill message") || r.Stream != "" {
		t.Errorf("the entry that is no message: %+v", r)
	}

	letters, total, err = dl.List(ctx, 2)
	if err != nil || total != 3 || len(letters) != 2 || letters[0].ID != good || letters[1].ID != bad {
		t.Errorf("List(2) = %d letters of %d, %v; want the oldest 2 of 3", len(letters), total, err)
	}
}

// A message that failed every retry is listed with the reason of its failure and, once the
// cause is gone, replayed: it is stored, and the dead-letter stream is empty. Replaying it
// again is an error that names it, and appends nothing.
func TestIntegrationDeadLettersReplayStoresTheMessage(t *testing.T) {
	errBroken := errors.New("storage refuses bad-01")
	var broken atomic.Bool
	broken.Store(true)
	e := newWorkerEnv(t, 1, func(b ports.ProcessedBatch, _ int) error {
		for _, r := range b.Readings {
			if r.EquipmentID == "bad-01" && broken.Load() {
				return errBroken
			}
		}
		return nil
	})
	ctx := context.Background()
	e.publish(t, reading(t, "r-1", "bad-01", 1), reading(t, "r-2", "bad-01", 2))
	e.publish(t, reading(t, "r-3", "good-01", 3))
	e.startWorker(t, "w1", 1)
	waitFor(t, "the message behind the failing one stored", func() bool { return len(e.storedValues(t, "good-01")) == 1 })
	waitFor(t, "the failing message dead-lettered", func() bool { return len(ids(t, e.client, e.names.Poison())) == 1 })
	queued := readStream(t, e.client, e.names.Readings(0))
	if len(queued) != 2 {
		t.Fatalf("%d messages in the partition, want 2", len(queued))
	}

	dl := redisstream.NewDeadLetters(e.client, e.names)
	letters, _, err := dl.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := letters[0]
	if l.MessageUUID != queued[0].uuid || l.Stream != e.names.Readings(0) || l.Handler != redisstream.GroupProcess ||
		!strings.Contains(l.Reason, errBroken.Error()) || l.Summary() != "2 readings of bad-01" {
		t.Fatalf("dead letter %+v (%s), want message %s of %s failed with %q",
			l, l.Summary(), queued[0].uuid, e.names.Readings(0), errBroken)
	}

	broken.Store(false)
	done, err := dl.Replay(ctx, []string{l.ID})
	if err != nil || len(done) != 1 || done[0].ID != l.ID || done[0].Stream != e.names.Readings(0) || done[0].EntryID == "" {
		t.Fatalf("Replay = %+v, %v; want %s replayed to %s", done, err, l.ID, e.names.Readings(0))
	}
	waitFor(t, "the replayed readings stored", func() bool { return len(e.storedValues(t, "bad-01")) == 2 })
	if got := ids(t, e.client, e.names.Poison()); len(got) != 0 {
		t.Errorf("dead letters %v after the replay, want none", got)
	}

	// The replayed entry is the message as it was queued: same id, payload and metadata.
	entries, err := e.client.XRange(ctx, e.names.Readings(0), done[0].EntryID, done[0].EntryID).Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("the replayed entry: %v, %v", entries, err)
	}
	msg, err := wmredis.DefaultMarshallerUnmarshaller{}.Unmarshal(entries[0].Values)
	if err != nil {
		t.Fatal(err)
	}
	if msg.UUID != l.MessageUUID || len(msg.Metadata) != 0 {
		t.Errorf("replayed message %s with metadata %v, want %s with none", msg.UUID, msg.Metadata, l.MessageUUID)
	}

	_, err = dl.Replay(ctx, []string{l.ID})
	if !errors.Is(err, ports.ErrNotFound) || !strings.Contains(err.Error(), l.ID) {
		t.Errorf("second Replay: %v, want not found naming %s", err, l.ID)
	}
	if n := len(ids(t, e.client, e.names.Readings(0))); n != 3 {
		t.Errorf("%d entries in the partition after a second replay, want 3 (2 queued, 1 replayed)", n)
	}
}

// Replay checks every dead letter asked for before it replays any: one that is not there,
// or cannot be replayed, fails the call, which names it and leaves everything as it was.
func TestIntegrationDeadLettersReplayRefuses(t *testing.T) {
	valid := func(t *testing.T, c *redis.Client, n redisstream.Names) string {
		return addDeadLetter(t, c, n, "msg-ok", n.Readings(0), payloadOf(t, reading(t, "r-1", "press-01", 1)))
	}
	tests := []struct {
		name string
		add  func(*testing.T, *redis.Client, redisstream.Names) string // the bad dead letter's id
		want error
	}{
		{"not_in_the_stream", func(*testing.T, *redis.Client, redisstream.Names) string { return "1-1" }, ports.ErrNotFound},
		{"malformed_id", func(*testing.T, *redis.Client, redisstream.Names) string { return "press-01" }, nil},
		{"undecodable", func(t *testing.T, c *redis.Client, n redisstream.Names) string {
			return addDeadLetter(t, c, n, "msg-bad", n.Readings(1), []byte("{not json"))
		}, redisstream.ErrNotReplayable},
		{"not_a_message", func(t *testing.T, c *redis.Client, n redisstream.Names) string {
			return addRaw(t, c, n.Poison(), map[string]any{"payload": "abc"})
		}, redisstream.ErrNotReplayable},
		{"another_deployment", func(t *testing.T, c *redis.Client, n redisstream.Names) string {
			other := redisstream.Names{Prefix: n.Prefix + "-other", Partitions: n.Partitions}
			return addDeadLetter(t, c, n, "msg-other", other.Readings(0), payloadOf(t, reading(t, "r-2", "press-01", 2)))
		}, redisstream.ErrNotReplayable},
		{"partition_out_of_range", func(t *testing.T, c *redis.Client, n redisstream.Names) string {
			return addDeadLetter(t, c, n, "msg-far", n.Readings(n.Partitions), payloadOf(t, reading(t, "r-2", "press-01", 2)))
		}, redisstream.ErrNotReplayable},
		{"the_poison_stream", func(t *testing.T, c *redis.Client, n redisstream.Names) string {
			return addDeadLetter(t, c, n, "msg-loop", n.Poison(), payloadOf(t, reading(t, "r-2", "press-01", 2)))
		}, redisstream.ErrNotReplayable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, names := setup(t, 2)
			ok := valid(t, c, names)
			bad := tt.add(t, c, names)
			before := ids(t, c, names.Poison())

			done, err := redisstream.NewDeadLetters(c, names).Replay(context.Background(), []string{ok, bad})
			if err == nil || !strings.Contains(err.Error(), bad) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Replay: %v, want an error (%v) naming %s", err, tt.want, bad)
			}
			if len(done) != 0 {
				t.Errorf("replayed %+v, want none", done)
			}
			if got := ids(t, c, names.Poison()); !slices.Equal(got, before) {
				t.Errorf("dead letters %v after a refused replay, want %v", got, before)
			}
			for p := range names.Partitions {
				if got := ids(t, c, names.Readings(p)); len(got) != 0 {
					t.Errorf("%s holds %v after a refused replay, want nothing", names.Readings(p), got)
				}
			}
		})
	}
}

// deleteAfterLookUp deletes a dead letter once Replay has looked it up, as a replay running
// at the same moment would.
type deleteAfterLookUp struct {
	other  *redis.Client
	stream string
}

func (deleteAfterLookUp) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (deleteAfterLookUp) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h deleteAfterLookUp) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			if args := c.Args(); c.Name() == "xrange" && args[1] == h.stream {
				if derr := h.other.XDel(ctx, h.stream, args[2].(string)).Err(); derr != nil {
					return derr
				}
			}
		}
		return err
	}
}

// A dead letter that leaves the stream between Replay's look-up and its replay (another
// operator replayed it meanwhile) is not appended again: Replay says it is gone.
func TestIntegrationDeadLettersReplayOfALetterGoneMeanwhile(t *testing.T) {
	c, names := setup(t, 1)
	id := addDeadLetter(t, c, names, "msg-1", names.Readings(0), payloadOf(t, reading(t, "r-1", "press-01", 1)))
	racing := redis.NewClient(c.Options())
	t.Cleanup(func() { _ = racing.Close() })
	racing.AddHook(deleteAfterLookUp{other: c, stream: names.Poison()})

	done, err := redisstream.NewDeadLetters(racing, names).Replay(context.Background(), []string{id})
	if !errors.Is(err, ports.ErrNotFound) || !strings.Contains(err.Error(), id) || len(done) != 0 {
		t.Errorf("Replay = %+v, %v; want not found naming %s", done, err, id)
	}
	if got := ids(t, c, names.Readings(0)); len(got) != 0 {
		t.Errorf("%s holds %v, want nothing: the letter was gone", names.Readings(0), got)
	}
}
