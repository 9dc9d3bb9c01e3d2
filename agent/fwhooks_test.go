package agent_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/fwpkg"
)

// hookFlash is a Flash whose handler also implements every optional pull
// hook, recording what the engine asked.
type hookFlash struct {
	*agenttest.Flash
	name, version string
	sec           *agent.FirmwareSecurity
	secErr        error
	tx            *agent.CoAPTxParams
	timeout       time.Duration
	asked         []string // "security <uri>", "tx <uri>", "timeout <uri>", "name", "version"
}

func (h *hookFlash) PackageName() string    { h.asked = append(h.asked, "name"); return h.name }
func (h *hookFlash) PackageVersion() string { h.asked = append(h.asked, "version"); return h.version }

func (h *hookFlash) SecurityConfig(uri string) (*agent.FirmwareSecurity, error) {
	h.asked = append(h.asked, "security "+uri)
	return h.sec, h.secErr
}

func (h *hookFlash) CoAPTxParams(uri string) (agent.CoAPTxParams, bool) {
	h.asked = append(h.asked, "tx "+uri)
	if h.tx == nil {
		return agent.CoAPTxParams{}, false
	}
	return *h.tx, true
}

func (h *hookFlash) RequestTimeout(uri string) time.Duration {
	h.asked = append(h.asked, "timeout "+uri)
	return h.timeout
}

var (
	_ agent.FirmwareNamer            = (*hookFlash)(nil)
	_ agent.FirmwareSecurityProvider = (*hookFlash)(nil)
	_ agent.FirmwareTxParamsProvider = (*hookFlash)(nil)
	_ agent.FirmwareRequestTimeouter = (*hookFlash)(nil)
)

// hookSim is a registered simulation with handler h and a driver that
// pulls over coaps and http(s) (agent.EnablePullDrivers).
func hookSim(t *testing.T, h agent.FirmwareHandler, mod func(*agent.Config)) *fwSim {
	t.Helper()
	cfg := agent.Config{Endpoint: "fw-dev", Lifetime: 24 * time.Hour, Device: agent.DeviceInfo{FirmwareVersion: "1.0.0"},
		Firmware: agent.FirmwareConfig{Handler: h, TrustedKeys: []ed25519.PublicKey{testKey.Public().(ed25519.PublicKey)}}}
	agent.EnablePullDrivers(&cfg)
	if mod != nil {
		mod(&cfg)
	}
	s := newSim(t, cfg, 3, agenttest.Faults{})
	if err := s.Do(agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.WaitEvent(agent.EventRegistered, 10*time.Minute); !ok {
		t.Fatalf("not registered; events %v", s.Events)
	}
	fs := &fwSim{Sim: s, files: s.FileServer()}
	if hf, ok := h.(*hookFlash); ok {
		fs.flash = hf.Flash
	}
	return fs
}

// pullGETs returns the GET requests the engine sent to peer, with their
// times relative to the first one.
func pullGETs(s *fwSim, peer string) (at []time.Duration, tokens []string) {
	var t0 time.Time
	for _, w := range s.Wire {
		if w.ToAgent || w.Peer != peer || w.Msg == nil || w.Msg.Code != codes.GET {
			continue
		}
		if t0.IsZero() {
			t0 = w.At
		}
		at = append(at, w.At.Sub(t0))
		tokens = append(tokens, string(w.Msg.Token))
	}
	return at, tokens
}

// TestFirmwareTxParamsRetransmission: the handler's CoAP transmission
// parameters set the retransmission schedule of the pull's requests to a
// silent file server exactly (the timeout doubles from AckTimeout, at
// most MaxRetransmit resends, then the pull's own retry back-off of 2 s,
// 4 s, ... with a new request); invalid or absent ones keep the RFC 7252
// defaults (first resend 2 to 3 s after the request).
func TestFirmwareTxParamsRetransmission(t *testing.T) {
	s1 := time.Second
	for _, tc := range []struct {
		name string
		tx   *agent.CoAPTxParams
		hook bool
		run  time.Duration
		want []time.Duration // GET times after the first; nil: the defaults
		// newToken[i] is whether GET i is a new request (not a resend).
		newToken []bool
	}{
		{name: "ack 1s factor 1 max 2", hook: true, tx: &agent.CoAPTxParams{AckTimeout: s1, AckRandomFactor: 1, MaxRetransmit: 2}, run: 13 * s1,
			want:     []time.Duration{0, s1, 3 * s1, 9 * s1, 10 * s1, 12 * s1},
			newToken: []bool{true, false, false, true, false, false}},
		{name: "ack 500ms max 0", hook: true, tx: &agent.CoAPTxParams{AckTimeout: s1 / 2, AckRandomFactor: 1, MaxRetransmit: 0}, run: 16 * s1,
			want:     []time.Duration{0, 2500 * time.Millisecond, 7 * s1, 15500 * time.Millisecond},
			newToken: []bool{true, true, true, true}},
		{name: "hook keeps defaults", hook: true, run: 4 * s1},
		{name: "invalid factor", hook: true, tx: &agent.CoAPTxParams{AckTimeout: s1, AckRandomFactor: 0.5, MaxRetransmit: 2}, run: 4 * s1},
		{name: "no hook", run: 4 * s1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flash := &agenttest.Flash{Running: "1.0.0"}
			var h agent.FirmwareHandler = flash
			hf := &hookFlash{Flash: flash, tx: tc.tx}
			if tc.hook {
				h = hf
			}
			s := hookSim(t, h, nil)
			s.files.Mute = true
			uri := s.files.URI("a.bin")
			if c := s.write(t, "/5/0/1", uri); c != codes.Changed {
				t.Fatalf("write URI: %v", c)
			}
			s.RunFor(tc.run)
			at, tokens := pullGETs(s, agenttest.FilePeer)
			if tc.hook && !contains(hf.asked, "tx "+uri) {
				t.Errorf("hook asked %q, want the tx parameters for %s", hf.asked, uri)
			}
			if tc.want == nil {
				if len(at) < 2 || at[1] < 2*s1 || at[1] > 3*s1 {
					t.Fatalf("GETs at %v: want the first resend 2-3 s after the request", at)
				}
				return
			}
			if len(at) < len(tc.want) {
				t.Fatalf("GETs at %v, want %v", at, tc.want)
			}
			for i, w := range tc.want {
				if at[i] != w {
					t.Fatalf("GET %d at %v, want %v (all %v)", i, at[i], w, at)
				}
				if i > 0 && (tokens[i] != tokens[i-1]) != tc.newToken[i] {
					t.Errorf("GET %d: new request = %v, want %v", i, tokens[i] != tokens[i-1], tc.newToken[i])
				}
			}
		})
	}
}

