package httpfetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// testFile returns n deterministic pseudo-random bytes, different per seed.
func testFile(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// quietLog drops the servers' logs of the failures the tests provoke.
var quietLog = log.New(io.Discard, "", 0)

// fileSize is larger than several BufferSize reads.
const fileSize = 200_000

var (
	fileV1  = testFile(fileSize, 1)
	fileV2  = testFile(fileSize+123, 2)
	modTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	lastMod = modTime.Format(http.TimeFormat)
)

// memSink is a Sink that keeps the file in memory, as flash would.
type memSink struct {
	data     []byte
	starts   []Response
	maxWrite int
	startErr error
	writeErr error
	onWrite  func(total int) // called after each Write with len(data)
}

// Start keeps the first r.Offset stored bytes, as the Sink contract says.
func (s *memSink) Start(r Response) error {
	s.starts = append(s.starts, r)
	if s.startErr != nil {
		return s.startErr
	}
	if r.Offset > int64(len(s.data)) {
		return fmt.Errorf("memSink: start at %d beyond %d stored bytes", r.Offset, len(s.data))
	}
	s.data = s.data[:r.Offset]
	return nil
}

// Write appends p.
func (s *memSink) Write(p []byte) error {
	if len(s.starts) == 0 {
		return errors.New("memSink: Write before Start")
	}
	if s.writeErr != nil {
		return s.writeErr
	}
	s.maxWrite = max(s.maxWrite, len(p))
	s.data = append(s.data, p...)
	if s.onWrite != nil {
		s.onWrite(len(s.data))
	}
	return nil
}

// stored returns a sink already holding b, as after an interrupted download.
func stored(b []byte) *memSink { return &memSink{data: bytes.Clone(b)} }

// serveFile returns a handler serving data with http.ServeContent, which
// implements Range and If-Range itself. etag may be "".
func serveFile(data []byte, etag string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if etag != "" {
			w.Header().Set("ETag", etag)
		}
		http.ServeContent(w, r, "fw.bin", modTime, bytes.NewReader(data))
	}
}

// recorder wraps a handler and keeps the headers of every request.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

// wrap returns h recording into rec.
func (rec *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r.Clone(context.Background()))
		rec.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// all returns the recorded requests.
func (rec *recorder) all() []*http.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]*http.Request(nil), rec.reqs...)
}

// newServer starts h on a loopback httptest.Server closed at cleanup.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = quietLog
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// release returns a channel closed at cleanup, before servers registered
// earlier are closed, so that stalled handlers can return.
func release(t *testing.T) <-chan struct{} {
	c := make(chan struct{})
	t.Cleanup(func() { close(c) })
	return c
}

// silentListener accepts TCP connections and never writes to them.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// hijack returns a handler that takes over the connection and runs raw on it.
func hijack(t *testing.T, raw func(c net.Conn)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer c.Close()
		raw(c)
	}
}

// request returns a Request for url with timeouts suited to tests.
func request(url string) Request {
	return Request{URL: url, ConnectTimeout: 5 * time.Second}
}

// wantErr checks err against a sentinel (nil means success).
func wantErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("Get: %v, want success", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("Get: %v, want %v", err, want)
	}
}

// checkSink checks the sink's final bytes and the responses it started with.
func checkSink(t *testing.T, s *memSink, data []byte, starts ...Response) {
	t.Helper()
	if !bytes.Equal(s.data, data) {
		t.Errorf("sink holds %d bytes, want %d (equal prefix %d)", len(s.data), len(data), commonPrefix(s.data, data))
	}
	if fmt.Sprint(s.starts) != fmt.Sprint(starts) {
		t.Errorf("Start calls %+v, want %+v", s.starts, starts)
	}
	if s.maxWrite > BufferSize {
		t.Errorf("Write got %d bytes, more than BufferSize", s.maxWrite)
	}
}

// commonPrefix returns the length of the common prefix of a and b.
func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
