// avc for Node: runs avc.wasm (the WebAssembly build of the avc LwM2M
// agent) with node:wasi and a node:dgram socket. The module owns the
// protocol; this file only moves bytes, time and events across the ABI
// specified in wasm/ABI.md. No protocol logic, retries or timers of its own
// beyond the one deadline the module asks for.

import { EventEmitter } from 'node:events';
import { WASI } from 'node:wasi';
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The avc.wasm ABI version this package implements (wasm/ABI.md). */
export const ABI_VERSION = 3;

/** Name of the persistent state file under AVC_STATE_DIR (same as the native driver's). */
export const STATE_FILE = 'agent-state.json';

/** Result codes of the avc.wasm exports (wasm/ABI.md "Result codes"). */
export const ResultCode = Object.freeze({
  AVC_OK: 0,
  AVC_NONE: -1,
  AVC_FAULT: -6,
  AVC_BAD_INPUT: -13,
  AVC_DUPLICATE: -14,
  AVC_BAD_PARAMETER: -15,
  AVC_UNSUPPORTED: -18,
  AVC_NOT_INITIALIZED: -21,
  AVC_NOT_REGISTERED: -25,
});

const codeNames = new Map(Object.entries(ResultCode).map(([k, v]) => [v, k]));

/**
 * Failures of the firmware imports (wasm/ABI.md "Firmware imports"), the
 * names and values of libavc's avc_fw_error_t: each but AVC_FW_ERR_OTHER
 * names Update Result -value. A firmware handler method picks one by
 * throwing an error whose `code` is its name.
 */
export const FirmwareCode = Object.freeze({
  AVC_FW_ERR_OTHER: -1,
  AVC_FW_ERR_NOT_ENOUGH_SPACE: -2,
  AVC_FW_ERR_OUT_OF_MEMORY: -3,
  AVC_FW_ERR_INTEGRITY_FAILURE: -5,
  AVC_FW_ERR_UNSUPPORTED_PACKAGE_TYPE: -6,
  AVC_FW_ERR_DEFERRED: -11,
});

// The firmware handler methods a `firmware` option must have (sync is
// optional).
const FIRMWARE_METHODS = ['open', 'write', 'finish', 'reset', 'upgrade', 'booted'];

/** Configuration names every avc embedding understands. */
export const CONFIG_NAMES = Object.freeze([
  'AVC_SERVER_URI', 'AVC_ENDPOINT', 'AVC_LIFETIME', 'AVC_STATE_DIR',
  'AVC_LOG_LEVEL', 'AVC_PSK_IDENTITY', 'AVC_PSK_KEY', 'AVC_BOOTSTRAP_URI',
  'AVC_FW_VERSION', 'AVC_FW_INSTALL_CMD', 'AVC_FW_TRUSTED_KEYS', 'AVC_FW_REQUIRE_SIGNATURE',
]);

// Events are at least this long, so avc_poll_event results <= -MIN_EVENT_LEN
// are sizes and (-MIN_EVENT_LEN, 0) are result codes.
const MIN_EVENT_LEN = 32;
const DEREGISTER_TIMEOUT_MS = 10_000;
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
const MAX_TRAPS = 3;
const TRAP_WINDOW_MS = 60_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * An avc failure. `code` is a string: a result code name of the module
 * ('AVC_DUPLICATE', 'AVC_NOT_REGISTERED', 'AVC_BAD_INPUT', ...) or one of
 * the host's own: 'AVC_TRAP' (the instance died), 'AVC_NO_WASM',
 * 'AVC_ABI_MISMATCH', 'AVC_CLOSED', 'AVC_RESOLVE'.
 */
export class AvcError extends Error {
  constructor(code, message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AvcError';
    this.code = code;
    this.op = options.op;
    this.rc = options.rc;
  }
}

function rcError(op, rc, message) {
  const code = codeNames.get(rc) ?? `AVC_${rc}`;
  return new AvcError(code, message || `${op}: ${code}`, { op, rc });
}

/**
 * The avc_init keys of the DTLS timing (wasm/ABI.md "avc_init"), in
 * milliseconds, by their camelCase names; they are not AVC_* names.
 */
const MODULE_KEYS = Object.freeze({
  dtlsHandshakeTimeoutMs: 'dtls_handshake_timeout_ms',
  dtlsRetryDelayMs: 'dtls_retry_delay_ms',
  natTimeoutMs: 'nat_timeout_ms',
});
const moduleKeyNames = new Set(Object.values(MODULE_KEYS));

/**
 * Converts a configuration object to AVC_* names with string values.
 * Accepts AVC_* names and camelCase (serverUri → AVC_SERVER_URI); numbers
 * become strings, byte arrays (pskKey) hex; null and undefined are skipped.
 * The DTLS timing keys (dtlsHandshakeTimeoutMs or
 * dtls_handshake_timeout_ms, dtlsRetryDelayMs, natTimeoutMs) keep their
 * avc_init names.
 */
