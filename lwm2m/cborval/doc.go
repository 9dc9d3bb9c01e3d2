// Package cborval encodes and decodes one LwM2M resource value as plain
// CBOR (RFC 8949, application/cbor, content format 60).
//
// The payload is a single CBOR data item and nothing else:
//
//	Integer           major type 0 or 1            5, -7
//	Unsigned Integer  major type 0                 18446744073709551615
//	Float             half, single or double       1.5
//	Boolean           simple value true or false   true
//	String, Corelnk   text string                  "U"
//	Opaque            byte string                  h'0102'
//	Time              tag 1 with an integer        1(1700000000)
//	Objlnk            text string "obj:inst"       "3:0"
//
// # Notes
//
//   - Decoding is strict (reliability catalogue B29, B30): input larger
//     than [MaxSize] yields [ErrTooLarge], and anything that is not exactly
//     one well-formed data item of an accepted kind yields an error
//     wrapping [ErrFormat]. No trailing bytes, containers, null, undefined,
//     simple values, NaN, infinities, integers outside int64 and uint64,
//     or tags other than 1 (epoch time) and 4 (decimal fraction) at the
//     top level.
//   - Decoding is given the resource type and converts with
//     [lwm2m.Value.Convert] when nothing is lost: an integer 5 for an
//     unsigned or float resource, a plain integer for a time resource, a
//     float 3.0 for an integer resource. [lwm2m.TypeNone] keeps the type
//     the CBOR item has.
//   - Encoding is deterministic: integers in their shortest form, floats
//     in the shortest of half, single or double precision that holds the
//     value exactly, definite lengths.
//
// The package is also the value codec of the LwM2M-CBOR format (package
// lwcbor).
//
// See RFC 8949, OMA-TS-LightweightM2M_Core-V1_1_1 §7.4 for the CBOR data
// format and Appendix C for the data types.
package cborval
