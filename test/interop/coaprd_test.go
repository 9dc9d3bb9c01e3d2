//go:build integration

package interop_test

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
)

// TestRegisterOverDTLSToCoapRD registers the native agent over DTLS-PSK
// with libcoap's resource directory coap-rd-openssl (an independent DTLS
// stack: OpenSSL), one fresh RD per case as the issue asks (its DELETE
// handler is not reliable enough to reuse one). With the right key the
// registration is stored in the RD, which lists it in its
// /.well-known/core (read back over DTLS by coap-client-openssl), and a
// refused Registration Update leads to a new registration; with a wrong
// key nothing is registered and the agent reports failed handshakes,
// never plaintext.
func TestRegisterOverDTLSToCoapRD(t *testing.T) {
	rd, err := exec.LookPath("coap-rd-openssl")
	if err != nil {
		t.Fatalf("coap-rd-openssl is not installed (%v); run `make deps`", err)
	}
	client, err := exec.LookPath("coap-client-openssl")
	if err != nil {
		t.Fatalf("coap-client-openssl is not installed (%v); run `make deps`", err)
	}
	const key = "avc-rd-secret"
	for _, tc := range []struct {
		name string
		key  string
		ok   bool
	}{
		{"right key", key, true},
		{"wrong key", "not-the-key", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			port := freeUDPPort(t) // coap; the RD listens for coaps on port+1
			cmd := exec.CommandContext(ctx, rd, "-A", "127.0.0.1", "-p", strconv.Itoa(port), "-k", key)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			coaps := "coaps://127.0.0.1:" + strconv.Itoa(port+1)

			ep := "rd-" + strings.ReplaceAll(tc.name, " ", "-")
			a, err := agent.New(agent.Config{
				ServerURI: coaps, Endpoint: ep, Lifetime: 300 * time.Second,
				PSKIdentity: "avc-rd", PSKKey: []byte(tc.key),
				DTLSHandshakeTimeout: 2 * time.Second, DTLSRetryDelay: 300 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			actx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- a.Run(actx) }()
			// Stopping de-registers: libcoap 4.3.1's RD dies on that DELETE
			// (a double free), so Run returns after its 10 s bound.
			defer func() { stop(); <-done }()

			wait := func(kind agent.EventKind, within time.Duration) (agent.Event, []agent.Event) {
				var seen []agent.Event
				timer := time.After(within)
				for {
					select {
					case ev := <-a.Events():
						seen = append(seen, ev)
						if ev.Kind == kind {
							return ev, seen
						}
					case <-timer:
						return agent.Event{}, seen
					}
				}
			}
			if !tc.ok {
				_, seen := wait(agent.EventRegistered, 5*time.Second)
				failed := 0
				for _, ev := range seen {
					if ev.Kind == agent.EventRegistered {
						t.Fatalf("registered with a wrong key: %+v", ev)
					}
					if ev.Kind == agent.EventRegistrationFailed {
						failed++
					}
				}
				if failed == 0 {
					t.Fatalf("no failed handshake reported in 5 s: %+v\n%s", seen, out.String())
				}
				return
			}
			reg, seen := wait(agent.EventRegistered, 15*time.Second)
			if reg.Kind != agent.EventRegistered || !strings.HasPrefix(reg.Location, "/rd/") {
				t.Fatalf("no registration with the RD: %+v\n%s", seen, out.String())
			}
			listing, err := exec.CommandContext(ctx, client, "-m", "get", "-k", key, "-u", "rd-reader", coaps+"/.well-known/core").CombinedOutput()
			if err != nil {
				t.Fatalf("coap-client-openssl: %v: %s", err, listing)
			}
			if !strings.Contains(string(listing), "<"+reg.Location+">") {
				t.Errorf("the RD lists %q, without the registration %s", listing, reg.Location)
			}
			// libcoap's RD has no Registration Update (a POST to the
			// registration answers 4.05 Method Not Allowed): the agent then
			// registers anew, as LwM2M asks, and the RD lists the new one.
			if err := a.Do(ctx, agent.CmdUpdate{}); err != nil {
				t.Fatal(err)
			}
			again, seen := wait(agent.EventRegistered, 10*time.Second)
			if again.Kind != agent.EventRegistered || again.Location == reg.Location {
				t.Fatalf("no new registration after the refused update: %+v", seen)
			}
			listing, err = exec.CommandContext(ctx, client, "-m", "get", "-k", key, "-u", "rd-reader", coaps+"/.well-known/core").CombinedOutput()
			if err != nil || !strings.Contains(string(listing), "<"+again.Location+">") {
				t.Errorf("the RD lists %q (%v), without the new registration %s", listing, err, again.Location)
			}
		})
	}
}
