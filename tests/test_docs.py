"""The repository stands alone: no file points at documents or paths outside it, and every
"docs/<name>.md section N" / "item N" reference, every docs/<name>.md mention and every test
that docs/security.md names exists."""

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# Spelled in pieces so that this file does not match its own patterns.
_WORKSHOP = "|".join(("SP" + "EC", "PROTO" + "COLS", "SECU" + "RITY", "STY" + "LE", "DES" + "IGN"))
# the workshop files by name, or "docs/<NAME>" in capitals
WORKSHOP_FILE = re.compile(r"\b(?:" + _WORKSHOP + r")\.md\b|docs/(?:" + _WORKSHOP + r")\b")
# old shorthand for them: "<NAME> 7", "<NAME> section 3", "<NAME> items 8 and 10", "<NAME> v1"
WORKSHOP_SHORTHAND = re.compile(r"\b(?:" + _WORKSHOP + r")\s+(?:sections?\s+|items?\s+|v)?\d")
ABSOLUTE_WORK_PATH = re.compile(r"(?<![\w.~-])/" + r"work/")
REFERENCE = re.compile(
    r"docs/([\w.-]+\.md),?\s+(sections?|items?)\s+(\d+(?:\s*(?:-|–|,|and|or)\s*\d+)*)"
)
DOC_MENTION = re.compile(r"(?<![\w/.-])docs/([\w.-]+\.md)\b")
NUMBERED_HEADING = re.compile(r"^#{2,4}\s+(\d+)\.\s", re.M)


def _repository_files():
    """Tracked files plus new ones not ignored (so a file is checked before its first commit)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, capture_output=True, check=True).stdout
        names = [n for n in listed.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (e.g. an unpacked archive)
        skip = {".git", ".venv", "node_modules", "build", "dist", "__pycache__", ".pytest_cache", ".hypothesis"}
        names = []
        for root, dirs, files in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
            names += [os.path.relpath(os.path.join(root, f), ROOT) for f in files]
    texts = {}
    for name in sorted(names):
        path = ROOT / name
        if not path.is_file():
            continue  # deleted in the work tree
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
    assert "README.md" in texts and "docs/spec.md" in texts
    return texts


FILES = _repository_files()


def _hits(pattern):
    found = []
    for name, text in FILES.items():
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{name}:{line}: {match.group(0)!r}")
    return found


def test_no_reference_to_the_workshop_documents():
    assert _hits(WORKSHOP_FILE) == []
    assert _hits(WORKSHOP_SHORTHAND) == []


def test_no_absolute_work_path():
    assert _hits(ABSOLUTE_WORK_PATH) == []


def _numbers(text):
    """'4-6' -> 4, 5, 6; '3, 4 and 10' -> 3, 4, 10."""
    out = []
    for part in re.split(r"\s*(?:,|and|or)\s*", text.strip()):
        low, _, high = part.replace("–", "-").partition("-")
        out += range(int(low), int(high or low) + 1)
    return out


def _headings(doc):
    return {int(n) for n in NUMBERED_HEADING.findall((DOCS / doc).read_text(encoding="utf-8"))}


def test_every_section_and_item_reference_exists():
    checked = 0
    problems = []
    for name, text in FILES.items():
        for match in REFERENCE.finditer(text):
            doc, _, numbers = match.groups()
            where = f"{name}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)!r}"
            if not (DOCS / doc).is_file():
                problems.append(f"{where}: docs/{doc} does not exist")
                continue
            missing = [n for n in _numbers(numbers) if n not in _headings(doc)]
            if missing:
                problems.append(f"{where}: no numbered heading {missing} in docs/{doc}")
            checked += 1
    assert problems == []
    assert checked >= 20  # the pattern still finds the references the code is full of


def test_every_mentioned_doc_exists():
    missing = [hit for hit in _hits(DOC_MENTION)
               if not (DOCS / DOC_MENTION.search(hit.split(": ", 1)[1]).group(1)).is_file()]
    assert missing == []


def test_markdown_links_to_local_files_resolve():
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    broken = []
    for name, text in FILES.items():
        if not name.endswith(".md"):
            continue
        for target in link.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            if not (ROOT / name).parent.joinpath(target).exists():
                broken.append(f"{name}: {target}")
    assert broken == []


def _github_slug(heading):
    """The anchor GitHub gives a heading: the text as rendered (link targets, tags and backticks
    gone), lower case, every character but letters, digits, `_`, `-` and space dropped, spaces
    turned into `-`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def _anchors(text):
    """Every anchor of a markdown text: its headings' slugs (a repeated slug gets -1, -2, ... as on
    GitHub), headings inside fenced code not counted, and explicit <a id/name="...">."""
    anchors, seen, fence = set(), {}, None
    for line in text.splitlines():
        opening = re.match(r"\s*(```|~~~)", line)
        if opening:
            fence = None if fence == opening.group(1) else fence or opening.group(1)
            continue
        heading = re.match(r"#{1,6}\s+(.*?)(?:\s+#+)?\s*$", line)
        if fence or not heading:
            continue
        slug = _github_slug(heading.group(1))
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors | set(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))