// TestFirmwareTxParamsLwM2MUnchanged: a pull's parameters stay with the
// pull: the LwM2M server's own exchanges keep the defaults.
func TestFirmwareTxParamsLwM2MUnchanged(t *testing.T) {
	hf := &hookFlash{Flash: &agenttest.Flash{Running: "1.0.0"}, tx: &agent.CoAPTxParams{AckTimeout: time.Second, AckRandomFactor: 1, MaxRetransmit: 0}}
	s := hookSim(t, hf, nil)
	s.files.Mute = true
	if c := s.write(t, "/5/0/1", s.files.URI("a.bin")); c != codes.Changed {
		t.Fatalf("write URI: %v", c)
	}
	s.Server.Silent = true
	if err := s.Do(agent.CmdUpdate{}); err != nil {
		t.Fatal(err)
	}
	start := len(s.Wire)
	s.RunFor(10 * time.Second)
	var upd []time.Time
	for _, w := range s.Wire[start-1:] {
		if !w.ToAgent && w.Peer == agenttest.ServerPeer && w.Msg != nil && w.Msg.Code == codes.POST {
			upd = append(upd, w.At)
		}
	}
	if len(upd) < 2 || upd[1].Sub(upd[0]) < 2*time.Second {
		t.Fatalf("Update sent at %v: want the default first resend (>= 2 s)", upd)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestFirmwareSecurityHookCoaps: a coaps pull uses the PSK of the
// handler's SecurityConfig (Engine.PullPSK names it to the driver for the
// pull's DTLS peer), falls back to the configured credential when the
// hook answers nil, and fails with Update Result 9 when there is none or
// the hook fails.
func TestFirmwareSecurityHookCoaps(t *testing.T) {
	const peer = agent.DTLSPeerPrefix + "fw.example:5684"
	const uri = "coaps://fw.example/fw/a.bin"
	img := image(20<<10, 5)
	for _, tc := range []struct {
		name    string
		hook    bool
		sec     *agent.FirmwareSecurity
		secErr  error
		cfgID   string
		wantID  string // the credential the driver is told; "" none
		want    agent.FirmwareState
		wantRes agent.UpdateResult
	}{
		{name: "hook PSK", hook: true, sec: &agent.FirmwareSecurity{PSKIdentity: "hook-id", PSKKey: []byte("hook-key")}, wantID: "hook-id", want: agent.FirmwareDownloaded},
		{name: "hook PSK wins over configuration", hook: true, sec: &agent.FirmwareSecurity{PSKIdentity: "hook-id", PSKKey: []byte("hook-key")}, cfgID: "cfg-id", wantID: "hook-id", want: agent.FirmwareDownloaded},
		{name: "hook nil uses configuration", hook: true, cfgID: "cfg-id", wantID: "cfg-id", want: agent.FirmwareDownloaded},
		{name: "no hook uses configuration", cfgID: "cfg-id", wantID: "cfg-id", want: agent.FirmwareDownloaded},
		{name: "hook nil and no configuration", hook: true, want: agent.FirmwareIdle, wantRes: agent.ResultUnsupportedProtocol},
		{name: "hook fails", hook: true, secErr: errors.New("no key in the secure element"), cfgID: "cfg-id", want: agent.FirmwareIdle, wantRes: agent.ResultUnsupportedProtocol},
		{name: "hook fails with a result", hook: true, secErr: agent.ErrFirmwareNoMemory, want: agent.FirmwareIdle, wantRes: agent.ResultOutOfMemory},
		{name: "identity without key", hook: true, sec: &agent.FirmwareSecurity{PSKIdentity: "hook-id"}, cfgID: "cfg-id", want: agent.FirmwareIdle, wantRes: agent.ResultUnsupportedProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flash := &agenttest.Flash{Running: "1.0.0"}
			hf := &hookFlash{Flash: flash, sec: tc.sec, secErr: tc.secErr}
			var h agent.FirmwareHandler = flash
			if tc.hook {
				h = hf
			}
			s := hookSim(t, h, func(c *agent.Config) {
				if tc.cfgID != "" {
					c.FirmwarePSKIdentity, c.FirmwarePSKKey = tc.cfgID, []byte("cfg-key")
				}
			})
			dtls := s.FileServerAt(peer)
			dtls.Files["a.bin"] = img
			if c := s.write(t, "/5/0/1", uri); c != codes.Changed {
				t.Fatalf("write URI: %v", c)
			}
			if id, _, ok := s.Engine.PullPSK(peer); tc.wantID != "" && (!ok || id != tc.wantID) {
				t.Errorf("PullPSK = %q, %v; want %q", id, ok, tc.wantID)
			}
			got := s.waitState(t, tc.want, time.Hour)
			if got.Result != tc.wantRes {
				t.Fatalf("result %v, want %v", got.Result, tc.wantRes)
			}
			if tc.want == agent.FirmwareDownloaded && !flash.Equal(img) {
				t.Fatalf("flash holds %d bytes, want the %d-byte image", len(flash.Data), len(img))
			}
			if tc.want == agent.FirmwareIdle && len(dtls.Requests) != 0 {
				t.Errorf("%d requests reached the coaps server without a credential", len(dtls.Requests))
			}
			if tc.hook && !contains(hf.asked, "security "+uri) {
				t.Errorf("hook asked %q, want the security configuration for %s", hf.asked, uri)
			}
		})
	}
}

// TestFirmwareCoapsOfferedWithHook: /5/0/8 offers CoAPS (1) when a handler
// can give a credential, even with none configured.
func TestFirmwareCoapsOfferedWithHook(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    agent.FirmwareHandler
		want bool
	}{
		{"security hook", &hookFlash{Flash: &agenttest.Flash{}}, true},
		{"no hook, no PSK", &agenttest.Flash{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := hookSim(t, tc.h, nil)
			r := s.Server.Request(codes.GET, "/5/0/8", nil, agenttest.Uint(message.Accept, 110)) // SenML JSON
			if r == nil || r.Code != codes.Content {
				t.Fatalf("read /5/0/8: %v", r)
			}
			if got := bytes.Contains(r.Payload, []byte(`"v":1}`)); got != tc.want {
				t.Errorf("/5/0/8 = %s: offers CoAPS %v, want %v", r.Payload, got, tc.want)
			}
		})
	}
}

