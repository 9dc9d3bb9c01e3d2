package host_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/wasm/host"
)

// An agent running avc.wasm, configured like every avc embedding and shaped
// like the native agent.Agent.
func ExampleNew() {
	wasm, err := os.ReadFile("build/avc.wasm")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a, err := host.New(ctx, wasm, map[string]string{
		agent.EnvServerURI: "coap://127.0.0.1:5683",
		agent.EnvEndpoint:  "wasm-demo",
		agent.EnvStateDir:  "/var/lib/avc",
	}, host.WithCompilationCacheDir(os.TempDir()+"/avc-wazero-cache"))
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for ev := range a.Events() {
			fmt.Println("event:", ev.Kind, ev.Location)
		}
	}()
	if err := a.Run(ctx); err != nil { // until Ctrl-C, then de-registers
		log.Fatal(err)
	}
}

// Driving one module instance by hand: what a fleet simulator does for each
// simulated device, with its own clock and network.
func ExampleRuntime() {
	ctx := context.Background()
	wasm, err := os.ReadFile("build/avc.wasm")
	if err != nil {
		log.Fatal(err)
	}
	rt, err := host.NewRuntime(ctx, wasm)
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close(ctx)
	m, err := rt.Instantiate(ctx, host.Imports{
		SockSend: func(peer string, data []byte) error {
			fmt.Printf("send %d bytes to %s\n", len(data), peer)
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := m.Init(map[string]string{agent.EnvServerURI: "coap://192.0.2.1", agent.EnvEndpoint: "sim-1"}, nil); err != nil {
		log.Fatal(err)
	}
	if err := m.Command(now, agent.CmdStart{}); err != nil {
		log.Fatal(err)
	}
	next, _ := m.Step(now)
	fmt.Println("step again in", next.Sub(now) > 0)
	// The Register is unanswered: feed the server's datagrams with
	// m.OnDatagram, call m.Step at each deadline and drain m.PollEvent.
}

// firmwareSlot is a host's image store: here a file, installed by a
// boot loader that looks for it at the next boot.
type firmwareSlot struct {
	f *os.File
}

func (s *firmwareSlot) StreamOpen(uri string, offset int64) error {
	f, err := os.OpenFile("/var/lib/avc/slot-b.img", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err // Update Result 2 by default
	}
	if err := f.Truncate(offset); err != nil {
		f.Close()
		return err
	}
	_, err = f.Seek(offset, 0)
	s.f = f
	return err
}
func (s *firmwareSlot) StreamWrite(p []byte) error { _, err := s.f.Write(p); return err }
func (s *firmwareSlot) StreamFinish() error        { return s.f.Sync() }
func (s *firmwareSlot) Sync() error                { return s.f.Sync() } // agent.FirmwareSyncer
func (s *firmwareSlot) Reset() {
	if s.f != nil {
		s.f.Close()
	}
	os.Remove("/var/lib/avc/slot-b.img")
}
func (s *firmwareSlot) PerformUpgrade(pkg agent.FirmwarePackage) error {
	// Check the slot against pkg.SHA256, mark it for the boot loader;
	// return agent.ErrFirmwareDeferred to wait, agent.ErrFirmwareIntegrity
	// for a bad image. nil: the module restarts its engine as after a
	// reboot and asks Booted.
	return nil
}
func (s *firmwareSlot) Booted(pkg agent.FirmwarePackage) (running string, installed bool) {
	return pkg.Version, true // what the boot loader reports
}

// Firmware update: the server writes a coap:// Package URI (or pushes the
// package), the module downloads and verifies it and streams the image
// into the host's handler, which installs it on Update.
func ExampleWithFirmware() {
	wasm, err := os.ReadFile("build/avc.wasm")
	if err != nil {
		log.Fatal(err)
	}
	a, err := host.New(context.Background(), wasm, map[string]string{
		agent.EnvServerURI: "coap://127.0.0.1:5683",
		agent.EnvEndpoint:  "wasm-fota",
		agent.EnvStateDir:  "/var/lib/avc",
		agent.EnvFWVersion: "1.0.0",
	}, host.WithFirmware(&firmwareSlot{}))
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for ev := range a.Events() {
			if ev.Kind == agent.EventFirmware {
				fmt.Println("firmware:", ev.Firmware.State, ev.Firmware.Result, ev.Firmware.Bytes)
			}
		}
	}()
	if err := a.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}
