// Package codectest holds the fixtures that the content-format codecs'
// tests share: the Device object instance of the LwM2M specification's
// data-format examples, its resource types, and a record constructor.
package codectest

import "github.com/avc-agent/avc/lwm2m"

// DeviceRecords returns the values of the Device object instance /3/0 used
// in OMA-TS-LightweightM2M_Core-V1_1_1 §7.4's examples, sorted by path.
func DeviceRecords() []lwm2m.Record {
	return []lwm2m.Record{
		{Path: lwm2m.P(3, 0, 0), Value: lwm2m.String("Open Mobile Alliance")},
		{Path: lwm2m.P(3, 0, 1), Value: lwm2m.String("Lightweight M2M Client")},
		{Path: lwm2m.P(3, 0, 2), Value: lwm2m.String("345000123")},
		{Path: lwm2m.P(3, 0, 3), Value: lwm2m.String("1.0")},
		{Path: lwm2m.P(3, 0, 6, 0), Value: lwm2m.Int(1)},
		{Path: lwm2m.P(3, 0, 6, 1), Value: lwm2m.Int(5)},
		{Path: lwm2m.P(3, 0, 7, 0), Value: lwm2m.Int(3800)},
		{Path: lwm2m.P(3, 0, 7, 1), Value: lwm2m.Int(5000)},
		{Path: lwm2m.P(3, 0, 8, 0), Value: lwm2m.Int(125)},
		{Path: lwm2m.P(3, 0, 8, 1), Value: lwm2m.Int(900)},
		{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(100)},
		{Path: lwm2m.P(3, 0, 10), Value: lwm2m.Int(15)},
		{Path: lwm2m.P(3, 0, 11, 0), Value: lwm2m.Int(0)},
		{Path: lwm2m.P(3, 0, 13), Value: lwm2m.Value{Type: lwm2m.TypeTime, Int: 1367491215}},
		{Path: lwm2m.P(3, 0, 14), Value: lwm2m.String("+02:00")},
		{Path: lwm2m.P(3, 0, 16), Value: lwm2m.String("U")},
	}
}

// DeviceTypes gives the types of the Device object's resources in
// DeviceRecords; other resources are TypeNone.
func DeviceTypes(p lwm2m.Path) lwm2m.Type {
	switch p.Res() {
	case 0, 1, 2, 3, 14, 15, 16:
		return lwm2m.TypeString
	case 6, 7, 8, 9, 10, 11, 21:
		return lwm2m.TypeInteger
	case 13:
		return lwm2m.TypeTime
	}
	return lwm2m.TypeNone
}

// Rec makes a record.
func Rec(p lwm2m.Path, v lwm2m.Value) lwm2m.Record { return lwm2m.Record{Path: p, Value: v} }
