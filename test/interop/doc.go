// Package interop runs avc's agent against independent LwM2M servers
// (lwm2m-node-lib, installed by `make test` into test/interop/node_modules).
// The tests carry the build tag "integration".
package interop
