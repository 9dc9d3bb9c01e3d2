package fwpkg

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Saved state layout (all integers big-endian):
//
//	offset  size  field
//	0       4     stateMagic "AVCV"
//	4       1     stateVersion
//	5       1     flags: bit 0 raw, bit 1 header accepted, bit 2 signed
//	6       1     error kind (0 none, 1 integrity, 2 unsupported, 3 too large)
//	7       8     package offset
//	15      8     image offset
//	23      2     E, error detail length, then E bytes
//	        2     H, header length (≤ MaxHeaderSize), then H header bytes
//	        2     S, SHA-256 state length, then S bytes (crypto/sha256's
//	              MarshalBinary)
//	        4     CRC-32 (IEEE) of everything before it
const (
	stateMagic   = "AVCV"
	stateVersion = 1

	flagRaw    = 1 << 0
	flagDone   = 1 << 1
	flagSigned = 1 << 2

	maxDetail    = 1024
	maxHashState = 512
	stateFixed   = len(stateMagic) + 1 + 1 + 1 + 8 + 8 // up to the first length field
	sha256State  = 108                                 // the length of crypto/sha256's saved state
)

// MarshalBinary saves the verifier's whole state (header bytes so far,
// offsets, SHA-256 state, sticky error), at most a few KiB, so that a
// download can resume after a reboot. The Policy is not saved.
func (v *Verifier) MarshalBinary() ([]byte, error) {
	return v.AppendBinary(make([]byte, 0, stateFixed+2+2+len(v.hdr)+2+sha256State+4))
}

// AppendBinary appends the state MarshalBinary returns to b
// (encoding.BinaryAppender): a caller that saves the state often can
// reuse one buffer.
func (v *Verifier) AppendBinary(b []byte) ([]byte, error) {
	var flags byte
	if v.raw {
		flags |= flagRaw
	}
	if v.done {
		flags |= flagDone
	}
	if v.signed {
		flags |= flagSigned
	}
	var kind errKind
	var detail string
	if v.err != nil {
		kind, detail = v.err.kind, v.err.detail
		if len(detail) > maxDetail {
			detail = detail[:maxDetail]
		}
	}
	start := len(b)
	b = append(b, stateMagic...)
	b = append(b, stateVersion, flags, byte(kind))
	b = binary.BigEndian.AppendUint64(b, uint64(v.pkgOff))
	b = binary.BigEndian.AppendUint64(b, uint64(v.imgOff))
	b = binary.BigEndian.AppendUint16(b, uint16(len(detail)))
	b = append(b, detail...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v.hdr)))
	b = append(b, v.hdr...)
	// The hash state's length goes before it: appended, then filled in.
	at := len(b)
	b = append(b, 0, 0)
	b, err := v.hash.(encoding.BinaryAppender).AppendBinary(b)
	if err != nil {
		return nil, fmt.Errorf("fwpkg: save verifier: %w", err)
	}
	binary.BigEndian.PutUint16(b[at:], uint16(len(b)-at-2))
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:])), nil
}

// savedState is a decoded, not yet validated, saved state.
type savedState struct {
	flags          byte
	kind           errKind
	pkgOff, imgOff int64
	detail         string
	hdr, hash      []byte
}

// decodeState checks the framing and checksum of a saved state.
func decodeState(b []byte) (*savedState, error) {
	if len(b) < stateFixed+3*2+4 {
		return nil, errors.New("too short")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errors.New("checksum mismatch")
	}
	if string(body[:4]) != stateMagic {
		return nil, errors.New("not a verifier state")
	}
	if body[4] != stateVersion {
		return nil, fmt.Errorf("format version %d, want %d", body[4], stateVersion)
	}
	s := &savedState{
		flags:  body[5],
		kind:   errKind(body[6]),
		pkgOff: int64(binary.BigEndian.Uint64(body[7:])),
		imgOff: int64(binary.BigEndian.Uint64(body[15:])),
	}
	if s.flags&^(flagRaw|flagDone|flagSigned) != 0 || s.flags&(flagRaw|flagDone) == flagRaw|flagDone ||
		s.flags&(flagDone|flagSigned) == flagSigned {
		return nil, fmt.Errorf("bad flags %#x", s.flags)
	}
	if s.kind > kindTooLarge {
		return nil, fmt.Errorf("bad error kind %d", s.kind)
	}
	if s.pkgOff < 0 || s.imgOff < 0 || s.imgOff > s.pkgOff {
		return nil, fmt.Errorf("bad offsets %d, %d", s.pkgOff, s.imgOff)
	}
	rest := body[stateFixed:]
	var fields [3][]byte
	for i, limit := range []int{maxDetail, MaxHeaderSize, maxHashState} {
		if len(rest) < 2 {
			return nil, errors.New("truncated")
		}
		n := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if n > limit || n > len(rest) {
			return nil, fmt.Errorf("field %d of %d bytes too long", i, n)
		}
		fields[i], rest = rest[:n], rest[n:]
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing bytes")
	}
	s.detail, s.hdr, s.hash = string(fields[0]), fields[1], fields[2]
	if s.kind == kindNone && len(s.detail) != 0 {
		return nil, errors.New("error detail without an error")
	}
	return s, nil
}

