// Type declarations for the avc Node binding. Written by hand; keep in
// step with index.js and wasm/ABI.md.

import { EventEmitter } from 'node:events';

/** The avc.wasm ABI version this package implements (wasm/ABI.md). */
export declare const ABI_VERSION: 3;

/** Name of the persistent state file under AVC_STATE_DIR (the native driver's too). */
export declare const STATE_FILE: 'agent-state.json';

/** Result codes of the avc.wasm exports; values match Legato's le_result_t where the meaning is the same. */
export declare const ResultCode: Readonly<{
  /** Success. */
  AVC_OK: 0;
  /** avc_step only: no timer pending. */
  AVC_NONE: -1;
  /** The engine panicked and was discarded. */
  AVC_FAULT: -6;
  /** Bad JSON, unknown or invalid configuration name or value, bad objects_xml, a set path or value the engine refuses. */
  AVC_BAD_INPUT: -13;
  /** Already in that state (start twice, stop twice, init twice). */
  AVC_DUPLICATE: -14;
  /** A pointer or length outside the module's buffers. */
  AVC_BAD_PARAMETER: -15;
  /** Unknown command. */
  AVC_UNSUPPORTED: -18;
  /** avc_init has not succeeded. */
  AVC_NOT_INITIALIZED: -21;
  /** The command needs a registration that is not up. */
  AVC_NOT_REGISTERED: -25;
}>;

/**
 * Failures of the firmware imports (wasm/ABI.md "Firmware imports"), the
 * names and values of libavc's avc_fw_error_t. A FirmwareHandler method
 * picks one by throwing an error whose `code` is its name, e.g.
 * `throw new AvcError('AVC_FW_ERR_NOT_ENOUGH_SPACE', 'flash full')`.
 */
export declare const FirmwareCode: Readonly<{
  /** The method's default Update Result (what any other error means). */
  AVC_FW_ERR_OTHER: -1;
  /** Update Result 2: not enough flash memory. node:fs's ENOSPC counts as this. */
  AVC_FW_ERR_NOT_ENOUGH_SPACE: -2;
  /** Update Result 3: out of RAM. node:fs's ENOMEM counts as this. */
  AVC_FW_ERR_OUT_OF_MEMORY: -3;
  /** Update Result 5: integrity check failure; from upgrade the image is discarded. */
  AVC_FW_ERR_INTEGRITY_FAILURE: -5;
  /** Update Result 6: unsupported package type; from upgrade the image is discarded. */
  AVC_FW_ERR_UNSUPPORTED_PACKAGE_TYPE: -6;
  /** Update Result 11 (upgrade): deferred, the image is kept for a later Update. */
  AVC_FW_ERR_DEFERRED: -11;
}>;

/** The configuration names every avc embedding understands. */
export declare const CONFIG_NAMES: readonly string[];

/** Error codes an AvcError may carry. */
export type AvcErrorCode =
  | keyof typeof ResultCode
  /** The module instance trapped; it is discarded. */
  | 'AVC_TRAP'
  /** avc.wasm is missing or cannot be compiled. */
  | 'AVC_NO_WASM'
  /** avc.wasm implements another ABI version. */
  | 'AVC_ABI_MISMATCH'
  /** The agent is closed or not started. */
  | 'AVC_CLOSED'
  /** The server's host name cannot be resolved. */
  | 'AVC_RESOLVE'
  /** Thrown by a FirmwareHandler method to choose the Update Result. */
  | keyof typeof FirmwareCode
  | `AVC_${number}`;

/** An avc failure; `code` says which (see AvcErrorCode). */
export declare class AvcError extends Error {
  constructor(code: AvcErrorCode, message: string, options?: { op?: string; rc?: number; cause?: unknown });
  readonly name: 'AvcError';
  /** 'AVC_DUPLICATE', 'AVC_NOT_REGISTERED', 'AVC_TRAP', ... */
  readonly code: AvcErrorCode;
  /** The export that failed ('avc_command'), when the module reported the error. */
  readonly op?: string;
  /** The numeric result code, when the module reported the error. */
  readonly rc?: number;
}

