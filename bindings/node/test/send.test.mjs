// Agent.send: the LwM2M Send operation (POST /dp) against the tiny server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from '../index.js';
import { wasmPath, startServer, nextEvent } from './helpers.mjs';

test('send before start, after registration, and refused paths', async (t) => {
  const server = await startServer();
  t.after(() => server.close());
  const agent = await Agent.create({ wasm: wasmPath(), config: { serverUri: server.uri, endpoint: 'node-send' } });
  t.after(() => agent.close());
  agent.set('/3/0/9', 88);

  assert.throws(() => agent.send(['/3/0/9']), { code: 'AVC_CLOSED' });
  assert.throws(() => agent.send('/3/0/9'), TypeError);
  assert.throws(() => agent.send([9]), TypeError);

  const registered = nextEvent(agent, 'registered');
  await agent.start();
  await registered;
  assert.throws(() => agent.send([]), { code: 'AVC_BAD_INPUT' });
  assert.throws(() => agent.send(['/3/x']), { code: 'AVC_BAD_INPUT' });
  assert.throws(() => agent.send(['/0/0']), { code: 'AVC_BAD_INPUT' });

  const sent = nextEvent(agent, 'sent');
  agent.send(['/3/0/9']);
  assert.equal((await sent).path, '/3/0/9');
  const i = server.requests.findIndex((r) => r.startsWith('POST /dp'));
  assert.ok(i >= 0, `no POST /dp in ${server.requests}`);
  assert.ok(server.bodies[i].length > 0, 'the Send carries a payload');

  assert.equal((await agent.stop()).kind, 'deregistered');
  assert.throws(() => agent.send(['/3/0/9']), { code: 'AVC_CLOSED' });
});
