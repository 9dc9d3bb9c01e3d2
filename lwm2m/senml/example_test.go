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
