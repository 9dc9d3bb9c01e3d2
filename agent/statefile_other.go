//go:build !linux

package agent

// stateFileSys is empty where stateFile.write is WriteFileAtomic.
type stateFileSys struct{}

func (s *stateFileSys) open(path string) error { return nil }

func (s *stateFileSys) close() error { return nil }

// write replaces the file's content with b.
func (f *stateFile) write(b []byte) error { return WriteFileAtomic(f.path, b, f.perm) }
