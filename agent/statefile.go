package agent

import "os"

// A stateFile replaces one file atomically, again and again, with the
// guarantee of WriteFileAtomic (the file holds its old or its new
// content, whatever happens), for the native driver's state: a download
// stores the state at every checkpoint. Where the platform allows it
// (statefile_linux.go), a write allocates nothing, so that a pull of any
// size leaves the Go heap alone. A stateFile is used from one goroutine.
type stateFile struct {
	path string
	perm os.FileMode
	sys  stateFileSys
}

// openStateFile returns the stateFile for path, creating its directory.
func openStateFile(path string, perm os.FileMode) (*stateFile, error) {
	f := &stateFile{path: path, perm: perm}
	if err := f.sys.open(path); err != nil {
		return nil, err
	}
	return f, nil
}

// Close releases what the stateFile keeps open.
func (f *stateFile) Close() error { return f.sys.close() }
