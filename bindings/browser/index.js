// avc for browsers: runs avc.wasm (the WebAssembly build of the avc LwM2M
// agent) with @bjorn3/browser_wasi_shim, its datagrams carried over a
// WebSocket to `avc relay`, which gives the session a UDP socket pinned to
// the LwM2M server. One binary WebSocket message is one datagram. The
// module owns the protocol, DTLS included; this file only moves bytes,
// time and events across the ABI of wasm/ABI.md, like the Node binding,
// whose host-independent half (../node/core.js) it shares.

import { WASI, OpenFile, File, ConsoleStdout } from '@bjorn3/browser_wasi_shim';
import {
  ABI_VERSION,
  AvcError,
  CONFIG_NAMES,
  FirmwareCode,
  Module as CoreModule,
  ResultCode,
  checkFirmware,
  checkOnRead,
  fromBase64,
  levelMethod,
  normalizeConfig,
  normalizeObjects,
  serveReadRequest,
  serverPeer,
  setCommand,
  toBase64,
} from '../node/core.js';

export { ABI_VERSION, AvcError, CONFIG_NAMES, FirmwareCode, ResultCode, normalizeConfig, setCommand };

const DEREGISTER_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 10_000;
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
const MAX_TRAPS = 3;
const TRAP_WINDOW_MS = 60_000;
const ERRNO_SUCCESS = 0;
const ERRNO_NOSYS = 52;
const RANDOM_CHUNK = 65536; // crypto.getRandomValues' limit per call

/**
 * A WASI preview1 implementation for avc.wasm: browser_wasi_shim's, with
 * stdout and stderr going to console (the module logs through the log
 * import; these carry only Go runtime messages), and random_get taken from
 * crypto.getRandomValues only. The shim falls back to Math.random when
 * crypto is missing; DTLS keys must never come from there, so this
 * random_get fails instead (and create() refuses to start without crypto).
 */
export function browserWasi() {
  const wasi = new WASI([], [], [
    new OpenFile(new File([])),
    ConsoleStdout.lineBuffered((line) => console.log(`avc.wasm: ${line}`)),
    ConsoleStdout.lineBuffered((line) => console.error(`avc.wasm: ${line}`)),
  ], { debug: false }); // the shim traces every call to console unless told not to
  const randomGet = (ptr, len) => {
    if (typeof globalThis.crypto?.getRandomValues !== 'function') return ERRNO_NOSYS;
    const buf = new Uint8Array(wasi.inst.exports.memory.buffer, ptr, len);
    for (let i = 0; i < len; i += RANDOM_CHUNK) crypto.getRandomValues(buf.subarray(i, i + RANDOM_CHUNK));
    return ERRNO_SUCCESS;
  };
  wasi.wasiImport = { ...wasi.wasiImport, random_get: randomGet };
  return wasi;
}

async function loadWasm(wasm) {
  if (wasm instanceof WebAssembly.Module) return wasm;
  if (wasm === undefined) wasm = new URL('./avc.wasm', import.meta.url);
  let source = wasm;
  try {
    if (typeof wasm === 'string' || wasm instanceof URL) source = await fetch(wasm);
    if (source instanceof Response) {
      if (!source.ok) throw new Error(`HTTP ${source.status} for ${source.url}`);
      source = await source.arrayBuffer();
    }
  } catch (err) {
    throw new AvcError('AVC_NO_WASM', `avc.wasm not loaded from ${wasm} (build it with "make wasm"): ${err.message}`, { cause: err });
  }
  try {
    return await WebAssembly.compile(source);
  } catch (err) {
    throw new AvcError('AVC_NO_WASM', `cannot compile avc.wasm: ${err.message}`, { cause: err });
  }
}

/**
 * One instance of avc.wasm with its raw exports as methods (core.js's
 * Module) on browser_wasi_shim. It does no I/O: the imports go to the
 * functions given to create().
 */
