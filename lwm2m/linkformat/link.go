package linkformat

import (
	"errors"
	"fmt"
	"strings"
)

// MaxSize is the largest input, in bytes, that [Parse] accepts.
const MaxSize = 64 << 10

// MaxLinks is the largest number of links that [Parse] accepts.
const MaxLinks = 4096

// ErrFormat reports malformed link-format input; every error [Parse]
// returns wraps it.
var ErrFormat = errors.New("linkformat: malformed")

// ErrTooLarge reports input over [MaxSize] bytes or [MaxLinks] links; it
// wraps [ErrFormat].
var ErrTooLarge = fmt.Errorf("%w: too large", ErrFormat)

// Param is one link parameter (RFC 6690 link-param). A parameter without a
// value, such as ";obs", has an empty Value and Quoted false; ";a=\"\"" has
// an empty Value and Quoted true.
type Param struct {
	Name   string // parameter name, as written
	Value  string // value, unquoted and unescaped
	Quoted bool   // the value was, or is to be, written as a quoted string
}

// Link is one link-value: a target URI reference and its parameters in
// order.
type Link struct {
	Target string // the URI reference between "<" and ">", as written
	Params []Param
}

// Param returns the value of the first parameter called name, compared
// case-insensitively (RFC 8288 §3: parameter names are case-insensitive),
// and whether there is one.
func (l Link) Param(name string) (string, bool) {
	for _, p := range l.Params {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return "", false
}

// isTokenChar reports whether c may appear in a parameter name: an RFC 7230
// tchar, which covers RFC 6690's parmname and RFC 5987's ext-name "*".
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isPtokenChar reports whether c may appear in an unquoted parameter value
// (RFC 6690 ptokenchar).
func isPtokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'()*+-./:<=>?@[]^_`{|}~", c) >= 0
}

// isTargetByte reports whether c may appear in a link target as written:
// anything but controls, space, '"', '<' and '>'.
func isTargetByte(c byte) bool {
	return c > ' ' && c != 0x7F && c != '"' && c != '<' && c != '>'
}

// isSpace reports whether c is white space tolerated around separators.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// parser walks the input; every method consumes at least one byte or fails.
type parser struct {
	b   []byte
	pos int
}

func (p *parser) skipSpace() {
	for p.pos < len(p.b) && isSpace(p.b[p.pos]) {
		p.pos++
	}
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: %s", ErrFormat, p.pos, fmt.Sprintf(format, args...))
}

// Parse parses a link-format document into its links.
//
// # Notes
//
//   - Empty input (or only white space) gives no links.
//   - Rejected with an error wrapping [ErrFormat]: a missing or unterminated
//     "<", an empty target or one holding controls, space, '"' or '<',
//     unterminated quoted strings, parameters without a name, "=" without a
//     value, unquoted values with characters outside RFC 6690 ptokenchar,
//     empty links (",,") and anything else outside the grammar; input over
//     [MaxSize] bytes or with more than [MaxLinks] links ([ErrTooLarge]).
//
// See RFC 6690 §2.
func Parse(b []byte) ([]Link, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxSize)
	}
	p := parser{b: b}
	p.skipSpace()
	var links []Link
	for p.pos < len(p.b) {
		if len(links) == MaxLinks {
			return nil, fmt.Errorf("%w: more than %d links", ErrTooLarge, MaxLinks)
		}
		l, err := p.link()
		if err != nil {
			return nil, err
		}
		links = append(links, l)
		p.skipSpace()
		if p.pos == len(p.b) {
			break
		}
		if p.b[p.pos] != ',' {
			return nil, p.errorf("expected ',' after link, got %q", p.b[p.pos])
		}
		p.pos++
		p.skipSpace()
		if p.pos == len(p.b) {
			return nil, p.errorf("trailing ','")
		}
	}
	return links, nil
}

