package httpfetch

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrUnsupportedScheme reports a URI whose scheme is neither http nor https
// (ftp:, file:, tftp:, coap+tcp:, ...). Update Result 9 (Unsupported
// protocol).
var ErrUnsupportedScheme = errors.New("httpfetch: unsupported URI scheme")

// ErrInvalidURI reports a syntactically invalid URI: a missing scheme, a bad
// IPv6 literal, a bad percent escape, a port outside 1–65535, an empty or
// malformed host, userinfo, a URI longer than [MaxURILength] bytes or a host
// longer than [MaxHostLength] bytes. Update Result 7 (Invalid URI).
var ErrInvalidURI = errors.New("httpfetch: invalid URI")

// ErrRedirect reports a redirect that was not followed: a loop, more than
// Request.MaxRedirects hops, an https→http downgrade, a target with another
// scheme, or a Location that is not a valid URI (then [ErrInvalidURI] is
// wrapped too). Update Result 7 (Invalid URI).
var ErrRedirect = errors.New("httpfetch: redirect refused")

// ErrConnect reports that no response headers arrived within
// Request.ConnectTimeout, or that the connection could not be made at all
// (DNS failure, refused, reset before the response). Update Result 4
// (Connection lost during download).
var ErrConnect = errors.New("httpfetch: connection failed")

// ErrTLS reports a TLS handshake failure: the certificate chain does not
// verify (unknown authority, expired, wrong host name, self-signed), the
// server offers only TLS < 1.2, or the peer does not speak TLS. Certificate
// verification is never skipped. Update Result 4 (Connection lost during
// download); Object 5 has no dedicated code, and retrying soon rarely helps.
var ErrTLS = errors.New("httpfetch: TLS handshake failed")

// ErrTooSlow reports that the body arrived slower than
// Request.LowSpeedLimit bytes/s over Request.LowSpeedTime, or that no body
// byte arrived for Request.IdleTimeout. Update Result 4 (Connection lost
// during download).
var ErrTooSlow = errors.New("httpfetch: transfer too slow")

// ErrConnectionLost reports a body that ended early: an unexpected EOF, a
// reset, fewer bytes than Content-Length, or a 206 that covered only part of
// the rest of the file. The bytes already given to the Sink are good; resume
// from there. Update Result 4 (Connection lost during download).
var ErrConnectionLost = errors.New("httpfetch: connection lost")

// ErrRestartLoop reports a download that had to start over from byte 0 a
// second time within one [Get] (for example a server that keeps answering
// with a bad Content-Range). Update Result 4 (Connection lost during
// download).
var ErrRestartLoop = errors.New("httpfetch: download restarted twice")

// ErrTooLarge reports a file bigger than Request.MaxSize, or a body longer
// than its Content-Range declares; the Sink never receives a byte past the
// declared length. Update Result 2 (Not enough flash).
var ErrTooLarge = errors.New("httpfetch: file too large")

// A StatusError reports a final HTTP status other than 200 or 206 (after
// redirects were followed): 404, 500, 501, 505, a 3xx without Location, a
// 412 or 416 to a request without Range, and so on. Update Result 7 (Invalid
// URI); the engine may expose Code.
type StatusError struct {
	// Code is the HTTP status code, for example 404.
	Code int

	// RetryAfter is the delay the server asked for with Retry-After
	// (typically on 503 or 429), 0 when absent or unparsable. It is not
	// capped here; the caller applies its own backoff cap.
	RetryAfter time.Duration
}

// Error returns "httpfetch: server answered <code> <text>".
func (e *StatusError) Error() string {
	s := fmt.Sprintf("httpfetch: server answered %d %s", e.Code, http.StatusText(e.Code))
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %v)", e.RetryAfter)
	}
	return strings.TrimSpace(s)
}

// maxRetryAfter bounds Retry-After so that absurd values cannot overflow a
// time.Duration; the engine caps it much lower anyway.
const maxRetryAfter = 100 * 365 * 24 * time.Hour

// parseRetryAfter parses a Retry-After value (delay-seconds or an HTTP date
// relative to now). It returns 0 for an absent, malformed or past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if isDigits(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
