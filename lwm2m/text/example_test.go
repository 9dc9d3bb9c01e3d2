package text_test

import (
	"errors"
	"fmt"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/text"
)

func Example() {
	for _, v := range []lwm2m.Value{lwm2m.Int(-5), lwm2m.Float(0.1), lwm2m.Bool(true), lwm2m.Opaque([]byte("hi")), lwm2m.Link(3, 0)} {
		b, err := text.Encode(v)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s %s\n", v.Type, b)
	}

	v, err := text.Decode([]byte("86400"), lwm2m.TypeUnsigned)
	fmt.Println(v.Uint, err)
	_, err = text.Decode([]byte("86400 "), lwm2m.TypeUnsigned)
	fmt.Println(errors.Is(err, text.ErrFormat))
	// Output:
	// integer -5
	// float 0.1
	// boolean 1
	// opaque aGk=
	// objlnk 3:0
	// 86400 <nil>
	// true
}