export function normalizeConfig(config = {}) {
  const out = {};
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined || value === null) continue;
    if (moduleKeyNames.has(key) || Object.hasOwn(MODULE_KEYS, key)) {
      out[MODULE_KEYS[key] ?? key] = String(value);
      continue;
    }
    const name = key.startsWith('AVC_')
      ? key
      : 'AVC_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
    out[name] = value instanceof Uint8Array ? Buffer.from(value).toString('hex') : String(value);
  }
  return out;
}

/**
 * Converts custom object definitions (OMA LwM2M registry XML documents, as
 * strings or UTF-8 bytes) to the strings of the avc_init "objects_xml" key.
 */
function normalizeObjects(objects) {
  if (objects === undefined || objects === null) return [];
  if (!Array.isArray(objects)) throw new TypeError('objects must be an array of OMA registry XML documents (strings or Uint8Array)');
  return objects.map((doc, i) => {
    if (typeof doc === 'string') return doc;
    if (doc instanceof Uint8Array) return decoder.decode(doc);
    throw new TypeError(`objects[${i}] must be a string or a Uint8Array, not ${typeof doc}`);
  });
}

/**
 * The avc_command form of a set: the value in its text/plain form
 * (LwM2M Core §7.4.1), which the engine converts to the resource's type;
 * null or undefined removes the resource instance.
 */
export function setCommand(path, value) {
  if (typeof path !== 'string') throw new TypeError(`path must be a string, not ${typeof path}`);
  if (value === null || value === undefined) return { cmd: 'set', path, type: 'none' };
  let text;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`LwM2M numbers are finite, not ${value}`);
    text = String(value);
  } else if (typeof value === 'bigint') text = value.toString();
  else if (typeof value === 'boolean') text = value ? 'true' : 'false';
  else if (value instanceof Uint8Array) text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'); // opaque
  else throw new TypeError(`value must be a string, number, bigint, boolean, Uint8Array or null, not ${typeof value}`);
  return { cmd: 'set', path, value: text };
}

/** Checks a `firmware` option: null/undefined, or a handler object. */
function checkFirmware(firmware) {
  if (firmware === undefined || firmware === null) return null;
  if (typeof firmware !== 'object' && typeof firmware !== 'function') {
    throw new TypeError('firmware must be a handler object with open, write, finish, reset, upgrade and booted methods');
  }
  for (const name of FIRMWARE_METHODS) {
    if (typeof firmware[name] !== 'function') throw new TypeError(`firmware.${name} must be a function`);
  }
  for (const name of ['sync', 'getName', 'getVersion', 'getCoapTxParams']) {
    if (firmware[name] !== undefined && typeof firmware[name] !== 'function') throw new TypeError(`firmware.${name} must be a function`);
  }
  return firmware;
}

// firmwareResult is the import result for what a handler method threw: the
// FirmwareCode its `code` names (ENOSPC and ENOMEM from node:fs count as
// AVC_FW_ERR_NOT_ENOUGH_SPACE and AVC_FW_ERR_OUT_OF_MEMORY), else
// AVC_FW_ERR_OTHER, which takes the call's default Update Result.
function firmwareResult(err) {
  const code = err?.code;
  if (code === 'ENOSPC') return FirmwareCode.AVC_FW_ERR_NOT_ENOUGH_SPACE;
  if (code === 'ENOMEM') return FirmwareCode.AVC_FW_ERR_OUT_OF_MEMORY;
  return typeof code === 'string' && Object.hasOwn(FirmwareCode, code) ? FirmwareCode[code] : FirmwareCode.AVC_FW_ERR_OTHER;
}

// callFirmware runs a handler method for an import: 0, or the result of
// what it threw. Handlers are synchronous (imports cannot wait): a
// returned promise is a failure.
function callFirmware(fn) {
  try {
    const r = fn();
    if (r && typeof r.then === 'function') {
      r.then(null, () => {});
      return FirmwareCode.AVC_FW_ERR_OTHER;
    }
    return 0;
  } catch (err) {
    return firmwareResult(err);
  }
}

/** Returns the AVC_* variables set (non-empty) in env. */
export function configFromEnv(env = process.env) {
  const out = {};
  for (const name of CONFIG_NAMES) {
    if (env[name]) out[name] = env[name];
  }
  return out;
}

async function loadWasm(wasm) {
  if (wasm instanceof WebAssembly.Module) return wasm;
  let bytes = wasm;
  if (wasm === undefined) wasm = process.env.AVC_WASM ?? new URL('./avc.wasm', import.meta.url);
  if (typeof wasm === 'string' || wasm instanceof URL) {
    const file = wasm instanceof URL ? fileURLToPath(wasm) : path.resolve(wasm);
    try {
      bytes = await fs.promises.readFile(file);
    } catch (err) {
      throw new AvcError('AVC_NO_WASM', `avc.wasm not found at ${file} (build it with "make wasm", or set AVC_WASM): ${err.message}`, { cause: err });
    }
  }
  try {
    return await WebAssembly.compile(bytes);
  } catch (err) {
    throw new AvcError('AVC_NO_WASM', `cannot compile avc.wasm: ${err.message}`, { cause: err });
  }
}

