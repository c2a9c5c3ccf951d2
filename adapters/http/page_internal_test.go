package http

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestNewPage_versions_each_asset_link_by_its_content(t *testing.T) {
	fsys := fstest.MapFS{
		"index.html":     {Data: []byte(`<script src="/assets/a.js"></script><link href="/assets/b.css"><a href="/assets/a.json">`)},
		"assets/a.js":    {Data: []byte("one")},
		"assets/b.css":   {Data: []byte("two")},
		"assets/a.json":  {Data: []byte("{}")},
		"assets/x.svg":   {Data: []byte("<svg/>")},
		"other/skip.txt": {Data: []byte("not served")},
	}
	p, err := newPage(fsys)
	if err != nil {
		t.Fatal(err)
	}
	index := string(p.index)
	for _, name := range []string{"a.js", "b.css", "a.json"} {
		a := p.assets[name]
		if len(a.version) != 16 {
			t.Errorf("%s: version %q, want 16 hex digits", name, a.version)
		}
		if link := `"/assets/` + name + `?v=` + a.version + `"`; !strings.Contains(index, link) {
			t.Errorf("index does not link %s; index: %s", link, index)
		}
	}
	if p.assets["a.js"].version == p.assets["b.css"].version {
		t.Error("two bodies, one version")
	}
	if got := p.assets["b.css"].contentType; got != "text/css; charset=utf-8" {
		t.Errorf("b.css Content-Type %q", got)
	}
	if _, ok := p.assets["skip.txt"]; ok {
		t.Error("a file outside assets/ is served")
	}
}

func TestNewPage_refuses_what_it_cannot_serve(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no_index":          {"assets/a.js": {Data: []byte("x")}},
		"no_assets":         {"index.html": {Data: []byte("x")}},
		"unknown_extension": {"index.html": {Data: []byte("x")}, "assets/a.exe": {Data: []byte("x")}},
		"folder_in_assets":  {"index.html": {Data: []byte("x")}, "assets/sub/a.js": {Data: []byte("x")}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := newPage(fsys); err == nil {
				t.Error("newPage accepted it")
			}
		})
	}
}

func TestNewEmbeddedPage_builds(t *testing.T) {
	p, err := newEmbeddedPage()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app.js", "app.css", "icon.svg"} {
		if _, ok := p.assets[name]; !ok {
			t.Errorf("the embedded page has no %s", name)
		}
	}
}

func TestEtagMatches(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		want         bool
	}{
		{"exact", `"abc"`, true},
		{"weak", `W/"abc"`, true},
		{"in_a_list", `"x", "abc"`, true},
		{"star", `*`, true},
		{"other", `"abd"`, false},
		{"unquoted", `abc`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := etagMatches(tc.header, `"abc"`); got != tc.want {
				t.Errorf("etagMatches(%q) = %v, want %v", tc.header, got, tc.want)
			}
		})
	}
}
