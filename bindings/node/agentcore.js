// The host-independent half of an Agent over avc.wasm, shared by the Node
// binding (index.js: node:dgram, the file system, a module instantiated
// synchronously) and the browser binding (../browser/index.js: a
// WebSocket to `avc relay`, host storage, a module instantiated
// asynchronously). Each host supplies only how datagrams, state and a new
// module instance come and go.

import { AvcError, levelMethod, serveReadRequest, setCommand } from './core.js';

/** How long stop() waits for the de-registration by default. */
export const DEREGISTER_TIMEOUT_MS = 10_000;
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/** More than MAX_TRAPS traps within TRAP_WINDOW_MS close the agent. */
export const MAX_TRAPS = 3;
export const TRAP_WINDOW_MS = 60_000;

/**
 * agentCore returns a class extending Base, an event emitter (on, once,
 * off, emit, listenerCount), with what every Agent does with its module:
 * the values set (given back to a module instance made after a trap), the
 * pump that steps the module, re-arms one timer and emits its events
 * ('event' and one per kind), read callbacks, trap accounting, and
 * set/send/command/update/stop/close.
 *
 * The subclass implements the host half:
 * - `_connected()`: whether datagrams can flow (send and command need it;
 *   the pump re-arms its timer only then);
 * - `_recover(trap)`: replaces the trapped module (after `_trapped(trap)`
 *   allowed it); returns true when the new instance is ready now (the call
 *   that trapped is then retried), false when it comes later;
 * - `_shutdown()`: closes the transport, after the core cleared its timer
 *   and state.
 * and sets `_module`, `_config`, `_logger`, `_onRead` and `_started`.
 */
