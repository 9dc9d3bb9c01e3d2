package server

import "github.com/avc-agent/avc/lwm2m"

// Resource types of the standard objects the server talks about, from the
// OMA LwM2M registry: Security (LwM2M Core TS 1.1 §E.1), Server (§E.2),
// Device (§E.4) and Firmware Update (§E.6). Executable resources are
// TypeNone.
var objectTypes = map[uint16]map[uint16]lwm2m.Type{
	0: { // Security
		0:  lwm2m.TypeString,  // LwM2M Server URI
		1:  lwm2m.TypeBoolean, // Bootstrap-Server
		2:  lwm2m.TypeInteger, // Security Mode
		3:  lwm2m.TypeOpaque,  // Public Key or Identity
		4:  lwm2m.TypeOpaque,  // Server Public Key
		5:  lwm2m.TypeOpaque,  // Secret Key
		10: lwm2m.TypeInteger, // Short Server ID
		11: lwm2m.TypeInteger, // Client Hold Off Time
	},
	1: { // Server
		0: lwm2m.TypeInteger, // Short Server ID
		1: lwm2m.TypeInteger, // Lifetime
		2: lwm2m.TypeInteger, // Default Minimum Period
		3: lwm2m.TypeInteger, // Default Maximum Period
		4: lwm2m.TypeNone,    // Disable (executable)
		5: lwm2m.TypeInteger, // Disable Timeout
		6: lwm2m.TypeBoolean, // Notification Storing When Disabled or Offline
		7: lwm2m.TypeString,  // Binding
		8: lwm2m.TypeNone,    // Registration Update Trigger (executable)
	},
	3: { // Device
		0:  lwm2m.TypeString,  // Manufacturer
		1:  lwm2m.TypeString,  // Model Number
		2:  lwm2m.TypeString,  // Serial Number
		3:  lwm2m.TypeString,  // Firmware Version
		4:  lwm2m.TypeNone,    // Reboot (executable)
		5:  lwm2m.TypeNone,    // Factory Reset (executable)
		6:  lwm2m.TypeInteger, // Available Power Sources (multiple)
		7:  lwm2m.TypeInteger, // Power Source Voltage (multiple)
		8:  lwm2m.TypeInteger, // Power Source Current (multiple)
		9:  lwm2m.TypeInteger, // Battery Level
		10: lwm2m.TypeInteger, // Memory Free
		11: lwm2m.TypeInteger, // Error Code (multiple)
		12: lwm2m.TypeNone,    // Reset Error Code (executable)
		13: lwm2m.TypeTime,    // Current Time
		14: lwm2m.TypeString,  // UTC Offset
		15: lwm2m.TypeString,  // Timezone
		16: lwm2m.TypeString,  // Supported Binding and Modes
		17: lwm2m.TypeString,  // Device Type
		18: lwm2m.TypeString,  // Hardware Version
		19: lwm2m.TypeString,  // Software Version
		20: lwm2m.TypeInteger, // Battery Status
		21: lwm2m.TypeInteger, // Memory Total
	},
	5: { // Firmware Update
		0: lwm2m.TypeOpaque,  // Package
		1: lwm2m.TypeString,  // Package URI
		2: lwm2m.TypeNone,    // Update (executable)
		3: lwm2m.TypeInteger, // State
		5: lwm2m.TypeInteger, // Update Result
		6: lwm2m.TypeString,  // PkgName
		7: lwm2m.TypeString,  // PkgVersion
		8: lwm2m.TypeInteger, // Firmware Update Protocol Support (multiple)
		9: lwm2m.TypeInteger, // Firmware Update Delivery Method
	},
}

// typeOf returns the data type of the resource at p (a resource or resource
// instance path) for the objects in objectTypes. Unknown objects and
// resources, executables and paths above a resource are TypeNone, which the
// codecs treat as opaque.
func typeOf(p lwm2m.Path) lwm2m.Type {
	if p.Len < 3 {
		return lwm2m.TypeNone
	}
	return objectTypes[p.Obj()][p.Res()]
}
