#!/usr/bin/env bash
# Fuzz smoke run (CI, and after changing a parser): builds the cargo-fuzz targets of fuzz/ with
# AddressSanitizer on the stable toolchain (RUSTC_BOOTSTRAP=1 lets stable rustc take the sanitizer
# flags cargo-fuzz passes) and runs each for FUZZ_SECONDS (default 15) starting from its committed
# corpus in fuzz/corpus/<target>. A crash, panic, leak, timeout (FUZZ_TIMEOUT, default 30 s per input)
# or out-of-memory fails the run and leaves the input in $FUZZ_WORK/artifacts/<target>/.
# FUZZ_TARGETS picks targets (default: all). Long runs: docs/ROBUSTNESS.md.
# The instrumented build (every dependency again, with ASan) goes to FUZZ_TARGET_DIR, by default a
# cache outside the checkout, so a later run on the same machine (CI's fresh clone included) only
# rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
export RUSTC_BOOTSTRAP=1
seconds=${FUZZ_SECONDS:-15}
targets=${FUZZ_TARGETS:-"abi_objects abi_mechanisms der store_records service_requests"}
if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz-smoke: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
work=${FUZZ_WORK:-$(mktemp -d)}
mkdir -p "$work"
build_started=$(date +%s)
# cargo-fuzz's defaults: optimised, with debug assertions and overflow checks, AddressSanitizer.
target_dir=${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cryptera-pkcs11/fuzz-target}
if [ -z "${FUZZ_TARGETS:-}" ]; then
  (cd fuzz && cargo fuzz build --target-dir "$target_dir")
else
  for target in $targets; do (cd fuzz && cargo fuzz build --target-dir "$target_dir" "$target"); done
fi
echo "fuzz-smoke: built in $(($(date +%s) - build_started)) s"
host=$(rustc -vV | sed -n 's/^host: //p')
bin=$target_dir/$host/release
passed=0
failed=0
for target in $targets; do
  mkdir -p "$work/corpus/$target" "$work/artifacts/$target"
  log=$work/$target.log
  if "$bin/$target" -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-30}" -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$target/" \
    "$work/corpus/$target" "fuzz/corpus/$target" >"$log" 2>&1; then
    passed=$((passed + 1))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "ok   $target: ${runs:-?} inputs in $seconds s"
  else
    failed=$((failed + 1))
    echo "FAIL $target"
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -20 | sed 's/^/     /'
    echo "     reproduce: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $target <the artifact above>)"
  fi
done
[ -n "${FUZZ_WORK:-}" ] || rm -rf "$work"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
