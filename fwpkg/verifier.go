package fwpkg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
)

// Policy says what the device accepts. The zero Policy accepts any
// well-formed package, signed or not, and no raw image.
type Policy struct {
	// TrustedKeys are the keys pinned on the device; a signature by any
	// one of them is accepted. Keys of the wrong length are ignored.
	TrustedKeys []ed25519.PublicKey

	// RequireSignature refuses unsigned packages and raw images
	// (ErrIntegrity: the check fails closed), and every package when
	// TrustedKeys is empty.
	RequireSignature bool

	// AllowRaw takes a stream that does not start with Magic as a bare
	// image, with no manifest to check it against. Only honoured when
	// RequireSignature is false; otherwise such a stream is ErrUnsupported.
	AllowRaw bool

	// CurrentVersion is the installed version, for anti-rollback. When it
	// is set, a package whose version compares lower (CompareVersions), or
	// that cannot be compared with it, is ErrUnsupported. An equal version
	// is accepted (reinstall). "" disables the check.
	CurrentVersion string

	// AllowDowngrade accepts versions lower than CurrentVersion. They must
	// still be comparable with it.
	AllowDowngrade bool

	// Hardware is the device's compatible string. When both it and the
	// manifest's hardware are set they must be equal, else ErrUnsupported.
	Hardware string

	// MaxSize is the largest image the storage takes, in bytes; a larger
	// one is ErrTooLarge. 0 means no limit beyond MaxImageSize.
	MaxSize int64

	// DeniedKeys are keys refused even when trusted (revoked keys). A
	// package they sign is ErrIntegrity.
	DeniedKeys []ed25519.PublicKey

	// AllowDevelopmentKeys trusts keys whose private halves are published
	// (see IsDevelopmentKey). Only for test builds; by default a package
	// signed with one is ErrIntegrity.
	AllowDevelopmentKeys bool
}

// Verifier checks a package while it streams, holding at most the header
// (MaxHeaderSize bytes) in memory.
//
// Feed it the package with Write, in chunks of any size, and store the
// image bytes each Write returns; call Finish when the stream ends. The
// header is checked as soon as it is complete, before any image byte is
// returned; the image is hashed as it passes and checked against the
// manifest by Finish. A Verifier is not safe for concurrent use.
//
// # Errors
//
// Every error wraps ErrIntegrity, ErrUnsupported or ErrTooLarge and is
// sticky: once Write or Finish failed, they return the same error again.
// The image bytes stored so far must then be discarded.
//
// # Raw images
//
// With Policy.AllowRaw, a stream whose first bytes are not Magic is a raw
// image: every byte is image, nothing but its length (Policy.MaxSize) can
// be checked, and Finish only refuses an empty stream (and one that is a
// proper prefix of Magic, taken as a truncated header). If a raw image
// begins with a prefix of Magic split across Writes, those first bytes are
// returned by the Write that shows the stream is raw, in a new slice.
//
// # Resuming
//
// MarshalBinary saves the state, UnmarshalBinary restores it into a new
// Verifier, and the download continues at PackageOffset.
type Verifier struct {
	policy Policy

	hdr    []byte   // header bytes so far, the whole header once done
	done   bool     // header complete and accepted; m is valid
	raw    bool     // the stream is a raw image
	signed bool     // a trusted key's signature verified
	m      Manifest // the accepted manifest
	hash   hash.Hash
	pkgOff int64    // package bytes consumed
	imgOff int64    // image bytes passed through
	err    *failure // sticky error
}

// NewVerifier returns a Verifier that checks a package against p. It keeps
// a copy of p (the key slices are shared, not copied).
func NewVerifier(p Policy) *Verifier {
	return &Verifier{policy: p, hash: sha256.New()}
}

// Write feeds the next bytes of the package. It returns the part of p that
// is image data, to be stored; header bytes are consumed and not returned.
// The returned slice is a sub-slice of p (see Raw images in the type's
// documentation for the one exception) and is nil when p holds no image
// data.
//
// Once the header is complete Write checks it (signature, hardware,
// version, size limit) and Manifest returns it. Image bytes beyond the
// manifest's size are ErrIntegrity: then Write returns no image data at
// all, not even the part of p that fitted.
func (v *Verifier) Write(p []byte) (image []byte, err error) {
	if v.err != nil {
		return nil, v.err
	}
	if len(p) == 0 {
		return nil, nil
	}
	if v.raw {
		return v.writeRaw(p, len(p))
	}
	if !v.done {
		n, raw, f := v.writeHeader(p)
		if f != nil {
			return nil, v.setErr(f)
		}
		if raw {
			// v.hdr holds the magic prefix; its last n bytes are p[:n].
			img := p
			if prev := v.hdr[:len(v.hdr)-n]; len(prev) > 0 {
				img = append(bytes.Clone(prev), p...)
			}
			v.hdr = nil
			if f := v.checkRaw(); f != nil {
				return nil, v.setErr(f)
			}
			v.raw = true
			return v.writeRaw(img, len(p))
		}
		v.pkgOff += int64(n)
		p = p[n:]
		if len(p) == 0 {
			return nil, nil
		}
	}
	if int64(len(p)) > v.m.Size-v.imgOff {
		return nil, v.setErr(fail(ErrIntegrity, "image longer than the manifest's size of %d bytes", v.m.Size))
	}
	v.hash.Write(p)
	v.imgOff += int64(len(p))
	v.pkgOff += int64(len(p))
	return p, nil
}

