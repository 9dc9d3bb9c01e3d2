package agent_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/fwpkg"
)

// BenchmarkPullBlock measures the engine's CPU per pulled block: a 1 MiB
// unsigned package pulled over CoAP (1 KiB blocks) from agenttest's file
// server on the virtual network, into a RAM flash, per iteration. The sim
// itself (its server and network) is in the time too; ns/block is an upper
// bound of the engine's share.
func BenchmarkPullBlock(b *testing.B) {
	img := bytes.Repeat([]byte("block bench "), (1<<20)/12)
	var pkg bytes.Buffer
	if _, err := fwpkg.Build(&pkg, fwpkg.Manifest{Name: "bench", Version: "2.0.0"}, bytes.NewReader(img), nil); err != nil {
		b.Fatal(err)
	}
	blocks := (pkg.Len() + 1023) / 1024
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		flash := &agenttest.Flash{Running: "1.0.0"}
		s, err := agenttest.New(agent.Config{Endpoint: "bench-pull", Lifetime: 24 * time.Hour,
			Device: agent.DeviceInfo{FirmwareVersion: "1.0.0"}, Firmware: agent.FirmwareConfig{Handler: flash}}, nil, 1, agenttest.Faults{})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Do(agent.CmdStart{}); err != nil {
			b.Fatal(err)
		}
		if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
			b.Fatal("not registered")
		}
		files := s.FileServer()
		files.Files["p.bin"] = pkg.Bytes()
		b.StartTimer()
		if r := s.Server.Request(codes.PUT, "/5/0/1", []byte(files.URI("p.bin")), agenttest.Uint(message.ContentFormat, 0)); r == nil || r.Code != codes.Changed {
			b.Fatalf("write /5/0/1: %v", r)
		}
		downloaded := func() bool {
			for i := len(s.Events) - 1; i >= 0; i-- {
				if ev := s.Events[i]; ev.Kind == agent.EventFirmware {
					return ev.Firmware.State == agent.FirmwareDownloaded
				}
			}
			return false
		}
		s.RunUntil(s.Now.Add(time.Hour), downloaded)
		if !downloaded() || !flash.Equal(img) {
			b.Fatal("the pull did not complete")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*blocks), "ns/block")
}
