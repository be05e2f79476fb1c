#!/usr/bin/env bash
# The one documented benchmark command (issue 8, BENCHMARKS.md).
#
#   scripts/bench.sh                         # every scenario
#   scripts/bench.sh --scenario latency-100  # one of them (any quai-bench run option)
#
# Builds `quai` and `quai-bench` in release, then runs `quai-bench run`:
# each drop scenario starts a real `quai run` on a fresh QUAI_HOME and drops
# generated flows into it (see `quai-bench run --help`). Generated flows are
# cached under $QUAI_BENCH_WORK (default /tmp/quai-bench, ~2 GB for all
# scenarios). Human-readable figures go to the terminal, the JSON of the run
# to $QUAI_BENCH_WORK/results-<UTC date>.json.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in unzip gzip tar taskset; do
  command -v "$tool" >/dev/null || { echo "bench.sh: $tool is required (apt-get install unzip util-linux)" >&2; exit 2; }
done

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
WORK=${QUAI_BENCH_WORK:-/tmp/quai-bench}
mkdir -p "$WORK"

cargo build --release -p quai -p quai-bench --bins
BIN="$CARGO_TARGET_DIR/release"

args=("$@")
case " ${args[*]-} " in
  *" --scenario "*) ;;
  *) args=(--scenario all "${args[@]}") ;;
esac

OUT="$WORK/results-$(date -u +%Y%m%dT%H%M%SZ).json"
status=0
"$BIN/quai-bench" run --quai "$BIN/quai" --work "$WORK" --json "${args[@]}" >"$OUT" || status=$?
echo "results: $OUT" >&2
exit $status
