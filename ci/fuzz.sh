#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/, preset "fuzz": clang, ASan +
# UBSan, build-fuzz/) and runs each for a short time on a scratch copy of
# its seed corpus (tests/fuzz/corpus/<name>/: the tree is never written).
# Fails on any crash, sanitizer report, leak or timeout, and prints one line
# per harness: name, executions, executions per second, coverage.
#
#   FUZZ_SECONDS  time per harness (default 30; 0 = no limit)
#   FUZZ_RUNS     stop each harness after this many executions instead
#                 (bench/fuzz-long.sh sets it)
#   FUZZ_TARGETS  harness names to run (default: all, e.g. "client_hello")
#   FUZZ_TIMEOUT  seconds one input may take before it counts as a hang (10)
#   FUZZ_JOBS     build parallelism (2)
#   FUZZ_NO_BUILD=1  use what build-fuzz/ holds
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/build-fuzz
seconds=${FUZZ_SECONDS:-30}
runs=${FUZZ_RUNS:-}
timeout=${FUZZ_TIMEOUT:-10}

all=()
for f in tests/fuzz/fuzz_*.cpp; do
  n=${f#tests/fuzz/fuzz_}
  all+=("${n%.cpp}")
done
read -r -a targets <<< "${FUZZ_TARGETS:-${all[*]}}"

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  command -v clang++ > /dev/null || { echo "ci/fuzz.sh: clang++ is needed (bash ci/install-deps.sh)" >&2; exit 1; }
  if [ -f CMakePresets.json ] && grep -q '"fuzz"' CMakePresets.json; then
    cmake --preset fuzz > /dev/null
  else # the same cache variables as the preset
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DMGS_FUZZ=ON \
      -DBUILD_TESTING=OFF > /dev/null
  fi
  nice -n 10 cmake --build "$build" -j"${FUZZ_JOBS:-2}" --target "${targets[@]/#/fuzz_}"
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/mgs-fuzz.XXXXXX")
# ASan's leak checker on; every UBSan report fatal (the build also says
# -fno-sanitize-recover); no symbolizer noise about missing llvm tools.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:symbolize=1:${ASAN_OPTIONS_EXTRA:-}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
  for s in llvm-symbolizer llvm-symbolizer-14 /usr/lib/llvm-14/bin/llvm-symbolizer; do
    if command -v "$s" > /dev/null; then export ASAN_SYMBOLIZER_PATH=$(command -v "$s"); break; fi
  done
fi

dict_of() {
  case $1 in
    ocsp_http_reply) echo "$root/tests/fuzz/http.dict" ;;
    pkcs11_url) echo "$root/tests/fuzz/pkcs11.dict" ;;
  esac
}

failed=()
table=()
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "ci/fuzz.sh: no harness $bin" >&2; exit 1; }
  work=$scratch/$t
  mkdir -p "$work/corpus" "$work/artifacts"
  if [ -d "tests/fuzz/corpus/$t" ]; then
    cp -r "tests/fuzz/corpus/$t/." "$work/corpus/"
  fi
  args=(-print_final_stats=1 -timeout="$timeout" -artifact_prefix="$work/artifacts/")
  [ -n "$runs" ] && args+=(-runs="$runs")
  [ "$seconds" != 0 ] && args+=(-max_total_time="$seconds")
  d=$(dict_of "$t")
  [ -n "$d" ] && args+=(-dict="$d")
  echo "== fuzz_$t ${args[*]}"
  rc=0
  (cd "$work" && nice -n 10 "$bin" "${args[@]}" corpus > "$work/log" 2>&1) || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -1 | sed 's/cov: //' || true)
  status=ok
  if [ "$rc" != 0 ] || grep -qE '^(==[0-9]+==ERROR|SUMMARY: )' "$work/log"; then
    status="FAILED (exit $rc)"
    failed+=("$t")
    echo "---- fuzz_$t: last lines of $work/log"
    tail -n 60 "$work/log"
    ls "$work/artifacts"
  fi
  table+=("$(printf '%-22s %12s %10s %6s  %s' "fuzz_$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$status")")
done

echo
printf '%-22s %12s %10s %6s  %s\n' harness execs exec/s cov status
printf '%s\n' "${table[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (logs and reproducers in $scratch)" >&2
  exit 1
fi
rm -rf "$scratch"
echo "${#targets[@]} passed, 0 failed"
