package fwpkg

import (
	"errors"
	"fmt"
)

// Errors returned by the Verifier, VerifyFile and Build. Each failure wraps
// exactly one of them; test with errors.Is. The comment names the LwM2M
// Object 5 Update Result (resource 5) a device reports for it.
var (
	// ErrIntegrity means the package is malformed, its signature is bad,
	// missing while required, or made by an untrusted or development key,
	// or the image differs from the manifest (length or hash). Update
	// Result 5, "Integrity check failure".
	ErrIntegrity = errors.New("fwpkg: integrity check failure")

	// ErrUnsupported means the package is well formed but not for this
	// device: not a package at all when raw images are not allowed, other
	// hardware, an older version, or a version that cannot be compared.
	// Update Result 6, "Unsupported package type".
	ErrUnsupported = errors.New("fwpkg: unsupported package")

	// ErrTooLarge means the image does not fit: larger than Policy.MaxSize
	// or than the format's limit of 1<<40 bytes. Update Result 2, "Not
	// enough flash memory".
	ErrTooLarge = errors.New("fwpkg: image too large")

	// ErrBadState means a saved Verifier state (see
	// Verifier.UnmarshalBinary) is corrupt, truncated or from another
	// format version. The download has to start again from the beginning.
	ErrBadState = errors.New("fwpkg: bad saved verifier state")
)

// errKind numbers the sentinel errors in the saved state.
type errKind uint8

const (
	kindNone errKind = iota
	kindIntegrity
	kindUnsupported
	kindTooLarge
)

// sentinel returns the error of kind k.
func (k errKind) sentinel() error {
	switch k {
	case kindIntegrity:
		return ErrIntegrity
	case kindUnsupported:
		return ErrUnsupported
	case kindTooLarge:
		return ErrTooLarge
	}
	return nil
}

// kindOf returns the kind of a sentinel error.
func kindOf(sentinel error) errKind {
	switch sentinel {
	case ErrIntegrity:
		return kindIntegrity
	case ErrUnsupported:
		return kindUnsupported
	case ErrTooLarge:
		return kindTooLarge
	}
	return kindNone
}

// failure is a check failure: one sentinel and its detail. It is what the
// Verifier keeps as its sticky error and saves in its state.
type failure struct {
	kind   errKind
	detail string
}

// Error returns the sentinel's text followed by the detail.
func (f *failure) Error() string { return f.kind.sentinel().Error() + ": " + f.detail }

// Unwrap returns the sentinel.
func (f *failure) Unwrap() error { return f.kind.sentinel() }

// fail returns a failure wrapping sentinel with a formatted detail.
func fail(sentinel error, format string, args ...any) *failure {
	return &failure{kind: kindOf(sentinel), detail: fmt.Sprintf(format, args...)}
}
