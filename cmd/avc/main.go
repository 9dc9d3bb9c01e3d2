// Command avc is avc's command-line tool: it runs the device agent, the
// embedded LwM2M server, and a self-contained demo of both.
//
// Usage:
//
//	avc run [flags]      run the agent (configured by AVC_* variables and flags)
//	avc server [flags]   run the embedded LwM2M server
//	avc relay [flags]    relay WebSocket sessions (avc.wasm in a browser) to an LwM2M server over UDP
//	avc demo             start a server and an agent, show a registration and a read
//	avc version          print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/avc-agent/avc/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		if errors.Is(err, errExit) {
			os.Exit(1) // the subcommand has said why
		}
		fmt.Fprintln(os.Stderr, "avc:", err)
		os.Exit(1)
	}
}

const usage = `usage: avc <command> [flags]

commands:
  run       run the agent; configuration from AVC_* variables, overridden by flags
  server    run the embedded LwM2M server
  relay     relay WebSocket sessions (avc.wasm in a browser) to an LwM2M
            server over UDP
  demo      start a server and an agent, show a registration, a read and a
            firmware update, then exit
  fota      update a client's firmware through a running avc server's HTTP API
  pack      build a firmware package (signed with -key)
  keygen    create an ed25519 signing key for packages
  version   print the version
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "run":
		return runAgent(ctx, args[1:], stdout, stderr)
	case "server":
		return serverMain(ctx, args[1:])
	case "relay":
		return relayMain(ctx, args[1:], stdout, stderr)
	case "demo":
		return demo(ctx, stdout, stderr)
	case "fota":
		return fotaMain(ctx, args[1:], stdout, stderr)
	case "pack":
		return exitErr(packCmd(args[1:], stdout, stderr))
	case "keygen":
		return exitErr(keygenCmd(args[1:], stdout, stderr))
	case "version":
		fmt.Fprintln(stdout, "avc", agent.Version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// exitErr turns a subcommand's exit status into run's error: 2 is a usage
// error (already reported), any other non-zero status a failure.
func exitErr(code int) error {
	switch code {
	case 0:
		return nil
	case 2:
		return flag.ErrHelp
	}
	return errExit
}

// errExit is a failure the subcommand has already reported.
var errExit = errors.New("failed")

// runAgent runs the native agent until ctx is cancelled.
// agentGCPercent is the garbage collector's target for `avc run` unless
// GOGC is set: an agent's live heap is small (about a megabyte) and
// steady, and the default target of 100 (a 4 MiB minimum heap) would let
// the garbage of a long session (requests served, notifications, events)
// grow the process by that much before the first collection. 25 keeps
// the growth near one megabyte for a few more collections of a small
// heap. (A firmware pull makes garbage of a fixed size whatever the
// image's: TestPullAllocationsIndependentOfSize.)
const agentGCPercent = 25

func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(agentGCPercent)
	}
	cfg, err := agent.ConfigFromEnv()
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("avc run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	set := func(name string) func(string) error {
		return func(v string) error { return cfg.Set(name, v) }
	}
	fs.Func("server", "LwM2M server URI ("+agent.EnvServerURI+")", set(agent.EnvServerURI))
	fs.Func("bootstrap", "LwM2M bootstrap server URI ("+agent.EnvBootstrapURI+")", set(agent.EnvBootstrapURI))
	fs.Func("endpoint", "endpoint name ("+agent.EnvEndpoint+")", set(agent.EnvEndpoint))
	fs.Func("lifetime", "registration lifetime in seconds ("+agent.EnvLifetime+")", set(agent.EnvLifetime))
	fs.Func("state-dir", "directory for persistent state ("+agent.EnvStateDir+")", set(agent.EnvStateDir))
	fs.Func("log-level", "debug, info, warn or error ("+agent.EnvLogLevel+")", set(agent.EnvLogLevel))
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for ev := range a.Events() {
		printEvent(stdout, ev)
	}
	return <-done
}

// printEvent writes one line per event, the format every example uses.
func printEvent(w io.Writer, ev agent.Event) {
	line := "event: " + ev.Kind.String()
	if ev.Location != "" {
		line += " location=" + ev.Location
	}
	if ev.Lifetime != 0 {
		line += fmt.Sprintf(" lifetime=%d", ev.Lifetime)
	}
	if ev.Path != "" {
		line += " path=" + ev.Path
	}
	if ev.Code != "" {
		line += " code=" + ev.Code
	}
	if ev.Err != "" {
		line += fmt.Sprintf(" error=%q", ev.Err)
	}
	if f := ev.Firmware; f != nil {
		line += fmt.Sprintf(" state=%s result=%d (%s)", f.State, f.Result, f.Result)
		if f.Version != "" {
			line += " version=" + f.Version
		}
	}
	fmt.Fprintln(w, line)
}
