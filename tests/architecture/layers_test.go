// Package architecture checks that imports point inward: the domain knows nothing but the
// standard library, ports know the domain, use cases know the domain and the ports, and only
// bootstrap and main see the adapters.
package architecture

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/production-line-monitor/plm"

// rule says what packages under a prefix may import from this module and from outside it.
type rule struct {
	prefix       string
	allowLocal   []string // prefixes of this module's packages allowed
	allowForeign []string // prefixes of other modules allowed (the standard library always is)
}

var rules = []rule{
	{prefix: "/domain/", allowLocal: []string{"/domain/"}},
	{prefix: "/ports", allowLocal: []string{"/domain/", "/ports"}},
	{prefix: "/application", allowLocal: []string{"/domain/", "/ports", "/application"},
		allowForeign: []string{"go.uber.org/fx"}},
	{prefix: "/adapters/", allowLocal: []string{"/domain/", "/ports", "/application", "/adapters/", "/migrations"},
		allowForeign: []string{""}},
}

func TestImportsPointInward(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(fields[0], module)
		for _, r := range rules {
			if !strings.HasPrefix(pkg, r.prefix) {
				continue
			}
			checked++
			for _, imp := range fields[1:] {
				if !allowed(r, imp) {
					t.Errorf("%s imports %s, which its layer may not", fields[0], imp)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d packages: the rules no longer match the layout", checked)
	}
}

func allowed(r rule, imp string) bool {
	if local, ok := strings.CutPrefix(imp, module); ok {
		for _, p := range r.allowLocal {
			if strings.HasPrefix(local, p) {
				return true
			}
		}
		return false
	}
	if !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
		return true // the standard library
	}
	for _, p := range r.allowForeign {
		if strings.HasPrefix(imp, p) {
			return true
		}
	}
	return false
}

// TestDomainReadsNoClock: the domain takes the time as an argument, never from the clock.
func TestDomainReadsNoClock(t *testing.T) {
	out, err := exec.Command("git", "grep", "--untracked", "-n", "-E", `time\.(Now|Since|Until)\(`, "--", "../../domain/*.go", ":!*_test.go").Output()
	if err != nil && len(out) == 0 {
		return // git grep exits 1 when nothing matches
	}
	t.Errorf("the domain reads the clock:\n%s", out)
}
