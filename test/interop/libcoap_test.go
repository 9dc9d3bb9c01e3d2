//go:build integration

package interop_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/lwcbor"
	"github.com/avc-agent/avc/lwm2m/senml"
	"github.com/avc-agent/avc/lwm2m/tlv"
)

// coapClient is libcoap's client without DTLS, from Debian's libcoap3-bin
// (there is no un-suffixed coap-client).
const coapClient = "coap-client-notls"

// libcoap drives coap-client-notls against a running agent. The agent's
// server URI is coap://127.0.0.1:<port>, and coap-client binds that port
// (-p), so its requests come from the agent's server and are served.
type libcoap struct {
	bin   string
	port  int    // the "server" port coap-client binds
	agent string // "127.0.0.1:<agent's port>"
	dir   string
}

// coapMsg is one message as coap-client logs it at -v 6:
// "v:1 t:ACK c:2.05 i:fd55 {01} [ ETag:0x44, Block2:0/M/16 ] :: ...".
type coapMsg struct {
	Type, Code, MID, Token, Opts string
}

var coapLogLine = regexp.MustCompile(`^v:1 t:(\S+) c:(\S+) i:([0-9a-f]+) \{([0-9a-f]*)\} \[ ?(.*?) ?\]`)

// isResponse reports whether m carries a response code ("2.05"), not a
// method or an empty message.
func (m coapMsg) isResponse() bool {
	return len(m.Code) == 4 && m.Code[1] == '.' && m.Code[0] >= '2' && m.Code[0] <= '5'
}

// opt returns the value of the first option named name ("Block2").
func (m coapMsg) opt(name string) (string, bool) {
	for _, o := range strings.Split(m.Opts, ", ") {
		if v, ok := strings.CutPrefix(o, name+":"); ok {
			return v, true
		}
	}
	return "", false
}

// coapRun is the outcome of one coap-client invocation.
type coapRun struct {
	Msgs    []coapMsg // every message logged, sent and received
	Payload []byte    // what -o wrote: the (reassembled) response body
	Output  string    // coap-client's combined output, for failure messages
}

// Responses returns the received responses in order.
func (r coapRun) Responses() []coapMsg {
	var out []coapMsg
	for _, m := range r.Msgs {
		if m.isResponse() {
			out = append(out, m)
		}
	}
	return out
}

// Code returns the code of the last response, "" when none came.
func (r coapRun) Code() string {
	rs := r.Responses()
	if len(rs) == 0 {
		return ""
	}
	return rs[len(rs)-1].Code
}

// lookCoapClient returns the path of coap-client-notls. It fails the test
// when libcoap is not installed: `make test` installs it (`make deps`), so
// a missing peer is a broken setup, not a reason to skip.
func lookCoapClient(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath(coapClient)
	if err != nil {
		t.Fatalf("%s is not installed (%v); run `make deps` (part of `make test`), which installs Debian's libcoap3-bin", coapClient, err)
	}
	return bin
}

// run runs coap-client on path (with an optional "?query") and waits for
// it to exit, so the next invocation can bind the port again.
func (l *libcoap) run(t *testing.T, path string, args ...string) coapRun {
	t.Helper()
	out := filepath.Join(l.dir, "payload")
	os.Remove(out)
	argv := append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(l.port), "-B", "5", "-v", "6", "-o", out}, args...)
	argv = append(argv, "coap://"+l.agent+path)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.bin, argv...)
	b, err := cmd.CombinedOutput()
	r := coapRun{Output: fmt.Sprintf("$ %s %s\n%s", coapClient, strings.Join(argv, " "), b)}
	if err != nil {
		t.Fatalf("%s: %v\n%s", coapClient, err, r.Output)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if m := coapLogLine.FindStringSubmatch(line); m != nil {
			r.Msgs = append(r.Msgs, coapMsg{Type: m[1], Code: m[2], MID: m[3], Token: m[4], Opts: m[5]})
		}
	}
	r.Payload, _ = os.ReadFile(out) // absent when the response had no payload
	return r
}

// eventLog records the agent's events.
type eventLog struct {
	mu  sync.Mutex
	evs []agent.Event
}

func (l *eventLog) count(kind agent.EventKind, path string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.evs {
		if ev.Kind == kind && ev.Path == path {
			n++
		}
	}
	return n
}

