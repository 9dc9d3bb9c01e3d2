package host

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
)

// hookFlash is a Flash with the hooks the ABI carries (fw_get_name,
// fw_get_version, fw_get_coap_tx_params); it records what it was asked.
type hookFlash struct {
	*agenttest.Flash
	name, version string
	tx            *agent.CoAPTxParams
	asked         []string
}

func (h *hookFlash) PackageName() string    { h.asked = append(h.asked, "name"); return h.name }
func (h *hookFlash) PackageVersion() string { h.asked = append(h.asked, "version"); return h.version }

func (h *hookFlash) CoAPTxParams(uri string) (agent.CoAPTxParams, bool) {
	h.asked = append(h.asked, "tx "+uri)
	if h.tx == nil {
		return agent.CoAPTxParams{}, false
	}
	return *h.tx, true
}

// TestFirmwareHookImports drives the module on a virtual clock: the
// handler's CoAP transmission parameters (fw_get_coap_tx_params) set when
// the pull's GET is resent (after 500 ms; then a new request after the
// 1 s timeout and the 2 s retry wait, resent 500 ms later), and its name and version
// (fw_get_name, fw_get_version) are PkgName /5/0/6 and PkgVersion /5/0/7
// of the bare image it stored; a name longer than 255 bytes is ignored.
func TestFirmwareHookImports(t *testing.T) {
	const filePeer = "fw.example:5683"
	const uri = "coap://" + filePeer + "/fw/blob"
	image := []byte("a bare image without a manifest")
	for _, tc := range []struct {
		name     string
		pkgName  string
		wantName string
	}{
		{name: "short name", pkgName: "wasm-blob", wantName: "wasm-blob"},
		{name: "name too long", pkgName: string(make([]byte, 300)), wantName: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &hookFlash{Flash: &agenttest.Flash{}, name: tc.pkgName, version: "3.3.3",
				tx: &agent.CoAPTxParams{AckTimeout: 500 * time.Millisecond, AckRandomFactor: 1, MaxRetransmit: 1}}
			rec := new(recorder)
			im := rec.imports()
			im.Firmware = h
			m, err := testRT.Instantiate(context.Background(), im)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(context.Background())
			if err := m.Init(goodConfig(), nil); err != nil {
				t.Fatal(err)
			}
			if err := m.Command(t0, agent.CmdStart{}); err != nil {
				t.Fatal(err)
			}
			reg := decode(t, rec.sent[0].data)
			must(t, m.OnDatagram(t0, testPeer, encodeMsg(&message.Message{Type: message.Acknowledgement, Code: codes.Created,
				MessageID: reg.MessageID, Token: reg.Token,
				Options: message.Options{{ID: message.LocationPath, Value: []byte("rd")}, {ID: message.LocationPath, Value: []byte("x")}}})))
			write := &message.Message{Type: message.Confirmable, Code: codes.PUT, MessageID: 100, Token: []byte{1},
				Options: message.Options{{ID: message.URIPath, Value: []byte("5")}, {ID: message.URIPath, Value: []byte("0")},
					{ID: message.URIPath, Value: []byte("1")}, {ID: message.ContentFormat, Value: []byte{}}},
				Payload: []byte(uri)}
			must(t, m.OnDatagram(t0, testPeer, encodeMsg(write)))

			// Run the timers up to 4 s, noting when GETs went to the file server.
			var at []time.Duration
			var last *message.Message
			seen := 0
			note := func(now time.Time) {
				for _, d := range rec.sent[seen:] {
					if d.peer == filePeer {
						at = append(at, now.Sub(t0))
						last = decode(t, d.data)
					}
				}
				seen = len(rec.sent)
			}
			note(t0)
			now := t0
			for {
				next, err := m.Step(now)
				must(t, err)
				note(now)
				if next.IsZero() || next.After(t0.Add(4*time.Second)) {
					break
				}
				now = next
			}
			want := []time.Duration{0, 500 * time.Millisecond, 3500 * time.Millisecond, 4 * time.Second}
			if fmt.Sprint(at) != fmt.Sprint(want) {
				t.Fatalf("GETs at %v, want %v", at, want)
			}
			if len(h.asked) == 0 || h.asked[0] != "tx "+uri {
				t.Errorf("asked %q, want the tx parameters for %s first", h.asked, uri)
			}

			// The file server answers the last GET with the whole image.
			must(t, m.OnDatagram(now, filePeer, encodeMsg(&message.Message{Type: message.Acknowledgement, Code: codes.Content,
				MessageID: last.MessageID, Token: last.Token,
				Options: message.Options{{ID: message.ETag, Value: []byte{7}}, {ID: message.Block2, Value: []byte{0x06}}},
				Payload: image})))
			if !h.Flash.Equal(image) {
				t.Fatalf("flash holds %q", h.Flash.Data)
			}
			for i, tt := range []struct{ path, want string }{{"6", tc.wantName}, {"7", "3.3.3"}} {
				read := &message.Message{Type: message.Confirmable, Code: codes.GET, MessageID: int32(200 + i), Token: []byte{2, byte(i)},
					Options: message.Options{{ID: message.URIPath, Value: []byte("5")}, {ID: message.URIPath, Value: []byte("0")},
						{ID: message.URIPath, Value: []byte(tt.path)}, {ID: message.Accept, Value: []byte{}}}}
				n := len(rec.sent)
				must(t, m.OnDatagram(now, testPeer, encodeMsg(read)))
				if len(rec.sent) == n {
					t.Fatalf("no answer to a read of /5/0/%s", tt.path)
				}
				resp := decode(t, rec.sent[len(rec.sent)-1].data)
				if resp.Code != codes.Content || string(resp.Payload) != tt.want {
					t.Errorf("/5/0/%s = %v %q, want %q", tt.path, resp.Code, resp.Payload, tt.want)
				}
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
