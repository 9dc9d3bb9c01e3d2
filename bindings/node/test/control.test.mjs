// avc_control through the Node binding: the update-control snapshot.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { AvcError, Module } from '../index.js';
import { wasmPath } from './helpers.mjs';

const compiled = await WebAssembly.compile(fs.readFileSync(wasmPath()));
const config = { serverUri: 'coap://127.0.0.1:5683', endpoint: 'node-control' };

test('control() returns what the update-control commands set', () => {
  const mod = Module.instantiateSync(compiled, { sockSend: () => {} });
  mod.init(config, new Uint8Array(0), [], { control: true });
  mod.command({ cmd: 'set_agreement', what: 'install', enable: true });
  mod.command({ cmd: 'set_polling_timer', minutes: 90 });
  mod.command({ cmd: 'block_install', ref: 3 });
  const st = mod.control();
  assert.deepEqual(st.agreements, [false, false, true, false, false]);
  assert.equal(st.polling_timer, 90);
  assert.deepEqual(st.retry_timers, [15, 60, 240, 480, 1440, 2880, 0, 0]);
  assert.equal(st.blocks, 1);
  assert.equal(st.pending, 0);
  assert.equal(st.http_status, 0xffff);
  assert.equal(st.session, false);
  assert.equal(typeof st.last_poll, 'string');
});

test('control() without update control is AVC_FAULT', () => {
  const mod = Module.instantiateSync(compiled, { sockSend: () => {} });
  assert.throws(() => mod.control(), (e) => e instanceof AvcError && e.code === 'AVC_NOT_INITIALIZED');
  mod.init(config);
  assert.throws(() => mod.control(), (e) => e instanceof AvcError && e.code === 'AVC_FAULT' && /update control is off/.test(e.message));
});
