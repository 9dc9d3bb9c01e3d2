// Package tlv encodes and decodes the OMA LwM2M TLV content format
// (application/vnd.oma.lwm2m+tlv, content format 11542).
//
// A TLV payload is a sequence of Type-Length-Value entries. Each entry is an
// Object Instance, a Resource (with a value), a Multiple Resource (holding
// Resource Instances) or a Resource Instance (with a value). The nesting is
// at most Object Instance → Multiple Resource → Resource Instance; what the
// outermost entry is depends on the path the payload is addressed to, see
// [Encode] and [Decode].
//
// Values are encoded per type: integers and times as 1, 2, 4 or 8-byte
// big-endian two's complement, unsigned integers as 1, 2, 4 or 8-byte
// big-endian, floats as 4 or 8-byte IEEE 754, booleans as one byte 0 or 1,
// strings and core links as UTF-8, opaque values raw and object links as
// four bytes (object ID, instance ID).
//
// # Notes
//
//   - Decoding is strict: every malformed input yields an error wrapping
//     [ErrFormat] (reliability catalogue B22–B25), and input larger than
//     [MaxSize] yields [ErrTooLarge], which also wraps [ErrFormat].
//   - Decoding never reads beyond the input, every loop iteration consumes
//     at least one byte and the memory it allocates is bounded by a small
//     multiple of the input size.
//   - An empty Multiple Resource TLV decodes to no records.
//
// See OMA-TS-LightweightM2M_Core-V1_1_1 §7.4.3.
package tlv
