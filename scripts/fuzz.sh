#!/usr/bin/env bash
# Run every fuzz target of fuzz/ for a bounded time, one after another.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The machine's stable
# toolchain is used with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes nightly-only
# flags for libFuzzer and AddressSanitizer); set QUAI_FUZZ_SANITIZER=none to
# build without ASan; QUAI_FUZZ_ARGS adds libFuzzer options (e.g.
# -detect_leaks=0 once a leak is known and reported). Seed corpora are made from the project's fixtures into
# fuzz/corpus/<target>/ (not committed); crashes land in
# fuzz/artifacts/<target>/. Per target, the last line of libFuzzer's output
# (executions, coverage) is appended to fuzz/last-run.txt.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(unpack ubl cii facturx edifact flow as2)
fi
sanitizer="${QUAI_FUZZ_SANITIZER:-address}"
target_dir="${QUAI_FUZZ_TARGET_DIR:-$root/target/fuzz}"
export RUSTC_BOOTSTRAP=1
# Without leak detection, also skip LeakSanitizer's check at exit.
case "${QUAI_FUZZ_ARGS:-}" in
  *detect_leaks=0*) export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" ;;
esac

command -v cargo-fuzz >/dev/null || {
  echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
  exit 2
}

fx="$root/mappings/tests/fixtures"
seed() { # seed TARGET FILE...
  local dir="$root/fuzz/corpus/$1"
  shift
  mkdir -p "$dir"
  for f in "$@"; do
    [ -f "$f" ] && cp -f "$f" "$dir/$(basename "$f")"
  done
  return 0
}

make_seeds() {
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  shopt -s nullglob
  local ubl=("$fx"/ubl/*/*.xml) cii=("$fx"/cii/*/*.xml) edi=("$fx"/edifact/*)
  local pdf=("$fx"/facturx/*/*.pdf)
  seed ubl "${ubl[@]:0:40}"
  seed cii "${cii[@]:0:40}"
  seed edifact "${edi[@]}"
  seed facturx "${pdf[@]}"
  # Archives of fixtures: zip, tar, tar.gz, gzip, zip in tar.gz.
  mkdir -p "$tmp/a"
  cp "${ubl[0]}" "$tmp/a/u.xml"
  cp "${cii[0]}" "$tmp/a/c.xml"
  (cd "$tmp/a" && python3 - <<'PY'
import gzip, io, tarfile, zipfile
def zip_of(names):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for n in names:
            z.write(n)
    return b.getvalue()
def tar_of(files, mode="w"):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode=mode) as t:
        for name, data in files:
            i = tarfile.TarInfo(name); i.size = len(data)
            t.addfile(i, io.BytesIO(data))
    return b.getvalue()
u = open("u.xml", "rb").read(); c = open("c.xml", "rb").read()
open("s.zip", "wb").write(zip_of(["u.xml", "c.xml"]))
open("s.tar", "wb").write(tar_of([("u.xml", u), ("c.xml", c)]))
open("s.tar.gz", "wb").write(gzip.compress(tar_of([("u.xml", u), ("in.zip", zip_of(["c.xml"]))])))
open("s.xml.gz", "wb").write(gzip.compress(u))
PY
  )
  for t in unpack flow; do
    seed "$t" "$tmp"/a/s.* "${ubl[0]}" "${cii[0]}" "${edi[0]}" "${pdf[@]:0:2}"
  done
  # AS2: Content-Type line, then the body.
  local as2="$root/fuzz/corpus/as2"
  mkdir -p "$as2"
  printf 'application/xml\n%s' "$(head -c 2000 "${ubl[0]}")" >"$as2/plain"
  printf 'multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="b1"\n--b1\r\nContent-Type: application/xml\r\n\r\n<a/>\r\n--b1\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHAqCAMIACAQEx\r\n--b1--\r\n' >"$as2/signed"
  printf 'application/pkcs7-mime; smime-type=enveloped-data\nMIAGCSqGSIb3DQEHA6CAMIACAQAx' >"$as2/enveloped"
  printf 'application/pkcs7-mime; smime-type=compressed-data\nMIAGCyqGSIb3DQEJEAEJoIAwgAIBADANBgsqhkiG9w0BCRADCDCABgkqhkiG9w0BBwE=' >"$as2/compressed"
  # Real S/MIME messages made with the fuzz identity (fuzz/as2_fixture/):
  # signed, encrypted (base64 and DER), signed then encrypted.
  if command -v openssl >/dev/null; then
    local k="$root/fuzz/as2_fixture"
    printf 'Content-Type: application/xml\r\n\r\n%s\r\n' "$(head -c 1500 "${ubl[0]}")" >"$tmp/p.mime"
    openssl cms -sign -in "$tmp/p.mime" -signer "$k/cert.pem" -inkey "$k/key.pem" -md sha256 -out "$tmp/signed.smime"
    openssl cms -encrypt -in "$tmp/p.mime" -aes256 -out "$tmp/enc.smime" "$k/cert.pem"
    openssl cms -encrypt -in "$tmp/signed.smime" -aes128 -out "$tmp/signenc.smime" "$k/cert.pem"
    openssl cms -encrypt -in "$tmp/p.mime" -aes256 -outform DER -out "$tmp/enc.der" "$k/cert.pem"
    python3 - "$tmp" "$as2" <<'PY'
import re, sys
tmp, out = sys.argv[1], sys.argv[2]
def split(raw):
    m = re.search(rb"\r?\n\r?\n", raw)
    head, body = raw[:m.start()], raw[m.end():]
    head = re.sub(rb"\r?\n[ \t]+", b" ", head)
    ct = [l.split(b":", 1)[1].strip() for l in head.splitlines() if l.lower().startswith(b"content-type:")][0]
    return ct, body
for name in ["signed", "enc", "signenc"]:
    ct, body = split(open(f"{tmp}/{name}.smime", "rb").read())
    open(f"{out}/{name}-openssl", "wb").write(ct + b"\n" + body)
der = open(f"{tmp}/enc.der", "rb").read()
open(f"{out}/enc-der", "wb").write(b"application/pkcs7-mime; smime-type=enveloped-data\n" + der)
PY
  fi
  local seeded
  seeded="$(cd "$root/fuzz/corpus" && for d in */; do printf '%s=%s ' "${d%/}" "$(ls "$d" | wc -l)"; done)"
  echo "seed corpora: $seeded"
}

make_seeds
: >"$root/fuzz/last-run.txt"
status=0
for t in "${targets[@]}"; do
  echo "== $t: ${seconds}s"
  log="$root/fuzz/$t.log"
  mkdir -p "$root/fuzz/artifacts/$t"
  if cargo fuzz run -O -s "$sanitizer" --target-dir "$target_dir" "$t" \
      "fuzz/corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
      -timeout=10 -max_len=1048576 -print_final_stats=1 ${QUAI_FUZZ_ARGS:-} >"$log" 2>&1; then
    result=ok
  else
    result="FAILED (see fuzz/$t.log and fuzz/artifacts/$t/)"
    status=1
  fi
  runs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1)"
  last="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
  echo "$t: $result; executions ${runs:-?}; $last" | tee -a "$root/fuzz/last-run.txt"
done
exit $status
