package agenttest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// LibcoapServer is one of libcoap's example servers (Debian libcoap3-bin)
// serving a file, started by LibcoapFileServer.
type LibcoapServer struct {
	// Port is the coap port; with a PSK the server takes coaps on Port+1.
	Port int
	// URI is the coap URI of the file LibcoapFileServer serves.
	URI string
	out lockedBuffer
}

// Output is what the server printed so far, for failure messages.
func (s *LibcoapServer) Output() string { return s.out.String() }

// LibcoapFileServer runs server (coap-server-notls, coap-server-openssl
// or coap-server-gnutls) on loopback for the rest of the test and PUTs
// data to it as /name with coap-client-notls, block-wise; the server then
// serves it with Block2, ETag and Size2. With a non-empty psk it also
// takes DTLS-PSK on Port+1 (identity hint "CoAP", key psk). A missing
// binary fails the test: `make deps` installs them.
func LibcoapFileServer(t testing.TB, server, psk, name string, data []byte) *LibcoapServer {
	t.Helper()
	srvBin, err := exec.LookPath(server)
	if err != nil {
		t.Fatalf("%s is not installed (%v); run `make deps` (part of `make test`)", server, err)
	}
	client, err := exec.LookPath("coap-client-notls")
	if err != nil {
		t.Fatalf("coap-client-notls is not installed (%v); run `make deps` (part of `make test`)", err)
	}
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &LibcoapServer{Port: freeUDPPair(t)}
	args := []string{"-A", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-d", "10"}
	if psk != "" {
		args = append(args, "-k", psk, "-h", "CoAP")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, srvBin, args...)
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	uri := "coap://127.0.0.1:" + strconv.Itoa(s.Port) + "/" + name
	s.URI = uri
	var put []byte
	for try := 0; try < 30; try++ { // until the server listens
		put, err = exec.Command(client, "-m", "put", "-b", "1024", "-B", "30", "-f", file, uri).CombinedOutput()
		if err == nil {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("upload to %s: %v\n%s\nserver: %s", server, err, put, s.Output())
	return nil
}

// freeUDPPair returns a port p such that p and p+1 were free on loopback.
func freeUDPPair(t testing.TB) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		c2, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p+1))
		c.Close()
		if err == nil {
			c2.Close()
			return p
		}
	}
	t.Fatal("no two free adjacent UDP ports")
	return 0
}

// lockedBuffer is a bytes.Buffer a process writes to while tests read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
