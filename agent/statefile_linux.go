package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cwd is AT_FDCWD as a system call argument: file names are resolved
// as the os package resolves them.
var cwd = uintptr(atFDCWD)

var atFDCWD = unix.AT_FDCWD

// stateFileSys makes stateFile.write allocate nothing: it calls the
// system with file names it made once, NUL-terminated (the syscall
// functions copy a name to the heap at every call), and keeps the
// directory open to sync the renames.
type stateFileSys struct {
	tmp         string
	pathz, tmpz []byte
	dir         *os.File
}

func (s *stateFileSys) open(path string) error {
	dir := filepath.Dir(path)
	if err := s.openDir(dir); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	// One temporary name, written over each time: a crash leaves at most
	// this one file behind, and the next write truncates it.
	s.tmp = filepath.Join(dir, "."+filepath.Base(path)+".tmp")
	s.pathz = append([]byte(path), 0)
	s.tmpz = append([]byte(s.tmp), 0)
	return nil
}

// openDir creates dir when missing and opens it.
func (s *stateFileSys) openDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if s.dir != nil {
		s.dir.Close()
	}
	s.dir = d
	return nil
}

func (s *stateFileSys) close() error { return s.dir.Close() }

// openTmp creates or truncates the temporary file.
func (s *stateFileSys) openTmp(perm os.FileMode) (int, unix.Errno) {
	r, _, errno := unix.Syscall6(unix.SYS_OPENAT, cwd, uintptr(unsafe.Pointer(&s.tmpz[0])),
		uintptr(unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC), uintptr(perm.Perm()), 0, 0)
	return int(r), errno
}

// write replaces the file's content with b: it writes the temporary
// file, syncs it, renames it over the file and syncs the directory.
func (f *stateFile) write(b []byte) error {
	s := &f.sys
	fd, errno := s.openTmp(f.perm)
	if errno == unix.ENOENT {
		// The directory went away since: make it again.
		if err := s.openDir(filepath.Dir(f.path)); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
		fd, errno = s.openTmp(f.perm)
	}
	if errno != 0 {
		return fmt.Errorf("write %s: %w", f.path, &os.PathError{Op: "open", Path: s.tmp, Err: errno})
	}
	err := writeSynced(fd, b, f.perm)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = &os.PathError{Op: "close", Path: s.tmp, Err: cerr}
	}
	if err != nil {
		unix.Unlink(s.tmp)
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	_, _, errno = unix.Syscall6(unix.SYS_RENAMEAT2, cwd, uintptr(unsafe.Pointer(&s.tmpz[0])),
		cwd, uintptr(unsafe.Pointer(&s.pathz[0])), 0, 0)
	if errno != 0 {
		unix.Unlink(s.tmp)
		return fmt.Errorf("write %s: %w", f.path, &os.LinkError{Op: "rename", Old: s.tmp, New: f.path, Err: errno})
	}
	s.dir.Sync() // best effort, as syncDir
	return nil
}

// writeSynced gives the open file fd the permissions perm (an existing
// temporary file keeps its own otherwise, and O_CREAT's are masked),
// writes b to it and syncs it.
func writeSynced(fd int, b []byte, perm os.FileMode) error {
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		return &os.SyscallError{Syscall: "fchmod", Err: err}
	}
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.SyscallError{Syscall: "write", Err: err}
		}
		b = b[n:]
	}
	if err := unix.Fsync(fd); err != nil {
		return &os.SyscallError{Syscall: "fsync", Err: err}
	}
	return nil
}