export function agentCore(Base) {
  return class AgentCore extends Base {
    _module = null;
    _config = {};
    _logger = null;
    _onRead = null;
    _started = false;
    _stopping = false;
    _values = new Map(); // path -> set command, given back to a new module instance
    _timer = null;
    _traps = [];

    /** The current module instance (it changes after a trap). */
    get module() {
      return this._module;
    }

    /** Whether start() was called and the agent has not stopped since. */
    get started() {
      return this._started;
    }

    /** Sends a Registration Update now (AvcError 'AVC_NOT_REGISTERED' when none is up). */
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
     * undefined removes the resource instance. The agent keeps the last
     * value of every path and sets them again in a module instance made
     * after a trap.
     * @throws AvcError 'AVC_BAD_INPUT' (the engine refuses the path or the value), 'AVC_CLOSED'
     */
    set(path, value) {
      const cmd = setCommand(path, value);
      if (!this._module) throw new AvcError('AVC_CLOSED', 'agent closed');
      this._apply(() => {
        this._module.command(cmd);
        // Remembered before the step that follows, which may trap. The
        // last value set is given back last, however its path is spelled.
        this._values.delete(cmd.path);
        this._values.set(cmd.path, cmd);
      });
    }

    /**
     * Reports the current values at paths to the server with the LwM2M
     * Send operation (POST /dp, SenML-CBOR). Needs start(): while not
     * registered yet, the values are read now, queued and sent after the
     * registration. The server's answer arrives as a 'sent' event (path:
     * the first path) or a 'send_failed' event.
     * @param {string[]} paths LwM2M paths of objects, instances or resources, e.g. ['/3/0/9']
     * @throws AvcError 'AVC_BAD_INPUT', 'AVC_CLOSED' (not started); TypeError when paths is not an array of strings
     */
    send(paths) {
      if (!Array.isArray(paths) || paths.some((p) => typeof p !== 'string')) {
        throw new TypeError('paths must be an array of strings');
      }
      if (!this._connected()) throw new AvcError('AVC_CLOSED', 'agent not started');
      this._apply(() => this._module.command({ cmd: 'send', paths: [...paths] }));
    }

    /**
     * Applies a command ('start', 'stop', 'update') to the running agent.
     * Prefer start(), stop() and update().
     */
    command(name) {
      if (!this._connected()) throw new AvcError('AVC_CLOSED', 'agent not started');
      this._apply(() => this._module.command(name));
    }

    /**
     * De-registers and closes the transport. Resolves with the
     * 'deregistered' event, or null when none arrived within timeoutMs
     * (default 10 s) or the agent was not started.
     */
    async stop({ timeoutMs = DEREGISTER_TIMEOUT_MS } = {}) {
      if (!this._started || !this._connected()) {
        this._close();
        return null;
      }
      this._stopping = true;
      let finish;
      const done = new Promise((resolve) => {
        finish = resolve;
      });
      const onEvent = (ev) => finish(ev);
      this.once('deregistered', onEvent);
      const timer = setTimeout(() => {
        this._log(4, { msg: 'de-registration timed out', server_uri: this._config.AVC_SERVER_URI });
        finish(null);
      }, timeoutMs);
      try {
        this._apply(() => this._module.command('stop'));
      } catch (err) {
        if (err.code !== 'AVC_DUPLICATE') {
          clearTimeout(timer);
          this.off('deregistered', onEvent);
          this._close();
          throw err;
        }
        finish(null); // already stopped
      }
      const ev = await done;
      clearTimeout(timer);
      this.off('deregistered', onEvent);
      this._close();
      return ev;
    }

    /** Closes the transport and the module at once, without de-registering. */
    close() {
      this._close();
      this._module = null;
    }

    // close stops the timer and the session state, then the transport.
    _close() {
      clearTimeout(this._timer);
      this._timer = null;
      this._started = false;
      this._stopping = false;
      this._shutdown();
    }

    // restoreValues gives a new module instance the values set so far.
    _restoreValues(mod) {
      for (const cmd of this._values.values()) {
        try {
          mod.command(cmd);
        } catch (err) {
          if (err.code === 'AVC_TRAP') throw err;
          this._log(4, { msg: 'restore value', path: cmd.path, err: err.message });
        }
      }
    }

    _log(level, record) {
      const fn = this._logger?.[levelMethod(level)];
      if (typeof fn !== 'function') return;
      const { msg, ...attrs } = record;
      fn.call(this._logger, msg, attrs);
    }

    // apply runs one module call, then steps, re-arms the timer and emits
    // the events. After a trap the host replaces the module (_recover);
    // when the new one is ready now the call is retried once, otherwise
    // the trap is thrown.
    _apply(fn) {
      let result;
      try {
        result = fn();
      } catch (err) {
        if (err.code !== 'AVC_TRAP') {
          this._pump();
          throw err;
        }
        if (!this._recover(err)) throw err;
        result = fn();
      }
      this._pump();
      return result;
    }

    _pump() {
      if (!this._module) return;
      let next = null;
      try {
        next = this._module.step(Date.now());
        for (let ev = this._module.pollEvent(); ev !== null; ev = this._module.pollEvent()) {
          if (ev.kind === 'read_request') this._readRequest(ev, this._module);
          this.emit('event', ev);
          this.emit(ev.kind, ev);
        }
      } catch (err) {
        if (err.code === 'AVC_TRAP') {
          let ready = false;
          try {
            ready = this._recover(err);
          } catch {
            return; // the host closed the agent (_recover reported it)
          }
          if (ready) this._pump();
          return;
        }
        this._log(4, { msg: 'step', err: err.message });
      }
      clearTimeout(this._timer);
      this._timer = null;
      if (next !== null && this._connected()) {
        this._timer = setTimeout(() => this._pump(), Math.min(Math.max(0, next - Date.now()), MAX_TIMEOUT_MS));
      }
    }

    // readRequest serves a 'read_request' event (core.js serveReadRequest).
    _readRequest(ev, mod) {
      serveReadRequest(ev, {
        handler: this._onRead,
        current: () => this._module === mod,
        set: (path, value) => this.set(path, value),
        done: () => this._apply(() => mod.command({ cmd: 'read_done', token: ev.token })),
        log: (level, record) => this._log(level, record),
      });
    }

    // trapped counts a trap and reports whether another module instance
    // may replace the trapped one: not while stopping, nor after more
    // than MAX_TRAPS traps within TRAP_WINDOW_MS.
    _trapped(trap) {
      const now = Date.now();
      this._traps = this._traps.filter((t) => now - t < TRAP_WINDOW_MS);
      this._traps.push(now);
      this._log(8, { msg: 'module trapped', err: trap.message, traps: this._traps.length });
      return !this._stopping && this._traps.length <= MAX_TRAPS;
    }

    // fatal closes the agent and reports err as an 'error' event (or a log
    // record when nobody listens).
    _fatal(err) {
      this._close();
      this._module = null;
      if (this.listenerCount('error') > 0) this.emit('error', err);
      else this._log(8, { msg: 'agent closed', err: err.message });
    }
  };
}