/**
 * Configuration: AVC_* names (as in the environment) or their camelCase
 * forms. Numbers become strings; a byte array for pskKey becomes hex.
 */
export interface Config {
  /** LwM2M server, coap://host[:port] or coaps://host[:port] (DTLS-PSK inside the module; port 5684). Required. */
  AVC_SERVER_URI?: string;
  /** Client endpoint name. Required. */
  AVC_ENDPOINT?: string;
  /** Registration lifetime in seconds (default 86400). */
  AVC_LIFETIME?: string | number;
  /** Directory of the persistent state (agent-state.json); empty: none. */
  AVC_STATE_DIR?: string;
  /** debug, info (default), warn or error. */
  AVC_LOG_LEVEL?: 'debug' | 'info' | 'warn' | 'error' | string;
  /** DTLS PSK identity (coaps:// servers). */
  AVC_PSK_IDENTITY?: string;
  /** DTLS PSK key, hex. */
  AVC_PSK_KEY?: string;
  /** LwM2M bootstrap server URI. */
  AVC_BOOTSTRAP_URI?: string;
  /** The firmware version running, /3/0/3 (default '0.0.0'); packages older than it are refused. */
  AVC_FW_VERSION?: string;
  /** Accepted for uniformity; the module ignores it (the firmware handler installs). */
  AVC_FW_INSTALL_CMD?: string;
  /** Ed25519 public keys (hex or base64, comma-separated) trusted to sign firmware packages. */
  AVC_FW_TRUSTED_KEYS?: string;
  /** 'true': refuse unsigned packages and raw images (Update Result 5). */
  AVC_FW_REQUIRE_SIGNATURE?: string | boolean;
  serverUri?: string;
  endpoint?: string;
  lifetime?: string | number;
  stateDir?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | string;
  pskIdentity?: string;
  pskKey?: string | Uint8Array;
  bootstrapUri?: string;
  fwVersion?: string;
  fwInstallCmd?: string;
  fwTrustedKeys?: string;
  fwRequireSignature?: string | boolean;
  /** coaps with a certificate (Security mode 2): PEM files of the client's chain, its key and the server's trust anchors; Agent.create reads them. */
  AVC_CERT_FILE?: string;
  AVC_KEY_FILE?: string;
  AVC_CA_FILE?: string;
  certFile?: string;
  keyFile?: string;
  caFile?: string;
  /** The same as PEM text (strings or UTF-8 bytes), e.g. in a browser; also cert_pem, key_pem, ca_pem. */
  certPem?: string | Uint8Array;
  keyPem?: string | Uint8Array;
  caPem?: string | Uint8Array;
  /** DTLS-PSK credential for coaps:// Package URIs (default: the server's PSK). */
  AVC_FW_PSK_IDENTITY?: string;
  AVC_FW_PSK_KEY?: string;
  fwPskIdentity?: string;
  fwPskKey?: string | Uint8Array;
  /** coaps: DTLS handshake timeout in ms (default 30 000); also dtls_handshake_timeout_ms. */
  dtlsHandshakeTimeoutMs?: number | string;
  /** coaps: first wait after a failed handshake in ms, doubling (default 60 000); also dtls_retry_delay_ms. */
  dtlsRetryDelayMs?: number | string;
  /** coaps: silence after which a new session replaces the old before sending, in ms (default 40 000, negative: off); also nat_timeout_ms. */
  natTimeoutMs?: number | string;
  [name: string]: string | number | boolean | Uint8Array | undefined | null;
}

/**
 * Converts a configuration to AVC_* names with string values.
 * @param config AVC_* or camelCase names
 * @returns the AVC_* names; null and undefined values are left out
 */
export declare function normalizeConfig(config?: Config): Record<string, string>;

/**
 * Returns the AVC_* variables that are set and non-empty in env.
 * @param env default process.env
 */
export declare function configFromEnv(env?: Record<string, string | undefined>): Record<string, string>;

