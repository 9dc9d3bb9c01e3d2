package lwm2m_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/avc-agent/avc/lwm2m"
)

func TestParseObjectXML(t *testing.T) {
	b, err := os.ReadFile("testdata/3442-test.xml")
	if err != nil {
		t.Fatal(err)
	}
	defs, err := lwm2m.ParseObjectXML(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 1 {
		t.Fatalf("%d objects, want 1", len(defs))
	}
	d := defs[0]
	if d.ID != 3442 || d.Version != "1.1" || !d.Multiple || d.Mandatory || d.URN != "urn:oma:lwm2m:oma:3442:1.1" {
		t.Errorf("object = %+v", d)
	}
	tests := []struct {
		id    uint16
		typ   lwm2m.Type
		ops   string
		multi bool
	}{
		{110, lwm2m.TypeString, "RW", false},
		{125, lwm2m.TypeUnsigned, "R", false},
		{130, lwm2m.TypeFloat, "RW", false},
		{170, lwm2m.TypeObjlnk, "RW", false},
		{180, lwm2m.TypeInteger, "RW", true},
		{200, lwm2m.TypeNone, "E", false},
	}
	for _, tt := range tests {
		r, ok := d.Resource(tt.id)
		if !ok || r.Type != tt.typ || r.Operations.String() != tt.ops || r.Multiple != tt.multi {
			t.Errorf("resource %d = %+v, %v", tt.id, r, ok)
		}
	}
	if r, _ := d.Resource(120); r.Units != "%" || r.Range != "0..100" {
		t.Errorf("units/range = %q %q", r.Units, r.Range)
	}
}

func TestParseObjectXMLErrors(t *testing.T) {
	obj := func(inner string) string {
		return `<LWM2M><Object><Name>x</Name><ObjectID>9000</ObjectID><Resources>` + inner + `</Resources></Object></LWM2M>`
	}
	item := func(id, ops, typ string) string {
		return `<Item ID="` + id + `"><Name>r</Name><Operations>` + ops + `</Operations><Type>` + typ + `</Type></Item>`
	}
	tests := []struct{ name, doc string }{
		{"not xml", "{"},
		{"wrong root", "<Objects/>"},
		{"no object", "<LWM2M></LWM2M>"},
		{"bad object id", `<LWM2M><Object><ObjectID>70000</ObjectID></Object></LWM2M>`},
		{"bad resource id", obj(item("x", "R", "String"))},
		{"duplicate resource", obj(item("1", "R", "String") + item("1", "R", "String"))},
		{"unknown type", obj(item("1", "R", "Colour"))},
		{"unknown operations", obj(item("1", "RWX", "String"))},
		{"typed executable", obj(item("1", "E", "String"))},
		{"untyped readable", obj(item("1", "R", ""))},
		{"too large", "<LWM2M>" + strings.Repeat(" ", 1<<20) + "</LWM2M>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := lwm2m.ParseObjectXML([]byte(tt.doc)); !errors.Is(err, lwm2m.ErrObjectXML) {
				t.Errorf("error = %v, want ErrObjectXML", err)
			}
		})
	}
}

func FuzzParseObjectXML(f *testing.F) {
	if b, err := os.ReadFile("testdata/3442-test.xml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`<LWM2M><Object><ObjectID>1</ObjectID></Object></LWM2M>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		defs, err := lwm2m.ParseObjectXML(b)
		if err != nil {
			if !errors.Is(err, lwm2m.ErrObjectXML) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for _, d := range defs {
			if d.ID > lwm2m.MaxID {
				t.Fatalf("object ID %d", d.ID)
			}
			seen := map[uint16]bool{}
			for _, r := range d.Resources {
				if seen[r.ID] || r.ID > lwm2m.MaxID {
					t.Fatalf("resource %d", r.ID)
				}
				seen[r.ID] = true
			}
		}
	})
}
