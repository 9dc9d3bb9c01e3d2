package fwpkg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
)

// Test keys: fixed seeds, so failures reproduce.
var (
	testKey      = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x11}, ed25519.SeedSize))
	testPub      = testKey.Public().(ed25519.PublicKey)
	otherKey     = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x22}, ed25519.SeedSize))
	otherPub     = otherKey.Public().(ed25519.PublicKey)
	rfc8032Key   = ed25519.NewKeyFromSeed(mustHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
	rfc8032Pub   = rfc8032Key.Public().(ed25519.PublicKey)
	testImage    = []byte("firmware image 1.2.3: \x00\x01\x02 the quick brown fox")
	testManifest = Manifest{Name: "avc-fw", Version: "1.2.3", Hardware: "avc-board-1"}
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// build returns a package made by Build.
func build(t testing.TB, m Manifest, image []byte, key ed25519.PrivateKey) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Build(&buf, m, bytes.NewReader(image), key); err != nil {
		t.Fatalf("Build: %v", err)
	}
	return buf.Bytes()
}

// frame assembles a package from raw parts, for headers Build refuses to
// write. key nil leaves it unsigned; sig, if not nil, replaces the
// signature.
func frame(manifest []byte, key ed25519.PrivateKey, image []byte) []byte {
	var sig []byte
	if key != nil {
		sig = ed25519.Sign(key, manifest)
	}
	return frameSig(manifest, sig, image)
}

// frameSig assembles a package with the given signature bytes.
func frameSig(manifest, sig, image []byte) []byte {
	b := []byte(Magic)
	b = binary.BigEndian.AppendUint32(b, uint32(len(manifest)))
	b = append(b, manifest...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(sig)))
	b = append(b, sig...)
	return append(b, image...)
}

// manifestJSON returns a manifest for image with the given extra text
// spliced in before the closing brace.
func manifestJSON(image []byte, version, extra string) []byte {
	sum := sha256.Sum256(image)
	return fmt.Appendf(nil, `{"version":%q,"size":%d,"sha256":"%x"%s}`, version, len(image), sum, extra)
}

// result is everything a Verifier run observes.
type result struct {
	image    []byte
	writeErr error // first Write error
	err      error // first error of Write or Finish
	manifest Manifest
	haveMan  bool
	raw      bool
	signed   bool
	pkgOff   int64
	imgOff   int64
	sum      [32]byte
}

// feed writes pkg to v in chunks of chunk bytes (0: one Write) and
// returns what came out, after Finish.
func feed(t testing.TB, v *Verifier, pkg []byte, chunk int) result {
	t.Helper()
	var r result
	r.image = []byte{}
	writeAll(t, v, pkg, chunk, &r)
	finishResult(v, &r)
	return r
}

// writeAll writes pkg in chunks, appending image data to r.
func writeAll(t testing.TB, v *Verifier, pkg []byte, chunk int, r *result) {
	t.Helper()
	if chunk <= 0 {
		chunk = max(len(pkg), 1)
	}
	for off := 0; off < len(pkg); off += chunk {
		p := pkg[off:min(off+chunk, len(pkg))]
		img, err := v.Write(p)
		if err != nil {
			if img != nil {
				t.Fatalf("Write returned %d image bytes with error %v", len(img), err)
			}
			if r.writeErr == nil {
				r.writeErr = err
			}
			continue
		}
		r.image = append(r.image, img...)
	}
}

// finishResult calls Finish and records the verifier's state in r.
func finishResult(v *Verifier, r *result) {
	r.err = r.writeErr
	if err := v.Finish(); r.err == nil {
		r.err = err
	}
	r.manifest, r.haveMan = v.Manifest()
	r.raw, r.signed = v.Raw(), v.Signed()
	r.pkgOff, r.imgOff, r.sum = v.PackageOffset(), v.ImageOffset(), v.ImageSHA256()
}

// sameResult reports the first difference between two runs.
func sameResult(a, b result) error {
	switch {
	case a.err == nil && !bytes.Equal(a.image, b.image):
		return fmt.Errorf("image %q != %q", a.image, b.image)
	case errString(a.err) != errString(b.err):
		return fmt.Errorf("error %q != %q", errString(a.err), errString(b.err))
	case a.manifest != b.manifest || a.haveMan != b.haveMan:
		return fmt.Errorf("manifest %+v,%v != %+v,%v", a.manifest, a.haveMan, b.manifest, b.haveMan)
	case a.raw != b.raw || a.signed != b.signed:
		return fmt.Errorf("raw/signed %v/%v != %v/%v", a.raw, a.signed, b.raw, b.signed)
	case a.err == nil && (a.pkgOff != b.pkgOff || a.imgOff != b.imgOff || a.sum != b.sum):
		return fmt.Errorf("offsets/hash %d/%d/%x != %d/%d/%x", a.pkgOff, a.imgOff, a.sum, b.pkgOff, b.imgOff, b.sum)
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// checkErr fails t unless err wraps want (nil: no error).
func checkErr(t testing.TB, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}