function levelMethod(level) {
  if (level < 0) return 'debug';
  if (level < 4) return 'info';
  if (level < 8) return 'warn';
  return 'error';
}

/**
 * One instance of avc.wasm with its raw exports as methods. It does no I/O:
 * the imports go to the functions given to create(). Methods throw AvcError
 * on failure; after a trap every method throws AvcError 'AVC_TRAP'.
 */
export class Module {
  #exports;
  #imports;
  #in = { ptr: 0, size: 0 };
  #out = { ptr: 0, size: 0 };
  #dead = null;

  constructor(instance, imports) {
    // A copy: the instance's export object is frozen, and tests replace
    // entries to simulate traps.
    this.#exports = { ...instance.exports };
    this.#imports = imports;
  }

  /**
   * Instantiates avc.wasm and checks its ABI version.
   * @param {object} options
   * @param {string|URL|Uint8Array|ArrayBuffer|WebAssembly.Module} [options.wasm]
   * @param {(peer: string, data: Uint8Array) => void} [options.sockSend]
   * @param {(key: string, data: Uint8Array) => void} [options.storageWrite]
   * @param {(level: number, record: object) => void} [options.log]
   * @param {object} [options.firmware] firmware handler (see Agent.create)
   */
  static async create(options = {}) {
    const compiled = await loadWasm(options.wasm);
    return Module.instantiate(compiled, options);
  }

  /** Like create() with an already compiled WebAssembly.Module. */
  static async instantiate(compiled, options = {}) {
    return Module.instantiateSync(compiled, options);
  }

