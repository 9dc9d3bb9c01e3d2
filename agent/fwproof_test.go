package agent_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
)

// trialFlash boots a new image on trial, as A/B slots or MCUboot's test
// swap do: it runs after the restart but is only kept once committed.
type trialFlash struct {
	*agenttest.Flash
	commits, reverts int
}

func (f *trialFlash) Commit() error { f.commits++; return nil }

func (f *trialFlash) Revert() error {
	f.reverts++
	f.Running, f.Installed = "1.0.0", "1.0.0"
	return nil
}

// TestFirmwareCommitAfterProof: with CommitAfterProof the new image is
// committed only once the agent has registered from it; when it cannot
// register within ProofTimeout the image is reverted and the update
// reported failed.
func TestFirmwareCommitAfterProof(t *testing.T) {
	for _, tc := range []struct {
		name        string
		refuse      bool // the server refuses registrations after the install
		wantRes     agent.UpdateResult
		wantCommits int
		wantReverts int
		wantVersion string
	}{
		{name: "registered from the new image", wantRes: agent.ResultSuccess, wantCommits: 1, wantVersion: "2.0.0"},
		{name: "no registration from the new image", refuse: true, wantRes: agent.ResultFailed, wantReverts: 1, wantVersion: "1.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flash := &trialFlash{Flash: &agenttest.Flash{Running: "1.0.0"}}
			cfg := agent.Config{Endpoint: "proof", Lifetime: time.Hour, Device: agent.DeviceInfo{FirmwareVersion: "1.0.0"},
				Firmware: agent.FirmwareConfig{Handler: flash, TrustedKeys: []ed25519.PublicKey{testKey.Public().(ed25519.PublicKey)},
					CommitAfterProof: true, ProofTimeout: 10 * time.Minute}}
			sim := newSim(t, cfg, 40, agenttest.Faults{})
			if err := sim.Do(agent.CmdStart{}); err != nil {
				t.Fatal(err)
			}
			if _, ok := sim.WaitEvent(agent.EventRegistered, time.Minute); !ok {
				t.Fatal("not registered")
			}
			s := &fwSim{Sim: sim, flash: flash.Flash, files: sim.FileServer()}
			s.files.Files["a.bin"] = pkg(t, image(8<<10, 40), "2.0.0", testKey)
			s.write(t, "/5/0/1", s.files.URI("a.bin"))
			s.waitState(t, agent.FirmwareDownloaded, time.Hour)
			s.exec(t, "/5/0/2")
			if !s.waitRestart(time.Minute) {
				t.Fatal("no restart after the install")
			}
			if tc.refuse {
				s.Server.RegisterCode = codes.Forbidden
			}
			restarts, restartAt := len(s.EventsOf(agent.EventRestart)), s.Now
			if err := s.Restart(nil); err != nil {
				t.Fatal(err)
			}
			if tc.refuse {
				// Past the proof deadline the image is reverted, the engine
				// restarts into the old one and reports the failure.
				if !s.RunUntil(s.Now.Add(time.Hour), func() bool { return len(s.EventsOf(agent.EventRestart)) > restarts }) {
					t.Fatal("no restart after the proof timeout")
				}
				if d := s.Now.Sub(restartAt); d < 10*time.Minute-time.Second { // the deadline is stored in whole seconds
					t.Errorf("reverted %v after the restart, before the 10-minute proof timeout", d)
				}
				s.Server.RegisterCode = 0
				if err := s.Restart(nil); err != nil {
					t.Fatal(err)
				}
			}
			if _, ok := s.WaitEvent(agent.EventRegistered, 2*time.Hour); !ok {
				t.Fatal("not registered at the end")
			}
			if st, res := s.readInt(t, "/5/0/3"), s.readInt(t, "/5/0/5"); agent.UpdateResult(res) != tc.wantRes || (st != 0 && st != 2) {
				t.Errorf("state %d result %d, want result %d", st, res, tc.wantRes)
			}
			if flash.commits != tc.wantCommits || flash.reverts != tc.wantReverts {
				t.Errorf("commits %d reverts %d, want %d and %d", flash.commits, flash.reverts, tc.wantCommits, tc.wantReverts)
			}
			if v := s.readString(t, "/3/0/3"); v != tc.wantVersion {
				t.Errorf("/3/0/3 = %q, want %q", v, tc.wantVersion)
			}
		})
	}
}
