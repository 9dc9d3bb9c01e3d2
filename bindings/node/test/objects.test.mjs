// Custom objects declared field by field (Agent.create({objects: [{id, ...}]})):
// the registry XML objectXML writes (escaping), the checks, and an agent
// whose object the JS responder reads, writes and executes — the writes
// and executes arriving as 'write' and 'execute' events.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Agent, Module, normalizeObjects, objectXML } from '../index.js';
import { wasmPath, startServer, nextEvent, waitEvent, code, CON } from './helpers.mjs';

const compiled = await WebAssembly.compile(fs.readFileSync(wasmPath()));
const GET = 1;
const POST = 2;
const PUT = 3;
const TEXT = 0;

const valve = {
  id: 3470,
  name: 'Valve & <co> "test"',
  version: '1.1',
  multiple: false,
  resources: [
    { id: 1, name: 'Label', type: 'string', operations: 'RW', mandatory: true },
    { id: 2, name: 'Level', type: 'integer', operations: 'RW' },
    { id: 3, name: 'Ready', type: 'Boolean', operations: 'R' },
    { id: 4, name: 'Open', operations: 'E' },
    { id: 5, name: 'Samples', type: 'float', operations: 'RW', multiple: true },
    { id: 6, name: 'Count', type: 'unsigned', operations: 'R' },
  ],
};

test('objectXML: a registry document, every text escaped', () => {
  const xml = objectXML(valve);
  assert.match(xml, /^<\?xml version="1.0" encoding="utf-8"\?>\n<LWM2M><Object ObjectType="MODefinition">/);
  assert.match(xml, /<Name>Valve &amp; &lt;co&gt; &quot;test&quot;<\/Name><ObjectID>3470<\/ObjectID><ObjectVersion>1.1<\/ObjectVersion>/);
  assert.match(xml, /<MultipleInstances>Single<\/MultipleInstances><Mandatory>Optional<\/Mandatory><Resources>/);
  assert.match(xml, /<Item ID="1"><Name>Label<\/Name><Operations>RW<\/Operations><MultipleInstances>Single<\/MultipleInstances><Mandatory>Mandatory<\/Mandatory><Type>String<\/Type><\/Item>/);
  assert.match(xml, /<Item ID="3">.*?<Type>Boolean<\/Type>/);
  assert.match(xml, /<Item ID="4"><Name>Open<\/Name><Operations>E<\/Operations>.*?<Type><\/Type><\/Item>/);
  assert.match(xml, /<Item ID="5">.*?<MultipleInstances>Multiple<\/MultipleInstances>.*?<Type>Float<\/Type>/);
  assert.match(xml, /<Item ID="6">.*?<Type>Unsigned Integer<\/Type>/);
  assert.match(objectXML({ id: 9, name: "a'b]]>" }), /<Name>a&apos;b]]&gt;<\/Name><ObjectID>9<\/ObjectID><ObjectVersion>1.0<\/ObjectVersion>/);
  // Mixed with XML documents.
  const docs = normalizeObjects(['<LWM2M/>', new TextEncoder().encode('<x/>'), { id: 3471 }]);
  assert.equal(docs.length, 3);
  assert.equal(docs[1], '<x/>');
  assert.match(docs[2], /<ObjectID>3471<\/ObjectID><ObjectVersion>1.0<\/ObjectVersion>.*<Resources><\/Resources>/);
});

test('objectXML: JavaScript types and ranges', () => {
  const cases = [
    [{}, TypeError],
    [{ id: '3470' }, TypeError],
    [{ id: 3.5 }, TypeError],
    [{ id: -1 }, RangeError],
    [{ id: 70000 }, RangeError],
    [{ id: 3470, name: 5 }, TypeError],
    [{ id: 3470, version: 1.1 }, TypeError],
    [{ id: 3470, multiple: 'yes' }, TypeError],
    [{ id: 3470, resources: {} }, TypeError],
    [{ id: 3470, resources: [null] }, TypeError],
    [{ id: 3470, resources: [{ id: 1, type: 'text', operations: 'R' }] }, RangeError],
    [{ id: 3470, resources: [{ id: 1, type: 'string', operations: 'RWE' }] }, RangeError],
    [{ id: 3470, resources: [{ id: 1, type: 'string', operations: 1 }] }, TypeError],
    [{ id: 3470, resources: [{ id: 1, type: 'string', mandatory: 1 }] }, TypeError],
  ];
  for (const [def, err] of cases) assert.throws(() => objectXML(def), err, JSON.stringify(def));
  assert.throws(() => normalizeObjects([[1]]), TypeError);
  assert.throws(() => normalizeObjects([42]), TypeError);
});

test('the engine checks a field-by-field object as a registry document', () => {
  const config = { serverUri: 'coap://127.0.0.1:5683', endpoint: 'node-objects' };
  const refused = [
    { id: 3, resources: [] }, // built in
    { id: 3470, resources: [{ id: 1, type: 'string', operations: 'R' }, { id: 1, type: 'integer', operations: 'R' }] },
    { id: 3470, resources: [{ id: 4, type: 'string', operations: 'E' }] },
    { id: 3470, resources: [{ id: 1, operations: 'RW' }] },
    { id: 65535 },
  ];
  for (const def of refused) {
    const mod = Module.instantiateSync(compiled, {});
    assert.throws(() => mod.init(config, undefined, [def]), { code: 'AVC_BAD_INPUT' }, JSON.stringify(def));
  }
  const mod = Module.instantiateSync(compiled, {});
  mod.init(config, undefined, [valve]);
  mod.command({ cmd: 'set', path: '/3470/0/1', value: 'ok' });
  assert.throws(() => mod.command({ cmd: 'set', path: '/3470/0/2', value: 'x' }), { code: 'AVC_BAD_INPUT' }, 'an integer');
  assert.throws(() => mod.command({ cmd: 'set', path: '/3470/0/4', value: '1' }), { code: 'AVC_BAD_INPUT' }, 'executable');
});

