// Firmware update (Object 5) through the `firmware` option: a CoAP pull
// from a file server that is not the LwM2M server, the install, the
// module's engine restart and Update Result 1, with an in-memory flash.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Agent, AvcError, FirmwareCode, Module } from '../index.js';
import { wasmPath, startServer, startFileServer, firmwarePackage, nextEvent, waitEvent, decodeCoap, code, ACK } from './helpers.mjs';

const GET = 1;
const POST = 2;
const PUT = 3;

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

/**
 * A flash in memory: the image written so far, the version running, and
 * the version installed at the next "boot". `fail` makes a method throw
 * the given error.
 */
function memoryFlash(running = '1.0.0', fail = {}) {
  const flash = {
    data: Buffer.alloc(0),
    running,
    pending: null,
    calls: [],
    upgraded: [],
    open(uri, offset) {
      flash.calls.push(`open ${offset}`);
      if (offset > flash.data.length) throw new Error(`flash holds ${flash.data.length} bytes, resume wants ${offset}`);
      flash.data = flash.data.subarray(0, offset);
    },
    write(bytes) {
      if (fail.write) throw fail.write;
      assert.ok(bytes instanceof Uint8Array);
      flash.data = Buffer.concat([flash.data, bytes]);
    },
    finish() {
      flash.calls.push('finish');
    },
    sync() {
      flash.calls.push('sync');
    },
    reset() {
      flash.calls.push('reset');
      flash.data = Buffer.alloc(0);
    },
    upgrade(pkg) {
      flash.upgraded.push({ ...pkg, stored: sha256(flash.data) });
      if (fail.upgrade) throw fail.upgrade;
      if (sha256(flash.data) !== pkg.sha256 || flash.data.length !== pkg.size) {
        throw new AvcError('AVC_FW_ERR_INTEGRITY_FAILURE', 'the stored image does not match');
      }
      flash.pending = pkg.version;
    },
    booted(pkg) {
      flash.calls.push('booted');
      if (flash.pending) {
        flash.running = flash.pending;
        flash.pending = null;
      }
      return { running: flash.running, installed: flash.running === pkg.version };
    },
  };
  return flash;
}

async function setup(t, flash) {
  const image = crypto.randomBytes(20 << 10);
  const pkg = firmwarePackage(image, { version: '2.0.0' });
  const server = await startServer();
  t.after(() => server.close());
  const files = await startFileServer({ 'fw.pkg': pkg });
  t.after(() => files.close());
  const agent = await Agent.create({
    wasm: wasmPath(),
    config: { serverUri: server.uri, endpoint: 'node-fw', lifetime: 300, fwVersion: '1.0.0' },
    firmware: flash,
  });
  t.after(() => agent.close());
  const events = [];
  agent.on('event', (ev) => events.push(ev));
  const registered = nextEvent(agent, 'registered');
  await agent.start();
  await registered;
  return { image, pkg, server, files, agent, events };
}

const firmwareIs = (state, result) => (ev) => ev.firmware?.state === state && ev.firmware?.result === result;

