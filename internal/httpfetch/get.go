package httpfetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Defaults used for the zero value of the corresponding [Request] field.
const (
	DefaultConnectTimeout = 300 * time.Second
	DefaultLowSpeedLimit  = 100 // bytes/s
	DefaultLowSpeedTime   = 1000 * time.Second
	DefaultIdleTimeout    = 300 * time.Second
	DefaultMaxRedirects   = 5
)

// BufferSize is the size of the buffer the body is streamed through: the
// largest slice Sink.Write ever receives.
const BufferSize = 64 << 10

// Request describes one download (or the rest of one).
type Request struct {
	// URL is the http:// or https:// URI to fetch; see [ValidateURL].
	URL string

	// Offset is the number of bytes already stored. When it is > 0 and
	// Validator is usable, Get asks for the rest with
	// "Range: bytes=Offset-" and "If-Range: Validator". Without a usable
	// validator it downloads from byte 0 instead: resuming unguarded could
	// splice two different files.
	Offset int64

	// Validator is the strong ETag (quoted, as received) or the
	// Last-Modified date seen when the stored bytes were fetched, that is
	// the Response.Validator persisted with them; "" for none. A weak ETag
	// counts as none.
	Validator string

	// ConnectTimeout bounds each request from dialling through TLS to the
	// response headers (once per redirect hop); 0 means
	// DefaultConnectTimeout. Exceeding it fails with [ErrConnect].
	ConnectTimeout time.Duration

	// LowSpeedLimit and LowSpeedTime fail the download with [ErrTooSlow]
	// when fewer than LowSpeedLimit bytes/s arrive over a window of
	// LowSpeedTime sliding along the body (measured by a ticker, so a
	// silent server is caught too; time spent in Sink.Write counts). 0
	// means DefaultLowSpeedLimit / DefaultLowSpeedTime; a negative value
	// turns the check off.
	LowSpeedLimit int64
	LowSpeedTime  time.Duration

	// IdleTimeout fails the download with [ErrTooSlow] when no body byte
	// arrives for this long (a half-open connection); 0 means
	// DefaultIdleTimeout, negative turns it off.
	IdleTimeout time.Duration

	// MaxRedirects is the most redirect hops followed; 0 means
	// DefaultMaxRedirects, negative means none.
	MaxRedirects int

	// TLSConfig configures https (RootCAs, client certificates, ...); nil
	// means the system roots. Get uses a copy with MinVersion raised to TLS
	// 1.2 and InsecureSkipVerify cleared. A ServerName set here applies to
	// every host of a redirect chain; leave it empty normally. Ignored when
	// Transport is set.
	TLSConfig *tls.Config

	// Transport, if non-nil, sends the requests instead of Get's own
	// transport; ConnectTimeout still applies through the request context.
	// Meant for tests and proxies that need special dialling.
	Transport http.RoundTripper

	// MaxSize, when > 0, fails the download with [ErrTooLarge] as soon as
	// the file is known or seen to be longer than MaxSize bytes.
	MaxSize int64
}

// Response is what the server answered, given to Sink.Start before any body
// byte.
type Response struct {
	// Status is 200 or 206.
	Status int

	// Offset is where the body starts in the file: Request.Offset when the
	// server honoured the range, 0 when the download restarts (the sink
	// must then drop what it stored).
	Offset int64

	// Total is the whole file's size, -1 when unknown.
	Total int64

	// Validator is the response's strong ETag if present, else its
	// Last-Modified, else (for a 206) the Request.Validator it matched,
	// else "". Persist it with the bytes to resume later.
	Validator string
}

// Sink receives the download. Get calls Start at most once, then Write zero
// or more times, from the goroutine that called Get.
type Sink interface {
	// Start is called with the response before any body byte. The sink
	// keeps the first r.Offset bytes it stored and drops the rest. A
	// non-nil error aborts the download with that error (wrapped).
	Start(r Response) error

	// Write stores the next body bytes, in order. p is reused after Write
	// returns. A non-nil error aborts the download with that error
	// (wrapped).
	Write(p []byte) error
}

