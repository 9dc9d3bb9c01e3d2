package agent

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/avc-agent/avc/fwpkg"
)

// syncStore is a package store in memory whose syncs may run elsewhere
// (backgroundSyncer): a sync marks durable what was written before it was
// asked for, when it runs.
type syncStore struct {
	data    []byte
	durable int
	fail    error // what the next sync returns
}

func (s *syncStore) StreamOpen(_ string, off int64) error { s.data = s.data[:off]; return nil }
func (s *syncStore) StreamWrite(p []byte) error           { s.data = append(s.data, p...); return nil }
func (s *syncStore) StreamFinish() error                  { s.durable = len(s.data); return nil }
func (s *syncStore) Reset()                               { s.data, s.durable = nil, 0 }
func (s *syncStore) PerformUpgrade(FirmwarePackage) error { return nil }
func (s *syncStore) Booted(FirmwarePackage) (string, bool) {
	return "", false
}
func (s *syncStore) Sync() error                    { s.durable = len(s.data); return nil }
func (s *syncStore) backgroundSync() (bgSync, bool) { return bgSync{f: s, n: int64(len(s.data))}, true }
func (s *syncStore) syncTo(n int64) error {
	if s.fail != nil {
		return s.fail
	}
	s.durable = max(s.durable, int(n))
	return nil
}

// bgSyncEngine returns an engine whose firmware store syncs in the
// background, with a push transfer begun, and an unsigned package of n
// image bytes.
func bgSyncEngine(t *testing.T, n int) (*Engine, *syncStore, []byte) {
	t.Helper()
	st := &syncStore{}
	cfg := Config{ServerURI: "coap://127.0.0.1:5683", Endpoint: "bg", Firmware: FirmwareConfig{Handler: st}}
	cfg.bgSync = true
	e, err := NewEngine(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	img := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 1))
	for i := range img {
		img[i] = byte(r.Uint32())
	}
	var pkg bytes.Buffer
	if _, err := fwpkg.Build(&pkg, fwpkg.Manifest{Name: "bg", Version: "2"}, bytes.NewReader(img), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.fw.dl.begin(time.Unix(0, 0), "", true); err != nil {
		t.Fatal(err)
	}
	return e, st, pkg.Bytes()
}

// feed gives the download package bytes [from, to) in 1 KiB blocks, one
// every 10 µs (a fast link: checkpoints every 64 KiB).
func feed(t *testing.T, e *Engine, pkg []byte, from, to int) {
	t.Helper()
	for off := from; off < to; off += 1024 {
		now := time.Unix(0, 0).Add(time.Duration(off/1024) * 10 * time.Microsecond)
		if r, err := e.fw.dl.data(now, pkg[off:min(off+1024, to)]); err != nil {
			t.Fatalf("data at %d: %v (%v)", off, err, r)
		}
	}
}

