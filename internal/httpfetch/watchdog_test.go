package httpfetch

import (
	"errors"
	"testing"
	"time"
)

func TestWatchdogDisabled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		limit        int64
		window, idle time.Duration
	}{
		{0, 0, 0},
		{-1, time.Second, 0},
		{100, -1, -1},
	}
	for _, tt := range tests {
		w := startWatchdog(tt.limit, tt.window, tt.idle, func(error) { t.Error("fail called") })
		if w != nil {
			t.Errorf("startWatchdog(%d, %v, %v) = %p, want nil", tt.limit, tt.window, tt.idle, w)
			w.stop()
		}
		w.add(1) // nil-safe
		w.stop()
	}
}

func TestWatchdog(t *testing.T) {
	t.Parallel()
	const window = 200 * time.Millisecond
	tests := []struct {
		name  string
		limit int64
		idle  time.Duration
		rate  int // bytes added every 5 ms while feeding
		feed  time.Duration
	}{
		// 1000 B/s ≥ 500 B/s for three windows, then nothing.
		{"rate", 500, 0, 5, 3 * window},
		// Fast enough for the rate check; the idle check fires first.
		{"idle", 1, 100 * time.Millisecond, 5, 3 * window},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			failed := make(chan error, 1)
			w := startWatchdog(tt.limit, window, tt.idle, func(err error) { failed <- err })
			defer w.stop()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for end := time.Now().Add(tt.feed); time.Now().Before(end); <-tick.C {
				w.add(tt.rate)
				select {
				case err := <-failed:
					t.Fatalf("failed while fed fast enough: %v", err)
				default:
				}
			}
			stopped := time.Now()
			select {
			case err := <-failed:
				if !errors.Is(err, ErrTooSlow) {
					t.Errorf("fail(%v), want ErrTooSlow", err)
				}
				if el := time.Since(stopped); el > window+100*time.Millisecond {
					t.Errorf("failed %v after the data stopped", el)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("no failure after the data stopped")
			}
		})
	}
}
