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


class _ConfigureWhenLoaded:
    """An import finder that only watches for `logging`: the usual finders load it, then the
    configuration applies before the module that imported it goes on."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        sys.meta_path.remove(self)
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenConfigure(spec.loader)
        return spec


class _ThenConfigure:
    """A loader that runs another, then configures the module it loaded (`logging`)."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):  # get_source, get_filename, ... (tracebacks read logging's source)
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        _apply(debug=False)
