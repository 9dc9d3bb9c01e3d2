package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	coapdtls "github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/avc-agent/avc/server"
)

// testImage returns n bytes that differ with seed.
func testImage(n int, seed byte) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = seed
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// writeImage writes content as image name of dir with modification time
// mod (zero: now).
func writeImage(t *testing.T, dir, name string, content []byte, mod time.Time) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if !mod.IsZero() {
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
}

// firmwareServer starts a server serving a directory that holds fw.bin
// (100 KiB) and small.bin (600 bytes), with an HTTP listener.
func firmwareServer(t *testing.T, cfg server.Config) (s *server.Server, dir string, fw []byte) {
	t.Helper()
	dir = t.TempDir()
	fw = testImage(100<<10, 1)
	writeImage(t, dir, "fw.bin", fw, time.Time{})
	writeImage(t, dir, "small.bin", fw[:600], time.Time{})
	cfg.FirmwareDir = dir
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	return newServer(t, cfg), dir, fw
}

// rawClient speaks CoAP over a bare UDP socket, so that nothing but the
// test builds and reads the block options.
type rawClient struct {
	t   *testing.T
	c   net.Conn
	mid uint16
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, mid: 100}
}

// do sends a confirmable request with the Uri-Path segments segs, which
// set completes, and returns the piggybacked answer.
func (c *rawClient) do(code codes.Code, segs []string, set func(m *pool.Message)) *pool.Message {
	c.t.Helper()
	c.mid++
	m := pool.NewMessage(context.Background())
	m.SetType(message.Confirmable)
	m.SetMessageID(int32(c.mid))
	m.SetCode(code)
	m.SetToken(message.Token{0xfa, byte(c.mid >> 8), byte(c.mid)})
	for _, s := range segs {
		m.AddOptionString(message.URIPath, s)
	}
	if set != nil {
		set(m)
	}
	b, err := m.MarshalWithEncoder(coder.DefaultCoder)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = c.c.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		n, err := c.c.Read(buf)
		if err != nil {
			c.t.Fatalf("no answer to MID %d: %v", c.mid, err)
		}
		resp := pool.NewMessage(context.Background())
		if _, err := resp.UnmarshalWithDecoder(coder.DefaultCoder, buf[:n]); err != nil {
			c.t.Fatalf("answer %x: %v", buf[:n], err)
		}
		if resp.Type() == message.Acknowledgement && resp.MessageID() == int32(c.mid) {
			if !bytes.Equal(resp.Token(), m.Token()) {
				c.t.Fatalf("answer token %x, want %x", resp.Token(), m.Token())
			}
			return resp
		}
	}
}

