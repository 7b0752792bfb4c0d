"""Device providers: devices that are not PC/SC readers or USB HID keys, e.g. the emulator.

The library knows no provider by name. Providers register through the entry point group
`sealcodes.device_providers` (an installed package declares `name = "module:OBJECT"`), or at
run time with `register()`. The contract a provider fulfils is in docs/architecture.md
("Device providers"); the emulator in sealboard.provider is one.
"""

from __future__ import annotations

ENTRY_POINT_GROUP = "sealcodes.device_providers"

_registered: dict = {}
_loaded = False


def register(provider) -> None:
    """Make `provider` known under provider.name (overrides an installed one of that name)."""
    _registered[provider.name] = provider


def unregister(name: str) -> None:
    _registered.pop(name, None)


def _load_entry_points() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in _registered:
            continue
        try:
            _registered[entry.name] = entry.load()
        except Exception:  # a broken or half-installed provider must not break sealcodes
            continue


def get(name: str):
    """The provider called `name`, or None. Loads installed providers only on first need."""
    if name not in _registered:
        _load_entry_points()
    return _registered.get(name)


def all_providers() -> list:
    _load_entry_points()
    return list(_registered.values())
