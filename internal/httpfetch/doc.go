// Package httpfetch downloads one firmware package over HTTP/1.1 or HTTPS
// for the LwM2M Firmware Update object (Object 5, pull delivery).
//
// [Get] streams the body into a [Sink] through a 32 KiB buffer, resumes a
// partial download with a Range request guarded by If-Range, and never
// splices bytes of two different files: a 200 answer to a range request, a
// 412 or 416, or a 206 whose Content-Range does not describe exactly the
// bytes asked for makes the download start over from byte 0 (at most once
// per call).
//
// The package uses the standard library only. It does no retrying and no
// backoff: the caller (the firmware-update engine) owns the retry budget and
// resumes with the [Response.Offset] and [Response.Validator] it persisted.
//
// # Errors and Object 5 Update Result codes
//
// Every failure wraps one of the sentinels below (or is a [*StatusError]),
// so the engine can map it with [errors.Is] / [errors.As]:
//
//	ErrUnsupportedScheme   9 Unsupported protocol
//	ErrInvalidURI          7 Invalid URI
//	ErrRedirect            7 Invalid URI
//	*StatusError           7 Invalid URI (the engine may expose Code; 503/429 carry RetryAfter)
//	ErrConnect             4 Connection lost during download
//	ErrTLS                 4 Connection lost during download (not worth retrying quickly)
//	ErrTooSlow             4 Connection lost during download
//	ErrConnectionLost      4 Connection lost during download
//	ErrRestartLoop         4 Connection lost during download
//	ErrTooLarge            2 Not enough flash
//
// Errors returned by the [Sink] are wrapped and passed through unchanged in
// meaning; cancelling the context returns the context's error, wrapped.
//
// See OMA-TS-LightweightM2M_Core-V1_1_1 Appendix E.6 (Object 5), RFC 9110
// §13.1.5 (If-Range), §14 (range requests) and §15.3.7 (206 Partial Content).
package httpfetch
