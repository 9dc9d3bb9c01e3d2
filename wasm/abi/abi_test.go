package abi_test

import (
	"fmt"
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
	node, err := os.ReadFile("../../bindings/node/core.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []abi.Code{abi.OK, abi.None, abi.Fault, abi.BadInput, abi.Duplicate, abi.BadParameter, abi.Unsupported, abi.NotInitialized, abi.NotRegistered} {
		if !strings.Contains(string(doc), c.String()) {
			t.Errorf("ABI.md does not mention %s", c)
		}
		if !strings.Contains(string(node), c.String()) {
			t.Errorf("bindings/node/core.js does not mention %s", c)
		}
	}
	if got := abi.Code(-99).String(); got != "AVC_-99" {
		t.Errorf("unknown code = %q", got)
	}
}

// TestFirmwareCodesDocumented: every firmware import result, with its
// value, is in ABI.md's table, in the Node binding and, with the same
// name and value, in libavc's avc_fw_error_t; -r names Update Result r.
func TestFirmwareCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../ABI.md")
	if err != nil {
		t.Fatal(err)
	}
	node, err := os.ReadFile("../../bindings/node/core.js")
	if err != nil {
		t.Fatal(err)
	}
	header, err := os.ReadFile("../../include/avc.h")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		code   abi.FirmwareCode
		result int // the Update Result it names; 0 for none
	}{
		{abi.FwOther, 0}, {abi.FwNotEnoughSpace, 2}, {abi.FwOutOfMemory, 3}, {abi.FwIntegrityFailure, 5},
		{abi.FwUnsupportedPackageType, 6}, {abi.FwDeferred, 11},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			row := fmt.Sprintf("| `%s` | %d |", tt.code, int32(tt.code))
			if !strings.Contains(string(doc), row) {
				t.Errorf("ABI.md has no row %q", row)
			}
			if js := fmt.Sprintf("%s: %d,", tt.code, int32(tt.code)); !strings.Contains(string(node), js) {
				t.Errorf("bindings/node/core.js has no %q", js)
			}
			if c := fmt.Sprintf("%s = %d", tt.code, int32(tt.code)); tt.code != abi.FwOther && !strings.Contains(string(header), c) {
				t.Errorf("include/avc.h has no %q", c)
			}
			if tt.result != 0 && int(-tt.code) != tt.result {
				t.Errorf("%s = %d does not name Update Result %d", tt.code, tt.code, tt.result)
			}
		})
	}
	if got := abi.FirmwareCode(-4).String(); got != "AVC_FW_ERR_-4" {
		t.Errorf("unknown firmware code = %q", got)
	}
}

// TestObjectsXMLKey: the avc_init key of custom objects is documented and
// is the one the Node binding sends.
func TestObjectsXMLKey(t *testing.T) {
	for f, want := range map[string]string{
		"../ABI.md":                   `"` + abi.ConfigObjectsXML + `"`,
		"../../bindings/node/core.js": "json." + abi.ConfigObjectsXML + " = ",
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

// TestReadCallbacksKey: the avc_init key of read callbacks is documented
// and is the one the Node binding sends.
func TestReadCallbacksKey(t *testing.T) {
	for f, want := range map[string]string{
		"../ABI.md":                   `"` + abi.ConfigReadCallbacks + `"`,
		"../../bindings/node/core.js": "json." + abi.ConfigReadCallbacks + " = ",
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

// TestFirmwareKey: the avc_init key that enables firmware update is
// documented and is the one the Node binding sends; the version the
// binding implements is this package's.
func TestFirmwareKey(t *testing.T) {
	for f, want := range map[string]string{
		"../ABI.md":                      `"` + abi.ConfigFirmware + `": true`,
		"../../bindings/node/core.js":    "json." + abi.ConfigFirmware + " = true",
		"../../bindings/node/index.d.ts": fmt.Sprintf("ABI_VERSION: %d", abi.Version),
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