// waitCount waits up to timeout for at least n events of kind on path,
// then returns the count.
func (l *eventLog) waitCount(kind agent.EventKind, path string, n int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		c := l.count(kind, path)
		if c >= n || time.Now().After(deadline) {
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startLibcoapAgent runs an agent whose server is 127.0.0.1:port, where
// nobody answers its Register (it keeps retrying); the engine serves the
// requests coming from that address all the same.
func startLibcoapAgent(t *testing.T, port int) (*agent.Agent, *eventLog) {
	t.Helper()
	cfg := agent.Config{ServerURI: fmt.Sprintf("coap://127.0.0.1:%d", port), Endpoint: "libcoap-1", Lifetime: 300 * time.Second}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	log := &eventLog{}
	go func() {
		for ev := range a.Events() {
			log.mu.Lock()
			log.evs = append(log.evs, ev)
			log.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done // de-registration is never answered: at most 10 s
	})
	for deadline := time.Now().Add(5 * time.Second); a.LocalAddr() == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("agent did not open its socket")
		}
	}
	return a, log
}

// TestLibcoap sends requests from libcoap's coap-client (4.3.1, Debian
// libcoap3-bin) to the agent: reads in text, TLV, SenML JSON/CBOR and
// LwM2M CBOR; block-wise reads with 16- and 32-byte blocks; Block2
// requests past the end (4.00); unknown critical options (4.02) against
// unknown elective ones (ignored); Discover; Write-Attributes (pmax=1)
// and an Observe with its notifications and cancellation. coap-client
// cannot repeat a message ID, so the duplicate-request case sends
// hand-made datagrams from a Go socket bound to the same server port.
func TestLibcoap(t *testing.T) {
	bin := lookCoapClient(t)
	port := freeUDPPort(t)
	a, events := startLibcoapAgent(t, port)
	lc := &libcoap{bin: bin, port: port, agent: a.LocalAddr().String(), dir: t.TempDir()}

	t.Run("reads", func(t *testing.T) {
		for _, tc := range []struct {
			name, path, accept, format string
			check                      func([]byte) error
		}{
			{"text", "/3/0/0", "0", "text/plain", wantText("avc")},
			{"text-lifetime", "/1/0/1", "0", "text/plain", wantText("300")},
			{"tlv", "/3/0", "11542", "11542", wantRecords(tlv.Decode, lwm2m.P(3, 0), "/3/0/0", "avc", "/3/0/2", "libcoap-1")},
			{"senml-json", "/3/0/0", "110", "application/senml+json", wantRecords(senml.DecodeJSON, lwm2m.P(3, 0, 0), "/3/0/0", "avc")},
			{"senml-cbor", "/3/0", "112", "application/senml+cbor", wantRecords(senml.DecodeCBOR, lwm2m.P(3, 0), "/3/0/0", "avc", "/3/0/2", "libcoap-1")},
			{"lwm2m-cbor", "/3/0/0", "11544", "11544", wantRecords(lwcbor.Decode, lwm2m.P(3, 0, 0), "/3/0/0", "avc")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := lc.run(t, tc.path, "-A", tc.accept)
				if r.Code() != "2.05" {
					t.Fatalf("code %q, want 2.05\n%s", r.Code(), r.Output)
				}
				if cf, _ := r.Responses()[0].opt("Content-Format"); cf != tc.format {
					t.Errorf("Content-Format %q, want %q", cf, tc.format)
				}
				if err := tc.check(r.Payload); err != nil {
					t.Errorf("%v\n%s", err, r.Output)
				}
			})
		}
	})

	// /1/0 in SenML JSON is stable (no clock or memory values), so its
	// block-wise read must equal the read in one piece. Read whole first:
	// the agent then serves the resource in the smallest size asked for.
	var whole []byte
	t.Run("blockwise", func(t *testing.T) {
		r := lc.run(t, "/1/0", "-A", "110")
		if r.Code() != "2.05" || len(r.Responses()) != 1 {
			t.Fatalf("whole read: code %q in %d responses, want one 2.05\n%s", r.Code(), len(r.Responses()), r.Output)
		}
		whole = r.Payload
		if len(whole) <= 64 {
			t.Fatalf("/1/0 is %d bytes, too short for a block-wise test", len(whole))
		}
		if err := wantRecords(senml.DecodeJSON, lwm2m.P(1, 0), "/1/0/1", "300")(whole); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, path, accept string
			size               int
			check              func([]byte) error
		}{
			{"senml-json-16", "/1/0", "110", 16, func(b []byte) error {
				if !bytes.Equal(b, whole) {
					return fmt.Errorf("reassembled %q, want %q", b, whole)
				}
				return nil
			}},
			{"tlv-32", "/3/0", "11542", 32, wantRecords(tlv.Decode, lwm2m.P(3, 0), "/3/0/0", "avc", "/3/0/2", "libcoap-1")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := lc.run(t, tc.path, "-A", tc.accept, "-b", strconv.Itoa(tc.size))
				rs := r.Responses()
				if r.Code() != "2.05" || len(rs) < 2 {
					t.Fatalf("code %q in %d responses, want 2.05 in several blocks\n%s", r.Code(), len(rs), r.Output)
				}
				if want := (len(r.Payload) + tc.size - 1) / tc.size; len(rs) != want {
					t.Errorf("%d blocks for %d bytes, want %d", len(rs), len(r.Payload), want)
				}
				etag, _ := rs[0].opt("ETag")
				for i, m := range rs {
					more := "M"
					if i == len(rs)-1 {
						more = "_"
					}
					if b2, _ := m.opt("Block2"); m.Code != "2.05" || b2 != fmt.Sprintf("%d/%s/%d", i, more, tc.size) {
						t.Errorf("block %d: %s Block2:%s, want 2.05 Block2:%d/%s/%d", i, m.Code, b2, i, more, tc.size)
					}
					if e, _ := m.opt("ETag"); e != etag || e == "" {
						t.Errorf("block %d: ETag %q, want %q on every block", i, e, etag)
					}
				}
				if err := tc.check(r.Payload); err != nil {
					t.Errorf("%v\n%s", err, r.Output)
				}
			})
		}
	})

	t.Run("edge-cases", func(t *testing.T) {
		if whole == nil {
			t.Skip("needs the whole read of /1/0 from the blockwise test")
		}
		last := (len(whole) - 1) / 16
		for _, tc := range []struct {
			name, path string
			args       []string
			code       string
			payload    string // checked when not empty
		}{
			// RFC 7252 §5.4.1: an unrecognized critical option → 4.02.
			{"critical-option", "/3/0/0", []string{"-O", "65001,0x01"}, "4.02", ""},
			{"critical-option-put", "/3/0/14", []string{"-m", "put", "-t", "0", "-e", "+02:00", "-O", "65003,0x01"}, "4.02", ""},
			// ... while an unrecognized elective one is ignored (§5.4.1).
			{"elective-option", "/3/0/0", []string{"-O", "65000,0x01"}, "2.05", "avc"},
			// Block2 NUM past the end: 4.00, on a resource cached for
			// block-wise transfer and on one that is not.
			{"block2-last", "/1/0", []string{"-A", "110", "-b", fmt.Sprintf("%d,16", last)}, "2.05", string(whole[last*16:])},
			{"block2-past-end", "/1/0", []string{"-A", "110", "-b", fmt.Sprintf("%d,16", last+1)}, "4.00", ""},
			{"block2-past-end-uncached", "/3/0/0", []string{"-b", "1,16"}, "4.00", ""},
			{"block2-far-past-end", "/3/0/0", []string{"-b", "5,16"}, "4.00", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := lc.run(t, tc.path, tc.args...)
				if r.Code() != tc.code {
					t.Fatalf("code %q, want %s\n%s", r.Code(), tc.code, r.Output)
				}
				if tc.payload != "" && string(r.Payload) != tc.payload {
					t.Errorf("payload %q, want %q\n%s", r.Payload, tc.payload, r.Output)
				}
			})
		}
		if n := events.count(agent.EventWrite, "/3/0/14"); n != 0 {
			t.Errorf("%d writes of /3/0/14 reported after a 4.02, want none", n)
		}
		if r := lc.run(t, "/3/0/14"); string(r.Payload) != "+00:00" {
			t.Errorf("/3/0/14 = %q after the refused write, want +00:00\n%s", r.Payload, r.Output)
		}
	})

	t.Run("discover", func(t *testing.T) {
		for _, tc := range []struct {
			path   string
			prefix string
			has    []string
		}{
			{"/3", "</3>;ver=1.1,", []string{",</3/0>,", ",</3/0/0>,", ",</3/0/9>"}},
			{"/3/0", "</3/0>,", []string{",</3/0/0>,", ",</3/0/15>,", ",</3/0/11>;dim=1,"}},
		} {
			r := lc.run(t, tc.path, "-A", "40")
			cf, _ := r.Responses()[0].opt("Content-Format")
			if r.Code() != "2.05" || cf != "application/link-format" {
				t.Errorf("Discover %s: code %q, Content-Format %q\n%s", tc.path, r.Code(), cf, r.Output)
				continue
			}
			body := string(r.Payload)
			if !strings.HasPrefix(body, tc.prefix) {
				t.Errorf("Discover %s = %q, want prefix %q", tc.path, body, tc.prefix)
			}
			for _, s := range tc.has {
				if !strings.Contains(body, s) {
					t.Errorf("Discover %s = %q, lacks %q", tc.path, body, s)
				}
			}
		}
	})

	t.Run("observe", func(t *testing.T) {
		// Write-Attributes: a PUT with Uri-Query and neither payload nor
		// Content-Format (coap-client sends none without -e/-f and -t).
		r := lc.run(t, "/3/0/9?pmax=1", "-m", "put")
		if r.Code() != "2.04" {
			t.Fatalf("Write-Attributes pmax=1: code %q, want 2.04\n%s", r.Code(), r.Output)
		}
		if r := lc.run(t, "/3/0/9", "-A", "40"); string(r.Payload) != "</3/0/9>;pmax=1" {
			t.Errorf("Discover /3/0/9 after Write-Attributes = %q, want </3/0/9>;pmax=1\n%s", r.Payload, r.Output)
		}
		// Observe for 3 s; coap-client then cancels with a GET Observe:1.
		// (This -B 10 overrides run's -B 5: the last one counts.)
		r = lc.run(t, "/3/0/9", "-s", "5", "-B", "10")
		rs := r.Responses()
		if len(rs) == 0 || rs[0].Type != "ACK" || rs[0].Code != "2.05" {
			t.Fatalf("Observe /3/0/9: first response is not an ACK 2.05\n%s", r.Output)
		}
		prev := -1
		for i, m := range rs {
			v, ok := m.opt("Observe")
			n, err := strconv.Atoi(v)
			if !ok || err != nil || n <= prev || m.Code != "2.05" {
				t.Errorf("response %d: %s %s [%s], want 2.05 with an increasing Observe", i, m.Type, m.Code, m.Opts)
			}
			prev = n
		}
		if notifies := len(rs) - 1; notifies < 2 {
			t.Errorf("%d notifications in 5 s with pmax=1, want at least 2\n%s", notifies, r.Output)
		}
		if !strings.HasPrefix(string(r.Payload), "100") {
			t.Errorf("observed payload %q, want battery level 100...", r.Payload)
		}
		// The cancel ended the observation: no notifications after it.
		// The agent's events reach the log asynchronously: let the one of
		// a notification sent just before the cancel arrive first (with
		// pmax=1 an observation still alive would notify twice in the
		// 2.5 s watched below).
		time.Sleep(300 * time.Millisecond)
		n := events.count(agent.EventNotify, "/3/0/9")
		if n < 2 {
			t.Errorf("agent reported %d notifications of /3/0/9, want at least 2", n)
		}
		time.Sleep(2500 * time.Millisecond)
		if m := events.count(agent.EventNotify, "/3/0/9"); m != n {
			t.Errorf("agent sent %d notifications of /3/0/9 after coap-client cancelled the observation", m-n)
		}
	})

	t.Run("duplicate-mid", func(t *testing.T) {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		to := a.LocalAddr().(*net.UDPAddr)
		req := writeRequest(t, 0x5a01, "dup-1", "Europe/Berlin")
		first := exchange(t, conn, to, req, 0x5a01)
		second := exchange(t, conn, to, req, 0x5a01)
		if !bytes.Equal(first, second) {
			t.Errorf("duplicate answered % x, first answer was % x", second, first)
		}
		var m message.Message
		if _, err := coder.DefaultCoder.Decode(first, &m); err != nil || m.Type != message.Acknowledgement || m.Code != codes.Changed || string(m.Token) != "dup-1" {
			t.Errorf("answer %v (%v), want ACK 2.04 with token dup-1", m.String(), err)
		}
		// Applied once: one write event. Wait for a second one a moment.
		if n := events.waitCount(agent.EventWrite, "/3/0/15", 2, time.Second); n != 1 {
			t.Errorf("%d writes of /3/0/15 reported for one request sent twice, want 1", n)
		}
		// Control: the same write under a new message ID is a new request.
		exchange(t, conn, to, writeRequest(t, 0x5a02, "dup-2", "Europe/Paris"), 0x5a02)
		if n := events.waitCount(agent.EventWrite, "/3/0/15", 2, 5*time.Second); n != 2 {
			t.Errorf("%d writes of /3/0/15 reported after a second request, want 2", n)
		}
		conn.Close()
		if r := lc.run(t, "/3/0/15"); string(r.Payload) != "Europe/Paris" {
			t.Errorf("/3/0/15 = %q, want Europe/Paris\n%s", r.Payload, r.Output)
		}
	})
}

