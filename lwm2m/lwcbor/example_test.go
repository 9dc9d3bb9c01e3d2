package lwcbor_test

import (
	"fmt"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/lwcbor"
)

func Example() {
	// A Read of /3/0: paths are written from the object down,
	// {3: {0: {0: "avc", 1: "m", 6: {0: 1}}}}.
	base := lwm2m.P(3, 0)
	b, err := lwcbor.Encode(base, []lwm2m.Record{
		{Path: lwm2m.P(3, 0, 0), Value: lwm2m.String("avc")},
		{Path: lwm2m.P(3, 0, 1), Value: lwm2m.String("m")},
		{Path: lwm2m.P(3, 0, 6, 0), Value: lwm2m.Int(1)},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% x\n", b)

	// A Write to /3/0 whose key is the array [3, 0], with an
	// indefinite-length map as some encoders send it:
	// {[3, 0]: {_ 13: 1(1700000000), 14: "+01:00"}}.
	in := []byte{0xa1, 0x82, 0x03, 0x00, 0xbf,
		0x0d, 0xc1, 0x1a, 0x65, 0x53, 0xf1, 0x00,
		0x0e, 0x66, '+', '0', '1', ':', '0', '0', 0xff}
	types := func(p lwm2m.Path) lwm2m.Type {
		if p.Res() == 13 {
			return lwm2m.TypeTime
		}
		return lwm2m.TypeString
	}
	recs, err := lwcbor.Decode(base, in, types)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range recs {
		fmt.Println(r.Path, r.Value.Type, r.Value)
	}

	// The same payload is not under /3/1.
	_, err = lwcbor.Decode(lwm2m.P(3, 1), in, types)
	fmt.Println(err)
	// Output:
	// a1 03 a1 00 a3 00 63 61 76 63 01 61 6d 06 a1 00 01
	// /3/0/13 time 1700000000
	// /3/0/14 string +01:00
	// lwcbor: malformed: /3/0 is not under /3/1
}
