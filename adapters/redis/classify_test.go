package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/ports"
	"github.com/production-line-monitor/plm/tests/redistest"
)

func TestFail(t *testing.T) {
	tests := []struct {
		name            string
		err             error
		wantUnavailable bool
	}{
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"broken_pipe", fmt.Errorf("write: %w", syscall.EPIPE), true},
		{"server_gone", io.EOF, true},
		{"cut_short", io.ErrUnexpectedEOF, true},
		{"client_closed", rueidis.ErrClosing, true},
		{"connection_timeout", fmt.Errorf("read: %w", os.ErrDeadlineExceeded), true},
		{"other", errors.New("something else"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fail(t.Context(), "rate limit", tt.err)
			assert.ErrorIs(t, err, tt.err, "the cause is kept")
			assert.Contains(t, err.Error(), "rate limit: ")
			if tt.wantUnavailable {
				assert.ErrorIs(t, err, ports.ErrUnavailable)
			} else {
				assert.NotErrorIs(t, err, ports.ErrUnavailable)
			}
		})
	}
	assert.NoError(t, fail(t.Context(), "rate limit", nil))
}

func TestFailReportsTheCallersContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want error
	}{
		{"canceled", ctx, io.EOF, context.Canceled},
		{"deadline_of_the_caller", t.Context(), context.DeadlineExceeded, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fail(tt.ctx, "beat", tt.err)
			assert.ErrorIs(t, err, tt.want)
			assert.NotErrorIs(t, err, ports.ErrUnavailable, "the caller gave up, not Redis")
		})
	}
}

func TestIntegrationFailClassifiesServerErrors(t *testing.T) {
	c := redistest.Connect(t, redistest.Require(t))
	tests := []struct {
		reply           string
		wantUnavailable bool
	}{
		{"LOADING Redis is loading the dataset in memory", true},
		{"BUSY Redis is busy running a script", true},
		{"MASTERDOWN Link with MASTER is down", true},
		{"READONLY You can't write against a read only replica", true},
		{"TRYAGAIN Multiple keys request during rehashing of slot", true},
		{"CLUSTERDOWN The cluster is down", true},
		{"NOREPLICAS Not enough good replicas to write", true},
		{"OOM command not allowed when used memory > 'maxmemory'", true},
		{"ERR wrong number of arguments", false},
		{"WRONGTYPE Operation against a key holding the wrong kind of value", false},
		{"NOSCRIPT No matching script", false},
	}
	for _, tt := range tests {
		t.Run(tt.reply, func(t *testing.T) {
			// The server answers with the error the script makes.
			err := c.Do(t.Context(), c.B().Eval().Script("return redis.error_reply(ARGV[1])").Numkeys(0).
				Arg(tt.reply).Build()).Error()
			require.Error(t, err)
			var redisErr *rueidis.RedisError
			require.ErrorAs(t, err, &redisErr, "a reply of the server")
			got := fail(t.Context(), "beat", err)
			if tt.wantUnavailable {
				assert.ErrorIs(t, got, ports.ErrUnavailable)
			} else {
				assert.NotErrorIs(t, got, ports.ErrUnavailable)
			}
		})
	}
}