/**
 * A value for Agent.set: stringified to its text/plain form (LwM2M Core
 * §7.4.1) and converted by the engine to the resource's type. Strings as
 * they are ('50', 'true', '3:0' for an object link, Unix seconds for a
 * time), numbers (finite) and bigints in decimal, booleans 'true'/'false',
 * a Uint8Array as base64 (opaque resources). null or undefined removes the
 * resource instance.
 */
export type SetValue = string | number | bigint | boolean | Uint8Array | null | undefined;

/** The avc_command form of a set (wasm/ABI.md). */
export type SetCommand =
  | { readonly cmd: 'set'; readonly path: string; readonly value: string }
  | { readonly cmd: 'set'; readonly path: string; readonly type: 'none' };

/**
 * Builds the avc_command of a set, for Module.command.
 * @param path a resource ('/3/0/9') or resource instance ('/3/0/11/1')
 * @throws TypeError for a path that is not a string or a value of another type; RangeError for NaN or an infinity
 */
export declare function setCommand(path: string, value: SetValue): SetCommand;

/**
 * A custom object definition: an OMA LwM2M registry XML document
 * (<LWM2M><Object>…</Object></LWM2M>), as a string or UTF-8 bytes.
 */
export type ObjectXML = string | Uint8Array;

/**
 * A resource's data type: the OMA registry's names (any case), 'unsigned'
 * for 'unsigned integer', and 'none' (or '') for executable resources.
 */
export type ResourceType =
  | 'string' | 'integer' | 'unsigned integer' | 'unsigned' | 'float' | 'boolean'
  | 'opaque' | 'time' | 'objlnk' | 'corelnk' | 'none' | '';

/** The operations a resource allows, as the registry writes them: readable and/or writable, executable, or none. */
export type ResourceOperations = 'R' | 'W' | 'RW' | 'E' | '';

/** One resource of an ObjectDef (an <Item> of a registry document). */
export interface ResourceDef {
  /** Resource ID, 0..65534. */
  id: number;
  name?: string;
  /** Default 'none': a readable or writable resource needs a type, an executable one has none. */
  type?: ResourceType;
  /** Default '' (no operation). */
  operations?: ResourceOperations;
  /** A multiple-instance resource; default false. */
  multiple?: boolean;
  /** Default false. */
  mandatory?: boolean;
  /**
   * A read callback: when the server reads this readable resource, the
   * agent's onRead handler gives its value (a 'read_request' event; the
   * "read_callbacks" key of wasm/ABI.md). Default false.
   */
  onRead?: boolean;
}

/**
 * A custom object declared field by field (the <Object> of a registry
 * document). It becomes a registry XML document (objectXML) and is checked
 * by the engine as one: a resource defined twice, an executable resource
 * with a type or a readable one without, or a built-in object ID is
 * refused with AvcError 'AVC_BAD_INPUT'.
 */
export interface ObjectDef {
  /** Object ID, 0..65534. */
  id: number;
  name?: string;
  /** Object version, "1.0" form; default "1.0". */
  version?: string;
  /** A multiple-instance object; default false. */
  multiple?: boolean;
  /** Default false. */
  mandatory?: boolean;
  resources?: readonly ResourceDef[];
}

/** A custom object definition: a registry XML document or an object declared field by field. */
export type ObjectDefinition = ObjectXML | ObjectDef;

/**
 * Writes an ObjectDef as an OMA registry XML document, every text escaped.
 * @param what how errors name def (default 'object')
 * @throws TypeError, RangeError for a field of the wrong JavaScript type or range (IDs 0..65535, an unknown type or operations)
 */
export declare function objectXML(def: ObjectDef, what?: string): string;

/**
 * The "objects_xml" strings of a list of definitions.
 * @throws TypeError, RangeError as objectXML, or when objects is not an array of definitions
 */
export declare function normalizeObjects(objects?: readonly ObjectDefinition[] | null): string[];

