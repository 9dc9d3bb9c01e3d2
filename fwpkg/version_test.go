package fwpkg

import (
	"strings"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	digits := func(n int) string { return strings.Repeat("9", n) }
	tests := []struct {
		a, b    string
		want    int
		wantErr bool
	}{
		{a: "1.2.10", b: "1.2.9", want: 1},
		{a: "1.2.9", b: "1.2.10", want: -1},
		{a: "1.2.3", b: "1.2.3", want: 0},
		{a: "v1.2.3", b: "1.2.3", want: 0},
		{a: "1.2", b: "1.2.0", want: 0},
		{a: "1.2.0.1", b: "1.2", want: 1},
		{a: "2", b: "1.99.99", want: 1},
		{a: "01.02", b: "1.2", want: 0},
		{a: "1.010", b: "1.9", want: 1},
		{a: "0.0", b: "0", want: 0},
		{a: "000", b: "0.0.0", want: 0},
		{a: "1.2.3-rc1", b: "1.2.3", want: -1},
		{a: "1.2.3", b: "1.2.3-rc1", want: 1},
		{a: "1.2.3-rc1", b: "1.2.2", want: 1},
		{a: "1.2.3-rc2", b: "1.2.3-rc10", want: 1}, // alphanumeric: ASCII order
		{a: "1.2.3-rc.2", b: "1.2.3-rc.10", want: -1},
		{a: "1.0-alpha", b: "1.0-alpha.1", want: -1},
		{a: "1.0-1", b: "1.0-alpha", want: -1},
		{a: "1.0-01", b: "1.0-1", want: 0},
		{a: "1.0-beta-2", b: "1.0-beta-1", want: 1},
		{a: "1." + digits(20), b: "1." + digits(19), want: 1},
		{a: digits(20), b: "1" + strings.Repeat("0", 19), want: 1},
		{a: "18446744073709551615", b: "18446744073709551616", want: -1},
		{a: "0" + digits(20), b: digits(20), wantErr: true}, // 21 digits even with a leading zero
		{a: "1." + digits(30), b: "1.0", wantErr: true},
		{a: "1.0", b: "1." + digits(30), wantErr: true},
		{a: strings.Repeat("1.", 127) + "1", b: "1", want: 1}, // 255 bytes
		{a: strings.Repeat("1.", 128) + "1", b: "1", wantErr: true},
		{a: "1", b: "1.0-" + strings.Repeat("a", 252), wantErr: true},
		{a: "", b: "1", wantErr: true},
		{a: "1", b: "", wantErr: true},
		{a: "v", b: "1", wantErr: true},
		{a: "V1", b: "1", wantErr: true},
		{a: "vv1", b: "1", wantErr: true},
		{a: "1..2", b: "1", wantErr: true},
		{a: ".1", b: "1", wantErr: true},
		{a: "1.", b: "1", wantErr: true},
		{a: "1.x", b: "1", wantErr: true},
		{a: "1.2.3+build5", b: "1", wantErr: true},
		{a: "1.2.3-", b: "1", wantErr: true},
		{a: "1.2.3-rc..1", b: "1", wantErr: true},
		{a: "1.2.3-rc_1", b: "1", wantErr: true},
		{a: " 1", b: "1", wantErr: true},
		{a: "1 ", b: "1", wantErr: true},
		{a: "-1", b: "1", wantErr: true},
		{a: "+1", b: "1", wantErr: true},
		{a: "1\x00", b: "1", wantErr: true},
		{a: "١", b: "1", wantErr: true}, // Arabic-Indic digit one
	}
	for _, tt := range tests {
		t.Run(tt.a+" vs "+tt.b, func(t *testing.T) {
			got, err := CompareVersions(tt.a, tt.b)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("CompareVersions = %d, want %d", got, tt.want)
			}
			if err == nil {
				if back, _ := CompareVersions(tt.b, tt.a); back != -got {
					t.Fatalf("not antisymmetric: reverse = %d", back)
				}
			}
		})
	}
}
