package fwpkg_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/avc-agent/avc/fwpkg"
)

// Example builds a signed package and verifies it while it streams in
// chunks, as a device does during a download.
func Example() {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	image := []byte("new firmware")
	var pkg bytes.Buffer
	m, err := fwpkg.Build(&pkg, fwpkg.Manifest{Version: "1.3.0", Hardware: "board-a"}, bytes.NewReader(image), key)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("built", m.Version, m.Size, "bytes")

	v := fwpkg.NewVerifier(fwpkg.Policy{
		TrustedKeys:      []ed25519.PublicKey{key.Public().(ed25519.PublicKey)},
		RequireSignature: true,
		CurrentVersion:   "1.2.9",
		Hardware:         "board-a",
	})
	var stored []byte
	for b := pkg.Bytes(); len(b) > 0; {
		n := min(16, len(b))
		img, err := v.Write(b[:n])
		if err != nil {
			fmt.Println(err)
			return
		}
		stored = append(stored, img...)
		b = b[n:]
	}
	if err := v.Finish(); err != nil {
		fmt.Println(err)
		return
	}
	got, _ := v.Manifest()
	fmt.Printf("verified %s: %q, signed %v\n", got.Version, stored, v.Signed())
	// Output:
	// built 1.3.0 12 bytes
	// verified 1.3.0: "new firmware", signed true
}

// ExampleVerifier_rollback shows an older package refused with the error
// a device reports as Update Result 6.
func ExampleVerifier_rollback() {
	var pkg bytes.Buffer
	if _, err := fwpkg.Build(&pkg, fwpkg.Manifest{Version: "1.0"}, bytes.NewReader([]byte("old")), nil); err != nil {
		fmt.Println(err)
		return
	}
	v := fwpkg.NewVerifier(fwpkg.Policy{CurrentVersion: "1.1"})
	_, err := v.Write(pkg.Bytes())
	fmt.Println(errors.Is(err, fwpkg.ErrUnsupported))
	fmt.Println(err)
	// Output:
	// true
	// fwpkg: unsupported package: version "1.0" is older than the installed "1.1" (rollback refused)
}

// ExampleVerifier_MarshalBinary saves a download half way and resumes it
// in a new Verifier, as after a reboot.
func ExampleVerifier_MarshalBinary() {
	var pkg bytes.Buffer
	if _, err := fwpkg.Build(&pkg, fwpkg.Manifest{Version: "2"}, bytes.NewReader([]byte("0123456789")), nil); err != nil {
		fmt.Println(err)
		return
	}
	policy := fwpkg.Policy{}
	v := fwpkg.NewVerifier(policy)
	first, _ := v.Write(pkg.Bytes()[:pkg.Len()-4])
	state, _ := v.MarshalBinary() // store on flash with the image bytes

	resumed := fwpkg.NewVerifier(policy)
	if err := resumed.UnmarshalBinary(state); err != nil {
		fmt.Println(err)
		return
	}
	rest, _ := resumed.Write(pkg.Bytes()[resumed.PackageOffset():])
	fmt.Printf("%s|%s %v\n", first, rest, resumed.Finish())
	// Output:
	// 012345|6789 <nil>
}

// ExampleCompareVersions orders firmware versions.
func ExampleCompareVersions() {
	for _, p := range [][2]string{{"1.2.10", "1.2.9"}, {"v2.0-rc1", "2.0"}, {"1.02", "1.2"}} {
		c, err := fwpkg.CompareVersions(p[0], p[1])
		fmt.Println(p[0], p[1], c, err)
	}
	// Output:
	// 1.2.10 1.2.9 1 <nil>
	// v2.0-rc1 2.0 -1 <nil>
	// 1.02 1.2 0 <nil>
}
