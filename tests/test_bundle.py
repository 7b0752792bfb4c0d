"""The offline install bundle (scripts/bundle.sh, docs/air-gapped.md), for real.

One bundle is built for the whole module (this Python, this platform, every optional feature and
the Debian packages), from the repository's HEAD commit, with network. Then:
- it installs into a fresh virtual environment inside a network namespace with no network at all
  (`unshare -n`, root), and the installed `sealcodes` runs `demo` and `expand` (a published vector);
- a bundle with one changed byte, an added or a missing file is refused and nothing is installed;
- the Debian packages in debs/ install offline on a minimal system of this release (apt simulation);
- a second build of the same commit gives the same sealcodes wheel and, built again from
  source, the same pyscard wheel (SHA-256).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from _support import ROOT

BUNDLE_SH = ROOT / "scripts" / "bundle.sh"
VECTORS = ROOT / "tests" / "vectors" / "derivation-v1.json"
# the interpreter behind this test's virtual environment: the bundle is built for it
PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))

needs_root_unshare = pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0, reason="unshare -n needs root (CI runs as root)")
needs_apt = pytest.mark.skipif(shutil.which("apt-get") is None, reason="the Debian part needs apt-get")


def _build(out: Path, *options: str) -> dict:
    result = subprocess.run(["bash", str(BUNDLE_SH), "--python", PYTHON, "--out", str(out), *options],
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]
    fields = dict(re.findall(r"^([\w ]+?):\s+(.*)$", result.stdout, re.M))
    archive = Path(fields["archive"])
    assert archive.is_file() and archive.parent == out
    return {"archive": archive, "stdout": result.stdout, "stderr": result.stderr}


def _apt_lists_ready():
    if shutil.which("apt-cache") is None:
        return False
    return subprocess.run(["apt-cache", "show", "--no-all-versions", "pcscd"], capture_output=True).returncode == 0


def _extras() -> dict:
    """pyproject.toml's optional features (except `test`) and the distributions each needs."""
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as f:
        extras = tomllib.load(f)["project"].get("optional-dependencies", {})
    return {name: [re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0] for req in reqs]
            for name, reqs in extras.items() if name != "test"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    options = ["--all-extras"]
    if shutil.which("apt-get"):
        if not _apt_lists_ready() and os.geteuid() == 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600)
        options.append("--debs")
    return _build(tmp_path_factory.mktemp("bundle-out"), *options)


@pytest.fixture
def bundle(built, tmp_path) -> Path:
    """A fresh unpacked copy for each test (so tampering stays local)."""
    return _unpack(built["archive"], tmp_path / "unpacked")


def _unpack(archive: Path, into: Path) -> Path:
    into.mkdir()
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(into)], check=True)
    (top,) = into.iterdir()
    return top


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sums(bundle: Path) -> dict:
    return {name: digest for digest, name in
            (line.split("  ", 1) for line in (bundle / "SHA256SUMS").read_text().splitlines())}


def _install(bundle: Path, venv: Path, *options, offline=True):
    command = [str(bundle / "install.sh"), "--venv", str(venv), *options]
    if offline and os.geteuid() == 0 and shutil.which("unshare"):
        command = ["unshare", "-n", *command]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(venv.parent), "PYTHON": PYTHON,
           "LC_ALL": "C.UTF-8"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


# --- what the bundle holds ------------------------------------------------------------------------


