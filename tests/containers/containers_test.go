// Package containers_test checks docker-compose.yml, the Dockerfile and .dockerignore by
// parsing them: the machines this project is tested on have no Docker engine to build or run
// them. Every check is also run against copies of the files broken on purpose, so that each
// one is known to fail when its rule is broken.
package containers_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// root is the repository, seen from this package.
const root = "../.."

// files holds the text of the files under test.
type files struct {
	compose      string
	dockerfile   string
	dockerignore string
}

func readFiles(t *testing.T) files {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return files{
		compose:      read("docker-compose.yml"),
		dockerfile:   read("Dockerfile"),
		dockerignore: read(".dockerignore"),
	}
}

// parsed is the files, parsed.
type parsed struct {
	compose *compose
	docker  *dockerfile
	ignore  *ignoreRules
}

func parse(t *testing.T, f files) *parsed {
	t.Helper()
	c, err := parseCompose(f.compose)
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	d, err := parseDockerfile(f.dockerfile)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	ig, err := parseDockerignore(f.dockerignore)
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	return &parsed{compose: c, docker: d, ignore: ig}
}

// check is one rule; it returns what breaks it, one line each.
type check struct {
	name string
	run  func(p *parsed) []string
}

func checks() []check {
	var all []check
	all = append(all, composeChecks...)
	all = append(all, dockerfileChecks...)
	all = append(all, dockerignoreChecks...)
	all = append(all, crossChecks...)
	return all
}

func problems(p *parsed) []string {
	var out []string
	for _, c := range checks() {
		for _, msg := range c.run(p) {
			out = append(out, c.name+": "+msg)
		}
	}
	return out
}

// The files as they are break no rule.
func TestContainerFiles(t *testing.T) {
	p := parse(t, readFiles(t))
	for _, c := range checks() {
		t.Run(c.name, func(t *testing.T) {
			for _, msg := range c.run(p) {
				t.Error(msg)
			}
		})
	}
}

// edit changes one file's text; it fails the test when the text to change is not there, so
// that an edit never silently stops breaking anything.
type edit func(t *testing.T, text string) string

// swap replaces the first old with new.
func swap(old, new string) edit {
	return func(t *testing.T, text string) string {
		t.Helper()
		if !strings.Contains(text, old) {
			t.Fatalf("the file no longer contains %q: update this case", old)
		}
		return strings.Replace(text, old, new, 1)
	}
}

// cut removes the text from the first from up to the next to (kept).
func cut(from, to string) edit {
	return func(t *testing.T, text string) string {
		t.Helper()
		i := strings.Index(text, from)
		j := strings.Index(text[max(i, 0):], to)
		if i < 0 || j < 0 {
			t.Fatalf("the file no longer contains %q … %q: update this case", from, to)
		}
		return text[:i] + text[i+j:]
	}
}

