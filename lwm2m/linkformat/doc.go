// Package linkformat parses and formats the CoRE Link Format (RFC 6690,
// application/link-format, content format 40), which LwM2M uses in the
// Register and Update payloads and in Discover responses:
//
//	</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>;ver=1.1
//
// # Notes
//
//   - A link is a target in angle brackets followed by parameters, each a
//     name, optionally "=" and a value that is a token or a quoted string.
//     Links are separated by commas. White space around the separators is
//     tolerated.
//   - Parsing is strict about everything else: every malformed input yields
//     an error wrapping [ErrFormat], and input larger than [MaxSize] or
//     with more than [MaxLinks] links yields [ErrTooLarge], which also
//     wraps [ErrFormat].
//   - Targets are kept as written; no percent-decoding or URI resolution is
//     done.
//
// See RFC 6690 §2 and OMA-TS-LightweightM2M_Core-V1_1_1 §6.2.1 and §5.5.1.
package linkformat
