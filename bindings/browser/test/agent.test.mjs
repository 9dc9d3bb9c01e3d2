// The browser Agent's own logic, run in Node against a real `avc server`:
// a stand-in WebSocket class (Node 20 has none) carries each message as a
// UDP datagram to the server, one socket per WebSocket, like avc relay.
// Covers what the Chromium test does not: recovery after a trap on a new
// relay session, and the relay closing the session.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from '../index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = process.env.AVC_CLI ?? path.join(ROOT, 'build/avc');
const WASM = process.env.AVC_WASM ?? path.join(ROOT, 'build/avc.wasm');

let server; // {proc, coap, http}

// FakeWebSocket: the browser WebSocket API over a UDP socket connected to
// the server (the relay's part). FakeWebSocket.opened lists every one.
class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static opened = [];

  constructor(url) {
    this.url = url;
    this.readyState = FakeWebSocket.CONNECTING;
    this.binaryType = 'blob';
    this.sent = 0;
    const [host, port] = server.coap.split(':');
    this.udp = dgram.createSocket('udp4');
    this.udp.on('message', (msg) => {
      if (this.readyState !== FakeWebSocket.OPEN) return;
      const data = msg.buffer.slice(msg.byteOffset, msg.byteOffset + msg.length);
      this.onmessage?.({ data });
    });
    this.udp.connect(Number(port), host, () => {
      this.readyState = FakeWebSocket.OPEN;
      this.onopen?.({});
    });
    FakeWebSocket.opened.push(this);
  }

  send(data) {
    if (this.readyState !== FakeWebSocket.OPEN) throw new Error('not open');
    this.sent++;
    this.udp.send(data);
  }

  close(code = 1000) {
    if (this.readyState === FakeWebSocket.CLOSED) return;
    this.readyState = FakeWebSocket.CLOSED;
    this.udp.close();
    setImmediate(() => this.onclose?.({ code, reason: '' }));
  }
}

before(async () => {
  assert.ok(fs.existsSync(CLI), `no ${CLI} (make cli)`);
  assert.ok(fs.existsSync(WASM), `no ${WASM} (make wasm)`);
  globalThis.WebSocket = FakeWebSocket;
  const proc = spawn(CLI, ['server', '-coap', '127.0.0.1:0', '-http', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`avc server did not start:\n${log}`)), 10_000);
    proc.stderr.setEncoding('utf8').on('data', (chunk) => {
      log += chunk;
      const m = /server listening"? coap=(\S+) http=(\S+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, coap: m[1], http: m[2] });
      }
    });
  });
});

after(() => {
  server?.proc.kill('SIGTERM');
  delete globalThis.WebSocket;
});

function nextEvent(agent, kind, ms = 15_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${kind} within ${ms} ms`)), ms);
    agent.once(kind, (ev) => {
      clearTimeout(timer);
      resolve(ev);
    });
  });
}

async function newAgent(t, endpoint) {
  const agent = await Agent.create({
    wasm: fs.readFileSync(WASM),
    relay: 'ws://relay.invalid/coap',
    config: { serverUri: `coap://${server.coap}`, endpoint },
  });
  t.after(() => agent.close());
  return agent;
}

test('a trapped module is replaced, on a new relay session, and registers again', async (t) => {
  const agent = await newAgent(t, 'browser-trap');
  let registered = nextEvent(agent, 'registered');
  await agent.start();
  await registered;
  const first = agent.module;
  const firstWs = FakeWebSocket.opened.at(-1);
  first.exports.avc_command = () => {
    throw new WebAssembly.RuntimeError('unreachable');
  };
  registered = nextEvent(agent, 'registered');
  assert.throws(() => agent.update(), { code: 'AVC_TRAP' });
  await registered;
  assert.notEqual(agent.module, first, 'a new instance');
  const ws = FakeWebSocket.opened.at(-1);
  assert.notEqual(ws, firstWs, 'a new relay session');
  assert.equal(firstWs.readyState, FakeWebSocket.CLOSED, 'the old session is closed');
  assert.ok(ws.sent > 0);
  const res = await fetch(`http://${server.http}/api/clients/browser-trap/read/3/0/0`);
  assert.equal(res.status, 200, 'the server reads the recovered agent');
  assert.equal((await agent.stop()).kind, 'deregistered');
  assert.equal(ws.readyState, FakeWebSocket.CLOSED, 'stop closes the relay session');
});

test('the relay closing the session is an error; the agent stops', async (t) => {
  const agent = await newAgent(t, 'browser-relay-gone');
  const registered = nextEvent(agent, 'registered');
  await agent.start();
  await registered;
  const failed = nextEvent(agent, 'error');
  FakeWebSocket.opened.at(-1).close(1011);
  const err = await failed;
  assert.equal(err.code, 'AVC_FAULT');
  assert.match(err.message, /relay closed the session \(1011/);
  assert.equal(agent.started, false);
});

test('create refuses a relay that is not a ws:// or wss:// URL', async () => {
  await assert.rejects(
    Agent.create({ wasm: fs.readFileSync(WASM), relay: 'http://x/coap', config: { serverUri: 'coap://127.0.0.1:5683', endpoint: 'x' } }),
    TypeError,
  );
});

// Read callbacks work in the browser agent as in Node's: the server's
// read of an onRead resource (through avc server's HTTP API, a real
// LwM2M Read) gets the value the onRead handler gives, awaited; a
// resource without onRead is answered from the value set, without it.
test('onRead handler answers server reads of onRead resources', async (t) => {
  const asked = [];
  const agent = await Agent.create({
    wasm: fs.readFileSync(WASM),
    relay: 'ws://relay.invalid/coap',
    config: { serverUri: `coap://${server.coap}`, endpoint: 'browser-readcb' },
    objects: [{
      id: 3480,
      name: 'Sensor',
      resources: [
        { id: 1, name: 'Temperature', type: 'float', operations: 'R', onRead: true },
        { id: 2, name: 'Label', type: 'string', operations: 'R' },
      ],
    }],
    onRead: async (path) => {
      asked.push(path);
      await new Promise((resolve) => setTimeout(resolve, 20)); // an async reading
      return 21.5;
    },
  });
  t.after(() => agent.close());
  agent.set('/3480/0/1', 1.5);
  agent.set('/3480/0/2', 'lab');
  const registered = nextEvent(agent, 'registered');
  await agent.start();
  await registered;
  const read = async (p) => {
    const res = await fetch(`http://${server.http}/api/clients/browser-readcb/read${p}?format=text`);
    assert.equal(res.status, 200, `read ${p}`);
    const body = await res.json();
    assert.equal(body.records.length, 1);
    return body.records[0].value;
  };
  assert.equal(await read('/3480/0/1'), '21.5');
  assert.deepEqual(asked, ['/3480/0/1']);
  assert.equal(await read('/3480/0/2'), 'lab');
  assert.deepEqual(asked, ['/3480/0/1'], 'no handler call for a resource without onRead');
  assert.equal((await agent.stop()).kind, 'deregistered');
});

test('create refuses an onRead that is not a function', async () => {
  await assert.rejects(Agent.create({
    wasm: fs.readFileSync(WASM),
    relay: 'ws://relay.invalid/coap',
    config: { serverUri: `coap://${server.coap}`, endpoint: 'x' },
    onRead: 'not a function',
  }), TypeError);
});
