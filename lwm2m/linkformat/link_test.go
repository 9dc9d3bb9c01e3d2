package linkformat_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/avc-agent/avc/lwm2m/linkformat"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []linkformat.Link
	}{
		{name: "empty", in: ""},
		{name: "white space only", in: " \r\n"},
		{name: "target only", in: "</1/0>", want: []linkformat.Link{{Target: "/1/0"}}},
		{
			name: "lwm2m register",
			in:   `</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>;ver=1.1`,
			want: []linkformat.Link{
				{Target: "/", Params: []linkformat.Param{{Name: "rt", Value: "oma.lwm2m", Quoted: true}, {Name: "ct", Value: "11543"}}},
				{Target: "/1/0"},
				{Target: "/3/0", Params: []linkformat.Param{{Name: "ver", Value: "1.1"}}},
			},
		},
		{
			name: "discover",
			in:   `</3/0>;pmin=10;pmax=60,</3/0/1>,</3/0/7>;dim=2;gt=50,</3/0/11>;obs`,
			want: []linkformat.Link{
				{Target: "/3/0", Params: []linkformat.Param{{Name: "pmin", Value: "10"}, {Name: "pmax", Value: "60"}}},
				{Target: "/3/0/1"},
				{Target: "/3/0/7", Params: []linkformat.Param{{Name: "dim", Value: "2"}, {Name: "gt", Value: "50"}}},
				{Target: "/3/0/11", Params: []linkformat.Param{{Name: "obs"}}},
			},
		},
		{
			name: "rfc 6690 example",
			in:   `</sensors/temp>;rt="temperature-c";if="sensor",` + "\n" + `</sensors/light>;rt="light-lux";if="sensor"`,
			want: []linkformat.Link{
				{Target: "/sensors/temp", Params: []linkformat.Param{{Name: "rt", Value: "temperature-c", Quoted: true}, {Name: "if", Value: "sensor", Quoted: true}}},
				{Target: "/sensors/light", Params: []linkformat.Param{{Name: "rt", Value: "light-lux", Quoted: true}, {Name: "if", Value: "sensor", Quoted: true}}},
			},
		},
		{
			name: "quoted separators",
			in:   `</a>;title="x, y; z";rt="\"q\" \\"`,
			want: []linkformat.Link{{Target: "/a", Params: []linkformat.Param{{Name: "title", Value: "x, y; z", Quoted: true}, {Name: "rt", Value: `"q" \`, Quoted: true}}}},
		},
		{name: "empty quoted value", in: `</a>;rt=""`, want: []linkformat.Link{{Target: "/a", Params: []linkformat.Param{{Name: "rt", Quoted: true}}}}},
		{
			name: "white space around separators",
			in:   " \t</a> ; ct = 40 ;\r\n obs , </b>\n",
			want: []linkformat.Link{{Target: "/a", Params: []linkformat.Param{{Name: "ct", Value: "40"}, {Name: "obs"}}}, {Target: "/b"}},
		},
		{name: "absolute target", in: `<coap://[::1]:5683/x?y=1>;anchor="/"`, want: []linkformat.Link{{Target: "coap://[::1]:5683/x?y=1", Params: []linkformat.Param{{Name: "anchor", Value: "/", Quoted: true}}}}},
		{name: "ptoken characters", in: "</a>;x=!#$%&'()*+-./:<=>?@[]^_`{|}~09AZaz", want: []linkformat.Link{{Target: "/a", Params: []linkformat.Param{{Name: "x", Value: "!#$%&'()*+-./:<=>?@[]^_`{|}~09AZaz"}}}}},
		{name: "ext-name", in: `</a>;title*=UTF-8'de'n%c3%a4chstes`, want: []linkformat.Link{{Target: "/a", Params: []linkformat.Param{{Name: "title*", Value: "UTF-8'de'n%c3%a4chstes"}}}}},
		{name: "utf-8 in quotes", in: `</a>;title="é"`, want: []linkformat.Link{{Target: "/a", Params: []linkformat.Param{{Name: "title", Value: "é", Quoted: true}}}}},
		{name: "many links", in: strings.Repeat("</a>,", linkformat.MaxLinks-1) + "</a>", want: repeatLink(linkformat.Link{Target: "/a"}, linkformat.MaxLinks)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := linkformat.Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func repeatLink(l linkformat.Link, n int) []linkformat.Link {
	links := make([]linkformat.Link, n)
	for i := range links {
		links[i] = l
	}
	return links
}

func TestParseError(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		tooBig bool
	}{
		{name: "over 64 KiB", in: "</a>" + strings.Repeat(" ", linkformat.MaxSize), tooBig: true},
		{name: "too many links", in: strings.Repeat("</a>,", linkformat.MaxLinks) + "</a>", tooBig: true},
		{name: "no angle bracket", in: "/a"},
		{name: "unterminated target", in: "</a;ct=0"},
		{name: "unterminated target at end", in: "<"},
		{name: "empty target", in: "<>"},
		{name: "space in target", in: "</a b>"},
		{name: "quote in target", in: `</a"b>`},
		{name: "angle in target", in: "</a<b>"},
		{name: "control in target", in: "</a\x00>"},
		{name: "unterminated quote", in: `</a>;rt="x`},
		{name: "unterminated quote with comma", in: `</a>;rt="x,</b>`},
		{name: "escape at end", in: `</a>;rt="x\`},
		{name: "missing value", in: `</a>;rt=`},
		{name: "missing value before comma", in: `</a>;rt=,</b>`},
		{name: "missing value before semicolon", in: `</a>;rt=;ct=0`},
		{name: "empty parameter", in: `</a>;;ct=0`},
		{name: "trailing semicolon", in: `</a>;`},
		{name: "bad name", in: `</a>;r"t=1`},
		{name: "space in value", in: `</a>;rt=a b`},
		{name: "quote in value", in: `</a>;rt=a"b"`},
		{name: "backslash in value", in: `</a>;rt=a\b`},
		{name: "non-ascii value", in: "</a>;rt=\xc3\xa9"},
		{name: "empty link", in: "</a>,,</b>"},
		{name: "leading comma", in: ",</a>"},
		{name: "trailing comma", in: "</a>,"},
		{name: "trailing comma and space", in: "</a>, "},
		{name: "missing comma", in: "</a></b>"},
		{name: "garbage after link", in: "</a>x"},
		{name: "garbage after value", in: `</a>;rt="x"y`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			links, err := linkformat.Parse([]byte(tt.in))
			if !errors.Is(err, linkformat.ErrFormat) {
				t.Fatalf("Parse = %v, %v; want ErrFormat", links, err)
			}
			if got := errors.Is(err, linkformat.ErrTooLarge); got != tt.tooBig {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, got, tt.tooBig)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name  string
		links []linkformat.Link
		want  string
	}{
		{name: "none", want: ""},
		{
			name: "lwm2m register",
			links: []linkformat.Link{
				{Target: "/", Params: []linkformat.Param{{Name: "rt", Value: "oma.lwm2m", Quoted: true}, {Name: "ct", Value: "11543"}}},
				{Target: "/1/0"},
				{Target: "/3/0", Params: []linkformat.Param{{Name: "ver", Value: "1.1"}}},
			},
			want: `</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>;ver=1.1`,
		},
		{name: "value-less", links: []linkformat.Link{{Target: "/3/0/11", Params: []linkformat.Param{{Name: "obs"}}}}, want: `</3/0/11>;obs`},
		{name: "empty quoted", links: []linkformat.Link{{Target: "/a", Params: []linkformat.Param{{Name: "rt", Quoted: true}}}}, want: `</a>;rt=""`},
		{name: "needs quotes", links: []linkformat.Link{{Target: "/a", Params: []linkformat.Param{{Name: "title", Value: "x, y; z"}}}}, want: `</a>;title="x, y; z"`},
		{name: "escapes", links: []linkformat.Link{{Target: "/a", Params: []linkformat.Param{{Name: "rt", Value: `"q" \`}}}}, want: `</a>;rt="\"q\" \\"`},
		{name: "non-ascii quoted", links: []linkformat.Link{{Target: "/a", Params: []linkformat.Param{{Name: "title", Value: "é"}}}}, want: `</a>;title="é"`},
		{name: "target escapes", links: []linkformat.Link{{Target: "/a b<>\"\x7f"}}, want: `</a%20b%3C%3E%22%7F>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(linkformat.Format(tt.links)); got != tt.want {
				t.Errorf("Format = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestLinkParam(t *testing.T) {
	l := linkformat.Link{Target: "/", Params: []linkformat.Param{{Name: "rt", Value: "oma.lwm2m"}, {Name: "obs"}, {Name: "RT", Value: "second"}}}
	tests := []struct {
		name      string
		param     string
		want      string
		wantFound bool
	}{
		{name: "first of two", param: "rt", want: "oma.lwm2m", wantFound: true},
		{name: "case-insensitive", param: "Rt", want: "oma.lwm2m", wantFound: true},
		{name: "value-less", param: "obs", want: "", wantFound: true},
		{name: "absent", param: "ct", want: "", wantFound: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := l.Param(tt.param)
			if got != tt.want || found != tt.wantFound {
				t.Errorf("Param(%q) = %q, %v; want %q, %v", tt.param, got, found, tt.want, tt.wantFound)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>;ver=1.1`,
		`</3/0>;pmin=10;pmax=60,</3/0/1>,</3/0/7>;dim=2;gt=50,</3/0/11>;obs`,
		`</sensors/temp>;rt="temperature-c";if="sensor",` + "\n" + `</sensors/light>;rt="light-lux";if="sensor"`,
		`</a>;title="x, y; z";rt="\"q\" \\"`,
		" \t</a> ; ct = 40 ;\r\n obs , </b>\n",
		`</a>;rt=""`,
		`<coap://[::1]:5683/x?y=1>;anchor="/"`,
		`</a>;title*=UTF-8'de'n%c3%a4chstes`,
		"</a;ct=0",
		"<>",
		`</a>;rt="x,</b>`,
		`</a>;rt="x\`,
		`</a>;rt=`,
		"</a>,,</b>",
		"</a>,",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		links, err := linkformat.Parse(in)
		if err != nil {
			if !errors.Is(err, linkformat.ErrFormat) {
				t.Fatalf("Parse error %v does not wrap ErrFormat", err)
			}
			if len(in) > linkformat.MaxSize && !errors.Is(err, linkformat.ErrTooLarge) {
				t.Fatalf("Parse of %d bytes: %v, want ErrTooLarge", len(in), err)
			}
			return
		}
		// Each link costs at least "<x>" and a separator.
		if len(links) > (len(in)+1)/4 {
			t.Fatalf("%d links from %d bytes", len(links), len(in))
		}
		out := linkformat.Format(links)
		// Format drops white space and only adds escapes the input had to
		// have already, so it never grows the input.
		if len(out) > len(in) {
			t.Fatalf("formatted %d bytes into %d: %q", len(in), len(out), out)
		}
		again, err := linkformat.Parse(out)
		if err != nil {
			t.Fatalf("Parse of formatted %q: %v", out, err)
		}
		if !reflect.DeepEqual(links, again) {
			t.Fatalf("round trip changed links:\n%#v\n%#v", links, again)
		}
		if out2 := linkformat.Format(again); !bytes.Equal(out, out2) {
			t.Fatalf("Format not canonical: %q vs %q", out, out2)
		}
	})
}
