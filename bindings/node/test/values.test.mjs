// Custom objects from OMA registry XML (Agent.create({objects})) and values
// the host keeps up to date (agent.set), against the JS responder.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, Module, setCommand } from '../index.js';
import { wasmPath, startServer, nextEvent, code, decodeCoap, ACK } from './helpers.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const objectXML = fs.readFileSync(path.join(repo, 'lwm2m/testdata/3442-test.xml'), 'utf8');
const compiled = await WebAssembly.compile(fs.readFileSync(wasmPath()));
const GET = 1;
const TEXT = 0;

test('setCommand: the text/plain form of each value type', () => {
  assert.deepEqual(setCommand('/3/0/9', 50), { cmd: 'set', path: '/3/0/9', value: '50' });
  assert.deepEqual(setCommand('/3/0/9', '50'), { cmd: 'set', path: '/3/0/9', value: '50' });
  assert.deepEqual(setCommand('/3442/0/130', -2.5), { cmd: 'set', path: '/3442/0/130', value: '-2.5' });
  assert.deepEqual(setCommand('/3442/0/125', 2n ** 64n - 1n), { cmd: 'set', path: '/3442/0/125', value: '18446744073709551615' });
  assert.deepEqual(setCommand('/3442/0/140', true), { cmd: 'set', path: '/3442/0/140', value: 'true' });
  assert.deepEqual(setCommand('/3442/0/150', new Uint8Array([0, 1, 255])), { cmd: 'set', path: '/3442/0/150', value: 'AAH/' });
  assert.deepEqual(setCommand('/3/0/11/1', null), { cmd: 'set', path: '/3/0/11/1', type: 'none' });
  assert.deepEqual(setCommand('/3/0/11/1', undefined), { cmd: 'set', path: '/3/0/11/1', type: 'none' });
  assert.throws(() => setCommand(3, 1), TypeError);
  assert.throws(() => setCommand('/3/0/9', {}), TypeError);
  assert.throws(() => setCommand('/3/0/9', NaN), RangeError);
});

test('module: objects_xml and set commands', () => {
  const sent = [];
  const mod = Module.instantiateSync(compiled, { sockSend: (p, d) => sent.push(d) });
  assert.throws(() => mod.init({ serverUri: 'coap://127.0.0.1:5683', endpoint: 'n' }, undefined, ['<LWM2M>']), { code: 'AVC_BAD_INPUT', message: /objects_xml\[0\]/ });
  const builtIn = objectXML.replace('<ObjectID>3442<', '<ObjectID>4<');
  assert.throws(() => mod.init({ serverUri: 'coap://127.0.0.1:5683', endpoint: 'n' }, undefined, [builtIn]), { code: 'AVC_BAD_INPUT', message: /built in/ });
  mod.init({ serverUri: 'coap://127.0.0.1:5683', endpoint: 'n' }, undefined, [Buffer.from(objectXML)]);
  mod.command(setCommand('/3442/0/110', 'hello'));
  mod.command(setCommand('/3442/0/180/1', 7));
  mod.command(setCommand('/3442/0/180/1', null));
  for (const [p, v] of [['/3442/0/120', 'x'], ['/3442/0/200', 1], ['/3443/0/1', 1], ['/3442/0/110', null], ['/3442/zero', 1]]) {
    assert.throws(() => mod.command(setCommand(p, v)), { code: 'AVC_BAD_INPUT' }, `${p} = ${v}`);
  }
  assert.throws(() => mod.command({ cmd: 'set', path: '/3/0/9', value: 50 }), { code: 'AVC_BAD_INPUT' }, 'the value must be a string');
  // The Register lists the instance the first value created.
  mod.command('start');
  const reg = decodeCoap(Buffer.from(sent[0]));
  assert.match(reg.payload.toString(), /<\/3442\/0>/);
});

