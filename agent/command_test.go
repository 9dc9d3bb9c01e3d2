package agent_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
)

// TestParseControlCommands: the JSON forms of the update-control commands
// (what the wasm module receives) decode to the commands, and a bad
// agreement name is refused.
func TestParseControlCommands(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want agent.Command
	}{
		{`{"cmd":"accept","what":"download"}`, agent.CmdAccept{What: agent.AgreeDownload}},
		{`{"cmd":"defer","what":"install","minutes":30}`, agent.CmdDefer{What: agent.AgreeInstall, Minutes: 30}},
		{`{"cmd":"defer","what":"connection","minutes":5}`, agent.CmdDefer{What: agent.AgreeConnection, Minutes: 5}},
		{`{"cmd":"set_agreement","what":"reboot","enable":true}`, agent.CmdSetAgreement{What: agent.AgreeReboot, Enable: true}},
		{`{"cmd":"block_install","ref":7}`, agent.CmdBlockInstall{Ref: 7}},
		{`{"cmd":"unblock_install","ref":7}`, agent.CmdUnblockInstall{Ref: 7}},
		{`{"cmd":"set_polling_timer","minutes":60}`, agent.CmdSetPollingTimer{Minutes: 60}},
		{`{"cmd":"set_retry_timers","timers":[15,60,240,480,1440,2880,0,0]}`, agent.CmdSetRetryTimers{Minutes: []uint16{15, 60, 240, 480, 1440, 2880, 0, 0}}},
		{`{"cmd":"set_apn","name":"internet","user":"u","password":"p"}`, agent.CmdSetAPN{Name: "internet", User: "u", Password: "p"}},
		{`{"cmd":"status_handlers","count":2}`, agent.CmdStatusHandlers{Count: 2}},
	} {
		got, err := agent.ParseCommand([]byte(tc.in))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCommand(%s) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
	if _, err := agent.ParseCommand([]byte(`{"cmd":"accept","what":"everything"}`)); !errors.Is(err, agent.ErrBadValue) {
		t.Errorf("unknown agreement: %v, want ErrBadValue", err)
	}
	if s := agent.AgreeUninstall.String(); s != "uninstall" {
		t.Errorf("AgreeUninstall.String() = %q", s)
	}
}

// TestHostInputs: what the host told update control (handlers, blocks)
// can be carried to a new engine, as drivers do when they replace one.
func TestHostInputs(t *testing.T) {
	s := newSim(t, agent.Config{Control: agent.ControlConfig{Enabled: true}}, 1, agenttest.Faults{})
	for _, c := range []agent.Command{agent.CmdStatusHandlers{Count: 2}, agent.CmdBlockInstall{Ref: 5}, agent.CmdBlockInstall{Ref: 3}} {
		if err := s.Do(c); err != nil {
			t.Fatal(err)
		}
	}
	got := s.Engine.HostInputs()
	want := []agent.Command{agent.CmdStatusHandlers{Count: 2}, agent.CmdBlockInstall{Ref: 3}, agent.CmdBlockInstall{Ref: 5}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("HostInputs = %#v, want %#v", got, want)
	}
	ne, err := agent.NewEngine(agent.Config{ServerURI: agenttest.ServerURI, Endpoint: "e", Control: agent.ControlConfig{Enabled: true}}, s.State())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range got {
		if err := ne.HandleCommand(s.Now, c); err != nil {
			t.Fatal(err)
		}
	}
	if b := ne.Control().Blocks; b != 2 {
		t.Errorf("blocks on the new engine = %d, want 2", b)
	}
	plain := newSim(t, agent.Config{}, 1, agenttest.Faults{})
	if in := plain.Engine.HostInputs(); in != nil {
		t.Errorf("HostInputs without update control = %v, want nil", in)
	}
}
