// Package plmbin builds the plm binary once for the tests of a package that run it as a
// process (tests/e2e, tests/browser).
package plmbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	once  sync.Once
	dir   string
	path  string
	built error
)

// Path builds the binary the first time it is called in the test process, and returns where
// it is. Call Remove from TestMain once the tests have run.
func Path(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			built = fmt.Errorf("cannot tell where the module is")
			return
		}
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if dir, built = os.MkdirTemp("", "plm-bin-"); built != nil {
			return
		}
		path = filepath.Join(dir, "plm")
		cmd := exec.Command("go", "build", "-o", path, ".")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			built = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built != nil {
		t.Fatal(built)
	}
	return path
}

// Remove deletes the binary, if it was built.
func Remove() {
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}
