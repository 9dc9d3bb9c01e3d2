// Package wsrelay relays datagrams between WebSocket sessions and one UDP
// address: the transport of avc.wasm in a browser, which has no UDP.
//
// Each binary WebSocket message is one datagram. Every session gets its own
// UDP socket, connected to the one address the relay was configured with,
// so the relay is never an open proxy: a page can reach that LwM2M server
// and nothing else, and only datagrams from that server come back. The
// socket closes with the session. The relay sees only the bytes the module
// sends; for coaps these are DTLS records, since DTLS runs inside
// avc.wasm.
//
// The package has its own minimal WebSocket server (RFC 6455): the opening
// handshake, masked client frames, fragmentation, ping/pong and close. It
// speaks no extensions and no subprotocols, and refuses text messages.
package wsrelay