// TestBackgroundSyncCheckpoint: with a driver that runs syncs off the
// engine's goroutine, a checkpoint asks for one sync and persists its
// position only when that sync reports success; no second sync starts
// while one is in flight, and the position never runs ahead of what the
// sync made durable.
func TestBackgroundSyncCheckpoint(t *testing.T) {
	e, st, pkg := bgSyncEngine(t, 300<<10)
	feed(t, e, pkg, 0, 64<<10)
	job, ok := e.pollSync()
	if !ok {
		t.Fatal("no sync asked for after 64 KiB")
	}
	if _, more := e.pollSync(); more {
		t.Fatal("two syncs for one checkpoint")
	}
	if got := e.fwState().Offset; got != 0 {
		t.Fatalf("offset %d persisted before its sync ran", got)
	}
	// The transfer goes on while the sync is in flight, and asks for no
	// other.
	feed(t, e, pkg, 64<<10, 160<<10)
	if _, more := e.pollSync(); more {
		t.Fatal("a second sync started while one was in flight")
	}
	stores := 0
	for _, ev := range e.events {
		if ev.Kind == EventStore {
			stores++
		}
	}
	e.syncDone(time.Unix(0, 0).Add(2*time.Millisecond), job.id, job.run())
	off := e.fwState().Offset
	if off != 64<<10 {
		t.Fatalf("offset after the sync = %d, want %d", off, 64<<10)
	}
	v := fwpkg.NewVerifier(e.fw.policy())
	if err := v.UnmarshalBinary(e.fwState().Verifier); err != nil || v.PackageOffset() != off {
		t.Fatalf("persisted verifier: %v at %d, want offset %d", err, v.PackageOffset(), off)
	}
	if st.durable < int(v.ImageOffset()) {
		t.Fatalf("checkpoint at image byte %d, durable only %d", v.ImageOffset(), st.durable)
	}
	n := 0
	for _, ev := range e.events {
		if ev.Kind == EventStore {
			n++
		}
	}
	if n != stores+1 {
		t.Fatalf("%d state stores after the sync, want one more than %d", n, stores)
	}
	// The next data starts the checkpoint that waited for the sync.
	feed(t, e, pkg, 160<<10, 161<<10)
	job, ok = e.pollSync()
	if !ok {
		t.Fatal("the postponed checkpoint did not start")
	}
	// A result for an unknown job, or twice for one, changes nothing.
	e.syncDone(time.Unix(0, 0).Add(3*time.Millisecond), job.id+7, nil)
	e.syncDone(time.Unix(0, 0).Add(3*time.Millisecond), 0, nil)
	if got := e.fwState().Offset; got != off {
		t.Fatalf("offset %d after stray results, want %d", got, off)
	}
	e.syncDone(time.Unix(0, 0).Add(3*time.Millisecond), job.id, job.run())
	if got := e.fwState().Offset; got != 161<<10 {
		t.Fatalf("offset %d, want %d", got, 161<<10)
	}
	e.syncDone(time.Unix(0, 0).Add(3*time.Millisecond), job.id, nil)
	if got := e.fwState().Offset; got != 161<<10 {
		t.Fatalf("a repeated result moved the offset to %d", got)
	}
}

// TestBackgroundSyncFailure: a sync that fails fails the transfer as a
// failed synchronous checkpoint does (Update Result 2), and persists no
// position.
func TestBackgroundSyncFailure(t *testing.T) {
	e, st, pkg := bgSyncEngine(t, 200<<10)
	feed(t, e, pkg, 0, 64<<10)
	job, ok := e.pollSync()
	if !ok {
		t.Fatal("no sync asked for")
	}
	st.fail = errors.New("EIO")
	e.syncDone(time.Unix(0, 0).Add(2*time.Millisecond), job.id, job.run())
	fw := e.fwState()
	if fw.State != FirmwareIdle || fw.Result != ResultNotEnoughSpace {
		t.Fatalf("after a failed sync: state %v result %v, want Idle / %v", fw.State, fw.Result, ResultNotEnoughSpace)
	}
	if fw.Offset != 0 {
		t.Fatalf("offset %d persisted by a failed sync", fw.Offset)
	}
}

// TestBackgroundSyncStale: the result of a sync asked for before the
// transfer was stopped and resumed, restarted or begun again is ignored:
// it may describe bytes the resumed stream has dropped.
func TestBackgroundSyncStale(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset func(e *Engine)
	}{
		{"stop", func(e *Engine) { e.fw.dl.stop(time.Unix(0, 0).Add(2 * time.Millisecond)) }},
		{"restart", func(e *Engine) {
			if err := e.fw.dl.restartStream(time.Unix(0, 0).Add(2 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}},
		{"synchronous checkpoint", func(e *Engine) {
			if err := e.fw.dl.checkpoint(time.Unix(0, 0).Add(2 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _, pkg := bgSyncEngine(t, 200<<10)
			feed(t, e, pkg, 0, 64<<10)
			job, ok := e.pollSync()
			if !ok {
				t.Fatal("no sync asked for")
			}
			tc.reset(e)
			before := e.fwState().Offset
			e.syncDone(time.Unix(0, 0).Add(3*time.Millisecond), job.id, job.run())
			if got := e.fwState().Offset; got != before {
				t.Fatalf("a stale sync moved the offset from %d to %d", before, got)
			}
		})
	}
}