// Each rule fails on a copy of the files that breaks it.
func TestChecksCatchBreakage(t *testing.T) {
	type target int
	const (
		compose target = iota + 1
		dockerfile
		dockerignore
	)
	const (
		apiKeys  = "PLM_API_KEYS: ${PLM_API_KEYS:?set PLM_API_KEYS to one or more comma-separated keys of 16+ characters}"
		password = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (URL-safe characters)}"
		deps     = "  depends_on:\n    timescaledb:\n      condition: service_healthy\n    redis:\n      condition: service_healthy\n"
	)
	tests := []struct {
		name  string
		file  target
		edit  edit
		check string // the check that must report it
		want  string // in what it reports
	}{
		// docker-compose.yml
		{"timescaledb_floating_image", compose, swap("timescale/timescaledb:latest-pg17", "timescale/timescaledb:latest"), "compose/services", "timescaledb: image"},
		{"redis_7", compose, swap("image: redis:8", "image: redis:7.2"), "compose/services", "redis: image"},
		{"no_serve", compose, swap(`command: ["serve"]`, `command: ["run"]`), "compose/services", "no service runs serve"},
		{"serve_renamed", compose, swap("\n  serve:\n", "\n  api:\n"), "compose/services", `no service "serve"`},
		{"one_worker", compose, swap("replicas: 2", "replicas: 1"), "compose/services", "1 worker(s)"},
		{"worker_runs_serve", compose, swap(`command: ["worker"]`, `command: ["serve"]`), "compose/services", "0 worker(s)"},
		{"worker_other_image", compose, swap(`command: ["worker"]`, "command: [\"worker\"]\n    image: production-line-monitor:other"), "compose/one-image", "worker: image"},
		{"worker_other_build", compose, swap(`command: ["worker"]`, "command: [\"worker\"]\n    build: ./other"), "compose/one-image", "worker: build"},
		{"own_image_latest", compose, swap("image: production-line-monitor:local", "image: production-line-monitor:latest"), "compose/one-image", "not latest"},
		{"redis_no_healthcheck", compose, swap(`test: ["CMD-SHELL", "redis-cli ping | grep -q PONG"]`, "disable: true"), "compose/healthchecks", "redis: no healthcheck"},
		{"timescaledb_healthcheck_not_pg_isready", compose, swap("pg_isready -h 127.0.0.1", "true -h 127.0.0.1"), "compose/healthchecks", "does not run pg_isready"},
		{"plm_healthcheck_shell_form", compose, swap(`test: ["CMD", "/plm", "healthcheck"]`, "test: /plm healthcheck"), "compose/healthchecks", "no shell in the image"},
		{"volume_not_declared", compose, swap("\n  redis-data:\n", "\n"), "compose/volumes", `volume "redis-data" is not declared`},
		{"volume_not_used", compose, swap("\n  redis-data:\n", "\n  redis-data:\n  spare:\n"), "compose/volumes", `volume "spare" is used by no service`},
		{"timescaledb_data_elsewhere", compose, swap("timescaledb-data:/var/lib/postgresql/data", "timescaledb-data:/data"), "compose/volumes", "timescaledb: no named volume on /var/lib/postgresql/data"},
		{"redis_data_in_container", compose, swap("- redis-data:/data", "- /data"), "compose/volumes", "redis: no named volume on /data"},
		{"unknown_variable", compose, swap("PLM_LOG_FORMAT: json", "PLM_LOG_FORMAT: json\n    PLM_LOG_FORMATT: json"), "compose/variables", "PLM_LOG_FORMATT"},
		{"unknown_variable_in_interpolation", compose, swap("${PLM_LOG_LEVEL:-info}", "${PLM_LOGLEVEL:-info}"), "compose/variables", "PLM_LOGLEVEL"},
		{"database_elsewhere", compose, swap("@timescaledb:5432", "@localhost:5432"), "compose/store-urls", "PLM_DATABASE_URL points at localhost:5432"},
		{"database_other_name", compose, swap("5432/${POSTGRES_DB:-plm}", "5432/other"), "compose/store-urls", `PLM_DATABASE_URL database "other"`},
		{"database_other_user", compose, swap("postgres://${POSTGRES_USER:-plm}", "postgres://postgres"), "compose/store-urls", `PLM_DATABASE_URL user "postgres"`},
		{"database_other_password", compose, swap(password+"@", "${PLM_DB_PASSWORD:?}@"), "compose/store-urls", "password is not timescaledb's POSTGRES_PASSWORD"},
		{"database_literal_password", compose, swap(password+"@", "hunter2@"), "compose/secrets", "PLM_DATABASE_URL has a literal password"},
		{"database_not_postgres", compose, swap("PLM_DATABASE_URL: postgres://", "PLM_DATABASE_URL: mysql://"), "compose/store-urls", `PLM_DATABASE_URL scheme "mysql"`},
		{"redis_elsewhere", compose, swap("redis://redis:6379/0", "redis://127.0.0.1:6379/0"), "compose/store-urls", "PLM_REDIS_URL points at 127.0.0.1:6379"},
		{"redis_url_missing", compose, swap("PLM_REDIS_URL: redis://redis:6379/0\n", ""), "compose/store-urls", "no PLM_REDIS_URL"},
		{"depends_on_started", compose, swap("condition: service_healthy", "condition: service_started"), "compose/depends-on", "to be service_started, want service_healthy"},
		{"depends_on_short_form", compose, swap(deps, "  depends_on: [timescaledb, redis]\n"), "compose/depends-on", "to be service_started, want service_healthy"},
		{"no_redis_dependency", compose, swap("    redis:\n      condition: service_healthy\n", ""), "compose/depends-on", "does not depend on redis"},
		{"grace_equal_to_timeout", compose, swap("stop_grace_period: 40s", "stop_grace_period: 30s"), "compose/shutdown", "stop_grace_period 30s does not exceed PLM_SHUTDOWN_TIMEOUT 30s"},
		{"timeout_above_grace", compose, swap("PLM_SHUTDOWN_TIMEOUT: 30s", "PLM_SHUTDOWN_TIMEOUT: 1m"), "compose/shutdown", "does not exceed PLM_SHUTDOWN_TIMEOUT 1m0s"},
		{"no_grace", compose, swap("  stop_grace_period: 40s\n", ""), "compose/shutdown", "no stop_grace_period"},
		{"literal_api_key", compose, swap(apiKeys, "PLM_API_KEYS: key-aaaaaaaaaaaaaaaa"), "compose/secrets", "PLM_API_KEYS must come from the environment"},
		{"optional_api_key", compose, swap(apiKeys, "PLM_API_KEYS: ${PLM_API_KEYS}"), "compose/secrets", "PLM_API_KEYS must come from the environment"},
		{"default_password", compose, swap("POSTGRES_PASSWORD: "+password, "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:-postgres}"), "compose/secrets", "timescaledb: POSTGRES_PASSWORD must come from the environment"},
		{"appendonly_off", compose, swap(`"--appendonly", "yes"`, `"--appendonly", "no"`), "compose/redis-persistence", `--appendonly "no"`},
		{"appendfsync_no", compose, swap(`"--appendfsync", "everysec"`, `"--appendfsync", "no"`), "compose/redis-persistence", `--appendfsync "no"`},
		{"text_logs", compose, swap("PLM_LOG_FORMAT: json", "PLM_LOG_FORMAT: text"), "compose/logs", `PLM_LOG_FORMAT "text"`},
		{"redis_no_restart", compose, swap("    stop_grace_period: 30s\n    restart: unless-stopped\n", "    stop_grace_period: 30s\n"), "compose/restart", "redis: no restart policy"},
		{"restart_no", compose, swap("  restart: unless-stopped\n  # With", "  restart: \"no\"\n  # With"), "compose/restart", "serve: restart policy says never restart"},
		{"serve_other_port", compose, swap(`"8080:8080"`, `"8080:9090"`), "compose/serve-port", "publishes no port to 8080"},
		{"serve_no_port", compose, swap("    ports:\n      - \"8080:8080\"\n", ""), "compose/serve-port", "publishes no port"},

		// Dockerfile
		{"one_stage", dockerfile, cut("FROM --platform", "# Run:"), "dockerfile/multi-stage", "has 1 stage(s)"},
		{"final_latest", dockerfile, swap("static-debian12:nonroot", "static-debian12:latest"), "dockerfile/pinned-bases", "not latest"},
		{"untagged_base", dockerfile, swap("golang:1.26-bookworm", "golang"), "dockerfile/pinned-bases", `"golang" has no tag`},
		{"base_from_variable", dockerfile, swap("golang:1.26-bookworm", "$GO_IMAGE"), "dockerfile/pinned-bases", "comes from a variable"},
		{"final_with_build_tools", dockerfile, swap("FROM gcr.io/distroless/static-debian12:nonroot", "FROM golang:1.26-bookworm"), "dockerfile/final-base", `starts from "golang:1.26-bookworm"`},
		{"run_in_final_stage", dockerfile, swap("USER 65532:65532\n", "RUN echo hello\nUSER 65532:65532\n"), "dockerfile/final-base", "RUN in the final stage"},
		{"root_user", dockerfile, swap("USER 65532:65532", "USER root"), "dockerfile/user", "USER root runs as root"},
		{"uid_0", dockerfile, swap("USER 65532:65532", "USER 0:0"), "dockerfile/user", "USER 0:0 runs as root"},
		{"no_user", dockerfile, swap("USER 65532:65532\n", ""), "dockerfile/user", "no USER"},
		{"healthcheck_shell_form", dockerfile, swap(`CMD ["/plm", "healthcheck"]`, "CMD /plm healthcheck"), "dockerfile/healthcheck", "want CMD in the JSON form"},
		{"no_healthcheck", dockerfile, cut("HEALTHCHECK", "ENTRYPOINT"), "dockerfile/healthcheck", "no HEALTHCHECK"},
		{"healthcheck_other_binary", dockerfile, swap(`CMD ["/plm", "healthcheck"]`, `CMD ["/bin/true"]`), "dockerfile/healthcheck", "runs [/bin/true]"},
		{"entrypoint_shell_form", dockerfile, swap(`ENTRYPOINT ["/plm"]`, "ENTRYPOINT /plm"), "dockerfile/exec-form", "ENTRYPOINT in shell form"},
		{"no_entrypoint", dockerfile, swap("ENTRYPOINT [\"/plm\"]\n", ""), "dockerfile/exec-form", "no ENTRYPOINT"},
		{"cmd_shell_form", dockerfile, swap(`CMD ["run"]`, "CMD run"), "dockerfile/exec-form", "CMD in shell form"},
		{"relative_workdir", dockerfile, swap("WORKDIR /src", "WORKDIR src"), "dockerfile/workdir", "WORKDIR src is relative"},
		{"add_url", dockerfile, swap("COPY go.mod go.sum ./", "ADD https://example.com/tool.tar.gz /tmp/\nCOPY go.mod go.sum ./"), "dockerfile/add", "ADD of the URL"},
		{"add_file", dockerfile, swap("COPY go.mod go.sum ./", "ADD go.mod go.sum ./"), "dockerfile/add", "use COPY for files"},
		{"copy_context_into_final", dockerfile, swap("COPY --from=build /out/plm /plm", "COPY --from=build /out/plm /plm\nCOPY . /src"), "dockerfile/final-copies", "copies from the build context"},
		{"copy_tree_into_final", dockerfile, swap("COPY --from=build /out/plm /plm", "COPY --from=build /out/plm /plm\nCOPY --from=build /src /src"), "dockerfile/final-copies", "takes only the binary"},
		{"copy_from_image", dockerfile, swap("COPY --from=build /out/plm /plm", "COPY --from=busybox:1.36 /out/plm /plm"), "dockerfile/final-copies", "copy from an earlier stage"},
		{"cgo", dockerfile, swap("CGO_ENABLED=0 ", ""), "dockerfile/static-binary", "without CGO_ENABLED=0"},
		{"no_go_build", dockerfile, swap("go build -trimpath", "go vet -trimpath"), "dockerfile/static-binary", "no stage runs go build"},
		{"unknown_variable", dockerfile, swap("PLM_DATA_DIR=/data", "PLM_DATADIR=/data"), "dockerfile/variables", "PLM_DATADIR"},
		{"port_not_exposed", dockerfile, swap("EXPOSE 8080", "EXPOSE 9090"), "dockerfile/expose", "EXPOSE lists [9090]"},

		// Both
		{"healthchecks_differ", dockerfile, swap(`CMD ["/plm", "healthcheck"]`, `CMD ["/plm", "healthcheck", "--verbose"]`), "cross/healthcheck", "the image's HEALTHCHECK"},
		{"serve_port_not_exposed", compose, func(t *testing.T, text string) string {
			text = swap(`PLM_ADDR: ":8080"`, `PLM_ADDR: ":9090"`)(t, text)
			return swap(`"8080:8080"`, `"8080:9090"`)(t, text)
		}, "cross/port", "container port 9090"},

		{"invalid_setting", compose, swap("${PLM_RATE_LIMIT:-off}", "${PLM_RATE_LIMIT:-lots}"), "cross/config", "serve: the service refuses its environment"},
		{"invalid_image_setting", dockerfile, swap("PLM_LOG_FORMAT=json", "PLM_LOG_FORMAT=yaml"), "cross/config", "the image's ENV"},

		// .dockerignore
		{"git_sent", dockerignore, swap(".git\n", ""), "dockerignore/keeps-out", ".git/HEAD"},
		{"data_sent", dockerignore, swap("/data\n", ""), "dockerignore/keeps-out", "data/backup/readings.csv"},
		{"key_kept", dockerignore, swap("**/api-key\n", "**/api-key\n!data/api-key\n"), "dockerignore/keeps-out", "data/api-key"},
		{"databases_sent", dockerignore, swap("**/*.db\n", ""), "dockerignore/keeps-out", "plm.db"},
		{"env_sent", dockerignore, swap(".env\n", ""), "dockerignore/keeps-out", ".env would"},
		{"sources_left_out", dockerignore, swap("/bin\n", "/bin\nbootstrap\n"), "dockerignore/build-inputs", "bootstrap/config.go"},
		{"embedded_file_left_out", dockerignore, swap("/bin\n", "/bin\n**/*.yaml\n"), "dockerignore/build-inputs", "adapters/http/openapi.yaml"},
		{"migrations_left_out", dockerignore, swap("/bin\n", "/bin\n**/*.sql\n"), "dockerignore/build-inputs", "migrations/postgres/"},
		{"go_sum_left_out", dockerignore, swap("/bin\n", "/bin\ngo.*\n"), "dockerignore/build-inputs", "go.sum"},
	}
	good := readFiles(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := good
			switch tt.file {
			case compose:
				f.compose = tt.edit(t, f.compose)
			case dockerfile:
				f.dockerfile = tt.edit(t, f.dockerfile)
			case dockerignore:
				f.dockerignore = tt.edit(t, f.dockerignore)
			}
			got := problems(parse(t, f))
			for _, msg := range got {
				if strings.HasPrefix(msg, tt.check+": ") && strings.Contains(msg, tt.want) {
					return
				}
			}
			t.Errorf("%s reported nothing about %q; all problems:\n  %s", tt.check, tt.want, strings.Join(got, "\n  "))
		})
	}
}
