// coaps: the DTLS-PSK session runs inside avc.wasm (Node has no DTLS);
// the binding moves only ciphertext datagrams. The server is avc's own
// (Go, with a coaps listener), started by a small Go helper, since a
// DTLS server cannot be written here without DTLS.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent, Module } from '../index.js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { wasmPath, nextEvent, waitEvent, firmwarePackage } from './helpers.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const PSK = '0123456789abcdef0123456789abcdef';
const haveGo = spawnSync('go', ['version']).status === 0;

let server = null; // {coap, coaps, http, proc}

// startCoapsServer runs the Go helper with extra arguments.
async function startCoapsServer(...args) {
  const proc = spawn('go', ['run', './bindings/node/test/coapsserver', '-identity', 'dev-psk', '-key', PSK, ...args], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const line = await new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: proc.stdout });
    const timer = setTimeout(() => reject(new Error('the coaps server did not start within 180 s')), 180_000);
    rl.once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    proc.once('exit', (code) => reject(new Error(`the coaps server exited with ${code}`)));
  });
  return { ...JSON.parse(line), proc };
}

before(async () => {
  if (!haveGo) return;
  server = await startCoapsServer();
});

after(() => {
  server?.proc.stdin.end(); // the helper exits when its stdin ends
});

async function api(p, init = {}, srv = server) {
  const res = await fetch(`http://${srv.http}${p}`, init);
  return { status: res.status, body: await res.json().catch(() => null) };
}

test('register over coaps, the server reads /3/0, deregister', { skip: !haveGo && 'needs the Go toolchain for the coaps server' }, async (t) => {
  const config = {
    serverUri: `coaps://${server.coaps}`,
    endpoint: 'node-dtls',
    lifetime: 300,
    pskIdentity: 'dev-psk',
    pskKey: Buffer.from(PSK, 'hex'),
  };
  const agent = await Agent.create({ wasm: wasmPath(), config });
  t.after(() => agent.close());
  const registered = nextEvent(agent, 'registered', 20_000);
  await agent.start();
  const reg = await registered;
  assert.equal(reg.server, config.serverUri);
  assert.equal(reg.lifetime, 300);

  const client = await api('/api/clients/node-dtls');
  assert.equal(client.status, 200, 'the server lists the client');
  const read = await api('/api/clients/node-dtls/read/3/0?format=tlv');
  assert.equal(read.status, 200);
  assert.equal(read.body.code, '2.05');
  assert.ok(read.body.records.length > 0, 'records of /3/0');

  const ev = await agent.stop();
  assert.equal(ev?.kind, 'deregistered');
  assert.equal(ev.error, undefined);
  assert.equal((await api('/api/clients/node-dtls')).status, 404, 'gone from the server');
});

test('after a trap the fresh module registers over a new session from a new port', { skip: !haveGo && 'needs the Go toolchain for the coaps server' }, async (t) => {
  const agent = await Agent.create({
    wasm: wasmPath(),
    config: { serverUri: `coaps://${server.coaps}`, endpoint: 'node-dtls-trap', pskIdentity: 'dev-psk', pskKey: PSK },
  });
  t.after(() => agent.close());
  let registered = nextEvent(agent, 'registered', 20_000);
  await agent.start();
  await registered;
  const before = (await api('/api/clients/node-dtls-trap')).body.addr;
  const first = agent.module;
  // Make the next call trap the way a Go fatal error would. The server
  // still holds the dead instance's session for the old port, so the new
  // ClientHello must come from a new one.
  first.exports.avc_command = () => {
    throw new WebAssembly.RuntimeError('unreachable');
  };
  registered = nextEvent(agent, 'registered', 20_000);
  assert.throws(() => agent.update(), { code: 'AVC_NOT_REGISTERED' }); // retried on the fresh instance
  await registered;
  assert.notEqual(agent.module, first);
  const afterAddr = (await api('/api/clients/node-dtls-trap')).body.addr;
  assert.notEqual(afterAddr, before, 'registered again from a new port');
  assert.equal((await agent.stop()).kind, 'deregistered');
});

test('a wrong key: registration_failed with retries, never registered', { skip: !haveGo && 'needs the Go toolchain for the coaps server' }, async (t) => {
  const agent = await Agent.create({
    wasm: wasmPath(),
    config: {
      serverUri: `coaps://${server.coaps}`,
      endpoint: 'node-dtls-bad',
      pskIdentity: 'dev-psk',
      pskKey: '42'.repeat(16),
      // A wrong key is never refused, only left unanswered.
      dtlsHandshakeTimeoutMs: 500,
      dtlsRetryDelayMs: 200,
    },
  });
  t.after(() => agent.close());
  const kinds = [];
  agent.on('event', (ev) => kinds.push(ev.kind));
  const failed = [];
  agent.on('registration_failed', (ev) => failed.push(ev));
  await agent.start();
  await waitEvent(agent, 'registration_failed', () => failed.length >= 2, 10_000);
  assert.ok(!kinds.includes('registered'), `events: ${kinds}`);
  for (const ev of failed) assert.match(ev.error, /dtls handshake/);
  assert.equal((await api('/api/clients/node-dtls-bad')).status, 404);
  await agent.stop();
});