// writeRequest encodes a confirmable PUT of a text value to /3/0/15.
func writeRequest(t *testing.T, mid uint16, token, value string) []byte {
	t.Helper()
	m := message.Message{Type: message.Confirmable, MessageID: int32(mid), Code: codes.PUT, Token: []byte(token), Payload: []byte(value)}
	for _, seg := range []string{"3", "0", "15"} {
		m.Options = m.Options.Add(message.Option{ID: message.URIPath, Value: []byte(seg)})
	}
	m.Options = m.Options.Add(message.Option{ID: message.ContentFormat, Value: nil}) // 0: text/plain
	buf := make([]byte, 256)
	n, err := coder.DefaultCoder.Encode(m, buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// exchange sends req to the agent and returns the datagram that answers
// message ID mid, skipping anything else (the agent's Register retries).
func exchange(t *testing.T, conn *net.UDPConn, to *net.UDPAddr, req []byte, mid uint16) []byte {
	t.Helper()
	if _, err := conn.WriteToUDP(req, to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no answer to message ID %#x: %v", mid, err)
		}
		if from.Port != to.Port || n < 4 || buf[0]>>4&3 != byte(message.Acknowledgement) || uint16(buf[2])<<8|uint16(buf[3]) != mid {
			continue
		}
		return append([]byte(nil), buf[:n]...)
	}
}

// wantText checks a text/plain payload.
func wantText(want string) func([]byte) error {
	return func(b []byte) error {
		if string(b) != want {
			return fmt.Errorf("payload %q, want %q", b, want)
		}
		return nil
	}
}

// wantRecords decodes a payload addressed to base with decode (types
// unknown: strings come back as opaque or as strings) and checks the
// values of the given paths, as pairs path, text.
func wantRecords(decode func(lwm2m.Path, []byte, func(lwm2m.Path) lwm2m.Type) ([]lwm2m.Record, error), base lwm2m.Path, pairs ...string) func([]byte) error {
	return func(b []byte) error {
		recs, err := decode(base, b, nil)
		if err != nil {
			return fmt.Errorf("decode %d bytes: %w", len(b), err)
		}
		got := make(map[string]string, len(recs))
		for _, r := range recs {
			v := r.Value
			switch v.Type {
			case lwm2m.TypeOpaque:
				got[r.Path.String()] = string(v.Bytes)
			case lwm2m.TypeString:
				got[r.Path.String()] = v.Str
			case lwm2m.TypeFloat:
				got[r.Path.String()] = strconv.FormatFloat(v.Float, 'f', -1, 64)
			case lwm2m.TypeInteger:
				got[r.Path.String()] = strconv.FormatInt(v.Int, 10)
			case lwm2m.TypeUnsigned:
				got[r.Path.String()] = strconv.FormatUint(v.Uint, 10)
			default:
				got[r.Path.String()] = fmt.Sprint(v)
			}
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			if v, ok := got[pairs[i]]; !ok || v != pairs[i+1] {
				return fmt.Errorf("%s = %q (present %v), want %q; records %v", pairs[i], v, ok, pairs[i+1], got)
			}
		}
		return nil
	}
}
