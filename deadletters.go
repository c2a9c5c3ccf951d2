package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/production-line-monitor/plm/adapters/redisstream"
	"github.com/production-line-monitor/plm/bootstrap"
)

const deadLettersUsage = `Usage:
  plm deadletters list [-n N] [-json]   the oldest N dead letters (default 100, 0: all), one a
                                        line, or as JSON lines
  plm deadletters replay -all | ID...   put dead letters back on the partition streams they
                                        came from, and take them off the dead-letter stream

Dead letters are the messages of the Redis queue that failed every retry, in the stream
<PLM_REDIS_PREFIX>:readings:poison; the commands need PLM_REDIS_URL and the deployment's
PLM_REDIS_PREFIX and PLM_PARTITIONS. Replay refuses, and replays nothing, when one of the
chosen dead letters is not there, did not come from a partition stream of the deployment, or
does not decode.
`

// errNoDeadLetters is the answer of the in-process set-up.
var errNoDeadLetters = errors.New("PLM_REDIS_URL is not set: the in-process queue keeps no dead letters " +
	"(a message that fails every retry there is answered 503 to the request that sent it, and nothing of it is stored)")

// deadLetters runs 'plm deadletters list|replay'.
func deadLetters(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	defer cancelTimeout()
	if len(args) == 0 {
		fmt.Fprint(stderr, deadLettersUsage)
		return 2
	}
	var err error
	switch args[0] {
	case "list":
		err = listDeadLetters(ctx, args[1:], stdout, stderr)
	case "replay":
		err = replayDeadLetters(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, deadLettersUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "plm deadletters: unknown command %q\n\n%s", args[0], deadLettersUsage)
		return 2
	}
	return exitCode("plm deadletters", err, stderr)
}

// openDeadLetters connects to the deployment's Redis, with the client options of the
// service's (bootstrap): callers' deadlines hold, and a Redis that is down is reported at once.
func openDeadLetters() (*redisstream.DeadLetters, func(), error) {
	cfg, err := bootstrap.LoadConfig(os.Getenv)
	if err != nil {
		return nil, nil, err
	}
	q := cfg.Queue
	if q.Embedded() {
		return nil, nil, errNoDeadLetters
	}
	opt, err := goredis.ParseURL(q.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("PLM_REDIS_URL: %w", err)
	}
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries, opt.DialerRetries = 1, 1
	c := goredis.NewClient(opt)
	names := redisstream.Names{Prefix: q.Prefix, Partitions: q.Partitions}
	return redisstream.NewDeadLetters(c, names), func() { _ = c.Close() }, nil
}

// deadLetterJSON is a line of 'plm deadletters list -json'.
type deadLetterJSON struct {
	ID             string    `json:"id"`
	DeadLetteredAt time.Time `json:"dead_lettered_at"`
	MessageUUID    string    `json:"message_uuid"`
	Stream         string    `json:"stream"`
	Handler        string    `json:"handler"`
	Reason         string    `json:"reason"`
	Payload        string    `json:"payload"`
	PayloadBytes   int       `json:"payload_bytes"`
	Readings       int       `json:"readings"`
	Equipment      []string  `json:"equipment"`
	Undecodable    string    `json:"undecodable,omitempty"`
}

func listDeadLetters(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plm deadletters list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 100, "list the oldest `N` dead letters; 0: all")
	asJSON := fs.Bool("json", false, "print JSON lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *n < 0 {
		fmt.Fprintln(stderr, "-n must be 0 or more")
		return errUsage
	}
	dl, closeClient, err := openDeadLetters()
	if err != nil {
		return err
	}
	defer closeClient()
	letters, total, err := dl.List(ctx, *n)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, l := range letters {
			eq := l.Equipment
			if eq == nil {
				eq = []string{}
			}
			if err := enc.Encode(deadLetterJSON{
				ID: l.ID, DeadLetteredAt: l.At, MessageUUID: l.MessageUUID, Stream: l.Stream,
				Handler: l.Handler, Reason: l.Reason, Payload: l.Summary(), PayloadBytes: l.PayloadBytes,
				Readings: l.Readings, Equipment: eq, Undecodable: l.Undecodable,
			}); err != nil {
				return err
			}
		}
	} else {
		if len(letters) == 0 {
			fmt.Fprintln(stdout, "no dead letters")
			return nil
		}
		w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tDEAD-LETTERED\tSTREAM\tHANDLER\tMESSAGE\tPAYLOAD\tREASON")
		for _, l := range letters {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.ID, l.At.Format("2006-01-02T15:04:05.000Z07:00"),
				cell(l.Stream), cell(l.Handler), cell(l.MessageUUID), l.Summary(), cell(l.Reason))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if int64(len(letters)) < total {
		fmt.Fprintf(stderr, "%d of %d dead letters listed, the oldest; -n 0 lists them all\n", len(letters), total)
	}
	return nil
}

// cell puts s on one line of a table: a reason may span several (errors.Join).
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.NewReplacer("\n", "; ", "\t", " ").Replace(s)
}

func replayDeadLetters(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plm deadletters replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := fs.Bool("all", false, "replay every dead letter")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	ids := fs.Args()
	if *all == (len(ids) > 0) {
		fmt.Fprintln(stderr, "replay takes -all or the ids of dead letters ('plm deadletters list' shows them), not both")
		return errUsage
	}
	dl, closeClient, err := openDeadLetters()
	if err != nil {
		return err
	}
	defer closeClient()
	if *all {
		letters, _, err := dl.List(ctx, 0)
		if err != nil {
			return err
		}
		if len(letters) == 0 {
			fmt.Fprintln(stdout, "no dead letters to replay")
			return nil
		}
		for _, l := range letters {
			ids = append(ids, l.ID)
		}
	}
	done, err := dl.Replay(ctx, ids)
	for _, r := range done {
		fmt.Fprintf(stdout, "replayed %s (message %s, %s) to %s as %s\n", r.ID, r.MessageUUID, r.Summary(), r.Stream, r.EntryID)
	}
	if err != nil {
		if len(done) > 0 {
			return fmt.Errorf("%d replayed, then: %w", len(done), err)
		}
		return err
	}
	return nil
}
