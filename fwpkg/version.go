package fwpkg

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
)

// maxVersionDigits bounds one numeric component of a version.
const maxVersionDigits = 20

// CompareVersions compares two firmware versions and returns -1 if a is
// older than b, 0 if they are the same release, +1 if a is newer.
//
// A version is dotted decimal numbers with an optional leading "v" and an
// optional pre-release suffix after "-":
//
//	1   1.2   v1.2.10   1.2.10-rc1   2.0.0-beta.2
//
// Numbers compare by value ("1.2.10" > "1.2.9"; "01" = "1"), missing
// trailing components count as 0 ("1.2" = "1.2.0"). A version with a
// pre-release suffix sorts before the same version without one
// ("1.2-rc1" < "1.2"); suffixes compare identifier by identifier as in
// Semantic Versioning 2.0.0 §11 (numeric identifiers by value and before
// alphanumeric ones, alphanumeric ones in ASCII order).
//
// The parse is bounded: a version is at most 255 bytes, a number at most 20
// digits, and numbers are compared as digit strings, so no value
// overflows. Anything else (empty, "1..2", "1.", "v", "1.x", "1+build",
// a component of 21 digits) is an error.
func CompareVersions(a, b string) (int, error) {
	va, err := parseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := parseVersion(b)
	if err != nil {
		return 0, err
	}
	return va.compare(vb), nil
}

// version is a parsed version: numbers without leading zeros and the
// pre-release identifiers (nil for a release).
type version struct {
	nums []string
	pre  []string
}

// parseVersion parses s per CompareVersions.
func parseVersion(s string) (version, error) {
	bad := func(why string) (version, error) {
		return version{}, fmt.Errorf("fwpkg: version %q: %s", truncate(s), why)
	}
	if s == "" {
		return bad("empty")
	}
	if len(s) > MaxStringLen {
		return bad(fmt.Sprintf("longer than %d bytes", MaxStringLen))
	}
	rest := strings.TrimPrefix(s, "v")
	core, pre, hasPre := strings.Cut(rest, "-")
	var v version
	for num := range strings.SplitSeq(core, ".") {
		if num == "" {
			return bad("empty number")
		}
		if len(num) > maxVersionDigits {
			return bad(fmt.Sprintf("number longer than %d digits", maxVersionDigits))
		}
		if !allDigits(num) {
			return bad("not a dotted decimal number")
		}
		v.nums = append(v.nums, trimZeros(num))
	}
	if hasPre {
		for id := range strings.SplitSeq(pre, ".") {
			if err := checkPreID(id); err != nil {
				return bad(err.Error())
			}
			if allDigits(id) {
				id = trimZeros(id)
			}
			v.pre = append(v.pre, id)
		}
	}
	return v, nil
}

// checkPreID validates one pre-release identifier: [0-9A-Za-z-]+.
func checkPreID(id string) error {
	if id == "" {
		return errors.New("empty pre-release identifier")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-') {
			return errors.New("bad character in pre-release")
		}
	}
	return nil
}

// compare orders v against w.
func (v version) compare(w version) int {
	for i := 0; i < max(len(v.nums), len(w.nums)); i++ {
		a, b := "0", "0"
		if i < len(v.nums) {
			a = v.nums[i]
		}
		if i < len(w.nums) {
			b = w.nums[i]
		}
		if c := compareDigits(a, b); c != 0 {
			return c
		}
	}
	switch {
	case v.pre == nil && w.pre == nil:
		return 0
	case v.pre == nil:
		return +1
	case w.pre == nil:
		return -1
	}
	for i := 0; i < min(len(v.pre), len(w.pre)); i++ {
		if c := comparePreID(v.pre[i], w.pre[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(v.pre), len(w.pre))
}

// comparePreID orders two pre-release identifiers.
func comparePreID(a, b string) int {
	da, db := allDigits(a), allDigits(b)
	switch {
	case da && db:
		return compareDigits(a, b)
	case da:
		return -1
	case db:
		return +1
	}
	return strings.Compare(a, b)
}

// compareDigits orders two digit strings without leading zeros by value.
func compareDigits(a, b string) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// allDigits reports whether s is non-empty and only ASCII digits.
func allDigits(s string) bool {
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

// trimZeros removes leading zeros from a digit string, keeping one digit.
func trimZeros(s string) string {
	t := strings.TrimLeft(s, "0")
	if t == "" {
		return "0"
	}
	return t
}
