package agent

import "testing"

// The entry points the bootstrap client calls report le_avc's bootstrap
// session statuses, and nothing without update control.
func TestControlBootstrapEntryPoints(t *testing.T) {
	for _, tc := range []struct {
		control bool
		failed  bool
		want    []AVCStatus
	}{
		{true, false, []AVCStatus{StatusSessionBSStarted, StatusSessionStopped}},
		{true, true, []AVCStatus{StatusSessionBSStarted, StatusSessionFailed}},
		{false, false, nil},
	} {
		e, err := NewEngine(Config{ServerURI: "coap://127.0.0.1", Endpoint: "bs", Control: ControlConfig{Enabled: tc.control}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.ctl.bootstrapStarted()
		e.ctl.bootstrapEnded(tc.failed)
		var got []AVCStatus
		for {
			ev, ok := e.PollEvent()
			if !ok {
				break
			}
			if ev.Kind == EventStatus {
				got = append(got, ev.Status.Status)
			}
		}
		if len(got) != len(tc.want) || (len(got) == 2 && (got[0] != tc.want[0] || got[1] != tc.want[1])) {
			t.Errorf("control %v, failed %v: statuses %v, want %v", tc.control, tc.failed, got, tc.want)
		}
	}
}

// The bootstrap client reads the provisioned credentials of server 0.
func TestControlCredentialEntryPoint(t *testing.T) {
	e, err := NewEngine(Config{ServerURI: "coap://127.0.0.1", Endpoint: "bs", Control: ControlConfig{Enabled: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.HandleCommand(e.now, CmdSetCredential{Type: CredBSPSK, ServerID: 0, Data: []byte{7}}); err != nil {
		t.Fatal(err)
	}
	if got := e.ctl.credential(CredBSPSK, 0); len(got) != 1 || got[0] != 7 {
		t.Errorf("credential(BS_PSK, 0) = %v", got)
	}
	if got := e.ctl.credential(CredBSPSK, 1); got != nil {
		t.Errorf("credential(BS_PSK, 1) = %v, want none", got)
	}
	var off *control
	if off.credential(CredBSPSK, 0) != nil {
		t.Error("a nil control has credentials")
	}
}
