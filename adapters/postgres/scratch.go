package postgres

import (
	"context"
	"fmt"

	neturl "net/url"

	"github.com/jackc/pgx/v5"
)

// ScratchDatabase creates the database name on the server of url (connecting to url's own
// database to do so) and returns url pointing at it, and a function that drops it again.
// It is for throwaway runs: simulations and load tests.
func ScratchDatabase(ctx context.Context, url, name string) (string, func(context.Context) error, error) {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return "", nil, fmt.Errorf("scratch database: %w", err)
	}
	admin := func(ctx context.Context, sql string) error {
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return classify(err)
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, sql)
		return err
	}
	ident := pgx.Identifier{name}.Sanitize()
	if err := admin(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	own := cc.Copy()
	own.Database = name
	drop := func(ctx context.Context) error {
		if err := admin(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	return withDatabase(url, name), drop, nil
}

// withDatabase is the connection string s with its database replaced by name.
func withDatabase(s, name string) string {
	if u, err := neturl.Parse(s); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	return s + " dbname=" + name // keyword form: the last setting wins
}