test('pull over CoAP from another host, install, restart, Update Result 1', async (t) => {
  const flash = memoryFlash();
  const { image, pkg, server, files, agent, events } = await setup(t, flash);

  // /5/0/8 lists CoAP only: the module does not fetch over HTTP.
  const protocols = await server.call(GET, '/5/0/8', '', { accept: 110 }); // SenML JSON
  assert.equal(protocols.code, code(2, 5));
  assert.deepEqual(JSON.parse(protocols.payload.toString()).map((r) => r.v), [0]);

  const downloaded = waitEvent(agent, 'firmware', firmwareIs(2, 0));
  const written = await server.call(PUT, '/5/0/1', files.uri('fw.pkg'), { contentFormat: 0 });
  assert.equal(written.code, code(2, 4));
  const ev = await downloaded;
  assert.equal(ev.path, '/5/0');
  assert.equal(ev.firmware.version, '2.0.0');
  assert.equal(ev.firmware.total, pkg.length);
  assert.ok(files.gets >= Math.ceil(pkg.length / 1024), `${files.gets} GETs`);
  assert.ok(flash.data.equals(image), 'the flash holds the image (not the package header)');
  assert.ok(flash.calls.includes('finish'));

  const restart = nextEvent(agent, 'restart');
  const updated = waitEvent(agent, 'firmware', firmwareIs(0, 1));
  const reregistered = waitEvent(agent, 'registered', () => events.some((e) => e.kind === 'restart'));
  const executed = await server.call(POST, '/5/0/2', '');
  assert.equal(executed.code, code(2, 4));
  assert.equal((await restart).path, '/5/0/2');
  await updated;
  await reregistered;

  assert.equal(flash.upgraded.length, 1);
  const [up] = flash.upgraded;
  assert.deepEqual({ ...up, stored: undefined }, {
    uri: files.uri('fw.pkg'), name: 'demo', version: '2.0.0', size: image.length, sha256: sha256(image), stored: undefined,
  });
  assert.equal(flash.running, '2.0.0');
  assert.equal(flash.calls.filter((c) => c === 'booted').length, 1);
  assert.equal(server.requests.filter((r) => r.startsWith('POST /rd ')).length, 2, 'registered again after the restart');

  const version = await server.call(GET, '/3/0/3', '', { accept: 0 });
  assert.equal(version.payload.toString(), '2.0.0');
  const result = await server.call(GET, '/5/0/5', '', { accept: 0 });
  assert.equal(result.payload.toString(), '1');

  const states = events.filter((e) => e.kind === 'firmware' || e.kind === 'restart')
    .map((e) => (e.kind === 'restart' ? 'restart' : e.firmware.state))
    .filter((s, i, a) => i === 0 || s !== a[i - 1]);
  assert.deepEqual(states, [1, 2, 3, 'restart', 0]);
  assert.equal((await agent.stop()).kind, 'deregistered');
});

test('handler errors choose the Update Result', async (t) => {
  const cases = [
    { name: 'write: AVC_FW_ERR_NOT_ENOUGH_SPACE', fail: { write: new AvcError('AVC_FW_ERR_NOT_ENOUGH_SPACE', 'full') }, want: [0, 2] },
    { name: 'write: ENOSPC', fail: { write: Object.assign(new Error('disk full'), { code: 'ENOSPC' }) }, want: [0, 2] },
    { name: 'write: AVC_FW_ERR_OUT_OF_MEMORY', fail: { write: new AvcError('AVC_FW_ERR_OUT_OF_MEMORY', 'oom') }, want: [0, 3] },
    { name: 'upgrade: AVC_FW_ERR_DEFERRED', fail: { upgrade: new AvcError('AVC_FW_ERR_DEFERRED', 'later') }, execute: true, want: [2, 11] },
    { name: 'upgrade: any other error', fail: { upgrade: new Error('busy') }, execute: true, want: [2, 8] },
    { name: 'upgrade: AVC_FW_ERR_UNSUPPORTED_PACKAGE_TYPE', fail: { upgrade: new AvcError('AVC_FW_ERR_UNSUPPORTED_PACKAGE_TYPE', 'no') }, execute: true, want: [0, 6] },
  ];
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const flash = memoryFlash('1.0.0', c.fail);
      const { server, files, agent, events } = await setup(t, flash);
      const ended = waitEvent(agent, 'firmware', firmwareIs(...c.want));
      if (c.execute) {
        const downloaded = waitEvent(agent, 'firmware', firmwareIs(2, 0));
        await server.call(PUT, '/5/0/1', files.uri('fw.pkg'), { contentFormat: 0 });
        await downloaded;
        await server.call(POST, '/5/0/2', '');
      } else {
        await server.call(PUT, '/5/0/1', files.uri('fw.pkg'), { contentFormat: 0 });
      }
      await ended;
      assert.ok(!events.some((e) => e.kind === 'restart'), 'no restart after a failed update');
      await agent.stop();
    });
  }
});

