#!/usr/bin/env python3
"""Install sealcodes from this offline bundle. No network is used or needed.

    python3 install.py [--venv DIR] [--system-packages] [--dry-run]

1. Every file of the bundle is checked against SHA256SUMS first; a changed, missing or
   extra file stops everything before anything is installed.
2. The Python running this script must be the one the bundle was built for.
3. With --system-packages (Debian, as root) the .deb files in debs/ are installed by
   apt-get, offline.
4. A virtual environment is made at DIR (or DIR is used when it already is one), and pip
   installs the bundle's wheels into it with --no-index and --require-hashes: nothing
   can come from anywhere but wheels/. A virtual environment this script made is removed
   again if the installation fails.

Only the standard library is used: this file runs before anything is installed.
"""

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
SUMS = "SHA256SUMS"
SUM_LINE = re.compile(r"^([0-9a-f]{64})  ([A-Za-z0-9._+/%~-]+)$")


class Refused(Exception):
    """One line for the user; nothing was installed."""


def say(text):
    print("install: " + text, flush=True)


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sums():
    path = os.path.join(HERE, SUMS)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        raise Refused(f"{SUMS} is missing: this is not a complete sealcodes bundle") from None
    listed = {}
    for number, line in enumerate(raw.decode("ascii", "replace").splitlines(), start=1):
        match = SUM_LINE.match(line)
        name = match.group(2) if match else ""
        parts = name.split("/")
        if not match or ".." in parts or "" in parts or name == SUMS or name in listed:
            raise Refused(f"{SUMS} line {number} is malformed: the bundle was altered")
        listed[name] = match.group(1)
    if not listed:
        raise Refused(f"{SUMS} is empty: the bundle was altered")
    return listed, hashlib.sha256(raw).hexdigest()


def bundle_files():
    found = set()
    for root, _, files in os.walk(HERE):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), HERE).replace(os.sep, "/")
            if rel != SUMS:
                found.add(rel)
    return found


def verify():
    """Check every file; return the SHA-256 of SHA256SUMS (to compare with the builder's)."""
    listed, sums_hash = read_sums()
    present = bundle_files()
    changed = sorted(n for n in listed if n in present and sha256_file(os.path.join(HERE, n)) != listed[n])
    missing = sorted(set(listed) - present)
    extra = sorted(present - set(listed))
    problems = []
    if changed:
        problems.append("changed: " + ", ".join(changed))
    if missing:
        problems.append("missing: " + ", ".join(missing))
    if extra:
        problems.append("not in SHA256SUMS: " + ", ".join(extra))
    if problems:
        raise Refused("bundle check FAILED, nothing installed (" + "; ".join(problems)
                      + "). Get a fresh copy of the bundle.")
    say(f"all {len(listed)} files match SHA256SUMS (SHA-256 of SHA256SUMS: {sums_hash})")
    return sums_hash


def bundle_info():
    info = {}
    with open(os.path.join(HERE, "BUNDLE-INFO"), encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.partition(":")
            if sep:
                info[key.strip()] = value.strip()
    return info


def check_python(info):
    want = info.get("python", "")
    have = f"{sys.implementation.name}{sys.version_info[0]}.{sys.version_info[1]}"
    if want and want != have:
        raise Refused(f"this bundle is for {want}, but this is {have} ({sys.executable}); "
                      f"run install.py with that Python (or build a bundle for this one)")


def venv_python(directory):
    for candidate in (os.path.join(directory, "bin", "python"), os.path.join(directory, "Scripts", "python.exe")):
        if os.path.isfile(candidate):
            return candidate
    return None


def install_debs(dry_run):
    debs_dir = os.path.join(HERE, "debs")
    debs = sorted(os.path.join(debs_dir, n) for n in os.listdir(debs_dir)) if os.path.isdir(debs_dir) else []
    if not debs:
        raise Refused("--system-packages: this bundle has no debs/ (build it with scripts/bundle.sh --debs)")
    if shutil.which("apt-get") is None:
        raise Refused("--system-packages needs apt-get (a Debian system)")
    if os.geteuid() != 0 and not dry_run:
        raise Refused("--system-packages must run as root (sudo)")
    command = ["apt-get", "install", "-y", "--no-download", "-o", "Dpkg::Lock::Timeout=120"]
    if dry_run:
        command.append("--simulate")
    say(("simulating" if dry_run else "installing") + f" {len(debs)} Debian packages from debs/")
    result = subprocess.run(command + debs, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise Refused("apt-get could not install debs/ (is this the Debian release the bundle was built on? "
                      "see README.md)")


def install_wheels(target, dry_run):
    wheels = os.path.join(HERE, "wheels")
    requirements = os.path.join(HERE, "requirements.txt")
    python = venv_python(target)
    created = False
    if python is None:
        if os.path.exists(target) and os.listdir(target):
            raise Refused(f"{target} exists and is not a virtual environment; name a new directory or a venv")
        if dry_run:
            say(f"would create a virtual environment at {target}")
            return
        say(f"creating a virtual environment at {target}")
        try:
            venv.EnvBuilder(with_pip=True).create(target)
        except (OSError, subprocess.CalledProcessError) as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise Refused(f"could not create a virtual environment ({exc.__class__.__name__}); on Debian the "
                          "python3-venv package is needed (it is in debs/ when the bundle has one)") from None
        created = True
        python = venv_python(target)
    else:
        say(f"installing into the existing virtual environment {target}")
    # pip sees no configuration, no index and no other place than wheels/; every wheel must match
    # the hash in requirements.txt as well
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    command = [python, "-m", "pip", "--isolated", "install", "--no-index", "--quiet", "--find-links", wheels,
               "--only-binary", ":all:", "--require-hashes", "--no-cache-dir", "-r", requirements]
    if dry_run:
        command.insert(command.index("install") + 1, "--dry-run")
    result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        raise Refused("pip could not install the wheels" + (" (the new virtual environment was removed)"
                                                            if created else ""))
    if dry_run:
        return
    scripts = os.path.dirname(python)
    sealcodes = shutil.which("sealcodes", path=scripts) or os.path.join(scripts, "sealcodes")
    check = subprocess.run([sealcodes, "--version"], capture_output=True, text=True)
    if check.returncode != 0:
        raise Refused("sealcodes was installed but does not start: " + (check.stderr.strip().splitlines() or ["?"])[-1])
    say(f"{check.stdout.strip()} installed; run it as {sealcodes}")


def default_venv():
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "sealcodes", "venv")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="install.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", metavar="DIR", default=default_venv(),
                        help="virtual environment to create, or an existing one to install into "
                             "(default: %(default)s)")
    parser.add_argument("--system-packages", action="store_true",
                        help="also install the Debian packages in debs/ with apt-get (as root)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check everything and show what would be installed; install nothing")
    parser.add_argument("--check-only", action="store_true", help="only check the files against SHA256SUMS")
    args = parser.parse_args(argv)
    try:
        verify()
        if args.check_only:
            return 0
        info = bundle_info()
        check_python(info)
        if args.system_packages:
            install_debs(args.dry_run)
        install_wheels(os.path.abspath(os.path.expanduser(args.venv)), args.dry_run)
    except Refused as exc:
        print("install: error: " + str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("install: interrupted", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
