#!/usr/bin/env bash
# Set up sealcodes on a Debian machine: system packages, a virtualenv in .venv with
# sealcodes and its test tools, and the npm package that runs MicroPython under Node.
#   scripts/setup.sh          what the demo needs
#   scripts/setup.sh --test   plus what the test suite needs (pcscd, vpcd, node, postgresql, pgbouncer, sqlite3, pamtester)
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

# pyscard builds from source: swig, libpcsclite-dev and a C compiler
apt_packages=(python3 python3-venv python3-dev gcc swig libpcsclite-dev pkg-config)
if [ "$want_tests" = 1 ]; then
  # git, tar, gzip, apt: tests/test_bundle.py builds an offline bundle (scripts/bundle.sh)
  apt_packages+=(pcscd vsmartcard-vpcd pcsc-tools procps strace util-linux git tar gzip)
  # the printable sheet: a real cupsd (lp, lpadmin), pdftotext/pdftoppm, zbarimg
  apt_packages+=(cups-daemon cups-client cups-bsd cups-core-drivers poppler-utils zbar-tools)
  # verifier tests: a real PostgreSQL server and PgBouncer (started by pytest fixtures), the sqlite3
  # shell (backups), real PAM; curl scrapes /metrics, systemd-analyze checks the systemd unit
  apt_packages+=(postgresql pgbouncer sqlite3 pamtester curl systemd)
  # board tests: Wireshark's dissector reads the board's USB descriptors from a usbmon capture;
  # valgrind counts the token's instructions (benchmarks/bench_board.py --instructions)
  apt_packages+=(tshark valgrind)
  command -v node >/dev/null 2>&1 || apt_packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || apt_packages+=(npm)
fi
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# a Python from elsewhere (pyenv, /usr/local) with venv and headers can stand in for Debian's
if python3 -c 'import venv, ensurepip, sysconfig, os; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' 2>/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do case "$p" in python3|python3-venv|python3-dev) ;; *) filtered+=("$p");; esac; done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# pip runs only when pyproject.toml changed since the last successful run (the install is editable)
extra=yubikey
[ "$want_tests" = 1 ] && extra=test
stamp=".venv/.sealcodes-setup-$extra"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$extra]"
  echo "$wanted" > "$stamp"
fi
if [ "$want_tests" = 1 ]; then
  if [ ! -d node_modules/@micropython/micropython-webassembly-pyscript ]; then
    npm ci --no-audit --no-fund --silent || npm install --no-audit --no-fund --silent
  fi
fi
echo "setup: done (.venv ready)"
