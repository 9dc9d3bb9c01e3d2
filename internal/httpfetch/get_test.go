package httpfetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestGetFull(t *testing.T) {
	t.Parallel()
	chunked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `W/"weak"`)
		for p := fileV1; len(p) > 0; {
			n := min(len(p), 7000)
			w.Write(p[:n])
			w.(http.Flusher).Flush() // no Content-Length: chunked
			p = p[n:]
		}
	})
	tests := []struct {
		name    string
		handler http.Handler
		want    Response
	}{
		{"ServeContent with ETag", serveFile(fileV1, `"v1"`), Response{200, 0, fileSize, `"v1"`}},
		{"ServeContent Last-Modified only", serveFile(fileV1, ""), Response{200, 0, fileSize, lastMod}},
		{"weak ETag falls back to Last-Modified", serveFile(fileV1, `W/"v1"`), Response{200, 0, fileSize, lastMod}},
		{"chunked, unknown size, no validator", chunked, Response{200, 0, -1, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rec recorder
			srv := newServer(t, rec.wrap(tt.handler))
			s := &memSink{}
			wantErr(t, Get(t.Context(), request(srv.URL+"/fw.bin"), s), nil)
			checkSink(t, s, fileV1, tt.want)
			reqs := rec.all()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			h := reqs[0].Header
			if h.Get("Range") != "" || h.Get("If-Range") != "" || h.Get("Accept-Encoding") != "identity" {
				t.Errorf("request headers %v", h)
			}
		})
	}
}

