package containers_test

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/production-line-monitor/plm/bootstrap"
)

// compose is the part of a Compose file these checks read.
type compose struct {
	raw      string
	Services map[string]*service `yaml:"services"`
	Volumes  map[string]any      `yaml:"volumes"`
}

type service struct {
	Image           string       `yaml:"image"`
	Build           *build       `yaml:"build"`
	Command         *command     `yaml:"command"`
	Environment     environment  `yaml:"environment"`
	Healthcheck     *healthcheck `yaml:"healthcheck"`
	DependsOn       dependencies `yaml:"depends_on"`
	Volumes         []mount      `yaml:"volumes"`
	Ports           []port       `yaml:"ports"`
	StopGracePeriod string       `yaml:"stop_grace_period"`
	Restart         string       `yaml:"restart"`
	Deploy          struct {
		Replicas      *int `yaml:"replicas"`
		RestartPolicy *struct {
			Condition string `yaml:"condition"`
		} `yaml:"restart_policy"`
	} `yaml:"deploy"`
}

// build is `build: context` or `build: {context, dockerfile}`.
type build struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

func (b *build) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	type plain build
	return n.Decode((*plain)(b))
}

// command is a list, or one string: Compose splits a command string into words, and runs a
// healthcheck test string with the container's shell.
type command struct {
	Args   []string
	String bool
}

func (c *command) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		c.String = true
		c.Args = strings.Fields(n.Value)
		return nil
	}
	return n.Decode(&c.Args)
}

// first is the command's first word, or "".
func (c *command) first() string {
	if c == nil || len(c.Args) == 0 {
		return ""
	}
	return c.Args[0]
}

// environment is a mapping, or a list of KEY=value.
type environment map[string]string

func (e *environment) UnmarshalYAML(n *yaml.Node) error {
	*e = environment{}
	switch n.Kind {
	case yaml.MappingNode, yaml.AliasNode:
		// Through Decode, so that aliases and merge keys are resolved; as nodes, so that
		// values keep their text (1.0 stays 1.0).
		var m map[string]yaml.Node
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			if v.Tag == "!!null" {
				(*e)[k] = ""
				continue
			}
			(*e)[k] = v.Value
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			k, v, _ := strings.Cut(item.Value, "=")
			(*e)[k] = v
		}
	default:
		return fmt.Errorf("environment: line %d: want a mapping or a list", n.Line)
	}
	return nil
}

type healthcheck struct {
	Test    *command `yaml:"test"`
	Disable bool     `yaml:"disable"`
}

// dependencies maps each service depended on to the condition waited for.
type dependencies map[string]string

func (d *dependencies) UnmarshalYAML(n *yaml.Node) error {
	*d = dependencies{}
	switch n.Kind {
	case yaml.SequenceNode:
		for _, item := range n.Content {
			(*d)[item.Value] = "service_started"
		}
	case yaml.MappingNode:
		var long map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := n.Decode(&long); err != nil {
			return err
		}
		for name, dep := range long {
			if dep.Condition == "" {
				dep.Condition = "service_started"
			}
			(*d)[name] = dep.Condition
		}
	default:
		return fmt.Errorf("depends_on: line %d: want a list or a mapping", n.Line)
	}
	return nil
}

// mount is a volume entry; Volume is the named volume it mounts, if any.
type mount struct {
	Volume string
	Target string
}

var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func (m *mount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		parts := strings.Split(n.Value, ":")
		if len(parts) == 1 { // an anonymous volume
			m.Target = parts[0]
			return nil
		}
		m.Target = parts[1]
		if volumeName.MatchString(parts[0]) {
			m.Volume = parts[0]
		}
		return nil
	}
	var long struct {
		Type   string `yaml:"type"`
		Source string `yaml:"source"`
		Target string `yaml:"target"`
	}
	if err := n.Decode(&long); err != nil {
		return err
	}
	m.Target = long.Target
	if long.Type == "volume" && long.Source != "" {
		m.Volume = long.Source
	}
	return nil
}

// port is a published port: Container is the port inside the container.
type port struct {
	Container string
}

