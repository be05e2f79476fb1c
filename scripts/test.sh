#!/usr/bin/env bash
# The one command that runs every test of quai on a fresh machine.
#
# It installs what the tests need and is missing (OpenSSH server, ClamAV's clamd, PostgreSQL,
# Chromium, Python venv with the SMTP and AS2 test peers), then runs the whole
# workspace test suite. The servers themselves are started by the tests, as
# child processes on 127.0.0.1 with free ports in temporary folders.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { printf '\n== %s\n' "$*"; }

# ---------------------------------------------------------------- system packages
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/sbin/clamd ] || need+=(clamav-daemon)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
command -v unzip >/dev/null 2>&1 || need+=(unzip)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v kill >/dev/null 2>&1 || need+=(procps)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
[ -e /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
if [ ${#need[@]} -gt 0 ]; then
  log "installing system packages: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The packages may start system services we do not use; the tests run their own.
mkdir -p /run/sshd 2>/dev/null || true

# ---------------------------------------------------------------- python test peers
VENV=${QUAI_TEST_VENV:-$ROOT/target/test-venv}
export QUAI_TEST_VENV=$VENV
REQS_SUM=$(cat scripts/test-requirements.txt test-support/peers/as2/requirements.txt 2>/dev/null | sha256sum | cut -c1-16)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.quai-reqs" 2>/dev/null)" != "$REQS_SUM" ]; then
  log "creating the test venv at $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r scripts/test-requirements.txt
  echo "$REQS_SUM" > "$VENV/.quai-reqs"
fi
# oscrypto 1.3.0 (a pyas2lib dependency) cannot parse OpenSSL 3.0.10+ version
# strings; widen its version regex (known upstream bug).
"$VENV/bin/python" - <<'PY'
import glob, os
root = os.environ["QUAI_TEST_VENV"]
for f in glob.glob(root + "/lib/python3*/site-packages/oscrypto/_openssl/_libcrypto_c*.py"):
    text = open(f).read()
    fixed = text.replace(r"\\d\\.\\d\\.\\d", r"\\d+\\.\\d+\\.\\d+")
    if fixed != text:
        open(f, "w").write(fixed)
        print("patched", f)
PY
"$VENV/bin/python" -c 'import pyas2lib, aiosmtpd, lxml, saxonche, importlib.util; assert importlib.util.find_spec("pyfrctc") and importlib.util.find_spec("facturx")' \
  || { echo "test venv is broken" >&2; exit 1; }

# ---------------------------------------------------------------- checks and tests
log "cargo fmt --check"
cargo fmt --all -- --check

log "building"
cargo build --workspace --all-targets

log "running all tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