/** Kinds of AgentEvent. */
export type EventKind =
  | 'registered'
  | 'updated'
  | 'deregistered'
  | 'registration_failed'
  | 'read'
  | 'write'
  | 'execute'
  | 'read_request'
  | 'reboot'
  | 'factory_reset'
  | 'notify'
  | 'sent'
  | 'send_failed'
  | 'sleep'
  | 'wake'
  | 'create'
  | 'delete'
  | 'store'
  | 'firmware'
  | 'restart'
  | 'bootstrap_started'
  | 'bootstrap_finished'
  | 'bootstrap_failed';

/**
 * The progress of a firmware update (LwM2M Object 5), carried by
 * 'firmware' events.
 */
export interface FirmwareStatus {
  /** State /5/0/3: 0 idle, 1 downloading, 2 downloaded, 3 updating. */
  readonly state: 0 | 1 | 2 | 3;
  /** Update Result /5/0/5: 0 initial, 1 success, 2 not enough space, 3 out of memory, 4 connection lost, 5 integrity failure, 6 unsupported package, 7 invalid URI, 8 update failed, 9 unsupported protocol, 10 cancelled, 11 deferred. */
  readonly result: number;
  /** Package bytes received in this attempt. */
  readonly bytes: number;
  /** The package size, -1 when unknown. */
  readonly total: number;
  /** The package's version, once its manifest has been read. */
  readonly version?: string;
}

/** An event of the agent, the JSON form of agent.Event. Only the fields that matter for `kind` are set. */
export interface AgentEvent {
  /** What happened; unknown kinds from newer modules are passed through. */
  readonly kind: EventKind | string;
  /** The server URI the event concerns. */
  readonly server?: string;
  /** The registration's location path ('/rd/5a3f'): registered, updated, deregistered. */
  readonly location?: string;
  /** Registration lifetime in seconds: registered, updated. */
  readonly lifetime?: number;
  /** LwM2M path of a server operation ('/3/0'): read, write, execute; of the observation: notify. */
  readonly path?: string;
  /** CoAP response code in dotted form ('4.04') of a failure. */
  readonly code?: string;
  /** A failure's description ('no response'). */
  readonly error?: string;
  /** The new persistent state (store) or Execute arguments. */
  readonly data?: Uint8Array;
  /** read_request: what completes the read ({cmd: 'read_done', token}; the agent does it). */
  readonly token?: number;
  /** read_request: the resources (or resource instances) the server reads. */
  readonly paths?: readonly string[];
  /** The firmware update's progress: firmware. */
  readonly firmware?: FirmwareStatus;
}

/** A firmware package to install, as FirmwareHandler.upgrade and booted receive it. */
export interface FirmwarePackage {
  /** The Package URI it was pulled from; '' for a push. */
  readonly uri: string;
  /** From the package manifest; '' for a raw image. */
  readonly name: string;
  /** From the package manifest; '' for a raw image. */
  readonly version: string;
  /** Bytes of the image the handler stored. */
  readonly size: number;
  /** SHA-256 of the image, 64 lowercase hex digits. */
  readonly sha256: string;
}

/**
 * Stores and installs firmware images for Object 5: the `firmware` option.
 * The module downloads the package (CoAP pull, or a push from the server),
 * verifies it (signature, version, size, SHA-256) and hands the handler
 * image bytes only. It mirrors the Go agent.FirmwareHandler and Anjay's
 * anjay_fw_update_handlers_t.
 *
 * Every method is **synchronous** (it runs inside a wasm import, which
 * cannot wait; a returned promise counts as a failure) and must not call
 * the agent. A method fails by throwing; an error whose `code` is a
 * FirmwareCode name ('AVC_FW_ERR_NOT_ENOUGH_SPACE', ...) chooses the Update Result,
 * anything else takes the method's default result.
 */
