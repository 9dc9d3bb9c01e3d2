package fwpkg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
)

// fuzzPolicy picks a policy from the bits of flags.
func fuzzPolicy(flags byte) Policy {
	p := Policy{TrustedKeys: []ed25519.PublicKey{testPub}}
	p.RequireSignature = flags&1 != 0
	p.AllowRaw = flags&2 != 0
	if flags&4 != 0 {
		p.CurrentVersion = "1.2.0"
	}
	if flags&8 != 0 {
		p.MaxSize = 64
	}
	if flags&16 != 0 {
		p.Hardware = "avc-board-1"
	}
	p.AllowDowngrade = flags&32 != 0
	return p
}

// fuzzSeeds are packages worth mutating.
func fuzzSeeds(t testing.TB) [][]byte {
	return [][]byte{
		build(t, testManifest, testImage, testKey),
		build(t, testManifest, testImage, nil),
		build(t, Manifest{Version: "0.1"}, []byte("x"), otherKey),
		frame(manifestJSON(testImage, "1", `,"x":1`), nil, testImage),
		testImage,
		[]byte(Magic),
		nil,
	}
}

// fuzzRun feeds pkg in chunks whose sizes come from chunks, checks the
// invariants that hold for every input, and returns the outcome.
func fuzzRun(t *testing.T, v *Verifier, pkg, chunks []byte, r *result) {
	for i := 0; len(pkg) > 0; i++ {
		n := len(pkg)
		if len(chunks) > 0 {
			n = min(int(chunks[i%len(chunks)])+1, len(pkg))
		}
		p := pkg[:n]
		pkg = pkg[n:]
		before := v.ImageOffset()
		img, err := v.Write(p)
		if err != nil {
			if img != nil {
				t.Fatalf("image bytes with error %v", err)
			}
			if r.writeErr == nil {
				r.writeErr = err
			}
			continue
		}
		if v.ImageOffset()-before != int64(len(img)) {
			t.Fatalf("ImageOffset moved by %d for %d image bytes", v.ImageOffset()-before, len(img))
		}
		if !v.Raw() && len(img) > 0 && &img[len(img)-1] != &p[len(p)-1] {
			t.Fatal("package image data is not a suffix of p")
		}
		if m, ok := v.Manifest(); ok && v.ImageOffset() > m.Size {
			t.Fatalf("%d image bytes released, manifest size %d", v.ImageOffset(), m.Size)
		}
		if !v.Raw() && len(img) > 0 {
			if _, ok := v.Manifest(); !ok {
				t.Fatal("image bytes before the manifest was accepted")
			}
		}
		r.image = append(r.image, img...)
	}
}

func FuzzVerifier(f *testing.F) {
	for i, s := range fuzzSeeds(f) {
		f.Add(s, []byte{byte(i), 3, 0, 200}, byte(i*7), uint16(i*13))
	}
	f.Fuzz(func(t *testing.T, pkg, chunks []byte, flags byte, split uint16) {
		policy := fuzzPolicy(flags)
		var whole result
		whole.image = []byte{}
		v := NewVerifier(policy)
		fuzzRun(t, v, pkg, nil, &whole)
		finishResult(v, &whole)

		// The same package in other chunks, saved and restored at split.
		at := int(split) % (len(pkg) + 1)
		var got result
		got.image = []byte{}
		v = NewVerifier(policy)
		fuzzRun(t, v, pkg[:at], chunks, &got)
		state, err := v.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		w := NewVerifier(policy)
		if err := w.UnmarshalBinary(state); err != nil {
			t.Fatalf("restore at %d: %v", at, err)
		}
		fuzzRun(t, w, pkg[at:], chunks, &got)
		finishResult(w, &got)
		if err := sameResult(got, whole); err != nil {
			t.Fatalf("chunked and resumed at %d: %v", at, err)
		}

		if whole.err != nil {
			return
		}
		if whole.raw {
			if !policy.AllowRaw || policy.RequireSignature || !bytes.Equal(whole.image, pkg) || len(pkg) == 0 {
				t.Fatalf("raw image accepted against policy %+v", policy)
			}
			return
		}
		m := whole.manifest
		sum := sha256.Sum256(whole.image)
		if int64(len(whole.image)) != m.Size || hex.EncodeToString(sum[:]) != m.SHA256 || m.Size == 0 {
			t.Fatalf("accepted image of %d bytes does not match %+v", len(whole.image), m)
		}
		if policy.RequireSignature && !whole.signed {
			t.Fatal("accepted without a signature")
		}
		if policy.MaxSize > 0 && m.Size > policy.MaxSize {
			t.Fatal("accepted above MaxSize")
		}
		if err := VerifyFile(bytes.NewReader(whole.image), m); err != nil {
			t.Fatalf("VerifyFile: %v", err)
		}
	})
}