func TestGetResume(t *testing.T) {
	t.Parallel()
	const off = 70_001
	// star answers a range request with "bytes a-b/*".
	star := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/*", off, fileSize-1))
		w.Header().Set("Content-Length", strconv.Itoa(fileSize-off))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(fileV1[off:])
	})
	// ignore answers every request with the whole file.
	ignore := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Length", strconv.Itoa(fileSize))
		w.Write(fileV1)
	})
	redirect := http.NewServeMux()
	redirect.Handle("/fw.bin", http.RedirectHandler("/real/fw.bin", http.StatusFound))
	redirect.Handle("/real/fw.bin", serveFile(fileV1, `"v1"`))

	tests := []struct {
		name      string
		handler   http.Handler
		offset    int64
		validator string
		stored    []byte // what the sink holds before Get
		want      []byte
		start     Response
		wantRange string // Range header sent, "" for none
	}{
		{"ETag matches", serveFile(fileV1, `"v1"`), off, `"v1"`, fileV1[:off], fileV1,
			Response{206, off, fileSize, `"v1"`}, "bytes=70001-"},
		{"Last-Modified matches", serveFile(fileV1, ""), off, lastMod, fileV1[:off], fileV1,
			Response{206, off, fileSize, lastMod}, "bytes=70001-"},
		{"last byte only", serveFile(fileV1, `"v1"`), fileSize - 1, `"v1"`, fileV1[:fileSize-1], fileV1,
			Response{206, fileSize - 1, fileSize, `"v1"`}, "bytes=199999-"},
		{"If-Range mismatch: file changed, 200", serveFile(fileV2, `"v2"`), off, `"v1"`, fileV1[:off], fileV2,
			Response{200, 0, int64(len(fileV2)), `"v2"`}, "bytes=70001-"},
		{"server ignores Range", ignore, off, `"v1"`, fileV1[:off], fileV1,
			Response{200, 0, fileSize, `"v1"`}, "bytes=70001-"},
		{"no validator: from 0 without Range", serveFile(fileV1, `"v1"`), off, "", fileV1[:off], fileV1,
			Response{200, 0, fileSize, `"v1"`}, ""},
		{"weak validator: from 0 without Range", serveFile(fileV1, `"v1"`), off, `W/"v1"`, fileV1[:off], fileV1,
			Response{200, 0, fileSize, `"v1"`}, ""},
		{"total *", star, off, `"v1"`, fileV1[:off], fileV1,
			Response{206, off, -1, `"v1"`}, "bytes=70001-"},
		{"through a redirect", redirect, off, `"v1"`, fileV1[:off], fileV1,
			Response{206, off, fileSize, `"v1"`}, "bytes=70001-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rec recorder
			srv := newServer(t, rec.wrap(tt.handler))
			req := request(srv.URL + "/fw.bin")
			req.Offset, req.Validator = tt.offset, tt.validator
			s := stored(tt.stored)
			wantErr(t, Get(t.Context(), req, s), nil)
			checkSink(t, s, tt.want, tt.start)
			for _, r := range rec.all() {
				ir := ""
				if tt.wantRange != "" {
					ir = tt.validator
				}
				if r.Header.Get("Range") != tt.wantRange || r.Header.Get("If-Range") != ir {
					t.Errorf("%s: Range %q If-Range %q, want %q %q", r.URL.Path,
						r.Header.Get("Range"), r.Header.Get("If-Range"), tt.wantRange, ir)
				}
			}
		})
	}
}

// rangeThen answers requests carrying Range with bad, others with ServeContent.
func rangeThen(bad http.HandlerFunc) http.HandlerFunc {
	good := serveFile(fileV1, `"v1"`)
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			bad(w, r)
			return
		}
		good(w, r)
	}
}

// partial returns a handler answering 206 with the given Content-Range
// fields (none when empty) and body.
func partial(body []byte, contentRange ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		for _, v := range contentRange {
			w.Header().Add("Content-Range", v)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(body)
	}
}

func TestGetRestart(t *testing.T) {
	t.Parallel()
	const off = 1000
	junk := bytes.Repeat([]byte("X"), 100)
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes */"+strconv.Itoa(fileSize))
			w.WriteHeader(code)
		}
	}
	tests := []struct {
		name string
		bad  http.HandlerFunc
	}{
		{"416", status(http.StatusRequestedRangeNotSatisfiable)},
		{"412", status(http.StatusPreconditionFailed)},
		{"no Content-Range", partial(junk)},
		{"two Content-Range", partial(junk, "bytes 1000-1099/200000", "bytes 1000-1099/200000")},
		{"start != offset", partial(junk, "bytes 0-99/200000")},
		{"start past offset", partial(junk, "bytes 1100-1199/200000")},
		{"end < start", partial(junk, "bytes 1000-999/200000")},
		{"end >= total", partial(junk, "bytes 1000-1099/1050")},
		{"unsatisfied form", partial(junk, "bytes */200000")},
		{"wrong unit", partial(junk, "items 1000-1099/200000")},
		{"equals sign", partial(junk, "bytes=1000-1099/200000")},
		{"no total", partial(junk, "bytes 1000-1099")},
		{"bad total", partial(junk, "bytes 1000-1099/2e5")},
		{"negative", partial(junk, "bytes -1000-1099/200000")},
		{"overflow", partial(junk, "bytes 1000-99999999999999999999/200000")},
		{"Content-Length mismatch", partial(junk, "bytes 1000-1199/200000")},
		{"ETag changed on 206", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v2"`)
			w.Header().Set("Content-Range", "bytes 1000-1099/200000")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(junk)
		}},
		{"multipart/byteranges", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "multipart/byteranges; boundary=B")
			w.WriteHeader(http.StatusPartialContent)
			fmt.Fprintf(w, "--B\r\nContent-Range: bytes 1000-1099/200000\r\n\r\n%s\r\n--B--\r\n", junk)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rec recorder
			srv := newServer(t, rec.wrap(rangeThen(tt.bad)))
			req := request(srv.URL)
			req.Offset, req.Validator = off, `"v1"`
			s := stored(fileV1[:off])
			wantErr(t, Get(t.Context(), req, s), nil)
			// One Start, from 0: the bad body was never delivered.
			checkSink(t, s, fileV1, Response{200, 0, fileSize, `"v1"`})
			reqs := rec.all()
			if len(reqs) != 2 || reqs[0].Header.Get("Range") == "" ||
				reqs[1].Header.Get("Range") != "" || reqs[1].Header.Get("If-Range") != "" {
				t.Errorf("requests: %d, want one with Range then one without", len(reqs))
			}
		})
	}
}