  /**
   * Like instantiate(), synchronously (Node compiles nothing here: the
   * module is already compiled, so this is cheap).
   */
  static instantiateSync(compiled, options = {}) {
    const firmware = checkFirmware(options.firmware);
    const imports = { sockSend: options.sockSend, storageWrite: options.storageWrite, log: options.log, firmware };
    const wasi = new WASI({ version: 'preview1', args: [], env: {}, returnOnExit: true });
    let mod;
    const view = (ptr, len) => new Uint8Array(mod.#exports.memory.buffer, ptr, len);
    const text = (ptr, len) => decoder.decode(view(ptr, len));
    // Without a handler the firmware imports are stubs; the module only
    // calls them when init() enabled firmware, which needs a handler.
    const fw = (fn) => (firmware ? callFirmware(fn) : FirmwareCode.AVC_FW_ERR_OTHER);
    // fw_get_name / fw_get_version: at most outCap bytes of the text, and
    // its full length (0: none, also when the method is missing or throws).
    const fwText = (get, outPtr, outCap) => {
      try {
        const v = get();
        if (v === null || v === undefined || v === '' || typeof v !== 'string') return 0;
        const b = encoder.encode(v);
        view(outPtr, Math.min(b.length, outCap)).set(b.subarray(0, outCap));
        return b.length;
      } catch {
        return 0;
      }
    };
    const avcHost = {
      // Imports never throw: failures become result codes (wasm/ABI.md).
      sock_send(peerPtr, peerLen, dataPtr, dataLen) {
        try {
          if (!imports.sockSend) return ResultCode.AVC_UNSUPPORTED;
          imports.sockSend(decoder.decode(view(peerPtr, peerLen)), view(dataPtr, dataLen).slice());
          return 0;
        } catch {
          return ResultCode.AVC_FAULT;
        }
      },
      log(level, ptr, len) {
        try {
          if (!imports.log) return;
          const text = decoder.decode(view(ptr, len));
          let record;
          try {
            record = JSON.parse(text);
          } catch {
            record = { msg: text };
          }
          imports.log(level, record);
        } catch {
          // a logger must not break the module
        }
      },
      storage_write(keyPtr, keyLen, dataPtr, dataLen) {
        try {
          if (imports.storageWrite) imports.storageWrite(decoder.decode(view(keyPtr, keyLen)), view(dataPtr, dataLen).slice());
          return 0;
        } catch {
          return ResultCode.AVC_FAULT;
        }
      },
      // The firmware imports (wasm/ABI.md "Firmware imports").
      fw_open(uriPtr, uriLen, offset) {
        return fw(() => firmware.open(text(uriPtr, uriLen), Number(offset)));
      },
      fw_write(dataPtr, dataLen) {
        return fw(() => firmware.write(view(dataPtr, dataLen).slice()));
      },
      fw_finish() {
        return fw(() => firmware.finish());
      },
      fw_reset() {
        fw(() => firmware.reset());
      },
      fw_sync() {
        return fw(() => firmware.sync?.());
      },
      fw_upgrade(pkgPtr, pkgLen) {
        return fw(() => firmware.upgrade(JSON.parse(text(pkgPtr, pkgLen))));
      },
      // The hook imports (ABI version 3): optional handler methods.
      fw_get_name(outPtr, outCap) {
        return fwText(() => firmware?.getName?.(), outPtr, outCap);
      },
      fw_get_version(outPtr, outCap) {
        return fwText(() => firmware?.getVersion?.(), outPtr, outCap);
      },
      fw_get_coap_tx_params(uriPtr, uriLen, outPtr) {
        try {
          if (!firmware?.getCoapTxParams) return 1;
          const p = firmware.getCoapTxParams(text(uriPtr, uriLen));
          if (p === null || p === undefined) return 1;
          if (typeof p.then === 'function') {
            p.then(null, () => {});
            return 1;
          }
          const v = new DataView(mod.#exports.memory.buffer, outPtr, 16);
          if (p.ackTimeout !== undefined) v.setUint32(0, Math.max(0, Math.min(Math.round(p.ackTimeout), 0xffffffff)), true);
          if (p.maxRetransmit !== undefined) v.setUint32(4, Math.max(0, Math.min(Math.trunc(p.maxRetransmit), 0xffffffff)), true);
          if (p.ackRandomFactor !== undefined) v.setFloat64(8, Number(p.ackRandomFactor), true);
          return 0;
        } catch {
          return 1;
        }
      },
      fw_booted(pkgPtr, pkgLen, outPtr, outCap) {
        let installed = false;
        const rc = fw(() => {
          const r = firmware.booted(JSON.parse(text(pkgPtr, pkgLen)));
          if (r && typeof r.then === 'function') {
            r.then(null, () => {});
            throw new Error('firmware.booted must be synchronous');
          }
          const running = encoder.encode(String(r?.running ?? '')).subarray(0, outCap);
          view(outPtr, running.length).set(running);
          installed = r?.installed === true;
        });
        return rc === 0 && installed ? 1 : rc;
      },
    };
    const instance = new WebAssembly.Instance(compiled, {
      wasi_snapshot_preview1: wasi.wasiImport,
      avc_host: avcHost,
    });
    mod = new Module(instance, imports);
    wasi.initialize(instance);
    const v = mod.abiVersion();
    if (v !== ABI_VERSION) {
      throw new AvcError('AVC_ABI_MISMATCH', `avc.wasm has ABI version ${v}, this package implements ${ABI_VERSION}`);
    }
    return mod;
  }

  /**
   * The raw exports (avc_init, avc_step, memory, ...), for tests and
   * diagnostics. Entries may be replaced (to simulate a trap).
   */
  get exports() {
    return this.#exports;
  }

  /** The AvcError that ended this instance, or null while it is usable. */
  get trapped() {
    return this.#dead;
  }

  #call(name, ...args) {
    if (this.#dead) throw this.#dead;
    try {
      return this.#exports[name](...args);
    } catch (err) {
      this.#dead = new AvcError('AVC_TRAP', `${name} trapped: ${err.message}`, { op: name, cause: err });
      throw this.#dead;
    }
  }

  #ensure(buf, n) {
    if (buf.ptr !== 0 && buf.size >= n) return;
    let size = 1024;
    while (size < n) size *= 2;
    const ptr = this.#call('avc_buf_alloc', size);
    if (ptr === 0) throw new AvcError('AVC_BAD_PARAMETER', `avc_buf_alloc(${size}) failed`);
    if (buf.ptr !== 0) this.#call('avc_buf_free', buf.ptr);
    buf.ptr = ptr;
    buf.size = size;
  }

  // put copies the parts into the input buffer and returns their addresses.
  #put(...parts) {
    const total = parts.reduce((n, p) => n + p.length, 0);
    this.#ensure(this.#in, total);
    const ptrs = [];
    let off = this.#in.ptr;
    for (const p of parts) {
      new Uint8Array(this.#exports.memory.buffer, off, p.length).set(p);
      ptrs.push(off);
      off += p.length;
    }
    return ptrs;
  }

  #check(op, rc) {
    if (rc !== 0) throw rcError(op, rc, this.lastError());
  }

  /** avc_abi_version(). */
  abiVersion() {
    return this.#call('avc_abi_version');
  }

