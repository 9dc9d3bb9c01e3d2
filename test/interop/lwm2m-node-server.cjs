// An independent LwM2M server (lwm2m-node-lib 1.4.0, Telefónica) that runs
// a fixed script of operations against the first client that registers and
// prints one JSON line per step (and one per Observe notification, with a
// "notify" key), then "RESULT ok" or "RESULT fail". Used by avc's interop
// tests. Port from LWM2M_PORT; binds 127.0.0.1 only.
'use strict';
const coap = require('coap');
const origListen = coap.createServer.prototype.listen; // force a loopback bind
coap.createServer.prototype.listen = function (port, address, done) {
    if (typeof address === 'function') { done = address; address = '127.0.0.1'; }
    return origListen.call(this, port, address || '127.0.0.1', done);
};
const lwm2m = require('lwm2m-node-lib').server;

const port = Number(process.env.LWM2M_PORT || 5683);
const config = {
    port, lifetimeCheckInterval: 1000, udpWindow: 100, defaultType: 'Device',
    logLevel: 'FATAL', ipProtocol: 'udp4', serverProtocol: 'udp4',
    formats: [{ name: 'application-vnd-oma-lwm2m/text', value: 1541 }],
    writeFormat: 'text/plain', defaultAcceptFormat: 'text/plain',
};

// [op, obj, inst, res, value, expectation]; expectation is a predicate on
// (err, result) that says whether the step passed.
const ok = (e) => !e;
const value = (want) => (e, r) => !e && String(r) === want;
const nonEmpty = (e, r) => !e && String(r).length > 0;
const failed = (e) => !!e;
const steps = [
    ['read', 3, 0, 0, null, nonEmpty],
    ['read', 3, 0, 1, null, nonEmpty],
    ['read', 3, 0, 9, null, nonEmpty],
    ['write', 1, 0, 1, '120', ok],
    ['waitUpdate'],
    ['read', 1, 0, 1, null, value('120')],
    ['execute', 1, 0, 8, '', ok],
    ['waitUpdate'],
    ['write', 3, 0, 14, '+01:00', ok],
    ['read', 3, 0, 14, null, value('+01:00')],
    ['write', 3, 0, 0, 'nope', failed],
    ['read', 3, 0, 99, null, failed],
    // pmax=1 makes the agent notify every second without any change.
    ['writeAttributes', 3, 0, 9, { pmin: 0, pmax: 1 }, ok],
    // Passes with a first value and at least minNotifies more
    // notifications within observeWindow ms; then the observation is
    // cancelled.
    ['observe', 3, 0, 9, null, nonEmpty],
];
const minNotifies = 2;
const observeWindow = 5000;

let updates = 0;
let mark = 0; // updates seen before the last operation was sent
let failures = 0;
function out(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }

function run(id) {
    let i = 0;
    const next = () => {
        if (i >= steps.length) {
            out({ step: 'done', failures });
            process.stdout.write(failures === 0 ? 'RESULT ok\n' : 'RESULT fail\n');
            return;
        }
        const [op, o, n, r, v, expect] = steps[i++];
        if (op === 'waitUpdate') {
            // The update may arrive before the operation's own answer, so
            // count from before the operation was sent.
            const seen = mark;
            const deadline = Date.now() + 10000;
            const poll = () => {
                if (updates > seen) { out({ step: 'waitUpdate', pass: true }); return next(); }
                if (Date.now() > deadline) { failures++; out({ step: 'waitUpdate', pass: false }); return next(); }
                setTimeout(poll, 50);
            };
            return poll();
        }
        const path = `/${o}/${n}/${r}`;
        mark = updates;
        if (op === 'observe') return observeStep(id, o, n, r, path, expect, next);
        const cb = (e, res) => {
            const pass = expect(e, res);
            if (!pass) failures++;
            out({ step: op, path, value: v, result: res === undefined ? null : String(res), error: e ? (e.name || String(e)) : null, pass });
            next();
        };
        if (op === 'read') return lwm2m.read(id, o, n, r, cb);
        return lwm2m[op](id, o, n, r, v, cb);
    };
    next();
}

// observeStep observes path. lwm2m-node-lib calls back with the first value
// it sees (with avc, the 2.05 itself; with other clients it was seen to wait
// for the first notification), then calls the handler for each later
// notification. Both print a "notify" line; only the handler's count.
function observeStep(id, o, n, r, path, expect, next) {
    let notifies = 0, first, firstErr, called = false, finished = false;
    const started = Date.now();
    const finish = () => {
        if (finished) return;
        finished = true;
        clearInterval(poll);
        const pass = called && expect(firstErr, first) && notifies >= minNotifies;
        if (!pass) failures++;
        out({ step: 'observe', path, value: null, result: first === undefined ? null : String(first),
            error: firstErr ? (firstErr.name || String(firstErr)) : (called ? null : 'no first value'),
            notifies, ms: Date.now() - started, pass });
        if (!called || firstErr) return next();
        try {
            lwm2m.cancelObserver(id, o, n, r, () => next());
        } catch (e) {
            next();
        }
    };
    const poll = setInterval(() => {
        if (notifies >= minNotifies || Date.now() - started > observeWindow) finish();
    }, 50);
    lwm2m.observe(id, o, n, r, (val) => {
        notifies++;
        out({ notify: path, value: String(val), n: notifies, ms: Date.now() - started });
    }, (e, val) => {
        called = true;
        firstErr = e;
        first = val;
        out({ notify: path, value: val === undefined ? null : String(val), first: true, ms: Date.now() - started });
        if (e) finish();
    });
}

lwm2m.start(config, (err, info) => {
    if (err) { console.error(err); process.exit(1); }
    lwm2m.setHandler(info, 'registration', (ep, lt, ver, b, payload, cb) => {
        out({ event: 'register', ep, lt: Number(lt), lwm2m: ver, binding: b, links: payload });
        cb();
        lwm2m.getDevice(ep, (e, dev) => setTimeout(() => run(dev.id), 200));
    });
    lwm2m.setHandler(info, 'updateRegistration', (obj, payload, cb) => {
        updates++;
        out({ event: 'update', ep: obj.name, lt: Number(obj.lifetime) });
        cb();
    });
    lwm2m.setHandler(info, 'unregistration', (obj, cb) => {
        out({ event: 'deregister', ep: obj.name });
        cb();
        setTimeout(() => process.exit(0), 100);
    });
    out({ event: 'listening', port });
});
setTimeout(() => { out({ event: 'timeout' }); process.exit(3); }, Number(process.env.RUN_SECONDS || 60) * 1000);
