//go:build wasip1

package main

import (
	"bytes"
	"context"
	"log/slog"
	"unsafe"
)

// hostHandler is a slog.Handler that forwards each record to the
// avc_host.log import as one JSON object: {"msg":"registered",
// "server_uri":"coap://…",…}. The level travels as the import's first
// argument (slog's numbering: -4 debug, 0 info, 4 warn, 8 error) and the
// time is left out: the host stamps records itself.
type hostHandler struct {
	level slog.Leveler
	buf   *bytes.Buffer
	json  slog.Handler
}

func newHostHandler(level slog.Leveler) *hostHandler {
	buf := new(bytes.Buffer)
	drop := func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
			return slog.Attr{}
		}
		return a
	}
	return &hostHandler{
		level: level,
		buf:   buf,
		json:  slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: drop}),
	}
}

func (h *hostHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *hostHandler) Handle(ctx context.Context, r slog.Record) error {
	h.buf.Reset()
	if err := h.json.Handle(ctx, r); err != nil {
		return err
	}
	b := bytes.TrimSuffix(h.buf.Bytes(), []byte("\n"))
	hostLog(int32(r.Level), unsafe.String(unsafe.SliceData(b), len(b)))
	return nil
}

func (h *hostHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &hostHandler{level: h.level, buf: h.buf, json: h.json.WithAttrs(as)}
}

func (h *hostHandler) WithGroup(name string) slog.Handler {
	return &hostHandler{level: h.level, buf: h.buf, json: h.json.WithGroup(name)}
}
