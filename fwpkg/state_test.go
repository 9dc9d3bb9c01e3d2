package fwpkg

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// TestResumeEverySplit saves the verifier after every prefix of a package,
// restores it into a fresh one and feeds the rest: the outcome must be the
// one of an uninterrupted run.
func TestResumeEverySplit(t *testing.T) {
	strict := Policy{TrustedKeys: []ed25519.PublicKey{testPub}, RequireSignature: true, MaxSize: 1 << 20}
	raw := Policy{AllowRaw: true}
	signed := build(t, testManifest, testImage, testKey)
	flipped := bytes.Clone(signed)
	flipped[len(flipped)-5] ^= 0x10
	tests := []struct {
		name   string
		policy Policy
		pkg    []byte
	}{
		{name: "signed", policy: strict, pkg: signed},
		{name: "unsigned", policy: Policy{}, pkg: build(t, testManifest, testImage, nil)},
		{name: "bit flip in image", policy: strict, pkg: flipped},
		{name: "extended", policy: strict, pkg: append(bytes.Clone(signed), 1, 2)},
		{name: "untrusted", policy: strict, pkg: build(t, testManifest, testImage, otherKey)},
		{name: "raw", policy: raw, pkg: testImage},
		{name: "raw with magic prefix", policy: raw, pkg: []byte("AVCPKG1?")},
		{name: "raw refused", policy: Policy{}, pkg: testImage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := feed(t, NewVerifier(tt.policy), tt.pkg, 3)
			for split := 0; split <= len(tt.pkg); split++ {
				var got result
				got.image = []byte{}
				v := NewVerifier(tt.policy)
				writeAll(t, v, tt.pkg[:split], 3, &got)
				state, err := v.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				prefix := []byte("kept")
				if app, err := v.AppendBinary(prefix); err != nil || !bytes.Equal(app, append(prefix, state...)) {
					t.Fatalf("split %d: AppendBinary differs from MarshalBinary (%v)", split, err)
				}
				w := NewVerifier(tt.policy)
				if err := w.UnmarshalBinary(state); err != nil {
					t.Fatalf("split %d: UnmarshalBinary: %v", split, err)
				}
				if w.PackageOffset() != v.PackageOffset() || w.ImageOffset() != v.ImageOffset() || w.ImageSHA256() != v.ImageSHA256() {
					t.Fatalf("split %d: restored offsets/hash differ", split)
				}
				again, err := w.MarshalBinary()
				if err != nil || !bytes.Equal(again, state) {
					t.Fatalf("split %d: state does not survive a round trip", split)
				}
				writeAll(t, w, tt.pkg[split:], 3, &got)
				finishResult(w, &got)
				if err := sameResult(got, want); err != nil {
					t.Fatalf("split %d: %v", split, err)
				}
			}
		})
	}
}

