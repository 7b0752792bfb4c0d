#!/bin/sh
# Install sealcodes from this offline bundle: checks every file against SHA256SUMS, then
# installs into a virtual environment with pip --no-index. See README.md.
#   ./install.sh [--venv DIR] [--system-packages] [--dry-run] [--check-only]
# PYTHON=/path/to/python ./install.sh ...   uses that interpreter.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-}
if [ -z "$python" ]; then
  want=$(sed -n 's/^python: cpython//p' "$here/BUNDLE-INFO" 2>/dev/null || true)
  for candidate in "python$want" python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
if [ -z "$python" ]; then
  echo "install: error: no python3 found; set PYTHON=/path/to/python$want" >&2
  exit 1
fi
exec "$python" "$here/install.py" "$@"
