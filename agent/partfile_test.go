package agent

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestPartFileBuffering: writes to a partFile gather in its buffer; Sync,
// backgroundSync and Close each leave every byte written before them in
// the file, and a resume keeps exactly the bytes asked for.
func TestPartFileBuffering(t *testing.T) {
	name := filepath.Join(t.TempDir(), "image.part")
	onDisk := func() []byte {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p, err := openPart(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	write := func(n int) {
		b := bytes.Repeat([]byte{byte(len(want))}, n)
		if err := p.Write(b); err != nil {
			t.Fatal(err)
		}
		want = append(want, b...)
	}
	write(1000)
	if got := len(onDisk()); got != 0 {
		t.Fatalf("%d bytes on disk before any sync: the write was not buffered", got)
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk(), want) {
		t.Fatal("Sync left bytes in the buffer")
	}
	write(partBuffer + 5) // more than the buffer: some goes out by itself
	sync, _ := p.backgroundSync()
	write(10) // after the sync was asked for: not covered
	if err := sync.run(); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(); !bytes.Equal(got, want[:len(want)-10]) {
		t.Fatalf("backgroundSync covered %d bytes on disk, want %d", len(got), len(want)-10)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk(), want) {
		t.Fatal("Close left bytes in the buffer")
	}
	// Resume at 1000: the rest goes, new writes follow.
	if p, err = openPart(name, 1000); err != nil {
		t.Fatal(err)
	}
	want = want[:1000]
	write(3)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk(), want) {
		t.Fatal("resume did not keep exactly the first 1000 bytes")
	}
	if _, err := openPart(name, 5000); err == nil {
		t.Fatal("resume beyond the stored bytes succeeded")
	}
}

// TestPartFileFailures: a write that fails on the writer goroutine is
// reported by the next Sync (and every call after it), and a closed
// partFile refuses writes, syncs and a second Close instead of panicking.
func TestPartFileFailures(t *testing.T) {
	p, err := openPart(filepath.Join(t.TempDir(), "image.part"), 0)
	if err != nil {
		t.Fatal(err)
	}
	p.f.Close() // the writer's next write fails
	if err := p.Write(make([]byte, partBuffer+1)); err != nil {
		t.Fatalf("Write = %v before the writer ran: want the failure later", err)
	}
	if err := p.Sync(); err == nil {
		t.Fatal("Sync after a failed write succeeded")
	}
	if err := p.Write([]byte{1}); err == nil {
		t.Fatal("Write after a failed write succeeded")
	}
	if err := bgRun(p); err == nil {
		t.Fatal("backgroundSync after a failed write succeeded")
	}
	if err := p.Close(); err == nil {
		t.Fatal("Close after a failed write succeeded")
	}
	for name, err := range map[string]error{
		"Write": p.Write([]byte{1}), "Sync": p.Sync(), "backgroundSync": bgRun(p), "Close": p.Close(),
	} {
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s after Close = %v, want os.ErrClosed", name, err)
		}
	}
}

// bgRun asks p for a background sync and runs it.
func bgRun(p *partFile) error {
	s, _ := p.backgroundSync()
	return s.run()
}