func block(t *testing.T, szx blockwise.SZX, num int64, more bool) uint32 {
	t.Helper()
	v, err := blockwise.EncodeBlockOption(szx, num, more)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// fetchCoAP reads image name from block start on in blocks of szx, checks
// every answer and returns the bytes and the ETag.
func fetchCoAP(t *testing.T, c *rawClient, name string, szx blockwise.SZX, start int64, size int) ([]byte, []byte) {
	t.Helper()
	var got, etag []byte
	for num := start; ; num++ {
		resp := c.do(codes.GET, []string{"fw", name}, func(m *pool.Message) {
			m.SetOptionUint32(message.Block2, block(t, szx, num, false))
			if num == start && start > 0 {
				m.SetOptionUint32(message.Size2, 0) // asks for the size
			}
		})
		if resp.Code() != codes.Content {
			t.Fatalf("block %d: code %v", num, resp.Code())
		}
		if cf, err := resp.ContentFormat(); err != nil || cf != message.AppOctets {
			t.Fatalf("block %d: content format %v, %v; want 42", num, cf, err)
		}
		tag, err := resp.ETag()
		if err != nil || len(tag) != 8 {
			t.Fatalf("block %d: ETag %x, %v; want 8 bytes", num, tag, err)
		}
		if etag == nil {
			etag = append([]byte(nil), tag...)
		} else if !bytes.Equal(tag, etag) {
			t.Fatalf("block %d: ETag %x, block %d had %x", num, tag, start, etag)
		}
		v, err := resp.GetOptionUint32(message.Block2)
		if err != nil {
			t.Fatalf("block %d: no Block2: %v", num, err)
		}
		rszx, rnum, more, err := blockwise.DecodeBlockOption(v)
		if err != nil || rszx != szx || rnum != num {
			t.Fatalf("block %d: Block2 %d/%v/%d (%v), want %d/_/%d", num, rnum, more, rszx, err, num, szx)
		}
		size2, err := resp.GetOptionUint32(message.Size2)
		switch {
		case num == start && (err != nil || int(size2) != size):
			t.Fatalf("block %d: Size2 %d, %v; want %d", num, size2, err, size)
		case num != start && err == nil:
			t.Fatalf("block %d: Size2 %d unasked", num, size2)
		}
		body, err := resp.ReadBody()
		if err != nil {
			t.Fatal(err)
		}
		if more && len(body) != int(szx.Size()) {
			t.Fatalf("block %d: %d bytes with more to come, want %d", num, len(body), szx.Size())
		}
		got = append(got, body...)
		if !more {
			return got, etag
		}
	}
}

func TestFirmwareCoAPBlockwise(t *testing.T) {
	s, _, fw := firmwareServer(t, server.Config{})
	sum := sha256.Sum256(fw)
	c := dialRaw(t, s.CoAPAddr().String())
	tests := []struct {
		name  string
		szx   blockwise.SZX
		start int64
	}{
		{name: "64 bytes from block 0", szx: blockwise.SZX64, start: 0},
		{name: "64 bytes from block 37", szx: blockwise.SZX64, start: 37},
		{name: "1024 bytes from block 0", szx: blockwise.SZX1024, start: 0},
		{name: "1024 bytes from block 37", szx: blockwise.SZX1024, start: 37},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, etag := fetchCoAP(t, c, "fw.bin", tt.szx, tt.start, len(fw))
			if want := fw[tt.start*tt.szx.Size():]; !bytes.Equal(got, want) {
				t.Errorf("got %d bytes, want the %d from byte %d", len(got), len(want), tt.start*tt.szx.Size())
			}
			if !bytes.Equal(etag, sum[:8]) {
				t.Errorf("ETag %x, want %x", etag, sum[:8])
			}
		})
	}
}

func TestFirmwareCoAPBlockSize(t *testing.T) {
	s, _, fw := firmwareServer(t, server.Config{})
	c := dialRaw(t, s.CoAPAddr().String())
	tests := []struct {
		name      string
		image     string
		block2    int64 // -1: none
		wantBlock int64 // -1: none
		wantLen   int
	}{
		{name: "no Block2: block 0 of 1024", image: "fw.bin", block2: -1,
			wantBlock: int64(block(t, blockwise.SZX1024, 0, true)), wantLen: 1024},
		{name: "BERT answered with 1024", image: "fw.bin", block2: int64(block(t, blockwise.SZXBERT, 2, false)),
			wantBlock: int64(block(t, blockwise.SZX1024, 2, true)), wantLen: 1024},
		{name: "last block", image: "fw.bin", block2: int64(block(t, blockwise.SZX1024, 99, false)),
			wantBlock: int64(block(t, blockwise.SZX1024, 99, false)), wantLen: 1024},
		{name: "small image whole", image: "small.bin", block2: -1, wantBlock: -1, wantLen: 600},
		{name: "small image in blocks", image: "small.bin", block2: int64(block(t, blockwise.SZX512, 1, false)),
			wantBlock: int64(block(t, blockwise.SZX512, 1, false)), wantLen: 88},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := c.do(codes.GET, []string{"fw", tt.image}, func(m *pool.Message) {
				if tt.block2 >= 0 {
					m.SetOptionUint32(message.Block2, uint32(tt.block2))
				}
			})
			if resp.Code() != codes.Content {
				t.Fatalf("code %v", resp.Code())
			}
			v, err := resp.GetOptionUint32(message.Block2)
			switch {
			case tt.wantBlock < 0 && err == nil:
				t.Errorf("Block2 %#x, want none", v)
			case tt.wantBlock >= 0 && (err != nil || int64(v) != tt.wantBlock):
				t.Errorf("Block2 %#x (%v), want %#x", v, err, tt.wantBlock)
			}
			body, _ := resp.ReadBody()
			if len(body) != tt.wantLen {
				t.Errorf("%d bytes, want %d", len(body), tt.wantLen)
			}
			if tt.image == "small.bin" && tt.block2 < 0 && !bytes.Equal(body, fw[:600]) {
				t.Error("small image content differs")
			}
		})
	}
}