func TestGetRestartLoop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"206 to every request", partial([]byte("abc"), "bytes 5-7/100")},
		{"bad Content-Range then 206 without Range", partial([]byte("abc"), "bytes 5-7/7")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, tt.handler)
			req := request(srv.URL)
			req.Offset, req.Validator = 10, `"v1"`
			s := stored(make([]byte, 10))
			err := Get(t.Context(), req, s)
			wantErr(t, err, ErrRestartLoop)
			if len(s.starts) != 0 {
				t.Errorf("Start called: %+v", s.starts)
			}
		})
	}
}

func TestGetStatusError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		code       int
		header     map[string]string
		offset     int64
		retryAfter time.Duration
	}{
		{"404", http.StatusNotFound, nil, 0, 0},
		{"500", http.StatusInternalServerError, nil, 0, 0},
		{"501", http.StatusNotImplemented, nil, 0, 0},
		{"505", http.StatusHTTPVersionNotSupported, nil, 0, 0},
		{"403 on resume", http.StatusForbidden, nil, 500, 0},
		{"503 Retry-After seconds", http.StatusServiceUnavailable, map[string]string{"Retry-After": "120"}, 0, 2 * time.Minute},
		{"503 absurd Retry-After", http.StatusServiceUnavailable, map[string]string{"Retry-After": "99999999999999999999"}, 0, maxRetryAfter},
		{"429 bad Retry-After", http.StatusTooManyRequests, map[string]string{"Retry-After": "soon"}, 0, 0},
		{"302 without Location", http.StatusFound, nil, 0, 0},
		{"304", http.StatusNotModified, nil, 0, 0},
		{"204", http.StatusNoContent, nil, 0, 0},
		{"416 without Range", http.StatusRequestedRangeNotSatisfiable, nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.code)
			}))
			req := request(srv.URL)
			req.Offset, req.Validator = tt.offset, `"v1"`
			s := stored(make([]byte, tt.offset))
			err := Get(t.Context(), req, s)
			se, ok := errors.AsType[*StatusError](err)
			if !ok || se.Code != tt.code || se.RetryAfter != tt.retryAfter {
				t.Fatalf("Get: %v (%#v), want StatusError %d retry %v", err, se, tt.code, tt.retryAfter)
			}
			if len(s.starts) != 0 {
				t.Errorf("Start called: %+v", s.starts)
			}
		})
	}
}

func TestGetRedirect(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle("/fw.bin", serveFile(fileV1, `"v1"`))
	// /chain/N redirects N times before reaching /fw.bin.
	mux.HandleFunc("/chain/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		codes := []int{301, 302, 303, 307, 308}
		to := "/fw.bin"
		if n > 1 {
			to = fmt.Sprintf("/chain/%d", n-1)
		}
		http.Redirect(w, r, to, codes[n%len(codes)])
	})
	mux.Handle("/loop/a", http.RedirectHandler("/loop/b", http.StatusFound))
	mux.Handle("/loop/b", http.RedirectHandler("/loop/a#frag", http.StatusFound))
	mux.Handle("/self", http.RedirectHandler("/self", http.StatusMovedPermanently))
	mux.Handle("/dir/rel", http.RedirectHandler("../fw.bin", http.StatusFound))
	to := func(loc string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", loc)
			w.WriteHeader(http.StatusFound)
		}
	}
	mux.Handle("/ftp", to("ftp://example.com/fw.bin"))
	mux.Handle("/file", to("file:///etc/passwd"))
	mux.Handle("/badv6", to("http://[::1/fw.bin"))
	mux.Handle("/userinfo", to("http://user:pw@127.0.0.1/fw.bin"))
	mux.Handle("/badport", to("http://127.0.0.1:99999/fw.bin"))
	mux.Handle("/huge", to("/"+strings.Repeat("a", 3000)))
	srv := newServer(t, mux)

	tests := []struct {
		name  string
		path  string
		max   int
		want  error
		also  error // another sentinel the error must wrap
		notIs error // a sentinel it must not wrap
	}{
		{"5 hops", "/chain/5", 0, nil, nil, nil},
		{"6 hops", "/chain/6", 0, ErrRedirect, nil, nil},
		{"2 hops, max 2", "/chain/2", 2, nil, nil, nil},
		{"3 hops, max 2", "/chain/3", 2, ErrRedirect, nil, nil},
		{"1 hop, none allowed", "/chain/1", -1, ErrRedirect, nil, nil},
		{"loop", "/loop/a", 0, ErrRedirect, nil, nil},
		{"self loop", "/self", 0, ErrRedirect, nil, nil},
		{"relative Location", "/dir/rel", 0, nil, nil, nil},
		{"to ftp", "/ftp", 0, ErrRedirect, nil, ErrUnsupportedScheme},
		{"to file", "/file", 0, ErrRedirect, nil, ErrUnsupportedScheme},
		{"bad IPv6 Location", "/badv6", 0, ErrRedirect, ErrInvalidURI, nil},
		{"userinfo Location", "/userinfo", 0, ErrRedirect, ErrInvalidURI, nil},
		{"bad port Location", "/badport", 0, ErrRedirect, ErrInvalidURI, nil},
		{"huge Location", "/huge", 0, ErrRedirect, ErrInvalidURI, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := request(srv.URL + tt.path)
			req.MaxRedirects = tt.max
			s := &memSink{}
			err := Get(t.Context(), req, s)
			wantErr(t, err, tt.want)
			if tt.also != nil && !errors.Is(err, tt.also) {
				t.Errorf("Get: %v, want it to wrap %v too", err, tt.also)
			}
			if tt.notIs != nil && errors.Is(err, tt.notIs) {
				t.Errorf("Get: %v wraps %v", err, tt.notIs)
			}
			if tt.want == nil {
				checkSink(t, s, fileV1, Response{200, 0, fileSize, `"v1"`})
			}
		})
	}
}

