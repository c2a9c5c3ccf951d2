package e2e

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/tests/pgtest"
	"github.com/production-line-monitor/plm/tests/redistest"
)

// No log line and no start-up error ever shows an API key (right or wrong) or the
// database's password, even at debug level.
func TestLogsNeverShowSecrets(t *testing.T) {
	const (
		key      = "api-secret-key-0123456789"
		wrongKey = "wrong-secret-key-987654321"
		password = "db-secret-password-31337"
	)
	dbURL, err := url.Parse(pgtest.NewDatabase(t, pgtest.Admin(t)))
	if err != nil {
		t.Fatal(err)
	}
	dbURL.User = url.UserPassword(dbURL.User.Username(), password) // the test server trusts, and ignores it
	redisURL := redistest.Require(t)
	p := runPLM(t, "PLM_API_KEYS="+key, "PLM_DATABASE_URL="+dbURL.String(), "PLM_REDIS_URL="+redisURL,
		"PLM_REDIS_PREFIX="+redistest.Prefix(t, redisURL), "PLM_LOG_LEVEL=debug", "PLM_LOG_FORMAT=json",
		"PLM_DATA_DIR="+t.TempDir(), "PLM_MONITOR_INTERVAL=1s")

	send := func(method, path string, header http.Header, body string) {
		t.Helper()
		req, err := http.NewRequest(method, p.base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	good := http.Header{"X-Api-Key": {key}, "Content-Type": {"application/json"}}
	send("POST", "/webhook/sensor-data", good, `{"equipmentId":"press-01","sensorType":"temperature","value":70}`)
	send("POST", "/webhook/sensor-data", good, `{"equipmentId":"press-01","sensorType":"humidity","value":70}`)
	send("GET", "/equipment", http.Header{"Authorization": {"Bearer " + key}}, "")
	send("GET", "/equipment", http.Header{"X-Api-Key": {wrongKey}}, "")
	send("GET", "/equipment", http.Header{"Authorization": {"Bearer " + wrongKey}}, "")
	send("GET", "/metrics", good, "")
	time.Sleep(1200 * time.Millisecond) // a queue status line
	p.terminate(t)

	logs := p.stderr.String()
	if !strings.Contains(logs, `"msg":"http request"`) || !strings.Contains(logs, `"msg":"queue status"`) {
		t.Fatalf("the session did not log what the test looks through:\n%s", logs)
	}
	for _, secret := range []string{key, wrongKey, password} {
		if strings.Contains(logs, secret) {
			t.Errorf("a log line shows %q", secret)
		}
	}

	// A start that fails on the database says why, without the password.
	dbURL.Host = "127.0.0.1:1"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, plmBinary(t))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PLM_ADDR=" + freeAddr(t), "PLM_API_KEYS=" + key,
		"PLM_DATABASE_URL=" + dbURL.String(), "PLM_DATA_DIR=" + t.TempDir(), "PLM_LOG_LEVEL=debug"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err == nil {
		t.Fatal("plm started without its database")
	}
	if !strings.Contains(out.String(), "127.0.0.1") {
		t.Errorf("the start-up error does not say which database failed:\n%s", out.String())
	}
	for _, secret := range []string{key, password} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("the start-up error shows %q:\n%s", secret, out.String())
		}
	}
}
