// Shared by the tests: where avc.wasm is, a tiny LwM2M server and a tiny
// CoAP file server over real UDP sockets with hand-encoded CoAP (RFC 7252
// §3, RFC 7959 Block2).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Path of avc.wasm: $AVC_WASM, else ../../build/avc.wasm relative to the package. */
export function wasmPath() {
  const p = process.env.AVC_WASM ? path.resolve(process.env.AVC_WASM) : path.resolve(packageDir, '../../build/avc.wasm');
  if (!fs.existsSync(p)) {
    assert.fail(`avc.wasm not found at ${p}: run "make wasm" at the repository root (or set AVC_WASM)`);
  }
  return p;
}

/** Decodes a CoAP message: {type, code, mid, token, options: [{num, value}], payload}. */
export function decodeCoap(buf) {
  if (buf.length < 4 || buf[0] >> 6 !== 1) throw new Error('not CoAP');
  const type = (buf[0] >> 4) & 3;
  const tkl = buf[0] & 15;
  const code = buf[1];
  const mid = buf.readUInt16BE(2);
  let i = 4;
  const token = buf.subarray(i, i + tkl);
  i += tkl;
  const options = [];
  let num = 0;
  const ext = (n) => {
    if (n === 13) return buf[i++] + 13;
    if (n === 14) {
      const v = buf.readUInt16BE(i) + 269;
      i += 2;
      return v;
    }
    return n;
  };
  while (i < buf.length && buf[i] !== 0xff) {
    const b = buf[i++];
    const delta = ext(b >> 4);
    const len = ext(b & 15);
    num += delta;
    options.push({ num, value: buf.subarray(i, i + len) });
    i += len;
  }
  const payload = i < buf.length ? buf.subarray(i + 1) : Buffer.alloc(0);
  return { type, code, mid, token, options, payload };
}

/** Encodes a CoAP message; options with numbers and lengths below 269. */
export function encodeCoap({ type, code, mid, token = Buffer.alloc(0), options = [], payload }) {
  const parts = [Buffer.from([0x40 | (type << 4) | token.length, code, mid >> 8, mid & 0xff]), Buffer.from(token)];
  let prev = 0;
  const nibble = (n) => (n < 13 ? [n, []] : [13, [n - 13]]);
  for (const o of [...options].sort((a, b) => a.num - b.num)) {
    const value = Buffer.from(o.value);
    const [d, dx] = nibble(o.num - prev);
    const [l, lx] = nibble(value.length);
    parts.push(Buffer.from([(d << 4) | l, ...dx, ...lx]), value);
    prev = o.num;
  }
  if (payload && payload.length) parts.push(Buffer.from([0xff]), Buffer.from(payload));
  return Buffer.concat(parts);
}

export const CON = 0;
export const ACK = 2;
export const RST = 3;
export const code = (c, d) => (c << 5) | d;
const OBSERVE = 6;
const URI_PATH = 11;
const URI_QUERY = 15;
const LOCATION_PATH = 8;
const CONTENT_FORMAT = 12;
const ACCEPT = 17;

const methods = { 1: 'GET', 2: 'POST', 3: 'PUT', 4: 'DELETE' };

/**
 * A minimal LwM2M server: Register → 2.01 Location-Path rd/x, Update of
 * /rd/x → 2.04, De-register → 2.02, Send (POST /dp) → 2.04. `requests` logs "POST /rd ep=…&lt=…"
 * and `bodies` the payload of each; `acks` receives the client's answers
 * to request() (call() awaits one), `notifications` the Observe
 * notifications it sends (confirmable ones are acknowledged).
 */
