// Type declarations for the avc browser binding. Written by hand; keep in
// step with index.js. The configuration, event and firmware types are the
// Node binding's (the two share ../node/core.js).

import type {
  AgentEvent,
  AgentEvents,
  AvcError,
  Config,
  FirmwareHandler,
  Logger,
  Module as NodeModule,
  ModuleOptions as NodeModuleOptions,
  ObjectDefinition,
  ObjectXML,
  SetValue,
  StopOptions,
} from '../node/index.js';

export {
  ABI_VERSION,
  AvcError,
  CONFIG_NAMES,
  FirmwareCode,
  ResultCode,
  normalizeConfig,
  setCommand,
} from '../node/index.js';
export type { AgentEvent, AgentEvents, Config, FirmwareHandler, Logger, ObjectDefinition, ObjectXML, SetValue, StopOptions } from '../node/index.js';

/** Where avc.wasm comes from: a URL to fetch, a fetched Response, its bytes, or the compiled module. */
export type WasmSource = string | URL | Response | ArrayBuffer | Uint8Array | WebAssembly.Module;

/** A WASI preview1 implementation as core.js's Module takes it. */
export interface Wasi {
  wasiImport: Record<string, (...args: any[]) => unknown>;
  initialize(instance: WebAssembly.Instance): void;
}

/**
 * browser_wasi_shim's WASI for avc.wasm: stdout/stderr to console,
 * random_get from crypto.getRandomValues only (it fails, rather than use
 * Math.random, where Web Crypto is missing).
 */
export declare function browserWasi(): Wasi;

/** Options of Module.create / Module.instantiate. */
export interface ModuleOptions extends Omit<NodeModuleOptions, 'wasm'> {
  wasm?: WasmSource;
  /** Default: browserWasi(). */
  wasi?: Wasi;
}

/** The instance methods are the Node binding's Module's (init, command, onDatagram, step, pollEvent, ...). */
export interface Module extends NodeModule {}

/** One avc.wasm instance on browser_wasi_shim, its exports as methods (see the Node binding's Module). */
export declare class Module {
  private constructor();
  /** Fetches, compiles and instantiates avc.wasm and checks its ABI version. */
  static create(options?: ModuleOptions): Promise<Module>;
  /** Instantiates a compiled avc.wasm (asynchronously). */
  static instantiate(compiled: WebAssembly.Module, options?: ModuleOptions): Promise<Module>;
}

/**
 * Where the module's state ('store' events) is kept. save() is called
 * synchronously from the storage import: it may return a promise
 * (IndexedDB, a server), whose failure is logged; the agent keeps the last
 * state in memory either way.
 */
export interface AgentStorage {
  load(): Uint8Array | null | Promise<Uint8Array | null>;
  save(data: Uint8Array): void | Promise<void>;
}

/** State in memory only, for as long as the returned object lives. */
export declare function memoryStorage(): AgentStorage;

/** State in localStorage under key (base64), written synchronously. */
export declare function localStorageStorage(key: string, store?: Storage): AgentStorage;

/** Options of Agent.create. */
export interface AgentOptions {
  /**
   * The WebSocket URL of `avc relay` for the server of config.serverUri,
   * e.g. 'ws://127.0.0.1:8090/coap'. The relay pins the session to that
   * one server; datagrams to other peers (another firmware host, a DM
   * server given by bootstrap) fail.
   */
  relay: string | URL;
  /** AVC_* or camelCase configuration; serverUri and endpoint are required; AVC_STATE_DIR has no effect (see storage). */
  config: Config;
  /** avc.wasm; default avc.wasm next to index.js. */
  wasm?: WasmSource;
  /** Default: memoryStorage(). */
  storage?: AgentStorage;
  /** Custom objects, registry XML or declared field by field, as in the Node binding. */
  objects?: readonly ObjectDefinition[];
  /** Firmware update (Object 5), as in the Node binding; packages come only from the relayed server. */
  firmware?: FirmwareHandler;
  /**
   * Read callback for the resources declared `onRead: true`, as in the
   * Node binding: called (and awaited) with each path a server Read,
   * Observe or Read-Composite covers; a result other than undefined is
   * set() there, then the engine answers the server. Without it such reads
   * are answered at once with the values last set.
   */
  onRead?: (path: string) => unknown;
  /** Receives the engine's log records; e.g. console. */
  logger?: Logger;
}

/**
 * An LwM2M agent in a browser: avc.wasm driven by a WebSocket to `avc
 * relay` and one timer. on('event') gets every event, on(kind) one kind;
 * 'error' (an AvcError) when the relay session fails or closes while
 * started, or the module keeps trapping; the agent is stopped then. After
 * a trap the module is re-instantiated from the last state on a new relay
 * session (at most 3 traps a minute).
 */
export declare class Agent {
  private constructor();
  /**
   * Loads and instantiates avc.wasm, loads the stored state and initializes
   * the module. Starts nothing.
   * @throws AvcError 'AVC_NO_WASM', 'AVC_BAD_INPUT', 'AVC_ABI_MISMATCH', 'AVC_UNSUPPORTED' (no Web Crypto or WebSocket)
   */
  static create(options: AgentOptions): Promise<Agent>;
  readonly module: Module | null;
  readonly started: boolean;
  on<K extends keyof AgentEvents>(kind: K, fn: (...args: AgentEvents[K]) => void): this;
  once<K extends keyof AgentEvents>(kind: K, fn: (...args: AgentEvents[K]) => void): this;
  off<K extends keyof AgentEvents>(kind: K, fn: (...args: AgentEvents[K]) => void): this;
  listenerCount(kind: keyof AgentEvents): number;
  /** Connects to the relay and starts registering. @throws AvcError 'AVC_FAULT' (relay unreachable), 'AVC_DUPLICATE' */
  start(): Promise<void>;
  /** Sends a Registration Update now. */
  update(): void;
  /** Sets a resource value ('/3/0/9', ...), as in the Node binding. */
  set(path: string, value: SetValue): void;
  /** Reports values with the LwM2M Send operation. */
  send(paths: readonly string[]): void;
  command(name: 'start' | 'stop' | 'update' | string): void;
  /** De-registers and closes the relay session; resolves with the 'deregistered' event or null. */
  stop(options?: StopOptions): Promise<AgentEvent | null>;
  /** Closes at once, without de-registering. */
  close(): void;
}
