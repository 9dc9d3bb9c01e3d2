//go:build cgo

package main

/*
#include "capi.h"
*/
import "C"

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
)

// logLevel is the minimum level logged: AVC_LOG_LEVEL of the current
// configuration (info until it is read).
var logLevel slog.LevelVar

// logger is what capi and every agent it starts log to.
var logger = slog.New(&logHandler{})

// logSink is a C log callback set by avc_set_log_handler.
type logSink struct {
	fn     C.avc_log_fn
	user   C.uintptr_t
	active atomic.Int32 // calls in progress
}

// sink is the current C callback; nil means stderr.
var sink atomic.Pointer[logSink]

// setLogSink installs s (nil: stderr) and waits up to wait for calls to
// the previous callback to return.
func setLogSink(s *logSink, wait time.Duration) {
	old := sink.Swap(s)
	if old == nil {
		return
	}
	deadline := time.Now().Add(wait)
	for old.active.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// writeLog delivers one formatted line. It holds no lock while the C
// callback runs.
func writeLog(level slog.Level, line string) {
	for {
		s := sink.Load()
		if s == nil {
			os.Stderr.WriteString("avc: " + level.String() + " " + line + "\n")
			return
		}
		s.active.Add(1)
		if sink.Load() != s {
			// Replaced meanwhile; the replacer may not have seen us.
			s.active.Add(-1)
			continue
		}
		cs := C.CString(line)
		func() {
			defer s.active.Add(-1)
			defer C.free(unsafe.Pointer(cs))
			C.avc_call_log_(s.fn, s.user, C.int(level), cs)
		}()
		return
	}
}

// logHandler formats records as "message key=value ..." lines.
type logHandler struct {
	prefix string // group prefix, "g." or ""
	attrs  string // preformatted attributes from WithAttrs
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= logLevel.Level()
}

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.prefix, a)
		return true
	})
	writeLog(r.Level, b.String())
	return nil
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		appendAttr(&b, h.prefix, a)
	}
	return &logHandler{prefix: h.prefix, attrs: b.String()}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{prefix: h.prefix + name + ".", attrs: h.attrs}
}

func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			appendAttr(b, p, g)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix)
	b.WriteString(a.Key)
	b.WriteByte('=')
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " =\"\n\t") {
		v = strconv.Quote(v)
	}
	b.WriteString(v)
}
