package httpfetch

import (
	"errors"
	"strings"
	"testing"
)

func TestSchemeSupported(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scheme string
		want   bool
	}{
		{"http", true},
		{"https", true},
		{"HTTPS", true},
		{"Http", true},
		{"", false},
		{"ftp", false},
		{"file", false},
		{"tftp", false},
		{"coap", false},
		{"coaps", false},
		{"coap+tcp", false},
		{"coaps+tcp", false},
		{"httpx", false},
		{"http ", false},
	}
	for _, tt := range tests {
		if got := SchemeSupported(tt.scheme); got != tt.want {
			t.Errorf("SchemeSupported(%q) = %v, want %v", tt.scheme, got, tt.want)
		}
	}
}

// uriTests are shared by TestValidateURL and TestGetBadURI.
var uriTests = []struct {
	name string
	uri  string
	want error
}{
	{"http", "http://example.com/fw.bin", nil},
	{"https with port and query", "https://fw.example.com:8443/a/b.bin?sig=abc#x", nil},
	{"upper-case scheme", "HTTP://example.com/fw.bin", nil},
	{"IPv4", "http://192.0.2.1/fw.bin", nil},
	{"IPv6", "http://[2001:db8::1]:8080/fw.bin", nil},
	{"IPv6 with zone", "http://[fe80::1%25eth0]/fw.bin", nil},
	{"trailing dot", "http://example.com./fw.bin", nil},
	{"underscore", "http://fw_server.local/fw.bin", nil},
	{"no path", "http://example.com", nil},
	{"empty port", "http://example.com:/fw.bin", nil},
	{"max port", "http://example.com:65535/", nil},
	{"2048 bytes", "http://example.com/" + strings.Repeat("a", MaxURILength-len("http://example.com/")), nil},
	{"1000 path segments", "http://example.com" + strings.Repeat("/a", 1000), nil},

	{"ftp", "ftp://example.com/fw.bin", ErrUnsupportedScheme},
	{"file", "file:///tmp/fw.bin", ErrUnsupportedScheme},
	{"tftp", "tftp://192.0.2.1/fw.bin", ErrUnsupportedScheme},
	{"coap", "coap://example.com/fw", ErrUnsupportedScheme},
	{"coaps", "coaps://example.com/fw", ErrUnsupportedScheme},
	{"coap+tcp", "coap+tcp://example.com/fw", ErrUnsupportedScheme},
	{"coaps+ws", "coaps+ws://example.com/fw", ErrUnsupportedScheme},
	{"ftp with bad host", "ftp://[::1/fw.bin", ErrUnsupportedScheme},
	{"mailto", "mailto:a@example.com", ErrUnsupportedScheme},

	{"empty", "", ErrInvalidURI},
	{"no scheme", "example.com/fw.bin", ErrInvalidURI},
	{"scheme-relative", "//example.com/fw.bin", ErrInvalidURI},
	{"scheme starts with digit", "1http://example.com/", ErrInvalidURI},
	{"leading space", " http://example.com/", ErrInvalidURI},
	{"bad IPv6 literal, no ]", "http://[::1/fw.bin", ErrInvalidURI},
	{"bad IPv6 literal", "http://[::zz]/fw.bin", ErrInvalidURI},
	{"IPv4 in brackets", "http://[192.0.2.1]/fw.bin", ErrInvalidURI},
	{"IPv6 without brackets", "http://2001:db8::1/fw.bin", ErrInvalidURI},
	{"bad escape", "http://example.com/%zz", ErrInvalidURI},
	{"bad escape in host", "http://exa%zzmple.com/", ErrInvalidURI},
	{"port 99999", "http://example.com:99999/fw.bin", ErrInvalidURI},
	{"port 65536", "http://example.com:65536/fw.bin", ErrInvalidURI},
	{"port 0", "http://example.com:0/fw.bin", ErrInvalidURI},
	{"port -1", "http://example.com:-1/fw.bin", ErrInvalidURI},
	{"port 2^64", "http://example.com:18446744073709551616/", ErrInvalidURI},
	{"port not a number", "http://example.com:http/", ErrInvalidURI},
	{"empty host", "http:///fw.bin", ErrInvalidURI},
	{"empty host with port", "http://:80/fw.bin", ErrInvalidURI},
	{"no authority", "http:fw.bin", ErrInvalidURI},
	{"userinfo", "http://user:pass@example.com/fw.bin", ErrInvalidURI},
	{"empty userinfo", "http://@example.com/fw.bin", ErrInvalidURI},
	{"space in host", "http://exa mple.com/", ErrInvalidURI},
	{"control character", "http://example.com/\x00", ErrInvalidURI},
	{"empty label", "http://example..com/", ErrInvalidURI},
	{"label of 64", "http://" + strings.Repeat("a", 64) + ".com/", ErrInvalidURI},
	{"host of 256", "http://" + strings.Repeat(strings.Repeat("a", 63)+".", 4) + "com/", ErrInvalidURI},
	{"bad IPv4", "http://192.0.2.256/", ErrInvalidURI},
	{"non-ASCII host", "http://bücher.example/", ErrInvalidURI},
	{"2049 bytes", "http://example.com/" + strings.Repeat("a", MaxURILength+1-len("http://example.com/")), ErrInvalidURI},
	{"64 KiB", "http://example.com/" + strings.Repeat("a", 64<<10), ErrInvalidURI},
	{"64 KiB ftp", "ftp://example.com/" + strings.Repeat("a", 64<<10), ErrInvalidURI},
}

func TestValidateURL(t *testing.T) {
	t.Parallel()
	for _, tt := range uriTests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateURL(tt.uri)
			wantErr(t, err, tt.want)
			if tt.want != nil && errors.Is(err, ErrInvalidURI) == errors.Is(err, ErrUnsupportedScheme) {
				t.Errorf("ValidateURL: %v wraps both or neither sentinel", err)
			}
			if tt.want != nil && len(err.Error()) > 200 {
				t.Errorf("error message of %d bytes", len(err.Error()))
			}
		})
	}
}

func TestGetBadURI(t *testing.T) {
	t.Parallel()
	for _, tt := range uriTests {
		if tt.want == nil {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			s := &memSink{}
			wantErr(t, Get(t.Context(), Request{URL: tt.uri}, s), tt.want)
			if len(s.starts) != 0 {
				t.Errorf("Start called")
			}
		})
	}
}

func FuzzValidateURL(f *testing.F) {
	for _, tt := range uriTests {
		f.Add(tt.uri)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := parseURL(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidURI) && !errors.Is(err, ErrUnsupportedScheme) {
				t.Fatalf("parseURL(%q): %v wraps no sentinel", raw, err)
			}
			return
		}
		if len(raw) > MaxURILength || !SchemeSupported(u.Scheme) || u.Hostname() == "" ||
			len(u.Hostname()) > MaxHostLength || u.User != nil {
			t.Fatalf("parseURL(%q) accepted %#v", raw, u)
		}
		// What Get would send must validate again.
		if err := checkParsed(u); err != nil {
			t.Fatalf("parseURL(%q) = %q, which fails: %v", raw, u, err)
		}
	})
}
