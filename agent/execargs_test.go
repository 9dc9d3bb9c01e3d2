package agent_test

import (
	"reflect"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
)

func TestParseExecArgs(t *testing.T) {
	tests := []struct {
		in      string
		want    []agent.ExecArg
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "0", want: []agent.ExecArg{{Digit: 0}}},
		{in: "0='abc',1", want: []agent.ExecArg{{Digit: 0, Value: "abc", HasValue: true}, {Digit: 1}}},
		{in: "5='a b=c,d'", want: []agent.ExecArg{{Digit: 5, Value: "a b=c,d", HasValue: true}}},
		{in: "2=''", want: []agent.ExecArg{{Digit: 2, HasValue: true}}},
		{in: "a", wantErr: true},
		{in: "10", wantErr: true},
		{in: "0,", wantErr: true},
		{in: "0=abc", wantErr: true},
		{in: "0='abc", wantErr: true},
		{in: "0,0", wantErr: true},
		{in: "0='a\"b'", wantErr: true},
		{in: "0='\x01'", wantErr: true},
	}
	for _, tt := range tests {
		got, err := agent.ParseExecArgs([]byte(tt.in))
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseExecArgs(%q) = %+v, %v; want %+v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseExecArgs(f *testing.F) {
	for _, s := range []string{"", "0", "0='abc',1", "9='x',8,7=''", "0='", "0,,1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		args, err := agent.ParseExecArgs(b)
		if err != nil {
			return
		}
		seen := map[int]bool{}
		for _, a := range args {
			if a.Digit < 0 || a.Digit > 9 || seen[a.Digit] {
				t.Fatalf("bad argument %+v from %q", a, b)
			}
			seen[a.Digit] = true
		}
	})
}

func TestExecuteArgumentsValidated(t *testing.T) {
	s := registered(t, agent.Config{})
	if r := s.Server.Request(codes.POST, "/3/0/4", []byte("0='now',1")); r == nil || r.Code != codes.Changed {
		t.Fatalf("execute with arguments: %v", r)
	}
	if ev := s.EventsOf(agent.EventExecute); len(ev) != 1 || string(ev[0].Data) != "0='now',1" {
		t.Errorf("execute events = %+v", ev)
	}
	if r := s.Server.Request(codes.POST, "/3/0/4", []byte("reboot please")); r == nil || r.Code != codes.BadRequest {
		t.Fatalf("execute with malformed arguments: %v, want 4.00", r)
	}
	if len(s.EventsOf(agent.EventReboot)) != 1 {
		t.Errorf("a malformed execute rebooted")
	}
}
