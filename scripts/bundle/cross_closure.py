"""Complete a cross-platform download (scripts/bundle.sh --platform): pip evaluates environment
markers for the machine it runs on, not for --platform, so a dependency the target needs (click
needs colorama on Windows) is missing and one only this machine needs (SecretStorage on Linux) is
there. This walks Requires-Dist from sealcodes[extras] with the target's markers, downloads what is
missing (binary only, for the target) and removes what the target does not need.

    python cross_closure.py DL_DIR SEALCODES_WHEEL EXTRAS_CSV PYTHON_VERSION PLATFORM... -- PIP_ARGS...
"""

import os
import subprocess
import sys
import zipfile
from email.parser import Parser

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename


def target_environment(python_version, platform):
    env = default_environment()
    env.update(python_version=python_version, python_full_version=python_version + ".0",
               implementation_name="cpython", platform_python_implementation="CPython")
    if platform.startswith("win"):
        machine = {"win_amd64": "AMD64", "win_arm64": "ARM64", "win32": "x86"}.get(platform, "AMD64")
        env.update(sys_platform="win32", platform_system="Windows", os_name="nt", platform_machine=machine)
    elif platform.startswith("macosx"):
        machine = "arm64" if platform.endswith(("arm64", "universal2")) else "x86_64"
        env.update(sys_platform="darwin", platform_system="Darwin", os_name="posix", platform_machine=machine)
    else:
        machine = platform.split("_", 2)[-1] if platform.startswith("manylinux_") else platform.split("_", 1)[-1]
        env.update(sys_platform="linux", platform_system="Linux", os_name="posix", platform_machine=machine)
    return env


def requires(wheel):
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        meta = Parser().parsestr(zf.read(name).decode("utf-8"))
    return [Requirement(r) for r in meta.get_all("Requires-Dist") or []]


def main(argv):
    split = argv.index("--")
    dl, own, extras_csv, python_version, *platforms = argv[:split]
    pip_args = argv[split + 1:]
    env = target_environment(python_version, platforms[0])
    root_extras = {e for e in extras_csv.split(",") if e}
    while True:
        wheels = {canonicalize_name(parse_wheel_filename(f)[0]): os.path.join(dl, f)
                  for f in os.listdir(dl) if f.endswith(".whl")}
        wheels["sealcodes"] = own
        needed, missing = {"sealcodes"}, []
        todo = [("sealcodes", root_extras)]
        while todo:
            name, extras = todo.pop()
            for req in requires(wheels[name]):
                if req.marker and not any(req.marker.evaluate(dict(env, extra=e)) for e in (extras or {""})):
                    continue
                dep = canonicalize_name(req.name)
                if dep not in wheels:
                    missing.append(str(Requirement(f"{req.name}{req.specifier}")))
                elif dep not in needed:
                    needed.add(dep)
                    todo.append((dep, set(req.extras)))
        if not missing:
            break
        print("bundle: also for the target: " + ", ".join(sorted(set(missing))), file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--dest", dl, *pip_args,
                        *sorted(set(missing))], check=True)
    for name, path in wheels.items():
        if name not in needed:
            print(f"bundle: not needed on the target: {os.path.basename(path)}", file=sys.stderr)
            os.remove(path)


if __name__ == "__main__":
    main(sys.argv[1:])