func TestGetTooLarge(t *testing.T) {
	t.Parallel()
	endless := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for r.Context().Err() == nil {
			if _, err := w.Write(fileV1[:8192]); err != nil {
				return
			}
		}
	})
	tests := []struct {
		name      string
		handler   http.Handler
		maxSize   int64
		offset    int64
		want      error
		wantStart bool
	}{
		{"Content-Length over MaxSize", serveFile(fileV1, `"v1"`), fileSize - 1, 0, ErrTooLarge, false},
		{"Content-Length equals MaxSize", serveFile(fileV1, `"v1"`), fileSize, 0, nil, true},
		{"206 total over MaxSize", serveFile(fileV1, `"v1"`), fileSize - 1, 5000, ErrTooLarge, false},
		{"endless chunked body", endless, 100_000, 0, ErrTooLarge, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, tt.handler)
			req := request(srv.URL)
			req.MaxSize, req.Offset, req.Validator = tt.maxSize, tt.offset, `"v1"`
			s := stored(fileV1[:tt.offset])
			wantErr(t, Get(t.Context(), req, s), tt.want)
			if got := len(s.starts) > 0; got != tt.wantStart {
				t.Errorf("Start called: %v, want %v", got, tt.wantStart)
			}
			if int64(len(s.data)) > tt.maxSize {
				t.Errorf("sink holds %d bytes, more than MaxSize %d", len(s.data), tt.maxSize)
			}
		})
	}
}

func TestGetBodyLongerThanDeclared(t *testing.T) {
	t.Parallel()
	t.Run("Content-Length: stop at the length", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, hijack(t, func(c net.Conn) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nETag: \"v1\"\r\n\r\n")
			c.Write(fileV1[:300])
		}))
		s := &memSink{}
		wantErr(t, Get(t.Context(), request(srv.URL), s), nil)
		checkSink(t, s, fileV1[:100], Response{200, 0, 100, `"v1"`})
	})
	t.Run("chunked 206 longer than its Content-Range", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Content-Range", "bytes 10-19/20")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(fileV1[10:20])
			w.(http.Flusher).Flush()
			w.Write(fileV1[20:40])
		}))
		req := request(srv.URL)
		req.Offset, req.Validator = 10, `"v1"`
		s := stored(fileV1[:10])
		wantErr(t, Get(t.Context(), req, s), ErrTooLarge)
		checkSink(t, s, fileV1[:20], Response{206, 10, 20, `"v1"`})
	})
	t.Run("chunked 200 longer than MaxSize", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(fileV1[:50])
			w.(http.Flusher).Flush()
			w.Write(fileV1[50:100])
		}))
		req := request(srv.URL)
		req.MaxSize = 60
		s := &memSink{}
		wantErr(t, Get(t.Context(), req, s), ErrTooLarge)
		if len(s.data) > 60 {
			t.Errorf("sink holds %d bytes", len(s.data))
		}
	})
}

