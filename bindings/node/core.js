// The host-independent half of avc's JavaScript bindings: the result
// codes, configuration helpers and the Module class (one instance of
// avc.wasm and its avc_host imports, wasm/ABI.md). Plain JavaScript with no
// Node APIs, shared by the Node binding (index.js: node:wasi, node:dgram)
// and the browser binding (bindings/browser: @bjorn3/browser_wasi_shim and a
// WebSocket). The WASI implementation is given to Module.instantiateSync.

/** The avc.wasm ABI version this package implements (wasm/ABI.md). */
export const ABI_VERSION = 3;

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
  'AVC_CERT_FILE', 'AVC_KEY_FILE', 'AVC_CA_FILE', 'AVC_FW_PSK_IDENTITY', 'AVC_FW_PSK_KEY',
]);

// Events are at least this long, so avc_poll_event results <= -MIN_EVENT_LEN
// are sizes and (-MIN_EVENT_LEN, 0) are result codes.
export const MIN_EVENT_LEN = 32;

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

/** Lower-case hex of bytes. */
function toHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Standard base64 of bytes (btoa exists in browsers and Node). */
export function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** The bytes of standard base64 text. */
export function fromBase64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

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

export function rcError(op, rc, message) {
  const code = codeNames.get(rc) ?? `AVC_${rc}`;
  return new AvcError(code, message || `${op}: ${code}`, { op, rc });
}

/**
 * The avc_init keys that are not AVC_* names (wasm/ABI.md "avc_init"), by
 * their camelCase names: the DTLS timing in milliseconds, and the PEM
 * texts of a certificate (a string or UTF-8 bytes; the module reads no
 * files, so a host reads AVC_CERT_FILE, AVC_KEY_FILE and AVC_CA_FILE into
 * them: see pemFiles in index.js).
 */
const MODULE_KEYS = Object.freeze({
  dtlsHandshakeTimeoutMs: 'dtls_handshake_timeout_ms',
  dtlsRetryDelayMs: 'dtls_retry_delay_ms',
  natTimeoutMs: 'nat_timeout_ms',
  certPem: 'cert_pem',
  keyPem: 'key_pem',
  caPem: 'ca_pem',
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
      out[MODULE_KEYS[key] ?? key] = value instanceof Uint8Array ? decoder.decode(value) : String(value);
      continue;
    }
    const name = key.startsWith('AVC_')
      ? key
      : 'AVC_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
    out[name] = value instanceof Uint8Array ? toHex(value) : String(value);
  }
  return out;
}

/**
 * Converts custom object definitions to the strings of the avc_init
 * "objects_xml" key. Each element is an OMA LwM2M registry XML document (a
 * string or UTF-8 bytes) or an object declared field by field, {id, name,
 * version, multiple, mandatory, resources: [{id, name, type, operations,
 * multiple, mandatory}]}, which becomes such a document (objectXML): the
 * engine checks both the same way.
 */
export function normalizeObjects(objects) {
  if (objects === undefined || objects === null) return [];
  if (!Array.isArray(objects)) {
    throw new TypeError('objects must be an array of OMA registry XML documents (strings or Uint8Array) or object definitions');
  }
  return objects.map((doc, i) => {
    if (typeof doc === 'string') return doc;
    if (doc instanceof Uint8Array) return decoder.decode(doc);
    if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) return objectXML(doc, `objects[${i}]`);
    throw new TypeError(`objects[${i}] must be a string, a Uint8Array or an object definition, not ${typeof doc}`);
  });
}

/**
 * Checks an agent's onRead option: a function, or null/undefined for none.
 * @returns {Function|null}
 */
export function checkOnRead(onRead) {
  if (onRead === undefined || onRead === null) return null;
  if (typeof onRead !== 'function') throw new TypeError('onRead must be a function');
  return onRead;
}

/**
 * Serves a 'read_request' event for an agent (Node or browser): the onRead
 * handler is called and awaited with each path, one after the other, and
 * what it returns (unless undefined) is set(); then done() completes the
 * read (read_done) and the engine answers the server. Without a handler it
 * completes at once. Always after the events of the pump that polled it;
 * nothing happens once current() is false (the module was re-instantiated
 * after a trap, or closed: the read is gone with it).
 * @param {{token: number, paths?: string[]}} ev
 * @param {{handler: Function|null, current: () => boolean, set: (path: string, value: unknown) => void,
 *   done: () => void, log: (level: number, record: object) => void}} agent
 */
export async function serveReadRequest(ev, { handler, current, set, done, log }) {
  await null;
  if (handler) {
    for (const path of ev.paths ?? []) {
      try {
        const value = await handler(path);
        if (value !== undefined && current()) set(path, value);
      } catch (err) {
        log(8, { msg: 'onRead handler', path, err: err?.message ?? String(err) });
      }
    }
  }
  if (!current()) return;
  try {
    done();
  } catch (err) {
    // Timed out already: the engine answered with the values it had.
    log(4, { msg: 'read_done', token: ev.token, err: err.message });
  }
}

