// The browser example: registers with an LwM2M server through `avc relay`
// over coap or coaps and shows the agent's events. Every setting below
// can be overridden by a query parameter of the same name, e.g.
// index.html?endpoint=my-browser&coapRelay=ws://127.0.0.1:9000/coap

import { Agent, localStorageStorage } from '../../bindings/browser/index.js';

const config = {
  wasm: '/build/avc.wasm',
  endpoint: 'avc-browser',
  lifetime: '300',
  // coap: the relay route pinned to the server's coap port.
  coapServer: 'coap://127.0.0.1:5683',
  coapRelay: 'ws://127.0.0.1:8090/coap',
  // coaps with a pre-shared key: the server must know the same one
  // (avc server -psk avc-browser=000102030405060708090a0b0c0d0e0f).
  coapsServer: 'coaps://127.0.0.1:5684',
  coapsRelay: 'ws://127.0.0.1:8090/coaps',
  pskIdentity: 'avc-browser',
  pskKey: '000102030405060708090a0b0c0d0e0f',
  // How long a DTLS handshake may take before registration_failed
  // ('' for the module's default).
  handshakeTimeoutMs: '',
  // 'local': keep the agent's state in localStorage; 'memory': forget it
  // with the page.
  storage: 'local',
};
for (const [k, v] of new URLSearchParams(location.search)) {
  if (Object.hasOwn(config, k)) config[k] = v;
}

const $ = (id) => document.getElementById(id);
const status = (text) => {
  $('status').textContent = text;
};
const show = (text) => {
  $('events').textContent += `${new Date().toISOString().slice(11, 23)} ${text}\n`;
};
$('endpoint').textContent = config.endpoint;

// The compiled module is fetched once and shared by both transports.
const wasm = WebAssembly.compileStreaming
  ? WebAssembly.compileStreaming(fetch(config.wasm)).catch(async () => WebAssembly.compile(await (await fetch(config.wasm)).arrayBuffer()))
  : fetch(config.wasm).then((r) => r.arrayBuffer()).then((b) => WebAssembly.compile(b));

let agent = null;
let transport = '';

function buttons(running) {
  $('coap').disabled = running;
  $('coaps').disabled = running;
  $('stop').disabled = !running;
}

async function register(kind) {
  buttons(true);
  transport = kind;
  const secure = kind === 'coaps';
  status(`connecting (${kind})`);
  try {
    agent = await Agent.create({
      wasm: await wasm,
      relay: secure ? config.coapsRelay : config.coapRelay,
      config: {
        serverUri: secure ? config.coapsServer : config.coapServer,
        endpoint: config.endpoint,
        lifetime: config.lifetime,
        pskIdentity: secure ? config.pskIdentity : undefined,
        pskKey: secure ? config.pskKey : undefined,
        dtlsHandshakeTimeoutMs: config.handshakeTimeoutMs || undefined,
      },
      storage: config.storage === 'local' ? localStorageStorage(`avc:${config.endpoint}:${kind}`) : undefined,
      logger: {
        info: (msg, attrs) => show(`log: ${msg} ${JSON.stringify(attrs)}`),
        warn: (msg, attrs) => show(`warn: ${msg} ${JSON.stringify(attrs)}`),
        error: (msg, attrs) => show(`error: ${msg} ${JSON.stringify(attrs)}`),
      },
    });
    agent.on('event', (ev) => {
      const { kind: k, data, ...rest } = ev;
      show(`event: ${k} ${JSON.stringify(rest)}${data ? ` data=${data.length}B` : ''}`);
    });
    agent.on('registered', () => status(`registered (${kind})`));
    agent.on('updated', () => status(`registered (${kind}), updated`));
    agent.on('registration_failed', (ev) => status(`registration failed (${kind}): ${ev.error ?? ev.reason ?? ''}`));
    agent.on('error', (err) => {
      show(`error: ${err.message}`);
      status(`error: ${err.message}`);
      agent = null;
      buttons(false);
    });
    agent.set('/3/0/9', 87); // a battery level the server can read
    await agent.start();
    status(`registering (${kind})`);
  } catch (err) {
    show(`error: ${err.message}`);
    status(`error: ${err.message}`);
    agent = null;
    buttons(false);
  }
}

async function deregister() {
  if (!agent) return;
  $('stop').disabled = true;
  status(`de-registering (${transport})`);
  const ev = await agent.stop();
  agent.close();
  agent = null;
  status(ev ? `deregistered (${transport})` : `de-registration timed out (${transport})`);
  buttons(false);
}

$('coap').onclick = () => register('coap');
$('coaps').onclick = () => register('coaps');
$('stop').onclick = () => deregister();
status('ready');
