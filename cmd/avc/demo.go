package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/fwpkg"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// demo starts the embedded server and a native agent on loopback, shows
// the registration, a Read of /3/0, a lifetime write with the update it
// causes, a firmware update of a signed package (pulled over CoAP,
// verified, installed, the new version reported), and the
// de-registration, then returns.
func demo(ctx context.Context, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	stdout = &syncWriter{w: stdout} // the event printer writes too
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	work, err := os.MkdirTemp("", "avc-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fwDir := filepath.Join(work, "firmware")
	if err := os.Mkdir(fwDir, 0o700); err != nil {
		return err
	}
	pub, key, err := fwpkg.GenerateKey()
	if err != nil {
		return err
	}

	srv := server.New(server.Config{CoAPAddr: "127.0.0.1:0", Logger: logger, FirmwareDir: fwDir})
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("demo: start server: %w", err)
	}
	defer srv.Close()
	events, unsubscribe := srv.Subscribe()
	defer unsubscribe()
	uri := "coap://" + srv.CoAPAddr().String()
	fmt.Fprintf(stdout, "server: LwM2M server listening on %s\n", uri)

	const ep = "avc-demo"
	cfg := agent.Config{ServerURI: uri, Endpoint: ep, Lifetime: 300 * time.Second, Logger: logger,
		StateDir: filepath.Join(work, "agent"), Device: agent.DeviceInfo{FirmwareVersion: "1.0.0"},
		Firmware: agent.FirmwareConfig{TrustedKeys: []ed25519.PublicKey{pub}, RequireSignature: true}}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	agentCtx, stopAgent := context.WithCancel(ctx)
	defer stopAgent()
	done := make(chan error, 1)
	go func() { done <- a.Run(agentCtx) }()
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		var shown int64 // bytes at the last progress line
		for ev := range a.Events() {
			switch {
			case ev.Kind == agent.EventFirmware && ev.Firmware.State == agent.FirmwareDownloading && ev.Firmware.Bytes > 0:
				// A progress bar each time another 128 KiB has come,
				// whatever the steps of the progress events (a line each,
				// so that it reads the same in a terminal and in a log).
				f := ev.Firmware
				if f.Bytes < shown {
					shown = 0 // the download started over
				}
				if f.Bytes>>17 > shown>>17 || f.Bytes == f.Total {
					shown = f.Bytes
					var b strings.Builder
					renderProgress(&b, "downloading", f.Bytes, f.Total)
					fmt.Fprintf(stdout, "agent:  %s\n", strings.TrimSpace(b.String()))
				}
			default:
				fmt.Fprint(stdout, "agent:  ")
				printEvent(stdout, ev)
			}
		}
	}()

	ev, err := server.WaitEvent(ctx, events, ep, server.EventRegistered)
	if err != nil {
		return fmt.Errorf("demo: waiting for the registration: %w", err)
	}
	fmt.Fprintf(stdout, "server: %s registered from %s: lifetime %s, lwm2m %s, binding %s, objects %s\n",
		ev.Endpoint, ev.Addr, ev.Lifetime, ev.Version, ev.Binding, linksString(ev))

	resp, err := srv.Read(ctx, ep, lwm2m.P(3, 0), lwm2m.FormatTLV)
	if err != nil {
		return fmt.Errorf("demo: read /3/0: %w", err)
	}
	fmt.Fprintf(stdout, "server: Read /3/0 -> %s (%s, %d bytes)\n", codeText(resp), resp.ContentFormat, len(resp.Payload))
	for _, r := range resp.Records {
		fmt.Fprintf(stdout, "          %-10s %-28s %s\n", r.Path, deviceResourceName(r.Path), r.Value)
	}

	fmt.Fprintln(stdout, "server: Write /1/0/1 (lifetime) = 120")
	if _, err := srv.Write(ctx, ep, lwm2m.P(1, 0, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Int(120)}}); err != nil {
		return fmt.Errorf("demo: write /1/0/1: %w", err)
	}
	up, err := server.WaitEvent(ctx, events, ep, server.EventUpdated)
	if err != nil {
		return fmt.Errorf("demo: waiting for the registration update: %w", err)
	}
	fmt.Fprintf(stdout, "server: %s sent a Registration Update: lifetime now %s\n", up.Endpoint, up.Lifetime)

	if err := demoFirmware(ctx, stdout, srv, events, ep, key); err != nil {
		return err
	}

	fmt.Fprintln(stdout, "demo:   stopping the agent")
	stopAgent()
	if _, err := server.WaitEvent(ctx, events, ep, server.EventDeregistered); err != nil {
		return fmt.Errorf("demo: waiting for the de-registration: %w", err)
	}
	fmt.Fprintf(stdout, "server: %s de-registered\n", ep)
	if err := <-done; err != nil {
		return err
	}
	<-printed
	fmt.Fprintln(stdout, "demo:   done")
	return nil
}

