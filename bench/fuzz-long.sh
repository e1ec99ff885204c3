#!/usr/bin/env bash
# The libFuzzer harnesses for longer: each until it reaches FUZZ_RUNS
# executions (default 10,000,000), one at a time, nice'd, on a scratch copy
# of its seed corpus. FUZZ_SECONDS caps each harness's time (default: no
# cap); FUZZ_TARGETS picks harnesses. Prints ci/fuzz.sh's table.
set -euo pipefail
cd "$(dirname "$0")/.."
export FUZZ_RUNS=${FUZZ_RUNS:-10000000}
export FUZZ_SECONDS=${FUZZ_SECONDS:-0}
exec bash ci/fuzz.sh
