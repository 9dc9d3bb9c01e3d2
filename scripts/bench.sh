#!/usr/bin/env bash
# Measures avc's agent side by side with a reference LwM2M client
# (lwm2m-node-lib) and prints the report, also written to
# build/bench-report.md. `make bench` runs it after `make build`; see
# test/bench/main.go for what is measured. Extra arguments go to the bench
# program (e.g. -runs 10, -n 1000).
#
# Exits non-zero when a subject or the engine measure failed; the report
# then ends with a "Failures" section saying which and why.
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/bench-report.md

if [ ! -d test/interop/node_modules/lwm2m-node-lib ]; then
	echo "bench: test/interop/node_modules missing; running scripts/deps.sh"
	scripts/deps.sh
fi
if [ ! -x build/avc ]; then
	echo "bench: build/avc is missing: run 'make build' (or 'go build -o build/avc ./cmd/avc')" >&2
	exit 1
fi
command -v node >/dev/null || { echo "bench: node is not installed: run scripts/deps.sh" >&2; exit 1; }

mkdir -p build
rm -f "$out"

bench_pid=""
cleanup() {
	# Stop the bench if it is still running (interrupted): first the
	# program `go run` started, which stops its subjects, then go run.
	if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
		pkill -TERM -P "$bench_pid" 2>/dev/null || true
		kill -TERM "$bench_pid" 2>/dev/null || true
		wait "$bench_pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "bench: go run ./test/bench -out $out $*"
go run ./test/bench -out "$out" "$@" &
bench_pid=$!
status=0
wait "$bench_pid" || status=$?
bench_pid=""

if [ -f "$out" ]; then
	echo
	cat "$out"
fi
if [ "$status" -ne 0 ]; then
	echo >&2
	if [ -f "$out" ]; then
		echo "bench: FAILED (exit $status): see the Failures section of $out above" >&2
	else
		echo "bench: FAILED (exit $status) before writing $out: see the messages above" >&2
	fi
fi
exit "$status"
