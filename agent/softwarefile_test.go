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

func TestFileSoftware(t *testing.T) {
	dir := t.TempDir()
	img := image(50<<10, 40)
	sum := sha256.Sum256(img)
	p := agent.SoftwarePackage{Instance: 3, Name: "app", Version: "1.0.0", Size: int64(len(img)), SHA256: hex.EncodeToString(sum[:])}
	file := func(name string) string { return filepath.Join(dir, "3", name) }
	exists := func(name string) bool { _, err := os.Stat(file(name)); return err == nil }

	h := &agent.FileSoftware{Dir: dir}
	if err := h.StreamOpen(3, "coap://x/app", 0); err != nil {
		t.Fatal(err)
	}
	if err := h.StreamWrite(3, img[:20<<10]); err != nil {
		t.Fatal(err)
	}
	if err := h.Sync(3); err != nil {
		t.Fatal(err)
	}
	// A restarted process resumes at a checkpoint below what the file
	// holds; another instance has its own files.
	h = &agent.FileSoftware{Dir: dir}
	if err := h.StreamOpen(3, "coap://x/app", 16<<10); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if err := h.StreamOpen(4, "", 10); err == nil {
		t.Error("instance 4 resumed beyond its stored bytes")
	}
	if err := h.StreamWrite(3, img[16<<10:]); err != nil {
		t.Fatal(err)
	}
	if err := h.StreamFinish(3); err != nil {
		t.Fatal(err)
	}
	if err := h.StreamWrite(3, img); err == nil {
		t.Error("write after finish succeeded")
	}

	bad := p
	bad.SHA256 = hex.EncodeToString(make([]byte, 32))
	if err := h.Install(bad); !errors.Is(err, agent.ErrFirmwareIntegrity) {
		t.Errorf("install of a package with another hash: %v", err)
	}
	if err := h.Install(p); err != nil {
		t.Fatal(err)
	}
	if !exists("app.bin") || !exists("installed") || exists("package.bin") {
		t.Error("install did not move the package into place and record it")
	}
	h.Reset(3) // a new download: the installed software stays
	if !exists("app.bin") {
		t.Error("Reset removed the installed software")
	}
	for _, step := range []struct {
		name   string
		do     func() error
		active bool
	}{
		{"activate", func() error { return h.Activate(p) }, true},
		{"deactivate", func() error { return h.Deactivate(p) }, false},
		{"deactivate again", func() error { return h.Deactivate(p) }, false},
		{"activate again", func() error { return h.Activate(p) }, true},
		{"uninstall for update", func() error { return h.Uninstall(p, true) }, true},
		{"uninstall", func() error { return h.Uninstall(p, false) }, false},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if exists("active") != step.active {
			t.Errorf("after %s: active file %v, want %v", step.name, exists("active"), step.active)
		}
	}
	if exists("app.bin") || exists("installed") {
		t.Error("uninstall left the software in place")
	}
}
