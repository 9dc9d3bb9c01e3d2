package fwpkg

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits and constants of the package format; see the package
// documentation for the layout.
const (
	// Magic opens every package.
	Magic = "AVCPKG1\n"
	// MaxManifestSize is the largest manifest, in bytes.
	MaxManifestSize = 4096
	// MaxImageSize is the largest image a manifest may declare.
	MaxImageSize = 1 << 40
	// MaxStringLen is the longest manifest string (name, version,
	// hardware, key_id), in bytes.
	MaxStringLen = 255
	// SignatureSize is the length of a package signature (Ed25519).
	SignatureSize = 64
	// MaxHeaderSize is the longest package header: magic, manifest length,
	// manifest, signature length and signature.
	MaxHeaderSize = len(Magic) + 4 + MaxManifestSize + 2 + SignatureSize
)

// Manifest describes the image of a package.
//
// In a package it is the signed JSON object between the header's length
// fields; see the package documentation for the rules each field follows.
type Manifest struct {
	// Name names the firmware, for people; optional.
	Name string `json:"name,omitempty"`
	// Version is the firmware version, compared by CompareVersions for
	// anti-rollback; required.
	Version string `json:"version"`
	// Size is the image length in bytes.
	Size int64 `json:"size"`
	// SHA256 is the image's SHA-256 digest as 64 lowercase hex digits.
	SHA256 string `json:"sha256"`
	// Hardware is the compatible string of the hardware the image is for;
	// empty means any.
	Hardware string `json:"hardware,omitempty"`
	// KeyID is an optional hint naming the signing key (Build sets it to
	// KeyID of the key). It is never used to decide trust.
	KeyID string `json:"key_id,omitempty"`
}

// manifest member names, in the order Build writes them.
const (
	fieldName     = "name"
	fieldVersion  = "version"
	fieldSize     = "size"
	fieldSHA256   = "sha256"
	fieldHardware = "hardware"
	fieldKeyID    = "key_id"
)

// parseManifest decodes and validates the manifest bytes b strictly: one
// JSON object with known members only, each at most once and of the right
// type, no NUL or control characters, nothing after the object. A size
// above MaxImageSize is ErrTooLarge (reported only if the rest is valid);
// every other fault is ErrIntegrity.
func parseManifest(b []byte) (Manifest, *failure) {
	var m Manifest
	if len(b) == 0 || len(b) > MaxManifestSize {
		return m, fail(ErrIntegrity, "manifest length %d out of range 1..%d", len(b), MaxManifestSize)
	}
	if !utf8.Valid(b) {
		return m, fail(ErrIntegrity, "manifest is not valid UTF-8")
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return m, fail(ErrIntegrity, "manifest contains a NUL byte")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	bad := func(err error) (Manifest, *failure) {
		return Manifest{}, fail(ErrIntegrity, "bad manifest: %v", err)
	}
	tok, err := dec.Token()
	if err != nil {
		return bad(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return bad(errors.New("not a JSON object"))
	}
	seen := map[string]bool{}
	tooLarge := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad(err)
		}
		key, ok := tok.(string)
		if !ok {
			return bad(errors.New("member name is not a string"))
		}
		if seen[key] {
			return bad(errors.New("duplicate member " + strconv.Quote(key)))
		}
		seen[key] = true
		tok, err = dec.Token()
		if err != nil {
			return bad(err)
		}
		if key == fieldSize {
			n, ok := tok.(json.Number)
			if !ok {
				return bad(errors.New(`member "size" is not a number`))
			}
			size, big, err := parseSize(string(n))
			if err != nil {
				return bad(err)
			}
			m.Size, tooLarge = size, big
			continue
		}
		s, ok := tok.(string)
		if !ok {
			return bad(errors.New("member " + strconv.Quote(key) + " is not a string"))
		}
		switch key {
		case fieldName:
			m.Name = s
		case fieldVersion:
			m.Version = s
		case fieldSHA256:
			m.SHA256 = s
		case fieldHardware:
			m.Hardware = s
		case fieldKeyID:
			m.KeyID = s
		default:
			return bad(errors.New("unknown member " + strconv.Quote(key)))
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return bad(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad(errors.New("data after the manifest object"))
	}
	for _, f := range []string{fieldVersion, fieldSize, fieldSHA256} {
		if !seen[f] {
			return bad(errors.New("member " + strconv.Quote(f) + " missing"))
		}
	}
	if tooLarge {
		return Manifest{}, fail(ErrTooLarge, "manifest size exceeds the format limit of %d bytes", int64(MaxImageSize))
	}
	if err := m.check(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// parseSize parses the JSON number s as an image size: a non-negative
// integer. big reports a value above MaxImageSize (then size is 0).
func parseSize(s string) (size int64, big bool, err error) {
	if strings.HasPrefix(s, "-") {
		return 0, false, errors.New(`member "size" is negative`)
	}
	if strings.ContainsAny(s, ".eE") {
		return 0, false, errors.New(`member "size" is not an integer`)
	}
	if len(s) > len(strconv.Itoa(MaxImageSize)) {
		return 0, true, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, errors.New(`member "size" is not an integer`)
	}
	if n > MaxImageSize {
		return 0, true, nil
	}
	return n, false, nil
}

// check validates the fields of m, as parseManifest and Build require
// them. Failures are ErrIntegrity, except a size above MaxImageSize, which
// is ErrTooLarge.
func (m *Manifest) check() *failure {
	if m.Version == "" {
		return fail(ErrIntegrity, "manifest has no version")
	}
	for _, f := range []struct{ name, v string }{
		{fieldName, m.Name}, {fieldVersion, m.Version}, {fieldHardware, m.Hardware}, {fieldKeyID, m.KeyID},
	} {
		if err := checkString(f.v); err != nil {
			return fail(ErrIntegrity, "manifest %s: %v", f.name, err)
		}
	}
	if m.Size < 0 {
		return fail(ErrIntegrity, "manifest size %d is negative", m.Size)
	}
	if m.Size > MaxImageSize {
		return fail(ErrTooLarge, "manifest size %d exceeds the format limit of %d bytes", m.Size, int64(MaxImageSize))
	}
	if !isSHA256Hex(m.SHA256) {
		return fail(ErrIntegrity, "manifest sha256 %q is not 64 lowercase hex digits", truncate(m.SHA256))
	}
	return nil
}

// checkString validates one manifest string: at most MaxStringLen bytes
// of UTF-8 without control characters.
func checkString(s string) error {
	if len(s) > MaxStringLen {
		return errors.New("longer than " + strconv.Itoa(MaxStringLen) + " bytes")
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return errors.New("contains control character " + strconv.QuoteRune(rune(c)))
		}
	}
	return nil
}

// isSHA256Hex reports whether s is 64 lowercase hex digits.
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
