#!/usr/bin/env bash
# Quick start 1: set up and run the demo on the built-in emulated token (no hardware).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/sealcodes demo
