package fwpkg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Build writes a package to w: the header for m, then the image read from
// image. key nil writes an unsigned package.
//
// Build reads the image twice from its current position: once to compute
// its size and SHA-256, which it fills into m, and once to copy it,
// checking that it did not change in between. If m already has a size or
// hash they must match the image. With a key and no m.KeyID, KeyID of the
// key's public half is filled in. Build returns the manifest as written.
//
// An empty image, an image above MaxImageSize or a manifest that breaks
// the format's rules (see the package documentation) is an error, and
// nothing is written. If the image changes while it is copied, w holds a
// package that will not verify and Build returns an error.
func Build(w io.Writer, m Manifest, image io.ReadSeeker, key ed25519.PrivateKey) (Manifest, error) {
	if key != nil && len(key) != ed25519.PrivateKeySize {
		return Manifest{}, fmt.Errorf("fwpkg: build: private key of %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	start, err := image.Seek(0, io.SeekCurrent)
	if err != nil {
		return Manifest{}, fmt.Errorf("fwpkg: build: image: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(image, MaxImageSize+1))
	if err != nil {
		return Manifest{}, fmt.Errorf("fwpkg: build: read image: %w", err)
	}
	switch {
	case n == 0:
		return Manifest{}, errors.New("fwpkg: build: empty image")
	case n > MaxImageSize:
		return Manifest{}, fmt.Errorf("fwpkg: build: image longer than %d bytes: %w", int64(MaxImageSize), ErrTooLarge)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if m.Size != 0 && m.Size != n {
		return Manifest{}, fmt.Errorf("fwpkg: build: manifest size %d, image is %d bytes", m.Size, n)
	}
	if m.SHA256 != "" && m.SHA256 != sum {
		return Manifest{}, fmt.Errorf("fwpkg: build: manifest sha256 %s, image has %s", truncate(m.SHA256), sum)
	}
	m.Size, m.SHA256 = n, sum
	if key != nil && m.KeyID == "" {
		m.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	}
	if f := m.check(); f != nil {
		return Manifest{}, errors.New("fwpkg: build: " + f.detail)
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return Manifest{}, fmt.Errorf("fwpkg: build: encode manifest: %w", err)
	}
	if len(mb) > MaxManifestSize {
		return Manifest{}, fmt.Errorf("fwpkg: build: manifest of %d bytes exceeds %d", len(mb), MaxManifestSize)
	}
	if got, f := parseManifest(mb); f != nil {
		return Manifest{}, errors.New("fwpkg: build: encoded manifest does not parse: " + f.detail)
	} else if got != m {
		return Manifest{}, errors.New("fwpkg: build: encoded manifest does not read back as written")
	}
	hdr := make([]byte, 0, MaxHeaderSize)
	hdr = append(hdr, Magic...)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(mb)))
	hdr = append(hdr, mb...)
	if key == nil {
		hdr = binary.BigEndian.AppendUint16(hdr, 0)
	} else {
		hdr = binary.BigEndian.AppendUint16(hdr, SignatureSize)
		hdr = append(hdr, ed25519.Sign(key, mb)...)
	}
	if _, err := image.Seek(start, io.SeekStart); err != nil {
		return Manifest{}, fmt.Errorf("fwpkg: build: rewind image: %w", err)
	}
	if _, err := w.Write(hdr); err != nil {
		return Manifest{}, fmt.Errorf("fwpkg: build: write header: %w", err)
	}
	h.Reset()
	copied, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(image, n))
	if err != nil {
		return Manifest{}, fmt.Errorf("fwpkg: build: copy image: %w", err)
	}
	var extra [1]byte
	more, _ := io.ReadFull(image, extra[:])
	if copied != n || more != 0 || hex.EncodeToString(h.Sum(nil)) != sum {
		return Manifest{}, errors.New("fwpkg: build: image changed while it was being packaged")
	}
	return m, nil
}

// VerifyFile checks a stored image against m again, just before it is
// installed (the stored copy may have changed since it was written): r
// must yield exactly m.Size bytes with SHA-256 m.SHA256. A mismatch is
// ErrIntegrity, so is an empty image; a read error is returned wrapped.
//
// For a raw image, pass a Manifest with the Size and SHA256 the Verifier
// saw (ImageOffset, ImageSHA256).
func VerifyFile(r io.Reader, m Manifest) error {
	switch {
	case m.Size <= 0:
		return fail(ErrIntegrity, "stored image: manifest size %d", m.Size)
	case m.Size > MaxImageSize:
		return fail(ErrTooLarge, "stored image: manifest size %d exceeds %d", m.Size, int64(MaxImageSize))
	case !isSHA256Hex(m.SHA256):
		return fail(ErrIntegrity, "stored image: manifest sha256 %q is not 64 lowercase hex digits", truncate(m.SHA256))
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, m.Size+1))
	if err != nil {
		return fmt.Errorf("fwpkg: stored image: read: %w", err)
	}
	if n != m.Size {
		if n > m.Size {
			return fail(ErrIntegrity, "stored image is longer than %d bytes", m.Size)
		}
		return fail(ErrIntegrity, "stored image is %d bytes, want %d", n, m.Size)
	}
	want, _ := hex.DecodeString(m.SHA256)
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fail(ErrIntegrity, "stored image SHA-256 %x does not match %s", got, m.SHA256)
	}
	return nil
}