func TestFirmwareCoAPETag(t *testing.T) {
	s, dir, fw := firmwareServer(t, server.Config{})
	c := dialRaw(t, s.CoAPAddr().String())
	etag := func() []byte {
		t.Helper()
		resp := c.do(codes.GET, []string{"fw", "fw.bin"}, func(m *pool.Message) {
			m.SetOptionUint32(message.Block2, block(t, blockwise.SZX256, 3, false))
		})
		tag, err := resp.ETag()
		if err != nil {
			t.Fatalf("no ETag: %v", err)
		}
		return tag
	}
	first := etag()
	if second := etag(); !bytes.Equal(first, second) {
		t.Errorf("ETag changed from %x to %x with the same file", first, second)
	}
	sum := sha256.Sum256(fw)
	if !bytes.Equal(first, sum[:8]) {
		t.Errorf("ETag %x, want %x", first, sum[:8])
	}

	// The same size, another content and time.
	fw2 := testImage(len(fw), 2)
	writeImage(t, dir, "fw.bin", fw2, time.Now().Add(time.Minute))
	sum2 := sha256.Sum256(fw2)
	if third := etag(); !bytes.Equal(third, sum2[:8]) {
		t.Errorf("ETag after the change %x, want %x", third, sum2[:8])
	}
	got, _ := fetchCoAP(t, c, "fw.bin", blockwise.SZX1024, 0, len(fw2))
	if !bytes.Equal(got, fw2) {
		t.Error("content after the change differs")
	}
}