func (p *port) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		spec, _, _ := strings.Cut(n.Value, "/")
		parts := strings.Split(spec, ":")
		p.Container = parts[len(parts)-1]
		return nil
	}
	var long struct {
		Target string `yaml:"target"`
	}
	if err := n.Decode(&long); err != nil {
		return err
	}
	p.Container = long.Target
	return nil
}

func parseCompose(text string) (*compose, error) {
	c := &compose{raw: text}
	if err := yaml.Unmarshal([]byte(text), c); err != nil {
		return nil, err
	}
	if len(c.Services) == 0 {
		return nil, fmt.Errorf("no services")
	}
	for name, s := range c.Services {
		if s == nil {
			return nil, fmt.Errorf("service %s is empty", name)
		}
	}
	return c, nil
}

// names returns the services' names, sorted, for stable messages.
func (c *compose) names() []string { return slices.Sorted(maps.Keys(c.Services)) }

// plm returns the services built from this repository, sorted by name.
func (c *compose) plm() []string {
	var out []string
	for _, n := range c.names() {
		if c.Services[n].Build != nil {
			out = append(out, n)
		}
	}
	return out
}

// workers returns the services that run `plm worker`.
func (c *compose) workers() []string {
	var out []string
	for _, n := range c.plm() {
		if c.Services[n].Command.first() == "worker" {
			out = append(out, n)
		}
	}
	return out
}

// The interpolations Compose understands: ${NAME}, ${NAME:-default}, ${NAME-default},
// ${NAME:?error}, ${NAME?error}, ${NAME:+other}, ${NAME+other}. $$ is a literal $.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}`)

