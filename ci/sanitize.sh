#!/usr/bin/env bash
# The sanitizer run: builds the module, the libraries and the unit tests
# with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ and
# runs every test there. httpd (not itself instrumented) gets the ASan
# runtime preloaded; every report goes to build-asan/sanitizer-logs/, and
# the integration harness fails the test during which one appears. Unit
# tests run with leak checking on and fail on any report.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMGS_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)"

logs="$PWD/build-asan/sanitizer-logs"
rm -rf "$logs" && mkdir -p "$logs" && chmod 1777 "$logs"
asan="$(gcc -print-file-name=libasan.so)"
[ -f "$asan" ] || { echo "ci/sanitize.sh: no ASan runtime at $asan" >&2; exit 1; }
# libstdc++ too: httpd is C, and ASan's __cxa_throw interceptor must find
# the real one when it starts, before the module (and libstdc++) is loaded.
MGS_PRELOAD="$asan $(g++ -print-file-name=libstdc++.so.6)"
export MGS_PRELOAD MGS_SANITIZER_LOGS="$logs"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

cd build-asan
status=0
ctest --output-on-failure "$@" || status=$?
if compgen -G "$logs/*" >/dev/null; then
    echo "ci/sanitize.sh: sanitizer reports:" >&2
    cat "$logs"/* >&2
    status=1
fi
exit $status
