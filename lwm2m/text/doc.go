// Package text encodes and decodes single LwM2M resource values in the
// plain text content format (text/plain, content format 0).
//
// Integers, unsigned integers and times are ASCII decimal, floats are
// decimal with an optional exponent, booleans are "0" or "1", strings and
// core links are their UTF-8 bytes, opaque values are standard base64 and
// object links are "obj:inst" ("3:0").
//
// # Notes
//
//   - Decoding is strict: every malformed input yields an error wrapping
//     [ErrFormat] (reliability catalogue B24, B26), and input larger than
//     [MaxSize] yields [ErrTooLarge], which also wraps [ErrFormat].
//   - Nothing is trimmed: white space around a number is an error, and a
//     string keeps every byte.
//
// See OMA-TS-LightweightM2M_Core-V1_1_1 §7.4.1 and Appendix C.
package text
