#!/usr/bin/env bash
# Installs what avc's tests need on a bare machine, from the package
# registries only: Debian packages (C toolchain, Python, Node, libcoap's
# coap-client-notls from libcoap3-bin, valgrind for the C tests, curl for
# make bench, chromium for the browser test) and the npm packages of the
# interop peers (into test/interop/node_modules) and of the browser binding
# (@bjorn3/browser_wasi_shim and playwright-core, into
# bindings/browser/node_modules). Safe to
# run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc)
command -v g++ >/dev/null || need_apt+=(g++)
command -v python3 >/dev/null || need_apt+=(python3)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v coap-client-notls >/dev/null || need_apt+=(libcoap3-bin)
command -v valgrind >/dev/null || need_apt+=(valgrind)
command -v curl >/dev/null || need_apt+=(curl)
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
	echo "deps: apt-get install ${need_apt[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -d test/interop/node_modules/lwm2m-node-lib ]; then
	echo "deps: npm ci (test/interop: lwm2m-node-lib)"
	(cd test/interop && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ ! -d bindings/browser/node_modules/@bjorn3/browser_wasi_shim ] || [ ! -d bindings/browser/node_modules/playwright-core ]; then
	echo "deps: npm ci (bindings/browser: @bjorn3/browser_wasi_shim, playwright-core)"
	(cd bindings/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
