// Package behaviour holds avc's one behaviour suite: a scenario driven from
// the embedded LwM2M server that runs unchanged against every embedding of
// the agent core (native Go, libavc.so from C, Python over ctypes, wasm in
// wazero, wasm in Node).
//
// The tests carry the build tag "integration" because they need the built
// artefacts (build/libavc.so, build/avc.wasm); `make test` builds them and
// runs `go test -tags integration ./test/...`.
package behaviour
