package fwpkg

import (
	"errors"
	"strings"
	"testing"
)

func TestParseManifest(t *testing.T) {
	const sum = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"
	ok := Manifest{Version: "1.0", Size: 1, SHA256: sum}
	tests := []struct {
		name string
		in   string
		want Manifest
		err  error // nil: want is the result
	}{
		{name: "minimal", in: `{"version":"1.0","size":1,"sha256":"` + sum + `"}`, want: ok},
		{name: "all fields, white space", in: " {\n\"name\" : \"fw\", \"version\":\"1.0\",\"size\":1,\"sha256\":\"" + sum + "\",\"hardware\":\"hw\",\"key_id\":\"k\"}\n ",
			want: Manifest{Name: "fw", Version: "1.0", Size: 1, SHA256: sum, Hardware: "hw", KeyID: "k"}},
		{name: "escaped member name", in: `{"\u0076ersion":"1.0","size":1,"sha256":"` + sum + `"}`, want: ok},
		{name: "unicode name", in: `{"name":"Förmwäre ✓","version":"1.0","size":1,"sha256":"` + sum + `"}`, want: Manifest{Name: "Förmwäre ✓", Version: "1.0", Size: 1, SHA256: sum}},
		{name: "size 1<<40", in: `{"version":"1.0","size":1099511627776,"sha256":"` + sum + `"}`, want: Manifest{Version: "1.0", Size: 1 << 40, SHA256: sum}},
		{name: "version 255 bytes", in: `{"version":"` + strings.Repeat("1", 255) + `","size":1,"sha256":"` + sum + `"}`, want: Manifest{Version: strings.Repeat("1", 255), Size: 1, SHA256: sum}},

		{name: "empty", in: ``, err: ErrIntegrity},
		{name: "array", in: `[]`, err: ErrIntegrity},
		{name: "string", in: `"x"`, err: ErrIntegrity},
		{name: "empty object", in: `{}`, err: ErrIntegrity},
		{name: "unknown field", in: `{"version":"1.0","size":1,"sha256":"` + sum + `","install":"x"}`, err: ErrIntegrity},
		{name: "member name in another case", in: `{"Version":"1.0","size":1,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "duplicate field", in: `{"version":"1.0","version":"2.0","size":1,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "duplicate through an escape", in: `{"version":"1.0","\u0076ersion":"2.0","size":1,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "missing version", in: `{"size":1,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "empty version", in: `{"version":"","size":1,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "missing size", in: `{"version":"1.0","sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "missing sha256", in: `{"version":"1.0","size":1}`, err: ErrIntegrity},
		{name: "null name", in: `{"name":null,"version":"1.0","size":1,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "number version", in: `{"version":1,"size":1,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "object hardware", in: `{"version":"1","hardware":{},"size":1,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "string size", in: `{"version":"1.0","size":"1","sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "negative size", in: `{"version":"1.0","size":-1,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "fractional size", in: `{"version":"1.0","size":1.0,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "exponent size", in: `{"version":"1.0","size":1e3,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "size 1<<40+1", in: `{"version":"1.0","size":1099511627777,"sha256":"` + sum + `"}`, err: ErrTooLarge},
		{name: "size 1<<62", in: `{"version":"1.0","size":4611686018427387904,"sha256":"` + sum + `"}`, err: ErrTooLarge},
		{name: "size beyond int64", in: `{"version":"1.0","size":99999999999999999999999999999,"sha256":"` + sum + `"}`, err: ErrTooLarge},
		{name: "huge size, then garbage", in: `{"version":"1.0","size":99999999999999999999999999999,"sha256":1}`, err: ErrIntegrity},
		{name: "uppercase hash", in: `{"version":"1.0","size":1,"sha256":"` + strings.ToUpper(sum) + `"}`, err: ErrIntegrity},
		{name: "short hash", in: `{"version":"1.0","size":1,"sha256":"` + sum[:63] + `"}`, err: ErrIntegrity},
		{name: "version 256 bytes", in: `{"version":"` + strings.Repeat("1", 256) + `","size":1,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "name 256 bytes", in: `{"name":"` + strings.Repeat("n", 256) + `","version":"1","size":1,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "raw NUL byte", in: "{\"version\":\"1.0\x00\",\"size\":1,\"sha256\":\"" + sum + "\"}", err: ErrIntegrity},
		{name: "escaped NUL", in: `{"version":"1.0\u0000","size":1,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "escaped newline", in: `{"version":"1.0\n","size":1,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "DEL", in: `{"version":"1.0\u007f","size":1,"sha256":"` + sum + `"}`, err: ErrIntegrity},
		{name: "invalid UTF-8", in: "{\"name\":\"\xff\",\"version\":\"1.0\",\"size\":1,\"sha256\":\"" + sum + "\"}", err: ErrIntegrity},
		{name: "lone surrogate escape", in: `{"name":"\ud800","version":"1.0","size":1,"sha256":"` + sum + `"}`, want: Manifest{Name: "\ufffd", Version: "1.0", Size: 1, SHA256: sum}},
		{name: "trailing object", in: `{"version":"1.0","size":1,"sha256":"` + sum + `"}{}`, err: ErrIntegrity},
		{name: "trailing garbage", in: `{"version":"1.0","size":1,"sha256":"` + sum + `"} x`, err: ErrIntegrity},
		{name: "unterminated", in: `{"version":"1.0","size":1,"sha256":"` + sum + `"`, err: ErrIntegrity},
		{name: "trailing comma", in: `{"version":"1.0","size":1,"sha256":"` + sum + `",}`, err: ErrIntegrity},
		{name: "4097 bytes", in: `{"version":"1.0","size":1,"sha256":"` + sum + `"}` + strings.Repeat(" ", 4097-len(`{"version":"1.0","size":1,"sha256":"`+sum+`"}`)), err: ErrIntegrity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, f := parseManifest([]byte(tt.in))
			var err error
			if f != nil {
				err = f
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
