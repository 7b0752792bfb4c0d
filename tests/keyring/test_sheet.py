"""`sealcodes sheet` on the emulator: PDF text (pdftotext), QR codes (pdftoppm + zbarimg), printing
through a real cupsd started here, and no file written unless --output names one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from sealcodes import keyring as kr
from sealcodes import sheet as sheets
from _support import console_script, run_cli

PIN = "sheet-pin-1"
TOOLS = ("pdftotext", "pdftoppm", "zbarimg", "cupsd", "lpadmin", "lp")


@pytest.fixture(autouse=True)
def _tools():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail("scripts/setup.sh --test installs " + ", ".join(missing))


def _enroll_keyring(threshold=1):
    assert run_cli("enroll", "--device", "emulator", "--slot", "1", input=PIN + "\n").returncode == 0
    assert run_cli("enroll", "--device", "emulator", "--slot", "2", input=PIN + "\n").returncode == 0
    result = run_cli("keyring", "create", "home", "--device", "nosuch", "--device", "x")
    assert result.returncode == 1 and result.stderr.count("\n") == 1  # no such enrollment: one clear line
    ids = _enrollment_ids()
    created = run_cli("keyring", "create", "home", "--device", ids[0], "--device", ids[1],
                      "--threshold", str(threshold), input=f"{PIN}\n{PIN}\n")
    assert created.returncode == 0, created.stderr
    return ids


def _enrollment_ids():
    path = os.path.join(os.environ["XDG_CONFIG_HOME"], "sealcodes", "profile.json")
    with open(path) as f:
        return sorted(json.load(f)["enrollments"])


def _codes(label, extra=()):
    result = run_cli("generate", label, "--json", *extra, input=f"{PIN}\n{PIN}\n")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _pdf_text(pdf: bytes, tmp_path) -> str:
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)
    return done.stdout.decode()


def _qr_texts(pdf: bytes, tmp_path) -> list:
    pages = tmp_path / "pages"
    pages.mkdir(exist_ok=True)
    (pages / "sheet.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pages / "sheet.pdf"), str(pages / "page")], check=True)
    found = []
    for image in sorted(pages.glob("page*.png")):
        done = subprocess.run(["zbarimg", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", str(image)],
                              capture_output=True)
        found += [line for line in done.stdout.decode().splitlines() if line]
    return found


def test_pdf_holds_every_code_fingerprint_and_the_keyring_qr(tmp_path):
    _enroll_keyring(threshold=2)
    codes = _codes("github.com/alice", ["--keyring", "home"])
    result = subprocess.run([console_script("sealcodes"), "sheet", "github.com/alice", "--pdf"],
                            input=f"{PIN}\n{PIN}\n".encode(), capture_output=True)
    assert result.returncode == 0, result.stderr
    pdf = result.stdout
    assert pdf.startswith(b"%PDF")
    text = _pdf_text(pdf, tmp_path)
    for number, code in enumerate(codes["codes"], start=1):
        assert f"{number}. {code}" in text
    assert codes["fingerprint"] in text and "Epoch 0" in text
    exported = run_cli("keyring", "export", "home").stdout.strip()
    qr = _qr_texts(pdf, tmp_path)
    assert qr, "no QR code decoded"
    assert kr.to_json(kr.from_paper(qr[0])) == exported
    # the text form printed beside the QR code reads back too
    paper_lines = [line.strip() for line in text.splitlines() if line.strip().startswith("SCK1")]
    assert paper_lines


def test_text_sheet_on_stdout_and_no_file_without_output(tmp_path):
    _enroll_keyring()
    codes = _codes("bank", ["--keyring", "home", "--format", "digits-24", "--count", "12"])
    work = tmp_path / "work"
    work.mkdir()
    watched = [work, tmp_path / "home"]  # cwd, TMPDIR, XDG config and data (profile, emulator)

    def listing():
        return {(os.path.join(d, f), os.stat(os.path.join(d, f)).st_mtime_ns)
                for root in watched for d, _dirs, files in os.walk(root) for f in files}

    before = listing()
    env = {"TMPDIR": str(work)}
    result = subprocess.run([console_script("sealcodes"), "sheet", "bank"],
                            input=f"{PIN}\n", capture_output=True, text=True, cwd=work,
                            env=dict(os.environ, **env))
    assert result.returncode == 0, result.stderr
    for number, code in enumerate(codes["codes"], start=1):
        assert f"[ ] {number:>2}. {code}" in result.stdout
    assert "Fingerprint " + codes["fingerprint"] in result.stdout
    assert "SCK1" in result.stdout and "--keyring-file" in result.stdout
    changed = {path for path, _ in listing() - before}
    # the emulator's flash file may change (its PIN counter); no new file, nothing holding a code
    assert all(not path.startswith(str(work)) for path in changed) and os.listdir(work) == []
    for path, _ in listing():
        content = open(path, "rb").read().decode("latin-1")
        assert not any(c in content or c.replace(" ", "") in content for c in codes["codes"]), path


def test_output_file_only_when_named_with_a_warning(tmp_path):
    _enroll_keyring()
    codes = _codes("vpn", ["--keyring", "home"])
    target = tmp_path / "vpn-sheet.pdf"
    result = run_cli("sheet", "vpn", "--output", str(target), input=f"{PIN}\n")
    assert result.returncode == 0, result.stderr
    assert "plaintext" in result.stderr and result.stdout == ""
    assert (os.stat(target).st_mode & 0o777) == 0o600
    text = _pdf_text(target.read_bytes(), tmp_path)
    assert all(code in text for code in codes["codes"])
    # a symlink is not followed into someone else's file
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "elsewhere.txt")
    refused = run_cli("sheet", "vpn", "--output", str(link), input=f"{PIN}\n")
    assert refused.returncode == 1 and "cannot write" in refused.stderr
    assert not (tmp_path / "elsewhere.txt").exists()


def test_untrusted_label_is_escaped_on_the_sheet(tmp_path):
    data = sheets.SheetData(label="pay\u202epal.com", epoch=0, format="base32-16", fingerprint="0000-0000",
                            codes=("AAAA",), devices=("applet on \x1b[31mred",))
    text = sheets.render_text(data).decode()
    assert "\u202e" not in text and "\x1b" not in text
    assert "pay\\u202epal.com" in text and "\\x1b[31mred" in text
    pdf_text = _pdf_text(sheets.render_pdf(data), tmp_path)
    assert "\u202e" not in pdf_text and "202e" in pdf_text.lower()


def test_hundred_long_codes_span_pages_and_all_survive(tmp_path):
    from sealcodes import derivation

    codes = derivation.derive(bytes(range(32)), "many", 3, "base32-24", 100)
    data = sheets.SheetData(label="many", epoch=3, format="base32-24", fingerprint=codes.fingerprint,
                            codes=tuple(codes.codes), devices=("applet on X",))
    text = _pdf_text(sheets.render_pdf(data), tmp_path)
    assert all(code in text for code in codes.codes)


PPD = """*PPD-Adobe: "4.3"
*FormatVersion: "4.3"
*FileVersion: "1.0"
*LanguageVersion: English
*LanguageEncoding: ISOLatin1
*PCFileName: "SCTEST.PPD"
*Manufacturer: "sealcodes"
*Product: "(sealcodes test printer)"
*ModelName: "sealcodes test PDF printer"
*ShortNickName: "sealcodes test PDF printer"
*NickName: "sealcodes test PDF printer"
*PSVersion: "(3010.000) 0"
*LanguageLevel: "3"
*ColorDevice: False
*DefaultColorSpace: Gray
*FileSystem: False
*Throughput: "1"
*LandscapeOrientation: Plus90
*TTRasterizer: Type42
*cupsVersion: 2.4
*cupsFilter: "application/pdf 0 gziptoany"
*OpenUI *PageSize/Media Size: PickOne
*OrderDependency: 10 AnySetup *PageSize
*DefaultPageSize: A4
*PageSize A4/A4: "<</PageSize[595 842]>>setpagedevice"
*CloseUI: *PageSize
*DefaultPageRegion: A4
*PageRegion A4/A4: "<</PageSize[595 842]>>setpagedevice"
*DefaultImageableArea: A4
*ImageableArea A4/A4: "18 36 577 806"
*DefaultPaperDimension: A4
*PaperDimension A4/A4: "595 842"
"""


@pytest.fixture
def cups():
    """A real cupsd with its own config, spool and Unix socket; printer 'sheettest' writes to a file.

    The printer takes PDF through CUPS' own gziptoany filter (a PDF printer's driver) and its device is
    a file (FileDevice Yes). cupsd opens that file without creating it, so it is made empty first."""
    if os.geteuid() != 0:
        pytest.fail("the CUPS test starts cupsd, which needs root (as scripts/test.sh runs)")
    # cupsd's filters run as user lp: the tree must be reachable by it (pytest's tmp dirs are 0700)
    base = Path(tempfile.mkdtemp(prefix="sealcodes-cups-"))
    os.chmod(base, 0o755)
    for sub in ("etc", "spool", "cache", "state", "log", "tmp", "out"):
        (base / sub).mkdir()
    os.chmod(base / "out", 0o1777)
    os.chmod(base / "tmp", 0o1777)
    socket_path = base / "cups.sock"
    (base / "etc" / "cupsd.conf").write_text(
        f"Listen {socket_path}\nLogLevel warn\nWebInterface No\nBrowsing No\n"
        "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
        "<Location /admin>\n  Order allow,deny\n  Allow all\n</Location>\n"
        "<Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n")
    (base / "etc" / "cups-files.conf").write_text(
        f"FileDevice Yes\nServerRoot {base}/etc\nRequestRoot {base}/spool\nCacheDir {base}/cache\n"
        f"StateDir {base}/state\nTempDir {base}/tmp\nAccessLog {base}/log/access_log\n"
        f"ErrorLog {base}/log/error_log\nPageLog {base}/log/page_log\nServerBin /usr/lib/cups\n"
        "DataDir /usr/share/cups\nSystemGroup root\n")
    (base / "sheettest.ppd").write_text(PPD)
    printed = base / "out" / "printed.pdf"
    printed.touch(mode=0o666)
    process = subprocess.Popen(["cupsd", "-f", "-c", str(base / "etc" / "cupsd.conf"),
                                "-s", str(base / "etc" / "cups-files.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    env = dict(os.environ, CUPS_SERVER=str(socket_path))
    try:
        deadline = time.monotonic() + 20
        while not socket_path.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("cupsd did not start: " + process.stderr.read().decode(errors="replace"))
            time.sleep(0.05)
        added = subprocess.run(["lpadmin", "-p", "sheettest", "-E", "-v", f"file:{printed}",
                                "-P", str(base / "sheettest.ppd")], env=env, capture_output=True, text=True)
        assert added.returncode == 0, added.stderr
        yield env, printed
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(base, ignore_errors=True)


def test_print_goes_through_cupsd_to_the_printer(cups, tmp_path):
    env, printed = cups
    _enroll_keyring()
    codes = _codes("github.com/alice", ["--keyring", "home"])
    result = run_cli("sheet", "github.com/alice", "--print", "sheettest", input=f"{PIN}\n", env=env)
    assert result.returncode == 0, result.stderr
    assert "Sent to the printer sheettest" in result.stderr and "sheettest-" in result.stderr
    assert result.stdout == ""
    deadline = time.monotonic() + 30
    while printed.stat().st_size == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    data = printed.read_bytes()
    assert data.startswith(b"%PDF"), "the job did not reach the printer's device file"
    deadline = time.monotonic() + 10
    while not data.rstrip().endswith(b"%%EOF") and time.monotonic() < deadline:
        time.sleep(0.1)
        data = printed.read_bytes()
    text = _pdf_text(data, tmp_path)
    assert all(code in text for code in codes["codes"]) and codes["fingerprint"] in text
    # an unknown printer: lp's refusal as one line, non-zero
    refused = run_cli("sheet", "github.com/alice", "--print", "nosuchprinter", input=f"{PIN}\n", env=env)
    assert refused.returncode == 1 and refused.stderr.splitlines()[-1].startswith("Error: printing failed")
