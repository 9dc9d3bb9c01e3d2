package host

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
)

// TestControlSnapshotOverABI: avc_control returns the update-control
// snapshot (agent.ControlState as JSON) with what the commands set; it
// needs an initialized module with update control.
func TestControlSnapshotOverABI(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newModule(t, nil)
	wantCode(t, func() error { _, err := m.Control(); return err }(), CodeNotInitialized)
	if err := m.InitJSON([]byte(`{"AVC_SERVER_URI":"coap://127.0.0.1:5683","AVC_ENDPOINT":"e","control":true}`), nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{
		`{"cmd":"set_agreement","what":"download","enable":true}`,
		`{"cmd":"set_polling_timer","minutes":60}`,
		`{"cmd":"set_apn","name":"internet","user":"u","password":"p"}`,
		`{"cmd":"block_install","ref":7}`,
		`{"cmd":"set_credential","credential":"bs_psk","server":0,"data":"AQID"}`,
	} {
		if err := m.CommandJSON(now, []byte(c)); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
	}
	st, err := m.Control()
	if err != nil {
		t.Fatal(err)
	}
	want := agent.ControlState{
		Agreements: [agent.NumAgreements]bool{false, true, false, false, false}, PollingTimer: 60,
		RetryTimers: agent.DefaultRetryTimers, APNName: "internet", APNUser: "u", APNPassword: "p",
		HTTPStatus: agent.HTTPStatusUnknown, Blocks: 1, LastPoll: now,
		Credentials: [agent.NumCredentialTypes]bool{false, false, false, false, true},
	}
	st.LastPoll = st.LastPoll.UTC()
	if st != want {
		t.Errorf("Control() = %+v\nwant        %+v", st, want)
	}
	b, err := m.ControlJSON()
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"agreements", "polling_timer", "retry_timers", "pending", "http_status", "blocks", "session", "retrying", "credentials"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("avc_control JSON %s lacks %q", b, k)
		}
	}
	if strings.Contains(string(b), "AQID") {
		t.Errorf("avc_control JSON %s shows a credential", b)
	}

	off := newModule(t, nil)
	if err := off.InitJSON([]byte(`{"AVC_SERVER_URI":"coap://127.0.0.1:5683","AVC_ENDPOINT":"e"}`), nil); err != nil {
		t.Fatal(err)
	}
	_, err = off.Control()
	if e := wantCode(t, err, CodeFault); !strings.Contains(e.Msg, "update control is off") {
		t.Errorf("without control: avc_last_error = %q", e.Msg)
	}
}
