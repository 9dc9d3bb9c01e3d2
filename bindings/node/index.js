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
import {
  ABI_VERSION,
  AvcError,
  CONFIG_NAMES,
  FirmwareCode,
  Module as CoreModule,
  ResultCode,
  checkFirmware,
  checkOnRead,
  normalizeConfig,
  normalizeObjects,
  objectXML,
  serverPeer,
  isSecure,
  setCommand,
  splitPeer,
} from './core.js';
import { agentCore } from './agentcore.js';

// The host-independent half (core.js: the module ABI; agentcore.js: what an
// Agent does with its module) is shared with bindings/browser.
export { ABI_VERSION, AvcError, CONFIG_NAMES, FirmwareCode, ResultCode, normalizeConfig, normalizeObjects, objectXML, setCommand };

/** Name of the persistent state file under AVC_STATE_DIR (same as the native driver's). */
export const STATE_FILE = 'agent-state.json';


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

// The certificate files and the avc_init keys their PEM texts go under:
// the module reads no files (wasm/ABI.md "Certificates").
const PEM_FILES = [['AVC_CERT_FILE', 'cert_pem'], ['AVC_KEY_FILE', 'key_pem'], ['AVC_CA_FILE', 'ca_pem']];

// readPemFiles replaces the certificate file names of a normalized
// configuration by the files' contents.
function readPemFiles(config) {
  const out = { ...config };
  for (const [name, key] of PEM_FILES) {
    if (!out[name]) continue;
    try {
      out[key] = fs.readFileSync(out[name], 'utf8');
    } catch (err) {
      throw new AvcError('AVC_BAD_INPUT', `${name}: ${err.message}`, { cause: err });
    }
    delete out[name];
  }
  return out;
}

function nodeWasi() {
  return new WASI({ version: 'preview1', args: [], env: {}, returnOnExit: true });
}

/**
 * One instance of avc.wasm with its raw exports as methods (core.js's
 * Module), with node:wasi. It does no I/O: the imports go to the functions
 * given to create(). Methods throw AvcError on failure; after a trap every
 * method throws AvcError 'AVC_TRAP'.
 */
export class Module extends CoreModule {
  /**
   * Loads, instantiates and initializes avc.wasm and checks its ABI version.
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
    return super.instantiateSync(compiled, { ...options, wasi: options.wasi ?? nodeWasi() });
  }
}

function peerKey(address, port) {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
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
export class Agent extends agentCore(EventEmitter) {
  #compiled;
  #objects;
  #firmware;
  #stateDir;
  #state;
  #socket = null;
  #family = 4;
  #addrs = new Map(); // peer key -> {address, port}
  #peers = new Map(); // "address:port" -> peer key

  constructor(compiled, config, logger, objects = [], firmware = null, onRead = null) {
    super();
    this.#compiled = compiled;
    this._config = config;
    this.#objects = objects;
    this.#firmware = firmware;
    this._onRead = onRead;
    this._logger = logger;
    this.#stateDir = config.AVC_STATE_DIR || '';
    this.#state = new Uint8Array(0);
  }

  /**
   * Loads and instantiates avc.wasm and initializes it with config; loads
   * the stored state from AVC_STATE_DIR. Starts nothing.
   * @param {object} options
   * @param {string|URL|Uint8Array|ArrayBuffer|WebAssembly.Module} [options.wasm] default: $AVC_WASM, else avc.wasm next to this file
   * @param {object} options.config AVC_* names or camelCase (serverUri, endpoint, lifetime, stateDir, logLevel, ...)
   * @param {Array<string|Uint8Array|object>} [options.objects] custom objects: OMA LwM2M registry XML
   *   documents or objects declared field by field ({id, name, version, multiple, mandatory,
   *   resources: [{id, name, type, operations, multiple, mandatory}]}; see index.d.ts ObjectDef)
   * @param {(path: string) => unknown} [options.onRead] read callback: called (and awaited) with
   *   the path of each resource declared `onRead: true` that the server reads; its result, unless
   *   undefined, is set() at that path, then the engine answers the server
   * @param {{debug?: Function, info?: Function, warn?: Function, error?: Function}} [options.logger] e.g. console
   * @param {object} [options.firmware] firmware update (Object 5): a handler
   *   object with synchronous methods open(uri, offset), write(bytes),
   *   finish(), reset(), upgrade(pkg), booted(pkg) -> {running, installed}
   *   and optionally sync(); see index.d.ts FirmwareHandler
   * @returns {Promise<Agent>}
   */
  static async create(options = {}) {
    normalizeObjects(options.objects); // type errors now, before loading the module
    const objects = options.objects ?? [];
    const firmware = checkFirmware(options.firmware);
    const onRead = checkOnRead(options.onRead);
    const compiled = await loadWasm(options.wasm);
    const agent = new Agent(compiled, readPemFiles(normalizeConfig(options.config)), options.logger, objects, firmware, onRead);
    if (agent.#stateDir) {
      try {
        agent.#state = new Uint8Array(fs.readFileSync(path.join(agent.#stateDir, STATE_FILE)));
      } catch (err) {
        if (err.code !== 'ENOENT') throw new AvcError('AVC_FAULT', `read state: ${err.message}`, { cause: err });
      }
    }
    agent._module = agent.#newModule();
    return agent;
  }