// UnmarshalBinary restores a state saved by MarshalBinary into v, which
// must have been made by NewVerifier with the policy that should apply
// now, and checks the restored header against that policy again.
//
// A corrupt, truncated or foreign state is an error wrapping ErrBadState
// and leaves v unchanged. A state the policy now refuses (say, the
// installed version moved past the package's) is restored with that
// refusal as its sticky error, which UnmarshalBinary also returns; it wraps
// ErrIntegrity, ErrUnsupported or ErrTooLarge like Write's errors. A saved
// sticky error is restored as such (UnmarshalBinary returns nil; Write and
// Finish return it), without its manifest.
func (v *Verifier) UnmarshalBinary(b []byte) error {
	s, err := decodeState(b)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadState, err)
	}
	bad := func(why string) error { return fmt.Errorf("%w: %s", ErrBadState, why) }
	w := NewVerifier(v.policy)
	if err := w.hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(s.hash); err != nil {
		return bad("hash state: " + err.Error())
	}
	if n, ok := hashedLen(s.hash); ok && n != uint64(s.imgOff) {
		return bad("hash state does not match the image offset")
	}
	w.pkgOff, w.imgOff = s.pkgOff, s.imgOff
	if s.kind != kindNone {
		// Restore as saved, without policy checks: the download failed.
		w.raw = s.flags&flagRaw != 0
		w.signed = s.flags&flagSigned != 0
		w.hdr = bytes.Clone(s.hdr)
		if s.flags&flagDone != 0 {
			m, ok := headerManifest(s.hdr)
			if !ok {
				return bad("header bytes are not a package header")
			}
			w.m, w.done = m, true
		}
		w.err = &failure{kind: s.kind, detail: s.detail}
		*v = *w
		return nil
	}
	if s.flags&flagRaw != 0 {
		if len(s.hdr) != 0 || s.pkgOff != s.imgOff || s.imgOff == 0 {
			return bad("inconsistent raw image state")
		}
		w.raw = true
		f := w.checkRaw()
		if f == nil && w.policy.MaxSize > 0 && w.imgOff > w.policy.MaxSize {
			f = fail(ErrTooLarge, "raw image longer than the maximum of %d bytes", w.policy.MaxSize)
		}
		if f != nil {
			w.err = f
			*v = *w
			return f
		}
		*v = *w
		return nil
	}
	done := s.flags&flagDone != 0
	n, raw, f := w.writeHeader(s.hdr)
	if raw || n != len(s.hdr) {
		return bad("header bytes are not a package header")
	}
	if f != nil {
		if !done {
			// An incomplete header never fails a check: the state lies.
			return bad("header: " + f.detail)
		}
		w.err = f
		*v = *w
		return f
	}
	switch {
	case w.done != done:
		return bad("header completeness does not match")
	case !done && (s.pkgOff != int64(len(s.hdr)) || s.imgOff != 0):
		return bad("offsets do not match a partial header")
	case done && (s.pkgOff != int64(len(s.hdr))+s.imgOff || s.imgOff > w.m.Size):
		return bad("offsets do not match the header")
	}
	*v = *w
	return nil
}

// hashedLen returns the message length recorded in a crypto/sha256 state,
// if the state has the layout Go has used since 1.11 ("sha\x03", 8 state
// words, a 64-byte block, the length); ok is false for any other layout,
// which is then trusted as it is.
func hashedLen(state []byte) (n uint64, ok bool) {
	const size = 4 + 8*4 + 64 + 8
	if len(state) != size || string(state[:4]) != "sha\x03" {
		return 0, false
	}
	return binary.BigEndian.Uint64(state[size-8:]), true
}

// headerManifest returns the manifest of a complete header h, checking
// its framing and syntax but no policy.
func headerManifest(h []byte) (Manifest, bool) {
	if len(h) < len(Magic) || string(h[:len(Magic)]) != Magic {
		return Manifest{}, false
	}
	need, f := headerNeed(h)
	if f != nil || need != len(h) {
		return Manifest{}, false
	}
	mlen := int(binary.BigEndian.Uint32(h[len(Magic):]))
	m, f := parseManifest(h[len(Magic)+4 : len(Magic)+4+mlen])
	return m, f == nil
}