export class Module extends CoreModule {
  /**
   * Fetches, compiles and instantiates avc.wasm and checks its ABI version.
   * @param {object} options as core.js's Module.instantiate, plus
   * @param {string|URL|Response|ArrayBuffer|Uint8Array|WebAssembly.Module} [options.wasm]
   */
  static async create(options = {}) {
    return Module.instantiate(await loadWasm(options.wasm), options);
  }

  /** Instantiates a compiled avc.wasm (options.wasi defaults to browserWasi()). */
  static async instantiate(compiled, options = {}) {
    return super.instantiate(compiled, { ...options, wasi: options.wasi ?? browserWasi() });
  }
}

/**
 * Storage kept in memory only: the state lives as long as this object.
 * @returns {{load(): Uint8Array|null, save(data: Uint8Array): void}}
 */
export function memoryStorage() {
  let state = null;
  return {
    load: () => state,
    save: (data) => {
      state = data.slice();
    },
  };
}

/**
 * Storage in window.localStorage under key, base64-encoded. localStorage
 * is synchronous, so every store event is persisted before the import
 * returns.
 * @param {string} key
 * @param {Storage} [store] default: globalThis.localStorage
 */
export function localStorageStorage(key, store = globalThis.localStorage) {
  if (typeof key !== 'string' || key === '') throw new TypeError('key must be a non-empty string');
  if (!store) throw new AvcError('AVC_UNSUPPORTED', 'localStorage is not available');
  return {
    load: () => {
      const text = store.getItem(key);
      return text === null ? null : fromBase64(text);
    },
    save: (data) => store.setItem(key, toBase64(data)),
  };
}

/** A minimal event emitter (the browser has EventTarget, whose listeners get Event objects). */
class Emitter {
  #listeners = new Map();

