package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"gorm.io/gorm"

	"github.com/production-line-monitor/plm/ports"
)

func TestClassify(t *testing.T) {
	pgErr := func(code string) error {
		return fmt.Errorf("query: %w", &pgconn.PgError{Code: code, Message: "server says " + code})
	}
	tests := []struct {
		name string
		err  error
		want error // nil: none of the ports' errors
	}{
		{"gorm_record_not_found", gorm.ErrRecordNotFound, ports.ErrNotFound},
		{"pgx_no_rows", pgx.ErrNoRows, ports.ErrNotFound},
		{"unique_violation", pgErr("23505"), ports.ErrConflict},
		{"foreign_key_violation", pgErr("23503"), ports.ErrConflict},
		{"check_violation", pgErr("23514"), ports.ErrConflict},
		{"not_null_violation", pgErr("23502"), ports.ErrConflict},
		{"statement_timeout", pgErr("57014"), ports.ErrUnavailable},
		{"too_many_connections", pgErr("53300"), ports.ErrUnavailable},
		{"disk_full", pgErr("53100"), ports.ErrUnavailable},
		{"admin_shutdown", pgErr("57P01"), ports.ErrUnavailable},
		{"cannot_connect_now", pgErr("57P03"), ports.ErrUnavailable},
		{"connection_failure", pgErr("08006"), ports.ErrUnavailable},
		{"lock_not_available", pgErr("55P03"), ports.ErrUnavailable},
		{"read_only_standby", pgErr("25006"), ports.ErrUnavailable},
		{"partition_fenced", pgErr("PLM01"), ports.ErrFenced},
		{"raise_exception", pgErr("P0001"), nil},
		{"undefined_table", pgErr("42P01"), nil},
		{"syntax_error", pgErr("42601"), nil},
		{"connection_refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, ports.ErrUnavailable},
		{"connection_reset", fmt.Errorf("read: %w", syscall.ECONNRESET), ports.ErrUnavailable},
		{"server_gone", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), ports.ErrUnavailable},
		{"conn_closed", pgconn.ErrConnClosed, ports.ErrUnavailable},
		{"other", errors.New("something else"), nil},
	}
	all := []error{ports.ErrNotFound, ports.ErrConflict, ports.ErrUnavailable, ports.ErrFenced}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			for _, e := range all {
				if e == tt.want {
					assert.ErrorIs(t, got, e)
				} else {
					assert.NotErrorIs(t, got, e)
				}
			}
			if tt.want != ports.ErrNotFound {
				assert.ErrorIs(t, got, tt.err, "the cause is kept")
			}
		})
	}
}

func TestFailReportsTheContextAndAClosedPool(t *testing.T) {
	d := &DB{}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := d.fail(ctx, "list equipment", pgErr57014())
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ports.ErrUnavailable, "canceled by the caller, not by the database")

	d.closed.Store(true)
	err = d.fail(t.Context(), "list equipment", errors.New("sql: database is closed"))
	assert.ErrorIs(t, err, ports.ErrUnavailable)
	assert.ErrorIs(t, d.fail(t.Context(), "get equipment", gorm.ErrRecordNotFound), ports.ErrNotFound)
	assert.NoError(t, d.fail(t.Context(), "get equipment", nil))
}

func pgErr57014() error {
	return &pgconn.PgError{Code: "57014", Message: "canceling statement due to user request"}
}
