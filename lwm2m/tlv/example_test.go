package tlv_test

import (
	"fmt"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/tlv"
)

func Example() {
	base := lwm2m.P(3, 0)
	b, err := tlv.Encode(base, []lwm2m.Record{
		{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(100)},
		{Path: lwm2m.P(3, 0, 6, 0), Value: lwm2m.Int(1)},
		{Path: lwm2m.P(3, 0, 6, 1), Value: lwm2m.Int(5)},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% X\n", b)

	types := func(p lwm2m.Path) lwm2m.Type { return lwm2m.TypeInteger }
	recs, err := tlv.Decode(base, b, types)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range recs {
		fmt.Println(r.Path, r.Value)
	}
	// Output:
	// 86 06 41 00 01 41 01 05 C1 09 64
	// /3/0/6/0 1
	// /3/0/6/1 5
	// /3/0/9 100
}
