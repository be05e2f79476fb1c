#!/usr/bin/env bash
# Issue 2's closing demonstration: a zip of 1,000 UBL invoices, a zip of 500
# CII invoices and a tar.gz of 800 UBL invoices (generated, with known
# invalid shares) dropped at once into inbound/acme/ of a running `quai run`;
# waits for the three integration reports and prints `quai status --json`
# beside the counts the generator's manifests expect.
#
# Run twice: first with the platform's default cap of 500 invoices per flow
# (the 1,000- and 800-invoice flows are then refused whole, IRR_TAILLE_F),
# then with [limits] max_invoices_per_flow = 1000 (every invoice counted).
#
#   scripts/demo-issue2.sh            # builds release binaries first
#   QUAI_BIN_DIR=target/release scripts/demo-issue2.sh   # use built ones
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${QUAI_BIN_DIR:-}" ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
  cargo build --release -p quai -p quai-bench --bins >&2
  QUAI_BIN_DIR=$CARGO_TARGET_DIR/release
fi
QUAI=$QUAI_BIN_DIR/quai
BENCH=$QUAI_BIN_DIR/quai-bench
command -v jq >/dev/null || { echo "demo-issue2.sh needs jq (apt-get install jq)" >&2; exit 2; }

TMP=$(mktemp -d /tmp/quai-demo2.XXXXXX)
DAEMON_PID=
cleanup() {
  if [ -n "$DAEMON_PID" ]; then kill -TERM "$DAEMON_PID" 2>/dev/null || true; wait "$DAEMON_PID" 2>/dev/null || true; fi
  [ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

echo "== generating the three flows into $TMP/gen"
"$BENCH" generate --kind ubl-zip   --flows 1 --invoices 1000 --lines-min 1 --lines-max 5 --invalid-share 0.10 --seed 21 --run-id DEMO-UBL   --out "$TMP/gen/ubl"
"$BENCH" generate --kind cii-zip   --flows 1 --invoices 500  --lines-min 1 --lines-max 5 --invalid-share 0.08 --seed 22 --run-id DEMO-CII   --out "$TMP/gen/cii"
"$BENCH" generate --kind ubl-targz --flows 1 --invoices 800  --lines-min 1 --lines-max 5 --invalid-share 0.05 --seed 23 --run-id DEMO-TARGZ --out "$TMP/gen/targz"

expected() { # dir -> "file invoices rejected"
  jq -r '.flows[0] | "\(.file) \(.invoices) \(.rejected)"' "$1/expected.json"
}

# run NAME LIMITS_TOML EXPECTED_ACCEPTED EXPECTED_REJECTED
run() {
  local name=$1 limits=$2 home=$TMP/$1
  mkdir -p "$home/inbound/acme" "$home/staging"
  cat >"$home/quai.toml" <<TOML
# The embedded default (QUAI_HOME layout, SQLite spool), HTTP off so the
# demo never collides with another daemon on 127.0.0.1:8470.
[http]
listen = "off"

[limits]
$limits
TOML
  echo
  echo "== run '$name': quai run --config $home/quai.toml   ([limits] ${limits:-defaults: max_invoices_per_flow = 500})"
  QUAI_HOME=$home QUAI_LOG=warn "$QUAI" --config "$home/quai.toml" run >"$home/quai.log" 2>&1 &
  DAEMON_PID=$!
  # Wait for the daemon to create its spool before the first `quai status`
  # (a status run while the daemon is still migrating a new spool races it).
  for _ in $(seq 1 200); do
    [ -s "$home/spool.db" ] && break
    sleep 0.05
  done
  sleep 1
  for _ in $(seq 1 200); do
    QUAI_HOME=$home "$QUAI" --config "$home/quai.toml" status --json >/dev/null 2>&1 && break
    sleep 0.05
  done
  local files=()
  for kind in ubl cii targz; do
    read -r file _ _ < <(expected "$TMP/gen/$kind")
    cp "$TMP/gen/$kind/$file" "$home/staging/$file"
    files+=("$file")
  done
  # Dropped at once: one rename each, on the same filesystem.
  for f in "${files[@]}"; do mv "$home/staging/$f" "$home/inbound/acme/$f"; done
  local t0=$SECONDS
  while :; do
    local n=0
    for f in "${files[@]}"; do ls "$home/outbound/acme/$f".*.report.json >/dev/null 2>&1 && n=$((n+1)); done
    [ "$n" -eq 3 ] && break
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then echo "quai run died:"; tail -20 "$home/quai.log"; exit 1; fi
    if [ $((SECONDS - t0)) -gt 300 ]; then echo "timeout waiting for the reports"; exit 1; fi
    sleep 0.1
  done
  echo "-- the three reports in $home/outbound/acme/:"
  for f in "${files[@]}"; do
    local r
    r=$(ls "$home/outbound/acme/$f".*.report.json)
    printf '   %s: ' "$(basename "$r")"
    jq -c '{status, counts, rejection}' "$r"
  done
  echo "-- quai status --json:"
  local status
  status=$(QUAI_HOME=$home "$QUAI" --config "$home/quai.toml" status --json)
  echo "$status" | jq .
  local got
  got=$(echo "$status" | jq -r '"\(.totals.invoices.accepted) \(.totals.invoices.rejected)"')
  echo "-- expected: accepted $3, rejected $4; quai status: accepted ${got% *}, rejected ${got#* } -> $([ "$got" = "$3 $4" ] && echo OK || echo MISMATCH)"
  [ "$got" = "$3 $4" ] || RESULT=1
  kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || true; DAEMON_PID=
}

echo
echo "== expected (from the generator's manifests):"
total_acc=0; total_rej=0; small_acc=0; small_rej=0
for kind in ubl cii targz; do
  read -r file n rej < <(expected "$TMP/gen/$kind")
  printf '   %-28s %5d invoices: %5d accepted, %4d rejected\n' "$file" "$n" $((n - rej)) "$rej"
  total_acc=$((total_acc + n - rej)); total_rej=$((total_rej + rej))
  if [ "$n" -le 500 ]; then small_acc=$((small_acc + n - rej)); small_rej=$((small_rej + rej)); fi
done
echo "   cap 1000: totals.invoices = {accepted: $total_acc, rejected: $total_rej}, 3 flows processed"
echo "   cap 500 (default): the 1,000- and 800-invoice flows are refused whole (IRR_TAILLE_F);"
echo "                      totals.invoices = {accepted: $small_acc, rejected: $small_rej}"

RESULT=0
run default-cap "" "$small_acc" "$small_rej"
run cap-1000 "max_invoices_per_flow = 1000" "$total_acc" "$total_rej"
exit $RESULT
