package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/production-line-monitor/plm/bootstrap"
)

// deployment is a service started by plm simulate -spawn.
type deployment struct {
	url, metricsURL, apiKey string
	stop                    func()
}

// spawnDeployment starts the service from this binary with the environment's configuration,
// in scratch storage: `plm serve` and one `plm worker` when PLM_REDIS_URL is set, else
// `plm run`. It returns once every process is ready.
func spawnDeployment(ctx context.Context, stderr io.Writer, keep bool) (*deployment, error) {
	cfg, err := bootstrap.LoadConfig(os.Getenv)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this binary: %w", err)
	}
	name := fmt.Sprintf("plm_sim_%d", time.Now().UnixNano()/1e6)
	scratch, cleanup, err := bootstrap.Scratch(ctx, cfg, name)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	d := &deployment{apiKey: "sim_" + hex.EncodeToString(raw)}
	// The profiler's address would be taken twice: the processes started here have none.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PLM_PPROF_ADDR=") })
	env = append(env, scratch...)
	env = append(env, "PLM_API_KEYS="+d.apiKey)
	if os.Getenv("PLM_LOG_LEVEL") == "" {
		env = append(env, "PLM_LOG_LEVEL=warn")
	}
	roles := []string{"run"}
	if !cfg.Queue.Embedded() {
		roles = []string{"serve", "worker"}
	}
	type proc struct {
		cmd    *exec.Cmd
		exited chan struct{}
	}
	var procs []proc
	d.stop = func() {
		for _, p := range procs {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
		}
		if keep {
			// Named, not shown: the database URL may hold a password.
			where := scratch[0]
			if !cfg.Database.Embedded() {
				where = "database " + name + " on PLM_DATABASE_URL's server"
				if !cfg.Queue.Embedded() {
					where += ", Redis key prefix " + name
				}
			}
			fmt.Fprintf(stderr, "kept the run's storage: %s\n", where)
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cleanup(cctx); err != nil {
			fmt.Fprintln(stderr, "plm simulate: clean up:", err)
		}
	}
	for _, role := range roles {
		port, err := freePort()
		if err != nil {
			d.stop()
			return nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		cmd := exec.Command(self, role)
		cmd.Env = append(env, "PLM_ADDR="+addr)
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Start(); err != nil {
			d.stop()
			return nil, fmt.Errorf("start plm %s: %w", role, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		procs = append(procs, proc{cmd, exited})
		if err := waitReady(ctx, "http://"+addr, exited); err != nil {
			d.stop()
			return nil, fmt.Errorf("plm %s: %w", role, err)
		}
		if role != "worker" {
			d.url = "http://" + addr
		}
		if role != "serve" {
			d.metricsURL = "http://" + addr + "/metrics"
		}
		fmt.Fprintf(stderr, "started plm %s on %s (pid %d)\n", role, addr, cmd.Process.Pid)
	}
	return d, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls base/readyz until it answers 200, the process exits or a minute passes.
func waitReady(ctx context.Context, base string, exited <-chan struct{}) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("exited before it was ready (see its log above)")
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("not ready after a minute")
}