// Get downloads req.URL into sink, blocking until done, ctx is cancelled or
// it fails.
//
// On success the sink holds the whole file. On failure it holds a prefix of
// the file that is safe to resume from with the Response.Validator given to
// Start. The returned error wraps one of the package's sentinels or is a
// [*StatusError] (see the package documentation for the Update Result each
// maps to), wraps the sink's error, or wraps ctx.Err().
//
// Get never splices two files: a response that does not continue exactly
// the stored bytes of the same representation (200 to a range request, 412,
// 416, or a 206 with a missing, malformed or mismatched Content-Range or a
// changed validator) makes it download from byte 0; a second such restart
// fails with [ErrRestartLoop].
func Get(ctx context.Context, req Request, sink Sink) error {
	if sink == nil {
		return errors.New("httpfetch: nil Sink")
	}
	if req.Offset < 0 {
		return fmt.Errorf("httpfetch: negative Offset %d", req.Offset)
	}
	u, err := parseURL(req.URL)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("httpfetch: get %s: %w", redactURL(u), err)
	}
	f := newFetcher(req, sink)
	defer f.close()

	offset, validator := req.Offset, req.Validator
	if offset == 0 || !usableValidator(validator) {
		offset, validator = 0, ""
	}
	var first *restartError
	for {
		err := f.attempt(ctx, u, offset, validator)
		r, ok := errors.AsType[*restartError](err)
		if !ok {
			return err
		}
		if first != nil {
			return fmt.Errorf("%w: %s: %s, then %s", ErrRestartLoop, redactURL(u), first.reason, r.reason)
		}
		first = r
		offset, validator = 0, ""
	}
}

// A restartError abandons a response whose body cannot continue the stored
// bytes; Get then downloads from byte 0. It never leaves this package.
type restartError struct{ reason string }

// Error returns the reason.
func (e *restartError) Error() string { return "httpfetch: restart: " + e.reason }

// restart returns a *restartError with a formatted reason.
func restart(format string, args ...any) error {
	return &restartError{reason: fmt.Sprintf(format, args...)}
}

// fetcher holds what one Get needs across its requests.
type fetcher struct {
	req   Request // with defaults applied
	sink  Sink
	rt    http.RoundTripper
	close func() // releases the transport Get made, if any
	buf   []byte
}

// newFetcher applies the defaults of req and builds the client.
func newFetcher(req Request, sink Sink) *fetcher {
	if req.ConnectTimeout <= 0 {
		req.ConnectTimeout = DefaultConnectTimeout
	}
	if req.LowSpeedLimit == 0 {
		req.LowSpeedLimit = DefaultLowSpeedLimit
	}
	if req.LowSpeedTime == 0 {
		req.LowSpeedTime = DefaultLowSpeedTime
	}
	if req.IdleTimeout == 0 {
		req.IdleTimeout = DefaultIdleTimeout
	}
	if req.MaxRedirects == 0 {
		req.MaxRedirects = DefaultMaxRedirects
	}
	f := &fetcher{req: req, sink: sink, close: func() {}, buf: make([]byte, BufferSize)}
	rt := req.Transport
	if rt == nil {
		t := newTransport(req.ConnectTimeout, req.TLSConfig)
		rt, f.close = t, t.CloseIdleConnections
	}
	// Requests go straight to the RoundTripper, not through an
	// http.Client: fetcher.do follows redirects itself, applying its
	// policy to every Location, including unparsable ones.
	f.rt = rt
	return f
}

// attempt makes one request (following redirects) and streams its body.
func (f *fetcher) attempt(ctx context.Context, u *url.URL, offset int64, validator string) error {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	resp, err := f.do(ctx, actx, cancel, u, offset, validator)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r, expect, err := f.check(resp, offset, validator)
	if err != nil {
		return err
	}
	if err := f.sink.Start(r); err != nil {
		return fmt.Errorf("httpfetch: sink start: %w", err)
	}
	return f.copy(ctx, actx, cancel, resp.Body, r, expect)
}

