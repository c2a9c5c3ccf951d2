package postgres

import (
	"bufio"
	"context"
	_ "embed" // postgresql.conf
	"fmt"
	"strconv"
	"strings"
)

// recommendedConf is the server configuration this workload is tuned for; the compose file
// passes the same settings to its TimescaleDB.
//
//go:embed postgresql.conf
var recommendedConf string

// Setting is one server setting the workload's configuration names.
type Setting struct {
	Name        string
	Recommended string // as postgresql.conf writes it
	Server      string // as the server has it, in its own unit (pg_settings)
	Unit        string // pg_settings' unit of Server: "8kB", "kB", "MB", "s", "ms", "min" or ""
	Missing     bool   // the server has no such setting (TimescaleDB's, without it)
}

// Far says why the server's value is far from the recommended one, or "" when it is not:
// a size or a time under half of it (more is fine), a plain number off by more than a
// factor of two, or another value for a switch (on/off) or a word.
func (s Setting) Far() string {
	if s.Missing {
		return ""
	}
	want, wantOK := amount(s.Recommended, "")
	got, gotOK := amount(s.Server, s.Unit)
	switch {
	case wantOK && gotOK && s.Unit != "":
		if got < want/2 {
			return fmt.Sprintf("%s is %s%s, under half of the recommended %s", s.Name, s.Server, s.Unit, s.Recommended)
		}
		return ""
	case wantOK && gotOK:
		if got < want/2 || got > want*2 {
			return fmt.Sprintf("%s is %s, the recommended value is %s", s.Name, s.Server, s.Recommended)
		}
		return ""
	case !strings.EqualFold(s.Server, s.Recommended):
		return fmt.Sprintf("%s is %s, the recommended value is %s", s.Name, s.Server, s.Recommended)
	}
	return ""
}

// amount reads v (with unit, or its own suffix: 16MB, 15min, 0.9) as a number of bytes or of
// seconds, or a plain number; false for a word such as on or lz4.
func amount(v, unit string) (float64, bool) {
	v = strings.TrimSpace(v)
	i := len(v)
	for i > 0 && (v[i-1] < '0' || v[i-1] > '9') {
		i--
	}
	n, err := strconv.ParseFloat(v[:i], 64)
	if err != nil {
		return 0, false
	}
	suffix := v[i:]
	if unit != "" {
		suffix = unit
	}
	scale := map[string]float64{"": 1, "B": 1, "kB": 1 << 10, "8kB": 8 << 10, "16MB": 16 << 20, "MB": 1 << 20,
		"GB": 1 << 30, "TB": 1 << 40, "ms": 1e-3, "s": 1, "min": 60, "h": 3600, "d": 86400}
	f, ok := scale[suffix]
	if !ok {
		return 0, false
	}
	return n * f, true
}

// RecommendedSettings lists the settings of the workload's configuration with the server's
// value of each (empty for a setting the server does not have, such as TimescaleDB's
// without it).
func (d *DB) RecommendedSettings(ctx context.Context) ([]Setting, error) {
	var out []Setting
	sc := bufio.NewScanner(strings.NewReader(recommendedConf))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("postgresql.conf: %q is not name = value", line)
		}
		out = append(out, Setting{Name: strings.TrimSpace(name), Recommended: strings.TrimSpace(value)})
	}
	names := make([]string, len(out))
	for i, s := range out {
		names[i] = s.Name
	}
	rows, err := d.pool.Query(ctx, `SELECT name, setting, coalesce(unit, '') FROM pg_settings WHERE name = ANY($1)`, names)
	if err != nil {
		return nil, d.fail(ctx, "read the server's settings", err)
	}
	defer rows.Close()
	server := map[string][2]string{}
	for rows.Next() {
		var name, setting, unit string
		if err := rows.Scan(&name, &setting, &unit); err != nil {
			return nil, d.fail(ctx, "read the server's settings", err)
		}
		server[name] = [2]string{setting, unit}
	}
	if err := rows.Err(); err != nil {
		return nil, d.fail(ctx, "read the server's settings", err)
	}
	for i := range out {
		v, ok := server[out[i].Name]
		out[i].Server, out[i].Unit, out[i].Missing = v[0], v[1], !ok
	}
	return out, nil
}
