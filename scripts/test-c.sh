#!/usr/bin/env bash
# C checks of `make test`: every public header compiles alone as strict C99
# and as C++; libavc.so and libavc.a export all 43 le_avc functions
# (api-reference §1.6) and le_avc_interface.h declares each; the misuse
# programs run against libavc.so (the firmware and le_avc control ones also
# under AddressSanitizer, and all of them under valgrind's Memcheck); the
# persistent store runs on host storage callbacks (lestore.c, also under
# AddressSanitizer and valgrind); the static library links; a C firmware
# handler performs a full firmware update against `avc server` (fota.c,
# also under AddressSanitizer and valgrind); the optional firmware
# callbacks are asked and take effect (fwhooks.c, also under
# AddressSanitizer and valgrind); an le_avc program with
# the download and install user agreements enabled accepts each step of a
# firmware update the server drives (leagree.c, also under
# AddressSanitizer and valgrind); an eCall-like program blocks the install
# of one until it unblocks, and the install waits for the 3-minute retry
# (lecall.c, also under AddressSanitizer and valgrind); objects declared
# field by field are read, written and executed by the server, and the
# object callbacks report the writes and executes (objects.c, also under
# AddressSanitizer and valgrind); read callbacks give the server the
# host's values on demand (readcb.c, also under AddressSanitizer and
# valgrind); the thread stress test (stress.c) too.
#
# lecall takes a little over three minutes: its three runs start first, in
# the background, and the script waits for them at the end. Each update program
# has its own `avc server` and state directory.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
server_pids=()
lecall_pids=()
cleanup() {
	for pid in ${lecall_pids[@]+"${lecall_pids[@]}"}; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	for pid in ${server_pids[@]+"${server_pids[@]}"}; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

flags=(-Wall -Wextra -Werror -pedantic -Iinclude)

# start_server NAME: starts `avc server` on free ports with the firmware
# directory $tmp/images, logging to $tmp/NAME-server.log, and sets coap and
# http to its addresses.
start_server() {
	local log="$tmp/$1-server.log" line
	"$tmp/avc" server -coap 127.0.0.1:0 -http 127.0.0.1:0 -firmware-dir "$tmp/images" 2>"$log" &
	server_pids+=($!)
	coap= http=
	for _ in $(seq 100); do
		line=$(grep -m1 'server listening' "$log" || true)
		if [ -n "$line" ]; then
			coap=$(sed -n 's/.* coap=\([0-9.:]*\).*/\1/p' <<<"$line")
			http=$(sed -n 's/.* http=\([0-9.:]*\).*/\1/p' <<<"$line")
			break
		fi
		sleep 0.1
	done
	if [ -z "$coap" ] || [ -z "$http" ]; then
		echo "avc server ($1) did not start:"; cat "$log"; exit 1
	fi
}

# run_three NAME DESCRIPTION ARGS...: runs capi/testdata/NAME.c (compiled
# with the other programs below, and here with AddressSanitizer) plain,
# under AddressSanitizer and under valgrind's Memcheck, with ARGS in which
# @STATE stands for a state directory of each run's own, against the
# server started as NAME (its log is shown when a run fails).
run_three() {
	local name=$1 desc=$2 run limit
	shift 2
	cc -std=c99 "${flags[@]}" -fsanitize=address -fno-omit-frame-pointer -g -o "$tmp/$name-asan" \
		"capi/testdata/$name.c" -Lbuild -lavc -lpthread
	for run in "$name" "$name-asan" "$name-vg"; do
		local prog=("$tmp/$run") args=("${@//@STATE/$tmp/$run-state}")
		limit=120
		if [ "$run" = "$name-vg" ]; then
			prog=(valgrind --quiet --error-exitcode=99 --leak-check=no --suppressions=scripts/valgrind-go.supp "$tmp/$name")
			limit=300
		fi
		env -u AVC_SERVER_URI LD_LIBRARY_PATH=build ASAN_OPTIONS=detect_leaks=0 timeout "$limit" \
			"${prog[@]}" "${args[@]}" >"$tmp/$run.out" 2>"$tmp/$run.err" ||
			{ cat "$tmp/$run.out" "$tmp/$run.err"; echo "$run failed; server log:"; cat "$tmp/$name-server.log"; exit 1; }
		echo "$run ($desc): $(tail -1 "$tmp/$run.out")"
	done
}

# The CLI (make test-c builds only the library), a signing key and a
# signed package of a random image, for the firmware updates below.
${GO:-go} build -o "$tmp/avc" ./cmd/avc
mkdir "$tmp/images" "$tmp/bg"
"$tmp/avc" keygen -out "$tmp/fw.key" >"$tmp/fw.pub"
head -c 200000 /dev/urandom >"$tmp/fw.img"
"$tmp/avc" pack -in "$tmp/fw.img" -out "$tmp/images/fw.avc" -name c-fota -version 2.0.0 -key "$tmp/fw.key" >/dev/null

# lecall first, in the background (see above), three times at once: plain,
# under AddressSanitizer and under valgrind's Memcheck, each with its own
# server, state directory and binary (the compile loop below must not
# replace a running executable).
cc -std=c99 "${flags[@]}" -o "$tmp/bg/lecall" capi/testdata/lecall.c -Lbuild -lavc -lpthread
cc -std=c99 "${flags[@]}" -fsanitize=address -fno-omit-frame-pointer -g -o "$tmp/bg/lecall-asan" \
	capi/testdata/lecall.c -Lbuild -lavc -lpthread
lecall_runs=(lecall lecall-asan lecall-vg)
for run in "${lecall_runs[@]}"; do
	start_server "$run"
	echo "$coap" >"$tmp/$run.coap"
	prog=("$tmp/bg/${run%-vg}")
	if [ "$run" = lecall-vg ]; then
		prog=(valgrind --quiet --error-exitcode=99 --leak-check=no --suppressions=scripts/valgrind-go.supp "$tmp/bg/lecall")
	fi
	env -u AVC_SERVER_URI LD_LIBRARY_PATH=build ASAN_OPTIONS=detect_leaks=0 timeout 420 \
		"${prog[@]}" "coap://$coap" "$http" "$tmp/$run-state" "$(cat "$tmp/fw.pub")" 2.0.0 "coap://$coap/fw/fw.avc" \
		>"$tmp/$run.out" 2>"$tmp/$run.err" &
	lecall_pids+=($!)
done
lecall_start=$SECONDS
echo "lecall: started in the background, plain, under AddressSanitizer and under valgrind (about 3 minutes)"

for h in include/*.h; do
	name=$(basename "$h")
	printf '#include "%s"\nint main(void) { return 0; }\n' "$name" > "$tmp/h.c"
	cc -std=c99 "${flags[@]}" -c "$tmp/h.c" -o "$tmp/h.o" || { echo "header $name: not C99 clean"; exit 1; }
	g++ -x c++ -std=c++11 "${flags[@]}" -c "$tmp/h.c" -o "$tmp/h.o" || { echo "header $name: not C++ clean"; exit 1; }
done
echo "headers: $(ls include/*.h | wc -l) compile as C99 and C++"

# Every le_avc function of api-reference §1.6 (39 of le_avc.api and the 4
# service functions): declared by the header, exported by both libraries.
le_avc_functions="le_avc_AddStatusEventHandler le_avc_RemoveStatusEventHandler
le_avc_AddSessionRequestEventHandler le_avc_RemoveSessionRequestEventHandler
le_avc_AddCommInfoHandler le_avc_RemoveCommInfoHandler le_avc_StartSession
le_avc_StartDmSession le_avc_StopSession le_avc_CheckRoute le_avc_DeferConnect
le_avc_AcceptDownload le_avc_DeferDownload le_avc_AcceptInstall le_avc_DeferInstall
le_avc_AcceptUninstall le_avc_DeferUninstall le_avc_AcceptReboot le_avc_DeferReboot
le_avc_GetUpdateType le_avc_GetAppUpdateName le_avc_BlockInstall le_avc_UnblockInstall
le_avc_GetErrorCode le_avc_GetSessionType le_avc_GetHttpStatus le_avc_GetPollingTimer
le_avc_GetRetryTimers le_avc_GetApnConfig le_avc_SetApnConfig le_avc_SetPollingTimer
le_avc_SetRetryTimers le_avc_GetCredentialStatus le_avc_SetUserAgreement
le_avc_GetUserAgreement le_avc_ReadLwm2mResource le_avc_SetNatTimeout
le_avc_IsSessionStarted le_avc_SetCredential le_avc_ConnectService
le_avc_TryConnectService le_avc_SetServerDisconnectHandler le_avc_DisconnectService"
nm -D --defined-only build/libavc.so | awk '$2 == "T" { print $3 }' | sort -u >"$tmp/so.syms"
nm --defined-only build/libavc.a 2>/dev/null | awk '$2 == "T" { print $3 }' | sort -u >"$tmp/a.syms"
printf '#include "le_avc_interface.h"\n' | cc -E -Iinclude -x c - >"$tmp/decl.i"
missing=0
count=0
for f in $le_avc_functions; do
	count=$((count + 1))
	grep -qx "$f" "$tmp/so.syms" || { echo "libavc.so does not export $f"; missing=1; }
	grep -qx "$f" "$tmp/a.syms" || { echo "libavc.a does not export $f"; missing=1; }
	grep -Eq "(^|[^A-Za-z0-9_])$f([^A-Za-z0-9_]|$)" "$tmp/decl.i" || { echo "le_avc_interface.h does not declare $f"; missing=1; }
done
[ "$count" -eq 43 ] || { echo "the list has $count functions, want 43"; exit 1; }
[ "$missing" -eq 0 ] || exit 1
echo "symbols: nm -D build/libavc.so lists all $count le_avc functions (libavc.a too); the header declares them"

for prog in capi/testdata/*.c examples/c/*.c; do
	cc -std=c99 "${flags[@]}" -o "$tmp/$(basename "$prog" .c)" "$prog" -Lbuild -lavc -lpthread
done
echo "programs: compiled against build/libavc.so"

# The static archive links too (Go's runtime needs pthread).
cc -std=c99 "${flags[@]}" -o "$tmp/static" examples/c/register.c build/libavc.a -lpthread -lm
echo "static: build/libavc.a links"

# Wrong use from C: error codes, never a crash; also under
# AddressSanitizer (leak detection off: the Go heap is not scanned).
env -u AVC_SERVER_URI LD_LIBRARY_PATH=build "$tmp/misuse"
cc -std=c99 "${flags[@]}" -fsanitize=address -fno-omit-frame-pointer -g -o "$tmp/misuse-asan" \
	capi/testdata/misuse.c -Lbuild -lavc -lpthread
env -u AVC_SERVER_URI LD_LIBRARY_PATH=build ASAN_OPTIONS=detect_leaks=0 "$tmp/misuse-asan" >"$tmp/misuse-asan.out" ||
	{ cat "$tmp/misuse-asan.out"; echo "misuse failed under AddressSanitizer"; exit 1; }
echo "misuse: $(tail -1 "$tmp/misuse-asan.out") under AddressSanitizer"

# Concurrent use from several threads: no crash, no deadlock; also under
# AddressSanitizer.
env -u AVC_SERVER_URI LD_LIBRARY_PATH=build timeout 150 "$tmp/stress"
cc -std=c99 "${flags[@]}" -fsanitize=address -fno-omit-frame-pointer -g -o "$tmp/stress-asan" \
	capi/testdata/stress.c -Lbuild -lavc -lpthread
env -u AVC_SERVER_URI LD_LIBRARY_PATH=build ASAN_OPTIONS=detect_leaks=0 timeout 150 "$tmp/stress-asan" >"$tmp/stress-asan.out" 2>&1 ||
	{ cat "$tmp/stress-asan.out"; echo "stress failed under AddressSanitizer"; exit 1; }
echo "stress: passed under AddressSanitizer"

# Firmware API misuse, also under AddressSanitizer (the Go heap is not
# scanned by LeakSanitizer, so leak detection is off).
env -u AVC_SERVER_URI LD_LIBRARY_PATH=build "$tmp/fwmisuse"
cc -std=c99 "${flags[@]}" -fsanitize=address -fno-omit-frame-pointer -g -o "$tmp/fwmisuse-asan" \
	capi/testdata/fwmisuse.c -Lbuild -lavc -lpthread
env -u AVC_SERVER_URI LD_LIBRARY_PATH=build ASAN_OPTIONS=detect_leaks=0 "$tmp/fwmisuse-asan" >/dev/null
echo "fwmisuse: passed under AddressSanitizer"

# le_avc update control without a server: return codes, also under
# AddressSanitizer.
env -u AVC_SERVER_URI LD_LIBRARY_PATH=build "$tmp/lecontrol" >"$tmp/lecontrol.out" ||
	{ cat "$tmp/lecontrol.out"; echo "lecontrol failed"; exit 1; }
cc -std=c99 "${flags[@]}" -fsanitize=address -fno-omit-frame-pointer -g -o "$tmp/lecontrol-asan" \
	capi/testdata/lecontrol.c -Lbuild -lavc -lpthread
env -u AVC_SERVER_URI LD_LIBRARY_PATH=build ASAN_OPTIONS=detect_leaks=0 "$tmp/lecontrol-asan" >"$tmp/lecontrol-asan.out" ||
	{ cat "$tmp/lecontrol-asan.out"; echo "lecontrol failed under AddressSanitizer"; exit 1; }
echo "lecontrol: $(tail -1 "$tmp/lecontrol.out"), also under AddressSanitizer"

# The persistent configuration store on host storage callbacks
# (avc_storage_set): a corrupt record, a failing write. Also under
# AddressSanitizer.
env -u AVC_SERVER_URI -u AVC_STATE_DIR LD_LIBRARY_PATH=build timeout 60 "$tmp/lestore" >"$tmp/lestore.out" 2>"$tmp/lestore.err" ||
	{ cat "$tmp/lestore.out" "$tmp/lestore.err"; echo "lestore failed"; exit 1; }
cc -std=c99 "${flags[@]}" -fsanitize=address -fno-omit-frame-pointer -g -o "$tmp/lestore-asan" \
	capi/testdata/lestore.c -Lbuild -lavc -lpthread
env -u AVC_SERVER_URI -u AVC_STATE_DIR LD_LIBRARY_PATH=build ASAN_OPTIONS=detect_leaks=0 timeout 60 "$tmp/lestore-asan" >"$tmp/lestore-asan.out" 2>"$tmp/lestore-asan.err" ||
	{ cat "$tmp/lestore-asan.out" "$tmp/lestore-asan.err"; echo "lestore failed under AddressSanitizer"; exit 1; }
echo "lestore: $(tail -1 "$tmp/lestore.out"), also under AddressSanitizer"

# The same programs under valgrind's Memcheck. The Go runtime inside
# libavc.so trips Memcheck in ways that are not errors (its own stacks and
# allocator); scripts/valgrind-go.supp silences errors whose innermost
# frame is in libavc.so, so what is checked is the C side: the programs
# and the header glue they compile.
for prog in misuse stress fwmisuse lecontrol lestore; do
	env -u AVC_SERVER_URI -u AVC_STATE_DIR LD_LIBRARY_PATH=build timeout 300 valgrind --quiet --error-exitcode=99 \
		--leak-check=no --suppressions=scripts/valgrind-go.supp "$tmp/$prog" >"$tmp/$prog-vg.out" 2>"$tmp/$prog-vg.err" ||
		{ cat "$tmp/$prog-vg.out" "$tmp/$prog-vg.err"; echo "$prog failed under valgrind"; exit 1; }
done
echo "valgrind: misuse, stress, fwmisuse, lecontrol and lestore run clean under Memcheck"

# A full firmware update: capi/testdata/fota.c's RAM-flash handler against
# `avc server` with a signed package, pulled over CoAP from the server's
# firmware directory, then (the AddressSanitizer build) over HTTP from the
# program itself.
start_server fota
cc -std=c99 "${flags[@]}" -fsanitize=address -fno-omit-frame-pointer -g -o "$tmp/fota-asan" \
	capi/testdata/fota.c -Lbuild -lavc -lpthread
for run in "fota coap://$coap/fw/fw.avc" "fota-asan"; do
	read -r prog uri <<<"$run"
	env -u AVC_SERVER_URI LD_LIBRARY_PATH=build ASAN_OPTIONS=detect_leaks=0 timeout 150 \
		"$tmp/$prog" "coap://$coap" "$http" "$tmp/fw.img" "$tmp/images/fw.avc" "$(cat "$tmp/fw.pub")" 2.0.0 $uri \
		>"$tmp/$prog.out" ||
		{ cat "$tmp/$prog.out"; echo "$prog failed; server log:"; cat "$tmp/fota-server.log"; exit 1; }
	echo "$prog (${uri:-http from the program}): $(tail -1 "$tmp/$prog.out")"
done
# And under valgrind's Memcheck (pull over CoAP; see the valgrind note above).
env -u AVC_SERVER_URI LD_LIBRARY_PATH=build timeout 300 valgrind --quiet --error-exitcode=99 \
	--leak-check=no --suppressions=scripts/valgrind-go.supp \
	"$tmp/fota" "coap://$coap" "$http" "$tmp/fw.img" "$tmp/images/fw.avc" "$(cat "$tmp/fw.pub")" 2.0.0 "coap://$coap/fw/fw.avc" \
	>"$tmp/fota-vg.out" 2>"$tmp/fota-vg.err" ||
	{ cat "$tmp/fota-vg.out" "$tmp/fota-vg.err"; echo "fota failed under valgrind; server log:"; cat "$tmp/fota-server.log"; exit 1; }
echo "fota under valgrind: $(tail -1 "$tmp/fota-vg.out")"

# The optional firmware callbacks (get_name, get_version,
# get_security_config, get_coap_tx_params, get_tcp_request_timeout):
# capi/testdata/fwhooks.c checks each is asked and takes effect, pulling
# from itself over HTTP and CoAP with `avc server` driving; also under
# AddressSanitizer and valgrind.
start_server fwhooks
run_three fwhooks "optional firmware callbacks" "coap://$coap" "$http" "$tmp/fw.img"

# User agreements: capi/testdata/leagree.c accepts the download and the
# install from its status handler while the server runs a FOTA (pull over
# CoAP); the default file handler under a new state directory each run.
start_server leagree
run_three leagree "user agreements, accepted from the status handler" \
	"coap://$coap" "$http" @STATE "$(cat "$tmp/fw.pub")" 2.0.0 fw.avc

# Custom objects declared field by field (avc_object_define) and the
# object callbacks (avc_object_set_handlers): the server reads, writes and
# executes; also under AddressSanitizer and valgrind.
start_server objects
run_three objects "objects field by field, write and execute callbacks" "coap://$coap" "$http"

# Read callbacks (AVC_OP_READ_CB): the server's reads get the values the
# host's read callback sets; also under AddressSanitizer and valgrind.
start_server readcb
run_three readcb "read callbacks" "coap://$coap" "$http"

# Install blocking: wait for the lecall runs, started first.
echo "lecall: waiting (running for $((SECONDS - lecall_start)) s)"
for i in "${!lecall_runs[@]}"; do
	run=${lecall_runs[$i]}
	rc=0
	wait "${lecall_pids[$i]}" || rc=$?
	if [ "$rc" -ne 0 ]; then
		cat "$tmp/$run.out" "$tmp/$run.err"
		echo "$run failed (exit status $rc; 124: timed out, 99: valgrind errors); server ($(cat "$tmp/$run.coap")) log:"
		cat "$tmp/$run-server.log"
		exit 1
	fi
	echo "$run (install blocked, then the 3-minute retry): $(tail -1 "$tmp/$run.out") after $((SECONDS - lecall_start)) s"
done
lecall_pids=()
