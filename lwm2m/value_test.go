package lwm2m_test

import (
	"math"
	"testing"

	"github.com/avc-agent/avc/lwm2m"
)

func TestValueEqual(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		a, b lwm2m.Value
		want bool
	}{
		{"same integer", lwm2m.Int(5), lwm2m.Int(5), true},
		{"integer and unsigned", lwm2m.Int(5), lwm2m.Uint(5), false},
		{"same NaN", lwm2m.Float(nan), lwm2m.Float(nan), true},
		{"zero and minus zero", lwm2m.Float(0), lwm2m.Float(math.Copysign(0, -1)), false},
		{"opaque by content", lwm2m.Opaque([]byte{1, 2}), lwm2m.Opaque([]byte{1, 2}), true},
		{"nil and empty opaque", lwm2m.Opaque(nil), lwm2m.Opaque([]byte{}), true},
		{"objlnk", lwm2m.Link(3, 0), lwm2m.Link(3, 1), false},
		{"string", lwm2m.String("a"), lwm2m.String("b"), false},
	}
	for _, tt := range tests {
		if got := tt.a.Equal(tt.b); got != tt.want {
			t.Errorf("%s: Equal = %v, want %v", tt.name, got, tt.want)
		}
	}
	a := []lwm2m.Record{{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(1)}}
	if !lwm2m.RecordsEqual(a, []lwm2m.Record{{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(1)}}) {
		t.Error("equal records differ")
	}
	if lwm2m.RecordsEqual(a, nil) || lwm2m.RecordsEqual(a, []lwm2m.Record{{Path: lwm2m.P(3, 0, 8), Value: lwm2m.Int(1)}}) {
		t.Error("different records are equal")
	}
}
