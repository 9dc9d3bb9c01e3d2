// End-to-end: an Agent registers to a tiny LwM2M server over real UDP.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, STATE_FILE } from '../index.js';
import { wasmPath, startServer, nextEvent, code, ACK } from './helpers.mjs';

test('register, update, server write, state file, deregister', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'avc-node-test-'));
  t.after(() => fs.rmSync(stateDir, { recursive: true, force: true }));
  const logs = [];
  const logger = { debug: (m, a) => logs.push(['debug', m, a]), info: (m, a) => logs.push(['info', m, a]), warn: (m, a) => logs.push(['warn', m, a]), error: (m, a) => logs.push(['error', m, a]) };
  const config = { serverUri: server.uri, endpoint: 'node-e2e', lifetime: 300, stateDir, logLevel: 'debug' };
  const agent = await Agent.create({ wasm: wasmPath(), config, logger });
  t.after(() => agent.close());
  const events = [];
  agent.on('event', (ev) => events.push(ev));

  const registered = nextEvent(agent, 'registered');
  await agent.start();
  const reg = await registered;
  assert.equal(reg.location, '/rd/x');
  assert.equal(reg.lifetime, 300);
  assert.equal(reg.server, server.uri);
  await assert.rejects(agent.start(), { code: 'AVC_DUPLICATE' });

  const updated = nextEvent(agent, 'updated');
  agent.update();
  assert.equal((await updated).location, '/rd/x');

  // The server writes the lifetime: the module stores its state, the
  // binding writes the state file, and an Update carries lt=600.
  const stored = nextEvent(agent, 'store');
  const updated600 = nextEvent(agent, 'updated');
  server.request(3, '/1/0/1', '600', { contentFormat: 0 });
  const st = await stored;
  assert.ok(st.data instanceof Uint8Array && st.data.length > 0);
  assert.equal((await updated600).lifetime, 600);
  assert.deepEqual(new Uint8Array(fs.readFileSync(path.join(stateDir, STATE_FILE))), st.data);
  assert.equal(fs.readdirSync(stateDir).length, 1, 'no temporary files left');
  assert.ok(server.acks.some((m) => m.type === ACK && m.code === code(2, 4)), 'write answered 2.04');

  const ev = await agent.stop();
  assert.equal(ev.kind, 'deregistered');
  assert.equal(ev.location, '/rd/x');
  assert.equal(ev.error, undefined);
  assert.equal(agent.started, false);

  assert.deepEqual(server.requests.map((r) => r.split(' ').slice(0, 2).join(' ')), ['POST /rd', 'POST /rd/x', 'POST /rd/x', 'DELETE /rd/x']);
  assert.match(server.requests[0], /ep=node-e2e/);
  assert.match(server.requests[0], /lt=300/);
  assert.match(server.requests[2], /lt=600/);
  assert.deepEqual(events.map((e) => e.kind).filter((k) => k !== 'write'), ['registered', 'updated', 'store', 'updated', 'deregistered']);
  assert.ok(logs.some(([level, msg]) => level === 'info' && msg === 'registered'));

  // A new agent on the same state directory registers with the stored lifetime.
  const again = await Agent.create({ wasm: wasmPath(), config });
  t.after(() => again.close());
  const reg2 = nextEvent(again, 'registered');
  await again.start();
  assert.equal((await reg2).lifetime, 600);
  assert.equal((await again.stop()).kind, 'deregistered');
});

test('stop without a server answer times out', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const agent = await Agent.create({ wasm: wasmPath(), config: { serverUri: server.uri, endpoint: 'node-timeout' } });
  t.after(() => agent.close());
  const registered = nextEvent(agent, 'registered');
  await agent.start();
  await registered;
  server.close();
  const t0 = Date.now();
  const ev = await agent.stop({ timeoutMs: 300 });
  assert.equal(ev, null);
  assert.ok(Date.now() - t0 < 2000);
});

test('stop before start resolves at once', async () => {
  const agent = await Agent.create({ wasm: wasmPath(), config: { serverUri: 'coap://127.0.0.1:9', endpoint: 'idle' } });
  assert.equal(await agent.stop(), null);
});

test('a trapped module is replaced and registers again', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const agent = await Agent.create({ wasm: wasmPath(), config: { serverUri: server.uri, endpoint: 'node-trap' } });
  t.after(() => agent.close());
  let registered = nextEvent(agent, 'registered');
  await agent.start();
  await registered;
  const first = agent.module;
  // Make the next call trap the way a Go fatal error would.
  first.exports.avc_command = () => {
    throw new WebAssembly.RuntimeError('unreachable');
  };
  registered = nextEvent(agent, 'registered');
  assert.throws(() => agent.update(), { code: 'AVC_NOT_REGISTERED' }); // retried on the fresh instance
  await registered;
  assert.notEqual(agent.module, first);
  assert.equal((await agent.stop()).kind, 'deregistered');
});
