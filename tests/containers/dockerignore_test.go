package containers_test

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// ignoreRule is one .dockerignore line.
type ignoreRule struct {
	pattern   string
	re        *regexp.Regexp
	exception bool // !pattern: send it after all
}

type ignoreRules struct {
	rules []ignoreRule
}

// parseDockerignore reads .dockerignore as Docker does: one pattern a line, # comments, a
// leading / ignored (patterns are relative to the context anyway), ! for exceptions, * and
// ? within one path element, ** across any number of them.
func parseDockerignore(text string) (*ignoreRules, error) {
	r := &ignoreRules{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rule := ignoreRule{pattern: line}
		if strings.HasPrefix(line, "!") {
			rule.exception = true
			line = strings.TrimSpace(line[1:])
		}
		line = path.Clean(strings.TrimPrefix(line, "/"))
		re, err := patternRegexp(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q: %w", n, rule.pattern, err)
		}
		rule.re = re
		r.rules = append(r.rules, rule)
	}
	return r, sc.Err()
}

func patternRegexp(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	elems := strings.Split(pattern, "/")
	for i, e := range elems {
		last := i == len(elems)-1
		if e == "**" {
			if last {
				b.WriteString(".*")
			} else {
				b.WriteString("(?:[^/]+/)*")
			}
			continue
		}
		for j := 0; j < len(e); j++ {
			switch c := e[j]; c {
			case '*':
				b.WriteString("[^/]*")
			case '?':
				b.WriteString("[^/]")
			case '[':
				end := strings.IndexByte(e[j:], ']')
				if end < 0 {
					return nil, fmt.Errorf("unclosed [")
				}
				class := e[j+1 : j+end]
				if strings.HasPrefix(class, "!") {
					class = "^" + class[1:]
				}
				b.WriteString("[" + class + "]")
				j += end
			case '\\':
				if j+1 < len(e) {
					j++
					b.WriteString(regexp.QuoteMeta(string(e[j])))
				}
			default:
				b.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		if !last {
			b.WriteString("/")
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// matches reports whether the rule matches p or one of its parent directories.
func (rule ignoreRule) matches(p string) bool {
	for {
		if rule.re.MatchString(p) {
			return true
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			return false
		}
		p = p[:i]
	}
}

// ignored reports whether the file at p (slash-separated, relative to the context) stays
// out of the build context: the last rule that matches decides.
func (r *ignoreRules) ignored(p string) bool {
	out := false
	for _, rule := range r.rules {
		if rule.matches(p) {
			out = !rule.exception
		}
	}
	return out
}

// keptOut must never reach the builder: history, local data, keys, environment files.
var keptOut = []string{
	".git/HEAD",
	".git/config",
	"data/plm.db",
	"data/api-key",
	"data/backup/readings.csv",
	"bin/plm",
	"plm",
	"plm.db",
	"adapters/sqlite/scratch.db",
	".env",
	".env.production",
}

// buildInputs lists the files `go build` needs from the repository: go.mod, go.sum, every
// non-test Go file and every file a //go:embed directive names.
func buildInputs() ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case rel == "go.mod" || rel == "go.sum":
			out = append(out, rel)
		case strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go"):
			out = append(out, rel)
			embedded, err := embeds(p)
			if err != nil {
				return err
			}
			out = append(out, embedded...)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// embeds returns the files the //go:embed directives of a Go file name, relative to root.
func embeds(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "//go:embed ")
		if !ok {
			continue
		}
		for _, pattern := range words(rest) {
			matches, err := filepath.Glob(filepath.Join(filepath.Dir(file), strings.TrimPrefix(pattern, "all:")))
			if err != nil {
				return nil, err
			}
			if len(matches) == 0 {
				return nil, fmt.Errorf("%s: //go:embed %s matches nothing", file, pattern)
			}
			for _, m := range matches {
				err := filepath.WalkDir(m, func(p string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return err
					}
					rel, err := filepath.Rel(root, p)
					out = append(out, filepath.ToSlash(rel))
					return err
				})
				if err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

var dockerignoreChecks = []check{
	{"dockerignore/keeps-out", func(p *parsed) []string {
		var out []string
		for _, f := range keptOut {
			if !p.ignore.ignored(f) {
				out = append(out, f+" would be sent to the builder (and could end up in the image)")
			}
		}
		return out
	}},
	{"dockerignore/build-inputs", func(p *parsed) []string {
		inputs, err := buildInputs()
		if err != nil {
			return []string{err.Error()}
		}
		if len(inputs) == 0 {
			return []string{"found no build inputs under " + root}
		}
		var out []string
		for _, f := range inputs {
			if p.ignore.ignored(f) {
				out = append(out, f+" is needed by go build but left out of the build context")
			}
		}
		return out
	}},
}

func TestDockerignoreMatching(t *testing.T) {
	tests := []struct {
		rules string
		path  string
		want  bool
	}{
		{".git", ".git/objects/ab/cd", true},
		{".git", "adapters/.git", false},
		{"/data", "data/plm.db", true},
		{"/data", "adapters/data/x.go", false},
		{"*.db", "plm.db", true},
		{"*.db", "data/plm.db", false},
		{"**/*.db", "plm.db", true},
		{"**/*.db", "a/b/plm.db", true},
		{"**/api-key", "data/api-key", true},
		{"data/**", "data/a/b", true},
		{"docker-compose*.yml", "docker-compose.yml", true},
		{"docker-compose*.yml", "docker-compose.override.yml", true},
		{"go.?um", "go.sum", true},
		{"[a-c]in", "bin/plm", true},
		{"[!a-c]in", "bin/plm", false},
		{".env\n.env.*", ".env.example", true},
		{"/data\n!data/keep", "data/keep", false},
		{"/data\n!data/keep", "data/other", true},
		{"!data/keep\n/data", "data/keep", true}, // the last match decides
		{"# .git\n\n", ".git/HEAD", false},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.rules, "\n", ";")+"~"+tt.path, func(t *testing.T) {
			r, err := parseDockerignore(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.ignored(tt.path); got != tt.want {
				t.Errorf("ignored(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}
