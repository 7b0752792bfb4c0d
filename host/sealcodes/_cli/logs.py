"""Where log lines go: stderr, one line each, escaped (sealcodes.text: they can quote device
strings); sealcodes' own debug lines at --debug only, and no other library's.

`logging` is configured as soon as anything loads it, but not loaded for that (sealcodes.log:
it costs start-up time that `generate` does not otherwise spend). Without --debug, nothing of
sealcodes loads it on the way to a smartcard; a client library that does (yubikit, python-fido2
over USB) still gets the escaping handler before its first line.
"""

from __future__ import annotations

import sys

from ..text import printable


def configure(debug: bool) -> None:
    """Configure `logging` now if it is loaded (or --debug asks for it), else when it loads."""
    if debug or "logging" in sys.modules:
        _apply(debug)
    elif not any(isinstance(finder, _ConfigureWhenLoaded) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ConfigureWhenLoaded())


def _apply(debug: bool) -> None:
    import logging

    # our logger opens at --debug only: the client libraries' traffic loggers stay quiet, and ours
    # redact PINs and device answers
    logging.basicConfig(level=logging.WARNING, handlers=[escaping_log_handler()])
    logging.getLogger("sealcodes").setLevel(logging.DEBUG if debug else logging.WARNING)


def escaping_log_handler():
    import logging

    class EscapingFormatter(logging.Formatter):
        def format(self, record):
            lines = super().format(record).split("\n")  # a traceback stays several lines, each escaped
            return "\n".join(printable(line) for line in lines)

    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter("%(name)s: %(message)s"))
    return handler


def json_log_handler():
    """JSON lines on stderr (`verifier serve --log-format json`): one object per line, with time,
    level, logger, process and message; a traceback goes into "exception", escaped like the rest."""
    import json
    import logging
    import time

    class JsonLinesFormatter(logging.Formatter):
        def format(self, record):
            entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                     + f".{int(record.msecs):03d}Z", "level": record.levelname.lower(), "logger": record.name,
                     "pid": record.process, "message": record.getMessage()}
            if record.exc_info:
                entry["exception"] = self.formatException(record.exc_info)
            return json.dumps(entry, ensure_ascii=True)

    handler = logging.StreamHandler()
    handler.setFormatter(JsonLinesFormatter())
    return handler


class _ConfigureWhenLoaded:
    """An import finder that only watches for `logging`: the other finders find it (whichever
    serves the standard library, on sys.path or frozen), and its loader is wrapped so that the
    configuration applies before the module that imported it goes on. The finder leaves
    sys.meta_path once logging is loaded, not while the import system goes through the list."""

    def __init__(self):
        self._searching = False

    def find_spec(self, name, path=None, target=None):
        if name != "logging" or self._searching:
            return None
        self._searching = True
        try:
            spec = _find_spec_elsewhere(self, name, path, target)
        finally:
            self._searching = False
        if spec is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenConfigure(spec.loader, self)
        return spec


def _find_spec_elsewhere(finder, name, path, target):
    """The spec the other finders of sys.meta_path give, in their order."""
    for other in list(sys.meta_path):
        find_spec = getattr(other, "find_spec", None)
        if other is finder or find_spec is None:
            continue
        spec = find_spec(name, path, target)
        if spec is not None:
            return spec
    return None


class _ThenConfigure:
    """A loader that runs another, then configures the module it loaded (`logging`)."""

    def __init__(self, loader, finder):
        self.loader, self.finder = loader, finder

    def __getattr__(self, name):  # get_source, get_filename, ... (tracebacks read logging's source)
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        # a new list: an import going on in another thread goes on through the old one unchanged
        sys.meta_path = [finder for finder in sys.meta_path if finder is not self.finder]
        _apply(debug=False)
