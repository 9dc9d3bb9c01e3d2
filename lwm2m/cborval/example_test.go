package cborval_test

import (
	"fmt"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/cborval"
)

func Example() {
	// A Read of /3/0/13 (Current Time) answers tag 1 with the seconds.
	b, err := cborval.Encode(lwm2m.Value{Type: lwm2m.TypeTime, Int: 1367491215})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% x\n", b)

	// A Write of 1.5, sent as a half-precision float, to a float resource,
	// and of an object link.
	v, err := cborval.Decode([]byte{0xf9, 0x3e, 0x00}, lwm2m.TypeFloat)
	fmt.Println(v.Type, v, err)
	v, err = cborval.Decode([]byte{0x63, '3', ':', '0'}, lwm2m.TypeObjlnk)
	fmt.Println(v.Type, v, err)

	// A text string is not an integer.
	_, err = cborval.Decode([]byte{0x61, '5'}, lwm2m.TypeInteger)
	fmt.Println(err)
	// Output:
	// c1 1a 51 82 42 8f
	// float 1.5 <nil>
	// objlnk 3:0 <nil>
	// cborval: malformed: lwm2m: cannot convert string 5 to integer
}
