package agent_test

import (
	"net"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
)

func TestUDPPort(t *testing.T) {
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	key := peer.LocalAddr().String()
	p, err := agent.ListenUDP(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send(key, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	if ip := from.(*net.UDPAddr).IP; !ip.IsLoopback() {
		t.Errorf("port bound %v for a loopback server, want loopback", ip)
	}
	if _, err := peer.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-p.Recv():
		if d.Peer != key || string(d.Data) != "pong" {
			t.Errorf("received %+v, want pong from %s", d, key)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received")
	}
	if err := p.Send("no-such-host.invalid:1", []byte("x")); err == nil {
		t.Error("send to an unresolvable peer succeeded")
	}
	p.Close()
	if _, ok := <-p.Recv(); ok {
		t.Error("Recv still open after Close")
	}
	if p.Err() != nil {
		t.Errorf("Err after Close = %v, want nil", p.Err())
	}
	if _, err := agent.ListenUDP("no-such-host.invalid:5683"); err == nil {
		t.Error("ListenUDP resolved an invalid host")
	}
}

func TestUDPPortLocalAddr(t *testing.T) {
	p, err := agent.ListenUDP("127.0.0.1:5683")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	addr, ok := p.LocalAddr().(*net.UDPAddr)
	if !ok || !addr.IP.IsLoopback() || addr.Port == 0 {
		t.Errorf("LocalAddr = %v, want a bound loopback address", p.LocalAddr())
	}
}