/**
 * The "/OBJ/RES" paths of the resources declared with `onRead: true` in
 * objects declared field by field: the avc_init "read_callbacks" key. Their
 * values are the host's to give when the server reads them ('read_request'
 * events). XML documents declare none.
 */
export function readCallbackPaths(objects) {
  if (!Array.isArray(objects)) return [];
  const out = [];
  objects.forEach((def, i) => {
    if (typeof def !== 'object' || def === null || def instanceof Uint8Array || !Array.isArray(def.resources)) return;
    def.resources.forEach((r, j) => {
      if (typeof r === 'object' && r !== null && defFlag(r.onRead, `objects[${i}].resources[${j}].onRead`)) {
        out.push(`/${def.id}/${r.id}`);
      }
    });
  });
  return out;
}

/** The resource types of an object definition: registry names, and the aliases 'unsigned' and 'none'. */
const RESOURCE_TYPES = new Map([
  ['string', 'String'], ['integer', 'Integer'], ['unsigned integer', 'Unsigned Integer'], ['unsigned', 'Unsigned Integer'],
  ['float', 'Float'], ['boolean', 'Boolean'], ['opaque', 'Opaque'], ['time', 'Time'], ['objlnk', 'Objlnk'],
  ['corelnk', 'Corelnk'], ['none', ''], ['', ''],
]);

/** The operations of a resource definition, as the registry writes them. */
const RESOURCE_OPERATIONS = new Set(['', 'R', 'W', 'RW', 'E']);

/** Escapes text for XML character data and attribute values. */
function xmlEscape(text) {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]);
}

function defID(v, what) {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`${what} must be an integer, not ${typeof v}`);
  if (v < 0 || v > 65535) throw new RangeError(`${what} ${v} is out of range (0..65535)`);
  return String(v);
}

function defText(v, what, fallback = '') {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string') throw new TypeError(`${what} must be a string, not ${typeof v}`);
  return v;
}

function defFlag(v, what) {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new TypeError(`${what} must be a boolean, not ${typeof v}`);
  return v;
}

/**
 * Writes an object declared field by field as an OMA registry XML document
 * (<LWM2M><Object>…</Object></LWM2M>, LWM2M.xsd), every text escaped.
 * JavaScript types are checked here (TypeError, RangeError); what the
 * values mean (a resource defined twice, an executable resource with a
 * type, a built-in object) the engine checks, as for any document.
 * @param {object} def {id, name?, version?, multiple?, mandatory?, resources?}
 * @param {string} [what] how errors name def
 */
export function objectXML(def, what = 'object') {
  if (typeof def !== 'object' || def === null) throw new TypeError(`${what} must be an object definition`);
  const id = defID(def.id, `${what}.id`);
  const name = defText(def.name, `${what}.name`);
  const version = defText(def.version, `${what}.version`, '1.0');
  const multiple = defFlag(def.multiple, `${what}.multiple`);
  const mandatory = defFlag(def.mandatory, `${what}.mandatory`);
  const resources = def.resources ?? [];
  if (!Array.isArray(resources)) throw new TypeError(`${what}.resources must be an array`);
  const items = resources.map((r, j) => {
    const rw = `${what}.resources[${j}]`;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new TypeError(`${rw} must be a resource definition`);
    const rid = defID(r.id, `${rw}.id`);
    const rname = defText(r.name, `${rw}.name`);
    const typeName = defText(r.type, `${rw}.type`, 'none').toLowerCase();
    if (!RESOURCE_TYPES.has(typeName)) {
      throw new RangeError(`${rw}.type ${JSON.stringify(r.type)}: want one of ${[...RESOURCE_TYPES.keys()].filter(Boolean).join(', ')}`);
    }
    const ops = defText(r.operations, `${rw}.operations`).toUpperCase();
    if (!RESOURCE_OPERATIONS.has(ops)) throw new RangeError(`${rw}.operations ${JSON.stringify(r.operations)}: want 'R', 'W', 'RW', 'E' or ''`);
    return `<Item ID="${rid}"><Name>${xmlEscape(rname)}</Name><Operations>${ops}</Operations>` +
      `<MultipleInstances>${defFlag(r.multiple, `${rw}.multiple`) ? 'Multiple' : 'Single'}</MultipleInstances>` +
      `<Mandatory>${defFlag(r.mandatory, `${rw}.mandatory`) ? 'Mandatory' : 'Optional'}</Mandatory>` +
      `<Type>${RESOURCE_TYPES.get(typeName)}</Type></Item>`;
  });
  return '<?xml version="1.0" encoding="utf-8"?>\n<LWM2M><Object ObjectType="MODefinition">' +
    `<Name>${xmlEscape(name)}</Name><ObjectID>${id}</ObjectID><ObjectVersion>${xmlEscape(version)}</ObjectVersion>` +
    `<MultipleInstances>${multiple ? 'Multiple' : 'Single'}</MultipleInstances>` +
    `<Mandatory>${mandatory ? 'Mandatory' : 'Optional'}</Mandatory>` +
    `<Resources>${items.join('')}</Resources></Object></LWM2M>\n`;
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
  else if (value instanceof Uint8Array) text = toBase64(value); // opaque
  else throw new TypeError(`value must be a string, number, bigint, boolean, Uint8Array or null, not ${typeof value}`);
  return { cmd: 'set', path, value: text };
}

