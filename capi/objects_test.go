//go:build cgo

package main

import (
	"strings"
	"testing"

	"github.com/avc-agent/avc/lwm2m"
)

func TestCheckObjectDefs(t *testing.T) {
	good := func() lwm2m.ObjectDef {
		return lwm2m.ObjectDef{ID: 3450, Version: "1.1", Resources: []lwm2m.ResourceDef{
			{ID: 1, Type: lwm2m.TypeString, Operations: lwm2m.OpRead | lwm2m.OpWrite},
			{ID: 2, Operations: lwm2m.OpExecute},
			{ID: 3, Type: lwm2m.TypeFloat},
		}}
	}
	tests := []struct {
		name   string
		change func(d *lwm2m.ObjectDef)
		want   string // "" when valid
	}{
		{"valid", func(*lwm2m.ObjectDef) {}, ""},
		{"object ID 65535", func(d *lwm2m.ObjectDef) { d.ID = 65535 }, "out of range"},
		{"resource ID 65535", func(d *lwm2m.ObjectDef) { d.Resources[0].ID = 65535 }, "out of range"},
		{"resource twice", func(d *lwm2m.ObjectDef) { d.Resources[1].ID = 1 }, "defined twice"},
		{"unknown type", func(d *lwm2m.ObjectDef) { d.Resources[0].Type = lwm2m.TypeCoreLink + 1 }, "unknown type"},
		{"executable with a type", func(d *lwm2m.ObjectDef) { d.Resources[1].Type = lwm2m.TypeInteger }, "executable with type"},
		{"readable without a type", func(d *lwm2m.ObjectDef) { d.Resources[0].Type = lwm2m.TypeNone }, "without a type"},
		{"read and execute", func(d *lwm2m.ObjectDef) { d.Resources[0].Operations |= lwm2m.OpExecute }, "want R, W, RW, E"},
		{"version empty", func(d *lwm2m.ObjectDef) { d.Version = "" }, "version"},
		{"version with link syntax", func(d *lwm2m.ObjectDef) { d.Version = "1.0>;x" }, "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := good()
			tt.change(&d)
			err := checkObjectDefs([]lwm2m.ObjectDef{d})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("checkObjectDefs: %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("checkObjectDefs: %v, want an error with %q", err, tt.want)
			}
		})
	}
}
