package httpfetch

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// contentRangeTests are the parser's cases; ok == false means rejected.
var contentRangeTests = []struct {
	in   string
	want contentRange
	ok   bool
}{
	{"bytes 0-0/1", contentRange{0, 0, 1}, true},
	{"bytes 0-99/100", contentRange{0, 99, 100}, true},
	{"bytes 1000-199999/200000", contentRange{1000, 199999, 200000}, true},
	{"bytes 5-9/*", contentRange{5, 9, -1}, true},
	{"BYTES 5-9/10", contentRange{5, 9, 10}, true},
	{"bytes 007-009/010", contentRange{7, 9, 10}, true},
	{"bytes 0-9223372036854775806/9223372036854775807", contentRange{0, 9223372036854775806, 9223372036854775807}, true},

	{"", contentRange{}, false},
	{"bytes", contentRange{}, false},
	{"bytes ", contentRange{}, false},
	{"bytes */100", contentRange{}, false},
	{"bytes 0-99/100 ", contentRange{}, false},
	{" bytes 0-99/100", contentRange{}, false},
	{"bytes  0-99/100", contentRange{}, false},
	{"bytes 0 -99/100", contentRange{}, false},
	{"bytes=0-99/100", contentRange{}, false},
	{"items 0-99/100", contentRange{}, false},
	{"bytes 0-99", contentRange{}, false},
	{"bytes 0-99/", contentRange{}, false},
	{"bytes -99/100", contentRange{}, false},
	{"bytes 0-/100", contentRange{}, false},
	{"bytes 10-9/100", contentRange{}, false},
	{"bytes 0-100/100", contentRange{}, false},
	{"bytes 0-99/99", contentRange{}, false},
	{"bytes 0-99/0", contentRange{}, false},
	{"bytes +0-99/100", contentRange{}, false},
	{"bytes -1-99/100", contentRange{}, false},
	{"bytes 0x0-99/100", contentRange{}, false},
	{"bytes 0-99/1e3", contentRange{}, false},
	{"bytes 0-99/100/100", contentRange{}, false},
	{"bytes 0-9-9/100", contentRange{}, false},
	{"bytes 0-99/**", contentRange{}, false},
	{"bytes 0-9223372036854775808/*", contentRange{}, false},
	{"bytes 0-99999999999999999999/100", contentRange{}, false},
	{"bytes 0-9223372036854775807/*", contentRange{}, false},
	{"bytes 9223372036854775806-9223372036854775806/*", contentRange{9223372036854775806, 9223372036854775806, -1}, true},
	{"bytes 0-9223372036854775807/9223372036854775807", contentRange{}, false},
	{"bytes ０-9/10", contentRange{}, false},
}

func TestParseContentRange(t *testing.T) {
	t.Parallel()
	for _, tt := range contentRangeTests {
		got, err := parseContentRange(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseContentRange(%q) = %+v, %v; want %+v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, tt := range contentRangeTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := parseContentRange(in)
		if err != nil {
			if c != (contentRange{}) {
				t.Fatalf("parseContentRange(%q) = %+v with error %v", in, c, err)
			}
			return
		}
		if c.first < 0 || c.last < c.first || c.total != -1 && c.last >= c.total || c.total < -1 {
			t.Fatalf("parseContentRange(%q) = %+v breaks first ≤ last < total", in, c)
		}
		if c.len() <= 0 {
			t.Fatalf("parseContentRange(%q) = %+v: length %d", in, c, c.len())
		}
		// The canonical form parses to the same range.
		total := "*"
		if c.total >= 0 {
			total = fmt.Sprint(c.total)
		}
		canon := fmt.Sprintf("bytes %d-%d/%s", c.first, c.last, total)
		if c2, err := parseContentRange(canon); err != nil || c2 != c {
			t.Fatalf("parseContentRange(%q) = %+v, %v; from %q = %+v", canon, c2, err, in, c)
		}
	})
}

func TestValidatorOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		etag, lastModified string
		want               string
	}{
		{`"abc"`, lastMod, `"abc"`},
		{`""`, "", `""`},
		{`W/"abc"`, lastMod, lastMod},
		{`abc`, lastMod, lastMod},
		{`"a"b"`, "", ""},
		{`"a b"`, "", ""},
		{"", lastMod, lastMod},
		{"", "yesterday", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.etag != "" {
			h.Set("ETag", tt.etag)
		}
		if tt.lastModified != "" {
			h.Set("Last-Modified", tt.lastModified)
		}
		if got := validatorOf(h); got != tt.want {
			t.Errorf("validatorOf(ETag %q, Last-Modified %q) = %q, want %q", tt.etag, tt.lastModified, got, tt.want)
		}
	}
}

func TestUsableValidator(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v    string
		want bool
	}{
		{`"v1"`, true},
		{lastMod, true},
		{"Sunday, 01-Jun-25 12:00:00 GMT", true},
		{"", false},
		{`W/"v1"`, false},
		{"v1", false},
		{"2025-06-01", false},
	}
	for _, tt := range tests {
		if got := usableValidator(tt.v); got != tt.want {
			t.Errorf("usableValidator(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestSameRepresentation(t *testing.T) {
	t.Parallel()
	later := modTime.Add(time.Second).Format(http.TimeFormat)
	tests := []struct {
		etag, lastModified, validator string
		want                          bool
	}{
		{`"v1"`, "", `"v1"`, true},
		{`"v2"`, "", `"v1"`, false},
		{`W/"v1"`, "", `"v1"`, false},
		{"", lastMod, `"v1"`, true},
		{"", "", `"v1"`, true},
		{`"v1"`, lastMod, lastMod, true},
		{"", later, lastMod, false},
		{"", "garbage", lastMod, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.etag != "" {
			h.Set("ETag", tt.etag)
		}
		if tt.lastModified != "" {
			h.Set("Last-Modified", tt.lastModified)
		}
		if got := sameRepresentation(h, tt.validator); got != tt.want {
			t.Errorf("sameRepresentation(%q, %q, %q) = %v, want %v", tt.etag, tt.lastModified, tt.validator, got, tt.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := modTime
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"120", 2 * time.Minute},
		{" 7 ", 7 * time.Second},
		{"99999999999999999999", maxRetryAfter},
		{"3153600000000", maxRetryAfter},
		{"-5", 0},
		{"1.5", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"Fri, 31 Dec 9999 23:59:59 GMT", maxRetryAfter},
		{"tomorrow", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestStatusErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  StatusError
		want string
	}{
		{StatusError{Code: 404}, "httpfetch: server answered 404 Not Found"},
		{StatusError{Code: 503, RetryAfter: time.Minute}, "httpfetch: server answered 503 Service Unavailable (retry after 1m0s)"},
		{StatusError{Code: 599}, "httpfetch: server answered 599"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
