package lwm2m_test

import (
	"fmt"

	"github.com/avc-agent/avc/lwm2m"
)

func ExampleParsePath() {
	p, err := lwm2m.ParsePath("/3/0/11/2")
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Obj(), p.Inst(), p.Res(), p.RInst(), p.Parent())
	_, err = lwm2m.ParsePath("/3/0/x")
	fmt.Println(err)
	// Output:
	// 3 0 11 2 /3/0/11
	// lwm2m: bad path: segment "x"
}

func ExampleValue_Convert() {
	v, err := lwm2m.Float(3).Convert(lwm2m.TypeInteger)
	fmt.Println(v, err)
	_, err = lwm2m.Float(3.5).Convert(lwm2m.TypeInteger)
	fmt.Println(err)
	// Output:
	// 3 <nil>
	// lwm2m: cannot convert float 3.5 to integer
}