  /**
   * avc_init: creates the engine; with a firmware handler (create's
   * `firmware` option) it enables firmware update ("firmware": true).
   * @param {object} config AVC_* names (or camelCase) and values
   * @param {Uint8Array} [state] the data of the last "store" event
   * @param {Array<string|Uint8Array>} [objects] custom object definitions,
   *   OMA registry XML documents (the "objects_xml" key of wasm/ABI.md)
   * @param {{control?: boolean}} [options] control: update control, the
   *   le_avc personality (the "control" key of wasm/ABI.md)
   */
  init(config, state = new Uint8Array(0), objects = [], { control = false } = {}) {
    const json = normalizeConfig(config);
    const docs = normalizeObjects(objects);
    if (docs.length > 0) json.objects_xml = docs;
    if (this.#imports.firmware) json.firmware = true;
    if (control) json.control = true;
    const cfg = encoder.encode(JSON.stringify(json));
    const [c, s] = this.#put(cfg, state);
    this.#check('avc_init', this.#call('avc_init', c, cfg.length, s, state.length));
  }

  /**
   * avc_command: applies a command ('start', 'stop', 'update', or an object
   * such as {cmd: 'start'} or {cmd: 'set', path: '/3/0/9', value: '50'}).
   */
  command(cmd, nowMs = Date.now()) {
    const b = encoder.encode(JSON.stringify(typeof cmd === 'string' ? { cmd } : cmd));
    const [p] = this.#put(b);
    this.#check('avc_command', this.#call('avc_command', p, b.length, BigInt(Math.trunc(nowMs))));
  }

  /** avc_on_datagram: feeds one datagram received from peer ("host:port"). */
  onDatagram(peer, data, nowMs = Date.now()) {
    const pb = encoder.encode(peer);
    const [p, d] = this.#put(pb, data);
    this.#check('avc_on_datagram', this.#call('avc_on_datagram', p, pb.length, d, data.length, BigInt(Math.trunc(nowMs))));
  }

  /**
   * avc_step: runs due timers; returns the next deadline in ms since the
   * epoch, or null when no timer is pending.
   */
  step(nowMs = Date.now()) {
    const r = Number(this.#call('avc_step', BigInt(Math.trunc(nowMs))));
    if (r >= 0) return r;
    if (r === ResultCode.AVC_NONE) return null;
    throw rcError('avc_step', r, this.lastError());
  }

  /** avc_poll_event: the next event's JSON text, or null when none is pending. */
  pollEventJSON() {
    this.#ensure(this.#out, 1024);
    for (;;) {
      const n = this.#call('avc_poll_event', this.#out.ptr, this.#out.size);
      if (n === 0) return null;
      if (n > 0) return decoder.decode(new Uint8Array(this.#exports.memory.buffer, this.#out.ptr, n)).trimEnd();
      if (n <= -MIN_EVENT_LEN) {
        this.#ensure(this.#out, -n);
        continue;
      }
      throw rcError('avc_poll_event', n, this.lastError());
    }
  }

  /**
   * The next event decoded, or null. `data` (state or Execute arguments) is
   * a Uint8Array.
   */
  pollEvent() {
    const text = this.pollEventJSON();
    if (text === null) return null;
    const ev = JSON.parse(text);
    if (typeof ev.data === 'string') ev.data = new Uint8Array(Buffer.from(ev.data, 'base64'));
    return ev;
  }

  /**
   * avc_control: the update-control snapshot (agent.ControlState's JSON
   * form, wasm/ABI.md): agreements, timers, what is pending, the last
   * error. Needs init(..., {control: true}).
   */
  control() {
    if (typeof this.#exports.avc_control !== 'function') {
      throw new AvcError('AVC_UNSUPPORTED', 'this avc.wasm has no avc_control (an older module)', { op: 'avc_control' });
    }
    this.#ensure(this.#out, 1024);
    for (;;) {
      const n = this.#call('avc_control', this.#out.ptr, this.#out.size);
      if (n > 0) return JSON.parse(decoder.decode(new Uint8Array(this.#exports.memory.buffer, this.#out.ptr, n)));
      if (n <= -MIN_EVENT_LEN) {
        this.#ensure(this.#out, -n);
        continue;
      }
      throw rcError('avc_control', n, this.lastError());
    }
  }

  /** avc_last_error: the message of the last failed call ('' if none). */
  lastError() {
    this.#ensure(this.#out, 1024);
    for (;;) {
      const n = this.#call('avc_last_error', this.#out.ptr, this.#out.size);
      if (n < 0) return '';
      if (n > this.#out.size) {
        this.#ensure(this.#out, n);
        continue;
      }
      return decoder.decode(new Uint8Array(this.#exports.memory.buffer, this.#out.ptr, n));
    }
  }
}

function splitPeer(peer) {
  const i = peer.lastIndexOf(':');
  let host = peer.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(peer.slice(i + 1)) };
}

function peerKey(address, port) {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

// serverPeer: the "host:port" key the module sends the server's datagrams
// to (for coaps, the DTLS records the module makes).
function serverPeer(uri) {
  let u;
  try {
    u = new URL(uri);
  } catch {
    throw new AvcError('AVC_BAD_INPUT', `AVC_SERVER_URI=${JSON.stringify(uri)}: want coap://host[:port] or coaps://host[:port]`);
  }
  return `${u.hostname}:${u.port || (u.protocol === 'coaps:' ? '5684' : '5683')}`;
}

// isSecure: whether the module carries a DTLS session to the server.
function isSecure(uri) {
  return typeof uri === 'string' && uri.trim().toLowerCase().startsWith('coaps:');
}

function writeFileAtomic(file, data) {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.tmp${process.pid}-${Math.random().toString(36).slice(2)}`);
  let fd;
  try {
    fd = fs.openSync(tmp, 'w', 0o600);
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // directories cannot be synced on every platform
  }
}

/**
 * An LwM2M agent: avc.wasm driven by a UDP socket and one timer.
 *
 * Events: 'event' (every event), and one per kind: 'registered', 'updated',
 * 'deregistered', 'registration_failed', 'read', 'write', 'execute',
 * 'reboot', 'factory_reset', 'notify', 'sent', 'send_failed', 'sleep',
 * 'wake', 'create', 'delete', 'store', 'firmware' (with the `firmware`
 * option), 'restart' (the module restarted its engine after a firmware
 * install). 'error' (an AvcError) when the socket fails or the module
 * keeps trapping; the agent is closed then.
 */
export class Agent extends EventEmitter {
  #compiled;
  #config;
  #objects;
  #firmware;
  #values = new Map(); // path -> set command, given back to a module re-instantiated after a trap
  #logger;
  #stateDir;
  #state;
  #module = null;
  #socket = null;
  #family = 4;
  #timer = null;
  #addrs = new Map(); // peer key -> {address, port}
  #peers = new Map(); // "address:port" -> peer key
  #started = false;
  #stopping = false;
  #traps = [];

  constructor(compiled, config, logger, objects = [], firmware = null) {
    super();
    this.#compiled = compiled;
    this.#config = config;
    this.#objects = objects;
    this.#firmware = firmware;
    this.#logger = logger;
    this.#stateDir = config.AVC_STATE_DIR || '';
    this.#state = new Uint8Array(0);
  }

  /**
   * Loads and instantiates avc.wasm and initializes it with config; loads
   * the stored state from AVC_STATE_DIR. Starts nothing.
   * @param {object} options
   * @param {string|URL|Uint8Array|ArrayBuffer|WebAssembly.Module} [options.wasm] default: $AVC_WASM, else avc.wasm next to this file
   * @param {object} options.config AVC_* names or camelCase (serverUri, endpoint, lifetime, stateDir, logLevel, ...)
   * @param {Array<string|Uint8Array>} [options.objects] custom objects: OMA LwM2M registry XML documents
   * @param {{debug?: Function, info?: Function, warn?: Function, error?: Function}} [options.logger] e.g. console
   * @param {object} [options.firmware] firmware update (Object 5): a handler
   *   object with synchronous methods open(uri, offset), write(bytes),
   *   finish(), reset(), upgrade(pkg), booted(pkg) -> {running, installed}
   *   and optionally sync(); see index.d.ts FirmwareHandler
   * @returns {Promise<Agent>}
   */
  static async create(options = {}) {
    const objects = normalizeObjects(options.objects);
    const firmware = checkFirmware(options.firmware);
    const compiled = await loadWasm(options.wasm);
    const agent = new Agent(compiled, normalizeConfig(options.config), options.logger, objects, firmware);
    if (agent.#stateDir) {
      try {
        agent.#state = new Uint8Array(fs.readFileSync(path.join(agent.#stateDir, STATE_FILE)));
      } catch (err) {
        if (err.code !== 'ENOENT') throw new AvcError('AVC_FAULT', `read state: ${err.message}`, { cause: err });
      }
    }
    agent.#module = agent.#newModule();
    return agent;
  }

  /** The current module instance (it changes after a trap). */
  get module() {
    return this.#module;
  }

  /** Whether start() was called and the agent has not stopped since. */
  get started() {
    return this.#started;
  }

  // newModule instantiates and initializes a module from the last state.
  #newModule() {
    const mod = Module.instantiateSync(this.#compiled, {
      sockSend: (peer, data) => this.#send(peer, data),
      storageWrite: (key, data) => this.#store(key, data),
      log: (level, record) => this.#log(level, record),
      firmware: this.#firmware,
    });
    mod.init(this.#config, this.#state, this.#objects);
    for (const cmd of this.#values.values()) {
      try {
        mod.command(cmd);
      } catch (err) {
        if (err.code === 'AVC_TRAP') throw err;
        this.#log(4, { msg: 'restore value', path: cmd.path, err: err.message });
      }
    }
    return mod;
  }

  #log(level, record) {
    const method = levelMethod(level);
    const fn = this.#logger?.[method];
    if (typeof fn !== 'function') return;
    const { msg, ...attrs } = record;
    fn.call(this.#logger, msg, attrs);
  }

  #send(peer, data) {
    if (!this.#socket) throw new Error('not started');
    let to = this.#addrs.get(peer);
    if (!to) {
      const { host, port } = splitPeer(peer);
      if (!net.isIP(host)) {
        // Resolve in the background; CoAP retransmits meanwhile.
        this.#resolve(peer).catch(() => {});
        throw new Error(`resolving ${peer}`);
      }
      to = { address: host, port };
      this.#remember(peer, to);
    }
    this.#socket.send(data, to.port, to.address);
  }

  #store(key, data) {
    if (key !== 'state') throw new Error(`unknown storage key ${key}`);
    this.#state = data;
    if (this.#stateDir) writeFileAtomic(path.join(this.#stateDir, STATE_FILE), data);
  }

  #remember(peer, to) {
    this.#addrs.set(peer, to);
    this.#peers.set(peerKey(to.address, to.port), peer);
  }

  async #resolve(peer) {
    const { host, port } = splitPeer(peer);
    const { address, family } = net.isIP(host) ? { address: host, family: net.isIP(host) } : await dns.lookup(host);
    this.#remember(peer, { address, port });
    return family;
  }

  /**
   * Opens the UDP socket and starts a session: the module registers (and
   * re-registers after failures) until stop(). Resolves once the Register
   * is sent; watch 'registered' / 'registration_failed'.
   */
  async start() {
    if (this.#started) throw new AvcError('AVC_DUPLICATE', 'already started');
    if (!this.#module) throw new AvcError('AVC_CLOSED', 'agent closed');
    let family;
    // Bootstrap only: the bootstrap server's address picks the socket's
    // family; the module then names the DM server it was given.
    const uri = this.#config.AVC_SERVER_URI || this.#config.AVC_BOOTSTRAP_URI;
    try {
      family = await this.#resolve(serverPeer(uri));
    } catch (err) {
      if (err instanceof AvcError) throw err;
      throw new AvcError('AVC_RESOLVE', `resolve ${uri}: ${err.message}`, { cause: err });
    }
    const socket = this.#openSocket(family);
    await new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (err) => this.#fatal(new AvcError('AVC_FAULT', `socket: ${err.message}`, { cause: err })));
    this.#family = family;
    this.#socket = socket;
    this.#started = true;
    this.#stopping = false;
    this.#apply(() => this.#module.command('start'));
  }

  /**
   * Sends a Registration Update now. Throws AvcError 'AVC_NOT_REGISTERED'
   * when no registration is up.
   */
  update() {
    this.command('update');
  }

  /**
   * Sets a value the device keeps up to date: the battery level ('/3/0/9'),
   * an error code ('/3/0/11/1'), a location ('/6/0/0'), a resource of an
   * object defined with `objects`. Synchronous; works before start(),
   * while started and after stop() (until close()). The value is
   * stringified to its text/plain form and converted by the engine to the
   * resource's type: strings as they are, numbers and bigints in decimal,
   * booleans 'true'/'false', a Uint8Array as base64 (opaque); null or
   * undefined removes the resource instance. The agent keeps the last value
   * of every path and sets them again in a module it re-instantiates after
   * a trap.
   * @throws AvcError 'AVC_BAD_INPUT' (the engine refuses the path or the value), 'AVC_CLOSED'
   */
  set(path, value) {
    const cmd = setCommand(path, value);
    if (!this.#module) throw new AvcError('AVC_CLOSED', 'agent closed');
    this.#apply(() => {
      this.#module.command(cmd);
      // Remembered before the step that follows, which may trap. The last
      // value set is given back last, however its path is spelled.
      this.#values.delete(cmd.path);
      this.#values.set(cmd.path, cmd);
    });
  }

  /**
   * Reports the current values at paths to the server with the LwM2M Send
   * operation (POST /dp, SenML-CBOR). Needs start(): while not registered
   * yet, the values are read now, queued and sent after the registration.
   * The server's answer arrives as a 'sent' event (path: the first path) or
   * a 'send_failed' event.
   * @param {string[]} paths LwM2M paths of objects, instances or resources, e.g. ['/3/0/9']
   * @throws AvcError 'AVC_BAD_INPUT' (no paths, a malformed path, one the engine cannot read), 'AVC_CLOSED' (not started)
   * @throws TypeError when paths is not an array of strings
   */
  send(paths) {
    if (!Array.isArray(paths) || paths.some((p) => typeof p !== 'string')) {
      throw new TypeError('paths must be an array of strings');
    }
    if (!this.#socket) throw new AvcError('AVC_CLOSED', 'agent not started');
    this.#apply(() => this.#module.command({ cmd: 'send', paths: [...paths] }));
  }

  /**
   * Applies a command ('start', 'stop', 'update') to the running agent.
   * Prefer start(), stop() and update().
   */
  command(name) {
    if (!this.#socket) throw new AvcError('AVC_CLOSED', 'agent not started');
    this.#apply(() => this.#module.command(name));
  }

  /**
   * De-registers and closes the socket. Resolves with the 'deregistered'
   * event, or null when none arrived within timeoutMs (default 10 s) or the
   * agent was not started.
   */
  async stop({ timeoutMs = DEREGISTER_TIMEOUT_MS } = {}) {
    if (!this.#started || !this.#socket) {
      this.#shutdown();
      return null;
    }
    this.#stopping = true;
    let finish;
    const done = new Promise((resolve) => {
      finish = resolve;
    });
    const onEvent = (ev) => finish(ev);
    this.once('deregistered', onEvent);
    const timer = setTimeout(() => {
      this.#log(4, { msg: 'de-registration timed out', server_uri: this.#config.AVC_SERVER_URI });
      finish(null);
    }, timeoutMs);
    try {
      this.#apply(() => this.#module.command('stop'));
    } catch (err) {
      if (err.code !== 'AVC_DUPLICATE') {
        clearTimeout(timer);
        this.off('deregistered', onEvent);
        this.#shutdown();
        throw err;
      }
      finish(null); // already stopped
    }
    const ev = await done;
    clearTimeout(timer);
    this.off('deregistered', onEvent);
    this.#shutdown();
    return ev;
  }

  /** Closes the socket and the module at once, without de-registering. */
  close() {
    this.#shutdown();
    this.#module = null;
  }

  #openSocket(family) {
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    socket.on('message', (msg, rinfo) => {
      if (this.#socket === socket) this.#receive(msg, rinfo);
    });
    return socket;
  }

  // rebind gives a fresh module a new socket when it carries a DTLS
  // session (coaps): the server may still hold the dead instance's session
  // for the old port and would take the new ClientHello from there for a
  // replay in it. The new socket binds on its first send.
  #rebind() {
    if (!this.#socket || !isSecure(this.#config.AVC_SERVER_URI)) return;
    const old = this.#socket;
    const socket = this.#openSocket(this.#family);
    socket.on('error', (err) => this.#fatal(new AvcError('AVC_FAULT', `socket: ${err.message}`, { cause: err })));
    this.#socket = socket;
    old.close();
  }

  #shutdown() {
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#socket?.close();
    this.#socket = null;
    this.#started = false;
  }

  #receive(msg, rinfo) {
    if (!this.#module) return;
    const key = peerKey(rinfo.address, rinfo.port);
    const peer = this.#peers.get(key) ?? key;
    try {
      this.#apply(() => this.#module.onDatagram(peer, msg));
    } catch (err) {
      if (err.code === 'AVC_TRAP') this.#fatal(err);
      else this.#log(4, { msg: 'datagram', err: err.message });
    }
  }

  // apply runs one module call, then steps, re-arms the timer and emits the
  // events. After a trap it re-instantiates the module from the last stored
  // state, starts again (unless stopping) and retries the call once.
  #apply(fn) {
    let result;
    try {
      result = fn();
    } catch (err) {
      if (err.code !== 'AVC_TRAP') {
        this.#pump();
        throw err;
      }
      try {
        this.#recover(err);
      } catch (fatal) {
        this.#fatal(fatal);
        throw fatal;
      }
      result = fn();
    }
    this.#pump();
    return result;
  }

  #pump() {
    if (!this.#module) return;
    let next = null;
    try {
      next = this.#module.step(Date.now());
      for (let ev = this.#module.pollEvent(); ev !== null; ev = this.#module.pollEvent()) {
        this.emit('event', ev);
        this.emit(ev.kind, ev);
      }
    } catch (err) {
      if (err.code === 'AVC_TRAP') {
        try {
          this.#recover(err);
        } catch (fatal) {
          this.#fatal(fatal);
          return;
        }
        this.#pump();
        return;
      }
      this.#log(4, { msg: 'step', err: err.message });
    }
    clearTimeout(this.#timer);
    this.#timer = null;
    if (next !== null && this.#socket) {
      this.#timer = setTimeout(() => this.#pump(), Math.min(Math.max(0, next - Date.now()), MAX_TIMEOUT_MS));
    }
  }

  #recover(trap) {
    const now = Date.now();
    this.#traps = this.#traps.filter((t) => now - t < TRAP_WINDOW_MS);
    this.#traps.push(now);
    this.#log(8, { msg: 'module trapped', err: trap.message, traps: this.#traps.length });
    if (this.#stopping || this.#traps.length > MAX_TRAPS) throw trap;
    const mod = this.#newModule();
    this.#module = mod;
    this.#rebind();
    if (this.#started) mod.command('start');
  }

  #fatal(err) {
    this.#shutdown();
    this.#module = null;
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.#log(8, { msg: 'agent closed', err: err.message });
  }
}
