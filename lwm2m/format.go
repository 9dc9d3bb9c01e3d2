package lwm2m

import "strconv"

// ContentFormat is a CoAP Content-Format number as used by LwM2M.
type ContentFormat uint16

// Content formats of the LwM2M 1.1 and 1.2 transport bindings.
const (
	FormatText       ContentFormat = 0     // text/plain
	FormatLinkFormat ContentFormat = 40    // application/link-format
	FormatOpaque     ContentFormat = 42    // application/octet-stream
	FormatCBOR       ContentFormat = 60    // application/cbor
	FormatSenMLJSON  ContentFormat = 110   // application/senml+json
	FormatSenMLCBOR  ContentFormat = 112   // application/senml+cbor
	FormatTLV        ContentFormat = 11542 // application/vnd.oma.lwm2m+tlv
	FormatJSON       ContentFormat = 11543 // application/vnd.oma.lwm2m+json (1.0)
	FormatLwM2MCBOR  ContentFormat = 11544 // application/vnd.oma.lwm2m+cbor (1.2)
	FormatNone       ContentFormat = 0xFFFF
)

// String names the format.
func (f ContentFormat) String() string {
	switch f {
	case FormatText:
		return "text/plain"
	case FormatLinkFormat:
		return "application/link-format"
	case FormatOpaque:
		return "application/octet-stream"
	case FormatCBOR:
		return "application/cbor"
	case FormatSenMLJSON:
		return "application/senml+json"
	case FormatSenMLCBOR:
		return "application/senml+cbor"
	case FormatTLV:
		return "application/vnd.oma.lwm2m+tlv"
	case FormatJSON:
		return "application/vnd.oma.lwm2m+json"
	case FormatLwM2MCBOR:
		return "application/vnd.oma.lwm2m+cbor"
	case FormatNone:
		return "none"
	}
	return "content-format(" + strconv.Itoa(int(f)) + ")"
}