// do sends the request for u from offset and follows redirects. It returns
// the first response that is not a redirect with a Location.
func (f *fetcher) do(ctx, actx context.Context, cancel context.CancelCauseFunc, u *url.URL, offset int64, validator string) (*http.Response, error) {
	hops := redirects{max: max(f.req.MaxRedirects, 0), seen: map[string]bool{urlKey(u): true}, secure: u.Scheme == "https"}
	for {
		hreq, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidURI, err)
		}
		// "identity" also stops any RoundTripper from adding gzip and
		// decoding it behind our back, which would break offsets.
		hreq.Header.Set("Accept-Encoding", "identity")
		if offset > 0 {
			hreq.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
			hreq.Header.Set("If-Range", validator)
		}
		timeout := fmt.Errorf("%w: %s: no response within %v", ErrConnect, redactURL(u), f.req.ConnectTimeout)
		timer := time.AfterFunc(f.req.ConnectTimeout, func() { cancel(timeout) })
		resp, err := f.rt.RoundTrip(hreq)
		timer.Stop()
		if err != nil {
			return nil, f.doError(ctx, actx, u, err)
		}
		if resp.Body == nil {
			resp.Body = http.NoBody
		}
		loc := resp.Header.Get("Location")
		if !isRedirect(resp.StatusCode) || loc == "" {
			return resp, nil
		}
		resp.Body.Close()
		next, err := hops.next(u, loc)
		if err != nil {
			return nil, err
		}
		u = next
	}
}

// isRedirect reports whether code is a status Get follows.
func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// redirects is the redirect policy state of one request chain.
type redirects struct {
	max    int             // hops allowed
	n      int             // hops taken
	seen   map[string]bool // every URL of the chain, by urlKey
	secure bool            // an https URL was visited
}

// next validates the hop from u to Location loc and returns its target.
func (r *redirects) next(u *url.URL, loc string) (*url.URL, error) {
	r.n++
	if r.n > r.max {
		return nil, fmt.Errorf("%w: %s: more than %d redirects", ErrRedirect, redactURL(u), r.max)
	}
	if len(loc) > MaxURILength {
		return nil, fmt.Errorf("%w: %s: Location: %w: %d bytes", ErrRedirect, redactURL(u), ErrInvalidURI, len(loc))
	}
	ref, err := url.Parse(loc)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: %s: Location: %w: %v", ErrRedirect, redactURL(u), ErrInvalidURI, err)
	}
	to := u.ResolveReference(ref)
	switch {
	case !SchemeSupported(to.Scheme):
		return nil, fmt.Errorf("%w: %s: to unsupported scheme %q", ErrRedirect, redactURL(u), to.Scheme)
	case r.secure && to.Scheme != "https":
		return nil, fmt.Errorf("%w: %s: https downgraded to %s", ErrRedirect, redactURL(u), redactURL(to))
	}
	if err := checkParsed(to); err != nil {
		return nil, fmt.Errorf("%w: %s: Location: %w", ErrRedirect, redactURL(u), err)
	}
	if s := to.String(); len(s) > MaxURILength {
		return nil, fmt.Errorf("%w: %s: Location: %w: %d bytes", ErrRedirect, redactURL(u), ErrInvalidURI, len(s))
	}
	k := urlKey(to)
	if r.seen[k] {
		return nil, fmt.Errorf("%w: %s: loop back to %s", ErrRedirect, redactURL(u), redactURL(to))
	}
	r.seen[k] = true
	r.secure = r.secure || to.Scheme == "https"
	return to, nil
}

// urlKey identifies u for loop detection: the URL without its fragment.
func urlKey(u *url.URL) string {
	v := *u
	v.Fragment, v.RawFragment = "", ""
	return v.String()
}

// doError classifies an error from sending a request.
func (f *fetcher) doError(ctx, actx context.Context, u *url.URL, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("httpfetch: get %s: %w", redactURL(u), ctx.Err())
	}
	if actx.Err() != nil {
		if c := context.Cause(actx); c != nil && c != actx.Err() {
			return c
		}
	}
	// *url.Error repeats the URL, query string included.
	if ue, ok := err.(*url.Error); ok {
		err = ue.Err
	}
	if isTLSError(err) {
		return fmt.Errorf("%w: %s: %w", ErrTLS, redactURL(u), err)
	}
	return fmt.Errorf("%w: %s: %w", ErrConnect, redactURL(u), err)
}