export interface FirmwareHandler {
  /**
   * Prepares to store an image. offset is 0 for a new download; a resumed
   * download passes the image bytes already checkpointed: keep exactly
   * that many and append after them, or throw when fewer are stored (the
   * download then starts over). Default result on failure: 2.
   */
  open(uri: string, offset: number): void;
  /** Appends image bytes (a copy: keep it). Default result on failure: 2. */
  write(bytes: Uint8Array): void;
  /** The image is complete. Default result on failure: 5. */
  finish(): void;
  /** Discards a partial or complete image. */
  reset(): void;
  /**
   * Installs the stored image (check it against pkg.size and pkg.sha256).
   * Returning means the install is under way: the module restarts its
   * engine as after a reboot (a 'restart' event) and asks booted().
   * Throw AVC_FW_ERR_DEFERRED to keep the image for later (Result 11).
   * Default result on failure: 8, the image kept.
   */
  upgrade(pkg: FirmwarePackage): void;
  /**
   * Asked once after the restart that follows upgrade(): the version now
   * running (reported as /3/0/3) and whether pkg is installed (Update
   * Result 1) or not (Result 8).
   */
  booted(pkg: FirmwarePackage): { running: string; installed: boolean };
  /**
   * Makes the bytes written so far durable; called before every download
   * checkpoint the module persists. Optional. Default result on failure: 2.
   */
  sync?(): void;
  /**
   * The name of the image just stored, for a bare image without a
   * manifest (whose name wins): PkgName /5/0/6. Optional; asked once the
   * download is complete. At most 255 UTF-8 bytes (longer is ignored).
   */
  getName?(): string | null | undefined;
  /** The version of the image just stored, as getName: PkgVersion /5/0/7. Shown, never verified. */
  getVersion?(): string | null | undefined;
  /**
   * CoAP transmission parameters for the requests of the pull of uri
   * (asked when it starts or resumes); null keeps the defaults (2000 ms,
   * 1.5, 4), and a missing field keeps its default. Optional.
   */
  getCoapTxParams?(uri: string): CoapTxParams | null | undefined;
}

/** CoAP transmission parameters (RFC 7252 §4.8) of a pull. */
export interface CoapTxParams {
  /** ACK_TIMEOUT in milliseconds, 1 to 600000. */
  ackTimeout?: number;
  /** ACK_RANDOM_FACTOR, 1 to 4. */
  ackRandomFactor?: number;
  /** MAX_RETRANSMIT, 0 to 20. */
  maxRetransmit?: number;
}

/** A console-like logger; each method receives the message and the record's attributes. */
export interface Logger {
  debug?(msg: string, attrs: Record<string, unknown>): void;
  info?(msg: string, attrs: Record<string, unknown>): void;
  warn?(msg: string, attrs: Record<string, unknown>): void;
  error?(msg: string, attrs: Record<string, unknown>): void;
}

/** Where avc.wasm comes from: a path, a file URL, its bytes, or a compiled module. */
export type WasmSource = string | URL | Uint8Array | ArrayBuffer | WebAssembly.Module;

/** Options of Module.create. The callbacks are the avc_host imports; they run synchronously inside a module call and must not call the module. Throwing is caught and reported to the module as a result code. */
export interface ModuleOptions {
  /** avc.wasm; default $AVC_WASM, else avc.wasm next to index.js. */
  wasm?: WasmSource;
  /** sock_send: send one UDP datagram to peer ("host:port"). `data` is a copy. */
  sockSend?(peer: string, data: Uint8Array): void;
  /** storage_write: store data under key ("state") durably. `data` is a copy. */
  storageWrite?(key: string, data: Uint8Array): void;
  /** log: one engine record; level is slog's (-4 debug, 0 info, 4 warn, 8 error). */
  log?(level: number, record: { msg: string; [attr: string]: unknown }): void;
  /** fw_open … fw_sync: the firmware handler; init() then enables firmware update. */
  firmware?: FirmwareHandler;
}

/**
 * One instance of avc.wasm with its raw exports as methods; it does no I/O
 * of its own. Methods throw AvcError; after a trap every method throws
 * AvcError 'AVC_TRAP'.
 */
