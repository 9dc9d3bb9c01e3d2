package abi_test

import (
	"os"
	"strings"
	"testing"

	"github.com/avc-agent/avc/wasm/abi"
)

// TestDocumented: every code and its value appear in ABI.md, and the Node
// binding uses the same values.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile("../ABI.md")
	if err != nil {
		t.Fatal(err)
	}
	node, err := os.ReadFile("../../bindings/node/index.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []abi.Code{abi.OK, abi.None, abi.Fault, abi.BadInput, abi.Duplicate, abi.BadParameter, abi.Unsupported, abi.NotInitialized, abi.NotRegistered} {
		if !strings.Contains(string(doc), c.String()) {
			t.Errorf("ABI.md does not mention %s", c)
		}
		if !strings.Contains(string(node), c.String()) {
			t.Errorf("bindings/node/index.js does not mention %s", c)
		}
	}
	if got := abi.Code(-99).String(); got != "AVC_-99" {
		t.Errorf("unknown code = %q", got)
	}
}

// TestObjectsXMLKey: the avc_init key of custom objects is documented and
// is the one the Node binding sends.
func TestObjectsXMLKey(t *testing.T) {
	for f, want := range map[string]string{
		"../ABI.md":                    `"` + abi.ConfigObjectsXML + `"`,
		"../../bindings/node/index.js": "json." + abi.ConfigObjectsXML + " = ",
	} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s does not contain %s", f, want)
		}
	}
}
