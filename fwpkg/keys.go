package fwpkg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ParsePublicKey parses an Ed25519 public key written as hex or base64
// (standard or URL alphabet, padded or not) of its 32 bytes. Surrounding
// white space is ignored.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := decodeKey(s, ed25519.PublicKeySize)
	if err != nil {
		return nil, fmt.Errorf("fwpkg: public key: %w", err)
	}
	return ed25519.PublicKey(b), nil
}

// ParsePrivateKey parses an Ed25519 private key written as hex or base64
// of either its 32-byte seed or the 64-byte key (seed followed by public
// key, as crypto/ed25519 stores it). For a 64-byte key the public half must
// match the seed. Surrounding white space is ignored.
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	b, err := decodeKey(s, ed25519.SeedSize, ed25519.PrivateKeySize)
	if err != nil {
		return nil, fmt.Errorf("fwpkg: private key: %w", err)
	}
	key := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
	if len(b) == ed25519.PrivateKeySize && !bytes.Equal(b[ed25519.SeedSize:], key[ed25519.SeedSize:]) {
		return nil, errors.New("fwpkg: private key: public half does not match the seed")
	}
	return key, nil
}

// GenerateKey returns a new Ed25519 key pair from crypto/rand.
func GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("fwpkg: generate key: %w", err)
	}
	return pub, priv, nil
}

// KeyID returns the key identifier Build writes into the manifest's key_id
// for a package signed by pub's private key: the first 8 bytes of the
// SHA-256 of the public key, in lowercase hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// decodeKey decodes s as hex or base64 and requires one of the lengths.
func decodeKey(s string, lengths ...int) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty")
	}
	if len(s) > 256 {
		return nil, errors.New("too long")
	}
	ok := func(b []byte) bool {
		for _, n := range lengths {
			if len(b) == n {
				return true
			}
		}
		return false
	}
	// Hex first: a hex string can also be valid base64, never of the
	// same length in bytes.
	got := -1
	if b, err := hex.DecodeString(s); err == nil {
		if ok(b) {
			return b, nil
		}
		got = len(b)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if ok(b) {
				return b, nil
			}
			got = len(b)
		}
	}
	if got < 0 {
		return nil, errors.New("neither hex nor base64")
	}
	return nil, fmt.Errorf("%d bytes, want %v", got, lengths)
}

// developmentKeys are Ed25519 public keys whose private keys are published:
// a device must never trust them (reliability B48). Each line names where
// the private key is printed.
var developmentKeys = [...]string{
	"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", // RFC 8032 §7.1 TEST 1
	"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", // RFC 8032 §7.1 TEST 2
	"fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", // RFC 8032 §7.1 TEST 3
	"3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29", // all-zero seed
	"d4b31ba49a3add3f825d10ca7f31b50b0de87f37ccc49f1a403a5c1320ffb4e0", // MCUboot root-ed25519.pem
	"c3bcdf30764e1f5db40d892e0d0eab049c30064e79a8edb6f7792e469a26da77", // MCUboot root-ed25519-2.pem
	"d239ead53588b0f5b2433e4b2bf276190b8687915cb01330cd40d0c736671195", // MCUboot root-ed25519-unknown.pem
}

// IsDevelopmentKey reports whether pub is one of the Ed25519 keys whose
// private halves are public (RFC 8032 test vectors, the all-zero seed,
// MCUboot's sample keys). A Verifier refuses packages signed by them unless
// Policy.AllowDevelopmentKeys is set.
func IsDevelopmentKey(pub ed25519.PublicKey) bool {
	h := hex.EncodeToString(pub)
	for _, k := range developmentKeys {
		if h == k {
			return true
		}
	}
	return false
}