test('a field-by-field object: the server reads, writes and executes it', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const agent = await Agent.create({ wasm: wasmPath(), config: { serverUri: server.uri, endpoint: 'node-objects' }, objects: [valve] });
  t.after(() => agent.close());
  await assert.rejects(
    Agent.create({ wasm: wasmPath(), config: { serverUri: server.uri, endpoint: 'node-objects' }, objects: [{ id: 4 }] }),
    { code: 'AVC_BAD_INPUT' },
    'a built-in object',
  );
  agent.set('/3470/0/1', 'set by node');
  agent.set('/3470/0/6', 3);
  const registered = nextEvent(agent, 'registered');
  await agent.start();
  await registered;
  assert.match(server.bodies[0], /<\/3470\/0>/, 'the Register lists the instance');
  assert.match(server.bodies[0], /<\/3470\/0>;ver=1.1/, 'with the object version');

  const read = async (p) => {
    const ack = await server.call(GET, p, '', { accept: TEXT });
    assert.equal(ack.code, code(2, 5), `GET ${p}`);
    return ack.payload.toString();
  };
  assert.equal(await read('/3470/0/1'), 'set by node');
  assert.equal(await read('/3470/0/6'), '3');

  // Write: the engine keeps the value, the host hears of it.
  let written = waitEvent(agent, 'write', (ev) => ev.path === '/3470/0/2');
  assert.equal((await server.call(PUT, '/3470/0/2', '42', { contentFormat: TEXT })).code, code(2, 4));
  await written;
  assert.equal(await read('/3470/0/2'), '42');
  written = waitEvent(agent, 'write', (ev) => ev.path === '/3470/0/5/0');
  assert.equal((await server.call(PUT, '/3470/0/5/0', '1.5', { contentFormat: TEXT })).code, code(2, 4));
  await written;
  assert.equal(await read('/3470/0/5/0'), '1.5');
  assert.equal((await server.call(PUT, '/3470/0/6', '4', { contentFormat: TEXT })).code, code(4, 5), 'read-only');
  assert.equal((await server.call(PUT, '/3470/0/2', 'x', { contentFormat: TEXT })).code, code(4, 0), 'not an integer');

  // Execute with arguments.
  const executed = waitEvent(agent, 'execute', (ev) => ev.path === '/3470/0/4');
  assert.equal((await server.call(POST, '/3470/0/4', "0='on',1")).code, code(2, 4));
  const ev = await executed;
  assert.equal(new TextDecoder().decode(ev.data), "0='on',1");
  assert.equal((await server.call(POST, '/3470/0/1', '')).code, code(4, 5), 'a string is not executable');

  assert.equal((await agent.stop()).kind, 'deregistered');
});

test('read callbacks: onRead resources get their values from the onRead handler', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const sensor = {
    id: 3480,
    name: 'Sensor',
    resources: [
      { id: 1, name: 'Temperature', type: 'float', operations: 'R', onRead: true },
      { id: 2, name: 'Label', type: 'string', operations: 'R' },
    ],
  };
  assert.throws(() => Module.instantiateSync(compiled, {}).init({ serverUri: server.uri, endpoint: 'x' }, undefined,
    [{ ...sensor, resources: [{ id: 1, type: 'float', operations: 'W', onRead: true }] }]), { code: 'AVC_BAD_INPUT' }, 'onRead needs R');
  const asked = [];
  let reading = 20;
  const agent = await Agent.create({
    wasm: wasmPath(),
    config: { serverUri: server.uri, endpoint: 'node-readcb' },
    objects: [sensor],
    onRead: async (path) => {
      asked.push(path);
      await new Promise((resolve) => setTimeout(resolve, 20)); // an async reading
      return reading++ + 0.5;
    },
  });
  t.after(() => agent.close());
  agent.set('/3480/0/1', 1.5);
  agent.set('/3480/0/2', 'lab');
  const registered = nextEvent(agent, 'registered');
  await agent.start();
  await registered;

  // Answered separately: an empty ACK now, then a CON response with the
  // request's token carrying the handler's value.
  const readSeparately = async (token) => {
    const requested = nextEvent(agent, 'read_request');
    const mid = server.request(GET, '/3480/0/1', '', { accept: TEXT, token });
    const ev = await requested;
    assert.deepEqual(ev.paths, ['/3480/0/1']);
    for (let i = 0; i < 400 && !server.notifications.some((m) => m.token.equals(token)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const ack = server.acks.find((m) => m.mid === mid);
    assert.ok(ack && ack.code === 0, 'an empty ACK first');
    const resp = server.notifications.find((m) => m.token.equals(token));
    assert.ok(resp, 'a separate response');
    assert.equal(resp.type, CON);
    assert.equal(resp.code, code(2, 5));
    return resp.payload.toString();
  };
  assert.equal(await readSeparately(Buffer.from([1, 1, 1, 1])), '20.5');
  assert.equal(await readSeparately(Buffer.from([2, 2, 2, 2])), '21.5');
  assert.deepEqual(asked, ['/3480/0/1', '/3480/0/1']);
  // A resource without onRead is answered at once, without the handler.
  const ack = await server.call(GET, '/3480/0/2', '', { accept: TEXT });
  assert.equal(ack.payload.toString(), 'lab');
  assert.equal(asked.length, 2);

  assert.equal((await agent.stop()).kind, 'deregistered');
});
