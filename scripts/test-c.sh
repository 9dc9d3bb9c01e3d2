#!/usr/bin/env bash
# C checks of `make test`: every public header compiles alone as strict C99
# and as C++; the misuse program runs against libavc.so; the static
# library links.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

flags=(-Wall -Wextra -Werror -pedantic -Iinclude)
for h in include/*.h; do
	name=$(basename "$h")
	printf '#include "%s"\nint main(void) { return 0; }\n' "$name" > "$tmp/h.c"
	cc -std=c99 "${flags[@]}" -c "$tmp/h.c" -o "$tmp/h.o" || { echo "header $name: not C99 clean"; exit 1; }
	g++ -x c++ -std=c++11 "${flags[@]}" -c "$tmp/h.c" -o "$tmp/h.o" || { echo "header $name: not C++ clean"; exit 1; }
done
echo "headers: $(ls include/*.h | wc -l) compile as C99 and C++"

for prog in capi/testdata/*.c examples/c/*.c; do
	cc -std=c99 "${flags[@]}" -o "$tmp/$(basename "$prog" .c)" "$prog" -Lbuild -lavc -lpthread
done
echo "programs: compiled against build/libavc.so"

# The static archive links too (Go's runtime needs pthread).
cc -std=c99 "${flags[@]}" -o "$tmp/static" examples/c/register.c build/libavc.a -lpthread -lm
echo "static: build/libavc.a links"

# Wrong use from C: error codes, never a crash.
env -u AVC_SERVER_URI LD_LIBRARY_PATH=build "$tmp/misuse"

# Concurrent use from several threads: no crash, no deadlock.
env -u AVC_SERVER_URI LD_LIBRARY_PATH=build timeout 150 "$tmp/stress"
