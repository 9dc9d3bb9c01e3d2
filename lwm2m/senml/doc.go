// Package senml encodes and decodes LwM2M resource values as SenML-JSON
// (RFC 8428, application/senml+json, content format 110) and SenML-CBOR
// (application/senml+cbor, content format 112).
//
// A payload is an array of records. Each record names a resource or
// resource instance by its base name "bn" (which persists to later records
// until changed) joined with its name "n", and carries one value: "v" for
// numbers, "vs" for strings and core links, "vb" for booleans, "vd" for
// opaque data and, as LwM2M adds, "vlo" for object links ("3:0").
//
// The two formats share one data model and one set of rules, and decode
// the same payload to the same records. They differ in the wire form:
//
//	                 SenML-JSON            SenML-CBOR
//	labels           "bn" "n" "v" ...      -2 0 2 ... ("vlo" stays text)
//	numbers          JSON numbers          integers, half/single/double
//	                                       floats, decimal fractions
//	"vd"             base64url text        byte string
//	encoder          EncodeJSON            EncodeCBOR
//	decoder          DecodeJSON            DecodeCBOR
//
// # Notes
//
//   - Decoding is strict: every malformed input yields an error wrapping
//     [ErrFormat] (reliability catalogue B27–B31), and input larger than
//     [MaxSize] yields [ErrTooLarge], which also wraps [ErrFormat].
//   - SenML-CBOR is decoded with github.com/fxamacker/cbor under limits
//     (nesting 4, 64 labels per record, the whole input checked for
//     well-formedness first), so deep nesting, unterminated indefinite
//     lengths and huge declared lengths fail before anything is allocated
//     for them.
//   - Times ("bt", "t") are validated and then ignored: [lwm2m.Record] has
//     no time, so a payload with several timestamps of one resource is
//     rejected as a duplicate.
//   - Records without a value (the request of a Read-Composite) are
//     rejected: [lwm2m.Record] always has one.
//
// See RFC 8428 and OMA-TS-LightweightM2M_Core-V1_1_1 §7.4.4 and §7.4.5.
package senml
