package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/avc-agent/avc/fwpkg"
)

// maxKeyFile bounds how much of a key file is read.
const maxKeyFile = 4096

// packCmd runs `avc pack`: it wraps a firmware image into an avc package
// (see package fwpkg), signed when -key is given. args are the arguments
// after "pack". It returns the exit status: 0 on success, 1 on failure,
// 2 on a usage error.
//
// Flags:
//
//	-in file        firmware image to package (required)
//	-out file       package to write (required); written to a temporary
//	                file and renamed, so it never holds half a package
//	-version v      firmware version (required)
//	-name n         firmware name
//	-hardware h     compatible hardware string
//	-key file       Ed25519 private key (hex seed, as written by avc keygen)
//
// On success it prints the manifest as written.
func packCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avc pack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "firmware image `file` (required)")
	out := fs.String("out", "", "package `file` to write (required)")
	version := fs.String("version", "", "firmware `version`, e.g. 1.2.3 (required)")
	name := fs.String("name", "", "firmware `name`")
	hardware := fs.String("hardware", "", "compatible hardware `string`")
	keyFile := fs.String("key", "", "Ed25519 private key `file` (hex seed); unsigned without it")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: avc pack -in image.bin -out pkg.avc -version 1.2.3 [-name n] [-hardware h] [-key keyfile]\n\nWraps a firmware image into a signed avc package.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "avc pack: unexpected arguments %q\n", fs.Args())
		return 2
	case *in == "" || *out == "" || *version == "":
		fmt.Fprintln(stderr, "avc pack: -in, -out and -version are required")
		fs.Usage()
		return 2
	}
	var key ed25519.PrivateKey
	if *keyFile != "" {
		var err error
		if key, err = readKey(*keyFile); err != nil {
			fmt.Fprintln(stderr, "avc pack:", err)
			return 1
		}
	}
	m, err := pack(*in, *out, fwpkg.Manifest{Name: *name, Version: *version, Hardware: *hardware}, key)
	if err != nil {
		fmt.Fprintln(stderr, "avc pack:", err)
		return 1
	}
	signed := "unsigned"
	if key != nil {
		signed = "signed by key " + m.KeyID
	}
	fmt.Fprintf(stdout, "%s: version %s, %d bytes, sha256 %s, %s\n", *out, m.Version, m.Size, m.SHA256, signed)
	return 0
}

// readKey reads a private key file written by keygen (hex or base64 seed
// or 64-byte key).
func readKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("key %s: larger than %d bytes", path, maxKeyFile)
	}
	key, err := fwpkg.ParsePrivateKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return key, nil
}

// pack writes the package for the image at in to out, through a temporary
// file in out's directory that is synced and renamed into place.
func pack(in, out string, m fwpkg.Manifest, key ed25519.PrivateKey) (fwpkg.Manifest, error) {
	img, err := os.Open(in)
	if err != nil {
		return m, err
	}
	defer img.Close()
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return m, err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	m, err = fwpkg.Build(tmp, m, img, key)
	if err != nil {
		return m, fmt.Errorf("%s: %w", in, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return m, err
	}
	if err := tmp.Sync(); err != nil {
		return m, err
	}
	if err := tmp.Close(); err != nil {
		return m, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return m, err
	}
	done = true
	return m, nil
}

// keygenCmd runs `avc keygen`: it makes an Ed25519 key pair for signing
// packages, writes the private key's seed in hex to the -out file (mode
// 0600, never over an existing file) and prints the public key in hex on
// stdout, the form a device's trusted-key setting takes. args are the
// arguments after "keygen". It returns the exit status: 0 on success, 1 on
// failure, 2 on a usage error.
func keygenCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("avc keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "private key `file` to create (required)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: avc keygen -out keyfile\n\nCreates an Ed25519 signing key; prints the public key in hex.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *out == "" {
		fmt.Fprintln(stderr, "avc keygen: -out is required and takes no arguments")
		fs.Usage()
		return 2
	}
	pub, priv, err := fwpkg.GenerateKey()
	if err != nil {
		fmt.Fprintln(stderr, "avc keygen:", err)
		return 1
	}
	if err := writeNewFile(*out, []byte(hex.EncodeToString(priv.Seed())+"\n"), 0o600); err != nil {
		fmt.Fprintln(stderr, "avc keygen:", err)
		return 1
	}
	fmt.Fprintln(stdout, hex.EncodeToString(pub))
	return 0
}

// writeNewFile creates path with mode perm and writes b, failing if the
// file exists; on a write failure it removes the file again.
func writeNewFile(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
