"""`sealcodes verifier ...`: the service side. Import verifier records, check codes once, manage
lockouts, API keys, peppers, the HTTP server and the PAM helper. Codes come from a hidden prompt or
stdin, never from the command line. The CLI holds the database, so it acts as the local
administrator (key id "cli" in the audit), except that replacing an active set without the device's
proof needs `import --force`."""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import logging
import os
import shlex
import subprocess
import sys
import time
import unicodedata

import click

from ..errors import InvalidInputError
from ..memory import wipe
from ..numerals import ascii_decimal, ascii_int
from .util import CliFail, FloatRange, IntRange

EXIT_ACCEPTED = 0
EXIT_REJECTED = 1
EXIT_LOCKED = 2

MAX_IMPORT_BYTES = 16 * 1024 * 1024
MAX_CODE_LINE = 1024
PEPPER_FILE_MAX = 1024
HOOK_TIMEOUT_S = 10

events_log = logging.getLogger("sealcodes.verifier.events")
log = logging.getLogger("sealcodes.verifier")


def shown(text) -> str:
    """Untrusted text for a terminal: control, format (bidi) and separator characters escaped."""
    out = []
    for char in str(text):
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") or char == "\\":
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
        else:
            out.append(char)
    return "".join(out)


def default_db_url() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return "sqlite:///" + os.path.abspath(os.path.join(base, "sealcodes", "verifier.db"))


def read_pepper(path: str | None) -> bytearray | None:
    """The pepper from a file holding it as hex (32 to 128 hex digits)."""
    if not path:
        return None
    try:
        with open(path, "rb") as handle:
            raw = bytearray(handle.read(PEPPER_FILE_MAX + 1))
    except OSError as exc:
        raise CliFail(f"cannot read the pepper file: {exc.strerror or type(exc).__name__}") from None
    try:
        if len(raw) > PEPPER_FILE_MAX:
            raise CliFail("the pepper file is too large (expected 16 to 64 bytes as hex)")
        text = bytes(raw).strip()
        try:
            return bytearray(bytes.fromhex(text.decode("ascii")))
        except (UnicodeDecodeError, ValueError):
            raise CliFail("the pepper file must hold the pepper as hex digits") from None
    finally:
        wipe(raw)


