#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of outside input (fuzz/, cargo-fuzz on nightly).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Runs each target (all by default) for SECONDS (default 60), starting from the committed
# seeds in fuzz/corpus/TARGET; what it learns goes to a scratch directory, so the committed
# corpus stays small. A crash fails the run and leaves its input in fuzz/artifacts/TARGET/
# (reproduce with `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-…`).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi
(cd fuzz && cargo +nightly fuzz build)
scratch=$(mktemp -d /tmp/consentric-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  echo "fuzz: $t for ${seconds}s"
  (cd fuzz && cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)|panicked|ERROR|SUMMARY' || true)
  if compgen -G "fuzz/artifacts/$t/crash-*" >/dev/null || compgen -G "fuzz/artifacts/$t/oom-*" >/dev/null; then
    echo "fuzz: $t found a crash: $(ls fuzz/artifacts/$t)" >&2
    exit 1
  fi
done
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