export declare class Module {
  private constructor();
  /**
   * Loads, compiles and instantiates avc.wasm and checks its ABI version.
   * @throws AvcError 'AVC_NO_WASM', 'AVC_ABI_MISMATCH'
   * @throws TypeError when firmware is given but lacks a method
   */
  static create(options?: ModuleOptions): Promise<Module>;
  /** Like create() with an already compiled module. */
  static instantiate(compiled: WebAssembly.Module, options?: ModuleOptions): Promise<Module>;
  /** Like instantiate(), synchronously. */
  static instantiateSync(compiled: WebAssembly.Module, options?: ModuleOptions): Module;
  /** The raw exports (avc_init, avc_step, memory, ...), for tests and diagnostics. */
  readonly exports: WebAssembly.Exports;
  /** The AvcError that ended this instance, or null while it is usable. */
  readonly trapped: AvcError | null;
  /** avc_abi_version(). */
  abiVersion(): number;
  /**
   * avc_init: creates the engine; with a `firmware` handler it enables
   * firmware update ("firmware": true).
   * @param config AVC_* or camelCase names
   * @param state the data of the last 'store' event; empty on first start
   * @param objects custom object definitions (the "objects_xml" key of wasm/ABI.md)
   * @throws AvcError 'AVC_BAD_INPUT' (every problem in the message; an objects document that does not parse), 'AVC_DUPLICATE'
   * @throws TypeError when objects is not an array of strings and Uint8Arrays
   */
  init(config: Config, state?: Uint8Array, objects?: readonly ObjectDefinition[], options?: { control?: boolean }): void;
  /**
   * avc_command.
   * @param cmd 'start', 'stop', 'update', {cmd: ...}, or a set (see setCommand)
   * @param nowMs milliseconds since the epoch; default Date.now()
   * @throws AvcError 'AVC_DUPLICATE', 'AVC_NOT_REGISTERED', 'AVC_UNSUPPORTED', 'AVC_BAD_INPUT' (also a set the engine refuses), 'AVC_NOT_INITIALIZED'
   */
  command(cmd: 'start' | 'stop' | 'update' | string | SetCommand | { cmd: string; [arg: string]: unknown }, nowMs?: number): void;
  /**
   * avc_on_datagram: feeds one datagram received from peer.
   * @param peer the "host:port" key sockSend used for that address
   * @throws AvcError 'AVC_NOT_INITIALIZED'
   */
  onDatagram(peer: string, data: Uint8Array, nowMs?: number): void;
  /**
   * avc_step: runs due timers.
   * @returns the next deadline in milliseconds since the epoch, or null when no timer is pending
   */
  step(nowMs?: number): number | null;
  /** avc_poll_event: the next event's JSON text, or null. */
  pollEventJSON(): string | null;
  /** The next event decoded (data as a Uint8Array), or null. */
  pollEvent(): AgentEvent | null;
  /**
   * avc_control: the update-control snapshot. Needs init(..., {control: true}).
   * @throws AvcError 'AVC_FAULT' (update control is off), 'AVC_NOT_INITIALIZED', 'AVC_UNSUPPORTED' (an older module without avc_control)
   */
  control(): ControlState;
  /** avc_last_error: the message of the last failed call, '' if none. */
  lastError(): string;
}

/** The update-control snapshot of avc_control (agent.ControlState, wasm/ABI.md). */
export interface ControlState {
  /** User agreements: connection, download, install, uninstall, reboot. */
  readonly agreements: [boolean, boolean, boolean, boolean, boolean];
  /** Minutes; 0 disabled. */
  readonly polling_timer: number;
  /** The eight retry timers, in minutes. */
  readonly retry_timers: number[];
  readonly apn_name: string;
  readonly apn_user: string;
  readonly apn_password: string;
  /** le_avc_Status_t waiting for the host's answer; 0 when none. */
  readonly pending: number;
  /** le_avc_UpdateType_t. */
  readonly update_type: number;
  readonly app_update_name: string;
  /** le_avc_ErrorCode_t of the last failure. */
  readonly error: number;
  /** HTTP status of the last download; 65535 when unknown. */
  readonly http_status: number;
  /** Install blocks held. */
  readonly blocks: number;
  readonly user_session: boolean;
  /** RFC 3339 time of the last poll; absent before any. */
  readonly last_poll?: string;
  readonly session: boolean;
  readonly retrying: boolean;
  /** By le_avc_CredentialType_t: whether one is provisioned. */
  readonly credentials: [boolean, boolean, boolean, boolean, boolean];
}

