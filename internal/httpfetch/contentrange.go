package httpfetch

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// errBadContentRange is the reason a 206 is abandoned when its
// Content-Range cannot be parsed.
var errBadContentRange = errors.New("malformed Content-Range")

// contentRange is a parsed byte-range-resp: bytes first-last/complete.
type contentRange struct {
	first, last int64 // inclusive; 0 ≤ first ≤ last
	total       int64 // complete length; -1 for "*"; last < total otherwise
}

// len returns the number of bytes the range covers.
func (c contentRange) len() int64 { return c.last - c.first + 1 }

// parseContentRange parses the Content-Range field value of a 206 response
// strictly (RFC 9110 §14.4):
//
//	Content-Range = range-unit SP first-pos "-" last-pos "/" ( complete-length / "*" )
//
// range-unit must be "bytes" (any case); every number is 1*DIGIT and fits in
// an int64; first-pos ≤ last-pos < complete-length, and the length
// last-pos - first-pos + 1 fits in an int64. The unsatisfied-range
// form ("bytes */N"), spaces anywhere else, signs and trailing bytes are
// rejected.
func parseContentRange(v string) (contentRange, error) {
	unit, rest, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return contentRange{}, errBadContentRange
	}
	span, complete, ok := strings.Cut(rest, "/")
	if !ok {
		return contentRange{}, errBadContentRange
	}
	firstS, lastS, ok := strings.Cut(span, "-")
	if !ok {
		return contentRange{}, errBadContentRange
	}
	first, ok1 := parseDigits(firstS)
	last, ok2 := parseDigits(lastS)
	// last == MaxInt64 would make the length overflow.
	if !ok1 || !ok2 || last < first || last == math.MaxInt64 {
		return contentRange{}, errBadContentRange
	}
	c := contentRange{first: first, last: last, total: -1}
	if complete != "*" {
		total, ok := parseDigits(complete)
		if !ok || last >= total {
			return contentRange{}, errBadContentRange
		}
		c.total = total
	}
	return c, nil
}

// parseDigits parses 1*DIGIT into a non-negative int64.
func parseDigits(s string) (int64, bool) {
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// validatorOf returns the validator to resume h's representation with: the
// ETag when it is strong, else Last-Modified, else "". Weak ETags are
// useless for If-Range (RFC 9110 §13.1.5).
func validatorOf(h http.Header) string {
	if et := strings.TrimSpace(h.Get("Etag")); isStrongETag(et) {
		return et
	}
	if lm := strings.TrimSpace(h.Get("Last-Modified")); lm != "" {
		if _, err := http.ParseTime(lm); err == nil {
			return lm
		}
	}
	return ""
}

// isStrongETag reports whether v is a strong entity-tag: DQUOTE *etagc DQUOTE.
func isStrongETag(v string) bool {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return false
	}
	for i := 1; i < len(v)-1; i++ {
		if c := v[i]; c == '"' || c < 0x21 || c == 0x7f {
			return false
		}
	}
	return true
}

// usableValidator reports whether v can guard a resume in If-Range: a strong
// ETag or an HTTP date.
func usableValidator(v string) bool {
	if isStrongETag(v) {
		return true
	}
	_, err := http.ParseTime(v)
	return err == nil
}

// sameRepresentation reports whether the validators a 206 carries (h) agree
// with the validator the request was guarded by. A server that ignored
// If-Range would otherwise make us splice two files. Absent fields agree.
func sameRepresentation(h http.Header, validator string) bool {
	if isStrongETag(validator) {
		et := strings.TrimSpace(h.Get("Etag"))
		return et == "" || et == validator
	}
	lm := strings.TrimSpace(h.Get("Last-Modified"))
	if lm == "" {
		return true
	}
	t1, err1 := http.ParseTime(lm)
	t2, err2 := http.ParseTime(validator)
	return err1 == nil && err2 == nil && t1.Equal(t2)
}
