package agent_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// A pull with NStart n keeps n block requests in flight once the first
// answer has told the size and ETag: on a link of fixed latency the
// simulated time of a 256 KiB pull shrinks with n, each block is asked for
// once, and the image arrives whole.
func TestFirmwarePullPipelined(t *testing.T) {
	img := image(256<<10, 11)
	p := pkg(t, img, "2.0.0", testKey)
	blocks := (len(p) + 1023) / 1024
	rtt := 2 * 10 * time.Millisecond // the simulated default latency, both ways
	var lockstep time.Duration
	for _, n := range []int{1, 4, 16} {
		t.Run(fmt.Sprintf("nstart%d", n), func(t *testing.T) {
			s := newFwSim(t, 21, agenttest.Faults{}, func(c *agent.FirmwareConfig) { c.NStart = n })
			s.files.Files["a.bin"] = p
			start := s.Now
			if c := s.write(t, "/5/0/1", s.files.URI("a.bin")); c != codes.Changed {
				t.Fatalf("write URI: %v", c)
			}
			st := s.waitState(t, agent.FirmwareDownloaded, time.Hour)
			took := s.Now.Sub(start)
			if st.Result != agent.ResultInitial || !s.flash.Equal(img) {
				t.Fatalf("result %v; flash holds the image: %v", st.Result, s.flash.Equal(img))
			}
			if got := len(s.files.Requests); got != blocks {
				t.Errorf("%d block requests for %d blocks", got, blocks)
			}
			if s.files.Bytes != int64(len(p)) {
				t.Errorf("%d bytes served for a package of %d", s.files.Bytes, len(p))
			}
			switch {
			case n == 1:
				lockstep = took
				if took < time.Duration(blocks)*rtt {
					t.Errorf("one block at a time took %v, less than %d round trips of %v", took, blocks, rtt)
				}
			case lockstep == 0:
				t.Fatal("the nstart1 case did not run first")
			case took > lockstep/time.Duration(n)+10*rtt:
				t.Errorf("NStart %d took %v; one at a time took %v", n, took, lockstep)
			}
		})
	}
}

// Pipelined pulls survive loss, duplication and reordering: requests in
// flight are retransmitted on their own, blocks answered out of order wait
// for the ones before them, and the stored image is the package's.
func TestFirmwarePullPipelinedLossy(t *testing.T) {
	img := image(512<<10, 12)
	p := pkg(t, img, "2.0.0", testKey)
	for _, loss := range []float64{0.10, 0.25} {
		t.Run(fmt.Sprintf("loss%.0f%%", loss*100), func(t *testing.T) {
			s := newFwSim(t, 22, agenttest.Faults{Loss: loss, Duplicate: 0.05, Reorder: 0.25},
				func(c *agent.FirmwareConfig) { c.NStart = 8 })
			s.files.Files["a.bin"] = p
			s.write(t, "/5/0/1", s.files.URI("a.bin"))
			st := s.waitState(t, agent.FirmwareDownloaded, 48*time.Hour)
			if st.Result != agent.ResultInitial || !s.flash.Equal(img) {
				t.Fatalf("result %v; flash holds the image: %v", st.Result, s.flash.Equal(img))
			}
		})
	}
}

// A package that changes on the server while blocks of the old one are in
// flight is never spliced: the pull starts over and stores the new one.
func TestFirmwarePullPipelinedChangedOnServer(t *testing.T) {
	pullChangedOnServer(t, newFwSim(t, 23, agenttest.Faults{}, func(c *agent.FirmwareConfig) { c.NStart = 6 }))
}

// Power cuts in the middle of a pipelined pull resume from the last
// checkpoint, as one block at a time does: the image is whole and the
// bytes fetched stay within 1.10× the package.
func TestFirmwarePullPipelinedPowerCuts(t *testing.T) {
	s := newFwSim(t, 24, agenttest.Faults{}, func(c *agent.FirmwareConfig) { c.NStart = 8 })
	pullThroughPowerCuts(t, s, image(4<<20, 15), 24)
}
