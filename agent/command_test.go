package agent_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/avc-agent/avc/agent"
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