// link parses "<target>" and its parameters.
func (p *parser) link() (Link, error) {
	var l Link
	if p.b[p.pos] != '<' {
		return l, p.errorf("expected '<', got %q", p.b[p.pos])
	}
	p.pos++
	start := p.pos
	for p.pos < len(p.b) && p.b[p.pos] != '>' {
		if !isTargetByte(p.b[p.pos]) {
			return l, p.errorf("byte %q in link target", p.b[p.pos])
		}
		p.pos++
	}
	if p.pos == len(p.b) {
		return l, p.errorf("unterminated '<'")
	}
	if p.pos == start {
		return l, p.errorf("empty link target")
	}
	l.Target = string(p.b[start:p.pos])
	p.pos++ // '>'
	for {
		p.skipSpace()
		if p.pos == len(p.b) || p.b[p.pos] != ';' {
			return l, nil
		}
		p.pos++ // ';'
		p.skipSpace()
		prm, err := p.param()
		if err != nil {
			return l, err
		}
		l.Params = append(l.Params, prm)
	}
}

// param parses "name", "name=token" or "name=\"quoted\"".
func (p *parser) param() (Param, error) {
	var prm Param
	start := p.pos
	for p.pos < len(p.b) && isTokenChar(p.b[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		if p.pos == len(p.b) {
			return prm, p.errorf("missing parameter name at end of input")
		}
		return prm, p.errorf("expected a parameter name, got %q", p.b[p.pos])
	}
	prm.Name = string(p.b[start:p.pos])
	p.skipSpace()
	if p.pos == len(p.b) || p.b[p.pos] != '=' {
		return prm, nil // no value, e.g. ";obs"
	}
	p.pos++ // '='
	p.skipSpace()
	if p.pos == len(p.b) {
		return prm, p.errorf("missing value of parameter %q", prm.Name)
	}
	if p.b[p.pos] == '"' {
		v, err := p.quoted()
		prm.Value, prm.Quoted = v, true
		return prm, err
	}
	start = p.pos
	for p.pos < len(p.b) && isPtokenChar(p.b[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return prm, p.errorf("byte %q in value of parameter %q", p.b[p.pos], prm.Name)
	}
	prm.Value = string(p.b[start:p.pos])
	return prm, nil
}

// quoted parses a quoted-string (RFC 2616 §2.2), with "\" escaping the
// next byte, and returns its content.
func (p *parser) quoted() (string, error) {
	open := p.pos
	p.pos++ // '"'
	var sb strings.Builder
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		p.pos++
		switch c {
		case '"':
			return sb.String(), nil
		case '\\':
			if p.pos == len(p.b) {
				p.pos = open
				return "", p.errorf("unterminated quoted string")
			}
			c = p.b[p.pos]
			p.pos++
		}
		sb.WriteByte(c)
	}
	p.pos = open
	return "", p.errorf("unterminated quoted string")
}

// Format writes links in link format, the inverse of [Parse].
//
// # Notes
//
//   - A value is quoted when Quoted is set or when it holds a byte outside
//     RFC 6690 ptokenchar (for example ',', ';', '"' or a space); inside
//     quotes '"' and '\' are escaped with '\'. An empty Value without
//     Quoted gives a parameter without a value (";obs").
//   - Bytes of a target that cannot appear between "<" and ">" (controls,
//     space, '"', '<', '>') are percent-encoded.
//   - Parameter names are written as given and must be tokens for the
//     output to parse again.
//
// See RFC 6690 §2.
func Format(links []Link) []byte {
	var b []byte
	for i, l := range links {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '<')
		for j := 0; j < len(l.Target); j++ {
			c := l.Target[j]
			if isTargetByte(c) {
				b = append(b, c)
			} else {
				b = append(b, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&0xF])
			}
		}
		b = append(b, '>')
		for _, prm := range l.Params {
			b = append(b, ';')
			b = append(b, prm.Name...)
			if prm.Value == "" && !prm.Quoted {
				continue
			}
			b = append(b, '=')
			if !prm.Quoted && isPtoken(prm.Value) {
				b = append(b, prm.Value...)
				continue
			}
			b = append(b, '"')
			for j := 0; j < len(prm.Value); j++ {
				c := prm.Value[j]
				if c == '"' || c == '\\' {
					b = append(b, '\\')
				}
				b = append(b, c)
			}
			b = append(b, '"')
		}
	}
	return b
}

// isPtoken reports whether s is a non-empty run of ptokenchar.
func isPtoken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isPtokenChar(s[i]) {
			return false
		}
	}
	return s != ""
}
