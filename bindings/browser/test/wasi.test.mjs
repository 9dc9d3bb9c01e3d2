// The browser binding's pieces that need no browser, run in Node: the WASI
// it gives avc.wasm (randomness from crypto.getRandomValues only) and the
// module on browser_wasi_shim. The page itself runs in browser.test.mjs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ABI_VERSION, Module, browserWasi, localStorageStorage, memoryStorage } from '../index.js';

const WASM = process.env.AVC_WASM ?? fileURLToPath(new URL('../../../build/avc.wasm', import.meta.url));

// withCrypto runs fn with globalThis.crypto replaced by value.
async function withCrypto(value, fn) {
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  Object.defineProperty(globalThis, 'crypto', { value, configurable: true, writable: true });
  try {
    return await fn();
  } finally {
    Object.defineProperty(globalThis, 'crypto', saved);
  }
}

test('random_get fills the buffer from crypto.getRandomValues, in chunks it accepts', async () => {
  const wasi = browserWasi();
  const memory = new WebAssembly.Memory({ initial: 4 });
  wasi.inst = { exports: { memory } };
  const calls = [];
  const fake = {
    getRandomValues(buf) {
      assert.ok(buf.length <= 65536, `a call for ${buf.length} bytes`);
      calls.push(buf.length);
      buf.fill(0xAB);
      return buf;
    },
  };
  const rc = await withCrypto(fake, () => wasi.wasiImport.random_get(16, 70000));
  assert.equal(rc, 0);
  assert.deepEqual(calls, [65536, 70000 - 65536]);
  const mem = new Uint8Array(memory.buffer);
  assert.equal(mem[15], 0, 'before the buffer untouched');
  assert.ok(mem.subarray(16, 16 + 70000).every((b) => b === 0xAB));
  assert.equal(mem[16 + 70000], 0, 'after the buffer untouched');
});

test('random_get without crypto fails instead of using Math.random', async () => {
  const wasi = browserWasi();
  wasi.inst = { exports: { memory: new WebAssembly.Memory({ initial: 1 }) } };
  const rc = await withCrypto(undefined, () => wasi.wasiImport.random_get(0, 32));
  assert.notEqual(rc, 0);
  assert.ok(new Uint8Array(wasi.inst.exports.memory.buffer, 0, 32).every((b) => b === 0));
});

test('avc.wasm runs on browser_wasi_shim: ABI version, init, a datagram out on start', async () => {
  assert.ok(fs.existsSync(WASM), `no ${WASM} (make wasm)`);
  const sent = [];
  const mod = await Module.create({ wasm: fs.readFileSync(WASM), sockSend: (peer, data) => sent.push({ peer, data }) });
  assert.equal(mod.abiVersion(), ABI_VERSION);
  mod.init({ serverUri: 'coaps://127.0.0.1:5684', endpoint: 'shim-unit', pskIdentity: 'id', pskKey: '00112233445566778899aabbccddeeff' });
  mod.command('start');
  mod.step();
  assert.ok(sent.length > 0, 'the module sent its ClientHello');
  assert.equal(sent[0].peer, '127.0.0.1:5684');
  assert.equal(sent[0].data[0], 22, 'a DTLS handshake record');
});

test('storages give back what was saved', () => {
  const items = new Map();
  const fakeLocal = { getItem: (k) => items.get(k) ?? null, setItem: (k, v) => items.set(k, String(v)) };
  for (const [name, make] of [['memory', () => memoryStorage()], ['localStorage', () => localStorageStorage('avc:test', fakeLocal)]]) {
    const s = make();
    assert.equal(s.load(), null, `${name}: empty at first`);
    const data = new Uint8Array([0, 1, 2, 250, 255]);
    s.save(data);
    data[0] = 9; // the storage keeps its own copy
    assert.deepEqual([...s.load()], [0, 1, 2, 250, 255], name);
  }
  assert.match(items.get('avc:test'), /^[A-Za-z0-9+/=]+$/, 'base64 in localStorage');
});
