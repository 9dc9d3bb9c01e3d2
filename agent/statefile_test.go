package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestStateFile checks that a stateFile replaces its file's content
// whole, with the file's permissions, leaving no temporary file, again
// after its directory went away, and that it allocates nothing per write
// where it calls the system itself.
func TestStateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, StateFile)
	f, err := openStateFile(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A temporary file left by a crash, with other permissions.
	if err := os.WriteFile(filepath.Join(dir, "."+StateFile+".tmp"), []byte("left over"), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(want []byte) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read back %q, %v; want %q", got, err, want)
		}
		info, err := os.Stat(path)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v, %v; want 0600", info.Mode().Perm(), err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Fatalf("files beside the state: %v", entries)
		}
	}
	long, short := []byte(strings.Repeat("long state ", 100)), []byte("short")
	for _, b := range [][]byte{long, short, long} {
		if err := f.write(b); err != nil {
			t.Fatal(err)
		}
		check(b)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := f.write(short); err != nil {
		t.Fatalf("write after the directory went away: %v", err)
	}
	check(short)
	if runtime.GOOS == "linux" {
		if n := testing.AllocsPerRun(10, func() { f.write(long) }); n != 0 {
			t.Errorf("a write allocates %v objects, want 0", n)
		}
	}
}

// TestStateFileFails checks that a write that cannot replace the file
// says so and leaves the file and its directory as they were.
func TestStateFileFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, StateFile)
	// A directory in the file's place: the rename over it fails.
	if err := os.MkdirAll(filepath.Join(path, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := openStateFile(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = f.write([]byte("new"))
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("write over a directory = %v, want an error naming %s", err, path)
	}
	if info, err := os.Stat(filepath.Join(path, "x")); err != nil || !info.IsDir() {
		t.Fatalf("the directory in the way changed: %v, %v", info, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("files left beside it: %v", entries)
	}
}