test('only DTLS records leave the module', async () => {
  const sent = [];
  const mod = await Module.create({ wasm: wasmPath(), sockSend: (peer, data) => sent.push({ peer, data }) });
  mod.init({ serverUri: 'coaps://127.0.0.1', endpoint: 'node-dtls-unit', pskIdentity: 'dev-psk', pskKey: PSK });
  const now = Date.now();
  mod.command('start', now);
  const next = mod.step(now);
  assert.ok(next !== null && next - now <= 100, 'polled every 50 ms while handshaking');
  assert.equal(sent.length, 1);
  assert.equal(sent[0].peer, '127.0.0.1:5684', 'the default coaps port');
  assert.equal(sent[0].data[0], 22, 'a handshake record (the ClientHello)');
  // Plain CoAP from the server's address or elsewhere is dropped.
  const get = Buffer.from([0x40, 0x01, 0x12, 0x34, 0xb1, 0x33]);
  mod.onDatagram('127.0.0.1:5684', get, now);
  mod.onDatagram('127.0.0.1:9999', get, now);
  mod.step(now);
  for (const d of sent) assert.ok(d.data[0] >= 20 && d.data[0] <= 25, `content type ${d.data[0]}`);
});

const coapRd = spawnSync('coap-rd-openssl', ['-?']).error ? null : 'coap-rd-openssl';

test('register over coaps to libcoap\'s coap-rd-openssl (OpenSSL DTLS)', { skip: !coapRd && 'coap-rd-openssl is not installed (Debian libcoap3-bin)' }, async (t) => {
  // A free UDP port pair: with -k, coap-rd listens for coap on port and
  // coaps on port+1.
  const dgram = await import('node:dgram');
  const probe = dgram.createSocket('udp4');
  await new Promise((resolve) => probe.bind(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  probe.close();
  const rd = spawn(coapRd, ['-A', '127.0.0.1', '-p', String(port), '-k', 'secretPSK', '-h', 'CoAP'], { stdio: 'ignore' });
  t.after(() => rd.kill());
  const agent = await Agent.create({
    wasm: wasmPath(),
    config: {
      serverUri: `coaps://127.0.0.1:${port + 1}`,
      endpoint: 'node-coap-rd',
      lifetime: 300,
      pskIdentity: 'CoAP-client',
      pskKey: Buffer.from('secretPSK'),
      // coap-rd may not listen yet when the first handshake starts.
      dtlsHandshakeTimeoutMs: 2000,
      dtlsRetryDelayMs: 200,
    },
  });
  t.after(() => agent.close());
  const registered = nextEvent(agent, 'registered', 20_000);
  await agent.start();
  const reg = await registered;
  assert.match(reg.location, /^\/rd\//);
  // coap-rd 4.3.1 dies of a double free on a De-register (libcoap's own
  // coap-client does the same to it): close without de-registering.
});

test('pull firmware over coaps: a DTLS-PSK session inside the module to the package\'s host', { skip: !haveGo && 'needs the Go toolchain for the coaps server' }, async (t) => {
  const image = crypto.randomBytes(40 << 10);
  const pkg = firmwarePackage(image, { version: '2.0.0' });
  assert.equal((await api('/api/firmware/fw.pkg', { method: 'PUT', body: pkg })).status, 201);
  let data = Buffer.alloc(0);
  const flash = {
    open(uri, offset) { data = data.subarray(0, offset); },
    write(bytes) { data = Buffer.concat([data, bytes]); },
    finish() {},
    reset() { data = Buffer.alloc(0); },
    upgrade() {},
    booted() { return { running: '1.0.0', installed: false }; },
  };
  const agent = await Agent.create({
    wasm: wasmPath(),
    // The LwM2M session is plain coap; the package comes over coaps from
    // the server's DTLS port, with the firmware credential.
    config: { serverUri: `coap://${server.coap}`, endpoint: 'node-coaps-pull', lifetime: 300, fwVersion: '1.0.0', fwPskIdentity: 'dev-psk', fwPskKey: PSK },
    firmware: flash,
  });
  t.after(() => agent.close());
  const registered = nextEvent(agent, 'registered', 20_000);
  await agent.start();
  await registered;
  const protocols = await api('/api/clients/node-coaps-pull/read/5/0/8?format=tlv');
  assert.deepEqual(protocols.body.records.map((r) => r.value), [0, 1], '/5/0/8 lists coap and coaps');
  const downloaded = waitEvent(agent, 'firmware', (ev) => ev.firmware?.state === 2 || ev.firmware?.result > 1, 30_000);
  const fota = await api('/api/clients/node-coaps-pull/fota', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ image: 'fw.pkg', protocol: 'coaps', update: false }),
  });
  assert.equal(fota.status, 202, JSON.stringify(fota.body));
  assert.match(fota.body.uri, /^coaps:\/\//);
  const ev = await downloaded;
  assert.equal(ev.firmware.state, 2, `firmware ${JSON.stringify(ev.firmware)}`);
  assert.equal(ev.firmware.version, '2.0.0');
  assert.ok(data.equals(image), 'the flash holds the image');
  await agent.stop();
});

test('register over coaps with X.509 certificates (AVC_CERT_FILE, AVC_KEY_FILE, AVC_CA_FILE)', { skip: !haveGo && 'needs the Go toolchain for the coaps server' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'avc-node-cert-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const certServer = await startCoapsServer('-certdir', dir);
  t.after(() => certServer.proc.stdin.end());
  const agent = await Agent.create({
    wasm: wasmPath(),
    config: {
      serverUri: `coaps://${certServer.coaps}`, endpoint: 'node-cert', lifetime: 300,
      AVC_CERT_FILE: path.join(dir, 'client.crt'), AVC_KEY_FILE: path.join(dir, 'client.key'), AVC_CA_FILE: path.join(dir, 'ca.pem'),
    },
  });
  t.after(() => agent.close());
  const registered = nextEvent(agent, 'registered', 20_000);
  await agent.start();
  await registered;
  const read = await api('/api/clients/node-cert/read/3/0?format=tlv', {}, certServer);
  assert.equal(read.body.code, '2.05');
  assert.equal((await agent.stop()).kind, 'deregistered');
});
