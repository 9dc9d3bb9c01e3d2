package fwpkg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestVerifier(t *testing.T) {
	signed := build(t, testManifest, testImage, testKey)
	unsigned := build(t, testManifest, testImage, nil)
	strict := Policy{TrustedKeys: []ed25519.PublicKey{testPub}, RequireSignature: true}
	lenient := Policy{TrustedKeys: []ed25519.PublicKey{testPub}}
	with := func(p Policy, f func(*Policy)) Policy { f(&p); return p }
	flip := func(b []byte, bit int) []byte {
		b = bytes.Clone(b)
		b[bit/8] ^= 1 << (bit % 8)
		return b
	}
	hdrLen := len(signed) - len(testImage)
	badSig := flip(signed, 8*(hdrLen-10))
	mfOf := func(v string, size int64, extra string) []byte {
		return fmt.Appendf(nil, `{"version":%q,"size":%d,"sha256":"%x"%s}`, v, size, sha256.Sum256(testImage), extra)
	}
	nested := append(bytes.Clone(testImage), signed...) // B54: tail looks like a package
	bigImage := bytes.Repeat([]byte{0xa5}, 4096)
	otherHash := fmt.Appendf(nil, `{"version":"1.2.3","size":%d,"sha256":"%x"}`, len(testImage), sha256.Sum256([]byte("other")))

	tests := []struct {
		name     string
		policy   Policy
		pkg      []byte
		want     error // nil: success
		wantRaw  bool
		noSigned bool // success without a verified signature
		image    []byte
	}{
		{name: "signed", policy: strict, pkg: signed, image: testImage},
		{name: "signed, lenient policy", policy: lenient, pkg: signed, image: testImage},
		{name: "signed, no keys, not required", policy: Policy{}, pkg: signed, image: testImage, noSigned: true},
		{name: "signed, no keys, required (B49)", policy: Policy{RequireSignature: true}, pkg: signed, want: ErrIntegrity},
		{name: "unsigned, not required", policy: lenient, pkg: unsigned, image: testImage, noSigned: true},
		{name: "unsigned, required (B49)", policy: strict, pkg: unsigned, want: ErrIntegrity},
		{name: "bad signature", policy: strict, pkg: badSig, want: ErrIntegrity},
		{name: "bad signature, not required", policy: lenient, pkg: badSig, want: ErrIntegrity},
		{name: "untrusted key", policy: strict, pkg: build(t, testManifest, testImage, otherKey), want: ErrIntegrity},
		{name: "untrusted key, not required", policy: lenient, pkg: build(t, testManifest, testImage, otherKey), want: ErrIntegrity},
		{name: "second trusted key", policy: with(strict, func(p *Policy) { p.TrustedKeys = []ed25519.PublicKey{otherPub, testPub} }), pkg: signed, image: testImage},
		{name: "trusted key of wrong length ignored", policy: with(strict, func(p *Policy) { p.TrustedKeys = []ed25519.PublicKey{testPub[:31], testPub} }), pkg: signed, image: testImage},
		{name: "only a malformed trusted key", policy: with(strict, func(p *Policy) { p.TrustedKeys = []ed25519.PublicKey{testPub[:31]} }), pkg: signed, want: ErrIntegrity},
		{name: "development key (B48)", policy: with(strict, func(p *Policy) { p.TrustedKeys = []ed25519.PublicKey{rfc8032Pub} }), pkg: build(t, testManifest, testImage, rfc8032Key), want: ErrIntegrity},
		{name: "development key allowed", policy: with(strict, func(p *Policy) { p.TrustedKeys, p.AllowDevelopmentKeys = []ed25519.PublicKey{rfc8032Pub}, true }), pkg: build(t, testManifest, testImage, rfc8032Key), image: testImage},
		{name: "denied key", policy: with(strict, func(p *Policy) { p.DeniedKeys = []ed25519.PublicKey{testPub} }), pkg: signed, want: ErrIntegrity},

		{name: "truncated by 1 byte (B45)", policy: strict, pkg: signed[:len(signed)-1], want: ErrIntegrity},
		{name: "extended by 1 byte (B45)", policy: strict, pkg: append(bytes.Clone(signed), 0), want: ErrIntegrity},
		{name: "extended, unsigned", policy: Policy{}, pkg: append(bytes.Clone(unsigned), 'x'), want: ErrIntegrity},
		{name: "bit flip in image (B45)", policy: strict, pkg: flip(signed, 8*len(signed)-3), want: ErrIntegrity},
		{name: "bit flip in manifest", policy: strict, pkg: flip(signed, 8*20+1), want: ErrIntegrity},
		{name: "bit flip in manifest, unsigned", policy: Policy{}, pkg: flip(unsigned, 8*(len(Magic)+4+len(`{"name":"avc-fw","version":"1.2.3","size":42,"sha256":"`))), want: ErrIntegrity},
		{name: "signed manifest, other payload (B46)", policy: strict, pkg: frame(otherHash, testKey, testImage), want: ErrIntegrity},
		{name: "header only", policy: strict, pkg: signed[:hdrLen], want: ErrIntegrity},
		{name: "magic only", policy: strict, pkg: []byte(Magic), want: ErrIntegrity},
		{name: "magic prefix only, raw allowed", policy: Policy{AllowRaw: true}, pkg: []byte("AVC"), want: ErrIntegrity},

		{name: "manifest length 0", policy: Policy{}, pkg: frame(nil, nil, testImage), want: ErrIntegrity},
		{name: "manifest length 5000", policy: Policy{}, pkg: frame(append(mfOf("1", int64(len(testImage)), ""), bytes.Repeat([]byte(" "), 5000)...)[:5000], nil, testImage), want: ErrIntegrity},
		{name: "manifest length 4096", policy: strict, pkg: frame(append(mfOf("1.2.3", int64(len(testImage)), ""), bytes.Repeat([]byte(" "), 4096-len(mfOf("1.2.3", int64(len(testImage)), "")))...), testKey, testImage), image: testImage},
		{name: "manifest length 0xffffffff", policy: Policy{}, pkg: append([]byte(Magic), 0xff, 0xff, 0xff, 0xff, '{'), want: ErrIntegrity},
		{name: "signature length 63", policy: lenient, pkg: frameSig(mfOf("1", int64(len(testImage)), ""), make([]byte, 63), testImage), want: ErrIntegrity},
		{name: "signature length 65", policy: lenient, pkg: frameSig(mfOf("1", int64(len(testImage)), ""), make([]byte, 65), testImage), want: ErrIntegrity},
		{name: "unknown field", policy: strict, pkg: frame(mfOf("1", int64(len(testImage)), `,"script":"rm -rf /"`), testKey, testImage), want: ErrIntegrity},
		{name: "duplicate field", policy: strict, pkg: frame(mfOf("1", int64(len(testImage)), `,"version":"9"`), testKey, testImage), want: ErrIntegrity},
		{name: "manifest not JSON", policy: strict, pkg: frame([]byte("version=1"), testKey, testImage), want: ErrIntegrity},

		{name: "size above MaxSize (B47)", policy: with(strict, func(p *Policy) { p.MaxSize = int64(len(testImage)) - 1 }), pkg: signed, want: ErrTooLarge},
		{name: "size equals MaxSize (B54)", policy: with(strict, func(p *Policy) { p.MaxSize = int64(len(testImage)) }), pkg: signed, image: testImage},
		{name: "size 3 GiB, 1 MiB slot (B47)", policy: with(strict, func(p *Policy) { p.MaxSize = 1 << 20 }), pkg: frame(mfOf("1", 3<<30, ""), testKey, testImage), want: ErrTooLarge},
		{name: "size 1<<62 (B47)", policy: strict, pkg: frame(mfOf("1", 1<<62, ""), testKey, testImage), want: ErrTooLarge},
		{name: "size 1<<40 without limit, short image", policy: strict, pkg: frame(mfOf("1", 1<<40, ""), testKey, testImage), want: ErrIntegrity},
		{name: "size 30 digits", policy: strict, pkg: frame(bytes.Replace(mfOf("1", 1, ""), []byte(`"size":1`), []byte(`"size":123456789012345678901234567890`), 1), testKey, testImage), want: ErrTooLarge},
		{name: "size 0 (B54)", policy: strict, pkg: frame(manifestJSON(nil, "1", ""), testKey, nil), want: ErrIntegrity},
		{name: "size 0 with trailing bytes", policy: Policy{}, pkg: frame(manifestJSON(nil, "1", ""), nil, []byte("x")), want: ErrIntegrity},

		{name: "wrong hardware (B51)", policy: with(strict, func(p *Policy) { p.Hardware = "avc-board-2" }), pkg: signed, want: ErrUnsupported},
		{name: "same hardware", policy: with(strict, func(p *Policy) { p.Hardware = "avc-board-1" }), pkg: signed, image: testImage},
		{name: "package for any hardware", policy: with(strict, func(p *Policy) { p.Hardware = "avc-board-2" }), pkg: build(t, Manifest{Version: "1.2.3"}, testImage, testKey), image: testImage},

		{name: "rollback (B50)", policy: with(strict, func(p *Policy) { p.CurrentVersion = "1.2.10" }), pkg: signed, want: ErrUnsupported},
		{name: "rollback allowed", policy: with(strict, func(p *Policy) { p.CurrentVersion, p.AllowDowngrade = "1.2.10", true }), pkg: signed, image: testImage},
		{name: "same version (reinstall)", policy: with(strict, func(p *Policy) { p.CurrentVersion = "v1.2.3" }), pkg: signed, image: testImage},
		{name: "upgrade", policy: with(strict, func(p *Policy) { p.CurrentVersion = "1.2.3-rc1" }), pkg: signed, image: testImage},
		{name: "unparseable version", policy: with(strict, func(p *Policy) { p.CurrentVersion = "1.0" }), pkg: build(t, Manifest{Version: "build 17"}, testImage, testKey), want: ErrUnsupported},
		{name: "unparseable version, no check", policy: strict, pkg: build(t, Manifest{Version: "build 17"}, testImage, testKey), image: testImage},
		{name: "unparseable current version", policy: with(strict, func(p *Policy) { p.CurrentVersion = "one" }), pkg: signed, want: ErrUnsupported},
		{name: "version 255+ bytes (B50)", policy: Policy{}, pkg: frame(mfOf(strings.Repeat("1", 256), int64(len(testImage)), ""), nil, testImage), want: ErrIntegrity},
		{name: "30-digit component vs current", policy: with(strict, func(p *Policy) { p.CurrentVersion = "1.0" }), pkg: build(t, Manifest{Version: "1." + strings.Repeat("9", 30)}, testImage, testKey), want: ErrUnsupported},

		{name: "raw image allowed", policy: Policy{AllowRaw: true}, pkg: testImage, wantRaw: true, noSigned: true, image: testImage},
		{name: "raw image starting like the magic", policy: Policy{AllowRaw: true}, pkg: []byte("AVCPKG2 not a package"), wantRaw: true, noSigned: true, image: []byte("AVCPKG2 not a package")},
		{name: "raw image not allowed", policy: Policy{}, pkg: testImage, want: ErrUnsupported},
		{name: "raw image, signature required", policy: Policy{AllowRaw: true, RequireSignature: true}, pkg: testImage, want: ErrIntegrity},
		{name: "raw image, not allowed, signature required", policy: strict, pkg: testImage, want: ErrUnsupported},
		{name: "raw image above MaxSize", policy: Policy{AllowRaw: true, MaxSize: int64(len(testImage)) - 1}, pkg: testImage, want: ErrTooLarge},
		{name: "raw image equal to MaxSize", policy: Policy{AllowRaw: true, MaxSize: int64(len(testImage))}, pkg: testImage, wantRaw: true, noSigned: true, image: testImage},
		{name: "magic then garbage, raw allowed", policy: Policy{AllowRaw: true}, pkg: append([]byte(Magic), "garbage garbage garbage"...), want: ErrIntegrity},
		{name: "zero-length stream (B54)", policy: Policy{}, pkg: nil, want: ErrIntegrity},
		{name: "zero-length stream, raw allowed (B54)", policy: Policy{AllowRaw: true}, pkg: nil, want: ErrIntegrity},

		{name: "image with a package in its tail (B54)", policy: strict, pkg: build(t, testManifest, nested, testKey), image: nested},
		{name: "4 KiB image", policy: strict, pkg: build(t, testManifest, bigImage, testKey), image: bigImage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var first result
			for i, chunk := range []int{0, 1, 2, 7, 64, 1000} {
				got := feed(t, NewVerifier(tt.policy), tt.pkg, chunk)
				if i == 0 {
					first = got
					checkErr(t, got.err, tt.want)
					if tt.want != nil {
						if len(got.image) != 0 && !errors.Is(got.err, ErrIntegrity) {
							t.Errorf("image bytes %q released before a header refusal", got.image)
						}
						continue
					}
					if !bytes.Equal(got.image, tt.image) {
						t.Errorf("image = %q, want %q", got.image, tt.image)
					}
					if got.raw != tt.wantRaw || got.haveMan == tt.wantRaw {
						t.Errorf("raw = %v, manifest %v, want raw %v", got.raw, got.haveMan, tt.wantRaw)
					}
					if got.signed == tt.noSigned {
						t.Errorf("signed = %v", got.signed)
					}
					if got.sum != sha256.Sum256(tt.image) || got.imgOff != int64(len(tt.image)) || got.pkgOff != int64(len(tt.pkg)) {
						t.Errorf("offsets %d/%d, hash %x", got.pkgOff, got.imgOff, got.sum)
					}
					continue
				}
				if err := sameResult(got, first); err != nil {
					t.Errorf("chunks of %d differ from one Write: %v", chunk, err)
				}
			}
		})
	}
}