// writeRaw passes img through as raw image data; consumed is how many new
// package bytes it holds.
func (v *Verifier) writeRaw(img []byte, consumed int) ([]byte, error) {
	if max := v.policy.MaxSize; max > 0 && int64(len(img)) > max-v.imgOff {
		return nil, v.setErr(fail(ErrTooLarge, "raw image longer than the maximum of %d bytes", max))
	}
	v.hash.Write(img)
	v.imgOff += int64(len(img))
	v.pkgOff += int64(consumed)
	return img, nil
}

// checkRaw says whether the policy takes a stream without Magic as a raw
// image.
func (v *Verifier) checkRaw() *failure {
	if !v.policy.AllowRaw {
		return fail(ErrUnsupported, "not an avc package (no magic) and raw images are not allowed")
	}
	if v.policy.RequireSignature {
		return fail(ErrIntegrity, "raw image refused: a signed package is required")
	}
	return nil
}

// writeHeader appends header bytes from p to v.hdr until the header is
// complete (and then checks it) or p is used up. It returns how many bytes
// of p it consumed, or raw when p shows the stream does not start with
// Magic (then nothing more is consumed and v.hdr holds the bytes that did
// match).
func (v *Verifier) writeHeader(p []byte) (n int, raw bool, f *failure) {
	for {
		if len(v.hdr) < len(Magic) {
			if n == len(p) {
				return n, false, nil
			}
			if p[n] != Magic[len(v.hdr)] {
				return n, true, nil
			}
			v.hdr = append(v.hdr, p[n])
			n++
			continue
		}
		need, f := headerNeed(v.hdr)
		if f != nil {
			return n, false, f
		}
		if len(v.hdr) == need {
			return n, false, v.accept()
		}
		if n == len(p) {
			return n, false, nil
		}
		k := min(need-len(v.hdr), len(p)-n)
		v.hdr = append(v.hdr, p[n:n+k]...)
		n += k
	}
}

// headerNeed returns the length of the whole header as far as the bytes in
// h (at least the magic) tell, checking each length field as it arrives.
func headerNeed(h []byte) (int, *failure) {
	const lenAt = len(Magic)
	if len(h) < lenAt+4 {
		return lenAt + 4, nil
	}
	mlen := binary.BigEndian.Uint32(h[lenAt:])
	if mlen < 1 || mlen > MaxManifestSize {
		return 0, fail(ErrIntegrity, "manifest length %d out of range 1..%d", mlen, MaxManifestSize)
	}
	sigAt := lenAt + 4 + int(mlen) + 2
	if len(h) < sigAt {
		return sigAt, nil
	}
	slen := binary.BigEndian.Uint16(h[sigAt-2:])
	if slen != 0 && slen != SignatureSize {
		return 0, fail(ErrIntegrity, "signature length %d is neither 0 nor %d", slen, SignatureSize)
	}
	return sigAt + int(slen), nil
}

// accept checks the complete header in v.hdr against the policy and, if
// it passes, makes its manifest current.
func (v *Verifier) accept() *failure {
	const lenAt = len(Magic)
	mlen := int(binary.BigEndian.Uint32(v.hdr[lenAt:]))
	mb := v.hdr[lenAt+4 : lenAt+4+mlen]
	sig := v.hdr[lenAt+4+mlen+2:]
	signed, f := v.checkSignature(mb, sig)
	if f != nil {
		return f
	}
	m, f := parseManifest(mb)
	if f != nil {
		return f
	}
	p := &v.policy
	if p.Hardware != "" && m.Hardware != "" && p.Hardware != m.Hardware {
		return fail(ErrUnsupported, "package is for hardware %q, this device is %q", m.Hardware, p.Hardware)
	}
	if p.CurrentVersion != "" {
		c, err := CompareVersions(m.Version, p.CurrentVersion)
		if err != nil {
			return fail(ErrUnsupported, "cannot compare version with the installed %q: %v", truncate(p.CurrentVersion), err)
		}
		if c < 0 && !p.AllowDowngrade {
			return fail(ErrUnsupported, "version %q is older than the installed %q (rollback refused)", m.Version, p.CurrentVersion)
		}
	}
	if p.MaxSize > 0 && m.Size > p.MaxSize {
		return fail(ErrTooLarge, "image of %d bytes exceeds the maximum of %d bytes", m.Size, p.MaxSize)
	}
	if m.Size == 0 {
		return fail(ErrIntegrity, "empty image")
	}
	v.m, v.signed, v.done = m, signed, true
	return nil
}

