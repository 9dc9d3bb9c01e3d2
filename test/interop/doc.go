// Package interop runs avc's agent against independent peers: the LwM2M
// server of lwm2m-node-lib (installed by `make test` into
// test/interop/node_modules) and raw CoAP requests from Debian's
// libcoap3-bin (coap-client-notls, installed by scripts/deps.sh). The
// tests carry the build tag "integration".
package interop