// TestEveryBitFlip flips each bit of a small signed package in turn
// (B45): every copy must fail, and no image byte may come out before the
// header verified.
func TestEveryBitFlip(t *testing.T) {
	pkg := build(t, testManifest, testImage, testKey)
	policy := Policy{TrustedKeys: []ed25519.PublicKey{testPub}, RequireSignature: true}
	for bit := 0; bit < 8*len(pkg); bit++ {
		b := bytes.Clone(pkg)
		b[bit/8] ^= 1 << (bit % 8)
		got := feed(t, NewVerifier(policy), b, 0)
		if got.err == nil {
			t.Fatalf("bit %d flipped: accepted", bit)
		}
		if bit/8 < len(pkg)-len(testImage) && len(got.image) != 0 {
			t.Fatalf("bit %d flipped in the header: %d image bytes released", bit, len(got.image))
		}
	}
}

// TestEveryTruncation cuts a package at every length: only the whole
// package verifies.
func TestEveryTruncation(t *testing.T) {
	pkg := build(t, testManifest, testImage, testKey)
	policy := Policy{TrustedKeys: []ed25519.PublicKey{testPub}, RequireSignature: true, AllowRaw: true}
	for n := 0; n <= len(pkg); n++ {
		got := feed(t, NewVerifier(policy), pkg[:n], 1)
		if (got.err == nil) != (n == len(pkg)) {
			t.Fatalf("cut at %d: err = %v", n, got.err)
		}
		if n < len(pkg) && !errors.Is(got.err, ErrIntegrity) {
			t.Fatalf("cut at %d: err = %v, want ErrIntegrity", n, got.err)
		}
	}
}

