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
