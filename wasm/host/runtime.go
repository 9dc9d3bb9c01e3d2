package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/avc-agent/avc/agent"
)

// Option configures NewRuntime and New.
type Option func(*options)

type options struct {
	cacheDir    string
	interpreter bool
	logger      *slog.Logger
	runtime     *Runtime
	stderr      io.Writer
	objectsXML  [][]byte
	onRead      []string
	firmware    agent.FirmwareHandler
}

// WithCompilationCacheDir keeps wazero's compiled machine code in dir, so
// that compiling the module again (in a later process) takes milliseconds
// instead of seconds. The directory is created if needed.
func WithCompilationCacheDir(dir string) Option {
	return func(o *options) { o.cacheDir = dir }
}

// WithInterpreter runs the module in wazero's interpreter instead of
// compiling it: much faster to start, several times slower to run. Tests
// and short-lived tools use it.
func WithInterpreter() Option {
	return func(o *options) { o.interpreter = true }
}

// WithLogger sends the engine's log records (at AVC_LOG_LEVEL and above)
// and the driver's own to l. The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithRuntime makes New instantiate its module in r instead of compiling
// wasm bytes of its own (which may then be nil). The Agent does not close r.
func WithRuntime(r *Runtime) Option {
	return func(o *options) { o.runtime = r }
}

// WithObjectsXML makes New define custom objects from documents in the OMA
// LwM2M registry's XML format (<LWM2M><Object>…</Object></LWM2M>), passed
// to the module as the "objects_xml" key of the avc_init configuration
// (wasm/ABI.md). Several options and documents add up; a later definition
// of an object ID replaces an earlier one. A document the module cannot
// parse makes New fail with an error matching agent.ErrConfig. NewRuntime
// ignores this option.
func WithObjectsXML(docs ...[]byte) Option {
	return func(o *options) {
		for _, d := range docs {
			o.objectsXML = append(o.objectsXML, bytes.Clone(d))
		}
	}
}

// WithReadCallbacks marks resources of WithObjectsXML objects, by
// "/OBJ/RES" path, as read on demand (the "read_callbacks" key of
// wasm/ABI.md): a server read of one emits agent.EventReadRequest, and the
// server gets its answer once the host has set the values (Set) and
// completed the read with Do(ctx, agent.CmdReadDone{Token: ev.Token}), or
// after AVC_READ_TIMEOUT with the values the module had. A path that names
// no readable resource of those objects makes New fail with an error
// matching agent.ErrConfig. NewRuntime ignores this option.
func WithReadCallbacks(paths ...string) Option {
	return func(o *options) { o.onRead = append(o.onRead, paths...) }
}

// WithFirmware gives New's agent a Firmware Update object (LwM2M Object 5)
// whose images h stores and installs, through the module's firmware
// imports (wasm/ABI.md "Firmware imports"). The server writes a coap://
// Package URI and the module pulls the package block-wise on the agent's
// socket (any host, not only the LwM2M server's), verifies it and streams
// the image into h; on Update it calls h.PerformUpgrade, and when that
// returns nil the module restarts its engine from the stored state, as
// after a reboot, and reports the outcome that h.Booted gives. h is called
// from the goroutine running Run, never concurrently; its errors choose
// the Update Result as Imports.Firmware says. The AVC_FW_VERSION,
// AVC_FW_TRUSTED_KEYS and AVC_FW_REQUIRE_SIGNATURE settings apply.
// NewRuntime ignores this option.
//
// # Notes
//
//   - HTTP(S) Package URIs are not supported in the module: /5/0/8 lists
//     CoAP only, and writing an http URI ends with Update Result 9.
//   - Pushes (a block-wise write of /5/0/0) work as well.
//   - A FirmwareCommitter (commit after proof) is not supported through
//     the imports: the image counts as installed once Booted says so.
func WithFirmware(h agent.FirmwareHandler) Option {
	return func(o *options) { o.firmware = h }
}

// WithStderr copies what modules write to stderr (Go's report of a fatal
// error before a trap) to w. The last 4 KiB are always kept for TrapError.
func WithStderr(w io.Writer) Option {
	return func(o *options) { o.stderr = w }
}

func buildOptions(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Runtime is a wazero runtime holding one compiled avc.wasm. It is safe for
// concurrent use; each instance it creates is independent.
type Runtime struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	stderr   io.Writer

	// CompileTime is how long compiling the module took (or loading it
	// from the compilation cache).
	CompileTime time.Duration

	closeOnce sync.Once
	closeErr  error
}

// NewRuntime compiles wasm (the bytes of avc.wasm) with the WASI preview 1
// and avc_host host modules.
func NewRuntime(ctx context.Context, wasm []byte, opts ...Option) (*Runtime, error) {
	o := buildOptions(opts)
	var rc wazero.RuntimeConfig
	if o.interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	} else {
		rc = wazero.NewRuntimeConfig()
	}
	if o.cacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(o.cacheDir)
		if err != nil {
			return nil, fmt.Errorf("host: compilation cache: %w", err)
		}
		rc = rc.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	r := &Runtime{rt: rt, stderr: o.stderr}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("host: wasi: %w", err)
	}
	if err := instantiateImports(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("host: avc_host: %w", err)
	}
	start := time.Now()
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("host: compile avc.wasm: %w", err)
	}
	r.CompileTime = time.Since(start)
	r.compiled = compiled
	for _, name := range exportNames {
		if _, ok := compiled.ExportedFunctions()[name]; !ok {
			rt.Close(ctx)
			return nil, fmt.Errorf("host: avc.wasm does not export %s: not an avc module, or an incompatible version", name)
		}
	}
	return r, nil
}

// Close releases the runtime and every module instantiated in it.
func (r *Runtime) Close(ctx context.Context) error {
	r.closeOnce.Do(func() { r.closeErr = r.rt.Close(ctx) })
	return r.closeErr
}

// Instantiate creates a module instance whose imports call im, runs its
// _initialize function and checks its ABI version.
func (r *Runtime) Instantiate(ctx context.Context, im Imports) (*Module, error) {
	m := &Module{imports: im}
	m.stderr.w = r.stderr
	m.ctx = context.WithValue(context.WithoutCancel(ctx), moduleKey{}, m)
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: one compiled module, many instances
		WithStartFunctions("_initialize").
		WithRandSource(rand.Reader).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithStderr(&m.stderr).
		WithStdout(&m.stderr)
	mod, err := r.rt.InstantiateModule(m.ctx, r.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("host: instantiate avc.wasm: %w", err)
	}
	m.mod = mod
	m.mem = mod.Memory()
	m.fn = [numExports]api.Function{}
	for i, name := range exportNames {
		m.fn[i] = mod.ExportedFunction(name)
	}
	v, err := m.ABIVersion()
	if err != nil {
		m.Close(ctx)
		return nil, err
	}
	if v != ABIVersion {
		m.Close(ctx)
		return nil, fmt.Errorf("host: avc.wasm has ABI version %d, this host implements %d", v, ABIVersion)
	}
	return m, nil
}
