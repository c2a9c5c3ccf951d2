package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/production-line-monitor/plm/tests/redistest"
)

// runOnce runs a plm command that exits (not a service) with env, and returns its exit
// code, standard output and standard error.
func runOnce(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, plmBinary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatalf("plm %s: %v", strings.Join(args, " "), err)
	}
	return 0, stdout.String(), stderr.String()
}

// deadLetterLine is a line of 'plm deadletters list -json'.
type deadLetterLine struct {
	ID             string    `json:"id"`
	DeadLetteredAt time.Time `json:"dead_lettered_at"`
	MessageUUID    string    `json:"message_uuid"`
	Stream         string    `json:"stream"`
	Handler        string    `json:"handler"`
	Reason         string    `json:"reason"`
	Payload        string    `json:"payload"`
	Readings       int       `json:"readings"`
	Equipment      []string  `json:"equipment"`
	Undecodable    string    `json:"undecodable"`
}

// streamIDs lists the entry ids of a stream.
func streamIDs(t *testing.T, c rueidis.Client, stream string) []string {
	t.Helper()
	entries, err := c.Do(context.Background(), c.B().Xrange().Key(stream).Start("-").End("+").Build()).AsXRange()
	if err != nil && !rueidis.IsRedisNil(err) {
		t.Fatalf("xrange %s: %v", stream, err)
	}
	ids := []string{}
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	return ids
}