export async function startServer() {
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const server = {
    uri: `coap://127.0.0.1:${socket.address().port}`,
    requests: [],
    bodies: [],
    acks: [],
    notifications: [],
    client: null,
    mid: 0x3000,
    closed: false,
    close() {
      if (!server.closed) socket.close();
      server.closed = true;
    },
    /**
     * Sends a confirmable request to the client and returns its message ID.
     * `accept` (a content format) and `observe` (0 registers) add options.
     */
    request(method, uriPath, payload, { contentFormat, accept, observe, token = Buffer.from([9, 8, 7, 6]) } = {}) {
      const uint = (n) => (n ? Buffer.from([n]) : Buffer.alloc(0));
      const options = uriPath.split('/').filter(Boolean).map((s) => ({ num: URI_PATH, value: Buffer.from(s) }));
      if (contentFormat !== undefined) options.push({ num: CONTENT_FORMAT, value: uint(contentFormat) });
      if (accept !== undefined) options.push({ num: ACCEPT, value: uint(accept) });
      if (observe !== undefined) options.push({ num: OBSERVE, value: uint(observe) });
      const mid = ++server.mid;
      const m = encodeCoap({ type: CON, code: method, mid, token, options, payload: Buffer.from(payload ?? '') });
      socket.send(m, server.client.port, server.client.address);
      return mid;
    },
    /** request(), then resolves with the client's answer (failing after ms). */
    async call(method, uriPath, payload, opts = {}, ms = 10_000) {
      const mid = server.request(method, uriPath, payload, opts);
      const deadline = Date.now() + ms;
      for (;;) {
        const ack = server.acks.find((m) => m.mid === mid);
        if (ack) return ack;
        if (Date.now() > deadline) throw new Error(`no answer to ${uriPath} within ${ms} ms`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
  };
  socket.on('message', (buf, rinfo) => {
    let m;
    try {
      m = decodeCoap(buf);
    } catch {
      return;
    }
    if (m.type === ACK || m.type === RST) {
      server.acks.push(m);
      return;
    }
    if (m.code >> 5 >= 2) {
      // A response outside an ACK: an Observe notification.
      server.notifications.push(m);
      if (m.type === CON) socket.send(encodeCoap({ type: ACK, code: 0, mid: m.mid }), rinfo.port, rinfo.address);
      return;
    }
    const p = '/' + m.options.filter((o) => o.num === URI_PATH).map((o) => o.value.toString()).join('/');
    const q = m.options.filter((o) => o.num === URI_QUERY).map((o) => o.value.toString()).join('&');
    server.client = rinfo;
    server.requests.push(`${methods[m.code] ?? m.code} ${p}${q ? ' ' + q : ''}`);
    server.bodies.push(m.payload.toString());
    const resp = { type: ACK, mid: m.mid, token: m.token, options: [] };
    if (m.code === 2 && p === '/rd') {
      resp.code = code(2, 1);
      resp.options = [{ num: LOCATION_PATH, value: 'rd' }, { num: LOCATION_PATH, value: 'x' }];
    } else if (m.code === 2 && p === '/rd/x') {
      resp.code = code(2, 4);
    } else if (m.code === 2 && p === '/dp') {
      resp.code = code(2, 4); // Send (LwM2M 1.1 §6.4.3)
    } else if (m.code === 4 && p === '/rd/x') {
      resp.code = code(2, 2);
    } else {
      resp.code = code(4, 4);
    }
    socket.send(encodeCoap(resp), rinfo.port, rinfo.address);
  });
  return server;
}

/** Resolves with the next `kind` event of emitter, failing after ms. */
export function nextEvent(emitter, kind, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(kind, on);
      reject(new Error(`no ${kind} event within ${ms} ms`));
    }, ms);
    const on = (ev) => {
      clearTimeout(timer);
      resolve(ev);
    };
    emitter.once(kind, on);
  });
}

/**
 * Resolves with the next `kind` event of emitter for which match(ev) is
 * true, failing after ms.
 */
export function waitEvent(emitter, kind, match = () => true, ms = 20_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(kind, on);
      reject(new Error(`no matching ${kind} event within ${ms} ms`));
    }, ms);
    const on = (ev) => {
      if (!match(ev)) return;
      clearTimeout(timer);
      emitter.off(kind, on);
      resolve(ev);
    };
    emitter.on(kind, on);
  });
}

const ETAG = 4;
const BLOCK2 = 23;
const SIZE2 = 28;

// uintOption encodes a CoAP uint option value in the fewest bytes.
function uintOption(n) {
  const b = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) b.unshift(v & 0xff);
  return Buffer.from(b);
}

/**
 * A CoAP file server (like libcoap's coap-server): answers GET
 * /fw/<name> of the files given ({name: bytes}) block-wise (RFC 7959
 * Block2) in the block size asked for (at most 1024), with an ETag (the
 * first 8 bytes of the SHA-256) and Size2. `gets` counts the requests;
 * uri(name) is the coap:// URI of a file.
 */
export async function startFileServer(files) {
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  const fs = {
    gets: 0,
    uri: (name) => `coap://127.0.0.1:${port}/fw/${name}`,
    close: () => socket.close(),
  };
  socket.on('message', (buf, rinfo) => {
    let m;
    try {
      m = decodeCoap(buf);
    } catch {
      return;
    }
    if (m.type !== CON || m.code !== 1) return;
    fs.gets++;
    const segs = m.options.filter((o) => o.num === URI_PATH).map((o) => o.value.toString());
    const body = segs.length === 2 && segs[0] === 'fw' ? files[segs[1]] : undefined;
    const resp = { type: ACK, mid: m.mid, token: m.token, options: [] };
    if (!body) {
      resp.code = code(4, 4);
    } else {
      let num = 0;
      let szx = 6;
      const b2 = m.options.find((o) => o.num === BLOCK2);
      if (b2) {
        const v = b2.value.reduce((n, x) => n * 256 + x, 0);
        num = Math.floor(v / 16);
        szx = Math.min(v & 7, 6);
      }
      const size = 16 << szx;
      const off = num * size;
      const end = Math.min(off + size, body.length);
      const more = end < body.length;
      resp.code = code(2, 5);
      resp.options = [
        { num: ETAG, value: crypto.createHash('sha256').update(body).digest().subarray(0, 8) },
        { num: CONTENT_FORMAT, value: uintOption(42) },
        { num: BLOCK2, value: uintOption(num * 16 + (more ? 8 : 0) + szx) },
        { num: SIZE2, value: uintOption(body.length) },
      ];
      resp.payload = body.subarray(off, end);
    }
    socket.send(encodeCoap(resp), rinfo.port, rinfo.address);
  });
  return fs;
}

/**
 * An unsigned avc firmware package (fwpkg's format: magic, manifest
 * length, manifest JSON, signature length 0, image).
 */
export function firmwarePackage(image, { name = 'demo', version }) {
  const manifest = Buffer.from(JSON.stringify({
    name,
    version,
    size: image.length,
    sha256: crypto.createHash('sha256').update(image).digest('hex'),
  }));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(manifest.length);
  return Buffer.concat([Buffer.from('AVCPKG1\n'), len, manifest, Buffer.alloc(2), image]);
}
