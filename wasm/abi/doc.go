// Package abi holds the constants of the avc.wasm ABI that the guest
// (package wasm, built for wasip1) and its hosts (wasm/host on wazero; the
// Node binding mirrors them) must agree on. See wasm/ABI.md.
package abi