def test_bundle_holds_every_wheel_pinned_and_summed(bundle):
    wheels = sorted(p.name for p in (bundle / "wheels").iterdir())
    names = {_canonical(w.split("-")[0]) for w in wheels}
    assert {"sealcodes", "pyscard", "cryptography", "click", "fido2"} <= names
    # every optional feature (--all-extras): yubikey, and whatever else pyproject.toml defines
    assert "yubikey" in _extras()
    for extra, distributions in _extras().items():
        assert {_canonical(d) for d in distributions} <= names, f"extra {extra} incomplete"
    assert f"extras: {','.join(sorted(_extras()))}" in (bundle / "BUNDLE-INFO").read_text()
    assert all(w.endswith(".whl") for w in wheels), "only wheels: nothing is built on the target"
    # pyscard was compiled here into a wheel for this Python
    (pyscard,) = [w for w in wheels if w.startswith("pyscard-")]
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    assert f"-{tag}-{tag}-linux_" in pyscard
    # the udev rule, the OpenAPI document and the systemd unit ship inside the sealcodes wheel (the
    # offline README points at the rule there)
    (ours,) = [w for w in wheels if w.startswith("sealcodes-")]
    with zipfile.ZipFile(bundle / "wheels" / ours) as wheel:
        shipped = wheel.namelist()
    assert "sealboard/udev/70-sealcodes.rules" in shipped
    assert "sealcodes/verifier/openapi.json" in shipped
    assert any(name.startswith("sealcodes/verifier/systemd/") and name.endswith(".service") for name in shipped)
    # requirements.txt pins every wheel by version and the hash of exactly that file
    pins = [line for line in (bundle / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert len(pins) == len(wheels)
    for wheel in wheels:
        assert f"--hash=sha256:{_sha256(bundle / 'wheels' / wheel)}" in "\n".join(pins)
    # SHA256SUMS lists every other file, and sha256sum -c (the documented check) agrees
    files = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    assert sorted(_sums(bundle)) == files
    check = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=bundle, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.count(": OK") == len(files)
    # the offline README says what the target needs at run time; BUNDLE-INFO names the commit
    readme = (bundle / "README.md").read_text()
    assert "pcscd" in readme and "libpcsclite1" in readme and "python3-venv" in readme
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert f"commit: {head}" in (bundle / "BUNDLE-INFO").read_text()
    assert os.access(bundle / "install.sh", os.X_OK)


def test_unknown_extra_is_refused_before_anything_is_fetched(tmp_path):
    result = subprocess.run(["bash", str(BUNDLE_SH), "--extra", "no-such-extra", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("bundle: error: unknown extra 'no-such-extra' (this commit has:")
    assert "yubikey" in result.stderr and not (tmp_path / "out").exists()


# --- installing with no network ---------------------------------------------------------------------


@needs_root_unshare
def test_offline_install_then_demo_and_expand(bundle, tmp_path):
    venv = tmp_path / "venv"
    result = _install(bundle, venv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "match SHA256SUMS" in result.stdout and "sealcodes, version" in result.stdout
    sealcodes = venv / "bin" / "sealcodes"

    def offline(*args, **kwargs):
        return subprocess.run(["unshare", "-n", *map(str, args)], capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, HOME=str(tmp_path)), **kwargs)

    # the code that runs is the bundle's, not this checkout's; pyscard's compiled module loads
    where = offline(venv / "bin" / "python", "-c", "import sealcodes, smartcard.scard; print(sealcodes.__file__)")
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(venv))

    # every optional feature's distributions are installed
    wanted = sorted({d for ds in _extras().values() for d in ds})
    versions = offline(venv / "bin" / "python", "-c", "import sys, importlib.metadata as m; "
                       "print([m.version(d) for d in sys.argv[1:]])", *wanted)
    assert versions.returncode == 0, versions.stderr

    demo = offline(sealcodes, "demo")
    assert demo.returncode == 0, demo.stderr
    assert "same codes: yes" in demo.stdout

    vector = next(case for case in json.loads(VECTORS.read_text())["valid"] if case["name"] == "spec-section-7-3")
    expand = offline(sealcodes, "expand", "--label", vector["label"], "--epoch", vector["epoch"], "--format",
                     vector["format"], "--count", vector["count"], "--json", input=vector["response"] + "\n")
    assert expand.returncode == 0, expand.stderr
    out = json.loads(expand.stdout)
    assert out["codes"] == vector["codes"] and out["fingerprint"] == vector["fingerprint"]


@pytest.mark.parametrize("tamper", ["changed byte", "added wheel", "missing file", "changed requirements"])
def test_tampered_bundle_is_refused_and_nothing_installed(bundle, tmp_path, tamper):
    wheel = next((bundle / "wheels").glob("click-*.whl"))
    if tamper == "changed byte":
        data = bytearray(wheel.read_bytes())
        data[len(data) // 2] ^= 0x01
        wheel.write_bytes(bytes(data))
        named = f"changed: wheels/{wheel.name}"
    elif tamper == "added wheel":
        shutil.copy(wheel, bundle / "wheels" / "click-99.0-py3-none-any.whl")
        named = "not in SHA256SUMS: wheels/click-99.0-py3-none-any.whl"
    elif tamper == "missing file":
        wheel.unlink()
        named = f"missing: wheels/{wheel.name}"
    else:
        path = bundle / "requirements.txt"
        path.write_text(path.read_text().replace("click==", "click>="))
        named = "changed: requirements.txt"
    venv = tmp_path / "venv"
    result = _install(bundle, venv)
    assert result.returncode == 1
    assert result.stderr.startswith("install: error: bundle check FAILED, nothing installed (")
    assert named in result.stderr and "Traceback" not in result.stderr
    assert not venv.exists()


def test_tampered_bundle_leaves_an_existing_venv_alone(bundle, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    before = sorted(str(p) for p in venv.rglob("*"))
    sums = bundle / "SHA256SUMS"
    sums.write_text(sums.read_text().replace("  wheels/", "  wheels/../", 1))
    result = _install(bundle, venv)
    assert result.returncode == 1 and "SHA256SUMS line" in result.stderr and "malformed" in result.stderr
    assert sorted(str(p) for p in venv.rglob("*")) == before


@needs_root_unshare
@needs_apt
def test_debian_packages_install_offline_on_a_minimal_system(bundle, tmp_path):
    """apt, with no network and no package lists, on the package state of a minimal up-to-date system
    of this Debian release (Essential and required packages) installs pcscd and python3-venv from debs/
    alone (simulated: this machine's packages are shared with other work)."""
    debs = sorted((bundle / "debs").glob("*.deb"))
    names = {d.name.split("_")[0] for d in debs}
    assert {"pcscd", "libpcsclite1", "libccid", "python3-venv"} <= names
    status = tmp_path / "minimal-status"
    status.write_text(_minimal_status(tmp_path))
    # no package lists and no sources: the offline machine has only debs/
    (tmp_path / "lists" / "partial").mkdir(parents=True)
    (tmp_path / "sources.list.d").mkdir()
    offline_apt = ["-o", f"Dir::State::status={status}", "-o", f"Dir::State::Lists={tmp_path / 'lists'}",
                   "-o", "Dir::Etc::SourceList=/dev/null", "-o", f"Dir::Etc::SourceParts={tmp_path / 'sources.list.d'}",
                   "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache="]
    result = subprocess.run(["unshare", "-n", "apt-get", "-s", "--no-download", *offline_apt, "install",
                             *map(str, debs)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    installed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("Inst ")}
    assert {"pcscd", "libpcsclite1", "libccid", "python3-venv"} <= installed


def _minimal_status(tmp_path: Path) -> str:
    """A dpkg status file for Essential + required packages and their dependencies, at the versions
    apt would install today: what a freshly installed, up-to-date minimal system has."""
    empty = tmp_path / "empty-status"
    empty.write_text("")
    query = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Essential}\t${Priority}\n"],
                           capture_output=True, text=True, check=True).stdout
    roots = [f[0] for f in (line.split("\t") for line in query.splitlines()) if f[1] == "yes" or f[2] == "required"]
    plan = subprocess.run(["apt-get", "-s", "-o", f"Dir::State::status={empty}", "install", *roots],
                          capture_output=True, text=True, check=True).stdout
    chosen = re.findall(r"^Inst (\S+) \((\S+) .*\[(\S+)\]\)", plan, re.M)
    shown = subprocess.run(["apt-cache", "show", *(f"{p}={v}" for p, v, _ in chosen)],
                           capture_output=True, text=True).stdout
    records = {}
    for record in shown.split("\n\n"):
        name = re.search(r"^Package: (\S+)$", record, re.M)
        if name and name.group(1) not in records:
            # the archive's record as dpkg would keep it (apt matches a version by its fields)
            kept = [f for f in re.split(r"\n(?=\S)", record.strip())
                    if not f.startswith(("Filename:", "Size:", "MD5sum:", "SHA256:", "Description-md5:", "Tag:"))]
            records[name.group(1)] = "\n".join([kept[0], "Status: install ok installed", *kept[1:]])
    stanzas = [records[package] for package, _, _ in chosen if package in records]
    assert len(stanzas) > 50
    return "\n\n".join(stanzas) + "\n"


# --- reproducible ---------------------------------------------------------------------------------


@pytest.mark.slow  # a second build from scratch (15 s): with the slow suite, to keep the default run in budget
def test_two_builds_of_one_commit_give_the_same_wheels(built, bundle, tmp_path):
    """The second build compiles pyscard again (--no-cache): the same source and tools give the same
    bytes. Third-party wheels are copied as downloaded, so they match when PyPI serves the same files."""
    second = _build(tmp_path / "second", "--extra", "yubikey", "--no-cache")
    other = _unpack(second["archive"], tmp_path / "second-unpacked")
    first_sums, second_sums = _sums(bundle), _sums(other)
    for prefix in ("wheels/sealcodes-", "wheels/pyscard-"):
        (name,) = [n for n in first_sums if n.startswith(prefix)]
        assert second_sums[name] == first_sums[name], f"{name} differs between two builds"
    own = next(n for n in first_sums if n.startswith("wheels/sealcodes-"))
    assert f"sha256 {first_sums[own]}" in built["stdout"] and f"sha256 {first_sums[own]}" in second["stdout"]


# --- another platform -----------------------------------------------------------------------------


@pytest.mark.slow  # a third build (16 s): with the slow suite, to keep the default run in budget
def test_bundle_for_another_platform_follows_its_markers(tmp_path):
    """--platform: published wheels only, and the dependencies the target's markers ask for, not this
    machine's (keyring needs pywin32-ctypes on Windows and SecretStorage only on Linux; importlib_metadata
    only below Python 3.12)."""
    built = _build(tmp_path, "--python-version", "3.12", "--platform", "win_amd64", "--extra", "yubikey")
    listing = subprocess.run(["tar", "-tzf", str(built["archive"])], capture_output=True, text=True,
                             check=True).stdout
    wheels = {Path(line).name.split("-")[0].lower().replace("_", "-"): Path(line).name
              for line in listing.splitlines() if line.endswith(".whl")}
    assert wheels["pyscard"].endswith("-cp312-cp312-win_amd64.whl")
    assert "pywin32-ctypes" in wheels and "keyring" in wheels
    assert not {"secretstorage", "jeepney", "importlib-metadata"} & set(wheels)
    assert "target:          cpython3.12 cp312-win_amd64" in built["stdout"]
