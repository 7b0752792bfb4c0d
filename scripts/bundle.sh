#!/usr/bin/env bash
# Build an offline install bundle of sealcodes for an air-gapped machine (docs/air-gapped.md).
#
#   scripts/bundle.sh [options]
#
# Target (default: this machine's Python and platform):
#   --python PY          interpreter to build for: a path or a version such as 3.12 (python3.12);
#                        the bundle installs on that Python version on this platform
#   --python-version X.Y --platform TAG [--platform TAG ...]
#                        another platform (e.g. win_amd64, macosx_11_0_arm64): binary wheels only,
#                        downloaded from PyPI; fails clearly when a package has none for it
# Contents:
#   --extra NAME         an optional feature of sealcodes (repeatable, or NAME,NAME); the names are
#                        pyproject.toml's [project.optional-dependencies], e.g. yubikey
#   --all-extras         every optional feature except `test`
#   --debs               add the Debian packages the target needs at run time (pcscd, libpcsclite1,
#                        libccid, python3-venv) with their dependencies, for a target running the
#                        same Debian release as this machine
#   --deb PKG            one more Debian package for debs/ (repeatable; implies --debs)
# Build:
#   --commit REV         build this commit (default HEAD); uncommitted changes are never included
#   --out DIR            where the archive goes (default: dist/)
#   --no-cache           rebuild pyscard even if this machine built the same wheel before
#   --keep-dir           also leave the unpacked bundle directory next to the archive
#
# Output: DIR/sealcodes-VERSION-COMMIT-TARGET[-EXTRAS].tar.gz, and on stdout the SHA-256 of the
# archive, of its SHA256SUMS and of the sealcodes wheel (the one two builders compare).
set -euo pipefail
umask 022
export LC_ALL=C TZ=UTC PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

die() { echo "bundle: error: $*" >&2; exit 1; }
note() { echo "bundle: $*" >&2; }

python_arg=python3
cross_version=""
platforms=()
extras=()
all_extras=0
want_debs=0
debs_extra=()
rev=HEAD
out="$root/dist"
use_cache=1
keep_dir=0
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python_arg="${2:?--python needs a value}"; shift 2 ;;
    --python-version) cross_version="${2:?--python-version needs X.Y}"; shift 2 ;;
    --platform) platforms+=("${2:?--platform needs a tag}"); shift 2 ;;
    --extra) IFS=, read -r -a more <<<"${2:?--extra needs a name}"; extras+=("${more[@]}"); shift 2 ;;
    --extra=*) IFS=, read -r -a more <<<"${1#--extra=}"; extras+=("${more[@]}"); shift ;;
    --all-extras) all_extras=1; shift ;;
    --debs) want_debs=1; shift ;;
    --deb) want_debs=1; debs_extra+=("${2:?--deb needs a package}"); shift 2 ;;
    --commit) rev="${2:?--commit needs a revision}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --no-cache) use_cache=0; shift ;;
    --keep-dir) keep_dir=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
if [ -n "$cross_version" ] && [ ${#platforms[@]} -eq 0 ]; then die "--python-version needs --platform"; fi
if [ ${#platforms[@]} -gt 0 ] && [ -z "$cross_version" ]; then die "--platform needs --python-version"; fi
if [ -n "$cross_version" ] && ! [[ "$cross_version" =~ ^3\.[0-9]+$ ]]; then die "--python-version must look like 3.12"; fi

case "$python_arg" in
  [0-9]*) python_cmd="python$python_arg" ;;
  *) python_cmd="$python_arg" ;;
esac
command -v "$python_cmd" >/dev/null 2>&1 || die "no interpreter $python_cmd (install it, or pass --python PATH)"
python_cmd="$(command -v "$python_cmd")"
"$python_cmd" -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null \
  || die "$python_cmd must be Python >= 3.11 with venv and ensurepip (Debian: python3-venv)"

# --- the source: exactly the commit ---------------------------------------------------------------
git -C "$root" rev-parse --git-dir >/dev/null 2>&1 || die "$root is not a git checkout (the bundle is built from a commit)"
commit="$(git -C "$root" rev-parse --verify "$rev^{commit}" 2>/dev/null)" || die "no commit $rev"
epoch="$(git -C "$root" log -1 --format=%ct "$commit")"
if [ "$rev" = HEAD ] && [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
  note "note: the work tree has uncommitted changes; they are NOT in the bundle (it is built from $commit)"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/sealcodes-bundle.XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

src="$work/src"
mkdir -p "$src"
# --no-same-permissions: modes from the umask (0644/0755), not from git archive's tar.umask
git -C "$root" archive --format=tar "$commit" | tar -x --no-same-owner --no-same-permissions -C "$src"
export SOURCE_DATE_EPOCH="$epoch"

# --- the extras: checked against the commit's pyproject.toml --------------------------------------
known_extras="$("$python_cmd" - "$src/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print(" ".join(sorted(tomllib.load(f)["project"].get("optional-dependencies", {}))))
PY
)"
version="$("$python_cmd" - "$src/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print(tomllib.load(f)["project"]["version"])
PY
)"
if [ "$all_extras" = 1 ]; then
  for e in $known_extras; do [ "$e" = test ] || extras+=("$e"); done
fi
chosen=()
for e in "${extras[@]+"${extras[@]}"}"; do
  [ -n "$e" ] || continue
  case " $known_extras " in *" $e "*) ;; *) die "unknown extra '$e' (this commit has: ${known_extras:-none})" ;; esac
  case " ${chosen[*]+"${chosen[*]}"} " in *" $e "*) ;; *) chosen+=("$e") ;; esac
