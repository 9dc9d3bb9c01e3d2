package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/avc-agent/avc/server"
)

// serverMain runs `avc server`: avc's embedded LwM2M server, until ctx is
// cancelled. args are the arguments after "server".
//
// Flags:
//
//	-coap addr       UDP address for CoAP (default 127.0.0.1:5683)
//	-http addr       address of the HTTP JSON API, "" for none (default 127.0.0.1:8080)
//	-firmware-dir d  directory of firmware images served at /fw/<name>, "" for none
//	-log-level lvl   debug, info, warn or error (default $AVC_LOG_LEVEL, else info)
//
// It logs to stderr with slog's text handler. -h returns flag.ErrHelp after
// printing the usage.
func serverMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("avc server", flag.ContinueOnError)
	coapAddr := fs.String("coap", server.DefaultCoAPAddr, "UDP `address` for CoAP")
	httpAddr := fs.String("http", "127.0.0.1:8080", "`address` of the HTTP JSON API (\"\" for none)")
	firmwareDir := fs.String("firmware-dir", "", "`directory` of firmware images, served at /fw/<name> over CoAP and HTTP (\"\" for none)")
	defLevel := os.Getenv("AVC_LOG_LEVEL")
	if defLevel == "" {
		defLevel = "info"
	}
	levelName := fs.String("log-level", defLevel, "log `level`: debug, info, warn or error (env AVC_LOG_LEVEL)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: avc server [flags]\n\nRuns avc's embedded LwM2M 1.1 server.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("server: unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*levelName)); err != nil {
		return fmt.Errorf("server: bad log level %q: %w", *levelName, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	s := server.New(server.Config{
		CoAPAddr:    *coapAddr,
		HTTPAddr:    *httpAddr,
		FirmwareDir: *firmwareDir,
		Logger:      log,
	})
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}