test('firmware option: checked, and enables Object 5', async () => {
  const compiled = await WebAssembly.compile(fs.readFileSync(wasmPath()));
  assert.throws(() => Module.instantiateSync(compiled, { firmware: 5 }), TypeError);
  assert.throws(() => Module.instantiateSync(compiled, { firmware: { ...memoryFlash(), booted: undefined } }), /firmware.booted must be a function/);
  await assert.rejects(Agent.create({ wasm: compiled, config: {}, firmware: {} }), TypeError);

  const config = { serverUri: 'coap://127.0.0.1:5683', endpoint: 'node-fw-object' };
  for (const [firmware, listed] of [[undefined, false], [memoryFlash(), true]]) {
    const sent = [];
    const mod = Module.instantiateSync(compiled, { sockSend: (p, d) => sent.push(d), firmware });
    mod.init(config);
    mod.command('start');
    const reg = decodeCoap(Buffer.from(sent[0]));
    assert.equal(reg.payload.toString().includes('</5/0>'), listed, reg.payload.toString());
  }
  assert.equal(FirmwareCode.AVC_FW_ERR_NOT_ENOUGH_SPACE, -2);
  assert.ok(Object.isFrozen(FirmwareCode));
  assert.equal(ACK, 2);
});

test('optional hooks: getName/getVersion name a bare image, getCoapTxParams sets the resend', async (t) => {
  const dgram = await import('node:dgram');
  const asked = [];
  const flash = {
    ...memoryFlash(),
    getName: () => 'node-blob',
    getVersion: () => '6.6.6',
    getCoapTxParams: (uri) => {
      asked.push(uri);
      return { ackTimeout: 300, ackRandomFactor: 1, maxRetransmit: 1 };
    },
  };
  const impl = memoryFlash();
  for (const m of ['open', 'write', 'finish', 'sync', 'reset', 'upgrade', 'booted']) flash[m] = impl[m];
  const { server, agent } = await setup(t, flash);
  const image = crypto.randomBytes(3000);

  // A silent CoAP server: the pull's GET comes again after 300 ms, then
  // as a new request after the 900 ms timeout and the 2 s retry wait.
  const silent = dgram.createSocket('udp4');
  await new Promise((resolve) => silent.bind(0, '127.0.0.1', resolve));
  t.after(() => silent.close());
  const gets = [];
  silent.on('message', (buf) => gets.push({ at: performance.now(), mid: buf.readUInt16BE(2) }));
  const uri = `coap://127.0.0.1:${silent.address().port}/fw/silent`;
  assert.equal((await server.call(PUT, '/5/0/1', uri, { contentFormat: 0 })).code, code(2, 4));
  const deadline = performance.now() + 10000;
  while (gets.length < 3 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(gets.length >= 3, true, `${gets.length} GETs`);
  const [first, resend, again] = gets;
  assert.ok(resend.at - first.at >= 250 && resend.at - first.at < 1500, `resend after ${resend.at - first.at} ms, want 300`);
  assert.equal(resend.mid, first.mid, 'a resend keeps the message ID');
  assert.notEqual(again.mid, resend.mid, 'after MAX_RETRANSMIT 1: a new request');
  assert.ok(again.at - resend.at >= 2000 && again.at - resend.at < 4500, `new request ${again.at - resend.at} ms later`);
  assert.deepEqual(asked, [uri]);
  const idle = waitEvent(agent, 'firmware', firmwareIs(0, 0));
  await server.call(PUT, '/5/0/1', '', { contentFormat: 0 });
  await idle;

  // A bare image: PkgName and PkgVersion from the handler.
  const blobFiles = await startFileServer({ blob: image });
  t.after(() => blobFiles.close());
  const downloaded = waitEvent(agent, 'firmware', firmwareIs(2, 0));
  await server.call(PUT, '/5/0/1', blobFiles.uri('blob'), { contentFormat: 0 });
  const ev = await downloaded;
  assert.equal(ev.firmware.version, '6.6.6');
  assert.ok(impl.data.equals(image));
  assert.equal((await server.call(GET, '/5/0/6', '', { accept: 0 })).payload.toString(), 'node-blob');
  assert.equal((await server.call(GET, '/5/0/7', '', { accept: 0 })).payload.toString(), '6.6.6');
  await agent.stop();
});