class EventHook:
    """Each event becomes a JSON line on the `sealcodes.verifier.events` logger and, when a
    command is configured, runs it with the event as JSON on stdin (and SEALCODES_EVENT,
    SEALCODES_ACCOUNT in its environment). Events never hold a code."""

    def __init__(self, command: str | None, listeners=()):
        self.argv = shlex.split(command) if command else None
        self.listeners = tuple(listeners)

    def __call__(self, event) -> None:
        for listener in self.listeners:
            listener(event)
        line = json.dumps(event.to_dict(), ensure_ascii=True)
        events_log.info("%s", line)
        if not self.argv:
            return
        env = dict(os.environ, SEALCODES_EVENT=event.kind, SEALCODES_ACCOUNT=event.account)
        try:
            subprocess.run(self.argv, input=line + "\n", text=True, env=env, timeout=HOOK_TIMEOUT_S,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("event command failed: %s", type(exc).__name__)


def read_peppers(paths) -> list[bytearray]:
    """Every pepper given (--pepper-file, repeatable); the caller wipes them."""
    peppers = []
    try:
        for path in paths or ():
            peppers.append(read_pepper(path))
    except BaseException:
        for pepper in peppers:
            wipe(pepper)
        raise
    return peppers


class VerifierCli:
    def __init__(self, db_url, pepper_files, on_event):
        self.db_url = db_url or default_db_url()
        self.pepper_files = list(pepper_files or ())
        self.on_event = on_event

    def store(self, create=False, pool_size=4):
        from ..verifier.database import open_store

        options = {"pool_size": pool_size}
        if not self.db_url.startswith("postgres"):
            options["create"] = create
        store = open_store(self.db_url, **options)
        # closed when the command ends, however it ends: SQLite folds its write-ahead log into the
        # database file then, PostgreSQL's pool lets its connections go
        click.get_current_context().call_on_close(store.close)
        return store

    def verifier(self, pool_size=4, hash_slots=None):
        from ..verifier import Verifier

        peppers = read_peppers(self.pepper_files)
        try:
            return Verifier(self.store(pool_size=pool_size), pepper=peppers, events=EventHook(self.on_event),
                            hash_slots=hash_slots)
        finally:
            for pepper in peppers:
                wipe(pepper)


@click.group("verifier")
@click.option("--db", "db_url", envvar="SEALCODES_VERIFIER_DB", metavar="URL",
              help="sqlite:///relative.db, sqlite:////absolute.db or postgresql://... "
                   "(default: sqlite in $XDG_DATA_HOME/sealcodes/verifier.db).")
@click.option("--pepper-file", "pepper_files", envvar="SEALCODES_VERIFIER_PEPPER_FILE", metavar="PATH",
              multiple=True, type=click.Path(dir_okay=False),
              help="File holding a server pepper as hex; repeat it for every pepper in use (the environment "
                   "variable takes a list separated by ':').")
@click.option("--on-event", envvar="SEALCODES_VERIFIER_ON_EVENT", metavar="CMD",
              help="Command run for each event (code used, set imported, account locked), JSON on stdin.")
@click.pass_context
def verifier_group(ctx, db_url, pepper_files, on_event):
    """Check codes on the service side: each code once, no plaintext stored."""
    ctx.obj = VerifierCli(db_url, pepper_files, on_event)


@verifier_group.command("init")
@click.option("--max-failures", type=IntRange(1, 100), help="Lock after this many consecutive failures (default 10, at most 100).")
@click.option("--delay-base", type=FloatRange(0, 86400), help="Seconds of delay after the first failure, doubling after each (default 1).")
@click.option("--delay-max", type=FloatRange(0, 86400), help="Longest delay between attempts in seconds (default 300).")
@click.option("--low-codes", type=IntRange(0, 100), help="Warn when this many codes or fewer remain (default 3).")
@click.option("--create-pepper", metavar="PATH", help="Make a new random pepper in PATH (mode 0600) and use it "
              "(a new database only: `pepper add` for an existing one).")
@click.option("--argon2", "shape", metavar="M/T/P", callback=lambda c, p, v: _shape(v),
              help="The one Argon2id shape a record may have: memory KiB / passes / lanes (default 19456/2/1, what "
                   "sealcodes writes).")
@click.option("--max-sets", type=IntRange(1, 100), metavar="N",
              help="Active sets an account may hold (default 4); every attempt hashes once per Argon2id set of the "
                   "account holding the most.")
@click.option("--key-rate", metavar="RATE/BURST", callback=lambda c, p, v: _rate(v, "--key-rate"),
              help="HTTP requests per second per API key, and the burst (default 50/100; 0 turns it off).")
@click.option("--address-rate", metavar="RATE/BURST", callback=lambda c, p, v: _rate(v, "--address-rate"),
              help="HTTP requests per second per client address, and the burst (default 10/20; 0: off).")
@click.option("--in-flight", metavar="KEY/ADDRESS", callback=lambda c, p, v: _in_flight(v),
              help="Attempts one API key, and one client address, may have in flight at once; more wait their turn "
                   "(default 8/2; 0: no cap).")
@click.option("--attempt-wait", type=FloatRange(0.01, 600), metavar="SECONDS",
              help="How long an attempt waits for its turn and a hash slot before the answer is busy (default 5).")
@click.pass_obj
def init_command(obj, max_failures, delay_base, delay_max, low_codes, create_pepper, shape, max_sets, key_rate,
                 address_rate, in_flight, attempt_wait):
    """Create the database, or migrate it to this release's schema; store the policy given."""
    import dataclasses

    from ..verifier import Verifier
    from ..verifier.store import CURRENT_PEPPER, SCHEMA_VERSION

    store = obj.store(create=True)
    before = store.schema_version()
    if create_pepper:
        if obj.pepper_files:
            raise CliFail("give either --pepper-file or --create-pepper, not both")
        if before and store.get_setting(CURRENT_PEPPER) is not None:
            raise CliFail("this database exists already: add a pepper with `sealcodes verifier pepper add --create "
                          "FILE`")
        _create_pepper(create_pepper)
        obj.pepper_files = [create_pepper]
    changes = {name: value for name, value in (
        ("max_failures", max_failures), ("delay_base_s", delay_base), ("delay_max_s", delay_max),
        ("low_codes", low_codes), ("memory_kib", shape and shape[0]), ("iterations", shape and shape[1]),
        ("lanes", shape and shape[2]), ("max_sets", max_sets),
        ("key_rate", key_rate and key_rate[0]), ("key_burst", key_rate and key_rate[1]),
        ("address_rate", address_rate and address_rate[0]), ("address_burst", address_rate and address_rate[1]),
        ("key_in_flight", in_flight and in_flight[0]), ("address_in_flight", in_flight and in_flight[1]),
        ("attempt_wait_s", attempt_wait),
    ) if value is not None}
    policy = dataclasses.replace(_current_policy(store), **changes) if changes else None
    peppers = read_peppers(obj.pepper_files)
    try:
        verifier = Verifier.initialise(store, policy=policy, pepper=peppers)
    finally:
        for pepper in peppers:
            wipe(pepper)
    for what, old, new in store.migration_notes:
        if what == "renamed":
            click.echo(f"account {shown(old)} renamed {shown(new)} (docs/spec.md section 13.5)", err=True)
        else:
            click.echo(f"account {shown(old)}: its sets are retired, its name is refused or taken by another "
                       "spelling (docs/spec.md section 13.5)", err=True)
    p = verifier.policy
    what = "created" if before == 0 else (f"migrated from schema {before}" if before < SCHEMA_VERSION else "up to date")
    pepper = store.get_setting(CURRENT_PEPPER) or ""
    click.echo(f"verifier database {what} (schema {SCHEMA_VERSION}); lock after {p.max_failures} failures, "
               f"delay {p.delay_base_s:g}s doubling up to {p.delay_max_s:g}s; Argon2id {p.memory_kib}/"
               f"{p.iterations}/{p.lanes} (KiB/passes/lanes), at most {p.max_sets} sets per account; rate limits "
               f"{_rate_text(p.key_rate, p.key_burst)} per key, {_rate_text(p.address_rate, p.address_burst)} per "
               f"address; in flight {_cap_text(p.key_in_flight)} per key, {_cap_text(p.address_in_flight)} per "
               f"address, waiting up to {p.attempt_wait_s:g}s; "
               + (f"peppered (current pepper {pepper})" if pepper else "no pepper"))
    other = verifier.sets_of_another_shape()
    if other:
        click.echo(f"Warning: {other} active set(s) have other Argon2id parameters than {p.memory_kib}/{p.iterations}/"
                   f"{p.lanes}: attempts on their accounts take another time than on others, which tells that they "
                   "exist; rotate or revoke them", err=True)


def _shape(value):
    if value is None:
        return None
    parts = [ascii_int(part) for part in value.split("/")]  # ASCII digits only, as everywhere
    if len(parts) != 3 or None in parts:
        raise click.BadParameter("--argon2 takes MEMORY_KIB/PASSES/LANES, e.g. 19456/2/1")
    memory, passes, lanes = parts
    return memory, passes, lanes


def _in_flight(value):
    if value is None:
        return None
    parts = [ascii_int(part) for part in value.split("/")]
    if len(parts) != 2 or None in parts:
        raise click.BadParameter("--in-flight takes KEY/ADDRESS, e.g. 8/2 (0: no cap)")
    key, address = parts
    if not 0 <= key <= 100_000 or not 0 <= address <= 100_000:
        raise click.BadParameter("--in-flight: each cap must be 0 (none) to 100000")
    return key, address


def _cap_text(cap):
    return "no cap" if not cap else str(cap)


def _rate(value, option):
    if value is None:
        return None
    rate_text, slash, burst_text = value.partition("/")
    rate, burst = ascii_decimal(rate_text), ascii_int(burst_text) if slash else None  # float() takes 'nan' and '١'
    if rate is None or (slash and burst is None):
        raise click.BadParameter(f"{option} takes RATE/BURST, e.g. 10/20 (0 turns the limit off)")
    parsed = (rate, burst if slash else max(1, int(2 * min(rate, 1_000_000))))
    if not 0 <= parsed[0] <= 1_000_000 or not 1 <= parsed[1] <= 1_000_000:
        raise click.BadParameter(f"{option}: the rate must be 0 to 1000000 and the burst 1 to 1000000")
    return parsed


def _rate_text(rate, burst):
    return "off" if not rate else f"{rate:g}/s (burst {burst})"


def _current_policy(store):
    from ..verifier import Policy

    try:
        if store.schema_version() > 0:
            return Policy.from_settings(store.settings())
    except ValueError:
        pass
    return Policy()


def _create_pepper(path):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CliFail("the pepper file already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise CliFail(f"cannot create the pepper file: {exc.strerror}") from None
    secret = bytearray(os.urandom(32))
    try:
        os.write(fd, secret.hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        wipe(secret)
        os.close(fd)


@verifier_group.command("import")
@click.argument("source", metavar="FILE|-")
@click.option("--force", is_flag=True,
              help="Replace an account's active set without the device's proof (a lost device); audited.")
@click.option("--bulk", is_flag=True,
              help="JSON lines of any size, read as they come and stored in batches; stops at the first bad "
                   "or refused record (those before it are stored); a rerun skips what is stored.")
@click.option("--batch-size", type=IntRange(1, 10000), default=1000, show_default=True,
              help="Records per transaction with --bulk.")
@click.pass_obj
def import_command(obj, source, force, bulk, batch_size):
    """Import verifier records: one JSON record, or JSON lines (one record per line).

    A first set is imported as is; a set for an account that already has an active set needs the
    rotation proof of that set's device (record v2), or --force. Without --bulk the input (at most
    16 MiB) is read and checked whole before anything is stored.
    """
    from ..errors import SealcodesError
    from ..verifier import Principal
    from ..verifier.record import read_records

    principal = Principal.local(force=force)
    if bulk:
        _bulk_import(obj, source, principal, batch_size)
        return
    text = _read_source(source)
    records = read_records(text)  # all parsed and checked before anything is stored
    verifier = obj.verifier()
    for number, record in enumerate(records, start=1):
        try:
            result = verifier.import_record(record, principal)
        except SealcodesError as exc:
            where = f"record {number} ({shown(record.account)}, {shown(record.label)})"
            raise CliFail(f"{where}: {exc}" + (f"; records 1..{number - 1} were imported" if number > 1 else ""))
        name = f"{shown(result.account)}  {shown(result.label)}  epoch {result.epoch}"
        if not result.imported:
            click.echo(f"unchanged  {name} (already imported)")
        else:
            old = f"; superseded epoch {', '.join(map(str, result.superseded_epochs))}" if result.superseded_epochs else ""
            forced = " (forced replacement, audited)" if result.forced else ""
            click.echo(f"imported   {name}: {record.count} codes{old}{forced}")


class ImportProgress:
    """A progress line on stderr while a bulk import runs: rewritten in place on a terminal,
    a new line every few seconds otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = self.shown_at = time.monotonic()
        self.interval = 0.5 if self.tty else 5.0

    def line(self, summary) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        return (f"import: {summary.records} records ({summary.imported} imported, {summary.unchanged} unchanged), "
                f"{summary.records / elapsed:.0f} records/s")

    def __call__(self, summary) -> None:
        now = time.monotonic()
        if now - self.shown_at >= self.interval:
            self.shown_at = now
            self._show(self.line(summary), final=False)

    def done(self, summary) -> None:
        self._show(self.line(summary), final=True)

    def _show(self, text: str, final: bool) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _bulk_import(obj, source, principal, batch_size):
    from ..verifier import ImportStopped
    from ..verifier.record import stream_records

    try:
        handle = sys.stdin.buffer if source == "-" else open(source, "rb")
    except OSError as exc:
        raise CliFail(f"cannot read {shown(source)}: {exc.strerror or type(exc).__name__}") from None
    verifier = obj.verifier()
    progress = ImportProgress()
    try:
        summary = verifier.import_records(stream_records(handle), principal, batch_size=batch_size,
                                          progress=progress)
    except ImportStopped as stop:
        progress.done(stop.summary)
        where = "" if stop.record is None else \
            f"record {stop.summary.records + 1} ({shown(stop.record.account)}, {shown(stop.record.label)}): "
        raise CliFail(f"{where}{shown(stop.cause)}; the {stop.summary.records} records before it are stored "
                      "(a rerun skips them)") from None
    except OSError as exc:
        raise CliFail(f"cannot read {shown(source)}: {exc.strerror or type(exc).__name__}") from None
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()
    progress.done(summary)
    if summary.records == 0:
        raise CliFail("no verifier record in the input")
    click.echo(f"{summary.records} records: {summary.imported} imported, {summary.unchanged} unchanged "
               f"(already imported), {summary.forced} forced replacements, {summary.superseded} sets superseded")


def _read_source(source):
    try:
        if source == "-":
            text = sys.stdin.read(MAX_IMPORT_BYTES + 1)
        else:
            with open(source, encoding="utf-8") as handle:
                text = handle.read(MAX_IMPORT_BYTES + 1)
    except OSError as exc:
        raise CliFail(f"cannot read {shown(source)}: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise CliFail("the records are not UTF-8 text") from None
    if len(text) > MAX_IMPORT_BYTES:
        raise CliFail(f"the input is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB: import it with --bulk")
    return text


def read_code_input() -> str:
    """The code from a hidden prompt, or one line of stdin (capped) when stdin is not a terminal."""
    if sys.stdin.isatty():
        return click.prompt("Code", hide_input=True, err=True)
    line = sys.stdin.readline(MAX_CODE_LINE + 1)
    if len(line) > MAX_CODE_LINE:
        raise CliFail("the code on stdin is too long")
    if not line:
        raise CliFail("no code given: type it at the prompt or send one line on stdin")
    return line.rstrip("\r\n")


@verifier_group.command("verify")
@click.argument("account")
@click.pass_obj
def verify_command(obj, account):
    """Check a code for ACCOUNT (hidden prompt or stdin) and spend it.

    Exit status: 0 accepted, 1 rejected (or mistyped, or too early), 2 locked.
    """
    from ..verifier import ACCEPTED, LOCKED, MISTYPED, THROTTLED

    verifier = obj.verifier()
    code = read_code_input()
    try:
        result = verifier.verify(account, code)
    finally:
        del code
    if result.outcome == ACCEPTED:
        left = f"; {result.remaining} left" if result.remaining is not None else ""
        click.echo(f"accepted (code {result.code_number} of {shown(result.label)}, epoch {result.epoch}{left})")
        if result.remaining is not None and result.remaining <= verifier.policy.low_codes:
            click.echo(f"Warning: only {result.remaining} codes left for this set: rotate soon.", err=True)
        return
    if result.outcome == LOCKED:
        click.echo("locked: too many failed attempts; an administrator must run `sealcodes verifier unlock`",
                   err=True)
        sys.exit(EXIT_LOCKED)
    if result.outcome == MISTYPED:
        click.echo("mistyped: this is not a well-formed code; check it and type it again (not counted)", err=True)
    elif result.outcome == THROTTLED:
        click.echo(f"too early: wait {result.retry_after:.0f} s before the next attempt (not counted)", err=True)
    else:
        click.echo("rejected", err=True)
    sys.exit(EXIT_REJECTED)


@verifier_group.command("status")
@click.argument("account")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status_command(obj, account, as_json):
    """Remaining codes of ACCOUNT's active sets and its lock state."""
    state = obj.verifier().status(account)
    if as_json:
        click.echo(json.dumps({
            "account": state.account, "locked": state.locked, "failures": state.failures,
            "retry_after": state.retry_after, "remaining": state.remaining, "few_left": state.few_left,
            "sets": [s.__dict__ for s in state.sets]}))
        return
    lock = "LOCKED" if state.locked else "not locked"
    click.echo(f"account {shown(state.account)}: {lock}, {state.failures} consecutive failures")
    if not state.sets:
        click.echo("  no active code set")
    for s in state.sets:
        click.echo(f"  {shown(s.label)}  epoch {s.epoch}  {s.format}  {s.remaining} of {s.count} codes left  "
                   f"fingerprint {s.fingerprint}")
    if state.few_left:
        click.echo(f"Warning: only {state.remaining} codes left: rotate the set (sealcodes rotate ... --verifier-record)",
                   err=True)


@verifier_group.command("unlock")
@click.argument("account")
@click.pass_obj
def unlock_command(obj, account):
    """Clear ACCOUNT's failure counter and lock."""
    was = obj.verifier().unlock(account)
    click.echo(f"{'unlocked' if was else 'was not locked; counter reset'}: {shown(account)}")


@verifier_group.command("revoke")
@click.argument("account")
@click.option("--label", help="Only the set of this label (default: every active set of ACCOUNT).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def revoke_command(obj, account, label, yes):
    """Stop every unused code of ACCOUNT's active sets (or of one label)."""
    if not yes and not (sys.stdin.isatty() and click.confirm(f"Revoke the codes of {shown(account)}?", err=True)):
        raise CliFail("not revoked: confirm at the prompt or pass --yes")
    revoked = obj.verifier().revoke(account, label)
    if not revoked:
        raise CliFail("no active set to revoke")
    for lbl, epoch in revoked:
        click.echo(f"revoked {shown(account)}  {shown(lbl)}  epoch {epoch}")


@verifier_group.command("audit")
@click.argument("account", required=False)
@click.option("--limit", type=IntRange(1, 100000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@click.pass_obj
def audit_command(obj, account, limit, as_json):
    """The audit trail (imports, successes, failures, lockouts, unlocks, revocations); never codes.

    One line per event, seven fields separated by tabs: time, event, account, label, epoch, code
    number, detail (empty when none). A field never holds a tab or a line break (they are escaped,
    as every control character): an account name cannot forge a column or a line.
    """
    for row in obj.verifier().audit(account, limit):
        if as_json:
            click.echo(json.dumps(row.__dict__))
            continue
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row.at))
        fields = (when, row.event, row.account, row.label, row.epoch,
                  None if row.code_index is None else row.code_index + 1, row.detail)
        click.echo("\t".join("" if value is None else shown(value) for value in fields))


@verifier_group.command("serve")
@click.option("--listen", default="127.0.0.1:8700", show_default=True, metavar="HOST:PORT")
@click.option("--workers", type=IntRange(1, 256), metavar="N",
              help="Server processes sharing the socket and the database (default: one per CPU this process may use).")
@click.option("--pool-size", type=IntRange(1, 100), default=10, show_default=True,
              help="Database connections in the pool of each process (PostgreSQL and SQLite).")
@click.option("--hash-slots", type=IntRange(1, 4096), metavar="N",
              help="Attempts that hash at once, in all processes together (default: one per CPU this process "
                   "may use); each holds the memory of one Argon2id hash.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info"]), default="info",
              show_default=True)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one JSON object per line (time, level, logger, pid, message).")
@click.option("--metrics-listen", metavar="HOST:PORT",
              help="Also serve GET /metrics here, without a key: an address only the scraper reaches. "
                   "(On --listen, /metrics needs a key of scope metrics.)")
@click.option("--certfile", metavar="PATH", help="Serve HTTPS with this certificate chain (PEM).")
@click.option("--keyfile", metavar="PATH", help="The private key of --certfile (PEM).")
@click.option("--forwarded-allow-ips", metavar="ADDRESSES",
              help="Proxies (comma-separated addresses, not '*') whose X-Forwarded-For names the client for the "
                   "per-address limits. Default: none; the peer address counts.")
@click.option("--request-timeout", type=FloatRange(1, 300), default=10, show_default=True, metavar="SECONDS",
              help="A connection that sends no whole request head within this long of opening (or of its "
                   "previous answer) is closed; a body that does not arrive within this long once it is read is "
                   "answered 408.")
@click.option("--connections-per-address", type=IntRange(1, 100000), default=64, show_default=True,
              metavar="N", help="Open connections one client address (an IPv6 /64) may hold in each process; "
                                "more are closed at once. The proxies of --forwarded-allow-ips are not capped.")
@click.option("--http", "http_parser", type=click.Choice(["auto", "httptools", "h11"]), default="auto",
              show_default=True, help="uvicorn's HTTP parser (auto: httptools when installed, else h11).")
@click.pass_obj
def serve_command(obj, listen, workers, pool_size, hash_slots, log_level, log_format, metrics_listen, certfile, keyfile,
                  forwarded_allow_ips, request_timeout, connections_per_address, http_parser):
    """Run the HTTP JSON API (uvicorn). API keys: `sealcodes verifier api-key create`.

    SIGTERM: finish the requests in flight, then exit 0. SIGHUP: every process re-reads the policy
    (rate limits included) from the database and the pepper files.
    """
    try:
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401

        from ..verifier import workers as serving
        from ..verifier.core import usable_cpus
    except ImportError:
        raise CliFail("the HTTP server needs the server extra: pip install 'sealcodes[server]'") from None
    host, port = _host_port(listen, "--listen")
    metrics_at = _host_port(metrics_listen, "--metrics-listen") if metrics_listen else None
    if bool(certfile) != bool(keyfile):
        raise CliFail("--certfile and --keyfile go together")
    if forwarded_allow_ips and "*" in [part.strip() for part in forwarded_allow_ips.split(",")]:
        raise CliFail("--forwarded-allow-ips '*' would let every client name its own address: give the proxies")
    if http_parser == "httptools" and importlib.util.find_spec("httptools") is None:
        raise CliFail("--http httptools: httptools is not installed (pip install 'sealcodes[server]')")
    workers = workers or usable_cpus()
    config = {"db_url": obj.db_url, "pepper_files": obj.pepper_files, "on_event": obj.on_event,
              "pool_size": pool_size, "hash_slots": hash_slots or usable_cpus(), "log_level": log_level,
              "log_format": log_format, "body_timeout_s": request_timeout}
    _serve_logging(log_level, log_format)
    # everything checked once, here: a bad database, policy or pepper stops the command with one line
    checked = obj.verifier(pool_size=1, hash_slots=config["hash_slots"])
    try:
        for warning in checked.capacity_warnings():
            _announce(log_format, f"Warning: {warning}")
    finally:
        checked.store.close()
    options = serving.ServerOptions(host, port, certfile, keyfile, forwarded_allow_ips,
                                    request_timeout_s=request_timeout, connections_per_address=connections_per_address,
                                    http=http_parser)
    # every connection and each process's database pool hold a descriptor: the limit should not be the first wall
    wanted = options.limit_concurrency + 2 * pool_size + 64
    descriptors = serving.raise_descriptor_limit(wanted)
    if descriptors < wanted:
        _announce(log_format, f"Warning: at most {descriptors} open files per process (wanted {wanted}): raise "
                              "the limit (LimitNOFILE= under systemd, ulimit -n)")
    try:
        sock = serving.bind(host, port, options.backlog)
    except OSError as exc:
        raise CliFail(f"cannot listen on {shown(listen)}: {exc.strerror or type(exc).__name__}") from None
    scheme = "https" if certfile else "http"
    with sock, _shared_hash_slots(config, workers) as slots:
        if workers == 1:
            app, reload, metrics, store = _build_app(config)
            try:
                if metrics_at:
                    _metrics_listener(metrics_at, metrics.directory, metrics.registry)
                _announce(log_format, f"sealcodes verifier listening on {scheme}://{listen} (1 process; {slots})")
                serving.run_server(app, sock, options, reload, on_ready=lambda: serving.notify("READY=1"),
                                   on_closed=metrics.connection_closed)
            finally:
                serving.notify("STOPPING=1")
                store.close()
            return
        _serve_workers(config, workers, sock, options, metrics_at, f"{scheme}://{listen}", slots)


@contextlib.contextmanager
def _shared_hash_slots(config, workers):
    """One pool of hash slots for every server process, handed on in the order attempts asked,
    which a killed process cannot leak (slotpool.py); removed when the server stops."""
    from ..verifier.core import hash_slots_per_process
    from ..verifier.slotpool import SharedSlots, SlotPoolError

    try:
        pool = config["hash_slots"] = SharedSlots.create(config["hash_slots"])
    except SlotPoolError as exc:
        if workers > 1:
            config["hash_slots"] = hash_slots_per_process(workers, cpus=config["hash_slots"])
        _announce(config["log_format"], f"Warning: no shared pool of hash slots ({exc.strerror}): each process "
                                        f"hashes at most {config['hash_slots']} attempts at once")
        yield f"hash slots: {config['hash_slots']} per process"
        return
    try:
        # the id names the pool for `ipcs -s`
        yield f"hash slots: {pool.size}, System V semaphore {pool.ident}"
    finally:
        pool.remove()


def _announce(log_format, line):
    if log_format == "json":
        log.info("%s", line)
    else:
        click.echo(line, err=True)


def _serve_workers(config, workers, sock, options, metrics_at, where, slots):
    from ..verifier import metrics as figures
    from ..verifier import workers as serving

    # every worker writes its figures into this directory, and a scrape sums them (metrics.py)
    directory = figures.make_directory()
    os.environ[figures.MULTIPROCESS_DIR_ENV] = directory
    try:
        if metrics_at:
            _metrics_listener(metrics_at, directory, None)
        _announce(config["log_format"], f"sealcodes verifier listening on {where} ({workers} processes; {slots})")
        status = serving.Supervisor(_serve_worker, config, workers, sock, options, directory).run()
    finally:
        figures.remove_directory(directory)
    if status:
        raise CliFail("the server processes could not start (see the lines above)")


def _host_port(text, option):
    host, _, port = text.rpartition(":")
    number = ascii_int(port)  # ASCII digits only: str.isdigit() takes '²', which int() refuses
    if not host or number is None or not 0 < number < 65536:
        raise CliFail(f"{option} must be HOST:PORT")
    return host.strip("[]"), number


def _metrics_listener(address, directory, registry):
    from ..verifier.metrics import serve_exposition

    try:
        return serve_exposition(address[0], address[1], directory, registry)
    except OSError as exc:
        raise CliFail(f"cannot listen on {shown(address[0])}:{address[1]} for metrics: "
                      f"{exc.strerror or type(exc).__name__}") from None


def _serve_logging(level, log_format):
    """The server's log lines: escaped text or JSON lines on stderr, at `level` for sealcodes and
    uvicorn; a flood of one error (descriptors exhausted at accept, a database gone) is written
    once a minute, not once per request."""
    from ..verifier.service import quiet_repeats
    from .logs import escaping_log_handler, json_log_handler

    root = logging.getLogger()
    root.handlers[:] = [json_log_handler() if log_format == "json" else escaping_log_handler()]
    root.setLevel(logging.WARNING)
    for name in ("sealcodes", "uvicorn"):
        logging.getLogger(name).setLevel(level.upper())
    quiet_repeats("asyncio", "uvicorn.error", "psycopg.pool", "sealcodes.verifier.server")


def _serve_worker(config):
    """What each worker process runs first (workers.Supervisor): its logging, then its app."""
    _serve_logging(config["log_level"], config["log_format"])
    pool, supervisor = config["hash_slots"], os.getppid()
    if not isinstance(pool, int):
        def orphaned():  # the workers a supervisor left behind (SIGKILL) remove the pool it made
            if os.getppid() != supervisor:
                with contextlib.suppress(OSError):
                    pool.remove()

        atexit.register(orphaned)
    app, reload, metrics, _ = _build_app(config)
    return app, reload, metrics.connection_closed


def _build_app(config):
    """The app of one server process, from `config` (serve_command); returns it, the function
    that reloads its configuration, its metrics and its store."""
    from ..errors import SealcodesError
    from ..verifier import Verifier
    from ..verifier.core import HashSlots
    from ..verifier.database import open_store
    from ..verifier.metrics import Metrics
    from ..verifier.service import count_lockouts, create_app, replace_verifier

    metrics = Metrics()
    hook = EventHook(config["on_event"], listeners=(count_lockouts(metrics),))
    options = {"pool_size": config["pool_size"]}
    if not config["db_url"].startswith("postgres"):
        options["create"] = False
    store = open_store(config["db_url"], **options)

    def make_verifier(hash_slots):
        peppers = read_peppers(config["pepper_files"])
        try:
            return Verifier(store, pepper=peppers, events=hook, hash_slots=hash_slots)
        finally:
            for pepper in peppers:
                wipe(pepper)

    slots = config["hash_slots"]
    verifier = make_verifier(slots if isinstance(slots, int) else HashSlots(slots.size, shared=slots))
    app = create_app(verifier, metrics=metrics, body_timeout_s=config["body_timeout_s"])

    def reload():
        try:
            replace_verifier(app, make_verifier(verifier.hash_slots))
        except (SealcodesError, CliFail) as exc:
            metrics.reloads.labels("failed").inc()
            log.error("reload failed, the configuration in use stays: %s", exc)
            return
        metrics.reloads.labels("ok").inc()
        log.info("configuration reloaded")

    return app, reload, metrics, store


@verifier_group.group("api-key")
def api_key_group():
    """Bearer keys for the HTTP API (stored as SHA-256; shown once)."""


@api_key_group.command("create")
@click.argument("name")
@click.option("--scope", type=click.Choice(["verify", "import", "admin", "metrics"]), default="verify",
              show_default=True,
              help="verify: POST /v1/verify only (PAM hosts, login services); import: first sets and rotations "
                   "with the device's proof; admin: also forced replacement, status, revoke, unlock, audit; "
                   "metrics: GET /metrics only (a Prometheus scraper).")
@click.option("--accounts", "pattern", default="*", show_default=True, metavar="PATTERN",
              help="Only accounts matching PATTERN ('*' matches any run of characters, nothing else is special).")
@click.option("--account", "account", metavar="NAME",
              help="Only the account NAME, exactly: no character of it is a wildcard (a self-service key).")
@click.pass_obj
def api_key_create(obj, name, scope, pattern, account):
    """Make a key; it is printed once, on stdout."""
    verifier = obj.verifier()
    key_id, token = verifier.create_api_key(name, scope, pattern, account=account)
    stored = next(key.accounts for key in verifier.api_keys() if key.key_id == key_id)
    click.echo(f"API key {key_id} ({shown(name)}, scope {scope}, accounts {shown(stored)}); store it now, it is "
               "not shown again:", err=True)
    click.echo(token)


@api_key_group.command("list")
@click.pass_obj
def api_key_list(obj):
    """Key ids, creation times, revoked or not, scopes, account patterns, names."""
    for key in obj.verifier().api_keys():
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(key.created_at))
        click.echo(f"{key.key_id}  {when}  {'revoked' if key.revoked else 'active '}  {key.scope:<6}  "
                   f"accounts {shown(key.accounts)}  {shown(key.name)}")


@api_key_group.command("revoke")
@click.argument("key_id")
@click.pass_obj
def api_key_revoke(obj, key_id):
    """Stop a key at once."""
    if not obj.verifier().revoke_api_key(key_id):
        raise CliFail("no active API key with that id")
    click.echo(f"revoked API key {shown(key_id)}")


@verifier_group.group("pepper")
def pepper_group():
    """Server peppers: add a new current one, list them, retire one no set uses."""


def _pepper_store(obj):
    store = obj.store()
    store.require_current_schema()
    return store


@pepper_group.command("add")
@click.argument("path", metavar="FILE")
@click.option("--create", is_flag=True, help="Make a new random pepper in FILE (mode 0600) first.")
@click.pass_obj
def pepper_add(obj, path, create):
    """Make the pepper in FILE current for new imports; sets imported before keep theirs.

    Give FILE to every verifier process (--pepper-file, beside the older peppers) before adding it:
    a process without the current pepper refuses imports and refuses to start.
    """
    from ..verifier import Verifier

    if create:
        _create_pepper(path)
    pepper = read_pepper(path)
    try:
        verifier = Verifier(_pepper_store(obj), check_schema=False)
        new_id, changed = verifier.add_pepper(pepper)
    finally:
        wipe(pepper)
    click.echo(f"pepper {new_id} " + ("is now current for new imports" if changed else "was current already"))


@pepper_group.command("list")
@click.pass_obj
def pepper_list(obj):
    """Pepper ids, current or retired, and how many active sets use each."""
    for row in _pepper_store(obj).peppers():
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row.added_at))
        state = "current" if row.current else ("retired" if row.retired_at is not None else "older  ")
        click.echo(f"{row.pepper_id}  {state}  added {when}  {row.active_sets} active sets")