// demoFirmware updates the agent from 1.0.0 to 2.0.0: it builds a signed
// package of a 1 MiB image, has the server start the update (the agent
// pulls it over CoAP, verifies the signature and hash while storing it,
// installs it and restarts), and shows the version the agent reports.
func demoFirmware(ctx context.Context, stdout io.Writer, srv *server.Server, events <-chan server.Event, ep string, key ed25519.PrivateKey) error {
	img := make([]byte, 1<<20)
	for i := range img {
		img[i] = byte(i*7 + i>>10)
	}
	var pkg bytes.Buffer
	m, err := fwpkg.Build(&pkg, fwpkg.Manifest{Name: "demo-firmware", Version: "2.0.0"}, bytes.NewReader(img), key)
	if err != nil {
		return fmt.Errorf("demo: build package: %w", err)
	}
	if _, err := srv.PutFirmware("demo-2.0.0.avc", &pkg); err != nil {
		return fmt.Errorf("demo: store package: %w", err)
	}
	fmt.Fprintf(stdout, "server: firmware demo-2.0.0.avc: version %s, %s image, sha256 %s…, signed (ed25519)\n", m.Version, byteSize(m.Size), m.SHA256[:16])
	f, err := srv.StartFOTA(ctx, ep, server.FOTARequest{Image: "demo-2.0.0.avc"})
	if err != nil {
		return fmt.Errorf("demo: start the update: %w", err)
	}
	fmt.Fprintf(stdout, "server: firmware update started: Write /5/0/1 = %s\n", f.Status().URI)
	st, err := f.Wait(ctx)
	if err != nil {
		return fmt.Errorf("demo: firmware update: %w", err)
	}
	fmt.Fprintf(stdout, "server: firmware update %s: State %d, Update Result %d (%s)\n", st.Phase, st.State, st.Result, server.UpdateResultText(st.Result))
	v, err := srv.Read(ctx, ep, lwm2m.P(3, 0, 3), lwm2m.FormatText)
	if err != nil {
		return fmt.Errorf("demo: read /3/0/3: %w", err)
	}
	fmt.Fprintf(stdout, "server: Read /3/0/3 (firmware version) -> %s\n", v.Records[0].Value)
	return nil
}

// syncWriter serialises writes from the demo and its event printer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func codeText(r *server.Response) string {
	c := uint8(r.Code)
	return fmt.Sprintf("%d.%02d", c>>5, c&0x1f)
}

func linksString(ev server.Event) string {
	var b strings.Builder
	for i, l := range ev.Links {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("<" + l.Target + ">")
	}
	return b.String()
}

var deviceNames = map[uint16]string{
	0: "Manufacturer", 1: "Model Number", 2: "Serial Number", 3: "Firmware Version",
	6: "Available Power Sources", 7: "Power Source Voltage", 8: "Power Source Current",
	9: "Battery Level", 10: "Memory Free", 11: "Error Code", 13: "Current Time",
	14: "UTC Offset", 15: "Timezone", 16: "Supported Binding", 17: "Device Type",
	18: "Hardware Version", 19: "Software Version", 20: "Battery Status", 21: "Memory Total",
}

func deviceResourceName(p lwm2m.Path) string {
	if p.Len >= 3 && p.Obj() == 3 {
		return deviceNames[p.Res()]
	}
	return ""
}