// selfSigned returns a PEM certificate and key for host.
func selfSigned(t *testing.T, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Unix(0, 0), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})
}

// TestFirmwareSecurityHookHTTPS: an https pull's FetchRequest carries the
// hook's trust anchors and client certificate to the driver; material
// that does not parse fails the pull with Result 9 before any fetch.
func TestFirmwareSecurityHookHTTPS(t *testing.T) {
	cert, key := selfSigned(t, "files.example")
	const uri = "https://files.example/fw.bin"
	for _, tc := range []struct {
		name    string
		sec     *agent.FirmwareSecurity
		want    *agent.FirmwareSecurity // in the FetchRequest
		failRes agent.UpdateResult      // 0: a fetch is requested
	}{
		{name: "roots", sec: &agent.FirmwareSecurity{RootCAs: cert}, want: &agent.FirmwareSecurity{RootCAs: cert}},
		{name: "client certificate", sec: &agent.FirmwareSecurity{ClientCert: cert, ClientKey: key}, want: &agent.FirmwareSecurity{ClientCert: cert, ClientKey: key}},
		{name: "nil: configuration", sec: nil, want: nil},
		{name: "PSK only: configuration", sec: &agent.FirmwareSecurity{PSKIdentity: "x", PSKKey: []byte("y")}, want: nil},
		{name: "roots not PEM", sec: &agent.FirmwareSecurity{RootCAs: []byte("not pem")}, failRes: agent.ResultUnsupportedProtocol},
		{name: "certificate without key", sec: &agent.FirmwareSecurity{ClientCert: cert}, failRes: agent.ResultUnsupportedProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hf := &hookFlash{Flash: &agenttest.Flash{Running: "1.0.0"}, sec: tc.sec}
			s := hookSim(t, hf, nil)
			if c := s.write(t, "/5/0/1", uri); c != codes.Changed {
				t.Fatalf("write URI: %v", c)
			}
			s.RunFor(time.Second)
			req, ok := s.Engine.PollFetch()
			if tc.failRes != 0 {
				if ok {
					t.Fatalf("fetch requested: %+v", req)
				}
				if st := s.status(); st.State != agent.FirmwareIdle || st.Result != tc.failRes {
					t.Fatalf("state %v result %v, want idle and %v", st.State, st.Result, tc.failRes)
				}
				return
			}
			if !ok || req.URL != uri {
				t.Fatalf("fetch %+v, %v", req, ok)
			}
			switch {
			case tc.want == nil && req.Security != nil:
				t.Errorf("Security = %+v, want nil (configuration)", req.Security)
			case tc.want != nil && (req.Security == nil || !bytes.Equal(req.Security.RootCAs, tc.want.RootCAs) ||
				!bytes.Equal(req.Security.ClientCert, tc.want.ClientCert) || !bytes.Equal(req.Security.ClientKey, tc.want.ClientKey)):
				t.Errorf("Security = %+v, want %+v", req.Security, tc.want)
			}
		})
	}
}

