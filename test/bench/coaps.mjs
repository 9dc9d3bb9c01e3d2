// The Node half of the bench's coaps part (dtls.go): registers a fresh
// avc.wasm agent BENCH_RUNS times in this one process and prints
// {"ms": [...]}: for each, the milliseconds from start() to the
// "registered" event (for a coaps:// AVC_SERVER_URI: the DTLS handshake
// inside the module plus the Register exchange), then stops it. The
// first, cold run (V8 still compiling) is left out.
//
//   AVC_WASM=build/avc.wasm AVC_SERVER_URI=coaps://127.0.0.1:5684 \
//   AVC_PSK_IDENTITY=… AVC_PSK_KEY=… BENCH_RUNS=5 node test/bench/coaps.mjs

import { Agent, configFromEnv } from '../../bindings/node/index.js';

const runs = Number(process.env.BENCH_RUNS ?? 5);
const config = configFromEnv();
const wasm = process.env.AVC_WASM;
const ms = [];
for (let i = 0; i <= runs; i++) {
  const agent = await Agent.create({ wasm, config: { ...config, AVC_ENDPOINT: `${config.AVC_ENDPOINT ?? 'bench-node'}-${i}` } });
  const registered = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no registration within 20 s')), 20_000);
    agent.once('registered', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  const t0 = performance.now();
  await agent.start();
  await registered;
  const t = performance.now() - t0;
  if (i > 0) ms.push(t);
  await agent.stop();
  agent.close();
}
console.log(JSON.stringify({ ms }));
