package fwpkg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestBuild(t *testing.T) {
	sum := sha256.Sum256(testImage)
	hexSum := hex.EncodeToString(sum[:])
	tests := []struct {
		name    string
		m       Manifest
		image   []byte
		key     ed25519.PrivateKey
		wantErr bool
	}{
		{name: "signed", m: testManifest, image: testImage, key: testKey},
		{name: "unsigned", m: testManifest, image: testImage},
		{name: "size and hash given", m: Manifest{Version: "1", Size: int64(len(testImage)), SHA256: hexSum}, image: testImage},
		{name: "key id given", m: Manifest{Version: "1", KeyID: "release-2026"}, image: testImage, key: testKey},
		{name: "HTML characters", m: Manifest{Name: "<fw & co>", Version: "1"}, image: testImage},
		{name: "wrong size given", m: Manifest{Version: "1", Size: 3}, image: testImage, wantErr: true},
		{name: "wrong hash given", m: Manifest{Version: "1", SHA256: strings.Repeat("0", 64)}, image: testImage, wantErr: true},
		{name: "no version", m: Manifest{}, image: testImage, wantErr: true},
		{name: "version 256 bytes", m: Manifest{Version: strings.Repeat("1", 256)}, image: testImage, wantErr: true},
		{name: "control character", m: Manifest{Version: "1\n"}, image: testImage, wantErr: true},
		{name: "invalid UTF-8", m: Manifest{Version: "1", Name: "\xff"}, image: testImage, wantErr: true},
		{name: "empty image (B54)", m: Manifest{Version: "1"}, image: nil, wantErr: true},
		{name: "short key", m: Manifest{Version: "1"}, image: testImage, key: testKey[:32], wantErr: true},
		{name: "manifest just under 4 KiB", m: Manifest{Version: "1", Name: strings.Repeat("<", 255), Hardware: strings.Repeat("<", 255), KeyID: strings.Repeat("\u2028", 85)}, image: testImage},
		{name: "manifest over 4 KiB", m: Manifest{Version: strings.Repeat("<", 255), Name: strings.Repeat("<", 255), Hardware: strings.Repeat("<", 255), KeyID: strings.Repeat("<", 255)}, image: testImage, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			m, err := Build(&buf, tt.m, bytes.NewReader(tt.image), tt.key)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if buf.Len() != 0 {
					t.Fatalf("%d bytes written on error", buf.Len())
				}
				return
			}
			if m.Size != int64(len(tt.image)) || m.SHA256 != hexSum {
				t.Fatalf("manifest %+v", m)
			}
			if tt.key != nil && tt.m.KeyID == "" && m.KeyID != KeyID(testPub) {
				t.Fatalf("key_id %q", m.KeyID)
			}
			p := Policy{TrustedKeys: []ed25519.PublicKey{testPub}, RequireSignature: tt.key != nil}
			got := feed(t, NewVerifier(p), buf.Bytes(), 5)
			if got.err != nil || !bytes.Equal(got.image, tt.image) || got.manifest != m {
				t.Fatalf("Verifier: %v, %+v", got.err, got.manifest)
			}
		})
	}
}

// TestBuildFromOffset: Build reads the image from the reader's position.
func TestBuildFromOffset(t *testing.T) {
	r := bytes.NewReader(append([]byte("skip"), testImage...))
	r.Seek(4, io.SeekStart)
	var buf bytes.Buffer
	if _, err := Build(&buf, testManifest, r, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(buf.Bytes(), testImage) || bytes.Contains(buf.Bytes(), []byte("skip")) {
		t.Fatal("image not taken from the current position")
	}
}

// changingReader serves a different image on its second pass.
type changingReader struct {
	passes [][]byte
	r      *bytes.Reader
	n      int
}

func (c *changingReader) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *changingReader) Seek(off int64, whence int) (int64, error) {
	if whence == io.SeekStart {
		c.n++
		c.r = bytes.NewReader(c.passes[min(c.n, len(c.passes)-1)])
	}
	return c.r.Seek(off, whence)
}

func TestBuildImageChanges(t *testing.T) {
	for _, second := range [][]byte{
		[]byte("firmware image 1.2.3: \x00\x01\x02 the quick brown fix"), // same length
		testImage[:10],                      // shorter
		append(bytes.Clone(testImage), '!'), // longer
	} {
		c := &changingReader{passes: [][]byte{testImage, second}, r: bytes.NewReader(testImage)}
		if _, err := Build(io.Discard, testManifest, c, testKey); err == nil {
			t.Errorf("image changed to %q: no error", second)
		}
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestVerifyFile(t *testing.T) {
	sum := sha256.Sum256(testImage)
	m := Manifest{Version: "1", Size: int64(len(testImage)), SHA256: hex.EncodeToString(sum[:])}
	with := func(f func(*Manifest)) Manifest { c := m; f(&c); return c }
	flipped := bytes.Clone(testImage)
	flipped[3] ^= 0x40
	tests := []struct {
		name string
		r    io.Reader
		m    Manifest
		want error
	}{
		{name: "intact", r: bytes.NewReader(testImage), m: m},
		{name: "no version needed", r: bytes.NewReader(testImage), m: with(func(m *Manifest) { m.Version = "" })},
		{name: "truncated (B53)", r: bytes.NewReader(testImage[1:]), m: m, want: ErrIntegrity},
		{name: "extended (B53)", r: bytes.NewReader(append(bytes.Clone(testImage), 0)), m: m, want: ErrIntegrity},
		{name: "bit flip (B53)", r: bytes.NewReader(flipped), m: m, want: ErrIntegrity},
		{name: "empty", r: bytes.NewReader(nil), m: with(func(m *Manifest) { m.Size = 0 }), want: ErrIntegrity},
		{name: "negative size", r: bytes.NewReader(testImage), m: with(func(m *Manifest) { m.Size = -1 }), want: ErrIntegrity},
		{name: "huge size", r: bytes.NewReader(testImage), m: with(func(m *Manifest) { m.Size = 1 << 62 }), want: ErrTooLarge},
		{name: "bad hash string", r: bytes.NewReader(testImage), m: with(func(m *Manifest) { m.SHA256 = "x" }), want: ErrIntegrity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, VerifyFile(tt.r, tt.m), tt.want)
		})
	}
	t.Run("read error", func(t *testing.T) {
		err := VerifyFile(errReader{}, m)
		if err == nil || errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("err = %v", err)
		}
	})
}