  /** Calls fn(event) for every event of kind. */
  on(kind, fn) {
    if (!this.#listeners.has(kind)) this.#listeners.set(kind, new Set());
    this.#listeners.get(kind).add(fn);
    return this;
  }

  /** Removes a listener added with on() or once(). */
  off(kind, fn) {
    this.#listeners.get(kind)?.delete(fn);
    return this;
  }

  /** Calls fn(event) for the next event of kind only. */
  once(kind, fn) {
    const wrapped = (ev) => {
      this.off(kind, wrapped);
      fn(ev);
    };
    return this.on(kind, wrapped);
  }

  /** The number of listeners of kind. */
  listenerCount(kind) {
    return this.#listeners.get(kind)?.size ?? 0;
  }

  emit(kind, ev) {
    for (const fn of [...(this.#listeners.get(kind) ?? [])]) {
      try {
        fn(ev);
      } catch (err) {
        // a listener must not break the agent; report it like an uncaught error
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}

/**
 * An LwM2M agent in a browser: avc.wasm driven by a WebSocket to `avc
 * relay` and one timer.
 *
 * Events (on/once/off): 'event' (every event), and one per kind, as in the
 * Node binding: 'registered', 'updated', 'deregistered',
 * 'registration_failed', 'read', 'write', 'execute', 'store', ...; 'error'
 * (an AvcError) when the relay's WebSocket fails or closes while started,
 * or the module keeps trapping; the agent is stopped then.
 */
export class Agent extends Emitter {
  #compiled;
  #config;
  #objects;
  #firmware;
  #onRead;
  #relay;
  #storage;
  #logger;
  #peer;
  #state = new Uint8Array(0);
  #values = new Map(); // path -> set command, given back to a module re-instantiated after a trap
  #module = null;
  #ws = null;
  #timer = null;
  #started = false;
  #stopping = false;
  #traps = [];

  constructor(compiled, options) {
    super();
    this.#compiled = compiled;
    this.#config = options.config;
    this.#objects = options.objects;
    this.#firmware = options.firmware;
    this.#onRead = options.onRead;
    this.#relay = options.relay;
    this.#storage = options.storage;
    this.#logger = options.logger;
    this.#peer = serverPeer(options.config.AVC_SERVER_URI);
  }

  /**
   * Loads and instantiates avc.wasm, loads the stored state and initializes
   * the module. Starts nothing.
   * @param {object} options
   * @param {string|URL} options.relay the relay's WebSocket URL for the
   *   server of config.serverUri (e.g. ws://127.0.0.1:8090/coap)
   * @param {object} options.config AVC_* names or camelCase (serverUri,
   *   endpoint, lifetime, pskIdentity, pskKey, logLevel, ...);
   *   AVC_STATE_DIR has no meaning here (see storage)
   * @param {string|URL|Response|ArrayBuffer|Uint8Array|WebAssembly.Module} [options.wasm] default: avc.wasm next to this file
   * @param {{load(): Uint8Array|null|Promise<Uint8Array|null>, save(data: Uint8Array): void|Promise<void>}} [options.storage]
   *   where the module's state goes; default memoryStorage()
   * @param {Array<string|Uint8Array>} [options.objects] custom objects: OMA LwM2M registry XML documents
   * @param {object} [options.firmware] a firmware handler, as in the Node binding
   * @param {(path: string) => unknown} [options.onRead] read callback for the resources declared
   *   `onRead: true`, as in the Node binding: called (and awaited) with each path a server read
   *   covers; its result, unless undefined, is set() there, then the engine answers the server
   * @param {{debug?: Function, info?: Function, warn?: Function, error?: Function}} [options.logger] e.g. console
   * @returns {Promise<Agent>}
   */
  static async create(options = {}) {
    if (typeof globalThis.crypto?.getRandomValues !== 'function') {
      throw new AvcError('AVC_UNSUPPORTED', 'crypto.getRandomValues is not available (a secure context is not needed, but Web Crypto is)');
    }
    if (typeof globalThis.WebSocket !== 'function') throw new AvcError('AVC_UNSUPPORTED', 'WebSocket is not available');
    const relay = String(options.relay ?? '');
    if (!/^wss?:\/\//i.test(relay)) throw new TypeError('relay must be a ws:// or wss:// URL of `avc relay`');
    const config = normalizeConfig(options.config);
    if (!config.AVC_SERVER_URI) throw new AvcError('AVC_BAD_INPUT', 'config.serverUri is required (bootstrap is not supported in browsers yet)');
    normalizeObjects(options.objects); // type errors now, before loading the module
    const storage = options.storage ?? memoryStorage();
    if (typeof storage.load !== 'function' || typeof storage.save !== 'function') throw new TypeError('storage must have load() and save(data)');
    const agent = new Agent(await loadWasm(options.wasm), {
      config,
      objects: options.objects ?? [], // as declared: init finds the onRead resources among them
      firmware: checkFirmware(options.firmware),
      onRead: checkOnRead(options.onRead),
      relay,
      storage,
      logger: options.logger,
    });
    try {
      const state = await storage.load();
      if (state) agent.#state = new Uint8Array(state);
    } catch (err) {
      throw new AvcError('AVC_FAULT', `load state: ${err.message}`, { cause: err });
    }
    agent.#module = await agent.#newModule();
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

  async #newModule() {
    const mod = await Module.instantiate(this.#compiled, {
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
    const fn = this.#logger?.[levelMethod(level)];
    if (typeof fn !== 'function') return;
    const { msg, ...attrs } = record;
    fn.call(this.#logger, msg, attrs);
  }

  // send carries the module's datagrams to the server over the relay; the
  // relay reaches that one server only, so other peers are refused.
  #send(peer, data) {
    if (peer !== this.#peer) throw new Error(`no relay to ${peer}, only to ${this.#peer}`);
    if (!this.#ws || this.#ws.readyState !== WebSocket.OPEN) throw new Error('relay not connected');
    this.#ws.send(data);
  }

  #store(key, data) {
    if (key !== 'state') throw new Error(`unknown storage key ${key}`);
    this.#state = data;
    const r = this.#storage.save(data);
    if (r && typeof r.then === 'function') {
      r.then(null, (err) => this.#log(8, { msg: 'save state', err: err?.message ?? String(err) }));
    }
  }

  // connect opens a WebSocket to the relay and resolves once it is open.
  #connect() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(this.#relay);
      } catch (err) {
        reject(new AvcError('AVC_FAULT', `relay ${this.#relay}: ${err.message}`, { cause: err }));
        return;
      }
      ws.binaryType = 'arraybuffer';
      const timer = setTimeout(() => {
        ws.close();
        reject(new AvcError('AVC_FAULT', `relay ${this.#relay}: no connection within ${CONNECT_TIMEOUT_MS} ms`));
      }, CONNECT_TIMEOUT_MS);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve(ws);
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new AvcError('AVC_FAULT', `relay ${this.#relay}: cannot connect`));
      };
    });
  }

  #attach(ws) {
    this.#ws = ws;
    ws.onerror = null;
    ws.onmessage = (msg) => {
      if (this.#ws !== ws || !(msg.data instanceof ArrayBuffer)) return;
      this.#receive(new Uint8Array(msg.data));
    };
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      if (this.#started && !this.#stopping) {
        this.#fatal(new AvcError('AVC_FAULT', `relay closed the session (${ev.code}${ev.reason ? ' ' + ev.reason : ''})`));
      }
    };
  }

  /**
   * Connects to the relay and starts a session: the module registers (and
   * re-registers after failures) until stop(). Resolves once the Register
   * is sent; watch 'registered' / 'registration_failed'.
   */
  async start() {
    if (this.#started) throw new AvcError('AVC_DUPLICATE', 'already started');
    if (!this.#module) throw new AvcError('AVC_CLOSED', 'agent closed');
    this.#attach(await this.#connect());
    this.#started = true;
    this.#stopping = false;
    this.#apply(() => this.#module.command('start'));
  }

  /** Sends a Registration Update now. */
  update() {
    this.command('update');
  }

  /**
   * Sets a value the device keeps up to date ('/3/0/9', '/6/0/0', ...), as
   * in the Node binding; works before start(), while started and after
   * stop().
   */
  set(path, value) {
    const cmd = setCommand(path, value);
    if (!this.#module) throw new AvcError('AVC_CLOSED', 'agent closed');
    this.#apply(() => {
      this.#module.command(cmd);
      this.#values.delete(cmd.path);
      this.#values.set(cmd.path, cmd);
    });
  }

  /** Reports the current values at paths with the LwM2M Send operation. */
  send(paths) {
    if (!Array.isArray(paths) || paths.some((p) => typeof p !== 'string')) throw new TypeError('paths must be an array of strings');
    if (!this.#started) throw new AvcError('AVC_CLOSED', 'agent not started');
    this.#apply(() => this.#module.command({ cmd: 'send', paths: [...paths] }));
  }

  /** Applies a command ('start', 'stop', 'update') to the running agent. */
  command(name) {
    if (!this.#started) throw new AvcError('AVC_CLOSED', 'agent not started');
    this.#apply(() => this.#module.command(name));
  }

  /**
   * De-registers and closes the WebSocket (and with it the relay's UDP
   * socket). Resolves with the 'deregistered' event, or null when none
   * arrived within timeoutMs (default 10 s) or the agent was not started.
   */
  async stop({ timeoutMs = DEREGISTER_TIMEOUT_MS } = {}) {
    if (!this.#started) {
      this.#shutdown();
      return null;
    }
    this.#stopping = true;
    let finish;
    const done = new Promise((resolve) => {
      finish = resolve;
    });
    this.once('deregistered', finish);
    const timer = setTimeout(() => {
      this.#log(4, { msg: 'de-registration timed out', server_uri: this.#config.AVC_SERVER_URI });
      finish(null);
    }, timeoutMs);
    try {
      this.#apply(() => this.#module.command('stop'));
    } catch (err) {
      if (err.code !== 'AVC_DUPLICATE') {
        clearTimeout(timer);
        this.off('deregistered', finish);
        this.#shutdown();
        throw err;
      }
      finish(null);
    }
    const ev = await done;
    clearTimeout(timer);
    this.off('deregistered', finish);
    this.#shutdown();
    return ev;
  }

  /** Closes the WebSocket and the module at once, without de-registering. */
  close() {
    this.#shutdown();
    this.#module = null;
  }

  #shutdown() {
    clearTimeout(this.#timer);
    this.#timer = null;
    const ws = this.#ws;
    this.#ws = null;
    ws?.close(1000);
    this.#started = false;
    this.#stopping = false;
  }

  #receive(data) {
    if (!this.#module) return;
    try {
      this.#apply(() => this.#module.onDatagram(this.#peer, data));
    } catch (err) {
      if (err.code !== 'AVC_TRAP') this.#log(4, { msg: 'datagram', err: err.message });
    }
  }

  // apply runs one module call, then steps, re-arms the timer and emits
  // the events. A trap starts the recovery (asynchronous: browsers
  // instantiate large modules asynchronously) and is rethrown.
  #apply(fn) {
    let result;
    try {
      result = fn();
    } catch (err) {
      if (err.code === 'AVC_TRAP') this.#recover(err);
      else this.#pump();
      throw err;
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
        if (ev.kind === 'read_request') this.#readRequest(ev, this.#module);
        this.emit('event', ev);
        this.emit(ev.kind, ev);
      }
    } catch (err) {
      if (err.code === 'AVC_TRAP') {
        this.#recover(err);
        return;
      }
      this.#log(4, { msg: 'step', err: err.message });
    }
    clearTimeout(this.#timer);
    this.#timer = null;
    if (next !== null && this.#started) {
      this.#timer = setTimeout(() => this.#pump(), Math.min(Math.max(0, next - Date.now()), MAX_TIMEOUT_MS));
    }
  }

  // readRequest serves a 'read_request' event (core.js serveReadRequest).
  #readRequest(ev, mod) {
    serveReadRequest(ev, {
      handler: this.#onRead,
      current: () => this.#module === mod,
      set: (path, value) => this.set(path, value),
      done: () => this.#apply(() => mod.command({ cmd: 'read_done', token: ev.token })),
      log: (level, record) => this.#log(level, record),
    });
  }

  // recover replaces a trapped module by a new instance initialized from
  // the last stored state, on a new relay session (the server may hold
  // the dead instance's DTLS session for the old one), and starts it
  // again. More than MAX_TRAPS traps in TRAP_WINDOW_MS are fatal.
  async #recover(trap) {
    if (this.#module?.trapped !== trap) return; // already recovering from it
    clearTimeout(this.#timer);
    this.#timer = null;
    const now = Date.now();
    this.#traps = this.#traps.filter((t) => now - t < TRAP_WINDOW_MS);
    this.#traps.push(now);
    this.#log(8, { msg: 'module trapped', err: trap.message, traps: this.#traps.length });
    const wasStarted = this.#started;
    if (this.#stopping || this.#traps.length > MAX_TRAPS) {
      this.#fatal(trap);
      return;
    }
    this.#module = null;
    const old = this.#ws;
    this.#ws = null;
    old?.close(1000);
    try {
      this.#module = await this.#newModule();
      if (wasStarted) {
        this.#attach(await this.#connect());
        this.#apply(() => this.#module.command('start'));
      }
    } catch (err) {
      this.#fatal(err instanceof AvcError ? err : new AvcError('AVC_TRAP', `recovery failed: ${err.message}`, { cause: err }));
    }
  }

  #fatal(err) {
    this.#shutdown();
    this.#module = null;
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.#log(8, { msg: 'agent closed', err: err.message });
  }
}
