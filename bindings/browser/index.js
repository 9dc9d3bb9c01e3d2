// avc for browsers: runs avc.wasm (the WebAssembly build of the avc LwM2M
// agent) with @bjorn3/browser_wasi_shim, its datagrams carried over a
// WebSocket to `avc relay`, which gives the session a UDP socket pinned to
// the LwM2M server. One binary WebSocket message is one datagram. The
// module owns the protocol, DTLS included; this file only moves bytes,
// time and events across the ABI of wasm/ABI.md, like the Node binding,
// whose host-independent half it shares: the module's ABI
// (../node/core.js) and what an Agent does with its module
// (../node/agentcore.js).

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
  normalizeConfig,
  normalizeObjects,
  serverPeer,
  setCommand,
  toBase64,
} from '../node/core.js';
import { agentCore } from '../node/agentcore.js';

export { ABI_VERSION, AvcError, CONFIG_NAMES, FirmwareCode, ResultCode, normalizeConfig, setCommand };

const CONNECT_TIMEOUT_MS = 10_000;
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
export class Agent extends agentCore(Emitter) {
  #compiled;
  #objects;
  #firmware;
  #relay;
  #storage;
  #peer;
  #state = new Uint8Array(0);
  #ws = null;

  constructor(compiled, options) {
    super();
    this.#compiled = compiled;
    this._config = options.config;
    this.#objects = options.objects;
    this.#firmware = options.firmware;
    this._onRead = options.onRead;
    this.#relay = options.relay;
    this.#storage = options.storage;
    this._logger = options.logger;
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
    agent._module = await agent.#newModule();
    return agent;
  }

  async #newModule() {
    const mod = await Module.instantiate(this.#compiled, {
      sockSend: (peer, data) => this.#send(peer, data),
      storageWrite: (key, data) => this.#store(key, data),
      log: (level, record) => this._log(level, record),
      firmware: this.#firmware,
    });
    mod.init(this._config, this.#state, this.#objects);
    this._restoreValues(mod);
    return mod;
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
      r.then(null, (err) => this._log(8, { msg: 'save state', err: err?.message ?? String(err) }));
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
      if (this._started && !this._stopping) {
        this._fatal(new AvcError('AVC_FAULT', `relay closed the session (${ev.code}${ev.reason ? ' ' + ev.reason : ''})`));
      }
    };
  }

  /**
   * Connects to the relay and starts a session: the module registers (and
   * re-registers after failures) until stop(). Resolves once the Register
   * is sent; watch 'registered' / 'registration_failed'.
   */
  async start() {
    if (this._started) throw new AvcError('AVC_DUPLICATE', 'already started');
    if (!this._module) throw new AvcError('AVC_CLOSED', 'agent closed');
    this.#attach(await this.#connect());
    this._started = true;
    this._stopping = false;
    this._apply(() => this._module.command('start'));
  }

  #receive(data) {
    if (!this._module) return;
    try {
      this._apply(() => this._module.onDatagram(this.#peer, data));
    } catch (err) {
      if (err.code !== 'AVC_TRAP') this._log(4, { msg: 'datagram', err: err.message });
    }
  }

  // The host half of agentCore.
  _connected() {
    return this._started;
  }

  _shutdown() {
    const ws = this.#ws;
    this.#ws = null;
    ws?.close(1000);
  }

  // recover replaces a trapped module later: instantiating one is
  // asynchronous in browsers, so the call that trapped is not retried.
  _recover(trap) {
    this.#recover(trap);
    return false;
  }

  // recover makes a new instance initialized from the last stored state,
  // on a new relay session (the server may hold the dead instance's DTLS
  // session for the old one), and starts it again. A trap too many, or
  // one while stopping, closes the agent.
  async #recover(trap) {
    if (this._module?.trapped !== trap) return; // already recovering from it
    clearTimeout(this._timer);
    this._timer = null;
    const wasStarted = this._started;
    if (!this._trapped(trap)) {
      this._fatal(trap);
      return;
    }
    this._module = null;
    const old = this.#ws;
    this.#ws = null;
    old?.close(1000);
    try {
      this._module = await this.#newModule();
      if (wasStarted) {
        this.#attach(await this.#connect());
        this._apply(() => this._module.command('start'));
      }
    } catch (err) {
      this._fatal(err instanceof AvcError ? err : new AvcError('AVC_TRAP', `recovery failed: ${err.message}`, { cause: err }));
    }
  }
}