// check decides what to do with a final response to a request from offset:
// deliver it (with the number of body bytes to expect, -1 if unknown),
// restart from 0, or fail.
func (f *fetcher) check(resp *http.Response, offset int64, validator string) (Response, int64, error) {
	var r Response
	var expect int64
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		// The whole file, whether or not a range was asked for.
		r = Response{Status: code, Offset: 0, Total: resp.ContentLength, Validator: validatorOf(resp.Header)}
		expect = resp.ContentLength
		if r.Total < 0 {
			r.Total, expect = -1, -1
		}
	case code == http.StatusPartialContent:
		if offset == 0 {
			return r, 0, restart("206 to a request without Range")
		}
		fields := resp.Header.Values("Content-Range")
		if len(fields) != 1 {
			return r, 0, restart("206 with %d Content-Range fields", len(fields))
		}
		cr, err := parseContentRange(fields[0])
		switch {
		case err != nil:
			return r, 0, restart("206 with malformed Content-Range %.80q", fields[0])
		case cr.first != offset:
			return r, 0, restart("206 starting at byte %d, asked for %d", cr.first, offset)
		case resp.ContentLength >= 0 && resp.ContentLength != cr.len():
			return r, 0, restart("206 with Content-Length %d for a %d-byte range", resp.ContentLength, cr.len())
		case !sameRepresentation(resp.Header, validator):
			return r, 0, restart("206 for another representation than %.80s", validator)
		}
		r = Response{Status: code, Offset: offset, Total: cr.total, Validator: validatorOf(resp.Header)}
		if r.Validator == "" {
			r.Validator = validator
		}
		expect = cr.len()
	case (code == http.StatusRequestedRangeNotSatisfiable || code == http.StatusPreconditionFailed) && offset > 0:
		return r, 0, restart("%d to a range request", code)
	default:
		return r, 0, &StatusError{Code: code, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	if m := f.req.MaxSize; m > 0 && (r.Total > m || expect >= 0 && r.Offset+expect > m) {
		return r, 0, fmt.Errorf("%w: %s bytes, more than MaxSize %d", ErrTooLarge, sizeString(r, expect), m)
	}
	return r, expect, nil
}

// sizeString describes the size a response announces, for errors.
func sizeString(r Response, expect int64) string {
	if r.Total >= 0 {
		return strconv.FormatInt(r.Total, 10)
	}
	return "at least " + strconv.FormatInt(r.Offset+expect, 10)
}

// copy streams body into the sink: expect bytes (-1 = until EOF), never
// more, through f.buf.
func (f *fetcher) copy(ctx, actx context.Context, cancel context.CancelCauseFunc, body io.Reader, r Response, expect int64) error {
	wd := startWatchdog(f.req.LowSpeedLimit, f.req.LowSpeedTime, f.req.IdleTimeout, cancel)
	defer wd.stop()
	var got int64
	for expect < 0 || got < expect {
		p := f.buf
		if expect >= 0 && expect-got < int64(len(p)) {
			p = p[:expect-got]
		}
		n, err := body.Read(p)
		if n > 0 {
			if m := f.req.MaxSize; m > 0 && r.Offset+got+int64(n) > m {
				return fmt.Errorf("%w: more than MaxSize %d bytes received", ErrTooLarge, m)
			}
			wd.add(n)
			if err := f.sink.Write(p[:n]); err != nil {
				return fmt.Errorf("httpfetch: sink write at byte %d: %w", r.Offset+got, err)
			}
			got += int64(n)
		}
		if err == io.EOF {
			if expect >= 0 && got < expect {
				return fmt.Errorf("%w: body ended after %d of %d bytes", ErrConnectionLost, got, expect)
			}
			break
		}
		if err != nil {
			return f.bodyError(ctx, actx, err, r.Offset+got)
		}
	}
	if expect >= 0 {
		// The declared length is all we take (B39). A chunked body that
		// goes on past it is an error; a Content-Length body ends here.
		if n, _ := body.Read(f.buf[:1]); n > 0 {
			return fmt.Errorf("%w: body longer than the %d bytes declared", ErrTooLarge, expect)
		}
	}
	if end := r.Offset + got; r.Status == http.StatusPartialContent && r.Total >= 0 && end < r.Total {
		return fmt.Errorf("%w: server sent bytes %d-%d of %d", ErrConnectionLost, r.Offset, end-1, r.Total)
	}
	return nil
}

// bodyError classifies an error from reading the body at file position pos.
func (f *fetcher) bodyError(ctx, actx context.Context, err error, pos int64) error {
	if ctx.Err() != nil {
		return fmt.Errorf("httpfetch: body at byte %d: %w", pos, ctx.Err())
	}
	if actx.Err() != nil {
		if c := context.Cause(actx); c != nil && c != actx.Err() {
			return c
		}
	}
	return fmt.Errorf("%w: at byte %d: %w", ErrConnectionLost, pos, err)
}