/** Checks a `firmware` option: null/undefined, or a handler object. */
export function checkFirmware(firmware) {
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

/** The console method for a log level of the log import. */
export function levelMethod(level) {
  if (level < 0) return 'debug';
  if (level < 4) return 'info';
  if (level < 8) return 'warn';
  return 'error';
}

/**
 * One instance of avc.wasm with its raw exports as methods. It does no I/O:
 * the imports go to the functions given to instantiate(). Methods throw AvcError
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
   * Instantiates a compiled avc.wasm (asynchronously, as browsers want for
   * large modules on their main thread), runs its _initialize and checks
   * its ABI version.
   * @param {WebAssembly.Module} compiled
   * @param {object} options
   * @param {{wasiImport: object, initialize(instance: WebAssembly.Instance): void}} options.wasi
   *   a WASI preview1 implementation (node:wasi's WASI, browser_wasi_shim's WASI)
   * @param {(peer: string, data: Uint8Array) => void} [options.sockSend]
   * @param {(key: string, data: Uint8Array) => void} [options.storageWrite]
   * @param {(level: number, record: object) => void} [options.log]
   * @param {object} [options.firmware] firmware handler (see Agent.create)
   */
  static async instantiate(compiled, options = {}) {
    const { importObject, finish } = Module.#prepare(this, options);
    return finish(await WebAssembly.instantiate(compiled, importObject));
  }

  /** Like instantiate(), synchronously. */
  static instantiateSync(compiled, options = {}) {
    const { importObject, finish } = Module.#prepare(this, options);
    return finish(new WebAssembly.Instance(compiled, importObject));
  }

  // prepare builds the import object of an instance and the function that
  // wraps the instance once made.
  static #prepare(ctor, options) {
    const wasi = options.wasi;
    if (!wasi || typeof wasi.wasiImport !== 'object' || typeof wasi.initialize !== 'function') {
      throw new TypeError('options.wasi must be a WASI preview1 implementation with wasiImport and initialize(instance)');
    }
    const firmware = checkFirmware(options.firmware);
    const imports = { sockSend: options.sockSend, storageWrite: options.storageWrite, log: options.log, firmware };
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
    const importObject = { wasi_snapshot_preview1: wasi.wasiImport, avc_host: avcHost };
    const finish = (instance) => {
      mod = new ctor(instance, imports);
      wasi.initialize(instance);
      const v = mod.abiVersion();
      if (v !== ABI_VERSION) {
        throw new AvcError('AVC_ABI_MISMATCH', `avc.wasm has ABI version ${v}, this package implements ${ABI_VERSION}`);
      }
      return mod;
    };
    return { importObject, finish };
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
   * @param {Array<string|Uint8Array|object>} [objects] custom object
   *   definitions: OMA registry XML documents or objects declared field by
   *   field (normalizeObjects; the "objects_xml" key of wasm/ABI.md)
   * @param {{control?: boolean}} [options] control: update control, the
   *   le_avc personality (the "control" key of wasm/ABI.md)
   */
  init(config, state = new Uint8Array(0), objects = [], { control = false } = {}) {
    const json = normalizeConfig(config);
    const docs = normalizeObjects(objects);
    if (docs.length > 0) json.objects_xml = docs;
    const onRead = readCallbackPaths(objects);
    if (onRead.length > 0) json.read_callbacks = onRead;
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
    if (typeof ev.data === 'string') ev.data = fromBase64(ev.data);
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

export function splitPeer(peer) {
  const i = peer.lastIndexOf(':');
  let host = peer.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(peer.slice(i + 1)) };
}

// serverPeer: the "host:port" key the module sends the server's datagrams
// to (for coaps, the DTLS records the module makes).
export function serverPeer(uri) {
  let u;
  try {
    u = new URL(uri);
  } catch {
    throw new AvcError('AVC_BAD_INPUT', `AVC_SERVER_URI=${JSON.stringify(uri)}: want coap://host[:port] or coaps://host[:port]`);
  }
  return `${u.hostname}:${u.port || (u.protocol === 'coaps:' ? '5684' : '5683')}`;
}

// isSecure: whether the module carries a DTLS session to the server.
export function isSecure(uri) {
  return typeof uri === 'string' && uri.trim().toLowerCase().startsWith('coaps:');
}