test('create rejects bad objects', async () => {
  const config = { serverUri: 'coap://127.0.0.1:9', endpoint: 'node-bad-objects' };
  await assert.rejects(Agent.create({ wasm: wasmPath(), config, objects: objectXML }), TypeError);
  await assert.rejects(Agent.create({ wasm: wasmPath(), config, objects: [42] }), TypeError);
  await assert.rejects(Agent.create({ wasm: wasmPath(), config, objects: ['<LWM2M><Object>'] }), { code: 'AVC_BAD_INPUT' });
});

test('custom object: set before and while started, server reads, observes and survives a trap', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const agent = await Agent.create({ wasm: wasmPath(), config: { serverUri: server.uri, endpoint: 'node-values' }, objects: [objectXML] });
  t.after(() => agent.close());
  const events = [];
  agent.on('event', (ev) => events.push(ev.kind));

  // Before start: the module exists, the value is in place for the Register.
  agent.set('/3442/0/110', 'before');
  agent.set('/3/0/9', 80);
  assert.throws(() => agent.set('/3442/0/120', 'x'), { code: 'AVC_BAD_INPUT' });
  assert.throws(() => agent.set('/3442/0/200', 1), { code: 'AVC_BAD_INPUT' }, 'executable');
  assert.throws(() => agent.set('/3442/0/110', null), { code: 'AVC_BAD_INPUT' }, 'only resource instances are removed');
  assert.throws(() => agent.set('/nope', 1), { code: 'AVC_BAD_INPUT' });

  const registered = nextEvent(agent, 'registered');
  await agent.start();
  await registered;
  assert.match(server.bodies[0], /<\/3442\/0>/, 'the Register lists the instance');

  const read = async (p) => {
    const ack = await server.call(GET, p, '', { accept: TEXT });
    assert.equal(ack.code, code(2, 5), `GET ${p}`);
    return ack.payload.toString();
  };
  assert.equal(await read('/3442/0/110'), 'before');
  assert.equal(await read('/3/0/9'), '80');

  // While started: the server reads the new value; an observer is notified.
  agent.set('/3442/0/110', 'during');
  assert.equal(await read('/3442/0/110'), 'during');
  agent.set('/3442/0/120', 1);
  const observed = await server.call(GET, '/3442/0/120', '', { accept: TEXT, observe: 0, token: Buffer.from([1, 2]) });
  assert.equal(observed.code, code(2, 5));
  assert.equal(observed.payload.toString(), '1');
  const notified = nextEvent(agent, 'notify');
  agent.set('/3442/0/120', 42);
  const ev = await notified;
  assert.equal(ev.path, '/3442/0/120');
  const deadline = Date.now() + 5000;
  while (!server.notifications.some((m) => m.payload.toString() === '42') && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.ok(server.notifications.some((m) => m.payload.toString() === '42'), 'the server got the notification');

  // A multiple-instance resource: instances come and go.
  agent.set('/3442/0/180/3', -1);
  assert.equal(await read('/3442/0/180/3'), '-1');
  agent.set('/3442/0/180/3', null);
  assert.equal((await server.call(GET, '/3442/0/180/3', '', { accept: TEXT })).code, code(4, 4));

  // A trapped module is replaced; the new one gets the values back.
  const first = agent.module;
  first.exports.avc_step = () => {
    throw new WebAssembly.RuntimeError('unreachable');
  };
  const again = nextEvent(agent, 'registered');
  agent.set('/3/0/9', 79); // traps in the step after the set; the value is set again in the new module
  await again;
  assert.notEqual(agent.module, first);
  assert.equal(await read('/3442/0/110'), 'during');
  assert.equal(await read('/3442/0/120'), '42');
  assert.equal(await read('/3/0/9'), '79');

  assert.equal((await agent.stop()).kind, 'deregistered');
  agent.set('/3/0/9', 78); // after stop: still the same module, for the next start
  assert.ok(events.includes('notify'));
  assert.ok(server.acks.every((m) => m.type === ACK));
  agent.close();
  assert.throws(() => agent.set('/3/0/9', 1), { code: 'AVC_CLOSED' });
});