// checkSignature checks sig over the manifest bytes mb against the
// policy. signed reports that a trusted key's signature verified.
func (v *Verifier) checkSignature(mb, sig []byte) (signed bool, f *failure) {
	p := &v.policy
	if len(sig) == 0 {
		if p.RequireSignature {
			return false, fail(ErrIntegrity, "unsigned package refused: a signature is required")
		}
		return false, nil
	}
	usable := 0
	for _, k := range p.TrustedKeys {
		if len(k) != ed25519.PublicKeySize {
			continue
		}
		usable++
		if !ed25519.Verify(k, mb, sig) {
			continue
		}
		if v.denied(k) {
			return false, fail(ErrIntegrity, "package signed by denied key %s", KeyID(k))
		}
		return true, nil
	}
	if usable == 0 {
		if p.RequireSignature {
			return false, fail(ErrIntegrity, "signature required but no trusted key is configured")
		}
		return false, nil // nothing to check against: taken as unsigned
	}
	return false, fail(ErrIntegrity, "signature does not verify with any trusted key")
}

// denied reports whether the policy refuses key k.
func (v *Verifier) denied(k ed25519.PublicKey) bool {
	if !v.policy.AllowDevelopmentKeys && IsDevelopmentKey(k) {
		return true
	}
	for _, d := range v.policy.DeniedKeys {
		if bytes.Equal(d, k) {
			return true
		}
	}
	return false
}

// setErr makes f the sticky error and returns it.
func (v *Verifier) setErr(f *failure) error {
	v.err = f
	return f
}

// Manifest returns the package's manifest once the header is complete and
// has passed the policy's checks. It reports false for raw images and
// before that point.
func (v *Verifier) Manifest() (Manifest, bool) {
	return v.m, v.done
}

// Raw reports whether the stream was taken as a bare image.
func (v *Verifier) Raw() bool { return v.raw }

// Signed reports whether the package's signature verified with a trusted
// key. It is false for unsigned packages accepted by the policy.
func (v *Verifier) Signed() bool { return v.signed }

// Err returns the sticky error, or nil.
func (v *Verifier) Err() error {
	if v.err == nil {
		return nil
	}
	return v.err
}

// PackageOffset returns how many package bytes were consumed so far, the
// offset at which a resumed download continues.
func (v *Verifier) PackageOffset() int64 { return v.pkgOff }

// ImageOffset returns how many image bytes Write passed through so far.
func (v *Verifier) ImageOffset() int64 { return v.imgOff }

// ImageSHA256 returns the SHA-256 of the image bytes passed through so
// far, for raw images too.
func (v *Verifier) ImageSHA256() [32]byte {
	var sum [32]byte
	v.hash.Sum(sum[:0])
	return sum
}

// Finish says whether the whole package arrived intact. For a package the
// image length must equal the manifest's size and its SHA-256 must match
// (ErrIntegrity otherwise); a stream that ended inside the header, or an
// empty stream, is ErrIntegrity too. A raw image succeeds when the policy
// accepted it. Like Write's, Finish's error is sticky.
func (v *Verifier) Finish() error {
	if v.err != nil {
		return v.err
	}
	switch {
	case v.raw:
		return nil
	case v.pkgOff == 0:
		return v.setErr(fail(ErrIntegrity, "empty stream"))
	case !v.done:
		return v.setErr(fail(ErrIntegrity, "stream ends inside the package header after %d bytes", v.pkgOff))
	case v.imgOff != v.m.Size:
		return v.setErr(fail(ErrIntegrity, "image truncated: %d of %d bytes", v.imgOff, v.m.Size))
	}
	sum := v.ImageSHA256()
	if got := hex.EncodeToString(sum[:]); got != v.m.SHA256 {
		return v.setErr(fail(ErrIntegrity, "image SHA-256 %s does not match the manifest's %s", got, v.m.SHA256))
	}
	return nil
}
