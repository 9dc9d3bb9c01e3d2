// Command coapsserver runs avc's embedded LwM2M server with a coaps
// (DTLS-PSK) listener for the Node binding's tests, which have no DTLS of
// their own to talk to: it prints {"coaps": addr, "http": addr} as one
// JSON line once listening, and exits when its standard input ends (so it
// never outlives the test that started it).
//
//	go run ./bindings/node/test/coapsserver -identity dev-psk -key 0123…
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/avc-agent/avc/server"
)

func main() {
	identity := flag.String("identity", "dev-psk", "the one PSK `identity` the server knows")
	keyHex := flag.String("key", "", "its key, in `hex`")
	flag.Parse()
	key, err := hex.DecodeString(*keyHex)
	if err != nil || len(key) == 0 {
		fmt.Fprintln(os.Stderr, "coapsserver: -key: want hex")
		os.Exit(2)
	}
	srv := server.New(server.Config{
		CoAPAddr:  "127.0.0.1:0",
		CoAPSAddr: "127.0.0.1:0",
		HTTPAddr:  "127.0.0.1:0",
		PSK: func(id []byte) ([]byte, error) {
			if string(id) != *identity {
				return nil, fmt.Errorf("unknown identity %q", id)
			}
			return key, nil
		},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err := srv.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "coapsserver:", err)
		os.Exit(1)
	}
	defer srv.Close()
	if err := json.NewEncoder(os.Stdout).Encode(map[string]string{
		"coaps": srv.CoAPSAddr().String(),
		"http":  srv.HTTPAddr().String(),
	}); err != nil {
		os.Exit(1)
	}
	io.Copy(io.Discard, os.Stdin)
}