@pepper_group.command("retire")
@click.argument("pepper_id", metavar="ID")
@click.pass_obj
def pepper_retire(obj, pepper_id):
    """Retire a pepper: refused while an active set uses it (rotate or revoke those sets first)."""
    from ..verifier import Verifier

    Verifier(_pepper_store(obj), check_schema=False).retire_pepper(pepper_id)
    click.echo(f"pepper {shown(pepper_id)} retired: its file is no longer needed")


@verifier_group.command("pam")
@click.option("--url", envvar="SEALCODES_VERIFIER_URL", metavar="URL",
              help="Ask this verifier service instead of a local database.")
@click.option("--api-key-file", envvar="SEALCODES_VERIFIER_API_KEY_FILE", metavar="PATH",
              help="File holding the API key for --url. It must be a verify-only key "
                   "(api-key create NAME --scope verify): the file sits on every login host, and a key "
                   "of a wider scope there lets whoever reads it import, replace or revoke codes.")
@click.option("--cafile", metavar="PATH",
              help="Trust only these CA certificates (PEM) for an https:// --url, not the system's (pinning).")
@click.pass_obj
def pam_command(obj, url, api_key_file, cafile):
    """For pam_exec.so expose_authtok: user from PAM_USER, code on stdin; exit 0 only when accepted.

    PAM_USER must be a user of this system, named exactly so, in normal form. With --url: https://,
    or http:// to a loopback address and a privileged port (below 1024). Fails closed: any problem
    (no code, store or service unreachable) refuses the login.
    """
    from ..verifier import pam

    outcome = "refused"
    token = None
    try:
        user = pam.pam_user(os.environ)
        pam.check_system_user(user)
        token = pam.read_authtok(sys.stdin.buffer)
        code = token.decode("utf-8", "replace")
        if url:
            if not api_key_file:
                raise pam.PamRefusal("--url needs --api-key-file")
            with open(api_key_file, encoding="ascii") as handle:
                api_key = handle.read(512).strip()
            outcome = pam.check_remote(url, api_key, user, code, cafile=cafile)
        else:
            outcome = pam.check_local(obj.verifier(), user, code)
        del code
    except Exception as exc:  # fail closed, whatever happened
        click.echo(f"sealcodes pam: refused ({_reason(exc)})", err=True)
        sys.exit(EXIT_REJECTED)
    finally:
        if token is not None:
            wipe(token)
    if not pam.is_accepted(outcome):
        click.echo(f"sealcodes pam: {outcome}", err=True)
        sys.exit(EXIT_LOCKED if outcome == "locked" else EXIT_REJECTED)
    click.echo("sealcodes pam: accepted", err=True)


