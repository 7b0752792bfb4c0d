"""learn_names(): every name of the firmware's code made at start, before that code is loaded
(main.py calls it first; docs/board.md, "Heap")."""

import gc
import os
import sys

import sealtoken  # noqa: F401 (its __file__ says where the firmware's files are)


def learn_names(package="sealtoken", skip=("sealtoken.core.simplatform",)):
    """Import every module of the firmware once, then let go of them: their names stay, their code
    goes. The number of modules imported (0 when the firmware is frozen into the image).

    MicroPython keeps each name of loaded code (a qstr) for good, in tables that double: when one
    is full, the next one is a single block twice its size (1,280 entries, 9 KiB on a 32-bit port,
    when about 1,260 names are in use). Left to itself that block is asked for at some late import
    (an applet's first SELECT, a CTAP command's first request), when the card applets' crypto has
    cut the heap into pieces smaller than it: a MemoryError with tens of KiB free (docs/board.md,
    "Heap"). Learnt here, first thing at start, the tables grow while the heap is in one piece; the
    modules' code is freed again, so applets are still loaded on their first SELECT and only then
    cost their code. Names of applets never used cost their bytes (a few KiB in all). Frozen
    modules' names are in the image: nothing to do."""
    path = getattr(sys.modules[package], "__file__", "")
    if "/" not in path:
        return 0  # no file to list
    root = path[:path.rfind("/")]
    names = []
    try:
        for entry in os.listdir(root):
            if os.stat(root + "/" + entry)[0] & 0x4000:  # a folder: a subpackage (not a cache of CPython's)
                if entry != "__pycache__":
                    prefix = package + "." + entry + "."
                    names.extend(prefix + m for m in _modules(os.listdir(root + "/" + entry)))
            else:
                names.extend(package + "." + m for m in _modules((entry,)))
    except OSError:
        return 0  # frozen into the image: the folder is not on a filesystem
    loaded = list(sys.modules)
    count = 0
    for name in names:
        if name in sys.modules or name in skip or name.endswith(".__init__"):
            continue
        __import__(name)
        count += 1
        # one module's code at a time (and what it imports) is kept: at most that much at the peak
        for new in list(sys.modules):
            if new not in loaded:
                del sys.modules[new]
                cut = new.rfind(".")
                parent = sys.modules.get(new[:cut])
                if parent is not None:
                    try:
                        delattr(parent, new[cut + 1:])
                    except AttributeError:
                        pass
        gc.collect()
    return count


def _modules(files):
    """The module names of the code files among `files` (anything else copied beside them is not
    imported: a README would stop the board at start)."""
    for name in files:
        for suffix in (".mpy", ".py"):
            if name.endswith(suffix):
                yield name[:-len(suffix)]