func TestGetConnectionLost(t *testing.T) {
	t.Parallel()
	const half = 100_000
	head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nETag: \"v1\"\r\n\r\n", fileSize)
	tests := []struct {
		name  string
		raw   func(c net.Conn, got <-chan struct{})
		start Response
		data  []byte
	}{
		{"FIN mid-body", func(c net.Conn, _ <-chan struct{}) {
			c.Write([]byte(head))
			c.Write(fileV1[:half])
		}, Response{200, 0, fileSize, `"v1"`}, fileV1[:half]},
		{"RST mid-body", func(c net.Conn, got <-chan struct{}) {
			c.Write([]byte(head))
			c.Write(fileV1[:half])
			<-got // the client has the bytes; now reset
			c.(*net.TCPConn).SetLinger(0)
		}, Response{200, 0, fileSize, `"v1"`}, fileV1[:half]},
		{"chunked body cut mid-chunk", func(c net.Conn, _ <-chan struct{}) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", 1000)
			c.Write(fileV1[:500])
		}, Response{200, 0, -1, ""}, fileV1[:500]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan struct{})
			srv := newServer(t, hijack(t, func(c net.Conn) { tt.raw(c, got) }))
			s := &memSink{}
			s.onWrite = func(n int) {
				if n == len(tt.data) {
					close(got)
				}
			}
			err := Get(t.Context(), request(srv.URL), s)
			wantErr(t, err, ErrConnectionLost)
			checkSink(t, s, tt.data, tt.start)
		})
	}
}

func TestGetShortRange(t *testing.T) {
	t.Parallel()
	srv := newServer(t, rangeThen(partial(fileV1[1000:1100], "bytes 1000-1099/200000")))
	req := request(srv.URL)
	req.Offset, req.Validator = 1000, `"v1"`
	s := stored(fileV1[:1000])
	wantErr(t, Get(t.Context(), req, s), ErrConnectionLost)
	checkSink(t, s, fileV1[:1100], Response{206, 1000, fileSize, `"v1"`})
}

func TestGetTooSlow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		every   time.Duration // one byte per every; 0 = stall after 10 bytes
		limit   int64
		window  time.Duration
		idle    time.Duration
		want    error
		minTime time.Duration
	}{
		{"stall, low-speed check", 0, 1000, 300 * time.Millisecond, -1, ErrTooSlow, 300 * time.Millisecond},
		{"trickle below the limit", 20 * time.Millisecond, 1000, 300 * time.Millisecond, -1, ErrTooSlow, 300 * time.Millisecond},
		{"stall, idle timeout only", 0, -1, 0, 200 * time.Millisecond, ErrTooSlow, 200 * time.Millisecond},
		{"trickle above the limit", 10 * time.Millisecond, 20, 200 * time.Millisecond, 100 * time.Millisecond, nil, 0},
	}
	const size = 40
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			done := release(t)
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(size))
				w.WriteHeader(http.StatusOK)
				n := 0
				if tt.every == 0 {
					w.Write(fileV1[:10])
					w.(http.Flusher).Flush()
					n = size // then stall
				}
				for ; n < size; n++ {
					w.Write(fileV1[n : n+1])
					w.(http.Flusher).Flush()
					select {
					case <-time.After(tt.every):
					case <-r.Context().Done():
						return
					}
				}
				select {
				case <-r.Context().Done():
				case <-done:
				}
			}))
			req := request(srv.URL)
			req.LowSpeedLimit, req.LowSpeedTime, req.IdleTimeout = tt.limit, tt.window, tt.idle
			s := &memSink{}
			t0 := time.Now()
			err := Get(t.Context(), req, s)
			el := time.Since(t0)
			wantErr(t, err, tt.want)
			if el < tt.minTime || el > 2*time.Second {
				t.Errorf("Get took %v", el)
			}
			if tt.want == nil && !bytes.Equal(s.data, fileV1[:size]) {
				t.Errorf("sink holds %d bytes", len(s.data))
			}
		})
	}
}

