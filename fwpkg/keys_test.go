package fwpkg

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

func TestParsePublicKey(t *testing.T) {
	hexKey := hex.EncodeToString(testPub)
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "hex", in: hexKey},
		{name: "upper-case hex", in: "  " + hex.EncodeToString(testPub) + "\n"},
		{name: "base64", in: base64.StdEncoding.EncodeToString(testPub)},
		{name: "raw base64", in: base64.RawStdEncoding.EncodeToString(testPub)},
		{name: "URL base64", in: base64.URLEncoding.EncodeToString(testPub)},
		{name: "empty", in: "", wantErr: true},
		{name: "31 bytes hex", in: hexKey[:62], wantErr: true},
		{name: "33 bytes hex", in: hexKey + "00", wantErr: true},
		{name: "odd hex", in: hexKey[:63], wantErr: true},
		{name: "64 bytes", in: hex.EncodeToString(testKey), wantErr: true},
		{name: "garbage", in: "not a key!", wantErr: true},
		{name: "very long", in: string(bytes.Repeat([]byte("a"), 10000)), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePublicKey(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && !got.Equal(testPub) {
				t.Fatalf("got %x", got)
			}
		})
	}
}

func TestParsePrivateKey(t *testing.T) {
	seed := testKey.Seed()
	bad := bytes.Clone(testKey)
	bad[40] ^= 1
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "hex seed", in: hex.EncodeToString(seed)},
		{name: "hex seed with newline", in: hex.EncodeToString(seed) + "\n"},
		{name: "base64 seed", in: base64.StdEncoding.EncodeToString(seed)},
		{name: "hex key", in: hex.EncodeToString(testKey)},
		{name: "base64 key", in: base64.StdEncoding.EncodeToString(testKey)},
		{name: "key with a wrong public half", in: hex.EncodeToString(bad), wantErr: true},
		{name: "16 bytes", in: hex.EncodeToString(seed[:16]), wantErr: true},
		{name: "empty", in: " ", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrivateKey(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && !got.Equal(testKey) {
				t.Fatalf("got %x", got)
			}
		})
	}
}

func TestGenerateKey(t *testing.T) {
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, []byte("m"), ed25519.Sign(priv, []byte("m"))) {
		t.Fatal("generated key pair does not verify")
	}
	if IsDevelopmentKey(pub) || len(KeyID(pub)) != 16 {
		t.Fatalf("KeyID %q", KeyID(pub))
	}
}

// TestDevelopmentKeys derives every denied public key from its published
// seed (B48), so the table cannot hold a typo.
func TestDevelopmentKeys(t *testing.T) {
	seeds := []string{
		"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", // RFC 8032 TEST 1
		"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", // RFC 8032 TEST 2
		"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", // RFC 8032 TEST 3
		"0000000000000000000000000000000000000000000000000000000000000000",
		"28c970c9a1a8a8bc77786862d2e76d0d430a2b57c87cfc37904bcbaac874cbd8", // MCUboot root-ed25519.pem
		"2655938e2d57b282dde27e4289216b46942cd515a83a7d891d1c2a3a6a70ee03", // MCUboot root-ed25519-2.pem
		"61e2417380d44c8a74ece8bd6f4cd9de6d3ff7c30b48b507257cd1624632ba8d", // MCUboot root-ed25519-unknown.pem
	}
	if len(seeds) != len(developmentKeys) {
		t.Fatalf("%d seeds for %d keys", len(seeds), len(developmentKeys))
	}
	for i, s := range seeds {
		pub := ed25519.NewKeyFromSeed(mustHex(s)).Public().(ed25519.PublicKey)
		if hex.EncodeToString(pub) != developmentKeys[i] || !IsDevelopmentKey(pub) {
			t.Errorf("seed %s: public key %x, table has %s", s, pub, developmentKeys[i])
		}
	}
	if IsDevelopmentKey(testPub) {
		t.Error("test key reported as a development key")
	}
}