// TestFirmwareRequestTimeout: with the handler's request timeout, an http
// pull whose server goes silent ends exactly that long after the last
// head or body bytes, with Update Result 4 and the fetch cancelled;
// without it (or with zero) the pull keeps waiting.
func TestFirmwareRequestTimeout(t *testing.T) {
	const uri = "http://files.example/fw.bin"
	for _, tc := range []struct {
		name    string
		hook    bool
		timeout time.Duration
		script  []time.Duration // start, then data chunks, at these times after the request
		want    time.Duration   // when the pull fails after the request; 0: not within 10 min
	}{
		{name: "silent after the head", hook: true, timeout: 45 * time.Second, script: []time.Duration{time.Second}, want: 46 * time.Second},
		{name: "silent after data", hook: true, timeout: 45 * time.Second, script: []time.Duration{time.Second, 2 * time.Second, 40 * time.Second}, want: 85 * time.Second},
		{name: "no head at all", hook: true, timeout: 30 * time.Second, want: 30 * time.Second},
		{name: "zero: none", hook: true},
		{name: "no hook", script: []time.Duration{time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flash := &agenttest.Flash{Running: "1.0.0"}
			hf := &hookFlash{Flash: flash, timeout: tc.timeout}
			var h agent.FirmwareHandler = flash
			if tc.hook {
				h = hf
			}
			s := hookSim(t, h, nil)
			if c := s.write(t, "/5/0/1", uri); c != codes.Changed {
				t.Fatalf("write URI: %v", c)
			}
			s.RunFor(0)
			req, ok := s.Engine.PollFetch()
			if !ok {
				t.Fatal("no fetch requested")
			}
			// The engine asked for the fetch when the Write arrived, one
			// network latency (10 ms) before its answer reached the server.
			t0 := s.Now.Add(-10 * time.Millisecond)
			for i, at := range tc.script {
				s.RunUntil(t0.Add(at), nil)
				var err error
				if i == 0 {
					err = s.Engine.HandleFetchStart(s.Now, req.ID, agent.FetchStart{Total: 1 << 20, Validator: `"v1"`})
				} else {
					err = s.Engine.HandleFetchData(s.Now, req.ID, bytes.Repeat([]byte{byte(i)}, 1000))
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			failed := s.RunUntil(t0.Add(10*time.Minute), func() bool { return s.status().State == agent.FirmwareIdle })
			if tc.want == 0 {
				if failed {
					t.Fatalf("pull ended at %v with result %v; want it still waiting", s.Now.Sub(t0), s.status().Result)
				}
				return
			}
			if !failed || s.Now.Sub(t0) != tc.want {
				t.Fatalf("pull ended %v after the request (ended %v), want %v", s.Now.Sub(t0), failed, tc.want)
			}
			if r := s.status().Result; r != agent.ResultConnectionLost {
				t.Errorf("result %v, want %v", r, agent.ResultConnectionLost)
			}
			if c, ok := s.Engine.PollFetch(); !ok || !c.Cancel || c.ID != req.ID {
				t.Errorf("after the timeout: fetch request %+v, %v; want a cancel of %d", c, ok, req.ID)
			}
			if !contains(hf.asked, "timeout "+uri) {
				t.Errorf("hook asked %q, want the request timeout for %s", hf.asked, uri)
			}
		})
	}
}

// TestFirmwareNamerPkgNameVersion: PkgName /5/0/6 and PkgVersion /5/0/7
// come from the handler for a bare image, and from the manifest when it
// has them (field by field); an over-long answer is ignored. The values
// reach PerformUpgrade and stay after the update.
func TestFirmwareNamerPkgNameVersion(t *testing.T) {
	img := image(10<<10, 9)
	for _, tc := range []struct {
		name              string
		pkg               func(t *testing.T) []byte
		hookName, hookVer string
		wantName, wantVer string
	}{
		{name: "bare image", pkg: func(*testing.T) []byte { return img }, hookName: "blob", hookVer: "9.9", wantName: "blob", wantVer: "9.9"},
		{name: "manifest wins", pkg: func(t *testing.T) []byte { return pkg(t, img, "2.0.0", testKey) }, hookName: "blob", hookVer: "9.9", wantName: "fw", wantVer: "2.0.0"},
		{name: "manifest without name", pkg: func(t *testing.T) []byte { return pkgFor(t, img, fwpkg.Manifest{Version: "2.0.0"}) }, hookName: "blob", hookVer: "9.9", wantName: "blob", wantVer: "2.0.0"},
		{name: "too long", pkg: func(*testing.T) []byte { return img }, hookName: strings.Repeat("n", 256), hookVer: "9.9", wantName: "", wantVer: "9.9"},
		{name: "empty", pkg: func(*testing.T) []byte { return img }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hf := &hookFlash{Flash: &agenttest.Flash{Running: "1.0.0"}, name: tc.hookName, version: tc.hookVer}
			s := hookSim(t, hf, nil)
			s.files.Files["a.bin"] = tc.pkg(t)
			if c := s.write(t, "/5/0/1", s.files.URI("a.bin")); c != codes.Changed {
				t.Fatalf("write URI: %v", c)
			}
			s.waitState(t, agent.FirmwareDownloaded, time.Hour)
			if n, v := s.readString(t, "/5/0/6"), s.readString(t, "/5/0/7"); n != tc.wantName || v != tc.wantVer {
				t.Fatalf("/5/0/6, /5/0/7 = %q, %q; want %q, %q", n, v, tc.wantName, tc.wantVer)
			}
			if st := s.status(); st.Version != tc.wantVer {
				t.Errorf("status version %q, want %q", st.Version, tc.wantVer)
			}
			if c := s.exec(t, "/5/0/2"); c != codes.Changed {
				t.Fatalf("Update: %v", c)
			}
			if !s.waitRestart(time.Minute) {
				t.Fatal("no restart after the install")
			}
			if hf.Installed != tc.wantVer {
				t.Errorf("PerformUpgrade got version %q, want %q", hf.Installed, tc.wantVer)
			}
		})
	}
}

// TestFirmwareHooksAskedOnResume: a pull resumed after a restart asks the
// hooks again, with the stored Package URI.
func TestFirmwareHooksAskedOnResume(t *testing.T) {
	flash := &agenttest.Flash{Running: "1.0.0"}
	hf := &hookFlash{Flash: flash, tx: &agent.CoAPTxParams{AckTimeout: time.Second, AckRandomFactor: 1, MaxRetransmit: 3}}
	s := hookSim(t, hf, nil)
	img := image(300<<10, 11)
	s.files.Files["a.bin"] = pkg(t, img, "2.0.0", testKey)
	uri := s.files.URI("a.bin")
	if c := s.write(t, "/5/0/1", uri); c != codes.Changed {
		t.Fatalf("write URI: %v", c)
	}
	s.RunUntil(s.Now.Add(time.Hour), func() bool { return len(flash.Data) >= 150<<10 })
	flash.PowerCut()
	hf.asked = nil
	if err := s.Restart(nil); err != nil {
		t.Fatal(err)
	}
	s.waitState(t, agent.FirmwareDownloaded, time.Hour)
	if !contains(hf.asked, "tx "+uri) {
		t.Fatalf("after the restart the hooks were asked %q, want the tx parameters for %s", hf.asked, uri)
	}
	if !flash.Equal(img) || flash.Opens[len(flash.Opens)-1] == 0 {
		t.Fatalf("resumed image wrong (opens %v)", flash.Opens)
	}
}

// txApps is an Apps software handler with a CoAP transmission parameters
// hook: Object 9 pulls honour it as Object 5's do.
type txApps struct {
	*agenttest.Apps
	asked []string
}

func (a *txApps) CoAPTxParams(uri string) (agent.CoAPTxParams, bool) {
	a.asked = append(a.asked, uri)
	return agent.CoAPTxParams{AckTimeout: time.Second, AckRandomFactor: 1, MaxRetransmit: 2}, true
}

// TestSoftwareTxParamsRetransmission: a SoftwareHandler's CoAPTxParams
// retimes an Object 9 pull exactly like a firmware handler's.
func TestSoftwareTxParamsRetransmission(t *testing.T) {
	apps := &txApps{Apps: &agenttest.Apps{}}
	s := newSwSim(t, 4, agenttest.Faults{}, func(c *agent.Config) { c.Software.Handler = apps })
	s.create(t, 0)
	s.files.Mute = true
	uri := s.files.URI("app.bin")
	if c := s.write(t, "/9/0/3", uri); c != codes.Changed {
		t.Fatalf("write /9/0/3: %v", c)
	}
	s.RunFor(13 * time.Second)
	at, _ := pullGETs(s.fwSim, agenttest.FilePeer)
	want := []time.Duration{0, time.Second, 3 * time.Second, 9 * time.Second, 10 * time.Second, 12 * time.Second}
	if len(at) < len(want) || fmt.Sprint(at[:len(want)]) != fmt.Sprint(want) {
		t.Fatalf("GETs at %v, want %v", at, want)
	}
	if len(apps.asked) != 1 || apps.asked[0] != uri {
		t.Errorf("asked %q, want [%s]", apps.asked, uri)
	}
}
