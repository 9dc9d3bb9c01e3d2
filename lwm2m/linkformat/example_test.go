package linkformat_test

import (
	"fmt"

	"github.com/avc-agent/avc/lwm2m/linkformat"
)

func Example() {
	links, err := linkformat.Parse([]byte(`</>;rt="oma.lwm2m";ct=11543, </1/0>, </3/0>;ver=1.1;title="a, b"`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range links {
		ver, ok := l.Param("ver")
		fmt.Println(l.Target, len(l.Params), ver, ok)
	}
	links = append(links, linkformat.Link{Target: "/5/0", Params: []linkformat.Param{{Name: "obs"}}})
	fmt.Printf("%s\n", linkformat.Format(links))
	// Output:
	// / 2  false
	// /1/0 0  false
	// /3/0 2 1.1 true
	// </>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>;ver=1.1;title="a, b",</5/0>;obs
}
