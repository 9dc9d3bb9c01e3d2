// The browser embedding, for real: headless Chromium loads
// examples/browser, whose avc.wasm (on @bjorn3/browser_wasi_shim)
// registers with a real `avc server` through `avc relay` over coap and
// over coaps (DTLS-PSK inside the module); the test reads /3/0 through the
// server's HTTP API, then the page de-registers.
//
// Needs build/avc and build/avc.wasm (make cli wasm, or $AVC_CLI and
// $AVC_WASM), Chromium ($CHROMIUM, default /usr/bin/chromium) and this
// package's npm dependencies (npm ci). Run: node --test bindings/browser/test/

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = process.env.AVC_CLI ?? path.join(ROOT, 'build/avc');
const WASM = process.env.AVC_WASM ?? path.join(ROOT, 'build/avc.wasm');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PSK_IDENTITY = 'browser-psk';
const PSK_KEY = '8f1e2d3c4b5a69788796a5b4c3d2e1f0';
const STEP_MS = 30_000;

const procs = [];
let servers; // {coap, coaps, http}
let relay; // ws://host:port
let pages; // http://host:port of the static file server
let staticServer;
let browser;

// spawnLine starts a command and resolves with the first line of its
// stdout or stderr that match finds something in.
function spawnLine(cmd, args, match) {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${path.basename(cmd)} ${args[0]} did not start within 10 s:\n${log}`)), 10_000);
    const onData = (chunk) => {
      log += chunk;
      for (const line of log.split('\n')) {
        const m = match(line);
        if (m) {
          clearTimeout(timer);
          resolve(m);
          return;
        }
      }
    };
    proc.stdout.setEncoding('utf8').on('data', onData);
    proc.stderr.setEncoding('utf8').on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${path.basename(cmd)} ${args[0]} exited with ${code}:\n${log}`));
    });
  });
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.json': 'application/json' };

// serveRoot serves the repository (the page, the bindings, the shim in
// node_modules) and avc.wasm at /build/avc.wasm.
function serveRoot() {
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let file = path.join(ROOT, path.normalize(decodeURIComponent(url.pathname)));
    if (url.pathname === '/build/avc.wasm') file = WASM;
    if (!file.startsWith(ROOT) && file !== WASM) {
      res.writeHead(403).end();
      return;
    }
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(data);
    });
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

async function api(pathname) {
  const res = await fetch(`http://${servers.http}${pathname}`);
  return { status: res.status, body: await res.json().catch(() => null) };
}

before(async () => {
  for (const [what, file] of [['build/avc (make cli)', CLI], ['build/avc.wasm (make wasm)', WASM], ['Chromium (scripts/deps.sh)', CHROMIUM]]) {
    assert.ok(fs.existsSync(file), `${what} is missing: ${file}`);
  }
  servers = await spawnLine(CLI, ['server', '-coap', '127.0.0.1:0', '-coaps', '127.0.0.1:0', '-http', '127.0.0.1:0', '-psk', `${PSK_IDENTITY}=${PSK_KEY}`], (line) => {
    const m = /server listening"? coap=(\S+) coaps=(\S+) http=(\S+)/.exec(line);
    return m && { coap: m[1], coaps: m[2], http: m[3] };
  });
  relay = await spawnLine(CLI, ['relay', '-listen', '127.0.0.1:0', '-route', `/coap=${servers.coap}`, '-route', `/coaps=${servers.coaps}`], (line) => {
    const m = /^relay: listening on (ws:\/\/\S+)/.exec(line);
    return m && m[1];
  });
  staticServer = await serveRoot();
  pages = `http://127.0.0.1:${staticServer.address().port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // A fresh profile for every run (playwright-core's launch makes one).
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  staticServer?.close();
  for (const p of procs) p.kill('SIGTERM');
});

// openPage loads the example with the test's servers, relay and endpoint.
async function openPage(t, endpoint, extra = {}) {
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  const q = new URLSearchParams({
    endpoint,
    storage: 'memory',
    coapServer: `coap://${servers.coap}`,
    coapRelay: `${relay}/coap`,
    coapsServer: `coaps://${servers.coaps}`,
    coapsRelay: `${relay}/coaps`,
    pskIdentity: PSK_IDENTITY,
    pskKey: PSK_KEY,
    ...extra,
  });
  await page.goto(`${pages}/examples/browser/index.html?${q}`);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'ready', null, { timeout: STEP_MS });
  return { page, errors };
}