done
if [ ${#chosen[@]} -gt 0 ]; then
  IFS=$'\n' read -r -d '' -a chosen < <(printf '%s\n' "${chosen[@]}" | sort && printf '\0') || true
fi
extras_csv="$(IFS=,; echo "${chosen[*]+"${chosen[*]}"}")"

# --- build tools, pinned ---------------------------------------------------------------------------
note "build tools (scripts/bundle/build-requirements.txt) into a private venv"
"$python_cmd" -m venv "$work/buildenv"
bpy="$work/buildenv/bin/python"
"$bpy" -m pip install -q -r "$here/bundle/build-requirements.txt"
export PATH="$work/buildenv/bin:$PATH"   # the pinned swig comes first
py_tag="$("$bpy" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
py_name="$("$bpy" -c 'import sys; print(f"{sys.implementation.name}{sys.version_info[0]}.{sys.version_info[1]}")')"
if [ -n "$cross_version" ]; then
  target_python="cpython$cross_version"
  target_tag="cp${cross_version/./}-$(IFS=.; echo "${platforms[*]}")"
else
  target_python="$py_name"
  target_tag="$py_tag-$("$bpy" -c 'import sysconfig; print(sysconfig.get_platform().replace("-", "_").replace(".", "_"))')"
fi

# --- the sealcodes wheel: reproducible ------------------------------------------------------------
note "building the sealcodes wheel from $commit (SOURCE_DATE_EPOCH=$epoch)"
(cd "$src" && "$bpy" -m pip wheel -q --no-deps --no-build-isolation --no-cache-dir -w "$work/own" .) \
  || die "building the sealcodes wheel failed"
own_wheel="$(ls "$work/own"/sealcodes-*.whl)"

# --- every dependency -----------------------------------------------------------------------------
requirement="sealcodes${extras_csv:+[$extras_csv]} @ file://$own_wheel"
mkdir -p "$work/dl"
note "downloading the dependencies${extras_csv:+ with extras $extras_csv}"
if [ -n "$cross_version" ]; then
  platform_args=()
  for p in "${platforms[@]}"; do platform_args+=(--platform "$p"); done
  "$bpy" -m pip download -q --dest "$work/dl" --only-binary=:all: --implementation cp \
    --python-version "$cross_version" --abi "cp${cross_version/./}" "${platform_args[@]}" "$requirement" \
    || die "a dependency has no wheel for $target_tag on PyPI (pyscard has none for Linux): build the bundle on a machine of that platform"
  "$bpy" "$here/bundle/cross_closure.py" "$work/dl" "$own_wheel" "$extras_csv" "$cross_version" "${platforms[@]}" -- \
    --only-binary=:all: --implementation cp --python-version "$cross_version" --abi "cp${cross_version/./}" \
    "${platform_args[@]}" || die "completing the dependencies for $target_tag failed"
else
  # pyscard has no Linux wheel: its source is built below; everything else as published
  "$bpy" -m pip download -q --dest "$work/dl" --only-binary=:all: --no-binary=pyscard "$requirement" \
    || die "downloading the dependencies failed"
fi
rm -f "$work/dl"/sealcodes-*.whl

bundle_name="sealcodes-$version-${commit:0:12}-$target_tag${extras_csv:+-${extras_csv//,/-}}"
bundle="$work/$bundle_name"
mkdir -p "$bundle/wheels"
cp "$own_wheel" "$bundle/wheels/"

for sdist in "$work/dl"/*.tar.gz "$work/dl"/*.zip; do
  [ -e "$sdist" ] || continue
  case "$(basename "$sdist")" in
    pyscard-*.tar.gz) ;;
    *) die "$(basename "$sdist") has no wheel for this target; only pyscard is built here" ;;
  esac
  # pyscard: built here into a wheel, so the target needs no compiler, swig or PC/SC headers.
  # Reproducible: its own release date as SOURCE_DATE_EPOCH, a fixed source path in the debug
  # information, pinned setuptools and swig; the same compiler gives the same bytes.
  sdist_sha="$(sha256sum "$sdist" | cut -d' ' -f1)"
  cc_version="$(${CC:-cc} --version 2>/dev/null || echo unknown)"
  key="$(printf '%s\n' "$sdist_sha" "$py_tag" "$target_tag" "$cc_version" "$(cat "$here/bundle/build-requirements.txt")" \
         | sha256sum | cut -c1-32)"
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/sealcodes/bundle/pyscard-$key"
  if [ "$use_cache" = 1 ] && ls "$cache"/pyscard-*.whl >/dev/null 2>&1; then
    note "pyscard: the wheel built earlier from the same source and tools ($cache)"
    cp "$cache"/pyscard-*.whl "$bundle/wheels/"
    continue
  fi
  note "pyscard: building a wheel from $(basename "$sdist") (needs gcc and libpcsclite-dev)"
  mkdir -p "$work/pyscard"
  tar -x --no-same-owner --no-same-permissions -C "$work/pyscard" -f "$sdist"
  pdir="$(ls -d "$work/pyscard"/pyscard-*)"
  sdist_epoch="$(tar -tvf "$sdist" --full-time | awk '/PKG-INFO$/ && !done {print $4" "$5; done = 1}')"
  sdist_epoch="$(date -u -d "$sdist_epoch" +%s 2>/dev/null || echo "$epoch")"
  (cd "$pdir" && SOURCE_DATE_EPOCH="$sdist_epoch" \
     CFLAGS="${CFLAGS:-} -ffile-prefix-map=$pdir=/usr/src/$(basename "$pdir") -fdebug-prefix-map=$pdir=/usr/src/$(basename "$pdir")" \
     "$bpy" -m pip wheel -q --no-deps --no-build-isolation --no-cache-dir -w "$work/pyscard-wheel" .) \
    || die "building pyscard failed: it needs gcc, swig and libpcsclite-dev (scripts/setup.sh installs them)"
  cp "$work/pyscard-wheel"/pyscard-*.whl "$bundle/wheels/"
  if [ "$use_cache" = 1 ]; then
    mkdir -p "$cache" && cp "$work/pyscard-wheel"/pyscard-*.whl "$cache/" || true
  fi
done
cp "$work/dl"/*.whl "$bundle/wheels/" 2>/dev/null || true

# --- requirements.txt: every wheel pinned by version and hash ----------------------------------------
"$bpy" - "$bundle/wheels" "$bundle/requirements.txt" <<'PY'
import hashlib, os, sys
wheels, target = sys.argv[1:]
lines = ["# Every package of this bundle, pinned by version and SHA-256 (pip --require-hashes)."]
for name in sorted(os.listdir(wheels)):
    project, ver = name.split("-")[:2]
    digest = hashlib.sha256(open(os.path.join(wheels, name), "rb").read()).hexdigest()
    lines.append(f"{project}=={ver} --hash=sha256:{digest}")
open(target, "w").write("\n".join(lines) + "\n")
PY

# --- Debian packages (optional) --------------------------------------------------------------------
deb_list="(none: built without --debs)"
if [ "$want_debs" = 1 ]; then
  command -v apt-get >/dev/null 2>&1 || die "--debs needs apt-get (build on the Debian release of the target)"
  wanted=(pcscd libpcsclite1 libccid python3-venv "${debs_extra[@]+"${debs_extra[@]}"}")
  for p in "${wanted[@]}"; do
    apt-cache show --no-all-versions "$p" >/dev/null 2>&1 \
      || die "apt knows no package $p (run apt-get update first, as root)"
  done
  # What apt would install for them on a system with nothing installed, minus what every Debian
  # system has (the Essential and Priority: required packages and their dependencies).
  empty_status="$work/empty-status"
  : >"$empty_status"
  resolve() {
    apt-get -s -q -o Dir::State::status="$empty_status" install "$@" 2>/dev/null | awk '/^Inst / {print $2}' | sort -u
  }
  mapfile -t base_roots < <(dpkg-query -W -f '${Package} ${Essential} ${Priority}\n' | awk '$2 == "yes" || $3 == "required" {print $1}')
  # (a package named with --deb is always taken, e.g. a base library the target has in an older version)
  mapfile -t get < <({ comm -23 <(resolve "${wanted[@]}") <(resolve "${base_roots[@]}")
                       printf '%s\n' "${debs_extra[@]+"${debs_extra[@]}"}"; } | sed '/^$/d' | sort -u)
  [ ${#get[@]} -gt 0 ] || die "apt could not resolve ${wanted[*]}"
  mkdir -p "$bundle/debs"
  chmod 0777 "$work" "$bundle" "$bundle/debs" 2>/dev/null || true   # apt's sandbox user writes here
  note "downloading ${#get[@]} Debian packages: ${get[*]}"
  (cd "$bundle/debs" && apt-get download -q=2 "${get[@]}") || die "apt-get download failed"
  chmod 0755 "$work" "$bundle" "$bundle/debs"
  deb_list="$(cd "$bundle/debs" && ls | sed 's/^/    /')"
fi

# --- installer, README, BUNDLE-INFO ---------------------------------------------------------------
cp "$here/bundle/install.py" "$here/bundle/install.sh" "$bundle/"
os_release="$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}" || echo unknown)"
{
  echo "sealcodes: $version"
  echo "commit: $commit"
  echo "commit-date: $(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"
  echo "python: $target_python"
  echo "target: $target_tag"
  echo "extras: ${extras_csv:-none}"
  echo "built-on: $os_release"
  echo "build-tools: $(grep -v '^#' "$here/bundle/build-requirements.txt" | tr '\n' ' ' | sed 's/ *$//')"
  echo "debs: $([ "$want_debs" = 1 ] && echo "yes, for $os_release" || echo no)"
} >"$bundle/BUNDLE-INFO"
DEB_LIST="$deb_list" TARGET_PYTHON="$target_python" BUNDLE_NAME="$bundle_name" \
  "$bpy" - "$here/bundle/README.md.in" "$bundle/README.md" "$bundle/BUNDLE-INFO" "$bundle/requirements.txt" <<'PY'
import os, sys
template, target, info, reqs = sys.argv[1:]
text = open(template).read()
packages = "\n".join("    " + line.split(" ")[0] for line in open(reqs) if not line.startswith("#"))
values = {"INFO": "".join("    " + line for line in open(info)).rstrip("\n"), "PACKAGES": packages,
          "DEBS": os.environ["DEB_LIST"], "PYTHON": os.environ["TARGET_PYTHON"].removeprefix("cpython"),
          "NAME": os.environ["BUNDLE_NAME"]}
for key, value in values.items():
    text = text.replace("@" + key + "@", value)
open(target, "w").write(text)
PY

# --- SHA256SUMS, normalised modes and times, the archive --------------------------------------------
(cd "$bundle" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | sort | xargs -d '\n' sha256sum >SHA256SUMS)
find "$bundle" -type d -exec chmod 0755 {} +
find "$bundle" -type f -exec chmod 0644 {} +
chmod 0755 "$bundle/install.sh" "$bundle/install.py"
find "$bundle" -exec touch -h -d "@$epoch" {} +
mkdir -p "$out"
archive="$out/$bundle_name.tar.gz"
tar --sort=name --format=gnu --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
    -C "$work" -cf - "$bundle_name" | gzip -n -9 >"$archive.tmp"
mv "$archive.tmp" "$archive"
if [ "$keep_dir" = 1 ]; then
  rm -rf "${out:?}/$bundle_name" && cp -a "$bundle" "$out/"
fi

sha() { sha256sum "$1" | cut -d' ' -f1; }
echo "archive:         $archive"
echo "archive sha256:  $(sha "$archive")"
echo "SHA256SUMS sha256: $(sha "$bundle/SHA256SUMS")"
echo "sealcodes wheel: $(basename "$own_wheel") sha256 $(sha "$own_wheel")"
echo "target:          $target_python $target_tag, extras: ${extras_csv:-none}, debs: $([ "$want_debs" = 1 ] && echo yes || echo no)"
