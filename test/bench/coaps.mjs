// The Node half of the bench's coaps part (dtls.go), in one of two modes.
//
// BENCH_MODE=register (default): prints {"ms": [...], "cold": [...]}.
// ms: one agent registers once (untimed), then BENCH_RUNS times stops and
// is started again, timed from start() to the "registered" event (for a
// coaps:// AVC_SERVER_URI: the DTLS handshake inside the module plus the
// Register exchange) on the same, warm module instance. cold: BENCH_RUNS
// fresh agents (fresh module instances) timed the same way, after an
// untimed one (V8 still compiling).
//
// BENCH_MODE=pull: one agent with an in-memory firmware handler registers
// and prints "registered", then prints "downloaded" for every firmware
// event in State 2 (Downloaded), until its standard input ends. The bench
// writes /5/0/1 and times it.
//
//   AVC_WASM=build/avc.wasm AVC_SERVER_URI=coaps://127.0.0.1:5684 \
//   AVC_PSK_IDENTITY=… AVC_PSK_KEY=… BENCH_RUNS=5 node test/bench/coaps.mjs

import { Agent, configFromEnv } from '../../bindings/node/index.js';

const runs = Number(process.env.BENCH_RUNS ?? 5);
const config = configFromEnv();
const wasm = process.env.AVC_WASM;
const endpoint = config.AVC_ENDPOINT ?? 'bench-node';

function registered(agent) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no registration within 20 s')), 20_000);
    agent.once('registered', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function timedStart(agent) {
  const reg = registered(agent);
  const t0 = performance.now();
  await agent.start();
  await reg;
  return performance.now() - t0;
}

async function register() {
  const ms = [];
  const agent = await Agent.create({ wasm, config: { ...config, AVC_ENDPOINT: `${endpoint}-warm` } });
  await timedStart(agent);
  for (let i = 0; i < runs; i++) {
    await agent.stop();
    // stop() closes the socket; start() opens a new one.
    ms.push(await timedStart(agent));
  }
  await agent.stop();
  agent.close();
  const cold = [];
  for (let i = 0; i <= runs; i++) {
    const a = await Agent.create({ wasm, config: { ...config, AVC_ENDPOINT: `${endpoint}-${i}` } });
    const t = await timedStart(a);
    if (i > 0) cold.push(t);
    await a.stop();
    a.close();
  }
  console.log(JSON.stringify({ ms, cold }));
}

async function pull() {
  let image = [];
  const firmware = {
    open(uri, offset) {
      if (offset !== 0) throw new Error('bench: no resume');
      image = [];
    },
    write(bytes) { image.push(Buffer.from(bytes)); },
    finish() { image = [Buffer.concat(image)]; },
    reset() { image = []; },
    upgrade() { throw new Error('bench: no install'); },
    booted() { return { running: '1.0.0', installed: false }; },
  };
  const agent = await Agent.create({ wasm, config, firmware });
  agent.on('firmware', (ev) => {
    if (ev.firmware?.state === 2) process.stdout.write('downloaded\n');
  });
  const reg = registered(agent);
  await agent.start();
  await reg;
  process.stdout.write('registered\n');
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once('end', resolve).once('data', resolve));
  await agent.stop();
  agent.close();
}

await (process.env.BENCH_MODE === 'pull' ? pull() : register());
