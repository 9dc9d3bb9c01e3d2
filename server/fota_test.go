package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	coapdtls "github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/avc-agent/avc/server"
)

// fwDeviceOptions shape a fwDevice's behaviour.
type fwDeviceOptions struct {
	result0      int           // Update Result before the update (left from an earlier one)
	failResult   int           // reported with State 0 after the download, instead of State 2
	pushSZX      blockwise.SZX // largest push block it takes (0: 1024); asks for it in 2.31
	pullSZX      blockwise.SZX // block size of its coap GETs (0: 1024)
	incompleteAt int64         // answers push block n (> 0) once with 4.08
	deferOnce    bool          // defers the first Update (Result 11), then updates by itself
	stall        bool          // never downloads a pulled image
	dtls         bool          // registers and downloads over coaps
	blockDelay   time.Duration // waits this long before answering each push block
}

// testPSK is the pre-shared key of the fwDevices that use DTLS.
var testPSK = []byte("0123456789abcdef")

// fwDevice is a fake LwM2M client with a Firmware Update object on
// go-coap's UDP client, with go-coap's block-wise layer off so that it
// handles the Block1 and Block2 options itself. It answers:
//
//	GET  /5/0/3, /5/0/5  text/plain State and Update Result, observable
//	PUT  /5/0/1          2.04, then downloads the URI (coap or http)
//	PUT  /5/0/0          Block1 push, 2.31 per block and 2.04 at the end
//	POST /5/0/2          2.04, then updates: State 3, a restart (a new
//	                     socket and a new Register), State 0 Result 1
//	anything else        4.04
//
// It notifies its observers with non-confirmable notifications.
type fwDevice struct {
	t    *testing.T
	s    *server.Server
	ep   string
	opts fwDeviceOptions

	busy    sync.WaitGroup // downloads and updates under way
	closing atomic.Bool    // the test is over: connection errors are expected

	mu             sync.Mutex
	conn           *udpclient.Conn
	state, result  int
	observers      map[int]message.Token // by resource
	seq            uint32
	pkg            []byte // push being received
	image          []byte // the last image received whole
	size1          uint32
	incompleteDone bool
	deferred       bool
	pulls          []string // the URIs it downloaded
	httpStatus     int
	executes       int
	registrations  int
}

