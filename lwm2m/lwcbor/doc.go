// Package lwcbor encodes and decodes the LwM2M-CBOR content format
// (application/vnd.oma.lwm2m+cbor, content format 11544) of LwM2M 1.2.
//
// A payload is one CBOR map whose keys are path components and whose values
// are either a nested map, which continues the path, or the value of the
// resource or resource instance the path has reached:
//
//	{3: {0: {0: "avc", 1: "m", 6: {0: 1, 1: 5}}}}
//
// holds /3/0/0, /3/0/1, /3/0/6/0 and /3/0/6/1. Values are encoded as in
// the plain CBOR format, see package cborval.
//
// # Format
//
// These are the facts of OMA-TS-LightweightM2M_Core-V1_2 §7.4.6 this
// package relies on:
//
//   - A key is an unsigned integer (one path component, 0..65534) or a
//     non-empty array of them (several consecutive components), so
//     {[3, 0]: {9: 100}} and {[3, 0, 9]: 100} both say /3/0/9 = 100. The
//     forms can be mixed, and one path prefix can appear under several
//     keys: {[3, 0]: {9: 100}, [3, 0, 10]: 15} holds /3/0/9 and /3/0/10.
//   - Paths are absolute. The outermost keys start at the Object ID
//     whatever the request path is: a Read of /3/0/9 answers
//     {3: {0: {9: 100}}}. The request path (base) only limits which paths
//     may appear.
//   - Maps and arrays may have definite or indefinite length; constrained
//     encoders stream indefinite-length maps (0xBF ... 0xFF), so decoders
//     must accept them.
//   - An empty map is a payload without values.
//   - Values are encoded as in the plain CBOR format (content format
//     60): integers, floats of any width and decimal fractions (tag 4)
//     for numbers, text strings for strings and for object links ("3:0"),
//     byte strings for opaque values, booleans, and tag 1 with an integer
//     for times.
//
// The specification text was not at hand when this package was written;
// the facts above were taken from the public behaviour and unit-test
// vectors of an open-source LwM2M 1.2 client (AVSystem Anjay Lite:
// absolute paths for every base, array and mixed keys, indefinite-length
// maps, tag 1 times, text object links, decimal fractions) and the IANA
// registration of the media type. Check them against the TS when it is.
//
// # Notes
//
//   - Decoding is strict (reliability catalogue B28–B30): every malformed
//     input yields an error wrapping [ErrFormat], and input larger than
//     [MaxSize] yields [ErrTooLarge], which also wraps [ErrFormat].
//     Nesting deeper than [MaxNesting] CBOR levels is rejected before any
//     value is decoded.
//   - Null values (which LwM2M 1.2 uses in some composite operations) are
//     not supported: [lwm2m.Record] cannot hold them, so they are rejected.
//   - Encoding is deterministic: one nested map per path component, keys
//     in ascending order, definite lengths.
//
// See OMA-TS-LightweightM2M_Core-V1_2 §7.4.6 and RFC 8949.
package lwcbor
