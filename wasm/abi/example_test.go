package abi_test

import (
	"fmt"

	"github.com/avc-agent/avc/wasm/abi"
)

func ExampleCode_String() {
	fmt.Println(abi.Duplicate, int32(abi.Duplicate))
	// Output: AVC_DUPLICATE -14
}
