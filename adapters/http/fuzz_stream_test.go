package http

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/production-line-monitor/plm/domain/event"
)

// FuzzStreamRequest: what GET /stream reads of its query and of Last-Event-ID. A request is
// refused only with 400 invalid_query; one accepted filters on valid equipment ids and known
// types only (the transitions when no type is named: anomalies only when asked for), exactly
// those of the query, and resumes exactly when an event id was given, after that id.
func FuzzStreamRequest(f *testing.F) {
	for _, seed := range [][2]string{
		{"", ""}, {"types=anomaly&equipmentId=press-01", ""}, {"lastEventId=1-0", ""}, {"", "1795787250628-0"},
		{"types=alarm.opened,bogus", ""}, {"equipmentId=a,,b", ""}, {"lastEventId=x", ""}, {"types=", ""},
		{"equipmentId=press-01&equipmentId=press-02", ""}, {"types=alarm.opened, equipment.status_changed", "7-3"},
		{"lastEventId=18446744073709551616-0", ""}, {"colour=red", ""}, {"equipmentId=press-01", "-1"},
	} {
		f.Add(seed[0], seed[1])
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	var got streamRequest
	var gotErr error
	app.Get("/s", func(c *fiber.Ctx) error {
		got, gotErr = parseStreamRequest(c)
		return nil
	})
	handler := app.Handler()
	f.Fuzz(func(t *testing.T, raw, header string) {
		var fctx fasthttp.RequestCtx
		fctx.Request.Header.SetMethod(fiber.MethodGet)
		fctx.Request.SetRequestURI("/s?" + raw)
		if header != "" {
			fctx.Request.Header.Set(headerLastEventID, header)
		}
		got, gotErr = streamRequest{}, nil
		handler(&fctx)
		header = string(fctx.Request.Header.Peek(headerLastEventID)) // as fasthttp kept it
		if gotErr != nil {
			var e *apiError
			if !errors.As(gotErr, &e) || e.status != fiber.StatusBadRequest || e.code != codeInvalidQuery {
				t.Fatalf("%q %q: refused with %v, want 400 invalid_query", raw, header, gotErr)
			}
			return
		}
		if fctx.Response.StatusCode() != fiber.StatusOK {
			return // the request never reached the route (fasthttp refused its target)
		}
		for id := range got.filter.equipment {
			if !contractEquipmentID(id) {
				t.Fatalf("%q: accepted equipment id %q", raw, id)
			}
		}
		if len(got.filter.types) == 0 {
			t.Fatalf("%q: accepted with no type", raw)
		}
		for typ := range got.filter.types {
			if _, err := event.ParseType(string(typ)); err != nil {
				t.Fatalf("%q: accepted type %q", raw, typ)
			}
		}
		if !strings.Contains(raw, "types") {
			if len(got.filter.types) != len(event.Transitions) || got.filter.types[event.AnomalyDetected] {
				t.Fatalf("%q: types %v, want the transitions", raw, got.filter.types)
			}
		}
		switch {
		case header != "":
			want, err := event.ParseCursor(header)
			if err != nil || !got.resume || got.after != want {
				t.Fatalf("%q: Last-Event-ID %q: resume %v after %v (%v)", raw, header, got.resume, got.after, err)
			}
		case !strings.Contains(raw, "lastEventId"):
			if got.resume {
				t.Fatalf("%q: resumes with no event id", raw)
			}
		}
		// Where the query needs no decoding, the filter holds exactly its items.
		if strings.ContainsAny(raw, "+%") {
			return
		}
		values, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if ids, ok := values["equipmentId"]; ok {
			want := itemsOf(ids[0])
			if len(want) != len(got.filter.equipment) {
				t.Fatalf("%q: equipment %v, want %v", raw, got.filter.equipment, want)
			}
			for _, id := range want {
				if !got.filter.equipment[id] {
					t.Fatalf("%q: equipment %v, want %v", raw, got.filter.equipment, want)
				}
			}
		} else if len(got.filter.equipment) != 0 {
			t.Fatalf("%q: equipment %v, want every one", raw, got.filter.equipment)
		}
		if types, ok := values["types"]; ok {
			want := itemsOf(types[0])
			for typ := range got.filter.types {
				if !slices.Contains(want, string(typ)) {
					t.Fatalf("%q: types %v, want %v", raw, got.filter.types, want)
				}
			}
			for _, typ := range want {
				if !got.filter.types[event.Type(typ)] {
					t.Fatalf("%q: types %v, want %v", raw, got.filter.types, want)
				}
			}
		}
	})
}

// itemsOf splits a comma-separated list, each item trimmed.
func itemsOf(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		out = append(out, strings.TrimSpace(item))
	}
	return out
}