// An operator lists the dead letters and, once their cause is gone, replays them with the
// built binary: their readings are stored exactly once, even when a message is replayed
// twice, and the dead-letter stream empties.
//
// The failure is one a replay can cure: PostgreSQL refuses the readings of press-02 (a CHECK
// constraint, standing for any storage rule that rejects valid readings until someone
// changes it). A constraint violation is not an outage (ports.ErrConflict, not
// ErrUnavailable): the message is retried PLM_MAX_RETRIES times and dead-lettered, while
// the readings behind it are stored. A message no worker can decode is dead-lettered too,
// at once; replaying it would only fail again, so the command refuses it.
func TestDeadLettersListAndReplay(t *testing.T) {
	d := newDeployment(t, "", "PLM_MAX_RETRIES=1")
	p := d.run("run")
	c := redistest.Connect(t, d.redis)
	ctx := context.Background()
	poison := d.prefix + ":readings:poison"
	if _, err := d.db.Exec(`ALTER TABLE sensor_readings ADD CONSTRAINT e2e_refuse_press_02 CHECK (equipment_id <> 'press-02')`); err != nil {
		t.Fatal(err)
	}

	err := c.Do(ctx, c.B().Xadd().Key(d.prefix+":readings:0").Id("*").FieldValue().
		FieldValue("_watermill_message_uuid", "poison-1").FieldValue("payload", "{not json").Build()).Error()
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Add(-time.Minute)
	postJSON(t, p, `{"readings":[`+jsonReading("press-02", "temperature", "r-1", 70, ts)+","+
		jsonReading("press-02", "temperature", "r-2", 71, ts.Add(time.Second))+`]}`)
	postJSON(t, p, jsonReading("press-01", "temperature", "ok-1", 70, ts))
	d.waitStored(1, p)
	deadline := time.Now().Add(60 * time.Second)
	for len(streamIDs(t, c, poison)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("dead letters %v, want 2\n%s", streamIDs(t, c, poison), p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// list, as a table and as JSON lines.
	code, out, errOut := runOnce(t, d.env, "deadletters", "list")
	if code != 0 {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") {
		t.Fatalf("list printed %d lines, want a header and 2 dead letters:\n%s", len(lines), out)
	}
	if !strings.Contains(out, "2 readings of press-02") || !strings.Contains(out, "e2e_refuse_press_02") ||
		!strings.Contains(out, "process_readings") || !strings.Contains(out, "poison-1") ||
		!strings.Contains(out, "undecodable (9 bytes)") {
		t.Errorf("list does not show both dead letters, their payload, handler and reason:\n%s", out)
	}
	code, out, errOut = runOnce(t, d.env, "deadletters", "list", "-json")
	if code != 0 {
		t.Fatalf("list -json: exit %d\n%s%s", code, out, errOut)
	}
	var blocked, garbled deadLetterLine
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l deadLetterLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("list -json: %v in %q", err, line)
		}
		if l.MessageUUID == "poison-1" {
			garbled = l
		} else {
			blocked = l
		}
	}
	if blocked.Readings != 2 || len(blocked.Equipment) != 1 || blocked.Equipment[0] != "press-02" ||
		!strings.HasPrefix(blocked.Stream, d.prefix+":readings:") || blocked.Handler != "process_readings" ||
		!strings.Contains(blocked.Reason, "e2e_refuse_press_02") || blocked.MessageUUID == "" ||
		time.Since(blocked.DeadLetteredAt) > 2*time.Minute || blocked.Undecodable != "" {
		t.Errorf("the refused message's line: %+v", blocked)
	}
	if garbled.Stream != d.prefix+":readings:0" || garbled.Undecodable == "" || garbled.Payload != "undecodable (9 bytes)" {
		t.Errorf("the undecodable message's line: %+v", garbled)
	}
	if ids := streamIDs(t, c, poison); len(ids) != 2 || !strings.Contains(ids[0]+ids[1], blocked.ID) ||
		!strings.Contains(ids[0]+ids[1], garbled.ID) {
		t.Fatalf("listed ids %s and %s, the stream holds %v", blocked.ID, garbled.ID, ids)
	}
	raw, err := c.Do(ctx, c.B().Xrange().Key(poison).Start(blocked.ID).End(blocked.ID).Build()).AsXRange()
	if err != nil || len(raw) != 1 {
		t.Fatalf("read dead letter %s: %v", blocked.ID, err)
	}

	// replay -all refuses the undecodable one, and replays nothing.
	code, out, errOut = runOnce(t, d.env, "deadletters", "replay", "-all")
	if code != 1 || !strings.Contains(errOut, garbled.ID) || !strings.Contains(errOut, "nothing replayed") {
		t.Errorf("replay -all with an undecodable dead letter: exit %d, %q, %q; want 1 naming %s", code, out, errOut, garbled.ID)
	}
	if ids := streamIDs(t, c, poison); len(ids) != 2 {
		t.Errorf("dead letters %v after a refused replay, want both", ids)
	}

	// The cause fixed, replay the refused message: its readings are stored.
	if _, err := d.db.Exec(`ALTER TABLE sensor_readings DROP CONSTRAINT e2e_refuse_press_02`); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runOnce(t, d.env, "deadletters", "replay", blocked.ID)
	want := "replayed " + blocked.ID + " (message " + blocked.MessageUUID + ", 2 readings of press-02) to " + blocked.Stream + " as "
	if code != 0 || !strings.HasPrefix(out, want) {
		t.Fatalf("replay: exit %d, %q, %q; want %q…", code, out, errOut, want)
	}
	d.waitStored(3, p)
	if ids := streamIDs(t, c, poison); len(ids) != 1 || ids[0] != garbled.ID {
		t.Errorf("dead letters %v after the replay, want only the undecodable %s", ids, garbled.ID)
	}

	// The same message dead-lettered again and replayed again (what a crash between append
	// and delete would leave, were they not one script): its readings are not stored twice.
	// The reading posted after it, in the same partition, is stored after it is handled.
	args := c.B().Xadd().Key(poison).Id("*").FieldValue()
	for k, v := range raw[0].FieldValues {
		args = args.FieldValue(k, v)
	}
	again, err := c.Do(ctx, args.Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runOnce(t, d.env, "deadletters", "replay", again); code != 0 {
		t.Fatalf("replay of the copy: exit %d, %q, %q", code, out, errOut)
	}
	postJSON(t, p, jsonReading("press-02", "temperature", "r-3", 72, ts.Add(2*time.Second)))
	d.waitStored(4, p)
	if n := d.count("SELECT count(*) FROM sensor_readings WHERE equipment_id = 'press-02' AND reading_id IN ('r-1', 'r-2')"); n != 2 {
		t.Errorf("%d readings r-1 and r-2 of press-02 stored, want each once", n)
	}

	// A dead letter replayed already is not there any more: an error that names it.
	code, _, errOut = runOnce(t, d.env, "deadletters", "replay", blocked.ID)
	if code != 1 || !strings.Contains(errOut, blocked.ID) || !strings.Contains(errOut, "not found") {
		t.Errorf("replay of a replayed dead letter: exit %d, %q; want 1 naming %s", code, errOut, blocked.ID)
	}

	// Discarded by hand, the undecodable one leaves an empty stream.
	if err := c.Do(ctx, c.B().Xdel().Key(poison).Id(garbled.ID).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runOnce(t, d.env, "deadletters", "list")
	if code != 0 || strings.TrimSpace(out) != "no dead letters" {
		t.Errorf("list of an empty stream: exit %d, %q", code, out)
	}
	if ids := streamIDs(t, c, poison); len(ids) != 0 {
		t.Errorf("dead letters %v at the end, want none", ids)
	}
}

// The in-process set-up has no dead-letter stream: the command says so rather than
// listing nothing.
func TestDeadLettersNeedRedis(t *testing.T) {
	code, out, errOut := runOnce(t, []string{"PLM_DATA_DIR=" + t.TempDir()}, "deadletters", "list")
	if code != 1 || out != "" || !strings.Contains(errOut, "PLM_REDIS_URL is not set") ||
		!strings.Contains(errOut, "in-process queue keeps no dead letters") {
		t.Errorf("without PLM_REDIS_URL: exit %d, %q, %q; want 1 and why", code, out, errOut)
	}
}