// TestWriteReturnsSubslice checks that image data is p itself, not a copy.
func TestWriteReturnsSubslice(t *testing.T) {
	pkg := build(t, testManifest, testImage, testKey)
	v := NewVerifier(Policy{TrustedKeys: []ed25519.PublicKey{testPub}})
	for _, p := range [][]byte{pkg[:5], pkg[5 : len(pkg)-10], pkg[len(pkg)-10:]} {
		img, err := v.Write(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(img) == 0 {
			continue
		}
		if &img[len(img)-1] != &p[len(p)-1] {
			t.Errorf("image data is not a sub-slice of p")
		}
	}
	checkErr(t, v.Finish(), nil)
}

// TestRawMagicPrefixSplit feeds a raw image whose first bytes match the
// magic, split in every way: the image comes out whole.
func TestRawMagicPrefixSplit(t *testing.T) {
	img := []byte("AVCPKG1 is not quite the magic")
	for split := 0; split <= len(img); split++ {
		v := NewVerifier(Policy{AllowRaw: true})
		var got []byte
		for _, p := range [][]byte{img[:split], img[split:]} {
			out, err := v.Write(p)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, out...)
		}
		if err := v.Finish(); err != nil || !bytes.Equal(got, img) || !v.Raw() {
			t.Fatalf("split %d: %q, %v, raw %v", split, got, err, v.Raw())
		}
		if v.PackageOffset() != int64(len(img)) || v.ImageOffset() != int64(len(img)) {
			t.Fatalf("split %d: offsets %d, %d", split, v.PackageOffset(), v.ImageOffset())
		}
	}
}

