package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/tests/pgtest"
	"github.com/production-line-monitor/plm/tests/redistest"
)

// simulate runs `plm simulate args…` with env and returns its output and error.
func simulate(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(plmBinary(t), append([]string{"simulate"}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The simulator drives a service it starts itself, on each set-up, and checks what was
// stored and found against what it planted: every reading, every fault, every silence.
func TestSimulatorRunsAndChecksEachSetUp(t *testing.T) {
	setUps := map[string]func(t *testing.T) []string{
		"sqlite": func(*testing.T) []string { return nil },
		"postgres": func(t *testing.T) []string {
			pgtest.Admin(t) // skips, or fails, without a server
			return []string{"PLM_DATABASE_URL=" + pgtest.ServerURL()}
		},
		"postgres+redis": func(t *testing.T) []string {
			pgtest.Admin(t)
			return []string{"PLM_DATABASE_URL=" + pgtest.ServerURL(), "PLM_REDIS_URL=" + redistest.Require(t), "PLM_PARTITIONS=4"}
		},
	}
	for _, name := range []string{"sqlite", "postgres", "postgres+redis"} {
		t.Run(name, func(t *testing.T) {
			env := append(setUps[name](t), "PLM_OFFLINE_AFTER=2s")
			out, err := simulate(t, env, "run", "-spawn", "-rate", "400", "-batch", "4", "-equipment", "5",
				"-duration", "6s", "-offline-after", "2s", "-settle", "30s")
			if err != nil {
				t.Fatalf("plm simulate: %v\n%s", err, out)
			}
			for _, want := range []string{"answers    202: ", "(all of them)", "(recall 1.000)", "1 equipment fell silent, 1 OFFLINE", "result     OK"} {
				if !strings.Contains(out, want) {
					t.Errorf("the report lacks %q:\n%s", want, out)
				}
			}
			if m := regexp.MustCompile(`(\d+) drifts grown, (\d+) flagged`).FindStringSubmatch(out); m == nil || m[1] == "0" || m[1] != m[2] {
				t.Errorf("drifts not all grown and flagged:\n%s", out)
			}
			if name != "sqlite" {
				var n int
				if err := pgtest.Admin(t).QueryRow(`SELECT count(*) FROM pg_database WHERE datname LIKE 'plm_sim_%'`).Scan(&n); err != nil || n != 0 {
					t.Errorf("%d scratch databases left behind (%v)", n, err)
				}
			}
		})
	}
}

// A failed check fails the command: a service that is not there loses everything.
func TestSimulatorFailsWhenTheServiceIsAway(t *testing.T) {
	out, err := simulate(t, nil, "run", "-url", "http://"+freeAddr(t), "-api-key", apiKey, "-duration", "1s", "-rate", "50")
	if err == nil || !strings.Contains(out, "plm simulate:") {
		t.Fatalf("simulate against nothing: %v\n%s", err, out)
	}
	out, err = simulate(t, nil, "run", "-scenarios", "meteor", "-api-key", apiKey)
	if code := exitCode(err); code != 1 || !strings.Contains(out, `unknown scenario "meteor"`) {
		t.Fatalf("unknown scenario: exit %d\n%s", code, out)
	}
	if _, err = simulate(t, nil, "run", "-no-such-flag"); exitCode(err) != 2 {
		t.Fatalf("unknown flag: exit %d, want 2", exitCode(err))
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// Backfill seeds history that the query API then answers: every stored reading counted in
// the production metrics, and uptime lowered by the planted silence.
func TestBackfillSeedsHistoryTheAPIAnswers(t *testing.T) {
	eachStorage(t, func(t *testing.T, newConfig configFunc) {
		cfg := newConfig(nil)
		env := []string{"PLM_DATA_DIR=" + cfg.DataDir, "PLM_API_KEYS=" + apiKey}
		if !cfg.Database.Embedded() {
			env = append(env, "PLM_DATABASE_URL="+cfg.Database.URL)
		}
		out, err := simulate(t, env, "backfill", "-days", "0.5", "-every", "20s", "-equipment", "3", "-prefix", "line")
		if err != nil {
			t.Fatalf("plm simulate backfill: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`stored     (\d+) readings, (\d+) anomalies`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no stored line:\n%s", out)
		}
		stored, _ := strconv.Atoi(m[1])
		// Half a day of 12 sensors at three readings a minute, less the silent one's two hours.
		if want := 12*180*12 - 2*180*4; stored < want-12 || stored > want+12 {
			t.Errorf("stored %d readings, want about %d", stored, want)
		}
		s := start(t, cfg, time.Now())
		from := time.Now().Add(-13 * time.Hour).UTC().Format(time.RFC3339)
		body := s.get("/metrics/production?bucket=day&from=" + from).json(t)
		events := body["eventsProcessed"].(map[string]any)
		if total := int(events["total"].(float64)); total != stored {
			t.Errorf("the API counts %d readings, the backfill stored %d", total, stored)
		}
		anomalies, _ := strconv.Atoi(m[2])
		if got := int(body["anomalies"].(map[string]any)["total"].(float64)); got != anomalies || anomalies == 0 {
			t.Errorf("the API counts %d anomalies, the backfill found %d", got, anomalies)
		}
		// Over the last 11 hours: all of them within the history, the silence among them.
		recent := s.get("/metrics/production?bucket=day&from=" + time.Now().Add(-11*time.Hour).UTC().Format(time.RFC3339)).json(t)
		down := 0
		for _, u := range recent["uptime"].([]any) {
			if p := u.(map[string]any)["uptimePercent"].(float64); p < 95 {
				down++
			}
		}
		if down != 1 {
			t.Errorf("%d pieces of equipment with an uptime under 95%%, want the silent one:\n%v", down, recent["uptime"])
		}
		if again, err := simulate(t, env, "backfill", "-days", "0.5", "-every", "20s", "-equipment", "3", "-prefix", "line"); err != nil ||
			!strings.Contains(again, "stored     0 readings") {
			t.Errorf("a second backfill of the same history stored again: %v\n%s", err, again)
		}
	})
}