// TestUnmarshalCorrupt: every truncation and every single-bit flip of a
// saved state is ErrBadState, and leaves the verifier as it was.
func TestUnmarshalCorrupt(t *testing.T) {
	policy := Policy{TrustedKeys: []ed25519.PublicKey{testPub}}
	pkg := build(t, testManifest, testImage, testKey)
	v := NewVerifier(policy)
	if _, err := v.Write(pkg[:len(pkg)-7]); err != nil {
		t.Fatal(err)
	}
	state, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, b []byte) {
		t.Helper()
		w := NewVerifier(policy)
		err := w.UnmarshalBinary(b)
		if !errors.Is(err, ErrBadState) {
			t.Fatalf("%s: err = %v, want ErrBadState", name, err)
		}
		if w.PackageOffset() != 0 || w.done || w.err != nil {
			t.Fatalf("%s: verifier changed by a failed UnmarshalBinary", name)
		}
	}
	for n := range len(state) {
		check("truncated", state[:n])
	}
	check("extended", append(bytes.Clone(state), 0))
	for bit := range 8 * len(state) {
		b := bytes.Clone(state)
		b[bit/8] ^= 1 << (bit % 8)
		check("bit flip", b)
	}
	// Faults behind a valid checksum.
	reseal := func(f func(b []byte) []byte) []byte {
		b := f(bytes.Clone(state[:len(state)-4]))
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	}
	for _, tt := range []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"version", func(b []byte) []byte { b[4] = 2; return b }},
		{"unknown flag", func(b []byte) []byte { b[5] |= 0x80; return b }},
		{"raw and done", func(b []byte) []byte { b[5] = flagRaw | flagDone; return b }},
		{"not done", func(b []byte) []byte { b[5] = 0; return b }},
		{"raw with a header", func(b []byte) []byte { b[5] = flagRaw; return b }},
		{"error kind 9", func(b []byte) []byte { b[6] = 9; return b }},
		{"package offset +1", func(b []byte) []byte { b[14]++; return b }},
		{"image offset +1", func(b []byte) []byte { b[22]++; b[14]++; return b }},
		{"negative offset", func(b []byte) []byte { b[7] = 0x80; return b }},
		{"image beyond package", func(b []byte) []byte { b[15] = 0x7f; return b }},
		{"detail without error", func(b []byte) []byte {
			return append(append(bytes.Clone(b[:stateFixed]), 0, 1, 'x'), b[stateFixed+2:]...)
		}},
		{"header not a header", func(b []byte) []byte { b[stateFixed+2+2] = 'B'; return b }},
		{"hash state garbage", func(b []byte) []byte { b[len(b)-5] ^= 0xff; b[len(b)-100] ^= 0xff; return b }},
		{"trailing", func(b []byte) []byte { return append(b, 0) }},
		{"huge field", func(b []byte) []byte { b[stateFixed] = 0xff; return b }},
	} {
		check(tt.name, reseal(tt.edit))
	}
}

// TestUnmarshalPolicyChanged: a restored header is checked against the
// policy in force now.
func TestUnmarshalPolicyChanged(t *testing.T) {
	pkg := build(t, testManifest, testImage, testKey)
	saved := func(p Policy, b []byte) []byte {
		v := NewVerifier(p)
		if _, err := v.Write(b); err != nil {
			t.Fatal(err)
		}
		s, err := v.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	signedState := saved(Policy{TrustedKeys: []ed25519.PublicKey{testPub}}, pkg[:len(pkg)-3])
	rawState := saved(Policy{AllowRaw: true}, testImage)
	partialState := saved(Policy{}, pkg[:20])
	tests := []struct {
		name   string
		state  []byte
		policy Policy
		want   error
	}{
		{"same policy", signedState, Policy{TrustedKeys: []ed25519.PublicKey{testPub}}, nil},
		{"version moved on", signedState, Policy{TrustedKeys: []ed25519.PublicKey{testPub}, CurrentVersion: "2.0"}, ErrUnsupported},
		{"key rotated", signedState, Policy{TrustedKeys: []ed25519.PublicKey{otherPub}}, ErrIntegrity},
		{"smaller storage", signedState, Policy{MaxSize: 10}, ErrTooLarge},
		{"other hardware", signedState, Policy{Hardware: "other"}, ErrUnsupported},
		{"raw still allowed", rawState, Policy{AllowRaw: true}, nil},
		{"raw no longer allowed", rawState, Policy{}, ErrUnsupported},
		{"raw, signature now required", rawState, Policy{AllowRaw: true, RequireSignature: true}, ErrIntegrity},
		{"raw, smaller storage", rawState, Policy{AllowRaw: true, MaxSize: 10}, ErrTooLarge},
		{"partial header", partialState, Policy{RequireSignature: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier(tt.policy)
			err := v.UnmarshalBinary(tt.state)
			checkErr(t, err, tt.want)
			if tt.want != nil {
				if _, err2 := v.Write([]byte("x")); err2 == nil || err2.Error() != err.Error() {
					t.Fatalf("refusal not sticky: %v", err2)
				}
			}
		})
	}
}

// TestUnmarshalStickyError: a saved failure comes back as the same error.
func TestUnmarshalStickyError(t *testing.T) {
	v := NewVerifier(Policy{})
	_, werr := v.Write(testImage)
	checkErr(t, werr, ErrUnsupported)
	state, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	w := NewVerifier(Policy{AllowRaw: true})
	if err := w.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(); err == nil || err.Error() != werr.Error() || !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Finish = %v, want %v", err, werr)
	}
}