func TestGetConnectFailure(t *testing.T) {
	t.Parallel()
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}()
	slowHeaders := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	}))
	closer := newServer(t, hijack(t, func(net.Conn) {}))
	silent := silentListener(t)
	tests := []struct {
		name      string
		url       string
		transport http.RoundTripper
	}{
		{"silent listener, http", "http://" + silent + "/fw.bin", nil},
		{"silent listener, https (no handshake)", "https://" + silent + "/fw.bin", nil},
		{"silent listener, custom Transport", "http://" + silent + "/fw.bin", http.DefaultTransport.(*http.Transport).Clone()},
		{"headers too late", slowHeaders.URL, nil},
		{"connection refused", "http://" + refused + "/fw.bin", nil},
		{"closed before answering", closer.URL, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := Request{URL: tt.url, ConnectTimeout: 200 * time.Millisecond, Transport: tt.transport}
			t0 := time.Now()
			err := Get(t.Context(), req, &memSink{})
			wantErr(t, err, ErrConnect)
			if errors.Is(err, ErrTLS) {
				t.Errorf("Get: %v is also ErrTLS", err)
			}
			if el := time.Since(t0); el > time.Second {
				t.Errorf("Get took %v, want about ConnectTimeout", el)
			}
		})
	}
}

func TestGetContext(t *testing.T) {
	t.Parallel()
	t.Run("cancelled mid-body", func(t *testing.T) {
		t.Parallel()
		done := release(t)
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(fileSize))
			w.Write(fileV1[:1000])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-done:
			}
		}))
		ctx, cancel := context.WithCancel(t.Context())
		s := &memSink{onWrite: func(int) { cancel() }}
		err := Get(ctx, request(srv.URL), s)
		wantErr(t, err, context.Canceled)
		if errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrTooSlow) {
			t.Errorf("Get: %v, want only context.Canceled", err)
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		t.Parallel()
		var rec recorder
		srv := newServer(t, rec.wrap(serveFile(fileV1, "")))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		wantErr(t, Get(ctx, request(srv.URL), &memSink{}), context.Canceled)
		if n := len(rec.all()); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})
	t.Run("deadline while connecting", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		err := Get(ctx, request("http://"+silentListener(t)), &memSink{})
		wantErr(t, err, context.DeadlineExceeded)
		if errors.Is(err, ErrConnect) {
			t.Errorf("Get: %v, want only the context's error", err)
		}
	})
}

func TestGetSinkErrors(t *testing.T) {
	t.Parallel()
	srv := newServer(t, serveFile(fileV1, `"v1"`))
	errFlash := errors.New("flash full")
	tests := []struct {
		name string
		sink *memSink
	}{
		{"Start", &memSink{startErr: errFlash}},
		{"Write", &memSink{writeErr: errFlash}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantErr(t, Get(t.Context(), request(srv.URL), tt.sink), errFlash)
		})
	}
}

func TestGetBadArguments(t *testing.T) {
	t.Parallel()
	if err := Get(t.Context(), request("http://127.0.0.1:1/"), nil); err == nil {
		t.Error("nil Sink accepted")
	}
	req := request("http://127.0.0.1:1/")
	req.Offset = -1
	if err := Get(t.Context(), req, &memSink{}); err == nil {
		t.Error("negative Offset accepted")
	}
}

func TestGetTransport(t *testing.T) {
	t.Parallel()
	srv := newServer(t, serveFile(fileV1, `"v1"`))
	var calls int
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls++
		return http.DefaultTransport.RoundTrip(r)
	})
	req := request(srv.URL)
	req.Transport = rt
	s := &memSink{}
	wantErr(t, Get(t.Context(), req, s), nil)
	checkSink(t, s, fileV1, Response{200, 0, fileSize, `"v1"`})
	if calls != 1 {
		t.Errorf("Transport called %d times, want 1", calls)
	}
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