func TestStickyError(t *testing.T) {
	pkg := build(t, testManifest, testImage, otherKey)
	v := NewVerifier(Policy{TrustedKeys: []ed25519.PublicKey{testPub}})
	_, err := v.Write(pkg)
	checkErr(t, err, ErrIntegrity)
	for range 2 {
		if img, err2 := v.Write(testImage); img != nil || err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("Write after error: %q, %v", img, err2)
		}
	}
	if err2 := v.Finish(); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("Finish after error: %v", err2)
	}
	if v.Err() == nil {
		t.Fatal("Err() = nil")
	}
}

func TestManifestBeforeHeader(t *testing.T) {
	pkg := build(t, testManifest, testImage, testKey)
	v := NewVerifier(Policy{TrustedKeys: []ed25519.PublicKey{testPub}})
	hdr := len(pkg) - len(testImage)
	if _, err := v.Write(pkg[:hdr-1]); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.Manifest(); ok {
		t.Fatal("manifest before the header is complete")
	}
	if _, err := v.Write(pkg[hdr-1 : hdr]); err != nil {
		t.Fatal(err)
	}
	m, ok := v.Manifest()
	want := testManifest
	want.Size, want.KeyID = int64(len(testImage)), KeyID(testPub)
	sum := sha256.Sum256(testImage)
	want.SHA256 = hex.EncodeToString(sum[:])
	if !ok || m != want {
		t.Fatalf("Manifest() = %+v, %v; want %+v", m, ok, want)
	}
	if v.PackageOffset() != int64(hdr) || v.ImageOffset() != 0 {
		t.Fatalf("offsets %d, %d", v.PackageOffset(), v.ImageOffset())
	}
}

// TestHeaderLengthChecksEarly: a bad manifest length is refused as soon as
// its 4 bytes arrive, not after 4 GiB of header.
func TestHeaderLengthChecksEarly(t *testing.T) {
	b := binary.BigEndian.AppendUint32([]byte(Magic), MaxManifestSize+1)
	_, err := NewVerifier(Policy{}).Write(b)
	checkErr(t, err, ErrIntegrity)
}
