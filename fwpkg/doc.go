// Package fwpkg reads, checks and writes avc firmware packages, the images
// that LwM2M Object 5 (Firmware Update) downloads into a device.
//
// A package is a small signed header followed by the image. The device
// checks the header before it stores a single image byte, hashes the image
// while it streams, and re-checks the stored image before it installs it:
//
//	v := fwpkg.NewVerifier(fwpkg.Policy{TrustedKeys: keys, RequireSignature: true})
//	for chunk := range download {
//		img, err := v.Write(chunk)
//		if err != nil {
//			return err // errors.Is ErrIntegrity, ErrUnsupported or ErrTooLarge
//		}
//		slot.Write(img)
//	}
//	if err := v.Finish(); err != nil {
//		return err
//	}
//
// The package holds at most the header in memory and never hands out image
// bytes beyond the length the manifest declares.
//
// # Format
//
// All integers are unsigned and big-endian.
//
//	offset        size     field
//	0             8        magic "AVCPKG1\n"
//	8             4        manifest length M, 1 ≤ M ≤ 4096
//	12            M        manifest, a JSON object (see Manifest)
//	12+M          2        signature length S: 0 (unsigned) or 64
//	14+M          S        Ed25519 signature over the exact M manifest bytes
//	14+M+S        size     image, exactly the manifest's "size" bytes
//
// The manifest is UTF-8 JSON with these members, each at most once, with
// exactly these (case-sensitive) names and no others:
//
//	"name"      string, ≤ 255 bytes, optional
//	"version"   string, 1..255 bytes, required
//	"size"      integer, the image length, 0 ≤ size ≤ 1<<40
//	"sha256"    string, SHA-256 of the image as 64 lowercase hex digits
//	"hardware"  string, ≤ 255 bytes, optional: the compatible hardware
//	"key_id"    string, ≤ 255 bytes, optional hint naming the signing key
//
// Strings must not contain control characters (U+0000..U+001F, U+007F),
// escaped or not. Anything else (a duplicate or unknown member, null, a
// fraction or exponent in "size", trailing data, invalid UTF-8) makes the
// package malformed. Everything that decides what gets installed (name,
// version, size, hash, hardware) is inside the signed bytes; the framing
// around them only says where those bytes are.
//
// A zero-length image is never accepted: [Build] refuses to write one and the
// Verifier reports a package with "size": 0, and an empty raw stream, as an
// integrity failure.
//
// # Checks and errors
//
// Every failure wraps one of three sentinel errors, each of which maps to an
// Object 5 Update Result (LwM2M TS 1.1 Object 5, resource 5):
//
//   - [ErrIntegrity] → 5 "Integrity check failure": malformed header or
//     manifest, missing, bad or untrusted signature (including an unsigned
//     package when signatures are required: the check fails closed), a
//     signature by a known development key, an image that is shorter,
//     longer or different from what the manifest says.
//   - [ErrUnsupported] → 6 "Unsupported package type": a stream that is not
//     a package when raw images are not allowed, wrong hardware, a version
//     older than the installed one, a version that cannot be compared.
//   - [ErrTooLarge] → 2 "Not enough flash memory": the image is larger than
//     the storage ([Policy.MaxSize]) or than the format's 1 TiB limit.
//
// The header is checked in this order: framing, signature, manifest (syntax
// and the format's size limit), hardware, version, [Policy.MaxSize], empty
// image. The first failure is reported and sticks.
//
// # Security notes
//
// The ideas are those of TUF and Uptane, cut down to one offline key set:
// the LwM2M server says which package to install, but only a key pinned on
// the device ([Policy.TrustedKeys]) vouches for what it contains; the
// manifest fixes length, hash, hardware and version; the manifest is capped
// at 4 KiB and the image at its declared length (endless-data attack);
// versions older than the installed one are refused (rollback attack); keys
// published as samples (RFC 8032 test vectors, MCUboot's sample keys) are
// refused unless [Policy.AllowDevelopmentKeys] is set. [VerifyFile] checks
// the stored image again just before it is installed, against the time of
// check to time of use race.
//
// A [Verifier] can be saved with MarshalBinary and restored with
// UnmarshalBinary, so that a download resumes after a reboot.
//
// See https://theupdateframework.io/docs/security/ and
// https://uptane.org/docs/latest/standard/uptane-standard for the attacks.
package fwpkg
