package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
)

// FileSoftware is the default SoftwareHandler of the native driver: it
// keeps each Software Management instance's files under Dir/<instance>/
// and installs by recording the package; it runs nothing.
//
//	Dir/<inst>/package.part  the download in progress (resumable)
//	Dir/<inst>/package.bin   the complete package (renamed from package.part)
//	Dir/<inst>/app.bin       the installed software (moved from package.bin)
//	Dir/<inst>/installed     the installed package, as JSON
//	Dir/<inst>/active        present while the software is activated
//
// Install verifies package.bin against the package's length and SHA-256
// again (the file may have changed since it was written). A host that
// runs applications watches these files, or wraps FileSoftware and acts
// in Install, Activate and Deactivate.
type FileSoftware struct {
	// Dir holds one directory per instance; the native driver uses
	// AVC_STATE_DIR/software.
	Dir string
	// Logger receives what the handler did; nil discards.
	Logger *slog.Logger

	open map[uint16]*partFile
}

func (h *FileSoftware) path(inst uint16, name string) string {
	return filepath.Join(h.Dir, strconv.Itoa(int(inst)), name)
}

func (h *FileSoftware) log(msg string, args ...any) {
	if h.Logger != nil {
		h.Logger.Info(msg, args...)
	}
}

// StreamOpen implements SoftwareHandler.
func (h *FileSoftware) StreamOpen(inst uint16, uri string, offset int64) error {
	h.close(inst)
	if err := os.MkdirAll(filepath.Dir(h.path(inst, "x")), 0o700); err != nil {
		return fmt.Errorf("software storage: %w", err)
	}
	f, err := openPart(h.path(inst, "package.part"), offset)
	if err != nil {
		return fmt.Errorf("software storage: %w", err)
	}
	if h.open == nil {
		h.open = map[uint16]*partFile{}
	}
	h.open[inst] = f
	return nil
}

// StreamWrite implements SoftwareHandler.
func (h *FileSoftware) StreamWrite(inst uint16, p []byte) error {
	f := h.open[inst]
	if f == nil {
		return errors.New("software storage: write without an open stream")
	}
	if err := f.Write(p); err != nil {
		return fmt.Errorf("software storage: %w", err)
	}
	return nil
}

// Sync implements SoftwareSyncer.
func (h *FileSoftware) Sync(inst uint16) error {
	if f := h.open[inst]; f != nil {
		return f.Sync()
	}
	return nil
}

// backgroundSync is swStore's backgroundSyncer for inst: an fsync of the
// open package file.
func (h *FileSoftware) backgroundSync(inst uint16) (bgSync, bool) {
	if f := h.open[inst]; f != nil {
		return f.backgroundSync()
	}
	return bgSync{}, false
}

// StreamFinish implements SoftwareHandler.
func (h *FileSoftware) StreamFinish(inst uint16) error {
	f := h.open[inst]
	if f == nil {
		return errors.New("software storage: finish without an open stream")
	}
	delete(h.open, inst)
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(h.path(inst, "package.part"), h.path(inst, "package.bin"))
	}
	if err == nil {
		err = syncDir(filepath.Dir(h.path(inst, "x")))
	}
	if err != nil {
		return fmt.Errorf("software storage: %w", err)
	}
	return nil
}

// Reset implements SoftwareHandler: the package goes, installed software
// stays.
func (h *FileSoftware) Reset(inst uint16) {
	h.close(inst)
	os.Remove(h.path(inst, "package.part"))
	os.Remove(h.path(inst, "package.bin"))
}

func (h *FileSoftware) close(inst uint16) {
	if f := h.open[inst]; f != nil {
		f.Close()
		delete(h.open, inst)
	}
}

// Install implements SoftwareHandler: package.bin becomes app.bin and
// the package is recorded in installed.
func (h *FileSoftware) Install(pkg SoftwarePackage) error {
	bin := h.path(pkg.Instance, "package.bin")
	if err := verifyImageFile(bin, FirmwarePackage{Size: pkg.Size, SHA256: pkg.SHA256}); err != nil {
		return err
	}
	rec, err := json.Marshal(pkg)
	if err != nil {
		return fmt.Errorf("software install: %w", err)
	}
	if err := os.Rename(bin, h.path(pkg.Instance, "app.bin")); err != nil {
		return fmt.Errorf("software install: %w", err)
	}
	if err := WriteFileAtomic(h.path(pkg.Instance, "installed"), rec, 0o600); err != nil {
		return fmt.Errorf("software install: record: %w", err)
	}
	os.Remove(h.path(pkg.Instance, "active"))
	h.log("software installed", "instance", pkg.Instance, "name", pkg.Name, "version", pkg.Version)
	return nil
}

// Uninstall implements SoftwareHandler. For an update it changes
// nothing: the software stays until the next Install replaces it.
func (h *FileSoftware) Uninstall(pkg SoftwarePackage, forUpdate bool) error {
	if forUpdate {
		return nil
	}
	for _, name := range []string{"active", "installed", "app.bin"} {
		if err := os.Remove(h.path(pkg.Instance, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("software uninstall: %w", err)
		}
	}
	h.log("software uninstalled", "instance", pkg.Instance, "name", pkg.Name, "version", pkg.Version)
	return nil
}

// Activate implements SoftwareHandler: it creates the active file.
func (h *FileSoftware) Activate(pkg SoftwarePackage) error {
	if err := WriteFileAtomic(h.path(pkg.Instance, "active"), nil, 0o600); err != nil {
		return fmt.Errorf("software activate: %w", err)
	}
	h.log("software activated", "instance", pkg.Instance, "name", pkg.Name)
	return nil
}

// Deactivate implements SoftwareHandler: it removes the active file.
func (h *FileSoftware) Deactivate(pkg SoftwarePackage) error {
	if err := os.Remove(h.path(pkg.Instance, "active")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("software deactivate: %w", err)
	}
	h.log("software deactivated", "instance", pkg.Instance, "name", pkg.Name)
	return nil
}
