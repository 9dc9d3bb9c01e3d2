package httpfetch_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/avc-agent/avc/internal/httpfetch"
)

// memory is a Sink keeping the file in memory; a device writes to flash.
type memory struct {
	bytes.Buffer
	resp httpfetch.Response
}

// Start drops what is stored past r.Offset.
func (m *memory) Start(r httpfetch.Response) error {
	m.resp = r
	m.Truncate(int(r.Offset))
	return nil
}

// Write appends p.
func (m *memory) Write(p []byte) error {
	_, err := m.Buffer.Write(p)
	return err
}

// A download interrupted after 6 bytes resumes with the validator that was
// persisted with them.
func ExampleGet() {
	file := "firmware image v1"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "fw.bin", time.Time{}, strings.NewReader(file))
	}))
	defer srv.Close()

	m := &memory{}
	m.WriteString("firmwa") // stored before the interruption
	err := httpfetch.Get(context.Background(), httpfetch.Request{
		URL:       srv.URL + "/fw.bin",
		Offset:    6,
		Validator: `"v1"`,
	}, m)
	fmt.Println(err)
	fmt.Printf("%+v\n", m.resp)
	fmt.Println(m.String())
	// Output:
	// <nil>
	// {Status:206 Offset:6 Total:17 Validator:"v1"}
	// firmware image v1
}

// ValidateURL sorts a Package URI into Update Result 9 or 7 before any I/O.
func ExampleValidateURL() {
	for _, uri := range []string{
		"https://fw.example.com/v2.bin",
		"coap+tcp://fw.example.com/v2.bin",
		"http://fw.example.com:99999/v2.bin",
	} {
		fmt.Println(httpfetch.ValidateURL(uri))
	}
	// Output:
	// <nil>
	// httpfetch: unsupported URI scheme "coap+tcp"
	// httpfetch: invalid URI: port "99999" out of range
}
