package httpfetch

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// MaxURILength is the longest Package URI accepted, in bytes.
const MaxURILength = 2048

// MaxHostLength is the longest host name accepted, in bytes (RFC 1035 allows
// 253 for a DNS name; the bracketed IPv6 form is shorter still).
const MaxHostLength = 255

// SchemeSupported reports whether Get can fetch a URI with this scheme:
// "http" or "https", compared case-insensitively.
func SchemeSupported(scheme string) bool {
	return strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")
}

// ValidateURL checks raw the way [Get] does before any I/O. It returns nil,
// an error wrapping [ErrUnsupportedScheme] (Update Result 9) when the scheme
// is well formed but not http or https, or an error wrapping [ErrInvalidURI]
// (Update Result 7) for anything else that is wrong. The engine can call it
// when the Package URI is written. The empty string is invalid here: an
// empty Package URI means "cancel" (Result 0) and never reaches Get.
func ValidateURL(raw string) error {
	_, err := parseURL(raw)
	return err
}

// parseURL validates raw and returns it parsed.
func parseURL(raw string) (*url.URL, error) {
	if len(raw) > MaxURILength {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidURI, len(raw), MaxURILength)
	}
	scheme, ok := uriScheme(raw)
	if !ok {
		return nil, fmt.Errorf("%w: missing or malformed scheme", ErrInvalidURI)
	}
	if !SchemeSupported(scheme) {
		return nil, fmt.Errorf("%w %q", ErrUnsupportedScheme, strings.ToLower(scheme))
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Unwrap *url.Error: its message repeats the whole URI, which may
		// carry a signed query string.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidURI, err)
	}
	if err := checkParsed(u); err != nil {
		return nil, err
	}
	return u, nil
}

// uriScheme returns the scheme of raw if raw starts with a well-formed one:
// ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" (RFC 3986 §3.1).
func uriScheme(raw string) (string, bool) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9', c == '+', c == '-', c == '.':
			if i == 0 {
				return "", false
			}
		case c == ':':
			return raw[:i], i > 0
		default:
			return "", false
		}
	}
	return "", false
}

// checkParsed applies the rules url.Parse leaves out to an http or https
// URL: an authority with a valid host, no userinfo, a port in range.
func checkParsed(u *url.URL) error {
	if !SchemeSupported(u.Scheme) {
		return fmt.Errorf("%w %q", ErrUnsupportedScheme, u.Scheme)
	}
	if u.Opaque != "" {
		return fmt.Errorf("%w: no authority after %q", ErrInvalidURI, u.Scheme+":")
	}
	if u.User != nil {
		return fmt.Errorf("%w: userinfo is not allowed", ErrInvalidURI)
	}
	if port := u.Port(); port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("%w: port %.10q out of range", ErrInvalidURI, port)
		}
	}
	host := u.Hostname()
	switch {
	case host == "":
		return fmt.Errorf("%w: empty host", ErrInvalidURI)
	case len(host) > MaxHostLength:
		return fmt.Errorf("%w: host of %d bytes, more than %d", ErrInvalidURI, len(host), MaxHostLength)
	case strings.HasPrefix(u.Host, "["):
		// url.Parse accepts "[" anything "]"; only IPv6 belongs there.
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return fmt.Errorf("%w: bad IPv6 literal", ErrInvalidURI)
		}
	default:
		if err := checkHostName(host); err != nil {
			return err
		}
	}
	return nil
}

// checkHostName accepts a DNS name or a dotted IPv4 address: labels of 1–63
// bytes of letters, digits, '-' and '_', separated by dots, with an optional
// final dot. A name whose last label is numeric must be an IPv4 address.
func checkHostName(host string) error {
	name := strings.TrimSuffix(host, ".")
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("%w: bad host name label", ErrInvalidURI)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%w: bad character %q in host", ErrInvalidURI, c)
			}
		}
	}
	if isDigits(labels[len(labels)-1]) {
		if a, err := netip.ParseAddr(name); err != nil || !a.Is4() {
			return fmt.Errorf("%w: bad IPv4 address", ErrInvalidURI)
		}
	}
	return nil
}

// redactURL returns u without userinfo, query and fragment, for error
// messages: a pre-signed query string is a credential.
func redactURL(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	s := r.String()
	if u.RawQuery != "" {
		s += "?…"
	}
	return s
}
