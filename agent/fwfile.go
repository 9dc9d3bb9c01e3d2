package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// FileFirmware is the default FirmwareHandler of the native driver: it
// stores images as files under Dir and installs them with InstallCmd.
//
//	Dir/image.part   the download in progress (resumable)
//	Dir/image.bin    the complete image (renamed from image.part)
//	Dir/installed    the version of the last image installed
//
// PerformUpgrade verifies image.bin against the package's length and
// SHA-256 again (the file may have changed since it was written), then runs
// InstallCmd with the image path as its one argument; without InstallCmd it
// only records the version, and the engine restarts as if the device had
// rebooted into the new image (a simulated install, for demos and tests).
type FileFirmware struct {
	Dir string
	// InstallCmd is a program and its arguments, split on spaces; the
	// image path is appended. It is not run through a shell.
	InstallCmd string
	// Logger receives the install command's output; nil discards.
	Logger *slog.Logger

	f *partFile
}

func (h *FileFirmware) path(name string) string { return filepath.Join(h.Dir, name) }

// StreamOpen implements FirmwareHandler.
func (h *FileFirmware) StreamOpen(uri string, offset int64) error {
	h.close()
	if err := os.MkdirAll(h.Dir, 0o700); err != nil {
		return fmt.Errorf("firmware storage: %w", err)
	}
	f, err := openPart(h.path("image.part"), offset)
	if err != nil {
		return fmt.Errorf("firmware storage: %w", err)
	}
	h.f = f
	return nil
}

// StreamWrite implements FirmwareHandler.
func (h *FileFirmware) StreamWrite(p []byte) error {
	if h.f == nil {
		return errors.New("firmware storage: write without an open stream")
	}
	if err := h.f.Write(p); err != nil {
		return fmt.Errorf("firmware storage: %w", err)
	}
	return nil
}

// Sync implements FirmwareSyncer.
func (h *FileFirmware) Sync() error {
	if h.f == nil {
		return nil
	}
	return h.f.Sync()
}

// backgroundSync implements backgroundSyncer: an fsync of the open image
// file, which the native driver runs while the download goes on.
func (h *FileFirmware) backgroundSync() (bgSync, bool) {
	if h.f == nil {
		return bgSync{}, false
	}
	return h.f.backgroundSync()
}

// StreamFinish implements FirmwareHandler.
func (h *FileFirmware) StreamFinish() error {
	if h.f == nil {
		return errors.New("firmware storage: finish without an open stream")
	}
	err := h.f.Sync()
	if cerr := h.f.Close(); err == nil {
		err = cerr
	}
	h.f = nil
	if err == nil {
		err = os.Rename(h.path("image.part"), h.path("image.bin"))
	}
	if err == nil {
		err = syncDir(h.Dir)
	}
	if err != nil {
		return fmt.Errorf("firmware storage: %w", err)
	}
	return nil
}

// Reset implements FirmwareHandler.
func (h *FileFirmware) Reset() {
	h.close()
	os.Remove(h.path("image.part"))
	os.Remove(h.path("image.bin"))
}

func (h *FileFirmware) close() {
	if h.f != nil {
		h.f.Close()
		h.f = nil
	}
}

// PerformUpgrade implements FirmwareHandler.
func (h *FileFirmware) PerformUpgrade(pkg FirmwarePackage) error {
	img := h.path("image.bin")
	if err := verifyImageFile(img, pkg); err != nil {
		return err
	}
	if h.InstallCmd != "" {
		args := strings.Fields(h.InstallCmd)
		out, err := exec.Command(args[0], append(args[1:], img)...).CombinedOutput()
		if h.Logger != nil {
			h.Logger.Info("firmware install command", "cmd", h.InstallCmd, "output", string(out), "err", err)
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrFirmwareFailed, h.InstallCmd, err)
		}
	}
	if err := WriteFileAtomic(h.path("installed"), []byte(pkg.Version), 0o600); err != nil {
		return fmt.Errorf("%w: record the install: %v", ErrFirmwareFailed, err)
	}
	return nil
}

// Booted implements FirmwareHandler: the package is installed when the
// version recorded by PerformUpgrade is the package's.
func (h *FileFirmware) Booted(pkg FirmwarePackage) (string, bool) {
	b, err := os.ReadFile(h.path("installed"))
	if err != nil {
		return "", false
	}
	v := string(b)
	return v, v == pkg.Version && v != ""
}

// verifyImageFile checks the stored image against pkg's length and hash.
func verifyImageFile(name string, pkg FirmwarePackage) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrFirmwareIntegrity, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("%w: read image: %v", ErrFirmwareIntegrity, err)
	}
	if n != pkg.Size || hex.EncodeToString(h.Sum(nil)) != pkg.SHA256 {
		return fmt.Errorf("%w: stored image changed (%d bytes)", ErrFirmwareIntegrity, n)
	}
	return nil
}