async function waitStatus(page, want) {
  try {
    await page.waitForFunction((w) => document.getElementById('status').textContent === w, want, { timeout: STEP_MS });
  } catch (err) {
    const status = await page.textContent('#status');
    const events = await page.textContent('#events');
    throw new Error(`status ${JSON.stringify(status)}, want ${JSON.stringify(want)}; the page shows:\n${events}`, { cause: err });
  }
}

for (const transport of ['coap', 'coaps']) {
  test(`over ${transport}: the page registers through the relay, the server reads /3/0, the page de-registers`, async (t) => {
    const endpoint = `browser-${transport}-${process.pid}`;
    const { page, errors } = await openPage(t, endpoint);
    await page.click(`#${transport}`);
    await waitStatus(page, `registered (${transport})`);

    const client = await api(`/api/clients/${endpoint}`);
    assert.equal(client.status, 200, `GET /api/clients/${endpoint}: ${JSON.stringify(client.body)}`);
    assert.ok(client.body.objects.includes('/3/0'), `objects ${client.body.objects}`);

    const read = await api(`/api/clients/${endpoint}/read/3/0`);
    assert.equal(read.status, 200, `read /3/0: ${JSON.stringify(read.body)}`);
    const text = JSON.stringify(read.body);
    assert.match(text, /avc/i, `/3/0 names avc as the manufacturer or model: ${text}`);
    assert.match(text, /\b87\b/, `/3/0/9, the battery level the page set, is 87: ${text}`);
    const events = await page.textContent('#events');
    assert.match(events, /event: read .*"\/3\/0"/, 'the page shows the server\'s read');

    await page.click('#stop');
    await waitStatus(page, `deregistered (${transport})`);
    const gone = await api(`/api/clients/${endpoint}`);
    assert.equal(gone.status, 404, `after de-registration: ${JSON.stringify(gone.body)}`);
    assert.deepEqual(errors, [], 'no errors in the page');
  });
}

test('the state persists in localStorage: a lifetime the server wrote outlives the page', async (t) => {
  const endpoint = `browser-state-${process.pid}`;
  const key = `avc:${endpoint}:coap`;
  const { page, errors } = await openPage(t, endpoint, { storage: 'local' });
  await page.click('#coap');
  await waitStatus(page, 'registered (coap)');
  assert.equal((await api(`/api/clients/${endpoint}`)).body.lifetime, 300);
  const res = await fetch(`http://${servers.http}/api/clients/${endpoint}/write/1/0/1`, { method: 'PUT', body: '{"value":120}' });
  assert.equal(res.status, 200, `write /1/0/1: ${await res.text()}`);
  await waitStatus(page, 'registered (coap), updated');
  assert.ok(await page.evaluate((k) => localStorage.getItem(k), key), `localStorage ${key} after the write`);
  await page.click('#stop');
  await waitStatus(page, 'deregistered (coap)');

  await page.reload(); // a new agent, from what localStorage kept
  await page.waitForFunction(() => document.getElementById('status').textContent === 'ready', null, { timeout: STEP_MS });
  await page.click('#coap');
  await waitStatus(page, 'registered (coap)');
  assert.equal((await api(`/api/clients/${endpoint}`)).body.lifetime, 120, 'the new registration carries the stored lifetime');
  await page.click('#stop');
  await waitStatus(page, 'deregistered (coap)');
  assert.deepEqual(errors, [], 'no errors in the page');
});

test('over coaps with a wrong pre-shared key: registration fails, never registers', async (t) => {
  const endpoint = `browser-badpsk-${process.pid}`;
  const { page } = await openPage(t, endpoint, { pskKey: '00'.repeat(16), handshakeTimeoutMs: '3000' });
  await page.click('#coaps');
  await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('registration failed (coaps)'), null, { timeout: STEP_MS });
  assert.equal((await api(`/api/clients/${endpoint}`)).status, 404);
  assert.doesNotMatch(await page.textContent('#events'), /event: registered/);
  await page.click('#stop');
});
