// Package docs checks the documentation against the service: the configuration it lists, and
// every example of docs/API_EXAMPLES.md run against the real binary.
package docs

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/production-line-monitor/plm/bootstrap"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The README's configuration table lists every variable with its default, and nothing else.
func TestReadmeListsEveryVariable(t *testing.T) {
	readme := read(t, "../../README.md")
	row := regexp.MustCompile("(?m)^\\| `(PLM_[A-Z_]+)` \\| ([^|]*) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(readme, -1) {
		documented[m[1]] = strings.Trim(strings.TrimSpace(m[2]), "`")
	}
	for _, v := range bootstrap.Variables {
		def, ok := documented[v.Name]
		if !ok {
			t.Errorf("README does not list %s", v.Name)
			continue
		}
		if v.Default != "" && def != v.Default {
			t.Errorf("README gives %s the default %q, the service %q", v.Name, def, v.Default)
		}
		delete(documented, v.Name)
	}
	for name := range documented {
		t.Errorf("README lists %s, which the service does not read", name)
	}
}

// .env.example sets every variable to its default.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(read(t, "../../.env.example")))
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			got[k] = v
		}
	}
	for _, v := range bootstrap.Variables {
		if def, ok := got[v.Name]; !ok || def != v.Default {
			t.Errorf(".env.example: %s=%q, want the default %q", v.Name, def, v.Default)
		}
	}
	if len(got) != len(bootstrap.Variables) {
		t.Errorf(".env.example sets %d variables, the service reads %d", len(got), len(bootstrap.Variables))
	}
}
