package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/avc-agent/avc/server"
)

// serverMain runs `avc server`: avc's embedded LwM2M server, until ctx is
// cancelled. args are the arguments after "server".
//
// Flags:
//
//	-coap addr       UDP address for CoAP (default 127.0.0.1:5683)
//	-coaps addr      UDP address for CoAP over DTLS, with -psk and/or -cert, "" for none (default "")
//	-psk id=hexkey   a PSK the coaps listener accepts; repeatable
//	-cert, -key f    the server's certificate chain and key (PEM) for coaps with certificates
//	-client-ca f     trust anchors of the client certificates (PEM); with -cert
//	-bootstrap file  bootstrap configurations (JSON, by endpoint name, "*"
//	                 for any): the server also acts as a bootstrap server
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
	coapsAddr := fs.String("coaps", "", "UDP `address` for CoAP over DTLS, with -psk and/or -cert (\"\" for none)")
	certFile := fs.String("cert", "", "PEM `file` of the server's certificate chain for coaps with certificates (with -key and -client-ca)")
	keyFile := fs.String("key", "", "PEM `file` of the server certificate's private key")
	clientCA := fs.String("client-ca", "", "PEM `file` of the trust anchors client certificates must chain to")
	psks := map[string][]byte{}
	fs.Func("psk", "a pre-shared key the coaps listener accepts, `identity=hexkey` (repeatable)", func(v string) error {
		id, k, ok := strings.Cut(v, "=")
		key, err := hex.DecodeString(k)
		if !ok || id == "" || err != nil || len(key) == 0 {
			return fmt.Errorf("want identity=hexkey")
		}
		psks[id] = key
		return nil
	})
	bootstrapFile := fs.String("bootstrap", "", "`file` of bootstrap configurations (JSON by endpoint name, \"*\" for any); the server then also acts as a bootstrap server")
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

	cfg := server.Config{
		CoAPAddr:    *coapAddr,
		CoAPSAddr:   *coapsAddr,
		HTTPAddr:    *httpAddr,
		FirmwareDir: *firmwareDir,
		Logger:      log,
	}
	if len(psks) > 0 {
		cfg.PSK = func(id []byte) ([]byte, error) {
			if k, ok := psks[string(id)]; ok {
				return k, nil
			}
			return nil, fmt.Errorf("unknown psk identity")
		}
	}
	if *certFile != "" || *keyFile != "" || *clientCA != "" {
		if *certFile == "" || *keyFile == "" || *clientCA == "" {
			return fmt.Errorf("server: -cert, -key and -client-ca go together")
		}
		pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("server: -cert/-key: %w", err)
		}
		pem, err := os.ReadFile(*clientCA)
		if err != nil {
			return fmt.Errorf("server: -client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("server: -client-ca %s: no PEM certificate", *clientCA)
		}
		cfg.Certificate, cfg.ClientCAs = &pair, pool
	}
	if *bootstrapFile != "" {
		b, err := os.ReadFile(*bootstrapFile)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		if cfg.Bootstrap, err = server.ParseBootstrapConfigs(b); err != nil {
			return err
		}
	}
	s := server.New(cfg)
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}
