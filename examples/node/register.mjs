#!/usr/bin/env node
// Registers this machine to an LwM2M server with the avc WebAssembly agent,
// prints one line per event and de-registers on SIGINT/SIGTERM.
//
//   make wasm
//   AVC_SERVER_URI=coap://127.0.0.1:5683 AVC_ENDPOINT=node-demo node examples/node/register.mjs
//
// Configuration comes from the AVC_* environment (AVC_SERVER_URI,
// AVC_ENDPOINT, AVC_LIFETIME, AVC_STATE_DIR, AVC_LOG_LEVEL, ...); avc.wasm
// from $AVC_WASM or build/avc.wasm. A coaps:// AVC_SERVER_URI with
// AVC_PSK_IDENTITY and AVC_PSK_KEY (hex) runs DTLS inside avc.wasm. Log records go to stderr, events to
// stdout. Once registered, it reports the battery level (/3/0/9) once with
// the LwM2M Send operation and prints "sent: /3/0/9" when the server
// acknowledges it. Exit status: 0 after "deregistered", 1 when de-registration timed
// out, 2 on a configuration or start-up error.

import os from 'node:os';
import { Agent, configFromEnv } from '../../bindings/node/index.js';

const wasm = process.env.AVC_WASM ?? new URL('../../build/avc.wasm', import.meta.url);
const config = configFromEnv();
config.AVC_ENDPOINT ??= `avc-${os.hostname()}`;

const fmt = (attrs) => Object.entries(attrs).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
const logger = Object.fromEntries(['debug', 'info', 'warn', 'error'].map((level) => [level, (msg, attrs) => console.error(`${level}: ${msg} ${fmt(attrs)}`.trimEnd())]));

function line(ev) {
  const { kind, server, data, ...rest } = ev;
  const fields = fmt(rest);
  return `event: ${kind}${fields ? ' ' + fields : ''}${data ? ` data=${data.length}B` : ''}`;
}

let agent;
try {
  agent = await Agent.create({ wasm, config, logger });
  agent.on('event', (ev) => console.log(line(ev)));
  agent.once('registered', () => {
    try {
      agent.send(['/3/0/9']);
    } catch (err) {
      console.error(`register: send /3/0/9: ${err.message}`);
    }
  });
  agent.on('sent', (ev) => console.log(`sent: ${ev.path}`));
  agent.on('send_failed', (ev) => console.error(`register: send failed: ${ev.error ?? ev.code ?? ''}`));
  agent.on('error', (err) => {
    console.error(`register: ${err.message}`);
    process.exit(2);
  });
  await agent.start();
} catch (err) {
  console.error(`register: ${err.message}`);
  process.exit(2);
}

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    const ev = await agent.stop();
    if (!ev) console.error('register: de-registration timed out');
    process.exit(ev ? 0 : 1);
  });
}
