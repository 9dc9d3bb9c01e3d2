// ABI checks of avc.wasm through node:wasi (wasm/ABI.md).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ABI_VERSION, AvcError, Module, ResultCode, normalizeConfig } from '../index.js';
import { wasmPath, decodeCoap } from './helpers.mjs';

const compiled = await WebAssembly.compile(fs.readFileSync(wasmPath()));
const peer = '127.0.0.1:5683';
const good = { serverUri: `coap://${peer}`, endpoint: 'node-test', lifetime: 300, logLevel: 'debug' };

function newModule(extra = {}) {
  const sent = [];
  const logs = [];
  const mod = Module.instantiateSync(compiled, {
    sockSend: (p, d) => sent.push({ peer: p, data: d }),
    log: (level, rec) => logs.push({ level, ...rec }),
    ...extra,
  });
  return { mod, sent, logs };
}

test('abi version', () => {
  const { mod } = newModule();
  assert.equal(mod.abiVersion(), 3);
  assert.equal(ABI_VERSION, 3);
});

test('config names: AVC_* and camelCase', () => {
  assert.deepEqual(normalizeConfig({ serverUri: 'coap://h', AVC_ENDPOINT: 'e', lifetime: 60, pskKey: new Uint8Array([1, 255]), stateDir: undefined }), {
    AVC_SERVER_URI: 'coap://h',
    AVC_ENDPOINT: 'e',
    AVC_LIFETIME: '60',
    AVC_PSK_KEY: '01ff',
  });
});

test('init with a bad config reports every problem, and may be retried', () => {
  const { mod } = newModule();
  assert.throws(() => mod.init({ AVC_SERVER_URI: 'http://x', AVC_LOG_LEVEL: 'loud' }), (err) => {
    assert.ok(err instanceof AvcError);
    assert.equal(err.code, 'AVC_BAD_INPUT');
    assert.equal(err.rc, ResultCode.AVC_BAD_INPUT);
    assert.match(err.message, /AVC_LOG_LEVEL="loud": want debug, info, warn or error/);
    assert.match(err.message, /AVC_ENDPOINT is required/);
    return true;
  });
  assert.match(mod.lastError(), /AVC_ENDPOINT is required/);
  assert.throws(() => mod.init({ ...good, AVC_COLOUR: 'red' }), { code: 'AVC_BAD_INPUT', message: /unknown setting "AVC_COLOUR"/ });
  mod.init(good);
  assert.equal(mod.lastError(), '');
  assert.throws(() => mod.init(good), { code: 'AVC_DUPLICATE' });
});

test('calls before init', () => {
  const { mod } = newModule();
  assert.throws(() => mod.command('start'), { code: 'AVC_NOT_INITIALIZED', rc: -21 });
  assert.throws(() => mod.onDatagram(peer, new Uint8Array([0x40, 1, 0, 1])), { code: 'AVC_NOT_INITIALIZED' });
  assert.throws(() => mod.step(), { code: 'AVC_NOT_INITIALIZED' });
  assert.equal(mod.pollEvent(), null);
});

test('commands', () => {
  const { mod, sent, logs } = newModule();
  mod.init(good);
  assert.throws(() => mod.command({ command: 'start' }), { code: 'AVC_BAD_INPUT' });
  assert.throws(() => mod.command('fly'), { code: 'AVC_UNSUPPORTED' });
  assert.throws(() => mod.command('update'), { code: 'AVC_NOT_REGISTERED' });
  assert.throws(() => mod.command('stop'), { code: 'AVC_DUPLICATE' });
  const now = Date.now();
  mod.command('start', now);
  assert.throws(() => mod.command('start'), { code: 'AVC_DUPLICATE' });
  assert.equal(sent.length, 1);
  assert.equal(sent[0].peer, peer);
  const reg = decodeCoap(Buffer.from(sent[0].data));
  assert.equal(reg.code, 2); // POST
  const next = mod.step(now);
  assert.ok(next > now && next - now <= 3000, `next deadline ${next - now} ms`);
  mod.step(next);
  assert.equal(sent.length, 2, 'retransmission at the deadline');
  mod.command('stop');
  const ev = mod.pollEvent();
  assert.equal(ev.kind, 'deregistered');
  assert.equal(mod.pollEvent(), null);
  assert.ok(logs.some((l) => l.msg === 'registering' && l.level === 0 && l.endpoint === 'node-test'));
});