func FuzzUnmarshal(f *testing.F) {
	for i, s := range fuzzSeeds(f) {
		for _, at := range []int{0, 3, 8, 20, len(s) - len(testImage), len(s) - 2, len(s)} {
			if at < 0 || at > len(s) {
				continue
			}
			v := NewVerifier(fuzzPolicy(byte(i)))
			v.Write(s[:at])
			state, err := v.MarshalBinary()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(state, s[at:], byte(i))
		}
	}
	f.Fuzz(func(t *testing.T, state, rest []byte, flags byte) {
		v := NewVerifier(fuzzPolicy(flags))
		if err := v.UnmarshalBinary(state); err != nil && v.Err() == nil {
			if v.PackageOffset() != 0 || v.ImageOffset() != 0 {
				t.Fatal("failed UnmarshalBinary changed the verifier")
			}
			return
		}
		again, err := v.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		w := NewVerifier(fuzzPolicy(flags))
		if err := w.UnmarshalBinary(again); err != nil && w.Err() == nil {
			t.Fatalf("re-saved state does not restore: %v", err)
		}
		var r result
		fuzzRun(t, v, rest, []byte{7}, &r)
		if err := v.Finish(); err == nil && !v.Raw() {
			m, ok := v.Manifest()
			if !ok || v.ImageOffset() != m.Size {
				t.Fatalf("Finish accepted %d image bytes for %+v (manifest %v)", v.ImageOffset(), m, ok)
			}
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add(manifestJSON(testImage, "1.2.3", `,"name":"x","hardware":"h","key_id":"k"`))
	f.Add([]byte(`{"version":"1","size":1e3,"sha256":""}`))
	f.Add([]byte(`{"version":"1","version":"2"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, fl := parseManifest(b)
		if fl != nil {
			return
		}
		if m.check() != nil {
			t.Fatalf("parsed manifest %+v fails check", m)
		}
		enc, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		back, fl := parseManifest(enc)
		if fl != nil || back != m {
			t.Fatalf("re-encoded manifest %s: %+v, %v", enc, back, fl)
		}
	})
}

func FuzzCompareVersions(f *testing.F) {
	f.Add("1.2.10", "1.2.9")
	f.Add("v1.0-rc.1", "1.0")
	f.Add("01.0-0a", "1..2")
	f.Fuzz(func(t *testing.T, a, b string) {
		c, err := CompareVersions(a, b)
		back, errBack := CompareVersions(b, a)
		if (err == nil) != (errBack == nil) {
			t.Fatalf("error depends on order: %v / %v", err, errBack)
		}
		if err != nil {
			return
		}
		if c != -back || c < -1 || c > 1 {
			t.Fatalf("CompareVersions(%q, %q) = %d, reverse %d", a, b, c, back)
		}
		if self, err := CompareVersions(a, a); err != nil || self != 0 {
			t.Fatalf("CompareVersions(%q, itself) = %d, %v", a, self, err)
		}
	})
}
