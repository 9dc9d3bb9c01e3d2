package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// WriteFileAtomic replaces the file at path with data so that, whatever
// happens (power cut included), the file holds either its old or its new
// content: it writes a temporary file in the same directory, syncs it,
// renames it over path and syncs the directory. Drivers use it for state.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	pattern := "." + filepath.Base(path) + ".tmp*"
	f, err := os.CreateTemp(dir, pattern)
	if errors.Is(err, fs.ErrNotExist) {
		// The directory first, only when missing: a download stores its
		// state at every checkpoint.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		f, err = os.CreateTemp(dir, pattern)
	}
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
// pull blocks per system call, one checkpoint interval.
const partBuffer = 64 << 10

// partFile is a download being written (image.part, package.part): writes
// gather in a buffer so that a 1 KiB block of a pull costs no system
// call, and full buffers are written by a goroutine of the partFile's
// own, so the engine goes on verifying the next bytes meanwhile. Sync and
// backgroundSync cover everything written before them: they hand the
// buffer over and wait until the writer has put it in the file. Bytes not
// yet written are lost in a crash like bytes not yet synced, which the
// checkpoints already allow for. A failed write is reported by the next
// Write, Sync or Close.
type partFile struct {
	f     *os.File
	buf   []byte      // being filled
	free  chan []byte // buffers the writer is done with
	queue chan []byte // full buffers, for the writer
	done  chan struct{}

	closed bool // by Close: Write and Close fail

	mu      sync.Mutex
	cond    sync.Cond
	queued  int64 // bytes handed to the writer
	written int64 // bytes the writer is done with
	err     error // the first failed write
}

// openPart opens name as openResumable does, for buffered writes.
func openPart(name string, offset int64) (*partFile, error) {
	f, err := openResumable(name, offset)
	if err != nil {
		return nil, err
	}
	p := &partFile{f: f, buf: make([]byte, 0, partBuffer), free: make(chan []byte, 1),
		queue: make(chan []byte, 1), done: make(chan struct{})}
	p.cond.L = &p.mu
	p.free <- make([]byte, 0, partBuffer)
	go p.write()
	return p, nil
}

// write is the writer goroutine.
func (p *partFile) write() {
	defer close(p.done)
	for b := range p.queue {
		p.mu.Lock()
		failed := p.err != nil
		p.mu.Unlock()
		var err error
		if !failed {
			_, err = p.f.Write(b)
		}
		p.mu.Lock()
		if err != nil && p.err == nil {
			p.err = err
		}
		p.written += int64(len(b))
		p.cond.Broadcast()
		p.mu.Unlock()
		p.free <- b[:0]
	}
}

// failure returns the first failed write.
func (p *partFile) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Write appends b.
func (p *partFile) Write(b []byte) error {
	if p.closed {
		return os.ErrClosed
	}
	if err := p.failure(); err != nil {
		return err
	}
	for len(b) > 0 {
		n := copy(p.buf[len(p.buf):cap(p.buf)], b)
		p.buf, b = p.buf[:len(p.buf)+n], b[n:]
		if len(p.buf) == cap(p.buf) {
			p.handOver()
		}
	}
	return nil
}

// handOver gives the buffer to the writer and takes the other one.
func (p *partFile) handOver() {
	if len(p.buf) == 0 {
		return
	}
	p.mu.Lock()
	p.queued += int64(len(p.buf))
	p.mu.Unlock()
	p.queue <- p.buf
	p.buf = <-p.free
}

// flush hands the buffer over and returns how many bytes the writer must
// be done with for everything written so far to be in the file.
func (p *partFile) flush() int64 {
	p.handOver()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queued
}

// wait waits until the writer is done with n bytes, and returns the first
// failed write.
func (p *partFile) wait(n int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.written < n {
		p.cond.Wait()
	}
	return p.err
}

// Sync writes everything out and syncs the file.
func (p *partFile) Sync() error {
	if p.closed {
		return os.ErrClosed
	}
	if err := p.wait(p.flush()); err != nil {
		return err
	}
	return p.f.Sync()
}

// backgroundSync hands the buffer over now and returns the sync to run,
// from any goroutine, while writes go on (syncTo the bytes written so
// far).
func (p *partFile) backgroundSync() (bgSync, bool) {
	if p.closed {
		return bgSync{f: p, n: -1}, true
	}
	return bgSync{f: p, n: p.flush()}, true
}

// syncTo waits for the writer to be done with n bytes, then syncs the
// file; n < 0 stands for a sync asked for after Close.
func (p *partFile) syncTo(n int64) error {
	if n < 0 {
		return os.ErrClosed
	}
	if err := p.wait(n); err != nil {
		return err
	}
	return p.f.Sync()
}

// Close writes everything out, stops the writer and closes the file.
func (p *partFile) Close() error {
	if p.closed {
		return os.ErrClosed
	}
	p.closed = true
	err := p.wait(p.flush())
	close(p.queue)
	<-p.done
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	return err
}