def _reason(exc: Exception) -> str:
    from ..errors import SealcodesError

    if isinstance(exc, (SealcodesError, CliFail)):
        return shown(str(exc))
    return type(exc).__name__


def check_account_option(ctx, param, value):
    """--account of generate/rotate/recover, checked before the device is asked."""
    if value is None:
        return None
    from ..verifier.record import normalize_account

    try:
        return normalize_account(value)
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc)) from None


def echo_verifier_records(records, empty="no code set to make a record of",
                          failed="the set was not recorded in the profile"):
    """The set's verifier records (one per account) as JSON lines on stdout, flushed; the codes are
    not printed. No record: nothing on stdout, and `empty` says why on stderr. A failed write raises
    CliFail, its message ending with `failed` (what the caller did or did not record)."""
    if not records:
        click.echo(f"No verifier record printed: {empty}.", err=True)
        return
    try:
        for record in records:
            click.echo(record.to_json())
        sys.stdout.flush()
    except OSError as exc:
        raise CliFail(f"could not write the verifier record ({exc.strerror or type(exc).__name__}); {failed}") from None
    proven = records[0].proof is not None
    what = ("records" if len(records) > 1 else "record") + (" (with the proof that the current set's device or "
                                                             "keyring made it)" if proven else "")
    click.echo(f"Verifier {what} printed, no code in it; `sealcodes generate LABEL` shows the codes.", err=True)


COMMANDS = (verifier_group,)