// required is a value that must come from the environment, set and not empty.
var required = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]*\}$`)

// placeholder stands for the value of a variable that has no default.
func placeholder(name string) string { return "VAR_" + name }

// expand interpolates s as Compose would, defaults standing for unset variables and
// placeholders for those without a default.
func expand(s string) string {
	const dollar = "\x00"
	s = strings.ReplaceAll(s, "$$", dollar)
	s = interpolation.ReplaceAllStringFunc(s, func(m string) string {
		sub := interpolation.FindStringSubmatch(m)
		switch strings.TrimPrefix(sub[2], ":") {
		case "-", "+":
			return sub[3]
		}
		return placeholder(sub[1])
	})
	return strings.ReplaceAll(s, dollar, "$")
}

var variableName = regexp.MustCompile(`\bPLM_[A-Z0-9_]+`)

// secretName is an environment variable whose value is a secret.
var secretName = regexp.MustCompile(`(?i)(PASSWORD|SECRET|TOKEN|API_KEYS?|PRIVATE_KEY)`)

func knownVariable(name string) (bootstrap.Variable, bool) {
	for _, v := range bootstrap.Variables {
		if v.Name == name {
			return v, true
		}
	}
	return bootstrap.Variable{}, false
}

// imageTag returns the tag of an image reference, "" when it has none.
func imageTag(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	if _, tag, ok := strings.Cut(name, ":"); ok {
		return tag
	}
	return ""
}

var redisImage = regexp.MustCompile(`^redis:8(\.[0-9]+){0,2}(-[a-z0-9.]+)?$`)

var composeChecks = []check{
	{"compose/services", func(p *parsed) []string {
		c := p.compose
		var out []string
		stores := []struct {
			name, want string
			ok         func(image string) bool
		}{
			{"timescaledb", "timescale/timescaledb:latest-pg17", func(img string) bool { return img == "timescale/timescaledb:latest-pg17" }},
			{"redis", "redis:8 or a redis:8.x tag", redisImage.MatchString},
		}
		for _, st := range stores {
			s, ok := c.Services[st.name]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("no service %q", st.name))
			case !st.ok(s.Image):
				out = append(out, fmt.Sprintf("%s: image %q, want %s", st.name, s.Image, st.want))
			}
		}
		if s, ok := c.Services["serve"]; !ok {
			out = append(out, `no service "serve"`)
		} else if s.Build == nil {
			out = append(out, "serve: not built from the Dockerfile")
		}
		serving := 0
		for _, n := range c.plm() {
			switch cmd := c.Services[n].Command.first(); cmd {
			case "serve":
				serving++
			case "worker":
			default:
				out = append(out, fmt.Sprintf("%s: runs %q, want serve or worker", n, cmd))
			}
		}
		if serving == 0 {
			out = append(out, "no service runs serve")
		}
		workers := 0
		for _, n := range c.workers() {
			if r := c.Services[n].Deploy.Replicas; r != nil {
				workers += *r
			} else {
				workers++
			}
		}
		if workers < 2 {
			out = append(out, fmt.Sprintf("%d worker(s) run, want 2", workers))
		}
		return out
	}},
	{"compose/one-image", func(p *parsed) []string {
		c := p.compose
		var out []string
		plm := c.plm()
		if len(plm) == 0 {
			return []string{"no service is built from the Dockerfile"}
		}
		first := c.Services[plm[0]]
		if first.Image == "" {
			out = append(out, plm[0]+": no image name for the built image")
		} else if tag := imageTag(first.Image); tag == "" || tag == "latest" {
			out = append(out, fmt.Sprintf("%s: image %q: tag it, and not latest", plm[0], first.Image))
		}
		if first.Build.Context != "." || (first.Build.Dockerfile != "" && first.Build.Dockerfile != "Dockerfile") {
			out = append(out, fmt.Sprintf("%s: build %+v, want the repository's Dockerfile", plm[0], *first.Build))
		}
		for _, n := range plm[1:] {
			s := c.Services[n]
			if s.Image != first.Image {
				out = append(out, fmt.Sprintf("%s: image %q, %s has %q", n, s.Image, plm[0], first.Image))
			}
			if *s.Build != *first.Build {
				out = append(out, fmt.Sprintf("%s: build %+v, %s has %+v", n, *s.Build, plm[0], *first.Build))
			}
		}
		return out
	}},
	{"compose/healthchecks", func(p *parsed) []string {
		c := p.compose
		var out []string
		for _, n := range c.names() {
			h := c.Services[n].Healthcheck
			if h == nil || h.Disable || h.Test == nil || len(h.Test.Args) == 0 || h.Test.first() == "NONE" {
				out = append(out, n+": no healthcheck")
				continue
			}
			test := strings.Join(h.Test.Args, " ")
			switch {
			case c.Services[n].Build != nil:
				// The image is distroless: no shell, so exec form only.
				if h.Test.String || !slices.Equal(h.Test.Args, []string{"CMD", "/plm", "healthcheck"}) {
					out = append(out, fmt.Sprintf("%s: healthcheck %q, want [CMD, /plm, healthcheck] (no shell in the image)", n, test))
				}
			case n == "timescaledb" && !strings.Contains(test, "pg_isready"):
				out = append(out, fmt.Sprintf("%s: healthcheck %q does not run pg_isready", n, test))
			case n == "redis" && !(strings.Contains(test, "redis-cli") && strings.Contains(test, "ping")):
				out = append(out, fmt.Sprintf("%s: healthcheck %q does not run redis-cli ping", n, test))
			}
		}
		return out
	}},
	{"compose/volumes", func(p *parsed) []string {
		c := p.compose
		var out []string
		used := map[string]bool{}
		for _, n := range c.names() {
			for _, m := range c.Services[n].Volumes {
				if m.Volume == "" {
					continue
				}
				used[m.Volume] = true
				if _, ok := c.Volumes[m.Volume]; !ok {
					out = append(out, fmt.Sprintf("%s: volume %q is not declared", n, m.Volume))
				}
			}
		}
		for v := range c.Volumes {
			if !used[v] {
				out = append(out, fmt.Sprintf("volume %q is used by no service", v))
			}
		}
		sort.Strings(out)
		for name, dir := range map[string]string{"timescaledb": "/var/lib/postgresql/data", "redis": "/data"} {
			s, ok := c.Services[name]
			if !ok {
				continue
			}
			if !slices.ContainsFunc(s.Volumes, func(m mount) bool { return m.Volume != "" && m.Target == dir }) {
				out = append(out, fmt.Sprintf("%s: no named volume on %s: its data would go with the container", name, dir))
			}
		}
		return out
	}},
	{"compose/redis-persistence", func(p *parsed) []string {
		s, ok := p.compose.Services["redis"]
		if !ok {
			return nil
		}
		var out []string
		arg := func(name string) string {
			if s.Command == nil {
				return ""
			}
			args := s.Command.Args
			for i, a := range args {
				if a == name && i+1 < len(args) {
					return args[i+1]
				}
			}
			return ""
		}
		if v := arg("--appendonly"); v != "yes" {
			out = append(out, fmt.Sprintf("redis: --appendonly %q, want yes: Redis must keep what it acknowledged", v))
		}
		if v := arg("--appendfsync"); v != "everysec" && v != "always" {
			out = append(out, fmt.Sprintf("redis: --appendfsync %q, want everysec or always", v))
		}
		return out
	}},
	{"compose/variables", func(p *parsed) []string {
		var out []string
		seen := map[string]bool{}
		for _, name := range variableName.FindAllString(p.compose.raw, -1) {
			if _, ok := knownVariable(name); !ok && !seen[name] {
				seen[name] = true
				out = append(out, name+" is not a variable the service reads (bootstrap.Variables)")
			}
		}
		return out
	}},
	{"compose/store-urls", func(p *parsed) []string {
		c := p.compose
		var out []string
		db := c.Services["timescaledb"]
		for _, n := range c.plm() {
			env := c.Services[n].Environment
			raw, ok := env["PLM_DATABASE_URL"]
			if !ok {
				out = append(out, n+": no PLM_DATABASE_URL")
			} else {
				out = append(out, checkDatabaseURL(n, raw, db)...)
			}
			raw, ok = env["PLM_REDIS_URL"]
			if !ok {
				out = append(out, n+": no PLM_REDIS_URL")
				continue
			}
			u, err := url.Parse(expand(raw))
			switch {
			case err != nil:
				out = append(out, fmt.Sprintf("%s: PLM_REDIS_URL: %v", n, err))
			case u.Scheme != "redis" && u.Scheme != "rediss":
				out = append(out, fmt.Sprintf("%s: PLM_REDIS_URL scheme %q, want redis", n, u.Scheme))
			case u.Hostname() != "redis" || (u.Port() != "" && u.Port() != "6379"):
				out = append(out, fmt.Sprintf("%s: PLM_REDIS_URL points at %s, want the redis service", n, u.Host))
			}
		}
		return out
	}},
	{"compose/depends-on", func(p *parsed) []string {
		c := p.compose
		var out []string
		for _, n := range c.names() {
			deps := c.Services[n].DependsOn
			for _, d := range slices.Sorted(maps.Keys(deps)) {
				if _, ok := c.Services[d]; !ok {
					out = append(out, fmt.Sprintf("%s: depends on %q, which is no service", n, d))
				}
				if deps[d] != "service_healthy" {
					out = append(out, fmt.Sprintf("%s: waits for %s to be %s, want service_healthy", n, d, deps[d]))
				}
			}
			if c.Services[n].Build == nil {
				continue
			}
			for _, store := range []string{"timescaledb", "redis"} {
				if _, ok := deps[store]; !ok {
					out = append(out, fmt.Sprintf("%s: does not depend on %s", n, store))
				}
			}
		}
		return out
	}},
	{"compose/shutdown", func(p *parsed) []string {
		c := p.compose
		var out []string
		for _, n := range c.plm() {
			s := c.Services[n]
			timeout, err := shutdownTimeout(s.Environment)
			if err != nil {
				out = append(out, fmt.Sprintf("%s: %v", n, err))
				continue
			}
			if s.StopGracePeriod == "" {
				out = append(out, fmt.Sprintf("%s: no stop_grace_period: Docker's 10s default kills a shutdown allowed %s", n, timeout))
				continue
			}
			grace, err := time.ParseDuration(s.StopGracePeriod)
			if err != nil {
				out = append(out, fmt.Sprintf("%s: stop_grace_period: %v", n, err))
				continue
			}
			if grace <= timeout {
				out = append(out, fmt.Sprintf("%s: stop_grace_period %s does not exceed PLM_SHUTDOWN_TIMEOUT %s", n, grace, timeout))
			}
		}
		return out
	}},
	{"compose/restart", func(p *parsed) []string {
		c := p.compose
		var out []string
		for _, n := range c.names() {
			s := c.Services[n]
			switch {
			case s.Restart == "" && s.Deploy.RestartPolicy == nil:
				out = append(out, n+": no restart policy")
			case s.Restart == "no" || (s.Deploy.RestartPolicy != nil && s.Deploy.RestartPolicy.Condition == "none"):
				out = append(out, n+": restart policy says never restart")
			}
		}
		return out
	}},
	{"compose/secrets", func(p *parsed) []string {
		c := p.compose
		var out []string
		for _, n := range c.names() {
			env := c.Services[n].Environment
			for _, k := range slices.Sorted(maps.Keys(env)) {
				v := env[k]
				if secretName.MatchString(k) && !required.MatchString(v) {
					out = append(out, fmt.Sprintf("%s: %s must come from the environment, required (${%s:?message}), not %q", n, k, k, v))
				}
				if u, err := url.Parse(expand(v)); err == nil && u.User != nil {
					if pw, ok := u.User.Password(); ok && !strings.HasPrefix(pw, placeholder("")) {
						out = append(out, fmt.Sprintf("%s: %s has a literal password", n, k))
					}
				}
			}
		}
		return out
	}},
	{"compose/logs", func(p *parsed) []string {
		c := p.compose
		var out []string
		for _, n := range c.plm() {
			if v := c.Services[n].Environment["PLM_LOG_FORMAT"]; v != "json" {
				out = append(out, fmt.Sprintf("%s: PLM_LOG_FORMAT %q, want json", n, v))
			}
		}
		return out
	}},
	{"compose/serve-port", func(p *parsed) []string {
		c := p.compose
		s, ok := c.Services["serve"]
		if !ok {
			return nil
		}
		addr := s.Environment["PLM_ADDR"]
		if addr == "" {
			v, _ := knownVariable("PLM_ADDR")
			addr = v.Default
		}
		_, want, _ := strings.Cut(expand(addr), ":")
		if len(s.Ports) == 0 {
			return []string{"serve: publishes no port: the API is unreachable"}
		}
		for _, pt := range s.Ports {
			if pt.Container == want {
				return nil
			}
		}
		return []string{fmt.Sprintf("serve: publishes no port to %s, where PLM_ADDR listens", want)}
	}},
}

// checkDatabaseURL checks that a service's PLM_DATABASE_URL is the timescaledb service's
// database, with its user and password.
func checkDatabaseURL(svc, raw string, db *service) []string {
	u, err := url.Parse(expand(raw))
	if err != nil {
		return []string{fmt.Sprintf("%s: PLM_DATABASE_URL: %v", svc, err)}
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return []string{fmt.Sprintf("%s: PLM_DATABASE_URL scheme %q, want postgres", svc, u.Scheme)}
	}
	if u.Hostname() != "timescaledb" || (u.Port() != "" && u.Port() != "5432") {
		return []string{fmt.Sprintf("%s: PLM_DATABASE_URL points at %s, want the timescaledb service", svc, u.Host)}
	}
	if db == nil {
		return nil
	}
	var out []string
	user := expand(db.Environment["POSTGRES_USER"])
	if user == "" {
		user = "postgres"
	}
	name := expand(db.Environment["POSTGRES_DB"])
	if name == "" {
		name = user
	}
	if got := u.User.Username(); got != user {
		out = append(out, fmt.Sprintf("%s: PLM_DATABASE_URL user %q, timescaledb creates %q", svc, got, user))
	}
	if got, _ := u.User.Password(); got != expand(db.Environment["POSTGRES_PASSWORD"]) {
		out = append(out, fmt.Sprintf("%s: PLM_DATABASE_URL password is not timescaledb's POSTGRES_PASSWORD", svc))
	}
	if got := strings.TrimPrefix(u.Path, "/"); got != name {
		out = append(out, fmt.Sprintf("%s: PLM_DATABASE_URL database %q, timescaledb creates %q", svc, got, name))
	}
	return out
}

// shutdownTimeout is PLM_SHUTDOWN_TIMEOUT as a service sets it, or its default.
func shutdownTimeout(env environment) (time.Duration, error) {
	v, ok := env["PLM_SHUTDOWN_TIMEOUT"]
	if !ok || v == "" {
		def, _ := knownVariable("PLM_SHUTDOWN_TIMEOUT")
		v = def.Default
	}
	d, err := time.ParseDuration(expand(v))
	if err != nil {
		return 0, fmt.Errorf("PLM_SHUTDOWN_TIMEOUT: %w", err)
	}
	return d, nil
}
