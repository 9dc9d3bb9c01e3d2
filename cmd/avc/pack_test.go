package main

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/avc-agent/avc/fwpkg"
)

func TestKeygenAndPack(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	var out, errOut bytes.Buffer
	if code := keygenCmd([]string{"-out", keyFile}, &out, &errOut); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errOut.String())
	}
	pub, err := fwpkg.ParsePublicKey(out.String())
	if err != nil {
		t.Fatalf("keygen printed %q: %v", out.String(), err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi.Mode(), err)
	}
	if code := keygenCmd([]string{"-out", keyFile}, &out, &errOut); code != 1 {
		t.Fatalf("keygen over an existing key: exit %d", code)
	}

	image := []byte("firmware for the CLI test")
	in := filepath.Join(dir, "image.bin")
	if err := os.WriteFile(in, image, 0o644); err != nil {
		t.Fatal(err)
	}
	pkgFile := filepath.Join(dir, "pkg.avc")
	out.Reset()
	args := []string{"-in", in, "-out", pkgFile, "-version", "1.2.3", "-name", "fw", "-hardware", "board", "-key", keyFile}
	if code := packCmd(args, &out, &errOut); code != 0 {
		t.Fatalf("pack: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "version 1.2.3") || !strings.Contains(out.String(), "signed by key "+fwpkg.KeyID(pub)) {
		t.Errorf("pack output %q", out.String())
	}
	pkg, err := os.ReadFile(pkgFile)
	if err != nil {
		t.Fatal(err)
	}
	v := fwpkg.NewVerifier(fwpkg.Policy{TrustedKeys: []ed25519.PublicKey{pub}, RequireSignature: true, Hardware: "board"})
	got, err := v.Write(pkg)
	if err == nil {
		err = v.Finish()
	}
	m, _ := v.Manifest()
	if err != nil || !bytes.Equal(got, image) || m.Name != "fw" || m.Version != "1.2.3" {
		t.Fatalf("package does not verify: %v, %+v", err, m)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestPackErrors(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "image.bin")
	os.WriteFile(in, []byte("img"), 0o644)
	empty := filepath.Join(dir, "empty.bin")
	os.WriteFile(empty, nil, 0o644)
	badKey := filepath.Join(dir, "bad.key")
	os.WriteFile(badKey, []byte("not a key"), 0o600)
	out := filepath.Join(dir, "out.avc")
	tests := []struct {
		name string
		args []string
		code int
	}{
		{name: "no flags", args: nil, code: 2},
		{name: "no version", args: []string{"-in", in, "-out", out}, code: 2},
		{name: "unknown flag", args: []string{"-in", in, "-out", out, "-version", "1", "-sign"}, code: 2},
		{name: "extra argument", args: []string{"-in", in, "-out", out, "-version", "1", "more"}, code: 2},
		{name: "missing image", args: []string{"-in", filepath.Join(dir, "nope"), "-out", out, "-version", "1"}, code: 1},
		{name: "empty image", args: []string{"-in", empty, "-out", out, "-version", "1"}, code: 1},
		{name: "bad key", args: []string{"-in", in, "-out", out, "-version", "1", "-key", badKey}, code: 1},
		{name: "missing key", args: []string{"-in", in, "-out", out, "-version", "1", "-key", filepath.Join(dir, "nope")}, code: 1},
		{name: "bad version", args: []string{"-in", in, "-out", out, "-version", "1\n"}, code: 1},
		{name: "unsigned", args: []string{"-in", in, "-out", out, "-version", "1"}, code: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := packCmd(tt.args, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, stderr.String())
			}
			if tt.code != 0 && stderr.Len() == 0 {
				t.Error("no message on stderr")
			}
		})
	}
	if code := keygenCmd(nil, new(bytes.Buffer), new(bytes.Buffer)); code != 2 {
		t.Errorf("keygen without -out: exit %d", code)
	}
}