test('poll_event with a too-small buffer keeps the event', () => {
  const { mod } = newModule();
  mod.init(good);
  mod.command('start');
  mod.command('stop');
  const x = mod.exports;
  const buf = x.avc_buf_alloc(4);
  assert.notEqual(buf, 0);
  const r = x.avc_poll_event(buf, 4);
  assert.ok(r <= -32, `avc_poll_event(buf, 4) = ${r}`);
  assert.equal(x.avc_poll_event(0, 0), r, 'size query');
  assert.equal(x.avc_poll_event(8, -r), ResultCode.AVC_BAD_PARAMETER, 'not a buffer of the module');
  const big = x.avc_buf_alloc(-r);
  assert.equal(x.avc_poll_event(big, -r), -r);
  const text = new TextDecoder().decode(new Uint8Array(x.memory.buffer, big, -r));
  assert.equal(JSON.parse(text).kind, 'deregistered');
  assert.equal(x.avc_poll_event(big, -r), 0);
  assert.equal(x.avc_buf_free(buf), 0);
  assert.equal(x.avc_buf_free(buf), ResultCode.AVC_BAD_PARAMETER);
  assert.equal(x.avc_buf_alloc(0), 0);
});

test('bad pointers are AVC_BAD_PARAMETER, never a trap', () => {
  const { mod } = newModule();
  const x = mod.exports;
  assert.equal(x.avc_init(0xffffff00, 10, 0, 0), ResultCode.AVC_BAD_PARAMETER);
  assert.equal(x.avc_init(16, 10, 0, 0), ResultCode.AVC_BAD_PARAMETER);
  assert.equal(x.avc_command(16, -1, 0n), ResultCode.AVC_NOT_INITIALIZED);
  assert.match(mod.lastError(), /not initialized/);
  assert.equal(mod.trapped, null);
});

test('garbage datagrams never trap', () => {
  const { mod } = newModule();
  mod.init(good);
  mod.command('start');
  let seed = Date.now() >>> 0;
  const seed0 = seed;
  const rand = () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed;
  };
  const inputs = [new Uint8Array(0), Uint8Array.of(0x40), Uint8Array.of(0x40, 1, 0x12, 0x34), Uint8Array.of(0x48, 1, 0, 1, 2), new Uint8Array(70 * 1024).fill(0xff)];
  for (let i = 0; i < 300; i++) {
    const b = new Uint8Array(rand() % 64);
    for (let j = 0; j < b.length; j++) b[j] = rand() & 0xff;
    if (b.length && rand() & 1) b[0] = 0x40 | (b[0] & 0x0f);
    inputs.push(b);
  }
  let now = Date.now();
  for (const b of inputs) {
    for (const p of [peer, '10.0.0.1:9', '']) {
      assert.doesNotThrow(() => mod.onDatagram(p, b, now), `seed ${seed0}`);
      mod.step(now++);
    }
  }
  while (mod.pollEvent() !== null);
  assert.equal(mod.trapped, null, `seed ${seed0}`);
});

test('imports that throw are reported as result codes', () => {
  const { mod } = newModule({
    sockSend: () => {
      throw new Error('network down');
    },
    log: () => {
      throw new Error('logger broken');
    },
  });
  mod.init(good);
  mod.command('start');
  assert.equal(mod.trapped, null);
});

test('missing wasm fails with a clear message', async () => {
  await assert.rejects(Module.create({ wasm: '/nonexistent/avc.wasm' }), { code: 'AVC_NO_WASM', message: /avc\.wasm not found at \/nonexistent\/avc\.wasm/ });
});
