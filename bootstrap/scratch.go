package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/production-line-monitor/plm/adapters/postgres"
	redisadapter "github.com/production-line-monitor/plm/adapters/redis"
)

// Scratch prepares the storage and queue of a throwaway deployment beside cfg's: a new
// database named name on cfg's PostgreSQL server and the Redis key prefix name on cfg's
// Redis, or, for the embedded set-up, a new data directory. It returns the environment
// (PLM_* settings) that the deployment's processes need on top of cfg's, and a function
// that removes it all again.
func Scratch(ctx context.Context, cfg Config, name string) (env []string, cleanup func(context.Context) error, err error) {
	if cfg.Database.Embedded() {
		dir, err := os.MkdirTemp("", name+"-")
		if err != nil {
			return nil, nil, fmt.Errorf("scratch data directory: %w", err)
		}
		return []string{"PLM_DATA_DIR=" + filepath.Join(dir, "data")},
			func(context.Context) error { return os.RemoveAll(dir) }, nil
	}
	url, drop, err := postgres.ScratchDatabase(ctx, cfg.Database.URL, name)
	if err != nil {
		return nil, nil, err
	}
	env = []string{"PLM_DATABASE_URL=" + url}
	cleanup = drop
	if !cfg.Queue.Embedded() {
		env = append(env, "PLM_REDIS_PREFIX="+name)
		cleanup = func(ctx context.Context) error {
			c, err := redisadapter.Open(redisadapter.Config{URL: cfg.Queue.RedisURL, Prefix: name})
			if err == nil {
				err = c.DeleteAll(ctx)
				c.Close()
			}
			return errors.Join(err, drop(ctx))
		}
	}
	return env, cleanup, nil
}
