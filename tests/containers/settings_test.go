package containers_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestComposeRunsTheDocumentedServerSettings checks that the compose file's TimescaleDB runs
// with exactly the settings of adapters/postgres/postgresql.conf, each passed as -c.
func TestComposeRunsTheDocumentedServerSettings(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join(root, "adapters", "postgres", "postgresql.conf"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, line := range strings.Split(string(conf), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("postgresql.conf: %q is not name = value", line)
		}
		want[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	if len(want) < 10 {
		t.Fatalf("postgresql.conf has %d settings: not the file meant", len(want))
	}
	c, err := parseCompose(readFiles(t).compose)
	if err != nil {
		t.Fatal(err)
	}
	db := c.Services["timescaledb"]
	if db == nil || db.Command == nil || db.Command.first() != "postgres" {
		t.Fatal("the timescaledb service does not run postgres with settings")
	}
	got := map[string]string{}
	args := db.Command.Args[1:]
	for i := 0; i < len(args); i += 2 {
		if args[i] != "-c" || i+1 == len(args) {
			t.Fatalf("timescaledb command: %q is not -c name=value", args[i:])
		}
		name, value, _ := strings.Cut(args[i+1], "=")
		got[name] = value
	}
	for name, value := range want {
		if got[name] != value {
			t.Errorf("%s: compose passes %q, postgresql.conf says %q", name, got[name], value)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: compose passes it, postgresql.conf does not have it", name)
		}
	}
}
