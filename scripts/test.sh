#!/usr/bin/env bash
# Quick start 2: set up and run the whole test suite (pytest), including the real
# PC/SC path through pcscd + vsmartcard-vpcd and the firmware under MicroPython.
#   scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
bash scripts/start-pcscd.sh
exec .venv/bin/python -m pytest "$@"
