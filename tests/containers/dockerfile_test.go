package containers_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/production-line-monitor/plm/bootstrap"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line  int                 // where it starts
	cmd   string              // upper case: FROM, RUN, COPY, …
	flags map[string][]string // --name=value, in the order given
	args  string              // what follows the instruction and its flags
}

// exec returns the arguments of an instruction written in exec (JSON) form.
func (in instruction) exec() ([]string, bool) {
	var args []string
	if !strings.HasPrefix(in.args, "[") || json.Unmarshal([]byte(in.args), &args) != nil {
		return nil, false
	}
	return args, true
}

// flag returns the last value of a flag, "" if not given.
func (in instruction) flag(name string) string {
	if v := in.flags[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

type stage struct {
	base string // the image or earlier stage it starts from
	name string // after AS, lower case
	from instruction
	body []instruction
}

type dockerfile struct {
	stages []stage
}

// final returns the last stage, the image that is shipped.
func (d *dockerfile) final() *stage { return &d.stages[len(d.stages)-1] }

// earlierStage reports whether name is a stage before index i.
func (d *dockerfile) earlierStage(name string, i int) bool {
	for _, s := range d.stages[:i] {
		if s.name != "" && s.name == strings.ToLower(name) {
			return true
		}
	}
	return false
}

// withFlags are the instructions whose leading --name=value words are flags.
var withFlags = map[string]bool{"FROM": true, "RUN": true, "COPY": true, "ADD": true, "HEALTHCHECK": true}

var heredoc = regexp.MustCompile(`<<-?["']?[A-Za-z_]`)

// parseDockerfile reads instructions: comment lines and blank lines are skipped (inside a
// continuation too), a line ending in a backslash continues on the next. Heredocs and escape
// directives other than the default backslash are not supported.
func parseDockerfile(text string) (*dockerfile, error) {
	type logical struct {
		line int
		text string
	}
	var (
		lines []logical
		cur   strings.Builder
		start int
		open  bool
	)
	for i, l := range strings.Split(text, "\n") {
		l = strings.TrimRight(l, " \t\r")
		trimmed := strings.TrimSpace(l)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			directive := strings.ToLower(strings.ReplaceAll(trimmed, " ", ""))
			if len(lines) == 0 && !open && strings.HasPrefix(directive, "#escape=") && directive != `#escape=\` {
				return nil, fmt.Errorf("line %d: only the default escape character is supported", i+1)
			}
			continue
		}
		if !open {
			start = i + 1
		}
		if strings.HasSuffix(l, `\`) {
			cur.WriteString(strings.TrimSuffix(l, `\`))
			cur.WriteString(" ")
			open = true
			continue
		}
		cur.WriteString(l)
		lines = append(lines, logical{start, cur.String()})
		cur.Reset()
		open = false
	}
	if open {
		return nil, fmt.Errorf("line %d: the continuation runs past the end of the file", start)
	}

	d := &dockerfile{}
	for _, l := range lines {
		word, rest, _ := strings.Cut(strings.TrimSpace(l.text), " ")
		in := instruction{line: l.line, cmd: strings.ToUpper(word), flags: map[string][]string{}, args: strings.TrimSpace(rest)}
		if withFlags[in.cmd] {
			for strings.HasPrefix(in.args, "--") {
				tok, after, _ := strings.Cut(in.args, " ")
				name, value, _ := strings.Cut(tok[2:], "=")
				in.flags[name] = append(in.flags[name], value)
				in.args = strings.TrimSpace(after)
			}
		}
		if (in.cmd == "RUN" || in.cmd == "COPY" || in.cmd == "ADD") && heredoc.MatchString(in.args) {
			return nil, fmt.Errorf("line %d: heredocs are not supported by this parser", in.line)
		}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{from: in}
			switch {
			case len(f) == 1:
				s.base = f[0]
			case len(f) == 3 && strings.EqualFold(f[1], "AS"):
				s.base, s.name = f[0], strings.ToLower(f[2])
			default:
				return nil, fmt.Errorf("line %d: FROM %s: want an image and an optional AS name", in.line, in.args)
			}
			d.stages = append(d.stages, s)
			continue
		}
		if len(d.stages) == 0 {
			if in.cmd != "ARG" {
				return nil, fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		last := &d.stages[len(d.stages)-1]
		last.body = append(last.body, in)
	}
	if len(d.stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return d, nil
}

// words splits shell words: white space separates them, except inside quotes; a backslash
// outside single quotes escapes the next character.
func words(s string) []string {
	var (
		out   []string
		cur   strings.Builder
		quote rune
		in    bool
		esc   bool
	)
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\' && quote != '\'':
			esc, in = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// env returns the variables an ENV instruction sets: KEY=value pairs, or the older
// `ENV KEY value` form.
func env(in instruction) map[string]string {
	out := map[string]string{}
	w := words(in.args)
	if len(w) > 0 && !strings.Contains(w[0], "=") {
		_, value, _ := strings.Cut(in.args, " ")
		out[w[0]] = strings.TrimSpace(value)
		return out
	}
	for _, kv := range w {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// finalEnv returns the variables the final stage's ENV instructions set.
func (d *dockerfile) finalEnv() map[string]string {
	out := map[string]string{}
	for _, in := range d.final().body {
		if in.cmd == "ENV" {
			for k, v := range env(in) {
				out[k] = v
			}
		}
	}
	return out
}

// exposed returns the ports the final stage exposes, without protocol.
func (d *dockerfile) exposed() []string {
	var out []string
	for _, in := range d.final().body {
		if in.cmd == "EXPOSE" {
			for _, p := range strings.Fields(in.args) {
				p, _, _ = strings.Cut(p, "/")
				out = append(out, p)
			}
		}
	}
	return out
}

// lastOf returns the final stage's last instruction cmd, or nil.
func (d *dockerfile) lastOf(cmd string) *instruction {
	body := d.final().body
	for i := len(body) - 1; i >= 0; i-- {
		if body[i].cmd == cmd {
			return &body[i]
		}
	}
	return nil
}

// healthcheck returns the final stage's HEALTHCHECK command, and whether it is in exec form.
func (d *dockerfile) healthcheck() (in *instruction, args []string, exec bool) {
	in = d.lastOf("HEALTHCHECK")
	if in == nil {
		return nil, nil, false
	}
	word, rest, _ := strings.Cut(in.args, " ")
	if !strings.EqualFold(word, "CMD") {
		return in, nil, false
	}
	args, exec = instruction{args: strings.TrimSpace(rest)}.exec()
	return in, args, exec
}

var archive = regexp.MustCompile(`\.(tar|tar\.gz|tgz|tar\.bz2|tbz2|tar\.xz|txz|tar\.zst)$`)

var dockerfileChecks = []check{
	{"dockerfile/multi-stage", func(p *parsed) []string {
		if n := len(p.docker.stages); n < 2 {
			return []string{fmt.Sprintf("has %d stage(s), want at least 2 stages: build, then a minimal run stage", n)}
		}
		return nil
	}},
	{"dockerfile/pinned-bases", func(p *parsed) []string {
		var out []string
		for i, s := range p.docker.stages {
			switch {
			case s.base == "scratch" || p.docker.earlierStage(s.base, i):
			case strings.Contains(s.base, "$"):
				out = append(out, fmt.Sprintf("line %d: base %q comes from a variable: pin it in the file", s.from.line, s.base))
			case strings.Contains(s.base, "@sha256:"):
			case imageTag(s.base) == "":
				out = append(out, fmt.Sprintf("line %d: base %q has no tag, which means latest", s.from.line, s.base))
			case imageTag(s.base) == "latest":
				out = append(out, fmt.Sprintf("line %d: base %q: pin a version, not latest", s.from.line, s.base))
			}
		}
		return out
	}},
	{"dockerfile/final-base", func(p *parsed) []string {
		f := p.docker.final()
		var out []string
		if f.base != "scratch" && !strings.HasPrefix(f.base, "gcr.io/distroless/static") {
			out = append(out, fmt.Sprintf("final stage starts from %q, want distroless static (or scratch): no shell, no build tools", f.base))
		}
		for _, in := range f.body {
			if in.cmd == "RUN" {
				out = append(out, fmt.Sprintf("line %d: RUN in the final stage: build in the build stage", in.line))
			}
		}
		return out
	}},
	{"dockerfile/user", func(p *parsed) []string {
		u := p.docker.lastOf("USER")
		if u == nil {
			return []string{"final stage sets no USER: it would run as root"}
		}
		if name, _, _ := strings.Cut(u.args, ":"); name == "" || name == "root" || name == "0" {
			return []string{fmt.Sprintf("line %d: USER %s runs as root", u.line, u.args)}
		}
		return nil
	}},
	{"dockerfile/exec-form", func(p *parsed) []string {
		var out []string
		for _, s := range p.docker.stages {
			for _, in := range s.body {
				if in.cmd != "CMD" && in.cmd != "ENTRYPOINT" {
					continue
				}
				if _, ok := in.exec(); !ok {
					out = append(out, fmt.Sprintf("line %d: %s in shell form: use the JSON form [\"…\"]", in.line, in.cmd))
				}
			}
		}
		if p.docker.lastOf("ENTRYPOINT") == nil {
			out = append(out, "final stage has no ENTRYPOINT")
		}
		return out
	}},
	{"dockerfile/healthcheck", func(p *parsed) []string {
		in, args, exec := p.docker.healthcheck()
		if in == nil {
			return []string{"final stage has no HEALTHCHECK"}
		}
		if !exec {
			return []string{fmt.Sprintf("line %d: HEALTHCHECK %s: want CMD in the JSON form (no shell in the image)", in.line, in.args)}
		}
		entry, ok := entrypoint(p.docker)
		if !ok {
			return nil // dockerfile/exec-form says why
		}
		if len(args) < 2 || args[0] != entry || args[1] != "healthcheck" {
			return []string{fmt.Sprintf("line %d: HEALTHCHECK runs %v, want [%s healthcheck]", in.line, args, entry)}
		}
		return nil
	}},
	{"dockerfile/workdir", func(p *parsed) []string {
		var out []string
		for _, s := range p.docker.stages {
			for _, in := range s.body {
				if in.cmd == "WORKDIR" && !path.IsAbs(in.args) {
					out = append(out, fmt.Sprintf("line %d: WORKDIR %s is relative", in.line, in.args))
				}
			}
		}
		return out
	}},
	{"dockerfile/add", func(p *parsed) []string {
		var out []string
		for _, s := range p.docker.stages {
			for _, in := range s.body {
				if in.cmd != "ADD" {
					continue
				}
				srcs := sources(in)
				for _, src := range srcs {
					switch {
					case strings.Contains(src, "://") || strings.HasPrefix(src, "git@"):
						out = append(out, fmt.Sprintf("line %d: ADD of the URL %s: download in the build stage and check it, or COPY", in.line, src))
					case !archive.MatchString(src):
						out = append(out, fmt.Sprintf("line %d: ADD %s: use COPY for files", in.line, src))
					}
				}
			}
		}
		return out
	}},
	{"dockerfile/final-copies", func(p *parsed) []string {
		d := p.docker
		var out []string
		entry, _ := entrypoint(d)
		for _, in := range d.final().body {
			if in.cmd != "COPY" && in.cmd != "ADD" {
				continue
			}
			from := in.flag("from")
			srcs := sources(in)
			switch {
			case from == "":
				out = append(out, fmt.Sprintf("line %d: the final stage copies from the build context: copy only the binary, from the build stage", in.line))
			case !d.earlierStage(from, len(d.stages)-1):
				out = append(out, fmt.Sprintf("line %d: COPY --from=%s: copy from an earlier stage of this file", in.line, from))
			case len(srcs) != 1 || (entry != "" && destination(in) != entry):
				out = append(out, fmt.Sprintf("line %d: COPY %v to %s: the final stage takes only the binary, to the ENTRYPOINT %s", in.line, srcs, destination(in), entry))
			}
		}
		return out
	}},
	{"dockerfile/static-binary", func(p *parsed) []string {
		var out []string
		built := false
		for _, s := range p.docker.stages {
			cgoOff := false
			for _, in := range s.body {
				switch in.cmd {
				case "ENV", "ARG":
					if v, ok := env(in)["CGO_ENABLED"]; ok {
						cgoOff = v == "0"
					}
				case "RUN":
					if !strings.Contains(in.args, "go build") {
						continue
					}
					built = true
					if !cgoOff && !strings.Contains(in.args, "CGO_ENABLED=0") {
						out = append(out, fmt.Sprintf("line %d: go build without CGO_ENABLED=0: the binary would need libc, absent from the final image", in.line))
					}
				}
			}
		}
		if !built {
			out = append(out, "no stage runs go build")
		}
		return out
	}},
	{"dockerfile/variables", func(p *parsed) []string {
		var out []string
		for _, s := range p.docker.stages {
			for _, in := range s.body {
				if in.cmd != "ENV" {
					continue
				}
				for k := range env(in) {
					if _, ok := knownVariable(k); strings.HasPrefix(k, "PLM_") && !ok {
						out = append(out, fmt.Sprintf("line %d: %s is not a variable the service reads (bootstrap.Variables)", in.line, k))
					}
				}
			}
		}
		return out
	}},
	{"dockerfile/expose", func(p *parsed) []string {
		addr, ok := p.docker.finalEnv()["PLM_ADDR"]
		if !ok {
			v, _ := knownVariable("PLM_ADDR")
			addr = v.Default
		}
		_, port, _ := strings.Cut(addr, ":")
		if exposed := p.docker.exposed(); !slices.Contains(exposed, port) {
			return []string{fmt.Sprintf("PLM_ADDR %s listens on %s, EXPOSE lists %v", addr, port, exposed)}
		}
		return nil
	}},
}

// entrypoint returns the final stage's ENTRYPOINT binary.
func entrypoint(d *dockerfile) (string, bool) {
	in := d.lastOf("ENTRYPOINT")
	if in == nil {
		return "", false
	}
	args, ok := in.exec()
	if !ok || len(args) == 0 {
		return "", false
	}
	return args[0], true
}

// sources returns what a COPY or ADD copies; destination where to.
func sources(in instruction) []string {
	w := copyArgs(in)
	if len(w) < 2 {
		return nil
	}
	return w[:len(w)-1]
}

func destination(in instruction) string {
	w := copyArgs(in)
	if len(w) == 0 {
		return ""
	}
	return w[len(w)-1]
}

func copyArgs(in instruction) []string {
	if args, ok := in.exec(); ok {
		return args
	}
	return words(in.args)
}

// sampleValue stands for every variable the files take from the environment when the
// configuration is loaded: long enough for an API key, safe in a URL.
const sampleValue = "sample-0123456789abcdef"

var placeholderValue = regexp.MustCompile(`VAR_[A-Za-z0-9_]+`)

// loadConfig loads the service's configuration from the variables given, as the service
// would at start.
func loadConfig(vars map[string]string) error {
	_, err := bootstrap.LoadConfig(func(name string) string { return vars[name] })
	return err
}

// crossChecks compare docker-compose.yml with the Dockerfile it builds.
var crossChecks = []check{
	{"cross/config", func(p *parsed) []string {
		var out []string
		image := p.docker.finalEnv()
		if err := loadConfig(image); err != nil {
			out = append(out, fmt.Sprintf("the image's ENV: the service refuses it: %v", err))
		}
		for _, n := range p.compose.plm() {
			vars := maps.Clone(image)
			for k, v := range p.compose.Services[n].Environment {
				vars[k] = placeholderValue.ReplaceAllString(expand(v), sampleValue)
			}
			if err := loadConfig(vars); err != nil {
				out = append(out, fmt.Sprintf("%s: the service refuses its environment: %v", n, err))
			}
		}
		return out
	}},
	{"cross/healthcheck", func(p *parsed) []string {
		_, image, ok := p.docker.healthcheck()
		if !ok {
			return nil // the Dockerfile check says why
		}
		var out []string
		for _, n := range p.compose.plm() {
			h := p.compose.Services[n].Healthcheck
			if h == nil || h.Test == nil || h.Test.first() != "CMD" {
				continue // the compose check says why
			}
			if got := h.Test.Args[1:]; !reflect.DeepEqual(got, image) {
				out = append(out, fmt.Sprintf("%s: healthcheck runs %v, the image's HEALTHCHECK %v", n, got, image))
			}
		}
		return out
	}},
	{"cross/port", func(p *parsed) []string {
		s, ok := p.compose.Services["serve"]
		if !ok {
			return nil
		}
		var out []string
		for _, pt := range s.Ports {
			if !slices.Contains(p.docker.exposed(), pt.Container) {
				out = append(out, fmt.Sprintf("serve publishes container port %s, which the Dockerfile does not EXPOSE", pt.Container))
			}
		}
		return out
	}},
}

func TestParseDockerfile(t *testing.T) {
	type got struct {
		Stages []string // base AS name
		Cmds   []string // each stage's instructions: CMD args
		Flags  []string // name=value of each flag, sorted
	}
	summarize := func(d *dockerfile) got {
		var g got
		for _, s := range d.stages {
			g.Stages = append(g.Stages, s.base+" AS "+s.name)
			for _, in := range s.body {
				g.Cmds = append(g.Cmds, in.cmd+" "+in.args)
				for _, name := range slices.Sorted(maps.Keys(in.flags)) {
					for _, v := range in.flags[name] {
						g.Flags = append(g.Flags, name+"="+v)
					}
				}
			}
		}
		return g
	}
	tests := []struct {
		name    string
		text    string
		want    got
		wantErr string
	}{
		{
			name: "continuation_with_comment_and_blank_line_inside",
			text: "FROM golang:1.26 AS build\nRUN a \\\n    # a comment\n\n    b\n",
			want: got{Stages: []string{"golang:1.26 AS build"}, Cmds: []string{"RUN a      b"}},
		},
		{
			name: "lower_case_instructions_and_as",
			text: "from alpine:3.20 as base\nrun true\n",
			want: got{Stages: []string{"alpine:3.20 AS base"}, Cmds: []string{"RUN true"}},
		},
		{
			name: "flags_before_arguments",
			text: "FROM --platform=$BUILDPLATFORM golang:1.26 AS build\nCOPY --from=build --chown=1:1 /a /b\n",
			want: got{Stages: []string{"golang:1.26 AS build"}, Cmds: []string{"COPY /a /b"}, Flags: []string{"chown=1:1", "from=build"}},
		},
		{
			name: "repeated_flag",
			text: "FROM golang:1.26\nRUN --mount=type=cache,target=/a \\\n    --mount=type=cache,target=/b go build .\n",
			want: got{Stages: []string{"golang:1.26 AS "}, Cmds: []string{"RUN go build ."}, Flags: []string{"mount=type=cache,target=/a", "mount=type=cache,target=/b"}},
		},
		{
			name: "cmd_arguments_are_not_flags",
			text: "FROM scratch\nCMD --help\n",
			want: got{Stages: []string{"scratch AS "}, Cmds: []string{"CMD --help"}},
		},
		{
			name: "arg_before_from",
			text: "ARG GO=1.26\nFROM golang:${GO}\n",
			want: got{Stages: []string{"golang:${GO} AS "}},
		},
		{name: "instruction_before_from", text: "RUN true\nFROM scratch\n", wantErr: "before the first FROM"},
		{name: "open_continuation", text: "FROM scratch\nRUN a \\\n", wantErr: "continuation"},
		{name: "no_from", text: "# nothing\n", wantErr: "no FROM"},
		{name: "heredoc", text: "FROM alpine:3.20\nRUN <<EOF\necho\nEOF\n", wantErr: "heredoc"},
		{name: "escape_directive", text: "# escape=`\nFROM scratch\n", wantErr: "escape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := parseDockerfile(tt.text)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g := summarize(d); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("got %+v\nwant %+v", g, tt.want)
			}
		})
	}
}

func TestExecForm(t *testing.T) {
	tests := []struct {
		args string
		want []string
		ok   bool
	}{
		{`["/plm", "healthcheck"]`, []string{"/plm", "healthcheck"}, true},
		{`["/plm"]`, []string{"/plm"}, true},
		{`/plm healthcheck`, nil, false},
		{`['/plm']`, nil, false}, // single quotes are not JSON: Docker runs it with a shell
		{`[/plm]`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			got, ok := instruction{args: tt.args}.exec()
			if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("exec() = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		args string
		want map[string]string
	}{
		{`PLM_ADDR=:8080 PLM_DATA_DIR=/data`, map[string]string{"PLM_ADDR": ":8080", "PLM_DATA_DIR": "/data"}},
		{`A="two words" B='x y'`, map[string]string{"A": "two words", "B": "x y"}},
		{`A=a\ b`, map[string]string{"A": "a b"}},
		{`LEGACY value with spaces`, map[string]string{"LEGACY": "value with spaces"}},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			if got := env(instruction{args: tt.args}); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("env() = %q, want %q", got, tt.want)
			}
		})
	}
}
