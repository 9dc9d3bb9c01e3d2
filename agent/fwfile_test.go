package agent_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/avc-agent/avc/agent"
)

func TestFileFirmware(t *testing.T) {
	dir := t.TempDir()
	img := image(100<<10, 20)
	sum := sha256.Sum256(img)
	pkgInfo := agent.FirmwarePackage{Version: "2.0.0", Size: int64(len(img)), SHA256: hex.EncodeToString(sum[:])}

	h := &agent.FileFirmware{Dir: dir}
	if err := h.StreamOpen("coap://x/fw", 0); err != nil {
		t.Fatal(err)
	}
	if err := h.StreamWrite(img[:40<<10]); err != nil {
		t.Fatal(err)
	}
	if err := h.Sync(); err != nil {
		t.Fatal(err)
	}
	// A restarted process resumes at a checkpoint below what the file
	// holds: the tail beyond it is dropped.
	h = &agent.FileFirmware{Dir: dir}
	if err := h.StreamOpen("coap://x/fw", 32<<10); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if err := h.StreamWrite(img[32<<10:]); err != nil {
		t.Fatal(err)
	}
	if err := h.StreamFinish(); err != nil {
		t.Fatal(err)
	}
	// More than the file holds cannot be resumed.
	h2 := &agent.FileFirmware{Dir: t.TempDir()}
	if err := h2.StreamOpen("u", 10); err == nil {
		t.Error("resume beyond the stored bytes succeeded")
	}

	if _, ok := h.Booted(pkgInfo); ok {
		t.Error("Booted says installed before any install")
	}
	// The image changed on disk after it was verified: refused (B53).
	stored := filepath.Join(dir, "image.bin")
	bad := append([]byte(nil), img...)
	bad[5] ^= 1
	if err := os.WriteFile(stored, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.PerformUpgrade(pkgInfo); !errors.Is(err, agent.ErrFirmwareIntegrity) {
		t.Errorf("tampered image: %v, want ErrFirmwareIntegrity", err)
	}
	if err := os.WriteFile(stored, img, 0o600); err != nil {
		t.Fatal(err)
	}
	h.InstallCmd = "false"
	if err := h.PerformUpgrade(pkgInfo); !errors.Is(err, agent.ErrFirmwareFailed) {
		t.Errorf("failing install command: %v, want ErrFirmwareFailed", err)
	}
	// The install command gets the image path.
	marker := filepath.Join(t.TempDir(), "got")
	script := filepath.Join(t.TempDir(), "install.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncp \"$1\" "+marker+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	h.InstallCmd = script
	if err := h.PerformUpgrade(pkgInfo); err != nil {
		t.Fatalf("install: %v", err)
	}
	if got, err := os.ReadFile(marker); err != nil || sha256.Sum256(got) != sum {
		t.Errorf("the install command did not get the image: %v", err)
	}
	if v, ok := h.Booted(pkgInfo); !ok || v != "2.0.0" {
		t.Errorf("Booted = %q, %v after the install", v, ok)
	}
	h.Reset()
	if _, err := os.Stat(stored); !os.IsNotExist(err) {
		t.Errorf("Reset left the image: %v", err)
	}
}
