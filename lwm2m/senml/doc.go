// Package senml encodes and decodes LwM2M resource values as SenML-JSON
// (RFC 8428, application/senml+json, content format 110).
//
// A payload is a JSON array of records. Each record names a resource or
// resource instance by its base name "bn" (which persists to later records
// until changed) joined with its name "n", and carries one value: "v" for
// numbers, "vs" for strings and core links, "vb" for booleans, "vd" for
// opaque data in base64url and, as LwM2M adds, "vlo" for object links
// ("3:0").
//
// # Notes
//
//   - Decoding is strict: every malformed input yields an error wrapping
//     [ErrFormat] (reliability catalogue B28, B30, B31), and input larger
//     than [MaxSize] yields [ErrTooLarge], which also wraps [ErrFormat].
//   - Times ("bt", "t") are validated and then ignored: [lwm2m.Record] has
//     no time, so a payload with several timestamps of one resource is
//     rejected as a duplicate.
//   - SenML-CBOR (content format 112) is not implemented here yet; it will
//     be added in this package on top of github.com/fxamacker/cbor.
//
// See RFC 8428 and OMA-TS-LightweightM2M_Core-V1_1_1 §7.4.4.
package senml
