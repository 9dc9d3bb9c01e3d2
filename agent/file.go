package agent

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces the file at path with data so that, whatever
// happens (power cut included), the file holds either its old or its new
// content: it writes a temporary file in the same directory, syncs it,
// renames it over path and syncs the directory. Drivers use it for state.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable (best effort: some file systems
// cannot sync a directory).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	d.Sync()
	return d.Close()
}

// openResumable opens (creating) the partial download at name to append
// after its first offset bytes, dropping anything after them; a file that
// holds fewer bytes cannot resume (errFirmwareOpen).
func openResumable(name string, offset int64) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() < offset {
		err = fmt.Errorf("%w: %d bytes stored, resume wants %d", errFirmwareOpen, fi.Size(), offset)
	}
	if err == nil {
		err = f.Truncate(offset)
	}
	if err == nil {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// partBuffer is how many bytes a partFile gathers before writing: a few
// pull blocks per system call, half a checkpoint interval.
const partBuffer = 32 << 10

// partFile is a download being written (image.part, package.part): writes
// gather in a buffer so that a 1 KiB block of a pull costs no system
// call. Sync and backgroundSync write the buffer out first, so what they
// make durable is everything written before them. Bytes still in the
// buffer are lost in a crash like bytes not yet synced, which the
// checkpoints already allow for.
type partFile struct {
	f *os.File
	w *bufio.Writer
}

// openPart opens name as openResumable does, for buffered writes.
func openPart(name string, offset int64) (*partFile, error) {
	f, err := openResumable(name, offset)
	if err != nil {
		return nil, err
	}
	return &partFile{f: f, w: bufio.NewWriterSize(f, partBuffer)}, nil
}

// Write appends b.
func (p *partFile) Write(b []byte) error {
	_, err := p.w.Write(b)
	return err
}

// Sync writes the buffer out and syncs the file.
func (p *partFile) Sync() error {
	if err := p.w.Flush(); err != nil {
		return err
	}
	return p.f.Sync()
}

// backgroundSync writes the buffer out now and returns the sync to run,
// from any goroutine, while writes go on.
func (p *partFile) backgroundSync() func() error {
	if err := p.w.Flush(); err != nil {
		return func() error { return err }
	}
	return p.f.Sync
}

// Close writes the buffer out and closes the file.
func (p *partFile) Close() error {
	err := p.w.Flush()
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	return err
}
