package senml_test

import (
	"fmt"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/senml"
)

func Example() {
	base := lwm2m.P(3, 0)
	b, err := senml.EncodeJSON(base, []lwm2m.Record{
		{Path: lwm2m.P(3, 0, 0), Value: lwm2m.String("Open Mobile Alliance")},
		{Path: lwm2m.P(3, 0, 6, 0), Value: lwm2m.Int(1)},
		{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(100)},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", b)

	// A Write from a server: base name "/3/0/" applies to both records.
	in := []byte(`[{"bn":"/3/0/","n":"14","vs":"+01:00"},{"n":"13","v":1700000000}]`)
	types := func(p lwm2m.Path) lwm2m.Type {
		if p.Res() == 13 {
			return lwm2m.TypeTime
		}
		return lwm2m.TypeString
	}
	recs, err := senml.DecodeJSON(base, in, types)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range recs {
		fmt.Println(r.Path, r.Value.Type, r.Value)
	}
	// Output:
	// [{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},{"n":"6/0","v":1},{"n":"9","v":100}]
	// /3/0/13 time 1700000000
	// /3/0/14 string +01:00
}

func Example_cbor() {
	base := lwm2m.P(3, 0)
	b, err := senml.EncodeCBOR(base, []lwm2m.Record{
		{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(100)},
		{Path: lwm2m.P(3, 0, 0), Value: lwm2m.String("avc")},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// [{-2: "/3/0/", 0: "0", 3: "avc"}, {0: "9", 2: 100}]
	fmt.Printf("% x\n", b)

	// A Write from a server with the same records: integer labels, the
	// base name in the first record applies to both.
	recs, err := senml.DecodeCBOR(base, b, func(p lwm2m.Path) lwm2m.Type {
		if p.Res() == 9 {
			return lwm2m.TypeInteger
		}
		return lwm2m.TypeString
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range recs {
		fmt.Println(r.Path, r.Value.Type, r.Value)
	}

	// The text label "v" is SenML-JSON; SenML-CBOR spells it 2.
	_, err = senml.DecodeCBOR(base, []byte{0x81, 0xa2, 0x00, 0x61, '9', 0x61, 'v', 0x01}, nil)
	fmt.Println(err)
	// Output:
	// 82 a3 21 65 2f 33 2f 30 2f 00 61 30 03 63 61 76 63 a2 00 61 39 02 18 64
	// /3/0/0 string avc
	// /3/0/9 integer 100
	// record 0: label "v": senml: malformed: label must be the integer 2 in SenML-CBOR
}