func TestFirmwareCoAPErrors(t *testing.T) {
	s, _, _ := firmwareServer(t, server.Config{})
	c := dialRaw(t, s.CoAPAddr().String())
	tests := []struct {
		name string
		code codes.Code
		segs []string
		set  func(m *pool.Message)
		want codes.Code
	}{
		{name: "missing image", code: codes.GET, segs: []string{"fw", "missing.bin"}, want: codes.NotFound},
		{name: "no image", code: codes.GET, segs: []string{"fw"}, want: codes.NotFound},
		{name: "two segments", code: codes.GET, segs: []string{"fw", "fw.bin", "x"}, want: codes.NotFound},
		{name: "dot dot", code: codes.GET, segs: []string{"fw", ".."}, want: codes.BadRequest},
		{name: "dot dot inside", code: codes.GET, segs: []string{"fw", "a..b"}, want: codes.BadRequest},
		{name: "hidden", code: codes.GET, segs: []string{"fw", ".upload-1"}, want: codes.BadRequest},
		{name: "slash in a segment", code: codes.GET, segs: []string{"fw", "../fw.bin"}, want: codes.BadRequest},
		{name: "space", code: codes.GET, segs: []string{"fw", "a b"}, want: codes.BadRequest},
		{name: "PUT", code: codes.PUT, segs: []string{"fw", "fw.bin"}, want: codes.MethodNotAllowed},
		{name: "block beyond the end", code: codes.GET, segs: []string{"fw", "fw.bin"}, want: codes.BadOption,
			set: func(m *pool.Message) { m.SetOptionUint32(message.Block2, block(t, blockwise.SZX1024, 100, false)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.do(tt.code, tt.segs, tt.set).Code(); got != tt.want {
				t.Errorf("code %v, want %v", got, tt.want)
			}
		})
	}

	// Without a firmware directory, /fw is an unknown path.
	s2 := newServer(t, server.Config{})
	if got := dialRaw(t, s2.CoAPAddr().String()).do(codes.GET, []string{"fw", "fw.bin"}, nil).Code(); got != codes.NotFound {
		t.Errorf("without FirmwareDir: code %v, want 4.04", got)
	}
}

func TestFirmwareCoAPS(t *testing.T) {
	key := []byte("0123456789abcdef")
	s, _, fw := firmwareServer(t, server.Config{CoAPSAddr: "127.0.0.1:0",
		PSK: func([]byte) ([]byte, error) { return key, nil }})
	conn, err := coapdtls.Dial(s.CoAPSAddr().String(), coapdtls.NewDTLSClientOptions(
		piondtls.WithPSK(func([]byte) ([]byte, error) { return key, nil }),
		piondtls.WithPSKIdentityHint([]byte("dev1")),
		piondtls.WithCipherSuites(piondtls.TLS_PSK_WITH_AES_128_CCM_8),
	), options.WithBlockwise(false, blockwise.SZX1024, time.Second))
	if err != nil {
		t.Fatalf("dial coaps: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var got []byte
	for num := int64(0); ; num++ {
		var opt [4]byte
		n, _ := message.EncodeUint32(opt[:], block(t, blockwise.SZX512, num, false))
		resp, err := conn.Get(ctx, "/fw/fw.bin", message.Option{ID: message.Block2, Value: opt[:n]})
		if err != nil {
			t.Fatalf("block %d: %v", num, err)
		}
		if resp.Code() != codes.Content {
			t.Fatalf("block %d: code %v", num, resp.Code())
		}
		body, _ := resp.ReadBody()
		got = append(got, body...)
		v, _ := resp.GetOptionUint32(message.Block2)
		if _, rnum, more, _ := blockwise.DecodeBlockOption(v); rnum != num {
			t.Fatalf("block %d answered as %d", num, rnum)
		} else if !more {
			break
		}
	}
	if !bytes.Equal(got, fw) {
		t.Errorf("got %d bytes over coaps, want the %d of the image", len(got), len(fw))
	}
}

func TestFirmwareHTTP(t *testing.T) {
	s, _, fw := firmwareServer(t, server.Config{})
	sum := sha256.Sum256(fw)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	url := "http://" + s.HTTPAddr().String() + "/fw/"
	tests := []struct {
		name       string
		method     string
		image      string
		header     map[string]string
		wantStatus int
		wantBody   []byte // nil: not checked
		wantLength string // Content-Length, "" not checked
	}{
		{name: "whole", method: "GET", image: "fw.bin", wantStatus: 200, wantBody: fw},
		{name: "range", method: "GET", image: "fw.bin", header: map[string]string{"Range": "bytes=100-199"},
			wantStatus: 206, wantBody: fw[100:200]},
		{name: "open range", method: "GET", image: "fw.bin", header: map[string]string{"Range": "bytes=102000-"},
			wantStatus: 206, wantBody: fw[102000:]},
		{name: "if-range matching", method: "GET", image: "fw.bin",
			header: map[string]string{"Range": "bytes=1000-1999", "If-Range": etag}, wantStatus: 206, wantBody: fw[1000:2000]},
		{name: "if-range stale", method: "GET", image: "fw.bin",
			header: map[string]string{"Range": "bytes=1000-1999", "If-Range": `"0123"`}, wantStatus: 200, wantBody: fw},
		{name: "if-none-match", method: "GET", image: "fw.bin", header: map[string]string{"If-None-Match": etag},
			wantStatus: 304},
		{name: "head", method: "HEAD", image: "fw.bin", wantStatus: 200, wantBody: []byte{}, wantLength: "102400"},
		{name: "missing", method: "GET", image: "missing.bin", wantStatus: 404},
		{name: "bad name", method: "GET", image: ".upload-1", wantStatus: 400},
		{name: "unsatisfiable", method: "GET", image: "fw.bin", header: map[string]string{"Range": "bytes=200000-"},
			wantStatus: 416},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, url+tt.image, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantBody != nil && !bytes.Equal(body, tt.wantBody) {
				t.Errorf("body of %d bytes, want %d", len(body), len(tt.wantBody))
			}
			if tt.wantLength != "" && resp.Header.Get("Content-Length") != tt.wantLength {
				t.Errorf("Content-Length %q, want %q", resp.Header.Get("Content-Length"), tt.wantLength)
			}
			if tt.wantStatus < 300 {
				if got := resp.Header.Get("ETag"); got != etag {
					t.Errorf("ETag %q, want %q", got, etag)
				}
				if got := resp.Header.Get("Content-Type"); got != "application/octet-stream" {
					t.Errorf("Content-Type %q", got)
				}
			}
		})
	}
}

func TestFirmwareUploadAndList(t *testing.T) {
	s, dir, fw := firmwareServer(t, server.Config{FirmwareMaxSize: 10000})
	base := "http://" + s.HTTPAddr().String()
	put := func(name string, body []byte) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("PUT", base+"/api/firmware/"+name, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	img := testImage(5000, 3)
	sum := sha256.Sum256(img)
	tests := []struct {
		name       string
		image      string
		body       []byte
		wantStatus int
	}{
		{name: "new", image: "new.bin", body: img, wantStatus: 201},
		{name: "replace", image: "new.bin", body: img, wantStatus: 200},
		{name: "too large", image: "big.bin", body: testImage(10001, 4), wantStatus: 413},
		{name: "at the limit", image: "limit.bin", body: testImage(10000, 4), wantStatus: 201},
		{name: "hidden name", image: ".x", body: img, wantStatus: 400},
		{name: "escaped slash", image: "a%2Fb", body: img, wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := put(tt.image, tt.body)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %v", status, tt.wantStatus, out)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(dir, "new.bin")); err != nil || !bytes.Equal(b, img) {
		t.Errorf("new.bin on disk: %d bytes, %v", len(b), err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.Name() == "big.bin" {
			t.Errorf("left behind: %s", e.Name())
		}
	}

	resp, err := http.Get(base + "/api/firmware")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []server.FirmwareImage
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, img := range list {
		names = append(names, img.Name)
	}
	if got := strings.Join(names, ","); got != "fw.bin,limit.bin,new.bin,small.bin" {
		t.Fatalf("listed %s", got)
	}
	fwSum := sha256.Sum256(fw)
	if got := list[0]; got.Size != int64(len(fw)) || got.SHA256 != hex.EncodeToString(fwSum[:]) ||
		got.CoAPURL != "coap://"+s.CoAPAddr().String()+"/fw/fw.bin" ||
		got.HTTPURL != "http://"+s.HTTPAddr().String()+"/fw/fw.bin" || got.CoAPSURL != "" {
		t.Errorf("fw.bin listed as %+v", got)
	}
	if got := list[2]; got.SHA256 != hex.EncodeToString(sum[:]) || got.Size != 5000 {
		t.Errorf("new.bin listed as %+v", got)
	}

	// The uploaded image is served at once, with its own ETag.
	c := dialRaw(t, s.CoAPAddr().String())
	got, etag := fetchCoAP(t, c, "new.bin", blockwise.SZX1024, 0, len(img))
	if !bytes.Equal(got, img) || !bytes.Equal(etag, sum[:8]) {
		t.Errorf("new.bin over coap: %d bytes, ETag %x", len(got), etag)
	}

	// The Go API.
	if _, err := s.PutFirmware("api.bin", bytes.NewReader(img)); err != nil {
		t.Errorf("PutFirmware: %v", err)
	}
	if _, err := s.PutFirmware("../api.bin", bytes.NewReader(img)); err == nil {
		t.Error("PutFirmware ../api.bin: no error")
	}
	imgs, err := s.FirmwareImages()
	if err != nil || len(imgs) != 5 {
		t.Errorf("FirmwareImages: %d images, %v", len(imgs), err)
	}
}