  // newModule instantiates and initializes a module from the last state.
  #newModule() {
    const mod = Module.instantiateSync(this.#compiled, {
      sockSend: (peer, data) => this.#send(peer, data),
      storageWrite: (key, data) => this.#store(key, data),
      log: (level, record) => this._log(level, record),
      firmware: this.#firmware,
    });
    mod.init(this._config, this.#state, this.#objects);
    this._restoreValues(mod);
    return mod;
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
    if (this._started) throw new AvcError('AVC_DUPLICATE', 'already started');
    if (!this._module) throw new AvcError('AVC_CLOSED', 'agent closed');
    let family;
    // Bootstrap only: the bootstrap server's address picks the socket's
    // family; the module then names the DM server it was given.
    const uri = this._config.AVC_SERVER_URI || this._config.AVC_BOOTSTRAP_URI;
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
    socket.on('error', (err) => this._fatal(new AvcError('AVC_FAULT', `socket: ${err.message}`, { cause: err })));
    this.#family = family;
    this.#socket = socket;
    this._started = true;
    this._stopping = false;
    this._apply(() => this._module.command('start'));
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
    if (!this.#socket || !isSecure(this._config.AVC_SERVER_URI)) return;
    const old = this.#socket;
    const socket = this.#openSocket(this.#family);
    socket.on('error', (err) => this._fatal(new AvcError('AVC_FAULT', `socket: ${err.message}`, { cause: err })));
    this.#socket = socket;
    old.close();
  }

  // The host half of agentCore.
  _connected() {
    return this.#socket !== null;
  }

  _shutdown() {
    this.#socket?.close();
    this.#socket = null;
  }

  // recover re-instantiates the module from the last stored state, on a
  // new socket for coaps, and starts it again (unless stopping): ready at
  // once, so the call that trapped is retried. A trap too many, or one
  // while stopping, closes the agent.
  _recover(trap) {
    try {
      if (!this._trapped(trap)) throw trap;
      const mod = this.#newModule();
      this._module = mod;
      this.#rebind();
      if (this._started) mod.command('start');
      return true;
    } catch (fatal) {
      this._fatal(fatal);
      throw fatal;
    }
  }

  #receive(msg, rinfo) {
    if (!this._module) return;
    const key = peerKey(rinfo.address, rinfo.port);
    const peer = this.#peers.get(key) ?? key;
    try {
      this._apply(() => this._module.onDatagram(peer, msg));
    } catch (err) {
      if (err.code === 'AVC_TRAP') this._fatal(err);
      else this._log(4, { msg: 'datagram', err: err.message });
    }
  }
}