func newFWDevice(t *testing.T, s *server.Server, ep string, opts fwDeviceOptions) *fwDevice {
	t.Helper()
	d := &fwDevice{t: t, s: s, ep: ep, opts: opts, result: opts.result0, observers: make(map[int]message.Token)}
	if d.opts.pushSZX == 0 {
		d.opts.pushSZX = blockwise.SZX1024
	}
	if d.opts.pullSZX == 0 {
		d.opts.pullSZX = blockwise.SZX1024
	}
	t.Cleanup(func() {
		d.closing.Store(true)
		d.mu.Lock()
		c := d.conn
		d.mu.Unlock()
		if c != nil {
			c.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	events, stop := s.Subscribe()
	defer stop()
	if err := d.boot(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := server.WaitEvent(ctx, events, ep, server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	return d
}

// boot opens a new socket and registers.
func (d *fwDevice) boot(ctx context.Context) error {
	r := mux.NewRouter()
	r.DefaultHandleFunc(d.serve)
	var (
		conn *udpclient.Conn
		err  error
	)
	if d.opts.dtls {
		conn, err = coapdtls.Dial(d.s.CoAPSAddr().String(), coapdtls.NewDTLSClientOptions(
			piondtls.WithPSK(func([]byte) ([]byte, error) { return testPSK, nil }),
			piondtls.WithPSKIdentityHint([]byte(d.ep)),
			piondtls.WithCipherSuites(piondtls.TLS_PSK_WITH_AES_128_CCM_8),
		), options.WithMux(r), options.WithBlockwise(false, blockwise.SZX1024, time.Second))
	} else {
		conn, err = udp.Dial(d.s.CoAPAddr().String(), options.WithMux(r),
			options.WithBlockwise(false, blockwise.SZX1024, time.Second))
	}
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.conn = conn
	d.mu.Unlock()
	resp, err := conn.Post(ctx, "/rd", message.AppLinkFormat,
		strings.NewReader(`</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</5/0>`),
		queries("ep="+d.ep, "lt=300", "lwm2m=1.1", "b=U")...)
	if err != nil {
		return err
	}
	if resp.Code() != codes.Created {
		return errors.New("register: " + resp.Code().String())
	}
	d.mu.Lock()
	d.registrations++
	d.mu.Unlock()
	return nil
}

func blockOption(id message.OptionID, szx blockwise.SZX, num int64, more bool) message.Option {
	v, _ := blockwise.EncodeBlockOption(szx, num, more)
	var b [4]byte
	n, _ := message.EncodeUint32(b[:], v)
	return message.Option{ID: id, Value: b[:n]}
}

func (d *fwDevice) serve(w mux.ResponseWriter, r *mux.Message) {
	path, _ := r.Path()
	switch {
	case r.Code() == codes.GET && (path == "/5/0/3" || path == "/5/0/5"):
		res := 3
		if path == "/5/0/5" {
			res = 5
		}
		var opts []message.Option
		d.mu.Lock()
		v := d.state
		if res == 5 {
			v = d.result
		}
		if obs, err := r.Observe(); err == nil && obs == 0 {
			d.observers[res] = append(message.Token(nil), r.Token()...)
			d.seq++
			var b [4]byte
			n, _ := message.EncodeUint32(b[:], d.seq)
			opts = append(opts, message.Option{ID: message.Observe, Value: b[:n]})
		} else if err == nil {
			delete(d.observers, res)
		}
		d.mu.Unlock()
		_ = w.SetResponse(codes.Content, message.TextPlain, strings.NewReader(strconv.Itoa(v)), opts...)
	case r.Code() == codes.PUT && path == "/5/0/1":
		body, _ := r.ReadBody()
		_ = w.SetResponse(codes.Changed, message.TextPlain, nil)
		if !d.opts.stall {
			d.busy.Go(func() { d.pull(string(body)) })
		}
	case r.Code() == codes.PUT && path == "/5/0/0":
		d.block1(w, r)
	case r.Code() == codes.POST && path == "/5/0/2":
		d.mu.Lock()
		ok := d.state == 2
		if ok {
			d.executes++
		}
		d.mu.Unlock()
		if !ok {
			_ = w.SetResponse(codes.MethodNotAllowed, message.TextPlain, nil)
			return
		}
		_ = w.SetResponse(codes.Changed, message.TextPlain, nil)
		d.busy.Go(d.update)
	default:
		_ = w.SetResponse(codes.NotFound, message.TextPlain, nil)
	}
}

// set changes State and Update Result and notifies their observers.
func (d *fwDevice) set(state, result int) {
	type note struct {
		tok message.Token
		seq uint32
		v   int
	}
	var notes []note
	d.mu.Lock()
	if state != d.state {
		d.state = state
		if tok, ok := d.observers[3]; ok {
			d.seq++
			notes = append(notes, note{tok, d.seq, state})
		}
	}
	if result != d.result {
		d.result = result
		if tok, ok := d.observers[5]; ok {
			d.seq++
			notes = append(notes, note{tok, d.seq, result})
		}
	}
	conn := d.conn
	d.mu.Unlock()
	for _, n := range notes {
		m := conn.AcquireMessage(context.Background())
		m.SetType(message.NonConfirmable)
		m.SetCode(codes.Content)
		m.SetToken(n.tok)
		m.SetMessageID(conn.GetMessageID())
		m.SetObserve(n.seq)
		m.SetContentFormat(message.TextPlain)
		m.SetBody(strings.NewReader(strconv.Itoa(n.v)))
		if err := conn.WriteMessage(m); err != nil {
			d.t.Logf("device: notify: %v", err)
		}
		conn.ReleaseMessage(m)
	}
}

// downloaded ends a download of img.
func (d *fwDevice) downloaded(img []byte) {
	d.mu.Lock()
	d.image = img
	d.mu.Unlock()
	if d.opts.failResult != 0 {
		d.set(0, d.opts.failResult)
		return
	}
	d.set(2, 0)
}

// pull downloads uri, block by block over coap.
func (d *fwDevice) pull(uri string) {
	d.set(1, 0)
	u, err := url.Parse(uri)
	if err != nil {
		d.t.Errorf("device: package URI %q: %v", uri, err)
		d.set(0, 7)
		return
	}
	var img []byte
	switch u.Scheme {
	case "coap", "coaps": // over the registration's session
		img, err = d.fetchCoAP(u.Path)
	case "http":
		var resp *http.Response
		if resp, err = http.Get(uri); err == nil {
			img, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			d.mu.Lock()
			d.httpStatus = resp.StatusCode
			d.mu.Unlock()
		}
	default:
		d.set(0, 9)
		return
	}
	if err != nil {
		d.t.Errorf("device: download %s: %v", uri, err)
		d.set(0, 4)
		return
	}
	d.mu.Lock()
	d.pulls = append(d.pulls, uri)
	d.mu.Unlock()
	d.downloaded(img)
}

func (d *fwDevice) fetchCoAP(path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	d.mu.Lock()
	conn := d.conn
	d.mu.Unlock()
	var img, etag []byte
	for num := int64(0); ; num++ {
		req, err := conn.NewGetRequest(ctx, path)
		if err != nil {
			return nil, err
		}
		v, _ := blockwise.EncodeBlockOption(d.opts.pullSZX, num, false)
		req.SetOptionUint32(message.Block2, v)
		resp, err := conn.Do(req)
		conn.ReleaseMessage(req)
		if err != nil {
			return nil, err
		}
		if resp.Code() != codes.Content {
			return nil, errors.New("GET " + path + ": " + resp.Code().String())
		}
		tag, _ := resp.ETag()
		if etag == nil {
			etag = append([]byte(nil), tag...)
		} else if !bytes.Equal(tag, etag) {
			return nil, errors.New("ETag changed")
		}
		body, _ := resp.ReadBody()
		img = append(img, body...)
		bv, _ := resp.GetOptionUint32(message.Block2)
		_, _, more, _ := blockwise.DecodeBlockOption(bv)
		if !more {
			return img, nil
		}
	}
}

// block1 takes one block of a push (RFC 7959 §2.5).
func (d *fwDevice) block1(w mux.ResponseWriter, r *mux.Message) {
	time.Sleep(d.opts.blockDelay)
	body, _ := r.ReadBody()
	v, err := r.GetOptionUint32(message.Block1)
	if err != nil {
		_ = w.SetResponse(codes.Changed, message.TextPlain, nil)
		d.set(1, 0)
		d.busy.Go(func() { d.downloaded(body) })
		return
	}
	szx, num, more, _ := blockwise.DecodeBlockOption(v)
	d.mu.Lock()
	if num == 0 {
		d.pkg = d.pkg[:0]
		d.size1, _ = r.GetOptionUint32(message.Size1)
	}
	if d.opts.incompleteAt > 0 && num == d.opts.incompleteAt && !d.incompleteDone {
		d.incompleteDone = true
		d.mu.Unlock()
		_ = w.SetResponse(codes.RequestEntityIncomplete, message.TextPlain, nil)
		return
	}
	if num*szx.Size() != int64(len(d.pkg)) {
		d.mu.Unlock()
		_ = w.SetResponse(codes.RequestEntityIncomplete, message.TextPlain, nil)
		return
	}
	d.pkg = append(d.pkg, body...)
	img := slices.Clone(d.pkg)
	d.mu.Unlock()
	if num == 0 {
		d.set(1, 0)
	}
	if more {
		_ = w.SetResponse(codes.Continue, message.TextPlain, nil,
			blockOption(message.Block1, min(szx, d.opts.pushSZX), num, true))
		return
	}
	_ = w.SetResponse(codes.Changed, message.TextPlain, nil, blockOption(message.Block1, szx, num, false))
	d.busy.Go(func() { d.downloaded(img) })
}

// update installs the image: State 3, then a restart with a new socket and
// a new registration, after which it reports State 0 and Result 1.
func (d *fwDevice) update() {
	time.Sleep(10 * time.Millisecond) // the 2.04 goes first
	d.mu.Lock()
	deferNow := d.opts.deferOnce && !d.deferred
	d.deferred = true
	d.mu.Unlock()
	if deferNow {
		d.set(2, 11)
		time.Sleep(50 * time.Millisecond)
	}
	d.set(3, 0)
	d.mu.Lock()
	old := d.conn
	d.observers = make(map[int]message.Token)
	d.state, d.result = 0, 1
	d.mu.Unlock()
	old.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := d.boot(ctx); err != nil && !d.closing.Load() {
		// The server may finish the update (and the test end) between
		// the registration it saw and the device reading its answer.
		d.t.Errorf("device: boot after the update: %v", err)
	}
}

// fwDeviceReport is what a fwDevice did.
type fwDeviceReport struct {
	image         []byte
	size1         uint32
	pulls         []string
	httpStatus    int
	executes      int
	registrations int
}

// report waits for the device's downloads and updates, and returns what
// it did.
func (d *fwDevice) report() fwDeviceReport {
	d.busy.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	return fwDeviceReport{image: d.image, size1: d.size1, pulls: slices.Clone(d.pulls), httpStatus: d.httpStatus,
		executes: d.executes, registrations: d.registrations}
}

// fotaServer starts a server with an HTTP listener serving fw.bin (20 KiB)
// and a fwDevice registered as dev1.
func fotaServer(t *testing.T, opts fwDeviceOptions) (*server.Server, *fwDevice, []byte) {
	t.Helper()
	dir := t.TempDir()
	fw := testImage(20<<10, 7)
	writeImage(t, dir, "fw.bin", fw, time.Time{})
	cfg := server.Config{FirmwareDir: dir, HTTPAddr: "127.0.0.1:0", RequestTimeout: 5 * time.Second}
	if opts.dtls {
		cfg.CoAPSAddr = "127.0.0.1:0"
		cfg.PSK = func([]byte) ([]byte, error) { return testPSK, nil }
	}
	s := newServer(t, cfg)
	return s, newFWDevice(t, s, "dev1", opts), fw
}

func TestFOTA(t *testing.T) {
	tests := []struct {
		name       string
		opts       fwDeviceOptions
		req        server.FOTARequest
		wantPhase  server.FOTAPhase
		wantResult int
		wantPhases []server.FOTAPhase // seen in order, among others
		wantPulls  int
		wantPushed bool
		wantReboot bool
	}{
		{name: "pull over coap", opts: fwDeviceOptions{result0: 1, pullSZX: blockwise.SZX256},
			req:       server.FOTARequest{Image: "fw.bin"},
			wantPhase: server.FOTADone, wantResult: 1, wantPulls: 1, wantReboot: true,
			wantPhases: []server.FOTAPhase{server.FOTADownloading, server.FOTADownloaded, server.FOTAUpdating, server.FOTADone}},
		{name: "pull over http after a failed update", opts: fwDeviceOptions{result0: 5},
			req:       server.FOTARequest{Image: "fw.bin", Protocol: "http"},
			wantPhase: server.FOTADone, wantResult: 1, wantPulls: 1, wantReboot: true},
		{name: "push", req: server.FOTARequest{Image: "fw.bin", Method: server.FOTAPush},
			wantPhase: server.FOTADone, wantResult: 1, wantPushed: true, wantReboot: true},
		{name: "push in the device's block size, starting over once",
			opts:      fwDeviceOptions{pushSZX: blockwise.SZX256, incompleteAt: 9},
			req:       server.FOTARequest{Image: "fw.bin", Method: server.FOTAPush},
			wantPhase: server.FOTADone, wantResult: 1, wantPushed: true, wantReboot: true},
		{name: "pull over coaps by default over DTLS", opts: fwDeviceOptions{dtls: true},
			req:       server.FOTARequest{Image: "fw.bin"},
			wantPhase: server.FOTADone, wantResult: 1, wantPulls: 1, wantReboot: true},
		{name: "push over DTLS", opts: fwDeviceOptions{dtls: true, pushSZX: blockwise.SZX512},
			req:       server.FOTARequest{Image: "fw.bin", Method: server.FOTAPush},
			wantPhase: server.FOTADone, wantResult: 1, wantPushed: true, wantReboot: true},
		{name: "integrity failure", opts: fwDeviceOptions{failResult: 5},
			req:       server.FOTARequest{Image: "fw.bin"},
			wantPhase: server.FOTAFailed, wantResult: 5, wantPulls: 1},
		{name: "deferred, then done", opts: fwDeviceOptions{deferOnce: true},
			req:       server.FOTARequest{Image: "fw.bin", Method: server.FOTAPush},
			wantPhase: server.FOTADone, wantResult: 1, wantPushed: true, wantReboot: true,
			wantPhases: []server.FOTAPhase{server.FOTAUpdating, server.FOTADeferred, server.FOTADone}},
		{name: "download only", req: server.FOTARequest{Image: "fw.bin", DownloadOnly: true},
			wantPhase: server.FOTADownloaded, wantPulls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, d, fw := fotaServer(t, tt.opts)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			f, err := s.StartFOTA(ctx, "dev1", tt.req)
			if err != nil {
				t.Fatalf("StartFOTA: %v", err)
			}
			updates, stop := f.Watch()
			defer stop()
			var phases []server.FOTAPhase
			for st := range updates {
				if len(phases) == 0 || phases[len(phases)-1] != st.Phase {
					phases = append(phases, st.Phase)
				}
			}
			st, err := f.Wait(ctx)
			if st.Phase != tt.wantPhase || st.Result != tt.wantResult || !st.Final {
				t.Fatalf("ended in %s with result %d (final %v, err %v), want %s with %d; phases %v",
					st.Phase, st.Result, st.Final, err, tt.wantPhase, tt.wantResult, phases)
			}
			var fe *server.FOTAError
			if tt.wantPhase == server.FOTAFailed {
				if !errors.As(err, &fe) || fe.Result != tt.wantResult || !strings.Contains(st.Error, "integrity") {
					t.Errorf("Wait error %v, status error %q", err, st.Error)
				}
			} else if err != nil {
				t.Errorf("Wait: %v", err)
			}
			if i := 0; tt.wantPhases != nil {
				for _, p := range phases {
					if i < len(tt.wantPhases) && p == tt.wantPhases[i] {
						i++
					}
				}
				if i != len(tt.wantPhases) {
					t.Errorf("phases %v, want %v among them", phases, tt.wantPhases)
				}
			}
			dev := d.report()
			if !bytes.Equal(dev.image, fw) {
				t.Errorf("the device holds %d bytes, want the %d of the image", len(dev.image), len(fw))
			}
			if len(dev.pulls) != tt.wantPulls {
				t.Errorf("device pulled %v, want %d", dev.pulls, tt.wantPulls)
			}
			if tt.wantPulls > 0 && dev.pulls[0] != st.URI {
				t.Errorf("device pulled %s, the status says %s", dev.pulls[0], st.URI)
			}
			if tt.opts.dtls && tt.wantPulls > 0 && !strings.HasPrefix(st.URI, "coaps://"+s.CoAPSAddr().String()+"/fw/") {
				t.Errorf("pull URI %s for a DTLS client", st.URI)
			}
			if tt.req.Protocol == "http" {
				if !strings.HasPrefix(st.URI, "http://"+s.HTTPAddr().String()+"/fw/") || st.HTTPStatus != 200 || dev.httpStatus != 200 {
					t.Errorf("http pull of %s: status %d, device saw %d", st.URI, st.HTTPStatus, dev.httpStatus)
				}
			}
			if tt.wantPushed {
				if st.Bytes != int64(len(fw)) || st.Total != int64(len(fw)) || dev.size1 != uint32(len(fw)) {
					t.Errorf("pushed %d/%d bytes, Size1 %d; want %d", st.Bytes, st.Total, dev.size1, len(fw))
				}
			} else if st.Bytes != 0 {
				t.Errorf("bytes %d for a pull, want 0", st.Bytes)
			}
			if tt.wantReboot && (dev.executes != 1 || dev.registrations != 2) {
				t.Errorf("%d executes and %d registrations, want 1 and 2", dev.executes, dev.registrations)
			}
			if !tt.wantReboot && dev.executes != 0 {
				t.Errorf("%d executes, want 0", dev.executes)
			}
			if got, ok := s.FOTAByID(f.ID()); !ok || got != f {
				t.Errorf("FOTAByID(%s) = %v, %v", f.ID(), got, ok)
			}
		})
	}
}

func TestStartFOTAErrors(t *testing.T) {
	s, _, _ := fotaServer(t, fwDeviceOptions{stall: true})
	c := dialFake(t, s) // a client without a Firmware Update object
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	events, stop := s.Subscribe()
	c.register(ctx, "nofw", "300")
	if _, err := server.WaitEvent(ctx, events, "nofw", server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	stop()

	var ce *server.CodeError
	tests := []struct {
		name  string
		ep    string
		req   server.FOTARequest
		check func(error) bool
	}{
		{name: "missing image", ep: "dev1", req: server.FOTARequest{Image: "nope.bin"},
			check: func(err error) bool { return errors.Is(err, server.ErrImageNotFound) }},
		{name: "bad image name", ep: "dev1", req: server.FOTARequest{Image: "../fw.bin"},
			check: func(err error) bool { return errors.Is(err, server.ErrBadImageName) }},
		{name: "bad method", ep: "dev1", req: server.FOTARequest{Image: "fw.bin", Method: "carrier pigeon"},
			check: func(err error) bool { return err != nil && strings.Contains(err.Error(), "method") }},
		{name: "push with a protocol", ep: "dev1", req: server.FOTARequest{Image: "fw.bin", Method: server.FOTAPush, Protocol: "http"},
			check: func(err error) bool { return err != nil }},
		{name: "no coaps listener", ep: "dev1", req: server.FOTARequest{Image: "fw.bin", Protocol: "coaps"},
			check: func(err error) bool { return err != nil && strings.Contains(err.Error(), "coaps") }},
		{name: "unknown client", ep: "nobody", req: server.FOTARequest{Image: "fw.bin"},
			check: func(err error) bool { return errors.Is(err, server.ErrNotRegistered) }},
		{name: "no firmware object", ep: "nofw", req: server.FOTARequest{Image: "fw.bin"},
			check: func(err error) bool { return errors.As(err, &ce) && ce.Code == codes.NotFound }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := s.StartFOTA(ctx, tt.ep, tt.req)
			if f != nil || !tt.check(err) {
				t.Errorf("StartFOTA = %v, %v", f, err)
			}
		})
	}

	// One update at a time per client; cancelling frees the client.
	f, err := s.StartFOTA(ctx, "dev1", server.FOTARequest{Image: "fw.bin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartFOTA(ctx, "dev1", server.FOTARequest{Image: "fw.bin"}); !errors.Is(err, server.ErrFOTABusy) {
		t.Errorf("second StartFOTA: %v, want ErrFOTABusy", err)
	}
	f.Cancel()
	if st, err := f.Wait(ctx); st.Phase != server.FOTAFailed || !errors.Is(err, server.ErrFOTACancelled) {
		t.Errorf("cancelled: %s, %v", st.Phase, err)
	}
	f, err = s.StartFOTA(ctx, "dev1", server.FOTARequest{Image: "fw.bin", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("StartFOTA after cancel: %v", err)
	}
	if _, err := f.Wait(ctx); !errors.Is(err, server.ErrFOTATimeout) {
		t.Errorf("timed out: %v", err)
	}
}

// readSSE returns the events of an SSE stream as "type data" lines, until
// an event of type end.
func readSSE(t *testing.T, body io.Reader) []string {
	t.Helper()
	var events []string
	event := "message"
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			events = append(events, event+" "+strings.TrimPrefix(line, "data: "))
			if event == "end" {
				return events
			}
			event = "message"
		}
	}
	t.Fatalf("stream ended without an end event: %v (%v)", events, sc.Err())
	return nil
}

func TestFOTAHTTPAPI(t *testing.T) {
	// Slow acknowledgements keep the push going while the event stream
	// connects, so that it sees progress whatever the machine's speed.
	s, _, fw := fotaServer(t, fwDeviceOptions{blockDelay: 5 * time.Millisecond})
	base := "http://" + s.HTTPAddr().String()
	call := func(method, path, body string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}

	tests := []struct {
		name, body string
		path       string
		wantStatus int
	}{
		{name: "unknown client", path: "/api/clients/nobody/fota", body: `{"image":"fw.bin"}`, wantStatus: 404},
		{name: "missing image", path: "/api/clients/dev1/fota", body: `{"image":"nope.bin"}`, wantStatus: 400},
		{name: "bad method", path: "/api/clients/dev1/fota", body: `{"image":"fw.bin","method":"fax"}`, wantStatus: 400},
		{name: "bad protocol", path: "/api/clients/dev1/fota", body: `{"image":"fw.bin","protocol":"ftp"}`, wantStatus: 400},
		{name: "unknown field", path: "/api/clients/dev1/fota", body: `{"image":"fw.bin","urgent":true}`, wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if resp, out := call("POST", tt.path, tt.body); resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d: %v", resp.StatusCode, tt.wantStatus, out)
			}
		})
	}

	resp, out := call("POST", "/api/clients/dev1/fota", `{"image":"fw.bin","method":"push","update":true}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start: status %d: %v", resp.StatusCode, out)
	}
	id, _ := out["id"].(string)
	loc := resp.Header.Get("Location")
	if id == "" || loc != "/api/clients/dev1/fota/"+id {
		t.Fatalf("start: id %q, Location %q", id, loc)
	}
	if resp, _ := call("POST", "/api/clients/dev1/fota", `{"image":"fw.bin"}`); resp.StatusCode != http.StatusConflict {
		t.Errorf("second start: status %d, want 409", resp.StatusCode)
	}

	stream, err := http.Get(base + loc + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if ct := stream.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("events: Content-Type %q", ct)
	}
	events := readSSE(t, stream.Body)
	var last map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(events[len(events)-1], " ", 2)[1]), &last); err != nil {
		t.Fatal(err)
	}
	if last["phase"] != "done" || last["final"] != true || last["result"] != 1.0 || last["bytes"] != float64(len(fw)) ||
		last["result_text"] != "firmware updated successfully" || last["state_name"] != "idle" {
		t.Errorf("last event %v", last)
	}
	var sawProgress bool
	for _, ev := range events {
		var st map[string]any
		_ = json.Unmarshal([]byte(strings.SplitN(ev, " ", 2)[1]), &st)
		if b, _ := st["bytes"].(float64); b > 0 && b < float64(len(fw)) {
			sawProgress = true
		}
	}
	if !sawProgress {
		t.Errorf("no progress among %d events", len(events))
	}

	if resp, out := call("GET", loc, ""); resp.StatusCode != 200 || out["phase"] != "done" || out["id"] != id {
		t.Errorf("status: %d %v", resp.StatusCode, out)
	}
	// The stream of an ended update is its final status.
	if ended, err := http.Get(base + loc + "/events"); err != nil {
		t.Fatal(err)
	} else {
		if events := readSSE(t, ended.Body); len(events) != 2 {
			t.Errorf("events of an ended update: %v", events)
		}
		ended.Body.Close()
	}
	for _, path := range []string{"/api/clients/dev1/fota/00000000", "/api/clients/nobody/fota/" + id} {
		if resp, _ := call("GET", path, ""); resp.StatusCode != 404 {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestFOTACancelHTTP(t *testing.T) {
	s, _, _ := fotaServer(t, fwDeviceOptions{stall: true})
	base := "http://" + s.HTTPAddr().String()
	resp, err := http.Post(base+"/api/clients/dev1/fota", "application/json", strings.NewReader(`{"image":"fw.bin"}`))
	if err != nil {
		t.Fatal(err)
	}
	var started map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&started)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || started["uri"] != "coap://"+s.CoAPAddr().String()+"/fw/fw.bin" ||
		started["phase"] != "downloading" || started["total"] != float64(20<<10) {
		t.Errorf("start: %d %v", resp.StatusCode, started)
	}
	loc := resp.Header.Get("Location")
	req, _ := http.NewRequest("DELETE", base+loc, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 || out["phase"] != "failed" || out["error"] != server.ErrFOTACancelled.Error() {
		t.Errorf("cancel: %d %v", resp.StatusCode, out)
	}
}