/** Options of Agent.create. */
export interface AgentOptions {
  /** avc.wasm; default $AVC_WASM, else avc.wasm next to index.js. */
  wasm?: WasmSource;
  /** AVC_* or camelCase configuration; AVC_SERVER_URI and AVC_ENDPOINT are required. */
  config: Config;
  /**
   * Custom objects beyond the built-in /0, /1, /3, /4, /6 and /7: OMA LwM2M
   * registry XML documents or objects declared field by field (ObjectDef),
   * in any mix. A later definition of an object ID replaces an
   * earlier one. A single-instance object has instance 0 from the start;
   * instances of a multiple-instance object appear when set() puts a value
   * in them. The server reads and writes their values; its writes and
   * executes arrive as 'write' and 'execute' events.
   */
  objects?: readonly ObjectDefinition[];
  /**
   * Read callback for the resources declared `onRead: true`: called (and
   * awaited) with the path of each one a server Read, Observe or
   * Read-Composite covers; a result other than undefined is set() at that
   * path (or call set() yourself, e.g. per instance of a multiple
   * resource). The agent then completes the read and the engine answers
   * the server. Past AVC_READ_TIMEOUT (5 s) the engine answers with the
   * values it has; a handler that throws is logged. Without onRead such
   * reads are answered at once. Notifications of observed resources carry
   * the values last set.
   */
  onRead?: (path: string) => unknown;
  /** Receives the engine's log records at AVC_LOG_LEVEL and above; e.g. console. Default: discard. */
  logger?: Logger;
  /**
   * Firmware update (LwM2M Object 5): the handler that stores and installs
   * images. The server writes a coap:// Package URI to /5/0/1 (any host,
   * not only the LwM2M server; HTTP is not supported in wasm, so /5/0/8
   * lists CoAP only) or pushes the package to /5/0/0; progress arrives as
   * 'firmware' events. On Update /5/0/2 the module calls upgrade(), then
   * restarts its engine from the stored state (a 'restart' event),
   * registers again and reports the result booted() gives. AVC_FW_VERSION,
   * AVC_FW_TRUSTED_KEYS and AVC_FW_REQUIRE_SIGNATURE apply. Without it
   * there is no Object 5.
   */
  firmware?: FirmwareHandler;
}

/** Options of Agent.stop. */
export interface StopOptions {
  /** How long to wait for 'deregistered', default 10000 ms. */
  timeoutMs?: number;
}

/** Events of an Agent. */
export interface AgentEvents {
  /** Every event, including kinds this declaration does not list. */
  event: [AgentEvent];
  registered: [AgentEvent];
  updated: [AgentEvent];
  deregistered: [AgentEvent];
  registration_failed: [AgentEvent];
  read: [AgentEvent];
  write: [AgentEvent];
  execute: [AgentEvent];
  reboot: [AgentEvent];
  factory_reset: [AgentEvent];
  notify: [AgentEvent];
  sent: [AgentEvent];
  send_failed: [AgentEvent];
  sleep: [AgentEvent];
  wake: [AgentEvent];
  create: [AgentEvent];
  delete: [AgentEvent];
  store: [AgentEvent];
  /** The firmware update changed state or made progress (ev.firmware). */
  firmware: [AgentEvent];
  /** The module restarted its engine after a firmware install (path '/5/0/2'); nothing to do. */
  restart: [AgentEvent];
  /** A bootstrap session started, finished (the DM server it gave is stored) or failed. */
  bootstrap_started: [AgentEvent];
  bootstrap_finished: [AgentEvent];
  bootstrap_failed: [AgentEvent];
  /** The socket failed or the module kept trapping; the agent is closed. Emitted only when listened to (otherwise logged). */
  error: [AvcError];
}