@pytest.mark.parametrize("heading, slug", [
    ("13. Verifier records (v1)", "13-verifier-records-v1"),
    ("14. Verifier records v2: device-bound rotation", "14-verifier-records-v2-device-bound-rotation"),
    ("2. What `sealcodes devices` shows", "2-what-sealcodes-devices-shows"),
    ("A — B", "a--b"),
])
def test_github_slug(heading, slug):
    assert _github_slug(heading) == slug


def test_repeated_headings_and_fenced_code():
    text = "# Usage\n## Usage\n```sh\n# not a heading\n```\n### Usage\n"
    assert _anchors(text) == {"usage", "usage-1", "usage-2"}


def test_markdown_links_between_the_repositorys_files_reach_a_heading():
    """A link `[..](file.md#anchor)` or `[..](#anchor)` lands on a heading of that file (README.md
    pointed at docs/spec.md#verifier-records-v1, an anchor the heading does not have)."""
    link = re.compile(r"\]\(([^)#\s]*)#([^)\s]+)\)")
    anchors_of = {}
    broken, checked = [], 0
    for name, text in FILES.items():
        if not name.endswith(".md"):
            continue
        for target, anchor in link.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path = os.path.normpath(os.path.join(os.path.dirname(name), target)) if target else name
            if path not in FILES or not path.endswith(".md"):
                continue  # not a markdown file of the repository: test_markdown_links_to_local_files_resolve
            if path not in anchors_of:
                anchors_of[path] = _anchors(FILES[path])
            checked += 1
            if anchor not in anchors_of[path]:
                broken.append(f"{name}: {target}#{anchor}")
    assert broken == []
    assert checked >= 8  # the pattern still finds the links the docs hold


@pytest.mark.parametrize("doc, count", [("protocols.md", 11), ("security.md", 49)])
def test_numbering_is_complete(doc, count):
    """Code comments cite these numbers: each of 1..count exists exactly once, in order."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    assert [int(n) for n in NUMBERED_HEADING.findall(text)] == list(range(1, count + 1))


def test_tests_named_in_security_md_exist():
    text = (DOCS / "security.md").read_text(encoding="utf-8")
    named = 0
    problems = []

    def check(path, function=None):
        nonlocal named
        path = path.removeprefix("tests/")
        file = ROOT / "tests" / path
        if not file.is_file():
            problems.append(f"tests/{path} does not exist")
            return
        if function is None:
            return
        source = file.read_text(encoding="utf-8")
        pattern = re.escape(function).replace(r"\*", r"\w*")
        if not re.search(r"^\s*def " + pattern + r"\(", source, re.M):
            problems.append(f"tests/{path} has no {function}")
        named += 1

    for path, function in re.findall(r"`([\w/]+\.py)::(\w+)`", text):
        check(path, function)
    # `file.py` (`test_a`, `test_b_*`, ...)
    for path, inner in re.findall(r"`([\w/]+\.py)`\s+\(([^)]*)\)", text.replace("\n", " ")):
        check(path)
        for function in re.findall(r"`(test_[\w*]+)`", inner):
            check(path, function)
    for path in re.findall(r"`([\w/]+\.py)`", text):
        if not path.startswith(("host/", "firmware/", "hardware/")) and path != "_independent_v1.py":
            check(path)
    assert problems == []
    assert named >= 60
