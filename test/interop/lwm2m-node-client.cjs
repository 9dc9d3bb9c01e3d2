// A reference LwM2M client (the client half of lwm2m-node-lib 1.4.0,
// Telefónica) that avc's benchmark (test/bench) measures avc's agent
// against. It registers to the server at LWM2M_SERVER_HOST:LWM2M_SERVER_PORT
// (default 127.0.0.1:5683) as LWM2M_ENDPOINT (default "node-ref") with
// LWM2M_LIFETIME seconds (default 300), exposing
//
//	/3/0  Device: 0 manufacturer, 1 model, 2 serial, 3 firmware version
//	/1/0  Server: 0 short server ID, 1 lifetime, 7 binding
//
// answers reads of them (text/plain), prints "REGISTERED location=<path>"
// once it is registered and listening, and on SIGTERM or SIGINT
// de-registers, prints "DEREGISTERED" and exits 0. Every socket is bound to
// 127.0.0.1. It loads lib/lwm2m-client directly rather than the package's
// main module, which would also load the server half (and mongoose).
'use strict';
const coap = require('coap');

// Loopback only: the library's listener binds to all interfaces and its
// request agents to an implicit 0.0.0.0; force 127.0.0.1 on both.
const origListen = coap.createServer.prototype.listen;
coap.createServer.prototype.listen = function (port, address, done) {
    if (typeof address === 'function') { done = address; address = '127.0.0.1'; }
    return origListen.call(this, port, address || '127.0.0.1', done);
};
const origInit = coap.Agent.prototype._init;
coap.Agent.prototype._init = function (socket) {
    const fresh = !this._sock && !socket && !this._opts.port;
    origInit.call(this, socket);
    if (fresh) this._sock.bind(0, '127.0.0.1');
};

require('logops').setLevel('FATAL');
const client = require('lwm2m-node-lib/lib/lwm2m-client');

const host = process.env.LWM2M_SERVER_HOST || '127.0.0.1';
const port = Number(process.env.LWM2M_SERVER_PORT || 5683);
const endpoint = process.env.LWM2M_ENDPOINT || 'node-ref';
const lifetime = String(process.env.LWM2M_LIFETIME || 300);

const config = {
    client: {
        lifetime, version: '1.0', logLevel: 'FATAL',
        observe: { period: 3000 },
        ipProtocol: 'udp4', serverProtocol: 'udp4',
        formats: [{ name: 'lightweightm2m/text', value: 1541 }],
        writeFormat: 'lightweightm2m/text',
    },
};

const objects = {
    '/3/0': { 0: 'lwm2m-node-lib', 1: 'reference-client', 2: endpoint, 3: '1.4.0' },
    '/1/0': { 0: '1', 1: lifetime, 7: 'U' },
};

function fail(what, err) {
    process.stderr.write(`lwm2m-node-client: ${what}: ${err && (err.message || err.name || err)}\n`);
    process.exit(1);
}

function createObjects(done) {
    const todo = [];
    for (const [uri, res] of Object.entries(objects)) {
        todo.push((next) => client.registry.create(uri, next));
        for (const [id, value] of Object.entries(res)) {
            todo.push((next) => client.registry.setResource(uri, id, value, next));
        }
    }
    const step = (err) => {
        if (err) return done(err);
        const f = todo.shift();
        return f ? f(step) : done(null);
    };
    step(null);
}

let device = null;
let stopping = false;

function stop() {
    if (stopping) return;
    stopping = true;
    if (!device) process.exit(0); // not registered yet: nothing to undo
    const guard = setTimeout(() => fail('deregister', 'no answer within 10 s'), 10000);
    client.unregister(device, (err) => {
        clearTimeout(guard);
        if (err) fail('deregister', err);
        process.stdout.write('DEREGISTERED\n');
        process.exit(0);
    });
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

client.init(config);
createObjects((err) => {
    if (err) fail('create objects', err);
    client.register(host, port, null, endpoint, (err, info) => {
        if (err) fail('register', err);
        device = info;
        process.stdout.write(`REGISTERED location=${info.location}\n`);
    });
});