/**
 * An LwM2M agent: avc.wasm driven by a UDP socket and one timer. Emits
 * 'event' for every event and one event per kind ('registered', ...).
 * With AVC_STATE_DIR set, the state is loaded at create() and saved
 * atomically on every 'store' event.
 */
export declare class Agent extends EventEmitter<AgentEvents> {
  private constructor();
  /**
   * Loads avc.wasm, instantiates it and initializes it with the
   * configuration, the custom objects and the stored state. Starts nothing.
   * @throws AvcError 'AVC_NO_WASM', 'AVC_BAD_INPUT' (also an objects document that does not parse or redefines a built-in object), 'AVC_ABI_MISMATCH'
   * @throws TypeError when objects is not an array of strings and Uint8Arrays, or firmware lacks a method
   */
  static create(options: AgentOptions): Promise<Agent>;
  /** The current module instance (replaced after a trap). */
  readonly module: Module | null;
  /** Whether start() was called and the agent has not stopped since. */
  readonly started: boolean;
  /**
   * Opens the UDP socket and starts a session: the agent registers, and
   * re-registers after failures, until stop(). Resolves once the Register
   * is sent.
   * @throws AvcError 'AVC_DUPLICATE', 'AVC_RESOLVE', 'AVC_CLOSED'
   */
  start(): Promise<void>;
  /**
   * Sends a Registration Update now.
   * @throws AvcError 'AVC_NOT_REGISTERED', 'AVC_CLOSED'
   */
  update(): void;
  /**
   * Sets a value the device keeps up to date: the battery level ('/3/0/9'),
   * free memory ('/3/0/10'), an error code ('/3/0/11/1'), Connectivity
   * Monitoring ('/4/0/…'), Location ('/6/0/…'), or a resource of an object
   * given in `objects`. Synchronous: returns once the engine has the value
   * (observers are notified, the server reads it). Works before start()
   * (the value is in the first Register), while started and after stop(),
   * until close(). A value in a new instance makes the instance appear (the
   * server learns it from a Registration Update). The agent keeps the last
   * value of every path and sets them again in a module it re-instantiates
   * after a trap.
   * @param path a resource ('/3/0/9') or, for a multiple resource, a resource instance ('/3/0/11/1')
   * @param value see SetValue; null or undefined removes the resource instance
   * @throws AvcError 'AVC_BAD_INPUT' (a malformed path, or a path or value the engine refuses: no such object, instance or resource, an executable or computed resource, a value that does not convert, null for a single resource), 'AVC_CLOSED'
   * @throws TypeError, RangeError for a value of another type or a number that is not finite
   */
  set(path: string, value: SetValue): void;
  /**
   * Reports the current values at paths to the server with the LwM2M Send
   * operation (POST /dp, SenML-CBOR, dated now). Needs start(): while the
   * agent is not registered yet, the values are read now, queued and sent
   * after the registration. The server's answer arrives as a 'sent' event
   * (its path is the first path reported) or a 'send_failed' event.
   * @param paths LwM2M paths of objects, instances or resources, e.g. ['/3/0/9'] (the battery level given to set())
   * @throws AvcError 'AVC_BAD_INPUT' (no paths, a malformed path, or one the engine cannot read, e.g. the Security object /0), 'AVC_CLOSED' (not started, or closed)
   * @throws TypeError when paths is not an array of strings
   */
  send(paths: readonly string[]): void;
  /**
   * Applies a command ('start', 'stop', 'update') to the started agent;
   * prefer start(), stop() and update().
   * @throws AvcError 'AVC_DUPLICATE', 'AVC_NOT_REGISTERED', 'AVC_UNSUPPORTED', 'AVC_CLOSED'
   */
  command(name: 'start' | 'stop' | 'update' | string): void;
  /**
   * De-registers and closes the socket.
   * @returns the 'deregistered' event, or null on timeout or when not started
   */
  stop(options?: StopOptions): Promise<AgentEvent | null>;
  /** Closes the socket and the module at once, without de-registering. */
  close(): void;
}
